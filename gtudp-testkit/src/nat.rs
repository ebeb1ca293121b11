//! A NAT on loopback that rebinds: it forwards a client's datagrams to a
//! server from a public port of its own, and every so often moves the flow
//! to a new public port, closing the old one (a datagram the server sends
//! there is lost). It delays each datagram by `delay` in each direction and
//! drops a share of the server's replies.
//!
//! The client sends to [`Nat::addr`] as if it were the server; the server
//! sees the client as the NAT's public port of the moment.

use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::relay::Rng;

/// How the NAT behaves.
#[derive(Clone, Copy, Debug)]
pub struct NatBehaviour {
    /// Time between two new public ports.
    pub rebind_every: Duration,
    /// Delay added to each datagram, in each direction.
    pub delay: Duration,
    /// Probability of dropping a datagram from the server to the client.
    pub reply_loss: f64,
    /// Seed of the drops.
    pub seed: u64,
    /// Each rebinding also takes a new IP address (IPv4 only: the `n`th
    /// public port is on `127.0.0.(2 + n mod 200)`, all loopback on Linux),
    /// as a phone moving between networks would.
    pub changes_ip: bool,
}

/// What the NAT did.
#[derive(Debug, Default)]
pub struct NatCounters {
    /// New public ports taken after the first.
    pub rebinds: AtomicU64,
    /// Datagrams forwarded from the client to the server.
    pub outbound: AtomicU64,
    /// Replies dropped on purpose.
    pub replies_dropped: AtomicU64,
}

/// A running NAT; stops when dropped.
#[derive(Debug)]
pub struct Nat {
    /// Where the client sends to reach the server.
    pub addr: SocketAddr,
    /// What the NAT did so far.
    pub counters: Arc<NatCounters>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Nat {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Nat {
    /// Starts a NAT in front of clients of `server` (IPv4 or IPv6 loopback,
    /// as `server` is).
    pub fn start(server: SocketAddr, behaviour: NatBehaviour) -> std::io::Result<Nat> {
        let inside = UdpSocket::bind(loopback(server))?;
        inside.set_nonblocking(true)?;
        let addr = inside.local_addr()?;
        let counters = Arc::new(NatCounters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (counters, stop) = (counters.clone(), stop.clone());
            move || {
                if let Err(error) = run(inside, server, behaviour, &counters, &stop) {
                    eprintln!("nat stopped: {error}");
                }
            }
        });
        Ok(Nat {
            addr,
            counters,
            stop,
            thread: Some(thread),
        })
    }
}

fn loopback(server: SocketAddr) -> &'static str {
    if server.is_ipv4() {
        "127.0.0.1:0"
    } else {
        "[::1]:0"
    }
}

fn public_port(
    server: SocketAddr,
    behaviour: &NatBehaviour,
    rebinds: u64,
) -> std::io::Result<UdpSocket> {
    let socket = match (behaviour.changes_ip, server.is_ipv4()) {
        (true, true) => UdpSocket::bind(SocketAddr::from((
            [127, 0, 0, 2 + (rebinds % 200) as u8],
            0,
        )))?,
        _ => UdpSocket::bind(loopback(server))?,
    };
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// A datagram on its way: when it is due, and its bytes.
type InFlight = (Instant, Vec<u8>);

fn run(
    inside: UdpSocket,
    server: SocketAddr,
    behaviour: NatBehaviour,
    counters: &NatCounters,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    let mut rng = Rng::new(behaviour.seed);
    let mut outside = public_port(server, &behaviour, 0)?;
    let mut next_rebind = Instant::now() + behaviour.rebind_every;
    let mut client: Option<SocketAddr> = None;
    // Both directions keep their order: one fixed delay each.
    let mut to_server: VecDeque<InFlight> = VecDeque::new();
    let mut to_client: VecDeque<InFlight> = VecDeque::new();
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= next_rebind {
            // The old port closes with its socket.
            let rebinds = counters.rebinds.fetch_add(1, Ordering::Relaxed) + 1;
            outside = public_port(server, &behaviour, rebinds)?;
            next_rebind = now + behaviour.rebind_every;
        }
        let mut idle = true;
        while let Ok((len, from)) = inside.recv_from(&mut buf) {
            idle = false;
            client = Some(from);
            to_server.push_back((now + behaviour.delay, buf[..len].to_vec()));
        }
        while let Ok((len, from)) = outside.recv_from(&mut buf) {
            idle = false;
            if from != server {
                continue;
            }
            if rng.chance(behaviour.reply_loss) {
                counters.replies_dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            to_client.push_back((now + behaviour.delay, buf[..len].to_vec()));
        }
        // Mapped when it reaches the NAT: the port of that moment.
        while to_server.front().is_some_and(|(due, _)| *due <= now) {
            if let Some((_, datagram)) = to_server.pop_front() {
                counters.outbound.fetch_add(1, Ordering::Relaxed);
                let _ = outside.send_to(&datagram, server);
            }
        }
        while to_client.front().is_some_and(|(due, _)| *due <= now) {
            if let (Some((_, datagram)), Some(client)) = (to_client.pop_front(), client) {
                let _ = inside.send_to(&datagram, client);
            }
        }
        if idle {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    Ok(())
}
