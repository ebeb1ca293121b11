//! Hostile traffic: what an attacker or a broken neighbour throws at the
//! endpoints, injected into the [`Network`](super::Network) like any other
//! datagram.
//!
//! - random bytes, truncated gtUDP datagrams and foreign (non-gtUDP)
//!   datagrams from spoofed addresses;
//! - forged RECV and ACK carrying random identities, claiming to come from
//!   real peers or from random addresses;
//! - a flood of DATA with unique identities from addresses that never answer
//!   (a spoofed-source flood: the endpoint's replies go to victims).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use super::rng::Rng;
use super::tag::Tag;
use crate::wire::{Framing, Identity, Packet};

/// How much hostile traffic to inject, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostileProfile {
    /// When injection starts.
    pub start: Duration,
    /// When it stops.
    pub end: Duration,
    /// Mean gap between junk datagrams (random, truncated, foreign, forged
    /// RECV/ACK); `None` for none.
    pub junk_interval: Option<Duration>,
    /// Addresses the DATA flood comes from; they never answer.
    pub flood_sources: usize,
    /// Mean gap between flood DATA datagrams; `None` for no flood.
    pub flood_interval: Option<Duration>,
}

impl HostileProfile {
    /// No hostile traffic.
    pub fn none() -> Self {
        Self {
            start: Duration::ZERO,
            end: Duration::ZERO,
            junk_interval: None,
            flood_sources: 0,
            flood_interval: None,
        }
    }

    /// Whether this profile injects anything.
    pub fn is_active(&self) -> bool {
        self.end > self.start
            && (self.junk_interval.is_some()
                || (self.flood_sources > 0 && self.flood_interval.is_some()))
    }
}

/// The kind of a hostile datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HostileKind {
    /// Random bytes of random length.
    RandomBytes,
    /// A real or well-formed datagram cut short.
    Truncated,
    /// A datagram with the wrong magic or an unknown type.
    Foreign,
    /// A RECV with a random identity from a spoofed address.
    ForgedRecv,
    /// An ACK with a random identity from a spoofed address.
    ForgedAck,
    /// A DATA with a unique identity from a flood address.
    FloodData,
}

/// One hostile datagram to inject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Injection {
    /// What it is.
    pub kind: HostileKind,
    /// The (spoofed) source.
    pub from: SocketAddr,
    /// The endpoint it targets.
    pub to: SocketAddr,
    /// The bytes.
    pub payload: Bytes,
}

/// A seeded source of hostile datagrams aimed at a set of endpoints.
#[derive(Clone, Debug)]
pub struct Hostile {
    rng: Rng,
    profile: HostileProfile,
    /// The endpoints attacked, with their framing.
    targets: Vec<(SocketAddr, Framing)>,
    flood: Vec<SocketAddr>,
    flood_identity: Vec<u32>,
    flood_seq: u64,
    next_junk: Option<Duration>,
    next_flood: Option<Duration>,
    /// Recent real datagrams, to truncate.
    observed: VecDeque<Bytes>,
}

impl Hostile {
    /// A source attacking `targets` (address and framing of each endpoint).
    pub fn new(seed: u64, profile: HostileProfile, targets: Vec<(SocketAddr, Framing)>) -> Self {
        let mut rng = Rng::new(seed);
        let flood: Vec<SocketAddr> = (0..profile.flood_sources)
            .map(|i| flood_address(i as u16))
            .collect();
        let flood_identity = flood.iter().map(|_| rng.next_u32()).collect();
        let active = profile.is_active() && !targets.is_empty();
        let mut hostile = Self {
            next_junk: None,
            next_flood: None,
            rng,
            flood,
            flood_identity,
            flood_seq: 0,
            targets,
            observed: VecDeque::new(),
            profile,
        };
        if active {
            let start = hostile.profile.start;
            hostile.next_junk = hostile
                .profile
                .junk_interval
                .map(|mean| start + hostile.gap(mean));
            if !hostile.flood.is_empty() {
                hostile.next_flood = hostile
                    .profile
                    .flood_interval
                    .map(|mean| start + hostile.gap(mean));
            }
        }
        hostile
    }

    /// The addresses the DATA flood comes from.
    pub fn flood_addresses(&self) -> &[SocketAddr] {
        &self.flood
    }

    /// Whether `address` is a flood source.
    pub fn is_flood_address(&self, address: SocketAddr) -> bool {
        self.flood.contains(&address)
    }

    /// Shows the source a real datagram, which it may later replay cut short.
    pub fn observe(&mut self, datagram: &Bytes) {
        if self.next_junk.is_none() {
            return;
        }
        if self.observed.len() >= 32 {
            self.observed.pop_front();
        }
        self.observed.push_back(datagram.clone());
    }

