//! The blocking socket's state behind one mutex, and the rules by which
//! calling threads and the background thread share the driving of it.
//!
//! Every call does its work on the calling thread, under the lock, without
//! blocking inside it: a send hands the message to the endpoint and sends
//! the resulting datagrams itself (batched, non-blocking); a receive takes
//! a queued message, else reads the socket itself (feeding the endpoint;
//! the RECVs and ACKs it answers with wait for the application's next
//! call, see [`Core::hold_answers`]). Only when
//! nothing is there does a receive block, and then it waits for the socket
//! itself, outside the lock, as the *leader* ([`Core::led`]): the socket is
//! taken out of the background thread's poller meanwhile, so exactly one
//! thread wakes per datagram, and the receive that was waiting reads it
//! with no hand-off between threads. Receives arriving while another leads
//! wait on a condition variable; the leader hands the lead on when it
//! leaves.
//!
//! The background thread remains for what no caller waits for: the
//! endpoint's timers (retransmissions, expiries, the close's drain) and
//! input while nobody is in a receive. It sleeps until the endpoint's next
//! timer as it last saw it ([`Background::Asleep`]); a call that makes an
//! earlier timer wakes it ([`Shared::settle`]), and a later one lets it
//! find out when it wakes, so a stream of sends wakes it about once per
//! retransmission timeout, not once per send.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gtudp_io::{CloseStart, Datagram, Delivered, Routed};
use gtudp_proto::MessageId;
use hashbrown::HashMap;
use mio::Waker;

use super::lead::Lead;
use super::sync::lock;
use crate::completion::{Completion, Completions, Key};
use crate::driver::Driver;
use crate::error::{DeliveryError, RecvError};
use crate::stats::CloseSummary;

/// How long the socket stays with the calling threads after a call that
/// waited for it returned, before the background thread watches it again.
///
/// A receive that returns usually comes back soon (a receive loop); were
/// the socket handed back at once, the background thread would wake for
/// the datagrams arriving in between (the ACK of the RECV just sent) and
/// contend with the caller for the lock, on about every message. Instead
/// the background thread turns once per lease while calls come and go (a
/// few thousand turns a second at most, none while idle), and takes the
/// socket back once a lease passes without a waiting call or a receive
/// taking a queued message ([`Core::renew_lease`]). Input arriving
/// while nobody reads waits about one lease: well inside the peer's
/// shortest tail-loss probe (2 ms), so it does not make the peer resend
/// (a 1 ms lease did, now and then, on a loaded machine). A thread that
/// then blocks on a [`PendingSend`](crate::PendingSend) or a receive takes
/// the socket itself (it leads); a close ends the lease at once.
pub(crate) const LEASE: Duration = Duration::from_micros(300);

/// How soon after a receive handed a message over the application's next
/// call must come for the RECVs and ACKs that receive's read produced to
/// keep waiting for it (see [`Core::hold_answers`]): an application that
/// takes longer (it works on the message before it replies, or never
/// replies) has them sent at once from then on, so its peers' tail-loss
/// probes (2 ms at the shortest) do not fire; one that calls again this
/// soon has them held again. As in gtudp-tokio.
pub(crate) const PROMPT: Duration = Duration::from_micros(250);

/// How long sends made while the application works through received
/// messages may wait for its receive loop to send them in one batch (see
/// [`Core::flush_or_defer`]) before the next call sends them anyway. If no
/// call comes, the background thread sends them within a [`LEASE`].
pub(crate) const DEFER: Duration = Duration::from_micros(100);

/// How many sends may wait so: the next one sends them all, in one call.
/// Waiting for the whole backlog made both ends of a busy exchange move
/// in one batch that crossed back and forth, each end idle while the
/// other worked through it; sending every eighth reply lets the peer start
/// on them meanwhile. (Blocking echo at 64 in flight: 271-333k → 333-362k
/// echoes/s, std 445-513k in the same runs; capping at 4 or 16 did about
/// as well.)
const DEFER_AT_MOST: u32 = 8;

/// What a blocking call waits for.
#[derive(Clone, Copy, Debug)]
enum Want {
    /// A received message (or the end of the socket).
    Message,
    /// The outcome of one send.
    Outcome(Key),
}

