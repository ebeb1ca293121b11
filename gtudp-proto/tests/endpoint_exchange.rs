//! The exchange itself (DATA -> RECV -> ACK), one scenario per rule,
//! driving two endpoints by hand on virtual time: delivery, retransmission
//! and duplicates. Each test decides what the network does with each
//! datagram.

mod common;

use std::net::SocketAddr;

use std::time::Duration;

use bytes::Bytes;
use common::{config, encode, kinds, Datagram, Pair};
use gtudp_proto::wire::{Identity, Packet, PacketKind};
use gtudp_proto::Event;

use PacketKind::{Ack, Data, Recv};

/// `b`'s event for a message from `a` carrying `payload`.
fn received_from_a(pair: &Pair, payload: &'static [u8]) -> Event {
    Event::Received {
        from: pair.a_addr,
        payload: Bytes::from_static(payload),
    }
}

/// `a`'s event for its message `id` delivered to `b`.
fn delivered_to_b(pair: &Pair, id: gtudp_proto::MessageId, suspected_lost: bool) -> Event {
    Event::Delivered {
        id,
        to: pair.b_addr,
        suspected_lost,
    }
}

#[test]
fn clean_exchange_delivers_once_and_acknowledges() {
    let mut pair = Pair::new();
    let id = pair.send(b"hello");
    let data = pair.out_a();
    assert_eq!(kinds(&data), [Data]);
    pair.deliver_to_b(&data[0]);
    assert_eq!(pair.events_b(), [received_from_a(&pair, b"hello")]);
    let recv = pair.out_b();
    assert_eq!(kinds(&recv), [Recv]);
    assert_eq!(recv[0].identity(), data[0].identity());
    pair.deliver_to_a(&recv[0]);
    assert_eq!(pair.events_a(), [delivered_to_b(&pair, id, false)]);
    let ack = pair.out_a();
    assert_eq!(kinds(&ack), [Ack]);
    pair.deliver_to_b(&ack[0]);
    assert!(pair.out_b().is_empty());
    assert_eq!(pair.a.stats().delivered, 1);
    assert_eq!(pair.b.stats().received, 1);
}

#[test]
fn datagrams_fed_borrowed_work_as_owned_ones() {
    // `handle_datagram_slice` is how the adapters feed datagrams from their
    // receive buffers: the same exchange, with the buffer overwritten after
    // each call as the next receive would, hands over the payload intact
    // and resolves the message.
    let mut pair = Pair::new();
    let id = pair.send(b"borrowed");
    let mut buffer = [0u8; 2048];
    let mut feed = |endpoint: &mut gtudp_proto::Endpoint, now, from, datagram: &Datagram| {
        let len = datagram.bytes.len();
        buffer[..len].copy_from_slice(&datagram.bytes);
        endpoint.handle_datagram_slice(now, from, &buffer[..len]);
        buffer.fill(0xEE);
    };
    let data = pair.out_a();
    pair.delivered_to_b.insert(data[0].identity());
    feed(&mut pair.b, pair.now, pair.a_addr, &data[0]);
    assert_eq!(pair.events_b(), [received_from_a(&pair, b"borrowed")]);
    let recv = pair.out_b();
    assert_eq!(kinds(&recv), [Recv]);
    feed(&mut pair.a, pair.now, pair.b_addr, &recv[0]);
    assert_eq!(pair.events_a(), [delivered_to_b(&pair, id, false)]);
    let ack = pair.out_a();
    assert_eq!(kinds(&ack), [Ack]);
    feed(&mut pair.b, pair.now, pair.a_addr, &ack[0]);
    // A repeat of the DATA after its ACK is recognised, not handed over.
    feed(&mut pair.b, pair.now, pair.a_addr, &data[0]);
    assert!(pair.events_b().is_empty());
    assert_eq!(pair.b.stats().received, 1);
    assert_eq!(pair.b.stats().duplicates_suppressed, 1);
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
fn recv_from_another_host_does_not_confirm_delivery() {
    let mut pair = Pair::new();
    let id = pair.send(b"x");
    let data = pair.out_a();
    let forged = encode(Packet::Recv {
        identity: data[0].identity(),
    });
    let attacker = SocketAddr::from(([10, 0, 0, 9], 6666));
    pair.a.handle_datagram(pair.now, attacker, forged);
    assert!(
        pair.events_a().is_empty(),
        "a RECV counts only from the destination's host"
    );
    assert_eq!(pair.a.stats().dropped.recv_wrong_source, 1);
    // Not answered: an ACK would tell whoever sent that RECV that the
    // message is no longer resent, and it is.
    assert!(pair.out_a().is_empty());
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

/// The receiver's NAT moved it to a new port: its RECV comes from there.
/// It confirms the message (which is then no longer resent) and is
/// acknowledged at the new port; with recognition across ports off, it
/// does neither.
#[test]
fn recv_from_another_port_of_the_destination_confirms_delivery() {
    for across_ports in [true, false] {
        let mut config = config();
        config.recognise_copies_across_ports = across_ports;
        let mut pair = Pair::with_configs(config.clone(), config);
        let id = pair.send(b"x");
        let data = pair.out_a();
        let moved = SocketAddr::new(pair.b_addr.ip(), pair.b_addr.port() + 1);
        let recv = encode(Packet::Recv {
            identity: data[0].identity(),
        });
        pair.a.handle_datagram(pair.now, moved, recv);
        let events = pair.events_a();
        let replies = pair.out_a();
        if across_ports {
            assert_eq!(
                events,
                [Event::Delivered {
                    id,
                    to: pair.b_addr,
                    suspected_lost: false
                }]
            );
            assert_eq!(kinds(&replies), [Ack]);
            assert_eq!(replies[0].to, moved);
        } else {
            assert!(events.is_empty() && replies.is_empty(), "{events:?}");
        }
    }
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
