//! One scenario per rule of the exchange, driving two endpoints by hand on
//! virtual time. Each test decides what the network does with each datagram.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{addr, config, encode, kinds, Datagram, Pair};
use gtudp_proto::wire::{Identity, Packet, PacketKind};
use gtudp_proto::{
    CongestionAlgorithm, Endpoint, Event, FailureReason, SendErrorKind, SendOptions,
};

use PacketKind::{Ack, Data, Recv};

#[test]
fn clean_exchange_delivers_once_and_acknowledges() {
    let mut pair = Pair::new();
    let id = pair.send(b"hello");
    let data = pair.out_a();
    assert_eq!(kinds(&data), [Data]);
    pair.deliver_to_b(&data[0]);
    assert_eq!(
        pair.events_b(),
        [Event::Received {
            from: pair.a_addr,
            payload: Bytes::from_static(b"hello")
        }]
    );
    let recv = pair.out_b();
    assert_eq!(kinds(&recv), [Recv]);
    assert_eq!(recv[0].identity(), data[0].identity());
    pair.deliver_to_a(&recv[0]);
    assert_eq!(
        pair.events_a(),
        [Event::Delivered {
            id,
            to: pair.b_addr,
            suspected_lost: false
        }]
    );
    let ack = pair.out_a();
    assert_eq!(kinds(&ack), [Ack]);
    pair.deliver_to_b(&ack[0]);
    assert!(pair.out_b().is_empty());
    assert_eq!(pair.a.stats().delivered, 1);
    assert_eq!(pair.b.stats().received, 1);
}

#[test]
fn lost_data_is_resent_on_its_rto() {
    let mut pair = Pair::new();
    let id = pair.send(b"lost once");
    let first = pair.out_a();
    assert_eq!(kinds(&first), [Data]);
    let sent_at = pair.now;
    // Dropped. Nothing else happens until the retransmission timeout.
    let timeout = pair.next_timeout().expect("retransmission timer");
    assert_eq!(timeout - sent_at, config().initial_rto);
    pair.advance();
    let again = pair.out_a();
    assert_eq!(kinds(&again), [Data]);
    assert_eq!(
        again[0].bytes, first[0].bytes,
        "a retransmission reuses the identity"
    );
    pair.deliver_to_b(&again[0]);
    pair.exchange();
    assert_eq!(
        pair.events_a(),
        [Event::Delivered {
            id,
            to: pair.b_addr,
            suspected_lost: true
        }]
    );
    assert_eq!(pair.events_b().len(), 1);
    assert_eq!(pair.a.stats().retransmissions, 1);
}

#[test]
fn retransmissions_back_off_exponentially() {
    let mut pair = Pair::new();
    pair.send(b"into the void");
    let mut sends = Vec::new();
    for _ in 0..4 {
        assert_eq!(kinds(&pair.out_a()), [Data]);
        sends.push(pair.now);
        pair.advance();
    }
    let gaps: Vec<Duration> = sends.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(
        gaps,
        [100, 200, 400].map(Duration::from_millis),
        "RTO doubles after each timeout"
    );
}

#[test]
fn lost_recv_gets_a_fresh_recv_for_the_repeated_data_without_redelivery() {
    let mut pair = Pair::new();
    let id = pair.send(b"x");
    let data = pair.out_a();
    pair.deliver_to_b(&data[0]);
    assert_eq!(pair.events_b().len(), 1);
    let lost_recv = pair.out_b();
    assert_eq!(kinds(&lost_recv), [Recv]);
    // A's timer fires first (its RTO equals B's initial RECV timeout, and B's
    // clock started later): the DATA comes again.
    let at = pair.a.poll_timeout().expect("a's timer");
    pair.advance_to(at);
    let again = pair.out_a();
    assert_eq!(kinds(&again), [Data]);
    pair.deliver_to_b(&again[0]);
    assert!(pair.events_b().is_empty(), "not handed over twice");
    assert_eq!(pair.b.stats().duplicates_suppressed, 1);
    let recv = pair.out_b();
    assert_eq!(
        kinds(&recv),
        [Recv],
        "a repeated DATA gets its RECV at once"
    );
    pair.deliver_to_a(&recv[0]);
    assert_eq!(
        pair.events_a(),
        [Event::Delivered {
            id,
            to: pair.b_addr,
            suspected_lost: true
        }]
    );
}

