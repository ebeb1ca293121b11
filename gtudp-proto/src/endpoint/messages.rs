//! The messages accepted by `send` and not yet resolved, in a slab.
//!
//! A [`MessageId`] carries the slot that holds its message, so every
//! lookup on the hot path (liveness checks of the send order, the RTO
//! deadline, the output queue, resolution) is an index and one comparison
//! of serial numbers, with no hashing. A slot freed by a resolved message
//! is reused by a later one (last freed, first reused: its memory is the
//! warmest); the later message has a greater serial, so an id of the old
//! message finds nothing there. The slab holds at most as many slots as
//! messages were ever unresolved at once, which
//! [`Limits::max_outstanding_messages`](crate::Limits) bounds.

use super::sender::Message;
use crate::event::MessageId;

/// One place in the slab: the serial of the message it holds (or held
/// last), and the message while unresolved. Aligned to a cache line, so
/// that each slot spans exactly three (see the test below).
#[derive(Debug)]
#[repr(align(64))]
struct Slot {
    serial: u64,
    message: Option<Message>,
}

#[derive(Debug, Default)]
pub(super) struct Messages {
    slots: Vec<Slot>,
    /// Slots whose message was resolved, the last freed at the end.
    free: Vec<u32>,
    len: usize,
}

impl Messages {
    /// The id the next message, numbered `serial`, gets: pass it to
    /// [`insert`](Self::insert). `None` only if `u32::MAX` messages are
    /// unresolved at once.
    pub(super) fn vacant_id(&self, serial: u64) -> Option<MessageId> {
        let slot = match self.free.last() {
            Some(&slot) => slot,
            None => u32::try_from(self.slots.len()).ok()?,
        };
        Some(MessageId { serial, slot })
    }

    /// Stores `message` under `id`, which [`vacant_id`](Self::vacant_id)
    /// gave just before. Inlined into `send`'s path, so that the message
    /// (184 bytes) is built in its slot rather than built and then
    /// copied there.
    #[inline(always)]
    pub(super) fn insert(&mut self, id: MessageId, message: Message) {
        let slot = id.slot as usize;
        if slot == self.slots.len() {
            self.slots.push(Slot {
                serial: id.serial,
                message: Some(message),
            });
        } else {
            debug_assert_eq!(self.free.last(), Some(&id.slot), "not the vacant slot");
            self.free.pop();
            let place = &mut self.slots[slot];
            debug_assert!(place.message.is_none() && place.serial < id.serial);
            *place = Slot {
                serial: id.serial,
                message: Some(message),
            };
        }
        self.len += 1;
    }

    pub(super) fn get(&self, id: &MessageId) -> Option<&Message> {
        match self.slots.get(id.slot as usize) {
            Some(Slot {
                serial,
                message: Some(message),
            }) if *serial == id.serial => Some(message),
            _ => None,
        }
    }

    pub(super) fn get_mut(&mut self, id: &MessageId) -> Option<&mut Message> {
        match self.slots.get_mut(id.slot as usize) {
            Some(Slot {
                serial,
                message: Some(message),
            }) if *serial == id.serial => Some(message),
            _ => None,
        }
    }

    pub(super) fn contains_key(&self, id: &MessageId) -> bool {
        self.get(id).is_some()
    }

    /// Drops the message in place, freeing its slot; false if `id` names
    /// no unresolved message.
    pub(super) fn remove(&mut self, id: &MessageId) -> bool {
        let Some(place) = self.slots.get_mut(id.slot as usize) else {
            return false;
        };
        if place.serial != id.serial || place.message.is_none() {
            return false;
        }
        place.message = None;
        self.free.push(id.slot);
        self.len -= 1;
        true
    }

