//! [`ShardedSocket`]: one server address served by several [`Socket`]s
//! (`SO_REUSEPORT`), each with its own endpoint and background task.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;

use gtudp_io::reuseport;
use gtudp_proto::PeerStats;
use tokio::net::ToSocketAddrs;

use crate::error::{BindError, Closed, DeliveryError, RecvError, SendRawError, TrySendError};
use crate::shard_thread::Driver;
use crate::socket::{Builder, Datagram, Delivery, IntoPayload, SendOptions, Socket};
use crate::stats::{CloseSummary, Stats};

/// A server socket sharded over `n` UDP sockets bound to one address with
/// `SO_REUSEPORT`, each driving its own endpoint on its own background
/// task, so that a server can use every core. Made by
/// [`Socket::bind_sharded`] or [`Builder::bind_sharded`].
///
/// The kernel steers each peer (by its source address and port) to one
/// shard, and that shard alone holds the peer's state: nothing is shared
/// between shards, no lock is taken across them. Which shard that is, is
/// known before the peer sends anything ([`shard_index`](Self::shard_index),
/// the same function the kernel runs, see below), so:
///
/// - [`recv`](Self::recv) takes the next message from whichever shard has
///   one;
/// - [`send_to`](Self::send_to) and the other sends go out through the
///   shard that owns the target, the one its datagrams arrive in, so its
///   RECV and ACK reach the endpoint that sent the message. This holds for
///   a peer never seen too: the shard is computed from the address, not
///   learned. The reply's source port is the same whichever shard sends.
///
/// # Using every core
///
/// One task calling `recv` drives every shard on that task's thread: the
/// protocol work then runs on one core. To spread it, serve each shard on
/// a task of its own, receiving from the shard and replying through it
/// (each shard is a whole [`Socket`]), or clone this handle into several
/// tasks that each call `recv`.
///
/// On a multi-threaded runtime a shard's serving task and its background
/// task run on whichever workers are free and wake each other across
/// threads, which costs CPU. With [`Builder::shard_threads`] each shard is
/// driven on a thread of its own instead (a current-thread runtime: one
/// driver per core), and [`spawn_on_shard`](Self::spawn_on_shard) runs
/// its serving task there:
///
/// ```
/// use gtudp_tokio::{Builder, Config, Socket};
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
///         // A peer's messages all arrive in its shard: reply through it.
///         while let Ok(message) = shard.recv().await {
///             let _ = shard.send_to(message.payload, message.from).await;
///         }
///     });
/// }
/// let client = Socket::bind("127.0.0.1:0", Config::default()).await?;
/// client.send_to(&b"ping"[..], server.local_addr()).await?;
/// let reply = client.recv().await?;
/// assert_eq!((&reply.payload[..], reply.from), (&b"ping"[..], server.local_addr()));
/// # Ok(())
/// # }
/// ```
///
/// Without `shard_threads`, the same code spawns the tasks on the runtime
/// `bind_sharded` was called on.
///
/// # Why a send must leave through the owner
///
/// A peer's exactly-once state lives in the shard that receives its
/// datagrams: the identities it handed over, and the RECVs that prove our
/// messages arrived. A message sent through another shard (by calling
/// `send_to` on one of the [`shards`](Self::shards) directly) is confirmed by a
/// RECV that arrives in the owner, which never sent it: the sending shard
/// never sees it, and the send fails after its attempts although the peer
/// has the message. The handle's sends always pick the owner, so this
/// only concerns direct use of the shards.
///
/// # What the steering assumes
///
/// A classic BPF program attached to the group picks the shard from the
/// datagram's source address and port; [`shard_index`](Self::shard_index)
/// computes the same. Each shard's exactly-once memory covers the peers
/// steered to it, which holds while the set of sockets bound to the port
/// stays the same. Close all shards together ([`close`](Self::close) does,
/// and so does dropping every handle); a shard closed alone, or another
/// process binding the port with `SO_REUSEPORT`, re-steers peers to a
/// shard without their history, where a late retransmission could be
/// handed over a second time. The shard sockets are never `connect`ed
/// (a connected member of a reuseport group takes its peer's datagrams
/// whatever the program says). IPv6 datagrams with extension headers are
/// steered by the kernel's own hash instead.
/// ICMP reports are steered by that hash too; a shard that reads one for
/// another shard's peer hands it over, so its messages fail as
/// `Unreachable` at once, as with one socket. Linux only (4.5 or later);
/// elsewhere binding fails with [`BindError::ShardingUnsupported`]. The
/// details are in [`gtudp_io::reuseport`].
///
/// Limits such as [`Builder::max_outstanding`] and [`Builder::recv_queue`]
/// apply to each shard.
#[derive(Clone, Debug)]
pub struct ShardedSocket {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    shards: Vec<Socket>,
    /// Where each shard's tasks run, in shard order.
    drivers: Vec<Driver>,
    local_addr: SocketAddr,
    /// Where the next `recv` starts looking, so no shard is favoured.
    next: AtomicUsize,
}

