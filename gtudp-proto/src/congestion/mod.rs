//! Per-peer congestion control (RFC 8085 section 3.1): how many messages
//! may be in flight to a peer, and how fast they may leave.
//!
//! Two controllers, chosen by [`Config::congestion`](crate::Config):
//!
//! - [`CongestionAlgorithm::Aimd`] (in `aimd`): the original window that
//!   halves on every loss event. Random loss reads as congestion to it.
//! - [`CongestionAlgorithm::Bbr`] (in `bbr`): a model of the path (the
//!   delivery rate it sustains and its minimum RTT), paced sends (resends
//!   included), and a response to loss only beyond the path's random share.
//!
//! Windows count messages: every DATA is one datagram.

mod aimd;
mod bbr;
mod delivery;

use std::time::Duration;

use aimd::Aimd;
use bbr::Bbr;
pub(crate) use delivery::{DeliveryTracker, RateSample, SendSnapshot};

/// Which congestion controller an endpoint runs for each peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CongestionAlgorithm {
    /// Additive increase, multiplicative decrease: slow start, then one
    /// message more per window delivered; the window halves once per loss
    /// event. Unpaced. The controller of earlier gtudp releases, kept for
    /// comparison and for paths where nothing else sends.
    Aimd,
    /// A model of the path in the style of BBR: the delivery rate it
    /// sustains and its minimum RTT set a paced rate and about two
    /// bandwidth-delay products in flight. Random loss, measured on what is
    /// sent at or below the estimate while no queue shows, does not slow
    /// it; loss beyond that share (by 2% of what is sent, BBRv3's rule)
    /// cuts the rate by 15%, at most once per round trip, undone if the
    /// losses it was judged on prove spurious. Probes for more bandwidth
    /// come every 63 round trips or about 2 s, so that the flow's own
    /// losses at a shallow buffer stay small.
    #[default]
    Bbr,
}

/// `ns` nanoseconds in seconds, as `Duration::as_secs_f64` gives them
/// (whole seconds and the nanoseconds past them converted apart, to the
/// same bit).
fn secs_f64(ns: u64) -> f64 {
    const NANOS_PER_SEC: u64 = 1_000_000_000;
    (ns / NANOS_PER_SEC) as f64 + (ns % NANOS_PER_SEC) as f64 / NANOS_PER_SEC as f64
}

/// What a controller learns from one confirmed delivery.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Delivery {
    /// When the delivered message was last sent, in nanoseconds from the
    /// endpoint's epoch (as every instant the controllers see).
    pub(crate) sent_at: u64,
    /// When its RECV arrived.
    pub(crate) now: u64,
    /// Its round-trip time in nanoseconds, when unambiguous (sent once:
    /// Karn's rule).
    pub(crate) rtt: Option<u64>,
    /// The delivery rate it samples, if meaningful.
    pub(crate) sample: Option<RateSample>,
    /// Messages confirmed to the peer so far, this one included.
    pub(crate) delivered: u64,
    /// Messages still in flight.
    pub(crate) in_flight: usize,
}

/// The controller of one peer.
///
/// The window and the pacing interval are read on every send, and change
/// only when the controller hears of a delivery, a loss or a timeout: they
/// are worked out then and kept, so a read is a field.
#[derive(Clone, Debug)]
pub(crate) struct Controller {
    algorithm: Algorithm,
    window: u32,
    pacing_interval: Option<Duration>,
}

#[derive(Clone, Debug)]
// One per peer, used on every send: not worth an indirection.
#[allow(clippy::large_enum_variant)]
enum Algorithm {
    Aimd(Aimd),
    Bbr(Bbr),
}

impl Controller {
    pub(crate) fn new(
        algorithm: CongestionAlgorithm,
        initial_window: u32,
        max_window: u32,
    ) -> Self {
        let algorithm = match algorithm {
            CongestionAlgorithm::Aimd => Algorithm::Aimd(Aimd::new(initial_window, max_window)),
            CongestionAlgorithm::Bbr => Algorithm::Bbr(Bbr::new(initial_window, max_window)),
        };
        let mut controller = Self {
            algorithm,
            window: 0,
            pacing_interval: None,
        };
        controller.refresh();
        controller
    }

    /// Works out the window and pacing interval after a change.
    fn refresh(&mut self) {
        (self.window, self.pacing_interval) = match &self.algorithm {
            Algorithm::Aimd(aimd) => (aimd.window(), None),
            Algorithm::Bbr(bbr) => bbr.window_and_pacing(),
        };
    }

    /// Messages that may be in flight at once.
    pub(crate) fn window(&self) -> u32 {
        self.window
    }

    /// A message was confirmed delivered.
    ///
    /// The deliveries that arrive at one instant (`delivery.now`, in
    /// nanoseconds from the epoch) are one event for BBR, as one ACK frame
    /// is for QUIC's: a batch of RECVs read at once (one `recvmmsg`,
    /// handled at one instant). The first is taken whole; the rest move
    /// the model but not the mode (see `Bbr::on_delivered_again`), and the
    /// window and the pacing interval are worked out again only if their
    /// inputs changed. (In the simulator too, what arrives at one instant
    /// is handed in with one `now`.)
    #[inline]
    pub(crate) fn on_delivered(&mut self, delivery: &Delivery) {
        match &mut self.algorithm {
            Algorithm::Aimd(aimd) => aimd.on_delivered(delivery.sent_at),
            Algorithm::Bbr(bbr) if bbr.takes_again(delivery.now) => {
                if !bbr.on_delivered_again(delivery) {
                    debug_assert_eq!(
                        (self.window, self.pacing_interval),
                        bbr.window_and_pacing(),
                        "the window's inputs are all in `window_inputs`"
                    );
                    return;
                }
            }
            Algorithm::Bbr(bbr) => bbr.on_delivered(delivery),
        }
        self.refresh();
    }

    /// The interval between two sends, or `None` for unpaced.
    pub(crate) fn pacing_interval(&self) -> Option<Duration> {
        self.pacing_interval
    }

    /// A message last sent at `sent_at` was presumed lost at `now`, before
    /// its retransmission timeout, with `in_flight` messages in flight.
    pub(crate) fn on_loss(&mut self, sent_at: u64, now: u64, in_flight: usize) {
        match &mut self.algorithm {
            Algorithm::Aimd(aimd) => aimd.on_loss(sent_at, now),
            Algorithm::Bbr(bbr) => bbr.on_loss(sent_at, now, in_flight),
        }
        self.refresh();
    }

    /// A retransmission proved spurious: the loss of the transmission
    /// before it, sent at `sent_at`, was not one.
    pub(crate) fn on_spurious(&mut self, sent_at: u64) {
        match &mut self.algorithm {
            Algorithm::Aimd(_) => {}
            Algorithm::Bbr(bbr) => bbr.on_spurious(sent_at),
        }
        self.refresh();
    }

    /// A message last sent at `sent_at` reached its retransmission timeout.
    pub(crate) fn on_timeout(&mut self, sent_at: u64, now: u64) {
        match &mut self.algorithm {
            Algorithm::Aimd(aimd) => aimd.on_loss(sent_at, now),
            Algorithm::Bbr(bbr) => bbr.on_timeout(now),
        }
        self.refresh();
    }
}
