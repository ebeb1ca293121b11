//! One address's record: per retention class, its generations' tables.
//!
//! Laid out for a server with many peers, where each look-up finds the
//! record cold: the lifetime class's newest generation (which every
//! `recall` reads and every insertion after an ACK writes) is held inline,
//! beside the pointer to the rarely used window class, so that the record's
//! first bytes name the table to read. Older generations wait in a queue of
//! their own, which a single-generation history never allocates; the window
//! class, whose identities are those whose RECV attempts ran out, is boxed,
//! and allocated only for an address that has one.

use std::collections::VecDeque;
use std::net::SocketAddr;

use core::hash::BuildHasher;
use hashbrown::hash_table::{Entry, HashTable};

use smallvec::SmallVec;

use super::filter::GenerationFilter;
use super::rebuild::{Rebuild, REBUILD_BYTES};
use super::table::Table;
use super::Retention;
use crate::table_hash::{AddressKey, TableHashState};

/// One generation of one class: its number and tables.
#[derive(Debug)]
pub(super) struct Generation {
    pub(super) number: u64,
    pub(super) tables: SmallVec<[Table; 1]>,
    pub(super) len: usize,
    /// While its second-to-last table is being copied into its last (see
    /// `growth`), the slots copied so far; else `growth::NOT_MOVING`.
    pub(super) moved: u32,
}

/// One class's generations of one address, oldest first: the newest
/// inline, the older ones and the filter (none for most addresses) boxed.
#[derive(Debug, Default)]
#[repr(C)]
pub(super) struct Generations {
    newest: Option<Generation>,
    /// Identities held.
    pub(super) len: usize,
    /// Allocated while the class has older generations or a filter.
    rest: Option<Box<Rest>>,
}

/// What one class holds besides its newest generation.
#[derive(Debug, Default)]
struct Rest {
    older: VecDeque<Generation>,
    /// Which generations may hold an identity (see `filter`).
    filter: GenerationFilter,
    /// Its replacement while it is being filled (see `rebuild`).
    rebuild: Option<Box<Rebuild>>,
}

/// The bytes an address's window class takes once it has one: its box.
pub(super) const WINDOW_BYTES: usize = core::mem::size_of::<Generations>();

/// The bytes of a class's box of older generations and filter.
pub(super) const REST_BYTES: usize = core::mem::size_of::<Rest>();

impl Generations {
    /// The newest generation, where insertions go.
    #[inline]
    pub(super) fn newest(&self) -> Option<&Generation> {
        self.newest.as_ref()
    }

    #[inline]
    pub(super) fn newest_mut(&mut self) -> Option<&mut Generation> {
        self.newest.as_mut()
    }

    /// Whether generations other than the newest are held.
    #[inline]
    pub(super) fn has_older(&self) -> bool {
        self.rest
            .as_ref()
            .is_some_and(|rest| !rest.older.is_empty())
    }

    /// The generations older than the newest, oldest first, and the
    /// filter that rules them out; none for most addresses.
    #[inline]
    pub(super) fn older(&self) -> Option<(&VecDeque<Generation>, &GenerationFilter)> {
        let rest = self.rest.as_deref()?;
        (!rest.older.is_empty()).then_some((&rest.older, &rest.filter))
    }

    /// Every generation, oldest first.
    #[inline]
    pub(super) fn iter(&self) -> impl Iterator<Item = &Generation> {
        self.rest
            .iter()
            .flat_map(|rest| rest.older.iter())
            .chain(self.newest.as_ref())
    }

    /// The numbers of every generation held, oldest first.
    pub(super) fn numbers(&self) -> SmallVec<[u64; 8]> {
        self.iter().map(|generation| generation.number).collect()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.newest.is_none()
    }

    /// The generations (bits of `number % 8`) that may hold an identity
    /// whose position hash is `hash` (see `filter`): all without a filter.
    #[inline]
    pub(super) fn candidates(&self, hash: u64) -> u8 {
        self.rest
            .as_ref()
            .map_or(u8::MAX, |rest| rest.filter.candidates(hash))
    }

