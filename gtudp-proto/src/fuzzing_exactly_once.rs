//! Fuzz target `exactly_once`: two endpoints exchanging tagged messages over
//! a network the input drives (loss, duplication, reordering, replays,
//! spoofed injections, time), checked against the protocol's exactly-once
//! promise. Wired into [`crate::fuzzing`]; see [`exactly_once`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::Bytes8;
use crate::wire::{Framing, Identity, Packet, PacketKind};
use crate::{Config, Endpoint, Event, FailureReason, MessageId, SendOptions};

/// Fuzz target `exactly_once`: endpoints A and B send each other tagged
/// messages over a network the input drives, and an oracle checks
/// exactly-once delivery.
///
/// The input starts with three configuration bytes, then one operation per
/// byte (missing argument bytes read as zero):
///
/// ```text
/// | setup | timing | misc | op [args] | op [args] | ...
/// ```
///
/// - `setup`: bits 0–1 framing (default, default, magic `GT`, two-byte
///   types), bit 2 initial window 2 instead of 1, bit 3 `deliver_foreign`,
///   bit 4 small limits, bit 5 early loss detection off, bits 6–7 plus one
///   the datagrams per `poll_transmit`.
/// - `timing`: bits 0–1 `max_rto` (60, 100, 150, 200 ms), bits 2–3
///   `max_attempts` − 2, bits 4–5 `recv_max_attempts` − 1, bits 6–7
///   `datagram_lifetime` (50, 100, 200, 300 ms). `initial_rto` is 50 ms and
///   `remember_window` is `max_retry_span + datagram_lifetime` (plus 200 ms
///   with `misc` bit 1), so it covers every copy the network below can
///   still deliver.
/// - `misc`: bit 0 `unvalidated_attempts` 2 instead of 1, bit 1 a longer
///   `remember_window`, bit 2 `peer_idle_timeout` 150 ms instead of 600 ms,
///   bits 3–7 the endpoints' seeds.
///
/// An identity byte with bit 7 set names the identity 0 to 7 (its low three
/// bits), otherwise one of the identities seen on the wire; spoofed lengths
/// are taken modulo 24, and a filler length (bytes after the 9-byte tag)
/// modulo what fits in one datagram.
///
/// In an operation byte, the low nibble is the operation, bit 7 the
/// endpoint it concerns (`d`: 0 for A, 1 for B; for network operations the
/// receiving one) and bits 4–6 a small argument `x`:
///
/// | nibble | operation | arguments |
/// |---|---|---|
/// | 0, 1, 13–15 | deliver the next `x + 1` datagrams in flight to `d` | — |
/// | 2 | drop the next `x + 1` datagrams in flight to `d` | — |
/// | 3 | duplicate: deliver a copy of the `x`-th datagram in flight to `d`, keeping it | — |
/// | 4 | reorder: deliver the `(x + 1)`-th datagram in flight to `d` before those ahead of it | — |
/// | 5 | replay a datagram A and B sent each other, from a bounded history, if sent within `datagram_lifetime` | index |
/// | 6 | spoof: a datagram to `d` from C (`x` even) or D (`x` odd), addresses no endpoint has | kind (mod 6: DATA, copy of a DATA seen, RECV, ACK, raw bytes, copy of any datagram seen); then for DATA an identity, a length and the payload; for RECV and ACK an identity; for raw bytes a length and the bytes; for copies an index |
/// | 7 | time passes, every timer due on the way runs | step, in units of 100 µs, 1 ms, 10 ms, 100 ms (`x` mod 4) |
/// | 8 | `d` sends a new tagged message to its peer (with `x` ≠ 0, options: bit 0 a deadline, bit 1 fewer attempts, bit 2 `only_once_validated`) | filler length, then an options byte if `x` ≠ 0 |
/// | 9 | `d` cancels one of its messages | index |
/// | 10 | `d`'s application stops or resumes reading events (`x` bit 0, or `x` = 0), or `set_receive_paused` flips (`x` bit 1) | — |
/// | 11 | `d` sends a new tagged message to C (`x` even) or D (`x` odd) | filler length, then an options byte if `x & 6` ≠ 0 |
/// | 12 | `d` is told its peer (`x` even) or C or D (`x` odd; bit 1 chooses) is unreachable: an ICMP report, true or forged (`peer_unreachable`) | — |
///
/// Datagrams A and B send each other go into one queue per direction (at
/// most 32; beyond it the oldest are lost); datagrams to C and D are only
/// kept for spoofed copies. A datagram still in flight `datagram_lifetime`
/// after it was sent is lost: the network never delivers it later, and
/// replays only copies of a datagram whose identical bytes were last sent
/// within the lifetime. Nothing is ever sent from A's or B's
/// address but what they sent: the attacker spoofs only C and D.
///
/// After each operation, due timers run, both endpoints' transmits are
/// drained into the network, and the events of each endpoint whose
/// application reads are polled. At the end of the input the network turns
/// perfect: everything in flight is delivered, the applications read, and
/// time jumps from timer to timer until both endpoints are quiet.
///
/// Panics, with the last steps of the run, when:
///
/// 1. a message is handed over (`Event::Received`) twice from its sender's
///    address;
/// 2. a message reported `Delivered` was never handed over at its
///    destination (checked whenever the destination's events are all read,
///    and at the end);
/// 3. a send resolves twice, resolves with an id never given out or the
///    wrong destination, resolves otherwise than `Cancelled` after a
///    successful `cancel` (or `Cancelled` without one), or is still
///    unresolved once both endpoints are quiet at the end;
/// 4. a payload is handed over that its apparent sender never sent there:
///    from A (resp. B) only messages A sent to B (resp. B to A), intact;
///    from C or D only DATA payloads injected from that address to that
///    endpoint (and `Event::Foreign` only for datagrams injected so);
/// 5. a table exceeds its bound after any step
///    ([`TableSizes::exceeded`](crate::TableSizes::exceeded)).
pub fn exactly_once(data: &[u8]) {
    let mut input = Bytes8(data);
    let (setup, timing, misc) = (input.next(), input.next(), input.next());
    let mut world = World::new(setup, timing, misc);
    while !input.is_empty() {
        world.step(&mut input);
    }
    world.drain();
}

