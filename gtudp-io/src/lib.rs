//! Socket I/O shared by gtudp's adapters (`gtudp-tokio`, `gtudp-mio`):
//! batched UDP receive and send through `quinn-udp` (recvmmsg and GRO, GSO
//! with a datagram-by-datagram fallback, one datagram per system call where
//! the platform has none of them), the per-datagram debug log, the sorting
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
mod log;
mod options;
mod payload;
mod resolve;
#[allow(unsafe_code)]
pub mod reuseport;
mod route;
mod stats;

pub use batch::{is_icmp_report, BatchIo, Direction, IoCounters, Recv, Socket, MIN_SOCKET_BUFFER};
pub use datagram::{Datagram, DatagramKind};
pub use delivered::Delivered;
pub use error::{BindError, Closed, DeliveryError, RecvError};
#[cfg(unix)]
pub use errqueue::{enable_unreachable_reports, read_unreachable_reports};
pub use log::{log_datagram, PayloadPreview};
pub use options::SendOptions;
pub use payload::IntoPayload;
pub use resolve::{connected_peer, first as first_address, resolve_std, send_target};
pub use route::{route, Routed};
pub use stats::{CloseStart, CloseSummary, Stats};

/// A borrowed UDP socket as `quinn-udp` takes it, for [`Socket::sock_ref`].
pub use quinn_udp::UdpSockRef;
