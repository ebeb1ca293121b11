//! The receiving side: DATA handed over once, RECV until ACK, and the memory
//! of received identities that suppresses late duplicates.
//!
//! A received message passes through two stores. While its RECV awaits the
//! ACK it has a full [`AwaitingAck`] record with a resend timer; there are
//! about rate × RTT of those. Once the ACK arrives (or RECV attempts run
//! out) only its identity and payload fingerprint are kept, in the compact,
//! timer-free [`RememberedIdentities`](crate::remembered), for the retention
//! its [`Retention`] class gives.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use super::{Endpoint, State};
use crate::event::Event;
use crate::remembered::{Fingerprint, Recall, Retention};
use crate::timer::TimerKey;
use crate::wire::{Identity, PacketKind};

/// One received message whose RECV has not been acknowledged yet.
#[derive(Debug)]
pub(super) struct AwaitingAck {
    pub(super) fingerprint: Fingerprint,
    pub(super) transmissions: u32,
    pub(super) last_sent: Option<Instant>,
    /// The instant its live timer entry is set for (none before the first
    /// RECV is written).
    pub(super) timer: Option<Instant>,
    /// A RECV order for it waits in the output queue.
    pub(super) reply_pending: bool,
}

impl Endpoint {
    pub(super) fn on_data(
        &mut self,
        now: Instant,
        source: SocketAddr,
        identity: Identity,
        payload: Bytes,
        size: usize,
    ) {
        let key = (source, identity);
        let fingerprint = self.remembered_keys.fingerprint(&payload);
        let awaited = self.awaiting.get_mut(&key);
        let replaces_record = awaited.is_some();
        if let Some(record) = awaited.filter(|record| record.fingerprint == fingerprint) {
            // A repeat: answer at once, never hand it over again.
            let reply = !record.reply_pending;
            record.reply_pending = true;
            self.count_duplicate(source, size);
            if reply {
                self.output.push_recv(source, identity);
            }
            self.probe_if_due(now, source);
            return;
        }
        let recall = self.remembered.recall(&source, identity, fingerprint);
        if recall == Recall::Duplicate {
            self.count_duplicate(source, size);
            self.queue_stateless_recv(source, identity);
            return;
        }
        // The same identity as a message still awaited or remembered, with
        // another payload: a new message (typically from a sender that
        // restarted and drew its identities afresh).
        let collision = replaces_record || recall == Recall::Collision;
        if replaces_record {
            // Keep the earlier message's late copies recognisable.
            self.give_up_recv(now, source, identity);
        }
        if self.state != State::Open {
            self.stats.dropped.data_unanswered_closing += 1;
            return;
        }
        if self.receive_paused {
            self.stats.dropped.data_unanswered_paused += 1;
            return;
        }
        // Past `max_unvalidated_peers` a newcomer gets a probe and no state;
        // it is taken once it has proven itself.
        if self.would_be_unvalidated(&source) && !self.admits_unvalidated_peer(now) {
            self.defer_until_validated(source, size);
            return;
        }
        // Refuse before answering: a DATA is never answered and then dropped.
        if !self.make_room_to_receive(now, &source) || !self.ensure_peer(now, source, true) {
            self.stats.dropped.data_unanswered_full += 1;
            return;
        }
        let Some(peer) = self.peers.get(&source) else {
            self.stats.dropped.data_unanswered_full += 1;
            return;
        };
        let max_per_peer = self.awaiting_quota(peer);
        let Some(peer) = self.peers.get_mut(&source) else {
            return;
        };
        if peer.awaiting >= max_per_peer {
            self.stats.dropped.data_unanswered_full += 1;
            return;
        }
        if peer.is_unvalidated() {
            peer.awaiting_identities.push(identity);
        }
        peer.idle_deadline = None;
        peer.stats.received += 1;
        let record = AwaitingAck {
            fingerprint,
            transmissions: 0,
            last_sent: None,
            timer: None,
            reply_pending: true,
        };
        self.awaiting.insert(key, record);
        peer.awaiting += 1;
        if collision {
            self.stats.identity_collisions += 1;
        }
        self.note_inbound(source, PacketKind::Data, size);
        self.output.push_recv(source, identity);
        self.probe_if_due(now, source);
        self.stats.received += 1;
        self.unread += 1;
        self.events.push_back(Event::Received {
            from: source,
            payload,
        });
    }