/// Index of endpoint A, in addresses and sides.
const A: usize = 0;
/// Index of endpoint B.
const B: usize = 1;
/// Printable names of the four addresses.
const NAMES: [&str; 4] = ["A", "B", "C", "D"];

/// The first byte of a tagged payload.
const TAG_MARK: u8 = 0xe7;
/// Length of the tag at the start of every payload A and B send.
const TAG_LEN: usize = 9;

/// Datagrams in flight towards one endpoint, at most.
const QUEUE_LIMIT: usize = 32;
/// Distinct datagrams A and B sent each other kept for replays, at most.
const HISTORY_LIMIT: usize = 32;
/// Datagrams sent to C and D kept for spoofed copies, at most.
const TO_SPOOFED_LIMIT: usize = 16;
/// Identities kept for spoofed RECV, ACK and DATA, at most.
const IDENTITIES_LIMIT: usize = 64;
/// Steps kept for the panic message.
const TRACE_LIMIT: usize = 512;
/// Timer runs in one time step, at most (then time jumps to its target).
const MAX_TIMER_RUNS: usize = 10_000;
/// Timer runs while draining at the end, at most.
const DRAIN_ROUNDS: usize = 20_000;
/// Deliveries without time passing while draining, at most.
const MAX_INSTANT_DELIVERIES: usize = 10_000;

/// A payload whose first bytes say who sent it to whom, and which message.
fn tagged_payload(sender: usize, to: usize, seq: u32, filler: usize) -> Bytes {
    let mut payload = Vec::with_capacity(TAG_LEN + filler);
    payload.push(TAG_MARK);
    payload.push(sender as u8);
    payload.push(to as u8);
    payload.extend_from_slice(&seq.to_le_bytes());
    payload.push(filler as u8);
    payload.push(TAG_MARK ^ (sender as u8) ^ (seq as u8));
    payload.extend((0..filler).map(|i| (seq as u8).wrapping_add(i as u8)));
    Bytes::from(payload)
}

/// The tag of a payload: (sender, destination, sequence number).
fn parse_tag(payload: &[u8]) -> Option<(usize, usize, u32)> {
    if payload.len() < TAG_LEN || payload[0] != TAG_MARK {
        return None;
    }
    let seq = u32::from_le_bytes([payload[3], payload[4], payload[5], payload[6]]);
    Some((usize::from(payload[1]), usize::from(payload[2]), seq))
}

/// One message accepted by `send`.
struct SendRecord {
    seq: u32,
    /// Address index of its destination.
    to: usize,
    payload: Bytes,
    /// `cancel` accepted it.
    cancelled: bool,
    outcome: Option<Result<(), FailureReason>>,
}

/// One endpoint and what the oracle knows of it.
struct Side {
    endpoint: Endpoint,
    sends: BTreeMap<MessageId, SendRecord>,
    /// Ids in the order given out, for `cancel`.
    ids: Vec<MessageId>,
    /// Sequence number of each accepted send.
    by_seq: BTreeMap<u32, MessageId>,
    next_seq: u32,
    /// The peer's messages handed over from the peer's address, by
    /// sequence number, with the number of hand-overs.
    handed_over: BTreeMap<u32, u32>,
    /// Our messages to the peer reported Delivered, not yet checked
    /// against the peer's hand-overs.
    delivered_unchecked: Vec<u32>,
    /// The application polls events.
    reading: bool,
}

