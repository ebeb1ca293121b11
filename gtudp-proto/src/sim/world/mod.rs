//! The world: endpoints on a simulated network, driven on virtual time in one
//! thread, with every guarantee of the protocol checked as the run goes.
//!
//! This file holds [`World`] itself: its construction and settings, the
//! application's calls (send, cancel, close, slow readers) and the step loop
//! ([`World::run_until`]). The rest of it, by concept:
//!
//! - `traffic`: datagrams between the endpoints, hostile sources and the
//!   network, drained after every input (`flush`);
//! - `invariants`: the checker, every guarantee verified as the run goes and
//!   at its end ([`World::finish`]);
//! - `replay`: late copies of DATA at the edge of their lifetime;
//! - `nat`: endpoints behind NATs, and the addresses the checker sees
//!   through them;
//! - `node`: what is kept per endpoint and per send.
//!
//! Imports go one way: `node` and `replay` import nothing from the world;
//! `traffic` and `invariants` add methods to [`World`] and import it, and
//! this file imports nothing from them.

mod invariants;
mod nat;
mod node;
mod replay;
mod traffic;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use self::node::{Exchange, Node, SendRecord};
use self::replay::LateReplays;
use super::hostile::{Hostile, HostileProfile};
use super::nat::NatProfile;
use super::network::{Clock, Datagram, LinkProfile, Network};
use super::reader::{ReaderState, SlowReader};
use super::rng::Rng;
use super::tag::Tag;
use super::trace::{Trace, TraceEntry};
use super::violation::{Counts, Violation, ViolationKind};
use crate::config::{Config, ConfigError, SendOptions};
use crate::endpoint::Endpoint;
use crate::error::{SendError, UnknownMessage};
use crate::event::{Event, MessageId};
use crate::wire::Framing;

