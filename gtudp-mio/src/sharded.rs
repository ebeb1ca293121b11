//! [`ShardedBlockingSocket`]: one server address served by several
//! [`BlockingSocket`]s (`SO_REUSEPORT`), each with its own endpoint and
//! background thread.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use gtudp_io::reuseport;
use gtudp_io::{Datagram, Delivered, IntoPayload, SendOptions};
use gtudp_proto::{Config, PeerStats, SendRawError};

use crate::blocking::{BlockingOptions, BlockingSocket, PendingSend};
use crate::error::{BindError, Closed, DeliveryError, RecvError};
use crate::stats::{CloseSummary, Stats};

/// Messages the shards' receiving threads hold for
/// [`ShardedBlockingSocket::recv`] beyond each shard's own queue, in their
/// channel (and each thread up to [`TAKE`] more, taken from its shard).
const HANDOVER: usize = 1_024;

/// The most messages a receiving thread takes from its shard at once: a
/// shard's queue frees that much room, so that many more may be
/// acknowledged while the channel is full.
const TAKE: usize = 64;

/// A blocking server socket sharded over `n` UDP sockets bound to one
/// address with `SO_REUSEPORT`, each a [`BlockingSocket`] with its own
/// endpoint and background thread, so that a server can use every core.
/// Made by [`BlockingSocket::bind_sharded`] or
/// [`ShardedBlockingSocket::with_options`]; the same design as
/// `gtudp_tokio::ShardedSocket`.
///
/// The kernel steers each peer (by its source address and port) to one
/// shard, and that shard alone holds the peer's state: nothing is shared
/// between shards. Which shard that is, is known before the peer sends
/// anything ([`shard_index`](Self::shard_index) computes what the kernel
/// runs), so every send goes out through the shard that owns its target,
/// whose endpoint then receives the RECV and ACK, for peers never seen as
/// much as for those that sent first. The reply's source port is the same
/// whichever shard sends.
///
/// # Two ways to receive
///
/// - **Each shard on its own thread** (the way to use every core): take
///   [`shards`](Self::shards), and in one thread per shard receive from it
///   and reply through it. The thread then drives that shard's endpoint
///   itself, as with an unsharded [`BlockingSocket`].
/// - **All shards through this handle**: [`recv`](Self::recv) and friends.
///   The first such call starts one receiving thread per shard, which
///   drives its shard and hands each message over through a channel (one
///   hop between threads per message). From then on, receive only through
///   this handle: a receive on a shard directly would compete with its
///   thread.
///
/// ```
/// use gtudp_mio::{BlockingSocket, Config};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = BlockingSocket::bind_sharded("127.0.0.1:0", 2, Config::default())?;
/// for shard in server.shards() {
///     let shard = shard.clone();
///     std::thread::spawn(move || {
///         // A peer's messages all arrive in its shard: reply through it.
///         while let Ok(message) = shard.recv() {
///             let _ = shard.send_to(message.payload, message.from);
///         }
///     });
/// }
/// let client = BlockingSocket::bind("127.0.0.1:0", Config::default())?;
/// client.send_to_blocking(&b"ping"[..], server.local_addr())?;
/// let reply = client.recv()?;
/// assert_eq!((&reply.payload[..], reply.from), (&b"ping"[..], server.local_addr()));
/// # Ok(())
/// # }
/// ```
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
/// datagram's source address and port. Each shard's exactly-once memory
/// covers the peers steered to it, which holds while the set of sockets
/// bound to the port stays the same: close all shards together
/// ([`close`](Self::close) does, and so does dropping this handle, which
/// starts every shard's close). A shard closed alone, or another process
/// binding the port with `SO_REUSEPORT`, re-steers peers to a shard without
/// their history, where a late retransmission could be handed over a
/// second time. The shard sockets are never `connect`ed. IPv6 datagrams
/// with extension headers are steered by the kernel's own hash instead.
/// ICMP reports are steered by that hash too; a shard that reads one for
/// another shard's peer hands it over, so its messages fail as
/// `Unreachable` at once, as with one socket.
/// Linux only (4.5 or later); elsewhere binding fails with
/// [`BindError::ShardingUnsupported`]. The details are in
/// [`gtudp_io::reuseport`].
///
/// [`BlockingOptions`] apply to each shard.
#[derive(Debug)]
pub struct ShardedBlockingSocket {
    shards: Vec<Arc<BlockingSocket>>,
    local_addr: SocketAddr,
    /// The receiving threads' channel, once the first `recv` started them,
    /// and a message put back by `recv_from`.
    inbox: OnceLock<Mutex<Inbox>>,
}

