//! One ordered queue of deadlines for everything that expires.
//!
//! Lazy deletion: rescheduling pushes a new entry and leaves the old one in
//! place; the owner of each deadline remembers the instant it currently
//! wants, and an entry whose instant no longer matches is skipped when
//! popped. Stale entries are purged when they outnumber live ones, which
//! keeps the queue within a constant factor of the number of live timers.
//!
//! # Cost
//!
//! Most deadlines arrive in order within their kind: a RECV's resend is due
//! one RTO after it is sent, a peer's idle countdown a fixed time after it
//! goes idle, and time only moves forward. So each kind of deadline has a
//! FIFO lane, and a deadline no earlier than the last one in its lane is
//! appended there in O(1); only one that would break the lane's order (an
//! RTO that shrank, a peer with a shorter RTT than the last) goes into a
//! binary heap beside the lanes, in O(log n). The earliest entry is the
//! earliest of the lanes' fronts and the heap's top: a constant number of
//! comparisons. A steady stream of messages costs O(1) amortised per
//! deadline, as a timer wheel would, with exact instants.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
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
    /// A received message, by where its sender's messages are kept and its
    /// identity: RECV resend or the end of its duplicate window.
    Received(SocketAddr, Identity),
    /// A peer with no state left, removed when idle long enough.
    PeerIdle(SocketAddr),
    /// An unvalidated peer's validation probe, resent while something
    /// waits on its proof.
    Probe(SocketAddr),
    /// The end of a suspect peer's grace after an unreachable report.
    Unreachable(SocketAddr),
    /// A peer's path MTU discovery: the next search, or a round put off
    /// for lack of room.
    PathMtu(SocketAddr),
    /// The close deadline.
    Drain,
}

impl TimerKey {
    /// The FIFO lane of this kind of deadline.
    fn lane(&self) -> usize {
        match self {
            TimerKey::Message(_) => 0,
            TimerKey::Sender(_) => 1,
            TimerKey::Received(..) => 2,
            TimerKey::PeerIdle(_) => 3,
            TimerKey::Probe(_) => 4,
            TimerKey::Drain => 5,
            TimerKey::Unreachable(_) => 6,
            TimerKey::PathMtu(_) => 7,
        }
    }
}

/// Kinds of deadline, one lane each.
const LANES: usize = 8;

/// Where the earliest entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Lane(usize),
    Heap,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct TimerQueue {
    /// Per kind, entries in deadline order (see the module docs).
    lanes: [VecDeque<(Instant, TimerKey)>; LANES],
    /// Entries that came out of order for their lane.
    heap: BinaryHeap<Reverse<(Instant, TimerKey)>>,
    /// Entries in the lanes and the heap together, kept so that `len`,
    /// asked after every input, reads one word.
    len: usize,
}

impl TimerQueue {
    pub(crate) fn push(&mut self, at: Instant, key: TimerKey) {
        self.len += 1;
        let lane = &mut self.lanes[key.lane()];
        if lane.back().map_or(true, |(last, _)| *last <= at) {
            lane.push_back((at, key));
        } else {
            self.heap.push(Reverse((at, key)));
        }
    }

    /// The earliest entry, live or stale, and where it is.
    fn earliest(&self) -> Option<((Instant, TimerKey), Source)> {
        let mut earliest = self
            .heap
            .peek()
            .map(|Reverse(entry)| (*entry, Source::Heap));
        for (index, lane) in self.lanes.iter().enumerate() {
            if let Some(front) = lane.front() {
                if earliest.map_or(true, |(best, _)| *front < best) {
                    earliest = Some((*front, Source::Lane(index)));
                }
            }
        }
        earliest
    }

    /// The earliest entry, live or stale.
    pub(crate) fn peek(&self) -> Option<(Instant, TimerKey)> {
        self.earliest().map(|(entry, _)| entry)
    }

