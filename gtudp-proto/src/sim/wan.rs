//! A WAN cell on virtual time: saturating flows sharing one bottleneck.
//!
//! A [`WanCell`] runs [`WanFlow`]s, each a sender [`Endpoint`] streaming
//! fixed-size messages to a receiver of its own and always keeping a backlog
//! queued, so the application never limits it. Every sender's DATA and ACK
//! cross one shared bottleneck (a rate in Mbit/s and a tail-drop queue
//! measured in time); RECV comes back on an unlimited path. Each direction
//! of a flow adds half of that flow's propagation RTT, plus up to the cell's
//! jitter (uniform, so jitter also reorders), and loses each datagram with
//! the cell's loss probability on the wire after the bottleneck (a lost DATA
//! has used its share of the link). Flows may differ in controller and RTT,
//! to measure how they share the link.
//!
//! [`WanCell::run`] returns a [`WanReport`]: utilization, drops at the
//! bottleneck, retransmissions, delay percentiles and fairness, for the cell
//! and per flow, and optionally [`WanSample`]s over time. A [`WanTarget`]
//! checks a report against goals; [`matrix`] is the set of cells the WAN
//! goals are set for. The same cell always gives the same report.
//!
//! ```
//! use std::time::Duration;
//! use gtudp_proto::sim::WanCell;
//!
//! let mut cell = WanCell::new(Duration::from_millis(20), 10.0);
//! cell.duration = Duration::from_secs(1);
//! let report = cell.run()?;
//! assert!(report.utilization > 0.5, "{report}");
//! # Ok::<(), gtudp_proto::sim::WanError>(())
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use super::network::{Clock, Fate, LinkProfile, Network};
use crate::{Config, ConfigError, CongestionAlgorithm, Endpoint, Event};

/// Messages each sender keeps waiting beyond what is in flight, so the
/// application never limits the flow.
const BACKLOG: usize = 512;

/// Bytes of IPv4 and UDP headers the bottleneck counts per datagram, besides
/// what gtUDP sends.
const WIRE_OVERHEAD: usize = 28;

/// The most flows a cell may have.
pub const MAX_FLOWS: usize = 64;

/// One flow of a [`WanCell`]: a sender and its own receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WanFlow {
    /// The sender's congestion controller.
    pub congestion: CongestionAlgorithm,
    /// Propagation round trip (half each way), before queueing and jitter.
    pub rtt: Duration,
}

/// A cell of the WAN benchmark: flows, the bottleneck they share, and the
/// wire beyond it. See the [module docs](self).
#[derive(Clone, Debug, PartialEq)]
pub struct WanCell {
    /// The flows, at least one and at most [`MAX_FLOWS`].
    pub flows: Vec<WanFlow>,
    /// Bottleneck rate in Mbit/s (counting 28 bytes of IPv4 and UDP headers
    /// per datagram besides gtUDP's own).
    pub rate_mbit: f64,
    /// Probability that a datagram is lost on the wire after the bottleneck,
    /// each direction, in `0..1`.
    pub loss: f64,
    /// The longest a datagram waits in the bottleneck's queue (tail drop
    /// beyond).
    pub queue: Duration,
    /// Uniform extra delay in `0..=jitter` per datagram, each direction.
    pub jitter: Duration,
    /// Virtual time the flows send for.
    pub duration: Duration,
    /// Payload bytes per message.
    pub size: usize,
    /// Seeds the network and the endpoints.
    pub seed: u64,
    /// Record a [`WanSample`] at every multiple of this interval; `None`
    /// records none. Sampling only observes: the run is the same with or
    /// without it.
    pub sample_every: Option<Duration>,
}

impl WanCell {
    /// One flow with the default controller over `rtt` and a bottleneck of
    /// `rate_mbit`: no loss, no jitter, a 20 ms queue, 10 s of 1,200-byte
    /// messages, seed 1, no samples.
    pub fn new(rtt: Duration, rate_mbit: f64) -> Self {
        Self {
            flows: vec![WanFlow {
                congestion: CongestionAlgorithm::default(),
                rtt,
            }],
            rate_mbit,
            loss: 0.0,
            queue: Duration::from_millis(20),
            jitter: Duration::ZERO,
            duration: Duration::from_secs(10),
            size: 1200,
            seed: 1,
            sample_every: None,
        }
    }

