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
