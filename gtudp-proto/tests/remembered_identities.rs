//! The receiver's memory of identities whose exchange ended: its retention
//! boundaries, identity collisions from restarted senders, its byte bound,
//! and a sustained stream far past the old per-record limits.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{addr, config, encode, kinds, Pair};
use gtudp_proto::wire::{Identity, Packet, PacketKind::Recv};
use gtudp_proto::{Config, Endpoint, Event};

fn data(identity: u32, payload: &[u8]) -> Bytes {
    encode(Packet::Data {
        identity: Identity::from_u32(identity),
        payload,
    })
}

fn ack(identity: u32) -> Bytes {
    encode(Packet::Ack {
        identity: Identity::from_u32(identity),
    })
}

/// An endpoint that reached `peers` first (a send to each, cancelled before
/// it went out), so it takes their DATA without a validation probe: these
/// tests are about the memory of what was taken.
fn knowing(config: Config, peers: &[SocketAddr]) -> Endpoint {
    let mut endpoint = Endpoint::new(config, 7).unwrap();
    let now = Instant::now();
    for &peer in peers {
        let id = endpoint
            .send(now, peer, Bytes::from_static(b"introduction"))
            .unwrap();
        endpoint.cancel(id).unwrap();
    }
    drain(&mut endpoint, now);
    while endpoint.poll_event().is_some() {}
    endpoint
}

fn received(endpoint: &mut Endpoint) -> usize {
    std::iter::from_fn(|| endpoint.poll_event())
        .filter(|event| matches!(event, Event::Received { .. }))
        .count()
}

fn drain(endpoint: &mut Endpoint, now: Instant) -> usize {
    let mut buf = Vec::new();
    std::iter::from_fn(|| endpoint.poll_transmit(now, 1, &mut buf)).count()
}

/// Delivers DATA(identity) from `from` and answers its RECV with ACK.
fn complete(b: &mut Endpoint, now: Instant, from: SocketAddr, identity: u32, payload: &[u8]) {
    b.handle_datagram(now, from, data(identity, payload));
    drain(b, now);
    b.handle_datagram(now, from, ack(identity));
}

#[test]
fn a_copy_just_inside_the_lifetime_after_the_ack_is_suppressed() {
    let lifetime = config().datagram_lifetime;
    let mut b = knowing(config(), &[addr(1), addr(2)]);
    let start = Instant::now();
    let a = addr(1);
    complete(&mut b, start, a, 5, b"m");
    assert_eq!(received(&mut b), 1);
    let inside = start + lifetime - Duration::from_millis(1);
    b.handle_datagram(inside, a, data(5, b"m"));
    assert_eq!(
        received(&mut b),
        0,
        "a copy within the lifetime is a duplicate"
    );
    assert_eq!(drain(&mut b, inside), 1, "and gets its RECV again");
    assert_eq!(b.stats().duplicates_suppressed, 1);
    // The retention rule: at least the lifetime, less than 1.25 times it.
    let past = start + lifetime + lifetime / 4 + Duration::from_millis(1);
    b.handle_timeout(past);
    assert_eq!(
        b.table_sizes().remembered,
        0,
        "forgotten by 1.25 × lifetime"
    );
}

#[test]
fn a_copy_just_inside_the_window_after_recv_attempts_ran_out_is_suppressed() {
    // `remember_window`, plus the lifetime of a copy the sender wrote at
    // the end of its retry span.
    let window = config().remember_window + config().datagram_lifetime;
    let mut b = knowing(config(), &[addr(1), addr(2)]);
    let start = Instant::now();
    let a = addr(1);
    b.handle_datagram(start, a, data(9, b"m"));
    assert_eq!(received(&mut b), 1);
    drain(&mut b, start);
    // Every RECV is lost: B resends until its attempts run out.
    let mut gave_up_at = None;
    while let Some(now) = b.poll_timeout() {
        b.handle_timeout(now);
        drain(&mut b, now);
        if b.table_sizes().awaiting_ack == 0 {
            gave_up_at = Some(now);
            break;
        }
    }
    let gave_up_at = gave_up_at.expect("RECV attempts end");
    assert_eq!(b.table_sizes().remembered, 1);
    let inside = gave_up_at + window - Duration::from_millis(1);
    b.handle_datagram(inside, a, data(9, b"m"));
    assert_eq!(
        received(&mut b),
        0,
        "remembered for remember_window and a lifetime"
    );
    assert_eq!(kinds(&common::drain_transmits(&mut b, inside)), [Recv]);
    b.handle_timeout(gave_up_at + window + window / 4 + Duration::from_millis(1));
    assert_eq!(b.table_sizes().remembered, 0);
}

