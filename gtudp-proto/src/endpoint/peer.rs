//! What the endpoint knows about one remote address.

use std::collections::VecDeque;
use std::time::Instant;

use crate::config::Config;
use crate::congestion::{Controller, DeliveryTracker};
use crate::event::MessageId;
use crate::loss::{Rack, SendOrder};
use crate::pacing::Pacer;
use crate::rtt::RttEstimator;
use crate::stats::PeerStats;

/// Replies to an address that has never proven it receives our datagrams are
/// limited to this many times the bytes it sent, so a spoofed source cannot
/// turn the endpoint into an amplifier.
const AMPLIFICATION_FACTOR: u64 = 3;

/// Backoff doublings are capped here; `max_rto` caps the timeout anyway.
const MAX_BACKOFF: u32 = 16;

#[derive(Debug)]
pub(super) struct Peer {
    pub(super) rtt: RttEstimator,
    /// RFC 6298 section 5.5 doublings in force until the next valid sample.
    pub(super) backoff: u32,
    pub(super) congestion: Controller,
    /// Delivery counters behind the controller's rate samples.
    pub(super) delivery: DeliveryTracker,
    pub(super) pacer: Pacer,
    /// Messages released into flight (sent, or waiting in the output).
    pub(super) in_flight: usize,
    /// Every DATA transmission to the peer, oldest first.
    pub(super) order: SendOrder,
    pub(super) rack: Rack,
    /// When the reordering window of the oldest candidate for early loss
    /// detection ends.
    pub(super) rack_deadline: Option<Instant>,
    /// A tail-loss probe is out and nothing was confirmed since.
    pub(super) probe_out: bool,
    /// The latest DATA transmission.
    pub(super) last_data_sent: Option<Instant>,
    /// The instant the peer's live `TimerKey::Sender` entry is set for.
    pub(super) send_timer: Option<Instant>,
    /// Messages accepted but beyond the window, in send order.
    pub(super) queue: VecDeque<MessageId>,
    /// Received identities remembered for this peer.
    pub(super) remembered: usize,
    /// When the peer, holding no state, is forgotten.
    pub(super) idle_deadline: Option<Instant>,
    /// Bytes of RECV and ACK sent to the peer: the replies the
    /// anti-amplification budget limits. DATA the application chose to send
    /// is not a reply and does not count.
    pub(super) reply_bytes_out: u64,
    pub(super) stats: PeerStats,
}

impl Peer {
    pub(super) fn new(config: &Config) -> Self {
        Self {
            rtt: RttEstimator::new(config.initial_rto, config.min_rto, config.max_rto),
            backoff: 0,
            congestion: Controller::new(
                config.congestion,
                config.initial_window,
                config.max_window,
            ),
            delivery: DeliveryTracker::default(),
            pacer: Pacer::default(),
            in_flight: 0,
            order: SendOrder::default(),
            rack: Rack::default(),
            rack_deadline: None,
            probe_out: false,
            last_data_sent: None,
            send_timer: None,
            queue: VecDeque::new(),
            remembered: 0,
            idle_deadline: None,
            reply_bytes_out: 0,
            stats: PeerStats::default(),
        }
    }

    /// No message to or from the peer is tracked.
    pub(super) fn is_idle(&self) -> bool {
        self.in_flight == 0 && self.queue.is_empty() && self.remembered == 0
    }

    pub(super) fn has_window(&self) -> bool {
        self.in_flight < self.congestion.window() as usize
    }

    /// Whether a reply of `size` bytes stays within the anti-amplification
    /// budget.
    pub(super) fn may_reply(&self, size: usize) -> bool {
        self.stats.validated
            || self.reply_bytes_out + size as u64 <= AMPLIFICATION_FACTOR * self.stats.bytes_in
    }

    /// A retransmission timeout fired for a message sent `transmissions`
    /// times: back off until the next valid RTT sample (RFC 6298 section
    /// 5.5), and probe no more until something is confirmed.
    pub(super) fn on_retransmission_timeout(&mut self, transmissions: u32) {
        self.backoff = self.backoff.max(transmissions).min(MAX_BACKOFF);
        self.probe_out = true;
    }

    /// The timeout of a DATA or RECV after its `transmissions`-th
    /// transmission: the RTO with the larger of the peer's and its own
    /// backoff.
    pub(super) fn retransmission_timeout(&self, transmissions: u32) -> std::time::Duration {
        self.timeouts().after(transmissions)
    }

    /// The inputs of [`retransmission_timeout`](Self::retransmission_timeout),
    /// detached from the peer.
    pub(super) fn timeouts(&self) -> Timeouts {
        Timeouts {
            rtt: self.rtt.clone(),
            backoff: self.backoff,
        }
    }

    /// A valid RTT sample (Karn's rule satisfied).
    pub(super) fn on_rtt_sample(&mut self, sample: std::time::Duration) {
        self.rtt.on_sample(sample);
        self.backoff = 0;
    }

    pub(super) fn snapshot(&self) -> PeerStats {
        PeerStats {
            rtt: self.rtt.smoothed(),
            rto: self.rtt.backed_off_rto(self.backoff),
            window: self.congestion.window(),
            in_flight: self.in_flight,
            queued: self.queue.len(),
            ..self.stats
        }
    }
}

/// A peer's RTO and backoff, copied out so that timeouts can be computed
/// while the peer's send order is borrowed.
#[derive(Clone, Debug)]
pub(super) struct Timeouts {
    rtt: RttEstimator,
    backoff: u32,
}

impl Timeouts {
    /// The timeout after a message's `transmissions`-th transmission.
    pub(super) fn after(&self, transmissions: u32) -> std::time::Duration {
        let doublings = self
            .backoff
            .max(transmissions.saturating_sub(1))
            .min(MAX_BACKOFF);
        self.rtt.backed_off_rto(doublings)
    }

    /// The timeout of a DATA after its `transmissions`-th transmission: as
    /// [`after`](Self::after), but at least two smoothed RTTs, so a queue
    /// building on the path does not fire it before early detection and the
    /// tail-loss probe have had their turn (the RTO is the last resort).
    pub(super) fn data_after(&self, transmissions: u32) -> std::time::Duration {
        let floor = self.rtt.smoothed().unwrap_or_default() * 2;
        self.after(transmissions).max(floor)
    }
}