    /// The longest propagation RTT among the flows.
    pub fn max_rtt(&self) -> Duration {
        self.flows
            .iter()
            .map(|f| f.rtt)
            .max()
            .unwrap_or(Duration::ZERO)
    }

    fn check(&self) -> Result<(), WanError> {
        let invalid = |what: &str| Err(WanError::Invalid(what.to_string()));
        if self.flows.is_empty() || self.flows.len() > MAX_FLOWS {
            return invalid("a cell needs 1 to 64 flows");
        }
        if self.flows.iter().any(|f| f.rtt.is_zero()) {
            return invalid("every flow's RTT must be above 0");
        }
        if !(self.rate_mbit > 0.0 && self.rate_mbit.is_finite()) {
            return invalid("the rate must be above 0");
        }
        if !(0.0..1.0).contains(&self.loss) {
            return invalid("the loss must be in 0..1");
        }
        if self.duration.is_zero() {
            return invalid("the duration must be above 0");
        }
        if self.sample_every.is_some_and(|every| every.is_zero()) {
            return invalid("the sample interval must be above 0");
        }
        Ok(())
    }

    /// Runs the cell to its end on virtual time.
    ///
    /// # Errors
    ///
    /// [`WanError::Invalid`] for a cell out of range (no flows or too many,
    /// a zero RTT, rate or duration, a loss of 1 or more, a zero sample
    /// interval), [`WanError::Config`] when the endpoints refuse the
    /// configuration it needs (a message too large for a datagram).
    pub fn run(&self) -> Result<WanReport, WanError> {
        self.check()?;
        Runner::new(self)?.run()
    }
}

/// Why a [`WanCell`] did not run.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WanError {
    /// A parameter of the cell is out of range (said which).
    Invalid(String),
    /// The endpoints refused the configuration the cell needs.
    Config(ConfigError),
}

impl fmt::Display for WanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(what) => f.write_str(what),
            Self::Config(error) => write!(f, "configuration refused: {error}"),
        }
    }
}

impl std::error::Error for WanError {}

impl From<ConfigError> for WanError {
    fn from(error: ConfigError) -> Self {
        Self::Config(error)
    }
}

/// What one flow of a cell achieved.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowReport {
    /// The flow as configured.
    pub flow: WanFlow,
    /// Unique payload bits handed to its receiver, per second, in Mbit/s.
    pub goodput_mbit: f64,
    /// Its goodput over the link rate.
    pub share: f64,
    /// Its messages and datagrams.
    pub traffic: Traffic,
    /// Median delay from a message's first transmission to its Delivered
    /// event at the sender, in ms (0 when none was delivered).
    pub p50_ms: f64,
    /// 99th percentile of the same, in ms.
    pub p99_ms: f64,
}

/// What one flow, or all of them, sent, delivered and lost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Messages handed to the receivers.
    pub delivered: u64,
    /// Sends that failed.
    pub failed: u64,
    /// DATA datagrams sent.
    pub data_sent: u64,
    /// DATA retransmissions.
    pub retransmissions: u64,
    /// Of those, found needless (see
    /// [`EndpointStats::spurious_retransmissions`](crate::EndpointStats)).
    pub spurious: u64,
    /// Messages presumed lost before their retransmission timeout.
    pub loss_detected_early: u64,
    /// Datagrams (DATA and ACK) sent into the bottleneck.
    pub bottleneck_sent: u64,
    /// Of those, dropped at the full queue.
    pub bottleneck_drops: u64,
}

impl Traffic {
    /// DATA datagrams sent per message delivered.
    pub fn retransmit_ratio(&self) -> f64 {
        self.data_sent as f64 / self.delivered.max(1) as f64
    }

    /// Bottleneck drops as a percentage of the datagrams into it.
    pub fn drop_pct(&self) -> f64 {
        100.0 * self.bottleneck_drops as f64 / self.bottleneck_sent.max(1) as f64
    }
}

impl std::ops::AddAssign for Traffic {
    fn add_assign(&mut self, other: Self) {
        self.delivered += other.delivered;
        self.failed += other.failed;
        self.data_sent += other.data_sent;
        self.retransmissions += other.retransmissions;
        self.spurious += other.spurious;
        self.loss_detected_early += other.loss_detected_early;
        self.bottleneck_sent += other.bottleneck_sent;
        self.bottleneck_drops += other.bottleneck_drops;
    }
}

