//! Liveness under attack: floods of DATA from thousands of spoofed addresses
//! (far more than the peer table holds), starting just before or during a
//! legitimate exchange. Every legitimate message must be Delivered, none may
//! fail, each within a bound of its latency on the same network without the
//! flood, and the world's usual checks hold (at most three times the bytes
//! received sent to any address that is not an endpoint, every table in
//! bounds, nothing handed over twice).

use std::time::Duration;

use gtudp_proto::sim::{HostileProfile, LinkProfile, Rng, World};
use gtudp_proto::{Config, Event, SendOptions};

/// Runs one seed: three endpoints exchange messages while (when `flood`)
/// thousands of addresses send DATA. Returns the longest send-to-Delivered
/// time, failing on any violation.
fn run(seed: u64, flood: bool) -> Duration {
    let mut rng = Rng::new(seed);
    let mut link = LinkProfile::clean();
    link.delay = Duration::from_millis(rng.range(1, 20));
    link.jitter = Duration::from_millis(rng.range(0, 5));
    let mut world = World::new(seed, link);
    world.keep_events(true);
    world.set_must_deliver(true);
    let mut config = Config::default();
    config.limits.max_peers = 64;
    config.remember_window = config.max_retry_span() + Duration::from_secs(1);
    let nodes: Vec<usize> = (0..3)
        .map(|i| {
            let address = format!("10.0.0.{}:9000", i + 1).parse().expect("address");
            world.add_endpoint(address, config.clone()).expect("config")
        })
        .collect();
    let flood_start = Duration::from_millis(rng.range(0, 400));
    if flood {
        world.set_hostile(HostileProfile {
            start: flood_start,
            end: flood_start + Duration::from_secs(2),
            junk_interval: None,
            flood_sources: rng.range(1_000, 5_000) as usize,
            flood_interval: Some(Duration::from_micros(rng.range(50, 400))),
        });
    }
    // The legitimate exchange starts just after the flood, or during it.
    let mut sends = Vec::new();
    let mut at = Duration::from_millis(200);
    for _ in 0..30 {
        at += Duration::from_millis(rng.range(1, 60));
        world.run_until(at);
        let from = nodes[rng.below(3) as usize];
        let to = nodes[(from + 1 + rng.below(2) as usize) % 3];
        let id = world
            .send(from, world.address(to), 64, SendOptions::default())
            .expect("accepted");
        sends.push((from, id, at));
    }
    world.run_until(at + Duration::from_secs(30));
    let mut longest = Duration::ZERO;
    for &node in &nodes {
        for (when, event) in world.take_events(node) {
            match event {
                Event::Delivered { id, .. } => {
                    let sent = sends
                        .iter()
                        .find(|(from, sent_id, _)| *from == node && *sent_id == id)
                        .map(|(_, _, sent)| *sent)
                        .expect("a send of ours");
                    longest = longest.max(when - sent);
                }
                Event::Failed { id, reason, .. } => {
                    panic!("seed {seed}: legitimate message {id} failed ({reason}) under the flood\n{}", world.trace())
                }
                _ => {}
            }
        }
    }
    let counts = world.finish(false);
    assert!(
        world.violations().is_empty(),
        "seed {seed} (flood {flood}): {:?}\n{}",
        world.violations(),
        world.trace()
    );
    assert_eq!(counts.delivered, 30, "seed {seed}");
    longest
}

#[test]
fn legitimate_peers_keep_full_service_under_spoofed_floods() {
    for seed in 0..120 {
        let unloaded = run(seed, false);
        let flooded = run(seed, true);
        // Within a bound of the unloaded latency: at most one extra
        // retransmission timeout's worth (the initial RTO) and a factor.
        let bound = unloaded * 3 + Config::default().initial_rto;
        assert!(
            flooded <= bound,
            "seed {seed}: {flooded:?} under the flood, {unloaded:?} without"
        );
    }
}