#[test]
fn lost_ack_makes_the_receiver_resend_recv_until_acknowledged() {
    let mut pair = Pair::new();
    pair.send(b"x");
    let data = pair.out_a();
    pair.deliver_to_b(&data[0]);
    let recv = pair.out_b();
    pair.deliver_to_a(&recv[0]);
    assert_eq!(pair.events_a().len(), 1);
    let lost_ack = pair.out_a();
    assert_eq!(kinds(&lost_ack), [Ack]);
    // B resends its RECV on its own timer.
    let at = pair.b.poll_timeout().expect("RECV resend timer");
    pair.advance_to(at);
    let resent = pair.out_b();
    assert_eq!(kinds(&resent), [Recv]);
    assert_eq!(pair.b.stats().recv_retransmissions, 1);
    // A no longer tracks the message but answers with ACK all the same.
    pair.deliver_to_a(&resent[0]);
    assert!(pair.events_a().is_empty(), "no second outcome");
    let ack = pair.out_a();
    assert_eq!(kinds(&ack), [Ack]);
    assert_eq!(pair.a.stats().dropped.recv_unknown, 1);
    pair.deliver_to_b(&ack[0]);
    // Only the end of the duplicate window remains on B's timer.
    let next = pair.b.poll_timeout().expect("expiry timer");
    assert!(next - pair.now >= config().datagram_lifetime - Duration::from_millis(1));
    pair.advance_to(next);
    assert!(pair.out_b().is_empty());
}

#[test]
fn recv_resends_stop_after_their_attempt_limit() {
    let mut pair = Pair::new();
    pair.send(b"first");
    pair.exchange();
    // Large enough that the anti-amplification budget (3 × the DATA's
    // bytes) allows every RECV attempt.
    pair.send(b"a payload of some thirty bytes");
    let data = pair.out_a();
    pair.deliver_to_b(&data[0]);
    let mut recvs = pair.out_b().len();
    // Nothing reaches A any more.
    while let Some(at) = pair.b.poll_timeout() {
        pair.advance_to(at);
        recvs += pair.out_b().len();
    }
    assert_eq!(recvs, config().recv_max_attempts as usize);
    let sizes = pair.b.table_sizes();
    assert_eq!(
        (sizes.awaiting_ack, sizes.remembered, sizes.remembered_bytes),
        (0, 0, 0),
        "forgotten after the window"
    );
}

#[test]
fn duplicate_data_after_the_ack_is_not_delivered_again() {
    let mut pair = Pair::new();
    pair.send(b"once");
    let data = pair.out_a();
    pair.deliver_to_b(&data[0]);
    pair.exchange();
    assert_eq!(pair.events_b().len(), 1);
    // A delayed copy arrives after the ACK, within the datagram lifetime.
    pair.advance_by(Duration::from_millis(500));
    pair.deliver_to_b(&data[0]);
    assert!(pair.events_b().is_empty());
    assert_eq!(kinds(&pair.out_b()), [Recv]);
    assert_eq!(pair.b.stats().duplicates_suppressed, 1);
}

#[test]
fn duplicate_data_after_recv_attempts_ran_out_is_not_delivered_again() {
    let mut pair = Pair::new();
    pair.send(b"once");
    let data = pair.out_a();
    pair.deliver_to_b(&data[0]);
    assert_eq!(pair.events_b().len(), 1);
    // B's RECVs are all lost; it gives up resending but still remembers.
    let give_up = pair.now + Duration::from_secs(5);
    while pair.now < give_up {
        let Some(at) = pair.b.poll_timeout() else {
            break;
        };
        pair.advance_to(at.min(give_up));
        pair.out_b();
    }
    pair.deliver_to_b(&data[0]);
    assert!(pair.events_b().is_empty(), "remembered for remember_window");
    assert_eq!(kinds(&pair.out_b()), [Recv]);
}

