//! The roaming extension: a peer whose address changes (its IP and port)
//! keeps its messages, each handed over once, in both directions; a spoofed
//! datagram carrying a live peer's token moves nothing.
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gtudp_proto::sim::{LinkProfile, NatProfile, World};
use gtudp_proto::wire::{Framing, Identity};
use gtudp_proto::{Config, Endpoint, Event, SendOptions};

/// What one run of [`moving_client`] saw.
struct Run {
    counts: gtudp_proto::sim::Counts,
    sent_by_client: u64,
    replies_sent: u64,
    server_moves: u64,
    report: String,
}

/// A client behind a NAT that moves it to a new IP address and port every
/// `every`, 10% loss each way and 25 ms of delay: it sends `messages`
/// messages to a server, which answers each one it receives at the address
/// it came from. Every message must end Delivered, each handed over once.
fn moving_client(seed: u64, roaming: bool, every: Duration, messages: u64) -> Run {
    let mut link = LinkProfile::clean();
    link.delay = Duration::from_millis(25);
    link.loss = 0.1;
    let mut world = World::new(seed, link);
    world.keep_events(true);
    world.set_trace_capacity(4_096);
    let mut config = Config::default();
    if roaming {
        config.framing = Framing::default().with_roaming();
    }
    let client = world
        .add_endpoint("10.0.0.1:4000".parse().unwrap(), config.clone())
        .unwrap();
    let server = world
        .add_endpoint("10.0.0.2:5000".parse().unwrap(), config)
        .unwrap();
    world.set_nat(
        client,
        Some(NatProfile {
            public_ip: IpAddr::from([198, 51, 100, 1]),
            first_port: 30_000,
            rebind_every: every,
            first_rebind: every,
            settled_at: None,
            changes_ip: true,
        }),
    );
    let server_address = world.address(server);
    let (mut sent_by_client, mut replies_sent) = (0, 0);
    let mut failures = Vec::new();
    let step = Duration::from_millis(10);
    let mut now = Duration::ZERO;
    // Sends over four seconds, then the NAT settles and everything drains.
    while now < Duration::from_secs(30) {
        if now < Duration::from_secs(4) && sent_by_client < messages && now.as_millis() % 40 == 0 {
            world
                .send(client, server_address, 32, SendOptions::default())
                .unwrap();
            sent_by_client += 1;
        }
        // The NAT settles a second before the client stops sending: a
        // client that moves and then stays silent cannot be found (see the
        // docs).
        if now == Duration::from_secs(3) {
            world.settle_nats();
        }
        now += step;
        world.run_until(now);
        for (at, event) in world.take_events(client) {
            if let Event::Failed { .. } = event {
                failures.push(format!("client at {at:?}: {event:?}"));
            }
        }
        for (at, event) in world.take_events(server) {
            if let Event::Failed { .. } = event {
                failures.push(format!("server at {at:?}: {event:?}"));
            }
            if let Event::Received { from, .. } = event {
                if world.send(server, from, 16, SendOptions::default()).is_ok() {
                    replies_sent += 1;
                }
            }
        }
    }
    let server_moves = world.endpoint(server).stats().peer_moves;
    let counts = world.finish(false);
    let report = format!(
        "seed {seed}, roaming {roaming}: {counts:?}\nfailures: {failures:?}\nviolations: {:#?}\ntrace:\n{}",
        world.violations().iter().take(5).collect::<Vec<_>>(),
        world.trace()
    );
    Run {
        counts,
        sent_by_client,
        replies_sent,
        server_moves,
        report,
    }
}

#[test]
fn a_client_that_changes_address_keeps_its_messages_both_ways() {
    let mut total_moves = 0;
    // A new address every 250 ms to 1.5 s (five round trips to thirty).
    for seed in 1..=40 {
        let every = Duration::from_millis(250 + (seed * 137) % 1_250);
        let run = moving_client(seed, true, every, 100);
        let counts = &run.counts;
        assert_eq!(counts.violations, 0, "{}", run.report);
        assert_eq!(counts.duplicates, 0, "{}", run.report);
        assert_eq!(
            counts.delivered,
            run.sent_by_client + run.replies_sent,
            "every message, the client's and the server's replies, Delivered: {}",
            run.report
        );
        assert_eq!(counts.failed, 0, "{}", run.report);
        assert!(run.replies_sent >= 100, "{}", run.report);
        assert!(
            run.server_moves > 0,
            "the client never moved: {}",
            run.report
        );
        total_moves += run.server_moves;
    }
    assert!(total_moves > 100, "{total_moves} moves");
}

