//! Endpoints behind NATs: the public source a datagram leaves under, the
//! endpoint a datagram to a public address reaches (if its port is still
//! open), and the endpoint behind an address, for the checker.

use std::net::SocketAddr;
use std::time::Duration;

use super::World;
use crate::sim::nat::NatProfile;

impl World {
    /// Puts endpoint `node` behind a NAT (`Some`), or takes it out
    /// (`None`). Its datagrams then leave from the NAT's public address of
    /// the moment, and only datagrams to that address reach it: its own
    /// address is no longer reachable. Its peers see each rebinding as a
    /// new address; the checker knows them all as `node`'s.
    pub fn set_nat(&mut self, node: usize, nat: Option<NatProfile>) {
        match nat {
            Some(nat) => self.nats.insert(node, nat),
            None => self.nats.remove(&node),
        };
    }

    /// Stops every NAT's rebindings from now on: each keeps its current
    /// public port (the path settled).
    pub fn settle_nats(&mut self) {
        let at = self.clock.elapsed();
        for nat in self.nats.values_mut() {
            nat.settled_at.get_or_insert(at);
        }
    }

    /// The source a datagram of endpoint `index` leaves under at `at`.
    pub(super) fn outbound_source(&mut self, index: usize, at: Duration) -> SocketAddr {
        match self.nats.get(&index) {
            Some(nat) => {
                let public = nat.public_at(at);
                self.public.insert(public, index);
                public
            }
            None => self.nodes[index].address,
        }
    }

    /// The endpoint a datagram to `to` reaches at `at`: one listening at
    /// `to` and not behind a NAT, or one whose NAT has `to` open now.
    pub(super) fn inbound_destination(&self, to: SocketAddr, at: Duration) -> Option<usize> {
        if let Some(&index) = self.by_address.get(&to) {
            return (!self.nats.contains_key(&index)).then_some(index);
        }
        let &index = self.public.get(&to)?;
        let nat = self.nats.get(&index)?;
        (nat.public_at(at) == to).then_some(index)
    }

    /// The endpoint behind `address`: its own, or a public address a NAT
    /// gave it.
    pub(super) fn node_of(&self, address: &SocketAddr) -> Option<usize> {
        self.by_address
            .get(address)
            .or_else(|| self.public.get(address))
            .copied()
    }

    /// The address of the endpoint behind `address` (itself if none): what
    /// the checker keys a sender by, whatever port its NAT gave it.
    pub(super) fn origin(&self, address: SocketAddr) -> SocketAddr {
        match self.public.get(&address) {
            Some(&index) => self.nodes[index].address,
            None => address,
        }
    }
}
