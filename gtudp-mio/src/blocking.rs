//! [`BlockingSocket`]: the original gtUDP's shape (`sendto`, `recvfrom`,
//! `cleanup`) on a background thread that runs a [`Driver`] in a mio loop.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gtudp_io::Routed;
use gtudp_proto::{Config, EndpointStats, MessageId, SendErrorKind};
use mio::{Events, Poll, Token, Waker};

use crate::completion::{Completion, Completions, Key};
use crate::driver::Driver;
use crate::error::{BindError, DeliveryError, RecvError};
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

/// A message taken by [`BlockingSocket::recv`] or
/// [`BlockingSocket::recv_timeout`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Datagram {
    /// The message, as the peer sent it.
    pub payload: Bytes,
    /// The sender's address.
    pub from: SocketAddr,
    /// Whether this is a foreign (non-gtUDP) datagram, handed over because
    /// [`Config::deliver_foreign`] is on; it carried no delivery guarantee.
    pub foreign: bool,
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
/// let summary = client.close();
/// assert_eq!(summary.stats.endpoint.delivered, 1);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct BlockingSocket {
    commands: SyncSender<Command>,
    waker: Arc<Waker>,
    shared: Arc<Shared>,
    completions: Arc<Completions>,
    local_addr: SocketAddr,
    max_payload: usize,
    thread: Option<JoinHandle<()>>,
}

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
}

