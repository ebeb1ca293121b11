//! The WAN goals on the simulator: saturating flows over one bottleneck
//! (`gtudp_proto::sim::wan`), each cell run for 10 s of virtual time and
//! checked against its goal. Deterministic: a failure names the
//! seed and prints the whole report, and the same seed fails the same way
//! (`cargo run --release -p gtudp-proto --features sim --example wan --
//! --matrix` shows every cell at full length).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use gtudp_proto::sim::wan::matrix;
use gtudp_proto::sim::{MatrixCell, WanCell, WanReport};

/// Virtual time each cell runs here: as long as in the matrix, so that a
/// test and its row in `wan --matrix` give the same figures (a shorter run
/// weighs start-up more). The core is optimised in test builds, so each cell still takes
/// only a few seconds.
const SECONDS: u64 = 10;

/// The matrix cell called `name`, shortened to `SECONDS`.
fn cell(name: &str) -> MatrixCell {
    let mut entry = matrix()
        .into_iter()
        .find(|entry| entry.name == name)
        .unwrap_or_else(|| panic!("no matrix cell {name}"));
    entry.cell.duration = Duration::from_secs(SECONDS);
    entry
}

/// Runs the cell called `name` and asserts its goal, printing the seed and
/// every figure on failure.
fn meets_target(name: &str) -> WanReport {
    let entry = cell(name);
    assert!(!entry.target.is_empty(), "{name} has no goal");
    let report = entry.cell.run().unwrap();
    let misses = entry.target.misses(&report);
    assert!(
        misses.is_empty(),
        "{name} (seed {}, {} s virtual) misses its goal ({}): {}\n{report}",
        entry.cell.seed,
        SECONDS,
        entry.target,
        misses.join("; "),
    );
    report
}

/// Runs the cell called `name` and asserts a floor below its goal that
/// today's controller holds (the goal itself is asserted by the ignored
/// test beside it, until it is reached): `check` returns what it misses.
fn holds_floor(name: &str, floor: &str, check: impl Fn(&WanReport) -> Vec<String>) {
    let entry = cell(name);
    let report = entry.cell.run().unwrap();
    let misses = check(&report);
    assert!(
        misses.is_empty(),
        "{name} (seed {}, {} s virtual) falls below its floor ({floor}): {}\n{report}",
        entry.cell.seed,
        SECONDS,
        misses.join("; "),
    );
}

fn at_least(what: &str, value: f64, floor: f64) -> Option<String> {
    (value < floor).then(|| format!("{what} {value:.3} < {floor}"))
}

fn at_most(what: &str, value: f64, ceiling: f64) -> Option<String> {
    (value > ceiling).then(|| format!("{what} {value:.3} > {ceiling}"))
}

#[test]
fn shallow_queue_at_50ms_bounds_its_own_loss() {
    // The goal's loss bound is met: at most 2% dropped at the bottleneck.
    holds_floor(
        "50ms 100M q5ms",
        "drop <= 2%, retx <= 1.05, util >= 0.8",
        |report| {
            [
                at_most("bottleneck drop %", report.drop_pct(), 2.0),
                at_most("retransmit ratio", report.retransmit_ratio(), 1.05),
                at_least("utilization", report.utilization, 0.8),
            ]
            .into_iter()
            .flatten()
            .collect()
        },
    );
}

#[test]
#[ignore = "goal not reached yet (issue 19): p99 118 ms of 100 (seeds 1-5: 117.6-118.0 ms; \
            retransmit ratio 1.022-1.023, drop 0.5-0.6%). With 1% loss each way more than \
            1% of messages are recovered, and a loss is found no sooner than a round trip and \
            the reordering window after its send, so a recovered message takes at least \
            2.25 RTTs and the p99 stays above 2 x RTT"]
fn shallow_queue_at_50ms() {
    meets_target("50ms 100M q5ms");
}

#[test]
fn long_lossy_path_at_200ms_holds_a_floor() {
    // The goal's delay and retransmission bounds are met: p99 at most
    // 3 x RTT, at most 1.05 DATA sent per first transmission (1.046-1.049
    // over seeds 1-5).
    holds_floor(
        "200ms 50M 2% loss",
        "p99 <= 600 ms, retx <= 1.05, util >= 0.7",
        |report| {
            [
                at_most("p99 ms", report.p99_ms, 600.0),
                at_most("retransmit ratio", report.retransmit_ratio(), 1.05),
                at_least("utilization", report.utilization, 0.7),
            ]
            .into_iter()
            .flatten()
            .collect()
        },
    );
}

