//! The network between A and B: datagrams in flight, losses, replays of
//! what was sent, and the attacker's spoofed datagrams from C and D.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use super::trace::{Step, NAMES};
use super::{Bytes8, World, A, B};
use crate::wire::{Identity, Packet};

/// Datagrams in flight towards one endpoint, at most.
const QUEUE_LIMIT: usize = 32;
/// Distinct datagrams A and B sent each other kept for replays, at most.
const HISTORY_LIMIT: usize = 32;
/// Datagrams sent to C and D kept for spoofed copies, at most.
const TO_SPOOFED_LIMIT: usize = 16;
/// Identities kept for spoofed RECV, ACK and DATA, at most.
const IDENTITIES_LIMIT: usize = 64;
/// Tokens learned from what the attacker was sent, at most.
const TOKENS_LIMIT: usize = 16;

/// A datagram on its way from an endpoint to its peer.
pub(super) struct InFlight {
    pub(super) bytes: Bytes,
    pub(super) sent: Duration,
    /// The sender's public address when it left.
    pub(super) source: SocketAddr,
    /// Where it was sent: a port the receiver's NAT may have closed since.
    pub(super) destination: SocketAddr,
}

/// A datagram A or B sent the other, kept for replays.
pub(super) struct Seen {
    pub(super) from: usize,
    /// The sender's public address when identical bytes were last sent.
    pub(super) source: SocketAddr,
    /// Where they were last sent (a port the receiver's NAT may close).
    pub(super) destination: SocketAddr,
    pub(super) to: usize,
    pub(super) bytes: Bytes,
    /// When identical bytes were last sent.
    pub(super) last_sent: Duration,
}

impl World {
    pub(super) fn harvest_identity(&mut self, bytes: &[u8]) {
        if let Ok(packet) = self.framing.parse(bytes) {
            let identity = packet.identity();
            if self.identities.len() < IDENTITIES_LIMIT && !self.identities.contains(&identity) {
                self.identities.push(identity);
            }
        }
    }

    /// An identity chosen by `choice`: a small constant, or one seen.
    pub(super) fn identity(&self, choice: u8) -> Identity {
        if choice & 0x80 != 0 {
            Identity::from_u32(u32::from(choice & 7))
        } else {
            self.identities[usize::from(choice) % self.identities.len()]
        }
    }

    /// The network loses what it has held for `datagram_lifetime`.
    pub(super) fn expire(&mut self) {
        let lifetime = self.config.datagram_lifetime;
        for to in [A, B] {
            while let Some(index) = self.queues[to]
                .iter()
                .position(|datagram| datagram.sent + lifetime <= self.clock)
            {
                if let Some(datagram) = self.queues[to].remove(index) {
                    let wire = self.wire(&datagram.bytes);
                    self.record(Step::Lost { to, wire });
                }
            }
        }
    }

    /// Delivers the `index`-th datagram in flight to `to`.
    pub(super) fn deliver(&mut self, to: usize, index: usize) {
        let Some(datagram) = self.queues[to].remove(index) else {
            return;
        };
        let wire = self.wire(&datagram.bytes);
        if datagram.destination != self.public(to) {
            self.record(Step::Closed { to, wire });
            return;
        }
        let age = self.clock - datagram.sent;
        self.record(Step::Deliver { to, wire, age });
        self.handle(to, datagram.source, datagram.bytes);
    }

    /// `to` receives `bytes` from `source`, then the outputs settle.
    pub(super) fn handle(&mut self, to: usize, source: SocketAddr, bytes: Bytes) {
        let now = self.now();
        self.sides[to].endpoint.handle_datagram(now, source, bytes);
        self.settle();
    }

