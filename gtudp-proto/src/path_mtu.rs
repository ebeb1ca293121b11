//! Path MTU discovery's decisions for one peer: which datagram sizes to
//! probe, what the answers mean, and when a size that passed stops passing
//! (a black hole). No I/O and no clock: the endpoint
//! (`endpoint/path_mtu.rs`) sends the probes and reports their outcomes.
//!
//! **Search.** From a safe `base` (default 1,200 bytes of UDP payload, as
//! QUIC assumes) up to the local limit (`Config::max_datagram_size`), in
//! rounds. A round probes up to [`PROBES_PER_ROUND`] sizes at once, spread
//! evenly over the sizes still in question (the largest among them, so a
//! path that takes the local limit is found in one round), followed by a
//! header-sized *marker*: a quarter of a round trip after its confirmation,
//! the probes still unconfirmed are lost, instead of waiting for their
//! timeouts. The largest size confirmed becomes the path's size at
//! once. A size is ruled out only after [`MAX_TRIES`] of its probes are lost
//! (each time as the smallest size lost in its round), so random loss slows
//! the search down but rarely misleads it; a round whose probes and marker
//! are all lost (an outage) counts for nothing. The search ends when the
//! sizes in question lie within [`STEP`] bytes of the size found.
//!
//! **Black holes.** Once settled above `base`, the endpoint reports every
//! DATA transmission declared lost and every one confirmed. Losses of
//! datagrams larger than `base`, with no datagram at least as large as the
//! smallest of them confirmed in between, make the path *suspect* after
//! [`SUSPECT_LOSSES`] (doubled after each check that found the path well,
//! up to 64 losses). A suspect path is checked with batches of
//! [`CHECK_PROBES`] probes of the current size and a marker: one probe
//! confirmed clears it; a batch whose probes are all lost while its marker
//! is confirmed counts against it, and [`BLACK_HOLE_BATCHES`] such batches
//! in a row (12 probes of the current size lost while smaller datagrams
//! pass) declare a black hole: the size falls back to `base` and a new
//! search starts below the old size. Under random loss `p`, a suspicion
//! ends in a false black hole with probability `p¹²` (5 × 10⁻⁷ at 30%), and
//! suspicions themselves need [`SUSPECT_LOSSES`] losses in a row among the
//! large datagrams. A batch whose marker is lost too tells nothing (the
//! whole path is down): after [`MAX_INCONCLUSIVE`] of those the check ends
//! without a verdict.

use smallvec::SmallVec;

/// Sizes probed at once in a search round.
pub(crate) const PROBES_PER_ROUND: usize = 6;

/// The search ends when the sizes still in question lie within this many
/// bytes above the size found.
pub(crate) const STEP: usize = 20;

/// Lost probes of one size that rule it out.
pub(crate) const MAX_TRIES: u8 = 3;

/// Losses of large datagrams in a row that make a settled path suspect.
pub(crate) const SUSPECT_LOSSES: u32 = 4;

/// Probes of the current size in each batch that checks a suspect path.
pub(crate) const CHECK_PROBES: usize = 3;

/// Batches of a check lost whole (their markers confirmed) that declare a
/// black hole.
pub(crate) const BLACK_HOLE_BATCHES: u8 = 4;

/// Rounds or batches in a row with nothing confirmed, marker included,
/// after which a search or check stops without a verdict.
pub(crate) const MAX_INCONCLUSIVE: u8 = 3;

/// What became of one probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProbeResult {
    /// Its RECV came: the size passes.
    Confirmed,
    /// Declared lost.
    Lost,
    /// The local system refused to send it (`EMSGSIZE`): the size cannot
    /// pass, no need to try again.
    TooLarge,
}

/// What a finished round or batch led to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// More probing to do: ask [`PathMtu::next_round`].
    Continue,
    /// Settled: no probing until the next search or suspicion.
    Settled,
    /// A black hole: the size fell back to `base`, and a search follows.
    BlackHole,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Looking for the largest size in `(low, high]`; `low` passed.
    Search {
        low: usize,
        high: usize,
        /// The smallest size lost since it passed nothing larger, and how
        /// many of its probes were lost.
        suspect: Option<(usize, u8)>,
        inconclusive: u8,
    },
    /// Checking that the current size still passes.
    Check { batches: u8, inconclusive: u8 },
    /// Nothing to probe.
    Settled,
}

