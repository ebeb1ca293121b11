//! Threads in a gtudp call while the interpreter shuts down.
//!
//! CPython before 3.13.x ends a thread that takes the GIL back once
//! finalization has begun (`pthread_exit`). That forced unwind runs through
//! this extension's frames, whose panic guards stop it, and the process
//! aborts ("FATAL: exception not rethrown"). A daemon thread that sends or
//! waits in a loop meets it at exit: its call comes back from its wait
//! while the interpreter finalizes, or is already waiting for the GIL then.
//!
//! Newer CPython hangs such a thread instead of ending it, and gtudp does
//! the same, before finalization begins. Every call here that releases the
//! GIL goes through [`detach`], which counts the threads inside it. Once
//! the interpreter's `atexit` callbacks run, [`interpreter_exiting`]
//! (which `gtudp` registers) marks the interpreter as exiting. It then
//! waits, without the GIL, until every thread inside a call has either
//! taken the GIL back (before finalization) or parked for good: a thread
//! coming back from native code once the mark is set parks rather than
//! re-enter Python. Non-daemon threads have all been joined by then, so
//! only daemon threads park, and the process ends as it would have.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use pyo3::prelude::*;

/// The thread that runs the interpreter's `atexit` callbacks, once it has
/// begun them.
static EXITING: OnceLock<ThreadId> = OnceLock::new();

/// Threads between releasing the GIL in [`detach`] and taking it back.
static INSIDE: AtomicUsize = AtomicUsize::new(0);

/// Of those, the threads parked for good.
static PARKED: AtomicUsize = AtomicUsize::new(0);

/// The longest [`interpreter_exiting`] waits for the threads inside a call
/// (their calls end within a wait slice once the sockets are closed at
/// exit, which happens before).
const EXIT_WAIT: Duration = Duration::from_secs(2);

/// Marks the interpreter as exiting, then waits until no thread is about
/// to take the GIL back from a gtudp call (see the module's notes).
/// `gtudp` registers it with `atexit`; not for applications.
#[pyfunction]
pub(crate) fn interpreter_exiting(py: Python<'_>) {
    if EXITING.set(std::thread::current().id()).is_err() {
        return;
    }
    py.detach(|| {
        let start = Instant::now();
        while INSIDE.load(Ordering::Acquire) > PARKED.load(Ordering::Acquire)
            && start.elapsed() < EXIT_WAIT
        {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

/// [`Python::detach`], counted, except that a thread coming back once the
/// interpreter is exiting parks for good rather than take the GIL back
/// (see the module's notes).
pub(crate) fn detach<T, F>(py: Python<'_>, f: F) -> T
where
    F: Send + FnOnce() -> T,
    T: Send,
{
    INSIDE.fetch_add(1, Ordering::AcqRel);
    let value = py.detach(|| {
        let value = f();
        park_if_exiting();
        value
    });
    INSIDE.fetch_sub(1, Ordering::AcqRel);
    value
}

/// Parks the calling thread for good if the interpreter is exiting and
/// another thread runs its exit.
fn park_if_exiting() {
    let Some(exiting) = EXITING.get() else {
        return;
    };
    if *exiting == std::thread::current().id() {
        return;
    }
    PARKED.fetch_add(1, Ordering::AcqRel);
    loop {
        std::thread::park();
    }
}