/// What a blocking call's wait ended with.
enum Got {
    /// The inbox holds a message.
    Message,
    /// The socket finished and the inbox is empty.
    Closed,
    /// The send's outcome, taken.
    Outcome(Result<Delivered, DeliveryError>),
    /// The deadline passed.
    TimedOut,
}

/// What the background thread is doing, as far as callers need to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Background {
    /// Running a turn: it looks at the endpoint's timers before sleeping.
    Awake,
    /// Sleeping until this instant (`None`: until woken or input arrives).
    Asleep(Option<Instant>),
}

/// The state every call works on, under [`Shared::core`].
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) driver: Driver,
    /// The outcome slot of each unresolved send.
    pub(crate) pending: HashMap<MessageId, Completion>,
    /// Received messages not yet read.
    pub(crate) inbox: VecDeque<Datagram>,
    capacity: usize,
    /// A receive waits for the socket itself (see the module docs).
    pub(crate) led: bool,
    /// The leader's poller reported input that nobody has read since: the
    /// next leader reads before it waits. (Input already there when the
    /// poller was made is reported by it, as epoll checks readiness on
    /// registration.) A leader reads only then, so it never makes a read
    /// that finds nothing, even on a socket whose file description was
    /// switched back to blocking mode behind its back (a duplicated file
    /// descriptor shares it).
    pub(crate) input_unknown: bool,
    /// A send was resolved or a message arrived while a call leads, by
    /// another thread than the leader: the leader must look
    /// ([`Shared::settle`] wakes it).
    pub(crate) leader_news: bool,
    /// Receives waiting on [`Shared::ready`], so that nobody is notified
    /// in vain on the hot path.
    waiting: usize,
    pub(crate) background: Background,
    /// After a leading receive left: until when the socket stays out of the
    /// background thread's poller, for the next receive (see
    /// [`LEASE`]). `None` while a receive leads or the background thread
    /// watches the socket.
    pub(crate) lease_end: Option<Instant>,
    /// Leading receives that left, so far: the background thread keeps a
    /// periodic turn (of [`LEASE`]) while this moves.
    pub(crate) releases: u64,
    /// Whether the RECVs and ACKs of a receive's reads wait for the
    /// application's next call (likely its reply, so both leave in one
    /// `sendmmsg`), instead of being sent before the receive returns or
    /// waits again. They go out with the next send, the background
    /// thread's turn at the lease's end (within [`LEASE`]) once the receive
    /// returned, or after [`PROMPT`] while it still waits, whichever comes
    /// first. Turned off when the call after a receive that returned came
    /// later than [`PROMPT`], on again after a prompt reply.
    hold_answers: bool,
    /// Since when a read's answers are held.
    held_since: Option<Instant>,
    /// When a receive last handed a message over.
    handed_at: Option<Instant>,
    /// Since when sends wait for the receive loop's batch
    /// ([`Core::flush_or_defer`]); `None` when nothing waits.
    deferred_since: Option<Instant>,
    /// How many sends wait so (at most [`DEFER_AT_MOST`]).
    deferred: u32,
    /// When and with which counters the close began.
    pub(crate) close: Option<CloseStart>,
    drain_timeout: Duration,
    /// The background thread has finished: nothing more arrives and every
    /// send is resolved. The summary is here from then on.
    pub(crate) summary: Option<CloseSummary>,
}

impl Core {
    pub(crate) fn new(driver: Driver, capacity: usize, drain_timeout: Duration) -> Self {
        Self {
            driver,
            pending: HashMap::new(),
            inbox: VecDeque::with_capacity(capacity.min(1_024)),
            capacity,
            led: false,
            input_unknown: false,
            leader_news: false,
            waiting: 0,
            background: Background::Awake,
            lease_end: None,
            releases: 0,
            hold_answers: true,
            held_since: None,
            handed_at: None,
            deferred_since: None,
            deferred: 0,
            close: None,
            drain_timeout,
            summary: None,
        }
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.summary.is_some()
    }

    /// Starts the close (once); the background thread drains it.
    pub(crate) fn begin_close(&mut self, now: Instant) {
        if self.close.is_none() {
            self.close = Some(CloseStart::new(now, self.driver.stats().endpoint));
        }
        self.driver.close(now);
    }

