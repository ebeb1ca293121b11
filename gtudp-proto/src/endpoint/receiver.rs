//! The receiving side: DATA handed over once, RECV until ACK, and the memory
//! of received identities that suppresses late duplicates.
//!
//! A received message passes through two stores. While its RECV awaits the
//! ACK it has a full [`AwaitingAck`] record with a resend timer; there are
//! about rate × RTT of those. Once the ACK arrives (or RECV attempts run
//! out) only its identity and payload fingerprint are kept, in the compact,
//! timer-free [`RememberedIdentities`](crate::remembered), for the retention
//! its [`Retention`] class gives.
//!
//! # Across a change of port
//!
//! Both stores know a message by its sender's *host* (its IP address), not
//! its address: a NAT that gives a flow a new public port mid-stream (a
//! rebinding) must not make a retransmission look new. A copy from another
//! port of the host is answered with RECV at the port it came from and
//! never handed over again ([`EndpointStats::rebound_duplicates`] counts
//! those that find their record still awaiting its ACK).
//!
//! The price is a false match between two senders behind one NAT (one IP
//! address, two ports): a new message matches a remembered one only if its
//! identity (32 bits, drawn at random by each sender) and its payload's
//! fingerprint (32 bits, keyed by this endpoint's secret) are both equal,
//! so with `n` messages of that host remembered, a new one matches with
//! probability at most `n × 2⁻⁶⁴`, or `n × 2⁻³²` if its payload is the same
//! bytes as theirs. A sender whose IP address changes is not recognised.
//!
//! [`EndpointStats::rebound_duplicates`]: crate::EndpointStats::rebound_duplicates

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::awaiting::{AwaitingId, KeyHash};
use super::peer_tracking::Countdown;
use super::{Endpoint, State};
use crate::event::Event;
use crate::remembered::{Fingerprint, Recall, Retention};
use crate::timer::TimerKey;
use crate::wire::{Identity, PacketKind};

/// The key of a record awaiting its ACK: where its sender's messages are
/// kept (see [`Endpoint::arrival_key`]) and the identity. The address the
/// DATA came from is in the record. Hashed as two words (an IPv4 address
/// and port, the identity), twice in a message's exchange (its DATA and
/// its ACK; see [`super::awaiting`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct AwaitingKey(pub(super) SocketAddr, pub(super) Identity);

impl core::hash::Hash for AwaitingKey {
    #[inline]
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        crate::table_hash::hash_address(&self.0, state);
        self.1.hash(state);
    }
}

/// Where what came from `source` is kept, without the roaming extension:
/// under its host, with port 0, when copies are recognised across ports
/// (see the module docs), else under its address.
pub(super) fn sender_key(across_ports: bool, source: &SocketAddr) -> SocketAddr {
    match across_ports {
        true => SocketAddr::new(source.ip(), 0),
        false => *source,
    }
}

/// Where what came from the endpoint named `token` is kept, with the
/// roaming extension on: a key shaped like an address, in the IPv6 block
/// reserved for discarding (`100::/64`, RFC 6666), with the token in its
/// low 64 bits. With the extension on every key is one of these, so none
/// is ever taken for a real address.
pub(super) fn token_key(token: u64) -> SocketAddr {
    let address = std::net::Ipv6Addr::from((0x0100_u128 << 112) | u128::from(token));
    SocketAddr::new(address.into(), 0)
}

/// What [`Endpoint::recognise`] found of a DATA.
pub(super) enum Known {
    /// A copy of a message handed over: answered, not to be taken.
    Repeat,
    /// A new message; `collision` when it reuses the identity of one
    /// awaited or remembered with another payload. No record awaits under
    /// its key, whose hash is `hash` (for the record [`Endpoint::take_data`]
    /// creates).
    New { collision: bool, hash: KeyHash },
}

/// A new DATA (or fragment) on its way to being taken.
#[derive(Debug)]
pub(super) struct NewData {
    /// Where its sender's messages are kept (see [`Endpoint::arrival_key`]).
    pub(super) kept_under: SocketAddr,
    pub(super) identity: Identity,
    pub(super) fingerprint: Fingerprint,
    pub(super) payload: Bytes,
    /// A fragment of a large message, not a whole one.
    pub(super) fragment: bool,
    /// When it arrived.
    pub(super) arrived: Instant,
}

