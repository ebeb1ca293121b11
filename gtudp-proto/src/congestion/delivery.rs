//! Delivery-rate samples: how fast a peer confirms messages, measured per
//! confirmation over the span the message was in flight, in the manner of
//! draft-cheng-iccrg-delivery-rate-estimation.
//!
//! Instants are nanosecond counts from the endpoint's epoch (see
//! `Endpoint::nanos`): a sample's interval is then two integer
//! subtractions, equal to the nanosecond to what `Instant` would give.

/// The tracker's state when a message was sent, kept with the message.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SendSnapshot {
    /// Messages confirmed to the peer before this send.
    delivered: u64,
    /// When the latest of those was confirmed (or the send, if none), in
    /// nanoseconds from the epoch.
    delivered_at: u64,
    /// The send time of the message confirmed then, likewise.
    first_sent_at: u64,
    /// The sender had less to send than the window allowed.
    app_limited: bool,
}

/// One delivery-rate sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct RateSample {
    /// Messages confirmed over `interval`.
    pub(crate) delivered: u64,
    /// In nanoseconds.
    pub(crate) interval: u64,
    /// Measured while the application, not the path, limited the rate: it
    /// can raise an estimate but not lower it.
    pub(crate) app_limited: bool,
    /// Messages confirmed to the peer before the sampled one was sent: a
    /// round trip has passed once this reaches the count at a round's start.
    pub(crate) prior_delivered: u64,
}

impl RateSample {
    /// Messages per second.
    pub(crate) fn rate(&self) -> f64 {
        self.delivered as f64 / super::secs_f64(self.interval).max(1e-9)
    }
}

/// Per-peer delivery counters behind the samples.
#[derive(Clone, Debug, Default)]
pub(crate) struct DeliveryTracker {
    delivered: u64,
    /// Nanoseconds from the epoch, as the snapshot's fields.
    delivered_at: Option<u64>,
    first_sent_at: Option<u64>,
    /// Samples stay app-limited until this many messages are confirmed.
    app_limited_until: u64,
    /// When a validation probe came from the peer before anything was
    /// confirmed (see [`Self::on_validation_probe`]).
    held_until: Option<u64>,
}

impl DeliveryTracker {
    /// Messages confirmed so far.
    pub(crate) fn delivered(&self) -> u64 {
        self.delivered
    }

    /// A message is sent at `now` (nanoseconds from the epoch) with
    /// `in_flight` others unconfirmed.
    #[inline]
    pub(crate) fn on_send(&mut self, now: u64, in_flight: usize) -> SendSnapshot {
        if in_flight == 0 || self.delivered_at.is_none() {
            // Nothing in flight: the sample interval starts now.
            self.delivered_at = Some(now);
            self.first_sent_at = Some(now);
        }
        SendSnapshot {
            delivered: self.delivered,
            delivered_at: self.delivered_at.unwrap_or(now),
            first_sent_at: self.first_sent_at.unwrap_or(now),
            app_limited: self.app_limited_until > self.delivered,
        }
    }

    /// The peer asked us to prove our address at `now` (nanoseconds), before
    /// it confirmed anything: it holds what we sent until our answer
    /// reaches it, and confirms all of it a round trip after `now`. Those
    /// confirmations measure the path from `now` on (see
    /// [`Self::held`]).
    pub(crate) fn on_validation_probe(&mut self, now: u64) {
        if self.delivered == 0 && self.held_until.is_none() {
            self.held_until = Some(now);
        }
    }

    /// The round trip a message sent at `sent_at` and confirmed at `now`
    /// measures, if the peer held it until it had our answer to its
    /// validation probe: its RECV came a round trip after the answer,
    /// whenever it was sent, so its RTT since the send is the validation
    /// exchange's (up to two round trips), not the path's.
    ///
    /// A RECV for an unknown identity may be forged, and come at any time:
    /// the RTT is taken no shorter than half the time since the send (an
    /// honest probe is drawn by a DATA sent at most a round trip before
    /// it), so a forgery can halve it at most.
    ///
    /// In nanoseconds, as the instants.
    #[inline]
    pub(crate) fn held_rtt(&self, sent_at: u64, now: u64) -> Option<u64> {
        let at = self.held_until.filter(|&at| sent_at < at)?;
        let since_send = now.saturating_sub(sent_at);
        Some(now.saturating_sub(at).max(since_send / 2))
    }

    /// The sender had nothing more to send with `in_flight` unconfirmed.
    #[inline]
    pub(crate) fn on_app_limited(&mut self, in_flight: usize) {
        self.app_limited_until = (self.delivered + in_flight as u64).max(1);
    }

