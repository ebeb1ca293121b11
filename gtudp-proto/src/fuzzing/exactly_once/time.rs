//! Virtual time, every timer run at its instant, and the end of a run: the
//! network turns perfect and both endpoints drain until quiet.

use std::time::Duration;

use super::trace::{Step, NAMES};
use super::{World, A, B};

/// Timer runs in one time step, at most (then time jumps to its target).
const MAX_TIMER_RUNS: usize = 10_000;
/// Timer runs while draining at the end, at most.
const DRAIN_ROUNDS: usize = 20_000;
/// Deliveries without time passing while draining, at most.
const MAX_INSTANT_DELIVERIES: usize = 10_000;

impl World {
    /// The earliest timer of either endpoint, as virtual time.
    pub(super) fn next_timer(&mut self) -> Option<Duration> {
        let epoch = self.epoch;
        let [a, b] = &mut self.sides;
        let at = match (a.endpoint.poll_timeout(), b.endpoint.poll_timeout()) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        at.map(|at| at.saturating_duration_since(epoch))
    }

    /// Moves the clock to `target`, running every timer on the way at its
    /// instant.
    pub(super) fn advance_to(&mut self, target: Duration) {
        for _ in 0..MAX_TIMER_RUNS {
            match self.next_timer() {
                Some(at) if at <= target => {
                    self.clock = self.clock.max(at);
                    self.run_timers();
                }
                _ => break,
            }
        }
        self.clock = self.clock.max(target);
        self.run_timers();
    }

    /// Runs the timers due now.
    pub(super) fn run_timers(&mut self) {
        let now = self.now();
        for side in [A, B] {
            let endpoint = &mut self.sides[side].endpoint;
            if endpoint.poll_timeout().is_some_and(|at| at <= now) {
                endpoint.handle_timeout(now);
                self.record(Step::Timers { side });
            }
        }
        self.settle();
    }

    /// Lets the network deliver everything, the applications read, and time
    /// run from timer to timer until both endpoints are quiet; then every
    /// send must have resolved.
    pub(super) fn drain(&mut self) {
        self.record(Step::Drain);
        for side in [A, B] {
            self.sides[side].reading = true;
            self.sides[side].endpoint.set_receive_paused(false);
        }
        self.expire();
        self.settle();
        let mut quiet = false;
        for _ in 0..DRAIN_ROUNDS {
            let mut deliveries = 0;
            while let Some(to) = [A, B].into_iter().find(|&to| !self.queues[to].is_empty()) {
                self.deliver(to, 0);
                deliveries += 1;
                if deliveries > MAX_INSTANT_DELIVERIES {
                    self.fail(format!(
                        "more than {MAX_INSTANT_DELIVERIES} datagrams exchanged without time passing"
                    ));
                }
            }
            match self.next_timer() {
                Some(at) => {
                    self.clock = self.clock.max(at);
                    self.run_timers();
                }
                None => {
                    quiet = true;
                    break;
                }
            }
        }
        self.settle();
        for side in [A, B] {
            let unresolved = self.sides[side]
                .sends
                .iter()
                .find(|(_, record)| record.outcome.is_none())
                .map(|(&id, record)| (id, record.seq, record.to));
            if let Some((id, seq, to)) = unresolved {
                self.fail(format!(
                    "{}: {id} (#{seq}) to {} never resolved ({})",
                    NAMES[side],
                    NAMES[to],
                    if quiet {
                        "both endpoints are quiet"
                    } else {
                        "still busy after the drain's bound"
                    }
                ));
            }
        }
        self.check_delivered();
    }
}
