//! [`BlockingSocket`]: the original gtUDP's shape (`sendto`, `recvfrom`,
//! `cleanup`) over a [`Driver`] that the calling threads drive themselves,
//! with a background thread for timers (the design is in [`core`]).

mod background;
mod core;
mod lead;
mod pending;
mod sync;

pub use pending::PendingSend;

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gtudp_io::{resolve_std, Datagram, Delivered, IntoPayload, SendOptions};
use gtudp_proto::{canonical_addr, Config, PeerStats, SendErrorKind, SendRawError};
use mio::{Poll, Waker};

use self::background::{SOCKET, WAKER};
use self::core::{Core, Shared};
use self::lead::Lead;
use self::sync::lock;
use crate::completion::Completions;
use crate::driver::Driver;
use crate::error::{BindError, Closed, DeliveryError, RecvError};
use crate::stats::{CloseSummary, Stats};

/// Outcome slots allocated up front (fewer if the endpoint allows fewer
/// outstanding messages); the registry grows past this only if more sends
/// are pending at once, and keeps that room.
const PRESIZED_COMPLETIONS: usize = 1_024;

/// Queue sizes and socket options of a [`BlockingSocket`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BlockingOptions {
    /// Received messages held for [`BlockingSocket::recv`] and friends.
    /// When full, the endpoint leaves new DATA unanswered until a receive
    /// makes room (senders resend; nothing is lost). Default 4,096, larger
    /// than one wake-up's intake (up to 2,048 messages), so a reader that
    /// keeps up never makes senders wait for a retransmission.
    pub receive_queue: usize,
    /// Kept for compatibility; must not be 0. Sends no longer wait in a
    /// queue: each is handed to the endpoint on the calling thread, and
    /// [`Limits::max_outstanding_messages`](gtudp_proto::Limits) bounds
    /// how many are unresolved (beyond it, sends are refused with
    /// `TooManyOutstanding`). Default 1,024.
    pub command_queue: usize,
    /// Whether the kernel may split a datagram too large for the path into
    /// IP fragments (see [`Fragmentation`](crate::Fragmentation)). Default
    /// `Forbidden`: a datagram larger than the interface's MTU is refused
    /// and its message fails with `TooLarge`. `Allowed` (Linux only; on
    /// other systems the bind fails with an `Unsupported` error) sends a
    /// datagram up to the UDP limit as a plain socket does, as the Python
    /// module's `GTUDP` does.
    pub fragmentation: crate::Fragmentation,
    /// How long a receive that finds nothing to read keeps polling the
    /// socket (without sleeping) before it blocks. Default zero: it blocks
    /// at once, as a std socket does.
    ///
    /// A thread that sleeps is woken by the kernel when a datagram arrives;
    /// when its CPU was idle, that wake-up can cost tens of microseconds
    /// (an idle virtual CPU, a deep sleep state). A request-response
    /// application whose replies come back within this spin never sleeps
    /// between them, at the cost of a CPU kept busy while it waits. Only
    /// the one thread that waits for the socket spins; the others wait as
    /// before.
    pub spin: std::time::Duration,
}

impl BlockingOptions {
    /// These options with a receive that polls for `spin` before it blocks
    /// (see [`spin`](Self::spin)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use gtudp_mio::BlockingOptions;
    ///
    /// let options = BlockingOptions::default().with_spin(Duration::from_micros(50));
    /// assert_eq!(options.spin, Duration::from_micros(50));
    /// assert_eq!(BlockingOptions::default().spin, Duration::ZERO);
    /// ```
    pub fn with_spin(mut self, spin: std::time::Duration) -> Self {
        self.spin = spin;
        self
    }

    /// These options with a receive queue of `capacity` messages.
    pub fn with_receive_queue(mut self, capacity: usize) -> Self {
        self.receive_queue = capacity;
        self
    }

    /// These options with a command queue of `capacity` sends (kept for
    /// compatibility; see [`command_queue`](Self::command_queue)).
    pub fn with_command_queue(mut self, capacity: usize) -> Self {
        self.command_queue = capacity;
        self
    }

    /// These options with a choice of IP fragmentation (see
    /// [`fragmentation`](Self::fragmentation)).
    ///
    /// ```
    /// use gtudp_mio::{BlockingOptions, Fragmentation};
    ///
    /// let options = BlockingOptions::default().with_fragmentation(Fragmentation::Allowed);
    /// assert_eq!(options.fragmentation, Fragmentation::Allowed);
    /// assert_eq!(BlockingOptions::default().fragmentation, Fragmentation::Forbidden);
    /// ```
    pub fn with_fragmentation(mut self, choice: crate::Fragmentation) -> Self {
        self.fragmentation = choice;
        self
    }
}

