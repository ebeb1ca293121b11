//! [`Socket`]: the Rust blocking socket (`gtudp_mio::BlockingSocket`)
//! behind the Python `GTUDP` class.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gtudp_mio::{
    BlockingOptions, BlockingSocket, CloseSummary, DeliveryError, EndpointStats, Fragmentation,
    RecvError, SendErrorKind, SendOptions, Stats,
};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};

use crate::address::{self, Family, Lookup};
use crate::config::{duration, settings};
use crate::debug::Watch;
use crate::delivery::Delivery;
use crate::errors::{self, bind_error, delivery_error, recv_error};
use crate::{payload, stats, wait};

/// A gtUDP socket on a background thread, over a duplicate of a Python
/// socket's file descriptor. Methods that wait release the GIL.
#[pyclass(module = "gtudp._native", name = "Socket", frozen)]
pub(crate) struct Socket {
    inner: Arc<BlockingSocket>,
    family: Family,
    local: SocketAddr,
    max_payload: usize,
    /// `Config::max_attempts`, the most a message may ask for.
    max_attempts: u32,
    /// Set when `close` is called, so receivers stop waiting at once.
    closing_started: AtomicBool,
    /// The close, once started (later `close` calls wait for the same).
    closing: Mutex<Option<Arc<Closing>>>,
    /// Prints this socket's datagrams while it is open (`debug=True`).
    watch: Mutex<Option<Watch>>,
}

