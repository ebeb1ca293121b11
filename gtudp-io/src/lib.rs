//! Socket I/O shared by gtudp's adapters (`gtudp-tokio`, `gtudp-mio`):
//! batched UDP receive and send through `quinn-udp` (recvmmsg and GRO, GSO
//! with a datagram-by-datagram fallback, one datagram per system call where
//! the platform has none of them; on Linux `sendmmsg` for transmits of
//! different sizes or destinations), the per-datagram debug log, the sorting
//! of endpoint events, the registry in which sends' outcomes wait for the
//! application ([`completion`]), and the error and counter types both
//! adapters expose.
//!
//! This is a support crate: its API serves the adapters and may change in
//! any release. Applications use `gtudp-tokio` or `gtudp-mio`, which
//! re-export the public types defined here, so both adapters have the same
//! types for the same concepts: [`SendOptions`], [`Datagram`],
//! [`DatagramKind`], [`Delivered`], [`Stats`], [`CloseSummary`],
//! [`IoCounters`] (as `IoStats`), and the errors [`BindError`],
//! [`DeliveryError`], [`RecvError`] and [`Closed`].
//!
//! The I/O is runtime-agnostic: [`BatchIo`] owns a socket that implements
//! [`Socket`], through which the adapter's runtime runs each non-blocking
//! system call (Tokio's `UdpSocket::try_io`, mio's `UdpSocket::try_io`), so
//! readiness stays the runtime's business.
//!
//! # Example
//!
//! What an adapter does with each event its endpoint gives: [`route`] sorts
//! it into a message for the receive queue or an outcome for the sender
//! waiting on it, in the types both adapters hand out.
//!
//! ```
//! use std::time::Instant;
//!
//! use bytes::Bytes;
//! use gtudp_io::{route, DeliveryError, Routed};
//! use gtudp_proto::{Config, Endpoint, FailureReason};
//!
//! let mut endpoint = Endpoint::new(Config::default(), 7)?;
//! let peer = "192.0.2.7:4323".parse()?;
//! let id = endpoint.send(Instant::now(), peer, Bytes::from_static(b"hello"))?;
//! endpoint.cancel(id)?;
//!
//! let mut outcomes = 0;
//! while let Some(event) = endpoint.poll_event() {
//!     match route(event) {
//!         Routed::Message(datagram) => println!("{} bytes from {}", datagram.payload.len(), datagram.from),
//!         Routed::Outcome { id: done, outcome, abandoned } => {
//!             assert_eq!(done, id);
//!             assert!(matches!(
//!                 outcome,
//!                 Err(DeliveryError::Failed { reason: FailureReason::Cancelled, .. })
//!             ));
//!             assert!(!abandoned, "only a close's drain deadline abandons");
//!             outcomes += 1;
//!         }
//!     }
//! }
//! assert_eq!(outcomes, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Modules
//!
//! - `batch`: [`BatchIo`] over a [`Socket`]: batched receive ([`Recv`]),
//!   segmented send of what [`Endpoint::poll_transmit`](gtudp_proto::Endpoint::poll_transmit)
//!   gives, and the system-call [`IoCounters`]; [`is_icmp_report`] tells an
//!   ICMP report from a real socket error.
//! - `mmsg` (Linux): `sendmmsg`, several transmits of any sizes and
//!   destinations in one system call.
//! - `errqueue` (Linux): ICMP unreachable reports from the socket's error
//!   queue (`IP_RECVERR` / `IPV6_RECVERR`), which name the destination, and
//!   the MTU of a send refused as too large.
//! - `fragmentation`: [`Fragmentation`], whether the kernel may split a
//!   datagram into IP fragments ([`BatchIo::set_fragmentation`]).
//! - [`completion`] (public): the registry where each send's outcome waits
//!   for the handle the application holds, woken by a task waker or a
//!   condition variable.
//! - `route`: [`route`] and [`Routed`], above.
//! - `datagram`, `delivered`, `options`, `payload`: what the application
//!   sees: [`Datagram`] and [`DatagramKind`], [`Delivered`],
//!   [`SendOptions`], and [`IntoPayload`] (the payload types a send takes).
//! - `error`: [`BindError`], [`DeliveryError`], [`RecvError`], [`Closed`].
//! - `stats`: [`Stats`], [`CloseSummary`] and [`CloseStart`].
//! - `resolve`: targets named as `std::net::UdpSocket` users name them, and
//!   the peer of a connected socket.
//! - `log`: the per-datagram debug log ([`log_datagram`], [`PayloadPreview`]).
#![warn(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![deny(unsafe_code)]

mod batch;
pub mod completion;
mod datagram;
mod delivered;
mod error;
#[allow(unsafe_code)]
mod errqueue;
mod fragmentation;
mod log;
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod mmsg;
mod options;
mod payload;
mod resolve;
#[allow(unsafe_code)]
pub mod reuseport;
mod route;
mod stats;

pub use batch::{
    is_icmp_report, BatchIo, Direction, IoCounters, Recv, RecvBatch, Socket, MIN_SOCKET_BUFFER,
};
pub use datagram::{Datagram, DatagramKind};
pub use delivered::Delivered;
pub use error::{BindError, Closed, DeliveryError, RecvError};
#[cfg(unix)]
pub use errqueue::{enable_unreachable_reports, read_unreachable_reports};
pub use fragmentation::Fragmentation;
pub use log::{log_datagram, PayloadPreview};
pub use options::SendOptions;
pub use payload::IntoPayload;
pub use resolve::{connected_peer, first as first_address, resolve_std, send_target};
pub use route::{route, Routed};
pub use stats::{CloseStart, CloseSummary, Stats};

/// A borrowed UDP socket as `quinn-udp` takes it, for [`Socket::sock_ref`].
pub use quinn_udp::UdpSockRef;
