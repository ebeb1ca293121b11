//! Where the driver leaves each send's outcome for its [`Delivery`]: one
//! registry per socket, so that a send allocates no channel of its own.
//!
//! The registry is a slab of slots behind a mutex, with a free list
//! threaded through the free slots. A send takes a slot ([`Completions::
//! register`]) and splits it between the [`Delivery`] (which reads it) and a
//! [`Completion`] (which the driver fills). A slot is freed once both sides
//! are done with it: the outcome was taken, or the `Delivery` was dropped
//! and the driver then resolved it. Dropping a `Delivery` therefore never
//! cancels its send. The slab only grows when more sends are unresolved or
//! unobserved at once than ever before (at most
//! [`Builder::max_outstanding`](crate::Builder::max_outstanding) unresolved,
//! plus resolved `Delivery` values the application has not awaited yet), so
//! in steady state a send takes a free slot and allocates nothing.
//!
//! Wake-ups: [`Completions::poll`] stores the task's waker under the lock,
//! and [`Completion::resolve`] stores the outcome and takes the waker under
//! the same lock, then wakes after releasing it, so no outcome is missed and
//! no woken task contends for the lock with the waker.
//!
//! [`Delivery`]: crate::Delivery

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::error::DeliveryError;

/// End of the free list.
const NONE: usize = usize::MAX;

/// Every send's outcome slot, shared by a socket's handles and its driver.
pub(crate) struct Completions {
    slots: Mutex<Slots>,
}

struct Slots {
    entries: Vec<Entry>,
    /// First free entry, or [`NONE`].
    free: usize,
}

struct Entry {
    /// Bumped whenever the entry is freed, so a stale key (a bug) is
    /// detected instead of reading another send's outcome.
    generation: u64,
    state: State,
}

enum State {
    /// Not in use; the next free entry, or [`NONE`].
    Free { next: usize },
    /// Unresolved; the task to wake, once the `Delivery` was polled.
    Waiting(Option<Waker>),
    /// Resolved; the outcome waits for the `Delivery` to take it.
    Done(Result<(), DeliveryError>),
    /// The `Delivery` was dropped; freed when the driver resolves it.
    Abandoned,
}

/// Names one slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Key {
    index: usize,
    generation: u64,
}

