//! The world: endpoints on a simulated network, driven on virtual time in one
//! thread, with every guarantee of the protocol checked as the run goes.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use bytes::Bytes;

use super::hostile::{Hostile, HostileProfile};
use super::network::{Clock, Datagram, LinkProfile, Network};
use super::rng::Rng;
use super::trace::{Trace, TraceEntry, Wire};
use crate::config::{Config, ConfigError, SendOptions};
use crate::endpoint::{Endpoint, TableSizes};
use crate::error::{SendError, UnknownMessage};
use crate::event::{Event, FailureReason, MessageId};
use crate::wire::{Framing, Identity, Packet, PacketKind};

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
    /// Which guarantee broke.
    pub kind: ViolationKind,
    /// What went wrong.
    pub what: String,
}

/// Which guarantee a [`Violation`] broke: one per invariant the [`World`]
/// checks, so that totals can say what broke without reading the messages.
/// [`Counts::by_kind`] counts each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ViolationKind {
    /// A tagged payload handed to an application a second time, not excused
    /// by corruption (also counted in [`Counts::duplicates`]).
    Duplicate,
    /// Something handed over that no DATA brought: a payload its source
    /// never sent, a `Received` event read with no DATA taken for it, a
    /// message handed over without taking a DATA, from a datagram that is
    /// not DATA, or several from one datagram (also counted in
    /// [`Counts::phantom`]).
    Phantom,
    /// The application read a `Received` event with another sender or
    /// payload than the next DATA its endpoint took: out of order, or
    /// altered.
    Misread,
    /// A message handed over, or an outcome produced, that never reached
    /// the application by the end of the run.
    Unread,
    /// An outcome that must not exist: for an id never given out, or never
    /// produced by the endpoint, a second one for one id, one for another
    /// destination than the send's, or one id given out twice.
    BadOutcome,
    /// A send resolved more than one RTO after its deadline.
    LateOutcome,
    /// A send without an outcome when the run ended (also counted in
    /// [`Counts::unresolved`]).
    Unresolved,
    /// A message Delivered that its receiver never handed over, not excused
    /// by corruption.
    DeliveredNotHandedOver,
    /// A message sent while [`World::set_must_deliver`] was on that Failed.
    MustDeliverFailed,
    /// A table of an endpoint beyond its [`Limits`](crate::Limits).
    BoundExceeded,
    /// More than three times the bytes received sent to an address that is
    /// not an endpoint and never answered.
    Amplification,
    /// A gtUDP datagram handed to the application as `Foreign`.
    ForeignGtudp,
    /// An endpoint not closed after its drain deadline, or closed with a
    /// table not empty.
    Close,
    /// A panic, in an endpoint or while driving it.
    Panic,
    /// Reported from outside the world with no more precise kind (for
    /// example a scenario whose configuration was refused).
    Other,
}

impl ViolationKind {
    /// Every kind, in the order [`ViolationCounts`] prints them.
    pub const ALL: [ViolationKind; 15] = [
        ViolationKind::Duplicate,
        ViolationKind::Phantom,
        ViolationKind::Misread,
        ViolationKind::Unread,
        ViolationKind::BadOutcome,
        ViolationKind::LateOutcome,
        ViolationKind::Unresolved,
        ViolationKind::DeliveredNotHandedOver,
        ViolationKind::MustDeliverFailed,
        ViolationKind::BoundExceeded,
        ViolationKind::Amplification,
        ViolationKind::ForeignGtudp,
        ViolationKind::Close,
        ViolationKind::Panic,
        ViolationKind::Other,
    ];

    /// A short lowercase name, as the soak example prints it (`duplicate`,
    /// `phantom`, ..., `delivered_not_handed_over`, `bound_exceeded`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ViolationKind::Duplicate => "duplicate",
            ViolationKind::Phantom => "phantom",
            ViolationKind::Misread => "misread",
            ViolationKind::Unread => "unread",
            ViolationKind::BadOutcome => "bad_outcome",
            ViolationKind::LateOutcome => "late_outcome",
            ViolationKind::Unresolved => "unresolved",
            ViolationKind::DeliveredNotHandedOver => "delivered_not_handed_over",
            ViolationKind::MustDeliverFailed => "must_deliver_failed",
            ViolationKind::BoundExceeded => "bound_exceeded",
            ViolationKind::Amplification => "amplification",
            ViolationKind::ForeignGtudp => "foreign_gtudp",
            ViolationKind::Close => "close",
            ViolationKind::Panic => "panic",
            ViolationKind::Other => "other",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl core::fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// Violations counted per [`ViolationKind`].
///
/// Displays as `duplicate=0 phantom=0 ... other=0`, every kind in the order
/// of [`ViolationKind::ALL`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ViolationCounts {
    counts: [u64; ViolationKind::ALL.len()],
}