/// One peer's path MTU: the datagram size in use and the search or check
/// under way (see the module docs).
#[derive(Clone, Debug)]
pub(crate) struct PathMtu {
    base: usize,
    max: usize,
    current: usize,
    phase: Phase,
    /// Large datagrams lost since one at least `lost_min` long was
    /// confirmed (while settled above `base`).
    lost_run: u32,
    lost_min: usize,
    /// Checks in a row that found the path well (capped at
    /// [`MAX_CLEARED_DOUBLINGS`]): each doubles the losses the next
    /// suspicion needs, so that losses the size does not explain (a
    /// receiver holding off DATA, heavy random loss) set off fewer checks.
    cleared: u32,
}

/// The most doublings of [`SUSPECT_LOSSES`] after cleared checks (64
/// losses).
pub(crate) const MAX_CLEARED_DOUBLINGS: u32 = 4;

impl PathMtu {
    /// A path between a safe `base` and the local limit `max` (datagram
    /// sizes, header included), searching from `base`.
    pub(crate) fn new(base: usize, max: usize) -> Self {
        let current = base.min(max);
        Self {
            base: current,
            max,
            current,
            phase: Phase::Search {
                low: current,
                high: max,
                suspect: None,
                inconclusive: 0,
            },
            lost_run: 0,
            lost_min: usize::MAX,
            cleared: 0,
        }
    }

    /// The datagram size in use: the largest confirmed.
    pub(crate) fn current(&self) -> usize {
        self.current
    }

    /// Whether nothing is being probed.
    pub(crate) fn is_settled(&self) -> bool {
        self.phase == Phase::Settled
    }

    /// Whether a later search could find more (the size in use is below
    /// the local limit).
    pub(crate) fn may_grow(&self) -> bool {
        self.current < self.max
    }

    /// The sizes to probe in the next round, largest first (empty when the
    /// search is over: call [`settle`](Self::settle)).
    pub(crate) fn next_round(&self) -> SmallVec<[usize; PROBES_PER_ROUND]> {
        let mut sizes = SmallVec::new();
        match self.phase {
            Phase::Settled => {}
            Phase::Check { .. } => sizes.extend([self.current; CHECK_PROBES]),
            Phase::Search {
                low, high, suspect, ..
            } => {
                let top = suspect.map_or(high, |(size, _)| size);
                if top <= low {
                    return sizes;
                }
                if top - low <= STEP {
                    // Only the suspect's tries are left: all at once.
                    if let Some((size, tries)) = suspect {
                        let left = usize::from(MAX_TRIES.saturating_sub(tries)).max(1);
                        sizes.extend(core::iter::repeat(size).take(left));
                    }
                    return sizes;
                }
                let span = top - low;
                for i in (1..=PROBES_PER_ROUND).rev() {
                    let size = low + span * i / PROBES_PER_ROUND;
                    if size > low && sizes.last() != Some(&size) {
                        sizes.push(size);
                    }
                }
            }
        }
        sizes
    }

    /// Stops probing (the search found what it could).
    pub(crate) fn settle(&mut self) {
        self.phase = Phase::Settled;
        self.lost_run = 0;
        self.lost_min = usize::MAX;
    }

    /// Starts a new search above the current size (the periodic
    /// re-search); false if probing is under way or nothing is above.
    pub(crate) fn research(&mut self) -> bool {
        if !self.is_settled() || !self.may_grow() {
            return false;
        }
        self.phase = Phase::Search {
            low: self.current,
            high: self.max,
            suspect: None,
            inconclusive: 0,
        };
        true
    }

