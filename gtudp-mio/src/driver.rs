//! [`Driver`]: one [`Endpoint`] and one mio UDP socket, for hand-written
//! event loops.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use gtudp_io::{Recv, SendOptions};
use gtudp_proto::{
    Config, Endpoint, Event, MessageId, PeerStats, SendError, SendRawError, UnknownMessage,
};
use mio::event::Source;
use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};

use crate::error::BindError;
use crate::io::{MioSocket, UdpIo};
use crate::stats::Stats;

/// Whether a batched receive that filled fewer slots than it had emptied
/// the socket (`recvmmsg` takes what is queued, up to the slots; the
/// portable fallback reads one datagram per call).
const EMPTIED_BY_PARTIAL_BATCH: bool = cfg!(target_os = "linux");

/// Receive batches taken per call before the driver turns to its other
/// work, so a flood cannot starve timers and sends. What is left is read by
/// the next [`Driver::handle_timeout`], which [`Driver::poll_timeout`] asks
/// for at once.
const RECV_BATCHES_PER_CALL: usize = 4;

/// Drives one gtUDP [`Endpoint`] from a non-blocking mio UDP socket, inside
/// an event loop you write.
///
/// The driver owns the socket and the protocol state; you own the
/// [`mio::Poll`], the clock and the loop. Use it when gtUDP is one source
/// among others in your own loop; for a ready-made blocking API use
/// [`BlockingSocket`](crate::BlockingSocket), which runs a driver on a
/// thread.
///
/// # Event-loop contract
///
/// 1. Register the driver once: [`register`](Self::register) (or
///    `registry.register(&mut driver, token, Interest::READABLE)`, as it
///    implements [`mio::event::Source`]). The driver manages its own
///    interests from then on: readable always, writable only while a send
///    waits for room in the socket buffer.
/// 2. Wait with `poll.poll(&mut events, timeout)`, the timeout computed
///    from [`poll_timeout`](Self::poll_timeout) (`None`: wait for I/O only).
/// 3. For each event with the driver's token, call
///    [`handle_readable`](Self::handle_readable) if it is readable or an
///    error (an ICMP report), and
///    [`handle_writable`](Self::handle_writable) if it is writable.
/// 4. After every wake-up, call [`handle_timeout`](Self::handle_timeout)
///    (cheap when nothing is due), then drain
///    [`poll_event`](Self::poll_event).
/// 5. After calling [`send`](Self::send) (any number of times: a burst goes
///    out in batches), call [`flush`](Self::flush). Forgetting it only costs
///    a loop turn: `poll_timeout` asks for an immediate wake-up while
///    anything is unflushed.
///
/// Every `handle_*` sends what the endpoint has to send before returning.
/// `now` is your clock (`Instant::now()`); it must not go backwards. Nothing
/// is polled in a loop: when idle, `poll_timeout` is the endpoint's next
/// retransmission or expiry, or `None`.
///
/// ICMP unreachable reports (port, host or network unreachable) fail the
/// messages to a destination that never answered at once with
/// [`FailureReason::Unreachable`](gtudp_proto::FailureReason) (one that
/// answered before gets `Config::unreachable_grace`, see
/// [`Endpoint::peer_unreachable`](gtudp_proto::Endpoint::peer_unreachable)) where the
/// operating system names the destination (Linux, through the socket's
/// error queue, `IP_RECVERR`); call [`handle_readable`](Self::handle_readable)
/// for error events too (`event.is_error()`), which is how they arrive.
/// Elsewhere they are counted and logged, and the attempt limit decides.
/// A datagram the kernel refuses as too large for the path (EMSGSIZE)
/// fails the messages that large to its destination at once with
/// [`FailureReason::TooLarge`](gtudp_proto::FailureReason::TooLarge) (see
/// [`Endpoint::datagram_too_large`](gtudp_proto::Endpoint::datagram_too_large));
/// other refusals are counted and logged, never fatal.
///
/// # Example
///
/// Two drivers on loopback, one mio loop, one message each way:
///
/// ```
/// use std::time::{Duration, Instant};
/// use bytes::Bytes;
/// use gtudp_mio::{Config, Driver, Event};
/// use mio::{Events, Poll, Token};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut poll = Poll::new()?;
/// let mut a = Driver::bind("127.0.0.1:0".parse()?, Config::default())?;
/// let mut b = Driver::bind("127.0.0.1:0".parse()?, Config::default())?;
/// a.register(poll.registry(), Token(0))?;
/// b.register(poll.registry(), Token(1))?;
/// let (a_addr, b_addr) = (a.local_addr()?, b.local_addr()?);
///
/// let now = Instant::now();
/// a.send(now, b_addr, Bytes::from_static(b"ping"))?;
/// a.flush(now);
///
/// let mut events = Events::with_capacity(64);
/// let (mut delivered, mut echoed) = (false, false);
/// let give_up = Instant::now() + Duration::from_secs(10);
/// while !(delivered && echoed) && Instant::now() < give_up {
///     // Sleep until I/O or the earliest timer of either driver.
///     let deadline = [a.poll_timeout(), b.poll_timeout()].into_iter().flatten().min();
///     let timeout = deadline
///         .map(|at| at.saturating_duration_since(Instant::now()))
///         .unwrap_or(Duration::from_millis(100));
///     poll.poll(&mut events, Some(timeout))?;
///     let now = Instant::now();
///     for event in events.iter() {
///         let driver = if event.token() == Token(0) { &mut a } else { &mut b };
///         if event.is_readable() || event.is_error() {
///             driver.handle_readable(now);
///         }
///         if event.is_writable() {
///             driver.handle_writable(now);
///         }
///     }
///     a.handle_timeout(now);
///     b.handle_timeout(now);
///     while let Some(event) = b.poll_event() {
///         if let Event::Received { from, payload } = event {
///             // Echo it back, with guaranteed delivery too.
///             b.send(now, from, payload)?;
///             b.flush(now);
///         }
///     }
///     while let Some(event) = a.poll_event() {
///         match event {
///             Event::Delivered { to, .. } => delivered |= to == b_addr,
///             Event::Received { payload, .. } => echoed |= &payload[..] == b"ping",
///             _ => {}
///         }
///     }
/// }
/// assert!(delivered && echoed);
/// # let _ = a_addr;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Driver {
    io: UdpIo,
    endpoint: Endpoint,
    registration: Option<Registration>,
    /// Whether WRITABLE is part of the registered interest.
    writable_interest: bool,
    /// The socket is taken out of the registry for a while
    /// ([`set_paused`](Self::set_paused)).
    paused: bool,
    /// The last receive stopped at its batch limit, not at `WouldBlock`.
    read_pending: bool,
    /// Application calls since the last flush.
    unflushed: bool,
    /// A read's answers (RECVs, ACKs) wait for the application's next call
    /// ([`receive_held`](Self::receive_held)).
    held: bool,
    /// The latest `now` seen, for "wake at once" answers of `poll_timeout`.
    latest: Option<Instant>,
    /// Events taken from the endpoint while a receive room is set.
    events: VecDeque<Event>,
    receive_room: Option<usize>,
}

