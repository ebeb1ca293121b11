//! The sending side: messages from `send` until Delivered or Failed.
//!
//! A message waits in its peer's queue until the congestion window and the
//! pacer let it into flight; it is then sent and resent (see
//! [`recovery`](super::recovery)) until a RECV from its destination proves
//! delivery, its attempts run out, its deadline passes, or it is cancelled.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::peer_tracking::Countdown;
use super::recv_copies::LastConfirmed;
use super::spurious::ResolvedResend;
use super::{Endpoint, State};
use crate::config::SendOptions;
use crate::congestion::{Delivery, SendSnapshot};
use crate::error::{SendError, SendErrorKind};
use crate::event::{Event, FailureReason, MessageId};
use crate::loss::{Liveness, Sent};
use crate::timer::TimerKey;
use crate::wire::Identity;

/// How far back a RECV naming one of our own identities is taken for a late
/// copy rather than a validation probe: about a million messages, so a probe
/// is mistaken for one with odds 1 in 4,096 (it then waits for the RTO).
const RECENT_IDENTITIES: u32 = 1 << 20;

/// Why a message's latest transmission was ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cause {
    /// Its first transmission.
    First,
    /// Presumed lost: a later message was confirmed and the reordering
    /// window passed.
    Early,
    /// A tail-loss probe.
    Probe,
    /// The receiver answered with a validation probe instead of a RECV
    /// (see `Endpoint::on_unknown_recv`).
    Deferred,
    /// Its retransmission timeout.
    Timeout,
}

/// Whether `peer` is validated with nothing held for its proof: a RECV
/// from it has nothing to release (see `Endpoint::on_validated`).
fn is_proven(peer: &mut super::peer::Peer) -> bool {
    peer.stats.validated && peer.held.is_empty() && peer.held_data.is_empty()
}

/// No instant, in a message's nanosecond fields (`deadline_ns`,
/// `timer_ns`): 584 years from the epoch.
pub(super) const NO_TIME: u64 = u64::MAX;

/// One message accepted by `send` and not yet resolved.
///
/// Its instants are nanoseconds from the endpoint's epoch (see
/// `Endpoint::nanos`) rather than `Option<Instant>`s, half the size, so the
/// record every message touches at its send, its transmissions and its
/// resolution takes fewer cache lines.
#[derive(Debug)]
pub(super) struct Message {
    pub(super) destination: SocketAddr,
    pub(super) identity: Identity,
    pub(super) payload: Bytes,
    /// Its deadline in nanoseconds from the endpoint's epoch (see
    /// `Endpoint::nanos`), or [`NO_TIME`] for none.
    pub(super) deadline_ns: u64,
    pub(super) max_attempts: u32,
    pub(super) transmissions: u32,
    /// Its latest transmission in nanoseconds from the endpoint's epoch,
    /// once `transmissions` is 1 or more: for the round trip and the
    /// delivery sample.
    pub(super) last_sent_ns: u64,
    /// The end of its retry span, once sent (nanoseconds from the epoch):
    /// its first transmission plus [`Config::max_retry_span`]. It is never
    /// sent again from then on, whatever attempts it has left (a peer that
    /// moved gives some back): the receiver remembers an identity whose
    /// ACK never came for `remember_window`, which covers that span from
    /// the first transmission, and no longer.
    ///
    /// [`Config::max_retry_span`]: crate::Config::max_retry_span
    pub(super) resend_until_ns: u64,
    /// The transmission before the last, likewise, once `transmissions` is
    /// 2 or more.
    pub(super) previous_sent_ns: u64,
    /// Times resent because a validation probe came instead of its RECV
    /// (at most `MAX_RESENDS_FOR_PROBES`, so a forger sending RECVs cannot
    /// use up its attempts).
    pub(super) resent_for_probe: u8,
    /// Times its peer moved while it was unconfirmed, with the roaming
    /// extension (see `Endpoint::retarget_messages`): each gives back the
    /// attempts spent at the old address, `MAX_MOVE_CREDITS` times at most.
    pub(super) moves: u8,
    /// The attempts given back so (saturating: fewer given back is only
    /// sooner a failure, and a `u16` keeps the record on three cache
    /// lines).
    pub(super) move_credit: u16,
    /// Position of its latest transmission in the peer's send order.
    pub(super) send_seq: u64,
    /// Why its latest transmission (or the pending one) was ordered.
    pub(super) cause: Cause,
    /// Resent at least once as presumed lost (`Early`, `Probe` or
    /// `Timeout`), for [`Event::Delivered`]'s `suspected_lost`.
    pub(super) suspected_lost: bool,
    /// The peer's delivery counters at its latest transmission.
    pub(super) snapshot: Option<SendSnapshot>,
    /// Past the window: it waits in the peer's queue while false.
    pub(super) in_flight: bool,
    /// A DATA order for it waits in the output queue.
    pub(super) transmit_pending: bool,
    /// The instant its live `TimerKey::Message` entry is set for, in
    /// nanoseconds from the endpoint's epoch ([`NO_TIME`] for none): its
    /// deadline, or the retry of a transmission the budget held back.
    pub(super) timer_ns: u64,
    /// Transmissions held back by the anti-amplification budget of an
    /// unvalidated destination; the last one is waiting for its timer.
    pub(super) held: u32,
    pub(super) waiting_for_budget: bool,
    /// Sent only once the destination is validated
    /// ([`SendOptions::only_once_validated`](crate::SendOptions)).
    pub(super) only_once_validated: bool,
    /// Held for an unvalidated peer since evicted (see `Endpoint::parked`).
    pub(super) parked: bool,
    /// The large message this is a fragment of (see `large`): its outcome
    /// goes there, not to the application. Read through
    /// [`fragment_of`](Self::fragment_of): kept as two fields, so that the
    /// slot packs with the other small fields.
    fragment_of_serial: Option<std::num::NonZeroU64>,
    fragment_of_slot: u32,
    /// A path MTU probe (see `path_mtu`): sent once, never resent, its
    /// outcome goes to the peer's discovery.
    pub(super) probe: bool,
}

