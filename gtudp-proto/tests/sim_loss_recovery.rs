//! Loss recovery in virtual time: early detection and tail-loss probes
//! finish a lossy transfer far sooner than the retransmission timeout alone,
//! and reordering within the window is not taken for loss.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use gtudp_proto::sim::{LinkProfile, World};
use gtudp_proto::{Config, CongestionAlgorithm, EndpointStats, Event, SendOptions};

const MESSAGES: usize = 2_000;

/// A world on `link` keeping its events, with a sender (node 0) and a
/// receiver (node 1), both with `config`.
fn sender_and_receiver(seed: u64, link: LinkProfile, config: Config) -> (World, usize, usize) {
    let mut world = World::new(seed, link);
    world.keep_events(true);
    let a = world
        .add_endpoint("10.0.0.1:1".parse().unwrap(), config.clone())
        .unwrap();
    let b = world
        .add_endpoint("10.0.0.2:1".parse().unwrap(), config)
        .unwrap();
    (world, a, b)
}

/// Runs `world` in 50 ms steps until `MESSAGES` of `sender`'s messages are
/// delivered or `limit` passes (a failure panics with the trace); returns
/// how many were, and when the last one was.
fn run_until_delivered(
    world: &mut World,
    sender: usize,
    seed: u64,
    limit: Duration,
) -> (usize, Duration) {
    let (mut delivered, mut last) = (0, Duration::ZERO);
    let mut until = Duration::ZERO;
    while delivered < MESSAGES && until < limit {
        until += Duration::from_millis(50);
        world.run_until(until);
        for (at, event) in world.take_events(sender) {
            match event {
                Event::Delivered { .. } => {
                    delivered += 1;
                    last = at;
                }
                Event::Failed { .. } => panic!("seed {seed}: a message failed\n{}", world.trace()),
                _ => {}
            }
        }
    }
    (delivered, last)
}

/// Sends `MESSAGES` from node 0 to node 1 over `link`; returns the virtual
/// time when the last one resolved and the sender's stats.
fn transfer(seed: u64, link: LinkProfile, config: Config) -> (Duration, EndpointStats) {
    let (mut world, a, b) = sender_and_receiver(seed, link, config);
    for _ in 0..MESSAGES {
        world
            .send(a, world.address(b), 100, SendOptions::default())
            .unwrap();
    }
    let (resolved, last) = run_until_delivered(&mut world, a, seed, Duration::from_secs(600));
    assert_eq!(
        resolved,
        MESSAGES,
        "seed {seed}: unresolved\n{}",
        world.trace()
    );
    assert!(
        world.violations().is_empty(),
        "seed {seed}\n{}",
        world.trace()
    );
    (last, world.endpoint(a).stats())
}

fn lossy(loss: f64) -> LinkProfile {
    let mut link = LinkProfile::clean();
    link.loss = loss;
    link.delay = Duration::from_millis(10);
    link
}

#[test]
fn early_detection_finishes_far_sooner_than_the_timeout_alone() {
    for (seed, loss) in [(1, 0.1), (2, 0.3)] {
        // The default controller: with AIMD the window halves on every
        // loss, and that, not the detection, limits the transfer.
        let config = Config::default();
        assert_eq!(config.congestion, CongestionAlgorithm::Bbr);
        let (early, stats) = transfer(seed, lossy(loss), config.clone());
        let mut rto_only_config = config;
        rto_only_config.early_loss_detection = false;
        let (rto_only, rto_stats) = transfer(seed, lossy(loss), rto_only_config);
        println!(
            "seed {seed} loss {loss}: {early:?} (early {}, probes {}, timeouts {}) \
             vs RTO only {rto_only:?} (timeouts {})",
            stats.loss_detected_early,
            stats.tail_loss_probes,
            stats.retransmission_timeouts,
            rto_stats.retransmission_timeouts
        );
        assert!(stats.loss_detected_early > 0);
        assert_eq!(
            rto_stats.loss_detected_early + rto_stats.tail_loss_probes,
            0
        );
        assert!(
            early * 4 < rto_only,
            "seed {seed} loss {loss}: {early:?} is not far below {rto_only:?}"
        );
    }
}

#[test]
fn reordering_within_the_window_causes_no_early_retransmission() {
    // Jitter of 1 ms on a 20 ms round trip reorders datagrams by less than
    // the reordering window (a quarter of the minimum RTT): nothing is lost,
    // so nothing may be resent.
    let mut link = LinkProfile::clean();
    link.delay = Duration::from_millis(10);
    link.jitter = Duration::from_millis(1);
    let (_, stats) = transfer(3, link, Config::default());
    assert_eq!(stats.retransmissions, 0, "{stats:?}");
    assert_eq!(stats.loss_detected_early, 0);
}

