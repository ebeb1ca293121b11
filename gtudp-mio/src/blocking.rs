//! [`BlockingSocket`]: the original gtUDP's shape (`sendto`, `recvfrom`,
//! `cleanup`) on a background thread that runs a [`Driver`] in a mio loop.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gtudp_io::{resolve_std, CloseStart, Datagram, IntoPayload, Routed, SendOptions};
use gtudp_proto::{canonical_addr, Config, MessageId, PeerStats, SendErrorKind, SendRawError};
use mio::{Events, Poll, Token, Waker};

use crate::completion::{Completion, Completions, Key};
use crate::driver::Driver;
use crate::error::{BindError, Closed, DeliveryError, RecvError};
use crate::stats::{CloseSummary, Stats};

const SOCKET: Token = Token(0);
const WAKER: Token = Token(1);

/// Commands taken per loop turn, so a flood of sends cannot starve the
/// socket; the rest are taken on the next turn, without sleeping.
const COMMANDS_PER_TURN: usize = 256;

/// Outcome slots allocated up front (fewer if the endpoint allows fewer
/// outstanding messages); the registry grows past this only if more sends
/// are pending at once, and keeps that room.
const PRESIZED_COMPLETIONS: usize = 1_024;

/// Queue sizes of a [`BlockingSocket`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BlockingOptions {
    /// Received messages held for [`BlockingSocket::recv`] and friends.
    /// When full, the endpoint leaves new DATA unanswered until a receive
    /// makes room (senders resend; nothing is lost). Default 4,096, larger
    /// than one wake-up's intake (up to 2,048 messages), so a reader that
    /// keeps up never makes senders wait for a retransmission.
    pub receive_queue: usize,
    /// Sends waiting for the background thread to take them; a sending
    /// thread blocks while it is full. Default 1,024.
    pub command_queue: usize,
}

impl BlockingOptions {
    /// These options with a receive queue of `capacity` messages.
    pub fn with_receive_queue(mut self, capacity: usize) -> Self {
        self.receive_queue = capacity;
        self
    }

    /// These options with a command queue of `capacity` sends.
    pub fn with_command_queue(mut self, capacity: usize) -> Self {
        self.command_queue = capacity;
        self
    }
}

impl Default for BlockingOptions {
    fn default() -> Self {
        Self {
            receive_queue: 4_096,
            command_queue: 1_024,
        }
    }
}

/// A gtUDP socket with blocking calls, shaped like the original Python
/// `GTUDP`: [`send_to`](Self::send_to) / [`send_to_blocking`](Self::send_to_blocking)
/// for `sendto`, [`recv_from`](Self::recv_from) for `recvfrom`,
/// [`cleanup`](Self::cleanup) for `cleanup`.
///
/// A background thread owns the UDP socket and the protocol state and runs
/// a mio loop (a [`Driver`]); the methods talk to it over bounded queues and
/// a [`mio::Waker`]. All methods take `&self`, so the socket can be shared
/// between threads in an [`Arc`]: one thread receiving while others send.
///
/// Delivery is unordered. [`send_to_blocking`](Self::send_to_blocking)
/// returning `Ok` means the peer's endpoint has the message (it may not have
/// been read yet); [`DeliveryError::Failed`] means delivery was not
/// confirmed (the payload may still have arrived).
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
/// client.send_to_blocking(&b"hello"[..], server.local_addr())?;
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
    link: Arc<Link>,
    shared: Arc<Shared>,
    completions: Arc<Completions>,
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

/// The way to the background thread, shared by the socket and its pending
/// sends (for cancel).
#[derive(Debug)]
struct Link {
    /// The socket's address, for log lines.
    local: SocketAddr,
    commands: SyncSender<Command>,
    waker: Waker,
    next_ticket: AtomicU64,
}

impl Link {
    /// Hands `command` to the thread and wakes it; if the thread has
    /// stopped, the command is dropped (and a send's completion with it).
    fn command(&self, command: Command) -> Result<(), Closed> {
        self.commands.send(command).map_err(|_| Closed)?;
        if let Err(error) = self.waker.wake() {
            tracing::warn!(target: "gtudp", local = %self.local, %error, "could not wake the gtUDP thread");
        }
        Ok(())
    }
}

const NO_TIMEOUT: u64 = u64::MAX;

