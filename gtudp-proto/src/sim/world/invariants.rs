//! The checker: every guarantee of the protocol, verified as the world
//! runs ([`World`]'s docs list them) and at the end of the run.

use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use bytes::Bytes;

use super::node::{Exchange, Handover, HELD_DATA_KEPT};
use super::World;
use crate::endpoint::TableSizes;
use crate::event::{Event, FailureReason, MessageId};
use crate::sim::network::Datagram;
use crate::sim::tag::Tag;
use crate::sim::trace::TraceEntry;
use crate::sim::violation::{Counts, Violation, ViolationKind};
use crate::wire::{Identity, Packet, PacketKind};

/// Violations kept in full; later ones are only counted.
const MAX_VIOLATIONS_KEPT: usize = 32;

impl World {
    /// The end-of-run checks: every application reads the events left in
    /// its endpoint, and every message its endpoint handed over reached it
    /// as a `Received` event; every send resolved; when `closed` (every
    /// endpoint was closed and drained) every endpoint closed with every
    /// table empty. Returns the run's totals.
    pub fn finish(&mut self, closed: bool) -> Counts {
        let at = self.clock.elapsed();
        for index in 0..self.nodes.len() {
            let address = self.nodes[index].address;
            if catch_unwind(AssertUnwindSafe(|| self.read_events(index))).is_err() {
                self.violation(
                    ViolationKind::Panic,
                    at,
                    format!("{address}: panic while reading its events"),
                );
                continue;
            }
            let node = &self.nodes[index];
            let (lost, unread_outcomes) = (node.unread.len(), node.outcome_times.len());
            if lost > 0 {
                self.violation(
                    ViolationKind::Unread,
                    at,
                    format!("{address}: {lost} messages handed over never reached the application"),
                );
            }
            if unread_outcomes > 0 {
                self.violation(
                    ViolationKind::Unread,
                    at,
                    format!("{address}: {unread_outcomes} outcomes never reached the application"),
                );
            }
        }
        for (delivered_at, address, id, tag, receiver) in std::mem::take(&mut self.delivered_unread)
        {
            if !self.nodes[receiver].received.contains(&tag) {
                let to = self.nodes[receiver].address;
                self.violation(
                    ViolationKind::DeliveredNotHandedOver,
                    delivered_at,
                    format!("{address}: {id} ({tag}) Delivered but never handed over at {to}"),
                );
            }
        }
        let unresolved: Vec<(usize, MessageId)> = self
            .sends
            .iter()
            .filter(|send| send.outcome.is_none())
            .map(|send| (send.node, send.id))
            .collect();
        for (node, id) in unresolved {
            let address = self.nodes[node].address;
            self.violation(
                ViolationKind::Unresolved,
                at,
                format!("{address}: message {id} never resolved"),
            );
        }
        if closed {
            for index in 0..self.nodes.len() {
                let node = &self.nodes[index];
                let (address, closed, sizes) = (
                    node.address,
                    node.endpoint.is_closed(),
                    node.endpoint.table_sizes(),
                );
                if !closed {
                    self.violation(
                        ViolationKind::Close,
                        at,
                        format!("{address}: not closed after its drain deadline"),
                    );
                } else if sizes != TableSizes::default() {
                    self.violation(
                        ViolationKind::Close,
                        at,
                        format!("{address}: tables not empty after close: {sizes:?}"),
                    );
                }
            }
        }
        let sum = |count: fn(&crate::EndpointStats) -> u64| {
            self.nodes
                .iter()
                .map(|node| count(&node.endpoint.stats()))
                .sum::<u64>()
        };
        self.counts.rebound_duplicates = sum(|stats| stats.rebound_duplicates);
        self.counts.fragments_received = sum(|stats| stats.fragments_received);
        self.counts.large_messages_expired = sum(|stats| stats.large_messages_expired);
        self.counts.pmtu = [
            sum(|stats| stats.pmtu_probes_sent),
            sum(|stats| stats.pmtu_probes_confirmed),
            sum(|stats| stats.pmtu_probes_answered),
            sum(|stats| stats.pmtu_black_holes),
        ];
        self.counts
    }