impl Socket {
    fn socket(&self, _py: Python<'_>) -> PyResult<Arc<BlockingSocket>> {
        Ok(self.inner.clone())
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
    #[pyo3(
        signature = (fd, family, debug = false, magic_numbers = b"".as_slice(), recv_from_any = false, options = None),
        text_signature = "(fd, family, debug=False, magic_numbers=b'', recv_from_any=False, options=None)"
    )]
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
        let max_payload = settings.config.max_message_size();
        let max_attempts = settings.config.max_attempts;
        // As the original's plain socket: the kernel fragments a datagram
        // the path cannot carry whole (Linux; elsewhere the socket keeps
        // don't-fragment, and such a message fails "too_large").
        let fragmentation = if cfg!(target_os = "linux") {
            Fragmentation::Allowed
        } else {
            Fragmentation::Forbidden
        };
        let options = BlockingOptions::default()
            .with_receive_queue(settings.receive_queue)
            .with_fragmentation(fragmentation);
        let socket = crate::exit::detach(py, || {
            BlockingSocket::with_options(std_socket, settings.config, options)
        })?
        .map_err(bind_error)?;
        Ok(Socket {
            inner: Arc::new(socket),
            family,
            local,
            max_payload,
            max_attempts,
            closing_started: AtomicBool::new(false),
            closing: Mutex::new(None),
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

    /// Starts a guaranteed send and returns its handle at once; `deadline`
    /// (seconds from now) and `attempts` bound how long it is tried.
    #[pyo3(signature = (data, addr, deadline = None, attempts = None))]
    fn sendto(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        addr: &Bound<'_, PyAny>,
        deadline: Option<f64>,
        attempts: Option<u32>,
    ) -> PyResult<Delivery> {
        let payload = payload::from_py(data)?;
        let to = self.addr(addr)?;
        let options = send_options(deadline, attempts, self.max_attempts)?;
        let socket = self.socket(py)?;
        match crate::exit::detach(py, || socket.send_to_with(payload, to, options))? {
            Ok(pending) => Ok(Delivery::new(pending)),
            Err(error @ DeliveryError::Refused { .. }) => Err(delivery_error(py, error)),
            Err(error) => Ok(Delivery::resolved(to, Err(error))),
        }
    }

    /// Sends and waits: `True` once delivered, `False` when delivery failed
    /// or `timeout` seconds passed first. The timeout is the message's
    /// deadline, so the endpoint stops trying it then.
    #[pyo3(signature = (data, addr, timeout = None, attempts = None))]
    fn sendto_blocking(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        addr: &Bound<'_, PyAny>,
        timeout: Option<f64>,
        attempts: Option<u32>,
    ) -> PyResult<bool> {
        let delivery = self.sendto(py, data, addr, timeout, attempts)?;
        // The endpoint fails the message at its deadline; the grace covers
        // the thread's turn that reports it.
        let deadline = wait::deadline("timeout", timeout)?
            .and_then(|deadline| deadline.checked_add(DEADLINE_GRACE));
        Ok(matches!(delivery.outcome(py, deadline)?, Some(Ok(_))))
    }

    /// Sends `data` to `addr` as is: no framing, no guarantee (for peers
    /// that do not speak gtUDP).
    fn sendto_raw(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        addr: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let datagram = payload::from_py(data)?;
        let to = self.addr(addr)?;
        let socket = self.socket(py)?;
        crate::exit::detach(py, || socket.send_raw_to(datagram, to))?
            .map_err(|error| errors::raw_error(py, error))
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
    ) -> PyResult<Received<'py>> {
        let socket = self.socket(py)?;
        let deadline = wait::deadline("timeout", timeout)?;
        let received = wait::sliced(py, deadline, |slice| {
            // Once closing, nothing new is taken in: what is queued is
            // handed out, then `Closed`, without waiting for the drain.
            let closing = self.closing_started.load(Ordering::Acquire);
            let slice = if closing { Duration::ZERO } else { slice };
            match socket.recv_timeout(slice) {
                Err(RecvError::TimedOut) if closing => Some(Err(RecvError::Closed)),
                Err(RecvError::TimedOut) => None,
                other => Some(other),
            }
        })?;
        match received {
            Some(Ok(datagram)) => received_to_py(py, &datagram, length),
            Some(Err(error)) => Err(recv_error(py, error)),
            None => Err(errors::timeout(py, "timed out")),
        }
    }

    /// Up to `limit` messages, each as `recv` gives one: waits as `recv`
    /// does for the first, then takes what else has arrived, under one
    /// lock. Raises `gtudp.Timeout` when nothing came in time.
    #[pyo3(signature = (timeout = None, limit = 64, length = None))]
    fn recv_many<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<f64>,
        limit: usize,
        length: Option<usize>,
    ) -> PyResult<Vec<Received<'py>>> {
        let socket = self.socket(py)?;
        let deadline = wait::deadline("timeout", timeout)?;
        if limit == 0 {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "'limit' must be at least 1",
            ));
        }
        let mut taken = Vec::new();
        let received = wait::sliced(py, deadline, |slice| {
            // As `recv`: once closing, what is queued, then `Closed`.
            let closing = self.closing_started.load(Ordering::Acquire);
            let slice = if closing { Duration::ZERO } else { slice };
            match socket.recv_many_timeout(&mut taken, limit, slice) {
                Err(RecvError::TimedOut) if closing => Some(Err(RecvError::Closed)),
                Err(RecvError::TimedOut) => None,
                other => Some(other),
            }
        })?;
        match received {
            Some(Ok(_)) => taken
                .iter()
                .map(|datagram| received_to_py(py, datagram, length))
                .collect(),
            Some(Err(error)) => Err(recv_error(py, error)),
            None => Err(errors::timeout(py, "timed out")),
        }
    }

    /// Counters of the endpoint and the socket I/O, as a dict.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        stats::socket(py, &self.socket(py)?.stats())
    }

    /// What the endpoint knows of one peer (RTT, RTO, window, in flight,
    /// counters), or `None` if it tracks no such peer.
    fn peer_stats<'py>(
        &self,
        py: Python<'py>,
        addr: &Bound<'_, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let peer = self.addr(addr)?;
        self.socket(py)?
            .peer_stats(peer)
            .map(|peer| stats::peer(py, &peer))
            .transpose()
    }

    /// Closes: messages in flight and RECVs awaiting their ACK are resolved
    /// until done or the drain deadline. Returns the summary once the drain
    /// ended, or after `timeout` seconds with what it knows then
    /// (`complete` false; the drain goes on in the background until the
    /// drain deadline). Later calls wait for the same drain.
    #[pyo3(signature = (timeout = None))]
    fn close<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyDict>> {
        let deadline = wait::deadline("timeout", timeout)?;
        let socket = self.socket(py)?;
        self.closing_started.store(true, Ordering::Release);
        let closing = {
            let mut slot = lock(&self.closing);
            match &*slot {
                Some(closing) => closing.clone(),
                None => {
                    let closing = Closing::start(socket.clone(), lock(&self.watch).take())?;
                    *slot = Some(closing.clone());
                    closing
                }
            }
        };
        match closing.wait(py, deadline)? {
            Some(summary) => stats::summary(py, &summary, true),
            None => {
                let partial = closing.partial(&socket.stats());
                stats::summary(py, &partial, false)
            }
        }
    }

    /// Whether `close` has been called.
    #[getter]
    fn closed(&self) -> bool {
        lock(&self.closing).is_some()
    }
}