impl Message {
    /// A message to `destination` under `identity`, not yet sent: the
    /// fields every message starts with.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(super) fn new(
        destination: SocketAddr,
        identity: Identity,
        payload: Bytes,
        deadline_ns: u64,
        max_attempts: u32,
        only_once_validated: bool,
        fragment_of: Option<MessageId>,
        probe: bool,
    ) -> Self {
        let (fragment_of_serial, fragment_of_slot) = match fragment_of {
            Some(large) => (
                std::num::NonZeroU64::new(large.serial.wrapping_add(1)),
                large.slot,
            ),
            None => (None, 0),
        };
        Self {
            destination,
            identity,
            payload,
            deadline_ns,
            max_attempts,
            transmissions: 0,
            last_sent_ns: 0,
            resend_until_ns: 0,
            previous_sent_ns: 0,
            send_seq: 0,
            cause: Cause::First,
            suspected_lost: false,
            resent_for_probe: 0,
            moves: 0,
            move_credit: 0,
            snapshot: None,
            in_flight: false,
            transmit_pending: false,
            timer_ns: deadline_ns,
            held: 0,
            waiting_for_budget: false,
            only_once_validated,
            parked: false,
            fragment_of_serial,
            fragment_of_slot,
            probe,
        }
    }

    /// The large message this is a fragment of.
    #[inline]
    pub(super) fn fragment_of(&self) -> Option<MessageId> {
        self.fragment_of_serial.map(|serial| MessageId {
            serial: serial.get().wrapping_sub(1),
            slot: self.fragment_of_slot,
        })
    }

    /// Whether it is a fragment of a large message.
    #[inline]
    pub(super) fn is_fragment(&self) -> bool {
        self.fragment_of_serial.is_some()
    }
    /// Holds the message back (for its destination's budget or proof) for
    /// `wait` from `now`, or until its deadline if sooner: the instant its
    /// timer is set for.
    /// (All in nanoseconds from the endpoint's epoch.)
    pub(super) fn hold_for(&mut self, now_ns: u64, wait: Duration) -> u64 {
        let wait_ns = u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX);
        let at_ns = self.deadline_ns.min(now_ns.saturating_add(wait_ns));
        self.waiting_for_budget = true;
        self.held += 1;
        self.timer_ns = at_ns;
        at_ns
    }

    /// Ends a hold: the message's timer is its deadline again, if any
    /// (returned in nanoseconds from the epoch, to arm).
    pub(super) fn end_hold(&mut self) -> Option<u64> {
        self.waiting_for_budget = false;
        self.timer_ns = self.deadline_ns;
        (self.deadline_ns != NO_TIME).then_some(self.deadline_ns)
    }

    /// Whether its live timer entry is the one set for `at_ns`.
    pub(super) fn timer_is(&self, at_ns: u64) -> bool {
        self.timer_ns != NO_TIME && self.timer_ns == at_ns
    }

    /// Whether it was sent and its retry span has ended at `now_ns`: it
    /// must not be sent again (see `resend_until_ns`).
    #[inline]
    pub(super) fn retry_span_over(&self, now_ns: u64) -> bool {
        self.transmissions > 0 && now_ns >= self.resend_until_ns
    }

    /// Transmissions that count as attempts, for its RTO's backoff and
    /// against `max_attempts`: a resend on a validation probe answers the
    /// receiver, not a silence, so it neither lengthens the wait nor uses
    /// up an attempt.
    #[inline]
    pub(super) fn attempts_used(&self) -> u32 {
        self.transmissions
            .saturating_sub(u32::from(self.resent_for_probe))
            .saturating_sub(u32::from(self.move_credit))
            .max(1)
    }

    /// Whether the send-order entry `sent` is this message's latest
    /// transmission, still unconfirmed (and whether it has attempts left).
    #[inline]
    pub(super) fn liveness(&self, sent: &Sent) -> Liveness {
        if self.transmit_pending
            || self.waiting_for_budget
            || self.send_seq != sent.seq
            || self.transmissions == 0
        {
            Liveness::Stale
        } else if self.attempts_used() >= self.max_attempts {
            Liveness::LastAttempt
        } else {
            Liveness::Live
        }
    }
}