/// The same run without the extension: the default wire format cannot
/// tell a retransmission from a new IP address from a new message, so the
/// test above would catch a roaming extension that did nothing.
#[test]
fn without_the_extension_a_new_ip_address_is_a_new_sender() {
    let mut duplicates = 0;
    for seed in 1..=4 {
        let run = moving_client(seed, false, Duration::from_millis(300), 100);
        duplicates += run.counts.duplicates;
    }
    assert!(duplicates > 0, "no message was handed over twice");
}

fn roaming_config() -> Config {
    let mut config = Config::default();
    config.framing = Framing::default().with_roaming();
    config
}

/// Moves every datagram between the two endpoints until both are quiet,
/// advancing time by `step` between rounds while anything is pending.
fn exchange(
    a: &mut Endpoint,
    a_addr: SocketAddr,
    b: &mut Endpoint,
    b_addr: SocketAddr,
    now: &mut Instant,
) {
    let mut buf = Vec::new();
    for _ in 0..1_000 {
        let mut moved = false;
        while let Some(t) = a.poll_transmit(*now, 1, &mut buf) {
            if t.destination == b_addr {
                b.handle_datagram(*now, a_addr, Bytes::copy_from_slice(&buf[..t.size]));
            }
            moved = true;
        }
        while let Some(t) = b.poll_transmit(*now, 1, &mut buf) {
            if t.destination == a_addr {
                a.handle_datagram(*now, b_addr, Bytes::copy_from_slice(&buf[..t.size]));
            }
            moved = true;
        }
        if !moved {
            let next = [a.poll_timeout(), b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(at) if at <= *now + Duration::from_secs(2) => {
                    *now = at.max(*now);
                    a.handle_timeout(*now);
                    b.handle_timeout(*now);
                }
                _ => return,
            }
        }
    }
}

/// DATA carrying a live client's token, from 1,000 spoofed addresses that
/// never answer their probes: the client is not moved, the spoofed
/// addresses get at most three times the bytes they sent, and the client
/// keeps being served where it is.
#[test]
fn a_spoofed_token_moves_nothing() {
    let (client_addr, server_addr): (SocketAddr, SocketAddr) = (
        "192.0.2.1:4000".parse().unwrap(),
        "192.0.2.2:5000".parse().unwrap(),
    );
    // The client proves itself and its token; the server sends it one.
    let (mut client, mut server, mut now) = greeted_with_seeds(client_addr, server_addr, (1, 2));
    server
        .send(now, client_addr, Bytes::from_static(b"welcome"))
        .unwrap();
    exchange(&mut client, client_addr, &mut server, server_addr, &mut now);
    while client.poll_event().is_some() {}
    while server.poll_event().is_some() {}

    // A DATA of the client's, as an on-path attacker would have seen it.
    client
        .send(now, server_addr, Bytes::from_static(b"genuine"))
        .unwrap();
    let mut buf = Vec::new();
    let transmit = client.poll_transmit(now, 1, &mut buf).unwrap();
    let genuine = buf[..transmit.size].to_vec();
    let framing = client.config().framing.clone();
    // It carries the token the client sends the server, which the server
    // saw proven: the one in every datagram the client sends it.
    client
        .send(now, server_addr, Bytes::from_static(b"another"))
        .unwrap();
    let next = client.poll_transmit(now, 1, &mut buf).unwrap();
    assert_eq!(next.destination, server_addr);
    assert_eq!(
        framing.sender_token(&genuine),
        framing.sender_token(&buf[..next.size])
    );

    // Replayed with fresh identities from 1,000 addresses, never answering.
    let (mut bytes_in, mut bytes_out) = (0u64, 0u64);
    let spoofed = |n: u32| -> SocketAddr {
        SocketAddr::new(
            IpAddr::from([203, 0, 113, (n % 250) as u8]),
            10_000 + n as u16,
        )
    };
    for n in 0..1_000u32 {
        let mut forged = genuine.clone();
        let at = framing.header_len() - Identity::LEN;
        forged[at..at + 4].copy_from_slice(&(0xdead_0000 + n).to_be_bytes());
        bytes_in += forged.len() as u64;
        server.handle_datagram(now, spoofed(n), Bytes::from(forged));
        while let Some(t) = server.poll_transmit(now, 1, &mut buf) {
            assert_ne!(t.destination, client_addr, "nothing for the client yet");
            bytes_out += t.size as u64;
        }
        now += Duration::from_micros(500);
        server.handle_timeout(now);
    }
    // Their probes' resends, as they come.
    for _ in 0..200 {
        now += Duration::from_millis(50);
        server.handle_timeout(now);
        while let Some(t) = server.poll_transmit(now, 1, &mut buf) {
            if t.destination != client_addr {
                bytes_out += t.size as u64;
            }
        }
    }
    assert!(
        bytes_out <= 3 * bytes_in,
        "{bytes_out} bytes sent for {bytes_in} received"
    );
    assert_eq!(
        server.stats().peer_moves,
        0,
        "a spoofed address moved the client"
    );
    assert!(server.peers().any(|peer| peer == client_addr));

    // The client is still served where it is: its message is taken, and
    // the server's next message goes to it.
    client
        .send(now, server_addr, Bytes::from_static(b"still here"))
        .unwrap();
    let reply = server
        .send(now, client_addr, Bytes::from_static(b"still yours"))
        .unwrap();
    exchange(&mut client, client_addr, &mut server, server_addr, &mut now);
    let server_events: Vec<Event> = std::iter::from_fn(|| server.poll_event()).collect();
    assert!(
        server_events.iter().any(|event| matches!(event,
            Event::Received { from, payload } if *from == client_addr && &payload[..] == b"still here")),
        "{server_events:?}"
    );
    assert!(
        server_events.iter().any(|event| matches!(event,
            Event::Delivered { id, to, .. } if *id == reply && *to == client_addr)),
        "{server_events:?}"
    );
}

