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

use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};

use super::peer::Peer;
use super::Map;

/// Peers by address: see the module docs.
#[derive(Debug)]
pub(super) struct PeerTable {
    slots_by_address: Map<SocketAddr, usize>,
    /// Each slot holds a peer or is free (listed in `free`). Boxed: a peer
    /// starts on a cache line (see `Peer`), a growing table moves pointers
    /// rather than peers, and a freed slot keeps its box for the next peer
    /// (an address flood turns peers over with no allocation).
    #[allow(clippy::vec_box)] // boxed on purpose: see above
    slots: Vec<Box<Option<Peer>>>,
    free: Vec<usize>,
    /// The last address found by `get_mut` or `insert`, and its slot,
    /// cleared when that peer goes: an IPv4 address as its four bytes in
    /// one word and its port (`NO_PORT` for none), so that the common ask
    /// is two comparisons, or an IPv6 address.
    last_v4_ip: u32,
    last_v4_port: u32,
    last_v6: Option<SocketAddrV6>,
    last_slot: usize,
}

impl PeerTable {
    pub(super) fn with_hasher(hasher: crate::table_hash::TableHashState) -> Self {
        Self {
            slots_by_address: Map::with_hasher(hasher),
            slots: Vec::new(),
            free: Vec::new(),
            last_v4_ip: 0,
            last_v4_port: NO_PORT,
            last_v6: None,
            last_slot: 0,
        }
    }

    /// The slot of `address`, if tracked.
    #[inline(always)]
    fn slot(&self, address: &SocketAddr) -> Option<usize> {
        match self.last_slot_of(address) {
            Some(slot) => Some(slot),
            None => self.slots_by_address.get(address).copied(),
        }
    }

    /// As `slot`, remembering what it found for the next ask. A slot names
    /// its peer until the peer goes (see [`at_slot`](Self::at_slot)).
    #[inline(always)]
    pub(super) fn slot_remembered(&mut self, address: &SocketAddr) -> Option<usize> {
        match self.last_slot_of(address) {
            Some(slot) => Some(slot),
            None => self.look_up(address),
        }
    }

    /// The remembered slot, if `address` is the last one found.
    #[inline(always)]
    fn last_slot_of(&self, address: &SocketAddr) -> Option<usize> {
        let found = match address {
            SocketAddr::V4(v4) => {
                u32::from(v4.port()) == self.last_v4_port && ip_word(v4) == self.last_v4_ip
            }
            SocketAddr::V6(v6) => self.last_v6 == Some(*v6),
        };
        found.then_some(self.last_slot)
    }

    fn remember(&mut self, address: &SocketAddr, slot: usize) {
        match address {
            SocketAddr::V4(v4) => {
                (self.last_v4_ip, self.last_v4_port) = (ip_word(v4), u32::from(v4.port()));
                self.last_v6 = None;
            }
            SocketAddr::V6(v6) => {
                self.last_v4_port = NO_PORT;
                self.last_v6 = Some(*v6);
            }
        }
        self.last_slot = slot;
    }

    fn forget_last(&mut self) {
        self.last_v4_port = NO_PORT;
        self.last_v6 = None;
    }

    #[inline(never)]
    fn look_up(&mut self, address: &SocketAddr) -> Option<usize> {
        let slot = *self.slots_by_address.get(address)?;
        self.remember(address, slot);
        Some(slot)
    }

    #[inline]
    pub(super) fn get(&self, address: &SocketAddr) -> Option<&Peer> {
        let slot = self.slot(address)?;
        self.slots.get(slot)?.as_ref().as_ref()
    }

    /// As [`get`](Self::get), remembering what it found for the next ask
    /// (for callers that may borrow the table mutably).
    #[inline]
    pub(super) fn get_remembered(&mut self, address: &SocketAddr) -> Option<&Peer> {
        let slot = self.slot_remembered(address)?;
        self.slots.get(slot)?.as_ref().as_ref()
    }

    #[inline(always)]
    pub(super) fn get_mut(&mut self, address: &SocketAddr) -> Option<&mut Peer> {
        let slot = self.slot_remembered(address)?;
        self.slots.get_mut(slot)?.as_mut().as_mut()
    }

    /// The peer in `slot`, if any: the one tracked there when the slot was
    /// taken with [`slot_remembered`](Self::slot_remembered), or a later one (a slot freed
    /// is reused), which the caller tells apart by its serial. No hashing:
    /// for records that outlive the datagram that found their peer.
    #[inline]
    pub(super) fn at_slot(&self, slot: usize) -> Option<&Peer> {
        self.slots.get(slot)?.as_ref().as_ref()
    }

    #[inline]
    pub(super) fn contains_key(&self, address: &SocketAddr) -> bool {
        self.slot(address).is_some()
    }

    /// Tracks `peer` at `address`, which must not be tracked yet.
    pub(super) fn insert(&mut self, address: SocketAddr, peer: Peer) {
        if let Some(slot) = self.slot(&address) {
            *self.slots[slot] = Some(peer);
            return;
        }
        let slot = match self.free.pop() {
            Some(slot) => {
                *self.slots[slot] = Some(peer);
                slot
            }
            None => {
                self.slots.push(Box::new(Some(peer)));
                self.slots.len() - 1
            }
        };
        self.slots_by_address.insert(address, slot);
        self.remember(&address, slot);
    }

    pub(super) fn remove(&mut self, address: &SocketAddr) -> Option<Peer> {
        let slot = self.slots_by_address.remove(address)?;
        if self.last_slot_of(address).is_some() {
            self.forget_last();
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
        self.slots.iter().filter_map(|slot| slot.as_ref().as_ref())
    }

    pub(super) fn clear(&mut self) {
        self.slots_by_address.clear();
        self.slots.clear();
        self.free.clear();
        self.forget_last();
    }
}

/// No port: no IPv4 address is remembered.
const NO_PORT: u32 = 1 << 16;

/// An IPv4 address's four bytes as one word, in memory order (only ever
/// compared for equality).
#[inline(always)]
fn ip_word(address: &SocketAddrV4) -> u32 {
    u32::from_ne_bytes(address.ip().octets())
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

    #[test]
    fn ipv6_and_ipv4_peers_are_remembered_apart() {
        let mut table = PeerTable::with_hasher(crate::table_hash::TableHashState::with_seed(1));
        let config = Config::default();
        let v6 = |port: u16| SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port));
        table.insert(v6(1), Peer::new(&config));
        table.insert(address(1), Peer::new(&config));
        assert!(table.get_mut(&v6(1)).is_some());
        assert!(table.get(&v6(2)).is_none(), "another port");
        assert!(table.get(&address(1)).is_some());
        // The IPv4 address with the same port is not the remembered one.
        assert!(table.get_mut(&address(2)).is_none());
        assert!(table.remove(&v6(1)).is_some());
        assert!(table.get(&v6(1)).is_none(), "the memory outlived the peer");
        assert!(table.get_mut(&address(1)).is_some());
        assert!(table.remove(&address(1)).is_some());
        assert!(table.get(&address(1)).is_none());
    }
}