/// A datagram on its way from an endpoint to its peer.
struct InFlight {
    bytes: Bytes,
    sent: Duration,
}

/// A datagram A or B sent the other, kept for replays.
struct Seen {
    from: usize,
    to: usize,
    bytes: Bytes,
    /// When identical bytes were last sent.
    last_sent: Duration,
}

/// A datagram, summarised for the trace.
#[derive(Clone, Copy)]
struct Wire {
    kind: Option<PacketKind>,
    identity: u32,
    /// The tag of a DATA payload: sender, destination, sequence number.
    tag: Option<(usize, usize, u32)>,
    len: usize,
}

impl core::fmt::Debug for Wire {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.kind {
            Some(kind) => write!(f, "{kind} {:08x}", self.identity)?,
            None => write!(f, "raw ({} bytes)", self.len)?,
        }
        if let Some((sender, to, seq)) = self.tag {
            let name = |i: usize| NAMES.get(i).copied().unwrap_or("?");
            write!(f, " [{}->{} #{seq}]", name(sender), name(to))?;
        }
        Ok(())
    }
}

/// One step of the run, for the panic message.
enum Step {
    Transmit {
        from: usize,
        to: usize,
        wire: Wire,
    },
    Deliver {
        to: usize,
        wire: Wire,
        age: Duration,
    },
    Duplicate {
        to: usize,
        wire: Wire,
    },
    Drop {
        to: usize,
        wire: Wire,
    },
    Lost {
        to: usize,
        wire: Wire,
    },
    Replay {
        from: usize,
        to: usize,
        wire: Wire,
        age: Duration,
    },
    Spoof {
        from: usize,
        to: usize,
        wire: Wire,
    },
    Timers {
        side: usize,
    },
    Send {
        side: usize,
        to: usize,
        seq: u32,
        id: Option<MessageId>,
        /// The deadline, from now.
        deadline: Option<Duration>,
        max_attempts: Option<u32>,
        once_validated: bool,
    },
    Cancel {
        side: usize,
        id: MessageId,
        accepted: bool,
    },
    Reading {
        side: usize,
        reading: bool,
    },
    ReceivePaused {
        side: usize,
        paused: bool,
    },
    Received {
        side: usize,
        from: usize,
        tag: Option<(usize, usize, u32)>,
    },
    Foreign {
        side: usize,
        from: usize,
    },
    Unreachable {
        side: usize,
        about: usize,
        failed: usize,
    },
    Outcome {
        side: usize,
        id: MessageId,
        seq: u32,
        outcome: Result<(), FailureReason>,
    },
    Drain,
}

impl core::fmt::Display for Step {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let n = |i: &usize| NAMES.get(*i).copied().unwrap_or("?");
        match self {
            Step::Transmit { from, to, wire } => {
                write!(f, "{} sends {wire:?} to {}", n(from), n(to))
            }
            Step::Deliver { to, wire, age } => {
                write!(f, "deliver to {}: {wire:?} (sent {age:?} ago)", n(to))
            }
            Step::Duplicate { to, wire } => write!(f, "duplicate to {}: {wire:?}", n(to)),
            Step::Drop { to, wire } => write!(f, "drop on its way to {}: {wire:?}", n(to)),
            Step::Lost { to, wire } => {
                write!(
                    f,
                    "lost (lifetime or queue) on its way to {}: {wire:?}",
                    n(to)
                )
            }
            Step::Replay {
                from,
                to,
                wire,
                age,
            } => write!(
                f,
                "replay {}->{}: {wire:?} (last sent {age:?} ago)",
                n(from),
                n(to)
            ),
            Step::Spoof { from, to, wire } => {
                write!(f, "spoof {}->{}: {wire:?}", n(from), n(to))
            }
            Step::Timers { side } => write!(f, "{} handle_timeout", n(side)),
            Step::Send {
                side,
                to,
                seq,
                id,
                deadline,
                max_attempts,
                once_validated,
            } => {
                write!(f, "{} send #{seq} to {}: ", n(side), n(to))?;
                match id {
                    Some(id) => write!(f, "accepted as {id}")?,
                    None => write!(f, "refused")?,
                }
                if let Some(deadline) = deadline {
                    write!(f, ", deadline in {deadline:?}")?;
                }
                if let Some(attempts) = max_attempts {
                    write!(f, ", {attempts} attempts")?;
                }
                if *once_validated {
                    write!(f, ", only once validated")?;
                }
                Ok(())
            }
            Step::Cancel { side, id, accepted } => {
                write!(f, "{} cancel {id}: accepted {accepted}", n(side))
            }
            Step::Reading { side, reading } => {
                write!(f, "{} application reading: {reading}", n(side))
            }
            Step::ReceivePaused { side, paused } => {
                write!(f, "{} set_receive_paused({paused})", n(side))
            }
            Step::Received { side, from, tag } => {
                write!(f, "{} Received from {}: tag {tag:?}", n(side), n(from))
            }
            Step::Foreign { side, from } => write!(f, "{} Foreign from {}", n(side), n(from)),
            Step::Unreachable {
                side,
                about,
                failed,
            } => write!(
                f,
                "{} told {} is unreachable: {failed} failed at once",
                n(side),
                n(about)
            ),
            Step::Outcome {
                side,
                id,
                seq,
                outcome,
            } => write!(f, "{} outcome {id} (#{seq}): {outcome:?}", n(side)),
            Step::Drain => write!(f, "-- end of input: drain --"),
        }
    }
}