impl Builder {
    /// Binds `shards` UDP sockets to `addr` with `SO_REUSEPORT` (port 0
    /// picks one port for all), each a [`Socket`] with these settings and
    /// its own background task, on a thread of its own with
    /// [`shard_threads`](Self::shard_threads); see [`ShardedSocket`].
    ///
    /// Fails with [`BindError::ZeroCapacity`] (`shards`) when `shards` is
    /// 0, [`BindError::ShardingUnsupported`] where the platform cannot
    /// steer peers to shards, [`BindError::NoRuntime`] outside a Tokio
    /// runtime, and as [`bind`](Self::bind) does.
    pub async fn bind_sharded(
        self,
        addr: impl ToSocketAddrs,
        shards: usize,
    ) -> Result<ShardedSocket, BindError> {
        tokio::runtime::Handle::try_current().map_err(|_| BindError::NoRuntime)?;
        if shards == 0 {
            return Err(BindError::ZeroCapacity { field: "shards" });
        }
        let addr = tokio::net::lookup_host(addr).await?.next().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the address resolved to no address",
            )
        })?;
        let runtime = tokio::runtime::Handle::current();
        let sockets = reuseport::bind_group(addr, shards)?;
        let mut shards = Vec::with_capacity(sockets.len());
        let mut drivers = Vec::with_capacity(sockets.len());
        for (index, socket) in sockets.into_iter().enumerate() {
            if self.shard_threads {
                let (shard, driver) = Driver::thread(self.clone(), socket, index).await?;
                shards.push(shard);
                drivers.push(driver);
            } else {
                socket.set_nonblocking(true)?;
                let socket = tokio::net::UdpSocket::from_std(socket)?;
                // Seen writable before the first send, as `bind` does.
                socket.writable().await?;
                shards.push(self.clone().from_tokio(socket)?);
                drivers.push(Driver::current(runtime.clone()));
            }
        }
        for (index, shard) in shards.iter().enumerate() {
            shard.join_shards(index, &shards);
        }
        let local_addr = shards
            .first()
            .map(Socket::local_addr)
            .ok_or(BindError::ZeroCapacity { field: "shards" })?;
        Ok(ShardedSocket {
            inner: Arc::new(Inner {
                shards,
                drivers,
                local_addr,
                next: AtomicUsize::new(0),
            }),
        })
    }
}

impl Socket {
    /// Binds a server sharded over `shards` `SO_REUSEPORT` sockets with
    /// `config` and the default [`Builder`] settings; see
    /// [`ShardedSocket`] and [`Builder::bind_sharded`].
    pub async fn bind_sharded(
        addr: impl ToSocketAddrs,
        shards: usize,
        config: gtudp_proto::Config,
    ) -> Result<ShardedSocket, BindError> {
        Builder::new(config).bind_sharded(addr, shards).await
    }
}

type RecvFuture<'a> = Pin<Box<dyn Future<Output = Result<Datagram, RecvError>> + Send + 'a>>;

impl ShardedSocket {
    /// The address every shard is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// The shards, each a whole [`Socket`]: receive from one and reply
    /// through it to serve its peers on a task of its own.
    pub fn shards(&self) -> &[Socket] {
        &self.inner.shards
    }

    /// Spawns `future` where shard `index` runs: on the shard's own thread
    /// with [`Builder::shard_threads`], on the runtime `bind_sharded` was
    /// called on otherwise. A task that serves the shard (receives from it
    /// and replies through it) then runs on the same thread as the shard's
    /// background task and its reads of the socket: no other thread is
    /// woken for its messages.
    ///
    /// A shard's own thread runs until the shard has closed and every
    /// task spawned on it has ended; a task spawned after that is
    /// cancelled at once (awaiting its handle gives a cancelled
    /// [`JoinError`](tokio::task::JoinError)).
    ///
    /// # Panics
    ///
    /// When `index` is not below the number of shards.
    pub fn spawn_on_shard<F>(&self, index: usize, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.drivers[index].spawn(future)
    }

