//! Runs many simulation seeds and prints their totals.
//!
//! ```text
//! cargo run --release -p gtudp-proto --features sim --example soak -- \
//!     --seeds N [--first-seed S] [--profile NAME] [--loss P] [--dup P] [--reorder P] [--corrupt P] \
//!     [--trace ENTRIES] [--report-all]
//! ```
//!
//! `--profile` starts from one of the test matrix's profiles
//! (`gtudp_proto::sim::Profile`, by name: `clean`, `loss10`, ..., `flood`)
//! instead of drawing every condition; the other flags then override it.
//!
//! `--trace` keeps that many of the last datagrams and events in each report
//! (default 64; a large number follows a seed from its start), and
//! `--report-all` prints the report of every seed, passing ones included, for
//! example to see why one delivery was slow:
//! `soak --seeds 1 --first-seed 9001169 --profile flood --trace 1000000 --report-all`.
//!
//! Runs seeds `S..S+N` (S defaults to 0). Each seed draws a random scenario
//! (see `gtudp_proto::sim::Scenario`); `--loss`, `--dup`, `--reorder` and
//! `--corrupt` fix that probability for every seed instead (`0.3`, `30%` and
//! `30` all mean 30%). Reports of failing seeds go to stderr.
//!
//! When any datagram was corrupted, a line before the last says what
//! corruption did (`corrupted` datagrams reached an endpoint; payloads
//! `handed_over` from them, which are injected, not phantoms; Delivered
//! messages `unverifiable` because of it; intact payloads `repeated`
//! because of it: see `gtudp_proto::sim::World`):
//!
//! ```text
//! corruption: corrupted=C handed_over=H unverifiable=U repeated=P
//! ```
//!
//! The last line on stdout is
//!
//! ```text
//! seeds=N messages=M delivered=D failed=F duplicates=U phantom=X unresolved=R violations=V
//! ```
//!
//! and the exit status is non-zero when V > 0. The same arguments always
//! print the same line.

use std::process::ExitCode;

use gtudp_proto::sim::{Counts, Knobs, Profile, Scenario};

/// Reports printed in full; later failing seeds are only counted.
const MAX_REPORTS: usize = 5;

struct Args {
    seeds: u64,
    first_seed: u64,
    knobs: Knobs,
    trace: Option<usize>,
    report_all: bool,
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("soak: {problem}");
    eprintln!(
        "usage: soak --seeds N [--first-seed S] [--profile NAME] [--loss P] [--dup P] [--reorder P] [--corrupt P] [--trace ENTRIES] [--report-all]"
    );
    ExitCode::from(2)
}

fn probability(value: &str) -> Result<f64, String> {
    let trimmed = value.trim_end_matches('%');
    let number: f64 = trimmed
        .parse()
        .map_err(|_| format!("not a probability: {value}"))?;
    let p = if value.ends_with('%') || number > 1.0 {
        number / 100.0
    } else {
        number
    };
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("probability out of range: {value}"))
    }
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut seeds = None;
    let mut first_seed = 0;
    let mut knobs = Knobs::default();
    let mut trace = None;
    let mut report_all = false;
    while let Some(flag) = args.next() {
        if flag == "--report-all" {
            report_all = true;
            continue;
        }
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--seeds" => seeds = Some(value()?.parse().map_err(|_| "--seeds needs a number")?),
            "--first-seed" => {
                first_seed = value()?
                    .parse()
                    .map_err(|_| "--first-seed needs a number")?
            }
            "--profile" => {
                let name = value()?;
                let profile = Profile::ALL
                    .into_iter()
                    .find(|p| format!("{p:?}").eq_ignore_ascii_case(&name))
                    .ok_or(format!("unknown profile {name}"))?;
                knobs = profile.knobs();
            }
            "--loss" => knobs.loss = Some(probability(&value()?)?),
            "--dup" => knobs.duplicate = Some(probability(&value()?)?),
            "--reorder" => knobs.reorder = Some(probability(&value()?)?),
            "--corrupt" => knobs.corrupt = Some(probability(&value()?)?),
            "--trace" => trace = Some(value()?.parse().map_err(|_| "--trace needs a number")?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        seeds: seeds.ok_or("--seeds is required")?,
        first_seed,
        knobs,
        trace,
        report_all,
    })
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(problem) => return usage(&problem),
    };
    let mut totals = Counts::default();
    let mut reported = 0;
    for seed in args.first_seed..args.first_seed.saturating_add(args.seeds) {
        let mut scenario = Scenario::generate(seed, args.knobs);
        if let Some(entries) = args.trace {
            scenario.trace_capacity = entries;
        }
        let outcome = scenario.run();
        if args.report_all {
            eprintln!("{}", outcome.report());
        } else if !outcome.passed() {
            if reported < MAX_REPORTS {
                eprintln!("{}", outcome.report());
            }
            reported += 1;
        }
        totals += outcome.counts;
    }
    if totals.corrupted > 0 {
        println!(
            "corruption: corrupted={} handed_over={} unverifiable={} repeated={}",
            totals.corrupted,
            totals.corrupt_received,
            totals.corrupt_confirmed,
            totals.corrupt_duplicates
        );
    }
    if totals.late_replays > 0 {
        println!(
            "late copies replayed just inside the retention: {}",
            totals.late_replays
        );
    }
    println!(
        "seeds={} messages={} delivered={} failed={} duplicates={} phantom={} unresolved={} violations={}",
        args.seeds,
        totals.messages,
        totals.delivered,
        totals.failed,
        totals.duplicates,
        totals.phantom,
        totals.unresolved,
        totals.violations
    );
    if totals.violations > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
