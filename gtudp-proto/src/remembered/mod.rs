//! The memory of received identities that suppresses late duplicates.
//!
//! Once a received message's RECV exchange is over (its ACK arrived, or its
//! RECV attempts ran out), the receiver keeps only enough to recognise a late
//! copy of its DATA: the pair (identity, payload fingerprint), under the
//! sender's address. That memory must be **exact**: a false positive would
//! answer a *new* DATA with RECV and never hand it over, so the sender would
//! see Delivered for a message the application never got. So it is a set,
//! not a filter: a lookup reports a duplicate only when an entry with the
//! same address, identity and fingerprint was inserted and has not expired.
//!
//! # Layout and cost
//!
//! Each address has its own small tables of 8-byte entries (the identity
//! and a 32-bit keyed fingerprint of the payload), in buckets of eight
//! entries (one cache line), filled to at most 80 %. A table only ever gains
//! entries, and a bucket fills from its first slot, so a lookup reads one
//! bucket in most cases and stops at the first bucket with a free slot: a
//! new identity (the common case) costs one cache line per table. A small
//! table that fills is rehashed into one twice its size (the smallest, an
//! address's first, four times when the budget allows); a large one gets
//! another table beside it. A
//! steady stream sizes each new table from the last one, so an identity
//! costs 14 to 18 bytes (its filter cells included); while a stream's rate climbs, tables are added and
//! the cost can briefly reach about twice that. [`RememberedIdentities::bytes`]
//! accounts every allocation the structure makes.
//!
//! An address's record (see `history`) holds its lifetime class's newest
//! generation inline: a server with many peers finds each record cold, and
//! for an address with one generation (most of them) a look-up reads the
//! map's control bytes, the record and one bucket. Older generations, the
//! generation filter and the window class are boxed apart, allocated only
//! for the addresses that have them.
//!
//! # Expiry by generation
//!
//! Time is cut into generations of `retention / GENERATIONS` each. An
//! identity inserted during generation `g` lives in `g`'s tables, which are
//! freed whole once `retention` has passed since `g` ended. So an identity is
//! remembered for at least `retention` and less than
//! `retention × (1 + 1 / GENERATIONS)` after its insertion, with no timer per
//! identity: expiry pops one queue entry per (address, generation), amortised
//! O(1) per message. Two retentions exist side by side, one per
//! [`Retention`] class, each with its own generations.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use core::hash::BuildHasher;

use crate::wire::Identity;

mod expiry;
mod filter;
mod growth;
mod history;
#[cfg(test)]
mod model_check;
mod rebuild;
mod table;

use filter::GenerationFilter;
use history::{Generation, Histories, History, Record};

use table::{position, slots_for, table_bytes, take_table, Spare, MIN_TABLE, SPARE_TABLES};

/// Generations per retention period: an identity is kept for its retention
/// plus at most a quarter of it.
pub(crate) const GENERATIONS: u32 = 4;

/// A table smaller than this (in bytes) that fills is rehashed into one
/// twice its size rather than given a second table, so a stream that
/// starts small ends up in one table per generation.
const GROW_IN_PLACE_BYTES: usize = 1024 * 1024;

/// Bytes per identity inserted when a stream is steady: 8-byte entries, in
/// tables sized for the previous generation's count plus a sixteenth at
/// 80 % load (8 × 17/16 × 5/4 = 10.6), and the generation filter's 1.5 to
/// 3 cells (see `filter`), rounded up. With `GENERATIONS + 1`
/// generations' tables allocated at any time, a stream of `r` messages/s
/// holds `r × retention × (1 + 1/GENERATIONS) × 14` bytes: the rule behind
/// [`Config::max_sustained_rate`](crate::Config::max_sustained_rate).
pub(crate) const STEADY_SLOT_BYTES: usize = 14;

/// The most bytes one remembered identity costs in a steady stream, at any
/// point of the generation cycle (the worst is just after a new
/// generation's table is allocated, with the oldest not yet forgotten).
#[cfg(test)]
pub(crate) const STEADY_BYTES_PER_IDENTITY: usize = 18;

/// How long an identity is remembered, by why its RECV exchange ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retention {
    /// The ACK arrived: only copies already in the network can still come,
    /// for at most `datagram_lifetime`.
    Lifetime,
    /// RECV attempts ran out without an ACK: the sender may still be
    /// resending, for up to `remember_window`.
    Window,
}

impl Retention {
    fn index(self) -> usize {
        match self {
            Retention::Lifetime => 0,
            Retention::Window => 1,
        }
    }
}

