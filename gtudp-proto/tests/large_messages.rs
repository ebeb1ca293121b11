//! The large-message extension on virtual time: messages larger than one
//! datagram are split into fragments, each confirmed and resent on its own,
//! and handed over whole, exactly once; one outcome per message; the
//! receiver's memory for incomplete messages stays within its budget
//! whatever fragments arrive, and a full budget delays messages rather than
//! losing them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gtudp_proto::wire::{FragmentHeader, Framing, Packet};
use gtudp_proto::{Config, Endpoint, Event, FailureReason, LargeMessages, MessageId};

fn a_addr() -> SocketAddr {
    "10.0.0.1:4000".parse().unwrap()
}

fn b_addr() -> SocketAddr {
    "10.0.0.2:5000".parse().unwrap()
}

fn config() -> Config {
    let mut config = Config::default();
    config.initial_rto = Duration::from_millis(100);
    config.min_rto = Duration::from_millis(10);
    config.max_rto = Duration::from_secs(1);
    config.remember_window = Duration::from_secs(15);
    config.datagram_lifetime = Duration::from_secs(1);
    config.large_messages = Some(LargeMessages::default().with_max_message_size(1 << 20));
    config
}

/// The payload of message `n`: every byte depends on its message and place.
fn payload(n: u32, len: usize) -> Bytes {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).wrapping_add(n) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// Two endpoints on a link that drops each datagram with probability
/// `loss` (a fixed pseudo-random sequence) and takes 5 ms each way.
struct Link {
    now: Instant,
    a: Endpoint,
    b: Endpoint,
    loss: f64,
    rng: u64,
    in_flight: Vec<(Instant, SocketAddr, SocketAddr, Bytes)>,
    buf: Vec<u8>,
    dropped_bytes: u64,
    sent_data_bytes: u64,
    /// Every datagram the sender wrote.
    sent_by_a: Vec<Bytes>,
    outcomes: HashMap<MessageId, Result<(), FailureReason>>,
    received: Vec<Bytes>,
}

impl Link {
    fn new(a: Config, b: Config, loss: f64) -> Self {
        Self {
            now: Instant::now(),
            a: Endpoint::new(a, 1).unwrap(),
            b: Endpoint::new(b, 2).unwrap(),
            loss,
            rng: 0x9e37_79b9_7f4a_7c15,
            in_flight: Vec::new(),
            buf: Vec::new(),
            dropped_bytes: 0,
            sent_data_bytes: 0,
            sent_by_a: Vec::new(),
            outcomes: HashMap::new(),
            received: Vec::new(),
        }
    }

    fn lost(&mut self) -> bool {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng % 10_000) as f64 / 10_000.0 < self.loss
    }

    fn send(&mut self, payload: Bytes) -> MessageId {
        let now = self.now;
        self.a.send(now, b_addr(), payload).unwrap()
    }

    /// Moves datagrams and time until `until` or until nothing is left.
    fn run(&mut self, until: Duration) {
        let end = self.now + until;
        loop {
            for from_a in [true, false] {
                let (endpoint, from) = match from_a {
                    true => (&mut self.a, a_addr()),
                    false => (&mut self.b, b_addr()),
                };
                while let Some(t) = endpoint.poll_transmit(self.now, 1, &mut self.buf) {
                    let bytes = Bytes::copy_from_slice(&self.buf[..t.size]);
                    if from_a {
                        self.sent_data_bytes += bytes.len() as u64;
                        self.sent_by_a.push(bytes.clone());
                    }
                    self.in_flight.push((
                        self.now + Duration::from_millis(5),
                        from,
                        t.destination,
                        bytes,
                    ));
                }
            }
            while let Some(event) = self.a.poll_event() {
                match event {
                    Event::Delivered { id, .. } => assert!(
                        self.outcomes.insert(id, Ok(())).is_none(),
                        "two outcomes for {id}"
                    ),
                    Event::Failed { id, reason, .. } => assert!(
                        self.outcomes.insert(id, Err(reason)).is_none(),
                        "two outcomes for {id}"
                    ),
                    other => panic!("unexpected at the sender: {other:?}"),
                }
            }
            while let Some(event) = self.b.poll_event() {
                match event {
                    Event::Received { payload, .. } => self.received.push(payload),
                    other => panic!("unexpected at the receiver: {other:?}"),
                }
            }
            let next_arrival = self.in_flight.iter().map(|d| d.0).min();
            let next_timer = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = [next_arrival, next_timer].into_iter().flatten().min() else {
                return;
            };
            if next > end {
                return;
            }
            self.now = self.now.max(next);
            let now = self.now;
            let (due, later): (Vec<_>, Vec<_>) = self.in_flight.drain(..).partition(|d| d.0 <= now);
            self.in_flight = later;
            for (_, from, to, bytes) in due {
                if self.lost() {
                    self.dropped_bytes += bytes.len() as u64;
                    continue;
                }
                match to == b_addr() {
                    true => self.b.handle_datagram(now, from, bytes),
                    false => self.a.handle_datagram(now, from, bytes),
                }
            }
            self.a.handle_timeout(now);
            self.b.handle_timeout(now);
        }
    }
}