#[test]
fn long_path_behind_a_shallow_queue_drops_about_its_random_loss() {
    // A 20 ms queue on a 200 ms path holds a tenth of a BDP, and a probe at
    // 1.25 times the estimate for a minimum RTT puts a quarter of one into
    // it: each probe overflowed it. Once a probe has, the next ones put
    // half the queue it met in flight beyond the estimate, no more. What
    // reaches the bottleneck and is dropped there (Startup's overshoot, by
    // then most of it) falls from 2.6-3.3% to 1.9-2.4% (seeds 1-5), about
    // the 2% the wire loses at random. (With every RECV resent before its
    // ACK came, as a queue of a few milliseconds made them, it was 7.7-14%.)
    for seed in 1..=5 {
        let mut entry = cell("200ms 50M 2% loss");
        entry.cell.seed = seed;
        let report = entry.cell.run().unwrap();
        assert!(
            report.drop_pct() <= 2.5,
            "seed {seed}: bottleneck drop {:.3}% > 2.5%\n{report}",
            report.drop_pct()
        );
    }
}

#[test]
#[ignore = "goal not reached yet (issue 19): utilization 0.778 of 0.85 (seeds 1-5: \
            0.778-0.781; over the run's second half 0.922-0.925; retransmit ratio 1.046-1.049 \
            and p99 are met). Address validation takes one RTT and doubling from 16 messages \
            six more: an ideal start costs 54 of the 455 Mbit*s the 0.912 ceiling allows, a \
            bound near 0.80 for a 10 s run"]
fn long_lossy_path_at_200ms() {
    meets_target("200ms 50M 2% loss");
}

#[test]
fn a_new_peer_on_a_long_path_starts_from_its_validation_probe() {
    // The receiver holds the first window until our answer to its
    // validation probe reaches it, so those RECVs come two round trips
    // after their DATA. Measured from the probe, they show the path's rate
    // over one round trip; taken as they came, they halved the first
    // estimate and Startup reached 50 Mbit/s a round trip or two later:
    // about 0.044 of the link over the first 1.5 s, against 0.095 (seeds
    // 1-3).
    for seed in 1..=3 {
        let mut cell = WanCell::new(Duration::from_millis(200), 50.0);
        cell.loss = 0.02;
        cell.seed = seed;
        cell.duration = Duration::from_millis(1500);
        let report = cell.run().unwrap();
        assert!(report.utilization >= 0.08, "seed {seed}: {report}");
    }
}

#[test]
fn random_loss_does_not_end_startup_too_soon() {
    // On 100 ms / 1 Gbit/s with 1% loss each way, these seeds' Startup
    // measured the random share on its first 52 sends, which lost
    // nothing, and took a later round's 2.2% for congestion (at 44 Mbit/s
    // on seed 10); probes a quarter at a time then took five seconds to
    // reach the link: 0.042 and 0.318 of it over the first 3 s. Judged
    // against what 52 sends can tell, Startup goes on (0.587 and 0.589);
    // had it ended, a probe finding a quarter more would restart it
    // (0.364 and 0.461).
    for (seed, floor) in [(10, 0.5), (8, 0.5)] {
        let mut cell = WanCell::new(Duration::from_millis(100), 1000.0);
        cell.loss = 0.01;
        cell.seed = seed;
        cell.duration = Duration::from_secs(3);
        let report = cell.run().unwrap();
        assert!(
            report.utilization >= floor,
            "seed {seed}: utilization {} < {floor}\n{report}",
            report.utilization
        );
    }
}

#[test]
fn long_paths_run_near_their_ceiling_once_started() {
    // Whole-run utilization on these paths is bounded by Startup's rounds
    // in a 10 s run (see the ignored goals above); once started, each must
    // hold its goal's utilization. The second half alone: 0.930 and 0.922
    // (seed 1); a controller that stalled after Startup, or kept cutting
    // its rate for the random loss, would fall well below.
    for (name, floor) in [("100ms 1G", 0.9), ("200ms 50M 2% loss", 0.85)] {
        let entry = cell(name);
        let report = entry.cell.run().unwrap();
        assert!(
            report.second_half_utilization >= floor,
            "{name} (seed {}): second-half utilization {:.3} < {floor}\n{report}",
            entry.cell.seed,
            report.second_half_utilization,
        );
    }
}

#[test]
fn clean_at_20ms() {
    meets_target("20ms 100M 0% loss");
}

#[test]
fn one_percent_loss_at_20ms() {
    meets_target("20ms 100M 1% loss");
}

#[test]
fn ten_percent_loss_at_20ms() {
    meets_target("20ms 100M 10% loss");
}

#[test]
fn thirty_percent_loss_at_20ms() {
    meets_target("20ms 100M 30% loss");
}