/// One flow's state at a sampling instant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FlowSample {
    /// Payload delivered to the receiver since the previous sample, in
    /// Mbit/s.
    pub goodput_mbit: f64,
    /// Messages in flight.
    pub in_flight: usize,
    /// Congestion window, in messages.
    pub window: u32,
    /// Smoothed RTT, once measured.
    pub rtt: Option<Duration>,
}

/// Every flow's state at one instant of virtual time (just before anything
/// due at that instant happens).
#[derive(Clone, Debug, PartialEq)]
pub struct WanSample {
    /// Virtual time since the start.
    pub at: Duration,
    /// One entry per flow, in the cell's order.
    pub flows: Vec<FlowSample>,
}

/// What a [`WanCell`] achieved. Its [`Display`](fmt::Display) is the
/// `wan` example's output: a `details:` line, a `flow i:` line per flow,
/// and the [`summary`](Self::summary) line.
#[derive(Clone, Debug, PartialEq)]
pub struct WanReport {
    /// The cell that ran.
    pub cell: WanCell,
    /// Per flow, in the cell's order.
    pub flows: Vec<FlowReport>,
    /// All flows' goodput, in Mbit/s.
    pub goodput_mbit: f64,
    /// Goodput over the link rate. A clean link of 1,200-byte messages tops
    /// out near 0.973 (headers), and a random loss of `p` caps it near
    /// `0.973 × (1 - p)`.
    pub utilization: f64,
    /// All flows' messages and datagrams.
    pub traffic: Traffic,
    /// Datagrams lost at random on the wire, both directions.
    pub wire_lost: u64,
    /// Median delay from first transmission to Delivered, all flows, in ms.
    pub p50_ms: f64,
    /// 99th percentile of the same, in ms.
    pub p99_ms: f64,
    /// Jain's index over the flows' goodputs (1 is perfectly fair).
    pub fairness: f64,
    /// Samples over time, when the cell asked for them.
    pub samples: Vec<WanSample>,
}

impl WanReport {
    /// DATA datagrams sent per message delivered, all flows.
    pub fn retransmit_ratio(&self) -> f64 {
        self.traffic.retransmit_ratio()
    }

    /// Bottleneck drops as a percentage of the datagrams into it.
    pub fn drop_pct(&self) -> f64 {
        self.traffic.drop_pct()
    }

    /// The smallest share of the link any flow got.
    pub fn min_share(&self) -> f64 {
        self.flows
            .iter()
            .map(|f| f.share)
            .reduce(f64::min)
            .unwrap_or(0.0)
    }

    /// The controllers, one if all flows share it, else comma-separated.
    fn congestion_list(&self) -> String {
        let first = self.cell.flows.first().map(|f| f.congestion);
        if self.cell.flows.iter().all(|f| Some(f.congestion) == first) {
            return first.map_or_else(String::new, |c| format!("{c:?}"));
        }
        let names: Vec<String> = self
            .cell
            .flows
            .iter()
            .map(|f| format!("{:?}", f.congestion))
            .collect();
        names.join(",")
    }

    /// The `details:` line.
    pub fn details(&self) -> String {
        let per_flow: Vec<String> = self
            .flows
            .iter()
            .map(|f| format!("{:.2}", f.goodput_mbit))
            .collect();
        format!(
            "details: congestion={} bottleneck_sent={} bottleneck_drop_pct={:.3} wire_lost={} \
             retransmissions={} spurious={} loss_detected_early={} per_flow_mbit={}",
            self.congestion_list(),
            self.traffic.bottleneck_sent,
            self.drop_pct(),
            self.wire_lost,
            self.traffic.retransmissions,
            self.traffic.spurious,
            self.traffic.loss_detected_early,
            per_flow.join(",")
        )
    }