#[test]
fn a_restarted_sender_reusing_an_identity_with_a_new_payload_is_handed_over() {
    let mut b = knowing(config(), &[addr(1), addr(2)]);
    let now = Instant::now();
    let a = addr(1);
    complete(&mut b, now, a, 77, b"before the restart");
    assert_eq!(received(&mut b), 1);
    // The same address and identity, another payload: a new message.
    b.handle_datagram(now, a, data(77, b"after the restart"));
    let events: Vec<Event> = std::iter::from_fn(|| b.poll_event()).collect();
    assert!(matches!(
        &events[..],
        [Event::Received { payload, .. }] if &payload[..] == b"after the restart"
    ));
    assert_eq!(b.stats().identity_collisions, 1);
    // A late copy of either message is still a duplicate.
    b.handle_datagram(now, a, data(77, b"before the restart"));
    b.handle_datagram(now, a, data(77, b"after the restart"));
    assert_eq!(received(&mut b), 0);
    assert_eq!(b.stats().duplicates_suppressed, 2);
}

#[test]
fn a_collision_with_a_record_still_awaiting_its_ack_keeps_both_recognisable() {
    let mut b = knowing(config(), &[addr(1), addr(2)]);
    let now = Instant::now();
    let a = addr(1);
    b.handle_datagram(now, a, data(3, b"old"));
    b.handle_datagram(now, a, data(3, b"new"));
    assert_eq!(received(&mut b), 2);
    b.handle_datagram(now, a, data(3, b"old"));
    b.handle_datagram(now, a, data(3, b"new"));
    assert_eq!(received(&mut b), 0, "neither is handed over twice");
    let sizes = b.table_sizes();
    assert_eq!((sizes.awaiting_ack, sizes.remembered), (1, 1));
}

#[test]
fn the_same_identity_from_another_host_is_another_message() {
    let other_host = SocketAddr::from(([10, 0, 0, 2], 1));
    let mut b = knowing(config(), &[addr(1), other_host]);
    let now = Instant::now();
    complete(&mut b, now, addr(1), 11, b"same");
    complete(&mut b, now, other_host, 11, b"same");
    assert_eq!(received(&mut b), 2);
    assert_eq!(b.stats().identity_collisions, 0);
}

/// A NAT gives the sender a new port mid-stream: a copy of a message
/// already handed over, arriving from the new port, is a repeat, whether
/// the first copy's RECV still awaits its ACK, was acknowledged, or ran out
/// of attempts. It is answered at the new port.
#[test]
fn a_copy_from_another_port_of_the_same_host_is_a_repeat() {
    let window = config().remember_window;
    let mut b = knowing(config(), &[addr(1), addr(2), addr(3), addr(4)]);
    let now = Instant::now();
    // Awaiting its ACK.
    b.handle_datagram(now, addr(1), data(21, b"awaited"));
    drain(&mut b, now);
    b.handle_datagram(now, addr(2), data(21, b"awaited"));
    let replies = common::drain_transmits(&mut b, now);
    assert_eq!(kinds(&replies), [Recv]);
    assert_eq!(replies[0].to, addr(2), "answered at the new port");
    assert_eq!(b.stats().rebound_duplicates, 1);
    // Its ACK from the new port ends the exchange.
    b.handle_datagram(now, addr(2), ack(21));
    assert_eq!(b.table_sizes().awaiting_ack, 0);
    // Acknowledged.
    complete(&mut b, now, addr(1), 22, b"acknowledged");
    b.handle_datagram(now, addr(3), data(22, b"acknowledged"));
    assert_eq!(kinds(&common::drain_transmits(&mut b, now)), [Recv]);
    // RECV attempts ran out.
    b.handle_datagram(now, addr(1), data(23, b"abandoned"));
    drain(&mut b, now);
    let mut gave_up_at = None;
    while let Some(at) = b.poll_timeout() {
        b.handle_timeout(at);
        drain(&mut b, at);
        if b.table_sizes().awaiting_ack == 0 {
            gave_up_at = Some(at);
            break;
        }
    }
    let inside = gave_up_at.expect("RECV attempts end") + window - Duration::from_millis(1);
    b.handle_datagram(inside, addr(4), data(23, b"abandoned"));
    assert_eq!(kinds(&common::drain_transmits(&mut b, inside)), [Recv]);
    assert_eq!(received(&mut b), 3, "each handed over once");
    assert_eq!(b.stats().duplicates_suppressed, 3);
}

