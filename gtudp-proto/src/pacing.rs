//! Spreading one peer's DATA across the round trip instead of sending the
//! window in one burst, which would overflow the queues of real paths.
//!
//! A leaky bucket on virtual send times: each message is due one interval
//! after the previous, and a sender that fell behind (idle, or woken late)
//! may catch up by a short burst of at most [`MAX_BURST`] messages or one
//! millisecond's worth, whichever is fewer. A pacer that says "not yet"
//! gives the instant to come back, which the endpoint turns into its
//! `poll_timeout`.

use std::time::{Duration, Instant};

/// Most messages released back to back after a pause.
const MAX_BURST: u32 = 64;

/// The span a catch-up burst may cover.
const BURST_SPAN: Duration = Duration::from_millis(1);

#[derive(Clone, Debug, Default)]
pub(crate) struct Pacer {
    /// When the next message is due; `None` before the first.
    next: Option<Instant>,
}

impl Pacer {
    /// Releases one message at `now` with `interval` between messages, or
    /// says when it may go.
    pub(crate) fn try_release(&mut self, now: Instant, interval: Duration) -> Result<(), Instant> {
        let due = self.due(now, interval);
        if due > now {
            return Err(due);
        }
        self.next = Some(due + interval);
        Ok(())
    }

    /// When the next message is due at `interval`: never before a short
    /// catch-up burst, and never more than a burst's worth ahead, so a rate
    /// that rises takes effect at once and charges do not pile up.
    fn due(&self, now: Instant, interval: Duration) -> Instant {
        let span = interval * (Self::burst(interval) - 1);
        let earliest = now.checked_sub(span).unwrap_or(now);
        let latest = now + span + interval;
        self.next
            .map_or(earliest, |next| next.clamp(earliest, latest))
    }

    /// When the next message may go, if the pacer is holding one back.
    pub(crate) fn next_release(&self, now: Instant) -> Option<Instant> {
        self.next.filter(|next| *next > now)
    }

    fn burst(interval: Duration) -> u32 {
        let per_span = BURST_SPAN.as_nanos() / interval.as_nanos().max(1);
        (per_span.min(u128::from(MAX_BURST)) as u32).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_at_the_interval_after_a_short_catch_up_burst() {
        let start = Instant::now() + Duration::from_secs(1);
        let mut pacer = Pacer::default();
        let interval = Duration::from_micros(250); // 4 per millisecond
        let released = (0..10)
            .take_while(|_| pacer.try_release(start, interval).is_ok())
            .count();
        assert_eq!(released, 4, "a burst of one millisecond's worth");
        let due = pacer.try_release(start, interval).unwrap_err();
        assert_eq!(due, start + Duration::from_micros(250));
        assert!(pacer.try_release(due, interval).is_ok());
        assert!(pacer.try_release(due, interval).is_err());
        assert_eq!(pacer.next_release(due), Some(due + interval));
    }
}
