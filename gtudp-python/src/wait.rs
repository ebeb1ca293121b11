//! Waiting without the GIL, in slices, so signals (Ctrl-C) are handled
//! while a call waits for a message, an outcome or a close.

use std::time::{Duration, Instant};

use pyo3::prelude::*;

use crate::config::duration;

/// How long one slice sleeps with the GIL released before signals are
/// checked.
pub(crate) const SLICE: Duration = Duration::from_millis(100);

/// The deadline `timeout` seconds from now; `None` for no timeout, or for
/// one too long to represent (which waits without one).
pub(crate) fn deadline(name: &str, timeout: Option<f64>) -> PyResult<Option<Instant>> {
    match timeout {
        None => Ok(None),
        Some(secs) => Ok(Instant::now().checked_add(duration(name, secs)?)),
    }
}

/// Calls `attempt` with the GIL released and the time it may block (zero
/// once `deadline` has passed), until it returns a value or the deadline
/// passes (`None`), checking for signals between slices.
pub(crate) fn sliced<T: Send>(
    py: Python<'_>,
    deadline: Option<Instant>,
    mut attempt: impl FnMut(Duration) -> Option<T> + Send,
) -> PyResult<Option<T>> {
    loop {
        let slice = match deadline {
            None => SLICE,
            Some(deadline) => deadline
                .saturating_duration_since(Instant::now())
                .min(SLICE),
        };
        if let Some(value) = crate::exit::detach(py, || attempt(slice))? {
            return Ok(Some(value));
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return Ok(None);
        }
        py.check_signals()?;
    }
}
