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
        if self.refuses_new_data() {
            return;
        }
        // An address that has not proven itself gets a probe, and its DATA
        // is held (or, past `max_unvalidated_peers`, not even that) until
        // it answers: nothing from it is handed over or remembered before.
        if self.would_be_unvalidated(&source) && !self.ensure_peer(now, source, true) {
            self.defer_until_validated(source, size);
            return;
        }
        if self
            .peers
            .get(&source)
            .is_some_and(|peer| peer.is_unvalidated())
        {
            self.hold_until_validated(now, source, identity, fingerprint, payload, size);
            return;
        }
        self.note_inbound(source, PacketKind::Data, size);
        self.take_data(now, source, identity, fingerprint, payload, collision);
    }

    /// Takes a new message from a proven address (one that answered our
    /// probe or our DATA, or that we reached first): hands it over and
    /// answers it with RECV, or leaves it unanswered when a receive bound is
    /// reached (refused before answering: a DATA is never answered and then
    /// dropped).
    pub(super) fn take_data(
        &mut self,
        now: Instant,
        source: SocketAddr,
        identity: Identity,
        fingerprint: Fingerprint,
        payload: Bytes,
        collision: bool,
    ) {
        if self.refuses_new_data() {
            return;
        }
        if !self.has_room_to_receive(&source) || !self.ensure_peer(now, source, true) {
            self.stats.dropped.data_unanswered_full += 1;
            return;
        }
        let max_per_peer = self.config.limits.max_awaiting_ack_per_peer;
        let Some(peer) = self.peers.get_mut(&source) else {
            self.stats.dropped.data_unanswered_full += 1;
            return;
        };
        if peer.awaiting >= max_per_peer {
            self.stats.dropped.data_unanswered_full += 1;
            return;
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
        self.awaiting.insert((source, identity), record);
        peer.awaiting += 1;
        if collision {
            self.stats.identity_collisions += 1;
        }
        self.output.push_recv(source, identity);
        self.stats.received += 1;
        self.unread += 1;
        self.events.push_back(Event::Received {
            from: source,
            payload,
        });
    }

    /// Whether new messages are refused now (closing, or receiving paused);
    /// counts the refusal.
    fn refuses_new_data(&mut self) -> bool {
        if self.state != State::Open {
            self.stats.dropped.data_unanswered_closing += 1;
            return true;
        }
        if self.receive_paused {
            self.stats.dropped.data_unanswered_paused += 1;
            return true;
        }
        false
    }

    /// Whether a new message from `source` fits every receive-side bound,
    /// including the room its identity will need in the remembered memory
    /// once its exchange ends (reserved for every record awaiting an ACK).
    fn has_room_to_receive(&self, source: &SocketAddr) -> bool {
        let limits = &self.config.limits;
        let reserve = (self.awaiting.len() + 1) * RESERVED_BYTES_PER_AWAITING;
        self.unread < limits.max_unread
            && self.awaiting.len() < limits.max_awaiting_ack
            && self.remembered.bytes() + reserve <= limits.max_remembered_bytes
            && self.remembered.bytes_for(source) + RESERVED_BYTES_PER_AWAITING
                <= limits.max_remembered_bytes_per_peer
    }

    pub(super) fn count_duplicate(&mut self, source: SocketAddr, size: usize) {
        self.stats.duplicates_suppressed += 1;
        self.note_inbound(source, PacketKind::Data, size);
        if let Some(peer) = self.peers.get_mut(&source) {
            peer.stats.duplicates_suppressed += 1;
        }
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
        let max_attempts = self.config.recv_max_attempts;
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
        // Repeats answered in one instant past the backoff's ceiling want
        // the same instant: one live entry serves them all.
        if record.timer != Some(at) {
            record.timer = Some(at);
            self.timers.push(at, TimerKey::Received(source, identity));
        }
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
        if let Some(peer) = self.peers.get_mut(&source) {
            peer.awaiting -= 1;
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
            .insert(now, source, identity, fingerprint, class, budget);
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