    /// One `flow i:` line per flow.
    pub fn flow_lines(&self) -> Vec<String> {
        self.flows
            .iter()
            .enumerate()
            .map(|(i, f)| {
                format!(
                    "flow {i}: congestion={:?} rtt_ms={} goodput_mbit={:.2} share={:.3} \
                     delivered={} failed={} retransmit_ratio={:.3} retransmissions={} \
                     spurious={} loss_detected_early={} bottleneck_drops={} drop_pct={:.3} \
                     p50_ms={:.1} p99_ms={:.1}",
                    f.flow.congestion,
                    f.flow.rtt.as_secs_f64() * 1e3,
                    f.goodput_mbit,
                    f.share,
                    f.traffic.delivered,
                    f.traffic.failed,
                    f.traffic.retransmit_ratio(),
                    f.traffic.retransmissions,
                    f.traffic.spurious,
                    f.traffic.loss_detected_early,
                    f.traffic.bottleneck_drops,
                    f.traffic.drop_pct(),
                    f.p50_ms,
                    f.p99_ms,
                )
            })
            .collect()
    }

    /// The one-line summary:
    ///
    /// ```text
    /// flows=F goodput_mbit=G link_mbit=M utilization=U bottleneck_drops=D retransmit_ratio=X delivered=N failed=K p50_ms=A p99_ms=B fairness=J spurious=S drop_pct=P min_share=M
    /// ```
    pub fn summary(&self) -> String {
        format!(
            "flows={} goodput_mbit={:.2} link_mbit={} utilization={:.3} bottleneck_drops={} \
             retransmit_ratio={:.3} delivered={} failed={} p50_ms={:.1} p99_ms={:.1} \
             fairness={:.3} spurious={} drop_pct={:.3} min_share={:.3}",
            self.flows.len(),
            self.goodput_mbit,
            self.cell.rate_mbit,
            self.utilization,
            self.traffic.bottleneck_drops,
            self.retransmit_ratio(),
            self.traffic.delivered,
            self.traffic.failed,
            self.p50_ms,
            self.p99_ms,
            self.fairness,
            self.traffic.spurious,
            self.drop_pct(),
            self.min_share(),
        )
    }
}

impl fmt::Display for WanReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.details())?;
        for line in self.flow_lines() {
            writeln!(f, "{line}")?;
        }
        write!(f, "{}", self.summary())
    }
}

/// Goals for a [`WanReport`]; each `None` is not checked.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WanTarget {
    /// Lowest utilization.
    pub min_utilization: Option<f64>,
    /// Highest bottleneck drop percentage.
    pub max_drop_pct: Option<f64>,
    /// Highest retransmit ratio (DATA sent per message delivered).
    pub max_retransmit_ratio: Option<f64>,
    /// Highest p99 delay, in multiples of the cell's longest propagation
    /// RTT.
    pub max_p99_rtts: Option<f64>,
    /// Lowest share of the link for every flow.
    pub min_share: Option<f64>,
}

impl WanTarget {
    /// No goal at all.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The goals `report` misses, each said with the figure; empty when it
    /// meets them all.
    pub fn misses(&self, report: &WanReport) -> Vec<String> {
        let mut misses = Vec::new();
        if let Some(min) = self.min_utilization {
            if report.utilization < min {
                misses.push(format!("utilization {:.3} < {min}", report.utilization));
            }
        }
        if let Some(max) = self.max_drop_pct {
            if report.drop_pct() > max {
                misses.push(format!(
                    "bottleneck drops {:.3}% > {max}%",
                    report.drop_pct()
                ));
            }
        }
        if let Some(max) = self.max_retransmit_ratio {
            if report.retransmit_ratio() > max {
                misses.push(format!(
                    "retransmit ratio {:.3} > {max}",
                    report.retransmit_ratio()
                ));
            }
        }
        if let Some(rtts) = self.max_p99_rtts {
            let max_ms = rtts * report.cell.max_rtt().as_secs_f64() * 1e3;
            if report.p99_ms > max_ms {
                misses.push(format!(
                    "p99 {:.1} ms > {max_ms:.1} ms ({rtts}×RTT)",
                    report.p99_ms
                ));
            }
        }
        if let Some(min) = self.min_share {
            for (i, flow) in report.flows.iter().enumerate() {
                if flow.share < min {
                    misses.push(format!("flow {i} share {:.3} < {min:.3}", flow.share));
                }
            }
        }
        misses
    }
}

