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
///
/// Every sample writes it whole, and a server with many peers finds each
/// cold: it keeps every value in nanoseconds, once, in eight words (one
/// cache line when the peer's record aligns it, as it does): the timers'
/// `Duration`s are made from them when read, a few instructions each.
pub(crate) struct RttEstimator {
    /// The smoothed RTT in whole nanoseconds (0 before the first sample).
    smoothed_ns: u64,
    /// RTTVAR in whole nanoseconds.
    variation_ns: u64,
    /// The smallest sample seen, in whole nanoseconds (`u64::MAX` before
    /// the first sample): the path's propagation delay, as near as we can
    /// tell. Spurious retransmissions are recognised against it.
    min_ns: u64,
    /// `min_rto` and `max_rto` in whole nanoseconds.
    min_rto_ns: u64,
    max_rto_ns: u64,
    /// The timeout the estimate gives, in whole nanoseconds, kept up to
    /// date by each sample (it is read far more often than a sample
    /// arrives).
    rto_ns: u64,
    /// The tail-loss probe's timeout ([`crate::loss::probe_timeout_ns`])
    /// in whole nanoseconds, once a sample has been taken ([`NO_SAMPLE`]
    /// before, which tells that none was).
    probe_timeout_ns: u64,
    /// When the latest sample smoothed in was taken, in nanoseconds from
    /// the endpoint's epoch (`u64::MAX` before the first): the samples of
    /// one batch read at once share their instant, and only its first is
    /// smoothed in (see [`Self::on_sample_ns_at`]).
    smoothed_at: u64,
}

/// `probe_timeout_ns` before the first sample. A probe timeout is at most
/// the RTO, which a valid configuration keeps within an hour
/// (`Config::max_rto`); past 584 years (only with bounds that
/// `Config::validate` refuses) one is kept a nanosecond below this.
const NO_SAMPLE: u64 = u64::MAX;

impl RttEstimator {
    /// An estimate with no sample yet, whose RTO is `initial_rto` within
    /// the bounds. Every value is kept in nanoseconds, so a bound or an
    /// initial RTO past 584 years (which `Config::validate` refuses) counts
    /// as 584 years.
    pub(crate) fn new(initial_rto: Duration, min_rto: Duration, max_rto: Duration) -> Self {
        Self {
            smoothed_ns: 0,
            variation_ns: 0,
            min_ns: u64::MAX,
            min_rto_ns: nanos(min_rto),
            max_rto_ns: nanos(max_rto),
            rto_ns: nanos(initial_rto.clamp(min_rto, max_rto.max(min_rto))),
            probe_timeout_ns: NO_SAMPLE,
            smoothed_at: u64::MAX,
        }
    }

    /// Folds in one RTT measurement (RFC 6298 section 2.2 and 2.3, K = 4,
    /// alpha = 1/8, beta = 1/4): [`Self::on_sample_ns`] of its nanoseconds.
    pub(crate) fn on_sample(&mut self, sample: Duration) {
        self.on_sample_ns(nanos(sample));
    }

    /// Folds in one RTT measurement of `sample_ns` nanoseconds, taken at
    /// `now_ns` (nanoseconds from the endpoint's epoch), as one sample per
    /// instant: a sample taken at the same instant as the latest one
    /// smoothed in (the rest of a batch of RECVs or ACKs read at once)
    /// only lowers the minimum.
    ///
    /// QUIC takes one sample per ACK frame, from its newest packet, for the
    /// same reason: the samples of one batch measure one arrival, and
    /// smoothing each in would weigh a batch by its size. Here the batch's
    /// first sample counts (it answers the batch's oldest send, so the
    /// estimate errs long, towards fewer spurious timeouts), and a batch
    /// costs one update instead of one per message.
    #[inline]
    pub(crate) fn on_sample_ns_at(&mut self, sample_ns: u64, now_ns: u64) {
        if now_ns == self.smoothed_at {
            if sample_ns < self.min_ns {
                self.min_ns = sample_ns;
            }
            return;
        }
        self.smoothed_at = now_ns;
        self.on_sample_ns(sample_ns);
    }