#[test]
fn recv_from_another_address_does_not_confirm_delivery() {
    let mut pair = Pair::new();
    let id = pair.send(b"x");
    let data = pair.out_a();
    let forged = encode(Packet::Recv {
        identity: data[0].identity(),
    });
    let attacker = addr(6666);
    pair.a.handle_datagram(pair.now, attacker, forged);
    assert!(
        pair.events_a().is_empty(),
        "a RECV counts only from the destination"
    );
    assert_eq!(pair.a.stats().dropped.recv_wrong_source, 1);
    // Every RECV is answered; the ACK goes to the sender of the RECV.
    let ack = pair.out_a();
    assert_eq!(kinds(&ack), [Ack]);
    assert_eq!(ack[0].to, attacker);
    pair.deliver_to_b(&data[0]);
    pair.exchange();
    assert_eq!(
        pair.events_a(),
        [Event::Delivered {
            id,
            to: pair.b_addr,
            suspected_lost: false
        }]
    );
}

#[test]
fn recv_for_an_unknown_identity_is_answered_with_ack() {
    let mut pair = Pair::new();
    let identity = Identity::from_u32(0xdead_beef);
    pair.a
        .handle_datagram(pair.now, pair.b_addr, encode(Packet::Recv { identity }));
    let ack = pair.out_a();
    assert_eq!(kinds(&ack), [Ack]);
    assert_eq!(ack[0].identity(), identity);
    assert_eq!(ack[0].to, pair.b_addr);
    assert!(pair.events_a().is_empty());
    assert_eq!(pair.a.stats().dropped.recv_unknown, 1);
}

#[test]
fn deadline_expiry_fails_the_message_at_its_deadline() {
    let mut pair = Pair::new();
    let deadline = pair.now + Duration::from_millis(250);
    let id = pair
        .a
        .send_with(
            pair.now,
            pair.b_addr,
            Bytes::from_static(b"late"),
            SendOptions::default().with_deadline(deadline),
        )
        .expect("accepted");
    let mut transmissions = 0;
    loop {
        transmissions += pair.out_a().len();
        let events = pair.events_a();
        if !events.is_empty() {
            assert_eq!(
                events,
                [Event::Failed {
                    id,
                    to: pair.b_addr,
                    reason: FailureReason::DeadlineExpired
                }]
            );
            break;
        }
        pair.advance();
    }
    assert_eq!(pair.now, deadline, "resolved exactly at the deadline");
    assert_eq!(
        transmissions, 2,
        "sent at 0 and 100 ms; the next RTO is past the deadline"
    );
    assert_eq!(
        pair.a
            .send_with(
                pair.now,
                pair.b_addr,
                Bytes::new(),
                SendOptions::default().with_deadline(pair.now)
            )
            .map_err(|e| e.kind()),
        Err(SendErrorKind::DeadlineInPast)
    );
}

#[test]
fn attempts_exhausted_fails_after_the_last_rto() {
    let mut pair = Pair::new();
    let id = pair
        .a
        .send_with(
            pair.now,
            pair.b_addr,
            Bytes::from_static(b"x"),
            SendOptions::default().with_max_attempts(3),
        )
        .expect("accepted");
    let mut transmissions = 0;
    let events = loop {
        transmissions += kinds(&pair.out_a()).len();
        let events = pair.events_a();
        if !events.is_empty() {
            break events;
        }
        pair.advance();
    };
    assert_eq!(transmissions, 3);
    assert_eq!(
        events,
        [Event::Failed {
            id,
            to: pair.b_addr,
            reason: FailureReason::AttemptsExhausted
        }]
    );
    let too_many = SendOptions::default().with_max_attempts(config().max_attempts + 1);
    let error = pair
        .a
        .send_with(pair.now, pair.b_addr, Bytes::from_static(b"y"), too_many)
        .expect_err("more attempts than configured");
    assert!(matches!(
        error.kind(),
        SendErrorKind::InvalidAttempts { .. }
    ));
    assert_eq!(error.into_payload(), Bytes::from_static(b"y"));
}

#[test]
fn cancellation_resolves_once_and_late_recv_gets_ack() {
    let mut pair = Pair::new();
    let id = pair.send(b"x");
    let data = pair.out_a();
    pair.a.cancel(id).expect("outstanding");
    assert_eq!(
        pair.events_a(),
        [Event::Failed {
            id,
            to: pair.b_addr,
            reason: FailureReason::Cancelled
        }]
    );
    assert!(pair.a.cancel(id).is_err(), "already resolved");
    assert!(pair.a.poll_timeout().is_some(), "only the peer idle timer");
    pair.deliver_to_b(&data[0]);
    pair.exchange();
    assert!(pair.events_a().is_empty(), "no second outcome");
    assert_eq!(
        pair.events_b().len(),
        1,
        "the payload may still have arrived"
    );
}

