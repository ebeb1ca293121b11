//! The public socket: a cheap, cloneable handle to one driver task.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use gtudp_proto::{Config, Endpoint, PeerStats, SendErrorKind};
use tokio::net::{ToSocketAddrs, UdpSocket};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::completion::{Completions, Key};
use crate::driver::{Command, Driver};
use crate::error::{
    BindError, Closed, DeliveryError, RecvError, SendRawError, TrySendError, TrySendErrorKind,
};
use crate::io::{TokioSocket, UdpIo};
use crate::stats::{CloseSummary, Stats};
pub use gtudp_io::{Datagram, DatagramKind, IntoPayload, SendOptions};

/// A UDP socket with guaranteed delivery: every [`send_to`](Self::send_to)
/// resolves once the peer confirmed receipt (its RECV arrived) or with the
/// reason it did not, and every message received is handed over exactly
/// once.
///
/// The socket is a handle: clone it freely and use it from many tasks. One
/// driver task, spawned on the current Tokio runtime, owns the UDP socket
/// and the protocol state ([`gtudp_proto::Endpoint`]). The driver keeps
/// running while any handle (or pending [`Delivery`]) exists; when the last
/// one is dropped it closes gracefully, in the background, like
/// [`close`](Self::close).
///
/// **Delivered** means the peer's gtUDP endpoint holds the message (its
/// application may not have read it yet). **Failed** means delivery was not
/// confirmed: the payload may still have arrived. Delivery is unordered.
///
/// # Example
///
/// ```
/// use gtudp_tokio::{Config, Socket};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = Socket::bind("127.0.0.1:0", Config::default()).await?;
/// let client = Socket::bind("127.0.0.1:0", Config::default()).await?;
///
/// // Resolves once the server's endpoint confirmed receipt.
/// client.send_to(&b"hello"[..], server.local_addr()).await?;
///
/// let message = server.recv().await?;
/// assert_eq!(&message.payload[..], b"hello");
/// assert_eq!(message.from, client.local_addr());
///
/// let summary = client.close().await?;
/// assert_eq!(summary.stats.endpoint.delivered, 1);
/// # server.close().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Socket {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    commands: mpsc::Sender<Command>,
    outstanding: Arc<Semaphore>,
    inbox: tokio::sync::Mutex<Inbox>,
    local_addr: SocketAddr,
    max_payload: usize,
    next_ticket: AtomicU64,
    status: Arc<Status>,
    completions: Arc<Completions>,
    /// The peer set by `connect`.
    peer: Mutex<Option<SocketAddr>>,
}

/// State the driver publishes for the handles.
#[derive(Debug, Default)]
pub(crate) struct Status {
    pub(crate) closing: AtomicBool,
    pub(crate) stats: Mutex<Stats>,
    pub(crate) summary: Mutex<Option<CloseSummary>>,
}

#[derive(Debug)]
struct Inbox {
    receiver: mpsc::Receiver<Datagram>,
    /// A datagram `recv_from` found too long for its buffer, kept for the
    /// next call.
    kept: Option<Datagram>,
}

/// Settings for a [`Socket`] beyond the protocol's [`Config`].
///
/// ```
/// use gtudp_tokio::{Builder, Config};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), gtudp_tokio::BindError> {
/// let socket = Builder::new(Config::default())
///     .recv_queue(256)
///     .max_outstanding(10_000)
///     .bind("[::1]:0")
///     .await?;
/// assert!(socket.local_addr().is_ipv6());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Builder {
    config: Config,
    recv_queue: usize,
    command_queue: usize,
    max_outstanding: Option<usize>,
}

