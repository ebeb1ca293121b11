//! The received messages whose RECV awaits its ACK, in a slab with a
//! hashed index.
//!
//! A message's exchange reaches its record four times: its DATA looks for
//! it (a repeat, or new), a new DATA creates it, its RECV's transmission
//! updates it, its ACK removes it. Kept in a plain map, each of those hashed
//! the key and probed the table. Here a record lives in a slot of a slab
//! and the index maps its key to the slot: the DATA's look-up hashes the
//! key once and, when the message is new, hands that hash to the insertion
//! (no second hash, no second probe); the insertion returns an
//! [`AwaitingId`] that the RECV order carries, so the RECV's transmission
//! reaches the record by index, with no hashing at all; so does the RECV's
//! resend deadline, whose liveness the endpoint checks each time it is the
//! earliest deadline when the timeout is polled (an adapter polls after
//! every step). Only the ACK, which names just the identity, hashes again.
//!
//! A slot freed by an ended exchange is reused by a later record (last
//! freed, first reused: its memory is the warmest); every record gets a new
//! serial, so an id of the old record finds nothing there. The slab holds
//! at most as many slots as records ever awaited at once, which
//! [`Limits::max_awaiting_ack`](crate::Limits) bounds.

use hashbrown::HashTable;

use super::receiver::{AwaitingAck, AwaitingKey};
use crate::table_hash::TableHashState;

/// Names one record while it awaits its ACK: its slot, and the serial that
/// tells it from the slot's later records. Its RECV's resend deadline
/// ([`TimerKey::Received`](crate::timer::TimerKey)) names it so, and
/// finds it with no hashing: the endpoint asks whether the earliest
/// deadline is live at every poll of its timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct AwaitingId {
    serial: u64,
    slot: u32,
}

impl AwaitingId {
    /// An id for tests of the timer queue, which only compare ids.
    #[cfg(test)]
    pub(crate) fn for_test(serial: u64) -> Self {
        Self { serial, slot: 0 }
    }
}

/// The hash of a key found absent by [`AwaitingRecords::find`], to insert
/// it without hashing again.
#[derive(Clone, Copy, Debug)]
pub(super) struct KeyHash(u64);

#[derive(Debug)]
struct Slot {
    serial: u64,
    entry: Option<(AwaitingKey, AwaitingAck)>,
}

/// The records: see the module docs.
#[derive(Debug)]
pub(super) struct AwaitingRecords {
    hasher: TableHashState,
    /// Each record's identity (a cheap first comparison, kept beside the
    /// slot so a probe touches the slab only on a likely match) and slot.
    index: HashTable<(u32, u32)>,
    slots: Vec<Slot>,
    /// Slots whose record is gone, the last freed at the end.
    free: Vec<u32>,
    next_serial: u64,
}

impl AwaitingRecords {
    pub(super) fn with_hasher(hasher: TableHashState) -> Self {
        Self {
            hasher,
            index: HashTable::new(),
            slots: Vec::new(),
            free: Vec::new(),
            next_serial: 0,
        }
    }

    /// Hashes `key` for [`find`](Self::find) and, if absent,
    /// [`insert`](Self::insert).
    #[inline]
    pub(super) fn hash(&self, key: &AwaitingKey) -> KeyHash {
        use core::hash::BuildHasher;
        KeyHash(self.hasher.hash_one(key))
    }

    /// The slot of the record kept under `key`, whose hash is `hash`.
    #[inline(always)]
    fn slot_of(&self, hash: KeyHash, key: &AwaitingKey) -> Option<u32> {
        let slots = &self.slots;
        let identity = key.1.to_u32();
        self.index
            .find(hash.0, |&(found, slot)| {
                found == identity
                    && slots[slot as usize]
                        .entry
                        .as_ref()
                        .is_some_and(|(kept, _)| kept == key)
            })
            .map(|&(_, slot)| slot)
    }

    /// The record kept under `key` (hashed as `hash`), and its id.
    #[inline(always)]
    pub(super) fn find(
        &mut self,
        hash: KeyHash,
        key: &AwaitingKey,
    ) -> Option<(AwaitingId, &mut AwaitingAck)> {
        let slot = self.slot_of(hash, key)?;
        let place = &mut self.slots[slot as usize];
        let id = AwaitingId {
            serial: place.serial,
            slot,
        };
        place.entry.as_mut().map(|(_, record)| (id, record))
    }

    /// The record `id` names, while it awaits its ACK.
    #[inline]
    pub(super) fn get(&self, id: AwaitingId) -> Option<&AwaitingAck> {
        match self.slots.get(id.slot as usize) {
            Some(Slot {
                serial,
                entry: Some((_, record)),
            }) if *serial == id.serial => Some(record),
            _ => None,
        }
    }

    /// The record `id` names and the key it is kept under, to change.
    #[inline]
    pub(super) fn get_mut(&mut self, id: AwaitingId) -> Option<(AwaitingKey, &mut AwaitingAck)> {
        match self.slots.get_mut(id.slot as usize) {
            Some(Slot {
                serial,
                entry: Some((key, record)),
            }) if *serial == id.serial => Some((*key, record)),
            _ => None,
        }
    }

    /// Keeps `record` under `key`, which [`find`](Self::find) found absent
    /// with `hash` (nothing was inserted under it since), and returns its
    /// id.
    #[inline(always)]
    pub(super) fn insert(
        &mut self,
        hash: KeyHash,
        key: AwaitingKey,
        record: AwaitingAck,
    ) -> AwaitingId {
        debug_assert!(self.slot_of(hash, &key).is_none(), "the key is kept");
        let serial = self.next_serial;
        self.next_serial += 1;
        let entry = Some((key, record));
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Slot { serial, entry };
                slot
            }
            None => {
                // At most `max_awaiting_ack` slots: far below 2^32.
                let slot = self.slots.len() as u32;
                self.slots.push(Slot { serial, entry });
                slot
            }
        };
        let (hasher, slots) = (&self.hasher, &self.slots);
        self.index
            .insert_unique(hash.0, (key.1.to_u32(), slot), |&(_, slot)| {
                match &slots[slot as usize].entry {
                    Some((key, _)) => core::hash::BuildHasher::hash_one(hasher, key),
                    None => 0,
                }
            });
        AwaitingId { serial, slot }
    }

    /// Removes the record kept under `key`: returns it and the id it had.
    #[inline(always)]
    pub(super) fn remove(&mut self, key: &AwaitingKey) -> Option<(AwaitingId, AwaitingAck)> {
        let hash = self.hash(key);
        let slots = &self.slots;
        let identity = key.1.to_u32();
        let found = self.index.find_entry(hash.0, |&(found, slot)| {
            found == identity
                && slots[slot as usize]
                    .entry
                    .as_ref()
                    .is_some_and(|(kept, _)| kept == key)
        });
        let ((_, slot), _) = found.ok()?.remove();
        self.free.push(slot);
        let place = &mut self.slots[slot as usize];
        let id = AwaitingId {
            serial: place.serial,
            slot,
        };
        place.entry.take().map(|(_, record)| (id, record))
    }

    /// Records awaiting their ACK.
    pub(super) fn len(&self) -> usize {
        self.index.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub(super) fn clear(&mut self) {
        self.index.clear();
        self.slots.clear();
        self.free.clear();
    }

    /// The records and their keys, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&AwaitingKey, &AwaitingAck)> + '_ {
        self.slots
            .iter()
            .filter_map(|place| place.entry.as_ref().map(|(key, record)| (key, record)))
    }
}
