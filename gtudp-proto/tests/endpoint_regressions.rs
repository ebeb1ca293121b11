//! Regression tests for endpoint bugs found by the deterministic simulator
//! (`gtudp_proto::sim`), each reduced to a plain exchange.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use gtudp_proto::wire::{Framing, Packet, PacketKind};
use gtudp_proto::{Config, Endpoint, Event, SendOptions};

fn drain(endpoint: &mut Endpoint, now: Instant) -> Vec<(SocketAddr, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    while let Some(transmit) = endpoint.poll_transmit(now, 1, &mut buf) {
        out.push((transmit.destination, buf[..transmit.size].to_vec()));
    }
    out
}

/// Found by the `Hostile` profile: while a flood kept B from answering, A's
/// own DATA to B (resent up to `max_attempts` times) was counted against the
/// anti-amplification budget of replies to B. When B's DATA then arrived,
/// A handed it over but withheld the RECV, and B's message failed although
/// delivered. The budget limits replies; DATA the application chose to send
/// is not a reply.
#[test]
fn own_data_does_not_use_up_the_reply_budget() {
    let b_addr: SocketAddr = "10.0.0.2:1".parse().unwrap();
    let mut a = Endpoint::new(Config::default(), 1).unwrap();
    let mut now = Instant::now();
    // A sends B a large message, resent until its attempts run out; B never
    // answers (all lost).
    a.send_with(
        now,
        b_addr,
        Bytes::from(vec![7; 1000]),
        SendOptions::default().with_max_attempts(5),
    )
    .unwrap();
    let failed = loop {
        drain(&mut a, now);
        if let Some(event) = a.poll_event() {
            break event;
        }
        now = a.poll_timeout().unwrap();
        a.handle_timeout(now);
    };
    assert!(matches!(failed, Event::Failed { .. }), "{failed:?}");
    assert!(a.peer_stats(b_addr).unwrap().bytes_out >= 5_000);

    // Now B's small DATA arrives: A hands it over and must answer RECV.
    let framing = Framing::default();
    let mut data = Vec::new();
    let identity = gtudp_proto::wire::Identity::from_u32(0xabcd);
    framing.encode_to_vec(
        &Packet::Data {
            identity,
            payload: b"hi",
        },
        &mut data,
    );
    a.handle_datagram(now, b_addr, Bytes::from(data));
    assert!(matches!(a.poll_event(), Some(Event::Received { .. })));
    let out = drain(&mut a, now);
    let recv = out.iter().find(|(to, bytes)| {
        *to == b_addr
            && framing
                .parse(bytes)
                .is_ok_and(|p| p.kind() == PacketKind::Recv && p.identity() == identity)
    });
    assert!(recv.is_some(), "no RECV for a delivered DATA: {out:?}");
}
