//! Back-pressure and bounded state, driving endpoints by hand on virtual
//! time: a full or paused receiver, and tables, timers and queues that
//! stay bounded.

mod common;

use bytes::Bytes;
use common::{addr, config, kinds, Pair};
use gtudp_proto::wire::PacketKind;
use gtudp_proto::{Event, SendErrorKind};

use PacketKind::Recv;

#[test]
fn full_receiver_leaves_new_data_unanswered_until_read() {
    let mut b_config = config();
    b_config.limits.max_unread = 2;
    let mut pair = Pair::with_configs(config(), b_config);
    for _ in 0..3 {
        pair.send(b"m");
    }
    let data = pair.out_a();
    for datagram in &data {
        pair.deliver_to_b(datagram);
    }
    assert_eq!(
        kinds(&pair.out_b()),
        [Recv, Recv],
        "the third DATA is not answered"
    );
    assert_eq!(pair.b.stats().dropped.data_unanswered_full, 1);
    // Reading frees room; the third DATA's retransmission is accepted.
    assert_eq!(pair.events_b().len(), 2);
    let at = pair.a.poll_timeout().expect("retransmission");
    pair.advance_to(at);
    pair.exchange();
    assert_eq!(pair.events_b().len(), 1);
    let delivered = pair
        .events_a()
        .iter()
        .filter(|e| matches!(e, Event::Delivered { .. }))
        .count();
    assert_eq!(delivered, 3);
}

#[test]
fn full_awaiting_table_leaves_new_data_unanswered() {
    let mut b_config = config();
    b_config.limits.max_awaiting_ack_per_peer = 1;
    let mut pair = Pair::with_configs(config(), b_config);
    pair.send(b"1");
    pair.send(b"2");
    let data = pair.out_a();
    pair.deliver_to_b(&data[0]);
    pair.deliver_to_b(&data[1]);
    assert_eq!(kinds(&pair.out_b()), [Recv]);
    assert_eq!(pair.events_b().len(), 1);
    assert_eq!(pair.b.stats().dropped.data_unanswered_full, 1);
}

#[test]
fn idle_peers_are_forgotten() {
    let mut pair = Pair::new();
    pair.send(b"x");
    pair.exchange();
    assert!(pair.a.peer_stats(pair.b_addr).is_some());
    pair.advance_by(config().peer_idle_timeout);
    assert!(pair.a.peer_stats(pair.b_addr).is_none());
    pair.advance_by(config().remember_window);
    assert_eq!(pair.b.table_sizes().peers, 0);
    assert_eq!(pair.b.table_sizes().awaiting_ack, 0);
    assert_eq!(pair.b.table_sizes().remembered, 0);
}

#[test]
fn timer_heap_stays_bounded_when_timeouts_are_rare() {
    // A busy endpoint whose next timeout is far away: every delivered message
    // leaves a stale retransmission timer behind, and they must not pile up.
    let mut pair = Pair::new();
    for _ in 0..200 {
        for _ in 0..50 {
            pair.send(b"m");
        }
        pair.exchange();
        pair.events_a();
        pair.events_b();
    }
    assert_eq!(pair.a.stats().delivered, 10_000);
    for endpoint in [&pair.a, &pair.b] {
        let sizes = endpoint.table_sizes();
        // Per peer: its idle countdown and its send-side timer.
        let live = sizes.messages + sizes.awaiting_ack + 2 * sizes.peers + 1;
        assert!(
            sizes.timers <= 2 * live + 64 + 64,
            "{} timer entries for {live} live timers",
            sizes.timers
        );
    }
}

#[test]
fn transmit_queue_stays_bounded_when_never_polled() {
    // An application that sends and cancels without ever polling transmits
    // must not grow the endpoint's output queue without limit.
    let mut pair = Pair::new();
    for _ in 0..10_000 {
        let id = pair.send(b"m");
        pair.a.cancel(id).expect("outstanding");
        pair.events_a();
    }
    let sizes = pair.a.table_sizes();
    assert!(
        sizes.pending_transmits <= 64 + 2,
        "{} orders queued for {} messages",
        sizes.pending_transmits,
        sizes.messages
    );
}

#[test]
fn paused_receiving_leaves_new_data_unanswered_but_answers_repeats() {
    let mut pair = Pair::new();
    pair.send(b"first");
    let first = pair.out_a();
    pair.deliver_to_b(&first[0]);
    pair.out_b();
    pair.b.set_receive_paused(true);
    pair.send(b"second");
    let second = pair.out_a();
    pair.deliver_to_b(&second[0]);
    assert!(
        pair.out_b().is_empty(),
        "a new DATA is not answered while paused"
    );
    assert_eq!(pair.b.stats().dropped.data_unanswered_paused, 1);
    pair.deliver_to_b(&first[0]);
    assert_eq!(kinds(&pair.out_b()), [Recv], "a repeat is still answered");
    assert_eq!(pair.events_b().len(), 1);
    pair.b.set_receive_paused(false);
    pair.deliver_to_b(&second[0]);
    assert_eq!(kinds(&pair.out_b()), [Recv]);
    assert_eq!(pair.events_b().len(), 1);
}

