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

/// What closing a socket did: totals over the socket's whole life, and
/// what the drain (the close's last phase) resolved.
///
/// `delivered` and `failed` count every message the socket resolved, from
/// its first send to the end of the drain; `drained_delivered`,
/// `drained_failed` and `abandoned` count only what resolved while it
/// drained. (Earlier versions gave the drain's figures as `delivered` and
/// `failed`, so a normal run reported 0; those figures are now
/// `drained_delivered` and `drained_failed`.)
///
/// [`Display`](std::fmt::Display) writes it on one line:
///
/// ```text
/// delivered 120, failed 2 (drain: delivered 3, failed 1, abandoned 1, 10.002s, deadline reached)
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CloseSummary {
    /// Messages confirmed delivered over the socket's life, the drain
    /// included (the final `stats.endpoint.delivered`).
    pub delivered: u64,
    /// Messages that failed over the socket's life, for any reason, the
    /// drain included (the final `stats.endpoint.failed`).
    pub failed: u64,
    /// Of `delivered`, the messages confirmed while draining.
    pub drained_delivered: u64,
    /// Of `failed`, the messages that failed while draining, for any
    /// reason (`abandoned` included).
    pub drained_failed: u64,
    /// Messages still unconfirmed at the drain deadline (failed with
    /// [`FailureReason::EndpointClosed`](gtudp_proto::FailureReason));
    /// included in `drained_failed` and `failed`.
    pub abandoned: u64,
    /// Whether the drain deadline ([`Config::drain_timeout`](gtudp_proto::Config))
    /// cut the drain short; if not, every message and RECV was resolved.
    pub deadline_reached: bool,
    /// How long the drain took.
    pub elapsed: Duration,
    /// The final counters.
    pub stats: Stats,
}

impl std::fmt::Display for CloseSummary {
    /// One line: the totals, then the drain's share, its length, and
    /// whether its deadline cut it short.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "delivered {}, failed {} (drain: delivered {}, failed {}, abandoned {}, {:.3?}",
            self.delivered,
            self.failed,
            self.drained_delivered,
            self.drained_failed,
            self.abandoned,
            self.elapsed
        )?;
        if self.deadline_reached {
            f.write_str(", deadline reached")?;
        }
        f.write_str(")")
    }
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
            delivered: stats.endpoint.delivered,
            failed: stats.endpoint.failed,
            drained_delivered: stats
                .endpoint
                .delivered
                .saturating_sub(self.stats.delivered),
            drained_failed: stats.endpoint.failed.saturating_sub(self.stats.failed),
            abandoned: self.abandoned,
            deadline_reached: elapsed >= drain_timeout,
            elapsed,
            stats,
        }
    }
}

impl CloseSummary {
    /// The summary of a socket that closed without a drain (its thread or
    /// task stopped before a close began): the totals of `stats`, nothing
    /// drained.
    pub fn without_drain(stats: Stats) -> Self {
        Self {
            delivered: stats.endpoint.delivered,
            failed: stats.endpoint.failed,
            drained_delivered: 0,
            drained_failed: 0,
            abandoned: 0,
            deadline_reached: false,
            elapsed: Duration::ZERO,
            stats,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use gtudp_proto::EndpointStats;

    use super::*;

    fn endpoint(delivered: u64, failed: u64) -> EndpointStats {
        let mut stats = EndpointStats::default();
        stats.delivered = delivered;
        stats.failed = failed;
        stats
    }

    #[test]
    fn totals_cover_the_life_and_the_drain_its_share() {
        let at = Instant::now();
        let mut start = CloseStart::new(at, endpoint(120 - 3, 2 - 1));
        start.note_abandoned();
        let end = Stats::new(endpoint(120, 2), IoCounters::default());
        let summary = start.summary(at + Duration::from_secs(10), Duration::from_secs(10), end);
        assert_eq!((summary.delivered, summary.failed), (120, 2));
        assert_eq!((summary.drained_delivered, summary.drained_failed), (3, 1));
        assert_eq!(summary.abandoned, 1);
        assert!(summary.deadline_reached);
        assert_eq!(
            summary.to_string(),
            "delivered 120, failed 2 (drain: delivered 3, failed 1, abandoned 1, 10.000s, deadline reached)"
        );
    }

    #[test]
    fn a_normal_run_reports_its_totals_even_when_the_drain_had_nothing_to_do() {
        let at = Instant::now();
        let start = CloseStart::new(at, endpoint(50, 0));
        let end = Stats::new(endpoint(50, 0), IoCounters::default());
        let summary = start.summary(at + Duration::from_millis(2), Duration::from_secs(10), end);
        assert_eq!((summary.delivered, summary.failed), (50, 0));
        assert_eq!((summary.drained_delivered, summary.drained_failed), (0, 0));
        let line = summary.to_string();
        assert_eq!(
            line,
            "delivered 50, failed 0 (drain: delivered 0, failed 0, abandoned 0, 2.000ms)"
        );
        assert!(!line.contains('\n'));
    }

    #[test]
    fn without_a_drain_the_totals_are_the_counters() {
        let summary =
            CloseSummary::without_drain(Stats::new(endpoint(7, 1), IoCounters::default()));
        assert_eq!((summary.delivered, summary.failed), (7, 1));
        assert_eq!(
            (
                summary.drained_delivered,
                summary.drained_failed,
                summary.abandoned
            ),
            (0, 0, 0)
        );
    }
}