impl fmt::Display for WanTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut goals = Vec::new();
        if let Some(min) = self.min_utilization {
            goals.push(format!("util ≥ {min}"));
        }
        if let Some(max) = self.max_drop_pct {
            goals.push(format!("drop ≤ {max}%"));
        }
        if let Some(max) = self.max_retransmit_ratio {
            goals.push(format!("retx ≤ {max}"));
        }
        if let Some(rtts) = self.max_p99_rtts {
            goals.push(format!("p99 ≤ {rtts}×RTT"));
        }
        if let Some(min) = self.min_share {
            goals.push(format!("each ≥ {min:.2} of link"));
        }
        if goals.is_empty() {
            f.write_str("-")
        } else {
            f.write_str(&goals.join(", "))
        }
    }
}

/// A named cell with its goals.
#[derive(Clone, Debug, PartialEq)]
pub struct MatrixCell {
    /// What the cell is, e.g. `50ms 100M q5ms`.
    pub name: &'static str,
    /// The cell (10 s of virtual time, seed 1).
    pub cell: WanCell,
    /// Its goals (empty where none is set).
    pub target: WanTarget,
}

/// The cells the WAN goals are set for, in order. Cells that name no loss
/// have 1% (the `wan` example's default) and those that name no queue a
/// 20 ms one; the two coexistence cells (BBR beside AIMD, and two BBR flows
/// at 20 and 80 ms) run on a clean link, where sharing is decided by the
/// controllers alone.
pub fn matrix() -> Vec<MatrixCell> {
    let ms = Duration::from_millis;
    let cell = |rtt: u64, rate: f64, loss: f64| {
        let mut cell = WanCell::new(ms(rtt), rate);
        cell.loss = loss;
        cell
    };
    let goal = WanTarget::default();
    let mut cells = Vec::new();
    let mut push = |name, cell, target| {
        cells.push(MatrixCell { name, cell, target });
    };

    let mut shallow = cell(50, 100.0, 0.01);
    shallow.queue = ms(5);
    push(
        "50ms 100M q5ms",
        shallow,
        WanTarget {
            min_utilization: Some(0.85),
            max_drop_pct: Some(2.0),
            max_retransmit_ratio: Some(1.03),
            max_p99_rtts: Some(2.0),
            ..goal
        },
    );
    push(
        "200ms 50M 2% loss",
        cell(200, 50.0, 0.02),
        WanTarget {
            min_utilization: Some(0.85),
            max_retransmit_ratio: Some(1.05),
            max_p99_rtts: Some(3.0),
            ..goal
        },
    );
    push(
        "100ms 1G",
        cell(100, 1000.0, 0.01),
        WanTarget {
            min_utilization: Some(0.9),
            ..goal
        },
    );
    for (name, loss, min) in [
        ("20ms 100M 0% loss", 0.0, 0.90),
        ("20ms 100M 1% loss", 0.01, 0.85),
        ("20ms 100M 10% loss", 0.10, 0.75),
        ("20ms 100M 30% loss", 0.30, 0.50),
    ] {
        push(
            name,
            cell(20, 100.0, loss),
            WanTarget {
                min_utilization: Some(min),
                ..goal
            },
        );
    }
    push("20ms 100M q20ms", cell(20, 100.0, 0.01), goal);
    let mut jitter = cell(20, 100.0, 0.01);
    jitter.jitter = ms(5);
    push("20ms 100M jitter 5ms", jitter, goal);

    let mut against = cell(20, 100.0, 0.0);
    against.flows = vec![
        WanFlow {
            congestion: CongestionAlgorithm::Bbr,
            rtt: ms(20),
        },
        WanFlow {
            congestion: CongestionAlgorithm::Aimd,
            rtt: ms(20),
        },
    ];
    push(
        "bbr vs aimd 20ms 100M",
        against,
        WanTarget {
            min_share: Some(1.0 / 3.0),
            ..goal
        },
    );
    let mut rtts = cell(20, 100.0, 0.0);
    rtts.flows = [20, 80]
        .map(|rtt| WanFlow {
            congestion: CongestionAlgorithm::Bbr,
            rtt: ms(rtt),
        })
        .to_vec();
    push(
        "bbr 20ms + bbr 80ms 100M",
        rtts,
        WanTarget {
            min_share: Some(0.25),
            ..goal
        },
    );
    cells
}