    /// The local limit fell to `limit` (the system refused a datagram as
    /// too large and said how large one may be).
    pub(crate) fn limit_to(&mut self, limit: usize) {
        let limit = limit.max(self.base);
        self.max = self.max.min(limit);
        if let Phase::Search { high, .. } = &mut self.phase {
            *high = (*high).min(limit);
        }
    }

    /// A round ended: `results` for its probes (size and result), and
    /// whether its marker was confirmed.
    pub(crate) fn on_round(&mut self, results: &[(usize, ProbeResult)], marker: bool) -> Verdict {
        let confirmed = results
            .iter()
            .filter(|(_, result)| *result == ProbeResult::Confirmed)
            .map(|(size, _)| *size)
            .max();
        let too_large = results
            .iter()
            .filter(|(_, result)| *result == ProbeResult::TooLarge)
            .map(|(size, _)| *size)
            .min();
        let heard = confirmed.is_some() || marker;
        match &mut self.phase {
            Phase::Settled => Verdict::Settled,
            Phase::Check {
                batches,
                inconclusive,
            } => {
                if confirmed.is_some() {
                    self.settle();
                    self.cleared = (self.cleared + 1).min(MAX_CLEARED_DOUBLINGS);
                    return Verdict::Settled;
                }
                if too_large.is_none() {
                    if !heard {
                        *inconclusive += 1;
                        if *inconclusive >= MAX_INCONCLUSIVE {
                            self.settle();
                            return Verdict::Settled;
                        }
                        return Verdict::Continue;
                    }
                    *inconclusive = 0;
                    *batches += 1;
                    if *batches < BLACK_HOLE_BATCHES {
                        return Verdict::Continue;
                    }
                }
                // A black hole: back to the base, and search below the
                // size that stopped passing.
                let lost = self.current;
                self.current = self.base;
                self.cleared = 0;
                self.lost_run = 0;
                self.lost_min = usize::MAX;
                self.phase = Phase::Search {
                    low: self.base,
                    high: lost.saturating_sub(1).max(self.base),
                    suspect: None,
                    inconclusive: 0,
                };
                Verdict::BlackHole
            }
            Phase::Search {
                low,
                high,
                suspect,
                inconclusive,
            } => {
                if let Some(size) = too_large {
                    *high = (*high).min(size - 1).max(*low);
                }
                if let Some(size) = confirmed {
                    *low = (*low).max(size);
                    *high = (*high).max(*low);
                    self.current = *low;
                }
                if suspect.is_some_and(|(size, _)| size <= *low || size > *high) {
                    *suspect = None;
                }
                if !heard {
                    // The whole path is quiet: no loss counts.
                    *inconclusive += 1;
                    if *inconclusive >= MAX_INCONCLUSIVE {
                        self.settle();
                        return Verdict::Settled;
                    }
                    return Verdict::Continue;
                }
                *inconclusive = 0;
                let smallest_lost = results
                    .iter()
                    .filter(|(size, result)| {
                        *result == ProbeResult::Lost && *size > *low && *size <= *high
                    })
                    .map(|(size, _)| *size)
                    .min();
                if let Some(lost) = smallest_lost {
                    let copies = results
                        .iter()
                        .filter(|(size, result)| *size == lost && *result == ProbeResult::Lost)
                        .count() as u8;
                    *suspect = match *suspect {
                        Some((size, tries)) if size == lost => Some((size, tries + copies)),
                        Some((size, tries)) if size < lost => Some((size, tries)),
                        _ => Some((lost, copies)),
                    };
                }
                if let Some((size, tries)) = *suspect {
                    if tries >= MAX_TRIES {
                        *high = size - 1;
                        *suspect = None;
                    }
                }
                Verdict::Continue
            }
        }
    }

    /// A DATA transmission of `size` bytes was declared lost; true if the
    /// path just became suspect (a check follows: ask
    /// [`next_round`](Self::next_round)).
    pub(crate) fn on_data_lost(&mut self, size: usize) -> bool {
        if self.phase != Phase::Settled || self.current <= self.base || size <= self.base {
            return false;
        }
        self.lost_run += 1;
        self.lost_min = self.lost_min.min(size);
        if self.lost_run < SUSPECT_LOSSES << self.cleared {
            return false;
        }
        self.lost_run = 0;
        self.lost_min = usize::MAX;
        self.phase = Phase::Check {
            batches: 0,
            inconclusive: 0,
        };
        true
    }

