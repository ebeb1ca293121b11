//! A virtual-time WAN benchmark: saturating flows over one bottleneck.
//!
//! ```text
//! cargo run --release -p gtudp-proto --features sim --example wan -- \
//!     [--rtt-ms 20] [--rate-mbit 100] [--loss 0.01] [--queue-ms 20] [--jitter-ms 0] \
//!     [--seconds 10] [--size 1200] [--flows 1] [--seed 1] [--congestion bbr|aimd] \
//!     [--flow-congestion bbr,aimd] [--flow-rtt-ms 20,80] [--plot FILE.svg] \
//!     [--series FILE.csv] [--sample-ms 50] \
//!     [--carriage one|ip-fragments|fragments]
//! cargo run --release -p gtudp-proto --features sim --example wan -- --matrix \
//!     [--seconds 10] [--seed 1] [--size 1200]
//! ```
//!
//! Each of `--flows` senders streams `--size`-byte messages to its own
//! receiver for `--seconds` of virtual time, always keeping messages queued.
//! Every sender's DATA and ACK cross one shared bottleneck of `--rate-mbit`
//! with a tail-drop queue of `--queue-ms`; RECV comes back on an unlimited
//! path. Each direction adds half of the flow's RTT (`--rtt-ms`) of
//! propagation delay plus up to `--jitter-ms` of uniform jitter (so jitter
//! also reorders), and loses each datagram with probability `--loss`
//! (`0.01`, `1%` and `1` all mean 1%) on the wire after the bottleneck, so a
//! lost DATA has used its share of the link. `--congestion` picks the
//! controller (default: the endpoint's default). The runner is
//! `gtudp_proto::sim::WanCell`; this is a command line over it.
//!
//! # Messages larger than one datagram
//!
//! `--carriage` says how a `--size` above one 1,452-byte datagram travels:
//! `one` (the default) in one datagram as large as the message, lost as a
//! whole; `ip-fragments` in one datagram that IP splits into 1,480-byte
//! pieces, each lost on its own, so it arrives only if all do (a real path
//! that fragments); `fragments` with the large-message extension, one
//! datagram per fragment, each confirmed and resent on its own (its delays
//! count from the send). A line after the report gives DATA
//! retransmissions per DATA datagram lost.
//!
//! # Flows that differ
//!
//! `--flow-congestion aimd,bbr` gives each flow its own controller and
//! `--flow-rtt-ms 20,80` its own propagation RTT, one entry per flow (the
//! defaults: `--congestion` and `--rtt-ms` for all). A list sets the number
//! of flows when `--flows` is not given; lists and `--flows` must agree. All
//! flows still share the one bottleneck, so this measures coexistence: for
//! instance `--flow-congestion bbr,aimd --loss 0` is gtudp beside a
//! Reno-like competing flow (the AIMD controller: slow start, one message
//! more per window, halved on loss).
//!
//! # Output
//!
//! The last line on stdout is
//!
//! ```text
//! flows=F goodput_mbit=G link_mbit=M utilization=U bottleneck_drops=D retransmit_ratio=X delivered=N failed=K p50_ms=A p99_ms=B fairness=J spurious=S drop_pct=P min_share=M second_half_utilization=H
//! ```
//!
//! - `goodput_mbit`: unique payload bits handed to the receivers, per second;
//!   `utilization` is that over the link rate. The bottleneck counts 28
//!   bytes of IPv4 and UDP headers per datagram besides gtUDP's own 5, and
//!   the sender's ACKs (33 bytes, one per message) cross it too, so a clean
//!   link of 1,200-byte messages tops out near 0.948, and a random loss of
//!   `p` each way near `1200 / (1233 × (1 + 2p) + 33)` (a lost DATA and a
//!   lost RECV each draw a resend).
//! - `bottleneck_drops`: datagrams dropped at the full bottleneck queue;
//!   `drop_pct` is that in percent of the datagrams sent into it.
//! - `retransmit_ratio`: DATA datagrams sent per first transmission (1 when
//!   nothing was resent; messages in flight at the end count once).
//! - `delivered`, `failed`: messages handed over, and sends that failed.
//! - `p50_ms`, `p99_ms`: from a message's first transmission to its
//!   Delivered event at the sender (a round trip, plus any recovery).
//! - `fairness`: Jain's index over the flows' goodputs (1 is perfectly fair).
//! - `spurious`: retransmissions found needless (the message was late, not
//!   lost).
//! - `min_share`: the smallest share of the link any flow got.
//! - `second_half_utilization`: `utilization` over the run's second half
//!   alone, the steady state without Startup (the matrix's "2nd half"
//!   column). Targets judge the whole run.
//!
//! Lines before it give details (datagrams sent into the bottleneck, the
//! drop share, spurious retransmissions, early loss detections), then one
//! `flow i:` line per flow with its controller, RTT, goodput, share of the
//! link, retransmit ratio, spurious retransmissions, drops and p50/p99.
//!
//! # `--plot FILE.svg`
//!
//! Also draws the run over time into an SVG: three panels stacked, goodput
//! (Mbit/s, payload delivered per sample interval), messages in flight and
//! smoothed RTT (ms), one line per flow, sampled every `--sample-ms` (default
//! 50) of virtual time. Sampling only observes: the figures are the same
//! with or without it.
//!
//! # `--series FILE.csv`
//!
//! Writes the same samples as numbers: `seconds,flow,goodput_mbit,
//! in_flight,window,srtt_ms`, one line per sample and flow.
//!
//! # `--matrix`
//!
//! Runs every cell the WAN goals are set for (`gtudp_proto::sim::wan::matrix`:
//! 50 ms/100 Mbit/s with a 5 ms queue; 200 ms/50 Mbit/s at 2% loss;
//! 100 ms/1 Gbit/s; 20 ms/100 Mbit/s at 0, 1, 10 and 30% loss, with a 20 ms
//! queue, and with 5 ms of jitter; BBR beside AIMD and two BBR flows at 20
//! and 80 ms, both on a clean 20 ms/100 Mbit/s link), one after another, and
//! prints one Markdown table: utilization, bottleneck drop %, retransmit
//! ratio, spurious retransmissions, p50 and p99, fairness, each flow's share
//! where there are several, the cell's goal and whether it is met. Cells
//! that name no loss have 1%, and those that name no queue a 20 ms one.
//! Only `--seconds` (default 10 per cell; the 1 Gbit/s cell takes by far
//! the longest), `--seed` and `--size` apply.
//!
//! The same arguments always print the same lines: everything runs on
//! virtual time from the seed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use gtudp_proto::sim::wan::matrix;
use gtudp_proto::sim::wan::Carriage;
use gtudp_proto::sim::{WanCell, WanFlow, WanReport};
use gtudp_proto::CongestionAlgorithm;

