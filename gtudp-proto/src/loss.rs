//! Loss detection over one peer's send order, in the spirit of RACK-TLP
//! (RFC 8985).
//!
//! Every DATA transmission to a peer is appended to its [`SendOrder`] with a
//! sequence number. A message is presumed lost once a message sent after
//! it was confirmed and a reordering window has passed: time-based, so a
//! burst of reordered datagrams is not taken for loss, and a lost
//! retransmission is found like any other.
//!
//! The window learns the path's reordering. It starts at a quarter of the
//! minimum RTT (at least a millisecond). Whenever a message sent once is
//! confirmed after one sent later, the path reordered them, and by how much
//! is known: its RTT beyond the later one's. The window widens at once to
//! cover that lateness with an eighth to spare (RACK's reordering_seen,
//! measured in time as Linux measures its reordering degree in packets).
//! A retransmission that proves spurious, its first copy answered within a
//! plausible RTT, teaches the same. Lateness that a lost RECV resent by the
//! receiver could also explain widens it up to the smoothed RTT (RFC 8985's
//! bound); certain reordering, shorter than that by construction, as far as
//! it was seen: the RTT estimate cannot bound it, since Karn's rule keeps
//! exactly the late messages out of it. See [`ReorderWindow`]. After sixteen
//! rounds without reordering that wide it narrows by a quarter. When nothing is confirmed for
//! about two round trips, a tail-loss probe resends the newest message, so
//! the last messages of a burst do not wait for the retransmission timeout,
//! which stays the last resort.
//!
//! The order holds entries in transmission order, so every deadline it
//! yields comes from its front or from the latest confirmed entry: O(1) per
//! transmission, no timer entry per message. Entries of messages resolved or
//! sent again stay in place (the owner says which are live) and are dropped
//! when they reach the front, or by [`SendOrder::retain`] once they
//! outnumber the live ones.

use std::time::{Duration, Instant};

use crate::event::MessageId;

/// Clean rounds after which a widened reordering window narrows by a
/// quarter.
const CLEAN_ROUNDS_TO_NARROW: u32 = 16;

/// The most a window learns: the longest RTO.
const MAX_LEARNED: Duration = Duration::from_secs(60);

/// The narrowest reordering window: below a millisecond, scheduling
/// jitter (loopback, a busy host) reorders more than the path does.
const MIN_REORDER_WINDOW: Duration = Duration::from_millis(1);

/// The shortest tail-loss probe timeout.
const MIN_PROBE_TIMEOUT: Duration = Duration::from_millis(2);

/// What the owner knows of the message behind an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// The message was resolved, or sent again since (a later entry).
    Stale,
    /// The entry is the message's latest transmission, still unconfirmed.
    Live,
    /// As `Live`, but the message has no attempt left: it is not resent
    /// early, only failed at its retransmission timeout.
    LastAttempt,
}

/// One DATA transmission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sent {
    pub(crate) id: MessageId,
    /// Position in the peer's send order.
    pub(crate) seq: u64,
    pub(crate) at: Instant,
}

/// Every DATA transmission to one peer, oldest first.
#[derive(Clone, Debug, Default)]
pub(crate) struct SendOrder {
    entries: Entries,
    next_seq: u64,
}

/// The transmissions of a [`SendOrder`], oldest first: a `Vec` and the
/// index of its front. A transmission is pushed on every DATA, and
/// `Vec::push` is inlined with its growth out of line, where
/// `VecDeque::push_back` is a call; the entries dropped from the front are
/// reclaimed at once when none is left, or when they outnumber the rest.
#[derive(Clone, Debug, Default)]
struct Entries {
    items: Vec<Sent>,
    /// Index in `items` of the front entry.
    head: usize,
}

impl Entries {
    /// Entries dropped from the front that are reclaimed no sooner than
    /// they outnumber the rest.
    const RECLAIM_AFTER: usize = 32;

    #[inline]
    fn push_back(&mut self, sent: Sent) {
        self.items.push(sent);
    }

    fn len(&self) -> usize {
        self.items.len() - self.head
    }

    fn clear(&mut self) {
        self.items.clear();
        self.head = 0;
    }

