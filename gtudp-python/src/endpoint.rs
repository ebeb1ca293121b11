//! [`Endpoint`]: the sans-IO `gtudp_proto::Endpoint` for the asyncio
//! module, which moves datagrams between it and an asyncio transport on the
//! event loop's thread. This wrapper reads the clock (the core never does)
//! and converts datagrams, addresses and events in batches, so one call
//! from Python does a whole round of work.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use bytes::Bytes;
#[cfg(target_os = "linux")]
use gtudp_proto::wire::Packet;
use gtudp_proto::{Config, Event, MessageId, SendOptions};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use crate::address::{self, Family, Lookup};
use crate::config::{duration, settings};
use crate::delivery::failure_name;
use crate::errors::{raw_error, send_refused, value_error};
use crate::{debug, payload, stats};

/// One gtUDP endpoint without I/O, driven from Python.
///
/// Call contract (the core's): after any input (`handle_datagram`,
/// `handle_timeout`, `send`, `send_raw`, `cancel`, `close`), call `poll`
/// and send every datagram it returns, handle its events, and call
/// `handle_timeout` once its timeout has passed.
#[pyclass(module = "gtudp._native", name = "Endpoint")]
pub(crate) struct Endpoint {
    /// The core, in a mutex only because a Python class must be `Sync` and
    /// the core is not (it memoises its last peer lookup in a `Cell`).
    /// Every call that feeds or polls it takes `&mut self` and reaches it
    /// through `get_mut`, without locking; only the read-only getters lock.
    endpoint: Mutex<gtudp_proto::Endpoint>,
    family: Family,
    debug: bool,
    /// Messages not yet resolved, by the number Python knows them by.
    outstanding: HashMap<u64, MessageId>,
    buffer: Vec<u8>,
    /// The last destination and its Python tuple (as the socket's family
    /// sends to it), reused for a run of datagrams to the same peer.
    last_destination: Option<(SocketAddr, Py<PyTuple>)>,
    /// `poll_send`'s datagrams of one system call, end to end, and their
    /// destinations and ranges in it (kept to reuse their allocations).
    #[cfg(target_os = "linux")]
    batch_bytes: Vec<u8>,
    #[cfg(target_os = "linux")]
    batch: Vec<(socket2::SockAddr, std::ops::Range<usize>)>,
    /// `receive`'s slots for `recvmmsg` (allocated at its first use), and
    /// the senders and lengths of what one call read.
    #[cfg(target_os = "linux")]
    recv_slots: Vec<u8>,
    #[cfg(target_os = "linux")]
    received: Vec<(SocketAddr, usize)>,
    /// How many ACKs `poll_send` holds at the start of `batch`, for the
    /// next datagram that leaves (or the caller's short timer).
    #[cfg(target_os = "linux")]
    held: usize,
}

/// The most datagrams one `receive` reads from the socket beyond the one it
/// is given, so that a flood does not keep the event loop from the rest.
#[cfg(target_os = "linux")]
const RECEIVE_AT_ONCE: usize = 64;

/// What `poll_send` returns: datagrams not sent, events, timeout, errors,
/// whether it holds ACKs.
type PollSent<'py> = (
    Bound<'py, PyList>,
    Bound<'py, PyList>,
    Option<f64>,
    Bound<'py, PyList>,
    bool,
);