    /// Sends what a call queued, now, unless the application is working
    /// through received messages (the inbox is not empty and a receive
    /// handed one over within [`PROMPT`]): then it will be back in a
    /// receive, whose read of the socket sends everything queued meanwhile
    /// in one batch (GSO). On loopback and fast links a send system call
    /// costs about what a receive does, so one per message would halve the
    /// rate. Sends wait so at most [`DEFER`], and at most
    /// [`DEFER_AT_MOST`] of them: the first call after that sends them, and
    /// the background thread does within a [`LEASE`] if no call comes
    /// ([`next_wake`](Self::next_wake)). It is not woken for
    /// them sooner: waking another thread for every batch (on another
    /// CPU, contending for the lock) cost more than the batch saved, and
    /// kept both ends of an echo at 64 in flight idle half the time.
    /// Returns whether a message arrived (the flush may have resolved
    /// messages, after an ICMP report).
    pub(crate) fn flush_or_defer(&mut self, now: Instant) -> bool {
        let receiving = self
            .handed_at
            .is_some_and(|at| now.saturating_duration_since(at) < PROMPT);
        if !self.hold_answers && receiving {
            // A prompt reply: hold the next answers for it again.
            self.hold_answers = true;
        }
        if !self.driver.has_unflushed() {
            self.deferred_since = None;
            self.deferred = 0;
        }
        let since = *self.deferred_since.get_or_insert(now);
        if receiving
            && !self.inbox.is_empty()
            && now.saturating_duration_since(since) < DEFER
            && self.deferred < DEFER_AT_MOST
        {
            self.deferred += 1;
            return false;
        }
        self.flush(now)
    }

    /// When the background thread must next run: the endpoint's next
    /// timer, a read cut short, or, for sends waiting for the receive loop
    /// ([`flush_or_defer`](Self::flush_or_defer)), a [`LEASE`] after the
    /// first of them. Not [`DEFER`]: the background thread already turns
    /// about once per lease while receives come and go, and waking it
    /// sooner, for every batch, is what deferring avoids.
    pub(crate) fn next_wake(&mut self) -> Option<Instant> {
        if !self.driver.has_unflushed() {
            self.deferred_since = None;
            self.deferred = 0;
        }
        let flush_by = self.deferred_since.map(|since| since + LEASE);
        self.driver.poll_timeout_flushing_by(flush_by)
    }

    /// Sends everything queued and held; returns whether a message arrived
    /// (see [`flush_or_defer`](Self::flush_or_defer)).
    pub(crate) fn flush(&mut self, now: Instant) -> bool {
        self.driver.flush(now);
        self.deferred_since = None;
        self.deferred = 0;
        self.note_flushed(now);
        self.deliver()
    }

    /// After anything that may have sent held answers (a flush, a timer
    /// turn): if they waited longer than [`PROMPT`], the application is not
    /// replying promptly, so answers are no longer held.
    pub(crate) fn note_flushed(&mut self, now: Instant) {
        if self.driver.has_held() {
            return;
        }
        if let Some(since) = self.held_since.take() {
            // Held for a call after a receive returned (not only while a
            // receive waited), which came late or never.
            if self
                .handed_at
                .is_some_and(|at| at >= since && now.saturating_duration_since(at) >= PROMPT)
            {
                self.hold_answers = false;
            }
        }
    }

    /// Answers are held since before a receive last handed a message over,
    /// for the application's next call.
    fn held_for_a_reply(&self) -> bool {
        self.driver.has_held()
            && self
                .held_since
                .zip(self.handed_at)
                .is_some_and(|(since, handed)| handed >= since)
    }

    /// How long a waiting receive may keep held answers before it sends
    /// them itself: `None` to send them now (or when nothing is held).
    fn held_answers_wait(&self, now: Instant) -> Option<Duration> {
        let since = self.held_since?;
        if !self.driver.has_held() {
            return None;
        }
        let end = since + PROMPT;
        (end > now).then(|| end - now)
    }

    /// A receive hands a message over now.
    pub(crate) fn note_handed(&mut self, now: Instant) {
        self.handed_at = Some(now);
    }

