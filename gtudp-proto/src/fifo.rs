//! A first-in, first-out queue of small `Copy` entries for a queue that
//! empties often: the output's lanes of orders, which every `poll_transmit`
//! drains.
//!
//! The entries live in one vector, from the index of the front to its end.
//! Taking the front moves the index; pushing is the vector's push, whose
//! growth is out of line. A `VecDeque` does the same work with a ring's
//! index arithmetic on every access, and its push is an out-of-line call.
//!
//! The slots of taken entries are reclaimed when the queue empties (each
//! `poll_transmit` drains its lanes, so usually then), or in one move once
//! they are at least half the vector and [`RECLAIM_AFTER`] or more: each
//! entry is moved at most once per time it is taken, and the vector never
//! holds more than twice its live entries plus `RECLAIM_AFTER`.
//!
//! A queue that never empties is better off in a `VecDeque`: here its live
//! entries slide along a vector up to twice as large and are moved back
//! now and then, touching more memory than a ring. The timer queue's lanes,
//! which a busy server never drains, stay `VecDeque`s for that reason (with
//! them here, its 10,000 peers took 44.7 rather than 44.0 misses of a 2 MB
//! cache per message).

/// Taken slots are left in place up to this many (see the module docs): a
/// queue drained as a whole, as a poll drains a lane of a batch or two,
/// moves nothing.
const RECLAIM_AFTER: usize = 256;

/// See the module docs.
#[derive(Clone, Debug)]
pub(crate) struct Fifo<T> {
    entries: Vec<T>,
    /// The index of the front entry in `entries`.
    head: usize,
}

impl<T> Default for Fifo<T> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            head: 0,
        }
    }
}

impl<T: Copy> Fifo<T> {
    /// Entries queued.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.entries.len() - self.head
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.head == self.entries.len()
    }

    #[inline]
    pub(crate) fn front(&self) -> Option<&T> {
        self.entries.get(self.head)
    }

    #[cfg(test)]
    pub(crate) fn back(&self) -> Option<&T> {
        if self.is_empty() {
            return None;
        }
        self.entries.last()
    }

    #[inline]
    pub(crate) fn push_back(&mut self, entry: T) {
        self.entries.push(entry);
    }

    /// Puts `entry` in front of the others (in the slot of the last entry
    /// taken, when there is one).
    pub(crate) fn push_front(&mut self, entry: T) {
        match self.head.checked_sub(1) {
            Some(head) => {
                self.entries[head] = entry;
                self.head = head;
            }
            None => self.entries.insert(0, entry),
        }
    }

    #[inline]
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        let entry = *self.entries.get(self.head)?;
        self.head += 1;
        if self.head == self.entries.len() {
            self.clear();
        } else if self.head >= RECLAIM_AFTER && 2 * self.head >= self.entries.len() {
            self.reclaim();
        }
        Some(entry)
    }

    /// Keeps only the entries for which `keep` holds, in their order.
    pub(crate) fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        self.reclaim();
        self.entries.retain(keep);
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.head = 0;
    }

    /// Frees the slots of the entries taken.
    #[cold]
    fn reclaim(&mut self) {
        self.entries.drain(..self.head);
        self.head = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::Fifo;
    use std::collections::VecDeque;

    proptest::proptest! {
        /// Whatever the pushes, takes and purges, the queue holds what a
        /// `VecDeque` given the same operations holds, in the same order,
        /// and its vector stays within twice its entries plus `RECLAIM_AFTER`.
        #[test]
        fn behaves_as_a_vec_deque(operations in proptest::collection::vec((0u8..6, 0u32..100), 0..2000)) {
            let mut fifo = Fifo::default();
            let mut reference = VecDeque::new();
            for (operation, value) in operations {
                match operation {
                    0 | 1 => {
                        fifo.push_back(value);
                        reference.push_back(value);
                    }
                    2 => proptest::prop_assert_eq!(fifo.pop_front(), reference.pop_front()),
                    3 => {
                        fifo.push_front(value);
                        reference.push_front(value);
                    }
                    4 => {
                        fifo.retain(|entry| entry % 3 != value % 3);
                        reference.retain(|entry| entry % 3 != value % 3);
                    }
                    _ => proptest::prop_assert_eq!(fifo.pop_front(), reference.pop_front()),
                }
                proptest::prop_assert_eq!(fifo.len(), reference.len());
                proptest::prop_assert_eq!(fifo.is_empty(), reference.is_empty());
                proptest::prop_assert_eq!(fifo.front(), reference.front());
                proptest::prop_assert_eq!(fifo.back(), reference.back());
                proptest::prop_assert!(fifo.entries.len() <= 2 * fifo.len() + super::RECLAIM_AFTER);
            }
            let left: Vec<u32> = std::iter::from_fn(|| fifo.pop_front()).collect();
            proptest::prop_assert_eq!(left, Vec::from(reference));
        }
    }
}