/// The two endpoints, the network between them and the oracle's records.
struct World {
    sides: [Side; 2],
    addresses: [SocketAddr; 4],
    framing: Framing,
    config: Config,
    batch: usize,
    epoch: Instant,
    /// Virtual time since `epoch`; never goes backwards.
    clock: Duration,
    /// In flight to each endpoint from its peer, oldest first.
    queues: [VecDeque<InFlight>; 2],
    history: VecDeque<Seen>,
    /// Datagrams A and B sent to C or D.
    to_spoofed: VecDeque<Bytes>,
    identities: Vec<Identity>,
    /// DATA payloads injected: (source address, target endpoint, payload).
    injected_payloads: BTreeSet<(usize, usize, Bytes)>,
    /// Whole datagrams injected, the same way.
    injected_raw: BTreeSet<(usize, usize, Bytes)>,
    trace: VecDeque<(Duration, Step)>,
    buf: Vec<u8>,
}

impl World {
    fn new(setup: u8, timing: u8, misc: u8) -> Self {
        let mut config = Config {
            framing: super::fuzz_framing(setup),
            ..Config::default()
        };
        config.initial_rto = Duration::from_millis(50);
        config.min_rto = Duration::from_millis(5);
        config.max_rto = Duration::from_millis([60, 100, 150, 200][usize::from(timing & 3)]);
        config.max_attempts = 2 + u32::from((timing >> 2) & 3);
        config.recv_max_attempts = 1 + u32::from((timing >> 4) & 3);
        config.datagram_lifetime =
            Duration::from_millis([50, 100, 200, 300][usize::from(timing >> 6)]);
        config.unvalidated_attempts = 1 + u32::from(misc & 1);
        // Covers the last retransmission plus its lifetime in the network.
        config.remember_window = config.max_retry_span()
            + config.datagram_lifetime
            + Duration::from_millis(if misc & 2 != 0 { 200 } else { 0 });
        config.initial_window = 1 + u32::from((setup >> 2) & 1);
        config.max_window = 4;
        config.early_loss_detection = setup & 0x20 == 0;
        config.peer_idle_timeout = Duration::from_millis(if misc & 4 != 0 { 150 } else { 600 });
        config.drain_timeout = Duration::from_secs(1);
        config.deliver_foreign = setup & 0x08 != 0;
        config.max_datagram_size = 64;
        super::set_tiny_limits(&mut config.limits, setup & 0x10 != 0);
        let seed = u128::from(misc >> 3);
        let side = |seed: u128| match Endpoint::new(config.clone(), seed) {
            Ok(endpoint) => Side {
                endpoint,
                sends: BTreeMap::new(),
                ids: Vec::new(),
                by_seq: BTreeMap::new(),
                next_seq: 0,
                handed_over: BTreeMap::new(),
                delivered_unchecked: Vec::new(),
                reading: true,
            },
            Err(error) => panic!("fuzz configuration refused: {error}"),
        };
        let sides = [side(seed << 1), side((seed << 1) | 1)];
        Self {
            sides,
            addresses: [
                ([10, 0, 0, 1], 1).into(),
                ([10, 0, 0, 2], 2).into(),
                ([10, 0, 0, 3], 3).into(),
                ([192, 168, 0, 1], 4).into(),
            ],
            framing: config.framing.clone(),
            config,
            batch: 1 + usize::from(setup >> 6),
            epoch: Instant::now(),
            clock: Duration::ZERO,
            queues: [VecDeque::new(), VecDeque::new()],
            history: VecDeque::new(),
            to_spoofed: VecDeque::new(),
            identities: vec![Identity::from_u32(1), Identity::from_u32(2)],
            injected_payloads: BTreeSet::new(),
            injected_raw: BTreeSet::new(),
            trace: VecDeque::new(),
            buf: Vec::new(),
        }
    }

    fn now(&self) -> Instant {
        self.epoch + self.clock
    }

    fn record(&mut self, step: Step) {
        if self.trace.len() == TRACE_LIMIT {
            self.trace.pop_front();
        }
        self.trace.push_back((self.clock, step));
    }

