//! The tracked peers, by address, with a memory of the last one found.
//!
//! One datagram's path asks for its peer many times (its parse, its
//! validation check, the message it resolves, the window it opens, the
//! timer it arms, the stats it counts), and a transmit's path does the same
//! for its destination. Each ask used to hash the address and probe the
//! table. Here the peers live in slots, the address map names a slot, and
//! the last address found for a change is remembered with its slot: the
//! asks after the first cost one address comparison. (Asks that only read
//! use the memory but do not set it, so the endpoint stays `Sync`.)

use std::net::SocketAddr;

use super::peer::Peer;
use super::Map;

/// Peers by address: see the module docs.
#[derive(Debug)]
pub(super) struct PeerTable {
    slots_by_address: Map<SocketAddr, usize>,
    /// Each slot holds a peer or is free (listed in `free`).
    slots: Vec<Option<Peer>>,
    free: Vec<usize>,
    /// The last address found by `get_mut` or `insert`, and its slot;
    /// cleared when that peer goes.
    last: Option<(SocketAddr, usize)>,
}

impl PeerTable {
    pub(super) fn with_hasher(hasher: crate::table_hash::TableHashState) -> Self {
        Self {
            slots_by_address: Map::with_hasher(hasher),
            slots: Vec::new(),
            free: Vec::new(),
            last: None,
        }
    }

    /// The slot of `address`, if tracked.
    #[inline(always)]
    fn slot(&self, address: &SocketAddr) -> Option<usize> {
        match self.last {
            Some((last, slot)) if same_address(&last, address) => Some(slot),
            _ => self.slots_by_address.get(address).copied(),
        }
    }

    /// As `slot`, remembering what it found for the next ask.
    #[inline(always)]
    fn slot_remembered(&mut self, address: &SocketAddr) -> Option<usize> {
        match self.last {
            Some((last, slot)) if same_address(&last, address) => Some(slot),
            _ => self.look_up(address),
        }
    }

    #[inline(never)]
    fn look_up(&mut self, address: &SocketAddr) -> Option<usize> {
        let slot = *self.slots_by_address.get(address)?;
        self.last = Some((*address, slot));
        Some(slot)
    }

    #[inline]
    pub(super) fn get(&self, address: &SocketAddr) -> Option<&Peer> {
        let slot = self.slot(address)?;
        self.slots.get(slot)?.as_ref()
    }

    #[inline]
    pub(super) fn get_mut(&mut self, address: &SocketAddr) -> Option<&mut Peer> {
        let slot = self.slot_remembered(address)?;
        self.slots.get_mut(slot)?.as_mut()
    }

    #[inline]
    pub(super) fn contains_key(&self, address: &SocketAddr) -> bool {
        self.slot(address).is_some()
    }

    /// Tracks `peer` at `address`, which must not be tracked yet.
    pub(super) fn insert(&mut self, address: SocketAddr, peer: Peer) {
        if let Some(slot) = self.slot(&address) {
            self.slots[slot] = Some(peer);
            return;
        }
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some(peer);
                slot
            }
            None => {
                self.slots.push(Some(peer));
                self.slots.len() - 1
            }
        };
        self.slots_by_address.insert(address, slot);
        self.last = Some((address, slot));
    }

    pub(super) fn remove(&mut self, address: &SocketAddr) -> Option<Peer> {
        let slot = self.slots_by_address.remove(address)?;
        if self.last.is_some_and(|(last, _)| last == *address) {
            self.last = None;
        }
        let peer = self.slots.get_mut(slot)?.take();
        self.free.push(slot);
        peer
    }

    pub(super) fn len(&self) -> usize {
        self.slots_by_address.len()
    }

    pub(super) fn keys(&self) -> impl Iterator<Item = &SocketAddr> + Clone + '_ {
        self.slots_by_address.keys()
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &Peer> + Clone + '_ {
        self.slots.iter().flatten()
    }

    pub(super) fn clear(&mut self) {
        self.slots_by_address.clear();
        self.slots.clear();
        self.free.clear();
        self.last = None;
    }
}

/// `a == b`, by fields, IPv4 first (the common case).
#[inline(always)]
fn same_address(a: &SocketAddr, b: &SocketAddr) -> bool {
    match (a, b) {
        (SocketAddr::V4(a), SocketAddr::V4(b)) => a.port() == b.port() && a.ip() == b.ip(),
        (SocketAddr::V6(a), SocketAddr::V6(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    fn address(port: u16) -> SocketAddr {
        ([10, 0, 0, 1], port).into()
    }

    #[test]
    fn the_remembered_peer_is_forgotten_with_it() {
        let mut table = PeerTable::with_hasher(crate::table_hash::TableHashState::with_seed(1));
        let config = Config::default();
        table.insert(address(1), Peer::new(&config));
        table.insert(address(2), Peer::new(&config));
        assert!(table.get(&address(1)).is_some());
        assert!(table.remove(&address(1)).is_some());
        assert!(
            table.get(&address(1)).is_none(),
            "the memory outlived the peer"
        );
        assert!(!table.contains_key(&address(1)));
        // The freed slot goes to the next peer, under its own address.
        table.insert(address(3), Peer::new(&config));
        assert!(table.get(&address(1)).is_none());
        assert!(table.get(&address(3)).is_some());
        assert!(table.get_mut(&address(2)).is_some());
        assert_eq!(table.len(), 2);
        assert_eq!(table.values().count(), 2);
        table.clear();
        assert!(table.get(&address(2)).is_none());
        assert_eq!(table.len(), 0);
    }
}
