//! Counters of the socket and the summary of a close.

use std::time::Duration;

use gtudp_io::IoCounters;
use gtudp_proto::EndpointStats;

/// Counters from [`Socket::stats`](crate::Socket::stats).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// The protocol endpoint's counters (datagrams by kind, retransmissions,
    /// duplicates suppressed, delivered, failed, ...).
    pub endpoint: EndpointStats,
    /// The socket I/O's counters.
    pub io: IoStats,
}

/// Counters of the socket I/O done by the driver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IoStats {
    /// Receive system calls that returned data.
    pub recv_calls: u64,
    /// Datagrams received (a GRO aggregate counts each datagram).
    pub datagrams_received: u64,
    /// Send system calls made.
    pub send_calls: u64,
    /// Datagrams sent (a GSO batch counts each datagram).
    pub datagrams_sent: u64,
    /// Send system calls that carried several datagrams (GSO).
    pub batched_sends: u64,
    /// Times the socket's send buffer was full and the driver waited for it.
    pub send_would_block: u64,
    /// ICMP error reports (such as `ConnectionRefused` for an earlier
    /// datagram) met by receive or send calls; none is fatal.
    pub icmp_errors: u64,
    /// Other receive errors, logged and ignored.
    pub recv_errors: u64,
}

impl From<IoCounters> for IoStats {
    fn from(counters: IoCounters) -> Self {
        Self {
            recv_calls: counters.recv_calls,
            datagrams_received: counters.datagrams_received,
            send_calls: counters.send_calls,
            datagrams_sent: counters.datagrams_sent,
            batched_sends: counters.batched_sends,
            send_would_block: counters.send_would_block,
            icmp_errors: counters.icmp_errors,
            recv_errors: counters.recv_errors,
        }
    }
}

/// What [`Socket::close`](crate::Socket::close) did.
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