    /// Starts `generation`, newer than every one held: returns the bytes
    /// that took besides the generation's own.
    pub(super) fn start(&mut self, generation: Generation) -> usize {
        let mut added = 0;
        let number = generation.number;
        if let Some(previous) = self.newest.replace(generation) {
            let rest = self.rest.get_or_insert_with(|| {
                added = REST_BYTES;
                Box::default()
            });
            let live = rest.older.iter().chain([&previous]);
            let live = live.map(|generation| generation.number);
            if let Some(rebuild) = &mut rest.rebuild {
                rebuild.filter.start(number, live.clone());
            }
            rest.filter.start(number, live);
            if rest.older.capacity() == 0 {
                // Most addresses never see a third generation: no room
                // for four.
                rest.older.reserve_exact(1);
            }
            rest.older.push_back(previous);
        }
        added
    }

    /// Notes an identity of generation `number` in the filter, if any,
    /// and in the one being rebuilt.
    #[inline]
    pub(super) fn note(&mut self, hash: u64, number: u64) {
        if let Some(rest) = &mut self.rest {
            rest.filter.insert(hash, number);
            if let Some(rebuild) = &mut rest.rebuild {
                rebuild.filter.insert(hash, number);
            }
        }
    }

    /// Whether a new filter is being filled.
    #[inline]
    pub(super) fn is_rebuilding(&self) -> bool {
        self.rest
            .as_ref()
            .is_some_and(|rest| rest.rebuild.is_some())
    }

    /// The bytes [`begin_rebuild`](Self::begin_rebuild) takes for a
    /// filter of `cells` cells.
    pub(super) fn rebuild_bytes(&self, cells: usize) -> usize {
        let rest = if self.rest.is_none() { REST_BYTES } else { 0 };
        GenerationFilter::bytes_for(cells) + REBUILD_BYTES + rest
    }

    /// Begins filling a filter of `cells` cells for the identities held
    /// (see `rebuild`); the current one answers until it is complete.
    /// Returns the bytes taken.
    pub(super) fn begin_rebuild(&mut self, cells: usize) -> usize {
        let numbers = self.numbers();
        let (Some(&first), Some(&last)) = (numbers.first(), numbers.last()) else {
            return 0;
        };
        let taken = self.rebuild_bytes(cells);
        let filter = GenerationFilter::empty(cells, &numbers);
        let rest = self.rest.get_or_insert_with(Box::default);
        rest.rebuild = Some(Box::new(Rebuild::new(filter, first, last)));
        taken
    }

    /// Walks at most `slots` more table slots into the filter being
    /// rebuilt, position hashes keyed with `key`; once it is complete it
    /// replaces the current filter. Returns the bytes given back.
    pub(super) fn step_rebuild(&mut self, key: u64, slots: usize) -> usize {
        let Self { newest, rest, .. } = self;
        let Some(rest) = rest.as_deref_mut() else {
            return 0;
        };
        let Some(rebuild) = rest.rebuild.as_deref_mut() else {
            return 0;
        };
        if !rebuild.step(rest.older.iter().chain(newest.as_ref()), key, slots) {
            return 0;
        }
        match rest.rebuild.take() {
            // The old filter goes, and the rebuild's box; its cells stay.
            Some(rebuild) => {
                std::mem::replace(&mut rest.filter, rebuild.filter).bytes() + REBUILD_BYTES
            }
            None => 0,
        }
    }

    /// Table `table` of generation `number` was rehashed into a larger
    /// one: a rebuild walking it walks it again.
    pub(super) fn rehashed(&mut self, number: u64, table: usize) {
        if let Some(rebuild) = self.rest.as_mut().and_then(|rest| rest.rebuild.as_mut()) {
            rebuild.rehashed(number, table);
        }
    }

    /// Table `table` of generation `number` was moved into the next one
    /// and taken out: a rebuild walking there walks the larger one again.
    pub(super) fn table_moved(&mut self, number: u64, table: usize) {
        if let Some(rebuild) = self.rest.as_mut().and_then(|rest| rest.rebuild.as_mut()) {
            rebuild.table_moved(number, table);
        }
    }

    /// Drops the filter and any rebuild of it (every generation is then
    /// read): returns the bytes given back, the box's included once it
    /// holds nothing.
    pub(super) fn drop_filter(&mut self) -> usize {
        let Some(rest) = self.rest.as_deref_mut() else {
            return 0;
        };
        let mut given = std::mem::take(&mut rest.filter).bytes();
        if let Some(rebuild) = rest.rebuild.take() {
            given += rebuild.bytes();
        }
        given + self.tidy()
    }

    /// Whether the filter wants a rebuild for the identities held.
    pub(super) fn filter_wants_rebuild(&self) -> bool {
        match &self.rest {
            Some(rest) => rest.filter.wants_rebuild(self.len),
            None => GenerationFilter::default().wants_rebuild(self.len),
        }
    }

