//! Counters of the socket and the summary of a close: the types both
//! adapters share.

/// Counters from [`Socket::stats`](crate::Socket::stats): the endpoint's and
/// the socket I/O's.
pub use gtudp_io::Stats;

/// Counters of the socket's I/O, whichever task did it (the type
/// `gtudp-tokio` and `gtudp-mio` share).
pub use gtudp_io::IoCounters as IoStats;

/// What [`Socket::close`](crate::Socket::close) did.
pub use gtudp_io::CloseSummary;