#[derive(Debug)]
struct Registration {
    registry: Registry,
    token: Token,
}

impl Driver {
    /// Binds a UDP socket to `addr` and drives a new endpoint with `config`
    /// on it (secrets seeded from the operating system's random source).
    pub fn bind(addr: SocketAddr, config: Config) -> Result<Self, BindError> {
        Self::new(UdpSocket::bind(addr)?, config)
    }

    /// Drives a new endpoint with `config` on an existing mio socket, for
    /// sockets set up with options of your own.
    pub fn new(socket: UdpSocket, config: Config) -> Result<Self, BindError> {
        let mut seed = [0u8; 16];
        getrandom::fill(&mut seed).map_err(|error| {
            BindError::Io(io::Error::other(format!(
                "no random source for the endpoint's secrets: {error}"
            )))
        })?;
        let endpoint = Endpoint::new(config, u128::from_le_bytes(seed))?;
        Ok(Self::from_endpoint(socket, endpoint)?)
    }

    /// Drives an endpoint you built, for a chosen seed (reproducible
    /// identities in tests) or an endpoint carried over from elsewhere.
    pub fn from_endpoint(socket: UdpSocket, endpoint: Endpoint) -> io::Result<Self> {
        Ok(Self {
            io: UdpIo::new(MioSocket(socket), endpoint.config().framing.clone())?,
            endpoint,
            registration: None,
            writable_interest: false,
            paused: false,
            read_pending: false,
            unflushed: false,
            held: false,
            latest: None,
            events: VecDeque::new(),
            receive_room: None,
        })
    }

