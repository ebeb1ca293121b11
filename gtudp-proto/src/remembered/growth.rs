//! A generation's table grown into a larger one a few slots at a time.
//!
//! A stream's first generations start small and grow as its rate climbs:
//! a table under `GROW_IN_PLACE_BYTES` that fills is replaced by one two
//! (or four) times its size, so that the generation still has one table to
//! look in. Copying the full table at once, in the insertion that filled
//! it, stalled that insertion for up to 1.6 ms at a megabyte.
//!
//! So a table of [`MOVE_FROM_SLOTS`] slots or more is moved instead: the
//! larger table goes after it, and each later insertion into the
//! generation copies [`MOVE_SLOTS`] more of its slots into the larger one.
//! Once every slot is copied, the full table goes. Throughout:
//!
//! - a look-up reads every table of a generation, both of these included,
//!   and a copied entry is the same in both: nothing is missed, and a
//!   second find changes nothing;
//! - insertions go to the last table, the larger one, as they always do;
//! - a filter rebuild's walk covers the full table before the larger one,
//!   and when the full table goes, a walk there or past it starts the
//!   larger one again from its first slot (see `rebuild`): that one then
//!   holds every entry the full one held.
//!
//! The larger table has room for the copies and more: twice the slots of
//! a table at most 80 % full, while a move takes one insertion per
//! [`MOVE_SLOTS`] slots. Should it fill all the same, the move stops and
//! both tables stay, each exact. A generation that stops being the newest
//! before its move ends (insertions then go to the next) also keeps both
//! until it is forgotten: at most the full table's bytes more, accounted.

use super::history::Generation;
use super::rebuild::SMALL_STEPS;
use super::table::{Table, MIN_TABLE};

/// The slots from which a full table is moved step by step rather than
/// copied at once (64 KiB: under 0.1 ms at once). Where tests step
/// rebuilds (`rebuild::SMALL_STEPS`), every table past its first growth
/// is moved, so that their runs exercise it.
pub(super) const MOVE_FROM_SLOTS: usize = if SMALL_STEPS { MIN_TABLE * 4 } else { 8 * 1024 };

/// Slots of the full table copied per insertion into its generation:
/// at most about 13 entries (a table is at most 80 % full).
pub(super) const MOVE_SLOTS: usize = if SMALL_STEPS { 3 } else { 16 };

/// [`Generation::moved`] when no table is being moved.
pub(super) const NOT_MOVING: u32 = u32::MAX;

impl Generation {
    /// Whether its second-to-last table is being copied into its last.
    #[inline]
    pub(super) fn is_moving(&self) -> bool {
        self.moved != NOT_MOVING
    }

    /// Begins moving its last table, full, into `larger`, which becomes
    /// the last.
    pub(super) fn begin_move(&mut self, larger: Table) {
        self.tables.push(larger);
        self.moved = 0;
    }