/// One received message whose RECV has not been acknowledged yet.
#[derive(Debug)]
pub(super) struct AwaitingAck {
    /// The address its DATA came from: where its RECV goes.
    pub(super) from: SocketAddr,
    pub(super) fingerprint: Fingerprint,
    /// RECVs written for it (a copy sent back to back with one is not
    /// counted, see `recv_copies`).
    pub(super) transmissions: u32,
    /// When its first and its latest RECV were written, in nanoseconds
    /// from the endpoint's epoch (see `Endpoint::nanos`); meaningful once
    /// `transmissions` is above zero.
    pub(super) first_sent: u64,
    pub(super) last_sent: u64,
    /// The instant its live timer entry is set for (none before the first
    /// RECV is written).
    pub(super) timer: Option<Instant>,
    /// A RECV order for it waits in the output queue.
    pub(super) reply_pending: bool,
}

impl Endpoint {
    /// Whether copies are recognised across the ports of a host
    /// ([`Config::recognise_copies_across_ports`](crate::Config::recognise_copies_across_ports)).
    fn across_ports(&self) -> bool {
        self.config.recognise_copies_across_ports
    }

    /// Where what the datagram being handled, from `source`, names is
    /// kept: under its sender's token with the roaming extension on, else
    /// under its host or address ([`sender_key`]).
    pub(super) fn arrival_key(&self, source: &SocketAddr) -> SocketAddr {
        self.key_of(self.arrival_token, source)
    }

    /// Where what a datagram from `source` carrying the sender's `token`
    /// (if any) names is kept: see [`arrival_key`](Self::arrival_key).
    pub(super) fn key_of(&self, token: Option<u64>, source: &SocketAddr) -> SocketAddr {
        match token {
            Some(token) => token_key(token),
            None => sender_key(self.across_ports(), source),
        }
    }

    pub(super) fn on_data(
        &mut self,
        now: Instant,
        source: SocketAddr,
        identity: Identity,
        payload: Bytes,
        size: usize,
        fragment: bool,
    ) {
        let fingerprint = self.remembered_keys.fingerprint(&payload);
        let kept_under = self.arrival_key(&source);
        let known = self.recognise(now, source, kept_under, identity, fingerprint);
        let Known::New { collision, hash } = known else {
            self.count_duplicate(source, size);
            return;
        };
        if self.refuses_new_data() {
            return;
        }
        // An address that has not proven itself gets a probe, and its DATA
        // is held (or, past `max_unvalidated_peers`, not even that) until
        // it answers: nothing from it is handed over or remembered before.
        // (A tracked peer is found once: to tell, and to count the DATA
        // if it is taken.)
        let validated = match self.peers.get_mut(&source) {
            Some(peer) => {
                let validated = !peer.is_unvalidated();
                if validated {
                    count_inbound(peer, PacketKind::Data, size);
                }
                validated
            }
            None => {
                if !self.ensure_peer(now, source, true) {
                    self.defer_until_validated(source, size);
                    return;
                }
                let validated = !self
                    .peers
                    .get(&source)
                    .is_some_and(|peer| peer.is_unvalidated());
                if validated {
                    self.note_inbound(source, PacketKind::Data, size);
                }
                validated
            }
        };
        let data = NewData {
            kept_under,
            identity,
            fingerprint,
            payload,
            fragment,
            arrived: now,
        };
        if !validated {
            self.hold_until_validated(now, source, data, size);
            return;
        }
        // `take_data`'s checks, but for those that cannot fail here: new
        // data was not refused just above, and the sender is tracked.
        if !self.has_room_to_receive(&kept_under) {
            self.stats.dropped.data_unanswered_full += 1;
            return;
        }
        self.take_from_tracked(now, source, data, collision, hash);
    }

