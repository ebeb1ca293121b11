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

/// Per (port, class): whether its newest generation is moving, and the
/// tables of every generation, newest last.
fn move_state(
    memory: &RememberedIdentities,
    port: u16,
    class: Retention,
) -> (bool, Vec<usize>, usize) {
    let Some(generations) = memory
        .histories
        .get(&addr(port))
        .and_then(|history| history.class(class))
    else {
        return (false, Vec::new(), 0);
    };
    let tables = generations
        .iter()
        .map(|generation| generation.tables.len())
        .collect();
    // Older generations left in mid-move.
    let cut = generations
        .iter()
        .filter(|generation| generation.is_moving())
        .count()
        - usize::from(
            generations
                .newest()
                .is_some_and(|newest| newest.is_moving()),
        );
    (
        generations
            .newest()
            .is_some_and(|newest| newest.is_moving()),
        tables,
        cut,
    )
}

/// Every entry of `port`'s class `class` is in the filter that answers
/// for it, and was inserted under that address and class (a spare reused
/// with words left would show entries never inserted there).
fn assert_class_exact(
    harness: &Harness,
    inserted: &std::collections::HashSet<(u16, u32, usize)>,
    port: u16,
    class: Retention,
    context: &str,
) {
    let memory = &harness.memory;
    let Some(generations) = memory
        .histories
        .get(&addr(port))
        .and_then(|history| history.class(class))
    else {
        return;
    };
    for generation in generations.iter() {
        let bit = GenerationFilter::bit(generation.number);
        for table in &generation.tables {
            for entry in table.entries() {
                let hashed = (entry >> 32) as u32;
                let hash = position(memory.keys.position, hashed);
                assert_ne!(
                    generations.candidates(hash) & bit,
                    0,
                    "{context}: port {port} {class:?} generation {} hidden by its filter",
                    generation.number
                );
                let id = hashed.wrapping_mul(0x144c_bc89); // inverse of 0x9e3779b9
                assert!(
                    inserted.contains(&(port, id, class.index())),
                    "{context}: port {port} {class:?} holds {id}, never inserted there"
                );
            }
        }
    }
}

/// Moves (see `growth`) under everything else: bursts of up to 4,000
/// identities at rates that make a generation's table fill and be moved
/// again and again, for four addresses in both classes; filter rebuilds
/// walking meanwhile; generations starting in mid-move; jumps that forget
/// generations left in mid-move (their tables becoming spares, cleared a
/// step at a time and reused); now and then a budget that refuses a move
/// (rehashed at once, or a table added beside). Whenever a move begins,
/// ends or is cut, a table is added, or a generation starts: the class's
/// filters cover each of its entries, each entry was inserted there, and
/// every young identity of the address is recalled.
#[test]
fn moves_under_rebuilds_new_generations_jumps_and_budgets_never_hide_an_identity() {
    let (mut begun, mut ended, mut ended_rebuilding, mut cut) = (0, 0, 0, 0);
    for seed in 1..=4u64 {
        let mut harness = Harness::new(0x6d6f_7665 ^ seed);
        let mut inserted = std::collections::HashSet::new();
        for _ in 0..30 {
            let port = harness.rng.below(4) as u16;
            let class = CLASSES[harness.rng.below(3).min(1) as usize];
            let count = 200 + harness.rng.below(4_000);
            let step = 1 + harness.rng.below(120);
            let budget = [usize::MAX, usize::MAX, 64, 3_000, 40_000][harness.rng.below(5) as usize];
            for _ in 0..count {
                harness.advance(Duration::from_micros(step));
                let before = move_state(&harness.memory, port, class);
                let rebuilding = is_rebuilding(&harness.memory, port, class);
                harness.insert(port, class, budget);
                let last = *harness.model.last().expect("inserted");
                inserted.insert((port, last.1, class.index()));
                let after = move_state(&harness.memory, port, class);
                let newest_before = before.1.last().copied().unwrap_or(0);
                let newest_after = after.1.last().copied().unwrap_or(0);
                begun += usize::from(!before.0 && after.0);
                let done = before.0 && !after.0 && newest_after < newest_before;
                ended += usize::from(done);
                ended_rebuilding += usize::from(done && rebuilding);
                cut += usize::from(after.2 > before.2);
                if before.0 != after.0 || before.1 != after.1 || after.2 != before.2 {
                    assert_class_exact(&harness, &inserted, port, class, "at a change of tables");
                    for entry in &harness.model {
                        if entry.0 == port && harness.young(entry) {
                            harness.check(entry, "at a change of tables");
                        }
                    }
                }
            }
            match harness.rng.below(4) {
                0 => {
                    let jump = 300 + harness.rng.below(5_000);
                    harness.advance(Duration::from_millis(jump));
                }
                1 => harness.sweep(),
                _ => {}
            }
        }
        harness.finish();
    }
    assert!(begun >= 100, "{begun} moves begun");
    assert!(ended >= 50, "{ended} moves ended");
    assert!(
        ended_rebuilding >= 10,
        "{ended_rebuilding} moves ended while rebuilding"
    );
    assert!(cut >= 5, "{cut} moves cut by a new generation");
}