    /// Records a broken guarantee of `kind` found outside the world (a
    /// panic, say).
    pub fn report_violation(&mut self, kind: ViolationKind, what: String) {
        let at = self.clock.elapsed();
        self.violation(kind, at, what);
    }

    /// The endpoint at `index` took `datagram`'s DATA: checks it, and
    /// expects its `Received` event.
    pub(super) fn on_handover(
        &mut self,
        at: Duration,
        index: usize,
        datagram: &Datagram,
        handed: u64,
    ) {
        let (address, from) = (self.nodes[index].address, datagram.from);
        if self.nodes[index].endpoint.config().large_messages.is_some() {
            for _ in 0..handed {
                self.nodes[index].unread.push_back(Handover {
                    from,
                    payload: Bytes::new(),
                    by_content: true,
                });
            }
            return;
        }
        let framing = &self.nodes[index].endpoint.config().framing;
        let parsed = framing.parse(&datagram.payload);
        let Ok(Packet::Data { identity, payload }) = parsed else {
            // The proof of an address (the answer to a probe, or a RECV for
            // our DATA) takes what was held from it: checked as each event
            // is read, against the DATA that came from that address.
            let proof = matches!(parsed, Ok(Packet::Ack { .. } | Packet::Recv { .. }));
            if !proof {
                self.violation(
                    ViolationKind::Phantom,
                    at,
                    format!(
                        "{address}: handed over a message from a datagram from {from} that is not DATA"
                    ),
                );
                return;
            }
            // Each one it takes it answers with a RECV naming it, in the
            // order it takes them: matched in `flush`.
            self.nodes[index].proof_handovers = Some((from, handed));
            return;
        };
        if handed != 1 {
            self.violation(
                ViolationKind::Phantom,
                at,
                format!("{address}: one datagram from {from} handed over {handed} messages"),
            );
        }
        let payload = datagram.payload.slice_ref(payload);
        self.check_handover(at, index, from, identity, &payload, datagram.corrupted);
        self.nodes[index].unread.push_back(Handover {
            from,
            payload,
            by_content: false,
        });
    }

    /// Checks a message handed over at the endpoint at `index`, from
    /// `from`'s DATA `identity` carrying `payload`: its source sent it, and
    /// it was not handed over before.
    fn check_handover(
        &mut self,
        at: Duration,
        index: usize,
        from: SocketAddr,
        identity: Identity,
        payload: &Bytes,
        corrupted: bool,
    ) {
        let address = self.nodes[index].address;
        // A sender behind a NAT is known by its own address, whatever port
        // the NAT gave it.
        let sender = self.origin(from);
        if corrupted {
            self.counts.corrupt_received += 1;
            self.nodes[index].corrupt_handed.insert((sender, identity));
            return;
        }
        self.check_content(at, index, from, payload);
        if let Some(tag) = Tag::decode(payload) {
            let node = &mut self.nodes[index];
            if !node.received.insert(tag) {
                if node.ack_tainted.contains(&(sender, identity)) {
                    self.counts.corrupt_duplicates += 1;
                } else {
                    self.violation(
                        ViolationKind::Duplicate,
                        at,
                        format!("{address}: handed over {tag} a second time"),
                    );
                }
            }
        }
    }

    /// Checks a message handed over at the endpoint at `index` from `from`
    /// by its content: `from` sent it to this endpoint; and, when it is
    /// checked by content alone (large messages), that it was not handed
    /// over before.
    fn check_content(&mut self, at: Duration, index: usize, from: SocketAddr, payload: &Bytes) {
        let address = self.nodes[index].address;
        let sender = self.origin(from);
        if !self
            .sent_payloads
            .contains(&(sender, address, payload.clone()))
        {
            self.violation(
                ViolationKind::Phantom,
                at,
                format!(
                    "{address}: handed over a {}-byte payload from {from} that {from} never sent to it",
                    payload.len()
                ),
            );
        }
        let by_content = self.nodes[index].endpoint.config().large_messages.is_some();
        if let (true, Some(tag)) = (by_content, Tag::decode(payload)) {
            if !self.nodes[index].received.insert(tag) {
                self.violation(
                    ViolationKind::Duplicate,
                    at,
                    format!("{address}: handed over {tag} a second time"),
                );
            }
        }
    }

