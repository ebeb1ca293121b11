//! The world: endpoints on a simulated network, driven on virtual time in one
//! thread, with every guarantee of the protocol checked as the run goes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use super::hostile::{Hostile, HostileProfile};
use super::network::{Clock, LinkProfile, Network};
use super::rng::Rng;
use super::trace::{Trace, TraceEntry, Wire};
use crate::config::{Config, ConfigError, SendOptions};
use crate::endpoint::{Endpoint, TableSizes};
use crate::error::{SendError, UnknownMessage};
use crate::event::{Event, FailureReason, MessageId};
use crate::wire::{Framing, Packet};

/// Names a payload sent in a simulation: who sent it and its sequence
/// number. Payloads start with their tag, so the checker can tell what a
/// received payload is, who sent it, and whether it was handed over before.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag {
    /// The sending node's index, or [`Tag::FLOOD`] plus a flood source's index.
    pub origin: u32,
    /// Unique per origin.
    pub seq: u64,
}

impl Tag {
    /// Encoded length: 4 bytes of marker, 4 of origin, 8 of sequence.
    pub const LEN: usize = 16;
    /// Set in `origin` for payloads of the hostile DATA flood.
    pub const FLOOD: u32 = 1 << 31;
    const MARKER: [u8; 4] = *b"gtSM";

    /// The tag of message `seq` of node `node`.
    pub fn node(node: u32, seq: u64) -> Self {
        Self { origin: node, seq }
    }

    /// The tag of flood datagram `seq` from flood source `source`.
    pub fn flood(source: u32, seq: u64) -> Self {
        Self {
            origin: Self::FLOOD | source,
            seq,
        }
    }

    /// Whether the payload came from the hostile flood.
    pub fn is_flood(&self) -> bool {
        self.origin & Self::FLOOD != 0
    }

    /// The tag's bytes; a payload may carry more after them.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(Self::LEN);
        bytes.extend_from_slice(&Self::MARKER);
        bytes.extend_from_slice(&self.origin.to_be_bytes());
        bytes.extend_from_slice(&self.seq.to_be_bytes());
        bytes
    }

    /// The tag a payload starts with, if any.
    pub fn decode(payload: &[u8]) -> Option<Self> {
        let bytes = payload.get(..Self::LEN)?;
        if bytes[..4] != Self::MARKER {
            return None;
        }
        let origin = u32::from_be_bytes(bytes[4..8].try_into().ok()?);
        let seq = u64::from_be_bytes(bytes[8..16].try_into().ok()?);
        Some(Self { origin, seq })
    }
}

/// A guarantee found broken during a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Virtual time it was found.
    pub at: Duration,
    /// What went wrong.
    pub what: String,
}

/// Totals of a run, as the soak example prints them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Sends accepted by an endpoint.
    pub messages: u64,
    /// Sends that ended Delivered.
    pub delivered: u64,
    /// Sends that ended Failed.
    pub failed: u64,
    /// Tagged payloads handed to an application a second time.
    pub duplicates: u64,
    /// Payloads handed over that their source never sent.
    pub phantom: u64,
    /// Sends without an outcome when the run ended.
    pub unresolved: u64,
    /// Every broken guarantee, the above included.
    pub violations: u64,
}

impl core::ops::AddAssign for Counts {
    fn add_assign(&mut self, other: Self) {
        self.messages += other.messages;
        self.delivered += other.delivered;
        self.failed += other.failed;
        self.duplicates += other.duplicates;
        self.phantom += other.phantom;
        self.unresolved += other.unresolved;
        self.violations += other.violations;
    }
}

struct Node {
    address: SocketAddr,
    endpoint: Endpoint,
    /// Tags handed over at this node.
    received: BTreeSet<Tag>,
    /// Send record of each id the endpoint gave out.
    sends: BTreeMap<MessageId, usize>,
    next_seq: u64,
    /// Events kept for the user, when asked.
    inbox: Vec<(Duration, Event)>,
}

struct SendRecord {
    node: usize,
    to: SocketAddr,
    id: MessageId,
    tag: Option<Tag>,
    deadline: Option<Duration>,
    must_deliver: bool,
    outcome: Option<(Duration, Result<(), FailureReason>)>,
}

/// Bytes exchanged with an address that is not an endpoint, per endpoint.
#[derive(Clone, Copy, Debug, Default)]
struct Exchange {
    bytes_in: u64,
    bytes_out: u64,
}

