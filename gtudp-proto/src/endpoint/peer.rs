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

/// Everything sent to an address that reached us first and has never proven
/// it receives our datagrams is limited to this many times the bytes it
/// sent, so a spoofed source cannot turn the endpoint into an amplifier.
const AMPLIFICATION_FACTOR: u64 = 3;

/// Backoff doublings are capped here; `max_rto` caps the timeout anyway.
const MAX_BACKOFF: u32 = 16;

/// The fields are laid out in declaration order (`repr(C)`), grouped by how
/// often they are touched: what every datagram touches first (the RTT
/// estimate among it), then the send side, and last what is touched rarely
/// or is large.
/// A server with many peers finds each one cold in the cache, so every
/// cache line a datagram touches costs a miss: grouped, the receiving path
/// touches a few lines of the peer rather than a dozen spread over its
/// 1.9 kB. The record starts on a cache line (`align(64)`), so that the
/// first line holds what an idle check compares first, the serial and the
/// countdown count, which rule out a stale entry of the idle peers' queue
/// (a purge checks about two entries a message, one cold peer each; only
/// a live entry reads the second line, for the idle deadline); the third
/// holds the RTT estimate, and the next two all the receiving path reads
/// besides, with the counters every datagram adds to: five lines in all.
#[derive(Debug)]
#[repr(C, align(64))]
pub(super) struct Peer {
    // ----- what every datagram to or from the peer touches: first, in the
    // first line, what an idle check reads but the deadline
    /// Distinguishes this peer from an earlier or later one at its address.
    pub(super) serial: u64,
    /// Received messages from this peer whose RECV awaits its ACK.
    pub(super) awaiting: usize,
    /// Messages released into flight (sent, or waiting in the output).
    pub(super) in_flight: usize,
    /// Messages accepted but beyond the window, in send order.
    pub(super) queue: VecDeque<MessageId>,
    /// Idle countdowns started (wrapping): the idle peers' queue entry
    /// with the latest count is the live one.
    pub(super) idle_countdowns: u32,
    /// RFC 6298 section 5.5 doublings in force until the next valid sample.
    pub(super) backoff: u32,
    /// When the peer, holding no state, is forgotten.
    pub(super) idle_deadline: Option<Instant>,
    /// The sender token this address proved, with the roaming extension
    /// (see [`super::roaming`]).
    pub(super) token: Option<u64>,
    /// The sender token written into every datagram to the peer, with the
    /// roaming extension (see [`super::roaming`]): drawn for this record
    /// when it was created (`roaming::fresh_token`), or taken from messages
    /// parked at its address (`peer_tracking::Parked`), and kept when the
    /// peer moves. A message's DATA goes out only while its peer record
    /// lives (an evicted peer's messages park, and return to the record
    /// that takes the token), so every copy carries one token.
    pub(super) sent_token: u64,
    /// The network reported the peer unreachable after it had answered:
    /// its messages fail at this instant unless a datagram from it comes
    /// first (see [`super::unreachable`]). Also the instant its live
    /// `TimerKey::Unreachable` entry is set for.
    pub(super) suspect_until: Option<Instant>,
    /// Validation probes resent to it on its probe timer (the backoff's
    /// doublings).
    pub(super) probes: u32,
    /// The address first reached us (a datagram from it), rather than the
    /// application choosing it: until it is validated, everything sent to it
    /// counts against the anti-amplification budget, and it may be evicted
    /// to make room for other peers.
    pub(super) inbound: bool,
    /// Its grace ran out with no datagram from it: a new report fails its
    /// messages at once, as for an address that never answered, until a
    /// datagram comes from it again.
    pub(super) gone: bool,
    /// A tail-loss probe is out and nothing was confirmed since.
    pub(super) probe_out: bool,
    /// Something may have moved the send side's deadline earlier since the
    /// timer was last armed (see `recovery::transmission_may_move_deadline`).
    pub(super) send_deadline_moved: bool,
    // ----- the third line: what every RTT sample (an ACK's too) updates,
    // and every RECV's or DATA's resend deadline reads
    pub(super) rtt: RttEstimator,
    // ----- then what the receiving path reads, and the counters every
    // datagram adds to (the first fields of the stats)
    /// A quarter of the grace while suspect: the cap on its retransmission
    /// timeout, so that probes keep going out within the grace.
    pub(super) suspect_rto_cap: Option<std::time::Duration>,
    /// How many times RECVs to the peer go out (see [`super::recv_copies`]).
    pub(super) recv_copies: super::recv_copies::RecvCopies,
    pub(super) stats: PeerStats,
    // ----- what every message sent to the peer touches
    /// The instant the peer's live `TimerKey::Sender` entry is set for.
    pub(super) send_timer: Option<Instant>,
    /// The latest DATA transmission.
    pub(super) last_data_sent: Option<Instant>,
    /// When the reordering window of the oldest candidate for early loss
    /// detection ends.
    pub(super) rack_deadline: Option<Instant>,
    /// The last message a RECV from the peer confirmed (see
    /// [`super::recv_copies`]).
    pub(super) last_confirmed: Option<super::recv_copies::LastConfirmed>,
    pub(super) pacer: Pacer,
    /// Delivery counters behind the controller's rate samples.
    pub(super) delivery: DeliveryTracker,
    /// Every DATA transmission to the peer, oldest first.
    pub(super) order: SendOrder,
    /// Messages in flight to resend, waiting for the pacer: they go before
    /// anything new (entries whose message was resolved meanwhile, or is
    /// no longer pending, are skipped).
    pub(super) resends: VecDeque<MessageId>,
    pub(super) rack: Rack,
    /// Messages confirmed after a retransmission, until a second RECV
    /// tells whether it was spurious (see [`super::spurious`]).
    pub(super) resolved_resends: super::spurious::ResolvedResends,
    /// Our messages held back for it until it proves itself (by its budget,
    /// or sent only once it is validated): released the moment it is, and
    /// failed as unvalidated if it is evicted first.
    pub(super) held: smallvec::SmallVec<[MessageId; 2]>,
    /// The large message resent before any of its fragments was confirmed
    /// (the receiver may be out of room for it): until one is, or it ends,
    /// the fragments of later large messages wait in the queue (see
    /// `large::may_release`).
    pub(super) stalled_large: Option<crate::event::MessageId>,
    /// Bytes of the large messages out to this peer (started, not ended).
    pub(super) large_bytes_out: usize,
    // ----- what is touched rarely: validation, suspicion, path MTU, and the congestion controller (touched per delivery, but large)
    /// New messages from it held, neither answered nor handed over, until
    /// it proves itself (at most `max_held_per_unvalidated_peer`); empty,
    /// without an allocation, for a validated peer.
    pub(super) held_data: Vec<super::validating::HeldData>,
    /// When the last validation probe went to this unvalidated peer (see
    /// [`crate::validation`]).
    pub(super) probe_sent: Option<Instant>,
    /// The instant its live `TimerKey::Probe` entry is set for: the probe is
    /// resent then if something still waits on the proof.
    pub(super) probe_timer: Option<Instant>,
    /// Before this instant a RECV naming none of our messages resends
    /// nothing (see `Endpoint::on_unknown_recv`).
    pub(super) probe_resend_scan: Option<Instant>,
    /// When to resend what a validation probe drew if still unconfirmed,
    /// and the latest transmission it may have drawn (see
    /// `Endpoint::on_unknown_recv`).
    pub(super) probe_resend: Option<(Instant, Instant)>,
    /// The smallest DATA datagram the system refused to send to it as too
    /// large for the path, while believed (see [`super::too_large`]).
    pub(super) too_large: Option<super::too_large::TooLargeFrom>,
    /// Path MTU discovery for the peer, once started (see
    /// [`super::path_mtu`]); boxed, as most peers never need it.
    pub(super) path: Option<Box<super::path_mtu::PeerPath>>,
    pub(super) congestion: Controller,
}