/// The outcome of one [`BlockingSocket::send_to`], to wait for.
///
/// Dropping it does not cancel the message; its outcome is then discarded.
#[derive(Debug)]
#[must_use = "a PendingSend only reports the outcome; drop it explicitly if the outcome does not matter"]
pub struct PendingSend {
    /// Where the thread leaves the outcome.
    completions: Arc<Completions>,
    /// The send's slot in `completions`; `None` once the outcome was taken.
    key: Cell<Option<Key>>,
    to: SocketAddr,
    ticket: u64,
    link: Arc<Link>,
}

impl PendingSend {
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
    /// [`FailureReason::Cancelled`](gtudp_proto::FailureReason), or `Ok(())`
    /// if the RECV won the race. A cancelled payload may still have
    /// arrived. The outcome is taken: later waits report
    /// [`DeliveryError::Closed`].
    pub fn cancel(&self) -> Result<(), DeliveryError> {
        if self.key.get().is_none() {
            return Err(DeliveryError::Closed);
        }
        // If the thread has stopped, the outcome below says so.
        let _ = self.link.command(Command::Cancel {
            ticket: self.ticket,
        });
        self.take(None).unwrap_or(Err(DeliveryError::Closed))
    }

    /// Blocks until the message is delivered or failed (the original's
    /// wished-for "blocking variant of sendto() that returns if
    /// transmission was successful").
    pub fn wait(self) -> Result<(), DeliveryError> {
        self.take(None).unwrap_or(Err(DeliveryError::Closed))
    }

    /// Blocks for at most `timeout`; `None` if the outcome is not known
    /// yet (the message is still being tried; call again).
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Result<(), DeliveryError>> {
        // A timeout too long to represent waits without one.
        self.take(Instant::now().checked_add(timeout))
    }

    /// The outcome if it is known, without blocking.
    pub fn try_wait(&self) -> Option<Result<(), DeliveryError>> {
        self.take(Some(Instant::now()))
    }

    /// Waits for the outcome until `deadline` (or without one) and takes
    /// it. Once taken, later calls report [`DeliveryError::Closed`].
    fn take(&self, deadline: Option<Instant>) -> Option<Result<(), DeliveryError>> {
        let Some(key) = self.key.get() else {
            return Some(Err(DeliveryError::Closed));
        };
        let outcome = self.completions.wait(key, deadline);
        if outcome.is_some() {
            self.key.set(None);
        }
        outcome
    }
}

