//! An IPv4 peer seen through a dual-stack socket (`[::ffff:a.b.c.d]:p`)
//! and named by the application as `a.b.c.d:p` is one peer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use gtudp_proto::{Config, Endpoint, Event};

fn mapped(addr: SocketAddr) -> SocketAddr {
    let SocketAddr::V4(v4) = addr else {
        panic!("{addr} is not IPv4")
    };
    SocketAddr::new(v4.ip().to_ipv6_mapped().into(), v4.port())
}

/// Moves every datagram between `a` (at `a_addr`) and `b` until both are
/// quiet; `b` sees `a` through the address `a_seen_by_b`, `a` sees `b`
/// through `b_seen_by_a`. Returns both sides' events.
fn exchange(
    a: &mut Endpoint,
    b: &mut Endpoint,
    a_seen_by_b: SocketAddr,
    b_seen_by_a: SocketAddr,
    now: Instant,
) -> (Vec<Event>, Vec<Event>) {
    let mut buf = Vec::new();
    for _ in 0..10 {
        let mut moved = false;
        while let Some(t) = a.poll_transmit(now, 1, &mut buf) {
            b.handle_datagram(now, a_seen_by_b, Bytes::copy_from_slice(&buf[..t.size]));
            moved = true;
        }
        while let Some(t) = b.poll_transmit(now, 1, &mut buf) {
            a.handle_datagram(now, b_seen_by_a, Bytes::copy_from_slice(&buf[..t.size]));
            moved = true;
        }
        if !moved {
            break;
        }
    }
    let events = |e: &mut Endpoint| std::iter::from_fn(|| e.poll_event()).collect::<Vec<_>>();
    (events(a), events(b))
}

/// The dual-stack bug of issue 10: a send to `127.0.0.1:p` whose RECV comes
/// back from `[::ffff:127.0.0.1]:p` is delivered, not failed, and nothing
/// is counted as coming from a wrong source.
#[test]
fn a_recv_from_the_mapped_address_confirms_a_send_to_the_plain_one() {
    let a_addr: SocketAddr = "127.0.0.1:1000".parse().unwrap();
    let b_addr: SocketAddr = "127.0.0.1:2000".parse().unwrap();
    let mut a = Endpoint::new(Config::default(), 1).unwrap();
    let mut b = Endpoint::new(Config::default(), 2).unwrap();
    let now = Instant::now();
    let id = a.send(now, b_addr, Bytes::from_static(b"hi")).unwrap();
    // A is a `[::]` socket: it sees B mapped. B is an IPv4 socket.
    let (a_events, b_events) = exchange(&mut a, &mut b, a_addr, mapped(b_addr), now);
    assert_eq!(
        a_events,
        [Event::Delivered {
            id,
            to: b_addr,
            suspected_lost: false
        }]
    );
    assert_eq!(
        b_events,
        [Event::Received {
            from: a_addr,
            payload: Bytes::from_static(b"hi")
        }]
    );
    assert_eq!(a.stats().dropped, only_the_probe(), "{:?}", a.stats());
    assert_eq!(b.stats().dropped, Default::default(), "{:?}", b.stats());
    assert_eq!(
        b.stats().validated_by_probe,
        1,
        "A answered from its plain form"
    );
    // One peer, in the plain form, whichever form is asked about.
    assert_eq!(a.peers().collect::<Vec<_>>(), [b_addr]);
    assert_eq!(a.peer_stats(mapped(b_addr)), a.peer_stats(b_addr));
    assert!(a.peer_stats(b_addr).is_some());
}

/// The reverse: the application names the peer by its mapped address (as
/// it read it from a dual-stack socket elsewhere) while the RECV comes from
/// the plain form; events carry the plain form.
#[test]
fn a_send_to_the_mapped_address_is_confirmed_from_the_plain_one() {
    let a_addr: SocketAddr = "127.0.0.1:1000".parse().unwrap();
    let b_addr: SocketAddr = "127.0.0.1:2000".parse().unwrap();
    let mut a = Endpoint::new(Config::default(), 3).unwrap();
    let mut b = Endpoint::new(Config::default(), 4).unwrap();
    let now = Instant::now();
    let id = a
        .send(now, mapped(b_addr), Bytes::from_static(b"hi"))
        .unwrap();
    let mut buf = Vec::new();
    let transmit = a.poll_transmit(now, 1, &mut buf).unwrap();
    assert_eq!(transmit.destination, b_addr, "transmits use the plain form");
    b.handle_datagram(
        now,
        mapped(a_addr),
        Bytes::copy_from_slice(&buf[..transmit.size]),
    );
    let (a_events, b_events) = exchange(&mut a, &mut b, mapped(a_addr), b_addr, now);
    assert_eq!(
        a_events,
        [Event::Delivered {
            id,
            to: b_addr,
            suspected_lost: false
        }]
    );
    assert!(matches!(&b_events[..], [Event::Received { from, .. }] if *from == a_addr));
    assert_eq!(a.stats().dropped, only_the_probe());
    assert_eq!(b.stats().validated_by_probe, 1);
}

/// What a sender drops in a clean exchange: the receiver's validation probe
/// (a RECV naming a token, not a message) counts as a RECV for an unknown
/// identity, and is answered with ACK like any.
fn only_the_probe() -> gtudp_proto::DropCounts {
    gtudp_proto::DropCounts {
        recv_unknown: 1,
        ..Default::default()
    }
}

/// An ICMP unreachable report for a peer fails its messages, in flight and
/// queued, at once, with its own reason; other peers' messages are kept.
#[test]
fn peer_unreachable_fails_that_peers_messages_only() {
    let gone: SocketAddr = "127.0.0.1:3000".parse().unwrap();
    let other: SocketAddr = "127.0.0.1:4000".parse().unwrap();
    let mut a = Endpoint::new(Config::default(), 5).unwrap();
    let now = Instant::now();
    let mut gone_ids = Vec::new();
    // More than one window's worth, so some are queued.
    for _ in 0..2_000 {
        gone_ids.push(a.send(now, gone, Bytes::from_static(b"x")).unwrap());
    }
    let kept = a.send(now, other, Bytes::from_static(b"y")).unwrap();
    assert_eq!(a.peer_unreachable(now, mapped(gone)), 2_000);
    let mut failed = Vec::new();
    while let Some(event) = a.poll_event() {
        match event {
            Event::Failed { id, to, reason } => {
                assert_eq!(
                    (to, reason),
                    (gone, gtudp_proto::FailureReason::Unreachable)
                );
                failed.push(id);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    failed.sort_unstable();
    gone_ids.sort_unstable();
    assert!(
        failed == gone_ids,
        "{} failed of {}",
        failed.len(),
        gone_ids.len()
    );
    assert_eq!(a.stats().failed, 2_000);
    assert_eq!(a.peer_unreachable(now, gone), 0, "nothing left to fail");
    // The other peer's message is still being tried.
    assert_eq!(a.table_sizes().outstanding, 1);
    let _ = kept;
}