    // ----- registration --------------------------------------------------

    /// Registers the socket with `registry` under `token`, readable.
    ///
    /// The driver keeps a clone of the registry (one file descriptor) so
    /// that it can add writable interest while a send waits for room, and
    /// drop it afterwards.
    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        self.io
            .socket_mut()
            .0
            .register(registry, token, Interest::READABLE)?;
        self.registration = Some(Registration {
            registry: registry.try_clone()?,
            token,
        });
        self.writable_interest = false;
        self.paused = false;
        // A send blocked before registration still needs its wake-up.
        self.update_interest();
        Ok(())
    }

    /// Removes the socket from `registry`; the driver then gets no events
    /// until registered again.
    pub fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.registration = None;
        self.writable_interest = false;
        self.paused = false;
        self.io.socket_mut().0.deregister(registry)
    }

    /// Whether the kernel may split a datagram too large for the path into
    /// IP fragments: [`Fragmentation::Forbidden`](crate::Fragmentation) by
    /// default (a datagram larger than the interface's MTU is refused, and
    /// its message fails with `TooLarge`); `Allowed` fragments as a plain
    /// socket does (Linux only; elsewhere an `Unsupported` error). See
    /// [`gtudp_io::BatchIo::set_fragmentation`].
    pub fn set_fragmentation(&mut self, choice: crate::Fragmentation) -> io::Result<()> {
        self.io.set_fragmentation(choice)
    }

    // ----- getters -------------------------------------------------------

    /// The socket's local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.socket().0.local_addr()
    }

    /// The socket's address as bound, without a system call (for logs).
    pub(crate) fn io_local_addr(&self) -> SocketAddr {
        self.io.local_addr()
    }

    /// The protocol endpoint, for its configuration, table sizes and
    /// counters.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Counters of the endpoint and of the socket I/O.
    pub fn stats(&self) -> Stats {
        Stats::new(self.endpoint.stats(), self.io.counters())
    }

    /// Counters and RTT estimate for one peer, while it is tracked.
    pub fn peer_stats(&self, peer: SocketAddr) -> Option<PeerStats> {
        self.endpoint.peer_stats(peer)
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closing(&self) -> bool {
        self.endpoint.is_closing()
    }

    /// Whether the close has finished: every message resolved and every
    /// datagram handed to the kernel. Events may still wait in
    /// [`poll_event`](Self::poll_event). The socket can then be dropped.
    pub fn is_closed(&self) -> bool {
        self.endpoint.is_closed() && !self.io.is_blocked()
    }

    // ----- inputs --------------------------------------------------------

    /// Reads what the socket holds (a few batches at most; see
    /// [`poll_timeout`](Self::poll_timeout) for the rest), feeds it to the
    /// endpoint and sends the replies. Call it when mio reports the
    /// driver's token readable.
    pub fn handle_readable(&mut self, now: Instant) {
        self.note(now);
        self.receive(now);
        self.flush(now);
    }

    /// Sends what waited for room in the socket buffer. Call it when mio
    /// reports the driver's token writable.
    pub fn handle_writable(&mut self, now: Instant) {
        self.note(now);
        self.flush(now);
    }

    /// Runs the endpoint's due timers (retransmissions, attempt limits,
    /// expiries), resumes a receive cut short, and sends the result. Call
    /// it after every wake-up of the loop; nothing happens when nothing is
    /// due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.note(now);
        if self.read_pending {
            self.receive(now);
        }
        self.endpoint.handle_timeout(now);
        self.flush(now);
    }

    // ----- application calls ---------------------------------------------

    /// Sends `payload` to `destination` with guaranteed delivery: it ends in
    /// exactly one [`Event::Delivered`] or [`Event::Failed`] carrying the
    /// returned id. Call [`flush`](Self::flush) after a burst of sends.
    ///
    /// A refused send hands the payload back in the [`SendError`].
    pub fn send(
        &mut self,
        now: Instant,
        destination: SocketAddr,
        payload: Bytes,
    ) -> Result<MessageId, SendError> {
        self.send_with_deadline(now, destination, payload, Default::default())
    }

    /// [`send`](Self::send) with a per-message delivery timeout (counted
    /// from `now`) or attempt limit.
    pub fn send_with(
        &mut self,
        now: Instant,
        destination: SocketAddr,
        payload: Bytes,
        options: SendOptions,
    ) -> Result<MessageId, SendError> {
        self.send_with_deadline(now, destination, payload, options.to_proto(now))
    }

    /// [`send_with`](Self::send_with) with the endpoint's own options (a
    /// deadline instead of a timeout).
    pub(crate) fn send_with_deadline(
        &mut self,
        now: Instant,
        destination: SocketAddr,
        payload: Bytes,
        options: gtudp_proto::SendOptions,
    ) -> Result<MessageId, SendError> {
        self.note(now);
        let id = self
            .endpoint
            .send_with(now, destination, payload, options)?;
        self.unflushed = true;
        Ok(id)
    }

    /// Queues a datagram sent as is, without gtUDP framing or guarantees,
    /// for peers that do not speak gtUDP. Call [`flush`](Self::flush) after.
    pub fn send_raw(
        &mut self,
        destination: SocketAddr,
        datagram: Bytes,
    ) -> Result<(), SendRawError> {
        self.endpoint.send_raw(destination, datagram)?;
        self.unflushed = true;
        Ok(())
    }

    /// Stops trying to deliver a message; it ends in [`Event::Failed`] with
    /// [`FailureReason::Cancelled`](gtudp_proto::FailureReason).
    pub fn cancel(&mut self, id: MessageId) -> Result<(), UnknownMessage> {
        self.endpoint.cancel(id)
    }

    /// Starts closing: no new sends or incoming messages; what is in flight
    /// keeps being resolved until done or until `Config::drain_timeout`.
    /// Keep running the loop until [`is_closed`](Self::is_closed).
    pub fn close(&mut self, now: Instant) {
        self.note(now);
        self.endpoint.close(now);
        self.flush(now);
    }

    /// Bounds the received messages the driver takes before the
    /// application has read them, for an application with a bounded queue
    /// of its own.
    ///
    /// `Some(n)`: at most `n` more [`Event::Received`] or [`Event::Foreign`]
    /// are taken; once they are, the endpoint leaves new DATA unanswered
    /// (its sender resends it later, so nothing is lost) until the room is
    /// raised again. Repeats, RECV and ACK keep flowing, so this side's own
    /// sends still complete. `None` (the default): only
    /// [`Limits::max_unread`](gtudp_proto::Limits) applies. Each taken
    /// message lowers the room by one; set it again whenever the
    /// application's queue drains. A sender whose messages stay unanswered
    /// longer than its attempt limit reports them failed.
    pub fn set_receive_room(&mut self, room: Option<usize>) {
        self.receive_room = room;
        self.endpoint.set_receive_paused(room == Some(0));
    }

    // ----- shards --------------------------------------------------------

    /// Makes this driver's socket shard `index` of `n` (see
    /// [`gtudp_io::BatchIo::set_shard`]).
    pub(crate) fn set_shard(&mut self, index: usize, n: usize) {
        self.io.set_shard(index, n);
    }

    /// Unreachable reports read here for destinations another shard owns,
    /// if any.
    pub(crate) fn take_foreign_unreachable(&mut self) -> Option<Vec<SocketAddr>> {
        self.io
            .has_foreign_unreachable()
            .then(|| self.io.take_foreign_unreachable())
    }

    /// Whether reports wait for another shard.
    pub(crate) fn has_foreign_unreachable(&self) -> bool {
        self.io.has_foreign_unreachable()
    }

    /// An ICMP report for `destination` read by another shard: fails its
    /// messages here, as a report read here would.
    pub(crate) fn peer_unreachable(&mut self, now: Instant, destination: SocketAddr) {
        self.note(now);
        self.endpoint.peer_unreachable(now, destination);
        self.flush(now);
    }

    // ----- outputs -------------------------------------------------------

    /// Sends everything the endpoint has to send, until the socket's buffer
    /// is full; what does not fit is kept, writable interest is added, and
    /// [`handle_writable`](Self::handle_writable) continues.
    pub fn flush(&mut self, now: Instant) {
        self.note(now);
        self.unflushed = false;
        self.held = false;
        self.io.flush(&mut self.endpoint, now);
        self.update_interest();
        if self.receive_room.is_some() {
            self.take_events();
        }
    }

    /// The next event: a message received, or the outcome of a send.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events
            .pop_front()
            .or_else(|| self.endpoint.poll_event())
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next run: the
    /// endpoint's next timer, or the latest `now` seen (wake at once) while
    /// a receive was cut short or sends are unflushed. `None`: wait for I/O
    /// only.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        self.poll_timeout_flushing_by(None)
    }

    /// As [`poll_timeout`](Self::poll_timeout), but unflushed sends are
    /// due at `flush_by` rather than at once (`None`: at once), for a
    /// caller that flushes them itself before then.
    pub(crate) fn poll_timeout_flushing_by(
        &mut self,
        flush_by: Option<Instant>,
    ) -> Option<Instant> {
        let latest = match self.latest {
            Some(latest) if self.read_pending || self.unflushed => latest,
            _ => return self.endpoint.poll_timeout(),
        };
        if self.read_pending {
            return Some(latest);
        }
        let due = flush_by.unwrap_or(latest);
        Some(match self.endpoint.poll_timeout() {
            Some(timer) => timer.min(due),
            None => due,
        })
    }

    // ----- for the blocking socket ------------------------------------------

    /// Takes the socket out of its registry (`true`) or puts it back
    /// (`false`), for a [`BlockingSocket`](crate::BlockingSocket) whose
    /// calling thread waits for the socket itself: its background loop then
    /// does not wake for the same datagrams. Putting it back reports data
    /// already waiting at once (epoll re-checks readiness on registration).
    /// While a transmit waits for room the socket stays registered, as only
    /// the registry waits for writability.
    pub(crate) fn set_paused(&mut self, paused: bool) {
        if paused == self.paused || (paused && self.io.is_blocked()) {
            return;
        }
        let Some(registration) = &self.registration else {
            return;
        };
        let interest = if self.io.is_blocked() {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        let socket = &mut self.io.socket_mut().0;
        let result = if paused {
            socket.deregister(&registration.registry)
        } else {
            socket.register(&registration.registry, registration.token, interest)
        };
        match result {
            Ok(()) => {
                self.paused = paused;
                self.writable_interest = !paused && self.io.is_blocked();
            }
            Err(error) => {
                tracing::warn!(target: "gtudp", local = %self.io.local_addr(), %error, paused, "could not change the socket's registration")
            }
        }
    }

    /// A flush carrying a single DATA sends it before its RECVs and ACKs
    /// ([`gtudp_io::BatchIo::set_lone_data_first`]), for the blocking
    /// socket, whose receive reads what a reply's `sendmmsg` sent first.
    pub(crate) fn set_lone_data_first(&mut self, on: bool) {
        self.io.set_lone_data_first(on);
    }

    /// Application calls since the last [`flush`](Self::flush).
    pub(crate) fn has_unflushed(&self) -> bool {
        self.unflushed
    }

    /// Reads and runs what is due like [`handle_readable`](Self::handle_readable)
    /// and [`handle_timeout`](Self::handle_timeout), but leaves the answers
    /// (RECVs, ACKs, anything due) unsent, for the blocking socket to send
    /// with the application's next call ([`has_held`](Self::has_held) says
    /// whether there are any); [`flush`](Self::flush) sends them.
    pub(crate) fn receive_held(&mut self, now: Instant) {
        self.note(now);
        self.receive(now);
        self.endpoint.handle_timeout(now);
        if self.receive_room.is_some() {
            self.take_events();
        }
        self.held = self.endpoint.has_pending_transmits() || self.io.is_blocked();
    }

    /// Answers of a read wait for a flush ([`receive_held`](Self::receive_held)).
    pub(crate) fn has_held(&self) -> bool {
        self.held
    }

    /// The last receive stopped at its batch limit: more is waiting.
    pub(crate) fn is_read_pending(&self) -> bool {
        self.read_pending
    }

    /// The socket's file descriptor, for a second poller.
    #[cfg(unix)]
    pub(crate) fn raw_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.io.socket().0)
    }

    // ----- private helpers -------------------------------------------------

    fn note(&mut self, now: Instant) {
        if self.latest.is_none_or(|latest| now > latest) {
            self.latest = Some(now);
        }
    }

    /// Reads a few batches at most. ICMP reports (port unreachable for an
    /// earlier send, WSAECONNRESET on Windows) are counted and logged by the
    /// socket layer and reading goes on; another error stops this receive,
    /// as a persistent error must not spin.
    fn receive(&mut self, now: Instant) {
        self.read_pending = false;
        // The datagrams are fed where the socket put them: only a DATA's
        // payload is copied, by the endpoint.
        let mut batch = self.io.take_batch();
        let mut more = true;
        for _ in 0..RECV_BATCHES_PER_CALL {
            match self.io.recv_batch(&mut batch) {
                Recv::Datagrams(count) => {
                    // Every datagram's cold memory first, so that their
                    // cache misses overlap (see `Endpoint::prefetch`).
                    self.endpoint.prefetch(batch.datagrams());
                    for (from, datagram) in batch.datagrams() {
                        self.feed(now, from, datagram);
                    }
                    if EMPTIED_BY_PARTIAL_BATCH && count < self.io.recv_slots() {
                        // The socket is empty: saves the system call that
                        // would say so. Anything arriving since raises a
                        // new readiness edge.
                        more = false;
                        break;
                    }
                }
                Recv::IcmpReport => {}
                Recv::WouldBlock | Recv::Error => {
                    more = false;
                    break;
                }
            }
        }
        self.io.restore_batch(batch);
        // Edge-triggered readiness will not fire again for what is left.
        self.read_pending = more;
    }

    fn feed(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        self.endpoint.handle_datagram_slice(now, from, datagram);
        if self.receive_room.is_some() {
            // One datagram adds at most one message: count it before the
            // next datagram is fed, so the room is never exceeded.
            self.take_events();
        }
    }

    /// Moves the endpoint's events into the driver's queue, lowering the
    /// receive room for each message and pausing the endpoint at zero.
    fn take_events(&mut self) {
        while let Some(event) = self.endpoint.poll_event() {
            if matches!(event, Event::Received { .. } | Event::Foreign { .. }) {
                if let Some(room) = &mut self.receive_room {
                    *room = room.saturating_sub(1);
                }
            }
            self.events.push_back(event);
        }
        let paused = self.receive_room == Some(0);
        if paused != self.endpoint.is_receive_paused() {
            tracing::trace!(target: "gtudp", local = %self.io.local_addr(), paused, "receive backpressure");
            self.endpoint.set_receive_paused(paused);
        }
    }

    /// Writable interest while a transmit waits, readable only otherwise:
    /// an always-writable registration would wake the loop after every send.
    fn update_interest(&mut self) {
        let want = self.io.is_blocked();
        if self.paused {
            // Only the registry waits for writability.
            if want {
                self.set_paused(false);
            }
            return;
        }
        if want == self.writable_interest {
            return;
        }
        let Some(registration) = &self.registration else {
            return;
        };
        let interest = if want {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        match self.io.socket_mut().0.reregister(
            &registration.registry,
            registration.token,
            interest,
        ) {
            Ok(()) => self.writable_interest = want,
            Err(error) => {
                tracing::warn!(target: "gtudp", local = %self.io.local_addr(), %error, "could not change the socket's interest")
            }
        }
    }
}

impl Source for Driver {
    /// Registers like [`Driver::register`]; `interests` is ignored, as the
    /// driver manages its own.
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        _interests: Interest,
    ) -> io::Result<()> {
        Driver::register(self, registry, token)
    }

    /// Moves the registration like [`Driver::register`]; `interests` is
    /// ignored, as the driver manages its own.
    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        _interests: Interest,
    ) -> io::Result<()> {
        let interest = if self.io.is_blocked() {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        self.io
            .socket_mut()
            .0
            .reregister(registry, token, interest)?;
        self.registration = Some(Registration {
            registry: registry.try_clone()?,
            token,
        });
        self.writable_interest = self.io.is_blocked();
        Ok(())
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        Driver::deregister(self, registry)
    }
}
