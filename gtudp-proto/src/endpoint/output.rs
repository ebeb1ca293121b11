//! Datagrams waiting to be written by `poll_transmit`.
//!
//! The queue holds small orders, not encoded datagrams: a DATA order names
//! its message and is encoded from the message's `Bytes` when polled, so a
//! message resolved in the meantime is simply skipped, and nothing is copied
//! until it is written into the caller's buffer.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use super::Endpoint;
use crate::event::{MessageId, Transmit};
use crate::timer::TimerKey;
use crate::wire::{Identity, Packet, PacketKind};

/// The most bytes one batched transmit carries: one UDP segmentation-offload
/// send is limited to a 64 KiB IP datagram.
const MAX_BATCH_BYTES: usize = 65_000;

#[derive(Debug)]
enum Order {
    Data(MessageId),
    Recv(SocketAddr, Identity),
    Ack(SocketAddr, Identity),
    Raw(SocketAddr, Bytes),
}

#[derive(Debug, Default)]
pub(super) struct Output {
    orders: VecDeque<Order>,
    /// ACK orders queued (bounded by `max_pending_control`).
    pub(super) pending_control: usize,
    /// Raw orders queued (bounded by `max_pending_raw`).
    pub(super) pending_raw: usize,
}

impl Output {
    pub(super) fn push_data(&mut self, id: MessageId) {
        self.orders.push_back(Order::Data(id));
    }

    pub(super) fn push_recv(&mut self, to: SocketAddr, identity: Identity) {
        self.orders.push_back(Order::Recv(to, identity));
    }

    pub(super) fn push_ack(&mut self, to: SocketAddr, identity: Identity) {
        self.pending_control += 1;
        self.orders.push_back(Order::Ack(to, identity));
    }

    pub(super) fn push_raw(&mut self, to: SocketAddr, datagram: Bytes) {
        self.pending_raw += 1;
        self.orders.push_back(Order::Raw(to, datagram));
    }

    pub(super) fn len(&self) -> usize {
        self.orders.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }

    /// Keeps only the orders that need no endpoint state (ACK and raw), once
    /// the endpoint has closed and its tables are empty.
    pub(super) fn drop_stateful(&mut self) {
        self.orders
            .retain(|order| matches!(order, Order::Ack(..) | Order::Raw(..)));
    }

    fn retain(&mut self, mut keep: impl FnMut(&Order) -> bool) {
        self.orders.retain(|order| keep(order));
    }

    fn pop(&mut self) -> Option<Order> {
        let order = self.orders.pop_front()?;
        match order {
            Order::Ack(..) => self.pending_control -= 1,
            Order::Raw(..) => self.pending_raw -= 1,
            Order::Data(_) | Order::Recv(..) => {}
        }
        Some(order)
    }
}

impl Endpoint {
    /// Drops DATA and RECV orders whose message or record is gone or no
    /// longer waiting, once such orders could outnumber the live ones.
    pub(super) fn compact_output(&mut self) {
        let live_bound = self.messages.len()
            + self.received.len()
            + self.output.pending_control
            + self.output.pending_raw;
        if self.output.len() <= 2 * live_bound + 64 {
            return;
        }
        let (messages, received) = (&self.messages, &self.received);
        self.output.retain(|order| match order {
            Order::Data(id) => messages
                .get(id)
                .is_some_and(|message| message.transmit_pending),
            Order::Recv(to, identity) => received
                .get(&(*to, *identity))
                .is_some_and(|record| record.reply_pending),
            Order::Ack(..) | Order::Raw(..) => true,
        });
    }

    pub(super) fn write_transmit(
        &mut self,
        now: Instant,
        max_datagrams: usize,
        buf: &mut Vec<u8>,
    ) -> Option<Transmit> {
        buf.clear();
        let (destination, segment) = self.next_ready()?;
        self.write_next(now, buf);
        let mut count = 1;
        while count < max_datagrams {
            let Some((next_destination, size)) = self.next_ready() else {
                break;
            };
            if next_destination != destination
                || size > segment
                || buf.len() + size > MAX_BATCH_BYTES
            {
                break;
            }
            self.write_next(now, buf);
            count += 1;
            if size < segment {
                // Only the last segment of a batch may be shorter.
                break;
            }
        }
        Some(Transmit {
            destination,
            size: buf.len(),
            segment_size: (count > 1).then_some(segment),
        })
    }