impl ViolationCounts {
    /// Violations of `kind`.
    pub fn get(&self, kind: ViolationKind) -> u64 {
        self.counts[kind.index()]
    }

    /// Counts one more violation of `kind`.
    pub fn add(&mut self, kind: ViolationKind) {
        self.counts[kind.index()] += 1;
    }

    /// Every kind with its count, in the order of [`ViolationKind::ALL`].
    pub fn iter(&self) -> impl Iterator<Item = (ViolationKind, u64)> + '_ {
        ViolationKind::ALL
            .into_iter()
            .map(|kind| (kind, self.get(kind)))
    }

    /// All violations, of every kind.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

impl core::ops::AddAssign for ViolationCounts {
    fn add_assign(&mut self, other: Self) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts) {
            *mine += theirs;
        }
    }
}

impl core::fmt::Display for ViolationCounts {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, (kind, count)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{kind}={count}")?;
        }
        Ok(())
    }
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
    /// Tagged payloads handed to an application a second time: violations
    /// of kind [`ViolationKind::Duplicate`].
    pub duplicates: u64,
    /// Payloads handed over that no DATA brought: violations of kind
    /// [`ViolationKind::Phantom`].
    pub phantom: u64,
    /// Sends without an outcome when the run ended: violations of kind
    /// [`ViolationKind::Unresolved`].
    pub unresolved: u64,
    /// Every broken guarantee, the above included.
    pub violations: u64,
    /// [`Counts::violations`] by the guarantee that broke.
    pub by_kind: ViolationCounts,
    /// Datagrams the network corrupted that reached an endpoint.
    pub corrupted: u64,
    /// Payloads handed over from corrupted DATA: injected by the network,
    /// neither phantoms nor duplicates.
    pub corrupt_received: u64,
    /// Delivered messages whose receiver never handed over the intact
    /// payload, excused by corruption: the confirming RECV was corrupted, or
    /// the receiver took a corrupted copy of the DATA (see [`World`]).
    pub corrupt_confirmed: u64,
    /// Intact payloads handed over a second time because an ACK born of
    /// corruption ended the receiver's RECV exchange early (see [`World`]).
    pub corrupt_duplicates: u64,
    /// Late copies of DATA replayed just inside their datagram lifetime
    /// (see [`World::set_late_replays`]).
    pub late_replays: u64,
    /// Messages sent after the heal that failed with `Unvalidated` to a
    /// peer that never proved its address (see [`World`]).
    pub unvalidated_failures: u64,
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
        self.by_kind += other.by_kind;
        self.corrupted += other.corrupted;
        self.corrupt_received += other.corrupt_received;
        self.corrupt_confirmed += other.corrupt_confirmed;
        self.corrupt_duplicates += other.corrupt_duplicates;
        self.late_replays += other.late_replays;
        self.unvalidated_failures += other.unvalidated_failures;
    }
}

/// An application that reads its events late.
///
/// It alternates stretches of reading, when it polls every event as soon as
/// its endpoint has it, with stalls, when it polls nothing: `Received` and
/// `Foreign` events pile up until `limits.max_unread` is reached and new DATA
/// is left unanswered ([`DropCounts::data_unanswered_full`]), and outcomes
/// pile up until `limits.max_outstanding_messages` refuses new sends. A stall
/// may also pause receiving
/// ([`Endpoint::set_receive_paused`](crate::Endpoint::set_receive_paused)),
/// as an adapter does when its application's queue is full
/// ([`DropCounts::data_unanswered_paused`]). Each reading stretch lasts
/// `min_reading..=max_reading`, each stall `0..=max_stall`.
///
/// [`DropCounts::data_unanswered_full`]: crate::DropCounts::data_unanswered_full
/// [`DropCounts::data_unanswered_paused`]: crate::DropCounts::data_unanswered_paused
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SlowReader {
    /// The shortest stretch of reading.
    pub min_reading: Duration,
    /// The longest stretch of reading.
    pub max_reading: Duration,
    /// The longest stall.
    pub max_stall: Duration,
    /// Probability that a stall also pauses receiving.
    pub pause: f64,
}

