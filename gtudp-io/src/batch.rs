//! Batched receive (recvmmsg, GRO) and segmented send (GSO) through
//! quinn-udp, with its portable one-datagram fallback on platforms without
//! them, over a socket whose runtime runs the system calls.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use gtudp_proto::wire::{Framing, PacketKind};
use gtudp_proto::{Endpoint, Transmit};
use quinn_udp::{RecvMeta, UdpSockRef, UdpSocketState};

use crate::log::{enabled as log_enabled, log_datagram};

/// Bytes of one receive slot: more than the largest UDP payload (65,527
/// over IPv6), and the most a GRO aggregate carries (one 64 KiB skb), so no
/// single datagram is ever cut.
const SLOT: usize = 1 << 16;

/// Receive slots per system call. Each can hold a GRO aggregate of up to 64
/// datagrams, so a few slots are enough to empty a busy socket quickly.
const SLOTS: usize = 8;

/// Segments one GSO send may carry (the kernel's `UDP_MAX_SEGMENTS`).
const MAX_SEGMENTS: usize = 64;

/// Which readiness a system call consumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// A receive: the socket's readability.
    Recv,
    /// A send: the socket's writability.
    Send,
}

/// A non-blocking UDP socket of some runtime, as [`BatchIo`] uses it.
pub trait Socket {
    /// The socket, borrowed for a `quinn-udp` call
    /// (`(&self.0).into()` for a newtype around the runtime's socket).
    fn sock_ref(&self) -> UdpSockRef<'_>;

    /// The socket's local address, whose family decides how destinations
    /// are written for the system call (see [`BatchIo::new`]).
    fn local_addr(&self) -> io::Result<SocketAddr>;

    /// The socket's file descriptor, for reading its error queue (ICMP
    /// unreachable reports).
    #[cfg(target_os = "linux")]
    fn raw_fd(&self) -> std::os::fd::RawFd;

    /// Runs `f`, one non-blocking system call on this socket, the way the
    /// runtime wants it run, so that a `WouldBlock` clears the readiness it
    /// cached (Tokio's `UdpSocket::try_io(interest, f)`, mio's
    /// `UdpSocket::try_io(f)`).
    fn try_io<R>(&self, direction: Direction, f: impl FnOnce() -> io::Result<R>) -> io::Result<R>;
}

/// Counters of the socket I/O done by an adapter's driver (through a
/// [`BatchIo`]). Both adapters expose this type as `IoStats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IoCounters {
    /// Receive system calls that returned data.
    pub recv_calls: u64,
    /// Datagrams received (a GRO aggregate counts each datagram).
    pub datagrams_received: u64,
    /// Send system calls that handed data to the kernel (or whose datagrams
    /// were dropped after an error, logged).
    pub send_calls: u64,
    /// Datagrams sent (a GSO batch counts each datagram).
    pub datagrams_sent: u64,
    /// Send system calls that carried several datagrams (GSO, or on Linux
    /// `sendmmsg` of several transmits, whatever their sizes).
    pub batched_sends: u64,
    /// Times the socket's send buffer was full and a transmit had to wait
    /// for writability.
    pub send_would_block: u64,
    /// ICMP error reports (such as `ConnectionRefused` for an earlier
    /// datagram) met by receive or send calls; none is fatal.
    pub icmp_errors: u64,
    /// Other receive errors, logged and ignored.
    pub recv_errors: u64,
    /// Datagrams dropped because the kernel refused them for another
    /// reason than their size, logged; the protocol resends DATA and RECV.
    pub send_errors: u64,
    /// Datagrams the kernel refused as too large for the path (EMSGSIZE:
    /// IP fragmentation is off and the datagram exceeds the MTU), each
    /// reported to the endpoint
    /// ([`Endpoint::datagram_too_large`](gtudp_proto::Endpoint::datagram_too_large)),
    /// which failed the messages that large with
    /// [`FailureReason::TooLarge`](gtudp_proto::FailureReason::TooLarge).
    pub too_large: u64,
    /// ICMP unreachable reports read from the socket's error queue (Linux),
    /// each of which failed its destination's messages at once.
    pub unreachable_reports: u64,
}

/// What one [`BatchIo::recv`] call produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recv {
    /// This many datagrams were appended to the output.
    Datagrams(usize),
    /// Nothing is waiting.
    WouldBlock,
    /// An ICMP error report about an earlier send (see [`is_icmp_report`]),
    /// counted and logged; the socket is fine, reading may go on.
    IcmpReport,
    /// Another receive error, counted and logged.
    Error,
}

/// Rounds of sending and reporting refusals one [`BatchIo::flush`] does at
/// most: each round's reports fail messages, and what they let into the
/// window goes out in the next.
const TOO_LARGE_ROUNDS: usize = 4;

/// Transmits one send system call carries at most: a `sendmmsg` batch on
/// Linux, one elsewhere.
#[cfg(target_os = "linux")]
const SEND_BATCH: usize = crate::mmsg::BATCH;
#[cfg(not(target_os = "linux"))]
const SEND_BATCH: usize = 1;

/// Bytes above which a transmit buffer counts as large (it held a GSO
/// batch); see `BatchIo::spare`.
const LARGE_BUFFER: usize = 16 * 1024;

/// Large transmit buffers kept for reuse.
const LARGE_SPARES: usize = 4;

/// A transmit waiting to be sent, in its own buffer.
#[derive(Debug)]
struct Outgoing {
    transmit: Transmit,
    buf: Vec<u8>,
}

/// What one send system call did.
enum Sent {
    /// Handed to the kernel (or dropped after a non-fatal error, logged).
    Done,
    /// The socket buffer is full: keep the bytes and wait for writability.
    WouldBlock,
}

/// The socket receive and send buffer size [`BatchIo::new`] asks for when a
/// socket's is smaller: room for about 1,400 full-size (1,500-byte)
/// datagrams, one default congestion window (1,024 messages) with margin.
pub const MIN_SOCKET_BUFFER: usize = 2 << 20;

fn raise_buffers<S: Socket>(state: &UdpSocketState, socket: &S, local: SocketAddr) {
    let recv = state.recv_buffer_size(socket.sock_ref());
    if recv.is_ok_and(|size| size < MIN_SOCKET_BUFFER) {
        if let Err(error) = state.set_recv_buffer_size(socket.sock_ref(), MIN_SOCKET_BUFFER) {
            tracing::debug!(target: "gtudp", %local, %error, "could not raise the socket receive buffer");
        }
    }
    let send = state.send_buffer_size(socket.sock_ref());
    if send.is_ok_and(|size| size < MIN_SOCKET_BUFFER) {
        if let Err(error) = state.set_send_buffer_size(socket.sock_ref(), MIN_SOCKET_BUFFER) {
            tracing::debug!(target: "gtudp", %local, %error, "could not raise the socket send buffer");
        }
    }
}

