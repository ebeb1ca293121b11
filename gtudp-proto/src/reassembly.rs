//! Incomplete large messages on the receiving side, within a byte budget.
//!
//! Each fragment reaches this table only once (the endpoint's duplicate
//! suppression works per fragment, by its identity), and only when the
//! endpoint is about to take it: the table either takes it, completing its
//! message or not, or refuses it, and then the endpoint leaves the fragment
//! unanswered, so its sender resends it later. Nothing is ever answered and
//! then dropped.
//!
//! # Memory
//!
//! A message's whole declared size (plus its record of which fragments
//! came, and a fixed overhead) is counted against the endpoint's and the
//! host's budget when its first fragment is taken, and only then is its
//! buffer allocated: a first fragment declaring 4 GiB is refused, not
//! allocated. Fragments of messages already started are always taken, so a
//! full budget delays new messages without stalling those under way.
//!
//! # Lifetime
//!
//! An incomplete message is kept until the lifetime its fragments announce
//! has passed since the latest of them arrived. The announced lifetime runs
//! from the sender's acceptance of the message to its deadline, after which
//! it sends none of it; every fragment arrives after that acceptance, so the
//! message is kept at least until its sender has stopped. A message is thus
//! never dropped while its sender could still complete it, and a message
//! whose sender gave up (and reported it failed) frees its memory.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::table_hash::TableHashState;
use crate::wire::FragmentHeader;

type Map<K, V> = hashbrown::HashMap<K, V, TableHashState>;

/// Bytes counted for each incomplete message beside its buffer and its
/// record of fragments: the table entry and its expiry entries.
pub(crate) const OVERHEAD_PER_MESSAGE: usize = 128;

/// A message is known by its sender (host, or address: see
/// `Config::recognise_copies_across_ports`) and its number.
type MessageKey = (SocketAddr, u32);

/// Why a fragment was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Its header is malformed or disagrees with its length.
    Malformed,
    /// It declares a message larger than `max_message_size`, or a lifetime
    /// longer than `max_lifetime`.
    OverLimits,
    /// It disagrees with the fragments of its message already taken (another
    /// total or unit).
    Inconsistent,
    /// Starting its message would pass the endpoint's or the host's budget.
    OverBudget,
}

/// What became of a fragment that was taken.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Taken {
    /// Its message still lacks fragments.
    Partial,
    /// It completed its message: the whole payload, to hand over.
    Complete(Bytes),
}

/// The limits a fragment is checked against.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Budget {
    pub(crate) max_message_size: usize,
    pub(crate) max_lifetime: Duration,
    pub(crate) max_bytes: usize,
    pub(crate) max_bytes_per_sender: usize,
    /// How long a message refused for the budget keeps its place in line
    /// without being sent again (see [`Reassembly::admit`]).
    pub(crate) patience: Duration,
}

/// Messages refused for the budget kept in line, at most.
const WAITING: usize = 64;

#[derive(Debug)]
struct Partial {
    total: u32,
    unit: u16,
    buffer: Vec<u8>,
    /// One bit per fragment, set once it is in `buffer`.
    arrived: Vec<u64>,
    missing: u32,
    /// Bytes counted against the budgets.
    reserved: usize,
    expires: Instant,
}

/// Incomplete large messages: see the module docs.
#[derive(Debug)]
pub(crate) struct Reassembly {
    partials: Map<MessageKey, Partial>,
    reserved: usize,
    reserved_by_sender: Map<SocketAddr, usize>,
    /// One expiry entry per incomplete message, earliest first; an entry
    /// whose message was extended since is moved when it comes up, and one
    /// whose message is gone is dropped.
    expiries: BinaryHeap<Reverse<(Instant, SocketAddr, u32)>>,
    /// New messages refused for the budget, in the order first refused,
    /// with when each was last refused: room that frees goes to the first
    /// (see [`Reassembly::admit`]).
    waiting: VecDeque<(MessageKey, Instant)>,
}

impl Reassembly {
    pub(crate) fn new(hasher: TableHashState) -> Self {
        Self {
            partials: Map::with_hasher(hasher),
            reserved: 0,
            reserved_by_sender: Map::with_hasher(hasher),
            expiries: BinaryHeap::new(),
            waiting: VecDeque::new(),
        }
    }

    /// Bytes counted against the endpoint's budget.
    pub(crate) fn bytes(&self) -> usize {
        self.reserved
    }

    /// The most bytes counted for one sender.
    pub(crate) fn largest_sender_bytes(&self) -> usize {
        self.reserved_by_sender.values().copied().max().unwrap_or(0)
    }

    /// Incomplete messages held.
    pub(crate) fn len(&self) -> usize {
        self.partials.len()
    }