    /// Panics with `message`, the configuration and the last steps.
    fn fail(&self, message: String) -> ! {
        let config = &self.config;
        let mut text = format!(
            "exactly_once oracle: {message}\nat {:?}; config: max_rto {:?}, max_attempts {}, \
             recv_max_attempts {}, datagram_lifetime {:?}, remember_window {:?}, \
             unvalidated_attempts {}, peer_idle_timeout {:?}, initial_window {}, \
             early_loss_detection {}, deliver_foreign {}, limits {:?}\nlast {} steps:\n",
            self.clock,
            config.max_rto,
            config.max_attempts,
            config.recv_max_attempts,
            config.datagram_lifetime,
            config.remember_window,
            config.unvalidated_attempts,
            config.peer_idle_timeout,
            config.initial_window,
            config.early_loss_detection,
            config.deliver_foreign,
            config.limits,
            self.trace.len(),
        );
        for (at, step) in &self.trace {
            let _ = writeln!(text, "  {:>10.3} ms  {step}", at.as_secs_f64() * 1e3);
        }
        panic!("{text}");
    }

    fn wire(&self, bytes: &[u8]) -> Wire {
        match self.framing.parse(bytes) {
            Ok(packet) => Wire {
                kind: Some(packet.kind()),
                identity: packet.identity().to_u32(),
                tag: match packet {
                    Packet::Data { payload, .. } => parse_tag(payload),
                    _ => None,
                },
                len: bytes.len(),
            },
            Err(_) => Wire {
                kind: None,
                identity: 0,
                tag: None,
                len: bytes.len(),
            },
        }
    }

    fn harvest_identity(&mut self, bytes: &[u8]) {
        if let Ok(packet) = self.framing.parse(bytes) {
            let identity = packet.identity();
            if self.identities.len() < IDENTITIES_LIMIT && !self.identities.contains(&identity) {
                self.identities.push(identity);
            }
        }
    }

    /// An identity chosen by `choice`: a small constant, or one seen.
    fn identity(&self, choice: u8) -> Identity {
        if choice & 0x80 != 0 {
            Identity::from_u32(u32::from(choice & 7))
        } else {
            self.identities[usize::from(choice) % self.identities.len()]
        }
    }

    // ----- one operation ---------------------------------------------------

    fn step(&mut self, input: &mut Bytes8<'_>) {
        let op = input.next();
        let side = usize::from(op >> 7);
        let arg = (op >> 4) & 7;
        self.expire();
        match op & 0x0f {
            2 => {
                for _ in 0..=arg {
                    if let Some(datagram) = self.queues[side].pop_front() {
                        let wire = self.wire(&datagram.bytes);
                        self.record(Step::Drop { to: side, wire });
                    }
                }
            }
            3 => {
                let len = self.queues[side].len();
                if len > 0 {
                    let bytes = self.queues[side][usize::from(arg) % len].bytes.clone();
                    let wire = self.wire(&bytes);
                    self.record(Step::Duplicate { to: side, wire });
                    self.handle(side, 1 - side, bytes);
                }
            }
            4 => {
                let len = self.queues[side].len();
                if len > 0 {
                    self.deliver(side, (usize::from(arg) + 1).min(len - 1));
                }
            }
            5 => self.replay(input.next()),
            6 => self.spoof(side, 2 + usize::from(arg & 1), input),
            7 => {
                let unit = [
                    Duration::from_micros(100),
                    Duration::from_millis(1),
                    Duration::from_millis(10),
                    Duration::from_millis(100),
                ][usize::from(arg & 3)];
                let target = self.clock + unit * u32::from(input.next());
                self.advance_to(target);
            }
            8 => self.send(side, 1 - side, arg, input),
            9 => self.cancel(side, input.next()),
            10 => {
                if arg & 1 != 0 || arg & 3 == 0 {
                    let reading = !self.sides[side].reading;
                    self.sides[side].reading = reading;
                    self.record(Step::Reading { side, reading });
                }
                if arg & 2 != 0 {
                    let endpoint = &mut self.sides[side].endpoint;
                    let paused = !endpoint.is_receive_paused();
                    endpoint.set_receive_paused(paused);
                    self.record(Step::ReceivePaused { side, paused });
                }
            }
            11 => self.send(side, 2 + usize::from(arg & 1), arg & 6, input),
            12 => {
                let about = if arg & 1 == 0 {
                    1 - side
                } else {
                    2 + usize::from((arg >> 1) & 1)
                };
                let (now, address) = (self.now(), self.addresses[about]);
                let failed = self.sides[side].endpoint.peer_unreachable(now, address);
                self.record(Step::Unreachable {
                    side,
                    about,
                    failed,
                });
                self.settle();
            }
            _ => {
                for _ in 0..=arg {
                    if self.queues[side].is_empty() {
                        break;
                    }
                    self.deliver(side, 0);
                }
            }
        }
        // Timers due now run, as an adapter would run them.
        self.advance_to(self.clock);
    }