impl Peer {
    pub(super) fn new(config: &Config) -> Self {
        Self {
            stalled_large: None,
            large_bytes_out: 0,
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
            resolved_resends: Default::default(),
            rack_deadline: None,
            last_confirmed: None,
            recv_copies: Default::default(),
            probe_out: false,
            probe_resend_scan: None,
            probe_resend: None,
            last_data_sent: None,
            send_timer: None,
            send_deadline_moved: false,
            queue: VecDeque::new(),
            resends: VecDeque::new(),
            awaiting: 0,
            idle_deadline: None,
            idle_countdowns: 0,
            inbound: false,
            serial: 0,
            probe_sent: None,
            probes: 0,
            probe_timer: None,
            held: smallvec::SmallVec::new(),
            held_data: Vec::new(),
            suspect_until: None,
            suspect_rto_cap: None,
            gone: false,
            too_large: None,
            path: None,
            token: None,
            sent_token: 0,
            stats: PeerStats::default(),
        }
    }

    /// No message to or from the peer is tracked. (The counts come first:
    /// a peer that still awaits ACKs, a server's usual case, is told busy
    /// without the queue.)
    pub(super) fn is_idle(&self) -> bool {
        self.awaiting == 0 && self.in_flight == 0 && self.queue.is_empty()
    }

