//! The harness tells the truth: no violation reported for what the protocol
//! does not promise, and every violation reported under the guarantee it
//! broke (see `gtudp_proto::sim::ViolationKind`).
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use gtudp_proto::sim::{
    LinkProfile, Profile, Scenario, TraceEntry, ViolationCounts, ViolationKind, Wire, World,
};
use gtudp_proto::wire::PacketKind;
use gtudp_proto::{Config, SendOptions};

/// Seeds of the corrupt profile where a late replay of an intact DATA was
/// timed from the ACK that ended the exchange of a corrupted copy under the
/// same identity (a new message to the receiver), so it came later than the
/// original's last transmission plus the datagram lifetime, past the
/// receiver's promise, and was reported as a duplicate.
const CORRUPT_REPLAY_SEEDS: [u64; 5] = [5_003_686, 5_005_808, 5_007_299, 5_010_031, 5_017_683];

#[test]
fn corrupt_replays_stay_within_the_promise() {
    for seed in CORRUPT_REPLAY_SEEDS {
        // As `soak --profile corrupt --first-seed SEED` runs it.
        let scenario = Scenario::generate(seed, Profile::Corrupt.knobs());
        assert!(scenario.late_replays, "seed {seed}");
        let outcome = scenario.run();
        assert!(outcome.passed(), "{}", outcome.report());
        assert!(outcome.counts.late_replays > 0, "seed {seed}");
    }
}

/// A late replay is a copy of the DATA's last transmission arriving 1 ms
/// before the datagram lifetime has passed since it was sent, not since the
/// ACK arrived.
#[test]
fn a_replay_arrives_within_the_lifetime_of_the_last_transmission() {
    let mut link = LinkProfile::clean();
    link.delay = Duration::from_millis(5);
    let mut world = World::new(1, link);
    world.set_late_replays(true);
    let config = Config::default();
    let lifetime = config.datagram_lifetime;
    let a = world
        .add_endpoint("10.0.0.1:1".parse().unwrap(), config.clone())
        .unwrap();
    let b = world
        .add_endpoint("10.0.0.2:2".parse().unwrap(), config)
        .unwrap();
    world
        .send(a, world.address(b), 10, SendOptions::default())
        .unwrap();
    world.run_until(Duration::from_secs(10));
    let counts = world.finish(false);
    assert!(world.violations().is_empty(), "{:?}", world.violations());
    assert_eq!((counts.delivered, counts.late_replays), (1, 1));

    let data = |entry: &TraceEntry| match *entry {
        TraceEntry::Sent {
            at,
            wire: Wire::Gtudp(PacketKind::Data, _),
            ..
        } => Some((true, at)),
        TraceEntry::Arrived {
            at,
            wire: Wire::Gtudp(PacketKind::Data, _),
            ..
        } => Some((false, at)),
        _ => None,
    };
    let entries: Vec<(bool, Duration)> = world.trace().entries().filter_map(data).collect();
    let last_sent = entries.iter().filter(|(sent, _)| *sent).map(|e| e.1).max();
    let last_arrived = entries.iter().filter(|(sent, _)| !*sent).map(|e| e.1).max();
    let (last_sent, replayed) = (last_sent.unwrap(), last_arrived.unwrap());
    assert_eq!(replayed, last_sent + lifetime - Duration::from_millis(1));
}

/// A copy delayed far beyond the receiver's `datagram_lifetime` is outside
/// the protocol's promise: the receiver has forgotten it and hands it over
/// again. The world reports that repeat, and reports it as a duplicate.
#[test]
fn a_repeat_is_reported_as_a_duplicate() {
    let mut world = World::new(3, LinkProfile::clean());
    let mut config = Config::default();
    config.datagram_lifetime = Duration::from_millis(20);
    let a = world
        .add_endpoint("10.0.0.1:1".parse().unwrap(), config.clone())
        .unwrap();
    let b = world
        .add_endpoint("10.0.0.2:2".parse().unwrap(), config)
        .unwrap();
    // Every DATA from a to b arrives twice, copies held back up to 3 s.
    let mut late = LinkProfile::clean();
    late.duplicate = 1.0;
    late.reorder = 0.5;
    late.reorder_delay = Duration::from_secs(3);
    let (from, to) = (world.address(a), world.address(b));
    world.network_mut().set_link(from, to, late);
    for _ in 0..8 {
        world.send(a, to, 10, SendOptions::default()).unwrap();
    }
    world.run_until(Duration::from_secs(30));
    let counts = world.finish(false);

    assert!(counts.duplicates > 0, "{counts:?}");
    assert_eq!(
        counts.by_kind.get(ViolationKind::Duplicate),
        counts.duplicates
    );
    assert_eq!(counts.by_kind.total(), counts.violations);
    assert_eq!(counts.violations, counts.duplicates, "{counts:?}");
    for violation in world.violations() {
        assert_eq!(violation.kind, ViolationKind::Duplicate, "{violation:?}");
        assert!(violation.what.contains("a second time"), "{violation:?}");
    }
}

/// A send that had to be delivered fails, and another never resolves: each
/// is counted under its own kind.
#[test]
fn failures_and_unresolved_sends_are_reported_by_kind() {
    let mut world = World::new(5, LinkProfile::clean());
    let a = world
        .add_endpoint("10.0.0.1:1".parse().unwrap(), Config::default())
        .unwrap();
    let nowhere = "10.9.9.9:9".parse().unwrap();
    world.set_must_deliver(true);
    let mut options = SendOptions::default();
    options.max_attempts = Some(2);
    world.send(a, nowhere, 4, options).unwrap();
    world.run_until(Duration::from_secs(60));
    // Sent just before the end: no outcome yet.
    world.send(a, nowhere, 4, SendOptions::default()).unwrap();
    let counts = world.finish(false);

    let kinds: Vec<ViolationKind> = world.violations().iter().map(|v| v.kind).collect();
    assert_eq!(
        kinds,
        [ViolationKind::MustDeliverFailed, ViolationKind::Unresolved]
    );
    assert_eq!(counts.by_kind.get(ViolationKind::MustDeliverFailed), 1);
    assert_eq!(counts.by_kind.get(ViolationKind::Unresolved), 1);
    assert_eq!(counts.unresolved, 1);
    assert_eq!(counts.by_kind.total(), counts.violations);
    let line = counts.by_kind.to_string();
    assert!(line.contains("must_deliver_failed=1"), "{line}");
    assert!(line.contains("unresolved=1"), "{line}");
    assert!(line.starts_with("duplicate=0 phantom=0 "), "{line}");
}

#[test]
fn every_kind_is_counted_apart_under_its_own_name() {
    let names: BTreeSet<&str> = ViolationKind::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(names.len(), ViolationKind::ALL.len());
    for kind in ViolationKind::ALL {
        let mut counts = ViolationCounts::default();
        counts.add(kind);
        for (other, count) in counts.iter() {
            assert_eq!(count, u64::from(other == kind), "{kind} {other}");
        }
        assert!(counts.to_string().contains(&format!("{kind}=1")));
    }
}
