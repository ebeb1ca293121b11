//! Round-trip time estimation and the retransmission timeout (RFC 6298).

use std::time::Duration;

/// Clock granularity `G` of RFC 6298: the smallest variance term added to the
/// smoothed RTT. `Instant` is far finer; 1 ms keeps the RTO from collapsing
/// onto the SRTT on a perfectly steady path.
const GRANULARITY: Duration = Duration::from_millis(1);

/// Per-peer SRTT/RTTVAR and the RTO derived from them.
///
/// Samples come only from exchanges whose request was sent once (Karn's
/// rule): a retransmitted DATA reuses its identity, so a RECV cannot say which
/// copy it answers.
#[derive(Clone, Debug)]
pub(crate) struct RttEstimator {
    smoothed: Option<Duration>,
    variation: Duration,
    /// The smallest sample seen: the path's propagation delay, as near as
    /// we can tell. Spurious retransmissions are recognised against it.
    min: Option<Duration>,
    initial_rto: Duration,
    min_rto: Duration,
    max_rto: Duration,
    /// The timeout the estimate gives, kept up to date by each sample
    /// (it is read far more often than a sample arrives).
    rto: Duration,
}

impl RttEstimator {
    pub(crate) fn new(initial_rto: Duration, min_rto: Duration, max_rto: Duration) -> Self {
        Self {
            smoothed: None,
            variation: Duration::ZERO,
            min: None,
            initial_rto,
            min_rto,
            max_rto,
            rto: initial_rto.clamp(min_rto, max_rto.max(min_rto)),
        }
    }

    /// Folds in one RTT measurement (RFC 6298 section 2.2 and 2.3, K = 4,
    /// alpha = 1/8, beta = 1/4). The arithmetic is in whole nanoseconds
    /// (`Duration`'s own operators normalise seconds and nanoseconds at
    /// every step, and this runs once per message).
    pub(crate) fn on_sample(&mut self, sample: Duration) {
        self.min = Some(self.min.map_or(sample, |min| min.min(sample)));
        let nanos = |duration: Duration| u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        let sample_ns = nanos(sample);
        match self.smoothed {
            None => {
                self.smoothed = Some(sample);
                self.variation = sample / 2;
            }
            Some(smoothed) => {
                let smoothed_ns = nanos(smoothed);
                let deviation = smoothed_ns.abs_diff(sample_ns);
                let variation =
                    (nanos(self.variation).saturating_mul(3)).saturating_add(deviation) / 4;
                let smoothed = smoothed_ns.saturating_mul(7).saturating_add(sample_ns) / 8;
                self.variation = Duration::from_nanos(variation);
                self.smoothed = Some(Duration::from_nanos(smoothed));
            }
        }
        self.rto = self.computed_rto();
    }

    /// The smoothed RTT, once a sample has been taken.
    pub(crate) fn smoothed(&self) -> Option<Duration> {
        self.smoothed
    }

    /// The shortest timeout: `min_rto`.
    pub(crate) fn min_rto(&self) -> Duration {
        self.min_rto
    }

    /// The longest timeout: `max_rto`.
    pub(crate) fn max_rto(&self) -> Duration {
        self.max_rto
    }

    /// The smallest RTT sample, once a sample has been taken.
    pub(crate) fn min(&self) -> Option<Duration> {
        self.min
    }

    /// The retransmission timeout before any backoff.
    pub(crate) fn rto(&self) -> Duration {
        self.rto
    }

    fn computed_rto(&self) -> Duration {
        let rto = match self.smoothed {
            None => self.initial_rto,
            Some(smoothed) => smoothed + (self.variation * 4).max(GRANULARITY),
        };
        rto.clamp(self.min_rto, self.max_rto.max(self.min_rto))
    }

    /// The timeout after `backoff` doublings (RFC 6298 section 5.5), capped
    /// at the configured maximum.
    pub(crate) fn backed_off_rto(&self, backoff: u32) -> Duration {
        let factor = 1u32.checked_shl(backoff.min(31)).unwrap_or(u32::MAX);
        self.rto().saturating_mul(factor).min(self.max_rto)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estimator() -> RttEstimator {
        RttEstimator::new(
            Duration::from_millis(500),
            Duration::from_millis(20),
            Duration::from_secs(10),
        )
    }

    #[test]
    fn initial_rto_until_first_sample() {
        let rtt = estimator();
        assert_eq!(rtt.rto(), Duration::from_millis(500));
        assert_eq!(rtt.smoothed(), None);
    }

    #[test]
    fn first_sample_sets_srtt_and_half_variance() {
        let mut rtt = estimator();
        rtt.on_sample(Duration::from_millis(100));
        assert_eq!(rtt.smoothed(), Some(Duration::from_millis(100)));
        // RTO = SRTT + 4 * RTTVAR = 100 + 4 * 50.
        assert_eq!(rtt.rto(), Duration::from_millis(300));
    }

    #[test]
    fn later_samples_are_smoothed() {
        let mut rtt = estimator();
        rtt.on_sample(Duration::from_millis(100));
        rtt.on_sample(Duration::from_millis(200));
        // RTTVAR = 3/4 * 50 + 1/4 * 100 = 62.5; SRTT = 7/8 * 100 + 1/8 * 200 = 112.5.
        assert_eq!(rtt.smoothed(), Some(Duration::from_micros(112_500)));
        assert_eq!(rtt.min(), Some(Duration::from_millis(100)));
        assert_eq!(rtt.rto(), Duration::from_micros(112_500 + 4 * 62_500));
    }

    #[test]
    fn rto_is_clamped_and_backoff_doubles_up_to_max() {
        let mut rtt = estimator();
        for _ in 0..50 {
            rtt.on_sample(Duration::from_micros(10));
        }
        assert_eq!(rtt.rto(), Duration::from_millis(20));
        assert_eq!(rtt.backed_off_rto(1), Duration::from_millis(40));
        assert_eq!(rtt.backed_off_rto(3), Duration::from_millis(160));
        assert_eq!(rtt.backed_off_rto(40), Duration::from_secs(10));
    }
}