#[test]
fn thirty_percent_loss_keeps_no_queue_standing() {
    // Rate samples are scaled up by the path's random share of loss, so
    // that a lossy link is still filled. Taken as measured, a share read
    // high by chance raised every sample, the estimate ran above the path
    // and the cruise kept the 20 ms queue full: 2.1-4.0% of what reached
    // the bottleneck dropped on seeds 1-4. Taken at the least its sample
    // allows, the queue stands empty but for Startup's overshoot and a
    // probe now and then: the median smoothed RTT stays within a quarter
    // of the queue of the path's 20 ms, and 0.05-1.17% is dropped (more
    // than the 0.02-0.21% before RECVs went out up to four times: the flow
    // resends less and carries 0.63-0.64 of the link, not 0.59-0.60).
    for seed in 1..=4 {
        let mut entry = cell("20ms 100M 30% loss");
        entry.cell.seed = seed;
        entry.cell.sample_every = Some(Duration::from_millis(100));
        let report = entry.cell.run().unwrap();
        let mut rtts: Vec<Duration> = report
            .samples
            .iter()
            .filter_map(|sample| sample.flows.first().and_then(|flow| flow.rtt))
            .collect();
        rtts.sort_unstable();
        let median = rtts.get(rtts.len() / 2).copied().unwrap_or_default();
        assert!(
            median <= Duration::from_millis(25),
            "seed {seed}: median smoothed RTT {median:?} > 25 ms: a queue stands\n{report}"
        );
        assert!(
            report.drop_pct() <= 1.5,
            "seed {seed}: bottleneck drop {:.3}% > 1.5%\n{report}",
            report.drop_pct()
        );
        assert!(report.utilization >= 0.5, "seed {seed}\n{report}");
    }
}

#[test]
fn bbr_beside_aimd_each_gets_a_third() {
    meets_target("bbr vs aimd 20ms 100M");
}

#[test]
fn bbr_at_20ms_and_80ms_neither_starves() {
    holds_floor(
        "bbr 20ms + bbr 80ms 100M",
        "each >= 0.1 of the link",
        |report| {
            at_least("smallest share", report.min_share(), 0.1)
                .into_iter()
                .collect()
        },
    );
}

#[test]
fn bbr_at_20ms_and_80ms_each_gets_a_quarter() {
    meets_target("bbr 20ms + bbr 80ms 100M");
}

/// The tool itself: the same cell gives the same report, sampling does not
/// change the run, and samples come at every interval.
#[test]
fn runs_are_deterministic_and_sampling_only_observes() {
    let mut cell = WanCell::new(Duration::from_millis(20), 20.0);
    cell.loss = 0.05;
    cell.jitter = Duration::from_millis(2);
    cell.duration = Duration::from_secs(2);
    cell.flows.push(cell.flows[0]);
    cell.flows[1].rtt = Duration::from_millis(60);
    let first = cell.run().unwrap();
    assert_eq!(first, cell.run().unwrap());
    assert!(first.samples.is_empty());
    assert!(first.traffic.delivered > 0, "{first}");

    cell.sample_every = Some(Duration::from_millis(100));
    let sampled = cell.run().unwrap();
    assert_eq!(sampled.summary(), first.summary());
    assert_eq!(sampled.samples.len(), 20);
    for (i, sample) in sampled.samples.iter().enumerate() {
        assert_eq!(sample.at, Duration::from_millis(100 * (i as u64 + 1)));
        assert_eq!(sample.flows.len(), 2);
    }
    // Goodput over the samples adds up to the run's.
    for (i, flow) in sampled.flows.iter().enumerate() {
        let mean: f64 = sampled
            .samples
            .iter()
            .map(|s| s.flows[i].goodput_mbit)
            .sum::<f64>()
            / 20.0;
        assert!((mean - flow.goodput_mbit).abs() < 1e-9, "{mean} {flow:?}");
    }
    let last = &sampled.samples[19].flows[1];
    assert!(last.rtt.is_some_and(|rtt| rtt >= Duration::from_millis(60)));
}

#[test]
fn refuses_cells_out_of_range() {
    let mut cell = WanCell::new(Duration::from_millis(20), 10.0);
    cell.flows.clear();
    assert!(cell.run().is_err());
    let mut cell = WanCell::new(Duration::ZERO, 10.0);
    assert!(cell.run().is_err());
    cell = WanCell::new(Duration::from_millis(20), 10.0);
    cell.loss = 1.0;
    assert!(cell.run().is_err());
    cell.loss = 0.0;
    cell.size = 100_000;
    assert!(cell.run().is_err());
}
