//! Two endpoints exchanging messages over an in-memory link that loses 20%
//! of datagrams and duplicates 5%, on virtual time: every message is
//! delivered exactly once or reported failed.
//!
//! Run with `cargo run -p gtudp-proto --example in_memory`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gtudp_proto::{Config, Endpoint, Event};

const MESSAGES: usize = 200;
const LOSS_PERCENT: u64 = 20;
const DUPLICATE_PERCENT: u64 = 5;
const ONE_WAY_DELAY: Duration = Duration::from_millis(15);

/// A tiny deterministic generator, so every run is the same.
struct Lcg(u64);

impl Lcg {
    fn percent(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % 100
    }
}

struct InFlight {
    arrives: Instant,
    from: SocketAddr,
    to: SocketAddr,
    bytes: Bytes,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let alice_addr: SocketAddr = "192.0.2.1:4000".parse()?;
    let bob_addr: SocketAddr = "192.0.2.2:4000".parse()?;
    let mut alice = Endpoint::new(Config::default(), 1)?;
    let mut bob = Endpoint::new(Config::default(), 2)?;
    let mut rng = Lcg(42);
    let start = Instant::now();
    let mut now = start;
    let mut link: VecDeque<InFlight> = VecDeque::new();
    let mut buf = Vec::new();

    for n in 0..MESSAGES {
        alice.send(now, bob_addr, Bytes::from(format!("message {n}")))?;
    }

    let (mut delivered, mut failed, mut received) = (0, 0, 0);
    while delivered + failed < MESSAGES {
        // Everything both endpoints want to send enters the lossy link.
        for (endpoint, from) in [(&mut alice, alice_addr), (&mut bob, bob_addr)] {
            while let Some(transmit) = endpoint.poll_transmit(now, 1, &mut buf) {
                let bytes = Bytes::copy_from_slice(&buf[..transmit.size]);
                if rng.percent() < LOSS_PERCENT {
                    continue;
                }
                let copies = if rng.percent() < DUPLICATE_PERCENT {
                    2
                } else {
                    1
                };
                for _ in 0..copies {
                    link.push_back(InFlight {
                        arrives: now + ONE_WAY_DELAY,
                        from,
                        to: transmit.destination,
                        bytes: bytes.clone(),
                    });
                }
            }
        }
        for event in std::iter::from_fn(|| alice.poll_event()) {
            match event {
                Event::Delivered { .. } => delivered += 1,
                Event::Failed { .. } => failed += 1,
                _ => {}
            }
        }
        received += std::iter::from_fn(|| bob.poll_event())
            .filter(|event| matches!(event, Event::Received { .. }))
            .count();

        // Jump to the next thing that happens: an arrival or a timer.
        let next_arrival = link.front().map(|datagram| datagram.arrives);
        let next_timer = [alice.poll_timeout(), bob.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        let Some(next) = [next_arrival, next_timer].into_iter().flatten().min() else {
            break;
        };
        now = now.max(next);
        while link.front().is_some_and(|datagram| datagram.arrives <= now) {
            if let Some(datagram) = link.pop_front() {
                let endpoint = if datagram.to == bob_addr {
                    &mut bob
                } else {
                    &mut alice
                };
                endpoint.handle_datagram(now, datagram.from, datagram.bytes);
            }
        }
        alice.handle_timeout(now);
        bob.handle_timeout(now);
    }

    let stats = alice.stats();
    println!(
        "{MESSAGES} messages over a link losing {LOSS_PERCENT}% and duplicating {DUPLICATE_PERCENT}%:"
    );
    println!(
        "delivered={delivered} failed={failed} received_once={received} \
         retransmissions={} duplicates_suppressed={} virtual_time={:?}",
        stats.retransmissions,
        bob.stats().duplicates_suppressed,
        now - start,
    );
    if let Some(peer) = alice.peer_stats(bob_addr) {
        println!(
            "rtt={:?} rto={:?} window={}",
            peer.rtt.unwrap_or_default(),
            peer.rto,
            peer.window
        );
    }
    // Exactly once: nothing handed over twice, and every Delivered message
    // was handed over.
    if received > MESSAGES || received < delivered {
        return Err(format!("received {received} for {delivered} delivered of {MESSAGES}").into());
    }
    Ok(())
}
