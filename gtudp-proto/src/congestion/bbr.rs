//! A model-based controller in the style of BBR: it estimates the rate the
//! path delivers and its minimum RTT, paces sends at that rate, and keeps
//! about two bandwidth-delay products in flight.
//!
//! - **Startup** paces at 2.77 times the estimate, doubling the rate each
//!   round trip, until the estimate stops growing by a quarter for three
//!   rounds; **Drain** then empties the queue that built.
//! - **ProbeBw** cycles the pacing gain over eight phases of one minimum
//!   RTT each: 1.25 (probe for more), 0.75 (drain what the probe queued),
//!   then six at 1.
//! - **Random loss is not congestion.** Samples count what the path
//!   carried, confirmed messages scaled up by the loss ratio seen, so a
//!   lossy link is still filled. A loss is read as congestion only while
//!   the path shows a standing queue: even the smallest RTT of the round is
//!   well above the minimum. Then the estimate is cut to 85% of itself, at
//!   most once per round trip, and the cut is undone if the retransmission
//!   it came from proves spurious.
//!
//! The estimate is the largest sample of the last ten rounds, so a flow
//! holding more than its share sees its probes gain nothing while the
//! others' probes do: flows sharing a bottleneck converge.

use std::time::{Duration, Instant};

use super::Delivery;

const STARTUP_GAIN: f64 = 2.77;
const PROBE_GAINS: [f64; 8] = [1.25, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
const CWND_GAIN: f64 = 2.0;
/// Rounds the bandwidth filter remembers.
const BW_ROUNDS: usize = 10;
/// How long a minimum RTT stands before a larger sample may replace it.
const MIN_RTT_LIFETIME: Duration = Duration::from_secs(10);
/// The cut of the estimate on a congestion loss.
const CONGESTION_BETA: f64 = 0.85;
/// The largest loss ratio samples are scaled for.
const MAX_LOSS_RATIO: f64 = 0.5;
/// A queue shorter than this (and than an eighth of the minimum RTT) is
/// not standing.
const MIN_QUEUE_DELAY: Duration = Duration::from_millis(1);
/// RTT samples in a round before Startup trusts its smallest as a sign
/// of a standing queue.
const STARTUP_RTT_SAMPLES: u32 = 8;
/// The queue delay that ends Startup on a long path.
const STARTUP_MAX_QUEUE: Duration = Duration::from_millis(4);
/// Messages always allowed in flight beyond the model.
const WINDOW_QUANTUM: f64 = 4.0;
/// Below this minimum RTT sends are not paced: a whole window leaves in
/// less time than a timer can resolve (loopback, a LAN), and the window
/// alone governs.
const MIN_PACED_RTT: Duration = Duration::from_millis(1);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Startup,
    Drain,
    ProbeBw { phase: usize, since: Instant },
}

/// The largest sample per round over the last [`BW_ROUNDS`] rounds.
#[derive(Clone, Debug, Default)]
struct MaxFilter {
    rounds: [(u64, f64); BW_ROUNDS],
    max: f64,
}

impl MaxFilter {
    fn update(&mut self, round: u64, sample: f64) {
        let slot = &mut self.rounds[(round % BW_ROUNDS as u64) as usize];
        if slot.0 != round {
            *slot = (round, 0.0);
        }
        slot.1 = slot.1.max(sample);
        self.refresh(round);
    }

    fn refresh(&mut self, round: u64) {
        let oldest = round.saturating_sub(BW_ROUNDS as u64 - 1);
        self.max = self
            .rounds
            .iter()
            .filter(|(r, _)| *r >= oldest && *r <= round)
            .map(|(_, v)| *v)
            .fold(0.0, f64::max);
    }

