//! Payloads from Python: any bytes-like object (`bytes`, `bytearray`,
//! `memoryview`, ...), copied once into [`Bytes`].

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyMemoryView, PyString};

use crate::config::type_name;
use crate::errors::type_error;

/// The bytes of a bytes-like object. `str` and `int` are refused with the
/// `TypeError` `socket.sendto` gives, rather than encoded or taken as a size.
pub(crate) fn from_py(data: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    if let Ok(bytes) = data.cast::<PyBytes>() {
        return Ok(Bytes::copy_from_slice(bytes.as_bytes()));
    }
    if let Ok(array) = data.cast::<PyByteArray>() {
        return Ok(Bytes::from(array.to_vec()));
    }
    let refuse = || {
        type_error(format!(
            "a bytes-like object is required, not '{}'",
            type_name(data)
        ))
    };
    if data.is_instance_of::<PyString>() || data.is_instance_of::<pyo3::types::PyInt>() {
        return Err(refuse());
    }
    // Other buffer-protocol objects (memoryview, array.array, numpy arrays)
    // through memoryview, which the limited API reaches without PyBuffer
    // (made by the C API, not looked up: an import may run Python code,
    // see `crate::exit`).
    let view = PyMemoryView::from(data).map_err(|_| refuse())?;
    let bytes = view.call_method0("tobytes")?;
    let bytes = bytes.cast::<PyBytes>().map_err(|_| refuse())?;
    Ok(Bytes::copy_from_slice(bytes.as_bytes()))
}

/// A received payload as Python `bytes`, cut to `length` bytes when given.
pub(crate) fn to_py<'py>(
    py: Python<'py>,
    payload: &[u8],
    length: Option<usize>,
) -> Bound<'py, PyBytes> {
    let end = length.map_or(payload.len(), |length| length.min(payload.len()));
    PyBytes::new(py, &payload[..end])
}