/// The receive slots of a [`BatchIo`] and what the last
/// [`BatchIo::recv_batch`] read into them: lent out by
/// [`BatchIo::take_batch`] so that the datagrams can be fed to an endpoint
/// where they lie.
pub struct RecvBatch {
    /// `SLOTS` receive slots of `SLOT` bytes.
    slots: Box<[u8]>,
    meta: Box<[RecvMeta]>,
    /// Slots the last receive filled.
    count: usize,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("filled_slots", &self.count)
            .finish_non_exhaustive()
    }
}

impl RecvBatch {
    fn new() -> Self {
        Self {
            slots: vec![0; SLOT * SLOTS].into_boxed_slice(),
            meta: vec![RecvMeta::default(); SLOTS].into_boxed_slice(),
            count: 0,
        }
    }

    /// The datagrams the last receive read, each with its source (in the
    /// endpoint's canonical form), GRO aggregates split at their stride.
    pub fn datagrams(&self) -> impl Iterator<Item = (SocketAddr, &[u8])> {
        self.meta[..self.count]
            .iter()
            .zip(self.slots.chunks(SLOT))
            .flat_map(|(meta, slot)| {
                let filled = &slot[..meta.len.min(slot.len())];
                let stride = if meta.stride == 0 {
                    filled.len().max(1)
                } else {
                    meta.stride
                };
                let addr = gtudp_proto::canonical_addr(meta.addr);
                // An empty datagram is a datagram too.
                let empty = filled.is_empty().then_some((addr, filled));
                filled.chunks(stride).map(move |d| (addr, d)).chain(empty)
            })
    }
}

/// A UDP socket set up for batched I/O, with the receive slots, the
/// transmit buffer and the counters of one adapter's driver.
#[derive(Debug)]
pub struct BatchIo<S> {
    socket: S,
    state: UdpSocketState,
    /// The receive slots, between receives (lent out by
    /// [`BatchIo::take_batch`]).
    batch: Option<RecvBatch>,
    /// For the datagram log.
    framing: Framing,
    /// Transmits written by `Endpoint::poll_transmit`, not yet sent, in
    /// order, each in its own buffer (at most [`SEND_BATCH`]): one system
    /// call sends them all where the platform allows. Left over only while
    /// the socket's send buffer is full.
    queue: Vec<Outgoing>,
    /// Buffers of sent transmits, for the next ones: at most
    /// [`SEND_BATCH`], of which at most [`LARGE_SPARES`] hold more than
    /// [`LARGE_BUFFER`] bytes (GSO batches), so a burst of large batches to
    /// many destinations does not keep megabytes for good.
    spare: Vec<Vec<u8>>,
    /// Buffers in `spare` larger than [`LARGE_BUFFER`].
    large_spares: usize,
    /// A batched send stopped short and the transmit it stopped at then
    /// went out: the kernel may have returned (and so cleared) an ICMP
    /// report's pending error that the batched call did not pass on, so
    /// the error queue is read.
    check_error_queue: bool,
    /// The socket is IPv6 (perhaps dual-stack): IPv4 destinations are
    /// written IPv4-mapped.
    ipv6: bool,
    /// The socket's address, named in every log line.
    local: SocketAddr,
    /// Destinations ICMP reported unreachable, for the next flush to fail
    /// their messages.
    unreachable: Vec<SocketAddr>,
    /// This socket's place in a sharded group (`index`, `n`): reports for
    /// destinations another shard owns go to `foreign`.
    shard: Option<(usize, usize)>,
    /// Unreachable destinations owned by another shard, for the adapter
    /// to hand over ([`BatchIo::take_foreign_unreachable`]).
    foreign: Vec<SocketAddr>,
    /// Datagrams the kernel refused as too large, by destination and size,
    /// with the path's largest datagram when the error queue gave it, for
    /// the endpoint (see [`BatchIo::flush`]).
    too_large: Vec<(SocketAddr, usize, Option<usize>)>,
    /// The error queue is on (Linux): a refusal of the datagram being sent
    /// is told from a pending ICMP report by the local report it queues.
    error_queue: bool,
    /// A flush carrying a single DATA sends it before its RECVs and ACKs
    /// ([`BatchIo::set_lone_data_first`]).
    lone_data_first: bool,
    counters: IoCounters,
}

impl<S: Socket> BatchIo<S> {
    /// Sets `socket` up for batched I/O (GRO where available). `framing` is
    /// the endpoint's, for the datagram log.
    ///
    /// Socket buffers smaller than [`MIN_SOCKET_BUFFER`] are raised to it
    /// (best effort: the kernel may cap them, for example at Linux's
    /// `net.core.rmem_max`); larger ones, set by the caller, are kept. The
    /// operating systems' defaults (about 208 KiB on Linux) hold fewer full
    /// datagrams than one congestion window of messages in flight, so a
    /// burst would be dropped in the kernel and wait a retransmission
    /// timeout.
    ///
    /// Addresses follow the endpoint's canonical form
    /// ([`gtudp_proto::canonical_addr`]): sources are reported plain IPv4
    /// for IPv4 peers of a dual-stack socket, and an IPv4 destination is
    /// written IPv4-mapped (`[::ffff:a.b.c.d]`) when the socket is IPv6.
    pub fn new(socket: S, framing: Framing) -> io::Result<Self> {
        let state = UdpSocketState::new(socket.sock_ref())?;
        let local = socket.local_addr()?;
        raise_buffers(&state, &socket, local);
        let ipv6 = local.is_ipv6();
        #[cfg(target_os = "linux")]
        let enabled = crate::errqueue::enable(socket.raw_fd(), ipv6);
        #[cfg(not(target_os = "linux"))]
        let enabled = crate::errqueue::enable(&socket, ipv6);
        if let Err(error) = &enabled {
            tracing::debug!(target: "gtudp", %local, %error, "no ICMP error queue; unreachable peers fail by attempts");
        }
        Ok(Self {
            socket,
            state,
            batch: Some(RecvBatch::new()),
            framing,
            queue: Vec::with_capacity(SEND_BATCH),
            spare: Vec::new(),
            large_spares: 0,
            check_error_queue: false,
            ipv6,
            local,
            unreachable: Vec::new(),
            shard: None,
            foreign: Vec::new(),
            too_large: Vec::new(),
            error_queue: cfg!(target_os = "linux") && enabled.is_ok(),
            lone_data_first: false,
            counters: IoCounters::default(),
        })
    }