/// A client at `client_addr` and a server at `server_addr` (seeds 3 and
/// 4) after the client's first message, "hello", was delivered.
fn greeted(client_addr: SocketAddr, server_addr: SocketAddr) -> (Endpoint, Endpoint, Instant) {
    greeted_with_seeds(client_addr, server_addr, (3, 4))
}

/// [`greeted`] with the endpoints' `seeds`.
fn greeted_with_seeds(
    client_addr: SocketAddr,
    server_addr: SocketAddr,
    seeds: (u128, u128),
) -> (Endpoint, Endpoint, Instant) {
    let mut client = Endpoint::new(roaming_config(), seeds.0).unwrap();
    let mut server = Endpoint::new(roaming_config(), seeds.1).unwrap();
    let mut now = Instant::now();
    client
        .send(now, server_addr, Bytes::from_static(b"hello"))
        .unwrap();
    exchange(&mut client, client_addr, &mut server, server_addr, &mut now);
    (client, server, now)
}

/// The server's message in flight to the client's old address, and one the
/// application sends there after the move, both reach the client at its new
/// address, and the client's message from there is handed over once.
#[test]
fn messages_to_a_moved_peer_follow_it() {
    let (old, new, server_addr): (SocketAddr, SocketAddr, SocketAddr) = (
        "192.0.2.1:4000".parse().unwrap(),
        "198.51.100.7:31000".parse().unwrap(),
        "192.0.2.2:5000".parse().unwrap(),
    );
    let (mut client, mut server, mut now) = greeted(old, server_addr);
    server
        .send(now, old, Bytes::from_static(b"welcome"))
        .unwrap();
    exchange(&mut client, old, &mut server, server_addr, &mut now);
    while server.poll_event().is_some() {}

    // In flight to the old address when the client moves: lost there.
    let in_flight = server
        .send(now, old, Bytes::from_static(b"in flight"))
        .unwrap();
    let mut buf = Vec::new();
    while server.poll_transmit(now, 1, &mut buf).is_some() {}

    // The client, now at `new`, sends; the server probes `new`, the client
    // answers, and the peer moves.
    client
        .send(
            now,
            server_addr,
            Bytes::from_static(b"from the new address"),
        )
        .unwrap();
    exchange(&mut client, new, &mut server, server_addr, &mut now);
    assert_eq!(server.stats().peer_moves, 1, "{:?}", server.stats());
    // A late datagram of the client's from the old address (it left before
    // the move) makes that address an unproven peer again: it must not
    // capture what the application sends there.
    let mut late = Vec::new();
    let framing = client.config().framing.clone();
    framing.encode_to_vec(
        &gtudp_proto::wire::Packet::Data {
            identity: Identity::from_u32(0x1a7e),
            payload: b"late",
        },
        &mut late,
    );
    server.handle_datagram(now, old, Bytes::from(late));
    while server.poll_transmit(now, 1, &mut buf).is_some() {}
    // Sent to the old address after the move.
    let after = server
        .send(now, old, Bytes::from_static(b"after the move"))
        .unwrap();
    exchange(&mut client, new, &mut server, server_addr, &mut now);

    let server_events: Vec<Event> = std::iter::from_fn(|| server.poll_event()).collect();
    for id in [in_flight, after] {
        assert!(
            server_events.iter().any(|event| matches!(event,
                Event::Delivered { id: done, to, .. } if *done == id && *to == new)),
            "{id:?} not Delivered at the new address: {server_events:?}"
        );
    }
    let taken: Vec<&[u8]> = server_events
        .iter()
        .filter_map(|event| match event {
            Event::Received { from, payload } => {
                assert_eq!(*from, new);
                Some(&payload[..])
            }
            _ => None,
        })
        .collect();
    assert_eq!(taken, [&b"from the new address"[..]]);
    let mut received: Vec<Bytes> = std::iter::from_fn(|| client.poll_event())
        .filter_map(|event| match event {
            Event::Received { payload, .. } => Some(payload),
            _ => None,
        })
        .collect();
    received.sort();
    assert_eq!(
        received,
        [
            Bytes::from_static(b"after the move"),
            Bytes::from_static(b"in flight"),
            Bytes::from_static(b"welcome"),
        ]
    );
}