    /// Folds in one RTT measurement of `sample_ns` nanoseconds. The
    /// arithmetic is in whole nanoseconds (`Duration`'s own operators
    /// normalise seconds and nanoseconds at every step, and this runs once
    /// per message), and so is what it keeps: the timers' `Duration`s are
    /// made when they are read.
    pub(crate) fn on_sample_ns(&mut self, sample_ns: u64) {
        if sample_ns < self.min_ns {
            self.min_ns = sample_ns;
        }
        if self.probe_timeout_ns == NO_SAMPLE {
            self.smoothed_ns = sample_ns;
            self.variation_ns = sample_ns / 2;
        } else {
            (self.smoothed_ns, self.variation_ns) =
                smooth(self.smoothed_ns, self.variation_ns, sample_ns);
        }
        let smoothed_ns = self.smoothed_ns;
        let rto_ns = self.computed_rto_ns();
        self.rto_ns = rto_ns;
        let twice_ns = smoothed_ns.saturating_mul(2);
        self.probe_timeout_ns = crate::loss::probe_timeout_ns(twice_ns, rto_ns).min(NO_SAMPLE - 1);
    }

    /// Whether [`Self::min`] and [`Self::smoothed`] are both known (a
    /// sample has been taken, and was shorter than 584 years).
    #[inline]
    pub(crate) fn sampled(&self) -> bool {
        self.probe_timeout_ns != NO_SAMPLE && self.min_ns != u64::MAX
    }

    /// The smoothed RTT, once a sample has been taken.
    pub(crate) fn smoothed(&self) -> Option<Duration> {
        (self.probe_timeout_ns != NO_SAMPLE).then(|| Duration::from_nanos(self.smoothed_ns))
    }

    /// The shortest timeout: `min_rto`.
    pub(crate) fn min_rto(&self) -> Duration {
        Duration::from_nanos(self.min_rto_ns)
    }

    /// [`Self::min_rto`] in nanoseconds.
    #[inline]
    pub(crate) fn min_rto_ns(&self) -> u64 {
        self.min_rto_ns
    }

    /// The longest timeout: `max_rto`.
    pub(crate) fn max_rto(&self) -> Duration {
        Duration::from_nanos(self.max_rto_ns)
    }

    /// The smallest RTT sample in nanoseconds, once a sample has been
    /// taken.
    #[inline]
    pub(crate) fn min_ns(&self) -> Option<u64> {
        (self.min_ns != u64::MAX).then_some(self.min_ns)
    }

    /// The smallest RTT sample, once a sample has been taken.
    #[inline]
    pub(crate) fn min(&self) -> Option<Duration> {
        (self.min_ns != u64::MAX).then(|| Duration::from_nanos(self.min_ns))
    }

    /// [`Self::rto`] in nanoseconds.
    #[inline]
    pub(crate) fn rto_ns(&self) -> u64 {
        self.rto_ns
    }

    /// The retransmission timeout before any backoff.
    #[inline]
    pub(crate) fn rto(&self) -> Duration {
        Duration::from_nanos(self.rto_ns)
    }

    /// Twice the smoothed RTT in nanoseconds, at most `max_rto`; zero before the first
    /// sample.
    #[inline]
    pub(crate) fn twice_smoothed_ns(&self) -> u64 {
        self.smoothed_ns.saturating_mul(2).min(self.max_rto_ns)
    }

    /// The longest a RECV may take after a message's first copy and still
    /// be taken for that copy's answer: the larger of the RTO and two
    /// smoothed RTTs. A receiver resends a RECV no sooner than that after
    /// it first went out (see `Timeouts::recv_after`), so a RECV resent
    /// because the first was lost comes back later than this by at least a
    /// round trip.
    pub(crate) fn plausible(&self) -> Duration {
        Duration::from_nanos(self.rto_ns.max(self.twice_smoothed_ns()))
    }