impl Endpoint {
    #[inline(always)]
    pub(super) fn accept_message(
        &mut self,
        now: Instant,
        destination: SocketAddr,
        payload: Bytes,
        options: SendOptions,
        fragment_of: Option<MessageId>,
    ) -> Result<MessageId, SendError> {
        let refuse = |kind, payload| Err(SendError::new(kind, payload));
        if self.state != State::Open {
            return refuse(SendErrorKind::Closing, payload);
        }
        let max_payload = self.config.max_payload_size();
        if payload.len() > max_payload {
            let kind = SendErrorKind::PayloadTooLarge {
                size: payload.len(),
                max: self.config.max_message_size(),
            };
            return refuse(kind, payload);
        }
        let max_attempts = options.max_attempts.unwrap_or(self.config.max_attempts);
        if max_attempts == 0 || max_attempts > self.config.max_attempts {
            let kind = SendErrorKind::InvalidAttempts {
                requested: max_attempts,
                max: self.config.max_attempts,
            };
            return refuse(kind, payload);
        }
        if options.deadline.is_some_and(|deadline| deadline <= now) {
            return refuse(SendErrorKind::DeadlineInPast, payload);
        }
        if self.outstanding >= self.config.limits.max_outstanding_messages {
            return refuse(SendErrorKind::TooManyOutstanding, payload);
        }
        let max_queued = self.config.limits.max_queued_per_peer;
        // A reply that must wait for its destination's proof, to an address
        // we heard from but no longer track (evicted since its message
        // came), makes it an unvalidated peer again, not one we chose to
        // reach: nothing is sent to it until it proves itself.
        let parked = self
            .parked
            .get(&destination)
            .map_or(0, |parked| parked.ids.len());
        let unproven = parked > 0;
        let inbound = options.only_once_validated && unproven;
        if !self.ensure_peer(now, destination, inbound) {
            return refuse(SendErrorKind::TooManyPeers, payload);
        }
        let Some(id) = self.messages.vacant_id(self.next_message_id) else {
            return refuse(SendErrorKind::TooManyOutstanding, payload);
        };
        let Some(peer) = self.peers.get_mut(&destination) else {
            return refuse(SendErrorKind::TooManyPeers, payload);
        };
        // Refused as too large on this path lately (its peer remembers a
        // refusal it is at least as large as): it fails at once.
        let size = self.config.framing.header_len() + payload.len();
        let too_large = peer
            .too_large
            .and_then(|refused| refused.refuses(now, size));
        // Only messages the window or pacer holds back count against the
        // queue bound, and those parked for the address, which join the
        // queue when it proves itself.
        if peer.queue.len() + parked >= max_queued {
            return refuse(SendErrorKind::PeerQueueFull, payload);
        }

        self.next_message_id += 1;
        peer.idle_deadline = None;
        // Nothing waits ahead of it (the usual case for a sender that keeps
        // up): released into flight here, as `release` would release it,
        // without a trip through the queue. Otherwise it joins the queue and
        // `release` below takes it in turn.
        let direct = too_large.is_none()
            && peer.resends.is_empty()
            && peer.queue.is_empty()
            && self.large_sends.is_empty();
        let released = direct && release_first(peer, now);
        if !released {
            peer.queue.push_back(id);
        }
        // The permutation repeats only after 2^32 messages; skip any identity
        // still in use after such a wrap. (One hash of the identity, to test
        // and to insert.)
        let identity = loop {
            let identity = self.identities.next_identity();
            if let hashbrown::hash_map::Entry::Vacant(vacant) = self.by_identity.entry(identity) {
                vacant.insert(id);
                break identity;
            }
        };
        if let Some(deadline) = options.deadline {
            self.timers.push(deadline, TimerKey::Message(id));
        }
        let deadline_ns = match options.deadline {
            Some(deadline) => self.nanos(deadline),
            None => NO_TIME,
        };
        let mut message = Message::new(
            destination,
            identity,
            payload,
            deadline_ns,
            max_attempts,
            options.only_once_validated,
            fragment_of,
            false,
        );
        message.in_flight = released;
        message.transmit_pending = released;
        self.messages.insert(id, message);
        self.outstanding += 1;
        if let Some(reason) = too_large {
            self.resolve(now, id, Err(reason));
            return Ok(id);
        }
        match released {
            true => self.output.push_data(id),
            // Queued behind others, or held by the window or the pacer
            // (then `release` finds it so again: nothing changed since).
            false if !direct => self.release(now, destination),
            false => {}
        }
        self.arm_after_release(now, destination);
        Ok(id)
    }

