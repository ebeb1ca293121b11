//! Closing an endpoint, driving two endpoints by hand on virtual time: the
//! drain, its deadline, and the answers a closed endpoint still gives.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{config, kinds, Pair};
use gtudp_proto::wire::PacketKind;
use gtudp_proto::{Event, FailureReason, SendErrorKind};

use PacketKind::{Ack, Recv};

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