    /// Whether `fragment` (a fragment datagram's payload: header and bytes)
    /// from `sender` fits the limits and the budget, without taking it or
    /// looking at the line of [`Self::admit`].
    pub(crate) fn check(
        &self,
        sender: SocketAddr,
        fragment: &[u8],
        budget: &Budget,
    ) -> Result<(), Refusal> {
        let (header, _) = FragmentHeader::parse(fragment).map_err(|_| Refusal::Malformed)?;
        if header.total as usize > budget.max_message_size
            || Duration::from_millis(header.lifetime_ms.into()) > budget.max_lifetime
        {
            return Err(Refusal::OverLimits);
        }
        match self.partials.get(&(sender, header.message)) {
            Some(partial) if partial.total != header.total || partial.unit != header.unit => {
                Err(Refusal::Inconsistent)
            }
            Some(_) => Ok(()),
            None if FragmentHeader::count(header.total, header.unit) == 1 => Ok(()),
            None => {
                let reserve = reserve_for(&header);
                let sender_bytes = self.reserved_by_sender.get(&sender).copied().unwrap_or(0);
                if self.reserved + reserve > budget.max_bytes
                    || sender_bytes + reserve > budget.max_bytes_per_sender
                {
                    Err(Refusal::OverBudget)
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Whether `fragment` from `sender` can be taken now, keeping the line
    /// of messages refused for the budget: when room frees, the first of
    /// them gets it, and a newer message is refused meanwhile, so that each
    /// waits its turn instead of racing the others' resends (where any could
    /// starve). A message keeps its place while its sender keeps sending;
    /// one not refused again for `patience` (its sender gave up) leaves
    /// the line. At most 64 wait in line; past that, refusals keep no place.
    pub(crate) fn admit(
        &mut self,
        now: Instant,
        sender: SocketAddr,
        fragment: &[u8],
        budget: &Budget,
    ) -> Result<(), Refusal> {
        let starts = self.check(sender, fragment, budget);
        let Some(message) = FragmentHeader::parse(fragment)
            .ok()
            .map(|(header, _)| (sender, header.message))
            .filter(|key| !self.partials.contains_key(key))
        else {
            return starts;
        };
        while let Some((_, last)) = self.waiting.front() {
            if *last + budget.patience >= now {
                break;
            }
            self.waiting.pop_front();
        }
        let first_in_line = self
            .waiting
            .front()
            .map_or(true, |(key, _)| *key == message);
        match starts {
            Ok(()) if first_in_line => {
                if self.waiting.front().is_some_and(|(key, _)| *key == message) {
                    self.waiting.pop_front();
                }
                Ok(())
            }
            Ok(()) | Err(Refusal::OverBudget) => {
                let room = self.waiting.len() < WAITING;
                match self.waiting.iter_mut().find(|(key, _)| *key == message) {
                    Some(place) => place.1 = now,
                    None if room => self.waiting.push_back((message, now)),
                    None => {}
                }
                Err(Refusal::OverBudget)
            }
            Err(other) => Err(other),
        }
    }

    /// Takes `fragment` from `sender`, which [`Self::admit`] accepted.
    pub(crate) fn take(
        &mut self,
        now: Instant,
        sender: SocketAddr,
        fragment: &[u8],
        budget: &Budget,
    ) -> Result<Taken, Refusal> {
        self.check(sender, fragment, budget)?;
        let (header, bytes) = FragmentHeader::parse(fragment).map_err(|_| Refusal::Malformed)?;
        let expires = now + Duration::from_millis(header.lifetime_ms.into());
        let key = (sender, header.message);
        if FragmentHeader::count(header.total, header.unit) == 1
            && !self.partials.contains_key(&key)
        {
            return Ok(Taken::Complete(Bytes::copy_from_slice(bytes)));
        }
        let partial = match self.partials.entry(key) {
            hashbrown::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            hashbrown::hash_map::Entry::Vacant(entry) => {
                let reserved = reserve_for(&header);
                self.reserved += reserved;
                *self.reserved_by_sender.entry(sender).or_insert(0) += reserved;
                let count = FragmentHeader::count(header.total, header.unit);
                self.expiries
                    .push(Reverse((expires, sender, header.message)));
                entry.insert(Partial {
                    total: header.total,
                    unit: header.unit,
                    buffer: vec![0; header.total as usize],
                    arrived: vec![0; (count as usize).div_ceil(64)],
                    missing: count,
                    reserved,
                    expires,
                })
            }
        };
        // Later fragments push the expiry back; its heap entry is moved when
        // it comes up (one entry per message).
        partial.expires = partial.expires.max(expires);
        let (word, bit) = (header.index as usize / 64, header.index % 64);
        let Some(arrived) = partial.arrived.get_mut(word) else {
            return Err(Refusal::Malformed);
        };
        if *arrived & (1u64 << bit) == 0 {
            // A second fragment for the same place (another identity: a
            // sender that restarted and reused the number) is taken without
            // overwriting what came first.
            let start = header.offset();
            let Some(place) = partial.buffer.get_mut(start..start + bytes.len()) else {
                return Err(Refusal::Malformed);
            };
            place.copy_from_slice(bytes);
            *arrived |= 1u64 << bit;
            partial.missing -= 1;
        }
        if partial.missing > 0 {
            return Ok(Taken::Partial);
        }
        let Some(done) = self.partials.remove(&key) else {
            return Ok(Taken::Partial);
        };
        self.release(sender, done.reserved);
        Ok(Taken::Complete(Bytes::from(done.buffer)))
    }

    /// When the earliest incomplete message expires, if any.
    pub(crate) fn next_expiry(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, sender, message))) = self.expiries.peek().copied() {
            match self.partials.get(&(sender, message)) {
                Some(partial) if partial.expires == at => return Some(at),
                Some(partial) => {
                    let extended = partial.expires;
                    self.expiries.pop();
                    self.expiries.push(Reverse((extended, sender, message)));
                }
                None => {
                    self.expiries.pop();
                }
            }
        }
        None
    }

    /// Drops the incomplete messages whose lifetime has passed; returns how
    /// many.
    pub(crate) fn expire(&mut self, now: Instant) -> usize {
        let mut dropped = 0;
        while let Some(at) = self.next_expiry() {
            if at > now {
                break;
            }
            let Some(Reverse((_, sender, message))) = self.expiries.pop() else {
                break;
            };
            if let Some(partial) = self.partials.remove(&(sender, message)) {
                self.release(sender, partial.reserved);
                dropped += 1;
            }
        }
        dropped
    }

    pub(crate) fn clear(&mut self) {
        self.partials.clear();
        self.reserved = 0;
        self.reserved_by_sender.clear();
        self.expiries.clear();
        self.waiting.clear();
    }

    fn release(&mut self, sender: SocketAddr, reserved: usize) {
        self.reserved -= reserved;
        if let Some(bytes) = self.reserved_by_sender.get_mut(&sender) {
            *bytes -= reserved;
            if *bytes == 0 {
                self.reserved_by_sender.remove(&sender);
            }
        }
    }
}

/// What starting the message of `header` counts against the budgets.
fn reserve_for(header: &FragmentHeader) -> usize {
    let count = FragmentHeader::count(header.total, header.unit) as usize;
    header.total as usize + count.div_ceil(64) * 8 + OVERHEAD_PER_MESSAGE
}

#[cfg(test)]
mod tests {
    use super::*;

