//! How a send resolves other than by delivery, driving two endpoints by
//! hand on virtual time: deadlines, exhausted attempts, cancellation and
//! refused sends.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{config, kinds, Pair};
use gtudp_proto::{Event, FailureReason, SendErrorKind, SendOptions};

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
