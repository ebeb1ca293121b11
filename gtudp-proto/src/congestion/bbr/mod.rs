//! A model-based controller in the style of BBR: it estimates the rate the
//! path delivers and its minimum RTT, paces sends at that rate, and keeps
//! about two bandwidth-delay products in flight.
//!
//! - **Startup** paces at 2.77 times the estimate, doubling the rate each
//!   round trip, until the estimate stops growing by a quarter for three
//!   rounds, or a queue shows in the RTT (the smallest sample of a round,
//!   or of the latest many, mid-round); **Drain** then empties the queue
//!   that built.
//! - **ProbeBw** probes for more at 1.25 times the estimate for one
//!   minimum RTT, drains what the probe queued at 0.75, then cruises at the
//!   estimate for up to 63 round trips or about two seconds, whichever is
//!   shorter (BBRv3's cadence: a probe overflows a shallow buffer a little,
//!   so it must be rare for the flow's own losses to stay small). Once a
//!   probe has overflowed the queue, the next ones last no longer than
//!   twice the queue it met (its longest RTT over the minimum): a quarter
//!   more for that long puts half that queue in flight beyond the
//!   estimate, where a probe a minimum RTT long put a quarter of a BDP
//!   into a queue that may hold a tenth of one. A probe
//!   that raises the estimate by a fifth or more (a quarter is all it can)
//!   found the path far above it: Startup takes over again, since probes
//!   a quarter at a time would take seconds to fill a long fast path that
//!   a chance run of random loss made Startup leave too soon.
//! - **Random loss is not congestion.** The loss the path causes whatever
//!   the rate is measured on what was sent *below* the estimate (Drain,
//!   and the phase after each probe) and *at* it while no queue shows
//!   (the cruise, until the first send whose RTT shows a queue): no queue
//!   overflows then, so every loss there is the path's. Samples count what the path carried,
//!   confirmed messages scaled up by that ratio only, so a lossy link is
//!   still filled, and losses at a full queue never raise the estimate
//!   that overflowed it. The ratio is taken there at the least its sample
//!   allows (two standard deviations under): a share measured high by
//!   chance raised every sample, and a cruise at them filled the queue.
//! - **Loss beyond that ratio is congestion** (BBRv3's rule): when a
//!   round's losses exceed the random share by more than 2% of a round
//!   (and by more than its noise), or any loss comes while the path shows a
//!   standing queue, the share taken at the most its sample allows (its
//!   estimate and two standard deviations, and at least three losses in
//!   the sends measured: a few dozen sends without a loss do not show a
//!   path without random loss), the estimate is cut to 85% of itself, at most once
//!   per round trip, and a probe in progress ends. A loss of what a probe
//!   sent only takes back what the probe found: the estimate falls no
//!   lower than it was before the probe, which had not overflowed. The
//!   cut is undone once enough of the losses it was judged on prove
//!   spurious that they no longer show congestion; other spurious
//!   retransmissions (a lost RECV, every hundredth message at 1% loss)
//!   leave it. In Startup and Drain congestion ends Startup and the
//!   estimate stands: it is the rate the path delivered, and what
//!   overflowed was the data in flight beyond it, which Drain empties.
//!
//! The estimate is the largest sample of the last ten rounds, so a flow
//! holding more than its share sees its probes gain nothing while the
//! others' probes do: flows sharing a bottleneck converge.
//!
//! Instants here (`now`, `sent_at`, `since`...) are nanosecond counts from
//! the endpoint's epoch, as the endpoint keeps send times: this runs once
//! per delivery, and a difference or a comparison is then one integer
//! operation, where `Instant`'s own arithmetic normalises seconds and
//! nanoseconds on every call.

mod estimators;

use std::time::Duration;

use self::estimators::{CalmSample, LossSample, MaxFilter, BW_ROUNDS, MAX_LOSS_RATIO};
use super::{secs_f64, Delivery};

const STARTUP_GAIN: f64 = 2.77;
/// ProbeBw's phases: probe up, drain the probe's queue, cruise.
const PROBE_GAINS: [f64; 3] = [1.25, 0.75, 1.0];
const PROBE_UP: usize = 0;
const PROBE_DOWN: usize = 1;
const CRUISE: usize = 2;
/// The longest cruise between two probes, in round trips...
const CRUISE_MAX_ROUNDS: u32 = 63;
/// ...and in time (a quarter more, or less, varies by cycle so that flows
/// sharing a bottleneck do not probe in step).
const CRUISE_MAX_TIME: Duration = Duration::from_secs(2);
/// Minimum RTTs after a calm sample closes by which the losses of its last
/// sends are surely found, if no later loss said so sooner.
const CALM_HORIZON_RTTS: u32 = 3;
/// A round's losses beyond the random share that mean congestion, as a
/// share of the round.
const EXCESS_LOSS: f64 = 0.02;
/// Round trips of cruise before a standing queue is drained (a queue
/// another flow keeps standing must not make this one yield all the time)...
const CRUISE_DRAIN_ROUNDS: u32 = 8;
/// ...but no longer than this (or two round trips, if longer): on a long
/// path eight rounds are seconds, long enough for a queue the estimate
/// builds to fill a shallow buffer and stand full, where it drops the
/// unpaced ACKs between paced DATA.
const CRUISE_DRAIN_MAX_WAIT: Duration = Duration::from_millis(160);
/// What a queue standing while cruising trims off the estimate.
const QUEUE_TRIM: f64 = 0.95;
/// The queue delay cruising drains.
const CRUISE_QUEUE: Duration = Duration::from_millis(1);
/// How much `inflight_hi` grows per round without a congestion cut.
const INFLIGHT_HI_GROWTH: f64 = 1.05;
/// Rounds' worth of sends a loss judgement covers outside a probe.
const BUSY_ROUNDS: u64 = 4;
/// Losses in a round before Startup may read them as congestion.
const STARTUP_LOSSES: u64 = 8;
/// A probe that raised the estimate by this factor is followed by another
/// after a short cruise: the path had more to give.
const PROBE_PAID: f64 = 1.05;
/// A probe that raised the estimate by this factor found the path far
/// above it (a probe at 1.25 can find at most a quarter more)...
const PROBE_FAR_BELOW: f64 = 1.2;
/// ...and this many such probes in a row restart Startup: the flow left
/// it too soon (a chance run of random loss ended it), and probes a
/// quarter at a time take seconds to find a long fast path (on the
/// 100 ms / 1 Gbit/s / 1% loss path, seed 10 left Startup at 44 Mbit/s
/// and took five seconds to reach the link).
const FAR_BELOW_PROBES: u32 = 1;
const CWND_GAIN: f64 = 2.0;
const STARTUP_CWND_GAIN: f64 = 2.4;
/// How long a minimum RTT stands before a larger sample may replace it.
const MIN_RTT_LIFETIME: Duration = Duration::from_secs(10);
/// The cut of the estimate on a congestion loss.
const CONGESTION_BETA: f64 = 0.85;
/// A queue shorter than this (and than an eighth of the minimum RTT) is
/// not standing.
const MIN_QUEUE_DELAY: Duration = Duration::from_millis(1);
/// RTT samples in a round before Startup trusts its smallest as a sign
/// of a standing queue.
const STARTUP_RTT_SAMPLES: u32 = 8;
/// RTT samples in a row that show a queue and end Startup within a round,
/// on a paced path (enough that jitter alone does not: with 5 ms of it on a
/// 20 ms path, about one sample in three is below a 4 ms threshold).
const STARTUP_QUEUED_SAMPLES: u32 = 128;
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
    ProbeBw { phase: usize, since: u64 },
}

