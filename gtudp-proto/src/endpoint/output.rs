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
use crate::fifo::Fifo;
use crate::timer::TimerKey;
use crate::wire::{Identity, Packet, PacketKind};

/// The most bytes one batched transmit carries: one UDP segmentation-offload
/// send is limited to a 64 KiB IP datagram.
const MAX_BATCH_BYTES: usize = 65_000;

#[derive(Clone, Copy, Debug)]
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
    control: Fifo<Order>,
    data: Fifo<Order>,
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

    fn lane(&self, lane: Lane) -> &Fifo<Order> {
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

    /// Takes the front order of `lane`, known to be one that no bound
    /// counts (a DATA, or a RECV or its copy for a record): no count to
    /// lower, so no look at the order.
    #[inline]
    fn take_uncounted(&mut self, lane: Lane) {
        let taken = match lane {
            Lane::Control => self.control.pop_front(),
            Lane::Data => self.data.pop_front(),
        };
        debug_assert!(matches!(
            taken,
            Some(Order::Data(_) | Order::Recv(..) | Order::RecvCopy(..))
        ));
    }

    #[inline]
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
        let mut tally = Tally::default();
        // The control lane first; the first datagram written sets the
        // batch's destination and segment length.
        let mut lane = Lane::Control;
        let mut batch: Option<Batch> = None;
        let mut count = 0;
        loop {
            match self.write_front(now, lane, &mut batch, buf, &mut tally) {
                // Only the last segment of a batch may be shorter (the
                // first set the segment's length).
                Some(size) if batch.is_some_and(|batch| size < batch.segment) => {
                    count += 1;
                    break;
                }
                Some(_) => {}
                None if batch.is_none() && lane == Lane::Control => {
                    lane = Lane::Data;
                    continue;
                }
                None => break,
            }
            count += 1;
            if count >= max_datagrams {
                break;
            }
        }
        let Batch {
            destination,
            segment,
        } = batch?;
        tally.add_to(&mut self.stats);
        Some(Transmit {
            destination,
            size: buf.len(),
            segment_size: (count > 1).then_some(segment),
        })
    }

    /// Drops stale or unaffordable orders from the front of `lane`, then
    /// writes the next one into `buf` and records its transmission, unless
    /// it does not fit `batch` (it stays in the queue then); returns the
    /// length of the datagram written (the first one written starts
    /// `batch`).
    ///
    /// Each order's message or record and its peer are looked up once, for
    /// both the check and the writing.
    // Always: its one call is the batch's loop.
    #[inline(always)]
    fn write_front(
        &mut self,
        now: Instant,
        lane: Lane,
        batch: &mut Option<Batch>,
        buf: &mut Vec<u8>,
        tally: &mut Tally,
    ) -> Option<usize> {
        loop {
            let start = buf.len();
            let step = match *self.output.lane(lane).front()? {
                Order::Data(id) => self.write_data(now, lane, id, batch, buf),
                Order::Recv(to, record, identity) => {
                    self.write_recv(now, lane, to, record, identity, batch, buf)
                }
                order @ (Order::Ack(to, identity)
                | Order::RecvAgain(to, identity)
                | Order::RecvCopy(to, _, identity)) => {
                    let (kind, copy) = match order {
                        Order::Ack(..) => (PacketKind::Ack, false),
                        _ => (PacketKind::Recv, matches!(order, Order::RecvCopy(..))),
                    };
                    let step = self.write_reply(lane, to, kind, identity, batch, buf);
                    if copy && matches!(step, Step::Written(..)) {
                        self.stats.recv_copies_sent += 1;
                    }
                    step
                }
                Order::Probe(to, identity) => self.write_probe(lane, to, identity, batch, buf),
                Order::Raw => self.write_raw(lane, batch, buf),
            };
            match step {
                Step::Written(size, kind) => {
                    tally.add(kind, buf.len() - start);
                    return Some(size);
                }
                Step::Stop => return None,
                Step::Drop => {
                    self.output.pop(lane);
                }
            }
        }
    }

    /// The front order of `lane` when it is the DATA of message `id`.
    fn write_data(
        &mut self,
        now: Instant,
        lane: Lane,
        id: MessageId,
        batch: &mut Option<Batch>,
        buf: &mut Vec<u8>,
    ) -> Step {
        let header_len = self.config.framing.header_len();
        let now_ns = self.nanos(now);
        let Some(message) = self
            .messages
            .get_mut(&id)
            .filter(|message| message.transmit_pending)
        else {
            return Step::Drop;
        };
        if message.retry_span_over(now_ns) {
            // Ordered again before its retry span ended, written after:
            // too late to go out (see `Message::resend_until_ns`).
            self.resolve(now, id, Err(crate::FailureReason::AttemptsExhausted));
            return Step::Drop;
        }
        let to = message.destination;
        let size = header_len + message.payload.len();
        let peer = self.peers.get_mut(&to);
        if let Some(tracked) = peer.as_deref() {
            if message.only_once_validated && tracked.is_unvalidated() {
                self.hold_for_budget(id, to);
                return Step::Drop;
            }
            if !tracked.may_send(size, header_len) {
                self.stats.dropped.amplification_limited += 1;
                self.hold_for_budget(id, to);
                return Step::Drop;
            }
        }
        if !joins(batch, to, size, buf.len()) {
            return Step::Stop;
        }
        self.output.take_uncounted(lane);
        let start = buf.len();
        let framing = &self.config.framing;
        match (
            message.is_fragment() || message.probe,
            &self.config.large_messages,
        ) {
            (true, Some(large)) => {
                // A fragment: the framing's header with the extension's
                // type (see `crate::wire::FragmentHeader`).
                framing.extend_prefix(buf);
                buf.extend_from_slice(&large.fragment_type);
                buf.extend_from_slice(&message.identity.to_bytes());
                buf.extend_from_slice(&message.payload);
            }
            _ => framing.encode_to_vec(
                &Packet::Data {
                    identity: message.identity,
                    payload: &message.payload,
                },
                buf,
            ),
        }
        stamp_sent_token(framing, &mut buf[start..], peer.as_deref());
        message.transmit_pending = false;
        if message.transmissions == 0 {
            message.resend_until_ns = now_ns.saturating_add(self.retry_span_ns);
        }
        message.transmissions += 1;
        message.previous_sent_ns = message.last_sent_ns;
        message.last_sent_ns = now_ns;
        let retransmission = message.transmissions > 1;
        if retransmission {
            self.stats.retransmissions += 1;
        }
        let resent_fragment = message.fragment_of().filter(|_| retransmission);
        let may_move_deadline = match peer {
            Some(peer) => {
                count_outbound(peer, PacketKind::Data, buf.len() - start);
                if retransmission {
                    peer.stats.retransmissions += 1;
                }
                let seq = peer.order.push(id, now);
                message.send_seq = seq;
                message.snapshot = Some(peer.delivery.on_send(now_ns, peer.in_flight - 1));
                peer.last_data_sent = Some(now);
                let messages = &self.messages;
                if peer.order.len() > 2 * peer.in_flight + 64 {
                    peer.order.retain(|sent| {
                        messages
                            .get(&sent.id)
                            .map_or(crate::loss::Liveness::Stale, |m| m.liveness(sent))
                    });
                }
                Some(super::recovery::transmission_may_move_deadline(
                    peer, messages, seq,
                ))
            }
            None => None,
        };
        if let Some(large) = resent_fragment {
            self.on_fragment_resent(to, large);
        }
        match may_move_deadline {
            Some(true) => self.arm_sender_timer(now, to),
            Some(false) => self.check_send_timer(now, to),
            None => {}
        }
        Step::Written(size, Some(PacketKind::Data))
    }

    /// The front order of `lane` when it is a RECV for the record `record`,
    /// awaiting its ACK.
    #[allow(clippy::too_many_arguments)]
    fn write_recv(
        &mut self,
        now: Instant,
        lane: Lane,
        to: SocketAddr,
        record: AwaitingId,
        identity: Identity,
        batch: &mut Option<Batch>,
        buf: &mut Vec<u8>,
    ) -> Step {
        let header_len = self.config.framing.header_len();
        let now_ns = self.nanos(now);
        // One look-up of the peer for the check, the writing and the
        // record's bookkeeping.
        let Some(peer) = self.peers.get_mut(&to) else {
            return Step::Drop;
        };
        if !peer.may_send(header_len, header_len) {
            self.stats.dropped.amplification_limited += 1;
            self.on_recv_withheld(to, record);
            return Step::Drop;
        }
        if !joins(batch, to, header_len, buf.len()) {
            return Step::Stop;
        }
        self.output.take_uncounted(lane);
        let start = buf.len();
        let framing = &self.config.framing;
        framing.extend_header_vec(PacketKind::Recv, identity, buf);
        stamp_sent_token(framing, &mut buf[start..], Some(peer));
        // It counts the datagram in the peer's stats too.
        let copies = super::receiver::on_recv_sent(
            &mut self.awaiting,
            &mut self.timers,
            peer,
            now,
            now_ns,
            to,
            record,
            buf.len() - start,
        );
        for _ in 0..copies {
            self.output
                .control
                .push_front(Order::RecvCopy(to, record, identity));
        }
        Step::Written(header_len, Some(PacketKind::Recv))
    }

    /// The front order of `lane` when it is a header-sized reply with no
    /// record behind it (ACK, RECV again, a RECV's copy): a packet of `kind`
    /// naming `identity`, to `to`.
    // Always: its one call is in the batch's loop.
    #[inline(always)]
    fn write_reply(
        &mut self,
        lane: Lane,
        to: SocketAddr,
        kind: PacketKind,
        identity: Identity,
        batch: &mut Option<Batch>,
        buf: &mut Vec<u8>,
    ) -> Step {
        let header_len = self.config.framing.header_len();
        let peer = self.peers.get_mut(&to);
        // An untracked address gets one reply per datagram it sent (ACK per
        // RECV, RECV per repeated DATA), never larger, so no amplification.
        if peer
            .as_deref()
            .is_some_and(|peer| !peer.may_send(header_len, header_len))
        {
            self.stats.dropped.amplification_limited += 1;
            return Step::Drop;
        }
        if !joins(batch, to, header_len, buf.len()) {
            return Step::Stop;
        }
        self.output.pop(lane);
        let start = buf.len();
        let framing = &self.config.framing;
        framing.extend_header_vec(kind, identity, buf);
        stamp_sent_token(framing, &mut buf[start..], peer.as_deref());
        if let Some(peer) = peer {
            count_outbound(peer, kind, buf.len() - start);
        }
        Step::Written(header_len, Some(kind))
    }

    /// The front order of `lane` when it is a validation probe to `to`.
    fn write_probe(
        &mut self,
        lane: Lane,
        to: SocketAddr,
        identity: Identity,
        batch: &mut Option<Batch>,
        buf: &mut Vec<u8>,
    ) -> Step {
        let header_len = self.config.framing.header_len();
        let peer = self.peers.get_mut(&to);
        if peer
            .as_deref()
            .is_some_and(|peer| !peer.may_probe(header_len))
        {
            self.stats.dropped.amplification_limited += 1;
            return Step::Drop;
        }
        if !joins(batch, to, header_len, buf.len()) {
            return Step::Stop;
        }
        self.output.pop(lane);
        let start = buf.len();
        let framing = &self.config.framing;
        framing.extend_header_vec(PacketKind::Recv, identity, buf);
        stamp_sent_token(framing, &mut buf[start..], peer.as_deref());
        if let Some(peer) = peer {
            count_outbound(peer, PacketKind::Recv, buf.len() - start);
        }
        Step::Written(header_len, Some(PacketKind::Recv))
    }

    /// The front order of `lane` when it is a raw datagram (the front of
    /// `Output::raw`).
    fn write_raw(&mut self, lane: Lane, batch: &mut Option<Batch>, buf: &mut Vec<u8>) -> Step {
        let Some((to, size)) = self
            .output
            .raw
            .front()
            .map(|(to, datagram)| (*to, datagram.len()))
        else {
            return Step::Drop;
        };
        if !joins(batch, to, size, buf.len()) {
            return Step::Stop;
        }
        self.output.pop(lane);
        if let Some((_, datagram)) = self.output.raw.pop_front() {
            buf.extend_from_slice(&datagram);
        }
        self.stats.raw_out += 1;
        if let Some(peer) = self.peers.get_mut(&to) {
            peer.stats.bytes_out += size as u64;
        }
        Step::Written(size, None)
    }

    /// A DATA to an address that has not proven it receives our datagrams
    /// would exceed its budget: hold it for one RTO (a real peer proves
    /// itself within a round trip or two), and fail it with
    /// [`FailureReason::Unvalidated`](crate::FailureReason) after
    /// `unvalidated_attempts` holds rather than keep it for its whole retry
    /// span, as a spoofed address would make us.
    fn hold_for_budget(&mut self, id: MessageId, to: SocketAddr) {
        // Remembered: the peer is asked for again below.
        let (Some(now), Some(peer)) = (self.latest, self.peers.get_remembered(&to)) else {
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
}

/// With the roaming extension, writes into `datagram` (just encoded) the
/// sender token its destination knows us by: its peer's, or, to an
/// untracked address, one that names nobody
/// ([`NO_TOKEN`](super::roaming::NO_TOKEN)).
#[inline(always)]
fn stamp_sent_token(
    framing: &crate::wire::Framing,
    datagram: &mut [u8],
    peer: Option<&super::peer::Peer>,
) {
    if framing.roaming() {
        let token = peer.map_or(super::roaming::NO_TOKEN, |peer| peer.sent_token);
        framing.stamp_token(datagram, token);
    }
}

/// Where a batch goes and the length of its segments, set by its first
/// datagram.
#[derive(Clone, Copy, Debug)]
struct Batch {
    destination: SocketAddr,
    segment: usize,
}

/// Whether a datagram of `size` bytes to `to` may join `batch` after the
/// `written` bytes already in it; the first datagram starts the batch
/// (sets its destination and segment length), since a datagram that fits
/// is always written.
#[inline]
fn joins(batch: &mut Option<Batch>, to: SocketAddr, size: usize, written: usize) -> bool {
    match batch {
        Some(batch) => {
            same_address(&to, &batch.destination)
                && size <= batch.segment
                && written + size <= MAX_BATCH_BYTES
        }
        None => {
            *batch = Some(Batch {
                destination: to,
                segment: size,
            });
            true
        }
    }
}

/// `a == b`, with an IPv4 address's four bytes and port compared as two
/// words (asked for every datagram after a batch's first).
#[inline(always)]
fn same_address(a: &SocketAddr, b: &SocketAddr) -> bool {
    match (a, b) {
        (SocketAddr::V4(a), SocketAddr::V4(b)) => {
            a.port() == b.port() && a.ip().to_bits() == b.ip().to_bits()
        }
        _ => a == b,
    }
}

/// What became of the front order of a lane.
enum Step {
    /// Written (into the batch it joined): its length as the batch counts
    /// it, and its kind (`None` for a raw datagram).
    Written(usize, Option<PacketKind>),
    /// Ready, but it does not fit the batch: it stays for the next one.
    Stop,
    /// Stale or unaffordable: it goes.
    Drop,
}

/// The endpoint's counts of what one `poll_transmit` wrote, added to its
/// stats once at the end rather than per datagram.
#[derive(Default)]
struct Tally {
    bytes: u64,
    /// DATA, RECV and ACK datagrams (by [`PacketKind::index`]), then raw
    /// ones (counted apart, in `EndpointStats::raw_out`).
    datagrams: [u64; 4],
}

impl Tally {
    #[inline]
    fn add(&mut self, kind: Option<PacketKind>, size: usize) {
        self.bytes += size as u64;
        self.datagrams[kind.map_or(3, PacketKind::index)] += 1;
    }

    #[inline]
    fn add_to(self, stats: &mut crate::stats::EndpointStats) {
        let [data, recv, ack, _raw] = self.datagrams;
        stats.bytes_out += self.bytes;
        stats.datagrams_out.data += data;
        stats.datagrams_out.recv += recv;
        stats.datagrams_out.ack += ack;
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
