//! Which generations may hold an identity: one byte per cell, one bit per
//! live generation, so that a lookup reads one cache line of cells and
//! then only the generations' tables its bits name.
//!
//! A new identity (the common case) must miss in every generation's table,
//! and in a large memory each table is a cache miss. An identity sets bit
//! `number % 8` of its generation `number` in [`PROBES`] cells, all in one
//! 64-byte block (one cache line) picked by its hash; a lookup takes the
//! bits set in all of them, so a clear bit in any one rules that
//! generation out. The filter never hides an entry (no false negative): a
//! bit is set on every insertion and cleared only when its generation is
//! forgotten whole.
//!
//! The filter keeps 1.5 to 3 cells per identity (rebuilt at 3, grown when
//! it falls below 1.5; a little below while its replacement is filled, see
//! `rebuild`). A generation holding a fifth of the identities
//! then has its bit in 18 % to 33 % of the cells, and names a new identity
//! with a probability of 1/170 to 1/28 (that share cubed; a little more,
//! as blocks fill unevenly). So a miss reads one line and seldom any older
//! table. A single cell per identity, at 1 to 2 cells per identity, named
//! each older generation for one miss in 6 to 10: with four older
//! generations, about half a table read per miss, each a cache miss in a
//! large memory. The price is about a byte per identity.
//!
//! At most `GENERATIONS + 1` generations of a class are live at once (a
//! generation is forgotten `GENERATIONS` spans after it ends, before the
//! next insertion), so their numbers modulo 8 differ. Should two ever share
//! a bit, the filter stands aside (every table is read), and is dropped once
//! one of the two is forgotten (clearing the shared bit would hide the
//! other's entries); later insertions build it afresh (see `rebuild`).
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

/// The cells an identity sets, all in its block.
const PROBES: u32 = 3;

/// Cells per block: one cache line.
const BLOCK: usize = 64;

/// Bytes a filter allocates beyond its blocks, so that its blocks can
/// start on a cache line wherever the allocator puts it (as a table's
/// buckets do, see `table::SLACK`).
const SLACK: usize = BLOCK - 1;

/// One class's filter (empty: none, every generation is read).
///
/// Its cells are one allocation from `calloc`: a large one comes fresh
/// from the kernel, zeroed page by page as the filter is first written,
/// so a filter of megabytes costs its rebuild's first insertion no
/// clearing. Blocks of [`BLOCK`] cells start `offset` bytes in, at the
/// first cache-line boundary, so that a lookup reads one line.
#[derive(Debug, Default)]
pub(super) struct GenerationFilter {
    cells: Box<[u8]>,
    offset: usize,
    blocks: usize,
    /// Two live generations share a bit: the filter stands aside.
    conflicted: bool,
}

impl GenerationFilter {
    /// The bytes it allocated.
    pub(super) fn bytes(&self) -> usize {
        self.cells.len()
    }

    /// Its cells.
    pub(super) fn cell_count(&self) -> usize {
        self.blocks * BLOCK
    }

    /// Block `index`'s cells.
    #[inline]
    fn block(&self, index: usize) -> &[u8] {
        let start = self.offset + index * BLOCK;
        &self.cells[start..start + BLOCK]
    }

    /// The generations that may hold an identity whose position hash is
    /// `hash`, as bits of `number % 8`.
    #[inline]
    pub(super) fn candidates(&self, hash: u64) -> u8 {
        if self.blocks == 0 || self.conflicted {
            return u8::MAX;
        }
        let (block, cells) = self.cells(hash);
        let cells_of = self.block(block);
        cells
            .iter()
            .fold(u8::MAX, |bits, &cell| bits & cells_of[cell])
    }

    /// The bit of generation `number`.
    pub(super) fn bit(number: u64) -> u8 {
        1 << (number % BITS)
    }

    /// The block of an identity whose position hash is `hash`, and its
    /// cells in that block.
    #[inline]
    fn cells(&self, hash: u64) -> (usize, [usize; PROBES as usize]) {
        // The table's home bucket uses the hash's high bits; the block
        // uses the low ones, so the two are independent. The cells come
        // from a remix of the whole hash.
        let block = ((u128::from(hash.rotate_left(32)) * self.blocks as u128) >> 64) as usize;
        let mixed = hash.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let cell = |probe: u32| (mixed >> (64 - 6 * (probe + 1))) as usize % BLOCK;
        (block, core::array::from_fn(|probe| cell(probe as u32)))
    }

