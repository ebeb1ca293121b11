//! Sending each RECV more than once when the path back loses RECVs.
//!
//! A RECV names one identity and nothing else (the original's wire format),
//! so a lost RECV costs its sender a whole DATA resent, and a round trip or
//! more of the message's latency. QUIC does not pay that: every ACK frame
//! repeats the ranges before it, so one lost ACK costs nothing. A gtudp
//! receiver gets the same robustness the only way its wire allows: it sends
//! the RECV two to [`MAX_SENDS`] times, back to back, as many as cost least
//! for the RECVs it loses.
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
//! little else. Sending each RECV `n` times costs `n × RECV + pⁿ × DATA × 4`
//! ([`FORWARD_WEIGHT`]) a message. The count goes up by one when that makes
//! the cost less (a second RECV from about 0.7% loss for full-size
//! datagrams, about 10% for 64-byte messages; a third from about 8%, a
//! fourth from about 19%, for full-size ones), and down by one when one
//! fewer would cost less by more than half a RECV, so it does not flap at
//! a threshold (for the second RECV: once `p × DATA × 4` falls under half
//! a RECV). While `n` RECVs go out, a repeat needs all `n`
//! lost, so the rate seen is `pⁿ`, from which `p` is estimated. The
//! decision is taken every [`WINDOW`] new messages, each time halving the
//! counts, so the estimate follows the path without flapping on a chance
//! run of losses.
//!
//! **Sender.** A RECV's copy would draw a second ACK, crossing
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

/// The most times one RECV goes out (the RECV and its copies). At 30% loss
/// each way four cost least for full-size datagrams (a fifth saves less
/// than it costs).
pub(super) const MAX_SENDS: u8 = 4;

/// One peer's estimate of the RECVs its path back loses, and how many
/// copies of each RECV go out.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct RecvCopies {
    /// New messages taken from the peer (decayed).
    taken: u32,
    /// Repeats that came a round trip after their RECV, in units of
    /// [`ONE_LOSS`] (decayed).
    lost: u64,
    /// Bytes of the DATA datagrams counted in `taken`.
    data_bytes: u64,
    /// Copies of each RECV to the peer, beside the RECV itself (0 to
    /// `MAX_SENDS - 1`).
    copies: u8,
}

impl RecvCopies {
    /// Copies of each RECV to the peer, sent right after it.
    pub(super) fn copies(&self) -> u8 {
        self.copies
    }

    /// A new message of `size` bytes (its DATA datagram) was taken
    /// (inlined: counted for every message, decided once a window).
    #[inline]
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

    /// Sets the copies from the counts: see the module's documentation.
    #[inline(never)]
    fn decide(&mut self, recv_size: usize) {
        let Some(mean) = self.data_bytes.checked_div(u64::from(self.taken)) else {
            return;
        };
        // The mean DATA datagram (weighed) and a RECV, on the wire.
        let data = ((mean + DATAGRAM_OVERHEAD) * FORWARD_WEIGHT) as f64;
        let recv = (recv_size as u64 + DATAGRAM_OVERHEAD) as f64;
        // The share of messages whose every RECV was lost: pⁿ.
        let all_lost = self.lost as f64 / (f64::from(self.taken) * ONE_LOSS as f64);
        let sends = i32::from(self.copies) + 1;
        let p = all_lost.min(1.0).powf(1.0 / f64::from(sends));
        let cost = |n: i32| f64::from(n) * recv + p.powi(n) * data;
        let next = if sends < i32::from(MAX_SENDS) && cost(sends + 1) < cost(sends) {
            sends + 1
        } else if sends > 1 && cost(sends - 1) + recv / 2.0 < cost(sends) {
            sends - 1
        } else {
            return;
        };
        self.copies = u8::try_from(next - 1).unwrap_or(0);
        // The counts so far were seen at the old number of RECVs: restate
        // them at the new one (what this `p` gives), or the next decision
        // would read the old, higher rate of losses as `pⁿ` and step again.
        let units = f64::from(self.taken) * ONE_LOSS as f64;
        self.lost = (units * p.powi(next)).round() as u64;
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

    /// Takes `count` messages of `size` bytes over a path back that loses a
    /// share `p` of RECVs: a message draws a repeat (a round trip after its
    /// RECV) when every RECV sent for it is lost, which happens to a share
    /// `pⁿ` of messages while `n` RECVs go out, spread evenly.
    fn run(copies: &mut RecvCopies, count: u32, size: usize, p: f64) {
        let mut owed = 0.0;
        for _ in 0..count {
            let sends = i32::from(copies.copies()) + 1;
            copies.on_taken(size, RECV);
            owed += p.powi(sends);
            if owed >= 1.0 {
                owed -= 1.0;
                copies.on_repeat(RTT * 9 / 10, 1, RTT);
            }
        }
    }

    #[test]
    fn copies_start_when_lost_recvs_cost_more_than_copies() {
        let mut copies = RecvCopies::default();
        // 0.5% of RECVs lost on full-size DATA: 0.005 × 1,480 × 4 < 33.
        run(&mut copies, 4_000, 1_452, 0.005);
        assert_eq!(copies.copies(), 0);
        // 1%: 0.01 × 1,480 × 4 > 33.
        run(&mut copies, 4_000, 1_452, 0.01);
        assert_eq!(copies.copies(), 1);
    }

    #[test]
    fn small_messages_earn_copies_only_at_a_higher_loss() {
        let mut copies = RecvCopies::default();
        // 5% on 64-byte messages: 0.05 × 92 × 4 < 33.
        run(&mut copies, 4_000, 64, 0.05);
        assert_eq!(copies.copies(), 0);
        // 12.5%: 0.125 × 92 × 4 > 33.
        run(&mut copies, 4_000, 64, 0.125);
        assert_eq!(copies.copies(), 1);
    }

    #[test]
    fn more_copies_as_the_loss_grows_and_none_on_a_clean_path() {
        let mut copies = RecvCopies::default();
        // Full-size DATA at 2%: a copy pays, a second does not.
        run(&mut copies, 8_000, 1_452, 0.02);
        assert_eq!(copies.copies(), 1);
        // At 10%, three RECVs cost least (33 × 3 + 0.001 × 5,920 against
        // 33 × 2 + 0.01 × 5,920); at 30%, four.
        run(&mut copies, 8_000, 1_452, 0.1);
        assert_eq!(copies.copies(), 2);
        run(&mut copies, 8_000, 1_452, 0.3);
        assert_eq!(copies.copies(), 3);
        // Never more than `MAX_SENDS`, however bad the path.
        run(&mut copies, 8_000, 1_452, 0.6);
        assert_eq!(copies.copies(), MAX_SENDS - 1);
        // The path heals: copies stop once the losses seen have decayed
        // (a few windows a step).
        run(&mut copies, 40_000, 1_452, 0.0);
        assert_eq!(copies.copies(), 0);
    }

    #[test]
    fn repeats_sooner_than_a_round_trip_prove_nothing() {
        let mut copies = RecvCopies::default();
        for _ in 0..1_000 {
            copies.on_taken(1_452, RECV);
            // The network's duplicate, or a copy resent for reordering.
            copies.on_repeat(RTT / 8, 1, RTT);
        }
        assert_eq!(copies.copies(), 0);
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
