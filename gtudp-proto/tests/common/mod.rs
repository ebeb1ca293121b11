//! A hand-driven pair of endpoints on virtual time: the test decides what
//! each datagram does (deliver, drop, replay, spoof).

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gtudp_proto::wire::{Framing, Identity, Packet, PacketKind};
use gtudp_proto::{Config, Endpoint, Event};

/// One datagram written by an endpoint.
#[derive(Clone, Debug)]
pub struct Datagram {
    pub to: SocketAddr,
    pub bytes: Bytes,
}

impl Datagram {
    pub fn kind(&self) -> Option<PacketKind> {
        Framing::default().parse(&self.bytes).ok().map(|p| p.kind())
    }

    pub fn identity(&self) -> Identity {
        Framing::default()
            .parse(&self.bytes)
            .map(|p| p.identity())
            .expect("a gtUDP datagram")
    }
}

pub fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], port))
}

/// Test configuration: fast timers, everything else default.
pub fn config() -> Config {
    let mut config = Config::default();
    config.initial_rto = Duration::from_millis(100);
    config.min_rto = Duration::from_millis(10);
    config.max_rto = Duration::from_secs(1);
    config.max_attempts = 5;
    config.recv_max_attempts = 4;
    config.remember_window = Duration::from_secs(10);
    config.datagram_lifetime = Duration::from_secs(1);
    config.peer_idle_timeout = Duration::from_secs(5);
    config.drain_timeout = Duration::from_secs(3);
    config
}

pub struct Pair {
    pub now: Instant,
    pub a: Endpoint,
    pub b: Endpoint,
    pub a_addr: SocketAddr,
    pub b_addr: SocketAddr,
    /// Identities of the DATA delivered to `b`: a RECV from `b` naming
    /// another identity is a validation probe.
    pub delivered_to_b: std::collections::HashSet<Identity>,
    /// Validation probes `b` wrote, set apart by `out_b` (see `exchange`).
    pub probes_b: Vec<Datagram>,
}

impl Pair {
    /// Two endpoints where `b` knows `a`: `b` once chose to send to `a`
    /// (and cancelled before anything went out), so `a` is a peer `b`
    /// reached first and `b` takes `a`'s messages without a validation
    /// probe. For tests whose subject is not validation.
    pub fn new() -> Self {
        Self::with_configs(config(), config())
    }

    /// As [`Pair::new`], with these configurations.
    pub fn with_configs(a: Config, b: Config) -> Self {
        let mut pair = Self::strangers_with_configs(a, b);
        let introduction = pair
            .b
            .send(pair.now, pair.a_addr, Bytes::from_static(b"hello"))
            .expect("send accepted");
        pair.b.cancel(introduction).expect("just sent");
        assert!(matches!(pair.events_b().as_slice(), [Event::Failed { .. }]));
        pair
    }

    /// Two endpoints that never met: `a`'s first DATA makes it an
    /// unvalidated peer of `b`, which holds it until `a` answers a probe.
    pub fn strangers() -> Self {
        Self::strangers_with_configs(config(), config())
    }

    /// As [`Pair::strangers`], with these configurations.
    pub fn strangers_with_configs(a: Config, b: Config) -> Self {
        Self {
            now: Instant::now(),
            a: Endpoint::new(a, 0xa).expect("valid config"),
            b: Endpoint::new(b, 0xb).expect("valid config"),
            a_addr: addr(1000),
            b_addr: addr(2000),
            delivered_to_b: Default::default(),
            probes_b: Vec::new(),
        }
    }

    pub fn send(&mut self, payload: &'static [u8]) -> gtudp_proto::MessageId {
        self.a
            .send(self.now, self.b_addr, Bytes::from_static(payload))
            .expect("send accepted")
    }

    pub fn out_a(&mut self) -> Vec<Datagram> {
        drain_transmits(&mut self.a, self.now)
    }