    /// The network loses what it has held for `datagram_lifetime`.
    fn expire(&mut self) {
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
    fn deliver(&mut self, to: usize, index: usize) {
        let Some(datagram) = self.queues[to].remove(index) else {
            return;
        };
        let wire = self.wire(&datagram.bytes);
        let age = self.clock - datagram.sent;
        self.record(Step::Deliver { to, wire, age });
        self.handle(to, 1 - to, datagram.bytes);
    }

    /// `to` receives `bytes` from the address `from`, then the outputs settle.
    fn handle(&mut self, to: usize, from: usize, bytes: Bytes) {
        let now = self.now();
        let source = self.addresses[from];
        self.sides[to].endpoint.handle_datagram(now, source, bytes);
        self.settle();
    }

    fn replay(&mut self, choice: u8) {
        if self.history.is_empty() {
            return;
        }
        let seen = &self.history[usize::from(choice) % self.history.len()];
        // Only a copy the protocol's promise covers: sent within the lifetime.
        if seen.last_sent + self.config.datagram_lifetime <= self.clock {
            return;
        }
        let (from, to, bytes) = (seen.from, seen.to, seen.bytes.clone());
        let age = self.clock - seen.last_sent;
        let wire = self.wire(&bytes);
        self.record(Step::Replay {
            from,
            to,
            wire,
            age,
        });
        self.handle(to, from, bytes);
    }

    /// A datagram to `to` from the spoofed address `from` (C or D).
    fn spoof(&mut self, to: usize, from: usize, input: &mut Bytes8<'_>) {
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
        let datagram = Bytes::from(datagram);
        if let Ok(Packet::Data { .. }) = self.framing.parse(&datagram) {
            let payload = datagram.slice(self.framing.header_len()..);
            self.injected_payloads.insert((from, to, payload));
        }
        self.injected_raw.insert((from, to, datagram.clone()));
        self.harvest_identity(&datagram);
        let wire = self.wire(&datagram);
        self.record(Step::Spoof { from, to, wire });
        self.handle(to, from, datagram);
    }

    /// `side` sends a new tagged message to the address `to`.
    fn send(&mut self, side: usize, to: usize, options_bits: u8, input: &mut Bytes8<'_>) {
        let max_filler = self
            .config
            .max_payload_size()
            .saturating_sub(TAG_LEN)
            .min(255);
        let filler = usize::from(input.next()) % (max_filler + 1);
        let now = self.now();
        let mut options = SendOptions::default();
        if options_bits != 0 {
            let byte = input.next();
            if options_bits & 1 != 0 {
                let ms = 4 * (1 + u64::from(byte & 0x3f));
                options.deadline = Some(now + Duration::from_millis(ms));
            }
            if options_bits & 2 != 0 {
                options.max_attempts = Some(1 + u32::from(byte >> 6) % self.config.max_attempts);
            }
            options.only_once_validated = options_bits & 4 != 0;
        }
        let seq = self.sides[side].next_seq;
        self.sides[side].next_seq += 1;
        let payload = tagged_payload(side, to, seq, filler);
        let destination = self.addresses[to];
        let result =
            self.sides[side]
                .endpoint
                .send_with(now, destination, payload.clone(), options);
        let id = match result {
            Ok(id) => {
                let state = &mut self.sides[side];
                let given_twice = state.sends.contains_key(&id);
                state.sends.insert(
                    id,
                    SendRecord {
                        seq,
                        to,
                        payload,
                        cancelled: false,
                        outcome: None,
                    },
                );
                state.ids.push(id);
                state.by_seq.insert(seq, id);
                if given_twice {
                    self.fail(format!("{} gave out {id} twice", NAMES[side]));
                }
                Some(id)
            }
            Err(error) => {
                if error.into_payload() != payload {
                    self.fail(format!(
                        "{} refused a send without handing its payload back",
                        NAMES[side]
                    ));
                }
                None
            }
        };
        self.record(Step::Send {
            side,
            to,
            seq,
            id,
            deadline: options
                .deadline
                .map(|deadline| deadline.saturating_duration_since(now)),
            max_attempts: options.max_attempts,
            once_validated: options.only_once_validated,
        });
        self.settle();
    }

    fn cancel(&mut self, side: usize, choice: u8) {
        let state = &mut self.sides[side];
        let index = usize::from(choice) % (state.ids.len() + 1);
        let Some(&id) = state.ids.get(index) else {
            return;
        };
        let accepted = state.endpoint.cancel(id).is_ok();
        let resolved = state.sends.get(&id).is_some_and(|s| s.outcome.is_some());
        if accepted {
            if let Some(record) = state.sends.get_mut(&id) {
                record.cancelled = true;
            }
        }
        self.record(Step::Cancel { side, id, accepted });
        if accepted && resolved {
            self.fail(format!(
                "{}: cancel({id}) accepted after its outcome was polled",
                NAMES[side]
            ));
        }
        self.settle();
    }

    // ----- time ------------------------------------------------------------

    /// The earliest timer of either endpoint, as virtual time.
    fn next_timer(&mut self) -> Option<Duration> {
        let epoch = self.epoch;
        let [a, b] = &mut self.sides;
        let at = match (a.endpoint.poll_timeout(), b.endpoint.poll_timeout()) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        at.map(|at| at.saturating_duration_since(epoch))
    }

    /// Moves the clock to `target`, running every timer on the way at its
    /// instant.
    fn advance_to(&mut self, target: Duration) {
        for _ in 0..MAX_TIMER_RUNS {
            match self.next_timer() {
                Some(at) if at <= target => {
                    self.clock = self.clock.max(at);
                    self.run_timers();
                }
                _ => break,
            }
        }
        self.clock = self.clock.max(target);
        self.run_timers();
    }

    /// Runs the timers due now.
    fn run_timers(&mut self) {
        let now = self.now();
        for side in [A, B] {
            let endpoint = &mut self.sides[side].endpoint;
            if endpoint.poll_timeout().is_some_and(|at| at <= now) {
                endpoint.handle_timeout(now);
                self.record(Step::Timers { side });
            }
        }
        self.settle();
    }

    // ----- outputs and checks ----------------------------------------------

    /// Drains both endpoints' transmits into the network, polls the events
    /// of those whose application reads, and checks the oracle.
    fn settle(&mut self) {
        for side in [A, B] {
            self.pump(side);
        }
        for side in [A, B] {
            if self.sides[side].reading {
                while let Some(event) = self.sides[side].endpoint.poll_event() {
                    self.on_event(side, event);
                }
            }
        }
        self.check_delivered();
        for side in [A, B] {
            let endpoint = &self.sides[side].endpoint;
            if let Some(exceeded) = endpoint.table_sizes().exceeded(&endpoint.config().limits) {
                self.fail(format!("{}: {exceeded}", NAMES[side]));
            }
        }
    }

    fn pump(&mut self, side: usize) {
        let now = self.now();
        let mut buf = std::mem::take(&mut self.buf);
        while let Some(transmit) = self.sides[side]
            .endpoint
            .poll_transmit(now, self.batch, &mut buf)
        {
            let Some(to) = self
                .addresses
                .iter()
                .position(|&address| address == transmit.destination)
            else {
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
                self.on_transmit(side, to, Bytes::copy_from_slice(datagram));
            }
        }
        self.buf = buf;
    }

    fn on_transmit(&mut self, from: usize, to: usize, bytes: Bytes) {
        self.harvest_identity(&bytes);
        let wire = self.wire(&bytes);
        self.record(Step::Transmit { from, to, wire });
        if to == from {
            self.fail(format!("{} sent a datagram to itself", NAMES[from]));
        }
        if to > B {
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
        });
        match self
            .history
            .iter_mut()
            .find(|seen| seen.from == from && seen.to == to && seen.bytes == bytes)
        {
            Some(seen) => seen.last_sent = self.clock,
            None => {
                if self.history.len() == HISTORY_LIMIT {
                    self.history.pop_front();
                }
                self.history.push_back(Seen {
                    from,
                    to,
                    bytes,
                    last_sent: self.clock,
                });
            }
        }
    }