impl Endpoint {
    /// The core, from a call that holds the class exclusively: no lock.
    fn core(&mut self) -> &mut gtudp_proto::Endpoint {
        self.endpoint
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The core, from a read-only call: locks (uncontended).
    fn shared(&self) -> MutexGuard<'_, gtudp_proto::Endpoint> {
        self.endpoint.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends every datagram the core has to send, as `(bytes, address)`,
    /// to `out` (logging each when debugging).
    fn drain_transmits(
        &mut self,
        py: Python<'_>,
        now: Instant,
        out: &Bound<'_, PyList>,
    ) -> PyResult<()> {
        let mut buffer = std::mem::take(&mut self.buffer);
        while let Some(transmit) = self.core().poll_transmit(now, 1, &mut buffer) {
            let datagram = &buffer[..transmit.size];
            if self.debug {
                self.log(py, "out", transmit.destination, datagram)?;
            }
            let to = self.destination(py, transmit.destination)?;
            out.append((PyBytes::new(py, datagram), to))?;
        }
        self.buffer = buffer;
        Ok(())
    }

    fn log(
        &self,
        py: Python<'_>,
        direction: &str,
        peer: SocketAddr,
        datagram: &[u8],
    ) -> PyResult<()> {
        let line = debug::line(direction, peer, datagram, &self.shared().config().framing);
        // `print` runs Python code, and writes without the GIL: not from
        // another thread once the interpreter exits (see `crate::exit`);
        // then the line goes to standard output as the blocking socket's do.
        let printed = crate::exit::call_python(py, || {
            py.import("builtins")?.getattr("print")?.call1((&line,))
        });
        match printed {
            Some(printed) => printed.map(drop),
            None => {
                let _ = writeln!(std::io::stdout().lock(), "{line}");
                Ok(())
            }
        }
    }

    fn destination<'py>(
        &mut self,
        py: Python<'py>,
        to: SocketAddr,
    ) -> PyResult<Bound<'py, PyTuple>> {
        if let Some((addr, tuple)) = &self.last_destination {
            if *addr == to {
                return Ok(tuple.bind(py).clone());
            }
        }
        let tuple = address::to_py(py, address::for_sending(to, self.family))?;
        self.last_destination = Some((to, tuple.clone().unbind()));
        Ok(tuple)
    }

    /// The events waiting, as `poll` lists them.
    fn events<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let events = PyList::empty(py);
        while let Some(event) = self.core().poll_event() {
            match event {
                Event::Received { from, payload } => events.append((
                    "received",
                    PyBytes::new(py, &payload),
                    address::to_py(py, from)?,
                ))?,
                Event::Foreign { from, payload } => events.append((
                    "foreign",
                    PyBytes::new(py, &payload),
                    address::to_py(py, from)?,
                ))?,
                Event::Delivered {
                    id, suspected_lost, ..
                } => {
                    self.outstanding.remove(&id.as_u64());
                    events.append(("delivered", id.as_u64(), suspected_lost))?
                }
                Event::Failed { id, to, reason } => {
                    self.outstanding.remove(&id.as_u64());
                    let message = gtudp_mio::DeliveryError::Failed { to, reason }.to_string();
                    events.append(("failed", id.as_u64(), failure_name(reason), message))?
                }
            }
        }
        Ok(events)
    }

    /// Reads and handles the datagrams queued on socket `fd`, at most
    /// [`RECEIVE_AT_ONCE`]; the `errno` of a failed read, else 0.
    #[cfg(target_os = "linux")]
    fn receive_queued(&mut self, py: Python<'_>, fd: i64) -> PyResult<i32> {
        use crate::fd::{received, recv_batch, RECV_SLOT, RECV_SLOTS};
        let mut slots = std::mem::take(&mut self.recv_slots);
        if slots.capacity() == 0 {
            // Not zeroed: only what the kernel writes is ever read.
            slots = Vec::with_capacity(RECV_SLOT * RECV_SLOTS);
        }
        let mut got = std::mem::take(&mut self.received);
        let mut total = 0;
        let mut errno = 0;
        while total < RECEIVE_AT_ONCE {
            got.clear();
            let filled = match recv_batch(fd, slots.spare_capacity_mut(), &mut got) {
                Ok(filled) => filled,
                Err(error) => {
                    errno = error.raw_os_error().unwrap_or(0);
                    break;
                }
            };
            let now = Instant::now();
            for (slot, &(from, len)) in got.iter().enumerate() {
                if len == 0 && from.port() == 0 {
                    continue; // a slot recv_batch could not use
                }
                let Some(datagram) = received(slots.spare_capacity_mut(), slot, len) else {
                    continue;
                };
                if self.debug {
                    self.log(py, "in", from, datagram)?;
                }
                self.core()
                    .handle_datagram(now, from, Bytes::copy_from_slice(datagram));
            }
            total += filled;
            if filled < RECV_SLOTS {
                break;
            }
        }
        self.recv_slots = slots;
        self.received = got;
        Ok(errno)
    }

    /// Seconds until `handle_timeout` is due (`None`: no timer).
    fn timeout(&mut self) -> Option<f64> {
        self.core()
            .poll_timeout()
            .map(|at| at.saturating_duration_since(Instant::now()).as_secs_f64())
    }
}