impl Drop for PendingSend {
    /// Leaves the message to the thread: it is still delivered or fails,
    /// unobserved.
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.completions.abandon(key);
        }
    }
}

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

    /// Takes over a bound standard socket with chosen queue sizes.
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
        let max_payload = config.max_payload_size();
        let completions = Arc::new(Completions::with_capacity(
            config
                .limits
                .max_outstanding_messages
                .min(PRESIZED_COMPLETIONS),
        ));
        let drain_timeout = config.drain_timeout;
        let mut driver = Driver::new(mio::net::UdpSocket::from_std(socket), config)?;
        let local_addr = driver.local_addr()?;
        let poll = Poll::new()?;
        driver.register(poll.registry(), SOCKET)?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let (commands, command_queue) = mpsc::sync_channel(options.command_queue);
        let shared = Arc::new(Shared {
            inbox: Mutex::new(Inbox::default()),
            ready: Condvar::new(),
            capacity: options.receive_queue,
            stats: Mutex::new(Stats::default()),
        });
        let worker = Worker {
            driver,
            poll,
            commands: command_queue,
            commands_open: true,
            more_commands: false,
            shared: shared.clone(),
            pending: HashMap::new(),
            tickets: HashMap::new(),
            closers: Vec::new(),
            close: None,
            drain_timeout,
            finished: false,
        };
        let thread = std::thread::Builder::new()
            .name(format!("gtudp {local_addr}"))
            .spawn(move || worker.run())?;
        tracing::debug!(target: "gtudp", local = %local_addr, "gtUDP blocking socket ready");
        Ok(Self {
            link: Arc::new(Link {
                local: local_addr,
                commands,
                waker,
                next_ticket: AtomicU64::new(0),
            }),
            shared,
            completions,
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

    /// The largest payload one message can carry with this configuration.
    pub fn max_payload_size(&self) -> usize {
        self.max_payload
    }

    /// Counters of the endpoint and the socket I/O, as of the background
    /// thread's latest loop turn.
    pub fn stats(&self) -> Stats {
        *lock(&self.shared.stats)
    }

    /// Counters and the RTT estimate for one peer, while it is tracked;
    /// `None` also once the socket's thread has stopped.
    pub fn peer_stats(&self, peer: SocketAddr) -> Option<PeerStats> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.link.command(Command::PeerStats { peer, reply }).ok()?;
        answer.recv().ok().flatten()
    }

    /// Starts sending `payload` to `to` with guaranteed delivery and returns
    /// at once (blocking only while the command queue is full); wait for
    /// the outcome with [`PendingSend::wait`].
    ///
    /// Fails at once with [`DeliveryError::Refused`] when the payload is
    /// too large or the socket is closing, or [`DeliveryError::Closed`]
    /// when the socket's thread has stopped.
    ///
    /// `payload` is any [`IntoPayload`]: `&[u8]`, `b"..."`, `&str` (copied
    /// once), `Vec<u8>`, `String` or [`Bytes`] (moved). `to` is any
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
        let options = options.to_proto(Instant::now());
        let ticket = self.link.next_ticket.fetch_add(1, Ordering::Relaxed);
        let (key, completion) = self.completions.register();
        let pending = PendingSend {
            completions: self.completions.clone(),
            key: Cell::new(Some(key)),
            to,
            ticket,
            link: self.link.clone(),
        };
        // If the thread has stopped, the command (and its completion) is
        // dropped and `pending` is freed with it.
        self.link
            .command(Command::Send {
                ticket,
                to,
                payload,
                options,
                completion,
            })
            .map_err(|_| DeliveryError::Closed)?;
        Ok(pending)
    }

    /// [`send_to_blocking`](Self::send_to_blocking) with per-message
    /// options.
    pub fn send_to_blocking_with(
        &self,
        payload: impl IntoPayload,
        to: impl ToSocketAddrs,
        options: SendOptions,
    ) -> Result<(), DeliveryError> {
        self.send_to_with(payload, to, options)?.wait()
    }

    /// Sends `datagram` to `to` as is, without gtUDP framing or guarantees,
    /// for peers that do not speak gtUDP. Blocks until the thread has
    /// queued it (or refused it: too large, the raw queue full
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
        let (reply, answer) = mpsc::sync_channel(1);
        self.link
            .command(Command::SendRaw {
                to: canonical_addr(to),
                datagram,
                reply,
            })
            .map_err(|_| SendRawError::Closed)?;
        answer.recv().unwrap_or(Err(SendRawError::Closed))
    }

    /// Sends `payload` to `to` and blocks until the peer's endpoint confirms
    /// receipt (`Ok`) or the endpoint gives up ([`DeliveryError::Failed`]
    /// with the reason) — at most `max_attempts` retransmission timeouts.
    pub fn send_to_blocking(
        &self,
        payload: impl IntoPayload,
        to: impl ToSocketAddrs,
    ) -> Result<(), DeliveryError> {
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
    pub fn send_blocking(&self, payload: impl IntoPayload) -> Result<(), DeliveryError> {
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
        let (reply, summary) = mpsc::sync_channel(1);
        let sent = self.link.command(Command::Close { reply: Some(reply) });
        let summary = match sent {
            Ok(()) => summary.recv().ok(),
            Err(_) => None,
        };
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
        Ok(summary
            .or_else(|| lock(&self.shared.inbox).summary)
            .unwrap_or_else(|| CloseSummary::without_drain(self.stats())))
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
        let mut inbox = self.wait_for_message(deadline.flatten())?;
        let Some(front) = inbox.queue.front() else {
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
        inbox.queue.pop_front();
        Ok((len, from))
    }

    fn recv_until(&self, deadline: Option<Option<Instant>>) -> Result<Datagram, RecvError> {
        let mut inbox = self.wait_for_message(deadline.flatten())?;
        inbox.queue.pop_front().ok_or(RecvError::Closed)
    }

    /// Waits until the inbox holds a message (`Ok` with it at the front) or
    /// the thread has finished and nothing is left (`Closed`).
    fn wait_for_message(
        &self,
        deadline: Option<Instant>,
    ) -> Result<MutexGuard<'_, Inbox>, RecvError> {
        let mut inbox = lock(&self.shared.inbox);
        loop {
            if !inbox.queue.is_empty() {
                return Ok(inbox);
            }
            if inbox.closed {
                return Err(RecvError::Closed);
            }
            inbox = match deadline {
                None => self
                    .shared
                    .ready
                    .wait(inbox)
                    .unwrap_or_else(|poisoned| poisoned.into_inner()),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(RecvError::TimedOut);
                    }
                    self.shared
                        .ready
                        .wait_timeout(inbox, left)
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .0
                }
            };
        }
    }
}