/// A client that mostly receives, behind a NAT that gives it a new port
/// every 300 ms: its RECVs from each new port carry its token, and so does
/// the keepalive it sends every second (without which a silent client could
/// not be found), so the server's messages follow it there, each Delivered
/// and handed over once.
#[test]
fn a_client_that_mostly_receives_is_followed_to_its_new_ports() {
    for seed in 1..=10 {
        let mut link = LinkProfile::clean();
        link.delay = Duration::from_millis(25);
        link.loss = 0.1;
        let mut world = World::new(seed, link);
        world.keep_events(true);
        let config = roaming_config();
        let client = world
            .add_endpoint("10.0.0.1:4000".parse().unwrap(), config.clone())
            .unwrap();
        let server = world
            .add_endpoint("10.0.0.2:5000".parse().unwrap(), config)
            .unwrap();
        world.set_nat(
            client,
            Some(NatProfile {
                public_ip: IpAddr::from([198, 51, 100, 1]),
                first_port: 30_000,
                rebind_every: Duration::from_millis(300),
                first_rebind: Duration::from_millis(300),
                settled_at: None,
                changes_ip: false,
            }),
        );
        let server_address = world.address(server);
        world
            .send(client, server_address, 8, SendOptions::default())
            .unwrap();
        let mut now = Duration::ZERO;
        let mut hello_from = None;
        while hello_from.is_none() && now < Duration::from_secs(5) {
            now += Duration::from_millis(10);
            world.run_until(now);
            hello_from = world
                .take_events(server)
                .into_iter()
                .find_map(|(_, event)| match event {
                    Event::Received { from, .. } => Some(from),
                    _ => None,
                });
        }
        let hello_from = hello_from.expect("the client's hello");
        // The server sends to the address it learnt, for four seconds.
        let mut sent = 0;
        while now < Duration::from_secs(30) {
            if now < Duration::from_secs(4) && now.as_millis() % 40 == 0 {
                world
                    .send(server, hello_from, 16, SendOptions::default())
                    .unwrap();
                sent += 1;
            }
            if now < Duration::from_secs(5) && now.as_millis() % 1_000 == 0 {
                world
                    .send(client, server_address, 0, SendOptions::default())
                    .unwrap();
                sent += 1;
            }
            if now == Duration::from_secs(4) {
                world.settle_nats();
            }
            now += Duration::from_millis(10);
            world.run_until(now);
        }
        let moves = world.endpoint(server).stats().peer_moves;
        let counts = world.finish(false);
        let report = format!("seed {seed}: {counts:?}\n{}", world.trace());
        assert_eq!(counts.violations, 0, "{report}");
        assert_eq!(counts.delivered, sent + 1, "{report}");
        assert!(moves >= 3, "{moves} moves: {report}");
    }
}

/// Every datagram from `endpoint` now, as (destination, bytes).
fn drain(endpoint: &mut Endpoint, now: Instant) -> Vec<(SocketAddr, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    while let Some(t) = endpoint.poll_transmit(now, 1, &mut buf) {
        out.push((t.destination, buf[..t.size].to_vec()));
    }
    out
}

/// `count` rounds, 60 ms apart, of what A and B send each other: `a_to_b`
/// says from which address a datagram A sends (to the given destination)
/// reaches B, if at all, and `b_to_a` the same of B's.
fn rounds(
    a: &mut Endpoint,
    b: &mut Endpoint,
    now: &mut Instant,
    count: usize,
    mut a_to_b: impl FnMut(&Endpoint, SocketAddr, &[u8]) -> Option<SocketAddr>,
    mut b_to_a: impl FnMut(SocketAddr) -> Option<SocketAddr>,
) {
    for _ in 0..count {
        for (destination, bytes) in drain(a, *now) {
            if let Some(from) = a_to_b(a, destination, &bytes) {
                b.handle_datagram(*now, from, Bytes::from(bytes));
            }
        }
        for (destination, bytes) in drain(b, *now) {
            if let Some(from) = b_to_a(destination) {
                a.handle_datagram(*now, from, Bytes::from(bytes));
            }
        }
        *now += Duration::from_millis(60);
        a.handle_timeout(*now);
        b.handle_timeout(*now);
    }
}