    /// Notes an identity of generation `number`.
    #[inline]
    pub(super) fn insert(&mut self, hash: u64, number: u64) {
        if self.blocks > 0 {
            let (block, cells) = self.cells(hash);
            let bit = Self::bit(number);
            let start = self.offset + block * BLOCK;
            let cells_of = &mut self.cells[start..start + BLOCK];
            for cell in cells {
                cells_of[cell] |= bit;
            }
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
    /// at `FILTER_FROM`, or fewer than 1.5 cells per identity (grow), or
    /// more than 12 (shrink, or drop below `FILTER_FROM / 2`).
    pub(super) fn wants_rebuild(&self, len: usize) -> bool {
        let cells = self.cell_count();
        if cells == 0 {
            len >= FILTER_FROM
        } else {
            (3 * len > 2 * cells || len * 12 < cells) && !self.conflicted
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

    /// The bytes a filter of `cells` cells allocates (see [`bytes`](Self::bytes)).
    pub(super) fn bytes_for(cells: usize) -> usize {
        match cells.div_ceil(BLOCK) {
            0 => 0,
            blocks => blocks * BLOCK + SLACK,
        }
    }

    /// The cells a rebuild for `len` identities takes (none below
    /// `FILTER_FROM / 2`): three per identity, in whole blocks.
    pub(super) fn cells_for(len: usize) -> usize {
        if len < FILTER_FROM / 2 {
            0
        } else {
            (3 * len).div_ceil(BLOCK) * BLOCK
        }
    }

    /// An empty filter of `cells` cells (none below one), with
    /// `generations` the numbers live; a rebuild fills it (see `rebuild`).
    pub(super) fn empty(cells: usize, generations: &[u64]) -> Self {
        let blocks = cells.div_ceil(BLOCK);
        let bytes = match blocks {
            0 => Box::default(),
            _ => vec![0u8; blocks * BLOCK + SLACK].into_boxed_slice(),
        };
        // The first line boundary in the allocation: at most `SLACK` in.
        let offset = (bytes.as_ptr() as usize).wrapping_neg() % BLOCK;
        Self {
            cells: bytes,
            offset,
            blocks,
            conflicted: conflict(generations),
        }
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
        let mut filter = GenerationFilter::empty(4000, &[3, 4]);
        // Each block is one cache line, whatever the allocation's address.
        assert_eq!(filter.cell_count(), 4032);
        assert!((0..63).all(|block| filter.block(block).as_ptr() as usize % 64 == 0));
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
        // A miss mostly rules generation 4 out: about 1 - e^-0.75 of the
        // cells have its bit (1,000 identities, three cells each, in 4,032
        // cells), so a miss finds it in all three of its cells about one
        // time in seven.
        let ruled_out = (0..10_000u64)
            .map(|i| (i + 1_000_000).wrapping_mul(0x2545_f491_4f6c_dd1d))
            .filter(|hash| filter.candidates(*hash) & GenerationFilter::bit(4) == 0)
            .count();
        assert!(ruled_out > 7_000, "{ruled_out} of 10,000 ruled out");
    }

    /// At the load a steady stream keeps (five live generations, cells for
    /// three times the identities), a new identity names an older
    /// generation seldom: one cell per identity instead of three in a line
    /// would name one about 0.4 times a lookup at two cells per identity.
    #[test]
    fn a_new_identity_seldom_names_an_older_generation() {
        const PER_GENERATION: u64 = 2_000;
        let numbers = [1, 2, 3, 4, 5];
        let held = PER_GENERATION as usize * numbers.len();
        let entries = (0..held as u64).map(|i| {
            let hash = crate::remembered::table::position(0x5eed, i as u32);
            (hash, numbers[(i / PER_GENERATION) as usize])
        });
        let mut filter = GenerationFilter::empty(GenerationFilter::cells_for(held), &numbers);
        for (hash, number) in entries {
            filter.insert(hash, number);
        }
        let older: u8 = numbers[..4].iter().map(|&n| GenerationFilter::bit(n)).sum();
        let named: u32 = (0..10_000u32)
            .map(|i| {
                let hash = crate::remembered::table::position(0x5eed, 1_000_000 + i);
                (filter.candidates(hash) & older).count_ones()
            })
            .sum();
        assert!(
            named < 1_500,
            "{named} older generations named by 10,000 lookups"
        );
    }

    #[test]
    fn two_generations_on_one_bit_make_it_stand_aside() {
        let mut filter = GenerationFilter::empty(1000, &[1]);
        let bytes = filter.bytes();
        assert!(bytes >= 1000);
        filter.start(9, [1].into_iter());
        assert_eq!(filter.candidates(12345), u8::MAX);
        // Not rebuilt while the conflict lasts, dropped when it ends.
        assert!(!filter.wants_rebuild(5000));
        assert_eq!(filter.settle(&[1, 9]), 0);
        assert_eq!(filter.settle(&[9]), bytes);
        assert_eq!(filter.bytes(), 0);
        assert!(filter.wants_rebuild(FILTER_FROM));
    }
}
