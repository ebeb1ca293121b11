//! Canned runs: a seed and a network profile in, a checked run out.
//!
//! A scenario has three phases. **Chaos**: every endpoint sends a few
//! messages (some with deadlines, attempt limits or later cancelled) over the
//! profile's network, with partitions and hostile traffic if asked. **Heal**:
//! the network turns clean, hostile traffic stops and whatever it left in the
//! endpoints' tables expires; then every endpoint sends again, and these
//! messages must all be Delivered. **Close**: once every send has resolved,
//! every endpoint closes and drains, and every table must be empty.
//!
//! Some applications may be [`SlowReader`]s throughout: during the chaos
//! phase with stalls of any length; from the heal on with stalls short
//! enough (and reading stretches long enough) that a sender's attempts
//! cannot all fall within stalls, so that what is sent after the heal must
//! still be Delivered. They read everything before the close.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use super::hostile::HostileProfile;
use super::large::LargeProfile;
use super::nat::NatProfile;
use super::network::{LinkProfile, NetworkStats, Partition};
use super::reader::SlowReader;
use super::rng::Rng;
use super::trace::Trace;
use super::violation::{Counts, Violation, ViolationKind};
use super::world::World;
use crate::config::{Config, Limits, SendOptions};
use crate::event::MessageId;
use crate::stats::EndpointStats;
use crate::wire::Framing;

/// The network conditions of a scenario's chaos phase; `None` fields are
/// drawn at random from the seed.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Knobs {
    /// Loss probability of every link.
    pub loss: Option<f64>,
    /// Duplication probability.
    pub duplicate: Option<f64>,
    /// Reordering probability.
    pub reorder: Option<f64>,
    /// Whether partitions start and heal during the chaos phase.
    pub partitions: Option<bool>,
    /// Whether hostile traffic is injected.
    pub hostile: Option<bool>,
    /// Corruption probability of every link (see [`LinkProfile::corrupt`]).
    pub corrupt: Option<f64>,
    /// Whether some applications read their events late (see
    /// [`SlowReader`]).
    pub slow_readers: Option<bool>,
    /// Whether a DATA flood from thousands of spoofed addresses runs while
    /// the endpoints exchange messages they all must deliver (see
    /// [`Profile::Flood`]). Unlike the other knobs, `None` means off: a
    /// flood run asserts that every send is Delivered, which loss,
    /// partitions or slow readers would break.
    pub flood: Option<bool>,
    /// Whether endpoint 0 sits behind a NAT that moves it to a new public
    /// port every 100 to 1,500 ms during the chaos phase (see
    /// [`Profile::Nat`]).
    pub nat: Option<bool>,
    /// Whether the endpoints enable the large-message extension and send
    /// messages of many fragments (see [`Profile::Large`]). Never with
    /// corruption (gtUDP has no checksum: a corrupted fragment spoils its
    /// whole message, which the checker could not tell from a phantom) or
    /// a flood.
    pub large: Option<bool>,
    /// Whether every endpoint turns the roaming extension on (see
    /// [`Profile::Roam`]); with a NAT, each of its rebindings then also
    /// changes endpoint 0's IP address.
    pub roam: Option<bool>,
}

/// The named network profiles of the test matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Profile {
    /// No loss, duplication, reordering, partition or hostile traffic.
    Clean,
    /// 10% loss, with slow readers.
    Loss10,
    /// 30% loss.
    Loss30,
    /// 50% loss.
    Loss50,
    /// 20% duplication.
    Duplication,
    /// 30% reordering, with slow readers.
    Reordering,
    /// Partitions that start and heal.
    Partitions,
    /// Hostile traffic: junk, forged RECV/ACK, a DATA flood; with slow
    /// readers, whose unread events the flood fills.
    Hostile,
    /// 10% of datagrams corrupted (bit flips and truncation), with slow
    /// readers. gtUDP has no checksum: corrupted DATA that still parses is
    /// handed over as a message its peer never sent (counted as injected,
    /// not as phantoms or duplicates), and a corrupted RECV may confirm a
    /// message that never arrived. See [`World`] for exactly what is still
    /// asserted, and why.
    Corrupt,
    /// A DATA flood from 1,000 to 5,000 spoofed addresses (far more than
    /// the peer table holds), starting just before or during the exchange,
    /// on clean links. Every message must be Delivered, none may fail (no
    /// deadlines, attempt limits or cancels are drawn), and
    /// [`Outcome::longest_delivery`] is compared with the same scenario
    /// without the flood ([`Scenario::without_hostile`]).
    Flood,
    /// Endpoint 0 behind a NAT that gives it a new public port every 100
    /// to 1,500 ms and closes the old one, with 10% loss: its peers see
    /// its retransmissions arrive from addresses they never saw. Nothing may
    /// be handed over twice. (It sends; the others do not send to it, as
    /// nothing can reach a NATed address before it has sent.)
    Nat,
    /// The large-message extension at every endpoint, with datagrams of 120
    /// to 600 bytes, half the messages 4 to 24 fragments long, tight
    /// reassembly budgets and 10% loss: each message is handed over whole
    /// and once, and a full budget delays messages but never loses one.
    Large,
    /// The roaming extension at every endpoint, with endpoint 0 behind a
    /// NAT whose every rebinding gives it a new IP address and port (a
    /// phone moving between networks), and 10% loss: its peers recognise
    /// its retransmissions by its token from wherever they come. Nothing
    /// may be handed over twice.
    Roam,
}

