//! Threads in a gtudp call while the interpreter shuts down.
//!
//! CPython before 3.13.x ends a thread that takes the GIL back once
//! finalization has begun (`pthread_exit`). That forced unwind runs through
//! this extension's frames, whose panic guards stop it, and the process
//! aborts ("FATAL: exception not rethrown"). A daemon thread that sends or
//! waits in a loop meets it at exit: its call comes back from its wait
//! while the interpreter finalizes, or is already waiting for the GIL then.
//!
//! So no thread may be inside a gtudp call, with the GIL released, when
//! finalization begins. Every call here that releases the GIL goes through
//! [`detach`], which counts the threads inside it. Once the interpreter's
//! `atexit` callbacks run, [`interpreter_exiting`] (which `gtudp`
//! registers) marks the interpreter as exiting: from then on a call from
//! any other thread raises `gtudp.Closed` instead of releasing the GIL. It
//! then waits, without the GIL, until every thread inside a call has come
//! back (a wait comes back within a slice, [`crate::wait::SLICE`]); those
//! take the GIL back as usual, while the interpreter still runs, and unwind
//! through Python: a lock they hold (a `logging` handler's, say) is
//! released for the `atexit` callbacks after this one. Only a thread whose
//! call outlasts that wait ([`EXIT_WAIT`]) parks for good when it comes
//! back, since finalization may have begun by then, as newer CPython does
//! with such threads. Coming back and that wait's end are decided by one
//! atomic operation each on [`RETURNING`]: a thread either parks, or the
//! exit waits until it holds the GIL again.
//!
//! Hence nothing else here may release the GIL: not PyO3's helpers that do
//! so on their own (`PyOnceLock::import` and `get_or_init`, which release
//! it to initialise the cell or to wait for another thread that does, the
//! `*_py_attached` lock and once extensions, `Python::detach` itself), nor
//! a call into Python code (its eval loop hands the GIL to a thread that
//! asks for it; `print` writes without it) on a path that a call from
//! another thread takes once the interpreter exits. The exception classes
//! are looked up as the module loads (`crate::errors::init`), so raising
//! one neither imports nor releases the GIL; the asyncio endpoint's debug
//! `print` goes through [`call_python`]. Out of this module's hands remain
//! Python code that converting an argument runs (a class's own
//! `__index__` or `__float__`, a replaced `__import__` as a socket is
//! created) and a `__del__` or weakref callback that a garbage collection
//! runs as this extension allocates an object.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use pyo3::prelude::*;

/// The thread that runs the interpreter's `atexit` callbacks, once it has
/// begun them.
static EXITING: OnceLock<ThreadId> = OnceLock::new();

/// Set in [`RETURNING`] once [`interpreter_exiting`] has stopped waiting:
/// a thread coming back from a call now may meet the finalizing
/// interpreter.
const WAIT_OVER: usize = 1 << (usize::BITS - 1);

/// [`WAIT_OVER`], and the threads between deciding to take the GIL back in
/// [`detach`] (before it was set) and holding it again, which
/// [`interpreter_exiting`] waits for once it has set it.
static RETURNING: AtomicUsize = AtomicUsize::new(0);

/// Threads between releasing the GIL in [`detach`] and taking it back.
static INSIDE: AtomicUsize = AtomicUsize::new(0);

/// Of those, the threads parked for good.
static PARKED: AtomicUsize = AtomicUsize::new(0);

/// The longest [`interpreter_exiting`] waits for the threads inside a call.
/// A wait comes back within a slice; a send, a cancel or a bind at once.
const EXIT_WAIT: Duration = Duration::from_secs(2);

/// Marks the interpreter as exiting, then waits until no thread is inside
/// a gtudp call (see the module's notes). `gtudp` registers it with
/// `atexit`; not for applications.
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
        // From now on a thread coming back parks. Those that decided to
        // come back before are taking the GIL, which this thread does not
        // hold: wait until they have it, so that none is still waiting for
        // it once this thread has taken it and finalization begins.
        RETURNING.fetch_or(WAIT_OVER, Ordering::AcqRel);
        while RETURNING.load(Ordering::Acquire) & !WAIT_OVER != 0 {
            std::thread::sleep(Duration::from_micros(100));
        }
    });
}

/// Forgets the threads a forked child inherited the count of (only the
/// forking thread lives on in the child, and it was not inside a call).
/// `gtudp` registers it with `os.register_at_fork`; not for applications.
#[pyfunction]
pub(crate) fn after_fork_in_child() {
    INSIDE.store(0, Ordering::Release);
    PARKED.store(0, Ordering::Release);
    RETURNING.fetch_and(WAIT_OVER, Ordering::AcqRel);
}

/// [`Python::detach`], counted. Once the interpreter is exiting, a call
/// from another thread than the one running the exit raises `gtudp.Closed`
/// instead, and one that comes back after the exit stopped waiting for it
/// parks for good rather than take the GIL back (see the module's notes).
pub(crate) fn detach<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    F: Send + FnOnce() -> T,
    T: Send,
{
    if exiting_elsewhere() {
        return Err(crate::errors::closed(
            py,
            "the interpreter is exiting: no gtudp call starts any more",
        ));
    }
    INSIDE.fetch_add(1, Ordering::AcqRel);
    let value = py.detach(|| {
        let value = f();
        // Counted before the check, in one operation with it: either the
        // exit has stopped waiting (then this thread parks, uncounted), or
        // it waits until this thread holds the GIL.
        if RETURNING.fetch_add(1, Ordering::AcqRel) & WAIT_OVER != 0 && exiting_elsewhere() {
            RETURNING.fetch_sub(1, Ordering::AcqRel);
            park();
        }
        value
    });
    RETURNING.fetch_sub(1, Ordering::AcqRel);
    INSIDE.fetch_sub(1, Ordering::AcqRel);
    Ok(value)
}

/// Runs `f`, a call into Python code (which may release the GIL and take
/// it back), counted as a call inside [`detach`] is, so that the exit waits
/// for it. Once the interpreter is exiting, on another thread than the one
/// running the exit, returns `None` instead of calling `f`.
pub(crate) fn call_python<T>(_py: Python<'_>, f: impl FnOnce() -> T) -> Option<T> {
    if exiting_elsewhere() {
        return None;
    }
    INSIDE.fetch_add(1, Ordering::AcqRel);
    let value = f();
    INSIDE.fetch_sub(1, Ordering::AcqRel);
    Some(value)
}

/// Whether the interpreter is exiting and another thread runs its exit.
fn exiting_elsewhere() -> bool {
    EXITING
        .get()
        .is_some_and(|exiting| *exiting != std::thread::current().id())
}

/// Parks the calling thread for good.
fn park() -> ! {
    PARKED.fetch_add(1, Ordering::AcqRel);
    loop {
        std::thread::park();
    }
}