    fn on_event(&mut self, side: usize, event: Event) {
        match event {
            Event::Received { from, payload } => self.on_received(side, from, payload),
            Event::Delivered { id, to, .. } => self.on_outcome(side, id, to, Ok(())),
            Event::Failed { id, to, reason } => self.on_outcome(side, id, to, Err(reason)),
            Event::Foreign { from, payload } => {
                let from = self.address_index(side, from);
                self.record(Step::Foreign { side, from });
                if !self.injected_raw.contains(&(from, side, payload)) {
                    self.fail(format!(
                        "{} handed over a foreign datagram from {} that was never injected there",
                        NAMES[side], NAMES[from]
                    ));
                }
            }
        }
    }

    fn address_index(&self, side: usize, address: SocketAddr) -> usize {
        match self.addresses.iter().position(|&a| a == address) {
            Some(index) => index,
            None => self.fail(format!(
                "{} named {address}, an address no one used",
                NAMES[side]
            )),
        }
    }

    /// Checks one hand-over at `side`: (4) it was sent from there, to here,
    /// intact, and (1) a message from the peer is handed over once.
    fn on_received(&mut self, side: usize, from: SocketAddr, payload: Bytes) {
        let from = self.address_index(side, from);
        let tag = parse_tag(&payload);
        self.record(Step::Received { side, from, tag });
        let peer = 1 - side;
        if from == side {
            self.fail(format!("{} handed over a message from itself", NAMES[side]));
        }
        if from != peer {
            if !self.injected_payloads.contains(&(from, side, payload)) {
                self.fail(format!(
                    "phantom: {} handed over from {} a payload never injected from there to it",
                    NAMES[side], NAMES[from]
                ));
            }
            return;
        }
        let sent = tag.and_then(|(sender, _, seq)| {
            let id = (sender == peer).then(|| self.sides[peer].by_seq.get(&seq))??;
            let record = self.sides[peer].sends.get(id)?;
            (record.to == side && record.payload == payload).then_some(seq)
        });
        let Some(seq) = sent else {
            self.fail(format!(
                "phantom: {} handed over from {} a payload ({} bytes, tag {tag:?}) {} never sent it",
                NAMES[side],
                NAMES[peer],
                payload.len(),
                NAMES[peer]
            ));
        };
        let count = self.sides[side].handed_over.entry(seq).or_insert(0);
        *count += 1;
        let count = *count;
        if count > 1 {
            self.fail(format!(
                "exactly-once violated: {}'s message #{seq} handed over at {} {count} times",
                NAMES[peer], NAMES[side]
            ));
        }
    }

