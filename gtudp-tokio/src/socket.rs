//! The public socket: a cheap, cloneable handle to the shared state that
//! the calling tasks drive under a short lock (see [`crate::core`]).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use gtudp_proto::{Config, Endpoint, PeerStats, SendErrorKind};
use tokio::net::{ToSocketAddrs, UdpSocket};
use tokio::sync::{Notify, Semaphore};

use crate::completion::{Completions, Key};
use crate::core::{Core, Take};
use crate::error::{
    BindError, Closed, DeliveryError, RecvError, SendRawError, TrySendError, TrySendErrorKind,
};
use crate::io::{TokioSocket, UdpIo};
use crate::shared::{lock, now, Shared};
use crate::stats::{CloseSummary, Stats};
pub use gtudp_io::{Datagram, DatagramKind, Delivered, IntoPayload, SendOptions};

/// A UDP socket with guaranteed delivery: every [`send_to`](Self::send_to)
/// resolves once the peer confirmed receipt (its RECV arrived) or with the
/// reason it did not, and every message received is handed over exactly
/// once.
///
/// The socket is a handle: clone it freely and use it from many tasks.
/// Each call drives the protocol state ([`gtudp_proto::Endpoint`]) on the
/// calling task, under a short lock never held across an `await`: a send
/// writes its DATA with a non-blocking system call before it returns, a
/// receive reads the socket itself and hands the message over, its RECV
/// leaving with the task's next call on the socket (its reply, say) in one
/// system call, or within about a millisecond. A background task, spawned
/// on the current Tokio runtime, runs the timers and answers input while no
/// task is in `recv`.
/// When the last handle is dropped the socket closes gracefully, in the
/// background, like [`close`](Self::close); pending [`Delivery`]s still
/// resolve.
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
    handle: Arc<Handle>,
}

/// What the [`Socket`] handles share; its drop closes the socket.
#[derive(Debug)]
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    /// Every handle is gone: nobody can read any more, so close.
    fn drop(&mut self) {
        self.shared.begin_close();
    }
}

/// Counts a task inside `recv` while it lives (cancel safe).
struct Reading<'a>(&'a AtomicUsize);

impl<'a> Reading<'a> {
    fn new(readers: &'a AtomicUsize) -> Self {
        readers.fetch_add(1, Ordering::SeqCst);
        Self(readers)
    }
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
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
    fragmentation: gtudp_io::Fragmentation,
    pub(crate) shard_threads: bool,
}