#[test]
fn cancelling_a_queued_message_frees_its_place() {
    let mut a_config = config();
    a_config.initial_window = 1;
    a_config.max_window = 1;
    a_config.limits.max_queued_per_peer = 1;
    let mut pair = Pair::with_configs(a_config, config());
    let _first = pair.send(b"1");
    let second = pair.send(b"2");
    let error = pair
        .a
        .send(pair.now, pair.b_addr, Bytes::from_static(b"3"))
        .expect_err("queue full");
    assert_eq!(error.kind(), SendErrorKind::PeerQueueFull);
    assert!(error.is_retryable());
    pair.a.cancel(second).expect("queued");
    pair.send(b"3");
    assert_eq!(pair.out_a().len(), 1, "only the window's message goes out");
}

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
fn close_drains_messages_in_flight_then_empties_every_table() {
    let mut pair = Pair::new();
    let ids: Vec<_> = (0..3).map(|_| pair.send(b"m")).collect();
    pair.a.close(pair.now);
    let refused = pair
        .a
        .send(pair.now, pair.b_addr, Bytes::from_static(b"late"))
        .expect_err("closing");
    assert_eq!(refused.kind(), SendErrorKind::Closing);
    assert!(!pair.a.is_closed());
    pair.exchange();
    assert!(pair.a.is_closed());
    let outcomes = pair.events_a();
    assert_eq!(outcomes.len(), 3);
    for (id, event) in ids.iter().zip(&outcomes) {
        assert!(matches!(event, Event::Delivered { id: got, .. } if got == id));
    }
    let sizes = pair.a.table_sizes();
    assert_eq!(
        (
            sizes.peers,
            sizes.messages,
            sizes.awaiting_ack + sizes.remembered,
            sizes.timers,
            sizes.outstanding
        ),
        (0, 0, 0, 0, 0)
    );
    assert_eq!(pair.a.poll_timeout(), None);
}

#[test]
fn close_fails_what_is_left_at_the_drain_deadline() {
    let mut a_config = config();
    a_config.drain_timeout = Duration::from_secs(1);
    let mut pair = Pair::with_configs(a_config.clone(), config());
    let id = pair.send(b"to a dead peer");
    let closed_at = pair.now;
    pair.a.close(pair.now);
    while !pair.a.is_closed() {
        pair.out_a();
        let at = pair.a.poll_timeout().expect("timers run until closed");
        pair.advance_to(at);
    }
    assert_eq!(pair.now - closed_at, a_config.drain_timeout);
    assert_eq!(
        pair.events_a(),
        [Event::Failed {
            id,
            to: pair.b_addr,
            reason: FailureReason::EndpointClosed
        }]
    );
}

#[test]
fn close_keeps_resending_recv_until_acknowledged() {
    let mut pair = Pair::new();
    pair.send(b"x");
    let data = pair.out_a();
    pair.deliver_to_b(&data[0]);
    pair.b.close(pair.now);
    let lost = pair.out_b();
    assert_eq!(kinds(&lost), [Recv]);
    assert!(!pair.b.is_closed(), "a RECV still awaits its ACK");
    // A new message is not accepted while closing: left unanswered.
    pair.a
        .send(pair.now, pair.b_addr, Bytes::from_static(b"new"))
        .ok();
    let at = pair.b.poll_timeout().expect("RECV resend");
    pair.advance_to(at);
    pair.exchange();
    assert!(pair.b.is_closed());
    assert_eq!(pair.b.stats().dropped.data_unanswered_closing, 1);
    assert_eq!(pair.events_b().len(), 1);
}

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
fn foreign_datagrams_are_counted_and_dropped_by_default() {
    let mut pair = Pair::new();
    for garbage in [
        &b""[..],
        b"\x1d\x01",
        b"\x77hello",
        b"\x5f\x00\x00\x00\x00extra",
    ] {
        pair.a
            .handle_datagram(pair.now, addr(9), Bytes::copy_from_slice(garbage));
    }
    assert!(pair.events_a().is_empty());
    assert!(
        pair.out_a().is_empty(),
        "nothing answers a foreign datagram"
    );
    let invalid = pair.a.stats().invalid;
    assert_eq!(
        (
            invalid.too_short,
            invalid.unknown_type,
            invalid.wrong_length
        ),
        (2, 1, 1)
    );
    assert_eq!(pair.a.stats().dropped.foreign, 4);
}