    /// The tail-loss probe's timeout for this estimate
    /// ([`crate::loss::probe_timeout_ns`] of the smoothed RTT and the RTO),
    /// once a sample has been taken.
    #[inline]
    pub(crate) fn probe_timeout(&self) -> Option<Duration> {
        (self.probe_timeout_ns != NO_SAMPLE).then(|| Duration::from_nanos(self.probe_timeout_ns))
    }

    /// SRTT + max(G, 4 × RTTVAR), within the bounds, in nanoseconds
    /// (where `Duration`'s operators would normalise at every step).
    fn computed_rto_ns(&self) -> u64 {
        const GRANULARITY_NS: u64 = GRANULARITY.as_nanos() as u64;
        let spread = self.variation_ns.saturating_mul(4).max(GRANULARITY_NS);
        let rto = self.smoothed_ns.saturating_add(spread);
        // The ceiling: `max_rto`, or `min_rto` if larger.
        rto.clamp(self.min_rto_ns, self.max_rto_ns.max(self.min_rto_ns))
    }

    /// The timeout after `backoff` doublings (RFC 6298 section 5.5), capped
    /// at the configured maximum.
    pub(crate) fn backed_off_rto(&self, backoff: u32) -> Duration {
        let factor = 1u32.checked_shl(backoff.min(31)).unwrap_or(u32::MAX);
        self.rto().saturating_mul(factor).min(self.max_rto())
    }
}

/// The smoothed RTT and RTTVAR after `sample_ns` (RFC 6298 section 2.3),
/// all in nanoseconds: `7/8 SRTT + 1/8 R` and `3/4 RTTVAR + 1/4 |SRTT - R|`,
/// saturating. Below 2^60 ns (36 years) nothing can saturate, and the
/// plain arithmetic gives the same values without the overflow checks.
#[inline]
fn smooth(smoothed_ns: u64, variation_ns: u64, sample_ns: u64) -> (u64, u64) {
    let deviation = smoothed_ns.abs_diff(sample_ns);
    if (smoothed_ns | variation_ns | sample_ns) < 1 << 60 {
        return (
            (smoothed_ns * 7 + sample_ns) / 8,
            (variation_ns * 3 + deviation) / 4,
        );
    }
    smooth_saturating(smoothed_ns, variation_ns, sample_ns, deviation)
}

/// [`smooth`] past 2^60 ns, where the products may overflow.
#[cold]
fn smooth_saturating(
    smoothed_ns: u64,
    variation_ns: u64,
    sample_ns: u64,
    deviation: u64,
) -> (u64, u64) {
    (
        smoothed_ns.saturating_mul(7).saturating_add(sample_ns) / 8,
        variation_ns.saturating_mul(3).saturating_add(deviation) / 4,
    )
}

/// A duration in whole nanoseconds, at most `u64::MAX` (584 years).
#[inline]
pub(crate) fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
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

    /// A sample writes the whole estimate, and a server with many peers
    /// finds each one's cold: it must fit one cache line.
    #[test]
    fn the_estimate_fits_a_cache_line() {
        assert!(std::mem::size_of::<RttEstimator>() <= 64);
    }

    #[test]
    fn samples_of_one_instant_are_smoothed_in_once() {
        let ms = |n: u64| n * 1_000_000;
        let mut rtt = estimator();
        rtt.on_sample_ns_at(ms(100), ms(1_000));
        // The rest of the batch: only the minimum moves.
        rtt.on_sample_ns_at(ms(300), ms(1_000));
        rtt.on_sample_ns_at(ms(90), ms(1_000));
        assert_eq!(rtt.smoothed(), Some(Duration::from_millis(100)));
        assert_eq!(rtt.rto(), Duration::from_millis(300));
        assert_eq!(rtt.min(), Some(Duration::from_millis(90)));
        // The next instant's first sample is smoothed in.
        rtt.on_sample_ns_at(ms(200), ms(1_001));
        assert_eq!(rtt.smoothed(), Some(Duration::from_micros(112_500)));
        assert_eq!(rtt.min(), Some(Duration::from_millis(90)));
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