    /// A RECV from `source`: the proof of delivery when it names a message
    /// sent to `source`. Every RECV is answered with ACK, since our earlier
    /// ACK may have been lost.
    pub(super) fn on_recv(
        &mut self,
        now: Instant,
        source: SocketAddr,
        identity: Identity,
        size: usize,
    ) {
        self.note_inbound(source, crate::wire::PacketKind::Recv, size);
        // One hash of the identity: the entry found is removed through it
        // when the RECV confirms its message.
        let across_ports = self.config.recognise_copies_across_ports;
        match self.by_identity.entry(identity) {
            hashbrown::hash_map::Entry::Occupied(entry) => {
                let id = *entry.get();
                // With the roaming extension, the peer may answer from where
                // it moved to, carrying the token it proved.
                let (peers, token) = (&self.peers, self.arrival_token);
                // (From another port of its host too: the peer moves there.)
                let moved = token.is_some()
                    && self.messages.get(&id).is_some_and(|message| {
                        message.destination != source
                            && super::roaming::answers_by_token(peers, token, &message.destination)
                    });
                match self.messages.get(&id) {
                    Some(message)
                        if !moved && !answers_for(across_ports, message.destination, source) =>
                    {
                        // Not from where the message went: not its receipt.
                        // No ACK either: it would tell the sender of this
                        // RECV that we stopped resending, and we have not.
                        self.stats.dropped.recv_wrong_source += 1;
                        return;
                    }
                    // Any message of ours that went out, in flight or parked
                    // (its unproven peer evicted since): the RECV proves its
                    // delivery, and our ACK will tell the receiver we stopped
                    // resending it, so we must.
                    Some(message) if message.transmissions > 0 => {
                        let peer = message.destination;
                        // Nothing below looks the identity up before the
                        // message is resolved, which would remove it.
                        entry.remove();
                        // As `on_validated`, with one look-up of the peer.
                        let proven = match self.peers.get_mut(&peer) {
                            Some(tracked) => self.parked.is_empty() && is_proven(tracked),
                            None => {
                                // Proven by this RECV: tracked again, as
                                // validated.
                                self.ensure_peer(now, peer, false);
                                false
                            }
                        };
                        if !proven {
                            self.validate_peer(now, peer);
                        }
                        self.resolve_identity_removed(now, id, Ok(()));
                        self.after_confirmation(now, peer);
                        match moved {
                            false => self.on_token_proven(now, peer),
                            true => self.probe_new_address(now, source, size),
                        }
                    }
                    _ => self.stats.dropped.recv_unknown += 1,
                }
            }
            hashbrown::hash_map::Entry::Vacant(_) => {
                if self.is_recv_copy(now, source, identity) {
                    self.stats.recv_copies_received += 1;
                    return;
                }
                self.stats.dropped.recv_unknown += 1;
                // The ACK first, so the resent DATA finds us validated.
                self.queue_ack(source, identity);
                // This RECV's copy, if one follows, needs no ACK of its own.
                if let Some(peer) = self.peers.get_mut(&source) {
                    peer.last_confirmed = Some(LastConfirmed { identity, at: now });
                }
                if self.identities.issued_recently(identity, RECENT_IDENTITIES) {
                    self.on_late_recv(now, source, identity);
                } else {
                    self.on_unknown_recv(now, source);
                }
                return;
            }
        }
        self.queue_ack(source, identity);
    }

    /// Whether a RECV naming none of our messages is the copy of the RECV
    /// that just confirmed one (see [`super::recv_copies`]): no ACK, and no
    /// evidence of a spurious retransmission.
    fn is_recv_copy(&self, now: Instant, source: SocketAddr, identity: Identity) -> bool {
        self.peers
            .get(&source)
            .is_some_and(|peer| match (peer.last_confirmed, peer.rtt.min()) {
                (Some(last), Some(min_rtt)) => last.is_copy(identity, now, min_rtt),
                _ => false,
            })
    }