impl Profile {
    /// Every profile.
    pub const ALL: [Profile; 13] = [
        Profile::Clean,
        Profile::Loss10,
        Profile::Loss30,
        Profile::Loss50,
        Profile::Duplication,
        Profile::Reordering,
        Profile::Partitions,
        Profile::Hostile,
        Profile::Corrupt,
        Profile::Flood,
        Profile::Nat,
        Profile::Large,
        Profile::Roam,
    ];

    /// The profile's conditions: what it names is set, everything else off.
    pub fn knobs(self) -> Knobs {
        let mut knobs = Knobs {
            loss: Some(0.0),
            duplicate: Some(0.0),
            reorder: Some(0.0),
            partitions: Some(false),
            hostile: Some(false),
            corrupt: Some(0.0),
            slow_readers: Some(false),
            flood: Some(false),
            nat: Some(false),
            large: Some(false),
            roam: Some(false),
        };
        match self {
            Profile::Clean => {}
            Profile::Loss10 => {
                knobs.loss = Some(0.1);
                knobs.slow_readers = Some(true);
            }
            Profile::Loss30 => knobs.loss = Some(0.3),
            Profile::Loss50 => knobs.loss = Some(0.5),
            Profile::Duplication => knobs.duplicate = Some(0.2),
            Profile::Reordering => {
                knobs.reorder = Some(0.3);
                knobs.slow_readers = Some(true);
            }
            Profile::Partitions => knobs.partitions = Some(true),
            Profile::Hostile => {
                knobs.hostile = Some(true);
                knobs.slow_readers = Some(true);
            }
            Profile::Corrupt => {
                knobs.corrupt = Some(0.1);
                knobs.slow_readers = Some(true);
            }
            Profile::Flood => knobs.flood = Some(true),
            Profile::Nat => {
                knobs.nat = Some(true);
                knobs.loss = Some(0.1);
            }
            Profile::Large => {
                knobs.large = Some(true);
                knobs.loss = Some(0.1);
            }
            Profile::Roam => {
                knobs.roam = Some(true);
                knobs.nat = Some(true);
                knobs.loss = Some(0.1);
            }
        }
        knobs
    }
}

/// One run: endpoints, their configuration, the network and what is sent,
/// all drawn from a seed.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The seed everything is drawn from.
    pub seed: u64,
    /// Endpoint configuration (shared by all).
    pub config: Config,
    /// Number of endpoints.
    pub nodes: usize,
    /// Messages each endpoint sends during the chaos phase.
    pub messages: usize,
    /// Messages each endpoint sends after the network heals.
    pub after_heal: usize,
    /// Length of the chaos phase.
    pub chaos: Duration,
    /// The links during the chaos phase.
    pub link: LinkProfile,
    /// A few links with their own profile during the chaos phase.
    pub odd_links: Vec<(usize, usize, LinkProfile)>,
    /// Partitions during the chaos phase.
    pub partitions: Vec<Partition>,
    /// Hostile traffic during the chaos phase.
    pub hostile: HostileProfile,
    /// Datagrams per `poll_transmit`.
    pub max_datagrams: usize,
    /// Applications that read their events late during the chaos phase
    /// (gentler from the heal on: see [`Scenario::healed_reader`]).
    pub slow_readers: Vec<(usize, SlowReader)>,
    /// Whether late copies of DATA are replayed just inside their datagram
    /// lifetime (see [`World::set_late_replays`]); drawn for half the seeds.
    pub late_replays: bool,
    /// Whether this is a flood scenario (see [`Profile::Flood`]): every
    /// send must be Delivered, from the first.
    pub flood: bool,
    /// The NAT in front of endpoint 0, if any (see [`Profile::Nat`]); it
    /// settles (keeps its port) when the network heals.
    pub nat: Option<NatProfile>,
    /// Large messages, if drawn (see [`Profile::Large`]).
    pub large: Option<LargeProfile>,
    /// Datagrams and events the outcome's trace keeps (the last ones);
    /// default 64. Raise it to follow a failing seed from its start.
    pub trace_capacity: usize,
}