impl Builder {
    /// Settings with `config` and the defaults below.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            recv_queue: 4_096,
            command_queue: 1_024,
            max_outstanding: None,
            fragmentation: gtudp_io::Fragmentation::Forbidden,
            shard_threads: false,
        }
    }

    /// Received messages held for `recv`/`recv_from`. When they are not
    /// read and this many wait, new DATA is left unanswered (its sender
    /// resends later): backpressure without loss. Default 4,096: one read
    /// of the socket can take in up to 2,048 messages (4 batched receive
    /// calls of 8 GRO aggregates of up to 64), and a queue smaller than a
    /// burst makes senders wait a retransmission timeout although the
    /// application reads continuously.
    pub fn recv_queue(mut self, capacity: usize) -> Self {
        self.recv_queue = capacity;
        self
    }

    /// Kept so that existing code compiles; it bounds nothing any more. A
    /// send is handed to the endpoint by the calling task, so no request
    /// queue exists and [`TrySendErrorKind::QueueFull`] does not occur.
    /// Must not be 0. Default 1,024.
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

    /// Whether the kernel may split a datagram too large for the path into
    /// IP fragments. Default [`Fragmentation::Forbidden`](crate::Fragmentation):
    /// a datagram larger than the interface's MTU is refused and its
    /// message fails at once with
    /// [`FailureReason::TooLarge`](crate::FailureReason::TooLarge).
    /// `Allowed` sends one datagram up to `config.max_datagram_size` as a
    /// plain socket does, fragmented where the path needs it (Linux only;
    /// elsewhere binding fails with an `Unsupported` error). A lost
    /// fragment costs the whole datagram: see `docs/tuning.md`.
    ///
    /// ```
    /// use gtudp_tokio::{Builder, Config, Fragmentation};
    ///
    /// let builder = Builder::new(Config::default()).fragmentation(Fragmentation::Allowed);
    /// # let _ = builder;
    /// ```
    pub fn fragmentation(mut self, choice: crate::Fragmentation) -> Self {
        self.fragmentation = choice;
        self
    }

    /// Whether [`bind_sharded`](Self::bind_sharded) drives each shard on a
    /// thread of its own (default `false`: every shard's background task
    /// runs on the runtime `bind_sharded` is called on).
    ///
    /// With `true`, each shard gets a thread named `gtudp-shard-{index}`
    /// running a Tokio current-thread runtime: the shard's background task
    /// runs there, and so do the tasks given to
    /// [`ShardedSocket::spawn_on_shard`](crate::ShardedSocket::spawn_on_shard),
    /// typically one that receives from the shard and replies through it.
    /// One shard's work then stays on one thread, as with one driver per
    /// core, where on a multi-threaded runtime a shard's receiving task and
    /// its background task run on different workers and wake each other.
    /// (A one-shard sink server on 2 cores, `many_peers` load: 494k
    /// messages/s at 2.3 µs of CPU each on 1.1 cores as tasks, 627k at
    /// 1.6 µs on 1.0 core on its own thread.) Use at most one shard per
    /// core that is free for it: more shard threads than cores take turns
    /// on them, and each reads smaller batches (on those 2 cores, shared
    /// with the load, 2 shard threads took 1.9 µs per message and 4 took
    /// 2.4 µs). The shards' handles work from any runtime or thread, as
    /// usual. A thread ends once its shard has closed and every task
    /// spawned on it has ended. Plain [`bind`](Self::bind) ignores this
    /// setting.
    ///
    /// ```
    /// use gtudp_tokio::{Builder, Config};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let server = Builder::new(Config::default())
    ///     .shard_threads(true)
    ///     .bind_sharded("127.0.0.1:0", 2)
    ///     .await?;
    /// for (index, shard) in server.shards().iter().enumerate() {
    ///     let shard = shard.clone();
    ///     server.spawn_on_shard(index, async move {
    ///         while let Ok(message) = shard.recv().await {
    ///             let _ = shard.send_to(message.payload, message.from).await;
    ///         }
    ///     });
    /// }
    /// # let client = gtudp_tokio::Socket::bind("127.0.0.1:0", Config::default()).await?;
    /// # client.send_to(&b"ping"[..], server.local_addr()).await?;
    /// # assert_eq!(&client.recv().await?.payload[..], b"ping");
    /// # server.close().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn shard_threads(mut self, on: bool) -> Self {
        self.shard_threads = on;
        self
    }

    /// Binds a new UDP socket to `addr` (IPv4 or IPv6) and starts its
    /// background task. Must be awaited inside a Tokio runtime; outside one
    /// it fails with [`BindError::NoRuntime`] (before resolving `addr` or
    /// binding anything). It returns once the runtime's reactor has seen
    /// the new socket writable, so that the first sends leave within their
    /// calls; like any I/O it awaits, that needs the reactor driven (a
    /// current-thread runtime's `block_on`, not `Handle::block_on` from
    /// another thread while nothing drives it).
    pub async fn bind(self, addr: impl ToSocketAddrs) -> Result<Socket, BindError> {
        // Tokio's bind (and its name lookup) panic outside a runtime.
        tokio::runtime::Handle::try_current().map_err(|_| BindError::NoRuntime)?;
        let socket = UdpSocket::bind(addr).await?;
        // A socket new to the runtime is writable, but Tokio learns it only
        // at its reactor's next turn: until then every send would find it
        // "full" and leave its DATA to the background task. Wait for that
        // turn here, once, so the first sends go out within their calls.
        socket.writable().await?;
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
    /// (`ConnectionRefused`) are logged and never stop the socket.
    pub fn from_tokio(self, socket: UdpSocket) -> Result<Socket, BindError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| BindError::NoRuntime)?;
        let (socket, background) = self.start(socket)?;
        runtime.spawn(background);
        Ok(socket)
    }

    /// Makes the socket from a Tokio socket (registered with the current
    /// runtime) and returns it with its background task, for the caller
    /// to run.
    pub(crate) fn start(
        self,
        socket: UdpSocket,
    ) -> Result<(Socket, impl Future<Output = ()> + Send + 'static), BindError> {
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
        let max_payload = self.config.max_message_size();
        let endpoint = Endpoint::new(self.config, u128::from_le_bytes(seed))?;
        let local_addr = socket.local_addr()?;
        let socket = Arc::new(socket);
        let mut io = UdpIo::new(
            TokioSocket(socket.clone()),
            endpoint.config().framing.clone(),
        )?;
        if self.fragmentation != gtudp_io::Fragmentation::Forbidden {
            io.set_fragmentation(self.fragmentation)?;
        }
        let completions = Arc::new(Completions::with_capacity(
            max_outstanding.min(PRESIZED_COMPLETIONS),
        ));
        let shared = Arc::new(Shared {
            core: Mutex::new(Core::new(io, endpoint, self.recv_queue)),
            socket,
            outstanding: Arc::new(Semaphore::new(max_outstanding)),
            local_addr,
            max_payload,
            next_ticket: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            completions,
            readers: AtomicUsize::new(0),
            queued: Notify::new(),
            closed: Notify::new(),
            background: Notify::new(),
            peer: Mutex::new(None),
            siblings: OnceLock::new(),
        });
        let background = crate::background::run(crate::background::Finish(shared.clone()));
        tracing::debug!(target: "gtudp", local = %local_addr, "gtUDP socket ready");
        let socket = Socket {
            handle: Arc::new(Handle { shared }),
        };
        Ok((socket, background))
    }
}