/// An endpoint sends each destination its own token, the same in every
/// datagram to it, and keeps it for a peer that moves: the peer that moved
/// still recognises what it sent before, and nobody the endpoint answers
/// learns the token another destination knows it by.
#[test]
fn each_destination_gets_its_own_token_and_keeps_it_across_moves() {
    let framing = roaming_config().framing;
    let (a_addr, b_addr, c_addr): (SocketAddr, SocketAddr, SocketAddr) = (
        "192.0.2.1:4000".parse().unwrap(),
        "192.0.2.2:5000".parse().unwrap(),
        "192.0.2.3:6000".parse().unwrap(),
    );
    let mut a = Endpoint::new(roaming_config(), 11).unwrap();
    let mut now = Instant::now();
    a.send(now, b_addr, Bytes::from_static(b"to b")).unwrap();
    a.send(now, c_addr, Bytes::from_static(b"to c")).unwrap();
    a.send(now, b_addr, Bytes::from_static(b"to b again"))
        .unwrap();
    let sent = drain(&mut a, now);
    let token_to = |to: SocketAddr| -> Vec<u64> {
        sent.iter()
            .filter(|(destination, _)| *destination == to)
            .filter_map(|(_, bytes)| framing.sender_token(bytes))
            .collect()
    };
    let (to_b, to_c) = (token_to(b_addr), token_to(c_addr));
    assert_eq!(to_b.len(), 2, "{sent:?}");
    assert_eq!(to_c.len(), 1, "{sent:?}");
    assert_eq!(to_b[0], to_b[1], "two tokens for one destination");
    assert_ne!(to_b[0], to_c[0], "one token for two destinations");

    // B answers from where it is, proving its token there.
    let mut b = Endpoint::new(roaming_config(), 12).unwrap();
    for (destination, bytes) in &sent {
        if *destination == b_addr {
            b.handle_datagram(now, a_addr, Bytes::copy_from_slice(bytes));
        }
    }
    exchange(&mut a, a_addr, &mut b, b_addr, &mut now);
    // A's next message to B is lost; B then moves to a new address (a NAT
    // rebinding) and sends A a message from there, proving its token.
    a.send(now, b_addr, Bytes::from_static(b"lost once"))
        .unwrap();
    let lost = drain(&mut a, now);
    assert_eq!(lost.len(), 1);
    let b_moved: SocketAddr = "198.51.100.9:7000".parse().unwrap();
    b.send(now, a_addr, Bytes::from_static(b"from b")).unwrap();
    for (destination, bytes) in drain(&mut b, now) {
        assert_eq!(destination, a_addr);
        a.handle_datagram(now, b_moved, Bytes::from(bytes));
    }
    // A probes the new address and B answers from there; once B has moved,
    // A writes the token B knows it by in everything it sends there (the
    // lost message's resend included).
    let mut after_move = 0;
    rounds(
        &mut a,
        &mut b,
        &mut now,
        4,
        |a, destination, bytes| {
            if destination != b_moved {
                return None;
            }
            if a.stats().peer_moves > 0 {
                assert_eq!(framing.sender_token(bytes), Some(to_b[0]));
                after_move += 1;
            }
            Some(a_addr)
        },
        |destination| (destination == a_addr).then_some(b_moved),
    );
    assert_eq!(a.stats().peer_moves, 1, "B did not move");
    assert!(after_move > 0, "nothing sent to B after its move");
    // B hands the lost message over once, and the next one too.
    a.send(now, b_addr, Bytes::from_static(b"after the move"))
        .unwrap();
    exchange(&mut a, a_addr, &mut b, b_moved, &mut now);
    let received: Vec<Bytes> = std::iter::from_fn(|| b.poll_event())
        .filter_map(|event| match event {
            Event::Received { payload, .. } => Some(payload),
            _ => None,
        })
        .collect();
    for expected in [&b"lost once"[..], b"after the move"] {
        assert_eq!(
            received.iter().filter(|p| &p[..] == expected).count(),
            1,
            "{received:?}"
        );
    }
}