#[derive(Clone, Debug)]
pub(crate) struct Bbr {
    mode: Mode,
    initial_window: u32,
    max_window: u32,
    bw: MaxFilter,
    /// The minimum RTT in nanoseconds, and when it was measured.
    min_rtt: Option<(u64, u64)>,
    /// The minimum RTT in seconds (`Duration::as_secs_f64` of it), set
    /// with `min_rtt`: the BDP and the pacing rate read it on every
    /// delivery, and it changes far less often.
    min_rtt_secs: f64,
    round: u64,
    next_round_delivered: u64,
    /// Startup's plateau detection.
    full_bw: f64,
    full_bw_rounds: u32,
    /// Smallest RTT sample of this round and of the previous one, in
    /// nanoseconds (as every RTT here).
    round_min_rtt: Option<u64>,
    last_round_min_rtt: Option<u64>,
    round_rtt_samples: u32,
    /// RTT samples in a row that showed a queue, in Startup.
    queued_rtt_samples: u32,
    round_lost: u64,
    round_delivered: u64,
    /// Messages confirmed in the previous round: what the path held in
    /// one round trip, batching and aggregation included.
    last_round_delivered: u64,
    /// Share of transmissions the path loses whatever the rate, smoothed
    /// over the phases that sent below the estimate.
    loss_ratio: f64,
    /// The loss of what is sent in the current (or latest) phase below the
    /// estimate.
    calm: CalmSample,
    /// The previous calm sample, closed but maybe incomplete: losses of its
    /// last sends may still be found. It is folded once a send after it is
    /// found lost (early detection finds losses in send order), or after
    /// [`CALM_HORIZON_RTTS`].
    closing: Option<CalmSample>,
    /// Calm samples folded into `loss_ratio`.
    calm_samples_taken: u32,
    /// The losses and sends of the calm samples folded, each fold keeping
    /// three quarters of the previous ones: `loss_ratio` is their ratio.
    calm_pooled: (f64, f64),
    /// Messages lost and confirmed in the previous round.
    last_round_total: u64,
    /// The loss of what was sent since the latest probe began (or the
    /// latest congestion cut, or a few rounds ago): judged against the
    /// random share.
    busy: LossSample,
    /// ProbeBw cycles begun, to vary the cruise.
    cycles: u32,
    /// The bandwidth filter's epoch in ProbeBw: past every round of
    /// Startup and Drain, then one per probe cycle.
    probe_epoch: u64,
    /// The most in flight since the latest congestion cut (BBRv3's
    /// inflight_hi): 85% of what was in flight then, growing by 5% and one
    /// message per round without a cut. It bounds the window of unpaced
    /// (sub-millisecond) paths only, where the window alone holds the rate
    /// back; on paced ones the cut estimate does.
    inflight_hi: f64,
    /// The estimate when the latest probe began (zero after Startup, so
    /// that the first probe comes soon).
    bw_at_probe: f64,
    /// Probes in a row that found the path far above the estimate.
    far_below_probes: u32,
    /// When the latest probe began and, once its queue drained, ended:
    /// losses of what it sent are the probe's.
    probe_sent: Option<(u64, Option<u64>)>,
    /// The longest RTT of what the latest probe sent.
    probe_max_rtt: u64,
    /// The queue the latest probe that overflowed met (its longest RTT over
    /// the minimum, if at least [`MIN_QUEUE_DELAY`]), in nanoseconds: a
    /// probe puts no more than half of it in flight beyond the estimate.
    queue_depth: Option<u64>,
    cut_in_round: bool,
    /// What the latest congestion cut changed and the losses it was
    /// judged on, until a round passes.
    undo: Option<Undo>,
    /// The latest cut (for congestion, or for a queue standing while
    /// cruising) and when it was made: samples of messages sent before it
    /// measure the rate that overflowed, and may not exceed it.
    cut: Option<(f64, u64)>,
    in_flight: usize,
    /// When the latest delivery taken whole arrived (see
    /// [`Self::on_delivered_again`]), in nanoseconds from the epoch.
    whole_at: Option<u64>,
}

/// What a congestion cut changed, and what it was judged on.
#[derive(Clone, Debug)]
struct Undo {
    /// The bandwidth filter before the cut.
    filter: MaxFilter,
    /// `inflight_hi` before the cut.
    inflight_hi: f64,
    /// The losses and deliveries the cut was judged on, less the losses
    /// proved spurious since, with those of the sends before the cut
    /// found since (an overflow's losses come for a round trip after the
    /// one that crossed the threshold).
    judged: LossSample,
    /// When the cut was made.
    at: u64,
    /// The losses that judgement needed.
    least: u64,
    /// It was judged by the standing-queue rule only.
    queued: bool,
}

impl Bbr {
    pub(crate) fn new(initial_window: u32, max_window: u32) -> Self {
        Self {
            mode: Mode::Startup,
            initial_window,
            max_window,
            bw: MaxFilter::default(),
            min_rtt: None,
            min_rtt_secs: 0.0,
            round: 0,
            next_round_delivered: 0,
            full_bw: 0.0,
            full_bw_rounds: 0,
            round_min_rtt: None,
            last_round_min_rtt: None,
            round_rtt_samples: 0,
            queued_rtt_samples: 0,
            round_lost: 0,
            round_delivered: 0,
            last_round_delivered: 0,
            loss_ratio: 0.0,
            calm: CalmSample::default(),
            closing: None,
            calm_samples_taken: 0,
            calm_pooled: (0.0, 0.0),
            last_round_total: 0,
            busy: LossSample::default(),
            cycles: 0,
            probe_epoch: 0,
            bw_at_probe: 0.0,
            far_below_probes: 0,
            inflight_hi: f64::INFINITY,
            probe_sent: None,
            probe_max_rtt: 0,
            queue_depth: None,
            cut_in_round: false,
            undo: None,
            cut: None,
            in_flight: 0,
            whole_at: None,
        }
    }

    /// The bandwidth-delay product, in messages, once both are measured.
    fn bdp(&self) -> Option<f64> {
        self.min_rtt?;
        (self.bw.max > 0.0).then_some(self.bw.max * self.min_rtt_secs)
    }

    fn pacing_gain(&self) -> f64 {
        match self.mode {
            Mode::Startup => STARTUP_GAIN,
            Mode::Drain => 1.0 / STARTUP_GAIN,
            Mode::ProbeBw { phase, .. } => PROBE_GAINS[phase],
        }
    }

    /// The bandwidth filter's current epoch and how many it spans.
    fn bw_epoch(&self) -> (u64, u64) {
        match self.mode {
            Mode::ProbeBw { .. } => (self.probe_epoch, 2),
            _ => (self.round, BW_ROUNDS as u64),
        }
    }

    /// How long a queue may stand while cruising before it is drained, in
    /// nanoseconds, from the minimum RTT's.
    fn cruise_drain_wait(min_rtt: u64) -> u64 {
        let rounds = min_rtt.saturating_mul(u64::from(CRUISE_DRAIN_ROUNDS));
        rounds.min(min_rtt.saturating_mul(2).max(nanos(CRUISE_DRAIN_MAX_WAIT)))
    }

    /// How long ProbeBw cruises at the estimate before the next probe, in
    /// nanoseconds, from the minimum RTT's.
    fn cruise_time(&self, min_rtt: u64) -> u64 {
        let rounds = min_rtt.saturating_mul(u64::from(CRUISE_MAX_ROUNDS));
        let base = rounds.min(nanos(CRUISE_MAX_TIME));
        // 0.75 to 1.25 of the base, by cycle.
        let eighths = [6u64, 9, 7, 10, 8, 6, 10, 8][(self.cycles % 8) as usize];
        base * eighths / 8
    }

    /// Messages that may be in flight at once.
    #[cfg(test)]
    pub(crate) fn window(&self) -> u32 {
        self.window_paced(self.pacing_interval())
    }

    /// The window and the pacing interval, each worked out once (the
    /// window of an unpaced path is bounded by `inflight_hi`).
    #[inline]
    pub(crate) fn window_and_pacing(&self) -> (u32, Option<Duration>) {
        let pacing = self.pacing_interval();
        (self.window_paced(pacing), pacing)
    }

    /// [`Self::window`], given the pacing interval.
    fn window_paced(&self, pacing: Option<Duration>) -> u32 {
        // Startup too keeps two BDPs in flight (BBRv3's cwnd gain): its
        // pacing gain of 2.77 finds the rate, the window bounds what the
        // last round before a queue shows can overflow.
        let gain = match self.mode {
            Mode::Startup => STARTUP_CWND_GAIN,
            _ => CWND_GAIN,
        };
        // Messages waiting to be found lost and resent stay in flight.
        let gain = gain / (1.0 - self.random_loss());
        let model = self.bdp().map_or(0.0, |bdp| gain * bdp + WINDOW_QUANTUM);
        // What a round actually carried, doubled: on a path whose RTT under
        // load is far above its minimum (receivers that batch, loopback),
        // the model alone would starve it. The pacer still holds the rate.
        let carried = 2.0 * self.last_round_delivered as f64;
        let mut window = model.max(carried);
        if self.inflight_hi.is_finite() && pacing.is_none() {
            // Unpaced, the window alone holds the rate back.
            window = window.min(self.inflight_hi);
        }
        let window = window.max(f64::from(self.initial_window));
        (window.min(f64::from(self.max_window)) as u32).max(1)
    }

    pub(crate) fn pacing_interval(&self) -> Option<Duration> {
        self.min_rtt
            .filter(|(rtt, _)| *rtt >= nanos(MIN_PACED_RTT))?;
        let min_rtt = self.min_rtt_secs;
        let rate = if self.bw.max > 0.0 {
            self.bw.max
        } else {
            f64::from(self.initial_window) / min_rtt.max(1e-6)
        };
        // Never slower than the window quantum per round trip.
        let floor = WINDOW_QUANTUM / min_rtt.max(1e-6);
        let rate = (rate * self.pacing_gain()).max(floor);
        (rate > 0.0).then(|| Duration::from_secs_f64((1.0 / rate).min(1.0)))
    }

    /// Whether a delivery arriving at `now` is the rest of a batch whose
    /// first delivery was taken whole at that same instant, for
    /// [`Self::on_delivered_again`] (see `Controller::on_delivered`).
    #[inline]
    pub(crate) fn takes_again(&self, now: u64) -> bool {
        self.whole_at == Some(now)
    }

