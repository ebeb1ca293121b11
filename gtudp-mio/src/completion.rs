//! Where the background thread leaves each send's outcome for its
//! [`PendingSend`]: one registry per socket, so that a send allocates no
//! channel of its own.
//!
//! The registry is a slab of slots behind a mutex, with a free list
//! threaded through the free slots. A send takes a slot
//! ([`Completions::register`]) and splits it between the [`PendingSend`]
//! (which waits on it) and a [`Completion`] (which the thread fills). A slot
//! is freed once both sides are done with it: the outcome was taken, or the
//! `PendingSend` was dropped and the thread then resolved it. Dropping a
//! `PendingSend` therefore never cancels its send. The slab only grows when
//! more sends are unresolved or unobserved at once than ever before, so in
//! steady state a send takes a free slot and allocates nothing.
//!
//! Each slot has its own condition variable (created with the slot and
//! reused with it), so resolving a send wakes only the thread waiting for
//! that send. The outcome is stored under the lock and the condition
//! variable notified after releasing it; a waiter checks the slot under the
//! same lock before sleeping, so no outcome is missed.
//!
//! [`PendingSend`]: crate::PendingSend

use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use crate::error::DeliveryError;

/// End of the free list.
const NONE: usize = usize::MAX;

/// Every send's outcome slot, shared by a socket's handle, its pending
/// sends and its thread.
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
    /// Notified when the entry is resolved.
    ready: Arc<Condvar>,
}

enum State {
    /// Not in use; the next free entry, or [`NONE`].
    Free { next: usize },
    /// Unresolved.
    Waiting,
    /// Resolved; the outcome waits for the `PendingSend` to take it.
    Done(Result<(), DeliveryError>),
    /// The `PendingSend` was dropped; freed when the thread resolves it.
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

    /// Takes a slot for a new send: the key for its `PendingSend` and the
    /// [`Completion`] for the thread.
    pub(crate) fn register(self: &Arc<Self>) -> (Key, Completion) {
        let mut slots = self.lock();
        let index = match slots.free {
            NONE => {
                slots.entries.push(Entry {
                    generation: 0,
                    state: State::Waiting,
                    ready: Arc::new(Condvar::new()),
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
            completions: self.clone(),
            key: Some(key),
        };
        (key, completion)
    }

    /// Waits until the outcome is known, or until `deadline` if there is
    /// one (`None` then if it is still unknown), and takes it, freeing the
    /// slot.
    pub(crate) fn wait(
        &self,
        key: Key,
        deadline: Option<Instant>,
    ) -> Option<Result<(), DeliveryError>> {
        let mut slots = self.lock();
        loop {
            let Some(entry) = slots.entry(key) else {
                // Cannot happen: the key's `PendingSend` owns the slot.
                return Some(Err(DeliveryError::Closed));
            };
            match entry.state {
                State::Waiting => {}
                State::Done(_) => {
                    return match slots.release(key.index) {
                        State::Done(outcome) => Some(outcome),
                        _ => unreachable!("the entry was done"),
                    };
                }
                State::Abandoned | State::Free { .. } => return Some(Err(DeliveryError::Closed)),
            }
            let ready = entry.ready.clone();
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

    /// The `PendingSend` of `key` is gone without its outcome: frees the
    /// slot if resolved, otherwise leaves it to the thread. The send goes on.
    pub(crate) fn abandon(&self, key: Key) {
        let mut slots = self.lock();
        let Some(entry) = slots.entry(key) else {
            return;
        };
        match entry.state {
            State::Waiting => entry.state = State::Abandoned,
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
        let ready = match entry.state {
            State::Waiting => {
                entry.state = State::Done(outcome);
                Some(entry.ready.clone())
            }
            State::Abandoned => {
                slots.release(key.index);
                None
            }
            State::Done(_) | State::Free { .. } => None,
        };
        drop(slots);
        if let Some(ready) = ready {
            ready.notify_all();
        }
    }

    /// Locks the slots, ignoring poisoning: every critical section leaves
    /// them consistent.
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

/// The thread's side of one send's slot: resolve it once with the outcome.
/// Dropped unresolved (the thread stopped without reaching it), it resolves
/// the send with [`DeliveryError::Closed`].
pub(crate) struct Completion {
    completions: Arc<Completions>,
    /// `None` once resolved.
    key: Option<Key>,
}

impl Completion {
    /// Hands `outcome` to the send's `PendingSend` and wakes its waiter; if
    /// the `PendingSend` was dropped, frees the slot.
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
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;

    fn len(completions: &Completions) -> usize {
        completions.lock().entries.len()
    }

    #[test]
    fn a_waiting_thread_gets_the_outcome_and_the_slot_is_reused() {
        let completions = Arc::new(Completions::with_capacity(4));
        let (key, completion) = completions.register();
        let now = Instant::now();
        assert_eq!(completions.wait(key, Some(now)), None);
        let resolver = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            completion.resolve(Ok(()));
        });
        assert_eq!(completions.wait(key, None), Some(Ok(())));
        resolver.join().unwrap();
        let (again, _completion) = completions.register();
        assert_eq!(again.index, key.index);
        assert_ne!(again.generation, key.generation);
        assert_eq!(len(&completions), 1);
    }

    #[test]
    fn abandoned_slots_are_freed_by_either_side() {
        let completions = Arc::new(Completions::with_capacity(4));
        let (first, completion) = completions.register();
        completions.abandon(first);
        completion.resolve(Ok(()));
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
        let (key, completion) = completions.register();
        drop(completion);
        assert_eq!(
            completions.wait(key, Some(Instant::now())),
            Some(Err(DeliveryError::Closed))
        );
    }
}
