//! One generation's tables: entries in buckets of one cache line, filled
//! from the first slot and only ever added to, and the spare tables a
//! steady stream reuses.

use std::time::Instant;

use super::Recall;

/// Tables are filled to this fraction (numerator / denominator) before
/// another one is started.
pub(super) const MAX_LOAD: (usize, usize) = (4, 5);

/// The smallest table, in entries: one bucket.
pub(super) const MIN_TABLE: usize = BUCKET;

/// Entries per bucket: 64 bytes, one cache line.
pub(super) const BUCKET: usize = 8;

/// A table's words, freed at `freed` and kept for reuse until two
/// generation spans later.
#[derive(Debug)]
pub(super) struct Spare {
    pub(super) words: Box<[u64]>,
    pub(super) freed: Instant,
    /// Words cleared from the first on, a few per insertion
    /// ([`clear_spare_step`]); the rest is cleared when it is reused.
    cleared: usize,
}

impl Spare {
    pub(super) fn bytes(&self) -> usize {
        self.words.len() * 8
    }
}

/// Spare tables kept at most.
pub(super) const SPARE_TABLES: usize = 4;

/// Words a table allocates beyond its buckets, so that its buckets can
/// start on a cache line wherever the allocator puts it: a request for
/// 64-byte alignment would go to `posix_memalign`, which is several times
/// dearer than a plain allocation, never reuses a freed block from the
/// allocator's per-thread cache, and fragments the heap it splits.
pub(super) const SLACK: usize = BUCKET - 1;

/// From this size a new table is allocated zeroed by `calloc` (see
/// `take_table`): far above what the allocator's per-thread cache serves,
/// and about where glibc starts mapping an allocation afresh rather than
/// carving it from its heap (128 KiB, raised to the largest block freed
/// since). Memory the allocator takes fresh from the kernel is known to be
/// zero, and `calloc` does not clear it again.
const LAZILY_ZEROED_FROM: usize = 64 << 10;

/// The bytes a table of `slots` slots (whole buckets) takes.
pub(super) const fn table_bytes(slots: usize) -> usize {
    (slots.div_ceil(BUCKET) * BUCKET + SLACK) * 8
}

/// An insert-only set of entries `identity << 32 | fingerprint`, in
/// buckets probed linearly; zero marks a free slot (a fingerprint is never
/// zero). An entry goes into the first free slot of the first bucket, from
/// its home bucket on, that has one: so a bucket with a free slot was never
/// passed over, and a lookup stops there.
///
/// A bucket is eight entries, one cache line: the buckets start at
/// `offset` words into `words`, the first line boundary in it.
#[derive(Debug)]
pub(super) struct Table {
    words: Box<[u64]>,
    offset: u32,
    len: u32,
}

