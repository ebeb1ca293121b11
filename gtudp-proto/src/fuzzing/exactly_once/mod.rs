//! Fuzz target `exactly_once`: two endpoints exchanging tagged messages over
//! a network the input drives (loss, duplication, reordering, replays,
//! spoofed injections, time), checked against the protocol's exactly-once
//! promise. Wired into [`crate::fuzzing`]; see [`exactly_once`].
//!
//! The run is split by concept: the action language (`ops`), the network
//! between the endpoints (`network`), virtual time and the final drain
//! (`time`), the oracle's records and checks (`oracle`), the payload tags
//! (`tag`) and the trace printed on failure (`trace`). The submodules form
//! a tree: each extends [`World`] or is a leaf, and none imports a module
//! that imports it.

mod network;
mod ops;
mod oracle;
mod tag;
mod time;
mod trace;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;

use self::network::{InFlight, Seen};
use self::oracle::Side;
use self::trace::{Step, Wire};
use super::Bytes8;
use crate::wire::{Framing, Identity};
use crate::{Config, Endpoint};

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
///   bits 3–6 the endpoints' seeds, bit 7 the large-message extension
///   (datagrams of 100 bytes, so a message is up to four fragments of 77,
///   with room in the limits for them and a reassembly budget of 600 bytes
///   per peer: messages are delayed for room, and must still arrive whole
///   and once).
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
/// | 0, 1, 13, 14 | deliver the next `x + 1` datagrams in flight to `d` | — |
/// | 2 | drop the next `x + 1` datagrams in flight to `d` | — |
/// | 3 | duplicate: deliver a copy of the `x`-th datagram in flight to `d`, keeping it | — |
/// | 4 | reorder: deliver the `(x + 1)`-th datagram in flight to `d` before those ahead of it | — |
/// | 5 | replay a datagram A and B sent each other, from a bounded history, if sent within `datagram_lifetime` | index |
/// | 6 | spoof: a datagram to `d` from C (`x` even) or D (`x` odd), addresses no endpoint has, or from the address C took over (`x` bit 1, once there is one) | kind (mod 6: DATA, copy of a DATA seen, RECV, ACK, raw bytes, copy of any datagram seen); then for DATA an identity, a length and the payload; for RECV and ACK an identity; for raw bytes a length and the bytes; for copies an index. With the roaming extension, a DATA, RECV or ACK then takes a token byte: bit 7 set, it carries one of the tokens A and B sent the attacker (the byte's index among them), else the token 0 |
/// | 7 | time passes, every timer due on the way runs | step, in units of 100 µs, 1 ms, 10 ms, 100 ms (`x` mod 4) |
/// | 8 | `d` sends a new tagged message to its peer (with `x` ≠ 0, options: bit 0 a deadline, bit 1 fewer attempts, bit 2 `only_once_validated`) | filler length, then an options byte if `x` ≠ 0 |
/// | 9 | `d` cancels one of its messages | index |
/// | 10 | `d`'s application stops or resumes reading events (`x` bit 0, or `x` = 0), or `set_receive_paused` flips (`x` bit 1) | — |
/// | 11 | `d` sends a new tagged message to C (`x` even) or D (`x` odd) | filler length, then an options byte if `x & 6` ≠ 0 |
/// | 12 | `d` is told its peer (`x` even) or C or D (`x` odd; bit 1 chooses) is unreachable: an ICMP report, true or forged (`peer_unreachable`) | — |
/// | 15 | `x` even: `d`'s NAT moves it to a new public port and closes the old one: its datagrams leave from the new port from now on (those in flight keep theirs), datagrams to the old one are lost, and its peer's application sends to the new one. With the roaming extension (an odd endpoint seed: bit 3 of the misc byte), its IP address changes too. `x` odd, with the roaming extension: the attacker takes over the address `d` left in its latest move (a NAT handing the port on to another subscriber), once `d`'s peer has nothing unresolved to `d`, tracks no peer there and has read its events: it is C's from then on, datagrams still in flight from it are lost, and spoofs may come from it | — |
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
/// 1. a message is handed over (`Event::Received`) twice from its sender
///    (from any of its public ports);
/// 2. a message reported `Delivered` was never handed over at its
///    destination (checked whenever the destination's events are all read,
///    and at the end);
/// 3. a send resolves twice, resolves with an id never given out or the
///    wrong destination (with the roaming extension, a send to C may name
///    D and one to D may name C: the attacker may move its token between
///    its addresses), resolves otherwise than `Cancelled` after a
///    successful `cancel` (or `Cancelled` without one), or is still
///    unresolved once both endpoints are quiet at the end;
/// 4. a payload is handed over that its apparent sender never sent there:
///    from A (resp. B) only messages A sent to B (resp. B to A), intact;
///    from C or D only DATA payloads injected from that address to that
///    endpoint (and `Event::Foreign` only for datagrams injected so);
/// 5. a table exceeds its bound after any step
///    ([`TableSizes::exceeded`](crate::TableSizes::exceeded)).
pub fn exactly_once(data: &[u8]) {
    exactly_once_run(data);
}

/// What one run of [`exactly_once`] exercised: for tests whose inputs aim
/// at a scenario, to check that they reach it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExactlyOnceRun {
    /// Whether the endpoints ran the roaming extension.
    pub roaming: bool,
    /// Addresses the attacker took over from A or B (operation 15, `x` odd).
    pub takeovers: usize,
    /// Spoofed DATA, RECV and ACK carrying a token A or B sent the attacker.
    pub learned_token_spoofs: usize,
    /// Messages A and B reported Delivered.
    pub delivered: usize,
}