impl Drop for BlockingSocket {
    /// Starts a graceful close in the background thread, without waiting.
    fn drop(&mut self) {
        if !self.closed.load(Ordering::Acquire) {
            // The thread always takes commands, so this only waits for room;
            // it fails at once if the thread has stopped.
            let _ = self.link.command(Command::Close { reply: None });
        }
    }
}

// ----- the background thread ---------------------------------------------

#[derive(Debug)]
enum Command {
    Send {
        ticket: u64,
        to: SocketAddr,
        payload: Bytes,
        options: gtudp_proto::SendOptions,
        completion: Completion,
    },
    Cancel {
        ticket: u64,
    },
    SendRaw {
        to: SocketAddr,
        datagram: Bytes,
        reply: SyncSender<Result<(), SendRawError>>,
    },
    PeerStats {
        peer: SocketAddr,
        reply: SyncSender<Option<PeerStats>>,
    },
    Close {
        reply: Option<SyncSender<CloseSummary>>,
    },
}

/// State shared between the handles and the thread.
#[derive(Debug)]
struct Shared {
    inbox: Mutex<Inbox>,
    /// Signalled when a message arrives or the thread finishes.
    ready: Condvar,
    capacity: usize,
    stats: Mutex<Stats>,
}

#[derive(Debug, Default)]
struct Inbox {
    queue: VecDeque<Datagram>,
    /// The thread has finished: nothing more will arrive.
    closed: bool,
    summary: Option<CloseSummary>,
}

struct Worker {
    driver: Driver,
    poll: Poll,
    commands: Receiver<Command>,
    commands_open: bool,
    /// The last turn stopped at `COMMANDS_PER_TURN`.
    more_commands: bool,
    shared: Arc<Shared>,
    pending: HashMap<MessageId, (u64, Completion)>,
    /// The message of each pending send's ticket, for cancel.
    tickets: HashMap<u64, MessageId>,
    closers: Vec<SyncSender<CloseSummary>>,
    close: Option<CloseStart>,
    drain_timeout: Duration,
    finished: bool,
}

impl Worker {
    fn run(mut self) {
        let mut events = Events::with_capacity(64);
        loop {
            self.deliver_events();
            self.publish_stats();
            if self.driver.is_closed() {
                break;
            }
            if !self.commands_open && !self.driver.is_closing() {
                // Every handle is gone.
                self.begin_close(Instant::now());
                continue;
            }
            let timeout = if self.more_commands {
                Some(Duration::ZERO)
            } else {
                self.driver
                    .poll_timeout()
                    .map(|at| at.saturating_duration_since(Instant::now()))
            };
            if let Err(error) = self.poll.poll(&mut events, timeout) {
                if error.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                tracing::error!(target: "gtudp", local = %self.driver.io_local_addr(), %error, "mio poll failed; closing the socket");
                break;
            }
            let now = Instant::now();
            // The application may have read since the last turn: take in
            // the room it made before feeding new datagrams.
            self.deliver_events();
            for event in events.iter() {
                if event.token() == SOCKET {
                    // An error event is an ICMP report waiting in the
                    // socket's error queue: the receive reads it.
                    if event.is_readable() || event.is_error() {
                        self.driver.handle_readable(now);
                    }
                    if event.is_writable() {
                        self.driver.handle_writable(now);
                    }
                }
            }
            // Commands are checked every turn (cheap), not only on the
            // waker's event, so none waits behind a coalesced wake-up.
            self.take_commands(now);
            self.driver.handle_timeout(now);
        }
        self.finish();
    }

    fn take_commands(&mut self, now: Instant) {
        self.more_commands = false;
        if !self.commands_open {
            return;
        }
        for _ in 0..COMMANDS_PER_TURN {
            match self.commands.try_recv() {
                Ok(command) => self.on_command(now, command),
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => {
                    self.commands_open = false;
                    return;
                }
            }
        }
        self.more_commands = true;
    }

