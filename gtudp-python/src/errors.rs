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

static TIMEOUT: Class = Class::new("gtudp._errors", "Timeout");
static CLOSED: Class = Class::new("gtudp._errors", "Closed");
static REFUSED: Class = Class::new("gtudp._errors", "Refused");
static GAIERROR: Class = Class::new("socket", "gaierror");

/// Looks the exception classes up as `gtudp._native` loads (the `gtudp`
/// package has imported `gtudp._errors` by then), so that raising one
/// later neither imports nor releases the GIL: `Closed` is what a call
/// from a daemon thread raises once the interpreter exits, when a thread
/// that takes the GIL back inside this extension aborts the process (see
/// `crate::exit`).
pub(crate) fn init(py: Python<'_>) -> PyResult<()> {
    for class in [&TIMEOUT, &CLOSED, &REFUSED, &GAIERROR] {
        class.get(py)?;
    }
    Ok(())
}

/// An exception class, looked up once.
struct Class {
    cell: PyOnceLock<Py<PyType>>,
    module: &'static str,
    name: &'static str,
}

impl Class {
    const fn new(module: &'static str, name: &'static str) -> Self {
        Class {
            cell: PyOnceLock::new(),
            module,
            name,
        }
    }

    /// The class, looked up with the GIL held throughout (never through
    /// `PyOnceLock::import` or `get_or_init`, which release the GIL while
    /// they initialise the cell or wait for another thread to, outside
    /// `crate::exit::detach`). Two threads may both look it up the first
    /// time; the first one stored is kept.
    fn get<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyType>> {
        if let Some(class) = self.cell.get(py) {
            return Ok(class.bind(py).clone());
        }
        let class = py
            .import(self.module)?
            .getattr(self.name)?
            .cast_into::<PyType>()?;
        let _ = self.cell.set(py, class.clone().unbind());
        Ok(class)
    }
}

/// `gtudp.Timeout` (also a `queue.Empty` and a `TimeoutError`): nothing
/// arrived in time, or nothing was queued in non-blocking mode.
pub(crate) fn timeout(py: Python<'_>, message: impl Display) -> PyErr {
    module_error(py, &TIMEOUT, message)
}

/// `gtudp.Closed` (an `OSError`): the socket has been cleaned up.
pub(crate) fn closed(py: Python<'_>, message: impl Display) -> PyErr {
    module_error(py, &CLOSED, message)
}

/// `gtudp.Refused`: a configured limit refused a message; retry later.
pub(crate) fn refused(py: Python<'_>, message: impl Display) -> PyErr {
    module_error(py, &REFUSED, message)
}

/// `ValueError` carrying `message`.
pub(crate) fn value_error(message: impl Display) -> PyErr {
    PyValueError::new_err(message.to_string())
}

/// `TypeError` carrying `message`.
pub(crate) fn type_error(message: impl Display) -> PyErr {
    PyTypeError::new_err(message.to_string())
}

/// `socket.gaierror` (a name lookup failed) carrying `message`.
pub(crate) fn gaierror(py: Python<'_>, message: impl Display) -> PyErr {
    module_error(py, &GAIERROR, message)
}

fn module_error(py: Python<'_>, class: &Class, message: impl Display) -> PyErr {
    match class.get(py) {
        Ok(class) => PyErr::from_type(class, message.to_string()),
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