impl PendingSend {
    /// Where the message is going.
    pub fn destination(&self) -> SocketAddr {
        self.to
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
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
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
            closers: Vec::new(),
            close: None,
            drain_timeout,
            finished: false,
        };
        let thread = std::thread::Builder::new()
            .name(format!("gtudp {local_addr}"))
            .spawn(move || worker.run())?;
        Ok(Self {
            commands,
            waker,
            shared,
            completions,
            local_addr,
            max_payload,
            thread: Some(thread),
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

    /// Starts sending `payload` to `to` with guaranteed delivery and returns
    /// at once (blocking only while the command queue is full); wait for
    /// the outcome with [`PendingSend::wait`].
    ///
    /// Fails at once with [`DeliveryError::Refused`] when the payload is
    /// too large, or [`DeliveryError::Closed`] when the socket's thread has
    /// stopped.
    pub fn send_to(
        &self,
        payload: impl Into<Bytes>,
        to: SocketAddr,
    ) -> Result<PendingSend, DeliveryError> {
        let payload = payload.into();
        if payload.len() > self.max_payload {
            return Err(DeliveryError::Refused {
                to,
                kind: SendErrorKind::PayloadTooLarge {
                    size: payload.len(),
                    max: self.max_payload,
                },
            });
        }
        let (key, completion) = self.completions.register();
        let pending = PendingSend {
            completions: self.completions.clone(),
            key: Cell::new(Some(key)),
            to,
        };
        // If the thread has stopped, the command (and its completion) is
        // dropped and `pending` is freed with it.
        self.command(Command::Send {
            to,
            payload,
            completion,
        })
        .map_err(|_| DeliveryError::Closed)?;
        Ok(pending)
    }

    /// Sends `payload` to `to` and blocks until the peer's endpoint confirms
    /// receipt (`Ok`) or the endpoint gives up ([`DeliveryError::Failed`]
    /// with the reason) — at most `max_attempts` retransmission timeouts.
    pub fn send_to_blocking(
        &self,
        payload: impl Into<Bytes>,
        to: SocketAddr,
    ) -> Result<(), DeliveryError> {
        self.send_to(payload, to)?.wait()
    }

    /// Blocks until a message arrives and copies it into `buf`, returning
    /// its length and sender.
    ///
    /// A message longer than `buf` is not cut: it stays queued and
    /// [`RecvError::Truncated`] says how long it is.
    pub fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, SocketAddr), RecvError> {
        let mut inbox = self.wait_for_message(None)?;
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

    /// Blocks until a message arrives and returns it whole.
    pub fn recv(&self) -> Result<Datagram, RecvError> {
        let mut inbox = self.wait_for_message(None)?;
        inbox.queue.pop_front().ok_or(RecvError::Closed)
    }

    /// Like [`recv`](Self::recv), giving up with [`RecvError::TimedOut`]
    /// after `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Datagram, RecvError> {
        let deadline = Instant::now().checked_add(timeout);
        let mut inbox = self.wait_for_message(deadline)?;
        inbox.queue.pop_front().ok_or(RecvError::Closed)
    }

    /// Closes the socket: no new messages in or out, messages in flight and
    /// RECVs awaiting their ACK resolved until done or until
    /// `Config::drain_timeout`; blocks until then and says how it went.
    pub fn close(mut self) -> CloseSummary {
        let (reply, summary) = mpsc::sync_channel(1);
        let sent = self.command(Command::Close { reply: Some(reply) });
        let summary = match sent {
            Ok(()) => summary.recv().ok(),
            Err(_) => None,
        };
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        summary
            .or_else(|| lock(&self.shared.inbox).summary)
            .unwrap_or_else(|| empty_summary(self.stats()))
    }

    /// The original's name for [`close`](Self::close).
    pub fn cleanup(self) -> CloseSummary {
        self.close()
    }

    fn command(&self, command: Command) -> Result<(), mpsc::SendError<Command>> {
        self.commands.send(command)?;
        if let Err(error) = self.waker.wake() {
            tracing::warn!(target: "gtudp", %error, "could not wake the gtUDP thread");
        }
        Ok(())
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
        if self.thread.is_some() {
            // The thread always takes commands, so this only waits for room;
            // it fails at once if the thread has stopped.
            let _ = self.command(Command::Close { reply: None });
        }
    }
}

// ----- the background thread ---------------------------------------------

#[derive(Debug)]
enum Command {
    Send {
        to: SocketAddr,
        payload: Bytes,
        completion: Completion,
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

struct CloseStart {
    at: Instant,
    stats: EndpointStats,
    abandoned: u64,
}

struct Worker {
    driver: Driver,
    poll: Poll,
    commands: Receiver<Command>,
    commands_open: bool,
    /// The last turn stopped at `COMMANDS_PER_TURN`.
    more_commands: bool,
    shared: Arc<Shared>,
    pending: HashMap<MessageId, Completion>,
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
                tracing::error!(target: "gtudp", %error, "mio poll failed; closing the socket");
                break;
            }
            let now = Instant::now();
            // The application may have read since the last turn: take in
            // the room it made before feeding new datagrams.
            self.deliver_events();
            for event in events.iter() {
                if event.token() == SOCKET {
                    if event.is_readable() {
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
                to,
                payload,
                completion,
            } => match self.driver.send(now, to, payload) {
                Ok(id) => {
                    self.pending.insert(id, completion);
                }
                Err(error) => completion.resolve(Err(DeliveryError::Refused {
                    to,
                    kind: error.kind(),
                })),
            },
            Command::Close { reply } => {
                self.closers.extend(reply);
                self.begin_close(now);
            }
        }
    }

    fn begin_close(&mut self, now: Instant) {
        if self.close.is_none() {
            self.close = Some(CloseStart {
                at: now,
                stats: self.driver.stats().endpoint,
                abandoned: 0,
            });
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
                Routed::Message {
                    from,
                    payload,
                    foreign,
                } => {
                    inbox.queue.push_back(Datagram {
                        payload,
                        from,
                        foreign,
                    });
                    arrived = true;
                }
                Routed::Outcome {
                    id,
                    outcome,
                    abandoned,
                } => {
                    if abandoned {
                        if let Some(close) = &mut self.close {
                            close.abandoned += 1;
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
        if let Some(completion) = self.pending.remove(&id) {
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
        for (_, completion) in self.pending.drain() {
            completion.resolve(Err(DeliveryError::Closed));
        }
        let stats = self.driver.stats();
        let summary = match &self.close {
            Some(close) => {
                let elapsed = Instant::now().saturating_duration_since(close.at);
                CloseSummary {
                    delivered: stats.endpoint.delivered - close.stats.delivered,
                    failed: stats.endpoint.failed - close.stats.failed,
                    abandoned: close.abandoned,
                    deadline_reached: elapsed >= self.drain_timeout,
                    elapsed,
                    stats,
                }
            }
            None => empty_summary(stats),
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
            }
        }
        tracing::debug!(target: "gtudp", ?summary, "gtUDP socket closed");
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

fn empty_summary(stats: Stats) -> CloseSummary {
    CloseSummary {
        delivered: 0,
        failed: 0,
        abandoned: 0,
        deadline_reached: false,
        elapsed: Duration::ZERO,
        stats,
    }
}

/// Locks a mutex, ignoring poisoning: every critical section here leaves
/// the data consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
