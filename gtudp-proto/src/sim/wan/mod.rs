//! A WAN cell on virtual time: saturating flows sharing one bottleneck.
//!
//! A [`WanCell`] runs [`WanFlow`]s, each a sender
//! [`Endpoint`](crate::Endpoint) streaming fixed-size messages to a receiver
//! of its own and always keeping a backlog queued, so the application never
//! limits it. Every sender's DATA and ACK cross one shared bottleneck (a rate
//! in Mbit/s and a tail-drop queue measured in time); RECV comes back on an
//! unlimited path. Each direction of a flow adds half of that flow's
//! propagation RTT, plus up to the cell's jitter (uniform, so jitter also
//! reorders), and loses each datagram with the cell's loss probability on the
//! wire after the bottleneck (a lost DATA has used its share of the link).
//! Flows may differ in controller and RTT, to measure how they share the
//! link.
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

// `cell`: the cell as configured; `report`: what it achieved, and the goals;
// `runner`: the run itself (`WanCell::run`); the matrix is here. Each
// imports only those listed before it.
mod cell;
mod report;
mod runner;

use std::time::Duration;

use crate::CongestionAlgorithm;

pub use cell::{Carriage, WanCell, WanError, WanFlow, MAX_FLOWS};
pub use report::{FlowReport, FlowSample, Traffic, WanReport, WanSample, WanTarget};

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