    /// A receive took a queued message: the application is in a receive
    /// loop and will lead again once the queue is empty, so a lease in
    /// progress runs on (the socket is read then, in one batch).
    pub(crate) fn renew_lease(&mut self) {
        if let Some(end) = &mut self.lease_end {
            *end = Instant::now() + LEASE;
        }
    }

    /// Ends a lease: the background thread watches the socket again
    /// (epoll reports input already waiting at once).
    pub(crate) fn end_lease(&mut self) {
        if !self.led && self.lease_end.take().is_some() {
            self.driver.set_paused(false);
        }
    }

    /// Hands received messages to the inbox and outcomes to their waiting
    /// senders, then tells the driver how much room the inbox has left.
    /// Returns whether a message arrived.
    pub(crate) fn deliver(&mut self) -> bool {
        let mut arrived = false;
        while let Some(event) = self.driver.poll_event() {
            match gtudp_io::route(event) {
                // The receive room keeps the queue within its capacity.
                Routed::Message(datagram) => {
                    self.inbox.push_back(datagram);
                    self.leader_news |= self.led;
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
        self.update_room();
        arrived
    }

    /// Tells the driver how many more messages the inbox takes (after a
    /// delivery, and after a read made room).
    pub(crate) fn update_room(&mut self) {
        let room = self.capacity.saturating_sub(self.inbox.len());
        self.driver.set_receive_room(Some(room));
    }

    fn resolve(&mut self, id: MessageId, outcome: Result<Delivered, DeliveryError>) {
        if let Some(completion) = self.pending.remove(&id) {
            self.leader_news |= self.led;
            // The PendingSend may have been dropped: nobody to tell.
            completion.resolve(outcome);
        }
    }

    /// Ends the socket: fails what is left, records the summary.
    pub(crate) fn finish(&mut self) {
        self.deliver();
        for (_, completion) in self.pending.drain() {
            completion.resolve(Err(DeliveryError::Closed));
        }
        let stats = self.driver.stats();
        let summary = match &self.close {
            Some(close) => close.summary(Instant::now(), self.drain_timeout, stats),
            None => CloseSummary::without_drain(stats),
        };
        self.summary = Some(summary);
        tracing::debug!(target: "gtudp", local = %self.driver.io_local_addr(), ?summary, "gtUDP socket closed");
    }
}

/// What the socket's handles, its pending sends and its thread share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) core: Mutex<Core>,
    /// Signalled when a message arrives, the lead is given up, or the
    /// socket finished.
    pub(crate) ready: Condvar,
    /// Wakes the background thread's poller.
    pub(crate) background_waker: Waker,
    /// Where a leading receive waits; `None` where the platform cannot
    /// (receives then wait for the background thread, on `ready`).
    pub(crate) lead: Option<Lead>,
    pub(crate) completions: std::sync::Arc<Completions>,
    pub(crate) next_ticket: AtomicU64,
    /// The socket's address, for log lines.
    pub(crate) local: SocketAddr,
    /// Every shard of the group this socket is a shard of (itself
    /// included, in shard order), to hand over ICMP reports the kernel
    /// steered here for another shard's peers (the background thread
    /// does, with this socket's lock released).
    pub(crate) siblings: std::sync::OnceLock<Vec<std::sync::Weak<Shared>>>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Core> {
        lock(&self.core)
    }

    /// After a call changed the endpoint (under the lock): wakes the
    /// background thread if the endpoint now needs it earlier than it
    /// planned to wake, the leader if this call resolved a send or brought
    /// a message, and receivers waiting for the lead if a message arrived.
    pub(crate) fn settle(&self, core: &mut Core, arrived: bool) {
        if core.driver.has_foreign_unreachable() && core.background != Background::Awake {
            // Reports for another shard's peers: the background thread
            // hands them over.
            core.background = Background::Awake;
            self.wake_background();
        }
        if std::mem::take(&mut core.leader_news) {
            if let Some(lead) = &self.lead {
                lead.wake();
            }
        }
        if let Background::Asleep(until) = core.background {
            if let Some(next) = core.next_wake() {
                if until.is_none_or(|until| next < until) {
                    core.background = Background::Awake;
                    self.wake_background();
                }
            }
        }
        if arrived {
            self.notify(core);
        }
    }

    /// Wakes the receives waiting on `ready`, if any.
    fn notify(&self, core: &Core) {
        if core.waiting > 0 {
            self.ready.notify_all();
        }
    }

    /// Fails the messages of destinations ICMP reported unreachable in the
    /// shards that own them; called without this socket's lock.
    pub(crate) fn hand_over_unreachable(&self, destinations: Vec<SocketAddr>) {
        let Some(siblings) = self.siblings.get() else {
            return;
        };
        for destination in destinations {
            let owner = gtudp_io::reuseport::shard_of(destination, siblings.len());
            let Some(owner) = siblings.get(owner).and_then(std::sync::Weak::upgrade) else {
                continue;
            };
            let mut core = owner.lock();
            if !core.is_finished() {
                core.driver.peer_unreachable(Instant::now(), destination);
                let arrived = core.deliver();
                owner.settle(&mut core, arrived);
            }
        }
    }

    pub(crate) fn wake_background(&self) {
        if let Err(error) = self.background_waker.wake() {
            tracing::warn!(target: "gtudp", local = %self.local, %error, "could not wake the gtUDP thread");
        }
    }

    /// Wakes whoever waits for the socket or for a message: the socket
    /// finished, or a message arrived through the background thread.
    pub(crate) fn wake_receivers(&self) {
        if let Some(lead) = &self.lead {
            lead.wake();
        }
        self.ready.notify_all();
    }

    /// Waits until the inbox holds a message (returned with the lock, the
    /// message at the front), the socket finished with nothing left
    /// ([`RecvError::Closed`]) or `deadline` passed
    /// ([`RecvError::TimedOut`]), driving the socket as the leader when no
    /// other call does.
    pub(crate) fn wait_for_message(
        &self,
        deadline: Option<Instant>,
    ) -> Result<MutexGuard<'_, Core>, RecvError> {
        match self.wait_for(Want::Message, deadline) {
            (core, Got::Message) => Ok(core),
            (_, Got::TimedOut) => Err(RecvError::TimedOut),
            (_, Got::Closed | Got::Outcome(_)) => Err(RecvError::Closed),
        }
    }

    /// Waits until the send of `key` has its outcome (taken) or `deadline`
    /// passed (`None`), driving the socket as the leader when no other call
    /// does: the RECV that resolves it wakes this thread directly.
    pub(crate) fn wait_for_outcome(
        &self,
        key: Key,
        deadline: Option<Instant>,
    ) -> Option<Result<Delivered, DeliveryError>> {
        match self.wait_for(Want::Outcome(key), deadline) {
            (_, Got::Outcome(outcome)) => Some(outcome),
            _ => None,
        }
    }

    /// What `want` waits for, if it is there (under the lock).
    fn check(&self, core: &Core, want: Want) -> Option<Got> {
        match want {
            Want::Message if !core.inbox.is_empty() => Some(Got::Message),
            Want::Message if core.is_finished() => Some(Got::Closed),
            Want::Message => None,
            // A deadline now: takes the outcome if it is there, never waits.
            Want::Outcome(key) => self
                .completions
                .wait(key, Some(Instant::now()))
                .map(Got::Outcome),
        }
    }

    /// The waiting loop of every blocking call: what `want` waits for,
    /// driving the socket as the leader when no other call does (see the
    /// module docs), else waiting for the leader or the background thread.
    fn wait_for(&self, want: Want, deadline: Option<Instant>) -> (MutexGuard<'_, Core>, Got) {
        let mut core = self.lock();
        let mut leading = false;
        loop {
            let got = match self.check(&core, want) {
                Some(got) => Some(got),
                None if deadline.is_some_and(|deadline| Instant::now() >= deadline) => {
                    Some(Got::TimedOut)
                }
                None => None,
            };
            if let Some(got) = got {
                if leading {
                    self.give_up_lead(&mut core);
                }
                return (core, got);
            }
            let Some(lead) = self.lead.as_ref().filter(|_| leading || !core.led) else {
                // Not leading: nothing to give up.
                let (guard, got) = self.wait_for_others(core, want, deadline);
                core = guard;
                match got {
                    Some(got) => return (core, got),
                    None => continue,
                }
            };
            if !leading {
                leading = true;
                core.led = true;
                core.lease_end = None;
                core.driver.set_paused(true);
            }
            if core.input_unknown || core.driver.is_read_pending() {
                // Read what is there, answer it, and run what is due.
                let now = Instant::now();
                core.input_unknown = false;
                let hold = matches!(want, Want::Message) && core.hold_answers;
                let arrived = if hold {
                    // The answers leave with the application's next call
                    // (see `hold_answers`), or go out before this thread
                    // waits past `PROMPT`. Those held for the call after
                    // a receive returned go out first: that call is this
                    // receive, not a reply.
                    if core.held_for_a_reply() {
                        core.flush(now);
                    }
                    core.driver.receive_held(now);
                    if core.driver.has_held() {
                        core.held_since.get_or_insert(now);
                    }
                    core.deliver()
                } else {
                    core.driver.handle_readable(now);
                    core.driver.handle_timeout(now);
                    core.note_flushed(now);
                    core.deliver()
                };
                // This thread looks anyway; receives waiting for the lead
                // may take these.
                core.leader_news = false;
                self.settle(&mut core, arrived);
                // The check above says what the read brought (it takes an
                // outcome, so only there).
                continue;
            }
            let now = Instant::now();
            let held_wait = core.held_answers_wait(now);
            if core.driver.has_unflushed() || (core.driver.has_held() && held_wait.is_none()) {
                // Sends left for a batch, and answers held too long, go out
                // before this thread sleeps; this thread waited for them,
                // not the application.
                core.held_since = None;
                let arrived = core.flush(now);
                core.leader_news = false;
                self.settle(&mut core, arrived);
                continue;
            }
            // Every datagram arriving after the socket was last read to the
            // end raises an edge in the leader's poller, so waiting first
            // saves a read that would find nothing.
            drop(core);
            let timeout =
                deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
            let timeout = match (timeout, held_wait) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let input = lead.wait(timeout);
            core = self.lock();
            // Read before anything else may end this call: the edge is
            // consumed.
            core.input_unknown |= input;
        }
    }

    /// Waits while another call leads (or none can): a receive for a
    /// message or the lead (`None`: look again), a send's waiter for its
    /// outcome (which the leader or the background thread resolves).
    fn wait_for_others<'a>(
        &'a self,
        mut core: MutexGuard<'a, Core>,
        want: Want,
        deadline: Option<Instant>,
    ) -> (MutexGuard<'a, Core>, Option<Got>) {
        match want {
            Want::Message => {
                core.waiting += 1;
                core = match deadline {
                    None => self
                        .ready
                        .wait(core)
                        .unwrap_or_else(|poisoned| poisoned.into_inner()),
                    Some(deadline) => {
                        let left = deadline.saturating_duration_since(Instant::now());
                        self.ready
                            .wait_timeout(core, left)
                            .unwrap_or_else(|poisoned| poisoned.into_inner())
                            .0
                    }
                };
                core.waiting -= 1;
                (core, None)
            }
            Want::Outcome(key) => {
                // The leader, or the background thread once nobody leads,
                // reads the RECV; what this thread queued goes out first.
                core.end_lease();
                if core.driver.has_unflushed() || core.driver.has_held() {
                    let arrived = core.flush(Instant::now());
                    self.settle(&mut core, arrived);
                }
                drop(core);
                let got = match self.completions.wait(key, deadline) {
                    Some(outcome) => Got::Outcome(outcome),
                    None => Got::TimedOut,
                };
                (self.lock(), Some(got))
            }
        }
    }

    /// The leading receive leaves: the socket stays with the callers for a
    /// lease (see [`LEASE`]), after which the background thread watches it
    /// again, and a waiting receive may take the lead.
    fn give_up_lead(&self, core: &mut Core) {
        core.led = false;
        core.releases += 1;
        let end = Instant::now() + LEASE;
        core.lease_end = Some(end);
        if let Background::Asleep(until) = core.background {
            // A background thread that turns once per lease already wakes
            // by then.
            if until.is_none_or(|until| until > end) {
                core.background = Background::Awake;
                self.wake_background();
            }
        }
        self.settle(core, false);
        self.notify(core);
    }
}
