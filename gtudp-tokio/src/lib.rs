//! gtUDP on Tokio: a UDP socket whose sends say whether the datagram
//! arrived.
//!
//! [`Socket`] has the shape of [`tokio::net::UdpSocket`] plus guaranteed
//! delivery: [`Socket::send_to`] resolves once the peer's gtUDP endpoint
//! confirmed receipt (its RECV arrived) or with the reason it did not, and
//! [`Socket::recv`] / [`Socket::recv_from`] hand over each message exactly
//! once, whatever the network loses, duplicates or reorders. Delivery is
//! unordered. The wire format is the original gtUDP's (DATA → RECV → ACK
//! with a 4-byte identity), so this socket talks to the original Python
//! implementation with the default [`Config`].
//!
//! Inside, one driver task owns the protocol state (the sans-IO
//! [`gtudp_proto::Endpoint`]) and the UDP socket; handles talk to it over
//! bounded queues. On Linux it receives with `recvmmsg` and GRO and sends
//! batches with GSO (through `quinn-udp`), elsewhere one datagram per
//! system call. An ICMP unreachable report (Linux, through the socket's
//! error queue) fails that destination's messages at once with
//! [`FailureReason::Unreachable`]; other ICMP errors and oversized datagrams
//! are logged, never fatal.
//!
//! Every datagram in and out is logged through [`tracing`] at debug level,
//! target `gtudp` (direction, kind, identity in hex, peer, size): enable it
//! with `RUST_LOG=gtudp=debug` and a subscriber.
//!
//! ```
//! use gtudp_tokio::{Config, Socket};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Socket::bind("127.0.0.1:0", Config::default()).await?;
//! let client = Socket::bind("127.0.0.1:0", Config::default()).await?;
//! let server_addr = server.local_addr();
//!
//! tokio::spawn(async move {
//!     // Echo every message back, with guaranteed delivery.
//!     while let Ok(message) = server.recv().await {
//!         let _ = server.send_to(message.payload, message.from).await;
//!     }
//! });
//!
//! client.send_to(&b"ping"[..], server_addr).await?;
//! let mut buf = [0u8; 64];
//! let (len, from) = client.recv_from(&mut buf).await?;
//! assert_eq!((&buf[..len], from), (&b"ping"[..], server_addr));
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![forbid(unsafe_code)]

mod background;
mod completion;
mod core;
mod error;
mod io;
mod socket;
mod stats;

pub use error::{
    BindError, Closed, DeliveryError, RecvError, SendRawError, TrySendError, TrySendErrorKind,
};
pub use socket::{Builder, Datagram, DatagramKind, Delivery, IntoPayload, SendOptions, Socket};
pub use stats::{CloseSummary, IoStats, Stats};

/// The sans-IO protocol core this crate drives, for its configuration
/// types, wire format and counters.
pub use gtudp_proto as proto;
pub use gtudp_proto::{Config, EndpointStats, FailureReason, Limits, PeerStats, SendErrorKind};
