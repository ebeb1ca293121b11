//! The state of one socket that its handles, its deliveries and its
//! background task share, and the clock they all read.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::{Notify, Semaphore};

use crate::completion::Completions;
use crate::core::Core;

/// The state of one socket, shared by its handles, its [`Delivery`]s and
/// its background task.
pub(crate) struct Shared {
    /// The endpoint and the socket I/O: whoever holds it drives them.
    pub(crate) core: Mutex<Core>,
    /// The UDP socket, to wait for its readiness without the lock (the
    /// core does the system calls through its own reference).
    pub(crate) socket: Arc<UdpSocket>,
    pub(crate) outstanding: Arc<Semaphore>,
    pub(crate) local_addr: SocketAddr,
    pub(crate) max_payload: usize,
    pub(crate) next_ticket: AtomicU64,
    pub(crate) closing: AtomicBool,
    pub(crate) completions: Arc<Completions>,
    /// Tasks inside `recv`/`recv_from` (who read the socket themselves).
    pub(crate) readers: AtomicUsize,
    /// Messages were queued, or the socket closed: for tasks in `recv`.
    pub(crate) queued: Notify,
    /// The close summary is ready: for `close`.
    pub(crate) closed: Notify,
    /// For the background task: look again (see [`Core::take_wakes`]).
    pub(crate) background: Notify,
    /// The peer set by `connect`.
    pub(crate) peer: Mutex<Option<SocketAddr>>,
    /// Every shard of the group this socket is a shard of (itself
    /// included, in shard order), to hand over ICMP reports the kernel
    /// steered here for another shard's peers.
    pub(crate) siblings: OnceLock<Vec<Weak<Shared>>>,
}

impl std::fmt::Debug for Shared {
    /// The socket's address and state, not the protocol's tables (nor the
    /// lock).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("local_addr", &self.local_addr)
            .field("closing", &self.closing.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Runs `f` under the lock, then notifies whom it asks for, with the
    /// lock released.
    pub(crate) fn with_core<R>(&self, f: impl FnOnce(&mut Core) -> R) -> R {
        let (result, wakes, foreign) = {
            let mut core = lock(&self.core);
            let result = f(&mut core);
            (result, core.take_wakes(), core.take_foreign_unreachable())
        };
        if let Some(foreign) = foreign {
            self.hand_over_unreachable(foreign);
        }
        // A reader counts itself before it looks at the queue, under the
        // lock: if it saw nothing, it is counted here.
        if wakes.readers && self.readers.load(Ordering::SeqCst) > 0 {
            self.queued.notify_waiters();
        }
        if wakes.background {
            self.background.notify_one();
        }
        if wakes.closed {
            self.closed.notify_waiters();
        }
        result
    }

    /// Fails the messages of destinations ICMP reported unreachable in
    /// the shards that own them (with this shard's lock released).
    fn hand_over_unreachable(&self, destinations: Vec<SocketAddr>) {
        let Some(siblings) = self.siblings.get() else {
            return;
        };
        for destination in destinations {
            let owner = gtudp_io::reuseport::shard_of(destination, siblings.len());
            if let Some(owner) = siblings.get(owner).and_then(Weak::upgrade) {
                owner.with_core(|core| core.peer_unreachable(now(), destination));
            }
        }
    }

    pub(crate) fn begin_close(&self) {
        self.closing.store(true, Ordering::Release);
        self.with_core(|core| core.begin_close(now()));
    }
}

/// The socket's clock: Tokio's, so that tests with paused time drive the
/// endpoint on virtual time.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Locks `mutex`, carrying on after a panic elsewhere (the state behind
/// it stays consistent: every change is made whole under the lock).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