#[derive(Clone, Copy, Debug)]
struct ReaderState {
    profile: SlowReader,
    reading: bool,
    /// This stall paused receiving.
    paused: bool,
    /// When it next stops or resumes reading.
    switch_at: Duration,
}

/// A message the endpoint handed over, until its application reads it.
struct Handover {
    from: SocketAddr,
    payload: Bytes,
}

/// DATA kept by the world per node, at most this many, for checking the
/// messages an endpoint holds until their address proves itself.
const HELD_DATA_KEPT: usize = 65_536;

struct Node {
    address: SocketAddr,
    endpoint: Endpoint,
    /// Tags handed over at this node from intact datagrams.
    received: BTreeSet<Tag>,
    /// Send record of each id the endpoint gave out.
    sends: BTreeMap<MessageId, usize>,
    /// Send record of each tag this node sent.
    by_tag: BTreeMap<Tag, usize>,
    next_seq: u64,
    /// Events kept for the user, when asked.
    inbox: Vec<(Duration, Event)>,
    /// `None`: the application reads every event at once.
    reader: Option<ReaderState>,
    /// Messages handed over whose `Received` event is not read yet, in order.
    unread: VecDeque<Handover>,
    /// When each outcome event not read yet was produced, in order.
    outcome_times: VecDeque<Duration>,
    /// The endpoint's `received` and `delivered + failed` counters when last
    /// looked at.
    seen_received: u64,
    seen_outcomes: u64,
    /// `(sender, identity)` of every DATA handed over from a corrupted
    /// datagram.
    corrupt_handed: BTreeSet<(SocketAddr, Identity)>,
    /// Identities of this node's messages confirmed by a corrupted RECV.
    corrupt_confirmed: BTreeSet<Identity>,
    /// `(sender, identity)` of received messages whose RECV exchange an ACK
    /// born of corruption may have ended.
    ack_tainted: BTreeSet<(SocketAddr, Identity)>,
    /// DATA the endpoint held until their address proves itself, by
    /// `(sender, identity)`, with their payload and whether they were
    /// corrupted (the newest copy of each identity, as the endpoint keeps;
    /// those it dropped since stay here, unmatched).
    held_data: BTreeMap<(SocketAddr, Identity), (Bytes, bool)>,
    /// Keys of `held_data`, oldest first, to bound it.
    held_order: VecDeque<(SocketAddr, Identity)>,
    /// Messages the endpoint took from what it held when this address just
    /// proved itself, not matched yet with the RECV that answers each.
    proof_handovers: Option<(SocketAddr, u64)>,
}

impl Node {
    fn reads(&self) -> bool {
        self.reader.map_or(true, |reader| reader.reading)
    }
}

struct SendRecord {
    node: usize,
    to: SocketAddr,
    id: MessageId,
    tag: Option<Tag>,
    /// Learned from its first DATA on the wire.
    identity: Option<Identity>,
    deadline: Option<Duration>,
    must_deliver: bool,
    /// When it was accepted.
    sent: Duration,
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
    /// Draws the stretches of [`SlowReader`]s; made at first use, so runs
    /// without slow readers draw as before.
    reader_rng: Option<Rng>,
    buf: Vec<u8>,
    /// Whether late copies of DATA are replayed at the edge of their
    /// lifetime (see [`World::set_late_replays`]).
    late_replays: bool,
    /// The last DATA each endpoint sent, per (from, to, identity): what a
    /// late replay repeats, and when. Bounded: the oldest are forgotten
    /// first.
    recent_data: BTreeMap<(SocketAddr, SocketAddr, Identity), RecentData>,
    recent_order: VecDeque<(SocketAddr, SocketAddr, Identity)>,
    /// Replays due, by delivery time: (at, from, to, datagram).
    replays: BTreeMap<(Duration, u64), (SocketAddr, SocketAddr, Bytes)>,
    replay_seq: u64,
    counts: Counts,
    violations: Vec<Violation>,
    trace: Trace,
}

/// DATA kept for late replays, at most.
const RECENT_DATA_KEPT: usize = 4_096;