/// With `recognise_copies_across_ports` off, each address has its own
/// memory: the same identity and payload from another port is a new
/// message (two senders behind one NAT), as it was before the option.
#[test]
fn without_recognition_across_ports_another_port_is_another_sender() {
    let mut config = config();
    config.recognise_copies_across_ports = false;
    let mut b = knowing(config, &[addr(1), addr(2)]);
    let now = Instant::now();
    b.handle_datagram(now, addr(1), data(31, b"ping"));
    b.handle_datagram(now, addr(2), data(31, b"ping"));
    complete(&mut b, now, addr(1), 32, b"pong");
    complete(&mut b, now, addr(2), 32, b"pong");
    assert_eq!(received(&mut b), 4);
    assert_eq!(b.stats().duplicates_suppressed, 0);
}

#[test]
fn a_full_memory_leaves_new_data_unanswered_until_identities_expire() {
    let mut config = config();
    config.limits.max_remembered_bytes = 4_096;
    let lifetime = config.datagram_lifetime;
    let mut b = knowing(config.clone(), &[addr(1), addr(2)]);
    let start = Instant::now();
    let a = addr(1);
    let mut accepted = 0;
    for identity in 0..2_000 {
        b.handle_datagram(start, a, data(identity, b"x"));
        if drain(&mut b, start) == 1 {
            b.handle_datagram(start, a, ack(identity));
            accepted += 1;
        }
    }
    received(&mut b);
    let sizes = b.table_sizes();
    assert!(accepted > 100 && accepted < 2_000, "{accepted} accepted");
    assert!(b.stats().dropped.data_unanswered_full > 0);
    assert!(
        sizes.exceeded(&config.limits).is_none(),
        "{:?}",
        sizes.exceeded(&config.limits)
    );
    // Once the generation is forgotten, new messages are taken again.
    let later = start + lifetime * 2;
    b.handle_timeout(later);
    b.handle_datagram(later, a, data(5_000, b"x"));
    assert_eq!(received(&mut b), 1);
}

/// One peer streaming 100,000 messages/s for 6 virtual seconds: three times
/// past the 32,768/s that per-record memory allowed, and 600,000 messages,
/// over nine times the old per-peer bound of 65,536. Nothing is left
/// unanswered, and memory levels off at the steady-state cost.
#[test]
fn a_sustained_stream_is_never_refused_and_its_memory_levels_off() {
    let config: Config = config();
    let lifetime = config.datagram_lifetime;
    let mut pair = Pair::with_configs(config.clone(), config);
    let mut buf = Vec::new();
    let mut inbox = Vec::new();
    let per_tick = 100; // every millisecond
    let mut peak_bytes = 0;
    let mut bytes_at_steady = Vec::new();
    let payload = Bytes::from_static(&[7; 32]);
    for tick in 0..6_000u32 {
        let now = pair.now;
        for _ in 0..per_tick {
            pair.a.send(now, pair.b_addr, payload.clone()).unwrap();
        }
        for _ in 0..4 {
            while let Some(t) = pair.a.poll_transmit(now, 1, &mut buf) {
                inbox.push(Bytes::copy_from_slice(&buf[..t.size]));
            }
            for datagram in inbox.drain(..) {
                pair.b.handle_datagram(now, pair.a_addr, datagram);
            }
            while let Some(t) = pair.b.poll_transmit(now, 1, &mut buf) {
                inbox.push(Bytes::copy_from_slice(&buf[..t.size]));
            }
            for datagram in inbox.drain(..) {
                pair.a.handle_datagram(now, pair.b_addr, datagram);
            }
        }
        while pair.a.poll_event().is_some() {}
        while pair.b.poll_event().is_some() {}
        pair.now += Duration::from_millis(1);
        let now = pair.now;
        pair.a.handle_timeout(now);
        pair.b.handle_timeout(now);
        let sizes = pair.b.table_sizes();
        peak_bytes = peak_bytes.max(sizes.remembered_bytes);
        if Duration::from_millis(u64::from(tick)) > lifetime * 2 {
            bytes_at_steady.push(sizes.remembered_bytes);
            let per_identity = sizes.remembered_bytes as f64 / sizes.remembered as f64;
            assert!(
                per_identity <= 17.0,
                "{per_identity:.1} bytes per remembered identity at tick {tick}"
            );
        }
    }
    let stats = pair.b.stats();
    assert_eq!(stats.received, 600_000);
    assert_eq!(stats.dropped.data_unanswered_full, 0);
    assert_eq!(pair.a.stats().retransmissions, 0);
    assert_eq!(pair.a.stats().delivered, 600_000);
    // Levels off: the last second holds no more than the second before it.
    let (earlier, later) = bytes_at_steady.split_at(bytes_at_steady.len() / 2);
    let max = |s: &[usize]| s.iter().copied().max().unwrap_or(0);
    assert!(max(later) <= max(earlier) * 11 / 10, "memory keeps growing");
    assert!(peak_bytes < 8 << 20, "{peak_bytes} bytes at the peak");
}

