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

use crate::endpoint::AwaitingId;
use crate::event::MessageId;

/// What a deadline belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum TimerKey {
    /// A sent message's deadline.
    Message(MessageId),
    /// One peer's send side: loss detection (reordering window, tail-loss
    /// probe, retransmission timeout) and the pacer. One live entry per
    /// peer, whatever it has in flight.
    Sender(SocketAddr),
    /// A received message awaiting its ACK, by its record: RECV resend, or
    /// the end of its attempts.
    Received(AwaitingId),
    /// The earliest deadline in the queue of idle peers (see
    /// `Endpoint::idle_peers`): one entry for them all, since they go idle
    /// in the order their deadlines come.
    IdlePeers,
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
            TimerKey::IdlePeers => 3,
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
    // Inlined: each caller's key is of one kind, so its lane is known.
    #[inline]
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

    /// Removes the entry `(at, key)` if it is the front of its lane, as
    /// when its owner ends in the order its deadlines were set; says
    /// whether it did. Elsewhere the entry stays, stale, until a purge or
    /// its turn.
    ///
    /// Like a purge, this may empty a lane, and the lane's last entry
    /// decides whether the next deadline goes to the lane or the heap:
    /// which of several deadlines due at one instant fires first may then
    /// differ from a queue that kept the stale entry. Nothing depends on
    /// that order (it already varied with when purges ran).
    // Inlined: the caller's key is of one kind, so its lane is known and
    // the comparison is of that kind's fields alone.
    #[inline]
    pub(crate) fn remove_if_front(&mut self, at: Instant, key: TimerKey) -> bool {
        let lane = &mut self.lanes[key.lane()];
        if lane.front() != Some(&(at, key)) {
            return false;
        }
        lane.pop_front();
        self.len -= 1;
        true
    }

    /// Removes the entries for which `is_live` fails from the front of
    /// each lane and from the top of the heap, up to the first live one in
    /// each; returns how many went.
    ///
    /// Deadlines of one kind go stale in about the order they were set (a
    /// message resolved, a RECV acknowledged, a round trip or so after it
    /// was sent), so stale entries gather at the lanes' fronts: this finds
    /// them with one look each, without walking the live entries behind
    /// them as [`retain`](Self::retain) does.
    pub(crate) fn drop_stale_fronts(
        &mut self,
        mut is_live: impl FnMut(Instant, TimerKey) -> bool,
    ) -> usize {
        let before = self.len;
        while let Some(Reverse((at, key))) = self.heap.peek() {
            if is_live(*at, *key) {
                break;
            }
            self.heap.pop();
            self.len -= 1;
        }
        for lane in &mut self.lanes {
            while let Some((at, key)) = lane.front() {
                if is_live(*at, *key) {
                    break;
                }
                lane.pop_front();
                self.len -= 1;
            }
        }
        before - self.len
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

    #[test]
    fn only_a_lane_front_is_removed_in_place() {
        let start = Instant::now();
        let mut timers = TimerQueue::default();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let message = |n: u64| TimerKey::Message(MessageId::for_test(n));
        for n in 0..3 {
            timers.push(at(n), message(n));
        }
        // Not the front, or not the instant of the entry: it stays.
        assert!(!timers.remove_if_front(at(1), message(1)));
        assert!(!timers.remove_if_front(at(1), message(0)));
        assert_eq!(timers.len(), 3);
        assert!(timers.remove_if_front(at(0), message(0)));
        assert!(timers.remove_if_front(at(1), message(1)));
        assert_eq!(timers.len(), 1);
        assert_eq!(timers.pop(), Some((at(2), message(2))));
        assert_eq!(timers.pop(), None);
    }

    #[test]
    fn stale_fronts_go_and_the_first_live_entry_stops_them() {
        let start = Instant::now();
        let mut timers = TimerQueue::default();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let message = |n: u64| TimerKey::Message(MessageId::for_test(n));
        for n in 0..6 {
            timers.push(at(n), message(n));
        }
        timers.push(at(10), TimerKey::Drain);
        // 0, 1 and 3 are stale: 0 and 1 lead their lane, 3 sits behind
        // the live 2. Drain is stale and alone in its lane.
        let stale = |key: TimerKey| key == TimerKey::Drain || [0, 1, 3].map(message).contains(&key);
        assert_eq!(timers.drop_stale_fronts(|_, key| !stale(key)), 3);
        assert_eq!(timers.len(), 4);
        let left: Vec<_> = std::iter::from_fn(|| timers.pop().map(|(_, key)| key)).collect();
        assert_eq!(left, [2, 3, 4, 5].map(message));
    }

    proptest::proptest! {
        /// Dropping stale fronts never drops a live entry, and what stays
        /// leaves in deadline order as before.
        #[test]
        fn dropping_stale_fronts_keeps_every_live_entry(
            pushes in proptest::collection::vec((0u64..50, 0u8..3, 0u64..40, proptest::bool::ANY), 0..200)
        ) {
            let start = Instant::now();
            let mut timers = TimerQueue::default();
            let mut live = std::collections::HashSet::new();
            let mut reference = Vec::new();
            for (ms, kind, n, is_live) in &pushes {
                let at = start + Duration::from_millis(*ms);
                let key = match kind {
                    0 => TimerKey::Message(MessageId::for_test(*n)),
                    1 => TimerKey::Received(AwaitingId::for_test(*n)),
                    _ => TimerKey::Probe(([10, 0, 0, *n as u8], 1).into()),
                };
                timers.push(at, key);
                if *is_live {
                    live.insert((at, key));
                }
                reference.push((at, key));
            }
            let dropped = timers.drop_stale_fronts(|at, key| live.contains(&(at, key)));
            proptest::prop_assert_eq!(timers.len(), reference.len() - dropped);
            let mut left = Vec::new();
            while let Some(entry) = timers.pop() {
                left.push(entry);
            }
            proptest::prop_assert!(left.windows(2).all(|w| w[0].0 <= w[1].0));
            for entry in &live {
                proptest::prop_assert!(left.contains(entry));
            }
        }
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
                2 => TimerKey::Received(AwaitingId::for_test(n)),
                3 => TimerKey::IdlePeers,
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
