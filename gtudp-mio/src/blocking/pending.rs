//! [`PendingSend`]: the outcome of one [`BlockingSocket::send_to`], to wait
//! for.
//!
//! [`BlockingSocket::send_to`]: crate::BlockingSocket::send_to

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gtudp_io::Delivered;
use gtudp_proto::MessageId;

use super::core::Shared;
use crate::completion::Key;
use crate::error::DeliveryError;

/// The outcome of one [`BlockingSocket::send_to`](crate::BlockingSocket::send_to),
/// to wait for.
///
/// Dropping it does not cancel the message; its outcome is then discarded.
#[derive(Debug)]
#[must_use = "a PendingSend only reports the outcome; drop it explicitly if the outcome does not matter"]
pub struct PendingSend {
    shared: Arc<Shared>,
    /// The send's slot in the socket's completions; `None` once the
    /// outcome was taken.
    key: Cell<Option<Key>>,
    to: SocketAddr,
    ticket: u64,
    /// The endpoint's id for the message.
    message: MessageId,
}

impl PendingSend {
    pub(crate) fn new(
        shared: Arc<Shared>,
        key: Key,
        to: SocketAddr,
        ticket: u64,
        message: MessageId,
    ) -> Self {
        Self {
            shared,
            key: Cell::new(Some(key)),
            to,
            ticket,
            message,
        }
    }

    /// Where the message is going (an IPv4-mapped address in plain IPv4
    /// form, [`gtudp_proto::canonical_addr`]).
    pub fn destination(&self) -> SocketAddr {
        self.to
    }

    /// A number naming this send among the socket's sends, for logs.
    pub fn id(&self) -> u64 {
        self.ticket
    }

    /// Stops trying to deliver the message and blocks until its outcome is
    /// known: an error with
    /// [`FailureReason::Cancelled`](gtudp_proto::FailureReason), or
    /// [`Delivered`] if the RECV won the race. A cancelled payload may still have
    /// arrived. The outcome is taken: later waits report
    /// [`DeliveryError::Closed`].
    pub fn cancel(&self) -> Result<Delivered, DeliveryError> {
        if self.key.get().is_none() {
            return Err(DeliveryError::Closed);
        }
        {
            let mut core = self.shared.lock();
            // The endpoint never gives an id twice: one that resolved
            // already is unknown to it, and its outcome is out.
            if core.pending.contains_key(&self.message) && core.driver.cancel(self.message).is_ok()
            {
                let now = Instant::now();
                core.driver.flush(now);
                core.deliver();
                self.shared.settle(&mut core, false);
            }
        }
        self.take(None).unwrap_or(Err(DeliveryError::Closed))
    }

    /// Blocks until the message is delivered or failed (the original's
    /// wished-for "blocking variant of sendto() that returns if
    /// transmission was successful"). `wait()?` only checks for success;
    /// keep the [`Delivered`] to learn more, such as whether the message was
    /// [suspected lost](Delivered::suspected_lost) on the way.
    pub fn wait(self) -> Result<Delivered, DeliveryError> {
        self.take(None).unwrap_or(Err(DeliveryError::Closed))
    }

    /// Blocks for at most `timeout`; `None` if the outcome is not known
    /// yet (the message is still being tried; call again).
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Result<Delivered, DeliveryError>> {
        // A timeout too long to represent waits without one.
        self.take(Instant::now().checked_add(timeout))
    }

    /// The outcome if it is known, without blocking.
    pub fn try_wait(&self) -> Option<Result<Delivered, DeliveryError>> {
        self.take(Some(Instant::now()))
    }

    /// Waits for the outcome until `deadline` (or without one) and takes
    /// it. Once taken, later calls report [`DeliveryError::Closed`].
    fn take(&self, deadline: Option<Instant>) -> Option<Result<Delivered, DeliveryError>> {
        let Some(key) = self.key.get() else {
            return Some(Err(DeliveryError::Closed));
        };
        let completions = &self.shared.completions;
        let outcome = match completions.wait(key, Some(Instant::now())) {
            Some(outcome) => Some(outcome),
            // Not known yet, and the caller will wait: drive the socket
            // meanwhile (or wait for whoever does).
            None if deadline.is_none_or(|deadline| deadline > Instant::now()) => {
                self.shared.wait_for_outcome(key, deadline)
            }
            None => None,
        };
        if outcome.is_some() {
            self.key.set(None);
        }
        outcome
    }
}

impl Drop for PendingSend {
    /// Leaves the message to the socket: it is still delivered or fails,
    /// unobserved.
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.shared.completions.abandon(key);
        }
    }
}