/// Any number of [`Endpoint`]s on a seeded [`Network`], driven in one thread
/// on a virtual [`Clock`], with hostile traffic if asked.
///
/// After every input to an endpoint the world drains its transmits into the
/// network and its events into the checker, which verifies as it goes:
/// no payload handed over twice; none handed over that its source did not
/// send; every send resolved at most once, by its deadline plus one RTO; a
/// Delivered message handed over at its receiver; messages sent while
/// [`World::set_must_deliver`] is on are Delivered; every table within its
/// [`Limits`](crate::Limits); at most three times the bytes received sent to
/// any address that is not an endpoint. [`World::finish`] adds the end-of-run
/// checks. Broken guarantees are collected as [`Violation`]s, with a
/// [`Trace`] of the last datagrams and events.
///
/// The same seed and the same calls give the same run, byte for byte.
pub struct World {
    rng: Rng,
    clock: Clock,
    network: Network,
    hostile: Option<Hostile>,
    nodes: Vec<Node>,
    by_address: BTreeMap<SocketAddr, usize>,
    sends: Vec<SendRecord>,
    /// Addresses that are not endpoints but that an application sent to.
    app_destinations: BTreeSet<SocketAddr>,
    /// Every DATA payload sent or injected: `(from, to, payload)`.
    sent_payloads: BTreeSet<(SocketAddr, SocketAddr, Bytes)>,
    /// Per endpoint and foreign address.
    exchanges: BTreeMap<(usize, SocketAddr), Exchange>,
    framing: Framing,
    must_deliver: bool,
    keep_events: bool,
    max_datagrams: usize,
    buf: Vec<u8>,
    counts: Counts,
    violations: Vec<Violation>,
    trace: Trace,
}

/// Violations kept in full; later ones are only counted.
const MAX_VIOLATIONS_KEPT: usize = 32;

impl World {
    /// An empty world whose network and endpoints draw their randomness
    /// from `seed`, every link following `link`.
    pub fn new(seed: u64, link: LinkProfile) -> Self {
        let mut rng = Rng::new(seed);
        let network = Network::new(rng.next_u64(), link);
        Self {
            rng,
            clock: Clock::new(),
            network,
            hostile: None,
            nodes: Vec::new(),
            by_address: BTreeMap::new(),
            sends: Vec::new(),
            app_destinations: BTreeSet::new(),
            sent_payloads: BTreeSet::new(),
            exchanges: BTreeMap::new(),
            framing: Framing::default(),
            must_deliver: false,
            keep_events: false,
            max_datagrams: 1,
            buf: Vec::new(),
            counts: Counts::default(),
            violations: Vec::new(),
            trace: Trace::new(64),
        }
    }

    /// Adds an endpoint at `address`; its seed is drawn from the world's.
    /// Returns its index.
    pub fn add_endpoint(
        &mut self,
        address: SocketAddr,
        config: Config,
    ) -> Result<usize, ConfigError> {
        let seed = (u128::from(self.rng.next_u64()) << 64) | u128::from(self.rng.next_u64());
        self.framing = config.framing.clone();
        let endpoint = Endpoint::new(config, seed)?;
        let index = self.nodes.len();
        self.nodes.push(Node {
            address,
            endpoint,
            received: BTreeSet::new(),
            sends: BTreeMap::new(),
            next_seq: 0,
            inbox: Vec::new(),
        });
        self.by_address.insert(address, index);
        Ok(index)
    }

    /// Starts hostile traffic against every endpoint added so far.
    pub fn set_hostile(&mut self, profile: HostileProfile) {
        let targets = self
            .nodes
            .iter()
            .map(|node| (node.address, node.endpoint.config().framing.clone()))
            .collect();
        self.hostile = Some(Hostile::new(self.rng.next_u64(), profile, targets));
    }

    /// Keeps every event for [`World::take_events`] (off by default).
    pub fn keep_events(&mut self, keep: bool) {
        self.keep_events = keep;
    }

    /// Asks for up to `max` datagrams per `poll_transmit` (default 1).
    pub fn set_max_datagrams(&mut self, max: usize) {
        self.max_datagrams = max.max(1);
    }

    /// Keeps the last `capacity` datagrams and events (default 64).
    pub fn set_trace_capacity(&mut self, capacity: usize) {
        self.trace = Trace::new(capacity);
    }

    /// From now on, sends must end Delivered (the network has healed).
    pub fn set_must_deliver(&mut self, must: bool) {
        self.must_deliver = must;
    }

    /// The network, to change links or add partitions.
    pub fn network_mut(&mut self) -> &mut Network {
        &mut self.network
    }

