//! Runs many simulation seeds and prints their totals.
//!
//! ```text
//! cargo run --release -p gtudp-proto --features sim --example soak -- \
//!     --seeds N [--first-seed S] [--profile NAME | --all-profiles] \
//!     [--loss P] [--dup P] [--reorder P] [--corrupt P] [--trace ENTRIES] [--report-all]
//! ```
//!
//! Runs seeds `S..S+N` (S defaults to 0). Each seed draws a random scenario
//! (see `gtudp_proto::sim::Scenario`), every condition drawn from the seed
//! (the "mixed" matrix). `--profile` starts from one of the test matrix's
//! profiles (`gtudp_proto::sim::Profile`, by name: `clean`, `loss10`,
//! `loss30`, `loss50`, `duplication`, `reordering`, `partitions`, `hostile`,
//! `corrupt`, `flood`) instead of drawing every condition. `--loss`,
//! `--dup`, `--reorder` and `--corrupt` then fix that probability for every
//! seed, whatever their order on the command line (`0.3`, `30%` and `30`
//! all mean 30%). Reports of failing seeds go to stderr (the first few in
//! full).
//!
//! `--all-profiles` runs the seeds once under every profile, then once
//! mixed, each with the same `S..S+N` and with the probability flags applied
//! to each; it cannot be combined with `--profile`. It prints one line per
//! profile, the name first, then the totals in the format of the last line:
//!
//! ```text
//! profile=clean seeds=N messages=M delivered=D failed=F duplicates=U phantom=X unresolved=R violations=V
//! ...
//! profile=mixed seeds=N ...
//! ```
//!
//! and below them the lines that follow, for all profiles together (the
//! last line's `seeds` then counts every run: N × 11). A failing seed's
//! report is preceded by `profile NAME:`; replay it with `--profile NAME`
//! (or without `--profile` for `mixed`) and `--first-seed` its seed.
//!
//! `--trace` keeps that many of the last datagrams and events in each report
//! (default 64; a large number follows a seed from its start), and
//! `--report-all` prints the report of every seed, passing ones included, for
//! example to see why one delivery was slow:
//! `soak --seeds 1 --first-seed 9001169 --profile flood --trace 1000000 --report-all`.
//!
//! When any datagram was corrupted, a line says what corruption did
//! (`corrupted` datagrams reached an endpoint; payloads `handed_over` from
//! them, which are injected, not phantoms; Delivered messages `unverifiable`
//! because of it; intact payloads `repeated` because of it: see
//! `gtudp_proto::sim::World`), and when late copies of DATA were replayed
//! (`gtudp_proto::sim::World::set_late_replays`), a line counts them; so
//! does one for the copies endpoints recognised from a NAT's new port:
//!
//! ```text
//! corruption: corrupted=C handed_over=H unverifiable=U repeated=P
//! late copies replayed just inside their lifetime: L
//! copies from a NAT's new port recognised: N
//! ```
//!
//! The line before the last counts the violations by the guarantee they
//! broke (`gtudp_proto::sim::ViolationKind`, every kind, zeros included):
//!
//! ```text
//! invariants: duplicate=0 phantom=0 misread=0 unread=0 bad_outcome=0 late_outcome=0 unresolved=0 delivered_not_handed_over=0 must_deliver_failed=0 bound_exceeded=0 amplification=0 foreign_gtudp=0 close=0 panic=0 other=0
//! ```
//!
//! The last line on stdout is
//!
//! ```text
//! seeds=N messages=M delivered=D failed=F duplicates=U phantom=X unresolved=R violations=V
//! ```
//!
//! and the exit status is non-zero when V > 0 (2 for a usage error). The
//! same arguments always print the same lines.

use std::process::ExitCode;

use gtudp_proto::sim::{Counts, Knobs, Profile, Scenario};

/// Reports printed in full; later failing seeds are only counted.
const MAX_REPORTS: usize = 5;

/// What to run the seeds under.
enum Matrix {
    /// One set of conditions: a profile's, or drawn per seed (mixed).
    One(Knobs),
    /// Every profile, then mixed.
    AllProfiles,
}

struct Args {
    seeds: u64,
    first_seed: u64,
    matrix: Matrix,
    /// Probabilities given on the command line, applied over any profile.
    overrides: Knobs,
    trace: Option<usize>,
    report_all: bool,
}