    fn retain(&mut self, keep: impl FnMut(&Sent) -> bool) {
        self.reclaim();
        self.items.retain(keep);
    }

    /// The entries, oldest first.
    #[inline]
    fn as_slice(&self) -> &[Sent] {
        self.items.get(self.head..).unwrap_or_default()
    }

    #[inline]
    fn iter(&self) -> std::slice::Iter<'_, Sent> {
        self.as_slice().iter()
    }

    #[inline]
    fn front(&self) -> Option<&Sent> {
        self.items.get(self.head)
    }

    #[inline]
    fn back(&self) -> Option<&Sent> {
        self.as_slice().last()
    }

    #[inline]
    fn get(&self, index: usize) -> Option<&Sent> {
        self.as_slice().get(index)
    }

    /// Drops the front entry, if any.
    #[inline]
    fn pop_front(&mut self) {
        if self.head >= self.items.len() {
            return;
        }
        self.head += 1;
        if self.head == self.items.len() {
            self.clear();
        } else if self.head >= Self::RECLAIM_AFTER && self.head * 2 >= self.items.len() {
            self.reclaim();
        }
    }

    /// Drops the back entry, if any.
    #[inline]
    fn pop_back(&mut self) {
        if self.head >= self.items.len() {
            return;
        }
        self.items.pop();
        if self.head == self.items.len() {
            self.clear();
        }
    }

    /// Frees the room of the entries dropped from the front.
    #[cold]
    #[inline(never)]
    fn reclaim(&mut self) {
        self.items.drain(..self.head);
        self.head = 0;
    }
}