/// [`exactly_once`], returning what the run exercised.
pub fn exactly_once_run(data: &[u8]) -> ExactlyOnceRun {
    let mut input = Bytes8(data);
    let (setup, timing, misc) = (input.next(), input.next(), input.next());
    let mut world = World::new(setup, timing, misc);
    while !input.is_empty() {
        world.step(&mut input);
    }
    world.drain();
    world.run.roaming = world.framing.roaming();
    world.run.delivered = world
        .sides
        .iter()
        .flat_map(|side| side.sends.values())
        .filter(|record| record.outcome == Some(Ok(())))
        .count();
    world.run
}

/// Index of endpoint A, in addresses and sides.
const A: usize = 0;
/// Index of endpoint B.
const B: usize = 1;
/// Index of the attacker's first address.
const C: usize = 2;

/// Addresses the attacker takes over, at most.
const TAKEN_LIMIT: usize = 8;

/// Steps kept for the panic message.
const TRACE_LIMIT: usize = 512;

/// The two endpoints, the network between them and the oracle's records.
struct World {
    sides: [Side; 2],
    /// A, B, C and D. A's and B's ports are those before any rebinding.
    addresses: [SocketAddr; 4],
    /// A's and B's public ports now (operation 15 moves them).
    ports: [u16; 2],
    /// A's and B's public IP addresses now: `10.n.0.1` and `10.n.0.2`, `n`
    /// counting the moves operation 15 made with the roaming extension.
    ips: [IpAddr; 2],
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
    /// With the roaming extension, the sender tokens A and B wrote into
    /// what they sent the attacker (to C, D or the address C took over):
    /// the tokens it legitimately knows, which its spoofed datagrams may
    /// carry.
    learned_tokens: Vec<u64>,
    /// A's and B's public addresses before their latest move.
    former: [Option<SocketAddr>; 2],
    /// The former addresses of A and B that the attacker took over (a NAT
    /// handing a port on to another subscriber), C's from then on, the
    /// latest last; at most [`TAKEN_LIMIT`].
    taken: Vec<SocketAddr>,
    run: ExactlyOnceRun,
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
        if misc & 0x80 != 0 {
            config.max_datagram_size = 100;
            config.large_messages = Some(
                crate::LargeMessages::default()
                    .with_max_message_size(300)
                    .with_fragment_type(&crate::LargeMessages::fragment_type_for(&config.framing))
                    .with_max_lifetime(Duration::from_secs(5)),
            );
            let limits = &mut config.limits;
            limits.max_outstanding_messages += 8;
            limits.max_queued_per_peer += 4;
            limits.max_awaiting_ack += 8;
            limits.max_awaiting_ack_per_peer += 4;
            limits.max_remembered_bytes += 2_048;
            limits.max_remembered_bytes_per_peer += 1_024;
            limits.max_reassembly_bytes_per_peer = 600;
            limits.max_reassembly_bytes = 900;
        }
        let seed = u128::from((misc >> 3) & 0x0f);
        // Odd seeds roam: the extension lets an endpoint change IP address.
        if seed & 1 == 1 {
            config.framing = config.framing.clone().with_roaming();
        }
        let side = |seed: u128| match Endpoint::new(config.clone(), seed) {
            Ok(endpoint) => Side {
                endpoint,
                sends: BTreeMap::new(),
                ids: Vec::new(),
                by_seq: BTreeMap::new(),
                next_seq: 0,
                handed_over: BTreeMap::new(),
                taken_by_injection: BTreeSet::new(),
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
            ports: [1, 2],
            ips: [IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2])],
            framing: config.framing.clone(),
            config,
            batch: 1 + usize::from(setup >> 6),
            epoch: Instant::now(),
            clock: Duration::ZERO,
            queues: [VecDeque::new(), VecDeque::new()],
            history: VecDeque::new(),
            to_spoofed: VecDeque::new(),
            learned_tokens: Vec::new(),
            former: [None, None],
            taken: Vec::new(),
            run: ExactlyOnceRun::default(),
            identities: vec![Identity::from_u32(1), Identity::from_u32(2)],
            injected_payloads: BTreeSet::new(),
            injected_raw: BTreeSet::new(),
            trace: VecDeque::new(),
            buf: Vec::new(),
        }
    }

    /// The address `index` is reached at now: A's and B's public port of
    /// the moment.
    fn public(&self, index: usize) -> SocketAddr {
        match (self.ports.get(index), self.ips.get(index)) {
            (Some(&port), Some(&ip)) => SocketAddr::new(ip, port),
            _ => self.addresses[index],
        }
    }

    /// Whose address `address` is: each of A, B, C and D has its own IP
    /// addresses, whatever the port (A's and B's: `10.n.0.1` and `10.n.0.2`
    /// for any `n`).
    fn index_of(&self, address: SocketAddr) -> Option<usize> {
        if self.taken.contains(&address) {
            return Some(C);
        }
        if let IpAddr::V4(ip) = address.ip() {
            match ip.octets() {
                [10, _, 0, 1] => return Some(A),
                [10, _, 0, 2] => return Some(B),
                _ => {}
            }
        }
        self.addresses
            .iter()
            .position(|known| known.ip() == address.ip())
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

    /// Summarises `bytes` for the trace.
    fn wire(&self, bytes: &[u8]) -> Wire {
        Wire::of(&self.framing, bytes)
    }
}