    pub(super) fn has_window(&self) -> bool {
        self.in_flight < self.congestion.window() as usize
    }

    /// Whether the address must still prove it receives our datagrams
    /// before it gets the full service: it reached us first and has not
    /// answered one of our DATA with RECV or one of our RECVs with ACK.
    pub(super) fn is_unvalidated(&self) -> bool {
        self.inbound && !self.stats.validated
    }

    /// Whether sending `size` more bytes stays within the anti-amplification
    /// budget (every byte counts: RECV, ACK, DATA and probes), keeping room
    /// for one validation probe of `probe_size` bytes, so that a held DATA
    /// can still ask the address to prove itself.
    pub(super) fn may_send(&self, size: usize, probe_size: usize) -> bool {
        self.may_probe(size + probe_size)
    }

    /// Whether `size` more bytes fit the budget at all (for the probe
    /// itself, the last thing the budget allows).
    pub(super) fn may_probe(&self, size: usize) -> bool {
        !self.is_unvalidated()
            || self.stats.bytes_out + size as u64 <= AMPLIFICATION_FACTOR * self.stats.bytes_in
    }

    /// Suspect or gone after an unreachable report (counted in
    /// `Endpoint::flagged_peers`).
    pub(super) fn is_flagged(&self) -> bool {
        self.suspect_until.is_some() || self.gone
    }

    /// Marks the peer validated: it proved it receives our datagrams.
    pub(super) fn validate(&mut self) {
        self.stats.validated = true;
        self.probe_sent = None;
        self.probe_timer = None;
    }

    /// Whether something waits on its proof: DATA it sent, held, or
    /// messages of ours held back for it.
    pub(super) fn awaits_proof(&self) -> bool {
        self.is_unvalidated() && (!self.held_data.is_empty() || !self.held.is_empty())
    }

    /// An unvalidated peer none of whose messages of ours is on the wire
    /// (held back for it or queued beyond its window at most): forgetting it
    /// breaks no promise, as those messages wait for it to prove itself
    /// without it (see `Endpoint::parked`).
    pub(super) fn is_evictable(&self) -> bool {
        self.is_unvalidated() && self.in_flight == self.held.len()
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
    #[inline]
    pub(super) fn retransmission_timeout(&self, transmissions: u32) -> std::time::Duration {
        self.timeouts().after(transmissions)
    }

    /// The inputs of [`retransmission_timeout`](Self::retransmission_timeout).
    pub(super) fn timeouts(&self) -> Timeouts<'_> {
        Timeouts::new(&self.rtt, self.backoff, self.suspect_rto_cap)
    }