/// A keyed 32-bit digest of a payload, never zero. A repeat is a duplicate
/// only if identity *and* fingerprint match, so a new message that reuses a
/// remembered identity (a restarted sender drawing identities afresh) is
/// still handed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fingerprint(u32);

/// What the memory says of an (address, identity, fingerprint).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Recall {
    /// Never seen, or forgotten.
    Unknown,
    /// The same identity and payload: a late copy.
    Duplicate,
    /// The same identity with another payload: a new message.
    Collision,
}

/// The two hash keys of the memory: one for table positions, one for
/// payload fingerprints. Both derive from the endpoint's seed, so an
/// off-path sender can neither aim identities at one probe chain nor forge
/// a fingerprint.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Keys {
    pub(crate) position: u64,
    pub(crate) fingerprint: foldhash::fast::FixedState,
}

impl Keys {
    /// The fingerprint of `payload`.
    pub(crate) fn fingerprint(&self, payload: &[u8]) -> Fingerprint {
        let digest = self.fingerprint.hash_one(payload);
        let folded = (digest ^ (digest >> 32)) as u32;
        Fingerprint(folded.max(1))
    }
}

/// Every received identity still remembered, per address, expiring by
/// generation.
#[derive(Debug)]
pub(crate) struct RememberedIdentities {
    keys: Keys,
    /// Per retention class: its length and its generation span.
    classes: [Class; 2],
    /// Set on the first insertion: generation numbers count from it.
    epoch: Option<Instant>,
    /// Per address, three look-ups a message.
    histories: Histories,
    /// Per class, one entry per (address, generation) in creation order,
    /// which is also the order they expire in.
    expiries: [VecDeque<(u64, SocketAddr)>; 2],
    len: usize,
    /// Bytes of every table in use, of the generation lists and of the
    /// history and expiry records (spare tables come on top).
    bytes: usize,
    /// Tables of forgotten generations, kept for two generations so that a
    /// steady stream reuses them instead of going to the allocator.
    spare: Vec<Spare>,
    /// Whether a spare table is left to clear, a few words per insertion.
    spare_to_clear: bool,
    /// When `expire` next has something to do: the earliest generation or
    /// spare table due; none when nothing is held.
    due: Option<Instant>,
    /// Per class, the generation insertions go to and when it ends.
    current: [Option<(u64, Instant)>; 2],
}

#[derive(Clone, Copy, Debug)]
struct Class {
    retention: Duration,
    span: Duration,
}

/// The fixed bytes one address costs: its map slot (with the map's spare
/// capacity) and its history record.
const HISTORY_BYTES: usize = (core::mem::size_of::<Record>() + 1) * 8 / 7;
/// The bytes one (address, generation) costs besides its tables: its place
/// in the generation list and in the expiry queue. (A class's newest
/// generation sits in the address's record, already counted in
/// `HISTORY_BYTES`: counted again here, the figure stays an upper bound.)
const GENERATION_BYTES: usize =
    core::mem::size_of::<Generation>() + core::mem::size_of::<(u64, SocketAddr)>();

impl RememberedIdentities {
    pub(crate) fn new(
        keys: Keys,
        hasher: crate::table_hash::TableHashState,
        lifetime: Duration,
        window: Duration,
    ) -> Self {
        let class = |retention: Duration| Class {
            retention,
            span: (retention / GENERATIONS).max(Duration::from_micros(1)),
        };
        Self {
            keys,
            classes: [class(lifetime), class(window)],
            epoch: None,
            histories: Histories::new(hasher),
            expiries: [VecDeque::new(), VecDeque::new()],
            len: 0,
            bytes: 0,
            spare: Vec::with_capacity(SPARE_TABLES),
            spare_to_clear: false,
            due: None,
            current: [None; 2],
        }
    }