#[test]
fn a_large_message_arrives_whole_once_and_a_small_one_is_the_original_datagram() {
    // Fragments of `max_datagram_size`: path MTU discovery off (with it,
    // they follow the size it finds; see tests/pmtud.rs).
    let mut config = config();
    config.large_messages = Some(
        LargeMessages::default()
            .with_max_message_size(1 << 20)
            .with_pmtud(false),
    );
    let mut link = Link::new(config.clone(), config, 0.0);
    let big = payload(1, 200_000);
    let id = link.send(big.clone());
    // A small message is one DATA, byte for byte the original's.
    let small_id = link.send(Bytes::from_static(b"small"));
    link.run(Duration::from_secs(10));
    // Fragments carry the extension's type and fit one datagram; the small
    // message is the original's DATA.
    let fragments = link.sent_by_a.iter().filter(|d| d[0] == 0x1e).count();
    assert_eq!(fragments, 200_000usize.div_ceil(1_452 - 5 - 18));
    assert!(link.sent_by_a.iter().all(|d| d.len() <= 1_452));
    let small: Vec<_> = link.sent_by_a.iter().filter(|d| d[0] == 0x1d).collect();
    assert_eq!(small.len(), 1);
    let original = Framing::default().parse(small[0]).unwrap();
    assert!(matches!(
        original,
        Packet::Data {
            payload: b"small",
            ..
        }
    ));
    assert_eq!(link.outcomes.get(&id), Some(&Ok(())));
    assert_eq!(link.outcomes.get(&small_id), Some(&Ok(())));
    assert_eq!(link.outcomes.len(), 2);
    assert_eq!(link.received.len(), 2);
    assert!(link.received.contains(&big));
    let stats = link.b.stats();
    assert_eq!(
        stats.fragments_received,
        200_000u64.div_ceil(1_452 - 5 - 18)
    );
    assert_eq!((stats.received, link.a.stats().delivered), (2, 2));
    assert_eq!(link.b.table_sizes().reassembly_bytes, 0);
}

#[test]
fn at_ten_percent_loss_a_lost_datagram_costs_one_datagram() {
    let mut link = Link::new(config(), config(), 0.10);
    let sent: Vec<(MessageId, Bytes)> = (0..20)
        .map(|n| {
            let message = payload(n, 64 << 10);
            (link.send(message.clone()), message)
        })
        .collect();
    link.run(Duration::from_secs(60));
    for (id, message) in &sent {
        assert_eq!(link.outcomes.get(id), Some(&Ok(())), "message {id}");
        assert_eq!(
            link.received.iter().filter(|r| *r == message).count(),
            1,
            "message {id}"
        );
    }
    assert_eq!(link.received.len(), 20);
    // Resending whole messages would cost about 1/0.9^46 ≈ 127 times the
    // bytes; fragments cost about what was lost.
    let stats = link.a.stats();
    let retransmitted_share = stats.retransmissions as f64 / stats.datagrams_out.data as f64;
    assert!(
        retransmitted_share < 0.3,
        "retransmitted {retransmitted_share:.3} of DATA"
    );
}

/// A receiver with room for one 90 KB message at a time (150 KB per host).
fn tight_receiver() -> Config {
    let mut receiver = config();
    receiver.limits.max_reassembly_bytes = 150_000;
    receiver.limits.max_reassembly_bytes_per_peer = 150_000;
    receiver.large_messages = Some(LargeMessages::default().with_max_message_size(100_000));
    receiver
}

