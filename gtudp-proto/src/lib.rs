//! The sans-IO core of gtUDP: guaranteed delivery of datagrams over UDP.
//!
//! Every message given to [`Endpoint::send`] ends in exactly one
//! [`Event::Delivered`] (the peer's endpoint has it) or [`Event::Failed`]
//! (delivery was not confirmed; the payload may still have arrived), and
//! every message received is handed to the application exactly once, as
//! [`Event::Received`]. Delivery is unordered. The wire format ([`wire`]) is
//! the original Python gtUDP's, byte for byte: DATA, then RECV, then ACK,
//! with a 4-byte identity.
//!
//! The [`Endpoint`] does no I/O: it consumes datagrams, time and application
//! calls, and produces datagrams to send, events and its next timeout. The
//! `gtudp-tokio` and `gtudp-mio` crates drive it from a socket; tests and
//! simulations drive it directly, on virtual time. Most applications want
//! one of those sockets; this crate is for another event loop, another
//! transport, or a test.
//!
//! # Driving an endpoint
//!
//! The whole contract, in one loop. After any input
//! ([`handle_datagram`](Endpoint::handle_datagram),
//! [`handle_timeout`](Endpoint::handle_timeout), or an application call such
//! as [`send`](Endpoint::send)), drain [`poll_transmit`](Endpoint::poll_transmit)
//! and send what it gives, drain [`poll_event`](Endpoint::poll_event), then
//! sleep until [`poll_timeout`](Endpoint::poll_timeout) or the next datagram,
//! whichever comes first. Every call takes `now`; it must never go
//! backwards, and virtual time works as well as real time.
//!
//! Here two endpoints run against each other in memory, without sockets, on
//! virtual time, over a link that delays every datagram by 10 ms and loses
//! every third one. The first exchange also shows address validation: the
//! receiver holds the first DATA from a new address until that address
//! answers its probe, one round trip.
//!
//! ```
//! use std::collections::VecDeque;
//! use std::net::SocketAddr;
//! use std::time::{Duration, Instant};
//!
//! use bytes::Bytes;
//! use gtudp_proto::{Config, Endpoint, Event};
//!
//! /// A datagram on the simulated link.
//! struct InFlight { arrives: Instant, from: SocketAddr, to: SocketAddr, bytes: Bytes }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let addrs: [SocketAddr; 2] = ["192.0.2.1:4323".parse()?, "192.0.2.2:4323".parse()?];
//!     // The seed keys identities and hashing: adapters draw it at random,
//!     // a test fixes it so the run is reproducible.
//!     let mut endpoints = [Endpoint::new(Config::default(), 1)?, Endpoint::new(Config::default(), 2)?];
//!     let mut link: VecDeque<InFlight> = VecDeque::new();
//!     let mut now = Instant::now(); // virtual time starts here and jumps ahead
//!     let (mut buf, mut transmitted) = (Vec::new(), 0u32);
//!
//!     // An application call: endpoint 0 sends three messages to endpoint 1.
//!     let mut ids = Vec::new();
//!     for text in ["one", "two", "three"] {
//!         ids.push(endpoints[0].send(now, addrs[1], Bytes::from_static(text.as_bytes()))?);
//!     }
//!
//!     let (mut delivered, mut received) = (Vec::new(), Vec::new());
//!     for _round in 0..10_000 {
//!         for (endpoint, &from) in endpoints.iter_mut().zip(&addrs) {
//!             // Outputs: every datagram the endpoint wants sent (one per
//!             // call here; a socket with GSO may take a batch).
//!             while let Some(transmit) = endpoint.poll_transmit(now, 1, &mut buf) {
//!                 transmitted += 1;
//!                 if transmitted % 3 == 0 {
//!                     continue; // the link loses it
//!                 }
//!                 let bytes = Bytes::copy_from_slice(&buf[..transmit.size]);
//!                 let arrives = now + Duration::from_millis(10);
//!                 link.push_back(InFlight { arrives, from, to: transmit.destination, bytes });
//!             }
//!             // Outputs: what the application must learn.
//!             while let Some(event) = endpoint.poll_event() {
//!                 match event {
//!                     Event::Received { from, payload } => received.push((from, payload)),
//!                     Event::Delivered { id, .. } => delivered.push(id),
//!                     Event::Failed { id, reason, .. } => return Err(format!("{id:?}: {reason}").into()),
//!                     Event::Foreign { .. } => {}
//!                 }
//!             }
//!         }
//!         if delivered.len() == ids.len() {
//!             break;
//!         }
//!         // Sleep until the next datagram arrives or the earliest timer is due.
//!         let next_timer = endpoints.iter_mut().filter_map(|e| e.poll_timeout()).min();
//!         let next_arrival = link.front().map(|datagram| datagram.arrives);
//!         let Some(wake) = next_timer.into_iter().chain(next_arrival).min() else {
//!             return Err("messages unresolved, yet nothing in flight and no timer set".into());
//!         };
//!         now = now.max(wake);
//!         // Inputs: the datagrams that arrived, then the timers that are due.
//!         while link.front().is_some_and(|datagram| datagram.arrives <= now) {
//!             let Some(datagram) = link.pop_front() else { break };
//!             let to = addrs.iter().position(|&a| a == datagram.to).ok_or("unknown address")?;
//!             endpoints[to].handle_datagram(now, datagram.from, datagram.bytes);
//!         }
//!         for endpoint in &mut endpoints {
//!             endpoint.handle_timeout(now);
//!         }
//!     }
//!
//!     // Every message delivered, each handed over exactly once.
//!     assert_eq!(delivered.len(), 3);
//!     received.sort();
//!     assert_eq!(received, ["one", "three", "two"].map(|t| (addrs[0], Bytes::from_static(t.as_bytes()))));
//!     assert!(endpoints[0].stats().retransmissions > 0, "the link lost some; they were resent");
//!     Ok(())
//! }
//! ```
//!
//! `examples/in_memory.rs` runs the same loop over a link that also
//! duplicates, and the `sim` module (feature `sim`) runs any number of
//! endpoints over a seeded, hostile network and checks every guarantee as
//! it goes. A driver over a real socket is the same loop with
//! `socket.send_to` for the link and the socket's read timeout for the
//! sleep (the crate's README has one).
//!
//! # Modules
//!
//! Public:
//!
//! - [`wire`]: the wire format: [`Framing`](wire::Framing) (magic prefix and
//!   type identifiers), parsing into a [`Packet`](wire::Packet) (never
//!   allocates or panics, whatever the bytes) and encoding.
//! - `sim` (feature `sim`): deterministic simulation: virtual clock,
//!   seeded lossy and hostile networks, an invariant-checking `World`,
//!   canned `Scenario`s, the WAN benchmark's runner.
//! - `fuzzing` (feature `fuzzing`): the fuzz targets' bodies as plain
//!   functions, for `fuzz/` and the replay of its seeds in `cargo test`.
//!
//! Inside (their items are re-exported at the root):
//!
//! - `endpoint`: the [`Endpoint`] state machine, split by role: sending and
//!   retransmitting, receiving and remembering, address validation, loss
//!   recovery, ICMP unreachable reports, and the output queue behind
//!   `poll_transmit`; [`TableSizes`] and [`BoundExceeded`] for its bounds.
//! - `config`: [`Config`], its table bounds [`Limits`], per-message
//!   [`SendOptions`], [`ConfigError`], [`SustainedRate`], [`MAX_UDP_PAYLOAD`].
//! - `event`: [`Event`], [`FailureReason`], [`MessageId`], [`Transmit`].
//! - `error`: [`SendError`] (with its [`SendErrorKind`]), [`SendRawError`],
//!   [`UnknownMessage`].
//! - `stats`: [`EndpointStats`], [`PeerStats`] and their [`DropCounts`],
//!   [`InvalidCounts`], [`KindCounts`].
//! - `addr`: [`canonical_addr`], the one form of a peer's address
//!   (IPv4-mapped IPv6 addresses become plain IPv4).
//! - `rtt` (RFC 6298 estimation and timeout), `loss` (loss detection before
//!   the timeout, in the spirit of RACK-TLP), `congestion`
//!   ([`CongestionAlgorithm`]: BBR-style, the default, or AIMD) and
//!   `pacing`: how fast and how much is sent to each peer.
//! - `identities`: message identities, a keyed permutation of a counter;
//!   `remembered`: the compact memory of received identities that
//!   suppresses late duplicates; `validation`: stateless address-validation
//!   tokens; `timer`: the one queue of deadlines.
//!
//! The protocol, the design and the tuning guides are in the repository's
//! `docs/` folder.
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod addr;
mod config;
mod congestion;
mod endpoint;
mod error;
mod event;
mod fifo;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod identities;
mod large_messages;
mod loss;
mod pacing;
mod path_mtu;
mod reassembly;
mod remembered;
mod rtt;
#[cfg(feature = "sim")]
pub mod sim;
mod stats;
mod table_hash;
mod timer;
mod validation;
pub mod wire;

pub use addr::canonical_addr;
pub use config::{Config, ConfigError, Limits, SendOptions, SustainedRate, MAX_UDP_PAYLOAD};
pub use congestion::CongestionAlgorithm;
pub use endpoint::{BoundExceeded, Endpoint, TableSizes};
pub use error::{SendError, SendErrorKind, SendRawError, UnknownMessage};
pub use event::{Event, FailureReason, MessageId, Transmit};
pub use large_messages::{LargeMessages, LargeMessagesError};
pub use stats::{DropCounts, EndpointStats, InvalidCounts, KindCounts, PeerStats};