    /// Identities remembered.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes the memory holds, spare tables included (see the module docs).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes + self.spare.iter().map(Spare::bytes).sum::<usize>()
    }

    /// Bytes held for one address: never more than [`bytes`](Self::bytes),
    /// which counts every address's.
    pub(crate) fn bytes_for(&self, address: &SocketAddr) -> usize {
        self.histories
            .get(address)
            .map_or(0, |history| history.bytes + HISTORY_BYTES)
    }

    /// The most bytes held for any one address.
    pub(crate) fn largest_bytes_for_one(&self) -> usize {
        self.histories
            .values()
            .map(|history| history.bytes + HISTORY_BYTES)
            .max()
            .unwrap_or(0)
    }

    /// What inserting one more identity for `address` can cost at most when
    /// it needs a new history, generation and smallest table, and the boxes
    /// a class allocates on demand: the window class's own (its first
    /// identity) or the one that holds a class's older generations (its
    /// second generation). Never both for one insertion; both are counted.
    pub(crate) const fn worst_insert_bytes() -> usize {
        HISTORY_BYTES
            + history::WINDOW_BYTES
            + history::REST_BYTES
            + GENERATION_BYTES
            + table_bytes(MIN_TABLE)
    }

    /// Whether `(address, identity, fingerprint)` was seen.
    pub(crate) fn recall(
        &self,
        address: &SocketAddr,
        identity: Identity,
        fingerprint: Fingerprint,
    ) -> Recall {
        let Some(history) = self.histories.get(address) else {
            return Recall::Unknown;
        };
        let identity = identity.to_u32();
        let home = self.position(identity);
        // In a large memory each table looked at is a cache miss: the
        // filter names the generations that may hold the identity, and
        // a new one (the common case) is ruled out of most of them.
        //
        // The newest generation of the lifetime class is read whatever the
        // filter says: it is where this identity goes once its ACK comes,
        // so the insertion then finds its bucket in the cache, and its load
        // overlaps the filter's.
        let mut recall = Recall::Unknown;
        let duplicate_in = |generation: &Generation, recall: &mut Recall| {
            holds(generation, home, identity, fingerprint, recall)
        };
        let lifetime = history.lifetime();
        if let Some(newest) = lifetime.newest() {
            if duplicate_in(newest, &mut recall) {
                return Recall::Duplicate;
            }
        }
        if let Some((older, filter)) = lifetime.older() {
            let candidates = filter.candidates(home);
            for generation in older {
                if candidates & GenerationFilter::bit(generation.number) != 0
                    && duplicate_in(generation, &mut recall)
                {
                    return Recall::Duplicate;
                }
            }
        }
        if let Some(window) = history.class(Retention::Window) {
            let candidates = window.candidates(home);
            for generation in window.iter() {
                if candidates & GenerationFilter::bit(generation.number) != 0
                    && duplicate_in(generation, &mut recall)
                {
                    return Recall::Duplicate;
                }
            }
        }
        recall
    }

    /// What [`warm`](Self::warm) needs of `address`'s memory, looked up
    /// once for a run of datagrams from one sender.
    pub(crate) fn warmer(&self, address: &SocketAddr) -> Option<Warmer<'_>> {
        self.histories.get(address).map(|history| Warmer {
            history,
            key: self.keys.position,
        })
    }
}

/// One address's memory, to [`warm`](Self::warm) for its identities.
#[derive(Clone, Copy)]
pub(crate) struct Warmer<'a> {
    history: &'a History,
    key: u64,
}

impl Warmer<'_> {
    /// Reads the cache lines an insertion of `identity` (its exchange
    /// ended with an ACK) touches: its bucket in the newest generation of
    /// the lifetime class, and its filter cells. Returns its position hash.
    #[inline]
    pub(crate) fn warm_newest(self, identity: Identity) -> u64 {
        let history = self.history;
        let home = position(self.key, identity.to_u32());
        // The bucket first: its load does not wait for the filter's.
        let lifetime = history.lifetime();
        if let Some(newest) = lifetime.newest() {
            for table in &newest.tables {
                core::hint::black_box(table.first_slot(table.home(home)));
            }
        }
        core::hint::black_box(lifetime.candidates(home));
        home
    }

    /// Reads, and changes nothing in, the cache lines a
    /// [`recall`](RememberedIdentities::recall) of `identity` reads: its
    /// bucket in the newest generation (where the identity also goes once
    /// its exchange ends), its filter cells, and the buckets of the older
    /// generations they name. Done for every DATA of a received batch
    /// before any of them is handled, these loads overlap one another
    /// instead of each stalling its own datagram's handling.
    #[inline]
    pub(crate) fn warm(self, identity: Identity) {
        let history = self.history;
        let home = self.warm_newest(identity);
        let warm_in = |generation: &Generation| {
            for table in &generation.tables {
                core::hint::black_box(table.first_slot(table.home(home)));
            }
        };
        // The lifetime class's newest was warmed above. (Plain loops: an
        // iterator chain's fold over the generations is left out of line.)
        if let Some((older, filter)) = history.lifetime().older() {
            let candidates = filter.candidates(home);
            for generation in older {
                if candidates & GenerationFilter::bit(generation.number) != 0 {
                    warm_in(generation);
                }
            }
        }
        if let Some(window) = history.class(Retention::Window) {
            let candidates = window.candidates(home);
            for generation in window.iter() {
                if candidates & GenerationFilter::bit(generation.number) != 0 {
                    warm_in(generation);
                }
            }
        }
    }
}