    /// A RECV for a message of ours already resolved: when the message was
    /// resent and both copies came back in plausible time, the resend was
    /// spurious (see [`super::spurious`]).
    fn on_late_recv(&mut self, now: Instant, source: SocketAddr, identity: Identity) {
        let epoch = self.epoch;
        let Some(peer) = self.peers.get_mut(&source) else {
            return;
        };
        let Some(resend) = peer.resolved_resends.take(identity) else {
            return;
        };
        // A RECV the receiver resent on its timer comes two smoothed RTTs
        // and a round trip after the copy it answers at the soonest: after
        // the copy before the last only if that was the first.
        let plausible = if resend.twice {
            peer.rtt.plausible()
        } else {
            peer.rtt.rto()
        };
        if !resend.both_copies_arrived(now, plausible) {
            return;
        }
        self.stats.spurious_retransmissions += 1;
        peer.stats.spurious_retransmissions += 1;
        let first_copy_rtt = resend
            .confirmed
            .saturating_duration_since(resend.previous_sent);
        // Both copies came back: the first RECV answered the first copy,
        // an RTT sample Karn's rule had to drop (see `resolve`).
        peer.rtt.on_sample(first_copy_rtt);
        if resend.early {
            let rto = peer.rtt.min_rto();
            peer.rack.on_late_copy(first_copy_rtt, rto);
        }
        peer.congestion
            .on_spurious(super::nanos_since(epoch, resend.previous_sent));
        // A shorter RTO or probe timeout, a wider window.
        peer.send_deadline_moved = true;
    }

    /// `address` proved it receives our datagrams: mark it, send at once the
    /// messages held back for it (by its budget, or until it was
    /// validated), and take the DATA held from it.
    #[inline(always)]
    pub(super) fn on_validated(&mut self, now: Instant, address: SocketAddr) {
        // Every RECV from a proven peer comes here: nothing to do.
        if self.parked.is_empty() && self.peers.get_mut(&address).is_some_and(is_proven) {
            return;
        }
        self.validate_peer(now, address);
    }

    /// [`on_validated`](Self::on_validated) past its common case.
    #[inline(never)]
    fn validate_peer(&mut self, now: Instant, address: SocketAddr) {
        let parked = !self.parked.is_empty();
        let Some(peer) = self.peers.get_mut(&address) else {
            return;
        };
        if peer.stats.validated && peer.held.is_empty() && peer.held_data.is_empty() && !parked {
            // Every RECV from a proven peer comes here: nothing to do.
            return;
        }
        if peer.is_unvalidated() {
            self.unvalidated_count -= 1;
        }
        // Messages queued for its window and pacer.
        peer.send_deadline_moved = true;
        peer.validate();
        let held = std::mem::take(&mut peer.held);
        // Held while the address was evicted: back into its window.
        if let Some(parked) = self.parked.remove(&address) {
            for id in parked.ids {
                if let Some(message) = self.messages.get_mut(&id) {
                    message.parked = false;
                    if let Some(deadline) = message
                        .end_hold()
                        .and_then(|ns| super::instant_at(self.epoch, ns))
                    {
                        self.timers.push(deadline, TimerKey::Message(id));
                    }
                    peer.queue.push_back(id);
                }
            }
            self.release(now, address);
        }
        for id in held {
            let Some(message) = self.messages.get_mut(&id) else {
                continue;
            };
            message.transmit_pending = true;
            if let Some(deadline) = message
                .end_hold()
                .and_then(|ns| super::instant_at(self.epoch, ns))
            {
                self.timers.push(deadline, TimerKey::Message(id));
            }
            self.output.push_data(id);
        }
        // What it sent while unproven is taken now.
        self.take_held_data(now, address);
        // A gtUDP peer that has proven its address: its path may be probed
        // (once per peer, here rather than on every RECV).
        if self.config.large_messages.as_ref().is_some_and(|l| l.pmtud) {
            self.start_path_mtu(now, address);
        }
    }

    /// A message's timer fired: its deadline, or the retry of a
    /// transmission the budget held back. (Retransmissions are the
    /// peer's send-side timer's, see `recovery`.)
    pub(super) fn on_message_timer(&mut self, now: Instant, at: Instant, id: MessageId) {
        let (now_ns, at_ns) = (self.nanos(now), self.nanos(at));
        let Some(message) = self.messages.get_mut(&id) else {
            return;
        };
        if !message.timer_is(at_ns) {
            return;
        }
        message.timer_ns = NO_TIME;
        let destination = message.destination;
        if message.deadline_ns != NO_TIME && now_ns >= message.deadline_ns {
            self.resolve(now, id, Err(FailureReason::DeadlineExpired));
            self.arm_sender_timer(now, destination);
            return;
        }
        if !message.waiting_for_budget {
            return;
        }
        // Held back by the budget: try again (the destination may have
        // proven itself meanwhile), or give up after a few holds. This is
        // no loss, so no backoff and no congestion response. A message whose
        // peer was evicted meanwhile is never sent to the untracked address.
        if message.parked {
            self.resolve(now, id, Err(FailureReason::Unvalidated));
            return;
        }
        let deadline = message
            .end_hold()
            .and_then(|ns| super::instant_at(self.epoch, ns));
        if let Some(peer) = self.peers.get_mut(&destination) {
            peer.held.retain(|held| *held != id);
        }
        if message.held > self.config.unvalidated_attempts {
            self.resolve(now, id, Err(FailureReason::Unvalidated));
            self.arm_sender_timer(now, destination);
        } else {
            message.transmit_pending = true;
            if let Some(deadline) = deadline {
                self.timers.push(deadline, TimerKey::Message(id));
            }
            self.output.push_data(id);
        }
    }

