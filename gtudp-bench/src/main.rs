//! `compare`: one-way throughput and latency of gtUDP against raw UDP,
//! laminar and KCP, all over 127.0.0.1 in one process, measured in the same
//! run.
//!
//! ```text
//! cargo run --release -p gtudp-bench -- [--count N] [--size BYTES] \
//!     [--concurrency C] [--only NAME,...] [--runs R] [--quick]
//! ```
//!
//! Each implementation gets a small warm-up run (discarded), then R runs
//! (default 3); the table shows the run with the median throughput. Every
//! payload starts with its sequence number and its send time, so every
//! receiver checks exactly-once delivery and measures send-to-receive
//! latency.

mod common;
mod gtudp;
mod kcp;
mod laminar_bench;
mod raw;

use std::io;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use hdrhistogram::Histogram;

use crate::common::{Outcome, Params, HEADER};

/// The implementations, in table order.
const NAMES: [&str; 5] = [
    "raw-udp",
    "raw-udp-tokio",
    "gtudp-tokio",
    "laminar",
    "tokio_kcp",
];

/// Compare gtUDP's throughput and latency with raw UDP and peer libraries
/// over loopback.
#[derive(Parser, Debug)]
#[command(name = "compare")]
struct Args {
    /// Messages per run [default: 50000, or 5000 with --quick].
    #[arg(long)]
    count: Option<u64>,
    /// Payload bytes per message (at least 16: sequence number and send time).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(HEADER as u64..=1_400))]
    size: u64,
    /// Most messages outstanding at once where the benchmark sets the
    /// window (gtUDP: awaiting Delivered; laminar: ahead of the receiver).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    concurrency: u64,
    /// Only these implementations (comma-separated): raw-udp, raw-udp-tokio,
    /// gtudp-tokio, laminar, tokio_kcp.
    #[arg(long, value_delimiter = ',', value_parser = clap::builder::PossibleValuesParser::new(NAMES))]
    only: Vec<String>,
    /// gtUDP receive queue (messages held for `recv`); default: the
    /// library's (`Builder::recv_queue`).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    recv_queue: Option<u64>,
    /// Measured runs per implementation; the median is reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=99))]
    runs: u64,
    /// A small run: 5,000 messages unless --count says otherwise.
    #[arg(long)]
    quick: bool,
    /// Also run every selected implementation with this many messages (for
    /// example 1000000) in the same invocation, each such run right after a
    /// burst run, and print each one's sustained rate over its burst rate:
    /// the ratio of the medians, and the median and range of the ratios of
    /// each burst run and the sustained run after it. A cliff past a table
    /// bound shows there. (A burst run after a sustained one starts with
    /// the memory the sustained run left, so its peak RSS is not its own.)
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    sustained: Option<u64>,
}

