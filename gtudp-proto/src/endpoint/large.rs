//! Large messages (the extension of [`Config::large_messages`]): split into
//! fragments on the way out, put together on the way in.
//!
//! **Sending.** A message larger than one datagram becomes one internal
//! message per fragment, each with its own identity, RECV, loss detection,
//! pacing and congestion accounting, exactly like a small message: a lost
//! datagram costs one datagram. The application sees one message: one
//! [`MessageId`], and one outcome, `Delivered` once every fragment is
//! confirmed, or `Failed` as soon as one fails (the others are then
//! withdrawn). Every fragment carries the message's deadline: the user's, or
//! `max_lifetime` after `send`, whichever is sooner.
//!
//! **Receiving.** A fragment is recognised as a repeat or taken exactly as a
//! DATA is; when taken, it goes to [`crate::reassembly`] instead of to the
//! application, and its RECV leaves only if the reassembly takes it. The
//! whole message is handed over once, when its last fragment is taken.
//!
//! [`Config::large_messages`]: crate::Config::large_messages

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use super::Endpoint;
use crate::config::SendOptions;
use crate::error::{SendError, SendErrorKind};
use crate::event::{Event, FailureReason, MessageId};
use crate::reassembly::{Budget, Refusal, Taken};
use crate::wire::FragmentHeader;

/// A large message on its way out.
#[derive(Debug)]
pub(super) struct LargeSend {
    destination: SocketAddr,
    /// Its fragments' internal messages, in order.
    fragments: Vec<MessageId>,
    unconfirmed: usize,
    suspected_lost: bool,
    /// One of its fragments was confirmed: the receiver has made room for
    /// it.
    opened: bool,
    /// Its first fragment left the queue (see [`may_release`]).
    started: bool,
    /// Its length in bytes.
    total: usize,
}

/// Whether the queued fragment of `large` (or a whole message, `None`) may
/// go out to `peer` now, given `budget`: the reassembly memory the peer is
/// assumed to give this host (our own `max_reassembly_bytes_per_peer`).
///
/// A receiver short of reassembly memory leaves the fragments of a message
/// it cannot start unanswered; several messages resent against a full
/// budget at once would spend their attempts against each other, and any
/// could starve. Two rules keep a sender within the receiver's room:
///
/// - the large messages out at once (first fragment released, not yet
///   ended) total at most `budget` bytes, or are a single message;
/// - once a message's fragment is resent before any of its fragments was
///   confirmed (the receiver may be out of room: a smaller budget than
///   ours, or other senders of our host), it is the peer's *stalled*
///   message, and no other large message starts until it is confirmed in
///   part or ends.
///
/// Messages wait in the queue meanwhile, spending none of their attempts.
pub(super) fn may_release(
    peer: &mut super::peer::Peer,
    large_sends: &mut super::Map<MessageId, LargeSend>,
    large: Option<MessageId>,
    budget: usize,
) -> bool {
    let Some(send) = large.and_then(|large| large_sends.get_mut(&large)) else {
        return true;
    };
    if send.started {
        return true;
    }
    let fits = peer.large_bytes_out == 0 || peer.large_bytes_out + send.total <= budget;
    if !fits || peer.stalled_large.is_some() {
        return false;
    }
    send.started = true;
    peer.large_bytes_out += send.total;
    true
}

impl Endpoint {
    /// Whether `len` bytes to `destination` need the large-message
    /// extension: more than one datagram to its path carries (see
    /// `path_mtu`; a peer is looked up only for a message above the base
    /// size).
    pub(super) fn needs_fragments(&self, len: usize, destination: SocketAddr) -> bool {
        let Some(large) = &self.config.large_messages else {
            return false;
        };
        let header_len = self.config.framing.header_len();
        if len > self.config.max_payload_size() {
            return true;
        }
        large.pmtud
            && len + header_len > large.pmtud_base
            && len + header_len > self.path_datagram_limit(destination)
    }

