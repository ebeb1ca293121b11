//! The memory against a model, through filters rebuilt a step at a time:
//! interleaved insertions in both classes for several addresses, time
//! jumps that forget several generations at once, tight budgets and
//! recalls. Every identity younger than its retention must be recalled,
//! and at each swap every entry held must be named by its class's filter.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::filter::GenerationFilter;
use super::table::position;
use super::{Fingerprint, Recall, RememberedIdentities, Retention};
use crate::wire::Identity;

const LIFETIME_MS: u64 = 1000;
const WINDOW_MS: u64 = 4000;

fn memory() -> RememberedIdentities {
    super::tests::memory(LIFETIME_MS, WINDOW_MS)
}

fn addr(port: u16) -> SocketAddr {
    ([10, 0, 0, 1], port).into()
}

const CLASSES: [Retention; 2] = [Retention::Lifetime, Retention::Window];

fn retention(class: Retention) -> Duration {
    match class {
        Retention::Lifetime => Duration::from_millis(LIFETIME_MS),
        Retention::Window => Duration::from_millis(WINDOW_MS),
    }
}

/// Every entry of every generation held is named by its class's filter
/// (the filter that answers `recall`): no false negative.
fn assert_filters_cover(memory: &RememberedIdentities, context: &str) {
    for (index, history) in memory.histories.values().enumerate() {
        for class in CLASSES {
            let Some(generations) = history.class(class) else {
                continue;
            };
            let newest = generations.newest().map(|generation| generation.number);
            for generation in generations.iter() {
                let bit = GenerationFilter::bit(generation.number);
                for table in &generation.tables {
                    for entry in table.entries() {
                        let hash = position(memory.keys.position, (entry >> 32) as u32);
                        assert_ne!(
                            generations.candidates(hash) & bit,
                            0,
                            "{context}: history #{index} {class:?} generation {} (newest {newest:?}) \
                             hidden by the filter",
                            generation.number
                        );
                    }
                }
            }
        }
    }
}

fn is_rebuilding(memory: &RememberedIdentities, port: u16, class: Retention) -> bool {
    memory
        .histories
        .get(&addr(port))
        .and_then(|history| history.class(class))
        .is_some_and(|generations| generations.is_rebuilding())
}

/// A small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// (port, identity, fingerprint index, inserted at, class)
type Entry = (u16, u32, usize, Instant, Retention);

struct Harness {
    memory: RememberedIdentities,
    fingerprints: [Fingerprint; 3],
    model: Vec<Entry>,
    now: Instant,
    next_identity: u32,
    rng: Rng,
    swaps: usize,
    insertions_rebuilding: usize,
}

impl Harness {
    fn new(seed: u64) -> Self {
        let memory = memory();
        let keys = memory.keys;
        Self {
            memory,
            fingerprints: [
                keys.fingerprint(b"a"),
                keys.fingerprint(b"b"),
                keys.fingerprint(b"c"),
            ],
            model: Vec::new(),
            now: Instant::now(),
            next_identity: 1,
            rng: Rng(seed | 1),
            swaps: 0,
            insertions_rebuilding: 0,
        }
    }

    fn identity(i: u32) -> Identity {
        Identity::from_u32(i.wrapping_mul(0x9e37_79b9))
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.memory.expire(self.now);
    }

    fn young(&self, entry: &Entry) -> bool {
        self.now.duration_since(entry.3) < retention(entry.4)
    }

