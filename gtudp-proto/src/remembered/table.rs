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

/// A table's slots, freed at `freed` and kept for reuse until two
/// generation spans later.
#[derive(Debug)]
pub(super) struct Spare {
    pub(super) buckets: Box<[Bucket]>,
    pub(super) freed: Instant,
}

/// Spare tables kept at most.
pub(super) const SPARE_TABLES: usize = 4;

/// An insert-only set of entries `identity << 32 | fingerprint`, in
/// buckets probed linearly; zero marks a free slot (a fingerprint is never
/// zero). An entry goes into the first free slot of the first bucket, from
/// its home bucket on, that has one: so a bucket with a free slot was never
/// passed over, and a lookup stops there.
#[derive(Debug)]
pub(super) struct Table {
    pub(super) buckets: Box<[Bucket]>,
    len: usize,
}

/// Eight entries filled from the first: one cache line.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(64))]
pub(super) struct Bucket(pub(super) [u64; BUCKET]);

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
    let buckets = slots.min(budget / 8).max(MIN_TABLE).div_ceil(BUCKET);
    let bucket_bytes = core::mem::size_of::<Bucket>();
    let fits = |spare: &Spare| {
        let len = spare.buckets.len();
        len >= buckets
            && len <= buckets + buckets / 4
            && len * bucket_bytes <= budget.max(MIN_TABLE * 8)
    };
    let buckets = match spare.iter().position(fits) {
        Some(index) => {
            let mut reused = spare.swap_remove(index).buckets;
            reused.fill(Bucket::default());
            reused
        }
        None => vec![Bucket::default(); buckets].into_boxed_slice(),
    };
    Table { buckets, len: 0 }
}

/// Keeps the buckets of a forgotten table for reuse, in place of the
/// oldest spare when all places are taken.
pub(super) fn keep_spare(spare: &mut Vec<Spare>, buckets: Box<[Bucket]>, now: Instant) {
    if spare.len() == SPARE_TABLES {
        spare.remove(0);
    }
    spare.push(Spare {
        buckets,
        freed: now,
    });
}

impl Table {
    /// Every entry held.
    pub(super) fn entries(&self) -> impl Iterator<Item = u64> + '_ {
        self.buckets
            .iter()
            .flat_map(|bucket| bucket.0.iter().copied().take_while(|&entry| entry != 0))
    }

    pub(super) fn bytes(&self) -> usize {
        self.buckets.len() * core::mem::size_of::<Bucket>()
    }

    pub(super) fn slots(&self) -> usize {
        self.buckets.len() * BUCKET
    }

    pub(super) fn is_full(&self) -> bool {
        (self.len + 1) * MAX_LOAD.1 > self.slots() * MAX_LOAD.0
    }

    /// The home bucket of `hash`.
    pub(super) fn home(&self, hash: u64) -> usize {
        ((u128::from(hash) * self.buckets.len() as u128) >> 64) as usize
    }

    #[inline]
    pub(super) fn insert(&mut self, hash: u64, entry: u64) {
        let mut index = self.home(hash);
        // `is_full` keeps a fifth of the slots free, so some bucket has room.
        loop {
            let bucket = &mut self.buckets[index];
            for slot in bucket.0.iter_mut() {
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
    pub(super) fn find_from(&self, mut index: usize, identity: u32, fingerprint: u32) -> Recall {
        let mut recall = Recall::Unknown;
        loop {
            let bucket = &self.buckets[index].0;
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
        if index + 1 == self.buckets.len() {
            0
        } else {
            index + 1
        }
    }
}