#[test]
fn a_full_peer_table_makes_room_by_forgetting_the_longest_idle_peer() {
    let mut a_config = config();
    a_config.limits.max_peers = 2;
    let mut pair = Pair::with_configs(a_config, config());
    let (first, second, third) = (addr(3001), addr(3002), addr(3003));
    // Two peers with a message in flight each: both busy.
    let to_first = pair
        .a
        .send(pair.now, first, Bytes::from_static(b"1"))
        .expect("room");
    pair.a
        .send(pair.now, second, Bytes::from_static(b"2"))
        .expect("room");
    let refused = pair
        .a
        .send(pair.now, third, Bytes::from_static(b"3"))
        .expect_err("no idle peer to forget");
    assert_eq!(refused.kind(), SendErrorKind::TooManyPeers);
    // The first peer's message resolves: that peer is idle now.
    pair.a.cancel(to_first).expect("outstanding");
    pair.a
        .send(pair.now, third, Bytes::from_static(b"3"))
        .expect("room made");
    let peers: Vec<_> = pair.a.peers().collect();
    assert_eq!(peers.len(), 2);
    assert!(peers.contains(&second) && peers.contains(&third));
    assert_eq!(pair.a.stats().peers_evicted, 1);
}

#[test]
fn idle_peer_records_stay_bounded() {
    let mut pair = Pair::new();
    for round in 0..5_000u32 {
        let id = pair.send(b"x");
        pair.a.cancel(id).expect("outstanding");
        pair.events_a();
        assert!(
            pair.a.table_sizes().idle_peers <= 2 + 64 + 1,
            "round {round}"
        );
    }
}

/// Runs `endpoint`'s timers up to `until`, each at its instant.
fn run_timers_until(endpoint: &mut gtudp_proto::Endpoint, until: std::time::Instant) {
    while let Some(at) = endpoint.poll_timeout().filter(|at| *at <= until) {
        endpoint.handle_timeout(at);
    }
    endpoint.handle_timeout(until);
}

/// One message from `a` to `b` through DATA, RECV and ACK at `now`.
fn deliver_one(
    a: &mut gtudp_proto::Endpoint,
    b: &mut gtudp_proto::Endpoint,
    a_addr: std::net::SocketAddr,
    b_addr: std::net::SocketAddr,
    now: std::time::Instant,
) {
    a.send(now, b_addr, Bytes::from_static(b"m"))
        .expect("accepted");
    let mut buf = Vec::new();
    loop {
        let mut moved = false;
        while let Some(t) = a.poll_transmit(now, 1, &mut buf) {
            b.handle_datagram(now, a_addr, Bytes::copy_from_slice(&buf[..t.size]));
            moved = true;
        }
        while let Some(t) = b.poll_transmit(now, 1, &mut buf) {
            a.handle_datagram(now, b_addr, Bytes::copy_from_slice(&buf[..t.size]));
            moved = true;
        }
        if !moved {
            break;
        }
    }
    assert!(
        common::drain_events(a)
            .iter()
            .any(|event| matches!(event, Event::Delivered { .. })),
        "delivered"
    );
    common::drain_events(b);
}

#[test]
fn idle_peers_are_forgotten_each_at_its_own_deadline() {
    // Three peers go idle a second apart; one is busy again before its
    // deadline. Each is forgotten when its latest idle deadline comes, not
    // before, whatever the others' deadlines (one timer serves them all).
    let idle = config().peer_idle_timeout;
    let second = std::time::Duration::from_secs(1);
    let a_addr = addr(1000);
    let mut a = gtudp_proto::Endpoint::new(config(), 1).expect("valid");
    let mut receivers: Vec<_> = (0..3u16)
        .map(|n| {
            let endpoint = gtudp_proto::Endpoint::new(config(), 2 + u128::from(n)).expect("valid");
            (addr(2000 + n), endpoint)
        })
        .collect();
    let start = std::time::Instant::now();
    for (n, (b_addr, b)) in receivers.iter_mut().enumerate() {
        let now = start + second * n as u32;
        run_timers_until(&mut a, now);
        deliver_one(&mut a, b, a_addr, *b_addr, now);
    }
    let tracked = |a: &gtudp_proto::Endpoint, n: u16| a.peer_stats(addr(2000 + n)).is_some();
    // The second peer is busy again, and idle again, just before its
    // first deadline.
    let again = start + second + idle - second / 2;
    run_timers_until(&mut a, again);
    assert!(!tracked(&a, 0), "the first peer outlived its deadline");
    assert!(tracked(&a, 1) && tracked(&a, 2));
    let (b_addr, b) = &mut receivers[1];
    deliver_one(&mut a, b, a_addr, *b_addr, again);
    // Past the second peer's first deadline and the third's.
    run_timers_until(&mut a, start + second * 2 + idle);
    assert!(tracked(&a, 1), "forgotten at a deadline it no longer had");
    assert!(!tracked(&a, 2), "the third peer outlived its deadline");
    run_timers_until(&mut a, again + idle - second / 4);
    assert!(tracked(&a, 1), "forgotten before its deadline");
    run_timers_until(&mut a, again + idle);
    assert!(!tracked(&a, 1), "the second peer outlived its deadline");
    assert_eq!(a.table_sizes().peers, 0);
}