impl Default for BlockingOptions {
    fn default() -> Self {
        Self {
            receive_queue: 4_096,
            command_queue: 1_024,
            fragmentation: crate::Fragmentation::Forbidden,
            spin: std::time::Duration::ZERO,
        }
    }
}

/// A gtUDP socket with blocking calls, shaped like the original Python
/// `GTUDP`: [`send_to`](Self::send_to) / [`send_to_blocking`](Self::send_to_blocking)
/// for `sendto`, [`recv_from`](Self::recv_from) for `recvfrom`,
/// [`cleanup`](Self::cleanup) for `cleanup`.
///
/// The calling threads drive the protocol themselves, under a short lock
/// around the endpoint: a send hands the message to the endpoint and makes
/// the (batched, non-blocking) send system call on the calling thread; a
/// receive reads the socket itself (its RECVs and ACKs leave with the
/// application's next call, likely its reply, in one system call, or
/// within 300 µs without one), and when
/// nothing is there blocks waiting for the socket itself, so a datagram
/// wakes the thread that waits for it, with no hop through another
/// thread. A background thread runs the endpoint's timers and reads the
/// socket while no receive is waiting (so RECVs and ACKs are answered while
/// the application is busy). All methods take `&self`, so the socket can
/// be shared between threads in an [`Arc`]: one thread receiving while
/// others send.
///
/// Delivery is unordered. [`send_to_blocking`](Self::send_to_blocking)
/// returning `Ok` means the peer's endpoint has the message (it may not have
/// been read yet); its [`Delivered`] also says whether the message was
/// [suspected lost](Delivered::suspected_lost) on the way.
/// [`DeliveryError::Failed`] means delivery was not confirmed (the payload
/// may still have arrived).
///
/// Dropping the socket closes it gracefully in the background: messages in
/// flight keep being resolved until `Config::drain_timeout`. Use
/// [`close`](Self::close) to wait for that and learn how it went.
///
/// # Receive timeouts
///
/// Like [`std::net::UdpSocket::set_read_timeout`] (and Python's
/// `settimeout`), [`set_read_timeout`](Self::set_read_timeout) sets how long
/// [`recv`](Self::recv) and [`recv_from`](Self::recv_from) wait before
/// [`RecvError::TimedOut`]: `None` (the default) waits forever,
/// `Some(Duration::ZERO)` does not wait at all.
/// [`recv_timeout`](Self::recv_timeout) and
/// [`recv_from_timeout`](Self::recv_from_timeout) take a timeout per call.
///
/// # Compared with `gtudp_tokio::Socket`
///
/// Options ([`SendOptions`]), received messages ([`Datagram`]), errors,
/// [`Stats`] and [`CloseSummary`] are the same types. Two calls differ, for
/// a blocking API's sake: [`send_to`](Self::send_to) returns as soon as the
/// message is handed over (like the original's `sendto`), with a
/// [`PendingSend`] to wait on, where the async `send_to` waits for the
/// outcome; [`send_to_blocking`](Self::send_to_blocking) is the waiting one
/// here. And [`close`](Self::close) returns the summary once (later calls
/// get [`Closed`]), as a blocking close cannot be awaited by many tasks.
///
/// ```
/// use gtudp_mio::{BlockingSocket, Config};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = BlockingSocket::bind("127.0.0.1:0", Config::default())?;
/// let client = BlockingSocket::bind("127.0.0.1:0", Config::default())?;
///
/// // Returns once the server's endpoint confirmed receipt.
/// let delivered = client.send_to_blocking(&b"hello"[..], server.local_addr())?;
/// if delivered.suspected_lost {
///     println!("resent as presumed lost before it was confirmed");
/// }
///
/// let mut buf = [0u8; 1500];
/// let (len, from) = server.recv_from(&mut buf)?;
/// assert_eq!((&buf[..len], from), (&b"hello"[..], client.local_addr()));
///
/// let summary = client.close()?;
/// assert_eq!(summary.stats.endpoint.delivered, 1);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct BlockingSocket {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    max_payload: usize,
    /// The default receive timeout, in nanoseconds; `u64::MAX`: none.
    read_timeout: AtomicU64,
    /// A close was asked for (by `close`, whose summary is then taken).
    closed: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The peer set by `connect`.
    peer: Mutex<Option<SocketAddr>>,
}

