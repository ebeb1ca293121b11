//! Telling a spurious retransmission from a needed one, when the RECV does
//! not say which copy it answers (the Eifel problem, RFC 3522).
//!
//! Two tests, the first at the RECV, the second at a later one:
//!
//! 1. **Too soon** (Eifel's timing test): a RECV that comes back sooner
//!    after the retransmission than the minimum RTT answers an earlier copy.
//! 2. **Both copies arrived** (what a DSACK tells TCP): the receiver answers
//!    every copy of a message with a RECV, so a message resent once that was
//!    only late draws two. A second RECV is spurious evidence when each of
//!    the two came back within a plausible RTT of the copy it would
//!    answer: the first of the copy before the retransmission, the second
//!    of the retransmission. A RECV the receiver resent on its own timer,
//!    because the first was lost, comes back too late after the earlier
//!    copy to pass: the receiver waits at least the larger of its RTO and
//!    two smoothed RTTs before it resends, and the round trip adds to it,
//!    so that is plausible for a message sent twice (the copy before the
//!    retransmission is its first); sent more often, the RECV may answer
//!    an older copy, and only the RTO is.
//!
//! For the second test, each peer keeps its last few messages resolved after
//! a retransmission, in a fixed ring: allocated once, with the peer's first
//! such message (most peers never resend, and the ring would triple the
//! size of what the endpoint touches per peer), and an entry a later one
//! overwrites merely goes untested.

use std::time::{Duration, Instant};

use crate::wire::Identity;

/// Messages resolved after a retransmission that one peer remembers.
const REMEMBERED: usize = 16;

/// A message confirmed after it was resent for a presumed loss.
#[derive(Clone, Copy, Debug)]
pub(super) struct ResolvedResend {
    pub(super) identity: Identity,
    /// The transmission before the last.
    pub(super) previous_sent: Instant,
    /// The last transmission.
    pub(super) last_sent: Instant,
    /// When its first RECV came.
    pub(super) confirmed: Instant,
    /// Early loss detection resent it (so the reordering window was too
    /// narrow, if it proves spurious).
    pub(super) early: bool,
    /// It was sent twice: `previous_sent` is its first transmission.
    pub(super) twice: bool,
}

impl ResolvedResend {
    /// A second RECV for it came at `now`: whether both came back within
    /// `plausible` of the copy each answers.
    pub(super) fn both_copies_arrived(&self, now: Instant, plausible: Duration) -> bool {
        self.confirmed.saturating_duration_since(self.previous_sent) <= plausible
            && now.saturating_duration_since(self.last_sent) <= plausible
    }
}

/// The last [`REMEMBERED`] messages resolved after a retransmission.
#[derive(Clone, Debug, Default)]
pub(super) struct ResolvedResends {
    /// Allocated with the first entry.
    ring: Option<Box<[Option<ResolvedResend>; REMEMBERED]>>,
    next: usize,
}

impl ResolvedResends {
    pub(super) fn record(&mut self, resend: ResolvedResend) {
        let ring = self
            .ring
            .get_or_insert_with(|| Box::new([None; REMEMBERED]));
        ring[self.next] = Some(resend);
        self.next = (self.next + 1) % REMEMBERED;
    }

    /// Takes the entry for `identity`, if still remembered.
    pub(super) fn take(&mut self, identity: Identity) -> Option<ResolvedResend> {
        self.ring
            .as_mut()?
            .iter_mut()
            .find(|entry| entry.is_some_and(|resend| resend.identity == identity))?
            .take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RTT: Duration = Duration::from_millis(20);

    fn resend(identity: u32, start: Instant, confirmed_after: Duration) -> ResolvedResend {
        ResolvedResend {
            identity: Identity::from_u32(identity),
            previous_sent: start,
            last_sent: start + RTT * 5 / 4,
            confirmed: start + confirmed_after,
            early: true,
            twice: true,
        }
    }

    #[test]
    fn both_copies_arrived_only_when_each_recv_is_plausible() {
        let start = Instant::now();
        let plausible = RTT * 3 / 2;
        // The original was late (RTT 1.4) and answered first; the resend's
        // RECV follows one RTT after the resend.
        let late = resend(1, start, RTT * 7 / 5);
        assert!(late.both_copies_arrived(late.last_sent + RTT, plausible));
        // The first RECV came 2.25 RTTs after the original: it answered
        // the resend (the original, or its RECV, was lost), and a second
        // RECV is the receiver's own resend.
        let lost = resend(2, start, RTT * 9 / 4);
        assert!(!lost.both_copies_arrived(lost.last_sent + RTT * 2, plausible));
    }

    #[test]
    fn the_ring_forgets_the_oldest() {
        let start = Instant::now();
        let mut ring = ResolvedResends::default();
        for identity in 0..(REMEMBERED as u32 + 1) {
            ring.record(resend(identity, start, RTT));
        }
        assert!(ring.take(Identity::from_u32(0)).is_none());
        assert!(ring.take(Identity::from_u32(1)).is_some());
        assert!(ring.take(Identity::from_u32(1)).is_none(), "taken once");
    }
}