impl RememberedIdentities {
    /// Remembers `(address, identity, fingerprint)` from `now` for the
    /// retention of `class`. `budget` caps the bytes a new table or filter
    /// may take (the smallest table is always allowed, so an insertion
    /// never fails: the caller refuses new messages before the bound
    /// instead).
    #[cfg(test)]
    pub(crate) fn insert(
        &mut self,
        now: Instant,
        address: SocketAddr,
        identity: Identity,
        fingerprint: Fingerprint,
        class: Retention,
        budget: usize,
    ) {
        self.insert_with(now, address, identity, fingerprint, class, |_| budget);
    }

    /// As [`insert`](Self::insert), with the budget what keeps the memory
    /// within `max_bytes` ([`bytes`](Self::bytes)) and the address within
    /// `max_bytes_per_address` ([`bytes_for`](Self::bytes_for)); the
    /// address's bytes are read in the look-up that inserts.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn insert_bounded(
        &mut self,
        now: Instant,
        address: SocketAddr,
        identity: Identity,
        fingerprint: Fingerprint,
        class: Retention,
        max_bytes: usize,
        max_bytes_per_address: usize,
    ) {
        let room = max_bytes.saturating_sub(self.bytes());
        self.insert_with(now, address, identity, fingerprint, class, |bytes_for| {
            room.min(max_bytes_per_address.saturating_sub(bytes_for))
        });
    }

    /// As [`insert`](Self::insert), with the budget given by `budget` of
    /// the bytes held for `address` before the insertion.
    fn insert_with(
        &mut self,
        now: Instant,
        address: SocketAddr,
        identity: Identity,
        fingerprint: Fingerprint,
        class: Retention,
        budget: impl FnOnce(usize) -> usize,
    ) {
        if self.spare_to_clear {
            self.spare_to_clear = table::clear_spare_step(&mut self.spare, table::CLEAR_WORDS);
        }
        let number = self.generation_number(now, class);
        let home = self.position(identity.to_u32());
        let entry = (u64::from(identity.to_u32()) << 32) | u64::from(fingerprint.0);
        let (history, new) = self.histories.get_or_new(address);
        let budget = if new {
            self.bytes += HISTORY_BYTES;
            budget(0)
        } else {
            budget(history.bytes + HISTORY_BYTES)
        };
        let (generations, mut added) = history.class_or_new(class);
        let mut removed = 0;
        if generations
            .newest()
            .map_or(true, |newest| newest.number < number)
        {
            // Size the first table for a steady stream: the last
            // generation's count plus a sixteenth.
            let previous_len = generations.newest().map_or(0, |newest| newest.len);
            let wanted = previous_len + previous_len / 16;
            let table = take_table(&mut self.spare, slots_for(wanted), budget);
            added += GENERATION_BYTES + table.bytes();
            added += generations.start(Generation {
                number,
                tables: smallvec::smallvec![table],
                len: 0,
                moved: growth::NOT_MOVING,
            });
            self.expiries[class.index()].push_back((number, address));
            if let Some(epoch) = self.epoch {
                let expires = self.classes[class.index()].expires_at(epoch, number);
                self.due = Some(self.due.map_or(expires, |due| due.min(expires)));
            }
        }
        let Some(newest) = generations.newest_mut() else {
            return;
        };
        // A table being moved into a larger one: a few more of its slots
        // (see `growth`).
        let mut moved_out = None;
        if newest.is_moving() {
            if let Some((table, index)) = newest.step_move(self.keys.position, growth::MOVE_SLOTS) {
                removed += table.bytes();
                moved_out = Some(index);
            }
        }
        let tables = newest.tables.len();
        let mut rehashed = false;
        let mut move_into = None;
        if let Some(full) = newest.tables.last_mut().filter(|table| table.is_full()) {
            // The smallest table (an address's first) grows fourfold when
            // the budget allows: a peer that sends more than a handful of
            // messages is rehashed once on its way to a few dozen, not
            // twice.
            let room = budget.saturating_add(full.bytes());
            let fourfold = full.slots() == MIN_TABLE && table_bytes(MIN_TABLE * 4) <= room;
            let grown = full.slots() * if fourfold { 4 } else { 2 };
            if full.bytes() < GROW_IN_PLACE_BYTES && table_bytes(grown) <= room {
                // Small: grown into a larger table, so a stream that starts
                // small still has one table to look in. From a few
                // thousand slots on it is moved a few slots per insertion
                // when both fit the budget (see `growth`); else rehashed
                // at once.
                let beside = budget.saturating_sub(added);
                let moving =
                    full.slots() >= growth::MOVE_FROM_SLOTS && table_bytes(grown) <= beside;
                // A spare only as large as the budget allows (one may be a
                // quarter larger than `grown`).
                let cap = if moving { beside } else { room };
                let mut larger = take_table(&mut self.spare, grown, cap);
                added += larger.bytes();
                if moving {
                    move_into = Some(larger);
                } else {
                    for moved in full.entries() {
                        larger.insert_moved(self.keys.position, moved);
                    }
                    removed += full.bytes();
                    *full = larger;
                    rehashed = true;
                }
            } else {
                // The stream outgrew its estimate: a quarter of the first
                // table, then doubling, so a burst adds few tables and
                // little slack.
                let slots = match tables {
                    1 => full.slots() / 4,
                    _ => full.slots() * 2,
                };
                let table = take_table(&mut self.spare, slots, budget);
                added += table.bytes();
                newest.tables.push(table);
            }
        }
        if let Some(larger) = move_into {
            newest.begin_move(larger);
        }
        if let Some(table) = newest.tables.last_mut() {
            table.insert(home, entry);
        }
        newest.len += 1;
        if let Some(index) = moved_out {
            generations.table_moved(number, index);
        }
        if rehashed {
            generations.rehashed(number, tables - 1);
        }
        generations.note(home, number);
        generations.len += 1;
        // While the lifetime class has one generation its filter rules
        // nothing out (`recall` reads the newest lifetime generation
        // whatever the filter says): it is built, or grown, once a second
        // generation starts, rather than rebuilt at each doubling of a new
        // stream's count.
        let rules_out = class != Retention::Lifetime || generations.has_older();
        if generations.is_rebuilding() {
            removed += generations.step_rebuild(self.keys.position, rebuild::STEP_SLOTS);
        } else if rules_out && generations.filter_wants_rebuild() {
            let cells = GenerationFilter::cells_for(generations.len);
            if cells == 0 {
                removed += generations.drop_filter();
            } else if generations.rebuild_bytes(cells) <= budget.saturating_sub(added) {
                // Only within the budget, on top of the current filter (both
                // are held until the new one is complete): without its
                // growth the filter rules out fewer tables, and is no less
                // exact.
                added += generations.begin_rebuild(cells);
                let slots = match generations.len > rebuild::AT_ONCE {
                    true => rebuild::STEP_SLOTS,
                    false => usize::MAX,
                };
                removed += generations.step_rebuild(self.keys.position, slots);
            }
        }
        history.bytes = history.bytes + added - removed;
        self.bytes = self.bytes + added - removed;
        self.len += 1;
    }

    /// Checks the byte accounting against the structures it accounts.
    #[cfg(test)]
    fn assert_accounted(&self) {
        let mut total = 0;
        for history in self.histories.values() {
            assert_eq!(history.bytes, history.recount(), "an address's bytes");
            total += HISTORY_BYTES + history.bytes;
        }
        assert_eq!(self.bytes, total, "the memory's bytes");
    }

    fn position(&self, identity: u32) -> u64 {
        position(self.keys.position, identity)
    }
}

