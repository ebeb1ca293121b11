//! The sending side: messages from `send` until Delivered or Failed.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use super::{Endpoint, State};
use crate::config::SendOptions;
use crate::error::{SendError, SendErrorKind};
use crate::event::{Event, FailureReason, MessageId};
use crate::timer::TimerKey;
use crate::wire::Identity;

/// One message accepted by `send` and not yet resolved.
#[derive(Debug)]
pub(super) struct Message {
    pub(super) destination: SocketAddr,
    pub(super) identity: Identity,
    pub(super) payload: Bytes,
    pub(super) deadline: Option<Instant>,
    pub(super) max_attempts: u32,
    pub(super) transmissions: u32,
    pub(super) last_sent: Option<Instant>,
    /// The instant its live timer entry is set for.
    pub(super) timer: Option<Instant>,
    pub(super) in_flight: bool,
    /// A DATA order for it waits in the output queue.
    pub(super) transmit_pending: bool,
}

impl Endpoint {
    pub(super) fn accept_message(
        &mut self,
        now: Instant,
        destination: SocketAddr,
        payload: Bytes,
        options: SendOptions,
    ) -> Result<MessageId, SendError> {
        let refuse = |kind, payload| Err(SendError::new(kind, payload));
        if self.state != State::Open {
            return refuse(SendErrorKind::Closing, payload);
        }
        let max_payload = self.config.max_payload_size();
        if payload.len() > max_payload {
            let kind = SendErrorKind::PayloadTooLarge {
                size: payload.len(),
                max: max_payload,
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
        if !self.ensure_peer(now, destination) {
            return refuse(SendErrorKind::TooManyPeers, payload);
        }
        let id = MessageId(self.next_message_id);
        let Some(peer) = self.peers.get_mut(&destination) else {
            return refuse(SendErrorKind::TooManyPeers, payload);
        };
        let in_flight = peer.has_window();
        if !in_flight && peer.queue.len() >= max_queued {
            return refuse(SendErrorKind::PeerQueueFull, payload);
        }

        self.next_message_id += 1;
        peer.idle_deadline = None;
        if in_flight {
            peer.in_flight += 1;
        } else {
            peer.queue.push_back(id);
        }
        let mut identity = self.identities.next_identity();
        // The permutation repeats only after 2^32 messages; skip any identity
        // still in use after such a wrap.
        while self.by_identity.contains_key(&identity) {
            identity = self.identities.next_identity();
        }
        self.by_identity.insert(identity, id);
        if let Some(deadline) = options.deadline {
            self.timers.push(deadline, TimerKey::Message(id));
        }
        self.messages.insert(
            id,
            Message {
                destination,
                identity,
                payload,
                deadline: options.deadline,
                max_attempts,
                transmissions: 0,
                last_sent: None,
                timer: options.deadline,
                in_flight,
                transmit_pending: in_flight,
            },
        );
        if in_flight {
            self.output.push_data(id);
        }
        self.outstanding += 1;
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
        match self.by_identity.get(&identity).copied() {
            Some(id) => match self.messages.get(&id) {
                Some(message) if message.destination != source => {
                    self.stats.dropped.recv_wrong_source += 1;
                }
                Some(message) if message.in_flight && message.transmissions > 0 => {
                    if let Some(peer) = self.peers.get_mut(&source) {
                        peer.stats.validated = true;
                    }
                    self.resolve(now, id, Ok(()));
                }
                _ => self.stats.dropped.recv_unknown += 1,
            },
            None => self.stats.dropped.recv_unknown += 1,
        }
        self.queue_ack(source, identity);
    }

    pub(super) fn on_message_timer(&mut self, now: Instant, at: Instant, id: MessageId) {
        let Some(message) = self.messages.get_mut(&id) else {
            return;
        };
        if message.timer != Some(at) {
            return;
        }
        message.timer = None;
        if message.deadline.is_some_and(|deadline| now >= deadline) {
            self.resolve(now, id, Err(FailureReason::DeadlineExpired));
            return;
        }
        if !message.in_flight || message.transmit_pending {
            return;
        }
        if message.transmissions >= message.max_attempts {
            self.resolve(now, id, Err(FailureReason::AttemptsExhausted));
            return;
        }
        // Retransmission timeout.
        let (destination, transmissions, last_sent) = (
            message.destination,
            message.transmissions,
            message.last_sent,
        );
        message.transmit_pending = true;
        message.timer = message.deadline;
        if let Some(deadline) = message.deadline {
            self.timers.push(deadline, TimerKey::Message(id));
        }
        if let Some(peer) = self.peers.get_mut(&destination) {
            peer.back_off(transmissions);
            peer.congestion.on_timeout(last_sent.unwrap_or(now), now);
        }
        self.output.push_data(id);
    }

    /// Ends a message: removes it, emits its one outcome event, and lets the
    /// next queued message into the window.
    pub(super) fn resolve(
        &mut self,
        now: Instant,
        id: MessageId,
        outcome: Result<(), FailureReason>,
    ) {
        let Some(message) = self.messages.remove(&id) else {
            return;
        };
        self.by_identity.remove(&message.identity);
        let destination = message.destination;
        if let Some(peer) = self.peers.get_mut(&destination) {
            if message.in_flight {
                peer.in_flight -= 1;
            } else if let Some(position) = peer.queue.iter().position(|queued| *queued == id) {
                peer.queue.remove(position);
            }
            match outcome {
                Ok(()) => {
                    peer.stats.delivered += 1;
                    if let Some(sent) = message.last_sent {
                        // Karn's rule: a retransmitted DATA's RECV is ambiguous.
                        if message.transmissions == 1 {
                            peer.on_rtt_sample(now.saturating_duration_since(sent));
                        }
                        peer.congestion
                            .on_delivered(&crate::congestion::Delivery { sent_at: sent });
                    }
                }
                Err(_) => peer.stats.failed += 1,
            }
        }
        self.events.push_back(match outcome {
            Ok(()) => {
                self.stats.delivered += 1;
                Event::Delivered {
                    id,
                    to: destination,
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
        self.fill_window(destination);
        self.note_if_idle(now, destination);
    }

    /// Moves queued messages into flight while the peer's window has room.
    fn fill_window(&mut self, destination: SocketAddr) {
        let Some(peer) = self.peers.get_mut(&destination) else {
            return;
        };
        while peer.has_window() {
            let Some(id) = peer.queue.pop_front() else {
                break;
            };
            if let Some(message) = self.messages.get_mut(&id) {
                peer.in_flight += 1;
                message.in_flight = true;
                message.transmit_pending = true;
                self.output.push_data(id);
            }
        }
    }
}
