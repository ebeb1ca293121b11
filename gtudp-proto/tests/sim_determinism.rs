//! The simulator's own promises: the same seed gives the same run, and a
//! broken guarantee is reported with its seed and a trace.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use gtudp_proto::sim::{Knobs, LinkProfile, Profile, Scenario, World};
use gtudp_proto::{Config, SendOptions};

#[test]
fn same_seed_same_run_byte_for_byte() {
    for seed in [1, 2, 3, 99, 12345] {
        let scenario = Scenario::generate(seed, Knobs::default());
        let a = scenario.run();
        let b = Scenario::generate(seed, Knobs::default()).run();
        assert_eq!(a.counts, b.counts, "seed {seed}");
        assert_eq!(a.trace.to_string(), b.trace.to_string(), "seed {seed}");
        assert!(a.passed(), "{}", a.report());
    }
}

#[test]
fn different_seeds_differ() {
    let a = Scenario::generate(10, Profile::Loss30.knobs()).run();
    let b = Scenario::generate(11, Profile::Loss30.knobs()).run();
    assert_ne!(a.trace.to_string(), b.trace.to_string());
}

#[test]
fn report_names_the_seed_and_prints_a_trace() {
    // A send to an address where no endpoint listens, declared as one that
    // must be delivered: the world reports it failing.
    let mut world = World::new(5, LinkProfile::clean());
    let config = Config::default();
    let a = world
        .add_endpoint("10.0.0.1:1".parse().unwrap(), config)
        .unwrap();
    world.set_must_deliver(true);
    let mut options = SendOptions::default();
    options.max_attempts = Some(2);
    world
        .send(a, "10.9.9.9:9".parse().unwrap(), 4, options)
        .unwrap();
    world.run_until(Duration::from_secs(60));
    let counts = world.finish(false);
    assert_eq!(counts.violations, 1);
    assert!(world.violations()[0].what.contains("Failed"));
    let trace = world.trace().to_string();
    assert!(trace.contains("send"), "{trace}");
    assert!(trace.contains("DATA"), "{trace}");
}