impl SendOrder {
    /// Records a transmission of `id` at `at`; returns its sequence number.
    #[inline]
    pub(crate) fn push(&mut self, id: MessageId, at: Instant) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.entries.push_back(Sent { id, seq, at });
        seq
    }

    /// Entries held, live or stale.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The sequence number the next transmission gets.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Drops every entry (when nothing is in flight, all are stale).
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    /// Keeps only live entries.
    pub(crate) fn retain(&mut self, liveness: impl Fn(&Sent) -> Liveness) {
        self.entries
            .retain(|sent| liveness(sent) != Liveness::Stale);
    }

    /// The oldest live transmission, dropping stale entries before it.
    #[inline]
    pub(crate) fn oldest(&mut self, liveness: impl Fn(&Sent) -> Liveness) -> Option<Sent> {
        while let Some(front) = self.entries.front() {
            if liveness(front) != Liveness::Stale {
                return Some(*front);
            }
            self.entries.pop_front();
        }
        None
    }

    /// The oldest transmission for which `live` gives something (what
    /// its owner needs of the message behind it, found in the same look),
    /// with that; the entries before it, for which `live` gives nothing,
    /// are dropped.
    #[inline]
    pub(crate) fn oldest_with<T>(
        &mut self,
        live: impl Fn(&Sent) -> Option<T>,
    ) -> Option<(Sent, T)> {
        while let Some(front) = self.entries.front() {
            if let Some(found) = live(front) {
                return Some((*front, found));
            }
            self.entries.pop_front();
        }
        None
    }

    /// The oldest live transmission, leaving every entry in place.
    #[cfg(all(debug_assertions, feature = "sim"))]
    pub(crate) fn first_live(&self, liveness: impl Fn(&Sent) -> Liveness) -> Option<Sent> {
        self.entries
            .iter()
            .find(|sent| liveness(sent) != Liveness::Stale)
            .copied()
    }

    /// Copies into `out`, oldest first, the live transmissions sent no
    /// later than `by` that `wanted` selects, leaving every entry in place
    /// (stale ones at the front are dropped).
    pub(crate) fn sent_by(
        &mut self,
        by: Instant,
        liveness: impl Fn(&Sent) -> Liveness,
        wanted: impl Fn(&Sent) -> bool,
        out: &mut Vec<Sent>,
    ) {
        if self.oldest(&liveness).is_none() {
            return;
        }
        out.extend(
            self.entries
                .iter()
                .take_while(|sent| sent.at <= by)
                .filter(|sent| liveness(sent) == Liveness::Live && wanted(sent)),
        );
    }

    /// The newest live transmission that may be resent, looking back over
    /// at most `scan` entries (stale ones at the back are dropped).
    pub(crate) fn newest_resendable(
        &mut self,
        scan: usize,
        liveness: impl Fn(&Sent) -> Liveness,
    ) -> Option<Sent> {
        while let Some(back) = self.entries.back() {
            if liveness(back) != Liveness::Stale {
                break;
            }
            self.entries.pop_back();
        }
        self.entries
            .iter()
            .rev()
            .take(scan)
            .find(|sent| liveness(sent) == Liveness::Live)
            .copied()
    }

    /// Removes the transmissions presumed lost at `now` (RACK's rule, see
    /// [`Rack`]) into `lost`, oldest first, and returns when the next one
    /// would be, if any is waiting on the reordering window (see
    /// [`ReorderWindow::duration`]).
    ///
    /// `path` is asked for only when a transmission sent before the latest
    /// confirmed one is there to judge: most confirmations find none (the
    /// confirmed message's own entry at the front, the rest sent after
    /// it), and the wait is then never worked out.
    pub(crate) fn detect_lost(
        &mut self,
        now: Instant,
        rack: &Rack,
        path: impl FnOnce() -> PathTimes,
        liveness: impl Fn(&Sent) -> Liveness,
        lost: &mut Vec<Sent>,
    ) -> Option<Instant> {
        let (latest_seq, rack_rtt_ns) = rack.latest?;
        // Stale entries at the front go first: when the rest were sent
        // after the latest confirmed message, none is judged yet.
        loop {
            let front = self.entries.front()?;
            if front.seq >= latest_seq {
                return None;
            }
            if liveness(front) != Liveness::Stale {
                break;
            }
            self.entries.pop_front();
        }
        let wait = Duration::from_nanos(rack_rtt_ns) + rack.window.duration(path());
        let mut index = 0;
        while let Some(sent) = self.entries.get(index).copied() {
            if sent.seq >= latest_seq {
                // Sent after the latest confirmed message: not yet judged.
                return None;
            }
            match liveness(&sent) {
                Liveness::Stale if index == 0 => {
                    self.entries.pop_front();
                    continue;
                }
                Liveness::Stale | Liveness::LastAttempt => {}
                Liveness::Live => {
                    let deadline = sent.at + wait;
                    if deadline > now {
                        // Later entries were sent no earlier.
                        return Some(deadline);
                    }
                    lost.push(sent);
                    // Its entry goes stale as the owner resends it.
                }
            }
            index += 1;
        }
        None
    }

    /// Removes every live transmission from the front whose retransmission
    /// timeout has passed at `now` into `expired`, oldest first, stopping at
    /// the first that has not. `deadline` gives an entry's timeout (`None`
    /// when stale). Timeouts grow with a message's backoff, so a later entry
    /// may be due before the front one: it then waits for the front (late,
    /// never early), which keeps this O(1) per entry.
    pub(crate) fn take_expired(
        &mut self,
        now: Instant,
        deadline: impl Fn(&Sent) -> Option<Instant>,
        expired: &mut Vec<Sent>,
    ) {
        while let Some(front) = self.entries.front().copied() {
            if let Some(at) = deadline(&front) {
                if at > now {
                    break;
                }
                expired.push(front);
            }
            self.entries.pop_front();
        }
    }
}

/// RACK's state for one peer: the latest confirmed transmission and the
/// reordering window.
#[derive(Clone, Debug, Default)]
pub(crate) struct Rack {
    /// Sequence number and RTT (in nanoseconds) of the confirmed
    /// transmission sent last.
    latest: Option<(u64, u64)>,
    pub(crate) window: ReorderWindow,
    /// A round ends when a transmission sent after this one is confirmed.
    round_end: u64,
}