const USAGE: &str = "usage: wan [--rtt-ms 20] [--rate-mbit 100] [--loss 0.01] [--queue-ms 20] \
     [--jitter-ms 0] [--seconds 10] [--size 1200] [--flows 1] [--seed 1] [--congestion bbr|aimd] \
     [--flow-congestion bbr,aimd] [--flow-rtt-ms 20,80] [--plot FILE.svg] [--series FILE.csv] [--sample-ms 50]\n\
     \x20      wan --matrix [--seconds 10] [--seed 1] [--size 1200]";

/// Flags `--matrix` takes; every other cell flag is refused with it.
const MATRIX_FLAGS: [&str; 3] = ["--seconds", "--seed", "--size"];

#[derive(Clone, Debug)]
struct Args {
    rtt_ms: f64,
    rate_mbit: f64,
    loss: f64,
    queue_ms: f64,
    jitter_ms: f64,
    seconds: f64,
    size: usize,
    flows: Option<usize>,
    seed: u64,
    congestion: Option<CongestionAlgorithm>,
    flow_congestion: Option<Vec<CongestionAlgorithm>>,
    flow_rtt_ms: Option<Vec<f64>>,
    plot: Option<PathBuf>,
    /// Where to write the sampled series as CSV.
    series: Option<PathBuf>,
    sample_ms: f64,
    carriage: Carriage,
    matrix: bool,
    /// Every flag given, in order.
    given: Vec<String>,
}

