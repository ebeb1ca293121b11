//! The socket's state behind its one lock: the [`Endpoint`], the UDP
//! socket's batched I/O, the sends waiting for their outcome and the
//! receive queue.
//!
//! Whichever task holds the lock drives the endpoint: a sending task hands
//! it its message and writes what the endpoint has to send; a receiving
//! task reads the socket, feeds the endpoint and writes the RECVs and ACKs
//! that produced; the background task runs the timers. Every method follows
//! the endpoint's call contract (input, then `poll_transmit` into the
//! socket, then `poll_event` to the waiting sends and the receive queue)
//! and none waits: a full socket buffer leaves the transmit for the
//! background task, which waits for writability. After each locked step,
//! [`Core::take_wakes`] says whom to notify once the lock is released.
//!
//! The RECVs and ACKs a read produced wait for the application's next call
//! on the socket, typically the reply to the message it hands over, so that
//! they leave with it in one system call (`sendmmsg` on Linux, whatever
//! their sizes); a read of the socket, by any task, writes them first, and
//! should no call come within a [`TICK`], the background task does. An
//! application whose next call comes later than [`PROMPT`] has them
//! written at once instead, until it calls that soon again. A RECV
//! is never written before its message is in the receive queue. A send's
//! DATA is written at once, with whatever waited, unless the application is
//! working through a backlog: its last `recv` left more messages in the
//! receive queue, or more outcomes were left for their handles than sends
//! were made since, the latest less than [`LATE`] ago (tasks on a busy
//! machine may run milliseconds after their outcomes, and their sends are
//! still the ones expected). Then it waits for the next call on the
//! socket, which will come soon, so that one system call carries many
//! (GSO). The next call that finds the queue empty, or any read of the
//! socket, writes it first; should no call come within a [`TICK`], the
//! background task does. A read that writes it ends the expectation, and
//! so does the background task unless the application is still sending:
//! outcomes nobody reacts to (handles kept for later) hold a send back
//! once, until the next read of the socket or tick, and are not counted
//! again.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use gtudp_io::{CloseStart, Recv, Routed};
use gtudp_proto::{Endpoint, MessageId, PeerStats, SendOptions};
use hashbrown::HashMap;
use tokio::sync::OwnedSemaphorePermit;

use crate::completion::Completion;
use crate::error::{DeliveryError, SendRawError};
use crate::io::UdpIo;
use crate::stats::{CloseSummary, Stats};
use gtudp_io::Datagram;

/// Receive batches one step reads at most, so a flood cannot keep one task
/// (or the lock) for long.
pub(crate) const RECV_BATCHES: usize = 4;

/// While writes are being deferred, the background task looks at least
/// this often, and writes what is still deferred.
pub(crate) const TICK: std::time::Duration = std::time::Duration::from_millis(1);

/// How soon after `recv` handed a message over the application's next call
/// must come for the RECVs and ACKs of that `recv` to keep waiting for it:
/// an application that takes longer (it works on the message before it
/// replies, or never replies) has them written at once from then on, so
/// its peers' tail-loss probes (2 ms at the shortest) do not fire; one
/// that calls again this soon has them held again.
pub(crate) const PROMPT: std::time::Duration = std::time::Duration::from_micros(250);

/// How long after outcomes were handed over sends are still expected in
/// reaction to them (see `Core::send_credit`): a few ticks, as long as a
/// loaded machine may take to run the tasks it woke.
pub(crate) const LATE: std::time::Duration = std::time::Duration::from_millis(4);

/// Receive-queue entries allocated up front (fewer if the queue is
/// smaller); the queue grows past this, up to its capacity, only if more
/// messages wait at once, and keeps that room.
const PRESIZED_INBOX: usize = 1_024;

/// A send waiting for its outcome.
#[derive(Debug)]
struct Pending {
    completion: Completion,
    /// Released when the outcome is known, making room for another send.
    _permit: OwnedSemaphorePermit,
}

/// Whom to notify after a locked step, once the lock is released.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Wakes {
    /// Messages were queued for `recv`.
    pub(crate) readers: bool,
    /// The background task must look again: an earlier timer, a blocked
    /// transmit, a close to finish.
    pub(crate) background: bool,
    /// The socket has closed: its summary is ready.
    pub(crate) closed: bool,
}

/// What the background task waits for after its step.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Step {
    /// The endpoint's next timeout, and whether a transmit waits for
    /// writability.
    Wait {
        deadline: Option<Instant>,
        blocked: bool,
        /// Writes are deferred, or were since the last step: look again
        /// then (within a [`TICK`]).
        tick: Option<Instant>,
    },
    /// The socket has closed; the background task ends.
    Exit,
}