impl Rack {
    /// The transmission `seq`, sent `rtt` nanoseconds ago, was confirmed
    /// (this runs on every confirmation, which has the RTT in nanoseconds
    /// at hand); `next_seq` is
    /// the sequence number the next transmission will get. `sent_once`: its
    /// message was never resent, so the RECV answers this transmission and
    /// its RTT is exact.
    ///
    /// `resend_timeout_ns` is the shortest RTO (`min_rto`), in
    /// nanoseconds: the receiver
    /// resends a lost RECV no sooner, so a message answered that late may
    /// have been waiting on a lost RECV rather than reordered (see
    /// [`ReorderWindow`]).
    #[inline]
    pub(crate) fn on_confirmed(
        &mut self,
        seq: u64,
        rtt: u64,
        next_seq: u64,
        sent_once: bool,
        resend_timeout_ns: u64,
    ) {
        match self.latest {
            Some((latest, latest_rtt)) if seq < latest => {
                // Confirmed after a message sent later: reordered, by as
                // much as its RTT exceeds that one's.
                if sent_once {
                    let lateness = Duration::from_nanos(rtt.saturating_sub(latest_rtt));
                    let resend_timeout = Duration::from_nanos(resend_timeout_ns);
                    self.window.on_reordering(lateness, resend_timeout);
                }
            }
            _ => self.latest = Some((seq, rtt)),
        }
        if seq >= self.round_end {
            self.round_end = next_seq;
            self.window.on_round_end();
        }
    }

    /// A resent message turned out to be only late: its first copy was
    /// answered `rtt` after it was sent. The window covers its lateness
    /// beyond the latest confirmed message's RTT.
    /// `resend_timeout` as for [`Self::on_confirmed`].
    pub(crate) fn on_late_copy(&mut self, rtt: Duration, resend_timeout: Duration) {
        if let Some((_, latest_rtt)) = self.latest {
            let lateness = rtt.saturating_sub(Duration::from_nanos(latest_rtt));
            self.window.on_reordering(lateness, resend_timeout);
        }
    }
}

/// What the reordering window is measured against, from the peer's RTT
/// estimator.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PathTimes {
    pub(crate) min_rtt: Duration,
    pub(crate) smoothed: Duration,
}

/// How long after a later message's confirmation an earlier one is still
/// given to arrive: a quarter of the minimum RTT (at least
/// [`MIN_REORDER_WINDOW`]), or what the path's reordering taught.
///
/// Reordering shorter than three quarters of `min_rto` is certain (the
/// receiver resends a lost RECV no sooner), and widens the window as far as
/// it was seen. (Bounding it by the RTT estimate failed: on a path that
/// reorders by fifty times its minimum RTT, the late messages are resent
/// before they arrive, Karn's rule keeps them out of the estimate, the
/// estimate shrinks, and so would the window.) Longer lateness may
/// be a lost RECV resent rather than reordering, and widens it up to the
/// smoothed RTT only (RFC 8985's bound): on a lossy path, waiting longer for
/// RECVs that are lost, not late, would only slow recovery.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReorderWindow {
    /// What the certain reordering asks for.
    learned: Duration,
    /// What the ambiguous lateness asks for.
    learned_ambiguous: Duration,
    /// Rounds since reordering asked for more than half of the window.
    clean_rounds: u32,
}

impl ReorderWindow {
    pub(crate) fn duration(&self, path: PathTimes) -> Duration {
        (path.min_rtt / 4)
            .max(self.learned)
            .max(self.learned_ambiguous.min(path.smoothed))
            .max(MIN_REORDER_WINDOW)
    }

    /// A message arrived `lateness` after the window would have started
    /// for it: the window covers that, with an eighth to spare.
    fn on_reordering(&mut self, lateness: Duration, resend_timeout: Duration) {
        let wanted = lateness.saturating_add(lateness / 8).min(MAX_LEARNED);
        let learned = if lateness < resend_timeout * 3 / 4 {
            &mut self.learned
        } else {
            &mut self.learned_ambiguous
        };
        if lateness > *learned / 2 {
            self.clean_rounds = 0;
        }
        *learned = (*learned).max(wanted);
    }

    fn on_round_end(&mut self) {
        self.clean_rounds += 1;
        if self.clean_rounds >= CLEAN_ROUNDS_TO_NARROW {
            self.learned = self.learned * 3 / 4;
            self.learned_ambiguous = self.learned_ambiguous * 3 / 4;
            self.clean_rounds = 0;
        }
    }

    #[cfg(test)]
    pub(crate) fn learned(&self) -> (Duration, Duration) {
        (self.learned, self.learned_ambiguous)
    }
}