/// Whether `generation` holds `identity` with `fingerprint`, its position
/// hash `home` (a collision, the identity with another payload, is noted
/// in `recall`). Inlined in [`RememberedIdentities::recall`]: it runs for
/// every DATA.
#[inline(always)]
fn holds(
    generation: &Generation,
    home: u64,
    identity: u32,
    fingerprint: Fingerprint,
    recall: &mut Recall,
) -> bool {
    for table in &generation.tables {
        let bucket = table.home(home);
        // A bucket fills from its first slot: empty there, empty
        // throughout, and never passed over.
        if table.first_slot(bucket) == 0 {
            continue;
        }
        match table.find_from(bucket, identity, fingerprint.0) {
            Recall::Duplicate => return true,
            Recall::Collision => *recall = Recall::Collision,
            Recall::Unknown => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A memory with fixed keys and the given retentions.
    pub(super) fn memory(lifetime_ms: u64, window_ms: u64) -> RememberedIdentities {
        let keys = Keys {
            position: 7,
            fingerprint: foldhash::fast::FixedState::with_seed(9),
        };
        RememberedIdentities::new(
            keys,
            crate::table_hash::TableHashState::with_seed(3),
            Duration::from_millis(lifetime_ms),
            Duration::from_millis(window_ms),
        )
    }

    fn addr(port: u16) -> SocketAddr {
        ([10, 0, 0, 1], port).into()
    }

    #[test]
    fn warming_reads_every_kind_of_memory_and_changes_none() {
        let mut memory = memory(1000, 8000);
        let now = Instant::now();
        let fingerprint = memory.keys.fingerprint(b"one");
        assert!(memory.warmer(&addr(1)).is_none(), "nothing held yet");
        // An address whose identities all ended without an ACK: no
        // generation of the lifetime class at all.
        memory.insert(
            now,
            addr(1),
            Identity::from_u32(1),
            fingerprint,
            Retention::Window,
            usize::MAX,
        );
        // One with several generations of both classes, filters built.
        for i in 0..4_000u32 {
            let at = now + Duration::from_millis(u64::from(i) / 4);
            let class = if i % 3 == 0 {
                Retention::Window
            } else {
                Retention::Lifetime
            };
            memory.insert(
                at,
                addr(2),
                Identity::from_u32(i),
                fingerprint,
                class,
                usize::MAX,
            );
        }
        let (len, bytes) = (memory.len(), memory.bytes());
        for address in [addr(1), addr(2)] {
            let warmer = memory.warmer(&address).expect("held");
            for i in 0..5_000u32 {
                warmer.warm(Identity::from_u32(i));
            }
        }
        assert_eq!((memory.len(), memory.bytes()), (len, bytes));
        assert_eq!(
            memory.recall(&addr(2), Identity::from_u32(3), fingerprint),
            Recall::Duplicate
        );
    }

    #[test]
    fn the_first_table_grows_fourfold_when_the_budget_allows() {
        let now = Instant::now();
        let fixed = HISTORY_BYTES + GENERATION_BYTES;
        // A budget of 100 bytes affords doubling the 120-byte table, not more.
        for (budget, slots) in [(usize::MAX, 4 * MIN_TABLE), (100, 2 * MIN_TABLE)] {
            let mut memory = memory(1000, 8000);
            let f = memory.keys.fingerprint(b"x");
            for i in 0..7u32 {
                memory.insert(
                    now,
                    addr(1),
                    Identity::from_u32(i),
                    f,
                    Retention::Lifetime,
                    budget,
                );
                let expected = if i < 6 { MIN_TABLE } else { slots };
                assert_eq!(memory.bytes_for(&addr(1)), fixed + table_bytes(expected));
            }
            for i in 0..7u32 {
                assert_eq!(
                    memory.recall(&addr(1), Identity::from_u32(i), f),
                    Recall::Duplicate
                );
            }
        }
    }

    #[test]
    fn exact_membership_with_fingerprints() {
        let mut memory = memory(1000, 8000);
        let now = Instant::now();
        let keys = memory.keys;
        let (a, b) = (keys.fingerprint(b"one"), keys.fingerprint(b"two"));
        assert_ne!(a, b);
        let id = Identity::from_u32(42);
        memory.insert(now, addr(1), id, a, Retention::Lifetime, usize::MAX);
        assert_eq!(memory.recall(&addr(1), id, a), Recall::Duplicate);
        assert_eq!(memory.recall(&addr(1), id, b), Recall::Collision);
        assert_eq!(memory.recall(&addr(2), id, a), Recall::Unknown);
        assert_eq!(
            memory.recall(&addr(1), Identity::from_u32(43), a),
            Recall::Unknown
        );
        // Many identities, all found, none invented.
        for i in 0..10_000u32 {
            let f = keys.fingerprint(&i.to_be_bytes());
            memory.insert(
                now,
                addr(1),
                Identity::from_u32(i << 8),
                f,
                Retention::Lifetime,
                usize::MAX,
            );
        }
        for i in 0..10_000u32 {
            let f = keys.fingerprint(&i.to_be_bytes());
            assert_eq!(
                memory.recall(&addr(1), Identity::from_u32(i << 8), f),
                Recall::Duplicate
            );
            assert_eq!(
                memory.recall(&addr(1), Identity::from_u32((i << 8) | 1), f),
                Recall::Unknown
            );
        }
        assert_eq!(memory.len(), 10_001);
    }

    #[test]
    fn retention_boundaries() {
        // Lifetime 1000 ms: generations of 250 ms, so an identity lives at
        // least 1000 ms and less than 1250 ms.
        let mut memory = memory(1000, 8000);
        let epoch = Instant::now();
        let keys = memory.keys;
        let f = keys.fingerprint(b"x");
        memory.insert(
            epoch,
            addr(9),
            Identity::from_u32(1),
            f,
            Retention::Lifetime,
            usize::MAX,
        );
        let late = epoch + Duration::from_millis(249);
        memory.insert(
            late,
            addr(9),
            Identity::from_u32(2),
            f,
            Retention::Lifetime,
            usize::MAX,
        );
        // Just inside: 1000 ms after the later insertion, both still known.
        memory.expire(late + Duration::from_millis(1000) - Duration::from_nanos(1));
        assert_eq!(
            memory.recall(&addr(9), Identity::from_u32(1), f),
            Recall::Duplicate
        );
        assert_eq!(
            memory.recall(&addr(9), Identity::from_u32(2), f),
            Recall::Duplicate
        );
        // The generation ends at 250 ms and is forgotten at 1250 ms.
        assert_eq!(
            memory.next_expiry(),
            Some(epoch + Duration::from_millis(1250))
        );
        memory.expire(epoch + Duration::from_millis(1250) - Duration::from_nanos(1));
        assert_eq!(memory.len(), 2);
        memory.expire(epoch + Duration::from_millis(1250));
        assert_eq!(memory.len(), 0);
        assert_eq!(
            memory.recall(&addr(9), Identity::from_u32(1), f),
            Recall::Unknown
        );
        // Its table is kept two generations for reuse, then freed.
        let freed = epoch + Duration::from_millis(1750);
        assert_eq!(memory.next_expiry(), Some(freed));
        memory.expire(freed);
        assert_eq!(memory.bytes(), 0, "an empty memory holds nothing");
        assert_eq!(memory.next_expiry(), None);
    }

    #[test]
    fn classes_expire_independently() {
        let mut memory = memory(1000, 8000);
        let epoch = Instant::now();
        let f = memory.keys.fingerprint(b"x");
        memory.insert(
            epoch,
            addr(1),
            Identity::from_u32(1),
            f,
            Retention::Lifetime,
            usize::MAX,
        );
        memory.insert(
            epoch,
            addr(1),
            Identity::from_u32(2),
            f,
            Retention::Window,
            usize::MAX,
        );
        memory.expire(epoch + Duration::from_millis(1250));
        assert_eq!(
            memory.recall(&addr(1), Identity::from_u32(1), f),
            Recall::Unknown
        );
        memory.expire(epoch + Duration::from_millis(9999));
        assert_eq!(
            memory.recall(&addr(1), Identity::from_u32(2), f),
            Recall::Duplicate
        );
        memory.expire(epoch + Duration::from_millis(10_000));
        assert_eq!(memory.len(), 0);
        memory.expire(epoch + Duration::from_millis(20_000));
        assert_eq!(memory.bytes(), 0);
    }

    #[test]
    fn steady_stream_costs_at_most_the_planning_figure() {
        // 40,000 identities per 250 ms generation, over 20 generations.
        let mut memory = memory(1000, 8000);
        let epoch = Instant::now();
        let f = memory.keys.fingerprint(b"p");
        let mut identity = 0u32;
        let mut worst = 0.0f64;
        for generation in 0..20u64 {
            for i in 0..40_000u64 {
                let at = epoch + Duration::from_micros(generation * 250_000 + i * 6);
                memory.expire(at);
                identity = identity.wrapping_add(0x9e37_79b9);
                memory.insert(
                    at,
                    addr(1),
                    Identity::from_u32(identity),
                    f,
                    Retention::Lifetime,
                    usize::MAX,
                );
                if generation >= 8 && i % 1_000 == 0 {
                    worst = worst.max(memory.bytes() as f64 / memory.len() as f64);
                }
            }
        }
        assert!(
            worst <= STEADY_BYTES_PER_IDENTITY as f64,
            "{worst:.2} bytes per identity"
        );
    }

    /// A stream whose rate climbs: its filter is rebuilt (grown) again and
    /// again while identities keep coming, its oldest generations are
    /// forgotten and its newest table is rehashed into larger ones. Every
    /// identity younger than its retention is recalled at every point,
    /// each rebuild is spread over many insertions rather than walked in
    /// one, and each ends with the new filter in place.
    #[test]
    fn a_filter_rebuilt_step_by_step_never_hides_an_identity() {
        let mut memory = memory(1000, 4000);
        let fingerprint = memory.keys.fingerprint(b"a");
        let identity = |i: u32| Identity::from_u32(i.wrapping_mul(0x9e37_79b9));
        let start = Instant::now();
        let mut now = start;
        let mut held: VecDeque<(Instant, u32)> = VecDeque::new();
        let (mut rebuilds, mut insertions_rebuilding, mut was_rebuilding) = (0, 0, false);
        for i in 0..30_000u32 {
            // From 5,000 to about 50,000 a second.
            now += Duration::from_micros(200 - u64::from(i) * 180 / 30_000);
            memory.expire(now);
            while held
                .front()
                .is_some_and(|&(at, _)| now - at >= Duration::from_millis(1000))
            {
                held.pop_front();
            }
            memory.insert(
                now,
                addr(1),
                identity(i),
                fingerprint,
                Retention::Lifetime,
                usize::MAX,
            );
            memory.assert_accounted();
            held.push_back((now, i));
            let history = memory.histories.get(&addr(1)).expect("a history");
            let rebuilding = history.lifetime().is_rebuilding();
            insertions_rebuilding += usize::from(rebuilding);
            rebuilds += usize::from(was_rebuilding && !rebuilding);
            was_rebuilding = rebuilding;
            if rebuilding || i % 211 == 0 {
                for &(_, j) in held.iter().step_by(if rebuilding { 7 } else { 1 }) {
                    assert_eq!(
                        memory.recall(&addr(1), identity(j), fingerprint),
                        Recall::Duplicate,
                        "identity {j} hidden at insertion {i}"
                    );
                }
            }
        }
        assert!(rebuilds >= 3, "{rebuilds} rebuilds completed");
        assert!(
            insertions_rebuilding > 1_000,
            "rebuilds spread over {insertions_rebuilding} insertions"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Against a plain list of what was inserted when: every identity
        /// younger than its retention is recalled as a duplicate, and
        /// nothing never inserted ever is (the memory is exact), through
        /// rehashing in place, tables added beside full ones, generation
        /// filters built, grown and shrunk, and generations forgotten.
        #[test]
        fn recalls_exactly_what_a_model_holds(
            operations in proptest::collection::vec(
                (0u16..2, 0u32..3000, 1u32..4, proptest::bool::weighted(0.2), (0u64..300, proptest::bool::weighted(0.005)), proptest::bool::weighted(0.7), proptest::bool::weighted(0.1)),
                1..6000,
            )
        ) {
            let mut memory = memory(1000, 4000);
            let keys = memory.keys;
            let fingerprints = [keys.fingerprint(b"a"), keys.fingerprint(b"b"), keys.fingerprint(b"c")];
            let start = Instant::now();
            let mut now = start;
            // (address, identity, fingerprint index, inserted at, retention)
            let mut model: Vec<(u16, u32, u32, Instant, Duration)> = Vec::new();
            for (port, id, fp, window, (step, jump), insert, tight) in operations {
                // Mostly a stream (tables fill and grow), now and then a
                // jump of up to 1.5 s (generations are forgotten).
                now += if jump { Duration::from_millis(step * 5) } else { Duration::from_micros(step) };
                memory.expire(now);
                let fingerprint = fingerprints[(fp - 1) as usize];
                let identity = Identity::from_u32(id.wrapping_mul(0x9e37_79b9));
                if insert {
                    let (class, retention) = if window {
                        (Retention::Window, Duration::from_millis(4000))
                    } else {
                        (Retention::Lifetime, Duration::from_millis(1000))
                    };
                    // A tight budget refuses growth in place: tables are added.
                    let budget = if tight { 64 } else { usize::MAX };
                    memory.insert(now, addr(port), identity, fingerprint, class, budget);
                    memory.assert_accounted();
                    model.push((port, id, fp, now, retention));
                    continue;
                }
                let recall = memory.recall(&addr(port), identity, fingerprint);
                // The receiver skips the look-up of an address's bytes while
                // the whole memory is within the bound for one.
                proptest::prop_assert!(memory.bytes_for(&addr(port)) <= memory.bytes());
                let same = |&&(p, i, f, _, _): &&(u16, u32, u32, Instant, Duration)| p == port && i == id && f == fp;
                let young = model.iter().filter(same).any(|&(_, _, _, at, retention)| now.duration_since(at) < retention);
                let ever = model.iter().any(|entry| same(&entry));
                if young {
                    proptest::prop_assert_eq!(recall, Recall::Duplicate, "forgot a young identity");
                }
                if !ever {
                    proptest::prop_assert_ne!(recall, Recall::Duplicate, "recalled what was never inserted");
                }
                let other_payload = model.iter().any(|&(p, i, f, _, _)| p == port && i == id && f != fp);
                if !ever && !other_payload {
                    proptest::prop_assert_eq!(recall, Recall::Unknown);
                }
            }
            proptest::prop_assert_eq!(memory.len() <= model.len(), true);
            memory.assert_accounted();
            memory.expire(now + Duration::from_secs(10));
            memory.assert_accounted();
            proptest::prop_assert_eq!(memory.len(), 0);
            // Spare tables are kept two lifetime generations.
            memory.expire(now + Duration::from_secs(11));
            proptest::prop_assert_eq!(memory.bytes(), 0, "everything forgotten, nothing held");
        }
    }
}