/// The last transmission of one DATA, kept for a late replay.
struct RecentData {
    datagram: Bytes,
    /// When it was last sent.
    sent: Duration,
    /// A replay of this transmission is scheduled: at most one is.
    replayed: bool,
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
            reader_rng: None,
            buf: Vec::new(),
            late_replays: false,
            recent_data: BTreeMap::new(),
            recent_order: VecDeque::new(),
            replays: BTreeMap::new(),
            replay_seq: 0,
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
        self.late_replays = on;
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
            by_tag: BTreeMap::new(),
            next_seq: 0,
            inbox: Vec::new(),
            reader: None,
            unread: VecDeque::new(),
            outcome_times: VecDeque::new(),
            seen_received: 0,
            seen_outcomes: 0,
            corrupt_handed: BTreeSet::new(),
            corrupt_confirmed: BTreeSet::new(),
            ack_tainted: BTreeSet::new(),
            held_data: BTreeMap::new(),
            held_order: VecDeque::new(),
            proof_handovers: None,
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

    /// Makes the application of endpoint `node` read its events late
    /// (`Some`), or at once (`None`, the default). It starts with a stretch
    /// of reading; `None` ends any stall and pause at once and reads what
    /// piled up.
    pub fn set_slow_reader(&mut self, node: usize, reader: Option<SlowReader>) {
        let at = self.clock.elapsed();
        if let Some(old) = self.nodes[node].reader.take() {
            if old.paused {
                self.nodes[node].endpoint.set_receive_paused(false);
            }
        }
        if let Some(profile) = reader {
            let rng = match &mut self.reader_rng {
                Some(rng) => rng,
                rng @ None => rng.insert(self.rng.fork(0x510e_4ead)),
            };
            let span = profile.max_reading.max(profile.min_reading);
            let reading = Duration::from_micros(rng.range(
                profile.min_reading.as_micros() as u64,
                span.as_micros() as u64,
            ));
            self.nodes[node].reader = Some(ReaderState {
                profile,
                reading: true,
                paused: false,
                switch_at: at + reading.max(Duration::from_micros(1)),
            });
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
            let replay = self.replays.keys().next().map(|&(at, _)| at);
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
                .filter_map(|(index, node)| node.reader.map(|reader| (reader.switch_at, index)))
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
                if let Some((_, (from, to, payload))) = self.replays.pop_first() {
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

    /// Records a broken guarantee of `kind` found outside the world (a
    /// panic, say).
    pub fn report_violation(&mut self, kind: ViolationKind, what: String) {
        let at = self.clock.elapsed();
        self.violation(kind, at, what);
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
        if let Some(datagram) = self.network.poll_delivery(now) {
            self.take_datagram(now, datagram);
        }
    }

    /// Hands `datagram` to the endpoint it is addressed to, if any.
    fn take_datagram(&mut self, now: Duration, datagram: Datagram) {
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
            corrupted: datagram.corrupted,
        });
        if !self.by_address.contains_key(&datagram.from) {
            self.exchanges
                .entry((index, datagram.from))
                .or_default()
                .bytes_in += len as u64;
        }
        let instant = self.clock.now();
        let node = &mut self.nodes[index];
        let before = node.endpoint.stats();
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
        } else if self.late_replays
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
        let Some(data) = self.recent_data.get_mut(&(ack.from, ack.to, identity)) else {
            return;
        };
        // Within the lifetime of the last transmission, not of this ACK: a
        // later copy would be one the network cannot deliver.
        let at = data.sent + lifetime.saturating_sub(Duration::from_millis(1));
        if at <= now || data.replayed {
            return;
        }
        data.replayed = true;
        self.replay_seq += 1;
        self.replays.insert(
            (at, self.replay_seq),
            (ack.from, ack.to, data.datagram.clone()),
        );
    }

    /// Keeps the DATA just sent, at `at`, for a later replay.
    fn keep_for_replay(
        &mut self,
        at: Duration,
        from: SocketAddr,
        to: SocketAddr,
        identity: Identity,
        data: &Bytes,
    ) {
        let key = (from, to, identity);
        let recent = RecentData {
            datagram: data.clone(),
            sent: at,
            replayed: false,
        };
        if self.recent_data.insert(key, recent).is_none() {
            self.recent_order.push_back(key);
        }
        while self.recent_order.len() > RECENT_DATA_KEPT {
            if let Some(old) = self.recent_order.pop_front() {
                self.recent_data.remove(&old);
            }
        }
    }

