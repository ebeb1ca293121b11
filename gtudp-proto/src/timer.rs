//! One ordered queue of deadlines for everything that expires.
//!
//! A binary heap with lazy deletion: rescheduling pushes a new entry and
//! leaves the old one in place; the owner of each deadline remembers the
//! instant it currently wants, and an entry whose instant no longer matches is
//! skipped when popped. Push and pop are O(log n); stale entries are purged
//! when they outnumber live ones, which keeps the heap within a constant factor
//! of the number of live timers.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::time::Instant;

use crate::event::MessageId;
use crate::wire::Identity;

/// What a deadline belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum TimerKey {
    /// A sent message's deadline.
    Message(MessageId),
    /// One peer's send side: loss detection (reordering window, tail-loss
    /// probe, retransmission timeout) and the pacer. One live entry per
    /// peer, whatever it has in flight.
    Sender(SocketAddr),
    /// A received message: RECV resend or the end of its duplicate window.
    Received(SocketAddr, Identity),
    /// A peer with no state left, removed when idle long enough.
    PeerIdle(SocketAddr),
    /// An unvalidated peer's validation probe, resent while something
    /// waits on its proof.
    Probe(SocketAddr),
    /// The end of a suspect peer's grace after an unreachable report.
    Unreachable(SocketAddr),
    /// The close deadline.
    Drain,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct TimerQueue {
    heap: BinaryHeap<Reverse<(Instant, TimerKey)>>,
}

impl TimerQueue {
    pub(crate) fn push(&mut self, at: Instant, key: TimerKey) {
        self.heap.push(Reverse((at, key)));
    }

    /// The earliest entry, live or stale.
    pub(crate) fn peek(&self) -> Option<(Instant, TimerKey)> {
        self.heap.peek().map(|Reverse(entry)| *entry)
    }

    /// Removes the earliest entry.
    pub(crate) fn pop(&mut self) -> Option<(Instant, TimerKey)> {
        self.heap.pop().map(|Reverse(entry)| entry)
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, TimerKey)> {
        match self.peek() {
            Some((at, _)) if at <= now => self.pop(),
            _ => None,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Keeps only the entries for which `is_live` holds.
    pub(crate) fn retain(&mut self, mut is_live: impl FnMut(Instant, TimerKey) -> bool) {
        self.heap.retain(|Reverse((at, key))| is_live(*at, *key));
    }

    pub(crate) fn clear(&mut self) {
        self.heap.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_in_deadline_order_and_only_when_due() {
        let start = Instant::now();
        let mut timers = TimerQueue::default();
        timers.push(start + Duration::from_secs(3), TimerKey::Drain);
        timers.push(
            start + Duration::from_secs(1),
            TimerKey::Message(MessageId(1)),
        );
        timers.push(
            start + Duration::from_secs(2),
            TimerKey::Message(MessageId(2)),
        );
        assert_eq!(timers.pop_due(start), None);
        let due = start + Duration::from_secs(2);
        assert_eq!(
            timers.pop_due(due).map(|e| e.1),
            Some(TimerKey::Message(MessageId(1)))
        );
        assert_eq!(
            timers.pop_due(due).map(|e| e.1),
            Some(TimerKey::Message(MessageId(2)))
        );
        assert_eq!(timers.pop_due(due), None);
        assert_eq!(timers.len(), 1);
    }
}