    /// Ends a message: removes it, emits its one outcome event, and lets the
    /// next queued message into the window.
    pub(super) fn resolve(
        &mut self,
        now: Instant,
        id: MessageId,
        outcome: Result<(), FailureReason>,
    ) {
        self.resolve_with(now, id, outcome, true);
    }

    /// As [`resolve`](Self::resolve), for a message whose identity the
    /// caller already removed from `by_identity`.
    fn resolve_identity_removed(
        &mut self,
        now: Instant,
        id: MessageId,
        outcome: Result<(), FailureReason>,
    ) {
        self.resolve_with(now, id, outcome, false);
    }

    fn resolve_with(
        &mut self,
        now: Instant,
        id: MessageId,
        outcome: Result<(), FailureReason>,
        remove_identity: bool,
    ) {
        // Read in place, and dropped in place below: moving a message out
        // of its slot costs more than the rest of the slab's work.
        let now_ns = self.nanos(now);
        let Some(message) = self.messages.get(&id) else {
            return;
        };
        if remove_identity {
            self.by_identity.remove(&message.identity);
        }
        let destination = message.destination;
        // Kept for the release after the outcome (`release_and_note_idle`
        // without a second look-up); `None` for a parked message.
        let mut tracked = None;
        if message.parked {
            if let Some(parked) = self.parked.get_mut(&destination) {
                parked.ids.retain(|parked| *parked != id);
                if parked.ids.is_empty() {
                    self.parked.remove(&destination);
                }
            }
        } else if let Some(peer) = self.peers.get_mut(&destination) {
            // The oldest message in flight may now be one with a shorter
            // timeout, and the window has room for what is queued.
            peer.send_deadline_moved = true;
            if message.waiting_for_budget {
                peer.held.retain(|held| *held != id);
            }
            if message.in_flight {
                peer.in_flight -= 1;
                if peer.in_flight == 0 {
                    // Every entry left is stale.
                    peer.order.clear();
                }
            } else if let Some(position) = peer.queue.iter().position(|queued| *queued == id) {
                peer.queue.remove(position);
            }
            match (outcome, message.transmissions > 0) {
                // A path MTU probe's RECV says the path carries its size,
                // not that the receiver takes data (it answers probes
                // without taking anything; see `path_mtu`).
                (Ok(()), true) if message.probe => {
                    // The path carried it: an RTT sample (that ends no
                    // backoff) and a delivery for the controller, but no
                    // early detection of the DATA sent before it.
                    let elapsed = now_ns.saturating_sub(message.last_sent_ns);
                    peer.rtt.on_sample_ns(elapsed);
                    let sample = message.snapshot.as_ref().and_then(|snapshot| {
                        let min_rtt = peer.rtt.min_ns().unwrap_or_default();
                        peer.delivery
                            .on_delivered(now_ns, message.last_sent_ns, snapshot, min_rtt)
                    });
                    peer.congestion.on_delivered(&Delivery {
                        sent_at: message.last_sent_ns,
                        now: now_ns,
                        rtt: Some(elapsed),
                        sample,
                        delivered: peer.delivery.delivered(),
                        in_flight: peer.in_flight,
                    });
                }
                (Ok(()), true) => {
                    peer.stats.delivered += 1;
                    peer.last_confirmed = Some(LastConfirmed {
                        identity: message.identity,
                        at: now,
                    });
                    if let Some(path) = peer.path.as_deref_mut() {
                        let size = self.config.framing.header_len() + message.payload.len();
                        path.mtu.on_data_confirmed(size);
                    }
                    let elapsed_ns = now_ns.saturating_sub(message.last_sent_ns);
                    // A RECV sooner after the retransmission than any round
                    // trip answers an earlier copy: the message was late,
                    // not lost.
                    let spurious = message.transmissions > 1
                        && peer.rtt.min_ns().is_some_and(|min| elapsed_ns < min);
                    if spurious {
                        self.stats.spurious_retransmissions += 1;
                        peer.stats.spurious_retransmissions += 1;
                        // The RECV answered the copy before: its RTT is
                        // exact, and if plausible, tells how late it was
                        // (an implausible one more likely answers a
                        // resent RECV after the first was lost). The
                        // receiver resends a RECV two smoothed RTTs after
                        // the first at the soonest, but that is after the
                        // copy it answers, which is the copy before the
                        // last only when there were two. (Spurious: sent
                        // twice at least, so the copy before the last was
                        // sent.)
                        let plausible = if message.transmissions == 2 {
                            peer.rtt.plausible()
                        } else {
                            peer.rtt.rto()
                        };
                        let rtt =
                            Duration::from_nanos(now_ns.saturating_sub(message.previous_sent_ns));
                        {
                            if rtt <= plausible {
                                peer.rack.on_late_copy(rtt, peer.rtt.min_rto());
                                // An exact sample Karn's rule would drop:
                                // without it, only messages that beat the
                                // window are measured, and the estimate
                                // shrinks to exclude the late ones.
                                peer.rtt.on_sample(rtt);
                            }
                        }
                        // The copy presumed lost: the one before the last.
                        let presumed_lost = message.previous_sent_ns;
                        peer.congestion.on_spurious(presumed_lost);
                    } else {
                        peer.rack.on_confirmed(
                            message.send_seq,
                            elapsed_ns,
                            peer.order.next_seq(),
                            message.transmissions == 1,
                            peer.rtt.min_rto_ns(),
                        );
                        // A second RECV may yet tell that it was late.
                        let resent = message.transmissions > 1
                            && matches!(
                                message.cause,
                                Cause::Early | Cause::Probe | Cause::Timeout
                            );
                        let epoch = self.epoch;
                        let sent = |ns| super::instant_at(epoch, ns);
                        if let Some((previous, last)) = resent
                            .then(|| sent(message.previous_sent_ns).zip(sent(message.last_sent_ns)))
                            .flatten()
                        {
                            peer.resolved_resends.record(ResolvedResend {
                                identity: message.identity,
                                previous_sent: previous,
                                last_sent: last,
                                confirmed: now,
                                early: message.cause == Cause::Early,
                                twice: message.transmissions == 2,
                            });
                        }
                    }
                    // Karn's rule: only a message sent once gives an RTT sample.
                    let rtt = (message.transmissions == 1).then_some(elapsed_ns);
                    if let Some(sample) = rtt {
                        peer.on_rtt_sample_ns(sample, now_ns);
                    }
                    peer.probe_out = false;
                    // What the peer held for its validation measures the
                    // path from the probe on (the estimator, for timeouts,
                    // keeps the longer sample).
                    let rtt = match peer.delivery.held_rtt(message.last_sent_ns, now_ns) {
                        Some(held) => rtt.map(|_| held),
                        None => rtt,
                    };
                    let sample = match (spurious, &message.snapshot) {
                        (false, Some(snapshot)) => peer.delivery.on_delivered(
                            now_ns,
                            message.last_sent_ns,
                            snapshot,
                            peer.rtt.min_ns().unwrap_or_default(),
                        ),
                        _ => None,
                    };
                    let delivery = Delivery {
                        sent_at: message.last_sent_ns,
                        now: now_ns,
                        rtt,
                        sample,
                        delivered: peer.delivery.delivered(),
                        in_flight: peer.in_flight,
                    };
                    // (The rest of a batch read at once moves the mode with
                    // the next instant's first delivery.)
                    peer.congestion.on_delivered(&delivery);
                }
                (Ok(()), false) => peer.stats.delivered += 1,
                (Err(_), _) => peer.stats.failed += u64::from(!message.probe),
            }
            tracked = Some(peer);
        }
        if message.probe {
            let marker = message.payload.len() == crate::wire::FragmentHeader::LEN;
            self.messages.remove(&id);
            self.on_probe_outcome(now, id, destination, marker, outcome);
            self.release_and_note_idle(now, destination);
            return;
        }
        if let Some(large) = message.fragment_of() {
            let suspected_lost = message.suspected_lost;
            // Gone before its large message hears of it: a failure there
            // withdraws the fragments still in `messages`.
            self.messages.remove(&id);
            self.on_fragment_outcome(now, large, outcome, suspected_lost);
            self.release_and_note_idle(now, destination);
            return;
        }
        self.events.push_back(match outcome {
            Ok(()) => {
                self.stats.delivered += 1;
                Event::Delivered {
                    id,
                    to: destination,
                    suspected_lost: message.suspected_lost,
                }
            }
            Err(reason) => {
                self.stats.failed += 1;
                Event::Failed {
                    id,
                    to: destination,
                    reason,
                }
            }
        });
        self.messages.remove(&id);
        let Some(peer) = tracked else {
            // Parked: its address may be tracked again since.
            self.release_and_note_idle(now, destination);
            return;
        };
        let settled = settle_if_nothing_waits(peer, now, self.config.peer_idle_timeout);
        self.finish_settling(now, destination, settled);
    }

