//! gtUDP on mio: guaranteed-delivery UDP for hand-written event loops, and
//! a blocking socket shaped like the original Python gtUDP.
//!
//! Two ways in:
//!
//! - [`Driver`] owns a [`mio::net::UdpSocket`] and a sans-IO
//!   [`gtudp_proto::Endpoint`] and plugs into a [`mio::Poll`] loop you
//!   write: register it under a token, feed it readiness and time, and
//!   take [`Event`]s out. Its documentation states the event-loop contract
//!   and has a complete example.
//! - [`BlockingSocket`] runs a driver on a background thread and offers the
//!   original's calls: `GTUDP(socket)` is [`BlockingSocket::from_std`],
//!   `sendto` is [`BlockingSocket::send_to`] (or
//!   [`send_to_blocking`](BlockingSocket::send_to_blocking), the original's
//!   wished-for "blocking variant of sendto() that returns if transmission
//!   was successful"), `recvfrom` is [`BlockingSocket::recv_from`], and
//!   `cleanup()` is [`BlockingSocket::cleanup`], which drains with a
//!   deadline instead of forever.
//!
//! Every message sent ends in exactly one outcome: delivered (the peer's
//! endpoint has it; it may not have been read yet) or failed (delivery was
//! not confirmed; the payload may still have arrived). Every message
//! received is handed over exactly once. Delivery is unordered. The wire
//! format is the original gtUDP's (DATA → RECV → ACK with a 4-byte
//! identity), so both talk to the original with the default [`Config`].
//!
//! On Linux the socket receives with `recvmmsg` and GRO and sends batches
//! with GSO (through `quinn-udp`), elsewhere one datagram per system call.
//! An ICMP unreachable report (Linux, through the socket's error queue)
//! fails that destination's messages at once with
//! [`FailureReason::Unreachable`]; other ICMP errors and oversized datagrams
//! are logged, never fatal. Every
//! datagram in and out is logged through [`tracing`] at debug level,
//! target `gtudp` (direction, kind, identity in hex, peer, size).
#![warn(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![forbid(unsafe_code)]

mod blocking;
mod completion;
mod driver;
mod error;
mod io;
mod stats;

pub use blocking::{BlockingOptions, BlockingSocket, PendingSend};
pub use driver::Driver;
pub use error::{BindError, Closed, DeliveryError, RecvError};
pub use gtudp_io::{Datagram, DatagramKind, IntoPayload, SendOptions};
pub use stats::{CloseSummary, IoStats, Stats};

/// The sans-IO protocol core this crate drives, for its configuration
/// types, wire format and counters.
pub use gtudp_proto as proto;
pub use gtudp_proto::{
    Config, EndpointStats, Event, FailureReason, Limits, MessageId, PeerStats, SendError,
    SendErrorKind, SendRawError,
};
