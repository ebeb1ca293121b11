//! Where an adapter's driver leaves each send's outcome for the handle the
//! application holds (`gtudp-tokio`'s `Delivery`, `gtudp-mio`'s
//! `PendingSend`): one [`Registry`] per socket, so that a send allocates no
//! channel of its own.
//!
//! The registry is a slab of slots behind a mutex, with a free list
//! threaded through the free slots. A send takes a slot
//! ([`Registry::register`]) and splits it between the handle (which reads
//! it through its [`Key`]) and a [`Completion`] (which the driver fills). A
//! slot is freed once both sides are done with it: the outcome was taken,
//! or the handle was dropped ([`Registry::abandon`]) and the driver then
//! resolved it. Dropping a handle therefore never cancels its send. The
//! slab only grows when more sends are unresolved or unobserved at once
//! than ever before, so in steady state a send takes a free slot and
//! allocates nothing.
//!
//! How a waiting reader is notified is the [`Wake`] parameter's business:
//! [`TaskWake`] stores an async task's [`Waker`] ([`Registry::poll`]),
//! [`CondvarWake`] gives each slot a condition variable for a blocked thread
//! ([`Registry::wait`]). Either way the outcome is stored, and what to
//! notify taken, under the lock, and the notification happens after
//! releasing it; a reader checks its slot under the same lock before it
//! waits, so no outcome is missed.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use crate::error::DeliveryError;
use crate::Delivered;

/// How a [`Registry`] notifies the reader waiting for a slot: the part of
/// a slot that records the waiter, created with the slot (by [`Default`])
/// and kept with it while it is reused.
pub trait Wake: Default {
    /// What resolving a slot takes under the lock, to notify after
    /// releasing it.
    type Notify;

    /// The slot was resolved (under the lock): what to notify once the
    /// lock is released, if anyone may be waiting.
    fn take(&mut self) -> Option<Self::Notify>;

    /// Notifies the waiter (with the lock released).
    fn notify(notify: Self::Notify);

    /// The slot's reader is gone (under the lock): forgets it.
    fn forget(&mut self);
}

/// [`Wake`] for async tasks: the waker of the task that last polled the
/// slot ([`Registry::poll`]).
#[derive(Debug, Default)]
pub struct TaskWake(Option<Waker>);

impl Wake for TaskWake {
    type Notify = Waker;

    fn take(&mut self) -> Option<Waker> {
        self.0.take()
    }

    fn notify(waker: Waker) {
        waker.wake();
    }

    fn forget(&mut self) {
        self.0 = None;
    }
}

/// [`Wake`] for blocked threads: a condition variable per slot (created
/// with the slot and reused with it), so resolving a send wakes only the
/// thread waiting for that send ([`Registry::wait`]).
#[derive(Debug, Default)]
pub struct CondvarWake(Arc<Condvar>);

impl Wake for CondvarWake {
    type Notify = Arc<Condvar>;

    fn take(&mut self) -> Option<Arc<Condvar>> {
        Some(self.0.clone())
    }

    fn notify(ready: Arc<Condvar>) {
        ready.notify_all();
    }

    fn forget(&mut self) {}
}

/// End of the free list.
const NONE: usize = usize::MAX;

/// Every send's outcome slot, shared by a socket's handles and its driver.
pub struct Registry<W> {
    slots: Mutex<Slots<W>>,
}

struct Slots<W> {
    entries: Vec<Entry<W>>,
    /// First free entry, or [`NONE`].
    free: usize,
}

struct Entry<W> {
    /// Bumped whenever the entry is freed, so a stale key (a bug) is
    /// detected instead of reading another send's outcome.
    generation: u64,
    state: State,
    /// Who waits for the outcome.
    waiter: W,
}

enum State {
    /// Not in use; the next free entry, or [`NONE`].
    Free { next: usize },
    /// Unresolved.
    Waiting,
    /// Resolved; the outcome waits for the handle to take it.
    Done(Result<Delivered, DeliveryError>),
    /// The handle was dropped; freed when the driver resolves it.
    Abandoned,
}

/// Names one slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    index: usize,
    generation: u64,
}