    /// [`release`](Self::release), then `note_if_idle`, with one look-up
    /// of the peer when nothing waits (the common case: a resolved
    /// message's peer).
    #[inline]
    fn release_and_note_idle(&mut self, now: Instant, destination: SocketAddr) {
        let Some(peer) = self.peers.get_mut(&destination) else {
            return;
        };
        let settled = settle_if_nothing_waits(peer, now, self.config.peer_idle_timeout);
        self.finish_settling(now, destination, settled);
    }

    /// Acts on what [`settle_if_nothing_waits`] found for the peer at
    /// `destination`: starts its idle countdown, or nothing, or (something
    /// waits) releases and notes it if idle.
    #[inline]
    fn finish_settling(
        &mut self,
        now: Instant,
        destination: SocketAddr,
        settled: Option<Option<Countdown>>,
    ) {
        match settled {
            Some(Some(countdown)) => self.start_idle_countdown(destination, countdown),
            Some(None) => {}
            None => {
                self.release_queued(now, destination);
                self.note_if_idle(now, destination);
            }
        }
    }

    /// Moves queued messages into flight while the peer's window has room
    /// and its pacer allows.
    #[inline]
    pub(super) fn release(&mut self, now: Instant, destination: SocketAddr) {
        let Some(peer) = self.peers.get_mut(&destination) else {
            return;
        };
        // Nothing waits (a RECV that opened the window, a peer that keeps
        // up): the window is open to the application's next message.
        if peer.resends.is_empty() && peer.queue.is_empty() {
            if peer.has_window() {
                peer.delivery.on_app_limited(peer.in_flight);
            }
            return;
        }
        self.release_queued(now, destination);
    }