/// What a run found.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The scenario's seed.
    pub seed: u64,
    /// Totals.
    pub counts: Counts,
    /// Broken guarantees (the first few).
    pub violations: Vec<Violation>,
    /// The last datagrams and events.
    pub trace: Trace,
    /// One line describing the scenario.
    pub summary: String,
    /// What the network did.
    pub network: NetworkStats,
    /// Each endpoint's counters at the end.
    pub endpoints: Vec<EndpointStats>,
    /// The longest send-to-Delivered time among the sends that had to be
    /// delivered (see [`World::longest_delivery`]).
    pub longest_delivery: Duration,
}

impl Outcome {
    /// Whether every guarantee held.
    pub fn passed(&self) -> bool {
        self.counts.violations == 0
    }

    /// The seed, the scenario, what broke and the trace, for a failure
    /// message (or, for a seed that passed, to see how it ran).
    pub fn report(&self) -> String {
        let verdict = match self.passed() {
            true => "passed",
            false => "FAILED",
        };
        let mut report = format!(
            "simulation seed {} {verdict} ({} violations, slowest delivery {:?})\n  scenario: {}\n",
            self.seed, self.counts.violations, self.longest_delivery, self.summary
        );
        for violation in &self.violations {
            let at = violation.at;
            report.push_str(&format!(
                "  at {}.{:06}s: {}\n",
                at.as_secs(),
                at.subsec_micros(),
                violation.what
            ));
        }
        report.push_str("  last datagrams and events:\n");
        report.push_str(&self.trace.to_string());
        report
    }
}

/// The address of scenario endpoint `index`.
pub fn node_address(index: usize) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, index as u8 + 1], 4000 + index as u16))
}