    /// What `b` wrote, without its validation probes: those go to
    /// `probes_b`, so a test that does not deliver them sees `a` as a peer
    /// that has not proven it receives `b`'s datagrams.
    pub fn out_b(&mut self) -> Vec<Datagram> {
        let (probes, rest) = drain_transmits(&mut self.b, self.now)
            .into_iter()
            .partition(|datagram| {
                datagram.kind() == Some(PacketKind::Recv)
                    && !self.delivered_to_b.contains(&datagram.identity())
            });
        self.probes_b.extend::<Vec<_>>(probes);
        rest
    }

    /// Everything `b` wrote, probes included.
    pub fn out_b_with_probes(&mut self) -> Vec<Datagram> {
        drain_transmits(&mut self.b, self.now)
    }

    pub fn deliver_to_b(&mut self, datagram: &Datagram) {
        if datagram.kind() == Some(PacketKind::Data) {
            self.delivered_to_b.insert(datagram.identity());
        }
        self.b
            .handle_datagram(self.now, self.a_addr, datagram.bytes.clone());
    }

    /// Delivers `b`'s validation probes to `a`, and `a`'s answers back:
    /// afterwards `b` has validated `a`.
    pub fn answer_probes(&mut self) {
        let probes = std::mem::take(&mut self.probes_b);
        for probe in &probes {
            self.deliver_to_a(probe);
        }
        for answer in self.out_a() {
            self.deliver_to_b(&answer);
        }
    }

    pub fn deliver_to_a(&mut self, datagram: &Datagram) {
        self.a
            .handle_datagram(self.now, self.b_addr, datagram.bytes.clone());
    }

    /// Delivers every datagram both ways until neither has anything to send.
    pub fn exchange(&mut self) {
        for _ in 0..1000 {
            let from_a = self.out_a();
            let mut from_b = self.out_b();
            from_b.append(&mut self.probes_b);
            if from_a.is_empty() && from_b.is_empty() {
                return;
            }
            for datagram in &from_a {
                self.deliver_to_b(datagram);
            }
            for datagram in &from_b {
                self.deliver_to_a(datagram);
            }
        }
        panic!("endpoints never went quiet");
    }

    /// The earlier of the two endpoints' next timeouts.
    pub fn next_timeout(&mut self) -> Option<Instant> {
        match (self.a.poll_timeout(), self.b.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Moves time to the next timeout and runs both endpoints' timers.
    pub fn advance(&mut self) -> Instant {
        let at = self.next_timeout().expect("a timer is set");
        self.advance_to(at);
        at
    }

    pub fn advance_to(&mut self, at: Instant) {
        self.now = self.now.max(at);
        self.a.handle_timeout(self.now);
        self.b.handle_timeout(self.now);
    }

    pub fn advance_by(&mut self, by: Duration) {
        let at = self.now + by;
        self.advance_to(at);
    }

    pub fn events_a(&mut self) -> Vec<Event> {
        drain_events(&mut self.a)
    }

    pub fn events_b(&mut self) -> Vec<Event> {
        drain_events(&mut self.b)
    }
}

pub fn drain_transmits(endpoint: &mut Endpoint, now: Instant) -> Vec<Datagram> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    while let Some(transmit) = endpoint.poll_transmit(now, 1, &mut buf) {
        out.push(Datagram {
            to: transmit.destination,
            bytes: Bytes::copy_from_slice(&buf[..transmit.size]),
        });
    }
    out
}

pub fn drain_events(endpoint: &mut Endpoint) -> Vec<Event> {
    std::iter::from_fn(|| endpoint.poll_event()).collect()
}

pub fn kinds(datagrams: &[Datagram]) -> Vec<PacketKind> {
    datagrams.iter().filter_map(Datagram::kind).collect()
}

pub fn encode(packet: Packet<'_>) -> Bytes {
    let mut out = Vec::new();
    Framing::default().encode_to_vec(&packet, &mut out);
    Bytes::from(out)
}