    /// [`release`](Self::release) with resends or messages waiting.
    #[inline(never)]
    fn release_queued(&mut self, now: Instant, destination: SocketAddr) {
        let Some(peer) = self.peers.get_mut(&destination) else {
            return;
        };
        let interval = peer.congestion.pacing_interval();
        while let Some(&id) = peer.resends.front() {
            let pending = self
                .messages
                .get(&id)
                .is_some_and(|message| message.transmit_pending);
            if pending {
                if let Some(interval) = interval {
                    if peer.pacer.try_release(now, interval).is_err() {
                        // New messages wait behind the resends.
                        return;
                    }
                }
                self.output.push_data(id);
            }
            peer.resends.pop_front();
        }
        while peer.has_window() {
            let Some(&id) = peer.queue.front() else {
                peer.delivery.on_app_limited(peer.in_flight);
                break;
            };
            if !self.large_sends.is_empty() {
                let large = self
                    .messages
                    .get(&id)
                    .and_then(|message| message.fragment_of());
                let budget = self.config.limits.max_reassembly_bytes_per_peer;
                if !super::large::may_release(peer, &mut self.large_sends, large, budget) {
                    break;
                }
            }
            if let Some(interval) = interval {
                if peer.pacer.try_release(now, interval).is_err() {
                    break;
                }
            }
            peer.queue.pop_front();
            if let Some(message) = self.messages.get_mut(&id) {
                peer.in_flight += 1;
                message.in_flight = true;
                message.transmit_pending = true;
                self.output.push_data(id);
            }
        }
    }
}

/// The half of `release_and_note_idle` that needs only the peer: when
/// nothing waits to be released (no resend, no queued message), marks the
/// delivery rate app-limited if the window has room, and gives
/// `Some` of the idle countdown to start, if any; `None` when something
/// waits (`release_queued` and `note_if_idle` are then due).
#[inline(always)]
fn settle_if_nothing_waits(
    peer: &mut super::peer::Peer,
    now: Instant,
    idle_timeout: Duration,
) -> Option<Option<Countdown>> {
    if !(peer.resends.is_empty() && peer.queue.is_empty()) {
        return None;
    }
    if peer.has_window() {
        peer.delivery.on_app_limited(peer.in_flight);
    }
    Some(super::peer_tracking::idle_from(peer, now, idle_timeout))
}

/// Releases into flight a new message that nothing waits ahead of (no
/// resend, nothing queued, no large message on its way out), if the
/// peer's window and pacer allow: the same steps, in the same order, as
/// [`Endpoint::release`] taking it from the front of the queue. Returns
/// whether it went (the caller marks the message and orders its DATA).
#[inline(always)]
fn release_first(peer: &mut super::peer::Peer, now: Instant) -> bool {
    if !peer.has_window() {
        return false;
    }
    if let Some(interval) = peer.congestion.pacing_interval() {
        if peer.pacer.try_release(now, interval).is_err() {
            return false;
        }
    }
    peer.in_flight += 1;
    // The queue is empty behind it: the window, if still open, waits for
    // the application.
    if peer.has_window() {
        peer.delivery.on_app_limited(peer.in_flight);
    }
    true
}

/// Whether a RECV from `source` can confirm a message sent to
/// `destination`: it comes from there, or, when copies are recognised
/// across ports, from another port of that host (a NAT moved the
/// receiver: [`Config::recognise_copies_across_ports`](crate::Config::recognise_copies_across_ports)).
#[inline]
fn answers_for(across_ports: bool, destination: SocketAddr, source: SocketAddr) -> bool {
    // The receiving side's rule for one sender, applied to one receiver
    // (`sender_key` of both compared, without building the keys: a host's
    // key is its IP address with port 0).
    match across_ports {
        true => destination.ip() == source.ip(),
        false => destination == source,
    }
}