impl Scenario {
    /// The scenario of `seed` under `knobs`.
    pub fn generate(seed: u64, knobs: Knobs) -> Self {
        let mut rng = Rng::new(seed);
        // Later additions draw from their own stream, so that the scenarios
        // drawn before they existed stay the same.
        let mut extra = Rng::new(seed ^ 0xc0aa_5107_0000_0000);
        let mut config = small_config(&mut rng);
        let nodes = rng.range(2, 4) as usize;
        let messages = rng.range(2, 5) as usize;
        let after_heal = rng.range(1, 2) as usize;
        let chaos = Duration::from_millis(rng.range(1_000, 2_500));

        let loss = knobs
            .loss
            .unwrap_or_else(|| *rng.pick(&[0.0, 0.0, 0.05, 0.1, 0.3, 0.5]).unwrap_or(&0.0));
        let duplicate = knobs
            .duplicate
            .unwrap_or_else(|| *rng.pick(&[0.0, 0.0, 0.05, 0.2]).unwrap_or(&0.0));
        let reorder = knobs
            .reorder
            .unwrap_or_else(|| *rng.pick(&[0.0, 0.0, 0.1, 0.3]).unwrap_or(&0.0));
        let mut link = LinkProfile {
            loss,
            duplicate,
            reorder,
            delay: Duration::from_millis(rng.range(1, 20)),
            jitter: Duration::from_millis(rng.range(0, 10)),
            reorder_delay: Duration::from_millis(rng.range(20, 60)),
            rate: rng.chance(0.2).then(|| rng.range(20_000, 200_000)),
            queue_limit: Duration::from_millis(50),
            bottleneck: None,
            loss_after_queue: false,
            wire_overhead: 0,
            corrupt: knobs
                .corrupt
                .unwrap_or_else(|| *extra.pick(&[0.0, 0.0, 0.0, 0.0, 0.02, 0.1]).unwrap_or(&0.0)),
            ip_fragment_mtu: None,
            mtu: None,
        };
        // Some links worse than the rest (asymmetric paths).
        let mut odd_links = Vec::new();
        if loss > 0.0 && rng.chance(0.3) {
            let from = rng.below(nodes as u64) as usize;
            let to = (from + 1 + rng.below(nodes as u64 - 1) as usize) % nodes;
            let mut odd = link.clone();
            odd.loss = (loss * 1.5).min(0.6);
            odd_links.push((from, to, odd));
        }

        let mut partitions = Vec::new();
        if knobs.partitions.unwrap_or_else(|| rng.chance(0.3)) {
            for _ in 0..rng.range(1, 2) {
                let start = rng.duration(chaos * 3 / 4);
                let length = Duration::from_millis(rng.range(100, 1_500));
                let mut side: Vec<SocketAddr> = (0..nodes)
                    .filter(|_| rng.chance(0.5))
                    .map(node_address)
                    .collect();
                if side.is_empty() || side.len() == nodes {
                    side = vec![node_address(rng.below(nodes as u64) as usize)];
                }
                partitions.push(Partition {
                    start,
                    end: (start + length).min(chaos),
                    side,
                });
            }
        }

        let hostile = if knobs.hostile.unwrap_or_else(|| rng.chance(0.3)) {
            HostileProfile {
                start: Duration::ZERO,
                end: chaos,
                junk_interval: Some(Duration::from_millis(rng.range(3, 12))),
                flood_sources: rng.range(4, 12) as usize,
                flood_interval: Some(Duration::from_millis(rng.range(3, 12))),
            }
        } else {
            HostileProfile::none()
        };
        let max_datagrams = *rng.pick(&[1, 1, 4]).unwrap_or(&1);

        let mut slow_readers = Vec::new();
        if knobs.slow_readers.unwrap_or_else(|| extra.chance(0.3)) {
            if extra.chance(0.5) {
                // Fills at the first stall.
                config.limits.max_unread = extra.range(1, 3) as usize;
            }
            for node in 0..nodes {
                if extra.chance(0.6) {
                    slow_readers.push((node, slow_reader(&mut extra)));
                }
            }
            if slow_readers.is_empty() {
                let node = extra.below(nodes as u64) as usize;
                slow_readers.push((node, slow_reader(&mut extra)));
            }
        }

        // Drawn from its own stream, so the rest of a seed's run is as before.
        let late_replays = Rng::new(seed ^ 0x1a7e_7e91).chance(0.5);
        let mut flood_rng = Rng::new(seed ^ 0xf100_d5ee_d000);
        let flood = knobs.flood.unwrap_or(false);
        if flood {
            // Room for the honest peers' histories beside the flood;
            // everything else keeps its small, drawn bound. (The flood's
            // DATA is only held, within `max_held_bytes_unvalidated`.)
            config.limits.max_remembered_bytes = 16 << 20;
            config.limits.max_held_bytes_unvalidated = 4 << 20;
        }
        // Drawn from its own stream, so the rest of a seed's run is as before.
        let mut nat_rng = Rng::new(seed ^ 0x0a7_5eed_0000_4a70);
        let nat = (knobs.nat.unwrap_or_else(|| nat_rng.chance(0.25)) && !flood).then(|| {
            let every = Duration::from_millis(nat_rng.range(100, 1_500));
            NatProfile::drawn(&mut nat_rng, IpAddr::from([198, 51, 100, 1]), every)
        });
        // Its own stream too: a quarter of the mixed seeds roam, and a
        // roaming endpoint behind a NAT changes its IP address with each
        // rebinding.
        let mut roam_rng = Rng::new(seed ^ 0x70a3_5eed_0000_0025);
        let roam = knobs.roam.unwrap_or_else(|| roam_rng.chance(0.25));
        let nat = nat.map(|nat| NatProfile {
            changes_ip: roam,
            ..nat
        });
        if roam {
            config.framing = config.framing.clone().with_roaming();
        }
        // Its own stream too; never with corruption or a flood.
        let mut large_rng = Rng::new(seed ^ 0x1a59_e000_f7a6_0000);
        let large = (knobs.large.unwrap_or_else(|| large_rng.chance(0.25))
            && !flood
            && link.corrupt == 0.0)
            .then(|| LargeProfile::drawn(&mut large_rng, &mut config));
        // Half of those links drop datagrams above an MTU between the base
        // of path MTU discovery and the datagram size, for it to find (the
        // worse links, if any, have none: the paths are asymmetric).
        if let Some(base) = config
            .large_messages
            .as_ref()
            .filter(|_| large.is_some() && large_rng.chance(0.5))
            .map(|large| large.pmtud_base)
        {
            let max = config.max_datagram_size;
            link.mtu = Some(base + large_rng.below((max - base).max(1) as u64) as usize);
        }
        let hostile = if flood {
            // Just before the first send, or during the exchange.
            let start = Duration::from_millis(flood_rng.range(0, 400));
            HostileProfile {
                start,
                end: start + chaos,
                junk_interval: None,
                flood_sources: flood_rng.range(1_000, 5_000) as usize,
                flood_interval: Some(Duration::from_micros(flood_rng.range(50, 400))),
            }
        } else {
            hostile
        };
        Self {
            flood,
            nat,
            large,
            trace_capacity: 64,
            late_replays,
            seed,
            config,
            nodes,
            messages,
            after_heal,
            chaos,
            link,
            odd_links,
            partitions,
            hostile,
            max_datagrams,
            slow_readers,
        }
    }