    /// Keeps a DATA the endpoint at `index` held until its address proves
    /// itself.
    pub(super) fn note_held_data(&mut self, index: usize, datagram: &Datagram) {
        let node = &mut self.nodes[index];
        if node.endpoint.config().large_messages.is_some() {
            // Checked by content when read (see `Handover::by_content`).
            return;
        }
        let Ok(Packet::Data { identity, payload }) =
            node.endpoint.config().framing.parse(&datagram.payload)
        else {
            return;
        };
        let key = (datagram.from, identity);
        let kept = (datagram.payload.slice_ref(payload), datagram.corrupted);
        if node.held_data.insert(key, kept).is_none() {
            node.held_order.push_back(key);
        }
        while node.held_order.len() > HELD_DATA_KEPT {
            if let Some(old) = node.held_order.pop_front() {
                node.held_data.remove(&old);
            }
        }
    }

    /// The endpoint at `index` answered a held message it took when `from`
    /// proved itself with a RECV naming `identity`: it must be a DATA from
    /// `from` that the endpoint held.
    pub(super) fn on_held_handover(
        &mut self,
        at: Duration,
        index: usize,
        from: SocketAddr,
        identity: Identity,
    ) {
        let node = &mut self.nodes[index];
        let Some((payload, corrupted)) = node.held_data.remove(&(from, identity)) else {
            let address = node.address;
            self.violation(
                ViolationKind::Phantom,
                at,
                format!(
                    "{address}: handed over a held message {identity:?} from {from} that no DATA from it brought"
                ),
            );
            return;
        };
        self.check_handover(at, index, from, identity, &payload, corrupted);
        self.nodes[index].unread.push_back(Handover {
            from,
            payload,
            by_content: false,
        });
    }

    /// Notes what a corrupted datagram taken by the endpoint at `index`
    /// confirmed or acknowledged; `confirmed` when it resolved a message.
    pub(super) fn on_corrupted(&mut self, index: usize, datagram: &Datagram, confirmed: bool) {
        self.counts.corrupted += 1;
        let framing = &self.nodes[index].endpoint.config().framing;
        let parsed = framing
            .parse(&datagram.payload)
            .map(|packet| (packet.kind(), packet.identity()));
        match parsed {
            Ok((PacketKind::Recv, identity)) => {
                if confirmed {
                    self.nodes[index].corrupt_confirmed.insert(identity);
                }
                // Answered with an ACK that may end the sender's exchange.
                if let Some(peer) = self.node_of(&datagram.from) {
                    let sender = self.origin(datagram.to);
                    self.nodes[peer].ack_tainted.insert((sender, identity));
                }
            }
            Ok((PacketKind::Ack, identity)) => {
                let sender = self.origin(datagram.from);
                self.nodes[index].ack_tainted.insert((sender, identity));
            }
            _ => {}
        }
    }

    /// The application of `index` reads every event waiting.
    pub(super) fn read_events(&mut self, index: usize) {
        let at = self.clock.elapsed();
        while let Some(event) = self.nodes[index].endpoint.poll_event() {
            self.on_event(at, index, &event);
            if self.keep_events {
                self.nodes[index].inbox.push((at, event));
            }
        }
    }

    /// Notes the identity of `index`'s message with `payload`, from its
    /// first DATA.
    pub(super) fn learn_identity(
        &mut self,
        index: usize,
        to: SocketAddr,
        identity: Identity,
        payload: &[u8],
    ) {
        let Some(tag) = Tag::decode(payload) else {
            return;
        };
        let Some(&record) = self.nodes[index].by_tag.get(&tag) else {
            return;
        };
        let record = &mut self.sends[record];
        if record.identity.is_none() && record.to == to {
            record.identity = Some(identity);
        }
    }