    /// A DATA transmission of `size` bytes was confirmed.
    #[inline]
    pub(crate) fn on_data_confirmed(&mut self, size: usize) {
        if self.lost_run > 0 && size >= self.lost_min {
            self.lost_run = 0;
            self.lost_min = usize::MAX;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ProbeResult::{Confirmed, Lost, TooLarge};
    use super::*;

    /// Runs rounds against a path passing datagrams up to `limit`, with
    /// `lose(round, index)` saying which probes random loss takes; returns
    /// the size found and the rounds it took.
    fn search(
        path: &mut PathMtu,
        limit: usize,
        mut lose: impl FnMut(usize, usize) -> bool,
    ) -> (usize, usize) {
        let mut rounds = 0;
        loop {
            let sizes = path.next_round();
            if sizes.is_empty() {
                path.settle();
                return (path.current(), rounds);
            }
            rounds += 1;
            let results: Vec<_> = sizes
                .iter()
                .enumerate()
                .map(|(i, &size)| {
                    let passes = size <= limit && !lose(rounds, i);
                    (size, if passes { Confirmed } else { Lost })
                })
                .collect();
            if path.on_round(&results, !lose(rounds, 99)) == Verdict::Settled {
                return (path.current(), rounds);
            }
            assert!(rounds < 100, "the search does not end");
        }
    }

    #[test]
    fn finds_the_limit_within_a_step() {
        for (max, limit) in [
            (1_452, 1_252),
            (65_507, 1_252),
            (65_507, 65_507),
            (9_000, 8_972),
        ] {
            let mut path = PathMtu::new(1_200, max);
            let (found, rounds) = search(&mut path, limit, |_, _| false);
            assert!(
                found <= limit && limit - found <= STEP,
                "{max} {limit}: {found}"
            );
            assert!(rounds <= 8, "{max} {limit}: {rounds} rounds");
            assert!(path.is_settled());
        }
        // The local limit passes: one round.
        let mut path = PathMtu::new(1_200, 65_507);
        assert_eq!(search(&mut path, 65_507, |_, _| false), (65_507, 1));
    }

    #[test]
    fn a_base_above_the_local_limit_has_nothing_to_search() {
        let path = PathMtu::new(1_200, 500);
        assert_eq!(path.current(), 500);
        assert!(path.next_round().is_empty());
    }

    #[test]
    fn random_loss_rarely_rules_a_size_out() {
        // One probe in three lost, by a fixed pattern: the search still
        // ends near the limit.
        let mut path = PathMtu::new(1_200, 1_452);
        let mut n = 0usize;
        let (found, _) = search(&mut path, 1_400, |_, _| {
            n += 1;
            n % 3 == 0
        });
        assert!(1_400 - found <= STEP, "{found}");
    }

    #[test]
    fn too_large_rules_a_size_out_at_once() {
        let mut path = PathMtu::new(1_200, 1_452);
        let sizes = path.next_round();
        let results: Vec<_> = sizes.iter().map(|&s| (s, TooLarge)).collect();
        assert_eq!(path.on_round(&results, true), Verdict::Continue);
        assert!(path
            .next_round()
            .iter()
            .all(|&s| s < sizes[sizes.len() - 1]));
    }

    #[test]
    fn an_outage_counts_for_nothing_and_ends_the_search() {
        let mut path = PathMtu::new(1_200, 1_452);
        for _ in 0..MAX_INCONCLUSIVE - 1 {
            let results: Vec<_> = path.next_round().iter().map(|&s| (s, Lost)).collect();
            assert_eq!(path.on_round(&results, false), Verdict::Continue);
        }
        // Nothing was ruled out: the next round still reaches the limit.
        assert_eq!(path.next_round()[0], 1_452);
        let results: Vec<_> = path.next_round().iter().map(|&s| (s, Lost)).collect();
        assert_eq!(path.on_round(&results, false), Verdict::Settled);
        assert_eq!(path.current(), 1_200);
    }

    fn settled_at(size: usize) -> PathMtu {
        let mut path = PathMtu::new(1_200, 1_452);
        search(&mut path, size, |_, _| false);
        assert!(path.is_settled());
        path
    }

    #[test]
    fn a_black_hole_is_declared_after_whole_batches_are_lost() {
        let mut path = settled_at(1_452);
        for _ in 0..SUSPECT_LOSSES - 1 {
            assert!(!path.on_data_lost(1_452));
        }
        assert!(path.on_data_lost(1_452));
        for batch in 0..BLACK_HOLE_BATCHES {
            let sizes = path.next_round();
            assert_eq!(sizes.len(), CHECK_PROBES);
            let results: Vec<_> = sizes.iter().map(|&s| (s, Lost)).collect();
            let verdict = path.on_round(&results, true);
            match batch + 1 == BLACK_HOLE_BATCHES {
                true => assert_eq!(verdict, Verdict::BlackHole),
                false => assert_eq!(verdict, Verdict::Continue),
            }
        }
        assert_eq!(path.current(), 1_200);
        // The new search stays below the size that stopped passing.
        assert!(path.next_round().iter().all(|&s| s < 1_452));
        let (found, _) = search(&mut path, 1_300, |_, _| false);
        assert!(1_300 - found <= STEP);
    }

    #[test]
    fn one_confirmed_probe_or_large_datagram_clears_a_suspicion() {
        let mut path = settled_at(1_452);
        for _ in 0..SUSPECT_LOSSES - 1 {
            path.on_data_lost(1_452);
        }
        path.on_data_confirmed(1_452);
        assert!(!path.on_data_lost(1_452), "the run started again");
        // A smaller datagram confirmed does not clear it.
        for _ in 0..SUSPECT_LOSSES - 2 {
            path.on_data_lost(1_452);
        }
        path.on_data_confirmed(1_000);
        assert!(path.on_data_lost(1_452));
        let sizes = path.next_round();
        let mut results: Vec<_> = sizes.iter().map(|&s| (s, Lost)).collect();
        results[2].1 = Confirmed;
        assert_eq!(path.on_round(&results, true), Verdict::Settled);
        assert_eq!(path.current(), 1_452);
    }

    #[test]
    fn each_check_that_clears_doubles_the_losses_the_next_needs() {
        let mut path = settled_at(1_452);
        for doublings in 0..=MAX_CLEARED_DOUBLINGS + 1 {
            let needed = SUSPECT_LOSSES << doublings.min(MAX_CLEARED_DOUBLINGS);
            for _ in 0..needed - 1 {
                assert!(!path.on_data_lost(1_452));
            }
            assert!(path.on_data_lost(1_452), "after {needed} losses");
            let results: Vec<_> = path.next_round().iter().map(|&s| (s, Confirmed)).collect();
            assert_eq!(path.on_round(&results, true), Verdict::Settled);
        }
    }

    #[test]
    fn batches_lost_with_their_markers_tell_nothing() {
        let mut path = settled_at(1_452);
        for _ in 0..SUSPECT_LOSSES {
            path.on_data_lost(1_452);
        }
        for _ in 0..MAX_INCONCLUSIVE - 1 {
            let results: Vec<_> = path.next_round().iter().map(|&s| (s, Lost)).collect();
            assert_eq!(path.on_round(&results, false), Verdict::Continue);
        }
        let results: Vec<_> = path.next_round().iter().map(|&s| (s, Lost)).collect();
        assert_eq!(path.on_round(&results, false), Verdict::Settled);
        assert_eq!(path.current(), 1_452);
    }

    #[test]
    fn research_looks_above_the_current_size_only() {
        let mut path = settled_at(1_300);
        assert!(path.research());
        assert!(path.next_round().iter().all(|&s| s > path.current()));
        let mut full = settled_at(1_452);
        assert!(!full.research(), "nothing above the local limit");
    }
}
