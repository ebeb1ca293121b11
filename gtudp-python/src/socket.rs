//! [`Socket`]: the Rust blocking socket (`gtudp_mio::BlockingSocket`)
//! behind the Python `GTUDP` class.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use gtudp_mio::{BlockingOptions, BlockingSocket, CloseSummary, DeliveryError, RecvError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};

use crate::address::{self, Family, Lookup};
use crate::config::{duration, settings};
use crate::debug::Watch;
use crate::delivery::{Delivery, WAIT_SLICE};
use crate::errors::{self, bind_error, closed, delivery_error, recv_error};
use crate::{payload, stats};

/// A gtUDP socket on a background thread, over a duplicate of a Python
/// socket's file descriptor. Methods that wait release the GIL.
#[pyclass(module = "gtudp._native", name = "Socket", frozen)]
pub(crate) struct Socket {
    /// `None` once closed.
    inner: Mutex<Option<Arc<BlockingSocket>>>,
    family: Family,
    local: SocketAddr,
    max_payload: usize,
    /// The summary of the close, for later `close` calls.
    summary: Mutex<Option<CloseSummary>>,
    /// Prints this socket's datagrams while it is open (`debug=True`).
    watch: Mutex<Option<Watch>>,
}

impl Socket {
    fn socket(&self, py: Python<'_>) -> PyResult<Arc<BlockingSocket>> {
        lock(&self.inner)
            .clone()
            .ok_or_else(|| closed(py, "the gtUDP socket has been cleaned up"))
    }

    fn addr(&self, addr: &Bound<'_, PyAny>) -> PyResult<SocketAddr> {
        address::from_py(addr, self.family, Lookup::Resolve)
    }
}

#[pymethods]
impl Socket {
    /// Takes over a duplicate of `fd` (a bound UDP socket of family
    /// `family`), configured by `options` (see `gtudp.GTUDP`).
    #[new]
    #[pyo3(signature = (fd, family, debug = false, magic_numbers = b"".as_slice(), recv_from_any = false, options = None))]
    fn new(
        py: Python<'_>,
        fd: i64,
        family: i32,
        debug: bool,
        magic_numbers: &[u8],
        recv_from_any: bool,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let family = Family::from_af(py, family)?;
        let settings = settings(magic_numbers, recv_from_any, options)?;
        let std_socket = crate::fd::duplicate(fd)?;
        let local = std_socket.local_addr()?;
        // Printing must be on before the thread sends or reads anything.
        let watch = debug.then(|| Watch::new(local));
        let max_payload = settings.config.max_payload_size();
        let options = BlockingOptions::default().with_receive_queue(settings.receive_queue);
        let socket = py
            .detach(|| BlockingSocket::with_options(std_socket, settings.config, options))
            .map_err(bind_error)?;
        Ok(Socket {
            inner: Mutex::new(Some(Arc::new(socket))),
            family,
            local,
            max_payload,
            summary: Mutex::new(None),
            watch: Mutex::new(watch),
        })
    }

    /// The local address, as `socket.getsockname()` gives it.
    #[getter]
    fn local_addr<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        address::to_py(py, self.local)
    }

    /// The largest payload one message can carry.
    #[getter]
    fn max_payload_size(&self) -> usize {
        self.max_payload
    }

    /// Starts a guaranteed send and returns its handle at once.
    #[pyo3(signature = (data, addr))]
    fn sendto(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        addr: &Bound<'_, PyAny>,
    ) -> PyResult<Delivery> {
        let payload = payload::from_py(data)?;
        let to = self.addr(addr)?;
        let socket = self.socket(py)?;
        match py.detach(|| socket.send_to(payload, to)) {
            Ok(pending) => Ok(Delivery::new(pending)),
            Err(error @ DeliveryError::Refused { .. }) => Err(delivery_error(py, error)),
            Err(error) => Ok(Delivery::resolved(to, Err(error))),
        }
    }

    /// Sends and waits: `True` once delivered, `False` when delivery failed
    /// or `timeout` seconds passed first.
    #[pyo3(signature = (data, addr, timeout = None))]
    fn sendto_blocking(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        addr: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<bool> {
        let deadline = match timeout {
            None => None,
            Some(secs) => Instant::now().checked_add(duration("timeout", secs)?),
        };
        let delivery = self.sendto(py, data, addr)?;
        Ok(matches!(delivery.outcome(py, deadline)?, Some(Ok(()))))
    }

    /// The next message as `(payload, address, foreign)`; waits at most
    /// `timeout` seconds (`None`: without limit, `0`: not at all), then
    /// raises `gtudp.Timeout`.
    #[pyo3(signature = (timeout = None, length = None))]
    fn recv<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<f64>,
        length: Option<usize>,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyTuple>, bool)> {
        let socket = self.socket(py)?;
        let deadline = match timeout {
            None => None,
            // A timeout too long to represent waits without one.
            Some(secs) => Instant::now().checked_add(duration("timeout", secs)?),
        };
        loop {
            let slice = match deadline {
                None => WAIT_SLICE,
                Some(deadline) => deadline
                    .saturating_duration_since(Instant::now())
                    .min(WAIT_SLICE),
            };
            match py.detach(|| socket.recv_timeout(slice)) {
                Ok(datagram) => {
                    return Ok((
                        payload::to_py(py, &datagram.payload, length),
                        address::to_py(py, datagram.from)?,
                        datagram.foreign,
                    ))
                }
                Err(RecvError::TimedOut) => {
                    if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                        return Err(errors::timeout(py, "timed out"));
                    }
                    py.check_signals()?;
                }
                Err(error) => return Err(recv_error(py, error)),
            }
        }
    }

    /// Counters of the endpoint and the socket I/O, as a dict.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        if let Some(summary) = &*lock(&self.summary) {
            return stats::socket(py, &summary.stats);
        }
        let socket = self.socket(py)?;
        stats::socket(py, &socket.stats())
    }

    /// Closes: messages in flight and RECVs awaiting their ACK are resolved
    /// until done or the drain deadline; returns the summary (the same one
    /// on every later call).
    #[pyo3(signature = (timeout = None))]
    fn close<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyDict>> {
        let _ = timeout.map(|secs| duration("timeout", secs)).transpose()?;
        let taken = lock(&self.inner).take();
        if let Some(socket) = taken {
            let summary = py.detach(|| match Arc::try_unwrap(socket) {
                Ok(socket) => Some(socket.close()),
                Err(_shared) => None,
            });
            if let Some(summary) = summary {
                *lock(&self.summary) = Some(summary);
            }
        }
        lock(&self.watch).take();
        match &*lock(&self.summary) {
            Some(summary) => stats::summary(py, summary),
            None => Err(closed(
                py,
                "closed while another thread was using the socket",
            )),
        }
    }

    /// Whether `close` has been called.
    #[getter]
    fn closed(&self) -> bool {
        lock(&self.inner).is_none()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