    /// A delivery, taken whole: the model, then the mode.
    pub(crate) fn on_delivered(&mut self, delivery: &Delivery) {
        self.whole_at = Some(delivery.now);
        self.model_delivery(delivery);
        self.update_mode(delivery.now);
    }

    /// A delivery arriving at the instant of the latest one taken whole
    /// (the rest of a batch of RECVs read at once, see
    /// [`Self::takes_again`]). It moves the model as every delivery does
    /// (the counts, the RTT statistics, the round, the delivery rate), but
    /// the mode moves once per instant, as BBR's does once per ACK (but
    /// for Drain's end: see below). Every phase of ProbeBw ends after a
    /// time, which the next instant's first delivery sees. Returns
    /// whether the window or the pacing rate may have changed: the model's
    /// inputs to them rarely do within a batch, so the controller need not
    /// work them out again.
    pub(crate) fn on_delivered_again(&mut self, delivery: &Delivery) -> bool {
        let before = self.window_inputs();
        self.model_delivery(delivery);
        if matches!(self.mode, Mode::Drain) {
            // Drain ends when in flight falls to the BDP, which nothing
            // else bounds in time: the batch's first delivery has the
            // most in flight, and a sender that refills its window between
            // batches might never be seen below it there.
            self.update_mode(delivery.now);
        }
        // Before a calm sample is folded, the random share is the one being
        // taken, which every delivery changes.
        self.calm_samples_taken == 0 || self.window_inputs() != before
    }

    /// What the window and the pacing interval are worked out from, but
    /// for the random share (see [`Self::on_delivered_again`]). A test
    /// checks that they are unchanged whenever these are.
    fn window_inputs(&self) -> (u64, Option<u64>, Mode, u64, u64, u64) {
        (
            self.bw.max.to_bits(),
            self.min_rtt.map(|(min, _)| min),
            self.mode,
            self.last_round_delivered,
            self.inflight_hi.to_bits(),
            self.loss_ratio.to_bits(),
        )
    }

    /// What a delivery tells the model of the path.
    #[inline]
    fn model_delivery(&mut self, delivery: &Delivery) {
        let sent_at = delivery.sent_at;
        self.in_flight = delivery.in_flight;
        self.round_delivered += 1;
        if matches!(self.mode, Mode::Startup)
            && self.calm.from.is_none()
            && self.calm_samples_taken == 0
        {
            // Startup's first sends: far below what the path carries.
            self.calm.from = Some(sent_at);
        }
        self.calm.on_resolved(sent_at, false);
        if let Some(closing) = &mut self.closing {
            closing.on_resolved(sent_at, false);
        }
        self.busy.on_resolved(sent_at, false);
        if let Some(undo) = self.undo.as_mut().filter(|undo| sent_at < undo.at) {
            undo.judged.on_resolved(sent_at, false);
        }
        if let Some(rtt) = delivery.rtt {
            if self.sent_in_probe(delivery.sent_at) {
                self.probe_max_rtt = self.probe_max_rtt.max(rtt);
            }
            self.on_rtt(rtt, delivery.now);
            self.on_cruise_rtt(rtt, delivery.sent_at);
        }
        let Some(sample) = delivery.sample else {
            return;
        };
        if sample.prior_delivered >= self.next_round_delivered {
            self.next_round_delivered = delivery.delivered;
            self.on_round_end(delivery.now);
        }
        // What the path carried: confirmed messages and the share lost.
        let mut rate = sample.rate() / (1.0 - self.random_loss_floor());
        if let Some((cap, at)) = self.cut {
            if delivery.sent_at < at {
                rate = rate.min(cap);
            } else {
                self.cut = None;
            }
        }
        if !sample.app_limited || rate > self.bw.max {
            let (epoch, span) = self.bw_epoch();
            self.bw.update(epoch, span, rate);
        }
    }

    pub(crate) fn on_loss(&mut self, sent_at: u64, now: u64, in_flight: usize) {
        self.in_flight = in_flight;
        self.round_lost += 1;
        self.calm.on_resolved(sent_at, true);
        if let Some(closing) = &mut self.closing {
            closing.on_resolved(sent_at, true);
        }
        // A send after a closed sample found lost: the sample's own losses
        // are all found (early detection walks the send order).
        let after = |sample: &CalmSample| sample.until.is_some_and(|until| sent_at >= until);
        if self.closing.as_ref().is_some_and(after) {
            self.fold_closing();
        }
        if self.calm.from.is_some() && after(&self.calm) && self.calm.ratio().is_some() {
            self.fold_calm();
        }
        if let Some(undo) = self.undo.as_mut().filter(|undo| sent_at < undo.at) {
            undo.judged.on_resolved(sent_at, true);
        }
        let counted = self.busy.on_resolved(sent_at, true);
        let judged = matches!(self.mode, Mode::Startup) || self.calm_samples_taken > 0;
        let excess = counted && judged && self.excess_loss();
        // While a queue stands, loss above the random share by its noise
        // alone is congestion (the queue overflowed); a standing queue
        // with only random loss is no reason to yield.
        let queued = counted && judged && self.standing_queue() && self.loss_above_random();
        if self.cut_in_round || !(excess || queued) {
            return;
        }
        self.undo = Some(Undo {
            filter: self.bw.clone(),
            inflight_hi: self.inflight_hi,
            judged: self.busy,
            at: now,
            least: self.least_losses(),
            queued: queued && !excess,
        });
        // The next judgement needs fresh evidence.
        self.busy = LossSample::since(now);
        self.inflight_hi = (in_flight as f64 * CONGESTION_BETA).max(f64::from(self.initial_window));
        self.cut_in_round = true;
        let mut cut = self.bw.max * CONGESTION_BETA;
        let probe_loss = self.sent_in_probe(sent_at);
        if probe_loss {
            if let Some((min_rtt, _)) = self.min_rtt {
                // A loss without a queue (a policer, or random loss read
                // as congestion) tells no depth.
                let depth = self.probe_max_rtt.saturating_sub(min_rtt);
                if depth >= nanos(MIN_QUEUE_DELAY) {
                    self.queue_depth = Some(depth);
                }
            }
            // The probe overflowed the queue: what it found is forgotten,
            // but the rate before it, which did not overflow, stands.
            cut = cut.max(self.bw_at_probe.min(self.bw.max));
        }
        if matches!(self.mode, Mode::ProbeBw { .. }) {
            self.bw.cap(cut);
            self.cut = Some((cut, now));
        }
        // Startup's and Drain's estimate stands: it is the rate the path
        // delivered while the queue overflowed, and what overflowed is the
        // data in flight beyond it, which Drain empties (BBRv3 too keeps
        // its estimate when Startup ends on loss).
        match self.mode {
            Mode::Startup => {
                self.full_bw = self.bw.max;
                self.enter_drain(now);
            }
            // Below the estimate, the next calm sample tells whether the
            // loss was the path's (it stays) or ours (it goes).
            Mode::ProbeBw { phase, .. } if phase != PROBE_DOWN => self.enter_phase(PROBE_DOWN, now),
            _ => {}
        }
    }

    /// A message sent at `sent_at` was sent by the latest probe.
    fn sent_in_probe(&self, sent_at: u64) -> bool {
        self.probe_sent
            .is_some_and(|(from, until)| sent_at >= from && until.map_or(true, |u| sent_at < u))
    }

    /// The share of sends the path loses whatever the rate: the smoothed
    /// calm samples, or, before the first is folded, the one being taken
    /// (Startup's, while its rate still grew: the path was not full).
    fn random_loss(&self) -> f64 {
        if self.calm_samples_taken > 0 {
            self.loss_ratio
        } else {
            self.calm.ratio().unwrap_or(0.0)
        }
    }

    /// The most the random share may be, given how many sends measured it:
    /// the estimate and two standard deviations of it, and at least three
    /// losses in the sends measured (the rule of three: no loss in `n`
    /// sends leaves a share up to 3/n likely). A judgement of congestion
    /// weighs losses against this: a Startup whose first 52 sends lost
    /// nothing read a path's 2% as none, and ended on a round that lost
    /// 2.2%.
    fn random_loss_bound(&self) -> f64 {
        let (random, sends) = self.random_loss_sample();
        if sends < 1.0 {
            return random;
        }
        let spread = (3.0 / sends).max(2.0 * (random * (1.0 - random) / sends).sqrt());
        (random + spread).min(MAX_LOSS_RATIO)
    }

    /// The least the random share may be, given how many sends measured
    /// it: the estimate less two standard deviations of it. A rate sample
    /// is scaled up by the share to count what the path carried, and the
    /// estimate is the largest sample: scaled by a share measured high by
    /// chance, every sample reads high, and a cruise paced at them fills
    /// the queue (on the 200 ms / 2% loss path, Startup's first 88 sends
    /// lost 5, a share of 5.7% that put the estimate 6% above the path; at
    /// 30% loss on a 20 ms path, samples read high kept the 20 ms queue
    /// full and dropped 6% of what reached it). Taken low, a sample reads
    /// a little under what the path carried, which the next probe finds.
    fn random_loss_floor(&self) -> f64 {
        let (random, sends) = self.random_loss_sample();
        // No loss measured (as on most paths): the floor is exactly zero
        // (the one subtracted from it is), without the square root.
        if sends < 1.0 || random == 0.0 {
            return random;
        }
        (random - 2.0 * (random * (1.0 - random) / sends).sqrt()).max(0.0)
    }