    /// What a slow reader becomes from the heal on: stalls of at most a third
    /// of the shortest time a sender can spend on a message's attempts, and
    /// reading stretches of at least twice `max_rto`, the longest gap between
    /// two attempts. A message's attempts then always reach a reading
    /// stretch, where its DATA is taken, so what is sent after the heal must
    /// be Delivered.
    pub fn healed_reader(&self, reader: SlowReader) -> SlowReader {
        let config = &self.config;
        // The shortest RTO doubles from `min_rto` up to `max_rto`.
        let mut span = Duration::ZERO;
        let mut rto = config.min_rto;
        for _ in 1..config.max_attempts {
            span += rto.min(config.max_rto);
            rto = rto.saturating_mul(2);
        }
        // A large message must complete within its lifetime, which may be
        // far shorter than a small one's retry span: a stall may take a
        // quarter of it.
        let lifetime = config
            .large_messages
            .as_ref()
            .map_or(Duration::MAX, |large| large.max_lifetime / 4);
        SlowReader {
            min_reading: config.max_rto * 2,
            max_reading: config.max_rto * 4,
            max_stall: (span / 3).min(reader.max_stall).min(lifetime),
            pause: reader.pause,
        }
    }

    /// The same scenario with no hostile traffic: the unloaded run a flood
    /// scenario's latency is compared with.
    pub fn without_hostile(&self) -> Self {
        Self {
            hostile: HostileProfile::none(),
            ..self.clone()
        }
    }

    /// One line describing the scenario.
    pub fn summary(&self) -> String {
        let link = &self.link;
        format!(
            "{} nodes x ({} + {}) msgs, chaos {:?}: loss {} dup {} reorder {} corrupt {} delay {:?}+{:?} \
             rate {:?}, {} odd links, {} partitions, hostile {}, framing header {}B, foreign {}, \
             max_unread {}, slow readers {:?}, late replays {}, nat {}, large {}, roaming {}",
            self.nodes,
            self.messages,
            self.after_heal,
            self.chaos,
            link.loss,
            link.duplicate,
            link.reorder,
            link.corrupt,
            link.delay,
            link.jitter,
            link.rate,
            self.odd_links.len(),
            self.partitions.len(),
            match self.flood {
                true => format!("flood from {} addresses", self.hostile.flood_sources),
                false => self.hostile.is_active().to_string(),
            },
            self.config.framing.header_len(),
            self.config.deliver_foreign,
            self.config.limits.max_unread,
            self.slow_readers
                .iter()
                .map(|(node, reader)| (*node, reader.max_stall, reader.pause))
                .collect::<Vec<_>>(),
            self.late_replays,
            match &self.nat {
                Some(nat) => format!(
                    "rebinding every {:?}{}",
                    nat.rebind_every,
                    if nat.changes_ip { ", new IP address each time" } else { "" }
                ),
                None => "none".to_string(),
            },
            match &self.large {
                Some(large) => format!(
                    "up to {} B in fragments of {} B, path MTU {:?}",
                    large.max_message, large.unit, link.mtu
                ),
                None => "none".to_string(),
            },
            self.config.framing.roaming(),
        )
    }