    /// Puts `filter` in place of the class's: returns the bytes taken and
    /// the bytes given back (its box's included).
    #[cfg(test)]
    pub(super) fn replace_filter(&mut self, filter: GenerationFilter) -> (usize, usize) {
        let mut taken = filter.bytes();
        let rest = self.rest.get_or_insert_with(|| {
            taken += REST_BYTES;
            Box::default()
        });
        let given = std::mem::replace(&mut rest.filter, filter).bytes();
        (taken, given + self.tidy())
    }

    /// The oldest generation, if its number is `number`: removed, its bit
    /// cleared from the filter, and the filter dropped if it stood aside
    /// for a conflict that is over. Returns it and the bytes freed besides
    /// its own.
    pub(super) fn pop_oldest_if(&mut self, number: u64) -> Option<(Generation, usize)> {
        let Some(rest) = &mut self.rest else {
            return match &self.newest {
                Some(newest) if newest.number == number => {
                    self.newest.take().map(|generation| (generation, 0))
                }
                _ => None,
            };
        };
        let oldest = match rest.older.front() {
            Some(oldest) if oldest.number == number => rest.older.pop_front()?,
            Some(_) => return None,
            None => match &self.newest {
                Some(newest) if newest.number == number => self.newest.take()?,
                _ => return None,
            },
        };
        rest.filter.forget(oldest.number);
        if let Some(rebuild) = &mut rest.rebuild {
            // Its walk skips the generation, gone from both filters.
            rebuild.filter.forget(oldest.number);
        }
        let live = rest
            .older
            .iter()
            .chain(self.newest.as_ref())
            .map(|generation| generation.number)
            .collect::<SmallVec<[u64; 8]>>();
        let mut freed = rest.filter.settle(&live);
        if freed > 0 {
            // The filter stood aside for a conflict now over, and so did its
            // rebuild, which saw the same generations start: both go.
            if let Some(rebuild) = rest.rebuild.take() {
                freed += rebuild.bytes();
            }
        }
        Some((oldest, freed))
    }

    /// The bytes the class's structures take, worked out afresh (the
    /// accounting's convention: a generation costs `GENERATION_BYTES`
    /// besides its tables).
    #[cfg(test)]
    pub(super) fn recount(&self) -> usize {
        let generations: usize = self
            .iter()
            .map(|generation| {
                super::GENERATION_BYTES + generation.tables.iter().map(Table::bytes).sum::<usize>()
            })
            .sum();
        let rest = self.rest.as_ref().map_or(0, |rest| {
            let rebuild = rest.rebuild.as_ref().map_or(0, |rebuild| rebuild.bytes());
            REST_BYTES + rest.filter.bytes() + rebuild
        });
        generations + rest
    }

    /// Drops the box of older generations and filter once it holds
    /// neither: returns the bytes freed.
    pub(super) fn tidy(&mut self) -> usize {
        let idle = self.rest.as_ref().is_some_and(|rest| {
            rest.older.is_empty() && rest.filter.bytes() == 0 && rest.rebuild.is_none()
        });
        if idle {
            // An empty filter rules nothing out, conflicted or not.
            self.rest = None;
            REST_BYTES
        } else {
            0
        }
    }
}

/// One address's generations, per retention class.
#[derive(Debug, Default)]
#[repr(C)]
pub(super) struct History {
    /// The window class, boxed: most addresses never have one.
    window: Option<Box<Generations>>,
    /// Bytes of its tables, generations, filters and boxes.
    pub(super) bytes: usize,
    lifetime: Generations,
}

impl History {
    /// The lifetime class's generations.
    #[inline]
    pub(super) fn lifetime(&self) -> &Generations {
        &self.lifetime
    }

    /// `class`'s generations, if any.
    #[inline]
    pub(super) fn class(&self, class: Retention) -> Option<&Generations> {
        match class {
            Retention::Lifetime => Some(&self.lifetime),
            Retention::Window => self.window.as_deref(),
        }
    }

    /// `class`'s generations, if any, to change.
    #[inline]
    pub(super) fn class_mut(&mut self, class: Retention) -> Option<&mut Generations> {
        match class {
            Retention::Lifetime => Some(&mut self.lifetime),
            Retention::Window => self.window.as_deref_mut(),
        }
    }

