//! Datagrams waiting to be written by `poll_transmit`.
//!
//! The queue holds small orders, not encoded datagrams: a DATA order names
//! its message and is encoded from the message's `Bytes` when polled, so a
//! message resolved in the meantime is simply skipped, and nothing is copied
//! until it is written into the caller's buffer.
//!
//! Orders wait in two lanes: RECV, ACK and raw datagrams in one, DATA in the
//! other. The control lane goes first (a RECV is someone's proof of delivery
//! and is only a header long), and each lane batches on its own: if the two
//! shared one queue, each RECV answered would sit between two DATA of
//! another size and cut every segmentation-offload batch short.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use super::awaiting::AwaitingId;
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
    /// A RECV for a record awaiting its ACK: where it goes, the record
    /// (reached by its slot when the RECV is written), and the identity.
    Recv(SocketAddr, AwaitingId, Identity),
    /// A RECV answering a repeat of a message whose exchange is over: no
    /// record behind it, bounded like an ACK.
    RecvAgain(SocketAddr, Identity),
    /// The copy of a RECV just written, for a peer whose path back loses
    /// RECVs (see [`super::recv_copies`]): one to three per RECV, written
    /// next.
    RecvCopy(SocketAddr, AwaitingId, Identity),
    Ack(SocketAddr, Identity),
    /// A RECV naming a validation token, to make an unvalidated address
    /// prove it receives our datagrams (its ACK does; see
    /// [`crate::validation`]). Header-sized, at most one per peer per
    /// retransmission timeout, and bounded like an ACK.
    Probe(SocketAddr, Identity),
    /// A raw datagram: the next in `Output::raw` (kept apart, so that an
    /// order is not as large as an address and a `Bytes`).
    Raw,
}

/// Which queue of orders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lane {
    /// RECV, ACK and raw datagrams.
    Control,
    /// DATA.
    Data,
}

#[derive(Debug, Default)]
pub(super) struct Output {
    control: VecDeque<Order>,
    data: VecDeque<Order>,
    /// The raw datagrams of the control lane's `Raw` orders, in their
    /// order (a `Raw` order is never dropped but by its transmission).
    raw: VecDeque<(SocketAddr, Bytes)>,
    /// ACK and stateless RECV orders queued (bounded by
    /// `max_pending_control`).
    pub(super) pending_control: usize,
    /// Raw orders queued (bounded by `max_pending_raw`).
    pub(super) pending_raw: usize,
}

impl Output {
    #[inline]
    pub(super) fn push_data(&mut self, id: MessageId) {
        self.data.push_back(Order::Data(id));
    }

    #[inline]
    pub(super) fn push_recv(&mut self, to: SocketAddr, record: AwaitingId, identity: Identity) {
        self.control.push_back(Order::Recv(to, record, identity));
    }

    pub(super) fn push_recv_again(&mut self, to: SocketAddr, identity: Identity) {
        self.pending_control += 1;
        self.control.push_back(Order::RecvAgain(to, identity));
    }

    pub(super) fn push_probe(&mut self, to: SocketAddr, identity: Identity) {
        self.pending_control += 1;
        self.control.push_back(Order::Probe(to, identity));
    }

    #[inline]
    pub(super) fn push_ack(&mut self, to: SocketAddr, identity: Identity) {
        self.pending_control += 1;
        self.control.push_back(Order::Ack(to, identity));
    }

    pub(super) fn push_raw(&mut self, to: SocketAddr, datagram: Bytes) {
        self.pending_raw += 1;
        self.raw.push_back((to, datagram));
        self.control.push_back(Order::Raw);
    }

    pub(super) fn len(&self) -> usize {
        self.control.len() + self.data.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.control.is_empty() && self.data.is_empty()
    }

    fn lane(&self, lane: Lane) -> &VecDeque<Order> {
        match lane {
            Lane::Control => &self.control,
            Lane::Data => &self.data,
        }
    }

