//! The blocking socket's background thread: the endpoint's timers, and the
//! socket's input while no receive waits for it (see [`super::core`]).

use std::sync::Arc;
use std::time::Instant;

use mio::{Events, Poll, Token};

use super::core::{Background, Shared, LEASE};

/// The socket's token in the background poller.
pub(crate) const SOCKET: Token = Token(0);
/// The waker's token in the background poller.
pub(crate) const WAKER: Token = Token(1);

/// Runs the background loop until the socket has closed.
pub(crate) fn run(shared: Arc<Shared>, mut poll: Poll) {
    let _finish = FinishOnExit(shared.clone());
    let mut events = Events::with_capacity(64);
    // Events of the last wait: the socket's readiness, if reported.
    let (mut readable, mut writable) = (false, false);
    let mut seen_releases = 0;
    loop {
        let timeout = {
            let mut core = shared.lock();
            core.background = Background::Awake;
            let now = Instant::now();
            if !core.led && core.lease_end.is_some_and(|end| now >= end) {
                // No receive came back within the lease.
                core.end_lease();
            }
            if readable {
                core.driver.handle_readable(now);
            }
            if writable {
                core.driver.handle_writable(now);
            }
            core.driver.handle_timeout(now);
            core.note_flushed(now);
            let arrived = core.deliver();
            if core.driver.is_closed() {
                core.finish();
                drop(core);
                shared.wake_receivers();
                return;
            }
            // A leader waits in its poller for an outcome (a timer here
            // failed its send) or a message (which came here only while a
            // transmit waited for room: the socket stays registered then);
            // other receives wait on `ready`.
            shared.settle(&mut core, arrived);
            // While receives come and go, turn once per lease to take the
            // socket back when they stop (see `LEASE`).
            let tick = if core.led {
                (core.releases != seen_releases).then(|| now + LEASE)
            } else {
                core.lease_end
            };
            seen_releases = core.releases;
            let next = match (core.next_wake(), tick) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            core.background = Background::Asleep(next);
            let foreign = core.driver.take_foreign_unreachable();
            (next.map(|at| at.saturating_duration_since(now)), foreign)
        };
        let (timeout, foreign) = timeout;
        if let Some(foreign) = foreign {
            shared.hand_over_unreachable(foreign);
        }
        if let Err(error) = poll.poll(&mut events, timeout) {
            if error.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            tracing::error!(target: "gtudp", local = %shared.local, %error, "mio poll failed; closing the socket");
            return;
        }
        (readable, writable) = (false, false);
        for event in events.iter() {
            if event.token() == SOCKET {
                // An error event is an ICMP report waiting in the socket's
                // error queue: the receive reads it.
                readable |= event.is_readable() || event.is_error();
                writable |= event.is_writable();
            }
        }
    }
}

/// Marks the socket finished however the thread ends, so that no receive
/// or close waits forever.
struct FinishOnExit(Arc<Shared>);

impl Drop for FinishOnExit {
    fn drop(&mut self) {
        let mut core = self.0.lock();
        if !core.is_finished() {
            core.finish();
        }
        drop(core);
        self.0.wake_receivers();
    }
}