    /// `class`'s generations, the window class's box allocated if it had
    /// none; with the bytes that took (see [`WINDOW_BYTES`]).
    #[inline]
    pub(super) fn class_or_new(&mut self, class: Retention) -> (&mut Generations, usize) {
        match class {
            Retention::Lifetime => (&mut self.lifetime, 0),
            Retention::Window => {
                let added = if self.window.is_none() {
                    WINDOW_BYTES
                } else {
                    0
                };
                (self.window.get_or_insert_with(Box::default), added)
            }
        }
    }

    /// Drops the window class's box once it holds no generation (its
    /// filter, and any rebuild of it, went with its last generation):
    /// returns the bytes freed.
    pub(super) fn settle_window(&mut self) -> usize {
        let idle = self
            .window
            .as_ref()
            .is_some_and(|window| window.is_empty() && window.rest.is_none());
        if idle {
            self.window = None;
            WINDOW_BYTES
        } else {
            0
        }
    }

    /// The bytes of its structures, worked out afresh: what `bytes` must be.
    #[cfg(test)]
    pub(super) fn recount(&self) -> usize {
        let window = self
            .window
            .as_ref()
            .map_or(0, |window| WINDOW_BYTES + window.recount());
        self.lifetime.recount() + window
    }

    /// Whether no class holds a generation.
    pub(super) fn is_empty(&self) -> bool {
        self.lifetime.is_empty() && self.window.is_none()
    }
}

/// One address's slot in [`Histories`]: its key and history on two whole
/// cache lines (the table aligns its slots to them), so that a look-up's
/// key comparison and the history's first fields share one line.
#[derive(Debug)]
#[repr(C, align(64))]
pub(super) struct Record {
    key: SocketAddr,
    history: History,
}

/// Every address's history, by address (hashed as one word for IPv4: see
/// [`AddressKey`]).
#[derive(Debug)]
pub(super) struct Histories {
    table: HashTable<Record>,
    hasher: TableHashState,
}

impl Histories {
    pub(super) fn new(hasher: TableHashState) -> Self {
        Self {
            table: HashTable::new(),
            hasher,
        }
    }

    #[inline]
    fn hash(&self, address: &SocketAddr) -> u64 {
        self.hasher.hash_one(AddressKey(*address))
    }

    #[inline(always)]
    pub(super) fn get(&self, address: &SocketAddr) -> Option<&History> {
        self.table
            .find(self.hash(address), |record| record.key == *address)
            .map(|record| &record.history)
    }

    #[inline]
    pub(super) fn get_mut(&mut self, address: &SocketAddr) -> Option<&mut History> {
        let hash = self.hash(address);
        self.table
            .find_mut(hash, |record| record.key == *address)
            .map(|record| &mut record.history)
    }

    /// `address`'s history, a new empty one if it had none (then `true`).
    #[inline]
    pub(super) fn get_or_new(&mut self, address: SocketAddr) -> (&mut History, bool) {
        let hash = self.hash(&address);
        let hasher = &self.hasher;
        match self.table.entry(
            hash,
            |record| record.key == address,
            |record| hasher.hash_one(AddressKey(record.key)),
        ) {
            Entry::Occupied(occupied) => (&mut occupied.into_mut().history, false),
            Entry::Vacant(vacant) => {
                let record = vacant.insert(Record {
                    key: address,
                    history: History::default(),
                });
                (&mut record.into_mut().history, true)
            }
        }
    }