/// A third party that B answers learns the token B sends it, not the one B
/// sends A: relaying B's answer to A proves nothing of B. Here the attacker
/// at C forwards to B, from D, a copy of A's DATA to C; B answers D with a
/// RECV, which the attacker relays to A from C, where it confirms A's
/// message to C. A must not take C for B: B does not move, and what A's
/// application sends C stays C's, even after B's own next move.
#[test]
fn a_relayed_answer_does_not_claim_the_peer_it_came_from() {
    let (a_addr, b_addr, c_addr, d_addr): (SocketAddr, SocketAddr, SocketAddr, SocketAddr) = (
        "192.0.2.1:4000".parse().unwrap(),
        "192.0.2.2:5000".parse().unwrap(),
        "203.0.113.3:6000".parse().unwrap(),
        "203.0.113.4:6001".parse().unwrap(),
    );
    let mut a = Endpoint::new(roaming_config(), 21).unwrap();
    let mut b = Endpoint::new(roaming_config(), 22).unwrap();
    let mut now = Instant::now();
    // A and B know each other.
    a.send(now, b_addr, Bytes::from_static(b"hello")).unwrap();
    exchange(&mut a, a_addr, &mut b, b_addr, &mut now);
    while a.poll_event().is_some() {}
    while b.poll_event().is_some() {}

    // A sends C a message; the attacker at C forwards it to B from D.
    a.send(now, c_addr, Bytes::from_static(b"for c only"))
        .unwrap();
    let to_c: Vec<Vec<u8>> = drain(&mut a, now)
        .into_iter()
        .filter(|(destination, _)| *destination == c_addr)
        .map(|(_, bytes)| bytes)
        .collect();
    assert!(!to_c.is_empty());
    for bytes in &to_c {
        b.handle_datagram(now, d_addr, Bytes::copy_from_slice(bytes));
    }
    // B answers D (a RECV, or a probe first); every answer is relayed to A
    // from C, and what A sends C comes back to B from D, for a few rounds.
    rounds(
        &mut a,
        &mut b,
        &mut now,
        6,
        |_, destination, _| (destination == c_addr).then_some(d_addr),
        |destination| (destination == d_addr).then_some(c_addr),
    );
    assert_eq!(a.stats().peer_moves, 0, "a relay moved B to C");

    // A's application sends C more; B then moves to a new address and
    // sends A a message from there, proving its token.
    a.send(now, c_addr, Bytes::from_static(b"also for c"))
        .unwrap();
    let b_moved: SocketAddr = "198.51.100.9:7000".parse().unwrap();
    b.send(now, a_addr, Bytes::from_static(b"from b")).unwrap();
    let mut to_c_later = 0;
    rounds(
        &mut a,
        &mut b,
        &mut now,
        20,
        |_, destination, _| {
            to_c_later += usize::from(destination == c_addr);
            (destination == b_moved || destination == b_addr).then_some(a_addr)
        },
        |destination| (destination == a_addr).then_some(b_moved),
    );
    assert!(to_c_later > 0, "A stopped sending to C");
    // (What B took from D, the attacker's address, is D's to answer for.)
    let from_a: Vec<Bytes> = std::iter::from_fn(|| b.poll_event())
        .filter_map(|event| match event {
            Event::Received { from, payload } if from == a_addr => Some(payload),
            _ => None,
        })
        .collect();
    assert!(
        from_a.iter().all(|payload| &payload[..] == b"hello"),
        "B was handed A's messages to C as A's: {from_a:?}"
    );
}

/// A datagram of the roaming framing: `token`, then the default type byte
/// of `kind` and `identity`, then `payload`.
fn roaming_datagram(token: u64, kind: u8, identity: u32, payload: &[u8]) -> Bytes {
    let mut bytes = token.to_be_bytes().to_vec();
    bytes.push(kind);
    bytes.extend_from_slice(&identity.to_be_bytes());
    bytes.extend_from_slice(payload);
    Bytes::from(bytes)
}

/// The default framing's DATA, RECV and ACK type bytes.
const DATA: u8 = 0x1D;
const RECV: u8 = 0x5F;
const ACK: u8 = 0xAE;

