//! Traffic: datagrams between the endpoints and the network (and from
//! hostile sources), and events from the endpoints to their applications.

use std::time::Duration;

use bytes::Bytes;

use super::World;
use crate::sim::network::Datagram;
use crate::sim::tag::Tag;
use crate::sim::trace::{TraceEntry, Wire};
use crate::sim::violation::ViolationKind;
use crate::wire::Packet;

impl World {
    fn wire(&self, datagram: &[u8]) -> Wire {
        match self.framing.parse(datagram) {
            Ok(packet) => Wire::Gtudp(packet.kind(), packet.identity()),
            Err(_) => Wire::Other,
        }
    }

    pub(super) fn inject(&mut self, now: Duration) {
        let Some(injection) = self.hostile.as_mut().and_then(|hostile| hostile.poll(now)) else {
            return;
        };
        if let Some(&target) = self.by_address.get(&injection.to) {
            let framing = &self.nodes[target].endpoint.config().framing;
            if let Ok(Packet::Data { payload, .. }) = framing.parse(&injection.payload) {
                let payload = injection.payload.slice_ref(payload);
                self.sent_payloads
                    .insert((injection.from, injection.to, payload));
            }
        }
        let wire = self.wire(&injection.payload);
        let len = injection.payload.len();
        let fate = self
            .network
            .send(now, injection.from, injection.to, injection.payload);
        self.trace.record(TraceEntry::Sent {
            at: now,
            from: injection.from,
            to: injection.to,
            len,
            wire,
            fate,
            hostile: true,
        });
    }

    pub(super) fn deliver(&mut self, now: Duration) {
        if let Some(datagram) = self.network.poll_delivery(now) {
            self.take_datagram(now, datagram);
        }
    }

    /// Hands `datagram` to the endpoint it is addressed to, if any.
    pub(super) fn take_datagram(&mut self, now: Duration, datagram: Datagram) {
        let Some(index) = self.inbound_destination(datagram.to, now) else {
            // To an address nobody listens on (a flood victim, or a port
            // a NAT closed): gone.
            return;
        };
        let len = datagram.payload.len();
        self.trace.record(TraceEntry::Arrived {
            at: now,
            from: datagram.from,
            to: datagram.to,
            len,
            wire: self.wire(&datagram.payload),
            corrupted: datagram.corrupted,
        });
        if self.node_of(&datagram.from).is_none() {
            self.exchanges
                .entry((index, datagram.from))
                .or_default()
                .bytes_in += len as u64;
        }
        let instant = self.clock.now();
        let node = &mut self.nodes[index];
        let before = node.endpoint.stats();
        // As the adapters do with each batch they read (a hint only): given
        // twice, as a run from one sender, which is what it reads ahead.
        let read = (datagram.from, &datagram.payload[..]);
        node.endpoint.prefetch([read, read]);
        node.endpoint
            .handle_datagram(instant, datagram.from, datagram.payload.clone());
        let after = node.endpoint.stats();
        node.seen_received = after.received;
        let handed = after.received - before.received;
        if handed > 0 {
            self.on_handover(now, index, &datagram, handed);
        } else if after.data_held_for_validation > before.data_held_for_validation
            || after.identity_collisions > before.identity_collisions
        {
            // Held until its address proves itself (or replacing a held
            // message under the same identity).
            self.note_held_data(index, &datagram);
        }
        if datagram.corrupted {
            self.on_corrupted(index, &datagram, after.delivered > before.delivered);
        } else if self.replays.is_on()
            && after.datagrams_in.ack > before.datagrams_in.ack
            && after.dropped.ack_unknown == before.dropped.ack_unknown
        {
            self.schedule_replay(now, index, &datagram);
        }
        self.flush(index);
    }

