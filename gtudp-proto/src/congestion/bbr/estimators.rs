//! BBR's estimators: the windowed maximum filter behind the bandwidth
//! estimate, and the loss samples that tell the path's random loss from
//! congestion. The state machine in the parent module feeds and reads them.

/// Rounds the bandwidth filter remembers.
pub(super) const BW_ROUNDS: usize = 10;
/// Sends sampled below the estimate before their loss ratio is trusted.
const MIN_CALM_SAMPLES: u64 = 16;
/// The largest loss ratio samples are scaled for.
pub(super) const MAX_LOSS_RATIO: f64 = 0.5;

/// The largest sample per epoch over the last few epochs: rounds in
/// Startup and Drain (the last [`BW_ROUNDS`]), probe cycles in ProbeBw
/// (the last two, as BBRv3: between probes the estimate stands, and only
/// congestion lowers it).
#[derive(Clone, Debug, Default)]
pub(super) struct MaxFilter {
    epochs: [(u64, f64); BW_ROUNDS],
    pub(super) max: f64,
}

impl MaxFilter {
    pub(super) fn update(&mut self, epoch: u64, span: u64, sample: f64) {
        let slot = &mut self.epochs[(epoch % BW_ROUNDS as u64) as usize];
        if slot.0 != epoch {
            *slot = (epoch, 0.0);
            slot.1 = sample;
            self.refresh(epoch, span);
        } else if sample > slot.1 {
            slot.1 = sample;
            self.max = self.max.max(sample);
        }
    }

    pub(super) fn refresh(&mut self, epoch: u64, span: u64) {
        let oldest = epoch.saturating_sub(span.clamp(1, BW_ROUNDS as u64) - 1);
        self.max = self
            .epochs
            .iter()
            .filter(|(e, _)| *e >= oldest && *e <= epoch)
            .map(|(_, v)| *v)
            .fold(0.0, f64::max);
    }

    /// Forgets every sample above `value`.
    pub(super) fn cap(&mut self, value: f64) {
        for slot in &mut self.epochs {
            slot.1 = slot.1.min(value);
        }
        self.max = self.max.min(value);
    }
}

/// The losses and confirmations of what was sent since `from` (in
/// nanoseconds from the endpoint's epoch, as every instant here).
#[derive(Clone, Copy, Debug)]
pub(super) struct LossSample {
    pub(super) from: Option<u64>,
    pub(super) lost: u64,
    pub(super) delivered: u64,
}

impl Default for LossSample {
    /// Counts everything (Startup's sample).
    fn default() -> Self {
        Self {
            from: None,
            lost: 0,
            delivered: 0,
        }
    }
}

impl LossSample {
    pub(super) fn since(from: u64) -> Self {
        Self {
            from: Some(from),
            ..Self::default()
        }
    }

    /// A message sent at `sent_at` was lost or confirmed; true if counted.
    pub(super) fn on_resolved(&mut self, sent_at: u64, lost: bool) -> bool {
        if self.from.is_some_and(|from| sent_at < from) {
            return false;
        }
        if lost {
            self.lost += 1;
        } else {
            self.delivered += 1;
        }
        true
    }
}

/// The losses and confirmations of what was sent from `from` until
/// `until` (open while `None`): a phase that paced below the estimate.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct CalmSample {
    pub(super) from: Option<u64>,
    pub(super) until: Option<u64>,
    pub(super) lost: u64,
    pub(super) delivered: u64,
}

impl CalmSample {
    /// A message sent at `sent_at` was lost or confirmed.
    pub(super) fn on_resolved(&mut self, sent_at: u64, lost: bool) {
        let Some(from) = self.from else {
            return;
        };
        if sent_at < from || self.until.is_some_and(|until| sent_at >= until) {
            return;
        }
        if lost {
            self.lost += 1;
        } else {
            self.delivered += 1;
        }
    }

    /// The sample's loss ratio, once it holds enough sends.
    pub(super) fn ratio(&self) -> Option<f64> {
        let total = self.lost + self.delivered;
        (total >= MIN_CALM_SAMPLES).then(|| (self.lost as f64 / total as f64).min(MAX_LOSS_RATIO))
    }
}