/// One sender and its receiver, while the cell runs.
struct Flow {
    sender: Endpoint,
    receiver: Endpoint,
    sender_addr: SocketAddr,
    receiver_addr: SocketAddr,
    next_seq: u64,
    /// First transmission of message `seq`, once sent.
    first_sent: Vec<Option<Duration>>,
    /// Identity of the first message (ids are given out in order).
    first_id: Option<u64>,
    delivered_bytes: u64,
    /// `delivered_bytes` at the previous sample.
    sampled_bytes: u64,
    delivered: u64,
    failed: u64,
    latencies: Vec<Duration>,
    bottleneck_sent: u64,
    bottleneck_drops: u64,
}

struct Runner<'a> {
    cell: &'a WanCell,
    flows: Vec<Flow>,
    net: Network,
    header_len: usize,
    samples: Vec<WanSample>,
    next_sample: Option<Duration>,
}

fn duration_ms(ms: f64) -> Duration {
    Duration::from_nanos((ms * 1e6).round() as u64)
}

/// The `p` quantile of `sorted` in ms, 0 when empty.
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1e3
}

impl<'a> Runner<'a> {
    fn new(cell: &'a WanCell) -> Result<Self, WanError> {
        let rate_bytes = (cell.rate_mbit * 1e6 / 8.0).round() as u64;
        let mut base = Config::default();
        if cell.size > base.max_payload_size() {
            base.max_datagram_size = cell.size + base.framing.header_len();
        }
        base.limits.max_outstanding_messages = base
            .limits
            .max_outstanding_messages
            .max(base.max_window as usize + 2 * BACKLOG);

        let wire_for = |rtt: Duration| {
            let mut wire = LinkProfile::clean();
            wire.delay = duration_ms(rtt.as_secs_f64() * 1e3 / 2.0);
            wire.jitter = cell.jitter;
            wire.loss = cell.loss;
            wire.loss_after_queue = true;
            wire
        };
        let bottleneck_for = |rtt: Duration| {
            let mut bottleneck = wire_for(rtt);
            bottleneck.rate = Some(rate_bytes.max(1));
            bottleneck.queue_limit = cell.queue;
            bottleneck.bottleneck = Some(0);
            bottleneck.wire_overhead = WIRE_OVERHEAD;
            bottleneck
        };
        // Every address gets its own links; the default only matters for
        // nothing, but is the first flow's wire as it always was.
        let first_rtt = cell.flows.first().map_or(Duration::ZERO, |f| f.rtt);
        let mut net = Network::new(cell.seed, wire_for(first_rtt));
        let longest = cell.max_rtt();
        let max_transit = bottleneck_for(longest).max_transit(base.max_datagram_size)
            + wire_for(longest).max_transit(0);
        base.datagram_lifetime = base.datagram_lifetime.max(max_transit * 2);

        let mut flows = Vec::with_capacity(cell.flows.len());
        for (i, spec) in cell.flows.iter().enumerate() {
            let host = u8::try_from(i + 1)
                .map_err(|_| WanError::Invalid("a cell needs 1 to 64 flows".into()))?;
            let sender_addr = SocketAddr::from(([10, 0, 1, host], 9000));
            let receiver_addr = SocketAddr::from(([10, 0, 2, host], 9000));
            net.set_link(sender_addr, receiver_addr, bottleneck_for(spec.rtt));
            net.set_link(receiver_addr, sender_addr, wire_for(spec.rtt));
            let mut config = base.clone();
            config.congestion = spec.congestion;
            let seed = u128::from(cell.seed) << 16 | (i as u128) << 1;
            let sender = Endpoint::new(config.clone(), seed)?;
            let receiver = Endpoint::new(config, seed | 1)?;
            flows.push(Flow {
                sender,
                receiver,
                sender_addr,
                receiver_addr,
                next_seq: 0,
                first_sent: Vec::new(),
                first_id: None,
                delivered_bytes: 0,
                sampled_bytes: 0,
                delivered: 0,
                failed: 0,
                latencies: Vec::new(),
                bottleneck_sent: 0,
                bottleneck_drops: 0,
            });
        }
        Ok(Self {
            cell,
            flows,
            net,
            header_len: base.framing.header_len(),
            samples: Vec::new(),
            next_sample: cell.sample_every,
        })
    }

