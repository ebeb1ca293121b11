//! What a WAN cell achieved ([`WanReport`], per flow [`FlowReport`], over
//! time [`WanSample`]s) and the goals it is checked against ([`WanTarget`]).

use std::fmt;
use std::time::Duration;

use super::cell::{WanCell, WanFlow};

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
    /// DATA (or fragment) datagrams that reached the receivers.
    pub data_arrived: u64,
}

impl Traffic {
    /// DATA datagrams sent per first transmission: 1 when nothing was
    /// resent. Counting per first transmission rather than per message
    /// delivered keeps the messages still in flight when a run ends (sent
    /// once, not yet confirmed) out of the overhead: at 200 ms and 50 Mbit/s
    /// they are about a thousand, 0.025 of a 10 s run's ratio.
    pub fn retransmit_ratio(&self) -> f64 {
        let first = self.data_sent.saturating_sub(self.retransmissions);
        self.data_sent as f64 / first.max(1) as f64
    }

    /// Bottleneck drops as a percentage of the datagrams into it.
    pub fn drop_pct(&self) -> f64 {
        100.0 * self.bottleneck_drops as f64 / self.bottleneck_sent.max(1) as f64
    }

    /// DATA retransmissions per DATA datagram lost (on the wire or at the
    /// bottleneck): 1 when only what was lost is resent. With datagrams of
    /// one size, as fragments are, it is also retransmitted bytes per lost
    /// byte.
    pub fn resent_per_lost(&self) -> f64 {
        let lost = self.data_sent.saturating_sub(self.data_arrived);
        self.retransmissions as f64 / lost.max(1) as f64
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
        self.data_arrived += other.data_arrived;
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
    /// out near 0.948 (headers, and the sender's 33-byte ACK per message,
    /// which crosses the bottleneck too), and a random loss of `p` each way
    /// near `1200 / (1233 × (1 + 2p) + 33)`: a lost DATA and a lost RECV
    /// each draw a resend.
    pub utilization: f64,
    /// The same over the run's second half alone: the flows' steady state,
    /// with Startup left out. On a long fat path a 10 s run is mostly
    /// Startup's rounds (100 ms × 1 Gbit/s takes about ten doublings from
    /// the initial window, plus the address proof's round trip), which caps
    /// [`utilization`](Self::utilization) below the link's ceiling whatever
    /// the controller does afterwards; this shows what it does afterwards.
    /// It is reported beside `utilization`, never instead of it: the
    /// targets judge the whole run.
    pub second_half_utilization: f64,
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
    /// flows=F goodput_mbit=G link_mbit=M utilization=U bottleneck_drops=D retransmit_ratio=X delivered=N failed=K p50_ms=A p99_ms=B fairness=J spurious=S drop_pct=P min_share=M second_half_utilization=H
    /// ```
    pub fn summary(&self) -> String {
        format!(
            "flows={} goodput_mbit={:.2} link_mbit={} utilization={:.3} bottleneck_drops={} \
             retransmit_ratio={:.3} delivered={} failed={} p50_ms={:.1} p99_ms={:.1} \
             fairness={:.3} spurious={} drop_pct={:.3} min_share={:.3} \
             second_half_utilization={:.3}",
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
            self.second_half_utilization,
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
    /// Highest retransmit ratio (DATA sent per first transmission).
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