    /// Runs the scenario and checks every guarantee; a panic inside the
    /// endpoints is caught and reported as a violation.
    pub fn run(&self) -> Outcome {
        let mut world = World::new(self.seed, self.link.clone());
        world.set_trace_capacity(self.trace_capacity);
        let result = catch_unwind(AssertUnwindSafe(|| self.drive(&mut world)));
        let closed = match result {
            Ok(closed) => closed,
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                world.report_violation(ViolationKind::Panic, format!("panic: {message}"));
                false
            }
        };
        let counts = world.finish(closed);
        Outcome {
            seed: self.seed,
            counts,
            violations: world.violations().to_vec(),
            trace: world.trace().clone(),
            summary: self.summary(),
            network: world.network().stats(),
            endpoints: (0..world.len())
                .map(|i| world.endpoint(i).stats())
                .collect(),
            longest_delivery: world.longest_delivery(),
        }
    }

    /// Drives the three phases; returns whether the close phase ran.
    fn drive(&self, world: &mut World) -> bool {
        let mut rng = Rng::new(self.seed ^ 0x5ce7_a810);
        for index in 0..self.nodes {
            if world
                .add_endpoint(node_address(index), self.config.clone())
                .is_err()
            {
                world.report_violation(
                    ViolationKind::Other,
                    "scenario configuration refused".to_string(),
                );
                return false;
            }
        }
        world.set_max_datagrams(self.max_datagrams);
        world.set_late_replays(self.late_replays);
        for &(from, to, ref profile) in &self.odd_links {
            world
                .network_mut()
                .set_link(node_address(from), node_address(to), profile.clone());
        }
        for partition in &self.partitions {
            world.network_mut().add_partition(partition.clone());
        }
        if self.hostile.is_active() {
            world.set_hostile(self.hostile.clone());
        }
        for &(node, reader) in &self.slow_readers {
            world.set_slow_reader(node, Some(reader));
        }
        world.set_nat(0, self.nat.clone());

        // Chaos.
        world.phase("chaos");
        // Under a flood, every message must get through.
        world.set_must_deliver(self.flood);
        let mut plan = Plan::default();
        let mut sizes = Rng::new(self.large.as_ref().map_or(0, |large| large.sizes_seed));
        for node in 0..self.nodes {
            for _ in 0..self.messages {
                let at = rng.duration(self.chaos);
                let Some(to) = self.other_node(&mut rng, node) else {
                    continue;
                };
                let relative_deadline = rng
                    .chance(0.25)
                    .then(|| Duration::from_millis(rng.range(50, 2_000)))
                    .filter(|_| !self.flood);
                let max_attempts = rng
                    .chance(0.2)
                    .then(|| rng.range(1, u64::from(self.config.max_attempts)) as u32)
                    .filter(|_| !self.flood);
                let cancel_after = rng
                    .chance(0.1)
                    .then(|| Duration::from_millis(rng.range(1, 1_000)))
                    .filter(|_| !self.flood);
                let extra = self.message_extra(&mut sizes, rng.below(48) as usize);
                plan.push(
                    at,
                    Action::Send {
                        node,
                        to,
                        extra,
                        relative_deadline,
                        max_attempts,
                        cancel_after,
                        tries: 0,
                    },
                );
            }
        }
        plan.run(world, self.chaos, &mut rng);

        // Heal: clean links, no hostile traffic, and time for what the
        // hostile traffic left behind to expire.
        world.phase("heal");
        world
            .network_mut()
            .set_default_profile(LinkProfile::clean());
        world.network_mut().clear_links();
        for &(node, reader) in &self.slow_readers {
            world.set_slow_reader(node, Some(self.healed_reader(reader)));
        }
        world.settle_nats();
        let mut settle = self.link.max_transit(self.config.max_datagram_size) * 2;
        if self.hostile.is_active() {
            settle += self.config.remember_window
                + self.config.peer_idle_timeout
                + Duration::from_secs(1);
        }
        // The memories of received identities are small here (a kilobyte
        // or more per peer): one the chaos filled refuses new DATA from its
        // peer, rightly, until what it holds expires, and a message sent
        // before then may run out of attempts (Failed, with its reason: the
        // rule for a full table). So what must be delivered is sent once
        // the chaos's identities are forgotten: a RECV exchange ends at
        // most a retry span after the chaos, and its identity is kept for
        // at most 5/4 of its retention.
        let forgotten = self.config.max_retry_span()
            + (self
                .config
                .remember_window
                .max(self.config.datagram_lifetime))
                * 5
                / 4;
        settle = settle.max(forgotten);
        if let Some(large) = &self.config.large_messages {
            // An incomplete large message whose sender gave up (cancelled,
            // or failed during the chaos) keeps its receiver's reassembly
            // room for the lifetime it announced: the receiver cannot tell
            // it from one still coming. Until then, new large messages
            // past the budget are rightly refused. The receiver counts
            // that lifetime from the fragment's arrival, which may come as
            // late as the sender's deadline, or a datagram lifetime later
            // still (a late replay).
            settle += large.max_lifetime * 2 + self.config.datagram_lifetime;
        }
        let healed = world.elapsed() + settle;
        plan.run(world, healed, &mut rng);
        world.set_must_deliver(true);
        world.phase("after heal");
        for node in 0..self.nodes {
            for _ in 0..self.after_heal {
                let at = healed + rng.duration(Duration::from_millis(200));
                let Some(to) = self.other_node(&mut rng, node) else {
                    continue;
                };
                let extra = self.message_extra(&mut sizes, rng.below(48) as usize);
                plan.push(
                    at,
                    Action::Send {
                        node,
                        to,
                        extra,
                        relative_deadline: None,
                        max_attempts: None,
                        cancel_after: None,
                        tries: 0,
                    },
                );
            }
        }
        // Long enough for a message queued behind a full window of retrying
        // ones to run out its own attempts.
        let span = self.config.max_retry_span();
        let limit = healed
            + span * (self.config.limits.max_queued_per_peer as u32 + 2)
            + Duration::from_secs(1);
        let mut at = healed;
        while at < limit {
            at += Duration::from_millis(250);
            plan.run(world, at, &mut rng);
            if plan.is_empty() && world.all_resolved() {
                break;
            }
        }

        // Close.
        world.phase("close");
        for &(node, _) in &self.slow_readers {
            world.set_slow_reader(node, None);
        }
        for node in 0..self.nodes {
            world.close(node);
        }
        let limit = world.elapsed() + self.config.drain_timeout + Duration::from_secs(1);
        while world.elapsed() < limit && !world.all_closed() {
            let next = world.elapsed() + Duration::from_millis(100);
            world.run_until(next);
        }
        true
    }

    /// The bytes after the tag of a message whose small draw was `small`:
    /// with large messages, half are larger than one datagram.
    fn message_extra(&self, sizes: &mut Rng, small: usize) -> usize {
        match &self.large {
            Some(large) => large.extra(sizes, small),
            None => small,
        }
    }

    /// A destination for `node`'s next message: another endpoint, drawn.
    /// Endpoint 0 behind a NAT cannot be reached before it sends: a draw
    /// that names it moves on to endpoint 1 (none if that is `node`).
    fn other_node(&self, rng: &mut Rng, node: usize) -> Option<SocketAddr> {
        let offset = 1 + rng.below(self.nodes as u64 - 1) as usize;
        let mut to = (node + offset) % self.nodes;
        if self.nat.is_some() && to == 0 {
            to = 1;
        }
        (to != node).then(|| node_address(to))
    }
}