    /// The endpoint at `index` took the ACK that ended a RECV exchange:
    /// a copy of the DATA's last transmission arrives again just inside its
    /// lifetime (see [`World::set_late_replays`]).
    fn schedule_replay(&mut self, now: Duration, index: usize, ack: &Datagram) {
        let config = self.nodes[index].endpoint.config();
        let lifetime = config.datagram_lifetime;
        let Ok(Packet::Ack { identity }) = config.framing.parse(&ack.payload) else {
            return;
        };
        self.replays
            .schedule(now, lifetime, ack.from, ack.to, identity);
    }

    /// Checks bounds, then drains the transmits and events of `index`.
    pub(super) fn flush(&mut self, index: usize) {
        self.check_bounds(index);
        let at = self.clock.elapsed();
        let now = self.clock.now();
        let address = self.outbound_source(index, at);
        let mut buf = std::mem::take(&mut self.buf);
        while let Some(transmit) =
            self.nodes[index]
                .endpoint
                .poll_transmit(now, self.max_datagrams, &mut buf)
        {
            let to = transmit.destination;
            for datagram in transmit.datagrams(&buf) {
                let datagram = Bytes::copy_from_slice(datagram);
                let len = datagram.len();
                // Replies to an address that is not an endpoint and that no
                // application chose to send to: it never answers.
                if self.node_of(&to).is_none() && !self.app_destinations.contains(&to) {
                    self.note_unanswered_out(at, index, to, len);
                }
                if let Some(hostile) = self.hostile.as_mut() {
                    hostile.observe(&datagram);
                }
                let parsed = self.framing.parse(&datagram);
                if let Ok(Packet::Recv { identity }) = parsed {
                    // (A probe sent in the same instant names a token, no
                    // held DATA: passed over.)
                    // Nor does the RECV answering a held copy of a message
                    // already handed over (taken from another port of its
                    // host while this copy was held): recognised, not taken.
                    let node = &self.nodes[index];
                    let answered_repeat = |from| {
                        node.held_data
                            .get(&(from, identity))
                            .is_some_and(|(payload, corrupted)| {
                                !corrupted
                                    && Tag::decode(payload)
                                        .is_some_and(|tag| node.received.contains(&tag))
                            })
                    };
                    match node.proof_handovers {
                        Some((from, left))
                            if from == to
                                && left > 0
                                && node.held_data.contains_key(&(from, identity))
                                && !answered_repeat(from) =>
                        {
                            self.nodes[index].proof_handovers = Some((from, left - 1));
                            self.on_held_handover(at, index, from, identity);
                        }
                        _ => {}
                    }
                }
                if let Ok(Packet::Data { identity, payload }) = parsed {
                    self.learn_identity(index, to, identity, payload);
                    if self.replays.is_on() {
                        self.replays.keep(at, address, to, identity, &datagram);
                    }
                }
                let wire = match parsed {
                    Ok(packet) => Wire::Gtudp(packet.kind(), packet.identity()),
                    Err(_) => Wire::Other,
                };
                let fate = self.network.send(at, address, to, datagram);
                self.trace.record(TraceEntry::Sent {
                    at,
                    from: address,
                    to,
                    len,
                    wire,
                    fate,
                    hostile: false,
                });
            }
        }
        self.buf = buf;
        if let Some((from, left)) = self.nodes[index].proof_handovers.take() {
            if left > 0 {
                self.violation(
                    ViolationKind::Phantom,
                    at,
                    format!("{address}: took {left} held messages from {from} without a RECV"),
                );
            }
        }
        let node = &mut self.nodes[index];
        let stats = node.endpoint.stats();
        let outcomes = stats.delivered + stats.failed;
        for _ in node.seen_outcomes..outcomes {
            node.outcome_times.push_back(at);
        }
        node.seen_outcomes = outcomes;
        if stats.received != node.seen_received {
            node.seen_received = stats.received;
            self.violation(
                ViolationKind::Phantom,
                at,
                format!("{address}: handed over a message without taking a DATA"),
            );
        }
        if self.nodes[index].reads() {
            self.read_events(index);
        }
    }
}