impl Builder {
    /// Settings with `config` and the defaults below.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            recv_queue: 4_096,
            command_queue: 1_024,
            max_outstanding: None,
        }
    }

    /// Received messages held for `recv`/`recv_from`. When they are not
    /// read and this many wait, new DATA is left unanswered (its sender
    /// resends later): backpressure without loss. Default 4,096: one wake-up
    /// of the driver can take in up to 2,048 messages (4 batched receive
    /// calls of 8 GRO aggregates of up to 64), and a queue smaller than a
    /// burst makes senders wait a retransmission timeout although the
    /// application reads continuously.
    pub fn recv_queue(mut self, capacity: usize) -> Self {
        self.recv_queue = capacity;
        self
    }

    /// Requests (sends, cancels, raw sends) waiting for the driver. When
    /// full, [`Socket::send_nowait`] fails with
    /// [`TrySendErrorKind::QueueFull`] and the other calls wait. Default 1,024.
    pub fn command_queue(mut self, capacity: usize) -> Self {
        self.command_queue = capacity;
        self
    }

    /// Messages awaiting their outcome at once, across all handles. When
    /// reached, [`Socket::send_nowait`] fails with
    /// [`TrySendErrorKind::TooManyOutstanding`] and [`Socket::send_to`]
    /// waits. Default and ceiling: `config.limits.max_outstanding_messages`.
    /// Binding fails with [`BindError::TooLarge`] when the limit that
    /// applies is above [`Semaphore::MAX_PERMITS`] (`usize::MAX >> 3`).
    pub fn max_outstanding(mut self, limit: usize) -> Self {
        self.max_outstanding = Some(limit);
        self
    }

    /// Binds a new UDP socket to `addr` (IPv4 or IPv6) and starts its driver.
    pub async fn bind(self, addr: impl ToSocketAddrs) -> Result<Socket, BindError> {
        let socket = UdpSocket::bind(addr).await?;
        self.from_tokio(socket)
    }

    /// Takes over a standard-library socket (made non-blocking here). Must
    /// be called inside a Tokio runtime; outside one it fails with
    /// [`BindError::NoRuntime`].
    pub fn from_std(self, socket: std::net::UdpSocket) -> Result<Socket, BindError> {
        tokio::runtime::Handle::try_current().map_err(|_| BindError::NoRuntime)?;
        socket.set_nonblocking(true)?;
        self.from_tokio(UdpSocket::from_std(socket)?)
    }

    /// Takes over a Tokio socket. Must be called inside a Tokio runtime;
    /// outside one it fails with [`BindError::NoRuntime`].
    ///
    /// A connected socket works too; ICMP errors it reports
    /// (`ConnectionRefused`) are logged and never stop the driver.
    pub fn from_tokio(self, socket: UdpSocket) -> Result<Socket, BindError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| BindError::NoRuntime)?;
        let max = self.config.limits.max_outstanding_messages;
        let max_outstanding = self.max_outstanding.unwrap_or(max).min(max);
        if max_outstanding > Semaphore::MAX_PERMITS {
            let field = if self.max_outstanding.is_some_and(|limit| limit <= max) {
                "Builder::max_outstanding"
            } else {
                "Config::limits.max_outstanding_messages"
            };
            return Err(BindError::TooLarge {
                field,
                value: max_outstanding,
                max: Semaphore::MAX_PERMITS,
            });
        }
        for (field, value) in [
            ("recv_queue", self.recv_queue),
            ("command_queue", self.command_queue),
            ("max_outstanding", max_outstanding),
        ] {
            if value == 0 {
                return Err(BindError::ZeroCapacity { field });
            }
        }
        let mut seed = [0u8; 16];
        getrandom::fill(&mut seed).map_err(|error| {
            BindError::Io(std::io::Error::other(format!(
                "no random source for the endpoint's secrets: {error}"
            )))
        })?;
        let max_payload = self.config.max_payload_size();
        let endpoint = Endpoint::new(self.config, u128::from_le_bytes(seed))?;
        let local_addr = socket.local_addr()?;
        let io = UdpIo::new(TokioSocket(socket), endpoint.config().framing.clone())?;
        let (command_tx, command_rx) = mpsc::channel(self.command_queue);
        let (inbox_tx, inbox_rx) = mpsc::channel(self.recv_queue);
        let status = Arc::new(Status::default());
        let completions = Arc::new(Completions::with_capacity(
            max_outstanding.min(PRESIZED_COMPLETIONS),
        ));
        let driver = Driver::new(io, endpoint, command_rx, inbox_tx, status.clone());
        runtime.spawn(driver.run());
        tracing::debug!(target: "gtudp", local = %local_addr, "gtUDP socket ready");
        Ok(Socket {
            shared: Arc::new(Shared {
                commands: command_tx,
                outstanding: Arc::new(Semaphore::new(max_outstanding)),
                inbox: tokio::sync::Mutex::new(Inbox {
                    receiver: inbox_rx,
                    kept: None,
                }),
                local_addr,
                max_payload,
                next_ticket: AtomicU64::new(0),
                status,
                completions,
                peer: Mutex::new(None),
            }),
        })
    }
}