    /// Removes the earliest entry.
    pub(crate) fn pop(&mut self) -> Option<(Instant, TimerKey)> {
        let entry = match self.earliest()?.1 {
            Source::Heap => self.heap.pop().map(|Reverse(entry)| entry),
            Source::Lane(index) => self.lanes[index].pop_front(),
        };
        self.len -= usize::from(entry.is_some());
        entry
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, TimerKey)> {
        match self.peek() {
            Some((at, _)) if at <= now => self.pop(),
            _ => None,
        }
    }

    pub(crate) fn len(&self) -> usize {
        debug_assert_eq!(
            self.len,
            self.heap.len() + self.lanes.iter().map(VecDeque::len).sum::<usize>()
        );
        self.len
    }

    /// Keeps only the entries for which `is_live` holds.
    pub(crate) fn retain(&mut self, mut is_live: impl FnMut(Instant, TimerKey) -> bool) {
        self.heap.retain(|Reverse((at, key))| is_live(*at, *key));
        for lane in &mut self.lanes {
            lane.retain(|(at, key)| is_live(*at, *key));
        }
        self.len = self.heap.len() + self.lanes.iter().map(VecDeque::len).sum::<usize>();
    }

    pub(crate) fn clear(&mut self) {
        self.heap.clear();
        self.lanes.iter_mut().for_each(VecDeque::clear);
        self.len = 0;
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
            TimerKey::Message(MessageId::for_test(1)),
        );
        timers.push(
            start + Duration::from_secs(2),
            TimerKey::Message(MessageId::for_test(2)),
        );
        assert_eq!(timers.pop_due(start), None);
        let due = start + Duration::from_secs(2);
        assert_eq!(
            timers.pop_due(due).map(|e| e.1),
            Some(TimerKey::Message(MessageId::for_test(1)))
        );
        assert_eq!(
            timers.pop_due(due).map(|e| e.1),
            Some(TimerKey::Message(MessageId::for_test(2)))
        );
        assert_eq!(timers.pop_due(due), None);
        assert_eq!(timers.len(), 1);
    }

    proptest::proptest! {
        /// Whatever order deadlines come in, entries leave in deadline
        /// order, each once: as from one binary heap.
        #[test]
        fn pops_as_a_heap_would(pushes in proptest::collection::vec((0u64..50, 0u8..7, 0u64..4), 0..200)) {
            let start = Instant::now();
            let mut timers = TimerQueue::default();
            let mut reference = Vec::new();
            let key = |kind: u8, n: u64| match kind {
                0 => TimerKey::Message(MessageId::for_test(n)),
                1 => TimerKey::Sender(([10, 0, 0, n as u8], 1).into()),
                2 => TimerKey::Received(([10, 0, 0, 1], 1).into(), crate::wire::Identity::from_u32(n as u32)),
                3 => TimerKey::PeerIdle(([10, 0, 0, n as u8], 1).into()),
                4 => TimerKey::Probe(([10, 0, 0, n as u8], 1).into()),
                5 => TimerKey::Unreachable(([10, 0, 0, n as u8], 1).into()),
                _ => TimerKey::Drain,
            };
            // Interleave pushes and pops, as the endpoint does.
            for (i, (ms, kind, n)) in pushes.iter().enumerate() {
                let at = start + Duration::from_millis(*ms);
                timers.push(at, key(*kind, *n));
                reference.push(at);
                if i % 7 == 6 {
                    reference.sort();
                    let expected = reference.remove(0);
                    let popped = timers.pop().map(|(at, _)| at);
                    proptest::prop_assert_eq!(popped, Some(expected));
                }
            }
            reference.sort();
            proptest::prop_assert_eq!(timers.len(), reference.len());
            for expected in reference {
                proptest::prop_assert_eq!(timers.peek().map(|(at, _)| at), Some(expected));
                proptest::prop_assert_eq!(timers.pop().map(|(at, _)| at), Some(expected));
            }
            proptest::prop_assert_eq!(timers.pop(), None);
        }
    }
}