/// A table moved keeps the full one until the move ends, so a move begins
/// only if the larger table fits the budget on top of it (else the full
/// one is rehashed at once, which frees it). A stream whose address is
/// held to `max_bytes_per_address`, inserting only while within it (as
/// the receiver admits a message), never goes past the bound by more than
/// one forced insertion, whatever the bound falls on.
#[test]
fn a_move_begins_only_within_the_budget() {
    let per_insertion = RememberedIdentities::worst_insert_bytes();
    for bound in (8_000..200_000).step_by(3_517) {
        let mut memory = memory();
        let fingerprint = memory.keys.fingerprint(b"m");
        let start = Instant::now();
        for i in 0..20_000u32 {
            let now = start + Duration::from_micros(u64::from(i) * 60);
            memory.expire(now);
            if memory.bytes_for(&addr(1)) > bound {
                continue;
            }
            memory.insert_bounded(
                now,
                addr(1),
                Harness::identity(i),
                fingerprint,
                Retention::Lifetime,
                usize::MAX,
                bound,
            );
            let held = memory.bytes_for(&addr(1));
            assert!(
                held <= bound + per_insertion,
                "{held} bytes held on a bound of {bound} (insertion {i})"
            );
        }
        memory.assert_accounted();
    }
}

/// A spare taken for a table that grows may be up to a quarter larger
/// than the grown table (see `take_table`), but the growth's budget
/// check counts only the grown size: an address held to its bound goes
/// past it by the difference. Address 1's forgotten generations leave a
/// spare of 4,600 slots; address 2, grown to a full table of 2,048 slots,
/// has room for a table of 4,096 beside it (a move) or in its place (a
/// rehash), and gets that spare.
#[test]
fn a_grown_table_taken_from_a_larger_spare_stays_within_the_budget() {
    use super::table::table_bytes;
    for room in [table_bytes(4_096), table_bytes(4_096) - table_bytes(2_048)] {
        let mut memory = memory();
        let fingerprint = memory.keys.fingerprint(b"s");
        let insert = |memory: &mut RememberedIdentities, at, port, i, bound| {
            let id = Harness::identity(i);
            memory.insert_bounded(
                at,
                addr(port),
                id,
                fingerprint,
                Retention::Lifetime,
                usize::MAX,
                bound,
            );
        };
        let start = Instant::now();
        // Address 1: 3,460 identities in generation 0, then one in
        // generation 1, whose table is sized for 3,460 + 1/16.
        for i in 0..3_460u32 {
            insert(&mut memory, start, 1, i, usize::MAX);
        }
        let next = start + Duration::from_millis(LIFETIME_MS / 4);
        insert(&mut memory, next, 1, 99_999, usize::MAX);
        // Both forgotten: their tables are spares.
        let later = start + Duration::from_millis(LIFETIME_MS * 2);
        memory.expire(later);
        assert!(memory.histories.get(&addr(1)).is_none());
        let full = |memory: &RememberedIdentities| {
            memory.histories.get(&addr(2)).is_some_and(|history| {
                let newest = history.lifetime().newest().expect("a generation");
                let table = &newest.tables[0];
                newest.tables.len() == 1 && table.slots() == 2_048 && table.is_full()
            })
        };
        let mut i = 100_000u32;
        while !full(&memory) {
            insert(&mut memory, later, 2, i, usize::MAX);
            i += 1;
        }
        let bound = memory.bytes_for(&addr(2)) + room;
        insert(&mut memory, later, 2, i, bound);
        memory.assert_accounted();
        let held = memory.bytes_for(&addr(2));
        assert!(
            held <= bound + RememberedIdentities::worst_insert_bytes(),
            "{held} bytes held on a bound of {bound} (room {room})"
        );
    }
}