    /// Unresolved messages.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The unresolved messages and their ids, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (MessageId, &Message)> + '_ {
        self.slots.iter().enumerate().filter_map(|(slot, place)| {
            let id = MessageId {
                serial: place.serial,
                // The slab never holds more than 2^32 slots.
                slot: slot as u32,
            };
            place.message.as_ref().map(|message| (id, message))
        })
    }

    /// The ids of the unresolved messages, in no particular order.
    pub(super) fn keys(&self) -> impl Iterator<Item = MessageId> + '_ {
        self.iter().map(|(id, _)| id)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use bytes::Bytes;

    use crate::{Config, Endpoint};

    #[test]
    fn a_reused_slot_does_not_answer_to_the_old_id() {
        let mut endpoint = Endpoint::new(Config::default(), 7).unwrap();
        let (now, to) = (Instant::now(), "127.0.0.1:9".parse().unwrap());
        let first = endpoint.send(now, to, Bytes::from_static(b"a")).unwrap();
        endpoint.cancel(first).unwrap();
        let second = endpoint.send(now, to, Bytes::from_static(b"b")).unwrap();
        // The second message took the first one's slot, and yet the ids
        // differ and order as the messages were sent.
        assert_eq!(first.slot, second.slot);
        assert!(first < second && first.as_u64() < second.as_u64());
        assert!(endpoint.cancel(first).is_err(), "the old id names nothing");
        assert_eq!(endpoint.table_sizes().messages, 1);
        endpoint.cancel(second).unwrap();
        assert_eq!(endpoint.table_sizes().messages, 0);
    }

    /// However many attempts a message has left (a peer that moves gives
    /// some back, see `roaming`), it is never sent again once its retry
    /// span has passed since its first transmission: the receiver's
    /// `remember_window` covers that span and no more, so a later copy
    /// could be handed over twice.
    #[test]
    fn no_transmission_after_the_retry_span_whatever_attempts_are_left() {
        let mut config = Config::default();
        config.initial_rto = std::time::Duration::from_millis(20);
        config.max_rto = std::time::Duration::from_millis(40);
        config.max_attempts = 4;
        config.remember_window = config.max_retry_span();
        config.datagram_lifetime = std::time::Duration::from_millis(100);
        let span = config.max_retry_span();
        let mut endpoint = Endpoint::new(config, 7).unwrap();
        let (start, to) = (Instant::now(), "127.0.0.1:9".parse().unwrap());
        let id = endpoint.send(start, to, Bytes::from_static(b"a")).unwrap();
        let mut buf = Vec::new();
        let mut sent = Vec::new();
        let mut now = start;
        let mut failed = None;
        for _ in 0..2_000 {
            // As if the peer had moved again and again: attempts keep
            // being given back.
            if let Some(message) = endpoint.messages.get_mut(&id) {
                message.move_credit = message.move_credit.saturating_add(1);
            }
            while endpoint.poll_transmit(now, 1, &mut buf).is_some() {
                sent.push(now);
            }
            while let Some(event) = endpoint.poll_event() {
                if let crate::Event::Failed { reason, .. } = event {
                    failed = Some(reason);
                }
            }
            if failed.is_some() {
                break;
            }
            now += std::time::Duration::from_millis(1);
            endpoint.handle_timeout(now);
        }
        assert!(
            sent.len() > 4,
            "attempts were given back: {} sends",
            sent.len()
        );
        let last = *sent.last().unwrap();
        assert!(
            last < start + span,
            "sent {:?} after the first send, span {span:?}",
            last - start
        );
        assert_eq!(failed, Some(crate::FailureReason::AttemptsExhausted));
    }

    /// A message's slot is three cache lines, aligned to them: every
    /// message touches its record at its send, at each transmission and at
    /// its resolution, so a field that grows it (an `Option<Instant>` where
    /// nanoseconds from the epoch do) costs every message a fourth line.
    #[test]
    fn a_message_slot_is_three_cache_lines() {
        assert!(std::mem::size_of::<super::Slot>() <= 3 * 64);
        assert_eq!(std::mem::align_of::<super::Slot>(), 64);
    }
}