    /// Copies at most `slots` more slots of the table being moved into the
    /// last one, position hashes keyed with `key`. Once every slot is
    /// copied, the moved table is taken out and returned, with the index
    /// it had (the larger table's now).
    pub(super) fn step_move(&mut self, key: u64, slots: usize) -> Option<(Table, usize)> {
        if !self.is_moving() {
            return None;
        }
        let [.., from, to] = &mut self.tables[..] else {
            self.moved = NOT_MOVING;
            return None;
        };
        let start = self.moved as usize;
        let end = from.slots().min(start.saturating_add(slots));
        for slot in start..end {
            let entry = from.slot(slot);
            if entry == 0 {
                continue;
            }
            if to.is_full() {
                // Cannot happen (see the module docs); if it did, both
                // tables stay, each exact, and the move ends here.
                self.moved = NOT_MOVING;
                return None;
            }
            to.insert_moved(key, entry);
        }
        if end < from.slots() {
            // A moved table is under `GROW_IN_PLACE_BYTES`: its slots
            // count in a `u32`. The larger table is never left full while
            // the move goes on: the insertion that found it full would
            // give the generation a table after it, and the move would
            // then copy the wrong one.
            self.moved = match to.is_full() {
                true => NOT_MOVING,
                false => u32::try_from(end).unwrap_or(NOT_MOVING),
            };
            return None;
        }
        self.moved = NOT_MOVING;
        let index = self.tables.len() - 2;
        Some((self.tables.remove(index), index))
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::remembered::{Recall, Retention};
    use crate::wire::Identity;

    fn addr() -> SocketAddr {
        ([10, 0, 0, 1], 1).into()
    }

    /// A stream whose first generation grows through several moves, the
    /// last of them cut short by the next generation: every identity
    /// inserted is recalled after every insertion, the bytes stay
    /// accounted, the moves span many insertions, and the generation
    /// left mid-move keeps both tables.
    #[test]
    fn a_table_moved_step_by_step_never_hides_an_identity() {
        let mut memory = crate::remembered::tests::memory(1000, 4000);
        let fingerprint = memory.keys.fingerprint(b"a");
        let identity = |i: u32| Identity::from_u32(i.wrapping_mul(0x9e37_79b9));
        let start = Instant::now();
        let (mut moves_begun, mut moves_done, mut insertions_moving) = (0, 0, 0);
        let mut was_moving = false;
        let mut jumped = false;
        let mut left_moving = false;
        // Up to 3,100 identities in the first 250 ms generation, until a
        // move is under way past the 2,000th; then one in the next.
        for i in 0..3_100u32 {
            let now = match jumped {
                true => start + Duration::from_millis(260),
                false => start + Duration::from_micros(u64::from(i) * 80),
            };
            memory.insert(
                now,
                addr(),
                identity(i),
                fingerprint,
                Retention::Lifetime,
                usize::MAX,
            );
            memory.assert_accounted();
            let history = memory.histories.get(&addr()).expect("a history");
            let first = history.lifetime().iter().next().expect("a generation");
            let moving = first.is_moving();
            for j in 0..=i {
                assert_eq!(
                    memory.recall(&addr(), identity(j), fingerprint),
                    Recall::Duplicate,
                    "identity {j} hidden at insertion {i}"
                );
            }
            if jumped {
                left_moving = moving && first.tables.len() == 2;
                break;
            }
            insertions_moving += usize::from(moving);
            moves_begun += usize::from(moving && !was_moving);
            moves_done += usize::from(was_moving && !moving && first.tables.len() == 1);
            was_moving = moving;
            jumped = i >= 2_000 && moving;
        }
        assert!(moves_begun >= 4, "{moves_begun} moves begun");
        assert!(moves_done >= 3, "{moves_done} moves completed");
        assert!(
            insertions_moving > 500,
            "moves spread over {insertions_moving} insertions"
        );
        assert!(
            left_moving,
            "the first generation was not left in the middle of a move"
        );
    }

    /// A move whose larger table fills (which insertions cannot do: see
    /// the module docs) stops, and leaves both tables, each exact.
    #[test]
    fn a_move_into_a_full_table_stops_and_keeps_both() {
        use crate::remembered::table::{position, take_table};
        let key = 7;
        let mut spare = Vec::new();
        let mut from = take_table(&mut spare, MIN_TABLE * 4, usize::MAX);
        let mut to = take_table(&mut spare, MIN_TABLE, usize::MAX);
        let entry = |i: u64| ((i + 1) << 32) | 5;
        let mut i = 0;
        while !from.is_full() {
            from.insert(position(key, (entry(i) >> 32) as u32), entry(i));
            i += 1;
        }
        let mut j = 1_000;
        while !to.is_full() {
            to.insert(position(key, (entry(j) >> 32) as u32), entry(j));
            j += 1;
        }
        let mut generation = Generation {
            number: 0,
            tables: smallvec::smallvec![from],
            len: 0,
            moved: NOT_MOVING,
        };
        generation.begin_move(to);
        assert_eq!(
            generation.step_move(key, usize::MAX).map(|(_, at)| at),
            None
        );
        assert!(!generation.is_moving());
        assert_eq!(generation.tables.len(), 2);
        let held: usize = generation
            .tables
            .iter()
            .map(|table| table.entries().count())
            .sum();
        assert_eq!(held, i as usize + (j - 1_000) as usize);
    }
}
