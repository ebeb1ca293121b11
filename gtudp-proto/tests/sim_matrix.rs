//! The seed matrix: 14,250 simulated runs across network profiles, each
//! checking every guarantee of the protocol (see `gtudp_proto::sim`).
//!
//! One test per profile, so the test harness spreads them over the cores. A
//! failure prints the seed, the scenario, what broke and the last datagrams
//! and events; replay it with
//! `Scenario::generate(seed, Profile::X.knobs()).run()`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gtudp_proto::sim::{Counts, Profile, Scenario};
use gtudp_proto::DropCounts;

/// Runs `count` seeds of `profile`, failing with the first reports. Returns
/// the totals and the endpoints' drop counters summed.
fn matrix(profile: Profile, count: u64) -> (Counts, DropCounts) {
    let index = Profile::ALL.iter().position(|p| *p == profile).unwrap() as u64;
    let first = index * 1_000_000;
    let mut totals = Counts::default();
    let mut dropped = DropCounts::default();
    let mut failures = Vec::new();
    for seed in first..first + count {
        let outcome = Scenario::generate(seed, profile.knobs()).run();
        totals += outcome.counts;
        for stats in &outcome.endpoints {
            dropped.data_unanswered_full += stats.dropped.data_unanswered_full;
            dropped.data_unanswered_paused += stats.dropped.data_unanswered_paused;
            dropped.data_deferred_unvalidated += stats.dropped.data_deferred_unvalidated;
        }
        if !outcome.passed() && failures.len() < 3 {
            failures.push(outcome.report());
        }
    }
    assert!(
        failures.is_empty(),
        "{profile:?}: {} violations over {count} seeds\n{}",
        totals.violations,
        failures.join("\n")
    );
    assert!(totals.messages >= count, "{profile:?}: too few messages");
    if profile.knobs().slow_readers == Some(true) {
        // Late readers reach both receive-side refusals.
        assert!(
            dropped.data_unanswered_full > 0 && dropped.data_unanswered_paused > 0,
            "{profile:?}: {dropped:?}"
        );
    }
    (totals, dropped)
}

#[test]
fn nat() {
    let (totals, _) = matrix(Profile::Nat, 1_000);
    // Retransmissions did reach the receivers from ports they had not
    // seen, and were recognised (none was handed over twice: `matrix`).
    assert!(totals.rebound_duplicates > 50, "{totals:?}");
}

#[test]
fn roam() {
    let (totals, _) = matrix(Profile::Roam, 1_000);
    // Retransmissions did reach the receivers from IP addresses they had
    // not seen, and were recognised by their sender's token (none was
    // handed over twice: `matrix`).
    assert!(totals.rebound_duplicates > 50, "{totals:?}");
}

#[test]
fn large() {
    let (totals, _) = matrix(Profile::Large, 1_000);
    // Messages of many fragments were sent, each handed over whole and once
    // (`matrix`), and incomplete ones were dropped once their senders had
    // stopped.
    assert!(totals.fragments_received > 10_000, "{totals:?}");
    assert!(totals.large_messages_expired > 0, "{totals:?}");
}

#[test]
fn clean() {
    let (totals, _) = matrix(Profile::Clean, 1_000);
    // Without loss only deadlines, attempt limits and cancels fail messages.
    assert!(totals.delivered > totals.failed * 3, "{totals:?}");
}

#[test]
fn loss_10() {
    matrix(Profile::Loss10, 1_250);
}

#[test]
fn loss_30() {
    matrix(Profile::Loss30, 1_250);
}

#[test]
fn loss_50() {
    matrix(Profile::Loss50, 1_500);
}

#[test]
fn duplication() {
    matrix(Profile::Duplication, 1_250);
}

#[test]
fn reordering() {
    matrix(Profile::Reordering, 1_250);
}

#[test]
fn partitions() {
    matrix(Profile::Partitions, 1_250);
}

#[test]
fn hostile() {
    matrix(Profile::Hostile, 1_250);
}

#[test]
fn corrupt() {
    let (totals, _) = matrix(Profile::Corrupt, 1_250);
    // Corruption reached the endpoints, and some of it was taken as DATA.
    assert!(
        totals.corrupted > 1_000 && totals.corrupt_received > 100,
        "{totals:?}"
    );
}

#[test]
fn flood() {
    let (totals, dropped) = matrix(Profile::Flood, 1_000);
    assert_eq!(totals.failed, 0, "{totals:?}");
    assert_eq!(totals.delivered, totals.messages, "{totals:?}");
    // Floods from more addresses than `max_unvalidated_peers` are answered
    // with stateless probes.
    assert!(dropped.data_deferred_unvalidated > 0, "{dropped:?}");
}

/// Under the flood, each seed's slowest delivery stays within a bound of the
/// same scenario without it: three times, plus one initial RTO.
#[test]
fn flood_latency_stays_within_a_bound_of_the_unloaded_run() {
    let index = Profile::ALL
        .iter()
        .position(|p| *p == Profile::Flood)
        .unwrap() as u64;
    let mut worst: Option<(f64, u64)> = None;
    for seed in index * 1_000_000 + 1_000..index * 1_000_000 + 1_200 {
        let scenario = Scenario::generate(seed, Profile::Flood.knobs());
        let flooded = scenario.run();
        let unloaded = scenario.without_hostile().run();
        assert!(
            flooded.passed() && unloaded.passed(),
            "{}",
            flooded.report()
        );
        let bound = unloaded.longest_delivery * 3 + scenario.config.initial_rto;
        assert!(
            flooded.longest_delivery <= bound,
            "seed {seed}: {:?} under the flood, {:?} without\n{}",
            flooded.longest_delivery,
            unloaded.longest_delivery,
            flooded.report()
        );
        let ratio = flooded.longest_delivery.as_secs_f64()
            / unloaded.longest_delivery.as_secs_f64().max(1e-6);
        if worst.map_or(true, |(r, _)| ratio > r) {
            worst = Some((ratio, seed));
        }
    }
    println!("worst flooded/unloaded latency: {worst:?}");
}