impl Socket {
    // ----- creating ------------------------------------------------------

    /// Binds a UDP socket to `addr` (IPv4 or IPv6; port 0 picks one) with
    /// `config` and the default [`Builder`] settings. Outside a Tokio
    /// runtime it fails with [`BindError::NoRuntime`].
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
        self.shared().local_addr
    }

    /// The largest payload one message can carry
    /// ([`Config::max_message_size`]: one datagram's payload, or with
    /// [`Config::large_messages`] on, its `max_message_size`).
    pub fn max_payload_size(&self) -> usize {
        self.shared().max_payload
    }

    /// Counters of the endpoint and of the socket I/O, as of now: a task
    /// woken by a send's outcome sees counters that include it.
    pub fn stats(&self) -> Stats {
        self.shared().with_core(|core| core.stats())
    }

    /// Counters and the RTT estimate for one peer, while it is tracked;
    /// [`Closed`] once the socket has closed.
    pub async fn peer_stats(&self, peer: SocketAddr) -> Result<Option<PeerStats>, Closed> {
        let peer = gtudp_proto::canonical_addr(peer);
        self.shared().with_core(|core| {
            if core.is_finished() {
                Err(Closed)
            } else {
                Ok(core.peer_stats(peer))
            }
        })
    }

    /// Whether [`close`](Self::close) was called (or every handle dropped).
    pub fn is_closing(&self) -> bool {
        self.shared().closing.load(Ordering::Acquire)
    }

    // ----- sending -----------------------------------------------------------

    /// Sends `payload` to `target` with guaranteed delivery: `Ok(len)`, the
    /// payload's length in bytes (as [`tokio::net::UdpSocket::send_to`]
    /// returns the bytes sent), once the peer confirmed receipt; otherwise
    /// the reason.
    ///
    /// A message is never sent in part, so `len` is always the whole
    /// payload. Migrating: this returned `Ok(())` before; a `match` on
    /// `Ok(())` becomes `Ok(_)`, and `?` or `.is_ok()` need no change.
    ///
    /// Waits while [`Builder::max_outstanding`] messages are unresolved.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future while it waits for room sends nothing. Once the
    /// message is handed to the endpoint, dropping the future does **not**
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
    ) -> Result<usize, DeliveryError> {
        self.send_to_with(payload, target, SendOptions::default())
            .await
    }

    /// [`send_to`](Self::send_to) with per-message options; `Ok(len)`, the
    /// payload's length, once delivered.
    pub async fn send_to_with(
        &self,
        payload: impl IntoPayload,
        target: impl ToSocketAddrs,
        options: SendOptions,
    ) -> Result<usize, DeliveryError> {
        let payload = payload.into_payload();
        let len = payload.len();
        self.start_send_with(payload, target, options)
            .await?
            .await?;
        Ok(len)
    }

    /// Hands `payload` to the endpoint, waiting for room if needed, and
    /// returns a [`Delivery`] to await (or drop) later. The DATA is written
    /// to the socket before this returns, unless the socket's send buffer is
    /// full (then the background task writes it once there is room).
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
        let options = options.to_proto(now());
        if let Err(kind) = self.check(&payload) {
            return Err(refusal(kind, target));
        }
        let permit = self
            .shared()
            .outstanding
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| DeliveryError::Closed)?;
        Ok(self.submit(now(), payload, target, options, permit))
    }

    /// Hands `payload` to the endpoint at once and returns a [`Delivery`]
    /// to await later, or an error (with the payload) when a configured
    /// limit is reached: it never waits and never queues without bound.
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
        // One clock read for the options and the send: nothing waits
        // between them.
        let now = now();
        let options = options.to_proto(now);
        if let Err(kind) = self.check(&payload) {
            return Err(TrySendError::new(kind, payload));
        }
        let Ok(permit) = self.shared().outstanding.clone().try_acquire_owned() else {
            return Err(TrySendError::new(
                TrySendErrorKind::TooManyOutstanding,
                payload,
            ));
        };
        Ok(self.submit(now, payload, target, options, permit))
    }

    /// Sends a datagram as is, without gtUDP framing or guarantees, for
    /// peers that do not speak gtUDP. Returns once it is written to the
    /// socket (or, when the socket's buffer is full, queued behind what
    /// waits).
    pub async fn send_raw_to(
        &self,
        datagram: impl IntoPayload,
        target: SocketAddr,
    ) -> Result<(), SendRawError> {
        let to = gtudp_proto::canonical_addr(target);
        let datagram = datagram.into_payload();
        self.shared()
            .with_core(|core| core.send_raw(now(), to, datagram))
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
        *lock(&self.shared().peer) = Some(peer);
        Ok(())
    }

    /// The peer set by [`connect`](Self::connect); `NotConnected` before.
    pub fn peer_addr(&self) -> std::io::Result<SocketAddr> {
        gtudp_io::connected_peer(*lock(&self.shared().peer))
    }

    /// [`send_to`](Self::send_to) the peer set by [`connect`](Self::connect):
    /// `Ok(len)`, the payload's length, once delivered (as
    /// [`tokio::net::UdpSocket::send`] returns the bytes sent);
    /// [`DeliveryError::Unresolved`] (`NotConnected`) before `connect`.
    pub async fn send(&self, payload: impl IntoPayload) -> Result<usize, DeliveryError> {
        self.send_with(payload, SendOptions::default()).await
    }

    /// [`send`](Self::send) with per-message options.
    pub async fn send_with(
        &self,
        payload: impl IntoPayload,
        options: SendOptions,
    ) -> Result<usize, DeliveryError> {
        let peer = gtudp_io::send_target(*lock(&self.shared().peer))?;
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
        let datagram = self.recv().await?;
        let len = datagram.payload.len();
        if len > buf.len() {
            self.shared().with_core(|core| core.put_back(datagram));
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
    /// The calling task reads the socket itself when no message waits; the
    /// RECVs of what it read leave with its next call on the socket (a
    /// reply to the message, say: one system call for both), or within about
    /// a millisecond when no call comes. A task that takes longer than
    /// 250 µs to call again has its RECVs written at once instead, until it
    /// calls that soon again. Several tasks may receive at once. While
    /// tasks in `recv` keep reading, the background task leaves input to
    /// them; once none has read for about a millisecond (a `recv` future
    /// held without being polled, say), it reads what waits, within about
    /// two milliseconds of its arrival.
    ///
    /// Cancel safe: if the future is dropped, no datagram is lost.
    pub async fn recv(&self) -> Result<Datagram, RecvError> {
        let mut message = None;
        self.receive_into(1, &mut |datagram| message = Some(datagram))
            .await?;
        // `receive_into` returns once it took a message, or with an error.
        message.ok_or(RecvError::Closed)
    }

    /// Waits for the next messages (or foreign datagrams) and moves up to
    /// `limit` of them into `buffer`, returning how many; as
    /// [`recv`](Self::recv) does for one, and like Tokio's
    /// `mpsc::Receiver::recv_many`. A task that handles a stream of
    /// messages takes each batch under one lock and one clock read instead
    /// of one per message. `buffer` is appended to, not cleared. Returns
    /// `Ok(0)` at once when `limit` is 0.
    ///
    /// Cancel safe: if the future is dropped, no datagram is lost.
    ///
    /// ```
    /// use gtudp_tokio::{Config, Socket};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let server = Socket::bind("127.0.0.1:0", Config::default()).await?;
    /// let client = Socket::bind("127.0.0.1:0", Config::default()).await?;
    /// for text in ["one", "two", "three"] {
    ///     client.send_to(text.as_bytes(), server.local_addr()).await?;
    /// }
    ///
    /// let mut messages = Vec::with_capacity(64);
    /// while messages.len() < 3 {
    ///     server.recv_many(&mut messages, 64).await?;
    /// }
    /// assert!(messages.iter().all(|message| message.from == client.local_addr()));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn recv_many(
        &self,
        buffer: &mut Vec<Datagram>,
        limit: usize,
    ) -> Result<usize, RecvError> {
        if limit == 0 {
            return Ok(0);
        }
        self.receive_into(limit, &mut |datagram| buffer.push(datagram))
            .await
    }

    /// Waits for at least one message, then hands up to `limit` to `take`
    /// (`limit` is at least 1). Cancel safe: messages are handed over
    /// only in the step that returns.
    async fn receive_into(
        &self,
        limit: usize,
        take: &mut (impl FnMut(Datagram) + Send),
    ) -> Result<usize, RecvError> {
        let shared = self.shared();
        // Messages already queued are taken without registering for a
        // wake-up (the registration locks the notifier twice).
        if let Some(taken) = shared.with_core(|core| core.take_queued(now(), limit, take)) {
            return Ok(taken);
        }
        let _reading = Reading::new(&shared.readers);
        loop {
            // Registered before looking, so a message queued by another
            // task after the look still wakes this one.
            let queued = shared.queued.notified();
            tokio::pin!(queued);
            queued.as_mut().enable();
            match shared.with_core(|core| core.take(now(), limit, take)) {
                Take::Taken(taken) => return Ok(taken),
                Take::Closed => return Err(RecvError::Closed),
                // The read stopped at its batch limit: let others run, then
                // read on.
                Take::Empty { more: true } => tokio::task::yield_now().await,
                Take::Empty { more: false } => {
                    tokio::select! {
                        () = &mut queued => {}
                        ready = shared.socket.readable() => {
                            if let Err(error) = ready {
                                tracing::warn!(target: "gtudp", local = %shared.local_addr, %error, "socket readiness error");
                            }
                        }
                    }
                }
            }
        }
    }

    /// Messages already queued, up to `limit`, each handed to `take`,
    /// without reading the socket or waiting (for [`ShardedSocket`]'s
    /// receives).
    ///
    /// [`ShardedSocket`]: crate::ShardedSocket
    pub(crate) fn take_queued(&self, limit: usize, take: &mut impl FnMut(Datagram)) -> usize {
        self.shared()
            .with_core(|core| core.take_queued(now(), limit, take))
            .unwrap_or(0)
    }

    // ----- closing -------------------------------------------------------

    /// Closes the socket: no new sends or incoming messages; messages in
    /// flight and RECVs awaiting their ACK keep being resolved until done or
    /// until [`Config::drain_timeout`], when what is left fails with
    /// [`FailureReason::EndpointClosed`](gtudp_proto::FailureReason). Returns
    /// a summary once the socket has stopped. Messages already received can
    /// still be read; then receives return [`RecvError::Closed`].
    ///
    /// Every handle's `close` returns the same summary; calling it again
    /// after the close is cheap. If the runtime shuts down first, the close
    /// ends at once (what is in flight fails with [`DeliveryError::Closed`]).
    pub async fn close(&self) -> Result<CloseSummary, Closed> {
        let shared = self.shared();
        shared.begin_close();
        loop {
            let closed = shared.closed.notified();
            tokio::pin!(closed);
            closed.as_mut().enable();
            if let Some(summary) = shared.with_core(|core| core.summary()) {
                return Ok(summary);
            }
            closed.await;
        }
    }

    // ----- private helpers -----------------------------------------------

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// Puts back a message taken by `recv`, to be taken first next time.
    pub(crate) fn put_back(&self, datagram: Datagram) {
        self.shared().with_core(|core| core.put_back(datagram));
    }

    /// Starts the close without waiting for it.
    pub(crate) fn begin_close(&self) {
        self.shared().begin_close();
    }

    /// Makes this socket shard `index` of `shards` (in shard order): ICMP
    /// reports it reads for another shard's peers are handed to that shard.
    pub(crate) fn join_shards(&self, index: usize, shards: &[Socket]) {
        let siblings = shards
            .iter()
            .map(|shard| Arc::downgrade(&shard.handle.shared))
            .collect();
        let _ = self.shared().siblings.set(siblings);
        self.shared()
            .with_core(|core| core.set_shard(index, shards.len()));
    }

    fn check(&self, payload: &Bytes) -> Result<(), TrySendErrorKind> {
        if self.is_closing() {
            return Err(TrySendErrorKind::Closed);
        }
        if payload.len() > self.shared().max_payload {
            return Err(TrySendErrorKind::PayloadTooLarge {
                size: payload.len(),
                max: self.shared().max_payload,
            });
        }
        Ok(())
    }

    /// Hands one send to the endpoint on this task, which writes its DATA.
    fn submit(
        &self,
        now: std::time::Instant,
        payload: Bytes,
        to: SocketAddr,
        options: gtudp_proto::SendOptions,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> Delivery {
        let shared = &self.handle.shared;
        let ticket = shared.next_ticket.fetch_add(1, Ordering::Relaxed);
        let (key, completion) = shared.completions.register();
        let message =
            shared.with_core(|core| core.send(now, to, payload, options, completion, permit));
        Delivery {
            shared: shared.clone(),
            key: Some(key),
            ticket,
            message,
            to,
        }
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

/// The outcome of one guaranteed send, to await: [`Delivered`] once the
/// peer confirmed receipt, otherwise the reason.
///
/// `delivery.await?` only checks for success; keep the [`Delivered`] to
/// learn more, such as whether the message was suspected lost on the way:
///
/// ```
/// use gtudp_tokio::{Config, Socket};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = Socket::bind("127.0.0.1:0", Config::default()).await?;
/// let client = Socket::bind("127.0.0.1:0", Config::default()).await?;
/// let delivery = client.start_send(&b"hello"[..], server.local_addr()).await?;
/// let delivered = delivery.await?;
/// if delivered.suspected_lost {
///     println!("resent as presumed lost before it was confirmed");
/// }
/// # Ok(())
/// # }
/// ```
///
/// The task that reads the confirming RECV (a task in `recv`, a sender, or
/// the background task) wakes the task awaiting this directly.
///
/// Dropping a `Delivery` does **not** cancel the send; call
/// [`cancel`](Self::cancel) for that.
#[derive(Debug)]
#[must_use = "dropping a Delivery does not cancel the send, but its outcome is lost"]
pub struct Delivery {
    shared: Arc<Shared>,
    /// The send's slot in the completion registry; `None` once the outcome
    /// was taken.
    key: Option<Key>,
    ticket: u64,
    /// The endpoint's id for the message; `None` when it was refused.
    message: Option<gtudp_proto::MessageId>,
    to: SocketAddr,
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
    /// or [`Delivered`] if the RECV won the race. A cancelled payload may
    /// still have arrived.
    pub async fn cancel(self) -> Result<Delivered, DeliveryError> {
        if let Some(id) = self.message {
            self.shared.with_core(|core| core.cancel(now(), id));
        }
        self.await
    }
}

impl Future for Delivery {
    type Output = Result<Delivered, DeliveryError>;

    /// # Panics
    ///
    /// When polled again after it returned the outcome.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(key) = self.key else {
            panic!("Delivery polled after it completed");
        };
        let outcome = self.shared.completions.poll(key, cx);
        if outcome.is_ready() {
            self.key = None;
        }
        outcome
    }
}

impl Drop for Delivery {
    /// Leaves the send to the endpoint: it is still delivered or fails,
    /// unobserved.
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.shared.completions.abandon(key);
        }
    }
}