    /// Forgets every sample above `value`.
    fn cap(&mut self, value: f64) {
        for slot in &mut self.rounds {
            slot.1 = slot.1.min(value);
        }
        self.max = self.max.min(value);
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Bbr {
    mode: Mode,
    initial_window: u32,
    max_window: u32,
    bw: MaxFilter,
    min_rtt: Option<(Duration, Instant)>,
    round: u64,
    next_round_delivered: u64,
    /// Startup's plateau detection.
    full_bw: f64,
    full_bw_rounds: u32,
    /// Smallest RTT sample of this round and of the previous one.
    round_min_rtt: Option<Duration>,
    last_round_min_rtt: Option<Duration>,
    round_rtt_samples: u32,
    round_lost: u64,
    round_delivered: u64,
    /// Messages confirmed in the previous round: what the path held in
    /// one round trip, batching and aggregation included.
    last_round_delivered: u64,
    /// Share of transmissions lost, smoothed over rounds.
    loss_ratio: f64,
    cut_in_round: bool,
    /// The filter before the latest congestion cut, until a round passes.
    undo: Option<MaxFilter>,
    /// The latest cut and when it was made: samples of messages sent
    /// before it measure the rate that overflowed, and may not exceed it.
    cut: Option<(f64, Instant)>,
    in_flight: usize,
}

impl Bbr {
    pub(crate) fn new(initial_window: u32, max_window: u32) -> Self {
        Self {
            mode: Mode::Startup,
            initial_window,
            max_window,
            bw: MaxFilter::default(),
            min_rtt: None,
            round: 0,
            next_round_delivered: 0,
            full_bw: 0.0,
            full_bw_rounds: 0,
            round_min_rtt: None,
            last_round_min_rtt: None,
            round_rtt_samples: 0,
            round_lost: 0,
            round_delivered: 0,
            last_round_delivered: 0,
            loss_ratio: 0.0,
            cut_in_round: false,
            undo: None,
            cut: None,
            in_flight: 0,
        }
    }

    /// The bandwidth-delay product, in messages, once both are measured.
    fn bdp(&self) -> Option<f64> {
        let (min_rtt, _) = self.min_rtt?;
        (self.bw.max > 0.0).then_some(self.bw.max * min_rtt.as_secs_f64())
    }

    fn pacing_gain(&self) -> f64 {
        match self.mode {
            Mode::Startup => STARTUP_GAIN,
            Mode::Drain => 1.0 / STARTUP_GAIN,
            Mode::ProbeBw { phase, .. } => PROBE_GAINS[phase],
        }
    }

    pub(crate) fn window(&self) -> u32 {
        let gain = match self.mode {
            Mode::Startup => STARTUP_GAIN,
            _ => CWND_GAIN,
        };
        // Messages waiting to be found lost and resent stay in flight.
        let gain = gain / (1.0 - self.loss_ratio);
        let model = self.bdp().map_or(0.0, |bdp| gain * bdp + WINDOW_QUANTUM);
        // What a round actually carried, doubled: on a path whose RTT under
        // load is far above its minimum (receivers that batch, loopback),
        // the model alone would starve it. The pacer still holds the rate.
        let carried = 2.0 * self.last_round_delivered as f64;
        let window = model.max(carried).max(f64::from(self.initial_window));
        (window.min(f64::from(self.max_window)) as u32).max(1)
    }

    pub(crate) fn pacing_interval(&self) -> Option<Duration> {
        let (min_rtt, _) = self.min_rtt.filter(|(rtt, _)| *rtt >= MIN_PACED_RTT)?;
        let rate = if self.bw.max > 0.0 {
            self.bw.max
        } else {
            f64::from(self.initial_window) / min_rtt.as_secs_f64().max(1e-6)
        };
        // Never slower than the window quantum per round trip.
        let floor = WINDOW_QUANTUM / min_rtt.as_secs_f64().max(1e-6);
        let rate = (rate * self.pacing_gain()).max(floor);
        (rate > 0.0).then(|| Duration::from_secs_f64((1.0 / rate).min(1.0)))
    }

    pub(crate) fn on_delivered(&mut self, delivery: &Delivery) {
        self.in_flight = delivery.in_flight;
        self.round_delivered += 1;
        if let Some(rtt) = delivery.rtt {
            self.on_rtt(rtt, delivery.now);
        }
        let Some(sample) = delivery.sample else {
            self.update_mode(delivery.now);
            return;
        };
        if sample.prior_delivered >= self.next_round_delivered {
            self.next_round_delivered = delivery.delivered;
            self.on_round_end();
        }
        // What the path carried: confirmed messages and the share lost.
        let mut rate = sample.rate() / (1.0 - self.loss_ratio);
        if let Some((cap, at)) = self.cut {
            if delivery.sent_at < at {
                rate = rate.min(cap);
            } else {
                self.cut = None;
            }
        }
        if !sample.app_limited || rate > self.bw.max {
            self.bw.update(self.round, rate);
        }
        self.update_mode(delivery.now);
    }

    pub(crate) fn on_loss(&mut self, now: Instant, in_flight: usize) {
        self.in_flight = in_flight;
        if !self.standing_queue() {
            // Random loss: the path carried the message. Only this share
            // scales the samples up; losses at a queue must not, or a full
            // queue would raise the estimate that overflows it.
            self.round_lost += 1;
            return;
        }
        if self.cut_in_round {
            return;
        }
        self.cut_in_round = true;
        self.undo = Some(self.bw.clone());
        let cut = self.bw.max * CONGESTION_BETA;
        self.bw.cap(cut);
        self.cut = Some((cut, now));
        if self.mode == Mode::Startup {
            self.full_bw = self.bw.max;
            self.enter_drain();
        }
    }

    /// A retransmission timeout. The model stands (a timeout on a lossy
    /// path says little about its rate); a cut made this round is final.
    pub(crate) fn on_timeout(&mut self, now: Instant) {
        let _ = now;
        self.undo = None;
    }

    pub(crate) fn on_spurious(&mut self) {
        if let Some(filter) = self.undo.take() {
            self.bw = filter;
            self.cut = None;
        }
    }

    /// Even the smallest RTT of the round (so far) exceeds the minimum by
    /// more than jitter and probing explain.
    fn standing_queue(&self) -> bool {
        let Some(threshold) = self.queue_threshold() else {
            return false;
        };
        let smallest = match (self.round_min_rtt, self.last_round_min_rtt) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => match a.or(b) {
                Some(v) => v,
                None => return false,
            },
        };
        smallest > threshold
    }

    /// An RTT above this means a queue stands on the path.
    fn queue_threshold(&self) -> Option<Duration> {
        let (min_rtt, _) = self.min_rtt?;
        Some(min_rtt + (min_rtt / 8).max(MIN_QUEUE_DELAY))
    }

    /// This round's smallest RTT so far shows a queue of more than
    /// [`STARTUP_MAX_QUEUE`] (or the usual threshold, if lower): Startup
    /// doubles its rate each round, so it must stop while the queue is
    /// still short.
    fn round_queue_stands(&self) -> bool {
        match (self.round_min_rtt, self.queue_threshold(), self.min_rtt) {
            (Some(rtt), Some(threshold), Some((min_rtt, _))) => {
                rtt > threshold.min(min_rtt + STARTUP_MAX_QUEUE)
            }
            _ => false,
        }
    }

    fn on_rtt(&mut self, rtt: Duration, now: Instant) {
        self.round_min_rtt = Some(self.round_min_rtt.map_or(rtt, |m| m.min(rtt)));
        self.round_rtt_samples += 1;
        // Startup ends as soon as a queue stands, before it overflows: even
        // the smallest RTT of several in this round is well above the
        // minimum (the delay signal of HyStart).
        if self.mode == Mode::Startup
            && self.round_rtt_samples >= STARTUP_RTT_SAMPLES
            && self.round_queue_stands()
        {
            self.full_bw = self.bw.max;
            self.enter_drain();
        }
        match self.min_rtt {
            Some((min, at))
                if rtt > min && now.saturating_duration_since(at) < MIN_RTT_LIFETIME => {}
            _ => self.min_rtt = Some((rtt, now)),
        }
    }

    fn on_round_end(&mut self) {
        self.round += 1;
        self.bw.refresh(self.round);
        let total = self.round_lost + self.round_delivered;
        // Only rounds without a queue measure random loss: Startup's
        // overshoot, or losses a cut answered, are congestion.
        let queued = self.cut_in_round
            || matches!(
                (self.round_min_rtt, self.queue_threshold()),
                (Some(rtt), Some(threshold)) if rtt > threshold
            );
        if total >= 8 && !queued {
            let ratio = self.round_lost as f64 / total as f64;
            self.loss_ratio = (self.loss_ratio * 3.0 + ratio.min(MAX_LOSS_RATIO)) / 4.0;
        }
        self.round_lost = 0;
        self.last_round_delivered = self.round_delivered;
        self.round_delivered = 0;
        self.last_round_min_rtt = self.round_min_rtt.take();
        self.round_rtt_samples = 0;
        if !self.cut_in_round {
            self.undo = None;
        }
        self.cut_in_round = false;
        if self.mode == Mode::Startup {
            if self.bw.max >= self.full_bw * 1.25 {
                self.full_bw = self.bw.max;
                self.full_bw_rounds = 0;
            } else {
                self.full_bw_rounds += 1;
                if self.full_bw_rounds >= 3 {
                    self.enter_drain();
                }
            }
        }
    }

    fn enter_drain(&mut self) {
        self.mode = Mode::Drain;
    }

    fn update_mode(&mut self, now: Instant) {
        let (Some(bdp), Some((min_rtt, _))) = (self.bdp(), self.min_rtt) else {
            return;
        };
        let in_flight = self.in_flight as f64;
        match self.mode {
            Mode::Startup => {}
            Mode::Drain => {
                if in_flight <= bdp {
                    // Start at a phase that depends on the round, so flows
                    // that start together do not probe in step.
                    let phase = 2 + (self.round % 6) as usize;
                    self.mode = Mode::ProbeBw { phase, since: now };
                }
            }
            Mode::ProbeBw { phase, since } => {
                let elapsed = now.saturating_duration_since(since);
                let done = match PROBE_GAINS[phase] {
                    g if g > 1.0 => elapsed >= min_rtt,
                    g if g < 1.0 => elapsed >= min_rtt || in_flight <= bdp,
                    _ => elapsed >= min_rtt,
                };
                if done {
                    self.mode = Mode::ProbeBw {
                        phase: (phase + 1) % PROBE_GAINS.len(),
                        since: now,
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::congestion::RateSample;

    const RTT: Duration = Duration::from_millis(20);

    /// Feeds `rounds` round trips of `per_round` deliveries at `rtt`, with
    /// `lost` losses per round; returns the time reached.
    fn drive(
        bbr: &mut Bbr,
        start: Instant,
        rounds: u64,
        per_round: u64,
        rtt: Duration,
        lost: u64,
    ) -> Instant {
        let mut now = start;
        let mut delivered = bbr.next_round_delivered;
        for _ in 0..rounds {
            for i in 0..per_round {
                now += rtt / per_round as u32;
                delivered += 1;
                if i < lost {
                    bbr.on_loss(now, per_round as usize);
                }
                bbr.on_delivered(&Delivery {
                    sent_at: now - rtt,
                    now,
                    rtt: Some(rtt),
                    sample: Some(RateSample {
                        delivered: per_round,
                        interval: rtt,
                        app_limited: false,
                        // Sent one round trip (per_round messages) ago.
                        prior_delivered: delivered.saturating_sub(per_round),
                    }),
                    delivered,
                    in_flight: per_round as usize,
                });
            }
        }
        now
    }

    #[test]
    fn models_the_path_and_leaves_startup() {
        let mut bbr = Bbr::new(16, 100_000);
        let now = drive(&mut bbr, Instant::now(), 20, 100, RTT, 0);
        assert_ne!(bbr.mode, Mode::Startup);
        // 100 messages per 20 ms: 5,000/s, a BDP of 100.
        assert!((bbr.bw.max - 5_000.0).abs() < 1.0, "{}", bbr.bw.max);
        assert_eq!(bbr.window(), 204);
        let _ = now;
    }

    #[test]
    fn random_loss_without_a_queue_does_not_cut() {
        let mut bbr = Bbr::new(16, 100_000);
        let start = Instant::now();
        let now = drive(&mut bbr, start, 20, 100, RTT, 0);
        let before = bbr.bw.max;
        // 10% loss per round at the minimum RTT: no standing queue.
        drive(&mut bbr, now, 10, 100, RTT, 10);
        assert!(bbr.bw.max >= before, "{} < {before}", bbr.bw.max);
        assert!(bbr.loss_ratio > 0.05, "the loss is accounted for");
    }

    #[test]
    fn loss_with_a_standing_queue_cuts_once_per_round_and_undoes() {
        let mut bbr = Bbr::new(16, 100_000);
        let start = Instant::now();
        let now = drive(&mut bbr, start, 20, 100, RTT, 0);
        let before = bbr.bw.max;
        // The RTT rises by half: a standing queue; then several losses in
        // one round cut once.
        let queued = RTT * 3 / 2;
        let now = drive(&mut bbr, now, 2, 100, queued, 0);
        bbr.on_loss(now, 100);
        bbr.on_loss(now, 100);
        bbr.on_loss(now, 100);
        let cut = bbr.bw.max;
        assert!(
            (cut - before * CONGESTION_BETA).abs() < 1.0,
            "{cut} vs {before}"
        );
        // The retransmission proves spurious: the cut is undone.
        bbr.on_spurious();
        assert_eq!(bbr.bw.max, before);
        // A new round with losses cuts again, once.
        drive(&mut bbr, now, 1, 100, queued, 0);
        bbr.on_loss(now, 100);
        bbr.on_loss(now, 100);
        assert!(bbr.bw.max < before * 0.9);
        assert!(bbr.bw.max > before * CONGESTION_BETA * CONGESTION_BETA);
    }

    #[test]
    fn paces_at_the_estimate_with_the_phase_gain() {
        let mut bbr = Bbr::new(16, 100_000);
        drive(&mut bbr, Instant::now(), 20, 100, RTT, 0);
        let interval = bbr.pacing_interval().expect("paced");
        let rate = 1.0 / interval.as_secs_f64();
        let expected = bbr.bw.max * bbr.pacing_gain();
        assert!(
            (rate - expected).abs() / expected < 0.01,
            "{rate} vs {expected}"
        );
    }
}