#[test]
fn spurious_detections_are_recognised_and_widen_the_window() {
    // Reordering of up to 12 ms on a 20 ms path: early detections fire for
    // messages that are only late, until the window has learned how late
    // they come; their RECVs tell that the resends were spurious.
    let mut link = LinkProfile::clean();
    link.delay = Duration::from_millis(10);
    link.reorder = 0.05;
    link.reorder_delay = Duration::from_millis(12);
    let (_, stats) = transfer(4, link, Config::default());
    assert!(stats.spurious_retransmissions > 0, "{stats:?}");
    // The window widens after them: with it fixed at a quarter of the
    // RTT, 122 of the reordered datagrams (about 5% of 2,000 DATA and as
    // many RECVs) end in a retransmission; learning halves that.
    println!(
        "EARLY {} spurious {}",
        stats.loss_detected_early, stats.spurious_retransmissions
    );
    assert!(stats.loss_detected_early < 80, "{stats:?}");
}

#[test]
fn reordering_a_lost_recv_could_explain_widens_the_window_to_the_smoothed_rtt_only() {
    // 30 ms of lateness on a 20 ms path is also what a RECV lost and
    // resent by the receiver after its RTO looks like: the window widens
    // to the smoothed RTT (RFC 8985's bound) and no further, so most of
    // these messages are resent (and counted spurious), and a lossy path
    // does not wait longer than a round trip for RECVs that are lost.
    let mut link = LinkProfile::clean();
    link.delay = Duration::from_millis(10);
    link.reorder = 0.05;
    link.reorder_delay = Duration::from_millis(30);
    let (_, stats) = transfer(4, link, Config::default());
    assert!(stats.spurious_retransmissions > 0, "{stats:?}");
    assert!(
        stats.spurious_retransmissions * 10 >= stats.retransmissions * 8,
        "most resends are recognised as spurious: {stats:?}"
    );
}

#[test]
fn jitter_fifty_times_the_minimum_rtt_is_learned_not_resent() {
    // 50 us of delay and up to 5 ms of jitter each way (the lossy_demo
    // relay's case on loopback): nothing is lost, but messages arrive up to
    // 10 ms out of order on a 0.1 ms path. The window learns it from the
    // messages that come late; the late messages resent before it had are
    // measured by their second RECV. Bounding the window by the RTT estimate
    // (which Karn's rule keeps blind to exactly these messages) gave 302
    // resends over these six seeds, a window of min_rtt/4 thousands.
    let mut resent = Vec::new();
    for seed in 1..=6 {
        let mut link = LinkProfile::clean();
        link.delay = Duration::from_micros(50);
        link.jitter = Duration::from_millis(5);
        let (_, stats) = transfer(seed, link, Config::default());
        assert_eq!(stats.retransmission_timeouts, 0, "seed {seed}: {stats:?}");
        resent.push(stats.retransmissions);
    }
    // Issue 19's goal for the relay: at most 20 resends per 2,000 messages.
    // (Resending what the validation probe drew after the bare round trip
    // of the probe's exchange, instead of a retransmission timeout, added
    // 10 to 32 on half of these seeds.)
    assert!(
        resent.iter().all(|&count| count <= 20),
        "resends per seed {resent:?}"
    );
}

#[test]
fn a_growing_queue_does_not_make_the_receiver_resend_its_recvs() {
    // 1,000-byte messages through a 10 Mbit/s bottleneck with a 40 ms
    // queue on a 100 ms path, paced by the default controller, whose
    // Startup and probes grow a queue: the RTT climbs by tens of
    // milliseconds within a few round trips. On a paced path the RTO is a
    // millisecond above the smoothed RTT; a RECV timer at that RTO fired
    // for every RECV once a queue of a few milliseconds built, no resent
    // RECV then gave an RTT sample (Karn's rule), and the receiver went on
    // resending nearly every RECV, each drawing a second ACK into the
    // queue: 1,484 resent for 2,000 messages. Resent RECVs should answer
    // lost ACKs, and here none is lost.
    let seed = 1;
    let (mut world, a, b) =
        sender_and_receiver(seed, nothing_lost_on_the_path(), Config::default());
    let mut bottleneck = nothing_lost_on_the_path();
    bottleneck.rate = Some(1_250_000);
    bottleneck.queue_limit = Duration::from_millis(40);
    let (from, to) = (world.address(a), world.address(b));
    world.network_mut().set_link(from, to, bottleneck);
    for _ in 0..MESSAGES {
        world.send(a, to, 1_000, SendOptions::default()).unwrap();
    }
    let (delivered, _) = run_until_delivered(&mut world, a, seed, Duration::from_secs(60));
    assert_eq!(delivered, MESSAGES, "seed {seed}");
    assert!(
        world.violations().is_empty(),
        "seed {seed}\n{}",
        world.trace()
    );
    let receiver = world.endpoint(b).stats();
    assert!(
        receiver.recv_retransmissions * 20 < MESSAGES as u64,
        "seed {seed}: {} RECVs resent for {MESSAGES} messages: {receiver:?}",
        receiver.recv_retransmissions
    );
}

/// 50 ms each way, nothing lost, no jitter.
fn nothing_lost_on_the_path() -> LinkProfile {
    let mut link = LinkProfile::clean();
    link.delay = Duration::from_millis(50);
    link
}