#[derive(Debug)]
struct Inbox {
    messages: Receiver<Datagram>,
    put_back: Option<Datagram>,
}

impl BlockingSocket {
    /// Binds a server sharded over `shards` `SO_REUSEPORT` sockets with
    /// `config` and default [`BlockingOptions`]; see
    /// [`ShardedBlockingSocket`].
    pub fn bind_sharded(
        addr: impl ToSocketAddrs,
        shards: usize,
        config: Config,
    ) -> Result<ShardedBlockingSocket, BindError> {
        ShardedBlockingSocket::with_options(addr, shards, config, BlockingOptions::default())
    }
}

impl ShardedBlockingSocket {
    /// Binds `shards` UDP sockets to `addr` (the first address it resolves
    /// to; port 0 picks one port for all) with `SO_REUSEPORT`, each a
    /// [`BlockingSocket`] with `config`, `options` and its own thread.
    ///
    /// Fails with [`BindError::ZeroCapacity`] (`shards`) when `shards` is
    /// 0, [`BindError::ShardingUnsupported`] where the platform cannot
    /// steer peers to shards, and as [`BlockingSocket::bind`] does.
    pub fn with_options(
        addr: impl ToSocketAddrs,
        shards: usize,
        config: Config,
        options: BlockingOptions,
    ) -> Result<Self, BindError> {
        if shards == 0 {
            return Err(BindError::ZeroCapacity { field: "shards" });
        }
        let addr = addr.to_socket_addrs()?.next().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the address resolved to no address",
            )
        })?;
        let sockets = reuseport::bind_group(addr, shards)?;
        let mut shards = Vec::with_capacity(sockets.len());
        for socket in sockets {
            shards.push(Arc::new(BlockingSocket::with_options(
                socket,
                config.clone(),
                options,
            )?));
        }
        for (index, shard) in shards.iter().enumerate() {
            shard.join_shards(index, &shards);
        }
        let local_addr = shards
            .first()
            .map(|shard| shard.local_addr())
            .ok_or(BindError::ZeroCapacity { field: "shards" })?;
        Ok(Self {
            shards,
            local_addr,
            inbox: OnceLock::new(),
        })
    }

    /// The address every shard is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The shards, each a whole [`BlockingSocket`]: receive from one and
    /// reply through it to serve its peers on a thread of its own (not
    /// after [`recv`](Self::recv) was called on this handle).
    pub fn shards(&self) -> &[Arc<BlockingSocket>] {
        &self.shards
    }

    /// The index (in [`shards`](Self::shards)) of the shard that receives
    /// `peer`'s datagrams and sends to it, whether or not it was seen.
    pub fn shard_index(&self, peer: SocketAddr) -> usize {
        reuseport::shard_of(peer, self.shards.len())
    }

    /// The shard that owns `peer` (see [`shard_index`](Self::shard_index)).
    pub fn shard_for(&self, peer: SocketAddr) -> &BlockingSocket {
        &self.shards[self.shard_index(peer)]
    }

    /// The largest payload one message can carry.
    pub fn max_payload_size(&self) -> usize {
        self.shards[0].max_payload_size()
    }

    /// Each shard's counters, in shard order.
    pub fn stats(&self) -> Vec<Stats> {
        self.shards.iter().map(|shard| shard.stats()).collect()
    }

    /// Counters and the RTT estimate for one peer, from its shard.
    pub fn peer_stats(&self, peer: SocketAddr) -> Option<PeerStats> {
        self.shard_for(peer).peer_stats(peer)
    }

    /// [`BlockingSocket::send_to`] through the shard that owns `to`.
    pub fn send_to(
        &self,
        payload: impl IntoPayload,
        to: impl ToSocketAddrs,
    ) -> Result<PendingSend, DeliveryError> {
        self.send_to_with(payload, to, SendOptions::default())
    }

    /// [`BlockingSocket::send_to_with`] through the shard that owns `to`.
    pub fn send_to_with(
        &self,
        payload: impl IntoPayload,
        to: impl ToSocketAddrs,
        options: SendOptions,
    ) -> Result<PendingSend, DeliveryError> {
        let to = gtudp_io::resolve_std(to)?;
        self.shard_for(to).send_to_with(payload, to, options)
    }

    /// [`BlockingSocket::send_to_blocking`] through the shard that owns
    /// `to`.
    pub fn send_to_blocking(
        &self,
        payload: impl IntoPayload,
        to: impl ToSocketAddrs,
    ) -> Result<Delivered, DeliveryError> {
        self.send_to(payload, to)?.wait()
    }

    /// [`BlockingSocket::send_to_blocking_with`] through the shard that
    /// owns `to`.
    pub fn send_to_blocking_with(
        &self,
        payload: impl IntoPayload,
        to: impl ToSocketAddrs,
        options: SendOptions,
    ) -> Result<Delivered, DeliveryError> {
        self.send_to_with(payload, to, options)?.wait()
    }

    /// [`BlockingSocket::send_raw_to`] through the shard that owns `to`.
    pub fn send_raw_to(
        &self,
        datagram: impl IntoPayload,
        to: SocketAddr,
    ) -> Result<(), SendRawError> {
        self.shard_for(to).send_raw_to(datagram, to)
    }

    /// Waits for the next message from any shard and returns it whole;
    /// reply with [`send_to`](Self::send_to), which uses the shard it came
    /// from. [`RecvError::Closed`] once every shard has closed and every
    /// message was taken.
    ///
    /// The first call starts a receiving thread per shard (see the type's
    /// documentation). Calls from several threads take turns.
    pub fn recv(&self) -> Result<Datagram, RecvError> {
        self.recv_until(None)
    }

    /// Like [`recv`](Self::recv), giving up with [`RecvError::TimedOut`]
    /// after `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Datagram, RecvError> {
        self.recv_until(Instant::now().checked_add(timeout))
    }

    /// Waits for messages from any shard and moves up to `limit` of them
    /// into `buffer`, returning how many: the first that arrives, then
    /// whatever else has arrived, without waiting again (like
    /// [`BlockingSocket::recv_many`]). `buffer` is appended to, not
    /// cleared. Returns `Ok(0)` at once when `limit` is 0, and
    /// [`RecvError::Closed`] as [`recv`](Self::recv) does.
    ///
    /// ```
    /// use gtudp_mio::{BlockingSocket, Config};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let server = BlockingSocket::bind_sharded("127.0.0.1:0", 2, Config::default())?;
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
        self.recv_many_until(buffer, limit, None)
    }

    /// Like [`recv_many`](Self::recv_many), giving up with
    /// [`RecvError::TimedOut`] after `timeout` if nothing has arrived.
    pub fn recv_many_timeout(
        &self,
        buffer: &mut Vec<Datagram>,
        limit: usize,
        timeout: Duration,
    ) -> Result<usize, RecvError> {
        self.recv_many_until(buffer, limit, Instant::now().checked_add(timeout))
    }

    /// Waits for the next message from any shard and copies it into `buf`,
    /// like [`BlockingSocket::recv_from`]: a message longer than `buf` is
    /// reported as [`RecvError::Truncated`] and kept for the next call.
    pub fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, SocketAddr), RecvError> {
        self.recv_from_until(buf, None)
    }

    /// Like [`recv_from`](Self::recv_from), giving up with
    /// [`RecvError::TimedOut`] after `timeout`.
    pub fn recv_from_timeout(
        &self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<(usize, SocketAddr), RecvError> {
        self.recv_from_until(buf, Instant::now().checked_add(timeout))
    }

    /// Closes every shard at once (see [`BlockingSocket::close`]): all
    /// drain together; blocks until every one has, and returns their
    /// summaries in shard order. Later calls return [`Closed`].
    pub fn close(&self) -> Result<Vec<CloseSummary>, Closed> {
        for shard in &self.shards {
            shard.begin_close();
        }
        self.shards.iter().map(|shard| shard.close()).collect()
    }

    fn recv_from_until(
        &self,
        buf: &mut [u8],
        deadline: Option<Instant>,
    ) -> Result<(usize, SocketAddr), RecvError> {
        let mut inbox = self.inbox();
        let message = inbox.next(deadline)?;
        let len = message.payload.len();
        if len > buf.len() {
            inbox.put_back = Some(message);
            return Err(RecvError::Truncated {
                len,
                capacity: buf.len(),
            });
        }
        buf[..len].copy_from_slice(&message.payload);
        Ok((len, message.from))
    }

    fn recv_many_until(
        &self,
        buffer: &mut Vec<Datagram>,
        limit: usize,
        deadline: Option<Instant>,
    ) -> Result<usize, RecvError> {
        if limit == 0 {
            return Ok(0);
        }
        let mut inbox = self.inbox();
        buffer.push(inbox.next(deadline)?);
        let mut taken = 1;
        while taken < limit {
            match inbox.messages.try_recv() {
                Ok(message) => buffer.push(message),
                Err(_) => break,
            }
            taken += 1;
        }
        Ok(taken)
    }

    fn recv_until(&self, deadline: Option<Instant>) -> Result<Datagram, RecvError> {
        self.inbox().next(deadline)
    }

    /// The channel of the receiving threads, started on first use.
    fn inbox(&self) -> MutexGuard<'_, Inbox> {
        let inbox = self.inbox.get_or_init(|| {
            let (sender, messages) = mpsc::sync_channel(HANDOVER);
            for shard in &self.shards {
                let (shard, sender) = (shard.clone(), sender.clone());
                let local = self.local_addr;
                let spawned = std::thread::Builder::new()
                    .name(format!("gtudp shard {local}"))
                    .spawn(move || receive_into(&shard, &sender));
                if let Err(error) = spawned {
                    tracing::warn!(target: "gtudp", %local, %error, "no receiving thread for a shard");
                }
            }
            Mutex::new(Inbox {
                messages,
                put_back: None,
            })
        });
        inbox
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Inbox {
    fn next(&mut self, deadline: Option<Instant>) -> Result<Datagram, RecvError> {
        if let Some(message) = self.put_back.take() {
            return Ok(message);
        }
        let received = match deadline {
            None => self
                .messages
                .recv()
                .map_err(|_| RecvTimeoutError::Disconnected),
            Some(deadline) => self
                .messages
                .recv_timeout(deadline.saturating_duration_since(Instant::now())),
        };
        received.map_err(|error| match error {
            RecvTimeoutError::Timeout => RecvError::TimedOut,
            RecvTimeoutError::Disconnected => RecvError::Closed,
        })
    }
}

/// A shard's receiving thread: hands its messages over until the shard has
/// closed or the handle is gone, taking what has arrived under one lock of
/// the shard.
fn receive_into(shard: &BlockingSocket, sender: &SyncSender<Datagram>) {
    let mut batch = Vec::with_capacity(TAKE);
    loop {
        match shard.recv_many(&mut batch, TAKE) {
            Ok(_) => {
                for message in batch.drain(..) {
                    if sender.send(message).is_err() {
                        return;
                    }
                }
            }
            // A read timeout set on the shard: wait on.
            Err(RecvError::TimedOut) => {}
            Err(_) => return,
        }
    }
}

impl Drop for ShardedBlockingSocket {
    /// Starts every shard's close, drained in the background (the
    /// receiving threads then end), without waiting.
    fn drop(&mut self) {
        for shard in &self.shards {
            shard.begin_close();
        }
    }
}
