//! A shard driven on a thread of its own ([`Builder::shard_threads`]): a
//! Tokio current-thread runtime that runs the shard's background task and
//! the tasks spawned on the shard
//! ([`ShardedSocket::spawn_on_shard`](crate::ShardedSocket::spawn_on_shard)),
//! so that the shard's work stays on one thread and wakes no other.
//!
//! The thread ends once its shard has closed and every task spawned on it
//! has ended.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::error::BindError;
use crate::socket::{Builder, Socket};

/// Where a shard's tasks run: the runtime `bind_sharded` was called on, or
/// the shard's own thread.
#[derive(Debug)]
pub(crate) struct Driver {
    runtime: Handle,
    /// The tasks spawned on the shard's own thread, which keep it running;
    /// `None` without a thread of its own.
    tasks: Option<Arc<Tasks>>,
}

/// The live tasks spawned on a shard's thread.
#[derive(Debug, Default)]
struct Tasks {
    live: AtomicUsize,
    ended: Notify,
}

impl Tasks {
    /// Waits until no task spawned on the thread is alive.
    async fn all_ended(&self) {
        loop {
            let ended = self.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            if self.live.load(Ordering::Acquire) == 0 {
                return;
            }
            ended.await;
        }
    }
}

/// Counts one task spawned on a shard's thread while it lives (dropped
/// when it ends, or when it is cancelled).
struct Live(Arc<Tasks>);

impl Drop for Live {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.ended.notify_waiters();
        }
    }
}

impl Driver {
    /// The runtime the caller is on (without a thread of its own).
    pub(crate) fn current(runtime: Handle) -> Self {
        Self {
            runtime,
            tasks: None,
        }
    }

    /// Starts a thread named `gtudp-shard-{index}` with a current-thread
    /// runtime, makes the shard's [`Socket`] from `socket` on it, and runs
    /// its background task there.
    pub(crate) async fn thread(
        builder: Builder,
        socket: std::net::UdpSocket,
        index: usize,
    ) -> Result<(Socket, Self), BindError> {
        let tasks = Arc::new(Tasks::default());
        let (ready, started) = tokio::sync::oneshot::channel();
        let thread_tasks = tasks.clone();
        std::thread::Builder::new()
            .name(format!("gtudp-shard-{index}"))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = ready.send(Err(BindError::Io(error)));
                        return;
                    }
                };
                let made = {
                    let _entered = runtime.enter();
                    make(builder, socket)
                };
                match made {
                    Ok((socket, background)) => {
                        // Should the caller have gone, the socket dropped
                        // here closes, and the unpolled background task
                        // dropped with it ends it.
                        if ready.send(Ok((socket, runtime.handle().clone()))).is_ok() {
                            runtime.block_on(async {
                                background.await;
                                thread_tasks.all_ended().await;
                            });
                        }
                    }
                    Err(error) => {
                        let _ = ready.send(Err(error));
                    }
                }
            })?;
        let (socket, runtime) = started.await.map_err(|_| {
            BindError::Io(std::io::Error::other(
                "the shard's thread ended before its socket was ready",
            ))
        })??;
        Ok((
            socket,
            Self {
                runtime,
                tasks: Some(tasks),
            },
        ))
    }

    /// Spawns `future` where the shard runs.
    pub(crate) fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match &self.tasks {
            None => self.runtime.spawn(future),
            Some(tasks) => {
                tasks.live.fetch_add(1, Ordering::AcqRel);
                let live = Live(tasks.clone());
                self.runtime.spawn(async move {
                    let _live = live;
                    future.await
                })
            }
        }
    }
}

/// Makes a shard's socket from a standard-library socket, on the current
/// runtime, with its background task to run.
fn make(
    builder: Builder,
    socket: std::net::UdpSocket,
) -> Result<(Socket, impl Future<Output = ()> + Send + 'static), BindError> {
    socket.set_nonblocking(true)?;
    builder.start(tokio::net::UdpSocket::from_std(socket)?)
}