    pub(super) fn replay(&mut self, choice: u8) {
        if self.history.is_empty() {
            return;
        }
        let seen = &self.history[usize::from(choice) % self.history.len()];
        // Only a copy the protocol's promise covers: sent within the lifetime.
        if seen.last_sent + self.config.datagram_lifetime <= self.clock {
            return;
        }
        let (from, source, to, bytes) = (seen.from, seen.source, seen.to, seen.bytes.clone());
        // From an address the attacker took over since: not A's or B's any
        // more (the attacker's own copies come through `spoof`).
        if seen.destination != self.public(to) || self.taken.contains(&source) {
            let wire = self.wire(&bytes);
            self.record(Step::Closed { to, wire });
            return;
        }
        let age = self.clock - seen.last_sent;
        let wire = self.wire(&bytes);
        self.record(Step::Replay {
            from,
            to,
            wire,
            age,
        });
        self.handle(to, source, bytes);
    }

    /// The attacker takes over the address `side` left in its latest move,
    /// once `side`'s peer has nothing unresolved to `side`, tracks no peer
    /// there (it followed `side`, or forgot it) and has read its events:
    /// whatever an endpoint
    /// sends to where it believes its peer is, the new holder of that
    /// address gets, and may confirm, which no protocol without keys can
    /// tell from the peer (see `docs/address-changes.md`, known limits).
    ///
    /// Only with the roaming extension. Without it a move changes only the
    /// port, and an endpoint takes any port of its peer's host for its peer
    /// (`recognise_copies_across_ports`, the documented limit of a memory
    /// keyed by the source IP address), so the new holder of a former port
    /// is the peer to it.
    pub(super) fn take_over(&mut self, side: usize) {
        if !self.framing.roaming() {
            return;
        }
        let Some(former) = self.former[side] else {
            return;
        };
        let peer = 1 - side;
        let pending = self.sides[peer]
            .sends
            .values()
            .any(|record| record.to == side && record.outcome.is_none());
        let tracked = self.sides[peer].endpoint.peer_stats(former).is_some();
        // The peer's events name addresses, attributed when read: none
        // naming `side` there may wait unread (its application reads, and
        // every step ends with what it reads read).
        let unread = !self.sides[peer].reading;
        if pending
            || tracked
            || unread
            || self.taken.len() == super::TAKEN_LIMIT
            || self.taken.contains(&former)
        {
            return;
        }
        self.taken.push(former);
        self.run.takeovers += 1;
        // The new holder's NAT mapping is new: what `side` sent from there
        // is long gone.
        while let Some(index) = self.queues[peer]
            .iter()
            .position(|datagram| datagram.source == former)
        {
            if let Some(datagram) = self.queues[peer].remove(index) {
                let wire = self.wire(&datagram.bytes);
                self.record(Step::Lost { to: peer, wire });
            }
        }
        self.record(Step::TakeOver {
            side,
            address: former,
        });
    }

    /// A token the attacker learned, chosen by `choice` (bit 7 set), or the
    /// token 0 (the framing's own).
    fn learned_token(&self, choice: u8) -> Option<u64> {
        if choice & 0x80 == 0 || self.learned_tokens.is_empty() {
            return None;
        }
        Some(self.learned_tokens[usize::from(choice) % self.learned_tokens.len()])
    }