/// Extra wait past a message's deadline for its failure to be reported.
const DEADLINE_GRACE: Duration = Duration::from_millis(200);

/// Per-message options, checked here so a bad one raises `ValueError` at
/// the call rather than resolving the handle as refused.
fn send_options(
    deadline: Option<f64>,
    attempts: Option<u32>,
    max_attempts: u32,
) -> PyResult<SendOptions> {
    let mut options = SendOptions::default();
    if let Some(secs) = deadline {
        let timeout = duration("deadline", secs)?;
        if timeout.is_zero() {
            return Err(errors::value_error("deadline must be above 0 seconds"));
        }
        options = options.with_timeout(timeout);
    }
    if let Some(attempts) = attempts {
        if attempts == 0 || attempts > max_attempts {
            return Err(errors::value_error(SendErrorKind::InvalidAttempts {
                requested: attempts,
                max: max_attempts,
            }));
        }
        options = options.with_max_attempts(attempts);
    }
    Ok(options)
}

/// A close running on its own thread, so a caller can stop waiting for it
/// (`cleanup(timeout=...)`) while the drain goes on.
struct Closing {
    done: Mutex<Option<CloseSummary>>,
    ready: Condvar,
    started: Instant,
    before: EndpointStats,
}

impl Closing {
    /// Starts closing `socket` on a new thread; `watch` (its debug
    /// printing) ends with the drain.
    fn start(socket: Arc<BlockingSocket>, watch: Option<Watch>) -> PyResult<Arc<Self>> {
        let closing = Arc::new(Closing {
            done: Mutex::new(None),
            ready: Condvar::new(),
            started: Instant::now(),
            before: socket.stats().endpoint,
        });
        let shared = closing.clone();
        std::thread::Builder::new()
            .name(format!("gtudp close {}", socket.local_addr()))
            .spawn(move || {
                let summary = socket
                    .close()
                    .unwrap_or_else(|_| CloseSummary::without_drain(socket.stats()));
                drop(watch);
                *lock(&shared.done) = Some(summary);
                shared.ready.notify_all();
            })?;
        Ok(closing)
    }

    /// The summary once the close ended; `None` if `deadline` came first.
    fn wait(&self, py: Python<'_>, deadline: Option<Instant>) -> PyResult<Option<CloseSummary>> {
        wait::sliced(py, deadline, |slice| {
            let done = lock(&self.done);
            if done.is_some() || slice.is_zero() {
                return *done;
            }
            *self
                .ready
                .wait_timeout(done, slice)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0
        })
    }

    /// What the drain has done so far, for a caller that stopped waiting.
    fn partial(&self, stats: &Stats) -> CloseSummary {
        let mut summary = CloseSummary::without_drain(*stats);
        summary.drained_delivered = stats
            .endpoint
            .delivered
            .saturating_sub(self.before.delivered);
        summary.drained_failed = stats.endpoint.failed.saturating_sub(self.before.failed);
        summary.elapsed = self.started.elapsed();
        summary.deadline_reached = true;
        summary
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A message as `recv` hands it to Python: `(payload, address, foreign)`.
type Received<'py> = (Bound<'py, PyBytes>, Bound<'py, PyTuple>, bool);

/// `datagram` as `recv` hands it over, its payload cut to `length`.
fn received_to_py<'py>(
    py: Python<'py>,
    datagram: &gtudp_mio::Datagram,
    length: Option<usize>,
) -> PyResult<Received<'py>> {
    Ok((
        payload::to_py(py, &datagram.payload, length),
        address::to_py(py, datagram.from)?,
        datagram.is_foreign(),
    ))
}
