//! The application model: an application that reads its endpoint's events
//! late, and may pause receiving while it stalls.

use std::time::Duration;

use super::rng::Rng;

/// An application that reads its events late.
///
/// It alternates stretches of reading, when it polls every event as soon as
/// its endpoint has it, with stalls, when it polls nothing: `Received` and
/// `Foreign` events pile up until `limits.max_unread` is reached and new DATA
/// is left unanswered ([`DropCounts::data_unanswered_full`]), and outcomes
/// pile up until `limits.max_outstanding_messages` refuses new sends. A stall
/// may also pause receiving
/// ([`Endpoint::set_receive_paused`](crate::Endpoint::set_receive_paused)),
/// as an adapter does when its application's queue is full
/// ([`DropCounts::data_unanswered_paused`]). Each reading stretch lasts
/// `min_reading..=max_reading`, each stall `0..=max_stall`.
///
/// [`DropCounts::data_unanswered_full`]: crate::DropCounts::data_unanswered_full
/// [`DropCounts::data_unanswered_paused`]: crate::DropCounts::data_unanswered_paused
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SlowReader {
    /// The shortest stretch of reading.
    pub min_reading: Duration,
    /// The longest stretch of reading.
    pub max_reading: Duration,
    /// The longest stall.
    pub max_stall: Duration,
    /// Probability that a stall also pauses receiving.
    pub pause: f64,
}

/// Where a [`SlowReader`] is: reading or stalled, and until when.
#[derive(Clone, Copy, Debug)]
pub(super) struct ReaderState {
    profile: SlowReader,
    reading: bool,
    /// This stall paused receiving.
    paused: bool,
    /// When it next stops or resumes reading.
    switch_at: Duration,
}

impl ReaderState {
    /// A reader that starts, at `at`, with a stretch of reading drawn from
    /// `rng`.
    pub(super) fn start(profile: SlowReader, rng: &mut Rng, at: Duration) -> Self {
        let span = profile.max_reading.max(profile.min_reading);
        let reading = Duration::from_micros(rng.range(
            profile.min_reading.as_micros() as u64,
            span.as_micros() as u64,
        ));
        Self {
            profile,
            reading: true,
            paused: false,
            switch_at: at + reading.max(Duration::from_micros(1)),
        }
    }

    /// At `at`, stops reading (a stall, which may pause receiving), or
    /// resumes, drawing how long from `rng`.
    pub(super) fn switch(&mut self, rng: &mut Rng, at: Duration) {
        let profile = self.profile;
        if self.reading {
            self.reading = false;
            self.paused = rng.chance(profile.pause);
            self.switch_at = at + rng.duration(profile.max_stall);
        } else {
            self.reading = true;
            self.paused = false;
            let span = profile.max_reading.max(profile.min_reading);
            self.switch_at = at
                + Duration::from_micros(rng.range(
                    profile.min_reading.as_micros() as u64,
                    span.as_micros() as u64,
                ));
        }
        self.switch_at = self.switch_at.max(at + Duration::from_micros(1));
    }

    /// Whether the application reads its events now.
    pub(super) fn reading(&self) -> bool {
        self.reading
    }

    /// Whether this stall paused receiving.
    pub(super) fn paused(&self) -> bool {
        self.paused
    }

    /// When it next stops or resumes reading.
    pub(super) fn switch_at(&self) -> Duration {
        self.switch_at
    }
}