/// The tail-loss probe timeout: two smoothed RTTs (RFC 8985 section 7.2;
/// a RECV is never delayed), at least 2 ms and at most `rto`; in whole
/// nanoseconds, from twice the smoothed RTT (the RTT estimator's
/// arithmetic, once per sample).
pub(crate) fn probe_timeout_ns(twice_smoothed_ns: u64, rto_ns: u64) -> u64 {
    const MIN_NS: u64 = MIN_PROBE_TIMEOUT.as_nanos() as u64;
    twice_smoothed_ns.max(MIN_NS).min(rto_ns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const RTT: Duration = Duration::from_millis(40);

    fn ns(duration: Duration) -> u64 {
        duration.as_nanos() as u64
    }
    const RTO: Duration = Duration::from_millis(100);

    /// A send order of `count` messages, one per millisecond, all live.
    fn order(start: Instant, count: u64) -> SendOrder {
        let mut order = SendOrder::default();
        for i in 0..count {
            order.push(MessageId::for_test(i), start + Duration::from_millis(i));
        }
        order
    }

    fn live_unless(done: &HashSet<u64>) -> impl Fn(&Sent) -> Liveness + '_ {
        move |sent: &Sent| {
            if done.contains(&sent.id.serial) {
                Liveness::Stale
            } else {
                Liveness::Live
            }
        }
    }

    #[test]
    fn reordering_within_the_window_is_not_loss() {
        let start = Instant::now();
        let mut order = order(start, 10);
        let mut rack = Rack::default();
        // Message 5 is confirmed first, one RTT after it was sent: 0..5 are
        // late, not lost, until the window (RTT/4 = 10 ms) has passed.
        let mut done = HashSet::from([5]);
        rack.on_confirmed(5, ns(RTT), order.next_seq(), true, ns(RTO));
        let now = start + Duration::from_millis(5) + RTT;
        let mut lost = Vec::new();
        let next = order.detect_lost(now, &rack, path, live_unless(&done), &mut lost);
        assert!(lost.is_empty());
        // The oldest, sent at 0, is due at 0 + RTT + RTT/4.
        assert_eq!(next, Some(start + RTT + RTT / 4));
        // 0..3 arrive within the window: nothing is ever presumed lost.
        done.extend([0, 1, 2, 3]);
        let now = start + Duration::from_millis(3) + RTT + RTT / 4;
        let next = order.detect_lost(now, &rack, path, live_unless(&done), &mut lost);
        assert!(lost.is_empty());
        assert_eq!(next, Some(start + Duration::from_millis(4) + RTT + RTT / 4));
        // 4 never comes: lost once its window passes; 6.. were sent after
        // the latest confirmed message and are not judged.
        let now = start + Duration::from_millis(4) + RTT + RTT / 4;
        let next = order.detect_lost(now, &rack, path, live_unless(&done), &mut lost);
        assert_eq!(lost.iter().map(|s| s.id.serial).collect::<Vec<_>>(), [4]);
        assert_eq!(next, None);
    }

    #[test]
    fn last_attempts_are_left_to_the_timeout() {
        let start = Instant::now();
        let mut order = order(start, 4);
        let mut rack = Rack::default();
        rack.on_confirmed(3, ns(RTT), order.next_seq(), true, ns(RTO));
        let liveness = |sent: &Sent| match sent.id.serial {
            3 => Liveness::Stale,
            1 => Liveness::LastAttempt,
            _ => Liveness::Live,
        };
        let mut lost = Vec::new();
        order.detect_lost(start + RTT * 2, &rack, path, liveness, &mut lost);
        assert_eq!(lost.iter().map(|s| s.id.serial).collect::<Vec<_>>(), [0, 2]);
        // The timeout takes it once due; the entries before it are stale.
        let mut expired = Vec::new();
        let deadline = |sent: &Sent| (sent.id.serial == 1).then_some(start + RTT);
        order.take_expired(start + RTT / 2, deadline, &mut expired);
        assert!(expired.is_empty());
        order.take_expired(start + RTT, deadline, &mut expired);
        assert_eq!(expired.iter().map(|s| s.id.serial).collect::<Vec<_>>(), [1]);
        assert_eq!(order.len(), 0);
    }

    fn path() -> PathTimes {
        PathTimes {
            min_rtt: RTT,
            smoothed: RTT,
        }
    }

    #[test]
    fn window_learns_the_reordering_seen_and_narrows_after_clean_rounds() {
        let mut rack = Rack::default();
        let window = |rack: &Rack| rack.window.duration(path());
        assert_eq!(window(&rack), RTT / 4);
        // Message 10 is confirmed at the minimum RTT, then message 9 (sent
        // before it, never resent) 30 ms later than its own send would
        // have been answered: the window covers 30 ms and an eighth.
        rack.on_confirmed(10, ns(RTT), 11, true, ns(RTO));
        rack.on_confirmed(9, ns(RTT + Duration::from_millis(30)), 11, true, ns(RTO));
        assert_eq!(window(&rack), Duration::from_millis(30) * 9 / 8);
        // A resent message's RTT is not exact: it teaches nothing.
        rack.on_confirmed(8, ns(RTT * 3), 11, false, ns(RTO));
        assert_eq!(window(&rack), Duration::from_millis(30) * 9 / 8);
        // Lateness a lost RECV resent could explain (3/4 of the RTO or
        // more) widens it up to the smoothed RTT only.
        rack.on_confirmed(7, ns(RTT + RTO), 11, true, ns(RTO));
        assert_eq!(window(&rack), RTT);
        // Certain reordering widens it as far as it was seen, beyond the
        // smoothed RTT.
        rack.on_confirmed(6, ns(RTT + RTO), 11, true, ns(RTO * 4));
        assert_eq!(window(&rack), RTO * 9 / 8);
        // Sixteen rounds without such reordering narrow it by a quarter.
        let (learned, ambiguous) = rack.window.learned();
        for seq in 11..11 + u64::from(CLEAN_ROUNDS_TO_NARROW) {
            rack.on_confirmed(seq, ns(RTT), seq + 1, true, ns(RTO));
        }
        assert_eq!(rack.window.learned(), (learned * 3 / 4, ambiguous * 3 / 4));
    }

    #[test]
    fn a_late_first_copy_widens_the_window_by_its_lateness() {
        let mut rack = Rack::default();
        rack.on_confirmed(3, ns(RTT), 4, true, ns(RTO));
        // Message 2 was resent, and its first copy answered 25 ms later
        // than message 3's.
        rack.on_late_copy(RTT + Duration::from_millis(25), RTO);
        assert_eq!(
            rack.window.duration(path()),
            Duration::from_millis(25) * 9 / 8
        );
    }

    #[test]
    fn tail_probe_picks_the_newest_resendable_message() {
        let start = Instant::now();
        let mut order = order(start, 6);
        let liveness = |sent: &Sent| match sent.id.serial {
            5 => Liveness::Stale,
            4 => Liveness::LastAttempt,
            _ => Liveness::Live,
        };
        let probe = order.newest_resendable(8, liveness);
        assert_eq!(probe.map(|s| s.id.serial), Some(3));
        assert_eq!(order.len(), 5, "the stale tail entry is dropped");
        let ns = |d: Duration| d.as_nanos() as u64;
        assert_eq!(
            probe_timeout_ns(ns(RTT * 2), ns(Duration::from_secs(1))),
            ns(RTT * 2),
            "two round trips"
        );
        assert_eq!(
            probe_timeout_ns(ns(RTT * 2), ns(RTT)),
            ns(RTT),
            "never beyond the RTO"
        );
        assert_eq!(
            probe_timeout_ns(0, ns(RTT)),
            ns(MIN_PROBE_TIMEOUT),
            "at least the floor"
        );
    }

    #[test]
    fn stale_entries_are_dropped_from_the_front_and_by_retain() {
        let start = Instant::now();
        let mut order = order(start, 100);
        let done: HashSet<u64> = (0..100).filter(|i| i % 10 != 9).collect();
        assert_eq!(
            order.oldest(live_unless(&done)).map(|s| s.id.serial),
            Some(9)
        );
        assert_eq!(order.len(), 91);
        order.retain(live_unless(&done));
        assert_eq!(order.len(), 10);
    }
}