    /// Whether the kernel may split a datagram too large for the path into
    /// IP fragments (see [`Fragmentation`](crate::Fragmentation)). A new
    /// `BatchIo` forbids it (`quinn-udp` sets don't-fragment), so a
    /// datagram larger than the interface's MTU is refused and its message
    /// fails with `TooLarge`; [`Fragmentation::Allowed`](crate::Fragmentation)
    /// makes the socket fragment as a plain one does. Elsewhere than Linux
    /// only the default is supported (an `Unsupported` error otherwise).
    pub fn set_fragmentation(&mut self, choice: crate::Fragmentation) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        return crate::fragmentation::set(self.socket.raw_fd(), self.ipv6, choice);
        #[cfg(not(target_os = "linux"))]
        return crate::fragmentation::set(&self.socket, self.ipv6, choice);
    }

    /// The socket.
    pub fn socket(&self) -> &S {
        &self.socket
    }

    /// The socket, for registration with a poller.
    pub fn socket_mut(&mut self) -> &mut S {
        &mut self.socket
    }

    /// The socket's local address (as bound).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The counters so far.
    pub fn counters(&self) -> IoCounters {
        self.counters
    }

    /// Whether a transmit waits for room in the socket's send buffer: the
    /// adapter must wait for writability and call [`flush`](Self::flush).
    pub fn is_blocked(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Receive slots one [`recv`](Self::recv) fills at most. On Linux
    /// (`recvmmsg`), a receive that returned fewer datagrams than this
    /// emptied the socket: an adapter waiting for edge-triggered readiness
    /// need not call again to see `WouldBlock`.
    pub fn recv_slots(&self) -> usize {
        SLOTS
    }

    /// Datagrams that one GSO send may carry on this socket (1 without GSO).
    pub fn max_segments(&self) -> usize {
        self.state.max_gso_segments().clamp(1, MAX_SEGMENTS)
    }

    /// One batched receive, without waiting: appends each datagram (GRO
    /// aggregates split at their stride) with its source to `out`, logging
    /// it. Each datagram is copied into its own [`Bytes`]; reuse `out`
    /// across calls. [`recv_batch`](Self::recv_batch) reads without the
    /// copies.
    pub fn recv(&mut self, out: &mut Vec<(SocketAddr, Bytes)>) -> Recv {
        let mut batch = self.take_batch();
        let result = self.recv_batch(&mut batch);
        out.extend(
            batch
                .datagrams()
                .map(|(from, datagram)| (from, Bytes::copy_from_slice(datagram))),
        );
        self.restore_batch(batch);
        result
    }

    /// Lends out the receive slots, for [`recv_batch`](Self::recv_batch):
    /// the datagrams it reads stay in them, to be fed to the endpoint
    /// borrowed ([`Endpoint::handle_datagram_slice`](gtudp_proto::Endpoint::handle_datagram_slice)),
    /// while the adapter holding them is free to use the rest of its state.
    /// Give them back with [`restore_batch`](Self::restore_batch): until
    /// then (or if they are lost to a panic) the next call allocates new
    /// ones.
    pub fn take_batch(&mut self) -> RecvBatch {
        self.batch.take().unwrap_or_else(RecvBatch::new)
    }

    /// Gives back the slots [`take_batch`](Self::take_batch) lent.
    pub fn restore_batch(&mut self, batch: RecvBatch) {
        self.batch = Some(batch);
    }

    /// One batched receive into `batch`, without waiting, replacing what it
    /// held: read its datagrams (GRO aggregates split at their stride) with
    /// [`RecvBatch::datagrams`]. Nothing is copied or allocated.
    pub fn recv_batch(&mut self, batch: &mut RecvBatch) -> Recv {
        batch.count = 0;
        let socket = &self.socket;
        let state = &self.state;
        let result = {
            let RecvBatch { slots, meta, .. } = &mut *batch;
            let mut chunks = slots.chunks_mut(SLOT);
            let mut slices: [IoSliceMut<'_>; SLOTS] =
                std::array::from_fn(|_| IoSliceMut::new(chunks.next().unwrap_or_default()));
            socket.try_io(Direction::Recv, || {
                state.recv(socket.sock_ref(), &mut slices, meta)
            })
        };
        match result {
            Ok(filled) => {
                batch.count = filled.min(SLOTS);
                let received = batch.datagrams().count();
                self.counters.recv_calls += 1;
                self.counters.datagrams_received += received as u64;
                if log_enabled() {
                    for (from, datagram) in batch.datagrams() {
                        log_datagram("in", self.local, from, datagram, &self.framing);
                    }
                }
                Recv::Datagrams(received)
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => Recv::WouldBlock,
            Err(error) if is_icmp_report(&error) => {
                // Port unreachable for an earlier send, WSAECONNRESET on
                // Windows: about a peer, not this socket.
                self.counters.icmp_errors += 1;
                tracing::debug!(target: "gtudp", local = %self.local, %error, "ICMP error report");
                self.read_error_queue();
                Recv::IcmpReport
            }
            Err(error) => {
                self.counters.recv_errors += 1;
                tracing::warn!(target: "gtudp", local = %self.local, %error, "receive error (ignored)");
                Recv::Error
            }
        }
    }

    /// Sends everything `endpoint` has to send, in GSO batches where the
    /// socket allows, logging each datagram, until the socket's send buffer
    /// is full: what does not fit is kept ([`is_blocked`](Self::is_blocked))
    /// and sent first by the next call. On Linux one `sendmmsg` carries up
    /// to 32 transmits of any sizes and destinations (a RECV and the reply
    /// written after it leave together); elsewhere each transmit takes one
    /// system call.
    ///
    /// A datagram the kernel refuses as too large for the path (EMSGSIZE)
    /// is reported to the endpoint
    /// ([`Endpoint::datagram_too_large`](gtudp_proto::Endpoint::datagram_too_large),
    /// with the path's limit when the error queue gives it), whose messages
    /// that large fail at once rather than be resent until their deadline.
    /// A GSO batch the kernel refuses is resent datagram by datagram first,
    /// so only the datagrams refused on their own are reported.
    pub fn flush(&mut self, endpoint: &mut Endpoint, now: Instant) {
        self.fail_unreachable(endpoint, now);
        let icmp_before = self.counters.icmp_errors;
        self.send_all(endpoint, now);
        if self.counters.icmp_errors != icmp_before || std::mem::take(&mut self.check_error_queue) {
            // A send met a report: its details wait in the error queue.
            self.read_error_queue();
            if !self.unreachable.is_empty() {
                self.fail_unreachable(endpoint, now);
                self.send_all(endpoint, now);
            }
        }
        for _ in 0..TOO_LARGE_ROUNDS {
            if self.too_large.is_empty() {
                break;
            }
            self.fail_too_large(endpoint, now);
            if !self.unreachable.is_empty() {
                self.fail_unreachable(endpoint, now);
            }
            self.send_all(endpoint, now);
        }
    }

    /// Reports every datagram the kernel refused as too large to the
    /// endpoint, which fails the messages that large.
    fn fail_too_large(&mut self, endpoint: &mut Endpoint, now: Instant) {
        for (destination, size, limit) in self.too_large.drain(..) {
            let failed = endpoint.datagram_too_large(now, destination, size, limit);
            tracing::debug!(
                target: "gtudp", local = %self.local, %destination, size, ?limit, failed,
                "datagram too large for the path (EMSGSIZE): its messages fail"
            );
        }
    }

    /// Reads the socket's error queue (Linux; nothing elsewhere), noting the
    /// destinations ICMP reported unreachable; the next
    /// [`flush`](Self::flush) reports them to the endpoint
    /// ([`Endpoint::peer_unreachable`]). [`recv`](Self::recv)
    /// calls it when a receive meets an ICMP report; an adapter whose
    /// runtime reports error readiness separately calls it then.
    pub fn read_error_queue(&mut self) {
        self.read_error_queue_for_limit();
    }

    /// [`read_error_queue`](Self::read_error_queue), returning the latest
    /// local "message too long" report found in it, if any (a send of this
    /// socket refused as too large queues one, with the path's limit).
    fn read_error_queue_for_limit(&mut self) -> Option<crate::errqueue::LocalTooLarge> {
        let before = self.unreachable.len();
        #[cfg(target_os = "linux")]
        let (_, limit) = crate::errqueue::drain(self.socket.raw_fd(), &mut self.unreachable);
        #[cfg(not(target_os = "linux"))]
        let (_, limit) = crate::errqueue::drain(&self.socket, &mut self.unreachable);
        let found = self.unreachable.len() - before;
        self.counters.unreachable_reports += found as u64;
        for destination in &self.unreachable[before..] {
            tracing::debug!(target: "gtudp", local = %self.local, %destination, "ICMP: destination unreachable");
        }
        if let Some((index, n)) = self.shard {
            // The kernel steers ICMP reports by its own hash, not by the
            // group's program: a report may land in a shard that never sent
            // to the destination. Set those aside for their owner.
            let mut at = before;
            while at < self.unreachable.len() {
                let destination = self.unreachable[at];
                if crate::reuseport::shard_of(destination, n) == index {
                    at += 1;
                } else {
                    self.foreign.push(self.unreachable.swap_remove(at));
                }
            }
        }
        limit
    }

    /// Whether a flush that carries a single DATA (a reply, with one
    /// message in flight) sends it before the RECVs and ACKs it carries
    /// (off by default). A flush often carries the RECV and ACK a receive
    /// owed together with the application's reply, in one `sendmmsg`. Linux
    /// may switch to the peer's reader between the messages of that call
    /// when both share a CPU (a wake-up preempts the sender at the call's
    /// reschedule point), so the reader reads what was sent first and waits
    /// again for the rest: the reply, sent last, reached it one wake-up
    /// later. The order carries no meaning in the protocol. Only a lone
    /// DATA moves: a reader finding many DATA before the RECVs they follow
    /// returned with less on each read, which cost gtudp-tokio's echo at 64
    /// in flight a tenth of its rate; the blocking socket turns it on.
    pub fn set_lone_data_first(&mut self, on: bool) {
        self.lone_data_first = on;
    }

    /// Makes this socket shard `index` of a group of `n` made by
    /// [`crate::reuseport::bind_group`]: ICMP unreachable reports for
    /// destinations another shard owns ([`crate::reuseport::shard_of`])
    /// are no longer applied here but kept for
    /// [`take_foreign_unreachable`](Self::take_foreign_unreachable).
    pub fn set_shard(&mut self, index: usize, n: usize) {
        self.shard = (n > 1).then_some((index, n));
    }

    /// Whether reports wait for another shard.
    pub fn has_foreign_unreachable(&self) -> bool {
        !self.foreign.is_empty()
    }

    /// The unreachable destinations another shard owns, read since the last
    /// call: the adapter fails their messages in the owner
    /// ([`gtudp_proto::Endpoint::peer_unreachable`]).
    pub fn take_foreign_unreachable(&mut self) -> Vec<SocketAddr> {
        std::mem::take(&mut self.foreign)
    }

    /// Reports every destination ICMP reported unreachable to the endpoint:
    /// their messages fail at once, or after the grace for a peer that
    /// answered before.
    fn fail_unreachable(&mut self, endpoint: &mut Endpoint, now: Instant) {
        for destination in self.unreachable.drain(..) {
            let failed = endpoint.peer_unreachable(now, destination);
            if failed == 0 {
                tracing::debug!(target: "gtudp", local = %self.local, %destination, "ICMP: peer suspect until its grace ends or it answers");
            }
        }
    }

    fn send_all(&mut self, endpoint: &mut Endpoint, now: Instant) {
        loop {
            let mut more = true;
            let fresh = self.queue.len();
            while self.queue.len() < SEND_BATCH {
                let mut buf = self.take_spare();
                let max = self.max_segments();
                let Some(transmit) = endpoint.poll_transmit(now, max, &mut buf) else {
                    self.put_spare(buf);
                    more = false;
                    break;
                };
                if log_enabled() {
                    for datagram in transmit.datagrams(&buf) {
                        log_datagram(
                            "out",
                            self.local,
                            transmit.destination,
                            datagram,
                            &self.framing,
                        );
                    }
                }
                self.queue.push(Outgoing { transmit, buf });
            }
            if self.lone_data_first {
                self.data_first(fresh);
            }
            if self.queue.is_empty() {
                return;
            }
            if let Sent::WouldBlock = self.send_queue() {
                self.counters.send_would_block += 1;
                return;
            }
            if !more {
                return;
            }
        }
    }

    /// Moves a lone DATA among the transmits queued from `from` ahead of
    /// the RECVs and ACKs, keeping their order (see
    /// [`set_lone_data_first`](Self::set_lone_data_first)).
    ///
    /// A flush often carries the RECV and ACK a receive owed together with
    /// the application's reply. The peer's reader wakes on the first
    /// datagram of the batch and reads what has arrived by then; on
    /// loopback each datagram takes the kernel a few microseconds, so a
    /// reply sent last reached the reader one read later. Sent first, the
    /// message the peer's application waits for is in its first read. The
    /// order carries no meaning in the protocol: each datagram names its own
    /// message.
    fn data_first(&mut self, from: usize) {
        let recv = self.framing.type_bytes(PacketKind::Recv);
        let ack = self.framing.type_bytes(PacketKind::Ack);
        let prefix = self.framing.prefix_len();
        let is_control = |outgoing: &Outgoing| {
            let body = outgoing
                .buf
                .get(prefix..outgoing.transmit.size)
                .unwrap_or(&[]);
            body.starts_with(recv) || body.starts_with(ack)
        };
        let mut data = self.queue[from..]
            .iter()
            .enumerate()
            .filter(|(_, outgoing)| !is_control(outgoing));
        let Some((index, lone)) = data.next() else {
            return;
        };
        if lone.transmit.datagram_count() != 1 || data.next().is_some() {
            return;
        }
        self.queue[from..=from + index].rotate_right(1);
    }

    /// Sends the queued transmits, in order: several in one `sendmmsg`
    /// (Linux), one through `quinn-udp`, or each through `quinn-udp` when a
    /// batched call refused the first (the per-datagram error handling of
    /// [`send`](Self::send) then applies to it alone). Sent transmits leave
    /// the queue; a full socket buffer keeps the rest.
    fn send_queue(&mut self) -> Sent {
        let mut start = 0;
        #[cfg(target_os = "linux")]
        let mut retried = false;
        let outcome = loop {
            let rest = self.queue.len() - start;
            if rest == 0 {
                break Sent::Done;
            }
            #[cfg(target_os = "linux")]
            if rest > 1 {
                match self.send_batch(start) {
                    Ok(sent) if sent == rest => {
                        start += sent;
                        continue;
                    }
                    Ok(sent) => {
                        // The kernel stopped at the transmit after these
                        // and dropped its error: sent alone, it meets it
                        // again (or went out, when the error was an ICMP
                        // report's, now cleared).
                        start += sent;
                        let errors = self.error_counts();
                        match self.send_one(start) {
                            Sent::WouldBlock => break Sent::WouldBlock,
                            Sent::Done => {
                                if self.error_counts() == errors {
                                    self.check_error_queue = true;
                                }
                                start += 1;
                            }
                        }
                        continue;
                    }
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                        break Sent::WouldBlock;
                    }
                    Err(error) if is_icmp_report(&error) && !retried => {
                        // About an earlier datagram; none of these was sent.
                        tracing::debug!(target: "gtudp", local = %self.local, %error, "ICMP error report");
                        self.counters.icmp_errors += 1;
                        retried = true;
                        continue;
                    }
                    Err(_) => {
                        // The first transmit was refused: sent alone, its
                        // error is handled as for any single send.
                    }
                }
            }
            match self.send_one(start) {
                Sent::WouldBlock => break Sent::WouldBlock,
                Sent::Done => start += 1,
            }
        };
        for index in 0..start {
            let buf = std::mem::take(&mut self.queue[index].buf);
            self.put_spare(buf);
        }
        self.queue.drain(..start);
        outcome
    }

    /// A buffer for the next transmit.
    fn take_spare(&mut self) -> Vec<u8> {
        let buf = self.spare.pop().unwrap_or_default();
        if buf.capacity() > LARGE_BUFFER {
            self.large_spares = self.large_spares.saturating_sub(1);
        }
        buf
    }

    /// Keeps the buffer of a sent transmit for the next ones, or frees it
    /// when enough are kept.
    fn put_spare(&mut self, buf: Vec<u8>) {
        let large = buf.capacity() > LARGE_BUFFER;
        if self.spare.len() >= SEND_BATCH || (large && self.large_spares >= LARGE_SPARES) {
            return;
        }
        self.large_spares += usize::from(large);
        self.spare.push(buf);
    }

    /// The error counters a send may move, to tell a send that met an error
    /// from one that went out.
    #[cfg(target_os = "linux")]
    fn error_counts(&self) -> (u64, u64, u64) {
        let counters = &self.counters;
        (
            counters.icmp_errors,
            counters.too_large,
            counters.send_errors,
        )
    }

    /// Sends the transmits queued from `start` in one `sendmmsg`; how many
    /// the kernel took, counted.
    #[cfg(target_os = "linux")]
    fn send_batch(&mut self, start: usize) -> io::Result<usize> {
        let ipv6 = self.ipv6;
        let items = self.queue[start..].iter().map(|outgoing| {
            let transmit = &outgoing.transmit;
            crate::mmsg::Item {
                destination: socket_form(transmit.destination, ipv6),
                contents: &outgoing.buf[..transmit.size.min(outgoing.buf.len())],
                segment_size: transmit.segment_size,
            }
        });
        let socket = &self.socket;
        let fd = socket.raw_fd();
        let sent = socket.try_io(Direction::Send, || crate::mmsg::send(fd, items))?;
        let sent = sent.min(self.queue.len() - start);
        if sent > 0 {
            let datagrams: usize = self.queue[start..start + sent]
                .iter()
                .map(|outgoing| outgoing.transmit.datagram_count())
                .sum();
            self.counters.send_calls += 1;
            self.counters.datagrams_sent += datagrams as u64;
            if datagrams > 1 {
                self.counters.batched_sends += 1;
            }
        }
        Ok(sent)
    }

    /// Sends queued transmit `index` alone, through `quinn-udp`, counted.
    fn send_one(&mut self, index: usize) -> Sent {
        let transmit = self.queue[index].transmit;
        // Lent out for the call, which may read the error queue.
        let buf = std::mem::take(&mut self.queue[index].buf);
        let contents = &buf[..transmit.size.min(buf.len())];
        let sent = self.send(transmit.destination, contents, transmit.segment_size);
        self.queue[index].buf = buf;
        if let Sent::Done = sent {
            let count = transmit.datagram_count() as u64;
            self.counters.send_calls += 1;
            self.counters.datagrams_sent += count;
            if count > 1 {
                self.counters.batched_sends += 1;
            }
        }
        sent
    }

    /// Sends `contents` (several datagrams laid out for GSO when
    /// `segment_size` is set) to `destination` (canonical form).
    ///
    /// Errors other than a full buffer never stop the caller: an ICMP
    /// report left over from an earlier datagram is retried once, a GSO
    /// batch the kernel refuses is resent datagram by datagram, a datagram
    /// refused alone as too large (EMSGSIZE) is noted for the endpoint
    /// (`too_large`), and anything else is counted, logged and dropped:
    /// DATA and RECV are resent by the protocol.
    fn send(
        &mut self,
        destination: SocketAddr,
        contents: &[u8],
        segment_size: Option<usize>,
    ) -> Sent {
        let local = self.local;
        let transmit = quinn_udp::Transmit {
            destination: socket_form(destination, self.ipv6),
            ecn: None,
            contents,
            segment_size,
            src_ip: None,
        };
        let mut retried = false;
        loop {
            let (socket, state) = (&self.socket, &self.state);
            let result = socket.try_io(Direction::Send, || {
                state.try_send(socket.sock_ref(), &transmit)
            });
            let error = match result {
                Ok(()) => return Sent::Done,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Sent::WouldBlock,
                Err(error) => error,
            };
            if is_icmp_report(&error) && !retried {
                // The error belongs to an earlier datagram; this one was not
                // sent yet.
                tracing::debug!(target: "gtudp", %local, %destination, %error, "ICMP error report");
                self.counters.icmp_errors += 1;
                retried = true;
                continue;
            }
            if let Some(segment) = segment_size.filter(|&s| s < contents.len()) {
                let segment = segment.max(1);
                tracing::debug!(
                    target: "gtudp", %local, %destination, %error,
                    "segmented send refused; sending {} datagrams one by one",
                    contents.len().div_ceil(segment)
                );
                for datagram in contents.chunks(segment) {
                    if let Sent::WouldBlock = self.send(destination, datagram, None) {
                        // The rest is recovered by retransmission.
                        return Sent::Done;
                    }
                }
                return Sent::Done;
            }
            if quinn_udp::is_msg_size_err(&error) {
                // This datagram's own refusal queues a local report with
                // the MTU; without one, the error is a pending ICMP
                // "fragmentation needed" for an earlier datagram, and this
                // one was not sent yet.
                let refusal = if self.error_queue {
                    self.read_error_queue_for_limit()
                } else {
                    None
                };
                if self.error_queue && refusal.is_none() && !retried {
                    tracing::debug!(target: "gtudp", %local, %destination, %error, "ICMP error report");
                    self.counters.icmp_errors += 1;
                    retried = true;
                    continue;
                }
                // Never sendable as it is: the endpoint fails its messages.
                // A limit at least this large contradicts the refusal.
                let limit = refusal
                    .and_then(|refusal| refusal.limit)
                    .filter(|&limit| limit < contents.len());
                self.counters.too_large += 1;
                self.too_large.push((destination, contents.len(), limit));
                return Sent::Done;
            }
            self.counters.send_errors += 1;
            tracing::warn!(target: "gtudp", %local, %destination, %error, "send failed; datagram dropped");
            return Sent::Done;
        }
    }
}

/// `destination` as the system call of a socket of the given family takes
/// it: IPv4-mapped for an IPv6 socket, as is otherwise (an IPv6 destination
/// on an IPv4 socket fails in the kernel, logged like any refused send).
fn socket_form(destination: SocketAddr, ipv6_socket: bool) -> SocketAddr {
    match destination {
        SocketAddr::V4(v4) if ipv6_socket => {
            SocketAddr::new(v4.ip().to_ipv6_mapped().into(), v4.port())
        }
        _ => destination,
    }
}

/// An error reported by ICMP for an earlier datagram (port unreachable and
/// the like), which says nothing about the socket itself.
pub fn is_icmp_report(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use bytes::Bytes;
    use gtudp_proto::wire::Packet;
    use gtudp_proto::{Config, Endpoint, Event};

    use super::*;

    /// A non-blocking std socket: `try_io` just runs the call.
    #[derive(Debug)]
    struct Std(std::net::UdpSocket);

    impl Socket for Std {
        fn sock_ref(&self) -> UdpSockRef<'_> {
            (&self.0).into()
        }

        fn local_addr(&self) -> io::Result<SocketAddr> {
            self.0.local_addr()
        }

        #[cfg(target_os = "linux")]
        fn raw_fd(&self) -> std::os::fd::RawFd {
            std::os::fd::AsRawFd::as_raw_fd(&self.0)
        }

        fn try_io<R>(&self, _: Direction, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
            f()
        }
    }

    fn bind() -> BatchIo<Std> {
        bind_to("127.0.0.1:0")
    }

    fn bind_to(addr: &str) -> BatchIo<Std> {
        let socket = std::net::UdpSocket::bind(addr).unwrap();
        socket.set_nonblocking(true).unwrap();
        BatchIo::new(Std(socket), Config::default().framing).unwrap()
    }

    /// Receives at least `count` datagrams (waiting at most 5 s).
    fn recv_some(io: &mut BatchIo<Std>, count: usize) -> Vec<(SocketAddr, Bytes)> {
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while out.len() < count && Instant::now() < deadline {
            match io.recv(&mut out) {
                Recv::Datagrams(_) | Recv::IcmpReport => {}
                Recv::WouldBlock => std::thread::sleep(Duration::from_millis(1)),
                Recv::Error => panic!("receive error"),
            }
        }
        out
    }

    /// A dual-stack socket sends to a plain IPv4 destination (written
    /// IPv4-mapped for the system call) and reports an IPv4 peer's
    /// datagrams as coming from its plain address.
    #[test]
    fn a_dual_stack_socket_uses_plain_ipv4_addresses() {
        let (mut dual, mut v4) = (bind_to("[::]:0"), bind_to("127.0.0.1:0"));
        let v4_addr = v4.socket().0.local_addr().unwrap();
        let dual_port = dual.socket().0.local_addr().unwrap().port();
        let now = Instant::now();
        let mut endpoint = Endpoint::new(Config::default(), 1).unwrap();
        endpoint
            .send(now, v4_addr, Bytes::from_static(b"to v4"))
            .unwrap();
        dual.flush(&mut endpoint, now);
        assert_eq!(dual.counters().send_errors, 0);
        let got = recv_some(&mut v4, 1);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, format!("127.0.0.1:{dual_port}").parse().unwrap());

        let mut endpoint = Endpoint::new(Config::default(), 2).unwrap();
        let dual_v4: SocketAddr = format!("127.0.0.1:{dual_port}").parse().unwrap();
        endpoint
            .send(now, dual_v4, Bytes::from_static(b"to dual"))
            .unwrap();
        v4.flush(&mut endpoint, now);
        let got = recv_some(&mut dual, 1);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, v4_addr, "not [::ffff:127.0.0.1]");
    }

    /// IPv6 loopback (MTU 65,536) with fragmentation off takes UDP
    /// payloads up to 65,488 bytes: a 65,507-byte datagram (the largest
    /// `Config::max_datagram_size`) is refused with EMSGSIZE. Its message
    /// fails at once with `TooLarge` (the limit read from the error queue),
    /// and a small message to the same peer goes out.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_datagram_refused_as_too_large_fails_its_message() {
        let (mut a, mut b) = (bind_to("[::1]:0"), bind_to("[::1]:0"));
        let b_addr = b.socket().0.local_addr().unwrap();
        let now = Instant::now();
        let mut config = Config::default();
        config.max_datagram_size = gtudp_proto::MAX_UDP_PAYLOAD;
        let max_payload = config.max_payload_size();
        let mut endpoint = Endpoint::new(config, 1).unwrap();
        let big = endpoint
            .send(now, b_addr, Bytes::from(vec![1; max_payload]))
            .unwrap();
        let small = endpoint
            .send(now, b_addr, Bytes::from(vec![2; 1_000]))
            .unwrap();
        a.flush(&mut endpoint, now);
        let event = endpoint.poll_event();
        let Some(Event::Failed {
            id,
            to,
            reason: gtudp_proto::FailureReason::TooLarge { size, limit },
        }) = event
        else {
            panic!("expected the big message to fail TooLarge, got {event:?}");
        };
        assert_eq!((id, to, size), (big, b_addr, gtudp_proto::MAX_UDP_PAYLOAD));
        // The kernel's MTU less the IPv6 and UDP headers (65,488 on a
        // default loopback).
        assert!(limit.is_some_and(|limit| limit < size), "{limit:?}");
        if let Ok(mtu) = std::fs::read_to_string("/sys/class/net/lo/mtu") {
            let mtu: usize = mtu.trim().parse().unwrap();
            assert_eq!(limit, Some(mtu - 48));
        }
        assert_eq!(endpoint.poll_event(), None, "{small:?} is in flight");
        assert_eq!(a.counters().too_large, 1);
        assert_eq!(a.counters().send_errors, 0);
        assert_eq!(endpoint.stats().too_large_reports, 1);
        let got = recv_some(&mut b, 1);
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].1.len(),
            1_000 + endpoint.config().framing.header_len()
        );
        // Flushed again (its timers), nothing more is refused: the big
        // message is not resent.
        endpoint.handle_timeout(now + Duration::from_secs(5));
        a.flush(&mut endpoint, now + Duration::from_secs(5));
        assert_eq!(a.counters().too_large, 1);
    }

    /// With fragmentation allowed, the same 65,507-byte datagram leaves
    /// (in IPv6 fragments) and arrives whole; setting the default back
    /// makes it refused again.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_socket_that_allows_fragmentation_sends_the_largest_datagram() {
        let (mut a, mut b) = (bind_to("[::1]:0"), bind_to("[::1]:0"));
        a.set_fragmentation(crate::Fragmentation::Allowed).unwrap();
        let b_addr = b.socket().0.local_addr().unwrap();
        let now = Instant::now();
        let mut config = Config::default();
        config.max_datagram_size = gtudp_proto::MAX_UDP_PAYLOAD;
        let max_payload = config.max_payload_size();
        let mut endpoint = Endpoint::new(config, 1).unwrap();
        endpoint
            .send(now, b_addr, Bytes::from(vec![1; max_payload]))
            .unwrap();
        a.flush(&mut endpoint, now);
        assert_eq!(endpoint.poll_event(), None);
        assert_eq!(a.counters().too_large, 0);
        let got = recv_some(&mut b, 1);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1.len(), gtudp_proto::MAX_UDP_PAYLOAD);

        a.set_fragmentation(crate::Fragmentation::Forbidden)
            .unwrap();
        endpoint
            .send(now, b_addr, Bytes::from(vec![2; max_payload]))
            .unwrap();
        a.flush(&mut endpoint, now);
        assert_eq!(a.counters().too_large, 1);
        assert!(matches!(
            endpoint.poll_event(),
            Some(Event::Failed {
                reason: gtudp_proto::FailureReason::TooLarge { .. },
                ..
            })
        ));
    }

    /// The header length of the default framing, for datagram sizes.
    fn header_len() -> usize {
        Config::default().framing.header_len()
    }

    /// The payload lengths of `datagrams`, sorted.
    fn payload_lens(datagrams: &[(SocketAddr, Bytes)]) -> Vec<usize> {
        let mut lens: Vec<usize> = datagrams
            .iter()
            .map(|(_, datagram)| datagram.len() - header_len())
            .collect();
        lens.sort_unstable();
        lens
    }

    /// Transmits of different sizes and destinations, which GSO cannot
    /// join (and a GSO batch among them), leave in one `sendmmsg`.
    #[cfg(target_os = "linux")]
    #[test]
    fn transmits_of_any_sizes_and_destinations_leave_in_one_system_call() {
        let (mut a, mut b, mut c) = (bind(), bind(), bind());
        let b_addr = b.socket().0.local_addr().unwrap();
        let c_addr = c.socket().0.local_addr().unwrap();
        let now = Instant::now();
        let mut endpoint = Endpoint::new(Config::default(), 1).unwrap();
        // Growing sizes to one destination end a GSO batch each time; the
        // three of 100 bytes make one.
        for (to, len) in [
            (b_addr, 37),
            (b_addr, 100),
            (b_addr, 100),
            (b_addr, 100),
            (c_addr, 64),
            (b_addr, 200),
        ] {
            endpoint.send(now, to, Bytes::from(vec![7; len])).unwrap();
        }
        a.flush(&mut endpoint, now);
        let counters = a.counters();
        assert_eq!(counters.datagrams_sent, 6);
        assert_eq!(counters.send_calls, 1, "{counters:?}");
        assert_eq!(counters.batched_sends, 1);
        assert_eq!(counters.send_errors, 0);
        assert!(!a.is_blocked());
        assert_eq!(
            payload_lens(&recv_some(&mut b, 5)),
            [37, 100, 100, 100, 200]
        );
        assert_eq!(payload_lens(&recv_some(&mut c, 1)), [64]);
    }

    /// With `set_lone_data_first`, a flush that carries an ACK the endpoint
    /// owes and one new message sends the message first, so the peer's
    /// first read has it; the ACK follows in the same system call. A flush
    /// with two messages keeps the ACK first, as does every flush of a
    /// socket without the option.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_lone_message_leaves_before_the_acks_flushed_with_it() {
        use gtudp_proto::wire::Framing;

        /// `b` confirms the DATA among `datagrams`, so that the endpoint
        /// owes an ACK each; then the endpoint sends `messages`, flushed in
        /// one system call. Returns the kinds `b` reads, in order.
        fn exchange(
            (a, b): (&mut BatchIo<Std>, &mut BatchIo<Std>),
            endpoint: &mut Endpoint,
            framing: &Framing,
            datagrams: &[(SocketAddr, Bytes)],
            messages: &[&'static [u8]],
        ) -> Vec<(SocketAddr, Bytes)> {
            let a_addr = a.socket().0.local_addr().unwrap();
            let b_addr = b.socket().0.local_addr().unwrap();
            let now = Instant::now();
            for (_, datagram) in datagrams {
                let packet = framing.parse(datagram).unwrap();
                if packet.kind() == PacketKind::Data {
                    let mut recv = Vec::new();
                    framing.encode_to_vec(
                        &Packet::Recv {
                            identity: packet.identity(),
                        },
                        &mut recv,
                    );
                    b.socket().0.send_to(&recv, a_addr).unwrap();
                    let (from, datagram) = recv_some(a, 1).pop().unwrap();
                    endpoint.handle_datagram(now, from, datagram);
                }
            }
            for message in messages {
                endpoint
                    .send(now, b_addr, Bytes::from_static(message))
                    .unwrap();
            }
            let calls = a.counters().send_calls;
            a.flush(endpoint, now);
            assert_eq!(a.counters().send_calls, calls + 1);
            recv_some(
                b,
                datagrams
                    .iter()
                    .filter(|(_, d)| framing.parse(d).unwrap().kind() == PacketKind::Data)
                    .count()
                    + messages.len(),
            )
        }

        let framing = Config::default().framing;
        let kinds = |datagrams: &[(SocketAddr, Bytes)]| -> Vec<PacketKind> {
            datagrams
                .iter()
                .map(|(_, datagram)| framing.parse(datagram).unwrap().kind())
                .collect()
        };
        for lone_data_first in [true, false] {
            let (mut a, mut b) = (bind(), bind());
            a.set_lone_data_first(lone_data_first);
            let mut endpoint = Endpoint::new(Config::default(), 1).unwrap();
            let first = exchange((&mut a, &mut b), &mut endpoint, &framing, &[], &[b"one"]);
            let lone = exchange((&mut a, &mut b), &mut endpoint, &framing, &first, &[b"two"]);
            let (ack, data) = (PacketKind::Ack, PacketKind::Data);
            let expected = if lone_data_first {
                [data, ack]
            } else {
                [ack, data]
            };
            assert_eq!(kinds(&lone), expected, "lone_data_first {lone_data_first}");
            let two = exchange(
                (&mut a, &mut b),
                &mut endpoint,
                &framing,
                &lone,
                &[b"three", b"four"],
            );
            assert_eq!(
                kinds(&two),
                [ack, data, data],
                "lone_data_first {lone_data_first}"
            );
        }
    }

    /// GSO batches to many destinations in one flush each take a large
    /// buffer; only a few are kept for the next flushes.
    #[cfg(target_os = "linux")]
    #[test]
    fn only_a_few_large_transmit_buffers_are_kept() {
        let mut a = bind();
        let peers: Vec<_> = (0..10).map(|_| bind()).collect();
        let now = Instant::now();
        let mut endpoint = Endpoint::new(Config::default(), 1).unwrap();
        for peer in &peers {
            let to = peer.socket().0.local_addr().unwrap();
            for _ in 0..12 {
                endpoint.send(now, to, Bytes::from(vec![5; 1_400])).unwrap();
            }
        }
        a.flush(&mut endpoint, now);
        assert_eq!(a.counters().datagrams_sent, 120);
        assert!(a.counters().send_calls < 10, "{:?}", a.counters());
        let large = a
            .spare
            .iter()
            .filter(|buf| buf.capacity() > LARGE_BUFFER)
            .count();
        assert!(large >= 1, "no GSO batch was large: nothing tested");
        assert!(large <= LARGE_SPARES, "{large} large buffers kept");
        assert_eq!(large, a.large_spares);
    }

    /// A transmit the kernel refuses in the middle of a batch, or at its
    /// head, is handled alone as a single send's would be (counted,
    /// dropped); the others of the batch still leave.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_refused_transmit_in_a_batch_costs_only_itself() {
        let (mut a, mut b, mut c) = (bind(), bind(), bind());
        let b_addr = b.socket().0.local_addr().unwrap();
        let c_addr = c.socket().0.local_addr().unwrap();
        // An IPv6 destination on an IPv4 socket: refused by the kernel.
        let v6: SocketAddr = "[2001:db8::1]:9".parse().unwrap();
        let now = Instant::now();
        let mut endpoint = Endpoint::new(Config::default(), 1).unwrap();
        for (to, len) in [(v6, 10), (b_addr, 20), (v6, 30), (c_addr, 40), (b_addr, 50)] {
            endpoint.send(now, to, Bytes::from(vec![1; len])).unwrap();
        }
        a.flush(&mut endpoint, now);
        let counters = a.counters();
        assert_eq!(counters.send_errors, 2, "{counters:?}");
        assert!(!a.is_blocked());
        assert_eq!(payload_lens(&recv_some(&mut b, 2)), [20, 50]);
        assert_eq!(payload_lens(&recv_some(&mut c, 1)), [40]);
    }

    /// A datagram too large for the path in the middle of a batch fails
    /// its message with `TooLarge`, as when sent alone; the datagrams
    /// around it leave.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_datagram_too_large_in_a_batch_fails_only_its_message() {
        let (mut a, mut b, mut c) = (bind_to("[::1]:0"), bind_to("[::1]:0"), bind_to("[::1]:0"));
        let b_addr = b.socket().0.local_addr().unwrap();
        let c_addr = c.socket().0.local_addr().unwrap();
        let now = Instant::now();
        let mut config = Config::default();
        config.max_datagram_size = gtudp_proto::MAX_UDP_PAYLOAD;
        let max_payload = config.max_payload_size();
        let mut endpoint = Endpoint::new(config, 1).unwrap();
        endpoint
            .send(now, b_addr, Bytes::from(vec![1; 1_000]))
            .unwrap();
        let big = endpoint
            .send(now, b_addr, Bytes::from(vec![2; max_payload]))
            .unwrap();
        endpoint
            .send(now, c_addr, Bytes::from(vec![3; 2_000]))
            .unwrap();
        a.flush(&mut endpoint, now);
        let event = endpoint.poll_event();
        assert!(
            matches!(
                event,
                Some(Event::Failed {
                    id,
                    reason: gtudp_proto::FailureReason::TooLarge { .. },
                    ..
                }) if id == big
            ),
            "{event:?}"
        );
        assert_eq!(endpoint.poll_event(), None);
        assert_eq!(a.counters().too_large, 1);
        assert_eq!(a.counters().send_errors, 0);
        assert_eq!(payload_lens(&recv_some(&mut b, 1)), [1_000]);
        assert_eq!(payload_lens(&recv_some(&mut c, 1)), [2_000]);
    }

    #[test]
    fn flush_then_recv_over_loopback() {
        let (mut a, mut b) = (bind(), bind());
        let b_addr = b.socket().0.local_addr().unwrap();
        let now = Instant::now();
        let mut endpoint = Endpoint::new(Config::default(), 1).unwrap();
        for i in 0..5u8 {
            endpoint
                .send(now, b_addr, Bytes::from(vec![i; 100]))
                .unwrap();
        }
        a.flush(&mut endpoint, now);
        assert!(!a.is_blocked());
        assert_eq!(a.counters().datagrams_sent, 5);

        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while out.len() < 5 && Instant::now() < deadline {
            match b.recv(&mut out) {
                Recv::Datagrams(_) | Recv::IcmpReport => {}
                Recv::WouldBlock => std::thread::sleep(Duration::from_millis(1)),
                Recv::Error => panic!("receive error"),
            }
        }
        assert_eq!(out.len(), 5);
        assert_eq!(b.counters().datagrams_received, 5);

        let mut receiver = Endpoint::new(Config::default(), 2).unwrap();
        let a_addr = a.socket().0.local_addr().unwrap();
        for (from, datagram) in out.drain(..) {
            assert_eq!(from, a_addr);
            receiver.handle_datagram(now, from, datagram);
        }
        // `a` has not proven its address to the receiver: its DATA are held
        // and a validation probe goes back; the ACK naming the probe's
        // token, as any gtUDP sender answers a RECV, takes them.
        let framing = receiver.config().framing.clone();
        let mut buf = Vec::new();
        let mut answers = Vec::new();
        while let Some(transmit) = receiver.poll_transmit(now, 1, &mut buf) {
            if let Ok(gtudp_proto::wire::Packet::Recv { identity }) =
                framing.parse(&buf[..transmit.size])
            {
                let mut ack = Vec::new();
                framing.encode_to_vec(&gtudp_proto::wire::Packet::Ack { identity }, &mut ack);
                answers.push(Bytes::from(ack));
            }
        }
        for answer in answers {
            receiver.handle_datagram(now, a_addr, answer);
        }
        let mut payloads = Vec::new();
        while let Some(event) = receiver.poll_event() {
            if let Event::Received { payload, .. } = event {
                payloads.push(payload[0]);
            }
        }
        payloads.sort_unstable();
        assert_eq!(payloads, [0, 1, 2, 3, 4]);
    }
}