impl Socket {
    // ----- creating ------------------------------------------------------

    /// Binds a UDP socket to `addr` (IPv4 or IPv6; port 0 picks one) with
    /// `config` and the default [`Builder`] settings.
    pub async fn bind(addr: impl ToSocketAddrs, config: Config) -> Result<Self, BindError> {
        Builder::new(config).bind(addr).await
    }

    /// Takes over a standard-library socket; see [`Builder::from_std`].
    pub fn from_std(socket: std::net::UdpSocket, config: Config) -> Result<Self, BindError> {
        Builder::new(config).from_std(socket)
    }

    /// Takes over a Tokio socket; see [`Builder::from_tokio`].
    pub fn from_tokio(socket: UdpSocket, config: Config) -> Result<Self, BindError> {
        Builder::new(config).from_tokio(socket)
    }

    // ----- getters ---------------------------------------------------------

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// The largest payload one message can carry
    /// ([`Config::max_payload_size`]).
    pub fn max_payload_size(&self) -> usize {
        self.shared.max_payload
    }

    /// Counters of the endpoint and of the socket I/O, as of the driver's
    /// latest step.
    pub fn stats(&self) -> Stats {
        match self.shared.status.stats.lock() {
            Ok(stats) => *stats,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    /// Counters and the RTT estimate for one peer, while it is tracked.
    pub async fn peer_stats(&self, peer: SocketAddr) -> Result<Option<PeerStats>, Closed> {
        let (reply, outcome) = oneshot::channel();
        self.command(Command::PeerStats { peer, reply }).await?;
        outcome.await.map_err(|_| Closed)
    }

    /// Whether [`close`](Self::close) was called (or every handle dropped).
    pub fn is_closing(&self) -> bool {
        self.shared.status.closing.load(Ordering::Acquire)
    }

    // ----- sending -----------------------------------------------------------

    /// Sends `payload` to `target` with guaranteed delivery: `Ok(())` once
    /// the peer confirmed receipt, otherwise the reason.
    ///
    /// Waits while [`Builder::max_outstanding`] messages are unresolved or
    /// the command queue is full.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future while it waits for room sends nothing. Once the
    /// message is handed to the driver, dropping the future does **not**
    /// cancel delivery: the message is still delivered or fails, unobserved.
    /// To cancel, use [`start_send`](Self::start_send) and
    /// [`Delivery::cancel`].
    ///
    /// `payload` is any [`IntoPayload`]: `&[u8]`, `b"..."`, `&str` (copied
    /// once), `Vec<u8>`, `String` or [`Bytes`] (moved). `target` is any
    /// [`ToSocketAddrs`] (`"host:port"`, `(ip, port)`, a `SocketAddr`),
    /// resolved once; the first address is used.
    pub async fn send_to(
        &self,
        payload: impl IntoPayload,
        target: impl ToSocketAddrs,
    ) -> Result<(), DeliveryError> {
        self.send_to_with(payload, target, SendOptions::default())
            .await
    }

    /// [`send_to`](Self::send_to) with per-message options.
    pub async fn send_to_with(
        &self,
        payload: impl IntoPayload,
        target: impl ToSocketAddrs,
        options: SendOptions,
    ) -> Result<(), DeliveryError> {
        self.start_send_with(payload, target, options).await?.await
    }

    /// Hands `payload` to the driver, waiting for room if needed, and
    /// returns a [`Delivery`] to await (or drop) later.
    ///
    /// Cancel safety: dropping this future before it returns sends nothing.
    pub async fn start_send(
        &self,
        payload: impl IntoPayload,
        target: impl ToSocketAddrs,
    ) -> Result<Delivery, DeliveryError> {
        self.start_send_with(payload, target, SendOptions::default())
            .await
    }

    /// [`start_send`](Self::start_send) with per-message options.
    pub async fn start_send_with(
        &self,
        payload: impl IntoPayload,
        target: impl ToSocketAddrs,
        options: SendOptions,
    ) -> Result<Delivery, DeliveryError> {
        let target = resolve(target).await?;
        let payload = payload.into_payload();
        let options = options.to_proto(tokio::time::Instant::now().into_std());
        if let Err(kind) = self.check(&payload) {
            return Err(refusal(kind, target));
        }
        let permit = self
            .shared
            .outstanding
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| DeliveryError::Closed)?;
        let slot = self
            .shared
            .commands
            .reserve()
            .await
            .map_err(|_| DeliveryError::Closed)?;
        let (command, delivery) = self.send_command(payload, target, options, permit);
        slot.send(command);
        Ok(delivery)
    }

    /// Hands `payload` to the driver at once and returns a [`Delivery`] to
    /// await later, or an error (with the payload) when a configured limit
    /// is reached: it never waits and never queues without bound.
    ///
    /// Dropping the returned [`Delivery`] does not cancel the send. The
    /// target is a `SocketAddr`, as resolving a name could wait.
    pub fn send_nowait(
        &self,
        payload: impl IntoPayload,
        target: SocketAddr,
    ) -> Result<Delivery, TrySendError> {
        self.send_nowait_with(payload, target, SendOptions::default())
    }

    /// [`send_nowait`](Self::send_nowait) with per-message options.
    pub fn send_nowait_with(
        &self,
        payload: impl IntoPayload,
        target: SocketAddr,
        options: SendOptions,
    ) -> Result<Delivery, TrySendError> {
        let target = gtudp_proto::canonical_addr(target);
        let payload = payload.into_payload();
        let options = options.to_proto(tokio::time::Instant::now().into_std());
        if let Err(kind) = self.check(&payload) {
            return Err(TrySendError::new(kind, payload));
        }
        let Ok(permit) = self.shared.outstanding.clone().try_acquire_owned() else {
            return Err(TrySendError::new(
                TrySendErrorKind::TooManyOutstanding,
                payload,
            ));
        };
        let slot = match self.shared.commands.try_reserve() {
            Ok(slot) => slot,
            Err(mpsc::error::TrySendError::Full(())) => {
                return Err(TrySendError::new(TrySendErrorKind::QueueFull, payload))
            }
            Err(mpsc::error::TrySendError::Closed(())) => {
                return Err(TrySendError::new(TrySendErrorKind::Closed, payload))
            }
        };
        let (command, delivery) = self.send_command(payload, target, options, permit);
        slot.send(command);
        Ok(delivery)
    }

    /// Queues a datagram sent as is, without gtUDP framing or guarantees,
    /// for peers that do not speak gtUDP. Returns once it is queued.
    pub async fn send_raw_to(
        &self,
        datagram: impl IntoPayload,
        target: SocketAddr,
    ) -> Result<(), SendRawError> {
        let (reply, outcome) = oneshot::channel();
        let command = Command::SendRaw {
            to: gtudp_proto::canonical_addr(target),
            datagram: datagram.into_payload(),
            reply,
        };
        self.command(command)
            .await
            .map_err(|_| SendRawError::Closed)?;
        outcome.await.unwrap_or(Err(SendRawError::Closed))
    }

    // ----- one peer ------------------------------------------------------

    /// Sets the peer that [`send`](Self::send) and
    /// [`send_with`](Self::send_with) send to, resolving `target` once (the
    /// first address), like [`tokio::net::UdpSocket::connect`].
    ///
    /// Unlike a connected UDP socket, this one still receives from every
    /// peer (each message received was confirmed to its sender, so none is
    /// filtered out): compare [`Datagram::from`] with
    /// [`peer_addr`](Self::peer_addr) to keep one peer's. The peer is shared
    /// by every clone of the handle.
    pub async fn connect(&self, target: impl ToSocketAddrs) -> std::io::Result<()> {
        let peer = resolve(target).await.map_err(std::io::Error::from)?;
        *lock(&self.shared.peer) = Some(peer);
        Ok(())
    }

    /// The peer set by [`connect`](Self::connect); `NotConnected` before.
    pub fn peer_addr(&self) -> std::io::Result<SocketAddr> {
        gtudp_io::connected_peer(*lock(&self.shared.peer))
    }

    /// [`send_to`](Self::send_to) the peer set by [`connect`](Self::connect);
    /// [`DeliveryError::Unresolved`] (`NotConnected`) before `connect`.
    pub async fn send(&self, payload: impl IntoPayload) -> Result<(), DeliveryError> {
        self.send_with(payload, SendOptions::default()).await
    }

    /// [`send`](Self::send) with per-message options.
    pub async fn send_with(
        &self,
        payload: impl IntoPayload,
        options: SendOptions,
    ) -> Result<(), DeliveryError> {
        let peer = gtudp_io::send_target(*lock(&self.shared.peer))?;
        self.send_to_with(payload, peer, options).await
    }

    // ----- receiving -----------------------------------------------------

    /// Waits for the next message (or foreign datagram) and copies it into
    /// `buf`, like [`tokio::net::UdpSocket::recv_from`] but never cutting:
    /// a datagram longer than `buf` is reported as
    /// [`RecvError::Truncated`] and kept for the next call.
    ///
    /// Cancel safe: if the future is dropped, no datagram is lost.
    pub async fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, SocketAddr), RecvError> {
        let mut inbox = self.shared.inbox.lock().await;
        let datagram = match inbox.kept.take() {
            Some(datagram) => datagram,
            None => inbox.receiver.recv().await.ok_or(RecvError::Closed)?,
        };
        let len = datagram.payload.len();
        if len > buf.len() {
            inbox.kept = Some(datagram);
            return Err(RecvError::Truncated {
                len,
                capacity: buf.len(),
            });
        }
        buf[..len].copy_from_slice(&datagram.payload);
        Ok((len, datagram.from))
    }