    /// A datagram to `to` from `source`, an address of the attacker's (C or
    /// D, `from`, or the address C took over).
    pub(super) fn spoof(
        &mut self,
        to: usize,
        from: usize,
        source: SocketAddr,
        input: &mut Bytes8<'_>,
    ) {
        let kind = input.next() % 6;
        let choice = input.next();
        let mut datagram = Vec::new();
        match kind {
            0 => {
                let identity = self.identity(choice);
                let len = usize::from(input.next() % 24);
                let payload = input.take(len);
                self.framing
                    .encode_to_vec(&Packet::Data { identity, payload }, &mut datagram);
            }
            1 | 5 => {
                // A copy of a datagram A or B sent (a DATA for kind 1).
                let framing = &self.framing;
                let is_data = |bytes: &Bytes| {
                    kind == 5 || matches!(framing.parse(bytes), Ok(Packet::Data { .. }))
                };
                let seen: Vec<&Bytes> = self
                    .history
                    .iter()
                    .map(|seen| &seen.bytes)
                    .chain(self.to_spoofed.iter())
                    .filter(|bytes| is_data(bytes))
                    .collect();
                if seen.is_empty() {
                    return;
                }
                datagram.extend_from_slice(seen[usize::from(choice) % seen.len()]);
            }
            2 => {
                let identity = self.identity(choice);
                self.framing
                    .encode_to_vec(&Packet::Recv { identity }, &mut datagram);
            }
            3 => {
                let identity = self.identity(choice);
                self.framing
                    .encode_to_vec(&Packet::Ack { identity }, &mut datagram);
            }
            _ => datagram.extend_from_slice(input.take(usize::from(choice % 24))),
        }
        if matches!(kind, 0 | 2 | 3) && self.framing.roaming() {
            if let Some(token) = self.learned_token(input.next()) {
                self.framing.stamp_token(&mut datagram, token);
                self.run.learned_token_spoofs += 1;
            }
        }
        let datagram = Bytes::from(datagram);
        if let Ok(Packet::Data { .. }) = self.framing.parse(&datagram) {
            let payload = datagram.slice(self.framing.header_len()..);
            self.injected_payloads.insert((from, to, payload));
        }
        self.injected_raw.insert((from, to, datagram.clone()));
        self.harvest_identity(&datagram);
        let wire = self.wire(&datagram);
        self.record(Step::Spoof { from, to, wire });
        self.handle(to, source, datagram);
    }

    pub(super) fn pump(&mut self, side: usize) {
        let now = self.now();
        let mut buf = std::mem::take(&mut self.buf);
        while let Some(transmit) = self.sides[side]
            .endpoint
            .poll_transmit(now, self.batch, &mut buf)
        {
            let destination = transmit.destination;
            let Some(to) = self.index_of(destination) else {
                self.fail(format!(
                    "{} sent to {}, an address no one used",
                    NAMES[side], transmit.destination
                ));
            };
            for datagram in transmit.datagrams(&buf) {
                if datagram.len() > self.config.max_datagram_size {
                    self.fail(format!(
                        "{} sent a datagram of {} bytes, above max_datagram_size",
                        NAMES[side],
                        datagram.len()
                    ));
                }
                self.on_transmit(side, to, destination, Bytes::copy_from_slice(datagram));
            }
        }
        self.buf = buf;
    }

    pub(super) fn on_transmit(
        &mut self,
        from: usize,
        to: usize,
        destination: SocketAddr,
        bytes: Bytes,
    ) {
        let source = self.public(from);
        self.harvest_identity(&bytes);
        let wire = self.wire(&bytes);
        self.record(Step::Transmit { from, to, wire });
        if to == from {
            self.fail(format!("{} sent a datagram to itself", NAMES[from]));
        }
        if to > B {
            if let Some(token) = self.framing.sender_token(&bytes) {
                if token != 0
                    && self.learned_tokens.len() < TOKENS_LIMIT
                    && !self.learned_tokens.contains(&token)
                {
                    self.learned_tokens.push(token);
                }
            }
            if self.to_spoofed.len() == TO_SPOOFED_LIMIT {
                self.to_spoofed.pop_front();
            }
            self.to_spoofed.push_back(bytes);
            return;
        }
        if self.queues[to].len() == QUEUE_LIMIT {
            if let Some(lost) = self.queues[to].pop_front() {
                let wire = self.wire(&lost.bytes);
                self.record(Step::Lost { to, wire });
            }
        }
        self.queues[to].push_back(InFlight {
            bytes: bytes.clone(),
            sent: self.clock,
            source,
            destination,
        });
        match self
            .history
            .iter_mut()
            .find(|seen| seen.from == from && seen.to == to && seen.bytes == bytes)
        {
            Some(seen) => {
                seen.last_sent = self.clock;
                seen.source = source;
                seen.destination = destination;
            }
            None => {
                if self.history.len() == HISTORY_LIMIT {
                    self.history.pop_front();
                }
                self.history.push_back(Seen {
                    from,
                    source,
                    destination,
                    to,
                    bytes,
                    last_sent: self.clock,
                });
            }
        }
    }
}
