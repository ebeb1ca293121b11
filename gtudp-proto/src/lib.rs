//! The sans-IO core of gtUDP: guaranteed delivery of datagrams over UDP.
//!
//! Every message given to [`Endpoint::send`] ends in exactly one
//! [`Event::Delivered`] (the peer's endpoint has it) or [`Event::Failed`]
//! (delivery was not confirmed; the payload may still have arrived), and
//! every message received is handed to the application exactly once, as
//! [`Event::Received`]. Delivery is unordered.
//!
//! The [`Endpoint`] does no I/O: it consumes datagrams, time and application
//! calls, and produces datagrams to send, events and its next timeout. The
//! `gtudp-tokio` and `gtudp-mio` crates drive it from a socket; tests and
//! simulations drive it directly, on virtual time.
//!
//! The [`wire`] module holds the gtUDP wire format, byte-compatible with the
//! original Python gtUDP.
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod addr;
mod config;
mod congestion;
mod endpoint;
mod error;
mod event;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod identities;
mod loss;
mod pacing;
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
pub use stats::{DropCounts, EndpointStats, InvalidCounts, KindCounts, PeerStats};