    /// Whether a new message from `source` fits every receive-side bound
    /// (see [`Self::has_room_to_receive`]), making room in the shared
    /// tables when they are full:
    ///
    /// - for a validated peer, the histories of evicted unvalidated
    ///   addresses are forgotten and then unvalidated peers evicted, as many
    ///   as it takes: traffic from addresses that never answered cannot lock
    ///   a validated peer out;
    /// - for an unvalidated address, the oldest unvalidated peer is evicted,
    ///   one per message: newcomers displace the unproven addresses that
    ///   came before them, so an honest peer arriving in a flood gets its
    ///   RECV and its validation probe, and is validated by its answer
    ///   (see [`crate::validation`]), however fast the flood cycles.
    fn make_room_to_receive(&mut self, now: Instant, source: &SocketAddr) -> bool {
        let validated = self
            .peers
            .get(source)
            .is_some_and(|peer| !peer.is_unvalidated());
        let mut evictions_left = if validated { usize::MAX } else { 1 };
        loop {
            if self.has_room_to_receive(now, source) {
                return true;
            }
            // Evicting others helps only when a shared table is full.
            let limits = &self.config.limits;
            let own_share = match validated {
                true => limits.max_remembered_bytes_per_peer,
                false => limits.max_remembered_bytes_per_unvalidated_peer,
            };
            let own_share_full = self.unread >= limits.max_unread
                || self.remembered.bytes_for(source) + RESERVED_BYTES_PER_AWAITING > own_share
                || self
                    .peers
                    .get(source)
                    .is_some_and(|peer| peer.awaiting >= self.awaiting_quota(peer));
            if own_share_full {
                return false;
            }
            if self.forget_oldest_unvalidated_history(now) {
                continue;
            }
            if evictions_left == 0 || !self.evict_unvalidated_peer(now, None) {
                return false;
            }
            evictions_left -= 1;
        }
    }

    /// Forgets the history of the unvalidated address remembered first,
    /// among those no longer in the peer table that have had the time to
    /// prove themselves: `unvalidated_attempts` initial RTOs since their
    /// history began (an honest peer answers its validation probe within a
    /// round trip, and from then on its history is never forgotten early).
    fn forget_oldest_unvalidated_history(&mut self, now: Instant) -> bool {
        let Some(begun_by) = now.checked_sub(self.config.validation_window()) else {
            return false;
        };
        let peers = &self.peers;
        let forgot = self
            .remembered
            .forget_oldest_unvalidated(begun_by, |address| peers.contains_key(address));
        if forgot {
            self.stats.unvalidated_histories_forgotten += 1;
        }
        forgot
    }

    /// How many of a peer's messages may await their ACK at once.
    fn awaiting_quota(&self, peer: &super::Peer) -> usize {
        match peer.is_unvalidated() {
            true => self.config.limits.max_awaiting_ack_per_unvalidated_peer,
            false => self.config.limits.max_awaiting_ack_per_peer,
        }
    }

    /// Whether a new message from `source` fits every receive-side bound,
    /// including the room its identity will need in the remembered memory
    /// once its exchange ends (reserved for every record awaiting an ACK).
    ///
    /// An address that has not proven it receives our datagrams gets a small
    /// share of the memory; when their shares together are used up, the
    /// oldest unvalidated address's history (among addresses no longer in the
    /// peer table) is forgotten to make room, so a flood from addresses that
    /// never answer cannot lock new peers out.
    fn has_room_to_receive(&mut self, now: Instant, source: &SocketAddr) -> bool {
        let unvalidated = self
            .peers
            .get(source)
            .map_or(true, |peer| peer.is_unvalidated());
        let limits = &self.config.limits;
        if unvalidated {
            let needed = crate::remembered::RememberedIdentities::worst_insert_bytes();
            // At most half the whole memory, whatever the limit says.
            let share = limits
                .max_remembered_bytes_unvalidated
                .min(limits.max_remembered_bytes / 2);
            while self.remembered.unvalidated_bytes() + needed > share
                && self.forget_oldest_unvalidated_history(now)
            {}
        }
        let limits = &self.config.limits;
        let per_peer = match unvalidated {
            true => limits.max_remembered_bytes_per_unvalidated_peer,
            false => limits.max_remembered_bytes_per_peer,
        };
        let reserve = (self.awaiting.len() + 1) * RESERVED_BYTES_PER_AWAITING;
        self.unread < limits.max_unread
            && self.awaiting.len() < limits.max_awaiting_ack
            && self.remembered.bytes() + reserve <= limits.max_remembered_bytes
            && self.remembered.bytes_for(source) + RESERVED_BYTES_PER_AWAITING <= per_peer
    }