    /// Whether a DATA from `source` repeats a message handed over (from
    /// any port of its host) that is still awaited or remembered: if so it
    /// is answered with RECV here. Otherwise it is new; if it reuses the
    /// identity of an awaited message with another payload (a collision),
    /// that exchange is ended first, so its late copies stay recognised.
    #[inline(always)]
    pub(super) fn recognise(
        &mut self,
        now: Instant,
        source: SocketAddr,
        kept_under: SocketAddr,
        identity: Identity,
        fingerprint: Fingerprint,
    ) -> Known {
        let now_ns = self.nanos(now);
        let key = AwaitingKey(kept_under, identity);
        // One hash of the key: a new message's record is inserted with it.
        let hash = self.awaiting.hash(&key);
        let awaited = self.awaiting.find(hash, &key);
        let replaces_record = awaited.is_some();
        if let Some((id, record)) = awaited.filter(|(_, record)| record.fingerprint == fingerprint)
        {
            // A repeat: answer at once, never hand it over again.
            if record.from != source {
                // From another port of its host (the sender's NAT gave it
                // a new one), or, roaming, from another address. Answered
                // there; the record stays put.
                self.stats.rebound_duplicates += 1;
                self.queue_stateless_recv(source, identity);
                return Known::Repeat;
            }
            // A repeat a round trip after our RECV: the RECV was lost.
            let sent = (record.transmissions > 0).then_some(record.last_sent);
            if let (Some(sent), Some(peer)) = (sent, self.peers.get_mut(&source)) {
                if let Some(min_rtt) = peer.rtt.min() {
                    peer.recv_copies.on_repeat(
                        std::time::Duration::from_nanos(now_ns.saturating_sub(sent)),
                        record.transmissions,
                        min_rtt,
                    );
                }
            }
            let reply = !record.reply_pending;
            record.reply_pending = true;
            if reply {
                self.output.push_recv(source, id, identity);
            }
            return Known::Repeat;
        }
        let recall = self.remembered.recall(&kept_under, identity, fingerprint);
        if recall == Recall::Duplicate {
            self.queue_stateless_recv(source, identity);
            return Known::Repeat;
        }
        // The same identity as a message still awaited or remembered, with
        // another payload: a new message (typically from a sender that
        // restarted and drew its identities afresh).
        let collision = replaces_record || recall == Recall::Collision;
        if replaces_record {
            // Keep the earlier message's late copies recognisable.
            self.give_up_recv(now, key);
        }
        Known::New { collision, hash }
    }

    /// Takes a new message from a proven address (one that answered our
    /// probe or our DATA, or that we reached first): hands it over and
    /// answers it with RECV, or leaves it unanswered when a receive bound is
    /// reached (refused before answering: a DATA is never answered and then
    /// dropped). `hash` is its key's, from the [`recognise`](Self::recognise)
    /// that found it new just before.
    pub(super) fn take_data(
        &mut self,
        now: Instant,
        source: SocketAddr,
        data: NewData,
        collision: bool,
        hash: KeyHash,
    ) {
        if self.refuses_new_data() {
            return;
        }
        if !self.has_room_to_receive(&data.kept_under) || !self.ensure_peer(now, source, true) {
            self.stats.dropped.data_unanswered_full += 1;
            return;
        }
        self.take_from_tracked(now, source, data, collision, hash);
    }