    /// Keeps only the orders that still mean something once the endpoint
    /// has closed and its tables are empty (ACK, RECV again and raw): no
    /// validation probe goes out after the close, since nothing would come
    /// of its answer.
    pub(super) fn drop_stateful(&mut self) {
        self.data.clear();
        let mut probes = 0;
        self.control.retain(|order| match order {
            Order::Ack(..) | Order::RecvAgain(..) | Order::Raw => true,
            Order::Probe(..) => {
                probes += 1;
                false
            }
            Order::Data(_) | Order::Recv(..) | Order::RecvCopy(..) => false,
        });
        self.pending_control -= probes;
    }

    fn retain(&mut self, mut keep: impl FnMut(&Order) -> bool) {
        self.control.retain(&mut keep);
        self.data.retain(keep);
    }

    fn pop(&mut self, lane: Lane) -> Option<Order> {
        let order = match lane {
            Lane::Control => self.control.pop_front(),
            Lane::Data => self.data.pop_front(),
        }?;
        match order {
            Order::Ack(..) | Order::RecvAgain(..) | Order::Probe(..) => self.pending_control -= 1,
            Order::Raw => self.pending_raw -= 1,
            Order::Data(_) | Order::Recv(..) | Order::RecvCopy(..) => {}
        }
        Some(order)
    }
}

impl Endpoint {
    /// The output queue exceeds twice what can be live plus 64.
    #[inline]
    pub(super) fn output_over_bound(&self) -> bool {
        let live_bound = self.messages.len()
            + self.awaiting.len()
            + self.output.pending_control
            + self.output.pending_raw;
        self.output.len() > 2 * live_bound + 64
    }

    /// Drops DATA and RECV orders whose message or record is gone or no
    /// longer waiting, once such orders could outnumber the live ones.
    pub(super) fn compact_output(&mut self) {
        if !self.output_over_bound() {
            return;
        }
        let (messages, awaiting) = (&self.messages, &self.awaiting);
        self.output.retain(|order| match order {
            Order::Data(id) => messages
                .get(id)
                .is_some_and(|message| message.transmit_pending),
            Order::Recv(to, id, _) => awaiting
                .get(*id)
                .is_some_and(|record| record.reply_pending && record.from == *to),
            Order::RecvCopy(to, id, _) => {
                awaiting.get(*id).is_some_and(|record| record.from == *to)
            }
            Order::Ack(..) | Order::RecvAgain(..) | Order::Probe(..) | Order::Raw => true,
        });
    }