    /// Accepts a message larger than one datagram: its fragments are
    /// queued as internal messages, all or none.
    pub(super) fn accept_large_message(
        &mut self,
        now: Instant,
        destination: SocketAddr,
        payload: Bytes,
        options: SendOptions,
    ) -> Result<MessageId, SendError> {
        let refuse = |kind, payload| Err(SendError::new(kind, payload));
        let Some(large) = &self.config.large_messages else {
            return refuse(SendErrorKind::Closing, payload);
        };
        let max = self.config.max_message_size();
        if payload.len() > max {
            let kind = SendErrorKind::PayloadTooLarge {
                size: payload.len(),
                max,
            };
            return refuse(kind, payload);
        }
        let lifetime = large.max_lifetime;
        // Fragments fit the datagrams the path takes now; a message keeps
        // its fragments if that changes later.
        let unit = self
            .path_datagram_limit(destination)
            .saturating_sub(self.config.framing.header_len() + FragmentHeader::LEN)
            .min(usize::from(u16::MAX));
        let count = payload.len().div_ceil(unit);
        let limits = &self.config.limits;
        if self.outstanding + count + 1 > limits.max_outstanding_messages {
            return refuse(SendErrorKind::TooManyOutstanding, payload);
        }
        let queued = self
            .peers
            .get(&destination)
            .map_or(0, |peer| peer.queue.len())
            + self
                .parked
                .get(&destination)
                .map_or(0, |parked| parked.ids.len());
        if queued + count > limits.max_queued_per_peer {
            return refuse(SendErrorKind::PeerQueueFull, payload);
        }
        let deadline = options
            .deadline
            .map_or(now + lifetime, |deadline| deadline.min(now + lifetime));
        let lifetime_ms =
            u32::try_from(deadline.saturating_duration_since(now).as_millis()).unwrap_or(u32::MAX);
        let options = options.with_deadline(deadline);
        // Not in the slab of messages (its fragments are): no slot.
        let id = MessageId {
            serial: self.next_message_id,
            slot: u32::MAX,
        };
        self.next_message_id += 1;
        // The identity generator never repeats within 2^32 draws, so a
        // draw names the message uniquely among ours.
        let number = self.identities.next_identity().to_u32();
        self.large_sends.insert(
            id,
            LargeSend {
                destination,
                fragments: Vec::with_capacity(count),
                unconfirmed: count,
                suspected_lost: false,
                opened: false,
                started: false,
                total: payload.len(),
            },
        );
        self.outstanding += 1;
        let total = payload.len() as u32;
        for (index, bytes) in payload.chunks(unit).enumerate() {
            let header = FragmentHeader {
                message: number,
                total,
                index: index as u32,
                unit: unit as u16,
                lifetime_ms,
            };
            let mut fragment = Vec::with_capacity(FragmentHeader::LEN + bytes.len());
            header.encode(&mut fragment);
            fragment.extend_from_slice(bytes);
            match self.accept_message(now, destination, Bytes::from(fragment), options, Some(id)) {
                Ok(fragment_id) => match self.large_sends.get_mut(&id) {
                    Some(large) => large.fragments.push(fragment_id),
                    // Failed already (refused as too large on this path).
                    None => break,
                },
                Err(error) => {
                    // Not expected after the checks above; withdraw what
                    // was queued and refuse the whole message.
                    self.withdraw_large(now, id);
                    self.outstanding -= 1;
                    return refuse(error.kind(), payload);
                }
            }
        }
        Ok(id)
    }

    /// A fragment's internal message ended: counts it towards its large
    /// message's outcome, which is emitted once.
    pub(super) fn on_fragment_outcome(
        &mut self,
        now: Instant,
        large_id: MessageId,
        outcome: Result<(), FailureReason>,
        suspected_lost: bool,
    ) {
        // The fragment itself never reaches the application.
        self.outstanding -= 1;
        let Some(large) = self.large_sends.get_mut(&large_id) else {
            return;
        };
        match outcome {
            Ok(()) => {
                large.unconfirmed -= 1;
                large.suspected_lost |= suspected_lost;
                let to = large.destination;
                if !large.opened {
                    large.opened = true;
                    self.end_stall(to, large_id);
                }
                let Some(large) = self.large_sends.get(&large_id) else {
                    return;
                };
                if large.unconfirmed > 0 {
                    return;
                }
                let suspected_lost = large.suspected_lost;
                if let Some(done) = self.large_sends.remove(&large_id) {
                    self.end_large(large_id, &done);
                }
                self.stats.delivered += 1;
                self.events.push_back(Event::Delivered {
                    id: large_id,
                    to,
                    suspected_lost,
                });
            }
            Err(reason) => {
                let to = large.destination;
                self.stats.failed += 1;
                self.events.push_back(Event::Failed {
                    id: large_id,
                    to,
                    reason,
                });
                self.withdraw_large(now, large_id);
            }
        }
    }

    /// Forgets the large message `id` and withdraws its fragments still
    /// unresolved (their outcomes are counted for nothing).
    fn withdraw_large(&mut self, now: Instant, id: MessageId) {
        let Some(large) = self.large_sends.remove(&id) else {
            return;
        };
        self.end_large(id, &large);
        for fragment in large.fragments {
            if self.messages.contains_key(&fragment) {
                self.resolve(now, fragment, Err(FailureReason::Cancelled));
            }
        }
    }

    /// `id` is no longer stalled at `destination`: the next large message
    /// may go (the caller's `resolve` releases the queue).
    fn end_stall(&mut self, destination: SocketAddr, id: MessageId) {
        if let Some(peer) = self.peers.get_mut(&destination) {
            if peer.stalled_large == Some(id) {
                peer.stalled_large = None;
            }
        }
    }