    /// The index (in [`shards`](Self::shards)) of the shard that receives
    /// `peer`'s datagrams and sends to it, whether or not it was seen.
    pub fn shard_index(&self, peer: SocketAddr) -> usize {
        reuseport::shard_of(peer, self.inner.shards.len())
    }

    /// The shard that owns `peer` (see [`shard_index`](Self::shard_index)).
    pub fn shard_for(&self, peer: SocketAddr) -> &Socket {
        &self.inner.shards[self.shard_index(peer)]
    }

    /// The largest payload one message can carry.
    pub fn max_payload_size(&self) -> usize {
        self.inner.shards[0].max_payload_size()
    }

    /// Each shard's counters, in shard order.
    pub fn stats(&self) -> Vec<Stats> {
        self.inner.shards.iter().map(Socket::stats).collect()
    }

    /// Counters and the RTT estimate for one peer, from its shard.
    pub async fn peer_stats(&self, peer: SocketAddr) -> Result<Option<PeerStats>, Closed> {
        self.shard_for(peer).peer_stats(peer).await
    }

    /// Whether [`close`](Self::close) was called (or every handle dropped).
    pub fn is_closing(&self) -> bool {
        self.inner.shards[0].is_closing()
    }

    /// [`Socket::send_to`] through the shard that owns `target`.
    pub async fn send_to(
        &self,
        payload: impl IntoPayload,
        target: impl ToSocketAddrs,
    ) -> Result<usize, DeliveryError> {
        self.send_to_with(payload, target, SendOptions::default())
            .await
    }

    /// [`Socket::send_to_with`] through the shard that owns `target`.
    pub async fn send_to_with(
        &self,
        payload: impl IntoPayload,
        target: impl ToSocketAddrs,
        options: SendOptions,
    ) -> Result<usize, DeliveryError> {
        let target = resolve(target).await?;
        self.shard_for(target)
            .send_to_with(payload, target, options)
            .await
    }

    /// [`Socket::start_send`] through the shard that owns `target`.
    pub async fn start_send(
        &self,
        payload: impl IntoPayload,
        target: impl ToSocketAddrs,
    ) -> Result<Delivery, DeliveryError> {
        self.start_send_with(payload, target, SendOptions::default())
            .await
    }

    /// [`Socket::start_send_with`] through the shard that owns `target`.
    pub async fn start_send_with(
        &self,
        payload: impl IntoPayload,
        target: impl ToSocketAddrs,
        options: SendOptions,
    ) -> Result<Delivery, DeliveryError> {
        let target = resolve(target).await?;
        self.shard_for(target)
            .start_send_with(payload, target, options)
            .await
    }

    /// [`Socket::send_nowait`] through the shard that owns `target`.
    pub fn send_nowait(
        &self,
        payload: impl IntoPayload,
        target: SocketAddr,
    ) -> Result<Delivery, TrySendError> {
        self.send_nowait_with(payload, target, SendOptions::default())
    }

    /// [`Socket::send_nowait_with`] through the shard that owns `target`.
    pub fn send_nowait_with(
        &self,
        payload: impl IntoPayload,
        target: SocketAddr,
        options: SendOptions,
    ) -> Result<Delivery, TrySendError> {
        self.shard_for(target)
            .send_nowait_with(payload, target, options)
    }

    /// [`Socket::send_raw_to`] through the shard that owns `target`.
    pub async fn send_raw_to(
        &self,
        datagram: impl IntoPayload,
        target: SocketAddr,
    ) -> Result<(), SendRawError> {
        self.shard_for(target).send_raw_to(datagram, target).await
    }

    /// Waits for the next message from any shard, without copying; reply
    /// with [`send_to`](Self::send_to), which uses the shard it came from.
    ///
    /// The calling task drives every shard it looks at (see
    /// [`Socket::recv`]); shards are looked at in turn, starting one
    /// further each call. [`RecvError::Closed`] once every shard has
    /// closed and every message was taken.
    ///
    /// Cancel safe: if the future is dropped, no datagram is lost.
    pub async fn recv(&self) -> Result<Datagram, RecvError> {
        let mut queued = None;
        self.take_queued(1, &mut |_, datagram| queued = Some(datagram));
        match queued {
            Some(datagram) => Ok(datagram),
            None => self.recv_indexed().await.map(|(_, datagram)| datagram),
        }
    }

