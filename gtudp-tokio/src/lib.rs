//! gtUDP on Tokio: a UDP socket whose sends say whether the datagram
//! arrived.
//!
//! [`Socket`] has the shape of [`tokio::net::UdpSocket`] plus guaranteed
//! delivery: [`Socket::send_to`] resolves once the peer's gtUDP endpoint
//! confirmed receipt (its RECV arrived) or with the reason it did not, and
//! [`Socket::recv`] / [`Socket::recv_from`] hand over each message exactly
//! once, whatever the network loses, duplicates or reorders
//! ([`Socket::recv_many`] takes what has arrived in one batch). Delivery is
//! unordered. The wire format is the original gtUDP's (DATA → RECV → ACK
//! with a 4-byte identity), so this socket talks to the original Python
//! implementation with the default [`Config`].
//!
//! # Inside: the calling task drives the socket
//!
//! The protocol state (the sans-IO [`gtudp_proto::Endpoint`]), the UDP
//! socket's batched I/O, the sends awaiting their outcome and the receive
//! queue sit behind one short lock (a `std::sync::Mutex`, never held across
//! an `await`), and each call does its own work under it:
//!
//! - a **send** hands its message to the endpoint and writes the DATA with
//!   a non-blocking system call before it returns, unless more sends are
//!   on their way (below);
//! - a **receive** takes a queued message, or else reads the socket itself
//!   (non-blocking, a few batches at most), feeds what it read to the
//!   endpoint, writes the RECVs and ACKs that produced, and only then waits
//!   for readiness (several tasks may receive at once);
//! - whichever task reads a RECV resolves that send and wakes the task
//!   awaiting its [`Delivery`] directly, with no task in between.
//!
//! While the application works through a backlog (its last receive left
//! more messages queued), replies are held for its next call, so one GSO
//! system call carries many. So are sends made in reaction to outcomes:
//! while more outcomes were handed over than sends made since, the latest
//! a few milliseconds ago at most (tasks run late on a loaded machine), a
//! send's DATA waits for the next send, and the last one writes them all.
//! Should the next call not come, a read of the socket or the background
//! task (within a tick: a millisecond, more on a loaded machine) writes
//! what waits, and those outcomes are expected to bring nothing more:
//! handles kept unread hold a send back once, not every send.
//!
//! One background task per socket does what no call does: the endpoint's
//! timers (retransmissions, deadlines, the pacer, the close's drain),
//! transmits that met a full socket buffer (it waits for writability),
//! ICMP reports in the socket's error queue, and input that arrives while
//! no task is receiving, so RECVs and ACKs are answered even when the
//! application only sends or is busy elsewhere. It sleeps otherwise.
//!
//! On Linux the socket receives with `recvmmsg` and GRO and sends batches
//! with GSO (through `quinn-udp`), elsewhere one datagram per system call.
//! An ICMP unreachable report (Linux, through the socket's error queue)
//! fails that destination's messages at once with
//! [`FailureReason::Unreachable`] if it never answered (a closed port); a
//! peer that answered before is only suspect for
//! `Config::unreachable_grace` (a server restarted on the same port loses
//! nothing; see `Endpoint::peer_unreachable`). A datagram the kernel refuses
//! as too large for the path (EMSGSIZE; the socket forbids IP
//! fragmentation) fails its message at once with
//! [`FailureReason::TooLarge`] (see `Endpoint::datagram_too_large`), and
//! smaller messages to that peer go on; other ICMP errors are logged,
//! never fatal.
//!
//! # Every core: a sharded server
//!
//! One socket's protocol work runs under its one lock, so it uses about
//! one core. [`Socket::bind_sharded`] binds `n` sockets to one address with
//! `SO_REUSEPORT` (Linux), each a [`Socket`] with its own endpoint and
//! background task, behind one [`ShardedSocket`] handle: the kernel steers
//! each peer to one shard, by a program whose choice the handle computes
//! too, so no state is shared and every send leaves through the shard that
//! will receive the peer's answers. [`ShardedSocket`] says what this
//! assumes (the set of sockets on the port stays the same) and what breaks
//! it. With [`Builder::shard_threads`] each shard is driven on a thread of
//! its own (a current-thread runtime), where
//! [`ShardedSocket::spawn_on_shard`] runs the task that serves it, so a
//! shard's work never wakes another thread.
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
//!
//! # Modules
//!
//! - `socket`: [`Socket`] (a cheap, cloneable handle), its [`Builder`], and
//!   [`Delivery`], the future of one send's outcome.
//! - `core`: the state behind the socket's one lock (the endpoint, the
//!   batched I/O, the sends awaiting their outcome, the receive queue) and
//!   the work each call does under it.
//! - `background`: the background task (timers, blocked transmits, ICMP
//!   reports, input while no task receives).
//! - `sharded`: [`ShardedSocket`], a server sharded over `SO_REUSEPORT`
//!   sockets; `shard_thread`: a shard driven on a thread of its own.
//! - `io`: `gtudp-io`'s batched I/O on a Tokio socket.
//! - `completion`: where a send's outcome waits for its [`Delivery`].
//! - `error`: one error type per operation ([`BindError`],
//!   [`DeliveryError`], [`RecvError`], [`TrySendError`], [`SendRawError`],
//!   [`Closed`]).
//! - `stats`: [`Stats`], [`IoStats`] and [`CloseSummary`], shared with
//!   `gtudp-mio` through `gtudp-io`.
//!
//! The protocol's own types ([`Config`], [`Limits`], [`FailureReason`],
//! ...) are re-exported from [`gtudp_proto`], also reachable as [`proto`].
//! The repository's `docs/` folder has the protocol, the design and the
//! tuning guides.
#![warn(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![forbid(unsafe_code)]

mod background;
mod completion;
mod core;
mod error;
mod io;
mod shard_thread;
mod sharded;
mod shared;
mod socket;
mod stats;

pub use error::{
    BindError, Closed, DeliveryError, RecvError, SendRawError, TrySendError, TrySendErrorKind,
};
pub use gtudp_io::Fragmentation;
pub use sharded::ShardedSocket;
pub use socket::{
    Builder, Datagram, DatagramKind, Delivered, Delivery, IntoPayload, SendOptions, Socket,
};
pub use stats::{CloseSummary, IoStats, Stats};

/// The sans-IO protocol core this crate drives, for its configuration
/// types, wire format and counters.
pub use gtudp_proto as proto;
pub use gtudp_proto::{
    Config, EndpointStats, FailureReason, LargeMessages, Limits, PeerStats, SendErrorKind,
};