/// A client moves (a NAT rebinding) and another host gets its former
/// address. The server's answers to the newcomer must not carry the token
/// the client knows the server by: with it, the newcomer could prove it to
/// the client from its own address, draw the client's messages to the
/// server, and have them reported Delivered. Each peer record gets a token
/// of its own; an answer to an untracked address carries one that names
/// nobody and proves nothing.
#[test]
fn whoever_gets_a_moved_peer_s_address_does_not_learn_its_token() {
    let framing = roaming_config().framing;
    let (old, moved, server_addr, newcomer_elsewhere): (
        SocketAddr,
        SocketAddr,
        SocketAddr,
        SocketAddr,
    ) = (
        "192.0.2.1:4000".parse().unwrap(),
        "198.51.100.7:31000".parse().unwrap(),
        "192.0.2.2:5000".parse().unwrap(),
        "203.0.113.9:9000".parse().unwrap(),
    );
    let (mut client, mut server, mut now) = greeted(old, server_addr);
    // The client's NAT moves it; the server follows.
    client
        .send(
            now,
            server_addr,
            Bytes::from_static(b"from the new address"),
        )
        .unwrap();
    let mut tokens_to_client = Vec::new();
    for _ in 0..100 {
        let mut quiet = true;
        for (destination, bytes) in drain(&mut client, now) {
            quiet = false;
            if destination == server_addr {
                server.handle_datagram(now, moved, Bytes::from(bytes));
            }
        }
        for (destination, bytes) in drain(&mut server, now) {
            quiet = false;
            if destination == moved {
                tokens_to_client.extend(framing.sender_token(&bytes));
                client.handle_datagram(now, server_addr, Bytes::from(bytes));
            }
        }
        if quiet {
            break;
        }
    }
    assert_eq!(server.stats().peer_moves, 1, "the server did not follow");
    assert!(!tokens_to_client.is_empty(), "the server did not answer");
    while client.poll_event().is_some() {}
    while server.poll_event().is_some() {}

    // Another host gets the former address and writes to the server, which
    // answers it (a probe: the newcomer has to prove itself).
    now += Duration::from_millis(10);
    server.handle_datagram(
        now,
        old,
        roaming_datagram(0x4141_4141_4141_4141, DATA, 1, b"hi"),
    );
    let answers: Vec<u64> = drain(&mut server, now)
        .into_iter()
        .filter(|(destination, _)| *destination == old)
        .filter_map(|(_, bytes)| framing.sender_token(&bytes))
        .collect();
    assert!(
        !answers.is_empty(),
        "the server did not answer the newcomer"
    );
    assert!(
        answers
            .iter()
            .all(|token| !tokens_to_client.contains(token)),
        "the newcomer learnt a token the client knows the server by"
    );

    // With every token the newcomer learnt, it tries the client from its
    // own address: a DATA, then answers to whatever the client asks.
    for (k, token) in answers.iter().enumerate() {
        client.handle_datagram(
            now,
            newcomer_elsewhere,
            roaming_datagram(*token, DATA, 7 + k as u32, b"x"),
        );
        for (destination, bytes) in drain(&mut client, now) {
            if destination == newcomer_elsewhere && bytes[8] == RECV {
                let identity = u32::from_be_bytes(bytes[9..13].try_into().unwrap());
                client.handle_datagram(
                    now,
                    newcomer_elsewhere,
                    roaming_datagram(*token, ACK, identity, b""),
                );
            }
        }
    }
    assert_eq!(
        client.stats().peer_moves,
        0,
        "the newcomer moved the server"
    );
    // The client's next message goes to the server, not the newcomer.
    client
        .send(now, server_addr, Bytes::from_static(b"for the server only"))
        .unwrap();
    let message_to: Vec<SocketAddr> = drain(&mut client, now)
        .into_iter()
        .filter(|(_, bytes)| bytes[8] == DATA && bytes.ends_with(b"for the server only"))
        .map(|(destination, _)| destination)
        .collect();
    assert_eq!(message_to, [server_addr]);
}

/// A reply to an unvalidated client goes out once, then waits for the
/// client's budget; a flood evicts the client, and the reply waits parked
/// for the client's proof. When the client proves itself, the peer tracked
/// again takes the token the reply first carried: every copy of a message
/// carries one token (its receiver remembers it under that token), so the
/// client hands the reply over once.
#[test]
fn a_message_parked_with_an_evicted_peer_keeps_its_token() {
    let framing = roaming_config().framing;
    let (client_addr, server_addr): (SocketAddr, SocketAddr) = (
        "192.0.2.1:4000".parse().unwrap(),
        "192.0.2.2:5000".parse().unwrap(),
    );
    let mut server_config = roaming_config();
    server_config.limits.max_peers = 4;
    let mut server = Endpoint::new(server_config, 31).unwrap();
    let mut client = Endpoint::new(roaming_config(), 32).unwrap();
    let now = Instant::now();
    // (Four bytes: three times the client's DATA leave room for a probe
    // and one copy of the reply, each with room for another probe, not
    // for two copies.)
    client
        .send(now, server_addr, Bytes::from_static(b"abcd"))
        .unwrap();
    for (_, bytes) in drain(&mut client, now) {
        server.handle_datagram(now, client_addr, Bytes::from(bytes));
    }
    // The server probes the client; the probe is held back here.
    let probes = drain(&mut server, now);
    assert!(!probes.is_empty());
    // The server's application replies at once: the first copy fits the
    // client's budget and reaches it (its RECV is lost).
    server
        .send(now, client_addr, Bytes::from_static(b"reply"))
        .unwrap();
    let first: Vec<Vec<u8>> = drain(&mut server, now)
        .into_iter()
        .filter(|(_, bytes)| bytes.ends_with(b"reply"))
        .map(|(_, bytes)| bytes)
        .collect();
    assert_eq!(first.len(), 1, "the reply did not go out");
    let token = framing.sender_token(&first[0]).unwrap();
    client.handle_datagram(now, server_addr, Bytes::from(first[0].clone()));
    drain(&mut client, now);
    // The reply's retransmission waits for the client's budget (what the
    // server sends meanwhile is lost).
    let mut later = now;
    while server.stats().dropped.amplification_limited < 2 {
        later = server.poll_timeout().expect("a timer");
        assert!(
            later < now + Duration::from_secs(5),
            "the budget never held the reply"
        );
        server.handle_timeout(later);
        drain(&mut server, later);
    }
    // A flood from other addresses evicts the unvalidated client.
    for port in 0..16u16 {
        let from = SocketAddr::from(([203, 0, 113, 1], 6000 + port));
        server.handle_datagram(
            later,
            from,
            roaming_datagram(u64::from(port) + 1, DATA, 100 + u32::from(port), b"x"),
        );
    }
    drain(&mut server, later);
    assert!(
        server.stats().unvalidated_peers_evicted > 0 && server.peer_stats(client_addr).is_none(),
        "the client was not evicted"
    );
    // The client answers the probe: the server tracks it again, and the
    // reply goes out again, with the token of its first copy.
    for (_, bytes) in probes {
        client.handle_datagram(later, server_addr, Bytes::from(bytes));
    }
    for (destination, bytes) in drain(&mut client, later) {
        assert_eq!(destination, server_addr);
        server.handle_datagram(later, client_addr, Bytes::from(bytes));
    }
    let mut now = later;
    let mut copies = 0;
    rounds(
        &mut server,
        &mut client,
        &mut now,
        10,
        |_, destination, bytes| {
            if bytes.ends_with(b"reply") {
                assert_eq!(framing.sender_token(bytes), Some(token), "another token");
                copies += 1;
            }
            (destination == client_addr).then_some(server_addr)
        },
        |destination| (destination == server_addr).then_some(client_addr),
    );
    assert!(copies > 0, "the parked reply was not sent again");
    let replies = std::iter::from_fn(|| client.poll_event())
        .filter(
            |event| matches!(event, Event::Received { payload, .. } if &payload[..] == b"reply"),
        )
        .count();
    assert_eq!(replies, 1, "the reply was handed over {replies} times");
}