    /// Waits for the next messages from any shard and moves up to `limit`
    /// of them into `buffer`, returning how many, as
    /// [`Socket::recv_many`] does. Messages already queued in any shard are
    /// taken first (shards in turn, starting one further each call);
    /// otherwise the call waits as [`recv`](Self::recv) does, then adds
    /// what else is queued. Returns `Ok(0)` at once when `limit` is 0.
    ///
    /// Cancel safe: if the future is dropped, no datagram is lost.
    pub async fn recv_many(
        &self,
        buffer: &mut Vec<Datagram>,
        limit: usize,
    ) -> Result<usize, RecvError> {
        if limit == 0 {
            return Ok(0);
        }
        let taken = self.take_queued(limit, &mut |_, datagram| buffer.push(datagram));
        if taken > 0 {
            return Ok(taken);
        }
        let (_, datagram) = self.recv_indexed().await?;
        buffer.push(datagram);
        Ok(1 + self.take_queued(limit - 1, &mut |_, datagram| buffer.push(datagram)))
    }

    /// Messages already queued in the shards, up to `limit`, each handed
    /// to `take` with its shard's index; the shards in turn, starting one
    /// further each call. Neither reads a socket nor waits.
    fn take_queued(&self, limit: usize, take: &mut impl FnMut(usize, Datagram)) -> usize {
        let shards = &self.inner.shards;
        let n = shards.len();
        let start = self.inner.next.fetch_add(1, Ordering::Relaxed) % n;
        let mut taken = 0;
        for k in 0..n {
            if taken == limit {
                break;
            }
            let index = (start + k) % n;
            taken +=
                shards[index].take_queued(limit - taken, &mut |datagram| take(index, datagram));
        }
        taken
    }

    /// Waits for the next message from any shard and copies it into `buf`,
    /// like [`Socket::recv_from`]: a message longer than `buf` is reported
    /// as [`RecvError::Truncated`] and kept (in its shard) for the next
    /// call.
    ///
    /// Cancel safe: if the future is dropped, no datagram is lost.
    pub async fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, SocketAddr), RecvError> {
        let mut queued = None;
        self.take_queued(1, &mut |index, datagram| queued = Some((index, datagram)));
        let (index, datagram) = match queued {
            Some(queued) => queued,
            None => self.recv_indexed().await?,
        };
        let len = datagram.payload.len();
        if len > buf.len() {
            self.inner.shards[index].put_back(datagram);
            return Err(RecvError::Truncated {
                len,
                capacity: buf.len(),
            });
        }
        buf[..len].copy_from_slice(&datagram.payload);
        Ok((len, datagram.from))
    }

    /// Closes every shard at once (see [`Socket::close`]) and returns
    /// their summaries, in shard order.
    pub async fn close(&self) -> Result<Vec<CloseSummary>, Closed> {
        for shard in &self.inner.shards {
            shard.begin_close();
        }
        let mut summaries = Vec::with_capacity(self.inner.shards.len());
        for shard in &self.inner.shards {
            summaries.push(shard.close().await?);
        }
        Ok(summaries)
    }

    /// The next message and the index of the shard it came from.
    async fn recv_indexed(&self) -> Result<(usize, Datagram), RecvError> {
        let shards = &self.inner.shards;
        let n = shards.len();
        let start = self.inner.next.fetch_add(1, Ordering::Relaxed) % n;
        // Each shard's receive is cancel safe: the ones that lose the race
        // are dropped having taken nothing.
        let mut receives: Vec<Option<(usize, RecvFuture<'_>)>> = (0..n)
            .map(|k| {
                let index = (start + k) % n;
                Some((index, Box::pin(shards[index].recv()) as RecvFuture<'_>))
            })
            .collect();
        std::future::poll_fn(|cx| {
            let mut open = 0;
            for slot in &mut receives {
                let Some((index, receive)) = slot else {
                    continue;
                };
                match receive.as_mut().poll(cx) {
                    Poll::Ready(Ok(datagram)) => return Poll::Ready(Ok((*index, datagram))),
                    Poll::Ready(Err(RecvError::Closed)) => *slot = None,
                    Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                    Poll::Pending => open += 1,
                }
            }
            if open == 0 {
                Poll::Ready(Err(RecvError::Closed))
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

/// The first address `target` resolves to, in canonical form.
async fn resolve(target: impl ToSocketAddrs) -> Result<SocketAddr, DeliveryError> {
    gtudp_io::first_address(tokio::net::lookup_host(target).await)
}