    /// The network.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// The virtual clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.clock.elapsed()
    }

    /// The number of endpoints.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there is no endpoint.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The address of endpoint `node`.
    pub fn address(&self, node: usize) -> SocketAddr {
        self.nodes[node].address
    }

    /// Endpoint `node`.
    pub fn endpoint(&self, node: usize) -> &Endpoint {
        &self.nodes[node].endpoint
    }

    /// The events of endpoint `node` since the last call, with their times
    /// (only with [`World::keep_events`]).
    pub fn take_events(&mut self, node: usize) -> Vec<(Duration, Event)> {
        std::mem::take(&mut self.nodes[node].inbox)
    }

    /// Sends a tagged payload of `Tag::LEN + extra` bytes from `node` to
    /// `to` now.
    pub fn send(
        &mut self,
        node: usize,
        to: SocketAddr,
        extra: usize,
        options: SendOptions,
    ) -> Result<MessageId, SendError> {
        let tag = Tag::node(node as u32, self.nodes[node].next_seq);
        let mut payload = tag.encode();
        payload.resize(Tag::LEN + extra, (tag.seq as u8) | 1);
        let result = self.send_inner(node, to, Bytes::from(payload), Some(tag), options);
        if result.is_ok() {
            self.nodes[node].next_seq += 1;
        }
        result
    }

    /// Sends any payload from `node` to `to` now. Untagged payloads are
    /// checked for phantoms but not for duplicates (two sends may carry the
    /// same bytes).
    pub fn send_payload(
        &mut self,
        node: usize,
        to: SocketAddr,
        payload: Bytes,
        options: SendOptions,
    ) -> Result<MessageId, SendError> {
        let tag = Tag::decode(&payload);
        self.send_inner(node, to, payload, tag, options)
    }

    /// Cancels a message of `node`.
    pub fn cancel(&mut self, node: usize, id: MessageId) -> Result<(), UnknownMessage> {
        let at = self.clock.elapsed();
        self.trace.record(TraceEntry::Cancel {
            at,
            node: self.nodes[node].address,
            id,
        });
        let result = self.nodes[node].endpoint.cancel(id);
        self.flush(node);
        result
    }

    /// Starts closing endpoint `node`.
    pub fn close(&mut self, node: usize) {
        let at = self.clock.elapsed();
        self.trace.record(TraceEntry::Close {
            at,
            node: self.nodes[node].address,
        });
        let now = self.clock.now();
        self.nodes[node].endpoint.close(now);
        self.flush(node);
    }

    /// Whether every endpoint has closed.
    pub fn all_closed(&self) -> bool {
        self.nodes.iter().all(|node| node.endpoint.is_closed())
    }

    /// Whether every accepted send has its outcome.
    pub fn all_resolved(&self) -> bool {
        self.sends.iter().all(|send| send.outcome.is_some())
    }

    /// Marks the start of a phase in the trace.
    pub fn phase(&mut self, name: &'static str) {
        let at = self.clock.elapsed();
        self.trace.record(TraceEntry::Phase { at, name });
    }

    /// Runs everything due up to `until`: hostile injections, deliveries and
    /// timeouts, in time order. The clock ends at `until`.
    pub fn run_until(&mut self, until: Duration) {
        loop {
            let hostile = self.hostile.as_ref().and_then(Hostile::next_time);
            let delivery = self.network.next_delivery();
            let mut timeout: Option<(Duration, usize)> = None;
            for index in 0..self.nodes.len() {
                if let Some(at) = self.nodes[index].endpoint.poll_timeout() {
                    let at = self.clock.offset(at);
                    if timeout.map_or(true, |(best, _)| at < best) {
                        timeout = Some((at, index));
                    }
                }
            }
            let next = [hostile, delivery, timeout.map(|(at, _)| at)]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = next.filter(|&next| next <= until) else {
                break;
            };
            self.clock.advance_to(next);
            let now = self.clock.elapsed();
            if hostile.is_some_and(|at| at <= now) {
                self.inject(now);
            } else if delivery.is_some_and(|at| at <= now) {
                self.deliver(now);
            } else if let Some((_, index)) = timeout {
                let instant = self.clock.now();
                self.nodes[index].endpoint.handle_timeout(instant);
                self.flush(index);
            }
        }
        self.clock.advance_to(until);
    }

    /// The end-of-run checks: every send resolved; when `closed` (every
    /// endpoint was closed and drained) every endpoint closed with every
    /// table empty. Returns the run's totals.
    pub fn finish(&mut self, closed: bool) -> Counts {
        let at = self.clock.elapsed();
        let unresolved: Vec<(usize, MessageId)> = self
            .sends
            .iter()
            .filter(|send| send.outcome.is_none())
            .map(|send| (send.node, send.id))
            .collect();
        for (node, id) in unresolved {
            self.counts.unresolved += 1;
            let address = self.nodes[node].address;
            self.violation(at, format!("{address}: message {id} never resolved"));
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
                        at,
                        format!("{address}: not closed after its drain deadline"),
                    );
                } else if sizes != TableSizes::default() {
                    self.violation(
                        at,
                        format!("{address}: tables not empty after close: {sizes:?}"),
                    );
                }
            }
        }
        self.counts
    }

    /// Totals so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// The guarantees found broken so far (the first few in full).
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// Records a broken guarantee found outside the world (a panic, say).
    pub fn report_violation(&mut self, what: String) {
        let at = self.clock.elapsed();
        self.violation(at, what);
    }

    /// The last datagrams and events.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    // ----- private ------------------------------------------------------------

    fn send_inner(
        &mut self,
        node: usize,
        to: SocketAddr,
        payload: Bytes,
        tag: Option<Tag>,
        options: SendOptions,
    ) -> Result<MessageId, SendError> {
        let at = self.clock.elapsed();
        let now = self.clock.now();
        let address = self.nodes[node].address;
        let result = self.nodes[node]
            .endpoint
            .send_with(now, to, payload.clone(), options);
        self.trace.record(TraceEntry::Send {
            at,
            node: address,
            to,
            id: result.as_ref().ok().copied(),
            tag: tag.unwrap_or(Tag::node(u32::MAX, 0)),
        });
        if let Ok(id) = result {
            self.counts.messages += 1;
            if !self.by_address.contains_key(&to) {
                self.app_destinations.insert(to);
            }
            self.sent_payloads.insert((address, to, payload));
            let record = SendRecord {
                node,
                to,
                id,
                tag,
                deadline: options.deadline.map(|deadline| self.clock.offset(deadline)),
                must_deliver: self.must_deliver,
                outcome: None,
            };
            if self.nodes[node]
                .sends
                .insert(id, self.sends.len())
                .is_some()
            {
                self.violation(at, format!("{address}: message id {id} given out twice"));
            }
            self.sends.push(record);
        }
        self.flush(node);
        result
    }

    fn wire(&self, datagram: &[u8]) -> Wire {
        match self.framing.parse(datagram) {
            Ok(packet) => Wire::Gtudp(packet.kind(), packet.identity()),
            Err(_) => Wire::Other,
        }
    }

    fn inject(&mut self, now: Duration) {
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

    fn deliver(&mut self, now: Duration) {
        let Some(datagram) = self.network.poll_delivery(now) else {
            return;
        };
        let Some(&index) = self.by_address.get(&datagram.to) else {
            // To an address nobody listens on (a flood victim): gone.
            return;
        };
        let len = datagram.payload.len();
        self.trace.record(TraceEntry::Arrived {
            at: now,
            from: datagram.from,
            to: datagram.to,
            len,
            wire: self.wire(&datagram.payload),
        });
        if !self.by_address.contains_key(&datagram.from) {
            self.exchanges
                .entry((index, datagram.from))
                .or_default()
                .bytes_in += len as u64;
        }
        let instant = self.clock.now();
        self.nodes[index]
            .endpoint
            .handle_datagram(instant, datagram.from, datagram.payload);
        self.flush(index);
    }

    /// Checks bounds, then drains the transmits and events of `index`.
    fn flush(&mut self, index: usize) {
        self.check_bounds(index);
        let at = self.clock.elapsed();
        let now = self.clock.now();
        let address = self.nodes[index].address;
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
                if !self.by_address.contains_key(&to) && !self.app_destinations.contains(&to) {
                    self.note_unanswered_out(at, index, to, len);
                }
                if let Some(hostile) = self.hostile.as_mut() {
                    hostile.observe(&datagram);
                }
                let wire = self.wire(&datagram);
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
        while let Some(event) = self.nodes[index].endpoint.poll_event() {
            self.on_event(at, index, &event);
            if self.keep_events {
                self.nodes[index].inbox.push((at, event));
            }
        }
    }

    fn note_unanswered_out(&mut self, at: Duration, index: usize, to: SocketAddr, len: usize) {
        let exchange = self.exchanges.entry((index, to)).or_default();
        exchange.bytes_out += len as u64;
        let Exchange {
            bytes_in,
            bytes_out,
        } = *exchange;
        if bytes_out > 3 * bytes_in {
            let address = self.nodes[index].address;
            self.violation(
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
                if !self
                    .sent_payloads
                    .contains(&(*from, address, payload.clone()))
                {
                    self.counts.phantom += 1;
                    self.violation(
                        at,
                        format!(
                            "{address}: handed over a {}-byte payload from {from} that {from} never sent to it",
                            payload.len()
                        ),
                    );
                }
                if let Some(tag) = tag {
                    if !self.nodes[index].received.insert(tag) {
                        self.counts.duplicates += 1;
                        self.violation(at, format!("{address}: handed over {tag} a second time"));
                    }
                }
            }
            Event::Delivered { id, to } => self.on_outcome(at, index, *id, *to, Ok(())),
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
        let node = &self.nodes[index];
        let address = node.address;
        let max_rto = node.endpoint.config().max_rto;
        self.trace.record(TraceEntry::Outcome {
            at,
            node: address,
            id,
            failure: outcome.err(),
        });
        let Some(&record_index) = node.sends.get(&id) else {
            self.violation(
                at,
                format!("{address}: outcome for {id}, which was never sent"),
            );
            return;
        };
        let record = &mut self.sends[record_index];
        if record.outcome.is_some() {
            self.violation(
                at,
                format!("{address}: {id} resolved a second time ({outcome:?})"),
            );
            return;
        }
        record.outcome = Some((at, outcome));
        let (record_to, tag, deadline, must_deliver) =
            (record.to, record.tag, record.deadline, record.must_deliver);
        match outcome {
            Ok(()) => self.counts.delivered += 1,
            Err(_) => self.counts.failed += 1,
        }
        if record_to != to {
            self.violation(
                at,
                format!("{address}: {id} was sent to {record_to}, resolved for {to}"),
            );
        }
        if let Some(deadline) = deadline {
            if at > deadline + max_rto {
                self.violation(
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
                let receiver = self.by_address.get(&to).copied();
                if let (Some(receiver), Some(tag)) = (receiver, tag) {
                    if !self.nodes[receiver].received.contains(&tag) {
                        self.violation(
                            at,
                            format!(
                                "{address}: {id} ({tag}) Delivered but never handed over at {to}"
                            ),
                        );
                    }
                }
            }
            Err(reason) if must_deliver => {
                self.violation(
                    at,
                    format!("{address}: {id} sent after the network healed Failed ({reason:?})"),
                );
            }
            Err(_) => {}
        }
    }

    fn check_bounds(&mut self, index: usize) {
        let endpoint = &self.nodes[index].endpoint;
        let sizes = endpoint.table_sizes();
        let limits = &endpoint.config().limits;
        let live = limits.max_outstanding_messages + limits.max_received + limits.max_peers;
        let checks = [
            ("peers", sizes.peers, limits.max_peers),
            ("messages", sizes.messages, limits.max_outstanding_messages),
            (
                "outstanding",
                sizes.outstanding,
                limits.max_outstanding_messages,
            ),
            ("queued", sizes.queued, limits.max_outstanding_messages),
            (
                "largest_peer_queue",
                sizes.largest_peer_queue,
                limits.max_queued_per_peer,
            ),
            ("received", sizes.received, limits.max_received),
            (
                "largest_peer_received",
                sizes.largest_peer_received,
                limits.max_received_per_peer,
            ),
            ("unread", sizes.unread, limits.max_unread),
            (
                "events",
                sizes.events,
                limits.max_outstanding_messages + limits.max_unread,
            ),
            (
                "pending_control",
                sizes.pending_control,
                limits.max_pending_control,
            ),
            ("pending_raw", sizes.pending_raw, limits.max_pending_raw),
            // Stale entries are purged once they outnumber twice the live ones.
            (
                "pending_transmits",
                sizes.pending_transmits,
                2 * (limits.max_outstanding_messages
                    + limits.max_received
                    + limits.max_pending_control
                    + limits.max_pending_raw)
                    + 66,
            ),
            ("timers", sizes.timers, 2 * live + 68),
        ];
        for (table, size, bound) in checks {
            if size > bound {
                let (at, address) = (self.clock.elapsed(), self.nodes[index].address);
                self.violation(
                    at,
                    format!("{address}: table {table} holds {size}, bound {bound}"),
                );
            }
        }
    }

    fn violation(&mut self, at: Duration, what: String) {
        self.counts.violations += 1;
        if self.violations.len() < MAX_VIOLATIONS_KEPT {
            self.violations.push(Violation { at, what });
        }
    }
}
