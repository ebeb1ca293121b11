//! The simulator's own promises: the same seed gives the same run, and a
//! broken guarantee is reported with its seed and a trace.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use gtudp_proto::sim::{Knobs, LinkProfile, Profile, Scenario, SlowReader, World};
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
fn corruption_and_slow_readers_replay_byte_for_byte() {
    for seed in [4, 5, 6] {
        let a = Scenario::generate(seed, Profile::Corrupt.knobs()).run();
        let b = Scenario::generate(seed, Profile::Corrupt.knobs()).run();
        assert_eq!(a.counts, b.counts, "seed {seed}");
        assert_eq!(a.network, b.network, "seed {seed}");
        assert_eq!(a.trace.to_string(), b.trace.to_string(), "seed {seed}");
        assert!(a.passed(), "{}", a.report());
    }
}

#[test]
fn slow_reader_that_pauses_loses_nothing() {
    let mut world = World::new(8, LinkProfile::clean());
    let a = world
        .add_endpoint("10.0.0.1:1".parse().unwrap(), Config::default())
        .unwrap();
    let mut config = Config::default();
    config.limits.max_unread = 2;
    let b = world
        .add_endpoint("10.0.0.2:1".parse().unwrap(), config)
        .unwrap();
    world.set_slow_reader(
        b,
        Some(SlowReader {
            min_reading: Duration::from_millis(50),
            max_reading: Duration::from_millis(100),
            max_stall: Duration::from_millis(300),
            pause: 0.5,
        }),
    );
    world.set_must_deliver(true);
    let to = world.address(b);
    for i in 0..20 {
        world.run_until(Duration::from_millis(40 * i));
        world.send(a, to, 8, SendOptions::default()).unwrap();
    }
    world.run_until(Duration::from_secs(30));
    let counts = world.finish(false);
    assert!(world.violations().is_empty(), "{:?}", world.violations());
    assert_eq!((counts.messages, counts.delivered), (20, 20));
    let dropped = world.endpoint(b).stats().dropped;
    assert!(
        dropped.data_unanswered_paused > 0 && dropped.data_unanswered_full > 0,
        "{dropped:?}"
    );
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