/// The keyed hash of `identity` that places it in a table.
pub(super) fn position(key: u64, identity: u32) -> u64 {
    let mut x = u64::from(identity) ^ key;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Slots for about `entries` entries at the highest load.
pub(super) fn slots_for(entries: usize) -> usize {
    entries * MAX_LOAD.1 / MAX_LOAD.0 + 1
}

/// A table of at least `slots` slots, whole buckets (fewer if `budget`
/// bytes cannot hold them, never fewer than the smallest table), reusing a
/// spare table up to a quarter larger when there is one.
pub(super) fn take_table(spare: &mut Vec<Spare>, slots: usize, budget: usize) -> Table {
    let affordable = budget.saturating_sub(SLACK * 8) / 8;
    let buckets = slots.min(affordable).max(MIN_TABLE).div_ceil(BUCKET);
    let words = buckets * BUCKET + SLACK;
    let fits = |spare: &Spare| {
        let len = spare.words.len();
        len >= words
            && len - SLACK <= (buckets + buckets / 4) * BUCKET
            && spare.bytes() <= budget.max(table_bytes(MIN_TABLE))
    };
    // Of the spares that fit, the one with the most already cleared.
    let reusable = spare
        .iter()
        .enumerate()
        .filter(|(_, spare)| fits(spare))
        .max_by_key(|(_, spare)| spare.cleared)
        .map(|(index, _)| index);
    let words = match reusable {
        Some(index) => {
            let Spare {
                words: mut reused,
                cleared,
                ..
            } = spare.swap_remove(index);
            reused[cleared..].fill(0);
            // A word left dirty would read as an entry, or make a bucket
            // look full to every insertion.
            debug_assert!(reused.iter().all(|&word| word == 0));
            reused
        }
        // A large table from `calloc`: what the allocator takes fresh from
        // the kernel comes zeroed, page by page as it is first touched, so
        // its cost is spread over the insertions that fill it. Cleared
        // here, a table of a few megabytes (a busy stream's generation)
        // stalled the insertion that made it for milliseconds.
        None if words * 8 >= LAZILY_ZEROED_FROM => vec![0u64; words].into_boxed_slice(),
        None => {
            // A plain allocation (see `SLACK`), zeroed: `vec![0; n]` would
            // call `calloc`, which glibc (before 2.41) serves without its
            // per-thread cache.
            #[allow(clippy::slow_vector_initialization)]
            let mut fresh = Vec::with_capacity(words);
            fresh.resize(words, 0u64);
            fresh.into_boxed_slice()
        }
    };
    // The first line boundary in the allocation: at most `SLACK` words in.
    let offset = (words.as_ptr() as usize / 8).wrapping_neg() % BUCKET;
    Table {
        words,
        offset: offset as u32,
        len: 0,
    }
}

/// Keeps the words of a forgotten table for reuse, in place of the
/// oldest spare when all places are taken.
pub(super) fn keep_spare(spare: &mut Vec<Spare>, table: Table, now: Instant) {
    if spare.len() == SPARE_TABLES {
        spare.remove(0);
    }
    spare.push(Spare {
        words: table.words,
        freed: now,
        cleared: 0,
    });
}

/// Words of spare tables cleared per insertion: a spare is ready by the
/// time a steady stream's next generation takes it, instead of that
/// insertion clearing it whole (about 250 µs for the 2.6 MB of a
/// generation of 250,000 identities). 64 words, a few cache lines: a
/// table that size is cleared over some 5,000 insertions, a fiftieth of
/// its generation's.
pub(super) const CLEAR_WORDS: usize = 64;

/// Clears at most `words` more words of the first spare table that is not
/// yet clear. Returns whether any spare is left to clear.
pub(super) fn clear_spare_step(spare: &mut [Spare], words: usize) -> bool {
    let mut dirty = spare
        .iter_mut()
        .filter(|spare| spare.cleared < spare.words.len());
    let Some(first) = dirty.next() else {
        return false;
    };
    let end = first.words.len().min(first.cleared + words);
    first.words[first.cleared..end].fill(0);
    first.cleared = end;
    end < first.words.len() || dirty.next().is_some()
}

impl Table {
    /// Buckets held.
    #[inline]
    pub(super) fn buckets(&self) -> usize {
        (self.words.len() - SLACK) / BUCKET
    }

    /// The first slot of bucket `index`: zero if the bucket is empty.
    #[inline]
    pub(super) fn first_slot(&self, index: usize) -> u64 {
        self.words[self.offset as usize + index * BUCKET]
    }

    /// Bucket `index`'s eight slots.
    #[inline]
    pub(super) fn bucket(&self, index: usize) -> &[u64] {
        let start = self.offset as usize + index * BUCKET;
        &self.words[start..start + BUCKET]
    }

    #[inline]
    fn bucket_mut(&mut self, index: usize) -> &mut [u64] {
        let start = self.offset as usize + index * BUCKET;
        &mut self.words[start..start + BUCKET]
    }

    /// Slot `index` of the table (buckets in order): zero if free.
    #[inline]
    pub(super) fn slot(&self, index: usize) -> u64 {
        self.words[self.offset as usize + index]
    }

    /// Every entry held.
    pub(super) fn entries(&self) -> impl Iterator<Item = u64> + '_ {
        let start = self.offset as usize;
        self.words[start..start + self.slots()]
            .chunks_exact(BUCKET)
            .flat_map(|bucket| bucket.iter().copied().take_while(|&entry| entry != 0))
    }

    pub(super) fn bytes(&self) -> usize {
        self.words.len() * 8
    }

    pub(super) fn slots(&self) -> usize {
        self.buckets() * BUCKET
    }

    pub(super) fn is_full(&self) -> bool {
        (self.len as usize + 1) * MAX_LOAD.1 > self.slots() * MAX_LOAD.0
    }

    /// The home bucket of `hash`.
    #[inline]
    pub(super) fn home(&self, hash: u64) -> usize {
        ((u128::from(hash) * self.buckets() as u128) >> 64) as usize
    }

    /// Inserts `entry`, taken from another table, at its identity's
    /// position hash keyed with `key` (a table grown into a larger one).
    #[inline]
    pub(super) fn insert_moved(&mut self, key: u64, entry: u64) {
        self.insert(position(key, (entry >> 32) as u32), entry);
    }

    #[inline(always)]
    pub(super) fn insert(&mut self, hash: u64, entry: u64) {
        let mut index = self.home(hash);
        // `is_full` keeps a fifth of the slots free, so some bucket has room.
        loop {
            let bucket = self.bucket_mut(index);
            for slot in bucket.iter_mut() {
                if *slot == entry {
                    return;
                }
                if *slot == 0 {
                    *slot = entry;
                    self.len += 1;
                    return;
                }
            }
            index = self.next(index);
        }
    }

    /// Looks for `identity` from bucket `index` (its home bucket) on.
    #[inline(always)]
    pub(super) fn find_from(&self, mut index: usize, identity: u32, fingerprint: u32) -> Recall {
        let mut recall = Recall::Unknown;
        loop {
            let bucket = self.bucket(index);
            // Branch-free over the bucket: which slots' identity half is
            // `identity`. A free slot (zero) matches identity zero too: the
            // bucket fills from its first slot, so the lowest free slot ends
            // the entries, and the walk over the matches stops there.
            let mut matched = 0u32;
            for (slot, &entry) in bucket.iter().enumerate() {
                matched |= u32::from((entry >> 32) as u32 == identity) << slot;
            }
            while matched != 0 {
                let slot = matched.trailing_zeros() as usize;
                matched &= matched - 1;
                let entry = bucket[slot];
                if entry == 0 {
                    return recall;
                }
                if entry as u32 == fingerprint {
                    return Recall::Duplicate;
                }
                recall = Recall::Collision;
            }
            // Filled from its first slot: free somewhere if its last is.
            if bucket[BUCKET - 1] == 0 {
                return recall;
            }
            index = self.next(index);
        }
    }

    /// The bucket after `index`, wrapping around.
    fn next(&self, index: usize) -> usize {
        if index + 1 == self.buckets() {
            0
        } else {
            index + 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fills `table` to its load limit with entries of identities from
    /// `first` on; returns them.
    fn fill(table: &mut Table, first: u32) -> Vec<u64> {
        let mut entries = Vec::new();
        let mut identity = first;
        while !table.is_full() {
            let entry = (u64::from(identity) << 32) | 7;
            table.insert(position(5, identity), entry);
            entries.push(entry);
            identity += 1;
        }
        entries
    }

    #[test]
    fn buckets_start_on_cache_lines_and_hold_exactly_what_was_inserted() {
        let mut spare = Vec::new();
        let now = Instant::now();
        for slots in [1, 8, 9, 16, 100, 1000, 5000] {
            let mut table = take_table(&mut spare, slots, usize::MAX);
            assert!(table.slots() >= slots.max(MIN_TABLE));
            assert_eq!(table.bytes(), table_bytes(table.slots()));
            for index in 0..table.buckets() {
                assert_eq!(table.bucket(index).as_ptr() as usize % 64, 0);
            }
            let entries = fill(&mut table, 1000);
            assert_eq!(table.entries().count(), entries.len());
            for (i, entry) in entries.iter().enumerate() {
                let identity = (entry >> 32) as u32;
                let home = table.home(position(5, identity));
                assert_eq!(table.find_from(home, identity, 7), Recall::Duplicate);
                assert_eq!(table.find_from(home, identity, 8), Recall::Collision);
                let absent = 1000 + entries.len() as u32 + i as u32;
                let home = table.home(position(5, absent));
                assert_eq!(table.find_from(home, absent, 7), Recall::Unknown);
            }
            // Kept and reused: the same words, emptied, still aligned.
            let bytes = table.bytes();
            keep_spare(&mut spare, table, now);
            let reused = take_table(&mut spare, slots, usize::MAX);
            assert!(spare.is_empty(), "the spare was reused");
            assert_eq!(reused.bytes(), bytes);
            assert_eq!(reused.entries().count(), 0);
            assert_eq!(reused.bucket(0).as_ptr() as usize % 64, 0);
        }
    }

    /// Spares cleared a few words per step, first one then the next, come
    /// back all zero when reused, whether the steps cleared none, part or
    /// all of them.
    #[test]
    fn a_spare_cleared_step_by_step_or_at_reuse_comes_back_empty() {
        let now = Instant::now();
        for steps in [0, 1, 7, usize::MAX] {
            let mut spare = Vec::new();
            let mut first = take_table(&mut spare, 1000, usize::MAX);
            let mut second = take_table(&mut spare, 1000, usize::MAX);
            fill(&mut first, 1);
            fill(&mut second, 5000);
            let len = first.words.len();
            keep_spare(&mut spare, first, now);
            keep_spare(&mut spare, second, now);
            let (mut left, mut taken) = (true, 0);
            while left && taken < steps {
                left = clear_spare_step(&mut spare, CLEAR_WORDS);
                taken += 1;
            }
            if steps == usize::MAX {
                assert!(!left);
                assert_eq!(taken, 2 * len.div_ceil(CLEAR_WORDS));
            } else {
                assert_eq!(spare[0].cleared, (steps * CLEAR_WORDS).min(len));
                assert_eq!(spare[1].cleared, 0);
            }
            assert!(spare
                .iter()
                .all(|spare| spare.words[..spare.cleared].iter().all(|&word| word == 0)));
            for _ in 0..2 {
                let reused = take_table(&mut spare, 1000, usize::MAX);
                assert!(reused.words.iter().all(|&word| word == 0), "{steps} steps");
            }
            assert!(spare.is_empty());
        }
    }

    #[test]
    fn a_budget_caps_a_table_at_the_smallest() {
        let table = take_table(&mut Vec::new(), 1000, 0);
        assert_eq!(table.slots(), MIN_TABLE);
        assert_eq!(table.bytes(), table_bytes(MIN_TABLE));
        let table = take_table(&mut Vec::new(), 1000, table_bytes(64));
        assert_eq!(table.bytes(), table_bytes(64));
    }
}