    pub(super) fn note_unanswered_out(
        &mut self,
        at: Duration,
        index: usize,
        to: SocketAddr,
        len: usize,
    ) {
        let exchange = self.exchanges.entry((index, to)).or_default();
        exchange.bytes_out += len as u64;
        let Exchange {
            bytes_in,
            bytes_out,
        } = *exchange;
        if bytes_out > 3 * bytes_in {
            let address = self.nodes[index].address;
            self.violation(
                ViolationKind::Amplification,
                at,
                format!(
                    "{address}: sent {bytes_out} bytes to {to}, which never answered and sent \
                     only {bytes_in} bytes (more than 3 times)"
                ),
            );
        }
    }

    fn on_event(&mut self, at: Duration, index: usize, event: &Event) {
        let address = self.nodes[index].address;
        match event {
            Event::Received { from, payload } => {
                let tag = Tag::decode(payload);
                self.trace.record(TraceEntry::Received {
                    at,
                    node: address,
                    from: *from,
                    tag,
                });
                // Checked when the endpoint took the DATA (see `deliver`);
                // here, that the application reads what was taken, in order.
                match self.nodes[index].unread.pop_front() {
                    Some(taken) if taken.by_content && taken.from == *from => {
                        self.check_content(at, index, *from, payload);
                    }
                    Some(taken) if taken.from == *from && taken.payload == *payload => {}
                    Some(taken) => self.violation(
                        ViolationKind::Misread,
                        at,
                        format!(
                            "{address}: read a {}-byte payload from {from}, but the next message \
                             taken was {} bytes from {}",
                            payload.len(),
                            taken.payload.len(),
                            taken.from
                        ),
                    ),
                    None => {
                        self.violation(
                            ViolationKind::Phantom,
                            at,
                            format!(
                                "{address}: read a {}-byte payload from {from} that no DATA brought",
                                payload.len()
                            ),
                        );
                    }
                }
            }
            Event::Delivered { id, to, .. } => self.on_outcome(at, index, *id, *to, Ok(())),
            Event::Failed { id, to, reason } => self.on_outcome(at, index, *id, *to, Err(*reason)),
            Event::Foreign { from, payload } => {
                self.trace.record(TraceEntry::Foreign {
                    at,
                    node: address,
                    from: *from,
                    len: payload.len(),
                });
                if self.nodes[index]
                    .endpoint
                    .config()
                    .framing
                    .parse(payload)
                    .is_ok()
                {
                    self.violation(
                        ViolationKind::ForeignGtudp,
                        at,
                        format!("{address}: a gtUDP datagram from {from} handed over as foreign"),
                    );
                }
            }
        }
    }

