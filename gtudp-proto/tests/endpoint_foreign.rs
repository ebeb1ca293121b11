//! Datagrams that are not a peer's honest exchange, driving endpoints by
//! hand on virtual time: foreign and invalid datagrams, raw sends, and
//! spoofed DATA.

mod common;

use bytes::Bytes;
use common::{addr, config, encode, Pair};
use gtudp_proto::wire::{Identity, Packet};
use gtudp_proto::{Endpoint, Event};

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
fn invalid_datagrams_are_counted_per_peer() {
    let mut pair = Pair::new();
    pair.send(b"x");
    pair.exchange();
    pair.a
        .handle_datagram(pair.now, pair.b_addr, Bytes::from_static(b"\x01"));
    let stats = pair.a.peer_stats(pair.b_addr).expect("tracked");
    assert_eq!(stats.invalid.too_short, 1);
}