    /// The endpoint at `index` took `datagram`'s DATA: checks it, and
    /// expects its `Received` event.
    fn on_handover(&mut self, at: Duration, index: usize, datagram: &Datagram, handed: u64) {
        let (address, from) = (self.nodes[index].address, datagram.from);
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
        self.nodes[index]
            .unread
            .push_back(Handover { from, payload });
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
        if corrupted {
            self.counts.corrupt_received += 1;
            self.nodes[index].corrupt_handed.insert((from, identity));
            return;
        }
        if !self
            .sent_payloads
            .contains(&(from, address, payload.clone()))
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
        if let Some(tag) = Tag::decode(payload) {
            let node = &mut self.nodes[index];
            if !node.received.insert(tag) {
                if node.ack_tainted.contains(&(from, identity)) {
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

    /// Keeps a DATA the endpoint at `index` held until its address proves
    /// itself.
    fn note_held_data(&mut self, index: usize, datagram: &Datagram) {
        let node = &mut self.nodes[index];
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
    fn on_held_handover(
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
        self.nodes[index]
            .unread
            .push_back(Handover { from, payload });
    }

    /// Notes what a corrupted datagram taken by the endpoint at `index`
    /// confirmed or acknowledged; `confirmed` when it resolved a message.
    fn on_corrupted(&mut self, index: usize, datagram: &Datagram, confirmed: bool) {
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
                if let Some(&peer) = self.by_address.get(&datagram.from) {
                    self.nodes[peer].ack_tainted.insert((datagram.to, identity));
                }
            }
            Ok((PacketKind::Ack, identity)) => {
                self.nodes[index]
                    .ack_tainted
                    .insert((datagram.from, identity));
            }
            _ => {}
        }
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
        let profile = state.profile;
        if state.reading {
            state.reading = false;
            state.paused = rng.chance(profile.pause);
            state.switch_at = at + rng.duration(profile.max_stall);
            if state.paused {
                self.nodes[index].endpoint.set_receive_paused(true);
            }
        } else {
            if state.paused {
                self.nodes[index].endpoint.set_receive_paused(false);
            }
            state.reading = true;
            state.paused = false;
            let span = profile.max_reading.max(profile.min_reading);
            state.switch_at = at
                + Duration::from_micros(rng.range(
                    profile.min_reading.as_micros() as u64,
                    span.as_micros() as u64,
                ));
        }
        state.switch_at = state.switch_at.max(at + Duration::from_micros(1));
        self.nodes[index].reader = Some(state);
        self.trace.record(TraceEntry::Reader {
            at,
            node: self.nodes[index].address,
            reading: state.reading,
            paused: state.paused,
        });
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
                let parsed = self.framing.parse(&datagram);
                if let Ok(Packet::Recv { identity }) = parsed {
                    // (A probe sent in the same instant names a token, no
                    // held DATA: passed over.)
                    let node = &self.nodes[index];
                    match node.proof_handovers {
                        Some((from, left))
                            if from == to
                                && left > 0
                                && node.held_data.contains_key(&(from, identity)) =>
                        {
                            self.nodes[index].proof_handovers = Some((from, left - 1));
                            self.on_held_handover(at, index, from, identity);
                        }
                        _ => {}
                    }
                }
                if let Ok(Packet::Data { identity, payload }) = parsed {
                    self.learn_identity(index, to, identity, payload);
                    if self.late_replays {
                        self.keep_for_replay(at, address, to, identity, &datagram);
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

    /// The application of `index` reads every event waiting.
    fn read_events(&mut self, index: usize) {
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
    fn learn_identity(&mut self, index: usize, to: SocketAddr, identity: Identity, payload: &[u8]) {
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
        if record_to != to {
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
                let receiver = self.by_address.get(&to).copied();
                if let (Some(receiver), Some(tag)) = (receiver, tag) {
                    // The exceptions corruption makes (see the type's docs).
                    let corruption = identity.is_some_and(|identity| {
                        self.nodes[index].corrupt_confirmed.contains(&identity)
                            || self.nodes[receiver]
                                .corrupt_handed
                                .contains(&(address, identity))
                    });
                    let handed_over = self.nodes[receiver].received.contains(&tag);
                    if !handed_over && corruption {
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

    fn check_bounds(&mut self, index: usize) {
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

    fn violation(&mut self, kind: ViolationKind, at: Duration, what: String) {
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