#[test]
fn a_sender_keeps_within_the_reassembly_budget_it_shares_with_its_peer() {
    // Both ends with the same budget: the sender starts a message only when
    // the receiver has room for it, so nothing is refused.
    let mut link = Link::new(tight_receiver(), tight_receiver(), 0.05);
    let sent: Vec<(MessageId, Bytes)> = (0..4)
        .map(|n| {
            let message = payload(n, 90_000);
            (link.send(message.clone()), message)
        })
        .collect();
    link.run(Duration::from_secs(120));
    for (id, message) in &sent {
        assert_eq!(link.outcomes.get(id), Some(&Ok(())), "message {id}");
        assert_eq!(link.received.iter().filter(|r| *r == message).count(), 1);
    }
    assert_eq!(link.b.stats().dropped.fragment_unanswered_budget, 0);
    assert_eq!(link.b.table_sizes().reassembly_bytes, 0);
}

#[test]
fn a_full_reassembly_budget_delays_messages_and_loses_none() {
    // The receiver has less room than the sender assumes: it refuses what
    // it cannot start; the stalled message holds the others back, so each
    // is delivered in turn.
    let mut link = Link::new(config(), tight_receiver(), 0.05);
    let sent: Vec<(MessageId, Bytes)> = (0..4)
        .map(|n| {
            let message = payload(n, 90_000);
            (link.send(message.clone()), message)
        })
        .collect();
    link.run(Duration::from_secs(120));
    for (id, message) in &sent {
        assert_eq!(link.outcomes.get(id), Some(&Ok(())), "message {id}");
        assert_eq!(link.received.iter().filter(|r| *r == message).count(), 1);
    }
    let stats = link.b.stats();
    assert!(
        stats.dropped.fragment_unanswered_budget > 0,
        "the budget never filled"
    );
    assert_eq!(link.b.table_sizes().reassembly_bytes, 0);
}

#[test]
fn a_receiver_without_the_extension_hands_nothing_over_and_the_message_fails() {
    let mut receiver = config();
    receiver.large_messages = None;
    let mut sender = config();
    sender.max_attempts = 3;
    sender.remember_window = sender.max_retry_span();
    let mut link = Link::new(sender, receiver, 0.0);
    let id = link.send(payload(1, 10_000));
    link.run(Duration::from_secs(30));
    assert!(
        matches!(link.outcomes.get(&id), Some(Err(_))),
        "{:?}",
        link.outcomes
    );
    assert!(link.received.is_empty());
    assert!(link.b.stats().dropped.foreign > 0);
}

#[test]
fn cancelling_a_large_message_fails_it_once_and_stops_its_fragments() {
    let mut link = Link::new(config(), config(), 0.0);
    let id = link.send(payload(1, 500_000));
    link.run(Duration::from_millis(12));
    let now = link.now;
    link.a.cancel(id).unwrap();
    let _ = now;
    link.run(Duration::from_secs(10));
    assert_eq!(link.outcomes.get(&id), Some(&Err(FailureReason::Cancelled)));
    assert_eq!(link.outcomes.len(), 1);
    assert!(link.received.is_empty());
    assert_eq!(link.a.table_sizes().messages, 0);
    assert!(link.a.cancel(id).is_err());
    // The receiver's incomplete message expires with its sender's lifetime.
    link.run(Duration::from_secs(400));
    assert_eq!(link.b.table_sizes().reassembly_bytes, 0);
    assert_eq!(link.b.stats().large_messages_expired, 1);
}

#[test]
fn an_incomplete_message_is_kept_until_its_sender_gave_up_then_freed() {
    let mut sender = config();
    sender.large_messages =
        Some(LargeMessages::default().with_max_lifetime(Duration::from_secs(4)));
    let mut link = Link::new(sender, config(), 0.0);
    let id = link.send(payload(1, 50_000));
    // Let the first fragments through (the receiver takes them once our
    // address has answered its validation probe), then cut the link.
    link.run(Duration::from_millis(30));
    link.loss = 1.0;
    link.run(Duration::from_secs(3));
    assert!(link.b.table_sizes().reassembly_bytes > 0);
    link.run(Duration::from_secs(10));
    assert_eq!(
        link.outcomes.get(&id),
        Some(&Err(FailureReason::DeadlineExpired))
    );
    assert!(link.received.is_empty());
    assert_eq!(link.b.table_sizes().reassembly_bytes, 0);
    assert_eq!(link.b.stats().large_messages_expired, 1);
}