/// What a receiving task found.
#[derive(Debug)]
pub(crate) enum Take {
    /// This many messages were taken (at least one).
    Taken(usize),
    /// Nothing yet; `more` if the socket may hold more right now (the read
    /// stopped at its batch limit, not at `WouldBlock`).
    Empty { more: bool },
    /// The socket has closed and every message was taken.
    Closed,
}

/// The state behind the socket's lock.
#[derive(Debug)]
pub(crate) struct Core {
    io: UdpIo,
    endpoint: Endpoint,
    pending: HashMap<MessageId, Pending>,
    inbox: VecDeque<Datagram>,
    recv_queue: usize,
    close: Option<CloseStart>,
    summary: Option<CloseSummary>,
    /// The instant the background task sleeps until (`None`: no timer).
    /// A step that makes the endpoint's next timeout earlier wakes it.
    armed: Option<Instant>,
    /// The background task knows a transmit waits for writability.
    blocked_told: bool,
    /// Since when what the endpoint has to send waits for the task's next
    /// call (`None`: nothing deferred).
    deferred: Option<Instant>,
    /// Writes were deferred since the background task's last step.
    deferred_since_step: bool,
    /// The background task looks again within [`TICK`].
    ticking: bool,
    /// The RECVs and ACKs of a `recv` wait for the application's next call
    /// (see the module's notes); off while the application is slow to
    /// make it (see [`PROMPT`]).
    hold_recvs: bool,
    /// Since when RECVs or ACKs of a `recv` are held for the next call.
    held_since: Option<Instant>,
    /// When `recv` last handed over a message it read from the socket.
    handed_at: Option<Instant>,
    /// When the last `recv` left more messages in the queue: the
    /// application is taking messages from a backlog (for a [`TICK`]).
    draining: Option<Instant>,
    /// Outcomes left for live handles, less the sends made since: sends
    /// expected in reaction, for [`LATE`] after `credit_at` (the latest
    /// outcome's instant). Cleared when what it held is written by a read
    /// of the socket, or by the background task after a whole [`TICK`]
    /// with no send.
    send_credit: usize,
    credit_at: Option<Instant>,
    /// When the application last sent.
    last_send: Option<Instant>,
    wakes: Wakes,
}

impl Core {
    pub(crate) fn new(io: UdpIo, endpoint: Endpoint, recv_queue: usize) -> Self {
        Self {
            io,
            endpoint,
            pending: HashMap::new(),
            inbox: VecDeque::with_capacity(recv_queue.min(PRESIZED_INBOX)),
            recv_queue,
            close: None,
            summary: None,
            armed: None,
            blocked_told: false,
            deferred: None,
            deferred_since_step: false,
            ticking: false,
            hold_recvs: true,
            held_since: None,
            handed_at: None,
            draining: None,
            send_credit: 0,
            credit_at: None,
            last_send: None,
            wakes: Wakes::default(),
        }
    }

    // ----- application calls -----------------------------------------------

    /// Hands one message to the endpoint and writes what it has to send;
    /// returns its id, or `None` when it was refused (its completion then
    /// holds the error).
    pub(crate) fn send(
        &mut self,
        now: Instant,
        to: SocketAddr,
        payload: Bytes,
        options: SendOptions,
        completion: Completion,
        permit: OwnedSemaphorePermit,
    ) -> Option<MessageId> {
        if self.summary.is_some() {
            // Ended without a close call (the runtime shut down): nobody
            // would ever resolve it.
            completion.resolve(Err(DeliveryError::Refused {
                to,
                kind: gtudp_proto::SendErrorKind::Closing,
            }));
            return None;
        }
        match self.endpoint.send_with(now, to, payload, options) {
            Ok(id) => {
                self.pending.insert(
                    id,
                    Pending {
                        completion,
                        _permit: permit,
                    },
                );
                // The application is working through received messages,
                // or through outcomes just handed to it, and will call
                // again: write with the next call.
                if !self.hold_recvs
                    && self
                        .handed_at
                        .is_some_and(|at| now.saturating_duration_since(at) < PROMPT)
                {
                    // A prompt reply: hold the next RECVs for it again.
                    self.hold_recvs = true;
                }
                let backlog = recent(self.draining, now) && !self.inbox.is_empty();
                self.last_send = Some(now);
                let credit = if credit_live(self.credit_at, now) {
                    self.send_credit
                } else {
                    0
                };
                self.send_credit = credit.saturating_sub(1);
                if backlog || credit > 1 {
                    self.defer(now);
                } else {
                    self.flush(now);
                }
                Some(id)
            }
            Err(error) => {
                completion.resolve(Err(DeliveryError::Refused {
                    to,
                    kind: error.kind(),
                }));
                None
            }
        }
    }

