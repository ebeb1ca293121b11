//! RECV copies on virtual time: when the path back loses RECVs and each
//! lost one costs a DATA worth far more than a RECV, the receiver sends
//! every RECV twice, and the sender answers the pair with one ACK. Small
//! messages and clean paths never get copies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gtudp_proto::wire::{Framing, PacketKind};
use gtudp_proto::{Config, Endpoint, EndpointStats, Event};

const ONE_WAY: Duration = Duration::from_millis(10);
const MESSAGES: usize = 5_000;
const IN_FLIGHT: usize = 64;

fn sender_addr() -> SocketAddr {
    "10.0.0.1:4000".parse().unwrap()
}

fn receiver_addr() -> SocketAddr {
    "10.0.0.2:5000".parse().unwrap()
}

/// A datagram on the wire: when it arrives, a tie-breaking number, whether
/// it goes to the receiver, and its bytes.
type InFlight = Reverse<(Instant, u64, bool, Vec<u8>)>;

/// What one run saw.
struct Outcome {
    sender: EndpointStats,
    receiver: EndpointStats,
    delivered: usize,
    handed_over: HashMap<Bytes, usize>,
}

/// Sends `MESSAGES` messages of `size` bytes, `IN_FLIGHT` at a time, over
/// a 20 ms round trip whose path back drops a `recv_loss` share of RECVs
/// (chosen by a seeded generator, so each run is the same).
fn run(size: usize, recv_loss: f64, seed: u64) -> Outcome {
    let framing = Framing::default();
    let start = Instant::now();
    let mut now = start;
    let mut sender = Endpoint::new(Config::default(), 1).unwrap();
    let mut receiver = Endpoint::new(Config::default(), 2).unwrap();
    let mut rng = seed.max(1);
    let mut chance = move || {
        // xorshift64: deterministic, enough for a loss pattern.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut wire: BinaryHeap<InFlight> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut buf = Vec::new();
    let (mut sent, mut delivered, mut outstanding) = (0usize, 0usize, 0usize);
    let mut handed_over = HashMap::new();
    let deadline = start + Duration::from_secs(600);
    while delivered < MESSAGES {
        assert!(now < deadline, "stalled at {delivered} delivered");
        while sent < MESSAGES && outstanding < IN_FLIGHT {
            let mut payload = vec![0u8; size];
            payload[..8].copy_from_slice(&(sent as u64).to_be_bytes());
            sender
                .send(now, receiver_addr(), Bytes::from(payload))
                .unwrap();
            sent += 1;
            outstanding += 1;
        }
        while let Some(t) = sender.poll_transmit(now, 1, &mut buf) {
            seq += 1;
            wire.push(Reverse((now + ONE_WAY, seq, true, buf[..t.size].to_vec())));
        }
        while let Some(t) = receiver.poll_transmit(now, 1, &mut buf) {
            let datagram = buf[..t.size].to_vec();
            let is_recv = matches!(
                framing.parse(&datagram).map(|packet| packet.kind()),
                Ok(PacketKind::Recv)
            );
            if is_recv && chance() < recv_loss {
                continue;
            }
            seq += 1;
            wire.push(Reverse((now + ONE_WAY, seq, false, datagram)));
        }
        while let Some(event) = sender.poll_event() {
            match event {
                Event::Delivered { .. } => {
                    delivered += 1;
                    outstanding -= 1;
                }
                Event::Failed { reason, .. } => panic!("a message failed: {reason:?}"),
                _ => {}
            }
        }
        while let Some(event) = receiver.poll_event() {
            if let Event::Received { payload, .. } = event {
                *handed_over.entry(payload).or_insert(0) += 1;
            }
        }
        let next_arrival = wire.peek().map(|Reverse((at, ..))| *at);
        let next = [next_arrival, sender.poll_timeout(), receiver.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .expect("something is always pending until every message is delivered");
        now = now.max(next);
        while let Some(Reverse((at, _, to_receiver, datagram))) = wire.peek().cloned() {
            if at > now {
                break;
            }
            wire.pop();
            if to_receiver {
                receiver.handle_datagram(now, sender_addr(), Bytes::from(datagram));
            } else {
                sender.handle_datagram(now, receiver_addr(), Bytes::from(datagram));
            }
        }
        sender.handle_timeout(now);
        receiver.handle_timeout(now);
    }
    Outcome {
        sender: sender.stats(),
        receiver: receiver.stats(),
        delivered,
        handed_over,
    }
}

fn assert_exactly_once(outcome: &Outcome) {
    assert_eq!(outcome.delivered, MESSAGES);
    assert_eq!(outcome.handed_over.len(), MESSAGES);
    assert!(outcome.handed_over.values().all(|&count| count == 1));
}

#[test]
fn a_lossy_path_back_gets_copies_and_spares_the_data() {
    let large = run(1_400, 0.10, 7);
    assert_exactly_once(&large);
    assert!(
        large.receiver.recv_copies_sent > (MESSAGES / 2) as u64,
        "copies sent: {}",
        large.receiver.recv_copies_sent
    );
    // Without copies about one message in ten is resent for its lost RECV;
    // with them, only when both are lost (about one in a hundred).
    let resent = large.sender.retransmissions as f64 / MESSAGES as f64;
    assert!(
        resent < 0.04,
        "{resent:.3} DATA retransmissions per message"
    );
    // The copies draw no ACK of their own: about one ACK per message (and
    // per RECV the receiver resent on its timer for a lost ACK).
    assert!(large.sender.recv_copies_received > (MESSAGES / 2) as u64);
    let acks = large.sender.datagrams_out.ack;
    assert!(
        acks <= (MESSAGES as u64 + large.receiver.recv_retransmissions) * 11 / 10,
        "{acks} ACKs for {MESSAGES} messages"
    );
}

#[test]
fn small_messages_are_resent_rather_than_doubling_every_recv() {
    // A 64-byte DATA costs little more than a RECV: at 5% loss a copy of
    // every RECV would cost more than the resends it saves, even with the
    // data's path weighed four times the path back (copies start near 9%).
    let small = run(64, 0.05, 7);
    assert_exactly_once(&small);
    assert_eq!(small.receiver.recv_copies_sent, 0);
    let resent = small.sender.retransmissions as f64 / MESSAGES as f64;
    assert!(
        resent > 0.03,
        "{resent:.3} DATA retransmissions per message"
    );
}

#[test]
fn a_clean_path_back_gets_no_copies() {
    let clean = run(1_400, 0.0, 7);
    assert_exactly_once(&clean);
    assert_eq!(clean.receiver.recv_copies_sent, 0);
    assert_eq!(clean.sender.recv_copies_received, 0);
}