#[derive(Clone, Copy, Debug)]
enum Action {
    Send {
        node: usize,
        to: SocketAddr,
        extra: usize,
        /// Deadline as an offset from the send.
        relative_deadline: Option<Duration>,
        max_attempts: Option<u32>,
        cancel_after: Option<Duration>,
        tries: u32,
    },
    Cancel {
        node: usize,
        id: MessageId,
    },
}

/// Application calls, by virtual time.
#[derive(Default)]
struct Plan {
    actions: BTreeMap<(Duration, u64), Action>,
    next: u64,
}

impl Plan {
    fn push(&mut self, at: Duration, action: Action) {
        self.actions.insert((at, self.next), action);
        self.next += 1;
    }

    fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// Performs every action due by `until`, running the world between them.
    fn run(&mut self, world: &mut World, until: Duration, rng: &mut Rng) {
        while let Some((&key, _)) = self.actions.iter().next().filter(|(key, _)| key.0 <= until) {
            world.run_until(key.0);
            let Some(action) = self.actions.remove(&key) else {
                break;
            };
            self.perform(world, action, rng);
        }
        world.run_until(until);
    }

    fn perform(&mut self, world: &mut World, action: Action, rng: &mut Rng) {
        let now = world.elapsed();
        match action {
            Action::Send {
                node,
                to,
                extra,
                relative_deadline,
                max_attempts,
                cancel_after,
                tries,
            } => {
                let options = SendOptions {
                    deadline: relative_deadline.map(|after| world.clock().at(now + after)),
                    max_attempts,
                    // One send in five waits for its destination to be
                    // validated (no new draw, so seeds keep their runs).
                    only_once_validated: extra % 5 == 0,
                };
                match world.send(node, to, extra, options) {
                    Ok(id) => {
                        if let Some(after) = cancel_after {
                            self.push(now + after, Action::Cancel { node, id });
                        }
                    }
                    Err(error) if error.is_retryable() && tries < 200 => {
                        // An application backs off and tries again.
                        let retry = now + Duration::from_millis(rng.range(20, 100));
                        self.push(
                            retry,
                            Action::Send {
                                node,
                                to,
                                extra,
                                relative_deadline,
                                max_attempts,
                                cancel_after,
                                tries: tries + 1,
                            },
                        );
                    }
                    Err(_) => {}
                }
            }
            Action::Cancel { node, id } => {
                // It may have resolved already: an error is fine.
                let _ = world.cancel(node, id);
            }
        }
    }
}