    fn on_outcome(
        &mut self,
        at: Duration,
        index: usize,
        id: MessageId,
        to: SocketAddr,
        outcome: Result<(), FailureReason>,
    ) {
        let address = self.nodes[index].address;
        self.trace.record(TraceEntry::Outcome {
            at,
            node: address,
            id,
            failure: outcome.err(),
        });
        // Checked against when the endpoint resolved it, not when it is read.
        let at = match self.nodes[index].outcome_times.pop_front() {
            Some(produced) => produced,
            None => {
                self.violation(
                    ViolationKind::BadOutcome,
                    at,
                    format!("{address}: read an outcome for {id} never produced"),
                );
                at
            }
        };
        let node = &self.nodes[index];
        let max_rto = node.endpoint.config().max_rto;
        let Some(&record_index) = node.sends.get(&id) else {
            self.violation(
                ViolationKind::BadOutcome,
                at,
                format!("{address}: outcome for {id}, which was never sent"),
            );
            return;
        };
        let record = &mut self.sends[record_index];
        if record.outcome.is_some() {
            self.violation(
                ViolationKind::BadOutcome,
                at,
                format!("{address}: {id} resolved a second time ({outcome:?})"),
            );
            return;
        }
        record.outcome = Some((at, outcome));
        let (record_to, tag, identity, deadline, must_deliver) = (
            record.to,
            record.tag,
            record.identity,
            record.deadline,
            record.must_deliver,
        );
        match outcome {
            Ok(()) => self.counts.delivered += 1,
            Err(_) => self.counts.failed += 1,
        }
        // A peer that moved (the roaming extension) is confirmed where it
        // moved to: another address of the same endpoint.
        let same_endpoint =
            self.node_of(&record_to).is_some() && self.node_of(&record_to) == self.node_of(&to);
        if record_to != to && !same_endpoint {
            self.violation(
                ViolationKind::BadOutcome,
                at,
                format!("{address}: {id} was sent to {record_to}, resolved for {to}"),
            );
        }
        if let Some(deadline) = deadline {
            if at > deadline + max_rto {
                self.violation(
                    ViolationKind::LateOutcome,
                    at,
                    format!(
                        "{address}: {id} resolved {:?} after its deadline (more than one RTO)",
                        at - deadline
                    ),
                );
            }
        }
        match outcome {
            Ok(()) => {
                let receiver = self.node_of(&to);
                if let (Some(receiver), Some(tag)) = (receiver, tag) {
                    // The exceptions corruption makes (see the type's docs).
                    let corruption = identity.is_some_and(|identity| {
                        self.nodes[index].corrupt_confirmed.contains(&identity)
                            || self.nodes[receiver]
                                .corrupt_handed
                                .contains(&(address, identity))
                    });
                    let handed_over = self.nodes[receiver].received.contains(&tag);
                    let by_content = self.nodes[receiver]
                        .unread
                        .iter()
                        .any(|taken| taken.by_content);
                    if !handed_over && by_content {
                        self.delivered_unread.push((at, address, id, tag, receiver));
                    } else if !handed_over && corruption {
                        self.counts.corrupt_confirmed += 1;
                    } else if !handed_over {
                        self.violation(
                            ViolationKind::DeliveredNotHandedOver,
                            at,
                            format!(
                                "{address}: {id} ({tag}) Delivered but never handed over at {to}"
                            ),
                        );
                    }
                }
            }
            // A peer that reached this endpoint first and never proved its
            // address (under heavy loss, none of its exchanges completed)
            // may use up its anti-amplification budget: then a message to
            // it fails with `Unvalidated`, by design. Counted, not a
            // violation.
            Err(FailureReason::Unvalidated)
                if must_deliver
                    && self.nodes[index]
                        .endpoint
                        .peer_stats(to)
                        .is_some_and(|peer| !peer.validated) =>
            {
                self.counts.unvalidated_failures += 1;
            }
            Err(reason) if must_deliver => {
                self.violation(
                    ViolationKind::MustDeliverFailed,
                    at,
                    format!("{address}: {id} that had to be delivered Failed ({reason:?})"),
                );
            }
            Err(_) => {}
        }
    }

    pub(super) fn check_bounds(&mut self, index: usize) {
        let endpoint = &self.nodes[index].endpoint;
        if let Some(exceeded) = endpoint.table_sizes().exceeded(&endpoint.config().limits) {
            let (at, address) = (self.clock.elapsed(), self.nodes[index].address);
            self.violation(
                ViolationKind::BoundExceeded,
                at,
                format!("{address}: {exceeded}"),
            );
        }
    }

    pub(super) fn violation(&mut self, kind: ViolationKind, at: Duration, what: String) {
        self.counts.violations += 1;
        self.counts.by_kind.add(kind);
        match kind {
            ViolationKind::Duplicate => self.counts.duplicates += 1,
            ViolationKind::Phantom => self.counts.phantom += 1,
            ViolationKind::Unresolved => self.counts.unresolved += 1,
            _ => {}
        }
        if self.violations.len() < MAX_VIOLATIONS_KEPT {
            self.violations.push(Violation { at, kind, what });
        }
    }
}