    /// [`take_data`](Self::take_data) once new data is not refused, the
    /// receive bounds have room and `source` is tracked (inlined into a
    /// DATA's handling, which knows the last two already).
    #[inline(always)]
    fn take_from_tracked(
        &mut self,
        now: Instant,
        source: SocketAddr,
        data: NewData,
        collision: bool,
        hash: KeyHash,
    ) {
        let NewData {
            kept_under,
            identity,
            fingerprint,
            payload,
            fragment,
            ..
        } = data;
        // A fragment the reassembly cannot take is left unanswered, like a
        // DATA past a bound: its sender resends it.
        if fragment && !self.fragment_admissible(now, kept_under, &payload) {
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
        let header_len = self.config.framing.header_len();
        peer.recv_copies
            .on_taken(header_len + payload.len(), header_len);
        let record = AwaitingAck {
            from: source,
            fingerprint,
            transmissions: 0,
            first_sent: 0,
            last_sent: 0,
            timer: None,
            reply_pending: true,
        };
        let id = self
            .awaiting
            .insert(hash, AwaitingKey(kept_under, identity), record);
        peer.awaiting += 1;
        if collision {
            self.stats.identity_collisions += 1;
        }
        self.output.push_recv(source, id, identity);
        let payload = match fragment {
            false => payload,
            true => match self.take_fragment(now, kept_under, &payload) {
                Some(whole) => whole,
                None => return,
            },
        };
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

    /// Whether a new message from the sender whose messages are kept under
    /// `kept_under` fits every receive-side bound, including the room its
    /// identity will need in the remembered memory once its exchange ends
    /// (reserved for every record awaiting an ACK).
    pub(super) fn has_room_to_receive(&self, kept_under: &SocketAddr) -> bool {
        let limits = &self.config.limits;
        let reserve = (self.awaiting.len() + 1) * RESERVED_BYTES_PER_AWAITING;
        let remembered = self.remembered.bytes();
        // One address holds at most the whole memory: while the whole is
        // within the bound for one, the address's own bytes need no look-up
        // (with the default bounds, equal, on every message).
        let within_per_peer = |bytes: usize| {
            bytes + RESERVED_BYTES_PER_AWAITING <= limits.max_remembered_bytes_per_peer
        };
        self.unread < limits.max_unread
            && self.awaiting.len() < limits.max_awaiting_ack
            && remembered + reserve <= limits.max_remembered_bytes
            && (within_per_peer(remembered)
                || within_per_peer(self.remembered.bytes_for(kept_under)))
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
    pub(super) fn queue_stateless_recv(&mut self, source: SocketAddr, identity: Identity) {
        if self.output.pending_control >= self.config.limits.max_pending_control {
            self.stats.dropped.control_overflow += 1;
            return;
        }
        self.output.push_recv_again(source, identity);
    }

    /// An ACK from `source` that ends no exchange under its own key: the
    /// answer to a validation probe, or unknown.
    #[cold]
    fn on_unknown_ack(
        &mut self,
        now: Instant,
        source: SocketAddr,
        identity: Identity,
        size: usize,
    ) {
        self.note_inbound(source, PacketKind::Ack, size);
        if self.validation.verify(&source, identity) {
            self.on_probe_answered(now, source);
        } else {
            self.stats.dropped.ack_unknown += 1;
        }
    }

    /// With the roaming extension, the record awaiting an ACK for
    /// `identity` under the token the peer at `source` proved, when the
    /// ACK carried another: an endpoint that no longer tracks us answers a
    /// RECV with [`NO_TOKEN`](super::roaming::NO_TOKEN) (it closed, or
    /// forgot us), or with the token of a newer record. Ending the
    /// exchange so spares the RECV's resends; the ACK proves nothing.
    #[cold]
    fn awaiting_under_proven_token(
        &mut self,
        source: SocketAddr,
        identity: Identity,
    ) -> Option<(SocketAddr, (AwaitingId, AwaitingAck))> {
        let proven = self.peers.get(&source).and_then(|peer| peer.token)?;
        if self.arrival_token == Some(proven) {
            return None;
        }
        let kept_under = token_key(proven);
        let removed = self.awaiting.remove(&AwaitingKey(kept_under, identity))?;
        Some((kept_under, removed))
    }

    pub(super) fn on_ack(
        &mut self,
        now: Instant,
        source: SocketAddr,
        identity: Identity,
        size: usize,
    ) {
        // From any port of the host: after a rebinding, the ACK of a RECV
        // answered at the new port.
        let mut kept_under = self.arrival_key(&source);
        let (id, record) = match self.awaiting.remove(&AwaitingKey(kept_under, identity)) {
            Some(removed) => removed,
            None => match self.awaiting_under_proven_token(source, identity) {
                Some((key, removed)) => {
                    kept_under = key;
                    removed
                }
                None => return self.on_unknown_ack(now, source, identity, size),
            },
        };
        // Its timer entry is stale now. RECVs are acknowledged in about the
        // order they were sent, so it is usually its lane's front: gone
        // there at the cost of a comparison, rather than a lookup of this
        // record in a purge.
        if let Some(at) = record.timer {
            self.timers.remove_if_front(at, TimerKey::Received(id));
        }
        let now_ns = self.nanos(now);
        let since = |sent: u64| now_ns.saturating_sub(sent);
        // Acknowledged from where its DATA came (else from another port of
        // its host, or, roaming, from another address).
        let from_source = record.from == source;
        // This ACK validates nothing: the identity it names was chosen by
        // the DATA's sender, so whoever forged the DATA can forge it too.
        // (One look-up of the peer: it is usually the DATA's sender too,
        // whose count of awaited records the exchange's end lowers.)
        let mut idle = None;
        let mut released = false;
        if let Some(peer) = self.peers.get_mut(&source) {
            count_inbound(peer, PacketKind::Ack, size);
            let sample = match record.transmissions {
                // Karn's rule: a RECV written once.
                1 if from_source => Some(since(record.first_sent)),
                // Written twice, and the ACK came sooner after the second
                // than any round trip: it answers the first, whose RTT is
                // exact (Eifel's test, as for a DATA resent too soon). A
                // queue that grows past the RTO makes every RECV go out
                // twice; without these samples none would be taken, and the
                // estimate would stay below the path's RTT for good.
                2 if from_source
                    && peer
                        .rtt
                        .min_ns()
                        .is_some_and(|min| since(record.last_sent) < min) =>
                {
                    Some(since(record.first_sent))
                }
                _ => None,
            };
            if let Some(sample) = sample {
                peer.on_rtt_sample_ns(sample, now_ns);
                // A shorter RTO or probe timeout for what we send it.
                peer.send_deadline_moved = true;
            }
            if from_source {
                idle = release_awaiting(peer, now, self.config.peer_idle_timeout);
                released = true;
            }
        }
        if !released && !from_source {
            idle = self.release_awaiting(now, record.from);
        }
        self.remember_ended(
            now,
            AwaitingKey(kept_under, identity),
            &record,
            Retention::Lifetime,
            idle,
        );
    }

    pub(super) fn on_received_timer(&mut self, now: Instant, at: Instant, id: AwaitingId) {
        let Some((key, record)) = self.awaiting.get_mut(id) else {
            return;
        };
        let identity = key.1;
        if record.timer != Some(at) {
            return;
        }
        record.timer = None;
        let source = record.from;
        let max_attempts = self.config.recv_max_attempts;
        if record.transmissions >= max_attempts {
            self.give_up_recv(now, key);
        } else if !record.reply_pending {
            record.reply_pending = true;
            self.stats.recv_retransmissions += 1;
            self.output.push_recv(source, id, identity);
        }
    }

    /// A RECV withheld by the amplification budget: stop resending it.
    pub(super) fn on_recv_withheld(&mut self, source: SocketAddr, id: AwaitingId) {
        let Some(now) = self.latest else {
            return;
        };
        let key = match self.awaiting.get_mut(id) {
            Some((key, record)) if record.from == source => key,
            _ => return,
        };
        self.give_up_recv(now, key);
    }

    /// Ends a RECV exchange without its ACK: the sender may still be
    /// resending, so the identity is remembered for `remember_window`.
    pub(super) fn give_up_recv(&mut self, now: Instant, key: AwaitingKey) {
        let Some((_, record)) = self.awaiting.remove(&key) else {
            return;
        };
        self.end_exchange(now, key, &record, Retention::Window);
    }

    /// Moves the identity of `record` (removed from `awaiting`, where it was
    /// kept under `key`) into the remembered memory for the retention of
    /// `class`, and starts its peer's idle countdown if it holds nothing
    /// more.
    fn end_exchange(
        &mut self,
        now: Instant,
        key: AwaitingKey,
        record: &AwaitingAck,
        class: Retention,
    ) {
        let idle = self.release_awaiting(now, record.from);
        self.remember_ended(now, key, record, class, idle);
    }

    /// One record of `source`'s ended: lowers its count of awaited
    /// records, and returns the idle countdown it starts if that
    /// leaves it idle (see [`release_awaiting`]).
    fn release_awaiting(&mut self, now: Instant, source: SocketAddr) -> Option<Countdown> {
        let timeout = self.config.peer_idle_timeout;
        let peer = self.peers.get_mut(&source)?;
        release_awaiting(peer, now, timeout)
    }

    /// The second half of [`end_exchange`](Self::end_exchange), once the
    /// record's peer was released (`idle`, from [`release_awaiting`]).
    fn remember_ended(
        &mut self,
        now: Instant,
        AwaitingKey(kept_under, identity): AwaitingKey,
        record: &AwaitingAck,
        class: Retention,
        idle: Option<Countdown>,
    ) {
        let (source, fingerprint) = (record.from, record.fingerprint);
        // The idle countdown starts after the insertion, as `note_if_idle`
        // would (the insertion touches no peer).
        let limits = &self.config.limits;
        self.remembered.insert_bounded(
            now,
            kept_under,
            identity,
            fingerprint,
            class,
            limits.max_remembered_bytes,
            limits.max_remembered_bytes_per_peer,
        );
        if let Some(countdown) = idle {
            self.start_idle_countdown(source, countdown);
        }
    }

    /// Counts an inbound gtUDP datagram against its peer, if tracked.
    pub(super) fn note_inbound(&mut self, source: SocketAddr, kind: PacketKind, size: usize) {
        if let Some(peer) = self.peers.get_mut(&source) {
            count_inbound(peer, kind, size);
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

/// A record of `peer`'s ended: its count of awaited records goes down, and
/// if that leaves it idle its idle countdown starts (and is returned, for
/// `Endpoint::start_idle_countdown`).
fn release_awaiting(
    peer: &mut super::peer::Peer,
    now: Instant,
    timeout: Duration,
) -> Option<Countdown> {
    peer.awaiting -= 1;
    super::peer_tracking::idle_from(peer, now, timeout)
}

/// [`Endpoint::note_inbound`] where the peer is at hand.
fn count_inbound(peer: &mut super::peer::Peer, kind: PacketKind, size: usize) {
    peer.stats.datagrams_in.add(kind);
    peer.stats.bytes_in += size as u64;
}

/// Room kept in the remembered memory for each record awaiting its ACK, so
/// that moving it there never pushes the memory past its bound by more than
/// this per record: an entry, or the smallest new table and history.
pub(super) const RESERVED_BYTES_PER_AWAITING: usize = 16;

/// The RECV for record `id` was just written to `peer` at `source` (`size`
/// bytes, at `now`, `now_ns` on the endpoint's clock): counts it in the
/// peer's stats, marks the record answered and sets its resend deadline;
/// returns how many copies of it to write next (see [`super::recv_copies`]).
///
/// The caller's one look-up of the peer serves the check, the writing and
/// this (a function of the endpoint's parts, not a method, so that the peer
/// stays borrowed from the table).
#[allow(clippy::too_many_arguments)]
#[inline]
pub(super) fn on_recv_sent(
    awaiting: &mut super::awaiting::AwaitingRecords,
    timers: &mut crate::timer::TimerQueue,
    peer: &mut super::peer::Peer,
    now: Instant,
    now_ns: u64,
    source: SocketAddr,
    id: AwaitingId,
    size: usize,
) -> u8 {
    super::output::count_outbound(peer, PacketKind::Recv, size);
    let copies = peer.recv_copies.copies();
    let Some((_, record)) = awaiting
        .get_mut(id)
        .filter(|(_, record)| record.from == source)
    else {
        return copies;
    };
    record.reply_pending = false;
    record.transmissions += 1;
    if record.transmissions == 1 {
        record.first_sent = now_ns;
    }
    record.last_sent = now_ns;
    let at = now + peer.timeouts().recv_after(record.transmissions);
    // Repeats answered in one instant past the backoff's ceiling want
    // the same instant: one live entry serves them all.
    if record.timer != Some(at) {
        record.timer = Some(at);
        timers.push(at, TimerKey::Received(id));
    }
    copies
}
