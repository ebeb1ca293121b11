//! The driver task: the one owner of the [`Endpoint`] and the UDP socket.
//!
//! It waits on three things at once: the socket becoming readable (or
//! writable, while a send is blocked), a command from a handle, and the
//! endpoint's next timeout (a Tokio timer, so paused-time tests work). After
//! every input it follows the endpoint's call contract: drain
//! `poll_transmit` into the socket, drain `poll_event` to the waiting
//! handles and the receive queue, then re-arm the timer from
//! `poll_timeout`. When idle it sleeps; nothing polls in a loop.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use gtudp_io::{CloseStart, Recv, Routed};
use gtudp_proto::{Endpoint, MessageId, PeerStats, SendOptions};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};

use crate::completion::Completion;
use crate::error::{DeliveryError, SendRawError};
use crate::io::UdpIo;
use crate::socket::{Datagram, Status};
use crate::stats::{CloseSummary, Stats};

/// Receive batches taken per wake-up before the driver turns to its other
/// work, so a flood cannot starve timers and commands.
const RECV_BATCHES_PER_WAKE: usize = 4;

/// A request from a handle.
#[derive(Debug)]
pub(crate) enum Command {
    Send {
        ticket: u64,
        to: SocketAddr,
        payload: Bytes,
        options: SendOptions,
        completion: Completion,
        permit: OwnedSemaphorePermit,
    },
    Cancel {
        ticket: u64,
    },
    SendRaw {
        to: SocketAddr,
        datagram: Bytes,
        reply: oneshot::Sender<Result<(), SendRawError>>,
    },
    PeerStats {
        peer: SocketAddr,
        reply: oneshot::Sender<Option<PeerStats>>,
    },
    Close {
        reply: oneshot::Sender<CloseSummary>,
    },
}

/// A send waiting for its outcome.
struct Pending {
    completion: Completion,
    ticket: u64,
    /// Released when the outcome is known, making room for another send.
    _permit: OwnedSemaphorePermit,
}

/// What woke the driver.
enum Wake {
    Command(Option<Command>),
    Readable,
    Writable,
    Error,
    Timeout,
}

pub(crate) struct Driver {
    io: UdpIo,
    endpoint: Endpoint,
    commands: mpsc::Receiver<Command>,
    commands_open: bool,
    inbox: mpsc::Sender<Datagram>,
    pending: HashMap<MessageId, Pending>,
    tickets: HashMap<u64, MessageId>,
    received: Vec<(SocketAddr, Bytes)>,
    status: Arc<Status>,
    closers: Vec<oneshot::Sender<CloseSummary>>,
    close: Option<CloseStart>,
}

impl Driver {
    pub(crate) fn new(
        io: UdpIo,
        endpoint: Endpoint,
        commands: mpsc::Receiver<Command>,
        inbox: mpsc::Sender<Datagram>,
        status: Arc<Status>,
    ) -> Self {
        Self {
            io,
            endpoint,
            commands,
            commands_open: true,
            inbox,
            pending: HashMap::new(),
            tickets: HashMap::new(),
            received: Vec::new(),
            status,
            closers: Vec::new(),
            close: None,
        }
    }

    pub(crate) async fn run(mut self) {
        let timer = tokio::time::sleep_until(tokio::time::Instant::now());
        tokio::pin!(timer);
        loop {
            self.flush();
            self.publish_stats();
            if self.endpoint.is_closed() && !self.io.is_blocked() {
                break;
            }
            if self.inbox.is_closed() && !self.endpoint.is_closing() {
                // Every socket handle is gone: nobody can read any more.
                self.begin_close(now());
                continue;
            }
            let deadline = self.endpoint.poll_timeout();
            if let Some(at) = deadline {
                let at = tokio::time::Instant::from_std(at);
                if timer.deadline() != at {
                    timer.as_mut().reset(at);
                }
            }
            let blocked = self.io.is_blocked();
            let socket = &self.io.socket().0;
            let wake = tokio::select! {
                command = self.commands.recv(), if self.commands_open => Wake::Command(command),
                ready = socket.readable() => {
                    if let Err(error) = ready {
                        tracing::warn!(target: "gtudp", local = %self.io.local_addr(), %error, "socket readiness error");
                    }
                    Wake::Readable
                }
                _ = socket.writable(), if blocked => Wake::Writable,
                // An ICMP report waits in the socket's error queue (Linux,
                // IP_RECVERR); the next flush fails its destination.
                _ = socket.ready(tokio::io::Interest::ERROR) => Wake::Error,
                () = &mut timer, if deadline.is_some() => Wake::Timeout,
            };
            match wake {
                Wake::Command(Some(command)) => {
                    self.on_command(command);
                    // Take whatever else is queued, without waiting.
                    for _ in 0..64 {
                        match self.commands.try_recv() {
                            Ok(command) => self.on_command(command),
                            Err(_) => break,
                        }
                    }
                }
                Wake::Command(None) => {
                    self.commands_open = false;
                    self.begin_close(now());
                }
                Wake::Readable => self.receive(),
                Wake::Error => {
                    self.io.read_error_queue();
                    // The reports were read: clear the error readiness, or
                    // the next wait would return at once.
                    let _ = self.io.socket().0.try_io(tokio::io::Interest::ERROR, || {
                        Err::<(), _>(std::io::ErrorKind::WouldBlock.into())
                    });
                }
                Wake::Writable => {}
                Wake::Timeout => self.endpoint.handle_timeout(now()),
            }
        }
        self.finish();
    }