    /// Records the samples due up to `until` (inclusive): nothing changes
    /// between events, so the state now is the state then.
    fn sample_until(&mut self, until: Duration) {
        let Some(every) = self.cell.sample_every else {
            return;
        };
        while let Some(at) = self.next_sample.filter(|&at| at <= until) {
            let flows = self
                .flows
                .iter_mut()
                .map(|flow| {
                    let stats = flow.sender.peer_stats(flow.receiver_addr);
                    let bytes = flow.delivered_bytes - flow.sampled_bytes;
                    flow.sampled_bytes = flow.delivered_bytes;
                    FlowSample {
                        goodput_mbit: bytes as f64 * 8.0 / every.as_secs_f64() / 1e6,
                        in_flight: stats.map_or(0, |s| s.in_flight),
                        window: stats.map_or(0, |s| s.window),
                        rtt: stats.and_then(|s| s.rtt),
                    }
                })
                .collect();
            self.samples.push(WanSample { at, flows });
            self.next_sample = at.checked_add(every);
        }
    }

    fn run(mut self) -> Result<WanReport, WanError> {
        let cell = self.cell;
        let payload = vec![0u8; cell.size];
        let stamp = 8.min(cell.size);
        let header_len = self.header_len;
        let mut clock = Clock::new();
        let end = cell.duration;
        let mut buf = Vec::new();
        let mut pending: Vec<(usize, SocketAddr, SocketAddr, Bytes)> = Vec::new();
        let mut spins = 0;

        loop {
            let now = clock.now();
            let elapsed = clock.elapsed();
            // Deliver what has arrived.
            while let Some(datagram) = self.net.poll_delivery(elapsed) {
                if let Some(flow) = self
                    .flows
                    .iter_mut()
                    .find(|f| datagram.to == f.sender_addr || datagram.to == f.receiver_addr)
                {
                    let endpoint = if datagram.to == flow.sender_addr {
                        &mut flow.sender
                    } else {
                        &mut flow.receiver
                    };
                    endpoint.handle_datagram(now, datagram.from, datagram.payload);
                }
            }
            for (index, flow) in self.flows.iter_mut().enumerate() {
                for endpoint in [&mut flow.sender, &mut flow.receiver] {
                    if endpoint.poll_timeout().is_some_and(|at| at <= now) {
                        endpoint.handle_timeout(now);
                    }
                }
                // Keep the sender busy.
                if elapsed < end {
                    let queued = flow
                        .sender
                        .peer_stats(flow.receiver_addr)
                        .map_or(0, |stats| stats.queued);
                    for _ in 0..BACKLOG.saturating_sub(queued) {
                        let mut message = payload.clone();
                        message[..stamp].copy_from_slice(&flow.next_seq.to_be_bytes()[..stamp]);
                        match flow
                            .sender
                            .send(now, flow.receiver_addr, Bytes::from(message))
                        {
                            Ok(id) => {
                                flow.first_id.get_or_insert(id.as_u64());
                                flow.next_seq += 1;
                                flow.first_sent.push(None);
                            }
                            Err(_) => break,
                        }
                    }
                }
                // Transmit, noting each message's first transmission.
                while let Some(t) = flow.sender.poll_transmit(now, 1, &mut buf) {
                    if stamp == 8 {
                        if let Some(seq) = buf
                            .get(header_len..header_len + 8)
                            .and_then(|bytes| bytes.try_into().ok())
                            .map(u64::from_be_bytes)
                        {
                            if let Some(slot @ None) = flow.first_sent.get_mut(seq as usize) {
                                *slot = Some(elapsed);
                            }
                        }
                    }
                    pending.push((
                        index,
                        flow.sender_addr,
                        t.destination,
                        Bytes::copy_from_slice(&buf[..t.size]),
                    ));
                }
                while let Some(t) = flow.receiver.poll_transmit(now, 1, &mut buf) {
                    pending.push((
                        index,
                        flow.receiver_addr,
                        t.destination,
                        Bytes::copy_from_slice(&buf[..t.size]),
                    ));
                }
                while let Some(event) = flow.sender.poll_event() {
                    match event {
                        Event::Delivered { id, .. } => {
                            let seq = id.as_u64().wrapping_sub(flow.first_id.unwrap_or(0));
                            if let Some(Some(sent)) = flow.first_sent.get(seq as usize) {
                                if elapsed <= end {
                                    flow.latencies.push(elapsed - *sent);
                                }
                            }
                        }
                        Event::Failed { .. } if elapsed <= end => flow.failed += 1,
                        _ => {}
                    }
                }
                while let Some(event) = flow.receiver.poll_event() {
                    if let Event::Received { payload, .. } = event {
                        if elapsed <= end {
                            flow.delivered += 1;
                            flow.delivered_bytes += payload.len() as u64;
                        }
                    }
                }
            }
            for (index, from, to, datagram) in pending.drain(..) {
                let fate = self.net.send(elapsed, from, to, datagram);
                if let Some(flow) = self.flows.get_mut(index) {
                    if from == flow.sender_addr {
                        flow.bottleneck_sent += 1;
                        if fate == Fate::RateDropped {
                            flow.bottleneck_drops += 1;
                        }
                    }
                }
            }
            // Next instant anything happens.
            let mut next = self.net.next_delivery();
            for flow in &mut self.flows {
                for endpoint in [&mut flow.sender, &mut flow.receiver] {
                    if let Some(at) = endpoint.poll_timeout() {
                        let offset = clock.offset(at);
                        next = Some(next.map_or(offset, |n| n.min(offset)));
                    }
                }
            }
            match next {
                Some(next) if next <= end => {
                    if next > elapsed {
                        self.sample_until(next);
                        clock.advance_to(next);
                        spins = 0;
                    } else {
                        // A timer due now that asked for nothing more: after
                        // a few passes, step past it.
                        spins += 1;
                        if spins > 3 {
                            let step = elapsed + Duration::from_micros(1);
                            self.sample_until(step);
                            clock.advance_to(step);
                            spins = 0;
                        }
                    }
                }
                _ => break,
            }
        }
        self.sample_until(end);
        Ok(self.report())
    }