const NO_TIMEOUT: u64 = u64::MAX;

impl BlockingSocket {
    /// Binds a UDP socket to `addr` (the first address it resolves to) and
    /// starts its thread, with default [`BlockingOptions`].
    pub fn bind(addr: impl ToSocketAddrs, config: Config) -> Result<Self, BindError> {
        let socket = std::net::UdpSocket::bind(addr)?;
        Self::from_std(socket, config)
    }

    /// Takes over a bound standard socket (the original's `GTUDP(socket)`),
    /// with default [`BlockingOptions`].
    pub fn from_std(socket: std::net::UdpSocket, config: Config) -> Result<Self, BindError> {
        Self::with_options(socket, config, BlockingOptions::default())
    }

    /// Takes over a bound standard socket with chosen queue sizes and
    /// socket options.
    pub fn with_options(
        socket: std::net::UdpSocket,
        config: Config,
        options: BlockingOptions,
    ) -> Result<Self, BindError> {
        for (field, value) in [
            ("BlockingOptions::receive_queue", options.receive_queue),
            ("BlockingOptions::command_queue", options.command_queue),
        ] {
            if value == 0 {
                return Err(BindError::ZeroCapacity { field });
            }
        }
        socket.set_nonblocking(true)?;
        let max_payload = config.max_message_size();
        let completions = Arc::new(Completions::with_capacity(
            config
                .limits
                .max_outstanding_messages
                .min(PRESIZED_COMPLETIONS),
        ));
        let drain_timeout = config.drain_timeout;
        let mut driver = Driver::new(mio::net::UdpSocket::from_std(socket), config)?;
        // A receive that finds the first datagrams of a reply's batch
        // reads them; the reply itself should be among them.
        driver.set_lone_data_first(true);
        if options.fragmentation != crate::Fragmentation::Forbidden {
            driver.set_fragmentation(options.fragmentation)?;
        }
        let local_addr = driver.local_addr()?;
        let poll = Poll::new()?;
        driver.register(poll.registry(), SOCKET)?;
        let background_waker = Waker::new(poll.registry(), WAKER)?;
        let lead = Lead::for_driver(&driver, options.spin)?;
        let shared = Arc::new(Shared {
            core: Mutex::new(Core::new(driver, options.receive_queue, drain_timeout)),
            ready: Condvar::new(),
            background_waker,
            lead,
            completions,
            next_ticket: AtomicU64::new(0),
            local: local_addr,
            siblings: std::sync::OnceLock::new(),
        });
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("gtudp {local_addr}"))
                .spawn(move || background::run(shared, poll))?
        };
        tracing::debug!(target: "gtudp", local = %local_addr, "gtUDP blocking socket ready");
        Ok(Self {
            shared,
            local_addr,
            max_payload,
            read_timeout: AtomicU64::new(NO_TIMEOUT),
            closed: AtomicBool::new(false),
            thread: Mutex::new(Some(thread)),
            peer: Mutex::new(None),
        })
    }

    /// The socket's local address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The largest payload one message can carry with this configuration
    /// (`Config::max_message_size`: one datagram's payload, or with large
    /// messages on, their `max_message_size`).
    pub fn max_payload_size(&self) -> usize {
        self.max_payload
    }

    /// Counters of the endpoint and the socket I/O, up to date: a caller
    /// that saw an outcome or a message sees the counters that include it.
    pub fn stats(&self) -> Stats {
        self.shared.lock().driver.stats()
    }

    /// Counters and the RTT estimate for one peer, while it is tracked;
    /// `None` also once the socket has finished closing.
    pub fn peer_stats(&self, peer: SocketAddr) -> Option<PeerStats> {
        let core = self.shared.lock();
        if core.is_finished() {
            return None;
        }
        core.driver.peer_stats(peer)
    }

    /// Starts sending `payload` to `to` with guaranteed delivery and returns
    /// at once, the first datagram handed to the kernel by this thread;
    /// wait for the outcome with [`PendingSend::wait`].
    ///
    /// Fails at once with [`DeliveryError::Refused`] when the endpoint
    /// refuses the message (too large, the socket closing, too many
    /// messages outstanding or queued for the peer), or
    /// [`DeliveryError::Closed`] when the socket has finished.
    ///
    /// `payload` is any [`IntoPayload`]: `&[u8]`, `b"..."`, `&str` (copied
    /// once), `Vec<u8>`, `String` or [`Bytes`](bytes::Bytes) (moved). `to` is any
    /// [`ToSocketAddrs`] (`"host:port"`, `(ip, port)`, a `SocketAddr`),
    /// resolved once; the first address is used.
    pub fn send_to(
        &self,
        payload: impl IntoPayload,
        to: impl ToSocketAddrs,
    ) -> Result<PendingSend, DeliveryError> {
        self.send_to_with(payload, to, SendOptions::default())
    }

    /// [`send_to`](Self::send_to) with per-message options: a delivery
    /// timeout and an attempt limit.
    pub fn send_to_with(
        &self,
        payload: impl IntoPayload,
        to: impl ToSocketAddrs,
        options: SendOptions,
    ) -> Result<PendingSend, DeliveryError> {
        let to = resolve_std(to)?;
        let payload = payload.into_payload();
        if payload.len() > self.max_payload {
            return Err(DeliveryError::Refused {
                to,
                kind: SendErrorKind::PayloadTooLarge {
                    size: payload.len(),
                    max: self.max_payload,
                },
            });
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(DeliveryError::Refused {
                to,
                kind: SendErrorKind::Closing,
            });
        }
        let now = Instant::now();
        let options = options.to_proto(now);
        let shared = &self.shared;
        let mut core = shared.lock();
        if core.is_finished() {
            return Err(DeliveryError::Closed);
        }
        let id = core
            .driver
            .send_with_deadline(now, to, payload, options)
            .map_err(|error| DeliveryError::Refused {
                to,
                kind: error.kind(),
            })?;
        let ticket = shared.next_ticket.fetch_add(1, Ordering::Relaxed);
        let (key, completion) = shared.completions.register();
        core.pending.insert(id, completion);
        let arrived = core.flush_or_defer(now);
        shared.settle(&mut core, arrived);
        drop(core);
        Ok(PendingSend::new(shared.clone(), key, to, ticket, id))
    }

    /// [`send_to_blocking`](Self::send_to_blocking) with per-message
    /// options.
    pub fn send_to_blocking_with(
        &self,
        payload: impl IntoPayload,
        to: impl ToSocketAddrs,
        options: SendOptions,
    ) -> Result<Delivered, DeliveryError> {
        self.send_to_with(payload, to, options)?.wait()
    }

    /// Sends `datagram` to `to` as is, without gtUDP framing or guarantees,
    /// for peers that do not speak gtUDP, on the calling thread (or refuses
    /// it: too large, the raw queue full
    /// ([`Limits::max_pending_raw`](gtudp_proto::Limits)), or closed).
    pub fn send_raw_to(
        &self,
        datagram: impl IntoPayload,
        to: SocketAddr,
    ) -> Result<(), SendRawError> {
        let datagram = datagram.into_payload();
        if datagram.len() > gtudp_proto::MAX_UDP_PAYLOAD {
            return Err(SendRawError::TooLarge {
                size: datagram.len(),
            });
        }
        let mut core = self.shared.lock();
        if core.is_finished() {
            return Err(SendRawError::Closed);
        }
        core.driver.send_raw(canonical_addr(to), datagram)?;
        let arrived = core.flush_or_defer(Instant::now());
        self.shared.settle(&mut core, arrived);
        Ok(())
    }

    /// Sends `payload` to `to` and blocks until the peer's endpoint confirms
    /// receipt ([`Delivered`]) or the endpoint gives up ([`DeliveryError::Failed`]
    /// with the reason) — at most `max_attempts` retransmission timeouts.
    pub fn send_to_blocking(
        &self,
        payload: impl IntoPayload,
        to: impl ToSocketAddrs,
    ) -> Result<Delivered, DeliveryError> {
        self.send_to(payload, to)?.wait()
    }

    /// Sets the peer that [`send`](Self::send) and
    /// [`send_blocking`](Self::send_blocking) send to, resolving `target`
    /// once (the first address), like [`std::net::UdpSocket::connect`].
    ///
    /// Unlike a connected UDP socket, this one still receives from every
    /// peer (each message received was confirmed to its sender, so none is
    /// filtered out): compare [`Datagram::from`] with
    /// [`peer_addr`](Self::peer_addr) to keep one peer's.
    pub fn connect(&self, target: impl ToSocketAddrs) -> std::io::Result<()> {
        let peer = resolve_std(target).map_err(std::io::Error::from)?;
        *lock(&self.peer) = Some(peer);
        Ok(())
    }

    /// The peer set by [`connect`](Self::connect); `NotConnected` before.
    pub fn peer_addr(&self) -> std::io::Result<SocketAddr> {
        gtudp_io::connected_peer(*lock(&self.peer))
    }

    /// [`send_to`](Self::send_to) the peer set by [`connect`](Self::connect);
    /// [`DeliveryError::Unresolved`] (`NotConnected`) before `connect`.
    pub fn send(&self, payload: impl IntoPayload) -> Result<PendingSend, DeliveryError> {
        let peer = gtudp_io::send_target(*lock(&self.peer))?;
        self.send_to(payload, peer)
    }

    /// [`send`](Self::send), then waits for the outcome.
    pub fn send_blocking(&self, payload: impl IntoPayload) -> Result<Delivered, DeliveryError> {
        self.send(payload)?.wait()
    }

    /// Sets the timeout of [`recv`](Self::recv) and
    /// [`recv_from`](Self::recv_from), like
    /// [`std::net::UdpSocket::set_read_timeout`] and Python's `settimeout`:
    /// `None` waits until a message arrives, `Some(Duration::ZERO)` returns
    /// [`RecvError::TimedOut`] at once when none is waiting.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) {
        let nanos = match timeout {
            None => NO_TIMEOUT,
            Some(timeout) => u64::try_from(timeout.as_nanos()).unwrap_or(NO_TIMEOUT - 1),
        };
        self.read_timeout.store(nanos, Ordering::Relaxed);
    }

    /// The timeout set by [`set_read_timeout`](Self::set_read_timeout).
    pub fn read_timeout(&self) -> Option<Duration> {
        match self.read_timeout.load(Ordering::Relaxed) {
            NO_TIMEOUT => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }

    /// Waits for a message (at most the [read timeout](Self::set_read_timeout))
    /// and copies it into `buf`, returning its length and sender, like
    /// [`std::net::UdpSocket::recv_from`].
    ///
    /// A message longer than `buf` is not cut: it stays queued and
    /// [`RecvError::Truncated`] says how long it is.
    pub fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, SocketAddr), RecvError> {
        self.recv_from_until(buf, self.default_deadline())
    }

    /// Like [`recv_from`](Self::recv_from), giving up with
    /// [`RecvError::TimedOut`] after `timeout` whatever the read timeout.
    pub fn recv_from_timeout(
        &self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<(usize, SocketAddr), RecvError> {
        self.recv_from_until(buf, Some(Instant::now().checked_add(timeout)))
    }

    /// Waits for a message (at most the [read timeout](Self::set_read_timeout))
    /// and returns it whole.
    pub fn recv(&self) -> Result<Datagram, RecvError> {
        self.recv_until(self.default_deadline())
    }

    /// Like [`recv`](Self::recv), giving up with [`RecvError::TimedOut`]
    /// after `timeout` whatever the read timeout.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Datagram, RecvError> {
        self.recv_until(Some(Instant::now().checked_add(timeout)))
    }

    /// Waits for messages (at most the [read timeout](Self::set_read_timeout))
    /// and moves up to `limit` of them into `buffer`, returning how many:
    /// what has arrived, taken under one lock (like Tokio's
    /// `mpsc::Receiver::recv_many`). `buffer` is appended to, not cleared.
    /// Returns `Ok(0)` at once when `limit` is 0.
    ///
    /// ```
    /// use gtudp_mio::{BlockingSocket, Config};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let server = BlockingSocket::bind("127.0.0.1:0", Config::default())?;
    /// let client = BlockingSocket::bind("127.0.0.1:0", Config::default())?;
    /// for text in ["one", "two", "three"] {
    ///     client.send_to_blocking(text.as_bytes(), server.local_addr())?;
    /// }
    /// let mut messages = Vec::with_capacity(64);
    /// while messages.len() < 3 {
    ///     server.recv_many(&mut messages, 64)?;
    /// }
    /// assert!(messages.iter().all(|message| message.from == client.local_addr()));
    /// # Ok(())
    /// # }
    /// ```
    pub fn recv_many(&self, buffer: &mut Vec<Datagram>, limit: usize) -> Result<usize, RecvError> {
        self.recv_many_until(buffer, limit, self.default_deadline())
    }

    /// Like [`recv_many`](Self::recv_many), giving up with
    /// [`RecvError::TimedOut`] after `timeout` whatever the read timeout.
    pub fn recv_many_timeout(
        &self,
        buffer: &mut Vec<Datagram>,
        limit: usize,
        timeout: Duration,
    ) -> Result<usize, RecvError> {
        self.recv_many_until(buffer, limit, Some(Instant::now().checked_add(timeout)))
    }

    /// Closes the socket: no new messages in or out, messages in flight and
    /// RECVs awaiting their ACK resolved until done or until
    /// `Config::drain_timeout`; blocks until then and says how it went.
    ///
    /// The summary is returned once: later calls (from any thread) return
    /// [`Closed`] at once. Messages already received can still be read;
    /// then receives return [`RecvError::Closed`].
    pub fn close(&self) -> Result<CloseSummary, Closed> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Err(Closed);
        }
        {
            let mut core = self.shared.lock();
            if !core.is_finished() {
                core.end_lease();
                core.begin_close(Instant::now());
                core.deliver();
                drop(core);
                self.shared.wake_background();
            }
        }
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
        let core = self.shared.lock();
        Ok(core
            .summary
            .unwrap_or_else(|| CloseSummary::without_drain(core.driver.stats())))
    }

    /// The original's name for [`close`](Self::close).
    pub fn cleanup(&self) -> Result<CloseSummary, Closed> {
        self.close()
    }

    /// The deadline of a receive under the read timeout: `None` for none,
    /// `Some(None)` for one too far to represent (no deadline either).
    fn default_deadline(&self) -> Option<Option<Instant>> {
        self.read_timeout()
            .map(|timeout| Instant::now().checked_add(timeout))
    }

    fn recv_from_until(
        &self,
        buf: &mut [u8],
        deadline: Option<Option<Instant>>,
    ) -> Result<(usize, SocketAddr), RecvError> {
        let mut core = self.shared.wait_for_message(deadline.flatten())?;
        let Some(front) = core.inbox.front() else {
            return Err(RecvError::Closed);
        };
        let len = front.payload.len();
        if len > buf.len() {
            return Err(RecvError::Truncated {
                len,
                capacity: buf.len(),
            });
        }
        let from = front.from;
        buf[..len].copy_from_slice(&front.payload);
        core.inbox.pop_front();
        self.took_message(&mut core);
        Ok((len, from))
    }

    fn recv_until(&self, deadline: Option<Option<Instant>>) -> Result<Datagram, RecvError> {
        let mut core = self.shared.wait_for_message(deadline.flatten())?;
        let message = core.inbox.pop_front().ok_or(RecvError::Closed)?;
        self.took_message(&mut core);
        Ok(message)
    }

    fn recv_many_until(
        &self,
        buffer: &mut Vec<Datagram>,
        limit: usize,
        deadline: Option<Option<Instant>>,
    ) -> Result<usize, RecvError> {
        if limit == 0 {
            return Ok(0);
        }
        let mut core = self.shared.wait_for_message(deadline.flatten())?;
        let taken = limit.min(core.inbox.len());
        if taken == 0 {
            return Err(RecvError::Closed);
        }
        buffer.extend(core.inbox.drain(..taken));
        self.took_message(&mut core);
        Ok(taken)
    }

    /// A read made room in the inbox: the endpoint may take new DATA again.
    fn took_message(&self, core: &mut MutexGuard<'_, Core>) {
        core.note_handed(Instant::now());
        core.update_room();
        core.renew_lease();
    }
}

impl BlockingSocket {
    /// Makes this socket shard `index` of `shards` (in shard order): ICMP
    /// reports it reads for another shard's peers are handed to that shard.
    pub(crate) fn join_shards(&self, index: usize, shards: &[Arc<BlockingSocket>]) {
        let siblings = shards
            .iter()
            .map(|shard| Arc::downgrade(&shard.shared))
            .collect();
        let _ = self.shared.siblings.set(siblings);
        self.shared.lock().driver.set_shard(index, shards.len());
    }

    /// Starts a graceful close, drained by the background thread, without
    /// waiting (unless `close` was called already); `close` still returns
    /// the summary afterwards.
    pub(crate) fn begin_close(&self) {
        if !self.closed.load(Ordering::Acquire) {
            let mut core = self.shared.lock();
            if !core.is_finished() {
                core.end_lease();
                core.begin_close(Instant::now());
                core.deliver();
                drop(core);
                self.shared.wake_background();
            }
        }
    }
}

impl Drop for BlockingSocket {
    /// Starts a graceful close, drained by the background thread, without
    /// waiting.
    fn drop(&mut self) {
        self.begin_close();
    }
}
