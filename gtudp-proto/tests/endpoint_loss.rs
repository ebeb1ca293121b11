//! Congestion control, RTT samples and loss detection, driving two
//! endpoints by hand on virtual time: the window, tail-loss probes, early
//! loss detection and what `Delivered` says about them.

mod common;

use std::time::Duration;

use common::{config, kinds, Pair};
use gtudp_proto::wire::PacketKind;
use gtudp_proto::{CongestionAlgorithm, Event};

use PacketKind::Data;

#[test]
fn congestion_window_limits_messages_in_flight() {
    let mut a_config = config();
    a_config.congestion = CongestionAlgorithm::Aimd;
    a_config.initial_window = 2;
    let mut pair = Pair::with_configs(a_config, config());
    let ids: Vec<_> = (0..5).map(|_| pair.send(b"m")).collect();
    let first = pair.out_a();
    assert_eq!(kinds(&first), [Data, Data]);
    assert_eq!(pair.a.peer_stats(pair.b_addr).map(|s| s.queued), Some(3));
    for datagram in &first {
        pair.deliver_to_b(datagram);
    }
    pair.exchange();
    let delivered: Vec<_> = pair
        .events_a()
        .into_iter()
        .filter_map(|event| match event {
            Event::Delivered { id, .. } => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(delivered.len(), 5);
    for id in ids {
        assert!(delivered.contains(&id));
    }
    assert!(pair.a.peer_stats(pair.b_addr).map(|s| s.window) > Some(2));
}

#[test]
fn timeouts_shrink_the_aimd_window() {
    let mut a_config = config();
    a_config.congestion = CongestionAlgorithm::Aimd;
    a_config.initial_window = 8;
    let mut pair = Pair::with_configs(a_config, config());
    for _ in 0..8 {
        pair.send(b"m");
    }
    assert_eq!(pair.out_a().len(), 8);
    pair.advance();
    assert_eq!(pair.a.peer_stats(pair.b_addr).map(|s| s.window), Some(4));
}

#[test]
fn rtt_is_measured_from_unambiguous_exchanges() {
    let mut pair = Pair::new();
    pair.send(b"x");
    let data = pair.out_a();
    pair.advance_by(Duration::from_millis(30));
    pair.deliver_to_b(&data[0]);
    let recv = pair.out_b();
    pair.advance_by(Duration::from_millis(30));
    pair.deliver_to_a(&recv[0]);
    let stats = pair.a.peer_stats(pair.b_addr).expect("tracked");
    assert_eq!(stats.rtt, Some(Duration::from_millis(60)));
    assert_eq!(stats.rto, Duration::from_millis(180), "SRTT + 4 × RTTVAR");
    assert!(stats.validated);
    // B measures RECV → ACK.
    let ack = pair.out_a();
    pair.advance_by(Duration::from_millis(30));
    pair.deliver_to_b(&ack[0]);
    let b_stats = pair.b.peer_stats(pair.a_addr).expect("tracked");
    assert_eq!(b_stats.rtt, Some(Duration::from_millis(60)));
}

#[test]
fn no_rtt_sample_from_a_retransmitted_message() {
    let mut pair = Pair::new();
    pair.send(b"x");
    pair.out_a();
    pair.advance();
    let again = pair.out_a();
    pair.deliver_to_b(&again[0]);
    pair.exchange();
    let stats = pair.a.peer_stats(pair.b_addr).expect("tracked");
    assert_eq!(stats.rtt, None, "Karn's rule");
}

#[test]
fn a_lost_tail_is_probed_before_the_retransmission_timeout() {
    let mut pair = Pair::new();
    // One exchange gives an RTT sample.
    pair.send(b"warm-up");
    pair.exchange();
    pair.events_a();
    let sent_at = pair.now;
    pair.send(b"tail");
    // The only DATA in flight is lost: no later message can reveal it.
    assert_eq!(kinds(&pair.out_a()), [Data]);
    let at = pair.advance();
    assert_eq!(kinds(&pair.out_a()), [Data], "the probe resends it");
    assert_eq!(pair.a.stats().tail_loss_probes, 1);
    assert_eq!(pair.a.stats().retransmission_timeouts, 0);
    assert!(at - sent_at < config().min_rto, "{:?}", at - sent_at);
}

#[test]
fn a_message_sent_after_a_lost_one_reveals_it_before_the_timeout() {
    let mut pair = Pair::new();
    pair.send(b"warm-up");
    pair.exchange();
    pair.events_a();
    let sent_at = pair.now;
    pair.send(b"lost");
    pair.send(b"arrives");
    let first = pair.out_a();
    assert_eq!(kinds(&first), [Data, Data]);
    pair.deliver_to_b(&first[1]);
    pair.exchange();
    // The RECV for the later message leaves the earlier one presumed lost
    // once the reordering window passes (here its floor, 1 ms, as the RTT
    // is zero): it goes again long before the RTO.
    assert_eq!(pair.a.stats().loss_detected_early, 0);
    let at = pair.advance();
    let resent = pair.out_a();
    assert_eq!(kinds(&resent), [Data]);
    assert_eq!(resent[0].bytes, first[0].bytes);
    assert_eq!(pair.a.stats().loss_detected_early, 1);
    assert_eq!(pair.a.stats().retransmission_timeouts, 0);
    assert!(at - sent_at < config().min_rto, "{:?}", at - sent_at);
}

/// The `suspected_lost` of each message's Delivered.
fn suspected_lost(events: Vec<Event>) -> Vec<(gtudp_proto::MessageId, bool)> {
    events
        .into_iter()
        .filter_map(|event| match event {
            Event::Delivered {
                id, suspected_lost, ..
            } => Some((id, suspected_lost)),
            _ => None,
        })
        .collect()
}

#[test]
fn delivered_tells_whether_the_message_was_suspected_lost() {
    let mut pair = Pair::new();
    // Clean: never resent.
    let clean = pair.send(b"warm-up");
    pair.exchange();
    assert_eq!(suspected_lost(pair.events_a()), [(clean, false)]);

    // Early loss detection: a later message's RECV reveals the lost one.
    let lost = pair.send(b"lost");
    let revealing = pair.send(b"arrives");
    let first = pair.out_a();
    assert_eq!(kinds(&first), [Data, Data]);
    pair.deliver_to_b(&first[1]);
    pair.exchange();
    assert_eq!(suspected_lost(pair.events_a()), [(revealing, false)]);
    pair.advance();
    let resent = pair.out_a();
    assert_eq!(resent.len(), 1);
    assert_eq!(pair.a.stats().loss_detected_early, 1);
    pair.deliver_to_b(&resent[0]);
    pair.exchange();
    assert_eq!(suspected_lost(pair.events_a()), [(lost, true)]);

    // A tail-loss probe. The original arrives (only its RECV is late): the
    // RECV cannot say which copy it answers, so the message still counts
    // as suspected lost.
    let tail = pair.send(b"tail");
    let original = pair.out_a();
    assert_eq!(kinds(&original), [Data]);
    pair.advance();
    assert_eq!(kinds(&pair.out_a()), [Data], "the probe resends it");
    assert_eq!(pair.a.stats().tail_loss_probes, 1);
    pair.deliver_to_b(&original[0]);
    pair.exchange();
    assert_eq!(suspected_lost(pair.events_a()), [(tail, true)]);
    assert_eq!(pair.a.stats().retransmission_timeouts, 0);
}