    /// Inserts one identity (a new one, or now and then one already
    /// inserted, with the same payload or another).
    fn insert(&mut self, port: u16, class: Retention, budget: usize) {
        let (id, fp) = if !self.model.is_empty() && self.rng.below(10) == 0 {
            let (_, id, fp, _, _) = self.model[self.rng.below(self.model.len() as u64) as usize];
            (
                id,
                if self.rng.below(2) == 0 {
                    fp
                } else {
                    (fp + 1) % 3
                },
            )
        } else {
            self.next_identity += 1;
            (self.next_identity, self.rng.below(3) as usize)
        };
        let before: Vec<bool> = (0..4u16)
            .flat_map(|p| CLASSES.map(|c| is_rebuilding(&self.memory, p, c)))
            .collect();
        self.memory.insert(
            self.now,
            addr(port),
            Self::identity(id),
            self.fingerprints[fp],
            class,
            budget,
        );
        self.memory.assert_accounted();
        self.model.push((port, id, fp, self.now, class));
        let after: Vec<bool> = (0..4u16)
            .flat_map(|p| CLASSES.map(|c| is_rebuilding(&self.memory, p, c)))
            .collect();
        if after.iter().any(|&r| r) {
            self.insertions_rebuilding += 1;
        }
        if before.iter().zip(&after).any(|(&b, &a)| b && !a) {
            // A new filter just took the old one's place.
            self.swaps += 1;
            assert_filters_cover(&self.memory, "at a swap");
        }
        // A few young identities of this address, recalled.
        for _ in 0..3 {
            let candidate = self.model[self.rng.below(self.model.len() as u64) as usize];
            if candidate.0 == port && self.young(&candidate) {
                self.check(&candidate, "after an insertion");
            }
        }
    }

    fn check(&self, entry: &Entry, context: &str) {
        let &(port, id, fp, at, class) = entry;
        assert_eq!(
            self.memory
                .recall(&addr(port), Self::identity(id), self.fingerprints[fp]),
            Recall::Duplicate,
            "{context}: port {port} identity {id} ({class:?}, inserted {:?} ago) forgotten",
            self.now.duration_since(at)
        );
    }

    /// Every young identity recalled, never-inserted ones not, and the
    /// filters cover everything held.
    fn sweep(&mut self) {
        for entry in &self.model {
            if self.young(entry) {
                self.check(entry, "in a sweep");
            }
        }
        for port in 0..4u16 {
            for i in 0..50u32 {
                let never = self.next_identity + 1_000_000 + i;
                assert_ne!(
                    self.memory
                        .recall(&addr(port), Self::identity(never), self.fingerprints[0]),
                    Recall::Duplicate
                );
            }
        }
        assert_filters_cover(&self.memory, "in a sweep");
        // Forget the model's old entries (kept cheap).
        let now = self.now;
        self.model
            .retain(|entry| now.duration_since(entry.3) < retention(entry.4) * 2);
    }

    fn finish(&mut self) {
        self.sweep();
        self.memory.assert_accounted();
        self.advance(Duration::from_secs(10));
        self.memory.assert_accounted();
        assert_eq!(self.memory.len(), 0);
    }
}

/// A memory whose window class holds `count` identities of address 1,
/// all inserted at `start`, and their fingerprint.
fn window_of(count: u32, start: Instant) -> (RememberedIdentities, Fingerprint) {
    let mut memory = memory();
    let fingerprint = memory.keys.fingerprint(b"w");
    for i in 0..count {
        memory.insert(
            start,
            addr(1),
            Harness::identity(i),
            fingerprint,
            Retention::Window,
            usize::MAX,
        );
    }
    (memory, fingerprint)
}

/// The window class of one address gets enough identities for its first
/// filter, which (in tests, `AT_ONCE` being 0) is filled a step at a time;
/// then the address goes quiet before the walk is over. Once every
/// generation is forgotten nothing of the address may remain: the
/// half-built filter used to keep its record, its empty window class and
/// the class's box for good, with `bytes()` never back to zero.
#[test]
fn a_window_class_forgotten_while_its_filter_is_rebuilt_leaves_nothing_behind() {
    let start = Instant::now();
    let (mut memory, _) = window_of(256, start);
    assert!(
        is_rebuilding(&memory, 1, Retention::Window),
        "the first filter is being filled"
    );
    memory.expire(start + Duration::from_millis(WINDOW_MS * 2));
    assert_eq!(memory.len(), 0, "every identity forgotten");
    memory.expire(start + Duration::from_millis(WINDOW_MS * 3));
    memory.assert_accounted();
    assert!(
        memory.histories.get(&addr(1)).is_none(),
        "the address's record is kept with an empty window class and a half-built filter ({} bytes held)",
        memory.bytes()
    );
    assert_eq!(memory.bytes(), 0, "an empty memory holds nothing");
}

