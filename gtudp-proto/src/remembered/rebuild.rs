//! A class's generation filter rebuilt a few slots at a time.
//!
//! A filter is rebuilt at a new size when the class's count leaves the
//! filter's range (see `filter`): every identity the class holds is noted
//! again in the new filter. Done at once, that walks every table of the
//! class in one call: about 19 ms for a million identities, during which
//! the endpoint handles no datagram, and four times that for the 4.5
//! million the default bound allows. A stream's memory grows through such
//! rebuilds as its rate climbs, so every stream that reaches a high rate
//! would stall on its way.
//!
//! So the new filter is filled [`STEP_SLOTS`] table slots per insertion
//! into the class, while the old one goes on answering every look-up. Both
//! stay free of false negatives throughout:
//!
//! - every insertion is noted in both filters, and a generation forgotten
//!   has its bit cleared in both;
//! - the walk visits, slot by slot, every table of every generation up to
//!   [`Rebuild::last`], the newest when the rebuild began; later
//!   generations hold only identities inserted since, noted in both;
//! - a table only ever gains entries in free slots, so a slot behind the
//!   walk holds what it held when walked, or a later insertion; the
//!   exceptions, a small table rehashed into a larger one and a table
//!   taken out once moved into the one after it (see `growth`), have the
//!   walk start the larger table again from its first slot
//!   ([`Rebuild::rehashed`], [`Rebuild::table_moved`]);
//! - a generation forgotten before the walk reached it is skipped: its
//!   bit is gone from both filters.
//!
//! Only once the walk has passed the last slot does the new filter take
//! the old one's place. A class small enough to walk in well under a
//! millisecond ([`AT_ONCE`]) is walked at once, as before.

use super::filter::GenerationFilter;
use super::history::Generation;
use super::table::position;

/// Whether rebuilds are stepped in small steps from the first identity:
/// in tests, and in the simulator and the fuzz targets, whose memories stay
/// small, so that their runs exercise the walk (as `prefetch` reads ahead
/// from the first byte there).
pub(super) const SMALL_STEPS: bool = cfg!(any(test, feature = "sim", feature = "fuzzing"));

/// Table slots walked per insertion into a class being rebuilt. A table is
/// at most 80 % full, so at most about 13 identities are noted a step, and
/// a rebuild ends after at least one insertion for every 13 identities
/// held: the class grows by some 8 % meanwhile, and the new filter, sized
/// for three cells an identity, ends at about 2.8. (Three where
/// [`SMALL_STEPS`], so that a rebuild spans many insertions, expiries and
/// rehashes.)
pub(super) const STEP_SLOTS: usize = if SMALL_STEPS { 3 } else { 16 };

/// A class holding at most this many identities has its filter rebuilt in
/// one walk (about 80 µs at 4,096). None where [`SMALL_STEPS`].
pub(super) const AT_ONCE: usize = if SMALL_STEPS { 0 } else { 4096 };

/// The bytes a rebuild takes besides its filter's cells: its box.
pub(super) const REBUILD_BYTES: usize = core::mem::size_of::<Rebuild>();

/// A filter being filled: see the module docs.
#[derive(Debug)]
pub(super) struct Rebuild {
    pub(super) filter: GenerationFilter,
    /// The newest generation when the rebuild began.
    last: u64,
    /// Where the walk goes on: a generation's number, one of its tables
    /// and a slot of that table.
    number: u64,
    table: usize,
    slot: usize,
}

impl Rebuild {
    /// A rebuild into `filter` (empty, of its new size) of the generations
    /// numbered `first` (the oldest held) to `last` (the newest).
    pub(super) fn new(filter: GenerationFilter, first: u64, last: u64) -> Self {
        Self {
            filter,
            last,
            number: first,
            table: 0,
            slot: 0,
        }
    }

    /// The bytes it holds: its box and its filter's cells.
    pub(super) fn bytes(&self) -> usize {
        self.filter.bytes() + REBUILD_BYTES
    }

