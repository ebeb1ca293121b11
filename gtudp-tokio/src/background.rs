//! The background task: what no application call does.
//!
//! Sends and receives drive the endpoint on the calling task
//! ([`crate::core`]). What is left runs here: the endpoint's timers
//! (retransmissions, deadlines, the pacer, the close's drain), transmits
//! that found the socket's buffer full (it waits for writability), ICMP
//! reports in the socket's error queue, and input that arrives while no
//! task is in `recv`, so RECVs and ACKs are answered promptly even when the
//! application only sends, or is busy elsewhere.
//!
//! While tasks defer their writes (see [`crate::core`]), it looks every
//! [`TICK`](crate::core::TICK) and writes what is still deferred.
//!
//! When a task is in `recv`, that task reads the socket itself; the
//! background task then lets it, and reads only what is still there
//! [`GRACE`] later. While tasks in `recv` keep reading (the socket was read
//! since it looked, and a task is still in `recv`), it does not wait for
//! readiness again but looks once a [`GRACE`], so that a busy socket's
//! every datagram does not wake it too (nor the worker it runs on); once a
//! look finds no read since the last, it reads what is there and waits for
//! readiness again. It sleeps otherwise: nothing polls in a loop. It ends
//! once the endpoint has closed, after making the close summary.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::Interest;

use crate::core::Step;
use crate::shared::{now, Shared};

/// How long input may wait for a task already in `recv` to read it before
/// the background task reads it instead. That task is woken by the same
/// readiness, so this only matters if it cannot run; a short grace keeps
/// the background task from waking for every datagram.
const GRACE: Duration = Duration::from_millis(1);

/// The background task's hold on the socket. It ends the socket if the
/// task is dropped before it could (the runtime shut down, perhaps before
/// the task ever ran): fails every send left and wakes `close` and `recv`
/// callers.
pub(crate) struct Finish(pub(crate) Arc<Shared>);

impl Drop for Finish {
    fn drop(&mut self) {
        self.0.closing.store(true, Ordering::Release);
        self.0.with_core(|core| core.finish(now()));
    }
}

/// The task's body; `finish` is taken as an argument so that dropping the
/// task before its first poll still ends the socket.
pub(crate) async fn run(finish: Finish) {
    let shared = &*finish.0;
    let socket = &*shared.socket;
    let timer = tokio::time::sleep_until(tokio::time::Instant::now());
    tokio::pin!(timer);
    // Input deferred to a task in `recv`: when to look again, and the
    // socket's receive calls counted then.
    let mut read_at: Option<(tokio::time::Instant, u64)> = None;
    loop {
        let (deadline, blocked) = match shared.with_core(|core| core.background_step(now())) {
            Step::Exit => break,
            Step::Wait {
                deadline,
                blocked,
                tick,
            } => {
                let tick = tick.map(tokio::time::Instant::from_std);
                let deadline = deadline.map(tokio::time::Instant::from_std);
                (earliest(deadline, tick), blocked)
            }
        };
        let wake_at = earliest(deadline, read_at.map(|(at, _)| at));
        if let Some(at) = wake_at {
            if timer.deadline() != at {
                timer.as_mut().reset(at);
            }
        }
        tokio::select! {
            () = shared.background.notified() => {}
            ready = socket.readable(), if read_at.is_none() => {
                if let Err(error) = ready {
                    tracing::warn!(target: "gtudp", local = %shared.local_addr, %error, "socket readiness error");
                }
                if shared.readers.load(Ordering::SeqCst) > 0 {
                    // A task in `recv` was woken by this readiness too.
                    let reads = shared.with_core(|core| core.recv_calls());
                    read_at = Some((tokio::time::Instant::now() + GRACE, reads));
                } else {
                    shared.with_core(|core| core.background_receive(now()));
                }
            }
            _ = socket.writable(), if blocked => {}
            // An ICMP report waits in the socket's error queue (Linux,
            // IP_RECVERR): fail its destination.
            _ = socket.ready(Interest::ERROR) => {
                shared.with_core(|core| core.read_error_queue(now()));
                // The reports were read: clear the error readiness, or the
                // next wait would return at once.
                let _ = socket.try_io(Interest::ERROR, || {
                    Err::<(), _>(std::io::ErrorKind::WouldBlock.into())
                });
            }
            () = &mut timer, if wake_at.is_some() => {}
        }
        if let Some((at, reads)) = read_at {
            let looked = tokio::time::Instant::now();
            if at <= looked {
                let reading = shared.readers.load(Ordering::SeqCst) > 0;
                // Still kept up with by a task in `recv`: look again later;
                // otherwise read what waits and wait for readiness again.
                read_at = shared
                    .with_core(|core| core.background_look(now(), reading, reads))
                    .map(|reads| (looked + GRACE, reads));
            }
        }
    }
    drop(finish);
}

fn earliest(
    a: Option<tokio::time::Instant>,
    b: Option<tokio::time::Instant>,
) -> Option<tokio::time::Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
