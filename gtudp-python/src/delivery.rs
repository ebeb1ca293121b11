//! [`Delivery`]: the handle `sendto` returns, to poll or wait for the
//! outcome of one message.

use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use gtudp_mio::{Delivered, DeliveryError, FailureReason, PendingSend};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::address;
use crate::wait;

/// The outcome of one guaranteed send, from `GTUDP.sendto`.
///
/// `wait()` blocks (without the GIL) until the message is delivered or has
/// failed; `done()` and the properties never block. Dropping the handle
/// does not cancel the message: it is still delivered or fails, unobserved.
#[pyclass(module = "gtudp", name = "Delivery", frozen)]
pub(crate) struct Delivery {
    state: Mutex<State>,
    destination: SocketAddr,
}

enum State {
    Pending(PendingSend),
    Done(Result<Delivered, DeliveryError>),
}

impl Delivery {
    pub(crate) fn new(pending: PendingSend) -> Self {
        Delivery {
            destination: pending.destination(),
            state: Mutex::new(State::Pending(pending)),
        }
    }

    /// A send refused before it was tried, as a handle already resolved.
    pub(crate) fn resolved(
        destination: SocketAddr,
        outcome: Result<Delivered, DeliveryError>,
    ) -> Self {
        Delivery {
            destination,
            state: Mutex::new(State::Done(outcome)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The outcome, waiting for it until `deadline` (`None`: no deadline),
    /// without the GIL; `None` if still unknown then.
    pub(crate) fn outcome(
        &self,
        py: Python<'_>,
        deadline: Option<Instant>,
    ) -> PyResult<Option<Result<Delivered, DeliveryError>>> {
        wait::sliced(py, deadline, |slice| {
            let mut state = self.lock();
            if let State::Pending(pending) = &*state {
                let outcome = if slice.is_zero() {
                    pending.try_wait()
                } else {
                    pending.wait_timeout(slice)
                };
                *state = State::Done(outcome?);
            }
            match &*state {
                State::Done(outcome) => Some(outcome.clone()),
                State::Pending(_) => None,
            }
        })
    }

    /// The outcome if it is known, without blocking.
    fn now(&self, py: Python<'_>) -> PyResult<Option<Result<Delivered, DeliveryError>>> {
        self.outcome(py, Some(Instant::now()))
    }
}

#[pymethods]
impl Delivery {
    /// Whether the outcome is known (delivered or failed).
    fn done(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.now(py)?.is_some())
    }

    /// Waits until the message is delivered (`True`) or has failed
    /// (`False`), at most `timeout` seconds if given; `False` too when the
    /// timeout passes first (then `done()` is still `False`).
    #[pyo3(signature = (timeout = None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let deadline = wait::deadline("timeout", timeout)?;
        Ok(matches!(self.outcome(py, deadline)?, Some(Ok(_))))
    }

    /// Stops trying to deliver the message: `True` if this cancelled it (it
    /// now reports failed, reason `"cancelled"`; the payload may still have
    /// arrived), `False` if it had been delivered or had failed already.
    fn cancel(&self, py: Python<'_>) -> PyResult<bool> {
        crate::exit::detach(py, || {
            let mut state = self.lock();
            let State::Pending(pending) = &*state else {
                return false;
            };
            let outcome = pending.cancel();
            let cancelled = matches!(
                outcome,
                Err(DeliveryError::Failed {
                    reason: FailureReason::Cancelled,
                    ..
                })
            );
            *state = State::Done(outcome);
            cancelled
        })
    }

    /// `True` once delivered, `False` once failed, `None` while pending.
    #[getter]
    fn delivered(&self, py: Python<'_>) -> PyResult<Option<bool>> {
        Ok(self.now(py)?.map(|outcome| outcome.is_ok()))
    }

    /// Once delivered, whether the message was suspected lost on the way:
    /// `True` if the sender presumed it lost and resent it (early loss
    /// detection, a tail-loss probe or a retransmission timeout) before the
    /// confirmation came, `False` if not; `None` while pending or once
    /// failed. Either a copy was really lost and the resend recovered it,
    /// or the original was only late: the confirmation does not say which
    /// copy arrived.
    #[getter]
    fn suspected_lost(&self, py: Python<'_>) -> PyResult<Option<bool>> {
        Ok(match self.now(py)? {
            Some(Ok(delivered)) => Some(delivered.suspected_lost),
            _ => None,
        })
    }

    /// Why the message failed, `None` while pending or once delivered:
    /// `"attempts_exhausted"`, `"deadline_expired"`, `"cancelled"`,
    /// `"endpoint_closed"` (the drain deadline of `cleanup`),
    /// `"unvalidated"` (the destination reached us first and never proved
    /// it receives our datagrams; sending more would have exceeded three
    /// times what it sent us), `"unreachable"` (the network reported the
    /// destination unreachable, ICMP), `"too_large"` (the system refused
    /// the datagram as too large for the path; only where IP fragmentation
    /// is off), `"refused"` (a limit refused it; never sent) or `"closed"`
    /// (never sent).
    #[getter]
    fn reason(&self, py: Python<'_>) -> PyResult<Option<&'static str>> {
        Ok(match self.now(py)? {
            Some(Err(error)) => Some(reason_name(&error)),
            _ => None,
        })
    }

    /// The failure in words, `None` while pending or once delivered.
    #[getter]
    fn error(&self, py: Python<'_>) -> PyResult<Option<String>> {
        Ok(match self.now(py)? {
            Some(Err(error)) => Some(error.to_string()),
            _ => None,
        })
    }

    /// Where the message is going.
    #[getter]
    fn destination<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        address::to_py(py, self.destination)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let state = match self.now(py)? {
            None => "pending".to_owned(),
            Some(Ok(delivered)) if delivered.suspected_lost => {
                "delivered (suspected lost)".to_owned()
            }
            Some(Ok(_)) => "delivered".to_owned(),
            Some(Err(error)) => format!("failed: {}", reason_name(&error)),
        };
        Ok(format!("<gtudp.Delivery to {} {state}>", self.destination))
    }
}

/// The short name of why a message failed (as `Delivery.reason` gives it).
pub(crate) fn reason_name(error: &DeliveryError) -> &'static str {
    match error {
        DeliveryError::Failed { reason, .. } => failure_name(*reason),
        DeliveryError::Refused { .. } => "refused",
        _ => "closed",
    }
}

/// The short name of a [`FailureReason`].
pub(crate) fn failure_name(reason: FailureReason) -> &'static str {
    match reason {
        FailureReason::AttemptsExhausted => "attempts_exhausted",
        FailureReason::DeadlineExpired => "deadline_expired",
        FailureReason::Cancelled => "cancelled",
        FailureReason::EndpointClosed => "endpoint_closed",
        FailureReason::Unvalidated => "unvalidated",
        FailureReason::Unreachable => "unreachable",
        FailureReason::TooLarge { .. } => "too_large",
    }
}