#[test]
fn foreign_datagrams_are_handed_over_when_asked_for_and_raw_sends_bypass_framing() {
    let mut a_config = config();
    a_config.deliver_foreign = true;
    let mut pair = Pair::with_configs(a_config, config());
    let other = addr(9);
    pair.a
        .handle_datagram(pair.now, other, Bytes::from_static(b"plain udp"));
    assert_eq!(
        pair.events_a(),
        [Event::Foreign {
            from: other,
            payload: Bytes::from_static(b"plain udp")
        }]
    );
    pair.a
        .send_raw(other, Bytes::from_static(b"plain reply"))
        .expect("queued");
    let out = pair.out_a();
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].to, &out[0].bytes[..]), (other, &b"plain reply"[..]));
    assert_eq!(pair.a.stats().raw_out, 1);
}

#[test]
fn spoofed_data_does_not_make_us_send_more_than_three_times_its_bytes() {
    // Let RECV resends run as long as for any peer: the budget must stop them.
    let mut b_config = config();
    b_config.unvalidated_attempts = b_config.recv_max_attempts;
    let mut b = Endpoint::new(b_config, 3).expect("valid");
    let victim = addr(4242);
    let mut now = std::time::Instant::now();
    let data = encode(Packet::Data {
        identity: Identity::from_u32(1),
        payload: b"",
    });
    b.handle_datagram(now, victim, data.clone());
    let mut sent = 0;
    for _ in 0..100 {
        sent += common::drain_transmits(&mut b, now)
            .iter()
            .map(|d| d.bytes.len())
            .sum::<usize>();
        match b.poll_timeout() {
            Some(at) => {
                now = at;
                b.handle_timeout(now);
            }
            None => break,
        }
    }
    assert!(sent > 0);
    assert!(
        sent <= 3 * data.len(),
        "sent {sent} bytes to an address that sent {}",
        data.len()
    );
    assert!(b.stats().dropped.amplification_limited > 0);
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
fn oversized_payload_is_refused_with_the_payload_back() {
    let mut pair = Pair::new();
    let payload = Bytes::from(vec![0u8; config().max_payload_size() + 1]);
    let error = pair
        .a
        .send(pair.now, pair.b_addr, payload.clone())
        .expect_err("too large");
    assert!(matches!(
        error.kind(),
        SendErrorKind::PayloadTooLarge { .. }
    ));
    assert!(error.to_string().contains("max_datagram_size"));
    assert_eq!(error.into_payload(), payload);
    let fits = Bytes::from(vec![0u8; config().max_payload_size()]);
    assert!(pair.a.send(pair.now, pair.b_addr, fits).is_ok());
}

#[test]
fn outstanding_limit_counts_unpolled_outcomes() {
    let mut a_config = config();
    a_config.limits.max_outstanding_messages = 2;
    let mut pair = Pair::with_configs(a_config, config());
    pair.send(b"1");
    pair.send(b"2");
    pair.exchange();
    let error = pair
        .a
        .send(pair.now, pair.b_addr, Bytes::from_static(b"3"))
        .expect_err("outcomes not polled yet");
    assert_eq!(error.kind(), SendErrorKind::TooManyOutstanding);
    assert_eq!(pair.events_a().len(), 2);
    pair.send(b"3");
}

#[test]
fn time_going_backwards_is_treated_as_the_latest_time() {
    let mut pair = Pair::new();
    pair.send(b"x");
    pair.out_a();
    let before = pair.now - Duration::from_secs(1);
    pair.a.handle_timeout(before);
    pair.a
        .handle_datagram(before, pair.b_addr, Bytes::from_static(b"?"));
    assert!(pair.out_a().is_empty(), "no timer fired early");
}

#[test]
fn batches_same_size_datagrams_for_one_destination() {
    let mut pair = Pair::new();
    for _ in 0..5 {
        pair.send(b"same");
    }
    pair.a
        .send(pair.now, addr(3000), Bytes::from_static(b"elsewhere"))
        .expect("ok");
    let mut buf = Vec::new();
    let transmit = pair.a.poll_transmit(pair.now, 10, &mut buf).expect("batch");
    assert_eq!(transmit.destination, pair.b_addr);
    assert_eq!(transmit.segment_size, Some(9));
    assert_eq!(transmit.datagram_count(), 5);
    for datagram in transmit.datagrams(&buf) {
        pair.b
            .handle_datagram(pair.now, pair.a_addr, Bytes::copy_from_slice(datagram));
    }
    assert_eq!(pair.events_b().len(), 5);
    let next = pair
        .a
        .poll_transmit(pair.now, 10, &mut buf)
        .expect("other peer");
    assert_eq!((next.destination, next.segment_size), (addr(3000), None));
}

#[test]
fn many_messages_each_delivered_exactly_once_with_distinct_identities() {
    let mut pair = Pair::new();
    let mut identities = std::collections::HashSet::new();
    for round in 0..20 {
        for _ in 0..50 {
            pair.send(b"bulk");
        }
        let data: Vec<Datagram> = pair.out_a();
        for datagram in &data {
            assert!(
                identities.insert(datagram.identity()),
                "identity reused in round {round}"
            );
            pair.deliver_to_b(datagram);
        }
        pair.exchange();
        while pair.a.table_sizes().messages > 0 {
            pair.advance();
            pair.exchange();
        }
    }
    let delivered = pair.events_a().len();
    assert_eq!(delivered, 1000);
    assert_eq!(pair.events_b().len(), 1000);
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
fn invalid_datagrams_are_counted_per_peer() {
    let mut pair = Pair::new();
    pair.send(b"x");
    pair.exchange();
    pair.a
        .handle_datagram(pair.now, pair.b_addr, Bytes::from_static(b"\x01"));
    let stats = pair.a.peer_stats(pair.b_addr).expect("tracked");
    assert_eq!(stats.invalid.too_short, 1);
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
fn a_closed_endpoint_still_acknowledges_late_recvs() {
    let mut pair = Pair::new();
    pair.send(b"x");
    let data = pair.out_a();
    pair.deliver_to_b(&data[0]);
    let recv = pair.out_b();
    pair.deliver_to_a(&recv[0]);
    pair.out_a(); // the ACK is lost
    pair.answer_probes(); // so B may resend its RECV to A
    pair.a.close(pair.now);
    assert!(pair.a.is_closed());
    let at = pair.b.poll_timeout().expect("RECV resend");
    pair.advance_to(at);
    let resent = pair.out_b();
    pair.deliver_to_a(&resent[0]);
    let ack = pair.out_a();
    assert_eq!(kinds(&ack), [Ack]);
    pair.deliver_to_b(&ack[0]);
    pair.b.close(pair.now);
    assert!(
        pair.b.is_closed(),
        "B's RECV was acknowledged, so B closes at once"
    );
}

#[test]
fn pending_transmits_are_reported_until_drained() {
    let mut pair = Pair::new();
    assert!(!pair.a.has_pending_transmits());
    pair.send(b"x");
    assert!(pair.a.has_pending_transmits());
    pair.out_a();
    assert!(!pair.a.has_pending_transmits());
}

#[test]
fn replies_and_data_batch_separately_even_when_interleaved() {
    let mut pair = Pair::new();
    for n in 0..10u32 {
        pair.send(b"a full-size message");
        // A RECV arrives between sends, so an ACK is queued between DATA.
        let identity = Identity::from_u32(0xffff_0000 + n);
        pair.a
            .handle_datagram(pair.now, pair.b_addr, encode(Packet::Recv { identity }));
    }
    let mut buf = Vec::new();
    let replies = pair.a.poll_transmit(pair.now, 64, &mut buf).expect("ACKs");
    assert_eq!(
        replies.datagram_count(),
        10,
        "the ACKs go out in one batch, first"
    );
    assert_eq!(replies.segment_size, Some(5));
    let data = pair.a.poll_transmit(pair.now, 64, &mut buf).expect("DATA");
    assert_eq!(data.datagram_count(), 10, "then the DATA, in one batch");
    assert!(pair.a.poll_transmit(pair.now, 64, &mut buf).is_none());
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
