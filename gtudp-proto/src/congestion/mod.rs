//! Per-peer congestion control (RFC 8085 section 3.1): how many messages
//! may be in flight to a peer, and how fast they may leave.
//!
//! Two controllers, chosen by [`Config::congestion`](crate::Config):
//!
//! - [`CongestionAlgorithm::Aimd`] (in `aimd`): the original window that
//!   halves on every loss event. Random loss reads as congestion to it.
//! - [`CongestionAlgorithm::Bbr`] (in `bbr`): a model of the path (the
//!   delivery rate it sustains and its minimum RTT), paced sends, and a
//!   response to loss only when the path shows a standing queue.
//!
//! Windows count messages: every DATA is one datagram.

mod aimd;

use std::time::Instant;

use aimd::Aimd;

/// Which congestion controller an endpoint runs for each peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CongestionAlgorithm {
    /// Additive increase, multiplicative decrease: slow start, then one
    /// message more per window delivered; the window halves once per loss
    /// event. Unpaced. The controller of earlier gtudp releases, kept for
    /// comparison and for paths where nothing else sends.
    #[default]
    Aimd,
}

/// What a controller learns from one confirmed delivery.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Delivery {
    /// When the delivered message was last sent.
    pub(crate) sent_at: Instant,
}

/// The controller of one peer.
#[derive(Clone, Debug)]
pub(crate) enum Controller {
    Aimd(Aimd),
}

impl Controller {
    pub(crate) fn new(
        algorithm: CongestionAlgorithm,
        initial_window: u32,
        max_window: u32,
    ) -> Self {
        match algorithm {
            CongestionAlgorithm::Aimd => Self::Aimd(Aimd::new(initial_window, max_window)),
        }
    }

    /// Messages that may be in flight at once.
    pub(crate) fn window(&self) -> u32 {
        match self {
            Self::Aimd(aimd) => aimd.window(),
        }
    }

    /// A message was confirmed delivered.
    pub(crate) fn on_delivered(&mut self, delivery: &Delivery) {
        match self {
            Self::Aimd(aimd) => aimd.on_delivered(delivery.sent_at),
        }
    }

    /// A message last sent at `sent_at` reached its retransmission timeout.
    pub(crate) fn on_timeout(&mut self, sent_at: Instant, now: Instant) {
        match self {
            Self::Aimd(aimd) => aimd.on_loss(sent_at, now),
        }
    }
}