    /// The random share as estimated, and how many sends measured it.
    fn random_loss_sample(&self) -> (f64, f64) {
        if self.calm_samples_taken > 0 {
            (self.loss_ratio, self.calm_pooled.1)
        } else {
            let sends = (self.calm.lost + self.calm.delivered) as f64;
            (self.calm.ratio().unwrap_or(0.0), sends)
        }
    }

    /// The sends judged lost more than the random share, by one standard
    /// deviation of it.
    fn loss_above_random(&self) -> bool {
        self.above_random(&self.busy)
    }

    /// `sample` lost more than the random share, by one standard deviation
    /// of it.
    fn above_random(&self, sample: &LossSample) -> bool {
        let (lost, total) = (sample.lost, sample.lost + sample.delivered);
        let random = self.random_loss_bound();
        let expected = random * total as f64;
        let noise = (random * (1.0 - random) * total as f64).sqrt();
        lost >= 2 && lost as f64 > expected + noise
    }

    /// This round lost more than the path's random share explains: by
    /// [`EXCESS_LOSS`] of a round, and by three standard deviations of
    /// what random loss alone would give.
    fn excess_loss(&self) -> bool {
        self.in_excess(&self.busy, self.least_losses())
    }

    /// Losses a judgement needs before it may find congestion: Startup
    /// needs several (BBRv3's full_loss_cnt), its first rounds are too
    /// small to judge a share by.
    fn least_losses(&self) -> u64 {
        if matches!(self.mode, Mode::Startup) {
            STARTUP_LOSSES
        } else {
            2
        }
    }

    /// `sample` lost more than the random share explains (see
    /// [`Self::excess_loss`]), with at least `least` losses.
    fn in_excess(&self, sample: &LossSample, least: u64) -> bool {
        let (lost, total) = (sample.lost, sample.lost + sample.delivered);
        let random = self.random_loss_bound();
        let excess = lost as f64 - random * total as f64;
        let noise = 3.0 * (random * (1.0 - random) * total as f64).sqrt();
        // On a lossy path the share itself varies with the rate (a lost
        // RECV is found sooner when more follow it): allow as much again.
        let allowed = EXCESS_LOSS.max(random) * total as f64;
        lost >= least && excess > allowed.max(noise)
    }

    /// A retransmission timeout. The model stands (a timeout on a lossy
    /// path says little about its rate); a cut made this round is final.
    pub(crate) fn on_timeout(&mut self, now: u64) {
        let _ = now;
        self.undo = None;
    }

