//! The receiving side: DATA handed over once, RECV until ACK, and the memory
//! of received identities that suppresses late duplicates.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use super::{Endpoint, State};
use crate::event::Event;
use crate::timer::TimerKey;
use crate::wire::{Identity, PacketKind};

/// Where a received message's RECV exchange stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// RECV is (re)sent until ACK or `recv_max_attempts`.
    AwaitingAck,
    /// ACK arrived: the sender stopped resending; only copies already in
    /// the network remain, for at most `datagram_lifetime`.
    Acknowledged,
    /// RECV attempts ran out (or the amplification budget did): the
    /// identity is remembered until `remember_window` after first receipt.
    GaveUp,
}

/// One identity received from one peer.
#[derive(Debug)]
pub(super) struct ReceivedRecord {
    pub(super) phase: Phase,
    /// When the identity is forgotten.
    pub(super) expires: Instant,
    pub(super) transmissions: u32,
    pub(super) last_sent: Option<Instant>,
    /// The instant its live timer entry is set for.
    pub(super) timer: Instant,
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
        if let Some(record) = self.received.get_mut(&key) {
            // A repeat: answer at once, never hand it over again.
            let reply = !record.reply_pending;
            record.reply_pending = true;
            self.stats.duplicates_suppressed += 1;
            self.note_inbound(source, PacketKind::Data, size);
            if let Some(peer) = self.peers.get_mut(&source) {
                peer.stats.duplicates_suppressed += 1;
            }
            if reply {
                self.output.push_recv(source, identity);
            }
            return;
        }
        if self.state != State::Open {
            self.stats.dropped.data_unanswered_closing += 1;
            return;
        }
        if self.receive_paused {
            self.stats.dropped.data_unanswered_paused += 1;
            return;
        }
        // Refuse before answering: a DATA is never answered and then dropped.
        let limits = &self.config.limits;
        let (max_per_peer, full) = (
            limits.max_received_per_peer,
            self.unread >= limits.max_unread || self.received.len() >= limits.max_received,
        );
        if full {
            self.stats.dropped.data_unanswered_full += 1;
            return;
        }
        let expires = now + self.config.remember_window;
        let tracked = self.ensure_peer(now, source);
        let Some(peer) = self.peers.get_mut(&source).filter(|_| tracked) else {
            self.stats.dropped.data_unanswered_full += 1;
            return;
        };
        if peer.remembered >= max_per_peer {
            self.stats.dropped.data_unanswered_full += 1;
            return;
        }
        peer.remembered += 1;
        peer.idle_deadline = None;
        peer.stats.received += 1;
        self.note_inbound(source, PacketKind::Data, size);
        self.received.insert(
            key,
            ReceivedRecord {
                phase: Phase::AwaitingAck,
                expires,
                transmissions: 0,
                last_sent: None,
                timer: expires,
                reply_pending: true,
            },
        );
        self.awaiting_ack += 1;
        self.timers
            .push(expires, TimerKey::Received(source, identity));
        self.output.push_recv(source, identity);
        self.stats.received += 1;
        self.unread += 1;
        self.events.push_back(Event::Received {
            from: source,
            payload,
        });
    }

    pub(super) fn on_ack(
        &mut self,
        now: Instant,
        source: SocketAddr,
        identity: Identity,
        size: usize,
    ) {
        self.note_inbound(source, PacketKind::Ack, size);
        let lifetime_end = now + self.config.datagram_lifetime;
        let Some(record) = self.received.get_mut(&(source, identity)) else {
            self.stats.dropped.ack_unknown += 1;
            return;
        };
        if record.phase != Phase::AwaitingAck {
            self.stats.dropped.ack_unknown += 1;
            return;
        }
        let sample = match (record.transmissions, record.last_sent) {
            (1, Some(sent)) => Some(now.saturating_duration_since(sent)),
            _ => None,
        };
        record.phase = Phase::Acknowledged;
        record.expires = record.expires.min(lifetime_end);
        record.timer = record.expires;
        let timer = record.timer;
        self.awaiting_ack -= 1;
        self.timers
            .push(timer, TimerKey::Received(source, identity));
        if let (Some(sample), Some(peer)) = (sample, self.peers.get_mut(&source)) {
            peer.on_rtt_sample(sample);
        }
    }

    pub(super) fn on_received_timer(
        &mut self,
        now: Instant,
        at: Instant,
        source: SocketAddr,
        identity: Identity,
    ) {
        let key = (source, identity);
        let Some(record) = self.received.get_mut(&key) else {
            return;
        };
        if record.timer != at {
            return;
        }
        if now >= record.expires {
            let phase = record.phase;
            self.received.remove(&key);
            if phase == Phase::AwaitingAck {
                self.awaiting_ack -= 1;
            }
            if let Some(peer) = self.peers.get_mut(&source) {
                peer.remembered -= 1;
            }
            self.note_if_idle(now, source);
            return;
        }
        record.timer = record.expires;
        self.timers
            .push(record.expires, TimerKey::Received(source, identity));
        if record.phase != Phase::AwaitingAck {
            return;
        }
        if record.transmissions >= self.config.recv_max_attempts {
            record.phase = Phase::GaveUp;
            self.awaiting_ack -= 1;
        } else if !record.reply_pending {
            record.reply_pending = true;
            self.stats.recv_retransmissions += 1;
            self.output.push_recv(source, identity);
        }
    }

    /// Records a RECV's transmission: the next resend waits one backed-off
    /// RTO, never past the record's expiry.
    pub(super) fn on_recv_sent(&mut self, now: Instant, source: SocketAddr, identity: Identity) {
        let Some(record) = self.received.get_mut(&(source, identity)) else {
            return;
        };
        record.reply_pending = false;
        if record.phase != Phase::AwaitingAck {
            return;
        }
        record.transmissions += 1;
        record.last_sent = Some(now);
        let timeout = self
            .peers
            .get(&source)
            .map(|peer| peer.retransmission_timeout(record.transmissions))
            .unwrap_or(self.config.initial_rto);
        record.timer = (now + timeout).min(record.expires);
        self.timers
            .push(record.timer, TimerKey::Received(source, identity));
    }

    /// A RECV withheld by the amplification budget: stop resending it.
    pub(super) fn on_recv_withheld(&mut self, source: SocketAddr, identity: Identity) {
        if let Some(record) = self.received.get_mut(&(source, identity)) {
            record.reply_pending = false;
            if record.phase == Phase::AwaitingAck {
                record.phase = Phase::GaveUp;
                self.awaiting_ack -= 1;
            }
        }
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