    /// A valid RTT sample (Karn's rule satisfied) of `sample_ns`
    /// nanoseconds, taken at `now_ns` (see
    /// [`RttEstimator::on_sample_ns_at`]: one sample per instant is
    /// smoothed in). It ends any backoff.
    #[inline]
    pub(super) fn on_rtt_sample_ns(&mut self, sample_ns: u64, now_ns: u64) {
        self.rtt.on_sample_ns_at(sample_ns, now_ns);
        self.backoff = 0;
    }

    pub(super) fn snapshot(&self) -> PeerStats {
        PeerStats {
            rtt: self.rtt.smoothed(),
            rto: self.rtt.backed_off_rto(self.backoff),
            window: self.congestion.window(),
            in_flight: self.in_flight,
            queued: self.queue.len(),
            path_datagram_size: self.path.as_ref().map(|path| path.mtu.current()),
            ..self.stats
        }
    }
}

/// A peer's RTO and backoff, borrowed field by field (see
/// [`new`](Self::new)) so that timeouts can be computed while the peer's
/// send order is borrowed too.
#[derive(Clone, Copy, Debug)]
pub(super) struct Timeouts<'a> {
    rtt: &'a RttEstimator,
    backoff: u32,
    /// While the peer is suspect (see [`super::unreachable`]): the backed-off
    /// timeout goes no higher than this (nor lower than the RTO without
    /// backoff).
    cap: Option<std::time::Duration>,
}

impl<'a> Timeouts<'a> {
    /// The timeouts of the peer whose RTT estimate, backoff and suspect
    /// cap (`Peer::suspect_rto_cap`) these are.
    pub(super) fn new(
        rtt: &'a RttEstimator,
        backoff: u32,
        cap: Option<std::time::Duration>,
    ) -> Self {
        Self { rtt, backoff, cap }
    }

    /// The timeout after a message's `transmissions`-th transmission.
    #[inline]
    pub(super) fn after(&self, transmissions: u32) -> std::time::Duration {
        std::time::Duration::from_nanos(self.after_ns(transmissions))
    }

    /// [`after`](Self::after) in nanoseconds: the timeouts below take
    /// their larger term in nanoseconds, as the estimate keeps them, and
    /// make one `Duration` of it.
    #[inline]
    fn after_ns(&self, transmissions: u32) -> u64 {
        let doublings = self
            .backoff
            .max(transmissions.saturating_sub(1))
            .min(MAX_BACKOFF);
        // `backed_off_rto(0)` without its multiplication, which costs more
        // than the rest: the usual case, a first transmission and no
        // backoff.
        // (The estimate keeps the RTO within `min_rto..=max_rto`, and a
        // valid configuration has `min_rto <= max_rto`.)
        let unbacked = self.rtt.rto_ns();
        debug_assert!(unbacked <= crate::rtt::nanos(self.rtt.max_rto()));
        let timeout = match doublings {
            0 => unbacked,
            _ => crate::rtt::nanos(self.rtt.backed_off_rto(doublings)),
        };
        match self.cap {
            Some(cap) => timeout.min(crate::rtt::nanos(cap).max(unbacked)),
            None => timeout,
        }
    }

    /// The timeout of a DATA after its `transmissions`-th transmission: as
    /// [`after`](Self::after), but at least two smoothed RTTs, so a queue
    /// building on the path does not fire it before early detection and the
    /// tail-loss probe have had their turn (the RTO is the last resort).
    /// Never above `max_rto`: a sender's retries must end within
    /// [`Config::max_retry_span`](crate::Config::max_retry_span), which
    /// the receiver's `remember_window` covers.
    #[inline]
    pub(super) fn data_after(&self, transmissions: u32) -> std::time::Duration {
        std::time::Duration::from_nanos(
            self.after_ns(transmissions)
                .max(self.rtt.twice_smoothed_ns()),
        )
    }