    fn count_duplicate(&mut self, source: SocketAddr, size: usize) {
        self.stats.duplicates_suppressed += 1;
        self.note_inbound(source, PacketKind::Data, size);
        if let Some(peer) = self.peers.get_mut(&source) {
            peer.stats.duplicates_suppressed += 1;
        }
    }

    /// Sends `source` a validation probe (see [`crate::validation`]) if it
    /// is an unvalidated peer and none went to it within one retransmission
    /// timeout: a new peer gets one with its first RECV, so an honest one is
    /// validated a round trip after it reaches us.
    pub(super) fn probe_if_due(&mut self, now: Instant, source: SocketAddr) {
        let Some(peer) = self.peers.get_mut(&source) else {
            return;
        };
        if !peer.is_unvalidated()
            || peer
                .probe_sent
                .is_some_and(|sent| now < sent + peer.retransmission_timeout(1))
            || self.output.pending_control >= self.config.limits.max_pending_control
        {
            return;
        }
        peer.probe_sent = Some(now);
        self.stats.validation_probes += 1;
        self.output
            .push_probe(source, self.validation.token(&source));
    }

    /// Answers a new DATA from an address not tracked, when no unvalidated
    /// peer slot is free, with a validation probe alone: nothing is kept and
    /// nothing handed over. An honest sender answers the probe (which
    /// validates it, statelessly) and sends the DATA again, and then it is
    /// taken; a spoofed address costs one header-sized reply per datagram.
    fn defer_until_validated(&mut self, source: SocketAddr, size: usize) {
        self.stats.dropped.data_deferred_unvalidated += 1;
        self.note_inbound(source, PacketKind::Data, size);
        if self.output.pending_control >= self.config.limits.max_pending_control {
            self.stats.dropped.control_overflow += 1;
            return;
        }
        self.stats.validation_probes += 1;
        self.output
            .push_probe(source, self.validation.token(&source));
    }

    /// An ACK naming `source`'s validation token: the address reads our
    /// datagrams. It is validated even if it was evicted since the probe
    /// (tracked again, as validated, if the peer table has room for it).
    fn on_probe_answered(&mut self, now: Instant, source: SocketAddr) {
        let tracked = self.peers.contains_key(&source);
        // Proven: it takes a peer slot, not an unvalidated one.
        if !tracked && !self.ensure_peer(now, source, false) {
            self.stats.dropped.ack_unknown += 1;
            return;
        }
        if tracked
            && !self
                .peers
                .get(&source)
                .is_some_and(|peer| peer.is_unvalidated())
        {
            return;
        }
        self.on_validated(now, source);
        self.stats.validated_by_probe += 1;
    }

    /// Answers a repeat of a message whose exchange is over: one RECV, no
    /// state. Bounded with the other stateless replies.
    fn queue_stateless_recv(&mut self, source: SocketAddr, identity: Identity) {
        if self.output.pending_control >= self.config.limits.max_pending_control {
            self.stats.dropped.control_overflow += 1;
            return;
        }
        self.output.push_recv_again(source, identity);
    }

    pub(super) fn on_ack(
        &mut self,
        now: Instant,
        source: SocketAddr,
        identity: Identity,
        size: usize,
    ) {
        self.note_inbound(source, PacketKind::Ack, size);
        let Some(record) = self.awaiting.remove(&(source, identity)) else {
            if self.validation.verify(&source, identity) {
                self.on_probe_answered(now, source);
            } else {
                self.stats.dropped.ack_unknown += 1;
            }
            return;
        };
        let sample = match (record.transmissions, record.last_sent) {
            (1, Some(sent)) => Some(now.saturating_duration_since(sent)),
            _ => None,
        };
        // This ACK validates nothing: the identity it names was chosen by
        // the DATA's sender, so whoever forged the DATA can forge it too.
        if let (Some(peer), Some(sample)) = (self.peers.get_mut(&source), sample) {
            peer.on_rtt_sample(sample);
        }
        self.remember(
            now,
            source,
            identity,
            record.fingerprint,
            Retention::Lifetime,
        );
        self.note_if_idle(now, source);
    }