    /// A retransmission proved spurious: the transmission before it, sent
    /// at `sent_at`, was presumed lost and was not (a RECV was lost or
    /// late). When that loss was one the latest cut was judged on, the
    /// judgement is made again without it, and the cut undone if it no
    /// longer finds congestion. Any other spurious retransmission leaves
    /// the cut: a path that loses 1% of RECVs proves one spurious every
    /// hundred messages, and undid nearly every cut within its round.
    pub(crate) fn on_spurious(&mut self, sent_at: u64) {
        let Some(undo) = &mut self.undo else {
            return;
        };
        if undo.judged.from.is_some_and(|from| sent_at < from)
            || sent_at >= undo.at
            || undo.judged.lost == 0
        {
            return;
        }
        undo.judged.lost -= 1;
        undo.judged.delivered += 1;
        let (judged, least, queued) = (undo.judged, undo.least, undo.queued);
        if self.in_excess(&judged, least) || (queued && self.above_random(&judged)) {
            return;
        }
        if let Some(undo) = self.undo.take() {
            self.bw = undo.filter;
            self.inflight_hi = undo.inflight_hi;
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

    /// The smallest RTT of this round and of the previous one both exceed
    /// the minimum by [`CRUISE_QUEUE`] (or a sixteenth of it, if more): a
    /// queue, small but standing.
    fn cruise_queue_stands(&self, min_rtt: u64) -> bool {
        let threshold = cruise_queue_threshold(min_rtt);
        matches!(
            (self.round_min_rtt, self.last_round_min_rtt),
            (Some(a), Some(b)) if a > threshold && b > threshold
        )
    }

    /// An RTT above this means a queue stands on the path.
    fn queue_threshold(&self) -> Option<u64> {
        let (min_rtt, _) = self.min_rtt?;
        Some(min_rtt.saturating_add((min_rtt / 8).max(nanos(MIN_QUEUE_DELAY))))
    }

    /// This round's smallest RTT so far shows a queue of more than
    /// [`STARTUP_MAX_QUEUE`] (or the usual threshold, if lower): Startup
    /// doubles its rate each round, so it must stop while the queue is
    /// still short.
    fn round_queue_stands(&self) -> bool {
        match (self.round_min_rtt, self.startup_queue_threshold()) {
            (Some(rtt), Some(threshold)) => rtt > threshold,
            _ => false,
        }
    }

    /// An RTT above this shows a queue Startup must not let grow.
    fn startup_queue_threshold(&self) -> Option<u64> {
        let (min_rtt, _) = self.min_rtt?;
        Some(
            self.queue_threshold()?
                .min(min_rtt.saturating_add(nanos(STARTUP_MAX_QUEUE))),
        )
    }

    fn on_rtt(&mut self, rtt: u64, now: u64) {
        self.round_min_rtt = Some(self.round_min_rtt.map_or(rtt, |m| m.min(rtt)));
        self.round_rtt_samples += 1;
        // Where sends are not paced (a minimum RTT below a millisecond: a
        // LAN, loopback), host scheduling and any jitter dwarf the RTT, and
        // a long run of samples above a millisecond's threshold says
        // nothing of a queue: only the round's smallest counts there.
        let queued = self
            .min_rtt
            .is_some_and(|(min_rtt, _)| min_rtt >= nanos(MIN_PACED_RTT))
            && self.startup_queue_threshold().is_some_and(|t| rtt > t);
        self.queued_rtt_samples = if queued {
            self.queued_rtt_samples + 1
        } else {
            0
        };
        // Startup ends as soon as a queue stands, before it overflows: even
        // the smallest RTT of several in this round is well above the
        // minimum (the delay signal of HyStart), or so is the smallest of
        // the latest many. A round trip begins with what was sent before
        // the queue formed: waiting for the round's end would let Startup
        // overflow a shallow buffer for most of a round more.
        if matches!(self.mode, Mode::Startup)
            && ((self.round_rtt_samples >= STARTUP_RTT_SAMPLES && self.round_queue_stands())
                || self.queued_rtt_samples >= STARTUP_QUEUED_SAMPLES)
        {
            self.full_bw = self.bw.max;
            self.enter_drain(now);
        }
        match self.min_rtt {
            Some((min, at)) if rtt > min && now.saturating_sub(at) < nanos(MIN_RTT_LIFETIME) => {}
            // (A sample equal to the minimum only renews it: its seconds
            // stand.)
            Some((min, _)) if rtt == min => self.min_rtt = Some((rtt, now)),
            _ => {
                self.min_rtt = Some((rtt, now));
                self.min_rtt_secs = secs_f64(rtt);
            }
        }
    }

    fn on_round_end(&mut self, now: u64) {
        self.round += 1;
        let (epoch, span) = self.bw_epoch();
        self.bw.refresh(epoch, span);
        self.last_round_total = self.round_lost + self.round_delivered;
        // Outside a probe, the judgement covers the last few rounds.
        if !matches!(
            self.mode,
            Mode::ProbeBw {
                phase: PROBE_UP,
                ..
            }
        ) && self.busy.lost + self.busy.delivered > BUSY_ROUNDS * self.last_round_total.max(1)
        {
            self.busy = LossSample::since(now);
        }
        // A closed calm sample is complete once its last sends had two
        // minimum RTTs to be confirmed or found lost.
        if let Some((min_rtt, _)) = self.min_rtt {
            let horizon = min_rtt.saturating_mul(u64::from(CALM_HORIZON_RTTS));
            let done = |sample: &CalmSample| {
                sample
                    .until
                    .is_some_and(|until| now >= until.saturating_add(horizon))
            };
            if self.closing.as_ref().is_some_and(done) {
                self.fold_closing();
            }
            if self.calm.from.is_some() && done(&self.calm) {
                self.fold_calm();
            }
        }
        self.round_lost = 0;
        self.last_round_delivered = self.round_delivered;
        self.round_delivered = 0;
        self.last_round_min_rtt = self.round_min_rtt.take();
        self.round_rtt_samples = 0;
        if !self.cut_in_round {
            self.undo = None;
            self.inflight_hi = self.inflight_hi * INFLIGHT_HI_GROWTH + 1.0;
        }
        self.cut_in_round = false;
        if matches!(self.mode, Mode::Startup) {
            if self.bw.max >= self.full_bw * 1.25 {
                self.full_bw = self.bw.max;
                self.full_bw_rounds = 0;
            } else {
                // The path may be full: Startup's sends are calm no more.
                self.end_calm(now);
                self.full_bw_rounds += 1;
                if self.full_bw_rounds >= 3 {
                    self.enter_drain(now);
                }
            }
        }
    }

    fn enter_drain(&mut self, now: u64) {
        self.mode = Mode::Drain;
        self.begin_calm(now);
    }

    /// Sends from `now` on go below the estimate: the loss they meet is
    /// the path's. The previous such sample, long complete, is folded in.
    fn begin_calm(&mut self, now: u64) {
        // A sample still open (a cruise a cut ended) closes here.
        self.end_calm(now);
        if self.calm.from.is_some() && self.calm.ratio().is_some() {
            // Closed: the losses of its last sends may not all be found
            // yet (folded then, a sample of a lossy path read low).
            self.fold_closing();
            self.closing = Some(self.calm);
            self.calm = CalmSample::default();
        } else {
            // Counts too few to fold carry over into the new sample.
            self.fold_calm();
        }
        self.calm.from = Some(now);
        self.calm.until = None;
    }

    /// Folds the closing sample into the loss ratio, if it holds enough.
    fn fold_closing(&mut self) {
        if let Some(closing) = self.closing.take() {
            self.fold_sample(&closing);
        }
    }

    /// Folds the calm sample into the loss ratio, if it holds enough, and
    /// closes it.
    fn fold_calm(&mut self) {
        let calm = self.calm;
        if self.fold_sample(&calm) {
            self.calm = CalmSample::default();
        } else {
            self.calm.from = None;
        }
    }

    /// Folds `sample` into the loss ratio if it holds enough sends.
    fn fold_sample(&mut self, sample: &CalmSample) -> bool {
        if sample.ratio().is_some() {
            // Pooled, not averaged: a short sample (Startup's first rounds
            // hold a few dozen sends, where a chance loss or two reads as
            // several percent) weighs as little as it says, and the
            // estimate does not run high for many cycles after it.
            let (lost, total) = (sample.lost as f64, (sample.lost + sample.delivered) as f64);
            let (pooled_lost, pooled_total) = self.calm_pooled;
            self.calm_pooled = (pooled_lost * 0.75 + lost, pooled_total * 0.75 + total);
            self.loss_ratio = (self.calm_pooled.0 / self.calm_pooled.1).min(MAX_LOSS_RATIO);
            self.calm_samples_taken += 1;
            true
        } else {
            false
        }
    }

    /// A message sent at `sent_at` while cruising came back in `rtt`. A
    /// cruise paced at the estimate overflows no queue as long as none
    /// builds, so its sends belong to the calm sample, the path's random
    /// loss (most of the time a flow runs: a sample of the drain phases
    /// alone, a few hundred sends per probe cycle, reads a 2% loss as
    /// anything from 0.5% to 4%). The first send that met a queue ends
    /// the sample: what it and later sends lose may be the queue's.
    fn on_cruise_rtt(&mut self, rtt: u64, sent_at: u64) {
        let Mode::ProbeBw {
            phase: CRUISE,
            since,
        } = self.mode
        else {
            return;
        };
        let Some((min_rtt, _)) = self.min_rtt else {
            return;
        };
        if sent_at < since || self.calm.from.is_none() || self.calm.until.is_some() {
            return;
        }
        if rtt > cruise_queue_threshold(min_rtt) {
            self.end_calm(sent_at.max(self.calm.from.unwrap_or(sent_at)));
        }
    }

    /// Sends from `now` on may overflow a queue again.
    fn end_calm(&mut self, now: u64) {
        if self.calm.until.is_none() {
            self.calm.until = Some(now);
        }
    }

    fn enter_phase(&mut self, phase: usize, now: u64) {
        if phase == PROBE_UP && self.probed_far_below() {
            self.restart_startup(now);
            return;
        }
        if phase == CRUISE {
            if let Some((_, until @ None)) = &mut self.probe_sent {
                *until = Some(now);
            }
        }
        match phase {
            PROBE_DOWN => self.begin_calm(now),
            // Cruising at the estimate overflows no queue either: the
            // sample goes on until a queue shows (see `on_cruise_rtt`).
            CRUISE => {}
            _ => self.end_calm(now),
        }
        if phase == PROBE_UP || self.probe_epoch <= self.round {
            // A new epoch of the filter, which keeps the previous one.
            self.probe_epoch = self.probe_epoch.max(self.round) + 1;
            let (epoch, span) = self.bw_epoch();
            let max = self.bw.max;
            self.mode = Mode::ProbeBw { phase, since: now };
            self.bw.update(epoch, span, max);
        }
        if phase == PROBE_UP {
            self.probe_sent = Some((now, None));
            self.probe_max_rtt = 0;
            self.busy = LossSample::since(now);
            self.cycles = self.cycles.wrapping_add(1);
            self.bw_at_probe = self.bw.max;
        }
        self.mode = Mode::ProbeBw { phase, since: now };
    }

    /// A probe begins: whether the last [`FAR_BELOW_PROBES`] each raised
    /// the estimate by nearly all a probe can, so that Startup should take
    /// over again.
    fn probed_far_below(&mut self) -> bool {
        if self.bw_at_probe > 0.0 && self.bw.max >= self.bw_at_probe * PROBE_FAR_BELOW {
            self.far_below_probes += 1;
        } else {
            self.far_below_probes = 0;
        }
        self.far_below_probes >= FAR_BELOW_PROBES
    }

    /// Startup again, from the estimate reached: it doubles the rate each
    /// round trip until the path is full, where probes add a quarter every
    /// few.
    fn restart_startup(&mut self, now: u64) {
        self.far_below_probes = 0;
        self.end_calm(now);
        // Startup's filter epochs are rounds: they go on from the probes'.
        self.round = self.round.max(self.probe_epoch);
        let (epoch, span) = (self.round, BW_ROUNDS as u64);
        let max = self.bw.max;
        self.bw.update(epoch, span, max);
        self.mode = Mode::Startup;
        self.full_bw = max;
        self.full_bw_rounds = 0;
        self.probe_sent = None;
        self.bw_at_probe = 0.0;
        self.busy = LossSample::since(now);
    }

    fn update_mode(&mut self, now: u64) {
        let (Some(bdp), Some((min_rtt, _))) = (self.bdp(), self.min_rtt) else {
            return;
        };
        let in_flight = self.in_flight as f64;
        match self.mode {
            Mode::Startup => {}
            Mode::Drain => {
                // The window never goes below the initial one, which may
                // exceed a short path's BDP.
                if in_flight <= bdp.max(f64::from(self.initial_window)) {
                    // Cruise first: the flow just measured the path.
                    self.enter_phase(CRUISE, now);
                }
            }
            Mode::ProbeBw { phase, since } => {
                // In nanoseconds: this runs once per delivery.
                let elapsed = now.saturating_sub(since);
                let min_rtt_ns = min_rtt;
                let next = match phase {
                    // At least an eighth of the minimum RTT: enough to
                    // raise the estimate by 3% when the path has more.
                    PROBE_UP => (elapsed >= min_rtt_ns
                        || self.queue_depth.is_some_and(|depth| {
                            elapsed >= depth.saturating_mul(2).max(min_rtt_ns / 8)
                        }))
                    .then_some(PROBE_DOWN),
                    PROBE_DOWN => (elapsed >= min_rtt_ns || in_flight <= bdp).then_some(CRUISE),
                    // A queue builds while cruising (the estimate runs a
                    // little high): drain it before it overflows.
                    _ if elapsed >= Self::cruise_drain_wait(min_rtt_ns)
                        && self.cruise_queue_stands(min_rtt) =>
                    {
                        // The estimate runs high: the queue would fill
                        // again after the drain without a trim.
                        let trimmed = self.bw.max * QUEUE_TRIM;
                        self.bw.cap(trimmed);
                        // What is queued was sent at the rate that built
                        // the queue: its samples may not restore it.
                        self.cut = Some((trimmed, now));
                        Some(PROBE_DOWN)
                    }
                    // Probe again soon while probes pay off.
                    _ => (elapsed >= self.cruise_time(min_rtt_ns)
                        || (elapsed >= min_rtt_ns.saturating_mul(2)
                            && self.bw.max > self.bw_at_probe * PROBE_PAID))
                        .then_some(PROBE_UP),
                };
                if let Some(next) = next {
                    self.enter_phase(next, now);
                }
            }
        }
    }
}

/// A duration in whole nanoseconds (the constants here are far below
/// `u64::MAX`, 584 years).
const fn nanos(duration: Duration) -> u64 {
    duration.as_nanos() as u64
}

/// An RTT above this, in nanoseconds, shows a queue while cruising: the
/// minimum and [`CRUISE_QUEUE`] (or a sixteenth of it, if more).
fn cruise_queue_threshold(min_rtt: u64) -> u64 {
    min_rtt.saturating_add((min_rtt / 16).max(nanos(CRUISE_QUEUE)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::congestion::RateSample;

    const RTT: Duration = Duration::from_millis(20);

    /// An instant well after the epoch, so that send times before it
    /// exist.
    const START: u64 = 1_000_000_000;

    fn ns(d: Duration) -> u64 {
        d.as_nanos() as u64
    }

    /// Feeds `rounds` round trips of `per_round` deliveries at `rtt`, with
    /// `lost` losses per round; returns the time reached.
    fn drive(
        bbr: &mut Bbr,
        start: u64,
        rounds: u64,
        per_round: u64,
        rtt: Duration,
        lost: u64,
    ) -> u64 {
        drive_in_flight(bbr, start, rounds, per_round, rtt, lost, per_round)
    }

    /// As [`drive`], with `in_flight` messages in flight throughout (well
    /// above the BDP, a phase that drains lasts its full round trip).
    fn drive_in_flight(
        bbr: &mut Bbr,
        start: u64,
        rounds: u64,
        per_round: u64,
        rtt: Duration,
        lost: u64,
        in_flight: u64,
    ) -> u64 {
        let mut now = start;
        let mut delivered = bbr.next_round_delivered;
        for _ in 0..rounds {
            for i in 0..per_round {
                now += ns(rtt / per_round as u32);
                delivered += 1;
                // Spread over the round, and found lost as RACK would: a
                // round trip and a quarter after it was sent.
                if lost > 0
                    && i % (per_round / lost).max(1) == 0
                    && i / (per_round / lost).max(1) < lost
                {
                    bbr.on_loss(now - ns(rtt + rtt / 4), now, in_flight as usize);
                }
                bbr.on_delivered(&Delivery {
                    sent_at: now - ns(rtt),
                    now,
                    rtt: Some(ns(rtt)),
                    sample: Some(RateSample {
                        delivered: per_round,
                        interval: ns(rtt),
                        app_limited: false,
                        // Sent one round trip (per_round messages) ago.
                        prior_delivered: delivered.saturating_sub(per_round),
                    }),
                    delivered,
                    in_flight: in_flight as usize,
                });
            }
        }
        now
    }

    /// The same deliveries, each at its own instant (`batched` false) or
    /// eight to an instant, as a batch read at once, with their RTTs
    /// spread and a loss now and then. Checks on the way that whenever
    /// `on_delivered_again` says the window's inputs are unchanged, the
    /// window and the pacing interval are.
    fn feed_batches(batched: bool, rtt: Duration) -> Bbr {
        let mut bbr = Bbr::new(16, 100_000);
        let mut now = START;
        let mut delivered = 0u64;
        let mut unchanged = 0;
        for round in 0..60u64 {
            for _ in 0..12 {
                now += ns(rtt) / 12;
                for i in 0..8u64 {
                    delivered += 1;
                    let at = if batched { now } else { now + i };
                    if round % 7 == 3 && i == 5 {
                        bbr.on_loss(at - ns(rtt + rtt / 4), at, 90);
                    }
                    let spread = (i * 37 + round * 11) % 8 * ns(rtt) / 64;
                    let delivery = Delivery {
                        sent_at: at - ns(rtt) - spread,
                        now: at,
                        rtt: Some(ns(rtt) + spread),
                        sample: Some(RateSample {
                            delivered: 96,
                            interval: ns(rtt) + spread,
                            app_limited: false,
                            prior_delivered: delivered.saturating_sub(96),
                        }),
                        delivered,
                        in_flight: 90,
                    };
                    if bbr.takes_again(at) {
                        assert!(batched, "only a batch shares an instant");
                        let before = bbr.window_and_pacing();
                        if !bbr.on_delivered_again(&delivery) {
                            assert_eq!(bbr.window_and_pacing(), before, "round {round}");
                            unchanged += 1;
                        }
                    } else {
                        bbr.on_delivered(&delivery);
                    }
                }
            }
        }
        assert!(!batched || unchanged > 1_000, "{unchanged}");
        bbr
    }

    #[test]
    fn a_batch_read_at_once_moves_the_model_as_its_deliveries_would() {
        // Paced (20 ms) and unpaced (0.2 ms) paths.
        for rtt in [RTT, Duration::from_micros(200)] {
            let (whole, batched) = (feed_batches(false, rtt), feed_batches(true, rtt));
            for bbr in [&whole, &batched] {
                assert!(
                    matches!(bbr.mode, Mode::ProbeBw { .. }),
                    "{rtt:?}: whole {:?} batched {:?} bw {} {}",
                    whole.mode,
                    batched.mode,
                    whole.bw.max,
                    batched.bw.max
                );
            }
            assert_eq!(whole.min_rtt.map(|m| m.0), batched.min_rtt.map(|m| m.0));
            assert_eq!(
                whole.round_delivered + whole.last_round_total,
                batched.round_delivered + batched.last_round_total
            );
            let ratio = batched.bw.max / whole.bw.max;
            assert!(
                (0.95..=1.05).contains(&ratio),
                "{rtt:?}: {} against {}",
                batched.bw.max,
                whole.bw.max
            );
            assert_eq!(
                whole.window_and_pacing(),
                batched.window_and_pacing(),
                "{rtt:?}"
            );
        }
    }

    #[test]
    fn models_the_path_and_leaves_startup() {
        let mut bbr = Bbr::new(16, 100_000);
        drive(&mut bbr, START, 20, 100, RTT, 0);
        assert_ne!(bbr.mode, Mode::Startup);
        // 100 messages per 20 ms: 5,000/s, a BDP of 100.
        assert!((bbr.bw.max - 5_000.0).abs() < 1.0, "{}", bbr.bw.max);
        assert_eq!(bbr.window(), 204);
    }

    #[test]
    fn random_loss_is_learned_below_the_estimate() {
        let mut bbr = Bbr::new(16, 100_000);
        let start = START;
        let now = drive(&mut bbr, start, 20, 100, RTT, 0);
        // 10% loss appears, at the minimum RTT (no queue): read as
        // congestion at first, it is measured in the calm phases that
        // follow (each a round trip long: a fifth more than the BDP is in
        // flight), and is the path's from then on.
        drive_in_flight(&mut bbr, now, 300, 100, RTT, 10, 120);
        assert!(
            (bbr.loss_ratio - 0.1).abs() < 0.03,
            "the loss is learned: {}",
            bbr.loss_ratio
        );
        let _ = now;
    }

    #[test]
    fn calm_samples_are_pooled_by_their_size() {
        let mut bbr = Bbr::new(16, 100_000);
        let now = START;
        // Startup's first sends: four losses of 88, by chance; then a
        // calm phase of 351 sends that loses four.
        for (lost, delivered) in [(4, 84), (4, 347)] {
            bbr.calm = CalmSample {
                from: Some(now),
                until: Some(now),
                lost,
                delivered,
            };
            bbr.fold_calm();
        }
        // Averaged, the short sample weighed as much as three quarters of
        // the estimate (3.7%); pooled, as much as its 66 sends.
        let pooled = (4.0 * 0.75 + 4.0) / (88.0 * 0.75 + 351.0);
        assert_loss_ratio(&bbr, pooled);
        assert_eq!(bbr.calm_samples_taken, 2);
    }

    #[test]
    fn a_closed_calm_sample_is_folded_once_its_losses_are_found() {
        let mut bbr = Bbr::new(16, 100_000);
        let now = drive(&mut bbr, START, 20, 100, RTT, 0);
        let (taken, (pooled_lost, pooled_total)) = (bbr.calm_samples_taken, bbr.calm_pooled);
        // A calm phase of 100 sends: its 70 RECVs are in when the next
        // phase begins, its 30 losses not yet found.
        let (from, until) = (now, now + ns(RTT));
        bbr.calm = CalmSample {
            from: Some(from),
            until: Some(until),
            lost: 0,
            delivered: 70,
        };
        bbr.begin_calm(now + ns(RTT * 2));
        assert_eq!(bbr.calm_samples_taken, taken, "not folded at 0% loss");
        // One cut per round at most: the losses below judge nothing.
        bbr.cut_in_round = true;
        for _ in 0..30 {
            bbr.on_loss(from + ns(RTT / 2), now + ns(RTT * 3), 100);
        }
        assert_eq!(bbr.calm_samples_taken, taken);
        // A send after the phase found lost: the phase's losses are all in.
        bbr.on_loss(until + ns(RTT / 2), now + ns(RTT * 3), 100);
        assert_eq!(bbr.calm_samples_taken, taken + 1);
        let expected = (pooled_lost * 0.75 + 30.0) / (pooled_total * 0.75 + 100.0);
        assert_loss_ratio(&bbr, expected);
    }

    /// The random-loss estimate is `expected`, up to rounding.
    fn assert_loss_ratio(bbr: &Bbr, expected: f64) {
        assert!(
            (bbr.loss_ratio - expected).abs() < 1e-9,
            "{} vs {expected}",
            bbr.loss_ratio
        );
    }

    #[test]
    fn a_cruise_is_sampled_for_random_loss_until_a_queue_shows() {
        let mut bbr = Bbr::new(16, 100_000);
        let now = drive(&mut bbr, START, 20, 100, RTT, 0);
        let now = now + ns(RTT);
        bbr.enter_phase(PROBE_DOWN, now);
        let now = now + ns(RTT);
        bbr.enter_phase(CRUISE, now);
        // Ten rounds of cruise at the minimum RTT, 2% of its sends lost:
        // all of them are the path's random loss.
        let cruise = now;
        let now = drive(&mut bbr, now, 10, 100, RTT, 2);
        assert!(bbr.calm.until.is_none(), "still calm");
        assert_eq!(bbr.calm.from, Some(cruise - ns(RTT)));
        let (lost, delivered) = (bbr.calm.lost, bbr.calm.delivered);
        assert!(lost >= 18 && delivered >= 900, "{lost}/{delivered}");
        // A send that met a queue ends the sample at its send time: what
        // it and later sends lose may be the queue's.
        let queued_at = now - ns(RTT);
        bbr.on_delivered(&Delivery {
            sent_at: queued_at,
            now,
            rtt: Some(ns(RTT + Duration::from_millis(5))),
            sample: None,
            delivered: bbr.next_round_delivered,
            in_flight: 100,
        });
        assert_eq!(bbr.calm.until, Some(queued_at));
        // A later send found lost: the sample is complete and folded,
        // without that loss.
        let (taken, (pooled_lost, pooled_total)) = (bbr.calm_samples_taken, bbr.calm_pooled);
        let (lost, total) = (bbr.calm.lost, bbr.calm.lost + bbr.calm.delivered);
        bbr.on_loss(queued_at + 1, now + ns(RTT / 4), 100);
        assert_eq!(bbr.calm_samples_taken, taken + 1);
        let expected = (pooled_lost * 0.75 + lost as f64) / (pooled_total * 0.75 + total as f64);
        assert_loss_ratio(&bbr, expected);
    }

    #[test]
    fn loss_beyond_the_random_share_cuts() {
        let mut bbr = Bbr::new(16, 100_000);
        let start = START;
        let now = drive(&mut bbr, start, 20, 100, RTT, 0);
        let now = drive(&mut bbr, now, 30, 100, RTT, 2);
        let before = bbr.bw.max;
        // The loss doubles and more, at once: congestion.
        drive(&mut bbr, now, 1, 100, RTT, 10);
        assert!(
            bbr.bw.max <= before * CONGESTION_BETA + 1.0,
            "{} vs {before}",
            bbr.bw.max
        );
    }

    #[test]
    fn loss_with_a_standing_queue_cuts_once_per_round_and_undoes() {
        let mut bbr = Bbr::new(16, 100_000);
        let start = START;
        let now = drive(&mut bbr, start, 20, 100, RTT, 0);
        let before = bbr.bw.max;
        // The RTT rises by half: a standing queue; then several losses in
        // one round cut once.
        let queued = RTT * 3 / 2;
        let now = drive(&mut bbr, now, 2, 100, queued, 0);
        // Sent after the queue showed, found lost a round trip later.
        let (sent, found) = (now + ns(RTT / 2), now + ns(RTT * 2));
        bbr.on_loss(sent, found, 100);
        bbr.on_loss(sent, found, 100);
        bbr.on_loss(sent, found, 100);
        let cut = bbr.bw.max;
        assert!(
            (cut - before * CONGESTION_BETA).abs() < 1.0,
            "{cut} vs {before}"
        );
        // A retransmission proves spurious whose loss the cut was not
        // judged on (a lost RECV, sent after the cut): the cut stands.
        bbr.on_spurious(found + 1);
        assert_eq!(bbr.bw.max, cut);
        // One of the three losses proves spurious: two still make
        // congestion with a queue standing.
        bbr.on_spurious(sent);
        assert_eq!(bbr.bw.max, cut);
        // Two of them: one loss is no congestion, the cut is undone.
        bbr.on_spurious(sent);
        assert_eq!(bbr.bw.max, before);
        // A new round with losses cuts again, once.
        drive(&mut bbr, now, 1, 100, queued, 0);
        bbr.on_loss(now, now, 100);
        bbr.on_loss(now, now, 100);
        assert!(bbr.bw.max < before * 0.9);
    }

    #[test]
    fn losses_of_startups_overshoot_keep_the_estimate() {
        let mut bbr = Bbr::new(16, 100_000);
        let now = drive(&mut bbr, START, 2, 50, RTT, 0);
        assert_eq!(bbr.mode, Mode::Startup);
        let before = bbr.bw.max;
        // A queue ended Startup; the path loses nothing at random.
        bbr.enter_drain(now);
        bbr.calm_samples_taken = 1;
        bbr.loss_ratio = 0.0;
        // What Startup sent beyond the path and its queue is lost: far
        // beyond the random share, congestion. Drain empties what is in
        // flight; the rate Startup measured is the path's and stands.
        for _ in 0..STARTUP_LOSSES * 2 {
            bbr.on_loss(now - ns(RTT / 2), now + ns(RTT), 100);
        }
        assert!(bbr.cut_in_round, "judged congestion");
        assert_eq!(bbr.mode, Mode::Drain);
        assert_eq!(bbr.bw.max, before);
    }

    #[test]
    fn drain_ends_within_the_batch_that_brings_in_flight_to_the_bdp() {
        let mut bbr = Bbr::new(16, 100_000);
        let now = drive(&mut bbr, START, 2, 50, RTT, 0);
        bbr.enter_drain(now);
        let bdp = bbr.bdp().expect("measured");
        // One batch read at once: its first delivery leaves far more than
        // the BDP in flight, the last one less. Between batches the sender
        // refills its window, so no batch's first delivery would see it.
        let at = now + ns(RTT);
        let batch = 8usize;
        let first = bbr.next_round_delivered;
        for i in 0..batch {
            let delivered = first + 1 + i as u64;
            let delivery = Delivery {
                sent_at: at - ns(RTT),
                now: at,
                rtt: Some(ns(RTT)),
                sample: None,
                delivered,
                in_flight: (bdp as usize + batch).saturating_sub(2 * i),
            };
            if bbr.takes_again(at) {
                bbr.on_delivered_again(&delivery);
            } else {
                bbr.on_delivered(&delivery);
                assert_eq!(bbr.mode, Mode::Drain, "above the BDP");
            }
        }
        assert!(matches!(bbr.mode, Mode::ProbeBw { .. }), "{:?}", bbr.mode);
    }

    #[test]
    fn a_probe_that_overflows_falls_back_to_the_rate_before_it() {
        let mut bbr = Bbr::new(16, 100_000);
        let now = drive(&mut bbr, START, 20, 100, RTT, 0);
        let before = bbr.bw.max;
        bbr.enter_phase(PROBE_UP, now);
        // The probe measures a tenth more (the queue it built, being
        // drained), then what it sent is lost at the full queue.
        let (epoch, span) = bbr.bw_epoch();
        bbr.bw.update(epoch, span, before * 1.1);
        let mut control = bbr.clone();
        for _ in 0..3 {
            bbr.on_loss(now + ns(RTT / 2), now + ns(RTT), 100);
        }
        assert!(
            (bbr.bw.max - before).abs() < 1.0,
            "{} vs {before}",
            bbr.bw.max
        );
        // Losses of what was sent after the probe's queue drained cut as
        // usual.
        control.enter_phase(PROBE_DOWN, now + ns(RTT));
        control.enter_phase(CRUISE, now + ns(RTT * 2));
        for _ in 0..3 {
            control.on_loss(now + ns(RTT * 3), now + ns(RTT * 4), 100);
        }
        let cut = before * 1.1 * CONGESTION_BETA;
        assert!((control.bw.max - cut).abs() < 1.0, "{}", control.bw.max);
    }

    #[test]
    fn startup_ends_within_the_round_a_queue_forms_in() {
        let mut bbr = Bbr::new(16, 100_000);
        let mut now = drive(&mut bbr, START, 2, 50, RTT, 0);
        assert_eq!(bbr.mode, Mode::Startup);
        // The round began at the minimum RTT; now every sample shows a
        // queue of 10 ms, and no round ends.
        let deliver = |bbr: &mut Bbr, now: u64| {
            bbr.on_delivered(&Delivery {
                sent_at: now - ns(RTT),
                now,
                rtt: Some(ns(RTT + Duration::from_millis(10))),
                sample: None,
                delivered: 0,
                in_flight: 50,
            });
        };
        for _ in 1..STARTUP_QUEUED_SAMPLES {
            now += ns(Duration::from_micros(100));
            deliver(&mut bbr, now);
        }
        assert_eq!(bbr.mode, Mode::Startup, "jitter-proof: not yet");
        deliver(&mut bbr, now);
        assert_ne!(bbr.mode, Mode::Startup);

        // Unpaced (loopback, with a relay's jitter), a run of late samples
        // says nothing of a queue.
        let rtt = Duration::from_micros(200);
        let mut bbr = Bbr::new(16, 100_000);
        let mut now = drive(&mut bbr, START, 2, 50, rtt, 0);
        for _ in 0..STARTUP_QUEUED_SAMPLES * 2 {
            now += ns(Duration::from_micros(10));
            bbr.on_delivered(&Delivery {
                sent_at: now - ns(rtt),
                now,
                rtt: Some(ns(Duration::from_millis(3))),
                sample: None,
                delivered: 0,
                in_flight: 50,
            });
        }
        assert_eq!(bbr.mode, Mode::Startup);
    }

    #[test]
    fn a_queue_standing_while_cruising_trims_and_its_samples_do_not_undo_it() {
        let mut bbr = Bbr::new(16, 100_000);
        let now = drive(&mut bbr, START, 20, 100, RTT, 0);
        let before = bbr.bw.max;
        let Mode::ProbeBw { since, .. } = bbr.mode else {
            panic!("{:?}", bbr.mode)
        };
        let now = now.max(since + ns(RTT * CRUISE_DRAIN_ROUNDS));
        // Two rounds whose smallest RTT shows a queue of 5 ms.
        bbr.round_min_rtt = Some(ns(RTT + Duration::from_millis(5)));
        bbr.last_round_min_rtt = bbr.round_min_rtt;
        bbr.update_mode(now);
        let trimmed = bbr.bw.max;
        assert!((trimmed - before * QUEUE_TRIM).abs() < 1.0, "{trimmed}");
        // A message sent before the trim, which built the queue, is
        // confirmed at the old rate: the trim stands. One sent after it
        // is believed.
        let delivered = bbr.next_round_delivered;
        let sample = |sent_at: u64, at: u64| Delivery {
            sent_at,
            now: at,
            rtt: None,
            sample: Some(RateSample {
                delivered: 100,
                interval: ns(RTT),
                app_limited: false,
                prior_delivered: 0,
            }),
            delivered,
            in_flight: 100,
        };
        bbr.on_delivered(&sample(now - ns(RTT / 2), now + ns(RTT / 2)));
        assert!(bbr.bw.max <= trimmed + 1e-6, "{} vs {trimmed}", bbr.bw.max);
        bbr.on_delivered(&sample(now + ns(RTT / 2), now + ns(RTT * 3 / 2)));
        assert!(bbr.bw.max > trimmed, "{}", bbr.bw.max);
    }

    #[test]
    fn a_probe_that_finds_the_path_far_above_restarts_startup() {
        let mut bbr = Bbr::new(16, 100_000);
        let now = drive(&mut bbr, START, 20, 100, RTT, 0);
        assert!(matches!(bbr.mode, Mode::ProbeBw { .. }), "{:?}", bbr.mode);
        // The first probe after Startup: nothing to compare with yet.
        bbr.enter_phase(PROBE_UP, now);
        let mut control = bbr.clone();
        // It raised the estimate by a twentieth: the path was nearly full,
        // the next probe comes as usual.
        let (epoch, span) = control.bw_epoch();
        let found = control.bw.max * 1.05;
        control.bw.update(epoch, span, found);
        control.enter_phase(PROBE_UP, now + ns(RTT * 4));
        assert!(matches!(
            control.mode,
            Mode::ProbeBw {
                phase: PROBE_UP,
                ..
            }
        ));
        // It raised it by a quarter, all a probe can: the flow runs far
        // below the path, Startup doubles the rate from there.
        let (epoch, span) = bbr.bw_epoch();
        let found = bbr.bw.max * 1.25;
        bbr.bw.update(epoch, span, found);
        bbr.enter_phase(PROBE_UP, now + ns(RTT * 4));
        assert_eq!(bbr.mode, Mode::Startup);
        assert!(
            (bbr.bw.max - found).abs() < 1e-6,
            "{} vs {found}",
            bbr.bw.max
        );
        assert!((bbr.pacing_gain() - STARTUP_GAIN).abs() < 1e-9);
    }

    #[test]
    fn a_small_random_loss_sample_is_not_trusted_to_be_exact() {
        // Startup's first 52 sends lost nothing: the path's 2% reads as
        // none. A later round loses 8 of 371 (2.2%): no more than 2% beyond
        // what 52 sends can tell from nothing (up to 3/52 is likely).
        let judge = |pooled_sends: f64| {
            let mut bbr = Bbr::new(16, 100_000);
            let now = drive(&mut bbr, START, 2, 50, RTT, 0);
            assert_eq!(bbr.mode, Mode::Startup);
            bbr.calm_samples_taken = 1;
            bbr.calm_pooled = (0.0, pooled_sends);
            bbr.loss_ratio = 0.0;
            bbr.busy = LossSample {
                from: None,
                lost: 7,
                delivered: 363,
            };
            bbr.on_loss(now - ns(RTT / 2), now, 100);
            bbr.mode
        };
        assert_eq!(judge(52.0), Mode::Startup);
        // Twenty thousand sends without a loss do tell: 2.2% is congestion.
        assert_eq!(judge(20_000.0), Mode::Drain);
    }

    #[test]
    fn a_random_share_measured_on_few_sends_does_not_raise_the_estimate() {
        // Startup's first 88 sends lost 5 (on the 200 ms / 2% loss path, by
        // chance): a share of 5.7%. Taken as it stood, it scaled every
        // sample up by 6%, and the cruise after Startup filled the queue.
        // A calm sample of `lost` in `lost + delivered` sends, then a path
        // that carries 100 messages per round trip and loses nothing.
        let after_calm_sample = |lost, delivered| {
            let mut bbr = Bbr::new(16, 100_000);
            bbr.calm = CalmSample {
                from: Some(START),
                until: Some(START + 1),
                lost,
                delivered,
            };
            drive(&mut bbr, START + ns(RTT), 3, 100, RTT, 0);
            bbr
        };
        let bbr = after_calm_sample(5, 83);
        let carried = 100.0 / RTT.as_secs_f64();
        assert!((bbr.random_loss() - 5.0 / 88.0).abs() < 1e-9);
        assert!(bbr.bw.max <= carried * 1.01, "{} vs {carried}", bbr.bw.max);
        // A share measured on many sends is trusted nearly as it stands.
        let bbr = after_calm_sample(500, 8_300);
        let scaled = carried / (1.0 - 500.0 / 8_800.0);
        assert!(
            bbr.bw.max >= scaled * 0.99 && bbr.bw.max <= scaled,
            "{} vs {scaled}",
            bbr.bw.max
        );
    }

    #[test]
    fn a_probe_after_one_that_overflowed_lasts_twice_the_queue_it_met() {
        let mut bbr = Bbr::new(16, 100_000);
        let now = drive(&mut bbr, START, 20, 100, RTT, 0);
        bbr.enter_phase(PROBE_UP, now);
        let mut control = bbr.clone();
        // What the probe sent met a queue of 4 ms, then overflowed it.
        let queue = Duration::from_millis(4);
        bbr.on_delivered(&Delivery {
            sent_at: now + 1,
            now: now + ns(RTT + queue),
            rtt: Some(ns(RTT + queue)),
            sample: None,
            delivered: bbr.next_round_delivered,
            in_flight: 100,
        });
        for _ in 0..3 {
            bbr.on_loss(now + ns(RTT / 2), now + ns(RTT + queue), 100);
        }
        assert!(bbr.cut_in_round, "judged congestion");
        assert_eq!(bbr.queue_depth, Some(ns(queue)));
        // The next probe puts half that queue in flight beyond the
        // estimate (a quarter more for twice its depth), and drains; one
        // that never overflowed probes for a whole minimum RTT.
        let later = now + ns(RTT * 40);
        for bbr in [&mut bbr, &mut control] {
            bbr.cut_in_round = false;
            bbr.far_below_probes = 0;
            bbr.bw_at_probe = bbr.bw.max;
            bbr.enter_phase(PROBE_UP, later);
            bbr.update_mode(later + ns(queue * 2) + 1);
        }
        assert!(
            matches!(
                bbr.mode,
                Mode::ProbeBw {
                    phase: PROBE_DOWN,
                    ..
                }
            ),
            "{:?}",
            bbr.mode
        );
        assert!(
            matches!(
                control.mode,
                Mode::ProbeBw {
                    phase: PROBE_UP,
                    ..
                }
            ),
            "{:?}",
            control.mode
        );
    }

    #[test]
    fn paces_at_the_estimate_with_the_phase_gain() {
        let mut bbr = Bbr::new(16, 100_000);
        drive(&mut bbr, START, 20, 100, RTT, 0);
        let interval = bbr.pacing_interval().expect("paced");
        let rate = 1.0 / interval.as_secs_f64();
        let expected = bbr.bw.max * bbr.pacing_gain();
        assert!(
            (rate - expected).abs() / expected < 0.01,
            "{rate} vs {expected}"
        );
    }
}