    /// Stops trying to deliver message `id`, if it is still unresolved; its
    /// outcome follows through its completion. The endpoint never gives an
    /// id twice, so one that resolved already is simply unknown to it.
    pub(crate) fn cancel(&mut self, now: Instant, id: MessageId) {
        if self.pending.contains_key(&id) {
            let _ = self.endpoint.cancel(id);
            self.flush(now);
        }
    }

    pub(crate) fn send_raw(
        &mut self,
        now: Instant,
        to: SocketAddr,
        datagram: Bytes,
    ) -> Result<(), SendRawError> {
        if self.summary.is_some() {
            return Err(SendRawError::Closed);
        }
        let outcome = self.endpoint.send_raw(to, datagram);
        self.flush(now);
        outcome
    }

    pub(crate) fn peer_stats(&self, peer: SocketAddr) -> Option<PeerStats> {
        self.endpoint.peer_stats(peer)
    }

    pub(crate) fn stats(&self) -> Stats {
        Stats::new(self.endpoint.stats(), self.io.counters())
    }

    pub(crate) fn summary(&self) -> Option<CloseSummary> {
        self.summary
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.summary.is_some()
    }

    /// Messages for `recv` and `recv_many`, up to `limit` (at least one),
    /// each handed to `take`: from the queue, or else read from the socket
    /// (a few batches at most, without waiting). Deferred writes go out
    /// before reading; the RECVs and ACKs of what was read wait for the
    /// next call when a message is returned (see the module's notes), and
    /// go out at once otherwise.
    pub(crate) fn take(
        &mut self,
        now: Instant,
        limit: usize,
        take: &mut impl FnMut(Datagram),
    ) -> Take {
        if let Some(taken) = self.take_queued(now, limit, take) {
            return Take::Taken(taken);
        }
        self.draining = None;
        if self.summary.is_some() {
            return Take::Closed;
        }
        if self.deferred.is_some() {
            // A read, not a send, writes what was held: see `receive`.
            self.send_credit = 0;
            self.flush(now);
        }
        let more = self.receive(now);
        let taken = self.pop_queued(limit, take);
        if taken == 0 {
            self.flush(now);
            return Take::Empty { more };
        }
        // The RECVs and ACKs of what was read leave with the application's
        // next call, which is likely its reply, in one system call; or
        // within a tick.
        self.handed_at = Some(now);
        if self.endpoint.has_pending_transmits() {
            if self.hold_recvs {
                self.defer(now);
                self.held_since.get_or_insert(now);
            } else {
                self.flush(now);
            }
        }
        Take::Taken(taken)
    }

    /// Messages already queued, up to `limit`, each handed to `take`
    /// (without reading the socket): `None` when none waits.
    pub(crate) fn take_queued(
        &mut self,
        now: Instant,
        limit: usize,
        take: &mut impl FnMut(Datagram),
    ) -> Option<usize> {
        let taken = self.pop_queued(limit, take);
        if taken == 0 {
            return None;
        }
        self.draining = (!self.inbox.is_empty()).then_some(now);
        Some(taken)
    }

    /// Pops up to `limit` messages from the queue into `take`.
    fn pop_queued(&mut self, limit: usize, take: &mut impl FnMut(Datagram)) -> usize {
        let taken = limit.min(self.inbox.len());
        self.inbox.drain(..taken).for_each(take);
        taken
    }

    /// Puts back a message `recv_from` found too long for its buffer, to be
    /// taken first next time.
    pub(crate) fn put_back(&mut self, datagram: Datagram) {
        self.inbox.push_front(datagram);
    }

    pub(crate) fn begin_close(&mut self, now: Instant) {
        if self.close.is_some() {
            return;
        }
        self.close = Some(CloseStart::new(now, self.endpoint.stats()));
        self.endpoint.close(now);
        self.flush(now);
        self.wakes.background = true;
    }

    // ----- the background task's calls ---------------------------------------