    fn on_command(&mut self, now: Instant, command: Command) {
        match command {
            Command::Send {
                ticket,
                to,
                payload,
                options,
                completion,
            } => match self.driver.send_with_deadline(now, to, payload, options) {
                Ok(id) => {
                    self.pending.insert(id, (ticket, completion));
                    self.tickets.insert(ticket, id);
                }
                Err(error) => completion.resolve(Err(DeliveryError::Refused {
                    to,
                    kind: error.kind(),
                })),
            },
            Command::Cancel { ticket } => {
                if let Some(id) = self.tickets.get(&ticket) {
                    // Unknown means it resolved already: its outcome is out.
                    let _ = self.driver.cancel(*id);
                }
            }
            Command::SendRaw {
                to,
                datagram,
                reply,
            } => {
                let _ = reply.try_send(self.driver.send_raw(to, datagram));
            }
            Command::PeerStats { peer, reply } => {
                let _ = reply.try_send(self.driver.peer_stats(peer));
            }
            Command::Close { reply } => {
                self.closers.extend(reply);
                self.begin_close(now);
            }
        }
    }

    fn begin_close(&mut self, now: Instant) {
        if self.close.is_none() {
            self.close = Some(CloseStart::new(now, self.driver.stats().endpoint));
        }
        self.driver.close(now);
    }

    /// Hands received messages to the inbox and outcomes to their waiting
    /// senders, then tells the driver how much room the inbox has left.
    fn deliver_events(&mut self) {
        // Counters first: a caller woken by an outcome below must see the
        // stats that include it.
        self.publish_stats();
        let shared = self.shared.clone();
        let mut inbox = lock(&shared.inbox);
        let mut arrived = false;
        while let Some(event) = self.driver.poll_event() {
            match gtudp_io::route(event) {
                // The receive room keeps the queue within its capacity.
                Routed::Message(datagram) => {
                    inbox.queue.push_back(datagram);
                    arrived = true;
                }
                Routed::Outcome {
                    id,
                    outcome,
                    abandoned,
                } => {
                    if abandoned {
                        if let Some(close) = &mut self.close {
                            close.note_abandoned();
                        }
                    }
                    self.resolve(id, outcome);
                }
            }
        }
        let room = shared.capacity.saturating_sub(inbox.queue.len());
        drop(inbox);
        if arrived {
            shared.ready.notify_all();
        }
        self.driver.set_receive_room(Some(room));
    }

    fn resolve(&mut self, id: MessageId, outcome: Result<(), DeliveryError>) {
        if let Some((ticket, completion)) = self.pending.remove(&id) {
            self.tickets.remove(&ticket);
            // The PendingSend may have been dropped: nobody to tell.
            completion.resolve(outcome);
        }
    }

    fn publish_stats(&self) {
        *lock(&self.shared.stats) = self.driver.stats();
    }

    /// Reports the close to everyone waiting and fails anything left.
    fn finish(&mut self) {
        self.deliver_events();
        for (_, (_, completion)) in self.pending.drain() {
            completion.resolve(Err(DeliveryError::Closed));
        }
        self.tickets.clear();
        let stats = self.driver.stats();
        let summary = match &self.close {
            Some(close) => close.summary(Instant::now(), self.drain_timeout, stats),
            None => CloseSummary::without_drain(stats),
        };
        *lock(&self.shared.stats) = stats;
        {
            let mut inbox = lock(&self.shared.inbox);
            inbox.closed = true;
            inbox.summary = Some(summary);
        }
        self.shared.ready.notify_all();
        self.finished = true;
        for closer in self.closers.drain(..) {
            let _ = closer.try_send(summary);
        }
        // Commands queued after the close began.
        while let Ok(command) = self.commands.try_recv() {
            match command {
                Command::Send { to, completion, .. } => {
                    completion.resolve(Err(DeliveryError::Refused {
                        to,
                        kind: SendErrorKind::Closing,
                    }));
                }
                Command::Close { reply } => {
                    if let Some(reply) = reply {
                        let _ = reply.try_send(summary);
                    }
                }
                Command::SendRaw { reply, .. } => {
                    let _ = reply.try_send(Err(SendRawError::Closed));
                }
                Command::PeerStats { reply, .. } => {
                    let _ = reply.try_send(None);
                }
                Command::Cancel { .. } => {}
            }
        }
        tracing::debug!(target: "gtudp", local = %self.driver.io_local_addr(), ?summary, "gtUDP socket closed");
    }
}

impl Drop for Worker {
    /// Receivers must not wait forever if the thread ends abnormally.
    fn drop(&mut self) {
        if !self.finished {
            lock(&self.shared.inbox).closed = true;
            self.shared.ready.notify_all();
        }
    }
}

/// Locks a mutex, ignoring poisoning: every critical section here leaves
/// the data consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
