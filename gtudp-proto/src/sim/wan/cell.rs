//! A cell of the WAN benchmark: its flows, the bottleneck they share and the
//! wire beyond it, as configured. [`WanCell::run`] is in the runner.

use std::fmt;
use std::time::Duration;

use crate::{ConfigError, CongestionAlgorithm};

/// The most flows a cell may have.
pub const MAX_FLOWS: usize = 64;

/// One flow of a [`WanCell`]: a sender and its own receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WanFlow {
    /// The sender's congestion controller.
    pub congestion: CongestionAlgorithm,
    /// Propagation round trip (half each way), before queueing and jitter.
    pub rtt: Duration,
}

/// A cell of the WAN benchmark: flows, the bottleneck they share, and the
/// wire beyond it. See the [module docs](super).
#[derive(Clone, Debug, PartialEq)]
pub struct WanCell {
    /// The flows, at least one and at most [`MAX_FLOWS`].
    pub flows: Vec<WanFlow>,
    /// Bottleneck rate in Mbit/s (counting 28 bytes of IPv4 and UDP headers
    /// per datagram besides gtUDP's own).
    pub rate_mbit: f64,
    /// Probability that a datagram is lost on the wire after the bottleneck,
    /// each direction, in `0..1`.
    pub loss: f64,
    /// The longest a datagram waits in the bottleneck's queue (tail drop
    /// beyond).
    pub queue: Duration,
    /// Uniform extra delay in `0..=jitter` per datagram, each direction.
    pub jitter: Duration,
    /// Virtual time the flows send for.
    pub duration: Duration,
    /// Payload bytes per message.
    pub size: usize,
    /// How a message larger than one default datagram (1,452 bytes) is
    /// carried (see [`Carriage`]).
    pub carriage: Carriage,
    /// Seeds the network and the endpoints.
    pub seed: u64,
    /// Record a [`WanSample`](super::WanSample) at every multiple of this
    /// interval; `None` records none. Sampling only observes: the run is the same with or
    /// without it.
    pub sample_every: Option<Duration>,
}

impl WanCell {
    /// One flow with the default controller over `rtt` and a bottleneck of
    /// `rate_mbit`: no loss, no jitter, a 20 ms queue, 10 s of 1,200-byte
    /// messages, seed 1, no samples.
    pub fn new(rtt: Duration, rate_mbit: f64) -> Self {
        Self {
            flows: vec![WanFlow {
                congestion: CongestionAlgorithm::default(),
                rtt,
            }],
            rate_mbit,
            loss: 0.0,
            queue: Duration::from_millis(20),
            jitter: Duration::ZERO,
            duration: Duration::from_secs(10),
            size: 1200,
            carriage: Carriage::OneDatagram,
            seed: 1,
            sample_every: None,
        }
    }

    /// The longest propagation RTT among the flows.
    pub fn max_rtt(&self) -> Duration {
        self.flows
            .iter()
            .map(|f| f.rtt)
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// Refuses a cell out of range, saying what is wrong.
    pub(super) fn check(&self) -> Result<(), WanError> {
        let invalid = |what: &str| Err(WanError::Invalid(what.to_string()));
        if self.flows.is_empty() || self.flows.len() > MAX_FLOWS {
            return invalid("a cell needs 1 to 64 flows");
        }
        if self.flows.iter().any(|f| f.rtt.is_zero()) {
            return invalid("every flow's RTT must be above 0");
        }
        if !(self.rate_mbit > 0.0 && self.rate_mbit.is_finite()) {
            return invalid("the rate must be above 0");
        }
        if !(0.0..1.0).contains(&self.loss) {
            return invalid("the loss must be in 0..1");
        }
        if self.duration.is_zero() {
            return invalid("the duration must be above 0");
        }
        if self.sample_every.is_some_and(|every| every.is_zero()) {
            return invalid("the sample interval must be above 0");
        }
        Ok(())
    }
}

/// How a cell carries messages larger than one default datagram.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Carriage {
    /// One datagram per message, as large as the message (the endpoints'
    /// `max_datagram_size` is raised to fit), lost as a whole at the
    /// cell's loss rate.
    #[default]
    OneDatagram,
    /// One datagram per message, in IP fragments of 1,480 bytes that are
    /// each lost at the cell's loss rate: the datagram arrives only if all
    /// of them do (see [`LinkProfile::ip_fragment_mtu`](crate::sim::LinkProfile)).
    IpFragments,
    /// The large-message extension: fragments of one 1,452-byte datagram
    /// each, confirmed and resent on their own.
    Fragments,
}

/// Why a [`WanCell`] did not run.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WanError {
    /// A parameter of the cell is out of range (said which).
    Invalid(String),
    /// The endpoints refused the configuration the cell needs.
    Config(ConfigError),
}

impl fmt::Display for WanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(what) => f.write_str(what),
            Self::Config(error) => write!(f, "configuration refused: {error}"),
        }
    }
}

impl std::error::Error for WanError {}

impl From<ConfigError> for WanError {
    fn from(error: ConfigError) -> Self {
        Self::Config(error)
    }
}
