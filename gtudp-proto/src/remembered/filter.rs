//! Which generations may hold an identity: one byte per cell, one bit per
//! live generation, so that a lookup reads one cell and then only the
//! generations' tables its bits name.
//!
//! A new identity (the common case) must miss in every generation's table,
//! and in a large memory each table is a cache miss. The cell an identity
//! hashes to has bit `number % 8` set for every generation `number` that
//! holds an identity hashing there; a clear bit rules that generation out.
//! So the filter never hides an entry (no false negative): a bit is set on
//! every insertion and cleared only when its generation is forgotten whole.
//! With two cells per identity, a generation holding a fifth of them sets
//! about a tenth of the cells, and a miss reads one cell and about half a
//! table instead of five tables.
//!
//! At most `GENERATIONS + 1` generations of a class are live at once (a
//! generation is forgotten `GENERATIONS` spans after it ends, before the
//! next insertion), so their numbers modulo 8 differ. Should two ever share
//! a bit, the filter stands aside (every table is read), and is dropped once
//! one of the two is forgotten (clearing the shared bit would hide the
//! other's entries); the next insertion builds it afresh.
//!
//! The lifetime class's newest generation is read on every lookup whatever
//! its filter says, so while that class has a single generation its filter
//! is neither built nor grown: a stream that starts gets its filter once,
//! when its second generation does, instead of at each doubling of its
//! count.

/// Generations a cell tells apart.
const BITS: u64 = 8;

/// Identities a class holds before it gets a filter: below this its tables
/// are few and small, and the filter's bytes are not worth it.
pub(super) const FILTER_FROM: usize = 256;

/// One class's filter (empty: none, every generation is read).
#[derive(Debug, Default)]
pub(super) struct GenerationFilter {
    cells: Box<[u8]>,
    /// Two live generations share a bit: the filter stands aside.
    conflicted: bool,
}

impl GenerationFilter {
    pub(super) fn bytes(&self) -> usize {
        self.cells.len()
    }

    /// The generations that may hold an identity whose position hash is
    /// `hash`, as bits of `number % 8`.
    #[inline]
    pub(super) fn candidates(&self, hash: u64) -> u8 {
        if self.cells.is_empty() || self.conflicted {
            return u8::MAX;
        }
        self.cells[self.cell(hash)]
    }

    /// The bit of generation `number`.
    pub(super) fn bit(number: u64) -> u8 {
        1 << (number % BITS)
    }

    fn cell(&self, hash: u64) -> usize {
        // The table's home bucket uses the hash's high bits; the cell uses
        // the low ones, so the two are independent.
        ((u128::from(hash.rotate_left(32)) * self.cells.len() as u128) >> 64) as usize
    }

    /// Notes an identity of generation `number`.
    #[inline]
    pub(super) fn insert(&mut self, hash: u64, number: u64) {
        if !self.cells.is_empty() {
            let cell = self.cell(hash);
            self.cells[cell] |= Self::bit(number);
        }
    }

    /// Generation `number` was forgotten: clears its bit everywhere.
    pub(super) fn forget(&mut self, number: u64) {
        let keep = !Self::bit(number);
        self.cells.iter_mut().for_each(|cell| *cell &= keep);
    }

    /// A new generation `number` starts while `live` generations are held:
    /// if one of them has its bit, the filter stands aside.
    pub(super) fn start(&mut self, number: u64, live: impl Iterator<Item = u64>) {
        let bit = Self::bit(number);
        if live
            .into_iter()
            .any(|other| other != number && Self::bit(other) == bit)
        {
            self.conflicted = true;
        }
    }

    /// Whether the filter should be rebuilt for `len` identities: none yet
    /// at `FILTER_FROM`, or more identities than cells (grow), or fewer than
    /// an eighth of them (shrink, or drop below `FILTER_FROM / 2`).
    pub(super) fn wants_rebuild(&self, len: usize) -> bool {
        let cells = self.cells.len();
        if cells == 0 {
            len >= FILTER_FROM
        } else {
            (len > cells || len * 8 < cells) && !self.conflicted
        }
    }

    /// After a generation was forgotten, with `live` the numbers left: a
    /// filter standing aside for a conflict that is over is dropped (its
    /// merged bits cannot be told apart). Returns the bytes freed.
    pub(super) fn settle(&mut self, live: &[u64]) -> usize {
        if !self.conflicted || conflict(live) {
            return 0;
        }
        std::mem::take(self).bytes()
    }

    /// The cells a rebuild for `len` identities takes (none below
    /// `FILTER_FROM / 2`).
    pub(super) fn cells_for(len: usize) -> usize {
        if len < FILTER_FROM / 2 {
            0
        } else {
            2 * len
        }
    }

    /// A filter of `cells` cells over `entries` (position hash and
    /// generation number each), with `generations` the numbers live.
    pub(super) fn rebuilt(
        cells: usize,
        generations: &[u64],
        entries: impl Iterator<Item = (u64, u64)>,
    ) -> Self {
        let mut filter = Self {
            cells: vec![0; cells].into_boxed_slice(),
            conflicted: conflict(generations),
        };
        if cells > 0 {
            for (hash, number) in entries {
                filter.insert(hash, number);
            }
        }
        filter
    }
}

/// Whether two of `numbers` share a bit.
fn conflict(numbers: &[u64]) -> bool {
    let mut seen = 0u8;
    for number in numbers {
        let bit = GenerationFilter::bit(*number);
        if seen & bit != 0 {
            return true;
        }
        seen |= bit;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inserted_identity_is_always_a_candidate_until_its_generation_goes() {
        let hashes: Vec<u64> = (0..2000u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        let mut filter = GenerationFilter::rebuilt(4000, &[3, 4], core::iter::empty());
        for (i, hash) in hashes.iter().enumerate() {
            filter.insert(*hash, 3 + (i % 2) as u64);
        }
        for (i, hash) in hashes.iter().enumerate() {
            let bit = GenerationFilter::bit(3 + (i % 2) as u64);
            assert_ne!(filter.candidates(*hash) & bit, 0);
        }
        // Generation 3 forgotten: its bit is gone, generation 4's stay.
        filter.forget(3);
        for (i, hash) in hashes.iter().enumerate() {
            assert_eq!(filter.candidates(*hash) & GenerationFilter::bit(3), 0);
            if i % 2 == 1 {
                assert_ne!(filter.candidates(*hash) & GenerationFilter::bit(4), 0);
            }
        }
        // A miss mostly rules generation 4 out: about 1 - e^-0.25 of the
        // cells have its bit (1,000 identities in 4,000 cells).
        let ruled_out = (0..10_000u64)
            .map(|i| (i + 1_000_000).wrapping_mul(0x2545_f491_4f6c_dd1d))
            .filter(|hash| filter.candidates(*hash) & GenerationFilter::bit(4) == 0)
            .count();
        assert!(ruled_out > 7_000, "{ruled_out} of 10,000 ruled out");
    }

    #[test]
    fn two_generations_on_one_bit_make_it_stand_aside() {
        let mut filter = GenerationFilter::rebuilt(1000, &[1], core::iter::empty());
        filter.start(9, [1].into_iter());
        assert_eq!(filter.candidates(12345), u8::MAX);
        // Not rebuilt while the conflict lasts, dropped when it ends.
        assert!(!filter.wants_rebuild(5000));
        assert_eq!(filter.settle(&[1, 9]), 0);
        assert_eq!(filter.settle(&[9]), 1000);
        assert_eq!(filter.bytes(), 0);
        assert!(filter.wants_rebuild(FILTER_FROM));
    }
}