    pub(super) fn remove(&mut self, address: &SocketAddr) {
        let hash = self.hash(address);
        if let Ok(occupied) = self.table.find_entry(hash, |record| record.key == *address) {
            occupied.remove();
        }
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &History> {
        self.table.iter().map(|record| &record.history)
    }

    pub(super) fn clear(&mut self) {
        self.table.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generation(number: u64) -> Generation {
        Generation {
            number,
            tables: SmallVec::new(),
            len: 0,
            moved: crate::remembered::growth::NOT_MOVING,
        }
    }

    #[test]
    fn generations_keep_their_order_through_the_newest_and_the_box() {
        let mut generations = Generations::default();
        assert!(generations.is_empty() && !generations.has_older());
        assert!(generations.pop_oldest_if(0).is_none());
        // The first generation needs no box; the second brings it.
        assert_eq!(generations.start(generation(3)), 0);
        assert_eq!(generations.start(generation(4)), REST_BYTES);
        assert_eq!(generations.start(generation(6)), 0);
        assert_eq!(generations.numbers().as_slice(), &[3, 4, 6]);
        assert_eq!(generations.newest().map(|g| g.number), Some(6));
        assert!(generations.has_older());
        // Only the oldest goes, and only by its number.
        let number = |popped: Option<(Generation, usize)>| popped.map(|(g, _)| g.number);
        assert!(generations.pop_oldest_if(4).is_none());
        assert_eq!(number(generations.pop_oldest_if(3)), Some(3));
        assert_eq!(number(generations.pop_oldest_if(4)), Some(4));
        assert!(!generations.has_older());
        assert_eq!(generations.tidy(), REST_BYTES, "an idle box is dropped");
        assert_eq!(generations.tidy(), 0);
        assert!(generations.pop_oldest_if(5).is_none());
        assert_eq!(number(generations.pop_oldest_if(6)), Some(6));
        assert!(generations.is_empty());
    }

    #[test]
    fn a_filter_keeps_its_box_and_rules_out_only_with_one() {
        let mut generations = Generations::default();
        generations.start(generation(1));
        assert_eq!(generations.candidates(99), u8::MAX, "no filter: all");
        let filter = GenerationFilter::empty(256, &[1]);
        let bytes = filter.bytes();
        assert_eq!(bytes, 256 + 63, "its cells and the slack that aligns them");
        assert_eq!(generations.replace_filter(filter), (bytes + REST_BYTES, 0));
        assert_eq!(generations.candidates(99), 0, "nothing noted yet");
        generations.note(99, 1);
        assert_eq!(generations.candidates(99), GenerationFilter::bit(1));
        assert_eq!(generations.tidy(), 0, "the filter keeps the box");
        let (_, given) = generations.replace_filter(GenerationFilter::default());
        assert_eq!(given, bytes + REST_BYTES);
        assert_eq!(generations.candidates(99), u8::MAX);
    }

    #[test]
    fn a_record_is_two_whole_cache_lines() {
        // The key and the history's first fields share the first line;
        // growing the history past 96 bytes would add a third.
        assert_eq!(core::mem::align_of::<Record>(), 64);
        assert_eq!(core::mem::size_of::<Record>(), 128);
    }

    #[test]
    fn histories_are_found_by_address_and_aligned() {
        let mut histories = Histories::new(TableHashState::with_seed(1));
        let address = |port: u16| -> SocketAddr { ([10, 0, 0, 1], port).into() };
        let v6: SocketAddr = "[2001:db8::1]:7".parse().unwrap_or_else(|_| address(0));
        for port in 1..=100 {
            let (history, new) = histories.get_or_new(address(port));
            assert!(new);
            history.bytes = usize::from(port);
        }
        let (history, new) = histories.get_or_new(v6);
        assert!(new);
        history.bytes = 1000;
        for port in 1..=100 {
            let (history, new) = histories.get_or_new(address(port));
            assert!(!new);
            assert_eq!(history.bytes, usize::from(port));
            let history = histories.get(&address(port)).map(|h| h as *const History);
            let record = history.map(|h| h as usize - core::mem::offset_of!(Record, history));
            assert_eq!(record.map(|r| r % 64), Some(0), "a record starts a line");
        }
        assert_eq!(histories.get(&v6).map(|h| h.bytes), Some(1000));
        assert!(histories.get(&address(101)).is_none());
        histories.remove(&address(50));
        histories.remove(&address(50));
        assert!(histories.get(&address(50)).is_none());
        assert!(histories.get_mut(&address(51)).is_some());
        assert_eq!(histories.values().count(), 100);
        histories.clear();
        assert_eq!(histories.values().count(), 0);
    }

    #[test]
    fn the_window_class_is_boxed_only_while_it_holds_a_generation() {
        let mut history = History::default();
        assert!(history.is_empty() && history.class(Retention::Window).is_none());
        let (window, added) = history.class_or_new(Retention::Window);
        window.start(generation(1));
        assert_eq!(added, WINDOW_BYTES);
        assert_eq!(history.class_or_new(Retention::Window).1, 0);
        assert_eq!(history.settle_window(), 0);
        assert!(!history.is_empty());
        let window = history.class_mut(Retention::Window).expect("held");
        assert!(window.pop_oldest_if(1).is_some());
        assert_eq!(history.settle_window(), WINDOW_BYTES);
        assert!(history.is_empty());
    }
}