    fn report(self) -> WanReport {
        let cell = self.cell;
        let seconds = cell.duration.as_secs_f64();
        let stats = self.net.stats();
        let mut all_latencies = Vec::new();
        let flows: Vec<FlowReport> = self
            .flows
            .into_iter()
            .zip(&cell.flows)
            .map(|(mut flow, spec)| {
                flow.latencies.sort_unstable();
                all_latencies.extend_from_slice(&flow.latencies);
                let sender = flow.sender.stats();
                let goodput_mbit = flow.delivered_bytes as f64 * 8.0 / seconds / 1e6;
                FlowReport {
                    flow: *spec,
                    goodput_mbit,
                    share: goodput_mbit / cell.rate_mbit,
                    traffic: Traffic {
                        delivered: flow.delivered,
                        failed: flow.failed,
                        data_sent: sender.datagrams_out.data,
                        retransmissions: sender.retransmissions,
                        spurious: sender.spurious_retransmissions,
                        loss_detected_early: sender.loss_detected_early,
                        bottleneck_sent: flow.bottleneck_sent,
                        bottleneck_drops: flow.bottleneck_drops,
                    },
                    p50_ms: percentile(&flow.latencies, 0.5),
                    p99_ms: percentile(&flow.latencies, 0.99),
                }
            })
            .collect();
        all_latencies.sort_unstable();
        let goodput_mbit: f64 = flows.iter().map(|f| f.goodput_mbit).sum();
        let sum_sq: f64 = flows.iter().map(|f| f.goodput_mbit * f.goodput_mbit).sum();
        let fairness = if sum_sq > 0.0 {
            goodput_mbit * goodput_mbit / (flows.len() as f64 * sum_sq)
        } else {
            0.0
        };
        let mut traffic = Traffic::default();
        for flow in &flows {
            traffic += flow.traffic;
        }
        WanReport {
            cell: cell.clone(),
            goodput_mbit,
            utilization: goodput_mbit / cell.rate_mbit,
            traffic,
            wire_lost: stats.lost,
            p50_ms: percentile(&all_latencies, 0.5),
            p99_ms: percentile(&all_latencies, 0.99),
            fairness,
            samples: self.samples,
            flows,
        }
    }
}
