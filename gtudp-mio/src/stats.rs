//! Counters of the driver and the summary of a close: the types both
//! adapters share.

/// Counters from [`Driver::stats`](crate::Driver::stats) and
/// [`BlockingSocket::stats`](crate::BlockingSocket::stats): the endpoint's
/// and the socket I/O's.
pub use gtudp_io::Stats;

/// Counters of the socket I/O done by the driver (the type `gtudp-tokio`
/// and `gtudp-mio` share).
pub use gtudp_io::IoCounters as IoStats;

/// What [`BlockingSocket::close`](crate::BlockingSocket::close) did.
pub use gtudp_io::CloseSummary;