    /// A message sent at `sent_at` with `snapshot` was confirmed at `now`
    /// (both in nanoseconds from the epoch). `None` when the interval is
    /// too short to mean anything (shorter than `min_rtt`, in nanoseconds,
    /// as when the RECV answered an earlier copy).
    #[inline(always)]
    pub(crate) fn on_delivered(
        &mut self,
        now: u64,
        sent_at: u64,
        snapshot: &SendSnapshot,
        min_rtt: u64,
    ) -> Option<RateSample> {
        self.delivered += 1;
        self.delivered_at = Some(now);
        self.first_sent_at = Some(sent_at);
        let send_elapsed = sent_at.saturating_sub(snapshot.first_sent_at);
        let mut ack_elapsed = now.saturating_sub(snapshot.delivered_at);
        let mut min_rtt = min_rtt;
        if let Some(held) = self.held_rtt(sent_at, now) {
            // What the peer held was released when our answer reached it:
            // its confirmations began a round trip after the probe, not
            // after the first send (no shorter than half that, as for
            // `held_rtt`), and the estimator's minimum, which the held
            // messages inflated, does not apply.
            ack_elapsed = now
                .saturating_sub(snapshot.delivered_at.max(self.held_until.unwrap_or(0)))
                .max(ack_elapsed / 2);
            min_rtt = held.min(min_rtt);
        }
        let interval = send_elapsed.max(ack_elapsed);
        if interval < min_rtt || interval == 0 {
            return None;
        }
        Some(RateSample {
            delivered: self.delivered - snapshot.delivered,
            interval,
            app_limited: snapshot.app_limited,
            prior_delivered: snapshot.delivered,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nanoseconds in `ms` milliseconds.
    fn ms_ns(ms: u64) -> u64 {
        ms * 1_000_000
    }

    #[test]
    fn a_steady_flow_samples_its_rate() {
        let start = 7;
        let ms = ms_ns;
        let mut tracker = DeliveryTracker::default();
        // One message per millisecond, each confirmed 10 ms after sending.
        let mut snapshots = Vec::new();
        let mut last = None;
        for i in 0..40u64 {
            let now = start + ms(i);
            if i >= 10 {
                let (sent, snapshot) = snapshots[(i - 10) as usize];
                last = tracker.on_delivered(now, sent, &snapshot, ms(10));
            }
            let in_flight = (i.min(10)) as usize;
            snapshots.push((now, tracker.on_send(now, in_flight)));
        }
        let sample = last.expect("a sample");
        assert!((sample.rate() - 1000.0).abs() < 120.0, "{sample:?}");
        assert!(!sample.app_limited);
    }

    #[test]
    fn app_limited_marks_samples_and_short_intervals_give_none() {
        let start = 7;
        let mut tracker = DeliveryTracker::default();
        tracker.on_app_limited(0);
        let snapshot = tracker.on_send(start, 0);
        let rtt_ns = ms_ns(10);
        let sample = tracker.on_delivered(start + rtt_ns, start, &snapshot, rtt_ns);
        assert!(sample.is_some_and(|s| s.app_limited && s.delivered == 1));
        let snapshot = tracker.on_send(start + rtt_ns, 0);
        let early = start + rtt_ns + ms_ns(1);
        assert_eq!(
            tracker.on_delivered(early, start + rtt_ns, &snapshot, rtt_ns),
            None
        );
    }

    #[test]
    fn what_a_validating_peer_held_measures_the_path_from_its_probe() {
        let start = 7;
        let rtt = ms_ns(100);
        let mut tracker = DeliveryTracker::default();
        // A first window of 16, sent at once; the probe comes a round trip
        // later, the RECVs another round trip after it.
        let snapshots: Vec<_> = (0..16).map(|i| tracker.on_send(start, i)).collect();
        tracker.on_validation_probe(start + rtt);
        let now = start + 2 * rtt;
        assert_eq!(tracker.held_rtt(start, now), Some(rtt));
        // The estimator's minimum (two round trips, from these very
        // messages) does not discard them.
        let two = 2 * rtt;
        let mut last = None;
        for snapshot in &snapshots {
            last = tracker.on_delivered(now, start, snapshot, two);
        }
        let sample = last.expect("a sample");
        assert_eq!(sample.interval, rtt);
        assert!((sample.rate() - 160.0).abs() < 1e-6, "{sample:?}");
        // What was sent after the probe was not held.
        assert_eq!(tracker.held_rtt(start + rtt, now + rtt), None);
        // A probe after a confirmation says nothing of the path.
        let mut later = DeliveryTracker::default();
        let snapshot = later.on_send(start, 0);
        later.on_delivered(start + rtt, start, &snapshot, 0);
        later.on_validation_probe(start + rtt);
        assert_eq!(later.held_rtt(start, start + 2 * rtt), None);
    }

    #[test]
    fn a_forged_probe_can_halve_the_held_round_trip_at_most() {
        let start = 7;
        let rtt = ms_ns(100);
        let mut tracker = DeliveryTracker::default();
        let snapshot = tracker.on_send(start, 0);
        // Forged just before the RECV of a message the peer never held.
        tracker.on_validation_probe(start + rtt - ms_ns(1));
        let now = start + rtt;
        assert_eq!(tracker.held_rtt(start, now), Some(rtt / 2));
        let sample = tracker
            .on_delivered(now, start, &snapshot, rtt)
            .expect("a sample");
        assert_eq!(sample.interval, rtt / 2);
    }
}