/// What one receiver did with a stream of batches: every datagram it sent,
/// every event, and its counters at the end.
type Trace = (
    Vec<(SocketAddr, Bytes)>,
    Vec<Event>,
    gtudp_proto::EndpointStats,
);

/// Feeds `batches` (each a batch of datagrams as a batched receive reads
/// them) to a receiver that knows both senders, with or without
/// `Endpoint::prefetch` before each batch.
fn run_batches(batches: &[(Instant, Vec<(SocketAddr, Bytes)>)], prefetch: bool) -> Trace {
    let mut b = knowing(config(), &[addr(1), addr(2)]);
    let (mut sent, mut events) = (Vec::new(), Vec::new());
    let mut buf = Vec::new();
    for (now, batch) in batches {
        if prefetch {
            b.prefetch(batch.iter().map(|(from, datagram)| (*from, &datagram[..])));
        }
        for (from, datagram) in batch {
            b.handle_datagram_slice(*now, *from, datagram);
        }
        b.handle_timeout(*now);
        while let Some(t) = b.poll_transmit(*now, 1, &mut buf) {
            sent.push((t.destination, Bytes::copy_from_slice(&buf[..t.size])));
        }
        events.extend(std::iter::from_fn(|| b.poll_event()));
    }
    (sent, events, b.stats())
}

#[test]
fn prefetching_a_batch_changes_nothing_the_receiver_does() {
    // Two senders' streams interleaved in runs, over several generations
    // of the memory (filters built, the oldest forgotten), with ACKs, late
    // copies of remembered messages, and reused identities with new
    // payloads: every path a prefetch reads ahead of.
    let start = Instant::now();
    let step = Duration::from_millis(20);
    let mut batches = Vec::new();
    let mut next = 0u32;
    for round in 0..400u32 {
        let now = start + step * round;
        let mut batch = Vec::new();
        for from in [addr(1), addr(1), addr(2), addr(1), addr(2), addr(2)] {
            next += 1;
            let identity = next.wrapping_mul(0x9e37_79b9);
            batch.push((from, data(identity, &next.to_be_bytes())));
            batch.push((from, ack(identity)));
            if next % 7 == 0 {
                // A late copy of a message remembered a while ago.
                let old = (next - 5).wrapping_mul(0x9e37_79b9);
                batch.push((from, data(old, &(next - 5).to_be_bytes())));
            }
            if next % 11 == 0 {
                // Its identity again with another payload: a new message.
                batch.push((from, data(identity, b"another")));
            }
        }
        batches.push((now, batch));
    }
    let plain = run_batches(&batches, false);
    let prefetched = run_batches(&batches, true);
    assert!(plain.2.duplicates_suppressed > 0 && plain.2.received > 2_000);
    assert_eq!(prefetched.2, plain.2, "the same counters");
    assert_eq!(prefetched.1, plain.1, "the same events");
    assert_eq!(prefetched.0, plain.0, "the same datagrams sent");
}