    /// The timeout of a RECV awaiting its ACK after its `transmissions`-th
    /// transmission: as a DATA's, at least two smoothed RTTs. On a steady
    /// paced path the RTO is a millisecond above the smoothed RTT, so a
    /// queue of two milliseconds made every RECV go out again before its
    /// ACK came; resent, none gave an RTT sample any more (Karn's rule),
    /// the estimate stayed below the path's RTT, and each message drew
    /// two ACKs, whose extra share of the path kept the queue standing
    /// (200 ms / 50 Mbit/s at 2% loss: 30,605 RECVs resent for 40,294
    /// messages, 14% of the bottleneck's datagrams dropped). Nothing waits
    /// on a RECV resent late: a lost RECV's sender finds the loss and
    /// resends the DATA, which is answered at once, sooner than this
    /// timer; a lost ACK only keeps the record a little longer.
    #[inline]
    pub(super) fn recv_after(&self, transmissions: u32) -> std::time::Duration {
        self.data_after(transmissions)
    }
}

#[cfg(test)]
mod tests {
    use super::Peer;
    use crate::stats::PeerStats;
    use std::mem::offset_of;

    /// What every datagram to or from a peer touches, the RTT estimate
    /// included, lies in its first five cache lines, the estimate in one
    /// of them (see [`Peer`]): a field added or moved out of its group
    /// makes a server with many peers take one more cache miss per
    /// datagram.
    #[test]
    fn what_every_datagram_touches_is_together() {
        let stats = offset_of!(Peer, stats);
        let hot = [
            offset_of!(Peer, token),
            offset_of!(Peer, sent_token),
            offset_of!(Peer, serial),
            offset_of!(Peer, awaiting),
            offset_of!(Peer, in_flight),
            offset_of!(Peer, idle_deadline),
            offset_of!(Peer, suspect_until),
            offset_of!(Peer, inbound),
            offset_of!(Peer, recv_copies),
            stats + offset_of!(PeerStats, datagrams_in),
            stats + offset_of!(PeerStats, datagrams_out),
            stats + offset_of!(PeerStats, bytes_in),
            stats + offset_of!(PeerStats, bytes_out),
            stats + offset_of!(PeerStats, received),
            stats + offset_of!(PeerStats, delivered),
            stats + offset_of!(PeerStats, validated),
        ];
        for offset in hot {
            assert!(offset < 5 * 64, "a per-datagram field at byte {offset}");
        }
        let rtt = offset_of!(Peer, rtt);
        assert_eq!(rtt % 64, 0, "the RTT estimate starts a cache line");
        assert!(
            rtt + std::mem::size_of::<crate::rtt::RttEstimator>() <= 5 * 64,
            "the RTT estimate ends past the peer's fifth cache line"
        );
        assert!(offset_of!(Peer, congestion) > rtt, "the controller is last");
    }

    /// An idle check that finds a stale entry (its serial or count differs)
    /// reads the peer's first cache line only, and a live one its first
    /// two; the record starts on a line.
    #[test]
    fn an_idle_check_reads_the_first_lines() {
        assert_eq!(std::mem::align_of::<Peer>(), 64);
        let line = |offset: usize, size: usize| (offset + size - 1) / 64;
        for (field, offset, size) in [
            ("serial", offset_of!(Peer, serial), 8),
            ("idle_countdowns", offset_of!(Peer, idle_countdowns), 4),
            ("awaiting", offset_of!(Peer, awaiting), 8),
            ("in_flight", offset_of!(Peer, in_flight), 8),
            (
                "queue",
                offset_of!(Peer, queue),
                std::mem::size_of::<std::collections::VecDeque<crate::event::MessageId>>(),
            ),
        ] {
            assert_eq!(line(offset, size), 0, "{field} ends past the first line");
        }
        let deadline = offset_of!(Peer, idle_deadline);
        assert_eq!(
            line(deadline, std::mem::size_of::<Option<std::time::Instant>>()),
            1
        );
    }
}