/// What a reader finds in its slot.
enum Found<'a, W> {
    /// The outcome, taken (the slot is freed).
    Outcome(Result<Delivered, DeliveryError>),
    /// No outcome yet; the slot's waiter record.
    Waiting(&'a mut W),
}

impl<W: Wake> Registry<W> {
    /// A registry with room for `capacity` sends before it grows.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            slots: Mutex::new(Slots {
                entries: Vec::with_capacity(capacity),
                free: NONE,
            }),
        }
    }

    /// Takes a slot for a new send: the key for its handle and the
    /// [`Completion`] for the driver.
    pub fn register(self: &Arc<Self>) -> (Key, Completion<W>) {
        let mut slots = self.lock();
        let index = match slots.free {
            NONE => {
                slots.entries.push(Entry {
                    generation: 0,
                    state: State::Waiting,
                    waiter: W::default(),
                });
                slots.entries.len() - 1
            }
            index => {
                let entry = &mut slots.entries[index];
                let State::Free { next } = entry.state else {
                    unreachable!("the free list holds only free entries");
                };
                entry.state = State::Waiting;
                slots.free = next;
                index
            }
        };
        let key = Key {
            index,
            generation: slots.entries[index].generation,
        };
        drop(slots);
        let completion = Completion {
            registry: self.clone(),
            key: Some(key),
        };
        (key, completion)
    }

    /// The handle of `key` is gone without its outcome: frees the slot if
    /// resolved, otherwise leaves it to the driver. The send goes on.
    pub fn abandon(&self, key: Key) {
        let mut slots = self.lock();
        let Some(entry) = slots.entry(key) else {
            return;
        };
        match entry.state {
            State::Waiting => {
                entry.state = State::Abandoned;
                entry.waiter.forget();
            }
            State::Done(_) => {
                slots.release(key.index);
            }
            State::Abandoned | State::Free { .. } => {}
        }
    }

    /// Returns whether the outcome was left for a live handle.
    fn resolve(&self, key: Key, outcome: Result<Delivered, DeliveryError>) -> bool {
        let mut slots = self.lock();
        let Some(entry) = slots.entry(key) else {
            return false;
        };
        // Whether the outcome was left for a live handle, and whom to
        // notify.
        let notify = match entry.state {
            State::Waiting => {
                entry.state = State::Done(outcome);
                Some(entry.waiter.take())
            }
            State::Abandoned => {
                slots.release(key.index);
                None
            }
            State::Done(_) | State::Free { .. } => None,
        };
        drop(slots);
        match notify {
            Some(Some(waiter)) => {
                W::notify(waiter);
                true
            }
            Some(None) => true,
            None => false,
        }
    }

    /// Locks the slots, ignoring poisoning: every critical section leaves
    /// them consistent, and none calls out to user code.
    fn lock(&self) -> MutexGuard<'_, Slots<W>> {
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Registry<TaskWake> {
    /// The outcome if it is known (the slot is then freed), otherwise
    /// remembers `cx`'s waker for [`Completion::resolve`].
    pub fn poll(&self, key: Key, cx: &mut Context<'_>) -> Poll<Result<Delivered, DeliveryError>> {
        let mut slots = self.lock();
        match slots.find(key) {
            Found::Outcome(outcome) => Poll::Ready(outcome),
            Found::Waiting(TaskWake(Some(waker))) => {
                if !waker.will_wake(cx.waker()) {
                    waker.clone_from(cx.waker());
                }
                Poll::Pending
            }
            Found::Waiting(TaskWake(waker @ None)) => {
                *waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Registry<CondvarWake> {
    /// Waits until the outcome is known, or until `deadline` if there is
    /// one (`None` then if it is still unknown), and takes it, freeing the
    /// slot.
    pub fn wait(
        &self,
        key: Key,
        deadline: Option<Instant>,
    ) -> Option<Result<Delivered, DeliveryError>> {
        let mut slots = self.lock();
        loop {
            let ready = match slots.find(key) {
                Found::Outcome(outcome) => return Some(outcome),
                Found::Waiting(CondvarWake(ready)) => ready.clone(),
            };
            slots = match deadline {
                None => ready
                    .wait(slots)
                    .unwrap_or_else(|poisoned| poisoned.into_inner()),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    ready
                        .wait_timeout(slots, left)
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .0
                }
            };
        }
    }
}

impl<W> Slots<W> {
    fn entry(&mut self, key: Key) -> Option<&mut Entry<W>> {
        self.entries
            .get_mut(key.index)
            .filter(|entry| entry.generation == key.generation)
    }

    /// For the reader of `key`: the outcome if it is known (freeing the
    /// slot), otherwise the slot's waiter record.
    fn find(&mut self, key: Key) -> Found<'_, W> {
        let Some(entry) = self.entry(key) else {
            // Cannot happen: the key's handle owns the slot.
            return Found::Outcome(Err(DeliveryError::Closed));
        };
        match entry.state {
            State::Waiting => {}
            State::Done(_) => {
                return match self.release(key.index) {
                    State::Done(outcome) => Found::Outcome(outcome),
                    _ => unreachable!("the entry was done"),
                };
            }
            State::Abandoned | State::Free { .. } => {
                return Found::Outcome(Err(DeliveryError::Closed))
            }
        }
        // Borrowed again: returning `entry` itself would keep `self`
        // borrowed in the arms above.
        match self.entry(key) {
            Some(entry) => Found::Waiting(&mut entry.waiter),
            None => unreachable!("the entry was found above"),
        }
    }

    /// Frees entry `index` and returns what it held.
    fn release(&mut self, index: usize) -> State {
        let entry = &mut self.entries[index];
        entry.generation = entry.generation.wrapping_add(1);
        let state = std::mem::replace(&mut entry.state, State::Free { next: self.free });
        self.free = index;
        state
    }
}

impl<W> fmt::Debug for Registry<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

/// The driver's side of one send's slot: resolve it once with the outcome.
/// Dropped unresolved (the driver stopped without reaching it), it resolves
/// the send with [`DeliveryError::Closed`].
pub struct Completion<W: Wake> {
    registry: Arc<Registry<W>>,
    /// `None` once resolved.
    key: Option<Key>,
}

impl<W: Wake> Completion<W> {
    /// Hands `outcome` to the send's handle and wakes its waiter; if the
    /// handle was dropped, frees the slot.
    pub fn resolve(self, outcome: Result<Delivered, DeliveryError>) {
        self.resolve_unread(outcome);
    }

    /// [`resolve`](Self::resolve), saying whether the outcome now waits
    /// for its handle to read it (whether or not anyone waited for it yet);
    /// false if the handle was dropped. An adapter uses it to expect the
    /// application's reaction (a new send, say).
    pub fn resolve_unread(mut self, outcome: Result<Delivered, DeliveryError>) -> bool {
        match self.key.take() {
            Some(key) => self.registry.resolve(key, outcome),
            None => false,
        }
    }
}

impl<W: Wake> Drop for Completion<W> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.registry.resolve(key, Err(DeliveryError::Closed));
        }
    }
}

