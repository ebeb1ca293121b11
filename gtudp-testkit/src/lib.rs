//! Test scaffolding shared by gtudp's adapters, written once, so the tests
//! and examples of `gtudp-tokio` and `gtudp-mio` exercise both the same
//! way. A dev-dependency only; not published (so the adapters' tests and
//! examples, which use it, run in the workspace and are left out of their
//! packages).
//!
//! # Example
//!
//! The lossy relay stands between a client and a server on loopback and
//! mistreats what passes; here it forwards every datagram twice:
//!
//! ```
//! use std::net::UdpSocket;
//! use std::time::Duration;
//!
//! use gtudp_testkit::relay::{Impairment, Relay};
//!
//! let server = UdpSocket::bind("127.0.0.1:0")?;
//! server.set_read_timeout(Some(Duration::from_secs(10)))?;
//! let impairment = Impairment {
//!     loss: 0.0,
//!     duplicate: 1.0,
//!     max_delay: Duration::from_millis(5),
//!     seed: 1,
//! };
//! let relay = Relay::start(server.local_addr()?, impairment)?;
//!
//! let client = UdpSocket::bind("127.0.0.1:0")?;
//! client.send_to(b"hello", relay.addr)?;
//! let mut buf = [0u8; 16];
//! for _copy in 0..2 {
//!     let (len, _) = server.recv_from(&mut buf)?;
//!     assert_eq!(&buf[..len], b"hello");
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Modules
//!
//! - [`relay`]: a lossy, duplicating, reordering UDP relay on loopback, on
//!   a plain thread, seeded ([`relay::Relay`], [`relay::Impairment`]).
//! - [`alloc`]: a counting global allocator, for the tests that check a hot
//!   path allocates nothing per message.
//! - [`echo`]: what the echo clients of both adapters share: the payloads,
//!   the tally of what came back, the result line.
//! - [`cli`]: the echo examples' command lines, the same for both adapters.
//! - [`examples`]: running the echo examples as processes, to check their
//!   command-line contract from integration tests.
#![warn(missing_docs)]

pub mod alloc;
pub mod cli;
pub mod drops;
pub mod echo;
pub mod examples;
pub mod nat;
pub mod relay;