impl Completions {
    /// A registry with room for `capacity` sends before it grows.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            slots: Mutex::new(Slots {
                entries: Vec::with_capacity(capacity),
                free: NONE,
            }),
        }
    }

    /// Takes a slot for a new send: the key for its `Delivery` and the
    /// [`Completion`] for the driver.
    pub(crate) fn register(self: &Arc<Self>) -> (Key, Completion) {
        let mut slots = self.lock();
        let index = match slots.free {
            NONE => {
                slots.entries.push(Entry {
                    generation: 0,
                    state: State::Waiting(None),
                });
                slots.entries.len() - 1
            }
            index => {
                let entry = &mut slots.entries[index];
                let State::Free { next } = entry.state else {
                    unreachable!("the free list holds only free entries");
                };
                entry.state = State::Waiting(None);
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
            completions: self.clone(),
            key: Some(key),
        };
        (key, completion)
    }

    /// The outcome if it is known (the slot is then freed), otherwise
    /// remembers `cx`'s waker for [`Completion::resolve`].
    pub(crate) fn poll(&self, key: Key, cx: &mut Context<'_>) -> Poll<Result<(), DeliveryError>> {
        let mut slots = self.lock();
        let Some(entry) = slots.entry(key) else {
            // Cannot happen: the key's `Delivery` owns the slot.
            return Poll::Ready(Err(DeliveryError::Closed));
        };
        match &mut entry.state {
            State::Waiting(Some(waker)) => {
                if !waker.will_wake(cx.waker()) {
                    waker.clone_from(cx.waker());
                }
                Poll::Pending
            }
            State::Waiting(waker @ None) => {
                *waker = Some(cx.waker().clone());
                Poll::Pending
            }
            State::Done(_) => match slots.release(key.index) {
                State::Done(outcome) => Poll::Ready(outcome),
                _ => unreachable!("the entry was done"),
            },
            State::Abandoned | State::Free { .. } => Poll::Ready(Err(DeliveryError::Closed)),
        }
    }

    /// The `Delivery` of `key` is gone without its outcome: frees the slot
    /// if resolved, otherwise leaves it to the driver. The send goes on.
    pub(crate) fn abandon(&self, key: Key) {
        let mut slots = self.lock();
        let Some(entry) = slots.entry(key) else {
            return;
        };
        match entry.state {
            State::Waiting(_) => entry.state = State::Abandoned,
            State::Done(_) => {
                slots.release(key.index);
            }
            State::Abandoned | State::Free { .. } => {}
        }
    }

    fn resolve(&self, key: Key, outcome: Result<(), DeliveryError>) {
        let mut slots = self.lock();
        let Some(entry) = slots.entry(key) else {
            return;
        };
        let waker = match &mut entry.state {
            State::Waiting(waker) => {
                let waker = waker.take();
                entry.state = State::Done(outcome);
                waker
            }
            State::Abandoned => {
                slots.release(key.index);
                None
            }
            State::Done(_) | State::Free { .. } => None,
        };
        drop(slots);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Locks the slots, ignoring poisoning: every critical section leaves
    /// them consistent, and none calls out to user code.
    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Slots {
    fn entry(&mut self, key: Key) -> Option<&mut Entry> {
        self.entries
            .get_mut(key.index)
            .filter(|entry| entry.generation == key.generation)
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

impl fmt::Debug for Completions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completions").finish_non_exhaustive()
    }
}

/// The driver's side of one send's slot: resolve it once with the outcome.
/// Dropped unresolved (the driver stopped without reaching it), it resolves
/// the send with [`DeliveryError::Closed`].
pub(crate) struct Completion {
    completions: Arc<Completions>,
    /// `None` once resolved.
    key: Option<Key>,
}

impl Completion {
    /// Hands `outcome` to the send's `Delivery` and wakes its task; if the
    /// `Delivery` was dropped, frees the slot.
    pub(crate) fn resolve(mut self, outcome: Result<(), DeliveryError>) {
        if let Some(key) = self.key.take() {
            self.completions.resolve(key, outcome);
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.completions.resolve(key, Err(DeliveryError::Closed));
        }
    }
}

impl fmt::Debug for Completion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completion")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use super::*;

    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn waker() -> (Arc<CountingWaker>, Waker) {
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        (counter.clone(), Waker::from(counter))
    }

    fn len(completions: &Completions) -> usize {
        completions.lock().entries.len()
    }

    #[test]
    fn resolve_wakes_the_polled_task_and_poll_frees_the_slot() {
        let completions = Arc::new(Completions::with_capacity(4));
        let (wakes, waker) = waker();
        let mut cx = Context::from_waker(&waker);
        let (key, completion) = completions.register();
        assert!(completions.poll(key, &mut cx).is_pending());
        assert!(completions.poll(key, &mut cx).is_pending());
        completion.resolve(Ok(()));
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert_eq!(completions.poll(key, &mut cx), Poll::Ready(Ok(())));
        // The slot is reused, under a new generation.
        let (again, _completion) = completions.register();
        assert_eq!(again.index, key.index);
        assert_ne!(again.generation, key.generation);
        assert_eq!(len(&completions), 1);
    }

    #[test]
    fn abandoned_slots_are_freed_by_either_side() {
        let completions = Arc::new(Completions::with_capacity(4));
        // Dropped first, resolved later.
        let (first, completion) = completions.register();
        completions.abandon(first);
        completion.resolve(Ok(()));
        // Resolved first, dropped later.
        let (second, completion) = completions.register();
        assert_eq!(second.index, first.index);
        completion.resolve(Err(DeliveryError::Closed));
        completions.abandon(second);
        let (third, _completion) = completions.register();
        assert_eq!(third.index, first.index);
        assert_eq!(len(&completions), 1);
    }

    #[test]
    fn a_dropped_completion_reports_closed() {
        let completions = Arc::new(Completions::with_capacity(1));
        let (wakes, waker) = waker();
        let mut cx = Context::from_waker(&waker);
        let (key, completion) = completions.register();
        assert!(completions.poll(key, &mut cx).is_pending());
        drop(completion);
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert_eq!(
            completions.poll(key, &mut cx),
            Poll::Ready(Err(DeliveryError::Closed))
        );
    }

    #[test]
    fn a_new_waker_replaces_the_old_one() {
        let completions = Arc::new(Completions::with_capacity(1));
        let (old_wakes, old) = waker();
        let (new_wakes, new) = waker();
        let (key, completion) = completions.register();
        assert!(completions
            .poll(key, &mut Context::from_waker(&old))
            .is_pending());
        assert!(completions
            .poll(key, &mut Context::from_waker(&new))
            .is_pending());
        completion.resolve(Ok(()));
        assert_eq!(old_wakes.0.load(Ordering::SeqCst), 0);
        assert_eq!(new_wakes.0.load(Ordering::SeqCst), 1);
    }
}