    /// Drops stale or unaffordable orders from the front and returns where
    /// the next one goes and how long it is.
    fn next_ready(&mut self) -> Option<(SocketAddr, usize)> {
        let header_len = self.config.framing.header_len();
        loop {
            let ready = match self.output.orders.front()? {
                Order::Data(id) => self
                    .messages
                    .get(id)
                    .filter(|message| message.transmit_pending)
                    .map(|message| (message.destination, header_len + message.payload.len())),
                Order::Recv(to, identity) => {
                    let (to, identity) = (*to, *identity);
                    match self.peers.get(&to) {
                        Some(peer) if peer.may_reply(header_len) => Some((to, header_len)),
                        Some(_) => {
                            self.stats.dropped.amplification_limited += 1;
                            self.on_recv_withheld(to, identity);
                            None
                        }
                        None => None,
                    }
                }
                Order::Ack(to, _) => match self.peers.get(to) {
                    // An untracked address gets one ACK per RECV it sent:
                    // the same size, so no amplification.
                    Some(peer) if !peer.may_reply(header_len) => {
                        self.stats.dropped.amplification_limited += 1;
                        None
                    }
                    _ => Some((*to, header_len)),
                },
                Order::Raw(to, datagram) => Some((*to, datagram.len())),
            };
            if ready.is_some() {
                return ready;
            }
            self.output.pop();
        }
    }

    /// Writes the front order (made ready by `next_ready`) and records its
    /// transmission.
    fn write_next(&mut self, now: Instant, buf: &mut Vec<u8>) {
        let framing = &self.config.framing;
        let start = buf.len();
        let (to, kind) = match self.output.pop() {
            Some(Order::Data(id)) => {
                let Some(message) = self.messages.get_mut(&id) else {
                    return;
                };
                let packet = Packet::Data {
                    identity: message.identity,
                    payload: &message.payload,
                };
                framing.encode_to_vec(&packet, buf);
                message.transmit_pending = false;
                message.transmissions += 1;
                message.last_sent = Some(now);
                if message.transmissions > 1 {
                    self.stats.retransmissions += 1;
                }
                let to = message.destination;
                let peer = self.peers.get_mut(&to);
                if let Some(peer) = &peer {
                    let mut at = now + peer.retransmission_timeout(message.transmissions);
                    if let Some(deadline) = message.deadline {
                        at = at.min(deadline);
                    }
                    message.timer = Some(at);
                    self.timers.push(at, TimerKey::Message(id));
                }
                if let Some(peer) = peer {
                    if message.transmissions > 1 {
                        peer.stats.retransmissions += 1;
                    }
                }
                (to, Some(PacketKind::Data))
            }
            Some(Order::Recv(to, identity)) => {
                framing.encode_to_vec(&Packet::Recv { identity }, buf);
                self.on_recv_sent(now, to, identity);
                (to, Some(PacketKind::Recv))
            }
            Some(Order::Ack(to, identity)) => {
                framing.encode_to_vec(&Packet::Ack { identity }, buf);
                (to, Some(PacketKind::Ack))
            }
            Some(Order::Raw(to, datagram)) => {
                buf.extend_from_slice(&datagram);
                self.stats.raw_out += 1;
                (to, None)
            }
            None => return,
        };
        let size = (buf.len() - start) as u64;
        self.stats.bytes_out += size;
        if let Some(kind) = kind {
            self.stats.datagrams_out.add(kind);
        }
        if let Some(peer) = self.peers.get_mut(&to) {
            peer.stats.bytes_out += size;
            if matches!(kind, Some(PacketKind::Recv | PacketKind::Ack)) {
                peer.reply_bytes_out += size;
            }
            if let Some(kind) = kind {
                peer.stats.datagrams_out.add(kind);
            }
        }
    }
}
