//! The original controller: an AIMD window that halves on every loss
//! event, kept selectable as [`CongestionAlgorithm::Aimd`](super::CongestionAlgorithm).

/// The smallest window: a peer that keeps timing out still gets this many
/// messages in flight, so probing continues.
const MIN_WINDOW: u32 = 1;

/// An AIMD window counted in messages (every DATA is one datagram).
///
/// Slow start doubles the window each round trip up to the threshold; above
/// it, the window grows by one message per window delivered. A retransmission
/// timeout halves it, at most once per recovery period: timeouts of messages
/// sent before the last reduction are the same congestion event. Instants
/// are nanosecond counts from the endpoint's epoch.
#[derive(Clone, Debug)]
pub(crate) struct Aimd {
    window: u32,
    threshold: u32,
    max_window: u32,
    delivered_in_round: u32,
    recovery_start: Option<u64>,
}

impl Aimd {
    pub(crate) fn new(initial_window: u32, max_window: u32) -> Self {
        Self {
            window: initial_window.clamp(MIN_WINDOW, max_window),
            threshold: max_window,
            max_window,
            delivered_in_round: 0,
            recovery_start: None,
        }
    }

    /// Messages that may be in flight at once.
    pub(crate) fn window(&self) -> u32 {
        self.window
    }

    /// A message sent at `sent_at` was confirmed delivered.
    pub(crate) fn on_delivered(&mut self, sent_at: u64) {
        if self.recovery_start.is_some_and(|start| sent_at < start) {
            return;
        }
        if self.window < self.threshold {
            self.window += 1;
        } else {
            self.delivered_in_round += 1;
            if self.delivered_in_round >= self.window {
                self.delivered_in_round = 0;
                self.window += 1;
            }
        }
        self.window = self.window.min(self.max_window);
    }

    /// A message last sent at `sent_at` was found lost (or timed out) at `now`.
    pub(crate) fn on_loss(&mut self, sent_at: u64, now: u64) {
        if self.recovery_start.is_some_and(|start| sent_at < start) {
            return;
        }
        self.threshold = (self.window / 2).max(MIN_WINDOW);
        self.window = self.threshold;
        self.delivered_in_round = 0;
        self.recovery_start = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ns(d: Duration) -> u64 {
        d.as_nanos() as u64
    }

    #[test]
    fn slow_start_then_linear_growth() {
        let now = 0;
        let mut cw = Aimd::new(4, 100);
        for _ in 0..4 {
            cw.on_delivered(now);
        }
        assert_eq!(cw.window(), 8);
        cw.on_loss(now, now + ns(Duration::from_millis(1)));
        assert_eq!(cw.window(), 4);
        // Above the threshold: one more message per window delivered.
        let later = now + ns(Duration::from_millis(2));
        for _ in 0..3 {
            cw.on_delivered(later);
        }
        assert_eq!(cw.window(), 4);
        cw.on_delivered(later);
        assert_eq!(cw.window(), 5);
    }

    #[test]
    fn one_reduction_per_recovery_period() {
        let start = 0;
        let mut cw = Aimd::new(16, 100);
        let now = start + ns(Duration::from_secs(1));
        cw.on_loss(start, now);
        cw.on_loss(start, now);
        assert_eq!(
            cw.window(),
            8,
            "messages sent before the reduction do not reduce again"
        );
        cw.on_loss(
            now + ns(Duration::from_millis(1)),
            now + ns(Duration::from_secs(1)),
        );
        assert_eq!(cw.window(), 4);
    }

    #[test]
    fn window_stays_within_bounds() {
        let now = 0;
        let mut cw = Aimd::new(2, 3);
        for _ in 0..10 {
            cw.on_delivered(now);
        }
        assert_eq!(cw.window(), 3);
        for i in 0..10 {
            let t = now + ns(Duration::from_secs(i));
            cw.on_loss(t, t);
        }
        assert_eq!(cw.window(), MIN_WINDOW);
    }
}