impl<W: Wake> fmt::Debug for Completion<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completion")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    const DELIVERED: Delivered = Delivered {
        suspected_lost: false,
    };

    struct CountingWaker(AtomicUsize);

    impl std::task::Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn waker() -> (Arc<CountingWaker>, Waker) {
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        (counter.clone(), Waker::from(counter))
    }

    fn len<W: Wake>(registry: &Registry<W>) -> usize {
        registry.lock().entries.len()
    }

    fn abandoned_slots_are_freed_by_either_side<W: Wake>() {
        let registry = Arc::new(Registry::<W>::with_capacity(4));
        // Dropped first, resolved later.
        let (first, completion) = registry.register();
        registry.abandon(first);
        completion.resolve(Ok(DELIVERED));
        // Resolved first, dropped later.
        let (second, completion) = registry.register();
        assert_eq!(second.index, first.index);
        completion.resolve(Err(DeliveryError::Closed));
        registry.abandon(second);
        let (third, _completion) = registry.register();
        assert_eq!(third.index, first.index);
        assert_eq!(len(&registry), 1);
    }

    #[test]
    fn abandoned_slots_are_freed_by_either_side_task() {
        abandoned_slots_are_freed_by_either_side::<TaskWake>();
    }

    #[test]
    fn abandoned_slots_are_freed_by_either_side_condvar() {
        abandoned_slots_are_freed_by_either_side::<CondvarWake>();
    }

    #[test]
    fn abandoning_a_polled_slot_forgets_its_waker() {
        let registry = Arc::new(Registry::<TaskWake>::with_capacity(1));
        let (wakes, waker) = waker();
        let (key, completion) = registry.register();
        assert!(registry
            .poll(key, &mut Context::from_waker(&waker))
            .is_pending());
        registry.abandon(key);
        assert!(registry.lock().entries[0].waiter.0.is_none());
        completion.resolve(Ok(DELIVERED));
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn resolve_wakes_the_polled_task_and_poll_frees_the_slot() {
        let registry = Arc::new(Registry::<TaskWake>::with_capacity(4));
        let (wakes, waker) = waker();
        let mut cx = Context::from_waker(&waker);
        let (key, completion) = registry.register();
        assert!(registry.poll(key, &mut cx).is_pending());
        assert!(registry.poll(key, &mut cx).is_pending());
        completion.resolve(Ok(DELIVERED));
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert_eq!(registry.poll(key, &mut cx), Poll::Ready(Ok(DELIVERED)));
        // The slot is reused, under a new generation.
        let (again, _completion) = registry.register();
        assert_eq!(again.index, key.index);
        assert_ne!(again.generation, key.generation);
        assert_eq!(len(&registry), 1);
    }

    #[test]
    fn resolve_says_whether_the_outcome_waits_for_its_handle() {
        let registry = Arc::new(Registry::<TaskWake>::with_capacity(3));
        let (wakes, waker) = waker();
        let (polled, completion) = registry.register();
        assert!(registry
            .poll(polled, &mut Context::from_waker(&waker))
            .is_pending());
        assert!(completion.resolve_unread(Ok(DELIVERED)));
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        // Not yet polled: nobody to wake, but its reader will find it.
        let (_never_polled, completion) = registry.register();
        assert!(completion.resolve_unread(Ok(DELIVERED)));
        let (dropped, completion) = registry.register();
        registry.abandon(dropped);
        assert!(!completion.resolve_unread(Ok(DELIVERED)));
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_dropped_completion_wakes_the_task_with_closed() {
        let registry = Arc::new(Registry::<TaskWake>::with_capacity(1));
        let (wakes, waker) = waker();
        let mut cx = Context::from_waker(&waker);
        let (key, completion) = registry.register();
        assert!(registry.poll(key, &mut cx).is_pending());
        drop(completion);
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert_eq!(
            registry.poll(key, &mut cx),
            Poll::Ready(Err(DeliveryError::Closed))
        );
    }

    #[test]
    fn a_new_waker_replaces_the_old_one() {
        let registry = Arc::new(Registry::<TaskWake>::with_capacity(1));
        let (old_wakes, old) = waker();
        let (new_wakes, new) = waker();
        let (key, completion) = registry.register();
        assert!(registry
            .poll(key, &mut Context::from_waker(&old))
            .is_pending());
        assert!(registry
            .poll(key, &mut Context::from_waker(&new))
            .is_pending());
        completion.resolve(Ok(DELIVERED));
        assert_eq!(old_wakes.0.load(Ordering::SeqCst), 0);
        assert_eq!(new_wakes.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_waiting_thread_gets_the_outcome_and_the_slot_is_reused() {
        let registry = Arc::new(Registry::<CondvarWake>::with_capacity(4));
        let (key, completion) = registry.register();
        assert_eq!(registry.wait(key, Some(Instant::now())), None);
        let resolver = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            completion.resolve(Ok(DELIVERED));
        });
        assert_eq!(registry.wait(key, None), Some(Ok(DELIVERED)));
        resolver.join().unwrap();
        let (again, _completion) = registry.register();
        assert_eq!(again.index, key.index);
        assert_ne!(again.generation, key.generation);
        assert_eq!(len(&registry), 1);
    }

    #[test]
    fn a_dropped_completion_reports_closed_to_a_thread() {
        let registry = Arc::new(Registry::<CondvarWake>::with_capacity(1));
        let (key, completion) = registry.register();
        drop(completion);
        assert_eq!(
            registry.wait(key, Some(Instant::now())),
            Some(Err(DeliveryError::Closed))
        );
    }
}
