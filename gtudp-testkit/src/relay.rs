//! A lossy, duplicating, reordering UDP relay on loopback, on plain
//! threads.
//!
//! Datagrams from the server go to the client (the last other address the
//! relay heard from); datagrams from anyone else go to the server. Each is
//! dropped with probability `loss`, otherwise forwarded once, or twice with
//! probability `duplicate`, each copy after a random delay of up to
//! `max_delay` (which reorders them). The choices come from a seeded
//! generator.
//!
//! One thread receives; another releases the delayed copies when due,
//! waiting on a condition variable, whose timeouts are precise to tens of
//! microseconds. (A socket's receive timeout is counted in the kernel's
//! ticks: on a 250 Hz kernel a 1 ms timeout lasted 8-12 ms, so while
//! traffic was sparse, copies waited up to that much past their delay and
//! "up to 5 ms" meant up to about 17 ms.)

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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
    /// Datagrams received from either side.
    pub received: AtomicU64,
    /// Datagrams dropped.
    pub dropped: AtomicU64,
    /// Datagrams forwarded twice.
    pub duplicated: AtomicU64,
    /// Copies forwarded (a duplicated datagram counts twice).
    pub forwarded: AtomicU64,
}

/// A running relay; stops when dropped.
#[derive(Debug)]
pub struct Relay {
    /// Where clients send to reach the server through the relay.
    pub addr: SocketAddr,
    /// What the relay did so far.
    pub counters: Arc<RelayCounters>,
    stop: Arc<AtomicBool>,
    delayed: Arc<Delays>,
    threads: Vec<JoinHandle<()>>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.delayed.due.notify_all();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// The copies waiting for their delay, earliest first, and the condition
/// variable the releasing thread waits on.
#[derive(Debug, Default)]
struct Delays {
    queue: Mutex<BinaryHeap<Reverse<Delayed>>>,
    due: Condvar,
}

impl Relay {
    /// Starts a relay in front of `server`, on the same loopback family.
    pub fn start(server: SocketAddr, impairment: Impairment) -> std::io::Result<Relay> {
        let bind = if server.is_ipv4() {
            "127.0.0.1:0"
        } else {
            "[::1]:0"
        };
        let socket = UdpSocket::bind(bind)?;
        // Only to look at `stop` now and then.
        socket.set_read_timeout(Some(Duration::from_millis(20)))?;
        let releasing = socket.try_clone()?;
        let addr = socket.local_addr()?;
        let counters = Arc::new(RelayCounters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let delayed = Arc::new(Delays::default());
        let receive = std::thread::spawn({
            let (counters, stop, delayed) = (counters.clone(), stop.clone(), delayed.clone());
            move || receive(socket, server, impairment, &counters, &stop, &delayed)
        });
        let release = std::thread::spawn({
            let (stop, delayed) = (stop.clone(), delayed.clone());
            move || release(releasing, &stop, &delayed)
        });
        Ok(Relay {
            addr,
            counters,
            stop,
            delayed,
            threads: vec![receive, release],
        })
    }
}

/// Receives, decides each datagram's fate, and queues its copies.
fn receive(
    socket: UdpSocket,
    server: SocketAddr,
    impairment: Impairment,
    counters: &RelayCounters,
    stop: &AtomicBool,
    delayed: &Delays,
) {
    let mut rng = Rng::new(impairment.seed);
    let mut client: Option<SocketAddr> = None;
    let mut buf = vec![0u8; 65_536];
    let mut sequence = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let (len, from) = match socket.recv_from(&mut buf) {
            Ok(received) => received,
            // Timeouts, and ICMP reports from a peer that went away.
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
            counters.forwarded.fetch_add(1, Ordering::Relaxed);
            let delay = impairment.max_delay.mul_f64(rng.unit());
            if delay.is_zero() {
                let _ = socket.send_to(&buf[..len], to);
                continue;
            }
            sequence += 1;
            let copy = (Instant::now() + delay, sequence, to, buf[..len].to_vec());
            let mut queue = lock(&delayed.queue);
            let earliest = match queue.peek() {
                Some(Reverse((at, ..))) => copy.0 < *at,
                None => true,
            };
            queue.push(Reverse(copy));
            drop(queue);
            if earliest {
                delayed.due.notify_one();
            }
        }
    }
}

/// Sends each delayed copy when it is due.
fn release(socket: UdpSocket, stop: &AtomicBool, delayed: &Delays) {
    let mut queue = lock(&delayed.queue);
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let mut due = Vec::new();
        while queue.peek().is_some_and(|Reverse((at, ..))| *at <= now) {
            if let Some(Reverse((_, _, to, datagram))) = queue.pop() {
                due.push((to, datagram));
            }
        }
        if !due.is_empty() {
            drop(queue);
            for (to, datagram) in due {
                let _ = socket.send_to(&datagram, to);
            }
            queue = lock(&delayed.queue);
            continue;
        }
        // Until the earliest copy is due, or 20 ms to look at `stop`.
        let wait = queue
            .peek()
            .map(|Reverse((at, ..))| at.saturating_duration_since(now))
            .unwrap_or(Duration::from_millis(20))
            .min(Duration::from_millis(20));
        queue = delayed
            .due
            .wait_timeout(queue, wait)
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .0;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A copy waiting for its delay: release time, sequence (for a total
/// order), destination, bytes.
type Delayed = (Instant, u64, SocketAddr, Vec<u8>);

/// xorshift64*: small, seeded, good enough to decide drops.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

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

    pub(crate) fn chance(&mut self, probability: f64) -> bool {
        self.unit() < probability
    }
}
