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
//! - [`BlockingSocket`] wraps a driver for threads that block, and offers
//!   the original's calls: `GTUDP(socket)` is [`BlockingSocket::from_std`],
//!   `sendto` is [`BlockingSocket::send_to`] (or
//!   [`send_to_blocking`](BlockingSocket::send_to_blocking), the original's
//!   wished-for "blocking variant of sendto() that returns if transmission
//!   was successful"), `recvfrom` is [`BlockingSocket::recv_from`], and
//!   `cleanup()` is [`BlockingSocket::cleanup`], which drains with a
//!   deadline instead of forever.
//!
//! # Example
//!
//! ```
//! use gtudp_mio::{BlockingSocket, Config};
//!
//! let server = BlockingSocket::bind("127.0.0.1:0", Config::default())?;
//! let client = BlockingSocket::bind("127.0.0.1:0", Config::default())?;
//!
//! // Returns once the server's endpoint confirmed receipt (or failed).
//! let delivered = client.send_to_blocking(&b"hello"[..], server.local_addr())?;
//! println!("delivered; suspected lost on the way: {}", delivered.suspected_lost);
//!
//! let mut buf = [0u8; 1500];
//! let (len, from) = server.recv_from(&mut buf)?;
//! assert_eq!((&buf[..len], from), (&b"hello"[..], client.local_addr()));
//!
//! // Drains what is in flight (at most `Config::drain_timeout`), then summarises.
//! let summary = client.close()?;
//! assert_eq!(summary.delivered, 1);
//! println!("{summary}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`Driver`]'s documentation has the same exchange in a `mio::Poll` loop.
//!
//! # How the blocking socket runs
//!
//! The calling threads drive the protocol themselves, so a message costs
//! about what the socket's own system calls cost, with no hop through
//! another thread:
//!
//! - The endpoint and the socket sit behind one mutex, held only for
//!   short, non-blocking work: a send hands the message to the endpoint and
//!   makes the send system call on the calling thread (batched: sends made
//!   while received messages wait to be read go out together with the next
//!   read of the socket, in one GSO send).
//! - A receive takes a queued message, or reads the socket itself (feeding
//!   the endpoint and sending the RECVs and ACKs at once). With nothing
//!   there it blocks *on the socket*, outside the lock, as the one
//!   *leader*: the socket is taken out of the background thread's poller
//!   meanwhile, so a datagram wakes exactly the thread waiting for it. A
//!   thread waiting for a send's outcome ([`PendingSend::wait`]) leads the
//!   same way. Other waiting threads wait for the leader, which hands the
//!   lead on when it returns.
//! - A background thread runs the endpoint's timers (retransmissions,
//!   expiries, the close's drain) and reads the socket while no call waits:
//!   RECVs and ACKs are answered while the application is busy. After a
//!   leading call returns, the socket stays with the callers for 0.3 ms (a
//!   receive loop is usually back by then) before the background thread
//!   watches it again; a call that makes an earlier timer wakes it.
//!
//! One socket's protocol work runs under its one lock, so it uses about
//! one core. [`BlockingSocket::bind_sharded`] binds `n` sockets to one
//! address with `SO_REUSEPORT` (Linux), each a [`BlockingSocket`] with its
//! own endpoint and thread, behind one [`ShardedBlockingSocket`] handle:
//! the kernel steers each peer to one shard, so no state is shared, and
//! every send leaves through the shard that will receive the peer's
//! answers. [`ShardedBlockingSocket`] says what this assumes and what
//! breaks it.
//!
//! Where a second poller cannot watch the socket (platforms without Unix
//! file descriptors), receives wait for the background thread instead.
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
//! [`FailureReason::Unreachable`] if it never answered (a closed port); a
//! peer that answered before is only suspect for
//! `Config::unreachable_grace` (a server restarted on the same port loses
//! nothing; see `Endpoint::peer_unreachable`). A datagram the kernel refuses
//! as too large for the path (EMSGSIZE; the socket forbids IP
//! fragmentation) fails its message at once with
//! [`FailureReason::TooLarge`] (see `Endpoint::datagram_too_large`), and
//! smaller messages to that peer go on; other ICMP errors are logged,
//! never fatal. Every
//! datagram in and out is logged through [`tracing`] at debug level,
//! target `gtudp` (direction, kind, identity in hex, peer, size).
//!
//! # Modules
//!
//! - `driver`: [`Driver`], one endpoint and one mio UDP socket for an event
//!   loop you write.
//! - `blocking`: [`BlockingSocket`], its [`BlockingOptions`] and
//!   [`PendingSend`]; inside, `core` (the state behind the one mutex and the
//!   rules for sharing it), `lead` (a calling thread's own wait on the
//!   socket), `background` (the timer thread) and `pending`.
//! - `io`: `gtudp-io`'s batched I/O on a mio socket.
//! - `completion`: where a send's outcome waits for its [`PendingSend`].
//! - `error`, `stats`: the types both adapters share ([`BindError`],
//!   [`DeliveryError`], [`RecvError`], [`Closed`]; [`Stats`], [`IoStats`],
//!   [`CloseSummary`]), re-exported from `gtudp-io`.
//!
//! The protocol's own types ([`Config`], [`Event`], [`FailureReason`], ...)
//! are re-exported from [`gtudp_proto`], also reachable as [`proto`].
#![warn(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![forbid(unsafe_code)]

mod blocking;
mod completion;
mod driver;
mod error;
mod io;
mod sharded;
mod stats;

pub use blocking::{BlockingOptions, BlockingSocket, PendingSend};
pub use driver::Driver;
pub use error::{BindError, Closed, DeliveryError, RecvError};
pub use gtudp_io::{Datagram, DatagramKind, Delivered, Fragmentation, IntoPayload, SendOptions};
pub use sharded::ShardedBlockingSocket;
pub use stats::{CloseSummary, IoStats, Stats};

/// The sans-IO protocol core this crate drives, for its configuration
/// types, wire format and counters.
pub use gtudp_proto as proto;
pub use gtudp_proto::{
    Config, EndpointStats, Event, FailureReason, Limits, MessageId, PeerStats, SendError,
    SendErrorKind, SendRawError,
};