    pub(super) fn on_received_timer(
        &mut self,
        now: Instant,
        at: Instant,
        source: SocketAddr,
        identity: Identity,
    ) {
        let key = (source, identity);
        let Some(record) = self.awaiting.get_mut(&key) else {
            return;
        };
        if record.timer != Some(at) {
            return;
        }
        record.timer = None;
        let unvalidated = self
            .peers
            .get(&source)
            .map_or(true, |peer| peer.is_unvalidated());
        let max_attempts = match unvalidated {
            // The sender's own resends bring a fresh RECV at once, so
            // resending on our own to an unproven address gains little.
            true => self
                .config
                .unvalidated_attempts
                .min(self.config.recv_max_attempts),
            false => self.config.recv_max_attempts,
        };
        if record.transmissions >= max_attempts {
            self.give_up_recv(now, source, identity);
        } else if !record.reply_pending {
            record.reply_pending = true;
            self.stats.recv_retransmissions += 1;
            self.output.push_recv(source, identity);
        }
    }

    /// Records a RECV's transmission: the next resend waits one backed-off
    /// RTO.
    pub(super) fn on_recv_sent(&mut self, now: Instant, source: SocketAddr, identity: Identity) {
        let Some(record) = self.awaiting.get_mut(&(source, identity)) else {
            return;
        };
        record.reply_pending = false;
        record.transmissions += 1;
        record.last_sent = Some(now);
        let timeout = self
            .peers
            .get(&source)
            .map(|peer| peer.retransmission_timeout(record.transmissions))
            .unwrap_or(self.config.initial_rto);
        let at = now + timeout;
        record.timer = Some(at);
        self.timers.push(at, TimerKey::Received(source, identity));
    }

    /// A RECV withheld by the amplification budget: stop resending it.
    pub(super) fn on_recv_withheld(&mut self, source: SocketAddr, identity: Identity) {
        if let Some(now) = self.latest {
            self.give_up_recv(now, source, identity);
        }
    }

    /// Ends a RECV exchange without its ACK: the sender may still be
    /// resending, so the identity is remembered for `remember_window`.
    pub(super) fn give_up_recv(&mut self, now: Instant, source: SocketAddr, identity: Identity) {
        let Some(record) = self.awaiting.remove(&(source, identity)) else {
            return;
        };
        self.remember(now, source, identity, record.fingerprint, Retention::Window);
        self.note_if_idle(now, source);
    }

    /// Moves an identity whose exchange ended into the remembered memory.
    fn remember(
        &mut self,
        now: Instant,
        source: SocketAddr,
        identity: Identity,
        fingerprint: Fingerprint,
        class: Retention,
    ) {
        let mut validated = false;
        if let Some(peer) = self.peers.get_mut(&source) {
            peer.awaiting -= 1;
            peer.awaiting_identities.retain(|held| *held != identity);
            validated = !peer.is_unvalidated();
        }
        let limits = &self.config.limits;
        let budget = limits
            .max_remembered_bytes
            .saturating_sub(self.remembered.bytes())
            .min(
                limits
                    .max_remembered_bytes_per_peer
                    .saturating_sub(self.remembered.bytes_for(&source)),
            );
        self.remembered
            .insert(now, source, identity, fingerprint, class, validated, budget);
    }

    /// Counts an inbound gtUDP datagram against its peer, if tracked.
    pub(super) fn note_inbound(&mut self, source: SocketAddr, kind: PacketKind, size: usize) {
        if let Some(peer) = self.peers.get_mut(&source) {
            peer.stats.datagrams_in.add(kind);
            peer.stats.bytes_in += size as u64;
        }
    }

    /// Queues the ACK for a RECV, if the control queue has room.
    pub(super) fn queue_ack(&mut self, source: SocketAddr, identity: Identity) {
        if self.output.pending_control >= self.config.limits.max_pending_control {
            self.stats.dropped.control_overflow += 1;
            return;
        }
        self.output.push_ack(source, identity);
    }
}

/// Room kept in the remembered memory for each record awaiting its ACK, so
/// that moving it there never pushes the memory past its bound by more than
/// this per record: an entry, or the smallest new table and history.
pub(super) const RESERVED_BYTES_PER_AWAITING: usize = 16;