    /// A fragment of `large` to `destination` was resent: if none of its
    /// fragments is confirmed yet, the receiver may be out of room, and it
    /// becomes the peer's stalled message (see [`may_release`]).
    pub(super) fn on_fragment_resent(&mut self, destination: SocketAddr, large: MessageId) {
        let opened = self
            .large_sends
            .get(&large)
            .map_or(true, |send| send.opened);
        if let Some(peer) = self.peers.get_mut(&destination) {
            if !opened && peer.stalled_large.is_none() {
                peer.stalled_large = Some(large);
            }
        }
    }

    /// The large message `send` (`id`) ended: it no longer counts among
    /// those out to its destination.
    fn end_large(&mut self, id: MessageId, send: &LargeSend) {
        self.end_stall(send.destination, id);
        if let Some(peer) = self.peers.get_mut(&send.destination) {
            if send.started {
                peer.large_bytes_out = peer.large_bytes_out.saturating_sub(send.total);
            }
        }
    }

    /// Cancels the large message `id`; false if it is not one in flight.
    pub(super) fn cancel_large(&mut self, now: Instant, id: MessageId) -> bool {
        let Some(large) = self.large_sends.get(&id) else {
            return false;
        };
        let live = large
            .fragments
            .iter()
            .copied()
            .find(|fragment| self.messages.contains_key(fragment));
        match live {
            // Its failure fails the large message and withdraws the rest.
            Some(fragment) => self.resolve(now, fragment, Err(FailureReason::Cancelled)),
            None => {
                if let Some(large) = self.large_sends.remove(&id) {
                    self.end_large(id, &large);
                }
                self.outstanding -= 1;
            }
        }
        true
    }

    /// The reassembly's limits, from the configuration.
    fn reassembly_budget(&self) -> Option<Budget> {
        let large = self.config.large_messages.as_ref()?;
        Some(Budget {
            max_message_size: large.max_message_size,
            max_lifetime: large.max_lifetime,
            max_bytes: self.config.limits.max_reassembly_bytes,
            max_bytes_per_sender: self.config.limits.max_reassembly_bytes_per_peer,
            // A sender with our settings resends at least this often.
            patience: self.config.max_rto * 2,
        })
    }

    /// Whether the fragment `payload` from the sender kept under `sender`
    /// (see `Endpoint::arrival_key`) would be taken, counting
    /// a refusal: called before its record and RECV are made.
    pub(super) fn fragment_admissible(
        &mut self,
        now: Instant,
        sender: SocketAddr,
        payload: &[u8],
    ) -> bool {
        let Some(budget) = self.reassembly_budget() else {
            self.stats.dropped.fragment_refused += 1;
            return false;
        };
        match self.reassembly.admit(now, sender, payload, &budget) {
            Ok(()) => true,
            Err(refusal) => {
                self.count_refusal(refusal);
                false
            }
        }
    }

    /// Takes the fragment `payload` (admissible) from `sender`: the whole
    /// message if it completes one.
    pub(super) fn take_fragment(
        &mut self,
        now: Instant,
        sender: SocketAddr,
        payload: &[u8],
    ) -> Option<Bytes> {
        let budget = self.reassembly_budget()?;
        self.stats.fragments_received += 1;
        match self.reassembly.take(now, sender, payload, &budget) {
            Ok(Taken::Complete(whole)) => Some(whole),
            Ok(Taken::Partial) => None,
            Err(refusal) => {
                // `fragment_admissible` said yes a moment ago.
                self.count_refusal(refusal);
                None
            }
        }
    }

    /// Points the large messages on their way to `old` at `new` (a peer
    /// that moved, see `roaming`).
    pub(super) fn retarget_large_sends(&mut self, old: SocketAddr, new: SocketAddr) {
        for large in self.large_sends.values_mut() {
            if large.destination == old {
                large.destination = new;
            }
        }
    }

    fn count_refusal(&mut self, refusal: Refusal) {
        match refusal {
            Refusal::OverBudget => self.stats.dropped.fragment_unanswered_budget += 1,
            Refusal::Malformed | Refusal::OverLimits | Refusal::Inconsistent => {
                self.stats.dropped.fragment_refused += 1
            }
        }
    }

    /// Drops the incomplete large messages whose senders have stopped.
    #[cold]
    #[inline(never)]
    pub(super) fn expire_reassembly(&mut self, now: Instant) {
        self.stats.large_messages_expired += self.reassembly.expire(now) as u64;
    }

    /// Whether `datagram` is a fragment (the extension is on, and its
    /// magic and type are the fragment's).
    pub(super) fn is_fragment(&self, datagram: &[u8]) -> bool {
        let Some(large) = &self.config.large_messages else {
            return false;
        };
        let framing = &self.config.framing;
        datagram.len() >= framing.header_len()
            && datagram.starts_with(framing.magic())
            && datagram[framing.prefix_len()..].starts_with(&large.fragment_type)
    }
}