    /// Checks one outcome at `side` (3).
    fn on_outcome(
        &mut self,
        side: usize,
        id: MessageId,
        to: SocketAddr,
        outcome: Result<(), FailureReason>,
    ) {
        let to = self.address_index(side, to);
        let Some(record) = self.sides[side].sends.get_mut(&id) else {
            self.fail(format!(
                "{}: outcome {outcome:?} for {id}, never given out",
                NAMES[side]
            ));
        };
        let previous = record.outcome.replace(outcome);
        let (seq, destination, cancelled) = (record.seq, record.to, record.cancelled);
        self.record(Step::Outcome {
            side,
            id,
            seq,
            outcome,
        });
        if let Some(previous) = previous {
            self.fail(format!(
                "{}: {id} (#{seq}) resolved twice: {previous:?}, then {outcome:?}",
                NAMES[side]
            ));
        }
        if to != destination {
            self.fail(format!(
                "{}: {id} (#{seq}) to {} resolved naming {}",
                NAMES[side], NAMES[destination], NAMES[to]
            ));
        }
        let is_cancelled = outcome == Err(FailureReason::Cancelled);
        if cancelled != is_cancelled {
            self.fail(format!(
                "{}: {id} (#{seq}) resolved {outcome:?}, but cancel accepted: {cancelled}",
                NAMES[side]
            ));
        }
        if outcome.is_ok() && destination == 1 - side {
            self.sides[side].delivered_unchecked.push(seq);
        }
    }

    /// (2) Every message reported Delivered was handed over at its
    /// destination, checked once the destination's events are all read.
    fn check_delivered(&mut self) {
        for side in [A, B] {
            let peer = 1 - side;
            if !self.sides[peer].reading || self.sides[side].delivered_unchecked.is_empty() {
                continue;
            }
            let unchecked = std::mem::take(&mut self.sides[side].delivered_unchecked);
            for seq in unchecked {
                if !self.sides[peer].handed_over.contains_key(&seq) {
                    self.fail(format!(
                        "{}'s message #{seq} reported Delivered, but {} never handed it over",
                        NAMES[side], NAMES[peer]
                    ));
                }
            }
        }
    }

    // ----- the end ---------------------------------------------------------

    /// Lets the network deliver everything, the applications read, and time
    /// run from timer to timer until both endpoints are quiet; then every
    /// send must have resolved.
    fn drain(&mut self) {
        self.record(Step::Drain);
        for side in [A, B] {
            self.sides[side].reading = true;
            self.sides[side].endpoint.set_receive_paused(false);
        }
        self.expire();
        self.settle();
        let mut quiet = false;
        for _ in 0..DRAIN_ROUNDS {
            let mut deliveries = 0;
            while let Some(to) = [A, B].into_iter().find(|&to| !self.queues[to].is_empty()) {
                self.deliver(to, 0);
                deliveries += 1;
                if deliveries > MAX_INSTANT_DELIVERIES {
                    self.fail(format!(
                        "more than {MAX_INSTANT_DELIVERIES} datagrams exchanged without time passing"
                    ));
                }
            }
            match self.next_timer() {
                Some(at) => {
                    self.clock = self.clock.max(at);
                    self.run_timers();
                }
                None => {
                    quiet = true;
                    break;
                }
            }
        }
        self.settle();
        for side in [A, B] {
            let unresolved = self.sides[side]
                .sends
                .iter()
                .find(|(_, record)| record.outcome.is_none())
                .map(|(&id, record)| (id, record.seq, record.to));
            if let Some((id, seq, to)) = unresolved {
                self.fail(format!(
                    "{}: {id} (#{seq}) to {} never resolved ({})",
                    NAMES[side],
                    NAMES[to],
                    if quiet {
                        "both endpoints are quiet"
                    } else {
                        "still busy after the drain's bound"
                    }
                ));
            }
        }
        self.check_delivered();
    }
}
