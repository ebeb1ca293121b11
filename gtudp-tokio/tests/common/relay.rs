//! A lossy, duplicating, reordering UDP relay on loopback, for tests and
//! the `lossy_demo` example.
//!
//! The relay owns one socket. Datagrams from the server go to the client
//! (the last other address it heard from); datagrams from anyone else go to
//! the server. Each datagram is dropped with probability `loss`, otherwise
//! forwarded once, or twice with probability `duplicate`, each copy after a
//! random delay of up to `max_delay` (which reorders them). The random
//! choices come from a seeded generator.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// How the relay mistreats datagrams.
#[derive(Clone, Copy, Debug)]
pub struct Impairment {
    /// Probability of dropping a datagram.
    pub loss: f64,
    /// Probability of forwarding a datagram twice.
    pub duplicate: f64,
    /// Longest delay added to a copy (uniform), which reorders datagrams.
    pub max_delay: Duration,
    /// Seed of the random choices.
    pub seed: u64,
}

/// What the relay did.
#[derive(Debug, Default)]
pub struct RelayCounters {
    pub received: AtomicU64,
    pub dropped: AtomicU64,
    pub duplicated: AtomicU64,
    pub forwarded: AtomicU64,
}

/// A running relay; stops when dropped.
pub struct Relay {
    pub addr: SocketAddr,
    pub counters: Arc<RelayCounters>,
    task: JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Relay {
    /// Starts a relay in front of `server`, on the same loopback family.
    pub async fn start(server: SocketAddr, impairment: Impairment) -> std::io::Result<Relay> {
        let bind: SocketAddr = if server.is_ipv4() {
            "127.0.0.1:0".parse().map_err(std::io::Error::other)?
        } else {
            "[::1]:0".parse().map_err(std::io::Error::other)?
        };
        let socket = Arc::new(UdpSocket::bind(bind).await?);
        let addr = socket.local_addr()?;
        let counters = Arc::new(RelayCounters::default());
        let task = tokio::spawn(run(socket, server, impairment, counters.clone()));
        Ok(Relay {
            addr,
            counters,
            task,
        })
    }
}

async fn run(
    socket: Arc<UdpSocket>,
    server: SocketAddr,
    impairment: Impairment,
    counters: Arc<RelayCounters>,
) {
    let mut rng = Rng(impairment.seed | 1);
    let mut client: Option<SocketAddr> = None;
    let mut buf = vec![0u8; 65_536];
    loop {
        let (len, from) = match socket.recv_from(&mut buf).await {
            Ok(received) => received,
            // ICMP reports from a peer that went away: keep relaying.
            Err(_) => continue,
        };
        counters.received.fetch_add(1, Ordering::Relaxed);
        let to = if from == server {
            match client {
                Some(client) => client,
                None => continue,
            }
        } else {
            client = Some(from);
            server
        };
        if rng.chance(impairment.loss) {
            counters.dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let copies = if rng.chance(impairment.duplicate) {
            counters.duplicated.fetch_add(1, Ordering::Relaxed);
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = impairment.max_delay.mul_f64(rng.unit());
            let datagram = buf[..len].to_vec();
            counters.forwarded.fetch_add(1, Ordering::Relaxed);
            if delay < Duration::from_millis(1) {
                let _ = socket.send_to(&datagram, to).await;
            } else {
                let socket = socket.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = socket.send_to(&datagram, to).await;
                });
            }
        }
    }
}

/// xorshift64*: small, seeded, good enough to decide drops.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, probability: f64) -> bool {
        self.unit() < probability
    }
}