/// Failing seeds' reports printed so far, and how they are printed.
struct Reporter {
    reported: usize,
    trace: Option<usize>,
    report_all: bool,
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("soak: {problem}");
    eprintln!(
        "usage: soak --seeds N [--first-seed S] [--profile NAME | --all-profiles] [--loss P] [--dup P] [--reorder P] [--corrupt P] [--trace ENTRIES] [--report-all]"
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

/// A profile's name as the command line spells it.
fn profile_name(profile: Profile) -> String {
    format!("{profile:?}").to_ascii_lowercase()
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut seeds = None;
    let mut first_seed = 0;
    let mut profile = None;
    let mut all_profiles = false;
    let mut overrides = Knobs::default();
    let mut trace = None;
    let mut report_all = false;
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--report-all" => {
                report_all = true;
                continue;
            }
            "--all-profiles" => {
                all_profiles = true;
                continue;
            }
            _ => {}
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
                let found = Profile::ALL
                    .into_iter()
                    .find(|p| profile_name(*p).eq_ignore_ascii_case(&name))
                    .ok_or(format!("unknown profile {name}"))?;
                profile = Some(found);
            }
            "--loss" => overrides.loss = Some(probability(&value()?)?),
            "--dup" => overrides.duplicate = Some(probability(&value()?)?),
            "--reorder" => overrides.reorder = Some(probability(&value()?)?),
            "--corrupt" => overrides.corrupt = Some(probability(&value()?)?),
            "--trace" => trace = Some(value()?.parse().map_err(|_| "--trace needs a number")?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let matrix = match (all_profiles, profile) {
        (true, Some(_)) => return Err("--all-profiles and --profile exclude each other".into()),
        (true, None) => Matrix::AllProfiles,
        (false, profile) => Matrix::One(profile.map(Profile::knobs).unwrap_or_default()),
    };
    Ok(Args {
        seeds: seeds.ok_or("--seeds is required")?,
        first_seed,
        matrix,
        overrides,
        trace,
        report_all,
    })
}

/// `knobs` with the probabilities given on the command line.
fn with_overrides(mut knobs: Knobs, overrides: Knobs) -> Knobs {
    knobs.loss = overrides.loss.or(knobs.loss);
    knobs.duplicate = overrides.duplicate.or(knobs.duplicate);
    knobs.reorder = overrides.reorder.or(knobs.reorder);
    knobs.corrupt = overrides.corrupt.or(knobs.corrupt);
    knobs
}

/// Runs `seeds` seeds from `first_seed` under `knobs`; reports of failing
/// seeds go to stderr, after `label` if any.
fn run(
    first_seed: u64,
    seeds: u64,
    knobs: Knobs,
    label: Option<&str>,
    reporter: &mut Reporter,
) -> Counts {
    let mut totals = Counts::default();
    for seed in first_seed..first_seed.saturating_add(seeds) {
        let mut scenario = Scenario::generate(seed, knobs);
        if let Some(entries) = reporter.trace {
            scenario.trace_capacity = entries;
        }
        let outcome = scenario.run();
        let print = if reporter.report_all {
            true
        } else if !outcome.passed() {
            reporter.reported += 1;
            reporter.reported <= MAX_REPORTS
        } else {
            false
        };
        if print {
            match label {
                Some(label) => eprintln!("profile {label}: {}", outcome.report()),
                None => eprintln!("{}", outcome.report()),
            }
        }
        totals += outcome.counts;
    }
    totals
}

/// The totals in the last line's format.
fn totals_line(seeds: u64, totals: &Counts) -> String {
    format!(
        "seeds={} messages={} delivered={} failed={} duplicates={} phantom={} unresolved={} violations={}",
        seeds,
        totals.messages,
        totals.delivered,
        totals.failed,
        totals.duplicates,
        totals.phantom,
        totals.unresolved,
        totals.violations
    )
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(problem) => return usage(&problem),
    };
    let mut reporter = Reporter {
        reported: 0,
        trace: args.trace,
        report_all: args.report_all,
    };
    let (runs, totals) = match args.matrix {
        Matrix::One(knobs) => {
            let knobs = with_overrides(knobs, args.overrides);
            let totals = run(args.first_seed, args.seeds, knobs, None, &mut reporter);
            (args.seeds, totals)
        }
        Matrix::AllProfiles => {
            let matrix = Profile::ALL
                .into_iter()
                .map(|profile| (profile_name(profile), profile.knobs()))
                .chain([("mixed".to_string(), Knobs::default())]);
            let mut totals = Counts::default();
            let mut runs = 0u64;
            for (name, knobs) in matrix {
                let knobs = with_overrides(knobs, args.overrides);
                let counts = run(
                    args.first_seed,
                    args.seeds,
                    knobs,
                    Some(&name),
                    &mut reporter,
                );
                println!("profile={name} {}", totals_line(args.seeds, &counts));
                totals += counts;
                runs = runs.saturating_add(args.seeds);
            }
            (runs, totals)
        }
    };
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
            "late copies replayed just inside their lifetime: {}",
            totals.late_replays
        );
    }
    if totals.rebound_duplicates > 0 {
        println!(
            "copies from a NAT's new port recognised: {}",
            totals.rebound_duplicates
        );
    }
    if totals.fragments_received > 0 {
        println!(
            "fragments of large messages taken: {}, incomplete messages expired: {}",
            totals.fragments_received, totals.large_messages_expired
        );
    }
    if totals.pmtu[0] > 0 {
        let [sent, confirmed, answered, black_holes] = totals.pmtu;
        println!(
            "path MTU probes: sent {sent}, confirmed {confirmed}, answered {answered}, \
             black holes {black_holes}"
        );
    }
    println!("invariants: {}", totals.by_kind);
    println!("{}", totals_line(runs, &totals));
    if totals.violations > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
