//! Counters of an adapter and the summary of a close, the same in both.

use std::time::Duration;

use gtudp_proto::EndpointStats;

use crate::IoCounters;

/// Counters of one socket: its protocol endpoint and its socket I/O.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// The protocol endpoint's counters (datagrams by kind, retransmissions,
    /// duplicates suppressed, delivered, failed, drops by reason, ...).
    pub endpoint: EndpointStats,
    /// The socket I/O's counters.
    pub io: IoCounters,
}

impl Stats {
    /// The counters of an endpoint and its socket I/O.
    pub fn new(endpoint: EndpointStats, io: IoCounters) -> Self {
        Self { endpoint, io }
    }
}

/// What closing a socket did.
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

/// The state of a close in progress, from which its [`CloseSummary`] is
/// made once the endpoint has closed.
#[derive(Clone, Copy, Debug)]
pub struct CloseStart {
    at: std::time::Instant,
    stats: EndpointStats,
    abandoned: u64,
}

impl CloseStart {
    /// A close that began at `at` with the endpoint's counters `stats`.
    pub fn new(at: std::time::Instant, stats: EndpointStats) -> Self {
        Self {
            at,
            stats,
            abandoned: 0,
        }
    }

    /// Counts a message abandoned at the drain deadline.
    pub fn note_abandoned(&mut self) {
        self.abandoned += 1;
    }

    /// The summary of the close started here, which ended at `now` with the
    /// final counters `stats`.
    pub fn summary(
        &self,
        now: std::time::Instant,
        drain_timeout: Duration,
        stats: Stats,
    ) -> CloseSummary {
        let elapsed = now.saturating_duration_since(self.at);
        CloseSummary {
            delivered: stats
                .endpoint
                .delivered
                .saturating_sub(self.stats.delivered),
            failed: stats.endpoint.failed.saturating_sub(self.stats.failed),
            abandoned: self.abandoned,
            deadline_reached: elapsed >= drain_timeout,
            elapsed,
            stats,
        }
    }
}

impl CloseSummary {
    /// The summary of a socket that closed without a drain (its thread or
    /// task stopped before a close began).
    pub fn without_drain(stats: Stats) -> Self {
        Self {
            delivered: 0,
            failed: 0,
            abandoned: 0,
            deadline_reached: false,
            elapsed: Duration::ZERO,
            stats,
        }
    }
}
