//! Deterministic simulation: endpoints on a seeded, hostile network, on
//! virtual time, in one thread. Enabled by the `sim` feature.
//!
//! The simulator is sans-IO like the endpoint it drives: no sockets, no
//! threads, no real clock (one [`std::time::Instant`] is read once, as the
//! epoch that virtual offsets are added to; nothing printed depends on it).
//! The same seed and the same calls give the same run, byte for byte.
//!
//! - [`Rng`]: the seeded generator everything draws from.
//! - [`Clock`] and [`Network`]: virtual time and links with loss,
//!   duplication, reordering, delay with jitter, a rate limit, corruption
//!   (bit flips and truncation), and [`Partition`]s that start and heal.
//! - [`Hostile`]: random, truncated and foreign datagrams, forged RECV and
//!   ACK from spoofed addresses, and a DATA flood from addresses that never
//!   answer.
//! - [`World`]: drives any number of [`Endpoint`](crate::Endpoint)s over the
//!   network and checks every guarantee of the protocol as it goes,
//!   collecting [`Violation`]s (each of a [`ViolationKind`], counted per
//!   kind in [`ViolationCounts`]) and a [`Trace`] of the last datagrams and
//!   events. Its applications read their events at once, or late (a
//!   [`SlowReader`], which may also pause receiving), to exercise the
//!   endpoint's receive bounds and backpressure.
//! - [`RestartProbe`]: senders restarting on one address, drawing
//!   identities afresh, against a receiver that remembers the old ones.
//! - [`Scenario`]: a whole checked run drawn from a seed and a [`Profile`]
//!   (or [`Knobs`]); this is what the test matrix and the `soak` example run.
//! - [`wan`]: saturating flows sharing one bottleneck ([`WanCell`]), each
//!   with its own controller and RTT, measured for utilization, drops,
//!   retransmissions, delay and fairness ([`WanReport`], checked against a
//!   [`WanTarget`]); this is what the `wan` example runs.
//!
//! # Example
//!
//! Your own test, on a lossy network:
//!
//! ```
//! use std::time::Duration;
//! use gtudp_proto::{Config, Event, SendOptions};
//! use gtudp_proto::sim::{LinkProfile, World};
//!
//! let mut link = LinkProfile::clean();
//! link.loss = 0.3;
//! link.delay = Duration::from_millis(10);
//! link.jitter = Duration::from_millis(5);
//!
//! let mut world = World::new(42, link);
//! world.keep_events(true);
//! let a = world.add_endpoint("10.0.0.1:9000".parse()?, Config::default())?;
//! let b = world.add_endpoint("10.0.0.2:9000".parse()?, Config::default())?;
//!
//! let id = world.send(a, world.address(b), 100, SendOptions::default())?;
//! world.run_until(Duration::from_secs(30));
//!
//! let outcome = world.take_events(a).into_iter().find_map(|(_, event)| match event {
//!     Event::Delivered { id: done, .. } if done == id => Some("delivered"),
//!     Event::Failed { id: done, .. } if done == id => Some("failed"),
//!     _ => None,
//! });
//! assert_eq!(outcome, Some("delivered"));
//! // No payload handed over twice, none invented, every table in bounds...
//! assert!(world.violations().is_empty(), "{}", world.trace());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A canned, fully checked run; on failure, [`Outcome::report`] names the
//! seed and prints the trace:
//!
//! ```
//! use gtudp_proto::sim::{Profile, Scenario};
//!
//! let outcome = Scenario::generate(7, Profile::Loss30.knobs()).run();
//! assert!(outcome.passed(), "{}", outcome.report());
//! assert!(outcome.counts.messages > 0);
//! ```

// The modules import one another one way only, leaves first: `rng`, `tag`,
// `violation`; then `network`, `reader`, `hostile`, `trace`; then `world`;
// then `scenario`. `restarts` and `wan` stand alone (`wan` uses `network`).
mod hostile;
mod large;
mod nat;
mod network;
mod reader;
mod restarts;
mod rng;
mod scenario;
mod tag;
mod trace;
mod violation;
pub mod wan;
mod world;

pub use hostile::{flood_address, Hostile, HostileKind, HostileProfile, Injection};
pub use large::LargeProfile;
pub use nat::NatProfile;
pub use network::{
    Clock, Datagram, Fate, LinkProfile, Network, NetworkStats, Partition, CORRUPT_HEADER_BYTES,
};
pub use reader::SlowReader;
pub use restarts::{RestartProbe, RestartReport};
pub use rng::Rng;
pub use scenario::{node_address, Knobs, Outcome, Profile, Scenario};
pub use tag::Tag;
pub use trace::{Trace, TraceEntry, Wire};
pub use violation::{Counts, Violation, ViolationCounts, ViolationKind};
pub use wan::{
    FlowReport, FlowSample, MatrixCell, Traffic, WanCell, WanError, WanFlow, WanReport, WanSample,
    WanTarget,
};
pub use world::World;