impl Default for Args {
    fn default() -> Self {
        Self {
            rtt_ms: 20.0,
            rate_mbit: 100.0,
            loss: 0.01,
            queue_ms: 20.0,
            jitter_ms: 0.0,
            seconds: 10.0,
            size: 1200,
            flows: None,
            seed: 1,
            congestion: None,
            flow_congestion: None,
            flow_rtt_ms: None,
            plot: None,
            series: None,
            sample_ms: 50.0,
            carriage: Carriage::OneDatagram,
            matrix: false,
            given: Vec::new(),
        }
    }
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("wan: {problem}");
    eprintln!("{USAGE}");
    ExitCode::from(2)
}

fn probability(value: &str) -> Result<f64, String> {
    let number: f64 = value
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("not a probability: {value}"))?;
    let p = if value.ends_with('%') || number > 1.0 {
        number / 100.0
    } else {
        number
    };
    if (0.0..1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("loss out of range: {value}"))
    }
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{flag} needs a number, not {value}"))
}

fn controller(value: &str) -> Result<CongestionAlgorithm, String> {
    match value {
        "bbr" => Ok(CongestionAlgorithm::Bbr),
        "aimd" => Ok(CongestionAlgorithm::Aimd),
        other => Err(format!("unknown controller {other}")),
    }
}

/// A comma-separated list, each entry parsed by `item`.
fn list<T>(value: &str, item: impl Fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    value.split(',').map(|entry| item(entry.trim())).collect()
}

