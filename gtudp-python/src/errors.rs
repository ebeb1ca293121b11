//! Rust errors as Python exceptions: `ValueError` for a bad argument or
//! configuration (with the Rust error's message, or one in Python's terms
//! where the Rust one names Rust items), and the module's own
//! exceptions (defined in `gtudp/_errors.py`) for what a caller handles.

use std::fmt::Display;

use gtudp_mio::{BindError, DeliveryError, RecvError, SendErrorKind};
use gtudp_proto::SendRawError;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

static TIMEOUT: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static CLOSED: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static REFUSED: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `gtudp.Timeout` (also a `queue.Empty` and a `TimeoutError`): nothing
/// arrived in time, or nothing was queued in non-blocking mode.
pub(crate) fn timeout(py: Python<'_>, message: impl Display) -> PyErr {
    module_error(py, &TIMEOUT, "Timeout", message)
}

/// `gtudp.Closed` (an `OSError`): the socket has been cleaned up.
pub(crate) fn closed(py: Python<'_>, message: impl Display) -> PyErr {
    module_error(py, &CLOSED, "Closed", message)
}

/// `gtudp.Refused`: a configured limit refused a message; retry later.
pub(crate) fn refused(py: Python<'_>, message: impl Display) -> PyErr {
    module_error(py, &REFUSED, "Refused", message)
}

/// `ValueError` carrying `message`.
pub(crate) fn value_error(message: impl Display) -> PyErr {
    PyValueError::new_err(message.to_string())
}

/// `TypeError` carrying `message`.
pub(crate) fn type_error(message: impl Display) -> PyErr {
    PyTypeError::new_err(message.to_string())
}

fn module_error(
    py: Python<'_>,
    cell: &'static PyOnceLock<Py<PyType>>,
    name: &str,
    message: impl Display,
) -> PyErr {
    match cell.import(py, "gtudp._errors", name) {
        Ok(class) => PyErr::from_type(class.clone(), message.to_string()),
        Err(error) => error,
    }
}

/// A socket could not be set up.
pub(crate) fn bind_error(error: BindError) -> PyErr {
    match error {
        BindError::Io(io) => io.into(),
        other => value_error(other),
    }
}

/// A send the endpoint refused before trying it.
pub(crate) fn send_refused(py: Python<'_>, kind: SendErrorKind, message: impl Display) -> PyErr {
    match kind {
        SendErrorKind::PayloadTooLarge { size, max } => value_error(payload_too_large(size, max)),
        SendErrorKind::InvalidAttempts { .. } | SendErrorKind::DeadlineInPast => {
            value_error(message)
        }
        SendErrorKind::Closing => closed(py, message),
        _ => refused(py, message),
    }
}

/// The payload limit in Python's terms (the Rust message names
/// `Config::max_datagram_size`): the sizes in bytes, and the keyword option
/// of `gtudp.GTUDP` and `gtudp.aio.create_socket` that sets the limit.
pub(crate) fn payload_too_large(size: usize, max: usize) -> String {
    format!(
        "payload of {size} bytes exceeds max_payload_size ({max} bytes); split it (a message \
         is one UDP datagram), or, if max_datagram_size= was set lower on gtudp.GTUDP(...) or \
         gtudp.aio.create_socket(...), raise it (the whole datagram, header included: \
         default and at most {})",
        crate::config::DEFAULT_MAX_DATAGRAM_SIZE,
    )
}

/// A delivery error that stopped a send before it was tried.
pub(crate) fn delivery_error(py: Python<'_>, error: DeliveryError) -> PyErr {
    match error {
        DeliveryError::Refused { kind, .. } => send_refused(py, kind, error),
        other => closed(py, other),
    }
}

/// A raw send the endpoint refused.
pub(crate) fn raw_error(py: Python<'_>, error: SendRawError) -> PyErr {
    match error {
        SendRawError::TooLarge { .. } => value_error(error),
        SendRawError::QueueFull => refused(py, error),
        _ => closed(py, error),
    }
}

/// A receive that returned nothing.
pub(crate) fn recv_error(py: Python<'_>, error: RecvError) -> PyErr {
    match error {
        RecvError::TimedOut => timeout(py, error),
        RecvError::Closed => closed(py, error),
        other => value_error(other),
    }
}
