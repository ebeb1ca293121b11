//! The calling thread's own wait for the socket: a second mio poller that
//! holds only the socket (edge-triggered, readable) and a waker, so that a
//! thread blocked in a receive wakes directly when a datagram arrives,
//! without the background thread in between.
//!
//! Only one thread at a time waits here (the one that took the lead, see
//! [`Core::led`](super::core::Core)); the poller sits behind a mutex only
//! because `mio::Poll::poll` takes `&mut self`. Edges that arrive while
//! nobody waits stay queued in the poller, so the next wait returns at once
//! and reads (a spurious wake-up at most, never a lost one: the leader
//! always reads until the socket is empty before it waits).

use std::io;
use std::sync::Mutex;
use std::time::Duration;

use mio::{Events, Poll, Token, Waker};

use super::sync::lock;
use crate::driver::Driver;

const SOCKET: Token = Token(0);
const WAKER: Token = Token(1);

/// The poller a leading caller waits in.
#[derive(Debug)]
pub(crate) struct Lead {
    poller: Mutex<(Poll, Events)>,
    waker: Waker,
    /// The socket's address, for log lines.
    local: std::net::SocketAddr,
    /// How long a wait polls before it sleeps
    /// ([`BlockingOptions::spin`](crate::BlockingOptions::spin)).
    spin: Duration,
}

impl Lead {
    /// A poller for the driver's socket (which must outlive it), where the
    /// platform lets a second poller watch one socket; `None` elsewhere
    /// (callers then wait for the background thread).
    #[cfg(unix)]
    pub(crate) fn for_driver(driver: &Driver, spin: Duration) -> io::Result<Option<Self>> {
        let fd = driver.raw_fd();
        let poll = Poll::new()?;
        poll.registry().register(
            &mut mio::unix::SourceFd(&fd),
            SOCKET,
            mio::Interest::READABLE,
        )?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        Ok(Some(Self {
            poller: Mutex::new((poll, Events::with_capacity(4))),
            waker,
            local: driver.io_local_addr(),
            spin,
        }))
    }

    /// Without Unix file descriptors a second poller cannot watch the socket.
    #[cfg(not(unix))]
    pub(crate) fn for_driver(_driver: &Driver, _spin: Duration) -> io::Result<Option<Self>> {
        Ok(None)
    }

    /// Waits until the socket has input (or an error report), the waker is
    /// woken, or `timeout` passes; returns whether the socket was reported.
    /// Errors are logged: the caller's loop re-checks its state either way.
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> bool {
        let mut poller = lock(&self.poller);
        let (poll, events) = &mut *poller;
        let result = match self.spin_for(poll, events, timeout) {
            // The events are those the spin's last poll returned.
            Spun::Ready(result) => result,
            Spun::Nothing(left) => poll.poll(events, left),
        };
        match result {
            Ok(()) => events.iter().any(|event| event.token() == SOCKET),
            Err(error) => {
                if error.kind() != io::ErrorKind::Interrupted {
                    tracing::warn!(target: "gtudp", local = %self.local, %error, "waiting for the socket failed");
                    // Do not spin on a persistent error.
                    std::thread::sleep(Duration::from_millis(1));
                }
                // Read to be sure.
                true
            }
        }
    }

    /// Polls without sleeping for the configured spin (at most
    /// `timeout`): whether something became ready, or else the timeout
    /// left for the blocking wait.
    fn spin_for(&self, poll: &mut Poll, events: &mut Events, timeout: Option<Duration>) -> Spun {
        if self.spin.is_zero() {
            return Spun::Nothing(timeout);
        }
        let start = std::time::Instant::now();
        let spin = timeout.map_or(self.spin, |timeout| timeout.min(self.spin));
        loop {
            match poll.poll(events, Some(Duration::ZERO)) {
                Ok(()) if events.is_empty() => {}
                result => return Spun::Ready(result),
            }
            let spun = start.elapsed();
            if spun >= spin {
                return Spun::Nothing(timeout.map(|timeout| timeout.saturating_sub(spun)));
            }
            std::hint::spin_loop();
        }
    }

    /// Wakes the thread in [`wait`](Self::wait) (or the next one to wait).
    pub(crate) fn wake(&self) {
        if let Err(error) = self.waker.wake() {
            tracing::warn!(target: "gtudp", local = %self.local, %error, "could not wake the receiving thread");
        }
    }
}

/// What a spin before a blocking wait found.
enum Spun {
    /// Something is ready (or the poll failed): the wait returns with
    /// this poll's result and events.
    Ready(io::Result<()>),
    /// Nothing within the spin: wait blocking, for what is left of the
    /// timeout.
    Nothing(Option<Duration>),
}
