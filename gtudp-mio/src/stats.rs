//! Counters of the driver and the summary of a close.

use std::time::Duration;

use gtudp_proto::EndpointStats;

/// Counters from [`Driver::stats`](crate::Driver::stats) and
/// [`BlockingSocket::stats`](crate::BlockingSocket::stats).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// The protocol endpoint's counters (datagrams by kind, retransmissions,
    /// duplicates suppressed, delivered, failed, drops by reason, ...).
    pub endpoint: EndpointStats,
    /// The socket I/O's counters.
    pub io: IoStats,
}

/// Counters of the socket I/O done by the driver (the type `gtudp-tokio`
/// and `gtudp-mio` share).
pub use gtudp_io::IoCounters as IoStats;

/// What [`BlockingSocket::close`](crate::BlockingSocket::close) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CloseSummary {
    /// Messages confirmed delivered while draining.
    pub delivered: u64,
    /// Messages that failed while draining, for any reason.
    pub failed: u64,
    /// Messages still unconfirmed at the drain deadline (failed with
    /// [`FailureReason::EndpointClosed`](gtudp_proto::FailureReason));
    /// included in `failed`.
    pub abandoned: u64,
    /// Whether the drain deadline ([`Config::drain_timeout`](gtudp_proto::Config))
    /// cut the drain short; if not, every message and RECV was resolved.
    pub deadline_reached: bool,
    /// How long the drain took.
    pub elapsed: Duration,
    /// The final counters.
    pub stats: Stats,
}