    /// Walks at most `slots` slots on from where the walk stopped, noting
    /// each entry in the new filter, over the class's `generations`
    /// (oldest first). True once every slot of every generation up to
    /// [`last`](Self::last) has been walked: the filter is complete.
    pub(super) fn step<'a>(
        &mut self,
        mut generations: impl Iterator<Item = &'a Generation>,
        key: u64,
        mut slots: usize,
    ) -> bool {
        // The generation the walk is in, or the next one held if that one
        // was forgotten.
        let mut generation = loop {
            match generations.next() {
                Some(generation) if generation.number < self.number => {}
                Some(generation) if generation.number <= self.last => break generation,
                _ => return true,
            }
        };
        if generation.number != self.number {
            self.enter(generation.number);
        }
        loop {
            match generation.tables.get(self.table) {
                Some(table) if self.slot < table.slots() => {
                    let end = table.slots().min(self.slot.saturating_add(slots));
                    for slot in self.slot..end {
                        let entry = table.slot(slot);
                        if entry != 0 {
                            let identity = (entry >> 32) as u32;
                            self.filter
                                .insert(position(key, identity), generation.number);
                        }
                    }
                    slots -= end - self.slot;
                    self.slot = end;
                    if slots == 0 {
                        return false;
                    }
                }
                Some(_) => {
                    self.table += 1;
                    self.slot = 0;
                }
                None => match generations.next() {
                    Some(next) if next.number <= self.last => {
                        generation = next;
                        self.enter(next.number);
                    }
                    _ => return true,
                },
            }
        }
    }

    /// Table `table` of generation `number` was rehashed into a larger
    /// one: its entries moved, so a walk inside it starts it again.
    pub(super) fn rehashed(&mut self, number: u64, table: usize) {
        if self.number == number && self.table == table {
            self.slot = 0;
        }
    }

    /// Table `table` of generation `number` was moved into the one after
    /// it, and taken out (see `growth`): a walk in it or past it in that
    /// generation starts again at the larger table, now at its index,
    /// which holds every entry the moved one held.
    pub(super) fn table_moved(&mut self, number: u64, table: usize) {
        if self.number == number && self.table >= table {
            self.table = table;
            self.slot = 0;
        }
    }

    fn enter(&mut self, number: u64) {
        self.number = number;
        self.table = 0;
        self.slot = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remembered::history::Generations;
    use crate::remembered::table::{take_table, Table};

    const KEY: u64 = 5;

    fn table_of(identities: impl IntoIterator<Item = u32>, slots: usize) -> Table {
        let mut table = take_table(&mut Vec::new(), slots, usize::MAX);
        for identity in identities {
            table.insert(position(KEY, identity), (u64::from(identity) << 32) | 1);
        }
        table
    }

    fn generation(number: u64, identities: &[u32], slots: usize) -> Generation {
        Generation {
            number,
            len: identities.len(),
            tables: smallvec::smallvec![table_of(identities.iter().copied(), slots)],
            moved: crate::remembered::growth::NOT_MOVING,
        }
    }

    /// Identities of generation 2: 100 from 1000 on, and 9 more whose home
    /// is the last bucket of any table (the top 64th of the hashes), so
    /// that one of them wraps around to the first bucket.
    fn second() -> Vec<u32> {
        let top = (10_000..)
            .filter(|&identity| position(KEY, identity) >= u64::MAX - u64::MAX / 64)
            .take(9);
        (1000..1100).chain(top).collect()
    }

    /// Generations 1 (identities 0..200) and 2 ([`second`]), a rebuild
    /// begun over both.
    fn two_generations_rebuilding() -> Generations {
        let mut generations = Generations::default();
        generations.start(generation(1, &(0..200).collect::<Vec<_>>(), 256));
        generations.start(generation(2, &second(), 160));
        generations.len = 309;
        generations.begin_rebuild(GenerationFilter::cells_for(309));
        generations
    }

    fn finish(generations: &mut Generations) {
        for _ in 0..1000 {
            if !generations.is_rebuilding() {
                return;
            }
            generations.step_rebuild(KEY, STEP_SLOTS);
        }
        panic!("the rebuild never ended");
    }

    fn named(generations: &Generations, identity: u32, number: u64) -> bool {
        generations.candidates(position(KEY, identity)) & GenerationFilter::bit(number) != 0
    }

    #[test]
    fn a_table_rehashed_under_the_walk_is_walked_again() {
        let mut generations = two_generations_rebuilding();
        // All of generation 1 and half of generation 2's table walked.
        generations.step_rebuild(KEY, 256 + 80);
        assert!(generations.is_rebuilding());
        // Its table rehashed into one four times larger. A bucket's place
        // scales with the table, so nearly every entry stays on its side
        // of the walk. But of the nine homed in the last bucket, the one
        // that now wraps around to the first sat in the old table's last
        // bucket, not yet walked, and sits behind the walk in the new one:
        // the walk must start the table again.
        let newest = generations.newest_mut().expect("generation 2");
        let mut larger = take_table(&mut Vec::new(), 512, usize::MAX);
        for entry in newest.tables[0].entries() {
            larger.insert(position(KEY, (entry >> 32) as u32), entry);
        }
        newest.tables[0] = larger;
        generations.rehashed(2, 0);
        finish(&mut generations);
        assert!((0..200).all(|identity| named(&generations, identity, 1)));
        assert!(second()
            .into_iter()
            .all(|identity| named(&generations, identity, 2)));
    }

    /// A table moved out under the walk (see `growth`): whether the walk
    /// was in the moved table or already in the larger one, it walks the
    /// larger one again from its first slot; that one holds the moved
    /// one's entries and its own, some of them (1100..1150) inserted
    /// before the rebuild began and so noted only by the walk.
    #[test]
    fn a_table_moved_out_under_the_walk_walks_the_larger_one_again() {
        for walked in [64, 128 + 128] {
            let mut generations = Generations::default();
            generations.start(generation(1, &(0..200).collect::<Vec<_>>(), 256));
            let mut second = generation(2, &(1000..1100).collect::<Vec<_>>(), 128);
            second.begin_move(table_of(1100..1150, 256));
            second.len = 150;
            generations.start(second);
            generations.len = 350;
            generations.begin_rebuild(GenerationFilter::cells_for(350));
            // All of generation 1, then `walked` slots of generation 2.
            generations.step_rebuild(KEY, 256 + walked);
            assert!(generations.is_rebuilding());
            let newest = generations.newest_mut().expect("generation 2");
            let (_, at) = newest.step_move(KEY, usize::MAX).expect("moved out");
            assert_eq!((at, newest.tables.len()), (0, 1));
            generations.table_moved(2, at);
            finish(&mut generations);
            assert!((0..200).all(|identity| named(&generations, identity, 1)));
            assert!(
                (1000..1150).all(|identity| named(&generations, identity, 2)),
                "walked {walked}"
            );
        }
    }

    #[test]
    fn a_generation_forgotten_under_the_walk_is_skipped() {
        let mut generations = two_generations_rebuilding();
        generations.step_rebuild(KEY, 100);
        let (forgotten, _) = generations.pop_oldest_if(1).expect("generation 1");
        assert_eq!(forgotten.number, 1);
        finish(&mut generations);
        assert!(second()
            .into_iter()
            .all(|identity| named(&generations, identity, 2)));
        assert!((0..200).all(|identity| !named(&generations, identity, 1)));
    }

    #[test]
    fn identities_noted_during_the_walk_and_later_generations_are_in_the_new_filter() {
        let mut generations = two_generations_rebuilding();
        generations.step_rebuild(KEY, 10);
        // Generation 3 starts during the walk: its identities are noted as
        // they come, and the walk stops at generation 2.
        generations.start(generation(3, &[], 64));
        for identity in 5000..5040 {
            let newest = generations.newest_mut().expect("generation 3");
            newest.tables[0].insert(position(KEY, identity), (u64::from(identity) << 32) | 1);
            newest.len += 1;
            generations.len += 1;
            generations.note(position(KEY, identity), 3);
            generations.step_rebuild(KEY, 1);
        }
        finish(&mut generations);
        assert!((0..200).all(|identity| named(&generations, identity, 1)));
        assert!(second()
            .into_iter()
            .all(|identity| named(&generations, identity, 2)));
        assert!((5000..5040).all(|identity| named(&generations, identity, 3)));
    }
}