    pub(super) fn write_transmit(
        &mut self,
        now: Instant,
        max_datagrams: usize,
        buf: &mut Vec<u8>,
    ) -> Option<Transmit> {
        buf.clear();
        let (lane, (destination, segment)) = match self.next_ready(Lane::Control) {
            Some(ready) => (Lane::Control, ready),
            None => (Lane::Data, self.next_ready(Lane::Data)?),
        };
        self.write_next(now, lane, buf);
        let mut count = 1;
        while count < max_datagrams {
            let Some((next_destination, size)) = self.next_ready(lane) else {
                break;
            };
            if next_destination != destination
                || size > segment
                || buf.len() + size > MAX_BATCH_BYTES
            {
                break;
            }
            self.write_next(now, lane, buf);
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

    /// Drops stale or unaffordable orders from the front of `lane` and
    /// returns where the next one goes and how long it is.
    fn next_ready(&mut self, lane: Lane) -> Option<(SocketAddr, usize)> {
        let header_len = self.config.framing.header_len();
        loop {
            let ready = match self.output.lane(lane).front()? {
                Order::Data(id) => {
                    let id = *id;
                    let ready = self
                        .messages
                        .get(&id)
                        .filter(|message| message.transmit_pending)
                        .map(|message| {
                            (
                                message.destination,
                                header_len + message.payload.len(),
                                message.only_once_validated,
                            )
                        });
                    match ready {
                        Some((to, _, true))
                            if self
                                .peers
                                .get_remembered(&to)
                                .is_some_and(|peer| peer.is_unvalidated()) =>
                        {
                            self.hold_for_budget(id, to);
                            None
                        }
                        Some((to, size, _))
                            if self
                                .peers
                                .get_remembered(&to)
                                .is_some_and(|peer| !peer.may_send(size, header_len)) =>
                        {
                            self.stats.dropped.amplification_limited += 1;
                            self.hold_for_budget(id, to);
                            None
                        }
                        ready => ready.map(|(to, size, _)| (to, size)),
                    }
                }
                Order::Recv(to, id, _) => match self.peers.get_remembered(to) {
                    Some(peer) if peer.may_send(header_len, header_len) => Some((*to, header_len)),
                    Some(_) => {
                        let (to, id) = (*to, *id);
                        self.stats.dropped.amplification_limited += 1;
                        self.on_recv_withheld(to, id);
                        None
                    }
                    None => None,
                },
                Order::Ack(to, _) | Order::RecvAgain(to, _) | Order::RecvCopy(to, _, _) => {
                    match self.peers.get_remembered(to) {
                        // An untracked address gets one reply per datagram it
                        // sent (ACK per RECV, RECV per repeated DATA), never
                        // larger, so no amplification.
                        Some(peer) if !peer.may_send(header_len, header_len) => {
                            self.stats.dropped.amplification_limited += 1;
                            None
                        }
                        _ => Some((*to, header_len)),
                    }
                }
                Order::Probe(to, _) => match self.peers.get_remembered(to) {
                    Some(peer) if !peer.may_probe(header_len) => {
                        self.stats.dropped.amplification_limited += 1;
                        None
                    }
                    _ => Some((*to, header_len)),
                },
                Order::Raw => self
                    .output
                    .raw
                    .front()
                    .map(|(to, datagram)| (*to, datagram.len())),
            };
            if ready.is_some() {
                return ready;
            }
            self.output.pop(lane);
        }
    }

    /// A DATA to an address that has not proven it receives our datagrams
    /// would exceed its budget: hold it for one RTO (a real peer proves
    /// itself within a round trip or two), and fail it with
    /// [`FailureReason::Unvalidated`](crate::FailureReason) after
    /// `unvalidated_attempts` holds rather than keep it for its whole retry
    /// span, as a spoofed address would make us.
    fn hold_for_budget(&mut self, id: MessageId, to: SocketAddr) {
        let (Some(now), Some(peer)) = (self.latest, self.peers.get(&to)) else {
            return;
        };
        let wait = peer.retransmission_timeout(1);
        let now_ns = self.nanos(now);
        let Some(message) = self.messages.get_mut(&id) else {
            return;
        };
        message.transmit_pending = false;
        if !message.waiting_for_budget {
            if let Some(peer) = self.peers.get_mut(&to) {
                peer.held.push(id);
            }
        }
        let at = message.hold_for(now_ns, wait);
        if let Some(at) = super::instant_at(self.epoch, at) {
            self.timers.push(at, TimerKey::Message(id));
        }
        // Ask the address to prove itself, so the message can go.
        self.probe_if_due(now, to);
    }

    /// Writes the front order of `lane` (made ready by `next_ready`) and
    /// records its transmission.
    fn write_next(&mut self, now: Instant, lane: Lane, buf: &mut Vec<u8>) {
        let now_ns = self.nanos(now);
        let framing = &self.config.framing;
        let start = buf.len();
        // Where the DATA and RECV branches have the peer at hand, they
        // count the datagram in its stats (`peer_counted`).
        let mut peer_counted = false;
        let (to, kind) = match self.output.pop(lane) {
            Some(Order::Data(id)) => {
                let Some(message) = self.messages.get_mut(&id) else {
                    return;
                };
                let packet = Packet::Data {
                    identity: message.identity,
                    payload: &message.payload,
                };
                let fragment_type = message.is_fragment() || message.probe;
                match (fragment_type, &self.config.large_messages) {
                    (true, Some(large)) => {
                        // A fragment: the framing's header with the
                        // extension's type (see `crate::wire::FragmentHeader`).
                        framing.extend_prefix(buf);
                        buf.extend_from_slice(&large.fragment_type);
                        buf.extend_from_slice(&message.identity.to_bytes());
                        buf.extend_from_slice(&message.payload);
                    }
                    _ => framing.encode_to_vec(&packet, buf),
                }
                message.transmit_pending = false;
                message.transmissions += 1;
                message.previous_sent_ns = message.last_sent_ns;
                message.last_sent_ns = now_ns;
                let to = message.destination;
                let retransmission = message.transmissions > 1;
                let resent_fragment = message.fragment_of().filter(|_| retransmission);
                let mut seq = None;
                if retransmission {
                    self.stats.retransmissions += 1;
                }
                if let Some(peer) = self.peers.get_mut(&to) {
                    count_outbound(peer, PacketKind::Data, buf.len() - start);
                    peer_counted = true;
                    if retransmission {
                        peer.stats.retransmissions += 1;
                    }
                    message.send_seq = peer.order.push(id, now);
                    seq = Some(message.send_seq);
                    message.snapshot = Some(peer.delivery.on_send(now_ns, peer.in_flight - 1));
                    peer.last_data_sent = Some(now);
                    if peer.order.len() > 2 * peer.in_flight + 64 {
                        let messages = &self.messages;
                        peer.order.retain(|sent| {
                            messages
                                .get(&sent.id)
                                .map_or(crate::loss::Liveness::Stale, |m| m.liveness(sent))
                        });
                    }
                }
                if let Some(large) = resent_fragment {
                    self.on_fragment_resent(to, large);
                }
                if let Some(seq) = seq {
                    self.arm_after_transmission(now, to, seq);
                }
                (to, Some(PacketKind::Data))
            }
            Some(Order::Recv(to, record, identity)) => {
                framing.encode_to_vec(&Packet::Recv { identity }, buf);
                let copies = self.on_recv_sent(now, to, record, buf.len() - start);
                peer_counted = copies.is_some();
                for _ in 0..copies.unwrap_or(0) {
                    self.output
                        .control
                        .push_front(Order::RecvCopy(to, record, identity));
                }
                (to, Some(PacketKind::Recv))
            }
            Some(Order::RecvCopy(to, _, identity)) => {
                framing.encode_to_vec(&Packet::Recv { identity }, buf);
                self.stats.recv_copies_sent += 1;
                (to, Some(PacketKind::Recv))
            }
            Some(Order::RecvAgain(to, identity)) | Some(Order::Probe(to, identity)) => {
                framing.encode_to_vec(&Packet::Recv { identity }, buf);
                (to, Some(PacketKind::Recv))
            }
            Some(Order::Ack(to, identity)) => {
                framing.encode_to_vec(&Packet::Ack { identity }, buf);
                (to, Some(PacketKind::Ack))
            }
            Some(Order::Raw) => {
                let Some((to, datagram)) = self.output.raw.pop_front() else {
                    return;
                };
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
        if peer_counted {
            return;
        }
        if let Some(peer) = self.peers.get_mut(&to) {
            peer.stats.bytes_out += size;
            if let Some(kind) = kind {
                peer.stats.datagrams_out.add(kind);
            }
        }
    }
}

/// Counts a gtUDP datagram of `size` bytes written to `peer`.
pub(super) fn count_outbound(peer: &mut super::peer::Peer, kind: PacketKind, size: usize) {
    peer.stats.bytes_out += size as u64;
    peer.stats.datagrams_out.add(kind);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_is_smaller_than_an_address_and_a_payload() {
        // Every message's DATA, RECV and ACK orders are moved into the
        // queue and out of it: a raw datagram's address and `Bytes` wait
        // beside the queue, not in every order's place.
        let address_and_payload =
            core::mem::size_of::<SocketAddr>() + core::mem::size_of::<Bytes>();
        assert!(core::mem::size_of::<Order>() < address_and_payload);
        assert!(core::mem::size_of::<Order>() <= 56);
    }
}