/// A sends B one message and A's ACK of B's RECV is lost; then A closes,
/// or forgets B (its table of one peer makes room for another). A answers
/// each of B's resent RECVs with an ACK to an address it no longer tracks,
/// which carries the token that names nobody: the ACK must still end B's
/// exchange (under the token A proved), not leave B resending its RECV
/// until its attempts run out. Returns B's RECV resends from then on.
fn recv_resends_after_the_sender_forgets(close: bool) -> u64 {
    let (a_addr, b_addr, c_addr): (SocketAddr, SocketAddr, SocketAddr) = (
        "192.0.2.1:4000".parse().unwrap(),
        "192.0.2.2:5000".parse().unwrap(),
        "192.0.2.3:6000".parse().unwrap(),
    );
    let mut a_config = roaming_config();
    a_config.limits.max_peers = 1;
    let mut a = Endpoint::new(a_config, 1).unwrap();
    let mut b = Endpoint::new(roaming_config(), 2).unwrap();
    let mut now = Instant::now();
    a.send(now, b_addr, Bytes::from_static(b"m")).unwrap();
    rounds(
        &mut a,
        &mut b,
        &mut now,
        4,
        // A's ACKs are lost once its message is confirmed.
        |a, destination, bytes| {
            let lost = a.table_sizes().messages == 0 && bytes[8] == ACK;
            (destination == b_addr && !lost).then_some(a_addr)
        },
        |destination| (destination == a_addr).then_some(b_addr),
    );
    assert_eq!(a.table_sizes().messages, 0, "A's message was not confirmed");
    assert_eq!(b.table_sizes().awaiting_ack, 1, "B does not await A's ACK");
    if close {
        a.close(now);
        assert!(a.is_closed());
    } else {
        a.send(now, c_addr, Bytes::from_static(b"elsewhere"))
            .unwrap();
        assert!(a.peer_stats(b_addr).is_none(), "A still tracks B");
    }
    let before = b.stats().recv_retransmissions;
    rounds(
        &mut a,
        &mut b,
        &mut now,
        40,
        |_, destination, _| (destination == b_addr).then_some(a_addr),
        |destination| (destination == a_addr).then_some(b_addr),
    );
    assert_eq!(b.table_sizes().awaiting_ack, 0, "B's exchange never ended");
    b.stats().recv_retransmissions - before
}

#[test]
fn an_ack_from_an_endpoint_that_closed_ends_the_exchange() {
    let resends = recv_resends_after_the_sender_forgets(true);
    assert!(resends <= 1, "B resent its RECV {resends} times");
}

#[test]
fn an_ack_from_an_endpoint_that_forgot_us_ends_the_exchange() {
    let resends = recv_resends_after_the_sender_forgets(false);
    assert!(resends <= 1, "B resent its RECV {resends} times");
}