    const SENDER: ([u8; 4], u16) = ([10, 0, 0, 1], 0);

    fn sender() -> SocketAddr {
        SENDER.into()
    }

    fn budget() -> Budget {
        Budget {
            max_message_size: 1 << 20,
            max_lifetime: Duration::from_secs(300),
            max_bytes: 1 << 20,
            max_bytes_per_sender: 1 << 19,
            patience: Duration::from_secs(2),
        }
    }

    fn fragment(message: u32, total: u32, index: u32, unit: u16, fill: u8) -> Vec<u8> {
        let header = FragmentHeader {
            message,
            total,
            index,
            unit,
            lifetime_ms: 10_000,
        };
        let mut out = Vec::new();
        header.encode(&mut out);
        let len = header.expected_len().unwrap_or(0);
        out.resize(FragmentHeader::LEN + len, fill);
        out
    }

    #[test]
    fn completes_in_any_order_and_frees_its_budget() {
        let mut table = Reassembly::new(TableHashState::with_seed(1));
        let now = Instant::now();
        let (total, unit) = (1_000u32, 256u16);
        let mut outcomes = Vec::new();
        for index in [3, 0, 2, 1] {
            let piece = fragment(9, total, index, unit, index as u8);
            outcomes.push(table.take(now, sender(), &piece, &budget()).unwrap());
        }
        assert!(outcomes[..3].iter().all(|taken| *taken == Taken::Partial));
        let Taken::Complete(whole) = &outcomes[3] else {
            panic!("not complete: {outcomes:?}");
        };
        assert_eq!(whole.len(), 1_000);
        assert!(whole[..256].iter().all(|&b| b == 0));
        assert!(whole[768..].iter().all(|&b| b == 3));
        assert_eq!(
            (table.bytes(), table.len(), table.largest_sender_bytes()),
            (0, 0, 0)
        );
    }