/// Any number of [`Endpoint`]s on a seeded [`Network`], driven in one thread
/// on a virtual [`Clock`], with hostile traffic if asked.
///
/// After every input to an endpoint the world drains its transmits into the
/// network and (unless its application is a stalled [`SlowReader`]) its
/// events into the checker, which verifies as it goes:
/// no payload handed over twice; none handed over that its source did not
/// send; every `Received` event read in the order, and with the payload, of
/// the DATA its endpoint took; every send resolved at most once, by its
/// deadline plus one RTO (from when the endpoint resolved it, however late
/// it is read); a Delivered message handed over at its receiver; messages
/// sent while [`World::set_must_deliver`] is on are Delivered; every table
/// within its [`Limits`](crate::Limits); at most three times the bytes
/// received sent to any address that is not an endpoint. [`World::finish`]
/// adds the end-of-run checks. Broken guarantees are collected as
/// [`Violation`]s, each naming the guarantee it broke ([`ViolationKind`],
/// counted in [`Counts::by_kind`]), with a [`Trace`] of the last datagrams
/// and events.
///
/// # Corruption
///
/// gtUDP has no checksum, so a datagram corrupted by the network
/// ([`LinkProfile::corrupt`]) that still parses is taken at face value.
/// The world treats what it brings like hostile injections, and checks the
/// rest as strictly as without corruption:
///
/// - A payload handed over from a corrupted DATA is counted in
///   [`Counts::corrupt_received`], never as a phantom or a duplicate (a
///   flipped identity makes a "new" message whose payload may be one
///   already handed over). Payloads handed over from intact datagrams must
///   still have been sent, and handed over once.
/// - An intact payload may still be handed over twice in one case: an ACK
///   born of corruption (a corrupted ACK, or the ACK answering a corrupted
///   RECV) whose identity happens to name a message the receiver holds ends
///   its RECV exchange early; the receiver forgets the identity
///   `datagram_lifetime` later, and if the sender, never having had a RECV,
///   still resends the DATA, it is taken again. Such repeats are counted in
///   [`Counts::corrupt_duplicates`]; any other repeat is a violation.
/// - "Delivered implies handed over" cannot be asserted for every message:
///   a corrupted RECV whose identity happens to name another message in
///   flight to that peer confirms it although it may never have arrived
///   (the hazard of a 32-bit identity without checksum), and a DATA
///   corrupted only in its payload is handed over in that form and its
///   (intact) RECV confirms the message. So the world asserts it for every
///   Delivered message except those resolved by a corrupted RECV, and those
///   whose receiver took a corrupted DATA from the sender with the
///   message's identity (it asserts that much: the receiver's endpoint
///   holds *a* message under that identity); these are counted in
///   [`Counts::corrupt_confirmed`].
///
/// The same seed and the same calls give the same run, byte for byte.
pub struct World {
    rng: Rng,
    clock: Clock,
    network: Network,
    hostile: Option<Hostile>,
    nodes: Vec<Node>,
    by_address: BTreeMap<SocketAddr, usize>,
    /// The NAT in front of an endpoint, by index (see [`World::set_nat`]).
    nats: BTreeMap<usize, NatProfile>,
    /// Every public address a NAT gave an endpoint so far.
    public: BTreeMap<SocketAddr, usize>,
    sends: Vec<SendRecord>,
    /// Addresses that are not endpoints but that an application sent to.
    app_destinations: BTreeSet<SocketAddr>,
    /// Every DATA payload sent or injected: `(from, to, payload)`.
    sent_payloads: BTreeSet<(SocketAddr, SocketAddr, Bytes)>,
    /// Messages Delivered to a receiver with large messages on that its
    /// application had not read yet (it learns what it took only by
    /// reading: see `Handover::by_content`), checked again at the end:
    /// when, the sender's address, the message, its tag, its receiver.
    delivered_unread: Vec<(Duration, SocketAddr, MessageId, Tag, usize)>,
    /// Per endpoint and foreign address.
    exchanges: BTreeMap<(usize, SocketAddr), Exchange>,
    framing: Framing,
    must_deliver: bool,
    keep_events: bool,
    max_datagrams: usize,
    /// Draws the stretches of [`SlowReader`]s; made at first use, so runs
    /// without slow readers draw as before.
    reader_rng: Option<Rng>,
    buf: Vec<u8>,
    /// Late copies of DATA replayed at the edge of their lifetime (see
    /// [`World::set_late_replays`]).
    replays: LateReplays,
    counts: Counts,
    violations: Vec<Violation>,
    trace: Trace,
}

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
            nats: BTreeMap::new(),
            public: BTreeMap::new(),
            sends: Vec::new(),
            app_destinations: BTreeSet::new(),
            sent_payloads: BTreeSet::new(),
            delivered_unread: Vec::new(),
            exchanges: BTreeMap::new(),
            framing: Framing::default(),
            must_deliver: false,
            keep_events: false,
            max_datagrams: 1,
            reader_rng: None,
            buf: Vec::new(),
            replays: LateReplays::default(),
            counts: Counts::default(),
            violations: Vec::new(),
            trace: Trace::new(64),
        }
    }

    /// Replays late copies of DATA at the edge of their lifetime: whenever
    /// an endpoint takes the ACK that ends a RECV exchange, a copy of that
    /// identity's DATA, as its sender last sent it, reaches the endpoint
    /// again 1 ms before the receiver's `datagram_lifetime` has passed since
    /// that last transmission, past any loss (once per transmission). The
    /// receiver must still recognise it: handing it over again is a
    /// duplicate.
    ///
    /// That is the latest a real copy can arrive, and the whole of the
    /// receiver's promise: `datagram_lifetime` is the longest a datagram may
    /// be delayed, and the receiver remembers an identity for that long
    /// after the ACK that ended its exchange, which its sender sent after
    /// its last DATA. A replay timed from the ACK instead would be a copy
    /// delayed by more than the lifetime, outside the promise: with
    /// corruption, a corrupted copy of a DATA under the same identity is a
    /// new message to the receiver, whose own later ACK would have timed a
    /// replay of the intact original past the original's retention.
    pub fn set_late_replays(&mut self, on: bool) {
        self.replays.set_on(on);
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
        self.nodes.push(Node::new(address, endpoint));
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

    /// Makes the application of endpoint `node` read its events late
    /// (`Some`), or at once (`None`, the default). It starts with a stretch
    /// of reading; `None` ends any stall and pause at once and reads what
    /// piled up.
    pub fn set_slow_reader(&mut self, node: usize, reader: Option<SlowReader>) {
        let at = self.clock.elapsed();
        if let Some(old) = self.nodes[node].reader.take() {
            if old.paused() {
                self.nodes[node].endpoint.set_receive_paused(false);
            }
        }
        if let Some(profile) = reader {
            let rng = match &mut self.reader_rng {
                Some(rng) => rng,
                rng @ None => rng.insert(self.rng.fork(0x510e_4ead)),
            };
            self.nodes[node].reader = Some(ReaderState::start(profile, rng, at));
        }
        self.trace.record(TraceEntry::Reader {
            at,
            node: self.nodes[node].address,
            reading: true,
            paused: false,
        });
        self.flush(node);
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

    /// The longest time from a send to its `Delivered` among the sends
    /// accepted while [`World::set_must_deliver`] was on: the latency the
    /// liveness checks bound under a flood.
    pub fn longest_delivery(&self) -> Duration {
        self.sends
            .iter()
            .filter(|send| send.must_deliver)
            .filter_map(|send| match send.outcome {
                Some((at, Ok(()))) => Some(at.saturating_sub(send.sent)),
                _ => None,
            })
            .max()
            .unwrap_or_default()
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
            let replay = self.replays.next_time();
            let mut timeout: Option<(Duration, usize)> = None;
            for index in 0..self.nodes.len() {
                if let Some(at) = self.nodes[index].endpoint.poll_timeout() {
                    let at = self.clock.offset(at);
                    if timeout.map_or(true, |(best, _)| at < best) {
                        timeout = Some((at, index));
                    }
                }
            }
            let reader = self
                .nodes
                .iter()
                .enumerate()
                .filter_map(|(index, node)| node.reader.map(|reader| (reader.switch_at(), index)))
                .min();
            let next = [
                hostile,
                delivery,
                replay,
                timeout.map(|(at, _)| at),
                reader.map(|(at, _)| at),
            ]
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
            } else if replay.is_some_and(|at| at <= now) {
                if let Some((from, to, payload)) = self.replays.pop_first() {
                    self.counts.late_replays += 1;
                    self.take_datagram(
                        now,
                        Datagram {
                            from,
                            to,
                            payload,
                            sent_at: now,
                            corrupted: false,
                        },
                    );
                }
            } else if delivery.is_some_and(|at| at <= now) {
                self.deliver(now);
            } else if let Some((_, index)) = timeout.filter(|&(at, _)| at <= now) {
                let instant = self.clock.now();
                self.nodes[index].endpoint.handle_timeout(instant);
                self.flush(index);
            } else if let Some((_, index)) = reader {
                self.switch_reader(index);
            }
        }
        self.clock.advance_to(until);
    }

    /// Totals so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// The guarantees found broken so far (the first few in full).
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// The last datagrams and events.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

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
            let receiver = self.origin(to);
            self.sent_payloads.insert((address, receiver, payload));
            if let Some(tag) = tag {
                self.nodes[node].by_tag.insert(tag, self.sends.len());
            }
            let record = SendRecord {
                node,
                to,
                id,
                tag,
                identity: None,
                deadline: options.deadline.map(|deadline| self.clock.offset(deadline)),
                must_deliver: self.must_deliver,
                sent: self.clock.elapsed(),
                outcome: None,
            };
            if self.nodes[node]
                .sends
                .insert(id, self.sends.len())
                .is_some()
            {
                self.violation(
                    ViolationKind::BadOutcome,
                    at,
                    format!("{address}: message id {id} given out twice"),
                );
            }
            self.sends.push(record);
        }
        self.flush(node);
        result
    }

    /// A slow reader stops or resumes reading.
    fn switch_reader(&mut self, index: usize) {
        let at = self.clock.elapsed();
        let Some(mut state) = self.nodes[index].reader else {
            return;
        };
        let Some(rng) = self.reader_rng.as_mut() else {
            return;
        };
        // A stall that paused receiving ends; a stall that starts may pause.
        let resumes = !state.reading() && state.paused();
        state.switch(rng, at);
        if resumes {
            self.nodes[index].endpoint.set_receive_paused(false);
        }
        if state.paused() {
            self.nodes[index].endpoint.set_receive_paused(true);
        }
        self.nodes[index].reader = Some(state);
        self.trace.record(TraceEntry::Reader {
            at,
            node: self.nodes[index].address,
            reading: state.reading(),
            paused: state.paused(),
        });
        self.flush(index);
    }
}