fn positive(flag: &str, value: f64) -> Result<f64, String> {
    if value > 0.0 && value.is_finite() {
        Ok(value)
    } else {
        Err(format!("{flag} must be above 0"))
    }
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args::default();
    while let Some(flag) = args.next() {
        if flag == "--matrix" {
            parsed.matrix = true;
            continue;
        }
        parsed.given.push(flag.clone());
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--rtt-ms" => parsed.rtt_ms = number(&flag, &value)?,
            "--rate-mbit" => parsed.rate_mbit = number(&flag, &value)?,
            "--loss" => parsed.loss = probability(&value)?,
            "--queue-ms" => parsed.queue_ms = number(&flag, &value)?,
            "--jitter-ms" => parsed.jitter_ms = number(&flag, &value)?,
            "--seconds" => parsed.seconds = number(&flag, &value)?,
            "--size" => parsed.size = number(&flag, &value)?,
            "--flows" => parsed.flows = Some(number(&flag, &value)?),
            "--seed" => parsed.seed = number(&flag, &value)?,
            "--congestion" => parsed.congestion = Some(controller(&value)?),
            "--flow-congestion" => parsed.flow_congestion = Some(list(&value, controller)?),
            "--flow-rtt-ms" => {
                parsed.flow_rtt_ms = Some(list(&value, |v| {
                    positive("--flow-rtt-ms", number("--flow-rtt-ms", v)?)
                })?)
            }
            "--plot" => parsed.plot = Some(PathBuf::from(value)),
            "--series" => parsed.series = Some(PathBuf::from(value)),
            "--sample-ms" => parsed.sample_ms = number(&flag, &value)?,
            "--carriage" => {
                parsed.carriage = match value.as_str() {
                    "one" => Carriage::OneDatagram,
                    "ip-fragments" => Carriage::IpFragments,
                    "fragments" => Carriage::Fragments,
                    other => {
                        return Err(format!(
                            "--carriage is one, ip-fragments or fragments, not {other}"
                        ))
                    }
                }
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    for (flag, value) in [
        ("--rtt-ms", parsed.rtt_ms),
        ("--rate-mbit", parsed.rate_mbit),
        ("--seconds", parsed.seconds),
        ("--sample-ms", parsed.sample_ms),
    ] {
        positive(flag, value)?;
    }
    if !(parsed.queue_ms >= 0.0
        && parsed.jitter_ms >= 0.0
        && parsed.queue_ms.is_finite()
        && parsed.jitter_ms.is_finite())
    {
        return Err("--queue-ms and --jitter-ms must not be negative".into());
    }
    if parsed.matrix {
        if let Some(flag) = parsed
            .given
            .iter()
            .find(|flag| !MATRIX_FLAGS.contains(&flag.as_str()))
        {
            return Err(format!(
                "--matrix sets its own cells; it takes only --seconds, --seed and --size, not {flag}"
            ));
        }
    }
    Ok(parsed)
}

fn duration_ms(ms: f64) -> Duration {
    Duration::from_nanos((ms * 1e6).round() as u64)
}

/// The cell the arguments describe.
fn cell(args: &Args) -> Result<WanCell, String> {
    let lengths = [
        ("--flows", args.flows),
        (
            "--flow-congestion",
            args.flow_congestion.as_ref().map(Vec::len),
        ),
        ("--flow-rtt-ms", args.flow_rtt_ms.as_ref().map(Vec::len)),
    ];
    let mut count = None;
    for (flag, length) in lengths {
        match (count, length) {
            (_, None) => {}
            (None, Some(n)) => count = Some((flag, n)),
            (Some((first, m)), Some(n)) if m != n => {
                return Err(format!("{first} gives {m} flows but {flag} gives {n}"))
            }
            _ => {}
        }
    }
    let flows = count.map_or(1, |(_, n)| n);
    if flows == 0 || flows > gtudp_proto::sim::wan::MAX_FLOWS {
        return Err("--flows must be 1 to 64".into());
    }
    let mut cell = WanCell::new(duration_ms(args.rtt_ms), args.rate_mbit);
    let default_congestion = args.congestion.unwrap_or_default();
    cell.flows = (0..flows)
        .map(|i| WanFlow {
            congestion: args
                .flow_congestion
                .as_ref()
                .and_then(|list| list.get(i).copied())
                .unwrap_or(default_congestion),
            rtt: duration_ms(
                args.flow_rtt_ms
                    .as_ref()
                    .and_then(|list| list.get(i).copied())
                    .unwrap_or(args.rtt_ms),
            ),
        })
        .collect();
    cell.loss = args.loss;
    cell.queue = duration_ms(args.queue_ms);
    cell.jitter = duration_ms(args.jitter_ms);
    cell.duration = Duration::from_secs_f64(args.seconds);
    cell.size = args.size;
    cell.carriage = args.carriage;
    cell.seed = args.seed;
    if args.plot.is_some() || args.series.is_some() {
        cell.sample_every = Some(duration_ms(args.sample_ms));
    }
    Ok(cell)
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(problem) => return usage(&problem),
    };
    let outcome = if args.matrix {
        run_matrix(&args)
    } else {
        run_one(&args)
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => usage(&problem),
    }
}

fn run_one(args: &Args) -> Result<(), String> {
    let cell = cell(args)?;
    for path in [&args.plot, &args.series].into_iter().flatten() {
        // Fail before the run, not after it.
        std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let report = cell.run().map_err(|e| e.to_string())?;
    if let Some(path) = &args.plot {
        plot(path, &report).map_err(|e| format!("plotting to {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.series {
        std::fs::write(path, series_csv(&report))
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    println!("{report}");
    if args.carriage != Carriage::OneDatagram {
        println!(
            "DATA retransmissions per DATA datagram lost: {:.3}",
            report.traffic.resent_per_lost()
        );
    }
    Ok(())
}

/// The sampled series, one line per sample and flow: what `--plot` draws,
/// as numbers.
fn series_csv(report: &WanReport) -> String {
    let mut csv = String::from("seconds,flow,goodput_mbit,in_flight,window,srtt_ms\n");
    for sample in &report.samples {
        for (flow, f) in sample.flows.iter().enumerate() {
            let srtt = f.rtt.map_or(String::new(), |rtt| {
                format!("{:.3}", rtt.as_secs_f64() * 1e3)
            });
            csv.push_str(&format!(
                "{:.3},{flow},{:.2},{},{},{srtt}\n",
                sample.at.as_secs_f64(),
                f.goodput_mbit,
                f.in_flight,
                f.window
            ));
        }
    }
    csv
}

fn run_matrix(args: &Args) -> Result<(), String> {
    println!(
        "| case | utilization | 2nd half | bottleneck drop % | retransmit ratio | spurious | p50 ms \
         | p99 ms | fairness | shares | target | met |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for entry in matrix() {
        let mut cell = entry.cell;
        if args.given.iter().any(|flag| flag == "--seconds") {
            cell.duration = Duration::from_secs_f64(args.seconds);
        }
        cell.seed = args.seed;
        cell.size = args.size;
        let report = cell
            .run()
            .map_err(|e| format!("cell {}: {e}", entry.name))?;
        let shares = if report.flows.len() > 1 {
            let shares: Vec<String> = report
                .flows
                .iter()
                .map(|f| format!("{:?} {:.3}", f.flow.congestion, f.share).to_lowercase())
                .collect();
            shares.join(" / ")
        } else {
            "-".to_string()
        };
        let met = if entry.target.is_empty() {
            "-".to_string()
        } else {
            let misses = entry.target.misses(&report);
            if misses.is_empty() {
                "yes".to_string()
            } else {
                format!("no: {}", misses.join("; "))
            }
        };
        println!(
            "| {} | {:.3} | {:.3} | {:.3} | {:.3} | {} | {:.1} | {:.1} | {:.3} | {} | {} | {} |",
            entry.name,
            report.utilization,
            report.second_half_utilization,
            report.drop_pct(),
            report.retransmit_ratio(),
            report.traffic.spurious,
            report.p50_ms,
            report.p99_ms,
            report.fairness,
            shares,
            entry.target,
            met
        );
    }
    Ok(())
}

/// Draws goodput, messages in flight and RTT over time, one line per flow.
fn plot(path: &std::path::Path, report: &WanReport) -> Result<(), String> {
    use plotters::prelude::*;

    type Value = fn(&gtudp_proto::sim::FlowSample) -> Option<f64>;
    let messages = format!("messages of {} B", report.cell.size);
    let panels: [(&str, &str, Value); 3] = [
        ("goodput", "Mbit/s", |s| Some(s.goodput_mbit)),
        ("in flight", &messages, |s| Some(s.in_flight as f64)),
        // None until the flow has measured one.
        ("smoothed RTT", "ms", |s| {
            s.rtt.map(|rtt| rtt.as_secs_f64() * 1e3)
        }),
    ];
    let error = |e: DrawingAreaErrorKind<_>| e.to_string();
    let root = SVGBackend::new(path, (1000, 1050)).into_drawing_area();
    root.fill(&WHITE).map_err(error)?;
    let cell = &report.cell;
    let title = format!(
        "{} Mbit/s, queue {} ms, loss {}%, jitter {} ms, seed {}",
        cell.rate_mbit,
        cell.queue.as_secs_f64() * 1e3,
        cell.loss * 100.0,
        cell.jitter.as_secs_f64() * 1e3,
        cell.seed
    );
    let root = root.titled(&title, ("sans-serif", 22)).map_err(error)?;
    let seconds = cell.duration.as_secs_f64();
    for (area, (name, unit, value)) in root.split_evenly((3, 1)).iter().zip(panels) {
        let top = report
            .samples
            .iter()
            .flat_map(|sample| sample.flows.iter().filter_map(value))
            .fold(0.0, f64::max);
        let top = if top > 0.0 { top * 1.1 } else { 1.0 };
        let mut chart = ChartBuilder::on(area)
            .caption(name, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..seconds, 0.0..top)
            .map_err(error)?;
        chart
            .configure_mesh()
            .x_desc("virtual time (s)")
            .y_desc(unit)
            .draw()
            .map_err(error)?;
        for (i, flow) in cell.flows.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let points = report.samples.iter().filter_map(|sample| {
                let flow_sample = sample.flows.get(i)?;
                Some((sample.at.as_secs_f64(), value(flow_sample)?))
            });
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(error)?
                .label(format!(
                    "flow {i}: {:?}, {} ms",
                    flow.congestion,
                    flow.rtt.as_secs_f64() * 1e3
                ))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(error)?;
    }
    root.present().map_err(error)?;
    Ok(())
}