    /// Runs the due timers and writes what the endpoint has to send; ends
    /// the socket once the endpoint has closed and everything was written.
    pub(crate) fn background_step(&mut self, now: Instant) -> Step {
        if self.summary.is_some() {
            return Step::Exit;
        }
        let due = self.endpoint.poll_timeout().is_some_and(|at| at <= now);
        if due {
            self.endpoint.handle_timeout(now);
        }
        // Deferred writes younger than a tick are left to the application's
        // next call, which is expected.
        let young = self.deferred.is_some_and(|since| recent(Some(since), now));
        if due || !young || self.io.is_blocked() {
            if self.deferred.is_some() && !young {
                // The expected call did not come: write at once again.
                self.draining = None;
                if !recent(self.last_send, now) {
                    // Not a late task still sending either: the outcomes
                    // counted on bring no send (handles kept for later).
                    self.send_credit = 0;
                }
            }
            self.flush(now);
        }
        if self.endpoint.is_closed() && !self.io.is_blocked() {
            self.finish(now);
            return Step::Exit;
        }
        self.armed = self.endpoint.poll_timeout();
        self.blocked_told = self.io.is_blocked();
        let tick = match self.deferred {
            Some(since) => Some(since + TICK),
            None => std::mem::take(&mut self.deferred_since_step).then(|| now + TICK),
        };
        self.ticking = tick.is_some();
        Step::Wait {
            deadline: self.armed,
            blocked: self.blocked_told,
            tick,
        }
    }

    /// Reads input nobody else is reading, and writes the replies.
    pub(crate) fn background_receive(&mut self, now: Instant) {
        if self.summary.is_none() {
            self.receive(now);
            self.flush(now);
        }
    }

    /// The socket's receive calls that returned data so far, by any task.
    pub(crate) fn recv_calls(&self) -> u64 {
        self.io.counters().recv_calls
    }

    /// The background task's look at input it left to tasks in `recv`
    /// when the socket had been read `reads` times: if it was read since
    /// and a task is still `reading`, returns the new count (they keep up:
    /// look again later); otherwise reads what waits, writes the replies
    /// and returns `None`.
    pub(crate) fn background_look(
        &mut self,
        now: Instant,
        reading: bool,
        reads: u64,
    ) -> Option<u64> {
        let calls = self.recv_calls();
        if reading && calls != reads && self.summary.is_none() {
            return Some(calls);
        }
        self.background_receive(now);
        None
    }

    /// Reads the socket's error queue (ICMP reports) and fails the
    /// destinations it names.
    pub(crate) fn read_error_queue(&mut self, now: Instant) {
        self.io.read_error_queue();
        self.flush(now);
    }

    /// Makes this socket shard `index` of `n` (see
    /// [`gtudp_io::BatchIo::set_shard`]).
    pub(crate) fn set_shard(&mut self, index: usize, n: usize) {
        self.io.set_shard(index, n);
    }

    /// Unreachable reports this shard read for destinations another shard
    /// owns, if any.
    pub(crate) fn take_foreign_unreachable(&mut self) -> Option<Vec<SocketAddr>> {
        self.io
            .has_foreign_unreachable()
            .then(|| self.io.take_foreign_unreachable())
    }

    /// An ICMP report for `destination`, read by another shard: fails its
    /// messages here, as a report read here would.
    pub(crate) fn peer_unreachable(&mut self, now: Instant, destination: SocketAddr) {
        if self.summary.is_none() {
            self.endpoint.peer_unreachable(now, destination);
            self.flush(now);
        }
    }

    /// Ends the socket: hands out the last events, fails every send left
    /// and makes the close summary.
    pub(crate) fn finish(&mut self, now: Instant) {
        if self.summary.is_some() {
            return;
        }
        self.drain_events(now);
        for (_, pending) in self.pending.drain() {
            pending.completion.resolve(Err(DeliveryError::Closed));
        }
        let stats = self.stats();
        let summary = match &self.close {
            Some(close) => close.summary(now, self.endpoint.config().drain_timeout, stats),
            None => CloseSummary::without_drain(stats),
        };
        self.summary = Some(summary);
        self.wakes.closed = true;
        self.wakes.readers = true;
        tracing::debug!(target: "gtudp", local = %self.io.local_addr(), ?summary, "gtUDP socket closed");
    }

    /// Whom the last step asks to notify (and forgets it).
    pub(crate) fn take_wakes(&mut self) -> Wakes {
        let mut wakes = std::mem::take(&mut self.wakes);
        if self.summary.is_some() {
            return wakes;
        }
        if self.io.is_blocked() && !self.blocked_told {
            self.blocked_told = true;
            wakes.background = true;
        }
        if let Some(at) = self.endpoint.poll_timeout() {
            if self.armed.is_none_or(|armed| at < armed) {
                self.armed = Some(at);
                wakes.background = true;
            }
        }
        if self.endpoint.is_closed() {
            wakes.background = true;
        }
        wakes
    }

    // ----- inside --------------------------------------------------------------