/// Two addresses, both classes, climbing rates so that filters are built
/// and grown step by step in both classes at once; every 700 insertions a
/// jump forgets two lifetime generations at once (and now and then window
/// ones), and every third stretch runs on a tight budget (tables added
/// beside full ones instead of rehashed). Every young identity is recalled
/// at every insertion made while any filter is being rebuilt (sampled),
/// and the filters cover every entry at every swap.
#[test]
fn interleaved_classes_and_addresses_with_jumps_never_hide_an_identity() {
    let mut harness = Harness::new(0x5eed);
    for i in 0..40_000u32 {
        let stretch = i / 700;
        if i % 700 == 0 && i > 0 {
            // 600 ms: two lifetime generations forgotten at once; every
            // fifth jump 2.6 s, forgetting window generations too.
            let jump = if stretch % 5 == 0 { 2600 } else { 600 };
            harness.advance(Duration::from_millis(jump));
        }
        harness.advance(Duration::from_micros(200 - u64::from(i % 700) * 180 / 700));
        let port = (harness.rng.below(2)) as u16;
        let class = if harness.rng.below(3) == 0 {
            Retention::Window
        } else {
            Retention::Lifetime
        };
        let budget = if stretch % 3 == 2 { 64 } else { usize::MAX };
        harness.insert(port, class, budget);
        if i % 2000 == 1999 {
            harness.sweep();
        }
    }
    harness.finish();
    assert!(harness.swaps >= 10, "{} swaps", harness.swaps);
    assert!(
        harness.insertions_rebuilding > 2_000,
        "{} insertions while rebuilding",
        harness.insertions_rebuilding
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
    /// Random programs of bursts (an address, a class, a count, a rate, a
    /// budget), time jumps of up to 6 s and sweeps, against the model.
    #[test]
    fn bursts_jumps_and_budgets_against_a_model(
        seed in proptest::prelude::any::<u64>(),
        operations in proptest::collection::vec(
            (0u8..10, 0u16..4, proptest::bool::weighted(0.35), 1u32..400, 1u64..600, proptest::bool::weighted(0.25)),
            1..50,
        )
    ) {
        let mut harness = Harness::new(seed);
        for (kind, port, window, count, step, tight) in operations {
            match kind {
                0..=6 => {
                    let class = if window { Retention::Window } else { Retention::Lifetime };
                    let budget = if tight { 64 } else { usize::MAX };
                    for _ in 0..count {
                        harness.advance(Duration::from_micros(step));
                        harness.insert(port, class, budget);
                    }
                }
                7 | 8 => harness.advance(Duration::from_millis(step * 10)),
                _ => harness.sweep(),
            }
        }
        harness.finish();
    }
}

/// A rebuild begins only if everything it allocates fits the insertion's
/// budget: the new filter's cells and the slack that aligns them, the
/// rebuild's box, and the class's box of older generations and filter
/// when a window class with a single generation has none yet.
#[test]
fn a_rebuild_begun_within_the_budget_stays_within_it() {
    let needed = GenerationFilter::bytes_for(GenerationFilter::cells_for(256))
        + super::rebuild::REBUILD_BYTES
        + super::history::REST_BYTES;
    // One byte short, no rebuild; exactly enough, one that takes no more.
    for (budget, begins) in [(needed - 1, false), (needed, true)] {
        let start = Instant::now();
        let (mut memory, fingerprint) = window_of(255, start);
        let tables = |memory: &RememberedIdentities| -> usize {
            memory
                .histories
                .get(&addr(1))
                .and_then(|history| history.class(Retention::Window))
                .map_or(0, |generations| {
                    generations
                        .iter()
                        .flat_map(|generation| generation.tables.iter())
                        .map(|table| table.bytes())
                        .sum()
                })
        };
        let (bytes, tables_before) = (memory.bytes(), tables(&memory));
        memory.insert(
            start,
            addr(1),
            Harness::identity(255),
            fingerprint,
            Retention::Window,
            budget,
        );
        memory.assert_accounted();
        assert_eq!(tables(&memory), tables_before, "no table added or grown");
        assert_eq!(
            is_rebuilding(&memory, 1, Retention::Window),
            begins,
            "a budget of {budget} bytes, {needed} needed"
        );
        let taken = memory.bytes() - bytes;
        assert!(
            taken <= budget,
            "took {taken} bytes on a budget of {budget}"
        );
    }
}