    /// Waits for the next message (or foreign datagram), without copying.
    ///
    /// Cancel safe: if the future is dropped, no datagram is lost.
    pub async fn recv(&self) -> Result<Datagram, RecvError> {
        let mut inbox = self.shared.inbox.lock().await;
        match inbox.kept.take() {
            Some(datagram) => Ok(datagram),
            None => inbox.receiver.recv().await.ok_or(RecvError::Closed),
        }
    }

    // ----- closing -------------------------------------------------------

    /// Closes the socket: no new sends or incoming messages; messages in
    /// flight and RECVs awaiting their ACK keep being resolved until done or
    /// until [`Config::drain_timeout`], when what is left fails with
    /// [`FailureReason::EndpointClosed`](gtudp_proto::FailureReason). Returns
    /// a summary once the driver has stopped. Messages already received can
    /// still be read; then receives return [`RecvError::Closed`].
    ///
    /// Every handle's `close` returns the same summary; calling it again
    /// after the close is cheap.
    pub async fn close(&self) -> Result<CloseSummary, Closed> {
        let (reply, outcome) = oneshot::channel();
        if self.command(Command::Close { reply }).await.is_ok() {
            if let Ok(summary) = outcome.await {
                return Ok(summary);
            }
        }
        let summary = match self.shared.status.summary.lock() {
            Ok(summary) => *summary,
            Err(poisoned) => *poisoned.into_inner(),
        };
        summary.ok_or(Closed)
    }