    // ----- inputs --------------------------------------------------------

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Send {
                ticket,
                to,
                payload,
                options,
                completion,
                permit,
            } => match self.endpoint.send_with(now(), to, payload, options) {
                Ok(id) => {
                    self.tickets.insert(ticket, id);
                    self.pending.insert(
                        id,
                        Pending {
                            completion,
                            ticket,
                            _permit: permit,
                        },
                    );
                }
                Err(error) => completion.resolve(Err(DeliveryError::Refused {
                    to,
                    kind: error.kind(),
                })),
            },
            Command::Cancel { ticket } => {
                if let Some(id) = self.tickets.get(&ticket) {
                    // Unknown means it resolved already: its outcome is sent.
                    let _ = self.endpoint.cancel(*id);
                }
            }
            Command::SendRaw {
                to,
                datagram,
                reply,
            } => {
                let outcome = self.endpoint.send_raw(to, datagram);
                let _ = reply.send(outcome);
            }
            Command::PeerStats { peer, reply } => {
                let _ = reply.send(self.endpoint.peer_stats(peer));
            }
            Command::Close { reply } => {
                self.closers.push(reply);
                self.begin_close(now());
            }
        }
    }

    /// Reads what the socket holds (a few batches at most) and feeds it to
    /// the endpoint.
    ///
    /// ICMP reports (port unreachable on a connected socket, WSAECONNRESET
    /// on Windows) and other receive errors are counted and logged by the
    /// socket layer; reading goes on.
    fn receive(&mut self) {
        let mut received = std::mem::take(&mut self.received);
        for _ in 0..RECV_BATCHES_PER_WAKE {
            match self.io.recv(&mut received) {
                Recv::Datagrams(_) => {
                    let now = now();
                    for (from, datagram) in received.drain(..) {
                        self.feed(now, from, datagram);
                    }
                }
                Recv::WouldBlock => break,
                Recv::IcmpReport | Recv::Error => {}
            }
        }
        self.received = received;
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
    fn feed(&mut self, now: Instant, from: SocketAddr, datagram: Bytes) {
        let full = self.inbox.capacity() == 0;
        if full != self.endpoint.is_receive_paused() {
            tracing::trace!(target: "gtudp", local = %self.io.local_addr(), paused = full, "receive queue backpressure");
            self.endpoint.set_receive_paused(full);
        }
        self.endpoint.handle_datagram(now, from, datagram);
        self.drain_events();
    }

    fn begin_close(&mut self, now: Instant) {
        if self.close.is_some() {
            return;
        }
        self.status
            .closing
            .store(true, std::sync::atomic::Ordering::Release);
        self.close = Some(CloseStart::new(now, self.endpoint.stats()));
        self.endpoint.close(now);
    }

    // ----- outputs -------------------------------------------------------

    /// Sends everything the endpoint has to send (until the socket's buffer
    /// fills), then hands out every event.
    fn flush(&mut self) {
        self.io.flush(&mut self.endpoint, now());
        self.drain_events();
    }

    fn drain_events(&mut self) {
        let mut published = false;
        while let Some(event) = self.endpoint.poll_event() {
            match gtudp_io::route(event) {
                Routed::Message(datagram) => self.deliver(datagram),
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
                    // A task woken by this outcome must see counters that
                    // include it.
                    if !published {
                        self.publish_stats();
                        published = true;
                    }
                    self.resolve(id, outcome);
                }
            }
        }
    }

    fn deliver(&mut self, datagram: Datagram) {
        match self.inbox.try_send(datagram) {
            Ok(()) => {}
            // Nobody can read any more; the close that follows stops intake.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(datagram)) => {
                // `feed` checked for room and only the driver sends, so this
                // does not happen; say so loudly if it ever does.
                tracing::error!(
                    target: "gtudp", local = %self.io.local_addr(), from = %datagram.from,
                    "receive queue full despite the room check; message dropped"
                );
            }
        }
    }

    fn resolve(&mut self, id: MessageId, outcome: Result<(), DeliveryError>) {
        if let Some(pending) = self.pending.remove(&id) {
            self.tickets.remove(&pending.ticket);
            // The handle may have been dropped: nobody to tell, by design.
            pending.completion.resolve(outcome);
        }
    }

    fn publish_stats(&self) {
        let stats = self.stats();
        match self.status.stats.lock() {
            Ok(mut shared) => *shared = stats,
            Err(poisoned) => *poisoned.into_inner() = stats,
        }
    }

    fn stats(&self) -> Stats {
        Stats::new(self.endpoint.stats(), self.io.counters())
    }

    /// Reports the close to every waiting handle and fails anything left.
    fn finish(mut self) {
        self.drain_events();
        for (_, pending) in self.pending.drain() {
            pending.completion.resolve(Err(DeliveryError::Closed));
        }
        let now = now();
        let stats = self.stats();
        let summary = match &self.close {
            Some(close) => close.summary(now, self.endpoint.config().drain_timeout, stats),
            None => CloseSummary::without_drain(stats),
        };
        match self.status.summary.lock() {
            Ok(mut shared) => *shared = Some(summary),
            Err(poisoned) => *poisoned.into_inner() = Some(summary),
        }
        for closer in self.closers.drain(..) {
            let _ = closer.send(summary);
        }
        // Callers of `close` that queued after the driver decided to stop.
        self.commands.close();
        while let Ok(command) = self.commands.try_recv() {
            match command {
                Command::Close { reply } => {
                    let _ = reply.send(summary);
                }
                Command::Send { completion, to, .. } => {
                    completion.resolve(Err(DeliveryError::Refused {
                        to,
                        kind: gtudp_proto::SendErrorKind::Closing,
                    }));
                }
                _ => {}
            }
        }
        tracing::debug!(target: "gtudp", local = %self.io.local_addr(), ?summary, "gtUDP socket closed");
    }
}

/// The driver's clock: Tokio's, so that tests with paused time drive the
/// endpoint on virtual time.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}