    #[test]
    fn a_declared_size_over_the_budget_is_refused_before_anything_is_allocated() {
        let mut table = Reassembly::new(TableHashState::with_seed(2));
        let now = Instant::now();
        let mut wide = budget();
        wide.max_message_size = u32::MAX as usize;
        let huge = fragment(1, u32::MAX, 0, 1_400, 0);
        assert_eq!(
            table.take(now, sender(), &huge, &wide),
            Err(Refusal::OverBudget)
        );
        assert_eq!(
            table.take(now, sender(), &huge, &budget()),
            Err(Refusal::OverLimits)
        );
        assert_eq!(table.len(), 0);
        // The budget holds one sender to its share; a started message
        // still completes when the budget is full.
        let first = fragment(2, 400_000, 0, 1_000, 1);
        assert_eq!(
            table.take(now, sender(), &first, &budget()),
            Ok(Taken::Partial)
        );
        let second = fragment(3, 400_000, 0, 1_000, 1);
        assert_eq!(
            table.take(now, sender(), &second, &budget()),
            Err(Refusal::OverBudget)
        );
        let next = fragment(2, 400_000, 1, 1_000, 1);
        assert_eq!(
            table.take(now, sender(), &next, &budget()),
            Ok(Taken::Partial)
        );
    }

    #[test]
    fn room_that_frees_goes_to_the_message_refused_first() {
        let mut table = Reassembly::new(TableHashState::with_seed(5));
        let now = Instant::now();
        let first = fragment(1, 400_000, 0, 1_000, 1);
        assert!(table.admit(now, sender(), &first, &budget()).is_ok());
        table.take(now, sender(), &first, &budget()).unwrap();
        // Two more messages are refused, the second one later.
        let (second, third) = (
            fragment(2, 400_000, 0, 1_000, 2),
            fragment(3, 400_000, 0, 1_000, 3),
        );
        assert_eq!(
            table.admit(now, sender(), &second, &budget()),
            Err(Refusal::OverBudget)
        );
        assert_eq!(
            table.admit(now, sender(), &third, &budget()),
            Err(Refusal::OverBudget)
        );
        // The first completes...
        for index in 1..400 {
            table
                .take(
                    now,
                    sender(),
                    &fragment(1, 400_000, index, 1_000, 1),
                    &budget(),
                )
                .unwrap();
        }
        assert_eq!(table.bytes(), 0);
        // ...and the room goes to the second, even if the third asks first.
        assert_eq!(
            table.admit(now, sender(), &third, &budget()),
            Err(Refusal::OverBudget)
        );
        assert!(table.admit(now, sender(), &second, &budget()).is_ok());
        // A place is lost once its sender stops asking for it.
        let later = now + Duration::from_secs(3);
        let mut fourth_budget = budget();
        fourth_budget.max_bytes_per_sender = 1 << 20;
        let fourth = fragment(4, 400_000, 0, 1_000, 4);
        assert!(table
            .admit(later, sender(), &fourth, &fourth_budget)
            .is_ok());
    }

    #[test]
    fn fragments_that_disagree_with_their_message_are_refused() {
        let mut table = Reassembly::new(TableHashState::with_seed(3));
        let now = Instant::now();
        table
            .take(now, sender(), &fragment(5, 1_000, 0, 256, 0), &budget())
            .unwrap();
        for bad in [fragment(5, 1_200, 1, 256, 0), fragment(5, 1_000, 1, 128, 0)] {
            assert_eq!(
                table.take(now, sender(), &bad, &budget()),
                Err(Refusal::Inconsistent)
            );
        }
        let mut short = fragment(5, 1_000, 1, 256, 0);
        short.pop();
        assert_eq!(
            table.take(now, sender(), &short, &budget()),
            Err(Refusal::Malformed)
        );
        // The same place again (another identity) changes nothing.
        let again = fragment(5, 1_000, 0, 256, 0xff);
        assert_eq!(
            table.take(now, sender(), &again, &budget()),
            Ok(Taken::Partial)
        );
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn an_incomplete_message_lives_as_long_as_its_latest_fragment_announces() {
        let mut table = Reassembly::new(TableHashState::with_seed(4));
        let start = Instant::now();
        table
            .take(start, sender(), &fragment(7, 1_000, 0, 256, 0), &budget())
            .unwrap();
        let later = start + Duration::from_secs(5);
        table
            .take(later, sender(), &fragment(7, 1_000, 1, 256, 0), &budget())
            .unwrap();
        assert_eq!(table.next_expiry(), Some(later + Duration::from_secs(10)));
        assert_eq!(table.expire(start + Duration::from_secs(11)), 0);
        assert_eq!(table.len(), 1);
        assert_eq!(table.expire(later + Duration::from_secs(10)), 1);
        assert_eq!(
            (table.len(), table.bytes(), table.next_expiry()),
            (0, 0, None)
        );
    }
}