    /// Reads what the socket holds (a few batches at most), feeding it to
    /// the endpoint, until a message is queued. Returns whether it stopped
    /// before the socket said `WouldBlock`.
    ///
    /// ICMP reports and other receive errors are counted and logged by the
    /// socket layer; reading goes on.
    fn receive(&mut self, now: Instant) -> bool {
        if self.deferred.is_some() {
            // What was held leaves with this read's writes, not with the
            // sends the outcomes were counted on for: those outcomes are
            // expected to bring nothing more (handles kept for later, a
            // task that awaits each send). Outcomes this read resolves
            // count afresh.
            self.send_credit = 0;
        }
        // The datagrams are fed where the socket put them: only a DATA's
        // payload is copied, by the endpoint.
        let mut batch = self.io.take_batch();
        let mut more = true;
        for _ in 0..RECV_BATCHES {
            match self.io.recv_batch(&mut batch) {
                Recv::Datagrams(_) => {
                    // Every datagram's cold memory first, so that their
                    // cache misses overlap (see `Endpoint::prefetch`).
                    self.endpoint.prefetch(batch.datagrams());
                    for (from, datagram) in batch.datagrams() {
                        self.feed(now, from, datagram);
                    }
                }
                Recv::WouldBlock => {
                    more = false;
                    break;
                }
                Recv::IcmpReport | Recv::Error => {}
            }
            if !self.inbox.is_empty() {
                break;
            }
        }
        self.io.restore_batch(batch);
        more
    }

    /// Feeds one datagram to the endpoint.
    ///
    /// Backpressure: while the receive queue is full, the endpoint is told
    /// to leave new DATA unanswered (its sender resends it later), so
    /// nothing confirmed is ever dropped. Repeats, RECV and ACK still go
    /// through, so our own sends keep completing while the application does
    /// not read. Every `Received` event is routed as soon as it appears, so
    /// the queue's free room bounds what one datagram can add (at most one
    /// message).
    fn feed(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        let full = self.inbox.len() >= self.recv_queue;
        if full != self.endpoint.is_receive_paused() {
            tracing::trace!(target: "gtudp", local = %self.io.local_addr(), paused = full, "receive queue backpressure");
            self.endpoint.set_receive_paused(full);
        }
        self.endpoint.handle_datagram_slice(now, from, datagram);
        self.drain_events(now);
    }

    /// Sends everything the endpoint has to send (until the socket's buffer
    /// fills), then hands out every event.
    fn flush(&mut self, now: Instant) {
        if let Some(since) = self.held_since.take() {
            if now.saturating_duration_since(since) >= PROMPT {
                // The call the RECVs were held for came late, or never (the
                // background task writes them): stop holding them.
                self.hold_recvs = false;
            }
        }
        self.deferred = None;
        self.io.flush(&mut self.endpoint, now);
        self.drain_events(now);
    }

    /// Leaves what the endpoint has to send for the task's next call (or
    /// the background task's next look, which this makes sure comes).
    fn defer(&mut self, now: Instant) {
        self.deferred.get_or_insert(now);
        self.deferred_since_step = true;
        if !self.ticking {
            self.ticking = true;
            self.wakes.background = true;
        }
    }

    fn drain_events(&mut self, now: Instant) {
        while let Some(event) = self.endpoint.poll_event() {
            match gtudp_io::route(event) {
                Routed::Message(datagram) => {
                    // `feed` checked for room, so this stays within the
                    // queue's capacity (plus one message put back by
                    // `recv_from`).
                    self.inbox.push_back(datagram);
                    self.wakes.readers = true;
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
                    if let Some(pending) = self.pending.remove(&id) {
                        // Wakes the task awaiting the outcome directly; the
                        // handle may have been dropped: nobody to tell.
                        if pending.completion.resolve_unread(outcome) {
                            if !credit_live(self.credit_at, now) {
                                self.send_credit = 0;
                            }
                            self.send_credit += 1;
                            self.credit_at = Some(now);
                        }
                    }
                }
            }
        }
    }
}

/// Whether outcomes handed over at `at` still bring sends at `now` (less
/// than [`LATE`] before).
fn credit_live(at: Option<Instant>, now: Instant) -> bool {
    within(at, now, LATE)
}

/// Whether `at` is less than a [`TICK`] before `now`.
fn recent(at: Option<Instant>, now: Instant) -> bool {
    within(at, now, TICK)
}

/// Whether `at` is less than `span` before `now`.
fn within(at: Option<Instant>, now: Instant, span: std::time::Duration) -> bool {
    at.is_some_and(|at| now.saturating_duration_since(at) < span)
}