/// The median outcome per implementation, every run's summary, and whether
/// every run finished.
type Measured = (Vec<Outcome>, Vec<(&'static str, Vec<String>)>, bool);

/// Per implementation, each sustained run's rate over the rate of the burst
/// run just before it (pairs with a failed or stalled run left out).
type PairedRatios = Vec<(&'static str, Vec<f64>)>;

/// Runs each of `selected` `runs` times with `params` after a warm-up;
/// with `long`, also a run of `long` parameters after each run of
/// `params`, measured the same way: the burst and the
/// sustained runs of an implementation alternate, so that their ratio,
/// taken pair by pair, compares runs made moments apart rather than the
/// first half of the invocation with the second (on a shared machine the
/// speed drifts by more than the ratio's margin within a minute).
fn measure_alternating(
    selected: &[&'static str],
    params: Params,
    long: Option<Params>,
    runs: u64,
) -> (Measured, Option<(Measured, PairedRatios)>) {
    let warmup = Params {
        count: (params.count / 10).clamp(1, 2_000),
        ..params
    };
    eprintln!(
        "compare: {} messages of {} bytes, concurrency {}, {} run(s) each after a {}-message warm-up",
        params.count, params.size, params.concurrency, runs, warmup.count
    );
    if let Some(long) = long {
        eprintln!("  each run followed by one of {} messages", long.count);
    }
    let mut short = Collected::default();
    let mut sustained = Collected::default();
    let mut ratios = Vec::new();
    for &name in selected {
        if let Err(error) = run_one(name, warmup) {
            eprintln!("{name}: warm-up failed: {error}");
        }
        let mut burst_outcomes = Vec::new();
        let mut long_outcomes = Vec::new();
        let mut pairs = Vec::new();
        for run in 1..=runs {
            let burst = run_one_logged(name, params, run, &mut short.ok);
            if let Some(long) = long {
                let sustained_run = run_one_logged(name, long, run, &mut sustained.ok);
                if let (Some(burst), Some(sustained_run)) = (&burst, &sustained_run) {
                    if !burst.stalled && !sustained_run.stalled {
                        pairs.push(sustained_run.msgs_per_sec() / burst.msgs_per_sec().max(1e-9));
                    }
                }
                long_outcomes.extend(sustained_run);
            }
            burst_outcomes.extend(burst);
        }
        short.add(name, burst_outcomes);
        if long.is_some() {
            sustained.add(name, long_outcomes);
            ratios.push((name, pairs));
        }
    }
    let long = long.map(|_| (sustained.into_measured(), ratios));
    (short.into_measured(), long)
}

/// One run of `name`, logged; `None` (and `ok` cleared) if it failed.
fn run_one_logged(name: &'static str, params: Params, run: u64, ok: &mut bool) -> Option<Outcome> {
    match run_one(name, params) {
        Ok(outcome) => {
            eprintln!(
                "  {name} ({} messages) run {run}: {}",
                params.count,
                summary(&outcome)
            );
            Some(outcome)
        }
        Err(error) => {
            eprintln!(
                "  {name} ({} messages) run {run}: error: {error}",
                params.count
            );
            *ok = false;
            None
        }
    }
}

/// The outcomes of one kind of run, gathered per implementation.
struct Collected {
    medians: Vec<Outcome>,
    all_runs: Vec<(&'static str, Vec<String>)>,
    ok: bool,
}

impl Default for Collected {
    fn default() -> Self {
        Self {
            medians: Vec::new(),
            all_runs: Vec::new(),
            ok: true,
        }
    }
}

impl Collected {
    /// Keeps the median of `name`'s `outcomes` and every run's summary.
    fn add(&mut self, name: &'static str, mut outcomes: Vec<Outcome>) {
        // A stalled run never finished: it ranks below every finished one.
        outcomes.sort_by(|a, b| {
            (!a.stalled, a.msgs_per_sec())
                .partial_cmp(&(!b.stalled, b.msgs_per_sec()))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let summaries: Vec<String> = outcomes.iter().map(summary).collect();
        let median = outcomes.len() / 2;
        if let Some(outcome) = outcomes.into_iter().nth(median) {
            self.all_runs.push((name, summaries));
            self.medians.push(outcome);
        }
    }

    fn into_measured(self) -> Measured {
        (self.medians, self.all_runs, self.ok)
    }
}

/// The median of `values` (the upper one of an even count), and their
/// least and greatest.
fn median_and_range(values: &[f64]) -> Option<(f64, f64, f64)> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = *sorted.get(sorted.len() / 2)?;
    Some((median, sorted[0], sorted[sorted.len() - 1]))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let count = args
        .count
        .unwrap_or(if args.quick { 5_000 } else { 50_000 })
        .max(1);
    let params = Params {
        count,
        size: args.size as usize,
        concurrency: args.concurrency as usize,
        recv_queue: args.recv_queue.map(|capacity| capacity as usize),
    };
    let selected: Vec<&'static str> = NAMES
        .into_iter()
        .filter(|name| args.only.is_empty() || args.only.iter().any(|o| o == name))
        .collect();
    let long = args.sustained.map(|sustained| Params {
        count: sustained,
        ..params
    });
    let ((medians, all_runs, mut ok), sustained) =
        measure_alternating(&selected, params, long, args.runs);

    report(params, args.runs, &medians, &all_runs);
    if let (Some(long), Some(((long_medians, long_runs, long_ok), ratios))) = (long, sustained) {
        ok &= long_ok;
        report(long, args.runs, &long_medians, &long_runs);
        println!();
        println!(
            "Sustained over burst ({} vs {} messages):",
            long.count, params.count
        );
        for outcome in &long_medians {
            let burst = medians.iter().find(|burst| burst.name == outcome.name);
            if let Some(burst) = burst {
                println!(
                    "- {}: {:.0} msgs/s over {:.0} msgs/s = {:.2}",
                    outcome.name,
                    outcome.msgs_per_sec(),
                    burst.msgs_per_sec(),
                    outcome.msgs_per_sec() / burst.msgs_per_sec().max(1e-9)
                );
            }
        }
        println!();
        println!("Sustained over the burst run just before it, pair by pair (the runs alternate):");
        for (name, pairs) in &ratios {
            if let Some((median, least, greatest)) = median_and_range(pairs) {
                println!(
                    "- {name}: median {median:.2} of {} pairs (from {least:.2} to {greatest:.2})",
                    pairs.len()
                );
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Prints the table, every run and the counters of the median runs.
fn report(
    params: Params,
    runs: u64,
    medians: &[Outcome],
    all_runs: &[(&'static str, Vec<String>)],
) {
    println!();
    println!(
        "{} messages x {} B one-way over 127.0.0.1, concurrency {}, median of {} run(s)",
        params.count, params.size, params.concurrency, runs
    );
    println!();
    print_table(medians);
    println!();
    println!("All runs (stalled first, then by msgs/s):");
    for (name, summaries) in all_runs {
        for run in summaries {
            println!("- {name}: {run}");
        }
    }
    let details: Vec<&Outcome> = medians.iter().filter(|o| !o.details.is_empty()).collect();
    if !details.is_empty() {
        println!();
        println!("Counters of the median run:");
        for outcome in details {
            for line in &outcome.details {
                println!("- {} {line}", outcome.name);
            }
        }
    }
}

/// One run of `name` on a fresh runtime (tokio ones), so that nothing from
/// an earlier run lingers.
fn run_one(name: &str, params: Params) -> io::Result<Outcome> {
    let drops_before = common::rcvbuf_errors();
    common::reset_peak_rss();
    let mut outcome = run_impl(name, params)?;
    if let Some(peak) = common::peak_rss() {
        outcome.notes.push(format!(
            "peak RSS {:.0} MiB (whole process, both sides)",
            peak as f64 / f64::from(1 << 20)
        ));
    }
    if let (Some(before), Some(after)) = (drops_before, common::rcvbuf_errors()) {
        outcome.notes.push(format!(
            "kernel rcvbuf drops {}",
            after.saturating_sub(before)
        ));
    }
    Ok(outcome)
}

fn run_impl(name: &str, params: Params) -> io::Result<Outcome> {
    match name {
        "raw-udp" => raw::std_blocking(params),
        "laminar" => laminar_bench::run(params),
        _ => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let outcome = runtime.block_on(async {
                match name {
                    "raw-udp-tokio" => raw::tokio(params).await,
                    "gtudp-tokio" => gtudp::run(params).await,
                    "tokio_kcp" => kcp::run(params).await,
                    _ => Err(io::Error::other(format!("unknown implementation {name}"))),
                }
            });
            runtime.shutdown_timeout(Duration::from_secs(1));
            outcome
        }
    }
}

fn summary(outcome: &Outcome) -> String {
    format!(
        "{:.0} msgs/s, {} in {:.3} s, {}{}",
        outcome.msgs_per_sec(),
        counts(outcome),
        outcome.elapsed.as_secs_f64(),
        notes(outcome),
        cpu_per_msg(outcome).map_or(String::new(), |cpu| format!(", CPU {cpu}")),
    )
}

fn counts(outcome: &Outcome) -> String {
    match outcome.delivered {
        Some(delivered) => format!(
            "{delivered}/{} delivered, {}/{} received",
            outcome.params.count, outcome.received, outcome.params.count
        ),
        None => format!("-, {}/{} received", outcome.received, outcome.params.count),
    }
}

fn notes(outcome: &Outcome) -> String {
    let mut notes = outcome.notes.clone();
    if outcome.duplicates > 0 {
        notes.push(format!("{} duplicates", outcome.duplicates));
    }
    if outcome.corrupt > 0 {
        notes.push(format!("{} corrupt", outcome.corrupt));
    }
    if outcome.reordered > 0 {
        notes.push(format!("{} reordered", outcome.reordered));
    }
    notes.join("; ")
}

fn cpu_per_msg(outcome: &Outcome) -> Option<String> {
    // A stalled run's CPU time is mostly the wait for the stall verdict.
    let cpu = outcome.cpu.filter(|_| !outcome.stalled)?;
    let done = outcome.completed().max(1);
    Some(format!(
        "{:.1} µs/msg",
        cpu.as_secs_f64() * 1e6 / done as f64
    ))
}

fn percentiles(hist: &Histogram<u64>) -> String {
    if hist.is_empty() {
        return "-".to_owned();
    }
    format!(
        "{} / {}",
        micros(hist.value_at_quantile(0.50)),
        micros(hist.value_at_quantile(0.99))
    )
}

fn micros(us: u64) -> String {
    if us >= 10_000 {
        format!("{:.1} ms", us as f64 / 1e3)
    } else {
        format!("{us} µs")
    }
}

fn print_table(outcomes: &[Outcome]) {
    println!(
        "| name | msgs/s | MB/s | delivered / received | loss or notes | send→delivered p50 / p99 | send→recv p50 / p99 | CPU per msg |"
    );
    println!("|---|---:|---:|---|---|---|---|---:|");
    for outcome in outcomes {
        let rate = outcome.msgs_per_sec();
        println!(
            "| {} | {:.0} | {:.1} | {} | {} | {} | {} | {} |",
            outcome.name,
            rate,
            rate * outcome.params.size as f64 / 1e6,
            counts(outcome),
            notes(outcome),
            outcome
                .confirm_latency
                .as_ref()
                .map_or("n/a".to_owned(), percentiles),
            percentiles(&outcome.one_way),
            cpu_per_msg(outcome).unwrap_or_else(|| "-".to_owned()),
        );
    }
}