/// A fragment datagram from `source`, built by hand.
fn fragment(identity: u32, header: FragmentHeader, bytes: usize) -> Bytes {
    let mut datagram = vec![0x1e];
    datagram.extend_from_slice(&identity.to_be_bytes());
    header.encode(&mut datagram);
    datagram.resize(datagram.len() + bytes, 0x77);
    datagram.into()
}

#[test]
fn hostile_fragments_get_no_memory_and_no_answer() {
    let mut link = Link::new(config(), config(), 0.0);
    // A real exchange first, so the attacker's address is a proven peer.
    let id = link.send(Bytes::from_static(b"hello"));
    link.run(Duration::from_secs(1));
    assert_eq!(link.outcomes.get(&id), Some(&Ok(())));
    let now = link.now;
    let attacker = a_addr();
    let header = |message, total, index, unit| FragmentHeader {
        message,
        total,
        index,
        unit,
        lifetime_ms: 60_000,
    };
    let before = link.b.stats();
    let received_before = link.received.len();
    // A first fragment claiming 4 GiB; fragment counts near the field's
    // maximum; a total over max_message_size; a lifetime over the maximum.
    link.b.handle_datagram(
        now,
        attacker,
        fragment(1, header(7, u32::MAX, 0, 1_400), 1_400),
    );
    link.b.handle_datagram(
        now,
        attacker,
        fragment(2, header(8, u32::MAX, u32::MAX / 64, 64), 63),
    );
    link.b.handle_datagram(
        now,
        attacker,
        fragment(3, header(9, 2 << 20, 0, 1_000), 1_000),
    );
    let mut long = header(10, 5_000, 0, 1_000);
    long.lifetime_ms = u32::MAX;
    link.b
        .handle_datagram(now, attacker, fragment(4, long, 1_000));
    // Malformed: a length the header does not imply, a tiny unit.
    link.b
        .handle_datagram(now, attacker, fragment(5, header(11, 5_000, 0, 1_000), 999));
    link.b
        .handle_datagram(now, attacker, fragment(6, header(12, 5_000, 0, 8), 8));
    // Fragments that disagree about their message's total.
    link.b.handle_datagram(
        now,
        attacker,
        fragment(7, header(13, 5_000, 0, 1_000), 1_000),
    );
    link.b.handle_datagram(
        now,
        attacker,
        fragment(8, header(13, 6_000, 1, 1_000), 1_000),
    );
    let stats = link.b.stats();
    assert_eq!(
        stats.fragments_received - before.fragments_received,
        1,
        "only the consistent fragment is taken"
    );
    assert_eq!(
        stats.dropped.fragment_refused - before.dropped.fragment_refused,
        7
    );
    let sizes = link.b.table_sizes();
    assert!(sizes.reassembly_bytes < 6_000 + 1_000, "{sizes:?}");
    // Exactly one RECV went out: for the one fragment taken.
    let mut buf = Vec::new();
    let mut recvs = 0;
    while let Some(t) = link.b.poll_transmit(now, 1, &mut buf) {
        if buf[0] == 0x5f && t.size == 5 {
            recvs += 1;
        }
    }
    assert_eq!(recvs, 1);
    assert!(link.b.poll_event().is_none());
    assert_eq!(link.received.len(), received_before);
}

#[test]
fn a_flood_of_first_fragments_from_spoofed_addresses_holds_no_reassembly_memory() {
    let mut link = Link::new(config(), config(), 0.0);
    let now = link.now;
    for n in 0..100_000u32 {
        let source = SocketAddr::from(([10, 1 + (n >> 16) as u8, (n >> 8) as u8, n as u8], 9_000));
        let header = FragmentHeader {
            message: n,
            total: 1 << 20,
            index: 0,
            unit: 1_400,
            lifetime_ms: 300_000,
        };
        link.b
            .handle_datagram(now, source, fragment(n, header, 1_400));
        if n % 1_000 == 0 {
            let mut buf = Vec::new();
            while link.b.poll_transmit(now, 1, &mut buf).is_some() {}
        }
        assert!(link.b.table_sizes().exceeded(&config().limits).is_none());
    }
    assert_eq!(
        link.b.table_sizes().reassembly_bytes,
        0,
        "spoofed addresses never proved themselves"
    );
    // A legitimate peer is still served.
    let message = payload(1, 300_000);
    let id = link.send(message.clone());
    link.run(Duration::from_secs(30));
    assert_eq!(link.outcomes.get(&id), Some(&Ok(())));
    assert_eq!(link.received, vec![message]);
}
