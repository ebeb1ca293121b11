//! Sending each RECV twice when the path back loses RECVs.
//!
//! A RECV names one identity and nothing else (the original's wire format),
//! so a lost RECV costs its sender a whole DATA resent, and a round trip or
//! more of the message's latency. QUIC does not pay that: every ACK frame
//! repeats the ranges before it, so one lost ACK costs nothing. A gtudp
//! receiver gets the same robustness the only way its wire allows: it sends
//! the RECV twice, back to back, once the RECVs it loses cost more than the
//! copies would.
//!
//! **Receiver.** [`RecvCopies`] counts, per peer, the new messages taken and
//! the repeats that show a RECV lost: a copy of an awaited message that
//! comes at least half a minimum round trip after its RECV went out, or
//! after we resent the RECV for want of its ACK. Its
//! sender resent it a round trip or so after the first copy, for want of
//! the RECV; the network's own duplicates come with the first copy. (A
//! copy the sender resent because a reordering delayed the first one may
//! pass too: its RECV was not lost, only late, and the count errs towards
//! copies, which cost a RECV each.) From those it estimates the share `p` of RECVs lost.
//! A lost RECV costs one DATA datagram of the mean size received on the
//! path the data flows on, and a round trip or more of that message's
//! latency; a copy costs one RECV datagram on the path back, which carries
//! little else. Copies start when `p × DATA × 4 > RECV`
//! ([`FORWARD_WEIGHT`]: about 0.7% for full-size datagrams, about 9% for
//! 64-byte messages). While copies go out, a repeat needs both RECVs lost,
//! so the rate seen is `p²`; they stop when `p` so estimated falls under
//! half the threshold. The decision is taken every [`WINDOW`] new
//! messages, each time halving the counts, so the estimate follows the path
//! without flapping on a chance run of losses.
//!
//! **Sender.** The second RECV of a pair would draw a second ACK, crossing
//! the forward path for nothing, and could pass for the answer to a resent
//! copy (the spurious-retransmission test of [`super::spurious`]). A peer
//! remembers the identity it last confirmed and when; a RECV naming it
//! within half a minimum round trip is that copy, and is counted and dropped.
//! A RECV the receiver resent on its timer, because our ACK was lost, comes
//! at least a retransmission timeout later, and is answered as before.

use std::time::{Duration, Instant};

use crate::wire::Identity;

/// New messages between two decisions, each of which halves the counts:
/// long enough that a 1% loss does not pass for 3% by chance.
pub(super) const WINDOW: u32 = 1_024;

/// What one lost RECV adds to `lost`: a fraction survives the halvings,
/// so that a single loss of both copies keeps them on for a few windows.
const ONE_LOSS: u64 = 16;

/// IPv4 and UDP headers: what every datagram costs on the wire beyond its
/// payload.
const DATAGRAM_OVERHEAD: u64 = 28;

/// How much more a byte on the path the data flows on is worth than a
/// byte on the path back, in deciding on copies. The data's path is the
/// one that fills (its DATA are large and many), the path back carries
/// RECVs only; and a lost RECV also costs its message a round trip or more.
/// Weighing bytes alike (1) started copies only above about 2.5% loss for
/// full-size datagrams: at 1% loss each way on a 50 ms path with a 5 ms
/// queue, the lost RECVs' resends made the retransmit ratio 1.029-1.034
/// (seeds 1-4); with 4, 1.023-1.025, utilization 0.891-0.893 → 0.894-0.898.
const FORWARD_WEIGHT: u64 = 4;

/// One peer's estimate of the RECVs its path back loses, and whether its
/// RECVs go out twice.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct RecvCopies {
    /// New messages taken from the peer (decayed).
    taken: u32,
    /// Repeats that came a round trip after their RECV, in units of
    /// [`ONE_LOSS`] (decayed).
    lost: u64,
    /// Bytes of the DATA datagrams counted in `taken`.
    data_bytes: u64,
    /// Each RECV to the peer goes out twice.
    on: bool,
}

impl RecvCopies {
    /// Whether each RECV to the peer goes out twice.
    pub(super) fn on(&self) -> bool {
        self.on
    }

    /// A new message of `size` bytes (its DATA datagram) was taken.
    pub(super) fn on_taken(&mut self, size: usize, recv_size: usize) {
        self.taken += 1;
        self.data_bytes += size as u64;
        if self.taken >= WINDOW {
            self.decide(recv_size);
            self.taken /= 2;
            self.lost /= 2;
            self.data_bytes /= 2;
        }
    }

    /// A repeat of an awaited message came `since_recv` after the last of
    /// its `recv_sent` RECVs went out, on a path whose minimum round trip
    /// is `min_rtt`. (Not a whole round trip: the first copy may have
    /// waited in a queue that the resent one found empty. And once the
    /// RECV was resent on our timer, for want of its ACK, the repeat shows
    /// the loss whenever it comes.)
    pub(super) fn on_repeat(&mut self, since_recv: Duration, recv_sent: u32, min_rtt: Duration) {
        if since_recv >= min_rtt / 2 || recv_sent > 1 {
            self.lost += ONE_LOSS;
        }
    }