    // ----- private helpers -----------------------------------------------

    async fn command(&self, command: Command) -> Result<(), Closed> {
        self.shared.commands.send(command).await.map_err(|_| Closed)
    }

    fn check(&self, payload: &Bytes) -> Result<(), TrySendErrorKind> {
        if self.is_closing() {
            return Err(TrySendErrorKind::Closed);
        }
        if payload.len() > self.shared.max_payload {
            return Err(TrySendErrorKind::PayloadTooLarge {
                size: payload.len(),
                max: self.shared.max_payload,
            });
        }
        Ok(())
    }

    fn send_command(
        &self,
        payload: Bytes,
        to: SocketAddr,
        options: gtudp_proto::SendOptions,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> (Command, Delivery) {
        let ticket = self.shared.next_ticket.fetch_add(1, Ordering::Relaxed);
        let (key, completion) = self.shared.completions.register();
        let command = Command::Send {
            ticket,
            to,
            payload,
            options,
            completion,
            permit,
        };
        let delivery = Delivery {
            completions: self.shared.completions.clone(),
            key: Some(key),
            ticket,
            to,
            commands: self.shared.commands.clone(),
        };
        (command, delivery)
    }
}

/// Completion slots allocated up front (fewer if `max_outstanding` is
/// lower); the registry grows past this only if more sends are pending at
/// once, and keeps that room.
const PRESIZED_COMPLETIONS: usize = 1_024;

/// The first address `target` resolves to, in canonical form.
async fn resolve(target: impl ToSocketAddrs) -> Result<SocketAddr, DeliveryError> {
    gtudp_io::first_address(tokio::net::lookup_host(target).await)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn refusal(kind: TrySendErrorKind, to: SocketAddr) -> DeliveryError {
    match kind {
        TrySendErrorKind::PayloadTooLarge { size, max } => DeliveryError::Refused {
            to,
            kind: SendErrorKind::PayloadTooLarge { size, max },
        },
        TrySendErrorKind::Closed => DeliveryError::Refused {
            to,
            kind: SendErrorKind::Closing,
        },
        _ => DeliveryError::Closed,
    }
}

/// The outcome of one guaranteed send, to await: `Ok(())` once the peer
/// confirmed receipt, otherwise the reason.
///
/// Dropping a `Delivery` does **not** cancel the send; call
/// [`cancel`](Self::cancel) for that.
#[derive(Debug)]
#[must_use = "dropping a Delivery does not cancel the send, but its outcome is lost"]
pub struct Delivery {
    /// Where the driver leaves the outcome.
    completions: Arc<Completions>,
    /// The send's slot in `completions`; `None` once the outcome was taken.
    key: Option<Key>,
    ticket: u64,
    to: SocketAddr,
    commands: mpsc::Sender<Command>,
}

impl Delivery {
    /// Where the message is going.
    pub fn destination(&self) -> SocketAddr {
        self.to
    }

    /// A number naming this send among the socket's sends, for logs.
    pub fn id(&self) -> u64 {
        self.ticket
    }

    /// Stops trying to deliver the message and returns its outcome: an
    /// error with [`FailureReason::Cancelled`](gtudp_proto::FailureReason),
    /// or `Ok(())` if the RECV won the race. A cancelled payload may still
    /// have arrived.
    pub async fn cancel(self) -> Result<(), DeliveryError> {
        // If the driver is gone, the outcome below says so.
        let _ = self
            .commands
            .send(Command::Cancel {
                ticket: self.ticket,
            })
            .await;
        self.await
    }
}

impl Future for Delivery {
    type Output = Result<(), DeliveryError>;

    /// # Panics
    ///
    /// When polled again after it returned the outcome.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(key) = self.key else {
            panic!("Delivery polled after it completed");
        };
        let outcome = self.completions.poll(key, cx);
        if outcome.is_ready() {
            self.key = None;
        }
        outcome
    }
}

impl Drop for Delivery {
    /// Leaves the send to the driver: it is still delivered or fails,
    /// unobserved.
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.completions.abandon(key);
        }
    }
}