#[pymethods]
impl Endpoint {
    /// An endpoint for a socket of `family`, configured as `gtudp.GTUDP`
    /// is; `seed` fixes its identities (tests), else the OS chooses.
    #[new]
    #[pyo3(
        signature = (family, debug = false, magic_numbers = b"".as_slice(), recv_from_any = false, options = None, seed = None),
        text_signature = "(family, debug=False, magic_numbers=b'', recv_from_any=False, options=None, seed=None)"
    )]
    fn new(
        py: Python<'_>,
        family: i32,
        debug: bool,
        magic_numbers: &[u8],
        recv_from_any: bool,
        options: Option<&Bound<'_, PyDict>>,
        seed: Option<u128>,
    ) -> PyResult<Self> {
        let family = Family::from_af(py, family)?;
        let config: Config = settings(magic_numbers, recv_from_any, options)?.config;
        let seed = match seed {
            Some(seed) => seed,
            None => {
                let mut bytes = [0u8; 16];
                getrandom::fill(&mut bytes)
                    .map_err(|error| std::io::Error::other(format!("no random source: {error}")))?;
                u128::from_le_bytes(bytes)
            }
        };
        let endpoint = gtudp_proto::Endpoint::new(config, seed).map_err(value_error)?;
        Ok(Endpoint {
            endpoint: Mutex::new(endpoint),
            family,
            debug,
            outstanding: HashMap::new(),
            buffer: Vec::new(),
            last_destination: None,
            #[cfg(target_os = "linux")]
            batch_bytes: Vec::new(),
            #[cfg(target_os = "linux")]
            batch: Vec::new(),
            #[cfg(target_os = "linux")]
            recv_slots: Vec::new(),
            #[cfg(target_os = "linux")]
            received: Vec::new(),
            #[cfg(target_os = "linux")]
            held: 0,
        })
    }

    /// Feeds one datagram received from `addr`.
    fn handle_datagram(
        &mut self,
        py: Python<'_>,
        data: &Bound<'_, PyBytes>,
        addr: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let from = address::from_py(addr, self.family, Lookup::LiteralOnly)?;
        let bytes = data.as_bytes();
        if self.debug {
            self.log(py, "in", from, bytes)?;
        }
        self.core()
            .handle_datagram(Instant::now(), from, Bytes::copy_from_slice(bytes));
        Ok(())
    }

    /// Runs the timers that are due.
    fn handle_timeout(&mut self) {
        self.core().handle_timeout(Instant::now());
    }

    /// Accepts a guaranteed send; returns the message's number, which its
    /// `("delivered", n, suspected_lost)` or `("failed", n, reason,
    /// message)` event names.
    /// `deadline` is in seconds from now; `attempts` at most `max_attempts`.
    #[pyo3(signature = (data, addr, deadline = None, attempts = None))]
    fn send(
        &mut self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        addr: &Bound<'_, PyAny>,
        deadline: Option<f64>,
        attempts: Option<u32>,
    ) -> PyResult<u64> {
        let payload = payload::from_py(data)?;
        let to = address::from_py(addr, self.family, Lookup::LiteralOnly)?;
        let now = Instant::now();
        let mut options = SendOptions::default();
        if let Some(secs) = deadline {
            options.deadline = now.checked_add(duration("deadline", secs)?);
        }
        options.max_attempts = attempts;
        match self.core().send_with(now, to, payload, options) {
            Ok(id) => {
                self.outstanding.insert(id.as_u64(), id);
                Ok(id.as_u64())
            }
            Err(error) => Err(send_refused(py, error.kind(), &error)),
        }
    }

    /// Stops trying to deliver message `number`; `False` if it has already
    /// resolved.
    fn cancel(&mut self, number: u64) -> bool {
        match self.outstanding.get(&number).copied() {
            Some(id) => self.core().cancel(id).is_ok(),
            None => false,
        }
    }

    /// Queues a datagram sent as is, without framing or guarantee.
    fn send_raw(
        &mut self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        addr: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let payload = payload::from_py(data)?;
        let to = address::from_py(addr, self.family, Lookup::LiteralOnly)?;
        self.core()
            .send_raw(to, payload)
            .map_err(|error| raw_error(py, error))
    }

    /// Leaves new messages unanswered (their senders resend later) while
    /// the application's queue is full.
    fn set_receive_paused(&mut self, paused: bool) {
        self.core().set_receive_paused(paused);
    }

    /// Reads the error queue of `fd` (the socket this endpoint sends
    /// through, open) after the socket reported an error, and reports each
    /// destination ICMP reported unreachable (port, host or network
    /// unreachable) to the endpoint, as the blocking socket does: its
    /// messages fail at once if it never answered, or after the
    /// unreachable grace (5 s) of silence if it did. Returns how many
    /// unreachable reports it read (Linux, once
    /// `enable_unreachable_reports` is on; 0 elsewhere).
    fn read_unreachable_reports(&mut self, fd: i64) -> PyResult<usize> {
        let mut unreachable = Vec::new();
        crate::fd::read_unreachable_reports(fd, &mut unreachable)?;
        let now = Instant::now();
        for destination in &unreachable {
            self.core().peer_unreachable(now, *destination);
        }
        Ok(unreachable.len())
    }

    /// Starts closing: no new messages; what is in flight is resolved until
    /// done or the drain deadline.
    fn close(&mut self) {
        self.core().close(Instant::now());
    }

    /// Whether closing has finished (everything resolved, tables empty).
    #[getter]
    fn is_closed(&self) -> bool {
        self.shared().is_closed()
    }

    /// The largest payload one message can carry.
    #[getter]
    fn max_payload_size(&self) -> usize {
        self.shared().config().max_message_size()
    }

    /// The configured drain deadline, in seconds.
    #[getter]
    fn drain_timeout(&self) -> f64 {
        self.shared().config().drain_timeout.as_secs_f64()
    }

    /// The endpoint's counters, as a dict.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        stats::endpoint(py, &self.shared().stats())
    }

    /// What the endpoint knows of one peer (an IP literal address), as a
    /// dict, or `None` if it tracks no such peer.
    fn peer_stats<'py>(
        &self,
        py: Python<'py>,
        addr: &Bound<'_, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let peer = address::from_py(addr, self.family, Lookup::LiteralOnly)?;
        self.shared()
            .peer_stats(peer)
            .map(|peer| stats::peer(py, &peer))
            .transpose()
    }

    /// Feeds one datagram received from `addr` (as `handle_datagram`), then,
    /// with `fd` (the socket it came from, open), those queued on that
    /// socket (read with `recvmmsg` without waiting, Linux; a bounded
    /// number), and returns `(events, errno)`: the events they produced, as
    /// `poll` lists them, and the `errno` of a failed read (an ICMP report
    /// about an earlier send; 0 if none). One call per wake-up. Their
    /// datagrams and timeout wait for the next `poll` or `poll_send`, which
    /// the caller owes the endpoint (the call contract) and may make a
    /// little later, so that what the application sends in answer leaves
    /// with them.
    #[pyo3(signature = (data, addr, fd = -1), text_signature = "($self, data, addr, fd=-1)")]
    fn receive<'py>(
        &mut self,
        py: Python<'py>,
        data: &Bound<'_, PyBytes>,
        addr: &Bound<'_, PyAny>,
        fd: i64,
    ) -> PyResult<(Bound<'py, PyList>, i32)> {
        self.handle_datagram(py, data, addr)?;
        let mut errno = 0;
        #[cfg(target_os = "linux")]
        if fd >= 0 {
            errno = self.receive_queued(py, fd)?;
        }
        #[cfg(not(target_os = "linux"))]
        let _ = fd;
        Ok((self.events(py)?, errno))
    }

    /// Reads and handles the datagrams queued on socket `fd` (open), as
    /// `receive` does after the datagram it is given, for a caller that
    /// reads the socket itself when it is readable; returns `(events,
    /// errno)` as `receive` does. Elsewhere than Linux: nothing read.
    fn receive_ready<'py>(
        &mut self,
        py: Python<'py>,
        fd: i64,
    ) -> PyResult<(Bound<'py, PyList>, i32)> {
        #[cfg(target_os = "linux")]
        let errno = self.receive_queued(py, fd)?;
        #[cfg(not(target_os = "linux"))]
        let errno = {
            let _ = fd;
            0
        };
        Ok((self.events(py)?, errno))
    }

    /// `poll`, sending the datagrams itself through socket `fd` (the
    /// socket of the transport, open, with nothing queued in it), as many
    /// per system call as there are (`sendmmsg`, Linux). Returns `(unsent,
    /// events, timeout, errors)`: `unsent` the datagrams the socket would
    /// not take without blocking (everything, elsewhere than Linux), to
    /// send through the transport, which queues them; `events` and
    /// `timeout` as `poll` returns them; `errors` the `errno` of each send
    /// that failed, its datagram dropped (as an asyncio transport drops
    /// it and reports the error to `error_received`); and whether it holds
    /// ACKs: with `hold_acks`, datagrams that are all ACKs stay (in order)
    /// until the next call that sends, or a `poll`, so that an ACK leaves
    /// with the application's next datagram rather than on its own; the
    /// caller owes a call without `hold_acks` soon (a millisecond) while
    /// it holds them.
    #[pyo3(signature = (fd, hold_acks = false), text_signature = "($self, fd, hold_acks=False)")]
    fn poll_send<'py>(
        &mut self,
        py: Python<'py>,
        fd: i64,
        hold_acks: bool,
    ) -> PyResult<PollSent<'py>> {
        let now = Instant::now();
        let unsent = PyList::empty(py);
        let errors = PyList::empty(py);
        #[cfg(target_os = "linux")]
        {
            let mut buffer = std::mem::take(&mut self.buffer);
            let mut bytes = std::mem::take(&mut self.batch_bytes);
            let mut batch = std::mem::take(&mut self.batch);
            // The ACKs held by the last call lead the batch.
            let mut keep = std::mem::take(&mut self.held);
            let mut blocked = false;
            while !blocked {
                batch.truncate(keep);
                bytes.truncate(batch.last().map_or(0, |(_, range)| range.end));
                keep = 0;
                let mut only_acks = true;
                while batch.len() < crate::fd::BATCH {
                    let Some(transmit) = self.core().poll_transmit(now, 1, &mut buffer) else {
                        break;
                    };
                    let datagram = &buffer[..transmit.size];
                    if self.debug {
                        self.log(py, "out", transmit.destination, datagram)?;
                    }
                    only_acks &= matches!(
                        self.core().config().framing.parse(datagram),
                        Ok(Packet::Ack { .. })
                    );
                    let start = bytes.len();
                    bytes.extend_from_slice(datagram);
                    let to = address::for_sending(transmit.destination, self.family);
                    batch.push((socket2::SockAddr::from(to), start..bytes.len()));
                }
                if batch.is_empty() {
                    break;
                }
                if hold_acks && only_acks && batch.len() < crate::fd::BATCH {
                    self.held = batch.len();
                    break;
                }
                let mut done = 0;
                while done < batch.len() {
                    match crate::fd::send_batch(fd, &bytes, &batch[done..]) {
                        Ok(0) => blocked = true,
                        Ok(sent) => done += sent,
                        Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                            blocked = true
                        }
                        Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(error) => {
                            errors.append(error.raw_os_error().unwrap_or(0))?;
                            done += 1;
                        }
                    }
                    if blocked {
                        break;
                    }
                }
                for (to, range) in &batch[done..] {
                    let to = to.as_socket().ok_or_else(|| {
                        std::io::Error::other("a destination that is not an IP address")
                    })?;
                    unsent.append((
                        PyBytes::new(py, &bytes[range.clone()]),
                        address::to_py(py, to)?,
                    ))?;
                }
            }
            self.buffer = buffer;
            self.batch_bytes = bytes;
            self.batch = batch;
        }
        #[cfg(not(target_os = "linux"))]
        let _ = fd;
        self.drain_transmits(py, now, &unsent)?;
        let events = self.events(py)?;
        let timeout = self.timeout();
        #[cfg(target_os = "linux")]
        let holding = self.held > 0;
        #[cfg(not(target_os = "linux"))]
        let holding = false;
        Ok((unsent, events, timeout, errors, holding))
    }

    /// Everything the last inputs produced: `(datagrams, events, timeout)`
    /// with `datagrams` a list of `(bytes, address)` to send, `events` a
    /// list of `("received", payload, address)`, `("foreign", payload,
    /// address)`, `("delivered", number, suspected_lost)` (see
    /// `Delivery.suspected_lost`) and `("failed", number, reason, message)`,
    /// and `timeout` the seconds until `handle_timeout` is due
    /// (`None`: no timer).
    fn poll<'py>(
        &mut self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyList>, Bound<'py, PyList>, Option<f64>)> {
        let now = Instant::now();
        let datagrams = PyList::empty(py);
        #[cfg(target_os = "linux")]
        for (to, range) in self.batch.iter().take(std::mem::take(&mut self.held)) {
            if let Some(to) = to.as_socket() {
                datagrams.append((
                    PyBytes::new(py, &self.batch_bytes[range.clone()]),
                    address::to_py(py, to)?,
                ))?;
            }
        }
        self.drain_transmits(py, now, &datagrams)?;
        let events = self.events(py)?;
        let timeout = self.timeout();
        Ok((datagrams, events, timeout))
    }
}