/// A slow reader for the chaos phase: stalls of any length, receiving
/// paused never, sometimes or always.
fn slow_reader(rng: &mut Rng) -> SlowReader {
    SlowReader {
        min_reading: Duration::from_millis(10),
        max_reading: Duration::from_millis(rng.range(50, 500)),
        max_stall: Duration::from_millis(rng.range(100, 1_500)),
        pause: *rng.pick(&[0.0, 0.5, 1.0]).unwrap_or(&0.0),
    }
}

/// Short timers and small limits, so that runs are quick and bounds are
/// reached.
fn small_config(rng: &mut Rng) -> Config {
    let mut config = Config::default();
    config.framing = match rng.below(4) {
        0 => Framing::with_magic(b"GT"),
        1 => Framing::new(b"gtu", b"D!", b"R!", b"A!").unwrap_or_default(),
        _ => Framing::default(),
    };
    config.initial_rto = Duration::from_millis(100);
    config.min_rto = Duration::from_millis(10);
    config.max_rto = Duration::from_millis(rng.range(200, 400));
    config.max_attempts = rng.range(6, 10) as u32;
    config.recv_max_attempts = rng.range(4, 10) as u32;
    config.remember_window = config.max_retry_span() + Duration::from_millis(500);
    config.datagram_lifetime = Duration::from_secs(1);
    config.initial_window = rng.range(1, 4) as u32;
    config.max_window = rng.range(4, 16) as u32;
    config.peer_idle_timeout = Duration::from_secs(1);
    config.drain_timeout = Duration::from_secs(3);
    config.deliver_foreign = rng.chance(0.5);
    config.limits = Limits {
        max_peers: rng.range(8, 24) as usize,
        max_unvalidated_peers: rng.range(2, 8) as usize,
        max_outstanding_messages: rng.range(4, 16) as usize,
        max_queued_per_peer: rng.range(2, 8) as usize,
        max_awaiting_ack: rng.range(16, 64) as usize,
        max_awaiting_ack_per_peer: rng.range(8, 24) as usize,
        max_remembered_bytes: rng.range(2_048, 65_536) as usize,
        max_remembered_bytes_per_peer: rng.range(1_024, 32_768) as usize,
        max_held_per_unvalidated_peer: rng.range(2, 8) as usize,
        // Two draws, so every seed draws the scenario it drew before these
        // bounds replaced the unvalidated histories' three.
        max_held_bytes_unvalidated: (rng.range(512, 4_096) + rng.range(1_024, 16_384)) as usize,
        max_unread: rng.range(4, 16) as usize,
        max_pending_control: rng.range(4, 16) as usize,
        max_pending_raw: 4,
        // Not drawn, so every seed draws the scenario it drew before the
        // large-message extension (which sets its own when a seed has it).
        max_reassembly_bytes: 64 << 10,
        max_reassembly_bytes_per_peer: 32 << 10,
    };
    config
}