    /// When the next injection is due.
    pub fn next_time(&self) -> Option<Duration> {
        match (self.next_junk, self.next_flood) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next injection due by `now`, if any.
    pub fn poll(&mut self, now: Duration) -> Option<Injection> {
        let end = self.profile.end;
        if let Some(at) = self.next_flood.filter(|&at| at <= now) {
            let mean = self
                .profile
                .flood_interval
                .unwrap_or(Duration::from_millis(1));
            self.next_flood = Some(at + self.gap(mean)).filter(|&next| next < end);
            return Some(self.flood_data());
        }
        if let Some(at) = self.next_junk.filter(|&at| at <= now) {
            let mean = self
                .profile
                .junk_interval
                .unwrap_or(Duration::from_millis(1));
            self.next_junk = Some(at + self.gap(mean)).filter(|&next| next < end);
            return Some(self.junk());
        }
        None
    }

    fn gap(&mut self, mean: Duration) -> Duration {
        self.rng.duration(mean * 2).max(Duration::from_micros(1))
    }

    fn target(&mut self) -> (SocketAddr, Framing) {
        let index = self.rng.below(self.targets.len() as u64) as usize;
        self.targets[index].clone()
    }

    fn random_address(&mut self) -> SocketAddr {
        let bits = self.rng.next_u32();
        SocketAddr::from((
            [10, 99, (bits >> 24) as u8, (bits >> 16) as u8],
            bits as u16 | 1,
        ))
    }

    /// A spoofed source: usually a real endpoint other than the target.
    fn spoofed(&mut self, target: SocketAddr) -> SocketAddr {
        let real: Vec<SocketAddr> = self
            .targets
            .iter()
            .map(|(address, _)| *address)
            .filter(|address| *address != target)
            .collect();
        match self.rng.chance(0.6).then(|| self.rng.pick(&real).copied()) {
            Some(Some(address)) => address,
            _ => self.random_address(),
        }
    }

    fn flood_data(&mut self) -> Injection {
        let (to, framing) = self.target();
        let source = self.rng.below(self.flood.len() as u64) as usize;
        let identity = Identity::from_u32(self.flood_identity[source]);
        // Unique per source: a counter from a random start.
        self.flood_identity[source] = self.flood_identity[source].wrapping_add(1);
        let mut payload = Tag::flood(source as u32, self.flood_seq).encode();
        self.flood_seq += 1;
        let filler = self.rng.below(24) as usize;
        payload.resize(payload.len() + filler, 0x66);
        let mut datagram = Vec::new();
        framing.encode_to_vec(
            &Packet::Data {
                identity,
                payload: &payload,
            },
            &mut datagram,
        );
        Injection {
            kind: HostileKind::FloodData,
            from: self.flood[source],
            to,
            payload: datagram.into(),
        }
    }

    fn junk(&mut self) -> Injection {
        let (to, framing) = self.target();
        let identity = Identity::from_u32(self.rng.next_u32());
        let mut datagram = Vec::new();
        let (kind, from) = match self.rng.below(5) {
            0 => {
                let mut bytes = vec![0; self.rng.below(48) as usize];
                self.rng.fill(&mut bytes);
                datagram = bytes;
                (HostileKind::RandomBytes, self.random_address())
            }
            1 => {
                let source = match self.rng.pick(self.observed.make_contiguous()) {
                    Some(real) => real.to_vec(),
                    None => {
                        let mut filler = vec![0; 16];
                        self.rng.fill(&mut filler);
                        let packet = Packet::Data {
                            identity,
                            payload: &filler,
                        };
                        let mut bytes = Vec::new();
                        framing.encode_to_vec(&packet, &mut bytes);
                        bytes
                    }
                };
                // Cut inside the header or the payload's tag, so that what
                // parses is never a whole message.
                let keep = framing.header_len() + Tag::LEN;
                let cut = self.rng.below(keep.min(source.len()) as u64) as usize;
                datagram.extend_from_slice(&source[..cut]);
                (HostileKind::Truncated, self.random_address())
            }
            2 => {
                let packet = Packet::Data {
                    identity,
                    payload: b"foreign",
                };
                framing.encode_to_vec(&packet, &mut datagram);
                let magic_len = framing.magic().len();
                // Break the magic if there is one, else the type.
                datagram[if magic_len > 0 {
                    0
                } else {
                    framing.prefix_len()
                }] ^= 0x80;
                (HostileKind::Foreign, self.random_address())
            }
            3 => {
                framing.encode_to_vec(&Packet::Recv { identity }, &mut datagram);
                (HostileKind::ForgedRecv, self.spoofed(to))
            }
            _ => {
                framing.encode_to_vec(&Packet::Ack { identity }, &mut datagram);
                (HostileKind::ForgedAck, self.spoofed(to))
            }
        };
        Injection {
            kind,
            from,
            to,
            payload: datagram.into(),
        }
    }
}

/// The address of flood source `index`.
pub fn flood_address(index: u16) -> SocketAddr {
    SocketAddr::from(([10, 66, (index >> 8) as u8, index as u8], 5000))
}