    /// Sets `on` from the counts: see the module's documentation.
    fn decide(&mut self, recv_size: usize) {
        let Some(mean) = self.data_bytes.checked_div(u64::from(self.taken)) else {
            return;
        };
        // The mean DATA datagram (weighed) and a RECV, on the wire.
        let data = (mean + DATAGRAM_OVERHEAD) * FORWARD_WEIGHT;
        let recv = recv_size as u64 + DATAGRAM_OVERHEAD;
        let taken = u64::from(self.taken) * ONE_LOSS;
        let lost = self.lost;
        self.on = if self.on {
            // The rate seen is p²; keep on while p × data ≥ recv / 2, that
            // is p² × data² × 4 ≥ recv².
            lost.saturating_mul(data * data).saturating_mul(4) >= taken.saturating_mul(recv * recv)
        } else {
            lost.saturating_mul(data) > taken.saturating_mul(recv)
        };
    }
}

/// The last message a peer's RECV confirmed, to recognise the RECV's copy.
#[derive(Clone, Copy, Debug)]
pub(super) struct LastConfirmed {
    pub(super) identity: Identity,
    pub(super) at: Instant,
}

impl LastConfirmed {
    /// Whether a RECV naming `identity` at `now` is the copy of the one
    /// that confirmed this message: within half the path's minimum round
    /// trip (a RECV resent on the receiver's timer comes a retransmission
    /// timeout later, never that soon).
    pub(super) fn is_copy(&self, identity: Identity, now: Instant, min_rtt: Duration) -> bool {
        self.identity == identity && now.saturating_duration_since(self.at) < min_rtt / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A framing header of 5 bytes: the original's RECV.
    const RECV: usize = 5;
    const RTT: Duration = Duration::from_millis(20);

    /// Takes `count` messages of `size` bytes, of which every `every`-th
    /// draws a repeat a round trip after its RECV.
    fn run(copies: &mut RecvCopies, count: u32, size: usize, every: u32) {
        for i in 1..=count {
            copies.on_taken(size, RECV);
            if every > 0 && i % every == 0 {
                copies.on_repeat(RTT * 9 / 10, 1, RTT);
            }
        }
    }

    #[test]
    fn copies_start_when_lost_recvs_cost_more_than_copies() {
        let mut copies = RecvCopies::default();
        // 0.5% of RECVs lost on full-size DATA: 0.005 × 1,480 × 4 < 33.
        run(&mut copies, 4_000, 1_452, 200);
        assert!(!copies.on());
        // 1%: 0.01 × 1,480 × 4 > 33.
        run(&mut copies, 4_000, 1_452, 100);
        assert!(copies.on());
    }

    #[test]
    fn small_messages_earn_copies_only_at_a_higher_loss() {
        let mut copies = RecvCopies::default();
        // 5% on 64-byte messages: 0.05 × 92 × 4 < 33.
        run(&mut copies, 4_000, 64, 20);
        assert!(!copies.on());
        // 12.5%: 0.125 × 92 × 4 > 33.
        run(&mut copies, 4_000, 64, 8);
        assert!(copies.on());
    }

    #[test]
    fn copies_hold_while_pairs_are_lost_and_stop_on_a_clean_path() {
        let mut copies = RecvCopies::default();
        run(&mut copies, 3_000, 1_452, 10);
        assert!(copies.on());
        // With copies on at 10% loss, 1% of pairs are both lost: p = 0.1
        // still earns them.
        run(&mut copies, 4_000, 1_452, 100);
        assert!(copies.on());
        // The path heals: copies stop once the losses seen have decayed
        // under half the threshold (a few windows).
        run(&mut copies, 10_000, 1_452, 0);
        assert!(!copies.on());
    }

    #[test]
    fn repeats_sooner_than_a_round_trip_prove_nothing() {
        let mut copies = RecvCopies::default();
        for _ in 0..1_000 {
            copies.on_taken(1_452, RECV);
            // The network's duplicate, or a copy resent for reordering.
            copies.on_repeat(RTT / 8, 1, RTT);
        }
        assert!(!copies.on());
    }

    #[test]
    fn only_a_recv_within_half_a_round_trip_is_the_copy() {
        let at = Instant::now();
        let last = LastConfirmed {
            identity: Identity::from_u32(7),
            at,
        };
        assert!(last.is_copy(Identity::from_u32(7), at + RTT / 4, RTT));
        assert!(!last.is_copy(Identity::from_u32(8), at + RTT / 4, RTT));
        // The receiver's own resend, after our ACK was lost.
        assert!(!last.is_copy(Identity::from_u32(7), at + RTT, RTT));
    }
}
