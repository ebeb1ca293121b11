//! The sans-IO endpoint: every gtUDP exchange with any number of peers over
//! one socket, without doing any I/O.

mod awaiting;
pub(crate) use awaiting::AwaitingId;
mod large;
mod messages;
mod output;
mod path_mtu;
mod peer;
mod peer_table;
mod peer_tracking;
mod prefetch;
mod receiver;
mod recovery;
mod recv_copies;
mod roaming;
mod sender;
mod spurious;
mod table_sizes;
mod too_large;
mod unreachable;
mod validating;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::{Buf, Bytes};

use crate::config::{Config, ConfigError, SendOptions};
use crate::error::{SendError, SendRawError, UnknownMessage};
use crate::event::{Event, FailureReason, MessageId, Transmit};
use crate::identities::IdentityGenerator;
use crate::remembered::{Keys, RememberedIdentities};
use crate::stats::{EndpointStats, PeerStats};
use crate::timer::{TimerKey, TimerQueue};
use crate::validation::ValidationTokens;
use crate::wire::{Identity, Packet};
use peer_tracking::IdleEntry;

use output::Output;
use peer::Peer;
use peer_table::PeerTable;
pub use table_sizes::{BoundExceeded, TableSizes};

/// The hash maps of the endpoint: hashbrown with foldhash keyed from the
/// endpoint's seed, so iteration order (and so every output) is a function of
/// the seed and the inputs alone.
type Map<K, V> = hashbrown::HashMap<K, V, crate::table_hash::TableHashState>;

/// One gtUDP endpoint: guaranteed delivery to and from any number of peers
/// over one UDP socket, as a pure state machine.
///
/// The endpoint never touches a socket, a clock or a random source: an
/// adapter (or a test) moves datagrams and time in and out.
///
/// # Call contract
///
/// - **Inputs**: [`handle_datagram`](Self::handle_datagram) for every
///   datagram the socket receives, [`handle_timeout`](Self::handle_timeout)
///   when the instant from [`poll_timeout`](Self::poll_timeout) is reached,
///   and the application's calls ([`send`](Self::send),
///   [`send_raw`](Self::send_raw), [`cancel`](Self::cancel),
///   [`close`](Self::close)).
/// - **Outputs**: after any input, drain [`poll_transmit`](Self::poll_transmit)
///   until it returns `None` and send what it gives, drain
///   [`poll_event`](Self::poll_event), then ask
///   [`poll_timeout`](Self::poll_timeout) when to call `handle_timeout` next.
/// - **Time**: every `now` is an argument; it must never go backwards (an
///   earlier `now` is treated as the latest one seen). Virtual time works as
///   well as real time.
///
/// # Addresses
///
/// An IPv4-mapped IPv6 address (`[::ffff:a.b.c.d]:p`, how a dual-stack
/// socket sees an IPv4 peer) and the plain IPv4 address `a.b.c.d:p` are the
/// same peer. Every address given to the endpoint is turned into
/// [`canonical_addr`](crate::canonical_addr)'s form (plain IPv4), and every
/// address the endpoint gives out (events, transmits, peers) is in that form.
///
/// With the roaming extension
/// ([`Framing::with_roaming`](crate::wire::Framing::with_roaming)), a peer
/// is known by the token it sends: when a new address of it proves itself,
/// the peer moves there, and sends to its former address follow it (see
/// `docs/address-changes.md`).
///
/// # Guarantees
///
/// Each message given to `send` ends in exactly one [`Event::Delivered`] or
/// [`Event::Failed`]. Every table is bounded by [`Limits`](crate::Limits);
/// no datagram, however malformed, panics.
///
/// **Exactly once.** A message is handed over as [`Event::Received`] at most
/// once for as long as its sender may retransmit it (its
/// `remember_window`, or `datagram_lifetime` after our RECV was
/// acknowledged), and a DATA is answered with RECV only once it is handed
/// over. No memory bound, no traffic from any address and no pattern of
/// loss breaks either: a full table refuses or delays *new* messages (left
/// unanswered, so their senders resend), and never forgets what protects a
/// hand-over. This holds because a message is taken only from an address
/// that proved it reads our datagrams (or that we sent to first): a new
/// address's DATA is held, unanswered, until it answers a validation probe,
/// and what is held may be dropped at no cost (see
/// [`Limits`](crate::Limits) on validation). An honest new peer pays one
/// round trip for it, once.
///
/// # Example
///
/// Two endpoints exchanging a message in memory:
///
/// ```
/// use std::time::Instant;
/// use bytes::Bytes;
/// use gtudp_proto::{Config, Endpoint, Event};
///
/// let (a_addr, b_addr) = ("127.0.0.1:1000".parse()?, "127.0.0.1:2000".parse()?);
/// let mut a = Endpoint::new(Config::default(), 1)?;
/// let mut b = Endpoint::new(Config::default(), 2)?;
/// let now = Instant::now();
///
/// let id = a.send(now, b_addr, Bytes::from_static(b"hello")).unwrap();
///
/// // Move datagrams between the two until both are quiet.
/// let mut buf = Vec::new();
/// loop {
///     let mut moved = false;
///     while let Some(t) = a.poll_transmit(now, 1, &mut buf) {
///         b.handle_datagram(now, a_addr, Bytes::copy_from_slice(&buf[..t.size]));
///         moved = true;
///     }
///     while let Some(t) = b.poll_transmit(now, 1, &mut buf) {
///         a.handle_datagram(now, b_addr, Bytes::copy_from_slice(&buf[..t.size]));
///         moved = true;
///     }
///     if !moved { break; }
/// }
///
/// assert_eq!(b.poll_event(), Some(Event::Received { from: a_addr, payload: Bytes::from_static(b"hello") }));
/// assert_eq!(a.poll_event(), Some(Event::Delivered { id, to: b_addr, suspected_lost: false }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Endpoint {
    config: Config,
    identities: IdentityGenerator,
    /// The latest `now` seen; earlier ones are raised to it.
    latest: Option<Instant>,
    /// The first `now` seen: the origin of the nanosecond counts the hot
    /// paths subtract (see [`nanos`](Self::nanos)).
    epoch: Option<Instant>,
    /// `latest` in nanoseconds since `epoch`.
    latest_ns: u64,
    /// [`Config::max_retry_span`] in nanoseconds: no message is sent again
    /// once that long has passed since its first transmission.
    retry_span_ns: u64,
    next_message_id: u64,
    peers: PeerTable,
    /// Peers that went idle, oldest first, with the idle deadline they got
    /// then: the candidates for eviction when the peer table is full.
    /// Entries whose peer has since become busy, idle again or gone are
    /// stale and skipped: an entry is live only while it names the peer's
    /// serial and latest countdown (`Peer::idle_countdowns`), so a peer has
    /// one live entry at most, even when it goes idle twice, or is
    /// forgotten and tracked again, in one instant.
    ///
    /// Every deadline is `peer_idle_timeout` after the instant the peer
    /// went idle, and time never goes back, so the queue is in deadline
    /// order too: one timer entry, for its front, forgets each peer when
    /// its deadline comes (see `on_idle_peers_timer`). A server whose every
    /// peer goes idle between messages pushes no timer entry a message for
    /// it.
    idle_peers: VecDeque<IdleEntry>,
    /// The instant the live `TimerKey::IdlePeers` entry is set for.
    idle_timer: Option<Instant>,
    /// Peers that reached us first, in the order they did, with their
    /// serial and the instant they joined the queue (a peer passed over
    /// because it holds our messages joins again at the back, so the
    /// instants never decrease): the candidates for eviction. Entries whose
    /// peer was validated or is gone are stale and skipped.
    unvalidated_peers: VecDeque<(SocketAddr, u64, Instant)>,
    /// Peers tracked now that are unvalidated (at most
    /// `max_unvalidated_peers`).
    unvalidated_count: usize,
    /// DATA held from unvalidated peers until they prove themselves, in
    /// all (see `validating`).
    held_count: usize,
    /// Their payload bytes (at most `max_held_bytes_unvalidated`).
    held_bytes: usize,
    /// Messages held for unvalidated peers that were evicted before they
    /// proved themselves, by address: they go out if the address answers
    /// its probe in time (its validation re-creates the peer), and fail as
    /// unvalidated at their next hold timer otherwise. Never sent to an
    /// untracked address. At most `max_outstanding_messages` in all.
    parked: Map<SocketAddr, peer_tracking::Parked>,
    /// Numbers peers in creation order, to tell a peer from a later one at
    /// the same address.
    next_peer_serial: u64,
    /// Tracked peers that are suspect or gone after an unreachable report
    /// (see `unreachable`): while 0, a datagram needs no look for them.
    flagged_peers: usize,
    /// Unresolved messages, found by their id's slot (see `messages`).
    messages: messages::Messages,
    /// Large messages on their way out, by the id the application holds
    /// (their fragments are in `messages`).
    large_sends: Map<MessageId, large::LargeSend>,
    /// Incomplete large messages on their way in.
    reassembly: crate::reassembly::Reassembly,
    /// Identity of every accepted, unresolved message (unique: see
    /// [`crate::identities`]).
    by_identity: Map<Identity, MessageId>,
    /// Received messages whose RECV awaits its ACK.
    awaiting: awaiting::AwaitingRecords,
    /// Identities whose RECV exchange ended, kept to suppress late copies.
    remembered: RememberedIdentities,
    remembered_keys: Keys,
    /// Issues and checks the tokens validation probes carry.
    validation: ValidationTokens,
    timers: TimerQueue,
    output: Output,
    events: VecDeque<Event>,
    /// `Received` and `Foreign` events not yet polled.
    unread: usize,
    /// Messages accepted by `send` whose outcome has not been polled.
    outstanding: usize,
    state: State,
    /// New DATA is left unanswered while set (see `set_receive_paused`).
    receive_paused: bool,
    stats: EndpointStats,
    /// Transmissions found lost, reused so detection allocates nothing.
    scratch_lost: Vec<crate::loss::Sent>,
    /// The sender token of the datagram being handled, with the roaming
    /// extension on (see [`roaming`]); `None` otherwise.
    arrival_token: Option<u64>,
    /// With the roaming extension, the address of the peer that proved
    /// each token last (one per tracked peer at most).
    tokens: Map<u64, SocketAddr>,
    /// With the roaming extension, the former addresses of peers that
    /// moved, and their tokens (at most `max_peers`).
    moved: Map<SocketAddr, u64>,
    /// With the roaming extension, the key of the tokens we send: each
    /// destination gets its own (see [`roaming`]).
    sent_token_key: (u64, u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Open,
    Draining { deadline: Instant },
    Closed,
}

impl Endpoint {
    /// A new endpoint with `config`, its secrets derived from `seed`.
    ///
    /// The seed keys the permutation that chooses message identities and the
    /// hashing of every table: adapters draw it from the operating system; a
    /// test passes a fixed value for a reproducible run. Two endpoints given
    /// the same seed and the same inputs produce the same outputs.
    pub fn new(config: Config, seed: u128) -> Result<Self, ConfigError> {
        config.validate()?;
        let (high, low) = ((seed >> 64) as u64, seed as u64);
        let hasher = crate::table_hash::TableHashState::with_seed(mix(high ^ mix(low)));
        let first_counter = mix(low.rotate_left(17) ^ high) as u32;
        let remembered_keys = Keys {
            position: mix(high.rotate_left(29) ^ low ^ 0xa5a5),
            fingerprint: foldhash::fast::FixedState::with_seed(mix(low.rotate_left(41) ^ !high)),
        };
        Ok(Self {
            identities: IdentityGenerator::new((mix(high), mix(low ^ 0x5151)), first_counter),
            latest: None,
            epoch: None,
            latest_ns: 0,
            retry_span_ns: u64::try_from(config.max_retry_span().as_nanos()).unwrap_or(u64::MAX),
            next_message_id: 0,
            peers: PeerTable::with_hasher(hasher),
            idle_peers: VecDeque::new(),
            idle_timer: None,
            unvalidated_peers: VecDeque::new(),
            unvalidated_count: 0,
            held_count: 0,
            held_bytes: 0,
            parked: Map::with_hasher(hasher),
            next_peer_serial: 0,
            flagged_peers: 0,
            messages: messages::Messages::default(),
            large_sends: Map::with_hasher(hasher),
            reassembly: crate::reassembly::Reassembly::new(hasher),
            by_identity: Map::with_hasher(hasher),
            awaiting: awaiting::AwaitingRecords::with_hasher(hasher),
            remembered: RememberedIdentities::new(
                remembered_keys,
                hasher,
                config.datagram_lifetime,
                // A copy the sender writes at the end of its retry span
                // (which `remember_window` covers) may still take a
                // datagram's lifetime to arrive.
                config
                    .remember_window
                    .saturating_add(config.datagram_lifetime),
            ),
            remembered_keys,
            validation: ValidationTokens::new(
                (mix(high ^ 0x7a11_da7e), mix(low.rotate_left(7) ^ 0x70c3)),
                config.max_rto,
            ),
            timers: TimerQueue::default(),
            output: Output::default(),
            events: VecDeque::new(),
            unread: 0,
            outstanding: 0,
            state: State::Open,
            receive_paused: false,
            stats: EndpointStats::default(),
            scratch_lost: Vec::new(),
            arrival_token: None,
            tokens: Map::with_hasher(hasher),
            moved: Map::with_hasher(hasher),
            sent_token_key: (mix(low ^ 0x5e7d_70c3), mix(high.rotate_left(11) ^ !low)),
            config,
        })
    }

    // ----- getters -------------------------------------------------------

    /// The configuration the endpoint was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Counters for the whole endpoint.
    pub fn stats(&self) -> EndpointStats {
        self.stats
    }

    /// Counters and the current RTT estimate for one peer, while it is
    /// tracked (peers idle for `peer_idle_timeout` are forgotten).
    pub fn peer_stats(&self, peer: SocketAddr) -> Option<PeerStats> {
        self.peers
            .get(&crate::canonical_addr(peer))
            .map(Peer::snapshot)
    }

    /// The addresses of the peers tracked now, in no particular order.
    pub fn peers(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.peers.keys().copied()
    }

    /// The current size of every table, to check them against
    /// [`Limits`](crate::Limits).
    pub fn table_sizes(&self) -> TableSizes {
        let queued = self.peers.values().map(|peer| peer.queue.len());
        debug_assert_eq!(
            self.unvalidated_count,
            self.peers
                .values()
                .filter(|peer| peer.is_unvalidated())
                .count(),
            "unvalidated peer count out of step with the peer table"
        );
        debug_assert_eq!(
            self.flagged_peers,
            self.peers.values().filter(|peer| peer.is_flagged()).count(),
            "suspect peer count out of step with the peer table"
        );
        TableSizes {
            peers: self.peers.len(),
            idle_peers: self.idle_peers.len(),
            unvalidated_peers: self.unvalidated_count,
            held_for_validation: self.held_count,
            held_for_validation_bytes: self.held_bytes,
            largest_peer_held: self
                .peers
                .values()
                .map(|peer| peer.held_data.len())
                .max()
                .unwrap_or(0),
            messages: self.messages.len(),
            outstanding: self.outstanding,
            queued: queued.clone().sum(),
            largest_peer_queue: queued.max().unwrap_or(0),
            awaiting_ack: self.awaiting.len(),
            largest_peer_awaiting_ack: self
                .peers
                .values()
                .map(|peer| peer.awaiting)
                .max()
                .unwrap_or(0),
            remembered: self.remembered.len(),
            remembered_bytes: self.remembered.bytes(),
            largest_peer_remembered_bytes: self.remembered.largest_bytes_for_one(),
            reassembly_bytes: self.reassembly.bytes(),
            largest_peer_reassembly_bytes: self.reassembly.largest_sender_bytes(),
            unread: self.unread,
            events: self.events.len(),
            pending_control: self.output.pending_control,
            pending_raw: self.output.pending_raw,
            pending_transmits: self.output.len(),
            timers: self.timers.len(),
            largest_send_order: self
                .peers
                .values()
                .map(|peer| peer.order.len())
                .max()
                .unwrap_or(0),
        }
    }

    /// Whether [`poll_transmit`](Self::poll_transmit) may have datagrams to
    /// write, in O(1). It can be true when the only orders left turn out to
    /// be stale (their message resolved meanwhile); `poll_transmit` then
    /// returns `None`. False means there is nothing to send.
    pub fn has_pending_transmits(&self) -> bool {
        !self.output.is_empty()
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closing(&self) -> bool {
        self.state != State::Open
    }

    /// Whether the endpoint has closed: every message resolved (or failed at
    /// the drain deadline), every RECV acknowledged or given up, and every
    /// datagram handed to `poll_transmit`. Events may still wait in
    /// [`poll_event`](Self::poll_event).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed && self.output.is_empty()
    }

    // ----- inputs --------------------------------------------------------

    /// Feeds one datagram received from `source` at `now`.
    ///
    /// Any bytes are accepted: a gtUDP packet is processed, anything else is
    /// counted by reason and dropped, or handed over as [`Event::Foreign`]
    /// when configured. A DATA's payload is a slice of `datagram`, not a copy.
    /// A caller whose datagrams sit in a receive buffer it reuses should
    /// call [`handle_datagram_slice`](Self::handle_datagram_slice) instead.
    ///
    /// Datagrams handed in at the same `now` are taken as one batch read at
    /// once (hand a `recvmmsg` batch in with one clock reading, as both
    /// adapters do): of the RTT samples a peer's RECVs and ACKs give at one
    /// instant, the first is smoothed into its estimate and the rest only
    /// lower its minimum, and its congestion controller changes mode once
    /// per instant (but for the end of Drain), as QUIC's do once per ACK
    /// frame. Every confirmation still counts in the delivery rate and the
    /// loss statistics.
    pub fn handle_datagram(&mut self, now: Instant, source: SocketAddr, datagram: Bytes) {
        self.handle_input(now, source, Input::Owned(datagram));
    }

    /// Feeds one datagram received from `source` at `now`, borrowed from
    /// the caller's receive buffer: as
    /// [`handle_datagram`](Self::handle_datagram), but only what the
    /// endpoint keeps is copied, a DATA's payload (or a foreign datagram
    /// handed over). RECV and ACK, two of the three datagrams of every
    /// message, cost no allocation.
    ///
    /// ```
    /// use std::time::Instant;
    /// use gtudp_proto::{Config, Endpoint};
    ///
    /// let mut endpoint = Endpoint::new(Config::default(), 7).unwrap();
    /// let mut buffer = [0u8; 2048];
    /// buffer[..5].copy_from_slice(b"hello"); // as a receive call fills it
    /// endpoint.handle_datagram_slice(Instant::now(), "127.0.0.1:9".parse().unwrap(), &buffer[..5]);
    /// assert_eq!(endpoint.stats().invalid.total(), 1); // not a gtUDP packet
    /// ```
    pub fn handle_datagram_slice(&mut self, now: Instant, source: SocketAddr, datagram: &[u8]) {
        self.handle_input(now, source, Input::Borrowed(datagram));
    }

    fn handle_input(&mut self, now: Instant, source: SocketAddr, datagram: Input<'_>) {
        let source = crate::canonical_addr(source);
        let now = self.advance(now);
        let bytes = datagram.as_slice();
        self.stats.bytes_in += bytes.len() as u64;
        if self.state == State::Closed {
            // The peer's RECV resends would otherwise run to their limit:
            // an ACK needs no state and is no larger than the RECV.
            match self.config.framing.parse(bytes) {
                Ok(Packet::Recv { identity }) => self.queue_ack(source, identity),
                _ => self.stats.dropped.after_close += 1,
            }
            return;
        }
        let header_len = self.config.framing.header_len();
        self.arrival_token = self.config.framing.sender_token(bytes);
        // A fragment of a large message is a DATA to every step below but
        // the last (see `large`).
        let packet = match self.config.framing.parse(bytes) {
            Ok(Packet::Data { identity, .. }) => {
                Ok((crate::wire::PacketKind::Data, identity, false))
            }
            Ok(packet) => Ok((packet.kind(), packet.identity(), false)),
            Err(crate::wire::NotGtudp::UnknownType) if self.is_fragment(bytes) => {
                let mut identity = [0u8; crate::wire::Identity::LEN];
                identity
                    .copy_from_slice(&bytes[header_len - crate::wire::Identity::LEN..header_len]);
                let identity = crate::wire::Identity::from_bytes(identity);
                Ok((crate::wire::PacketKind::Data, identity, true))
            }
            Err(reason) => Err(reason),
        };
        match packet {
            Err(reason) => self.on_foreign(source, reason, datagram.into_bytes()),
            Ok((kind, identity, fragment)) => {
                self.stats.datagrams_in.add(kind);
                if self.flagged_peers > 0 {
                    self.heard_from(now, source);
                }
                let size = bytes.len();
                match kind {
                    crate::wire::PacketKind::Data => {
                        let payload = datagram.into_payload(header_len);
                        if fragment && crate::wire::FragmentHeader::is_probe(&payload) {
                            self.answer_path_probe(source, identity, size);
                        } else {
                            self.on_data(now, source, identity, payload, size, fragment)
                        }
                    }
                    crate::wire::PacketKind::Recv => self.on_recv(now, source, identity, size),
                    crate::wire::PacketKind::Ack => self.on_ack(now, source, identity, size),
                }
            }
        }
        self.arrival_token = None;
        self.finish_close_if_drained();
        self.compact();
    }

    /// Runs every timer due at `now`: retransmissions, attempt limits,
    /// deadlines, the end of duplicate windows, idle peers, the grace of
    /// peers reported unreachable, the drain deadline.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.advance(now);
        while let Some((at, key)) = self.timers.pop_due(now) {
            match key {
                TimerKey::Message(id) => self.on_message_timer(now, at, id),
                TimerKey::Sender(peer) => self.on_sender_timer(now, at, peer),
                TimerKey::Received(id) => self.on_received_timer(now, at, id),
                TimerKey::IdlePeers => self.on_idle_peers_timer(now, at),
                TimerKey::Probe(peer) => self.on_probe_timer(now, at, peer),
                TimerKey::Unreachable(peer) => self.on_unreachable_timer(now, at, peer),
                TimerKey::PathMtu(peer) => self.on_path_mtu_timer(now, at, peer),
                TimerKey::Drain => {
                    if self.state == (State::Draining { deadline: at }) {
                        self.finish_close();
                    }
                }
            }
        }
        self.finish_close_if_drained();
        self.compact();
    }

    // ----- application calls ----------------------------------------------

    /// Sends `payload` to `destination` with guaranteed delivery and the
    /// configured attempt limit; see [`send_with`](Self::send_with).
    pub fn send(
        &mut self,
        now: Instant,
        destination: SocketAddr,
        payload: Bytes,
    ) -> Result<MessageId, SendError> {
        self.send_with(now, destination, payload, SendOptions::default())
    }

    /// Sends `payload` to `destination` with per-message options.
    ///
    /// The message goes out as soon as the peer's congestion window allows;
    /// until then it waits in the peer's bounded queue. It ends in exactly one
    /// [`Event::Delivered`] or [`Event::Failed`] carrying the returned id.
    /// A refused send hands the payload back in the [`SendError`].
    pub fn send_with(
        &mut self,
        now: Instant,
        destination: SocketAddr,
        payload: Bytes,
        options: SendOptions,
    ) -> Result<MessageId, SendError> {
        let now = self.advance(now);
        let destination = self.follow_move(crate::canonical_addr(destination));
        let accepted = match self.needs_fragments(payload.len(), destination) {
            true => self.accept_large_message(now, destination, payload, options),
            false => self.accept_message(now, destination, payload, options, None),
        };
        self.compact();
        accepted
    }

    /// Stops trying to deliver a message; it ends in [`Event::Failed`] with
    /// [`FailureReason::Cancelled`] (the payload may already have arrived).
    pub fn cancel(&mut self, id: MessageId) -> Result<(), UnknownMessage> {
        // A message exists only after `send(now, ..)`, so `latest` is set.
        let Some(now) = self.latest else {
            return Err(UnknownMessage(id));
        };
        // A fragment's internal id is not the application's to cancel.
        let own = |message: &sender::Message| !message.is_fragment() && !message.probe;
        if self.messages.get(&id).is_some_and(own) {
            self.resolve(now, id, Err(FailureReason::Cancelled));
        } else if !self.cancel_large(now, id) {
            return Err(UnknownMessage(id));
        }
        self.finish_close_if_drained();
        self.compact();
        Ok(())
    }

    /// Queues a datagram sent as is, without gtUDP framing or guarantees,
    /// for peers that do not speak gtUDP.
    pub fn send_raw(
        &mut self,
        destination: SocketAddr,
        datagram: Bytes,
    ) -> Result<(), SendRawError> {
        if self.state == State::Closed {
            return Err(SendRawError::Closed);
        }
        if datagram.len() > crate::config::MAX_UDP_PAYLOAD {
            return Err(SendRawError::TooLarge {
                size: datagram.len(),
            });
        }
        if self.output.pending_raw >= self.config.limits.max_pending_raw {
            return Err(SendRawError::QueueFull);
        }
        self.output
            .push_raw(crate::canonical_addr(destination), datagram);
        Ok(())
    }

    /// Pauses or resumes taking new messages: while paused, a new DATA is
    /// left unanswered (its sender resends it later) and counted in
    /// [`DropCounts::data_unanswered_paused`](crate::DropCounts), and foreign
    /// datagrams are dropped; repeats of
    /// messages already taken are still answered, and RECV and ACK flow as
    /// usual, so the endpoint's own sends keep completing.
    ///
    /// This is receive backpressure for an adapter whose application queue
    /// is full: nothing is ever answered and then dropped. Each unanswered
    /// DATA costs its sender an attempt, so a pause longer than the sender's
    /// retry span (`max_attempts` timeouts) makes its messages fail.
    pub fn set_receive_paused(&mut self, paused: bool) {
        self.receive_paused = paused;
    }

    /// Whether new messages are refused (see
    /// [`set_receive_paused`](Self::set_receive_paused)).
    pub fn is_receive_paused(&self) -> bool {
        self.receive_paused
    }

    /// Starts closing: no new sends and no new incoming messages; messages in
    /// flight or queued and RECVs awaiting their ACK keep being resolved until
    /// done or until `drain_timeout` from now, when what is left fails with
    /// [`FailureReason::EndpointClosed`]. Then [`is_closed`](Self::is_closed)
    /// holds and every table is empty.
    pub fn close(&mut self, now: Instant) {
        let now = self.advance(now);
        if self.state != State::Open {
            return;
        }
        let deadline = now + self.config.drain_timeout;
        self.state = State::Draining { deadline };
        self.timers.push(deadline, TimerKey::Drain);
        // Path MTU probes hold nothing the application waits for.
        self.withdraw_path_probes(now);
        self.finish_close_if_drained();
    }

    // ----- outputs ---------------------------------------------------------

    /// Writes the next datagram(s) to send into `buf` (cleared first) and
    /// says where to send them; `None` when nothing is waiting.
    ///
    /// With `max_datagrams > 1`, several datagrams for one destination may
    /// come at once, laid out for one segmentation-offload send (see
    /// [`Transmit::segment_size`]). `buf` is reused: after it has grown to
    /// the largest batch, no call allocates.
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        max_datagrams: usize,
        buf: &mut Vec<u8>,
    ) -> Option<Transmit> {
        let now = self.advance(now);
        let transmit = self.write_transmit(now, max_datagrams, buf);
        // Every DATA or RECV written sets a timer; purge stale ones here too,
        // so a busy endpoint whose next timeout is far off stays bounded.
        self.compact();
        transmit
    }

    /// The next event for the application.
    #[inline]
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front()?;
        match event {
            Event::Received { .. } | Event::Foreign { .. } => self.unread -= 1,
            Event::Delivered { .. } | Event::Failed { .. } => self.outstanding -= 1,
        }
        Some(event)
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next run; `None`
    /// when no timer is set (nothing in flight, nothing remembered).
    ///
    /// This includes the pacer: with a paced controller
    /// ([`CongestionAlgorithm::Bbr`](crate::CongestionAlgorithm)), messages
    /// waiting for the window leave when their turn comes at this instant,
    /// so an adapter must wake for it even when no datagram arrives. It may
    /// come a little early (a deadline that moved later); `handle_timeout`
    /// then does nothing and a later instant follows.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let mut next = None;
        while let Some((at, key)) = self.timers.peek() {
            if self.timer_is_live(at, key) {
                next = Some(at);
                break;
            }
            self.timers.pop();
        }
        // One wake-up per generation of remembered identities, not one per
        // identity, so their memory is freed even when no datagram comes.
        [self.remembered.next_expiry(), self.reassembly.next_expiry()]
            .into_iter()
            .flatten()
            .fold(next, |earliest, at| {
                Some(earliest.map_or(at, |e: Instant| e.min(at)))
            })
    }

    // ----- private helpers ---------------------------------------------------

    #[inline]
    fn advance(&mut self, now: Instant) -> Instant {
        // Most calls come at the instant of the one before (every datagram
        // of a batch, every poll): the clocks below moved to it then, and
        // nothing since can make something due at it (every expiry set at
        // an instant is later than it), so there is nothing to do.
        match self.latest {
            Some(latest) if now <= latest => {
                if self.reassembly.len() > 0 {
                    self.expire_reassembly(latest);
                }
                latest
            }
            _ => self.advance_to(now),
        }
    }

    /// [`advance`](Self::advance) to an instant later than any before.
    #[inline(never)]
    fn advance_to(&mut self, now: Instant) -> Instant {
        self.latest = Some(now);
        let epoch = *self.epoch.get_or_insert(now);
        self.latest_ns = since(epoch, now);
        self.remembered.expire(now);
        if self.reassembly.len() > 0 {
            self.expire_reassembly(now);
        }
        self.validation.advance(now);
        now
    }

    /// `at` in nanoseconds since the endpoint's epoch (its first `now`).
    ///
    /// Send times kept this way make a round trip or a delivery interval
    /// one integer subtraction, where `Instant`'s own arithmetic normalises
    /// seconds and nanoseconds on every call. The two agree to the
    /// nanosecond. On the hot paths `at` is the latest instant, whose count
    /// is kept; an earlier instant (never one before the epoch: every input
    /// advances the clock first) is converted.
    #[inline]
    pub(super) fn nanos(&self, at: Instant) -> u64 {
        if self.latest == Some(at) {
            return self.latest_ns;
        }
        nanos_since(self.epoch, at)
    }

    fn on_foreign(&mut self, source: SocketAddr, reason: crate::wire::NotGtudp, datagram: Bytes) {
        self.stats.invalid.add(reason);
        if let Some(peer) = self.peers.get_mut(&source) {
            peer.stats.invalid.add(reason);
        }
        if !self.config.deliver_foreign
            || self.receive_paused
            || self.unread >= self.config.limits.max_unread
        {
            self.stats.dropped.foreign += 1;
            return;
        }
        self.stats.foreign_delivered += 1;
        self.unread += 1;
        self.events.push_back(Event::Foreign {
            from: source,
            payload: datagram,
        });
    }

    fn timer_is_live(&self, at: Instant, key: TimerKey) -> bool {
        match key {
            TimerKey::Message(id) => self
                .messages
                .get(&id)
                .is_some_and(|message| message.timer_is(self.nanos(at))),
            TimerKey::Sender(address) => self
                .peers
                .get(&address)
                .is_some_and(|peer| peer.send_timer == Some(at)),
            TimerKey::Received(id) => self
                .awaiting
                .get(id)
                .is_some_and(|record| record.timer == Some(at)),
            TimerKey::IdlePeers => self.idle_timer == Some(at),
            TimerKey::Probe(address) => self
                .peers
                .get(&address)
                .is_some_and(|peer| peer.probe_timer == Some(at)),
            TimerKey::Unreachable(address) => self
                .peers
                .get(&address)
                .is_some_and(|peer| peer.suspect_until == Some(at)),
            TimerKey::PathMtu(address) => self
                .peers
                .get(&address)
                .and_then(|peer| peer.path.as_deref())
                .is_some_and(|path| path.timer == Some(at)),
            TimerKey::Drain => self.state == State::Draining { deadline: at },
        }
    }

    /// Drops stale timer entries and transmit orders once they outnumber the
    /// live ones, keeping both within a constant factor of the live state
    /// even when outputs are polled rarely.
    #[inline]
    fn compact(&mut self) {
        // Each table below is purged once it exceeds twice a live count
        // plus 64: none is while all are at most 64 long, the usual case,
        // told without counting anything live.
        if self.timers.len() <= 64
            && self.output.len() <= 64
            && self.unvalidated_peers.len() <= 64
            && self.idle_peers.len() <= 64
        {
            return;
        }
        // Past 64 (a steady stream keeps more timers than that), the bounds
        // are checked here and the call made only for a purge.
        if self.wants_compaction() {
            self.compact_tables();
        }
    }

    /// Whether a table below exceeds twice its live count plus 64 (the
    /// conditions `compact_tables` purges on, each checked again there).
    #[inline]
    fn wants_compaction(&self) -> bool {
        self.timers_over_bound()
            || self.output_over_bound()
            || self.unvalidated_peers.len() > 2 * self.peers.len() + 64
            || self.idle_peers.len() > 2 * self.peers.len() + 64
    }

    /// The timer queue exceeds twice what can be live plus 64.
    #[inline]
    fn timers_over_bound(&self) -> bool {
        // Per peer: its send-side timer, its probe, its unreachable grace,
        // its path MTU discovery (and one for the idle peers' queue).
        let live_bound = self.messages.len() + self.awaiting.len() + 5 * self.peers.len() + 1;
        self.timers.len() > 2 * live_bound + 64
    }

    #[inline(never)]
    fn compact_tables(&mut self) {
        self.compact_timers();
        self.compact_output();
        if self.unvalidated_peers.len() > 2 * self.peers.len() + 64 {
            let peers = &self.peers;
            self.unvalidated_peers.retain(|(address, serial, _)| {
                peers
                    .get(address)
                    .is_some_and(|peer| peer.serial == *serial && peer.is_unvalidated())
            });
        }
        self.purge_idle_peers_if_over();
    }

    fn compact_timers(&mut self) {
        if !self.timers_over_bound() {
            return;
        }
        let mut timers = std::mem::take(&mut self.timers);
        // Stale entries gather at the lanes' fronts (see
        // `TimerQueue::drop_stale_fronts`): one look each there. Only when
        // that frees less than half the queue is every entry judged, so a
        // purge that skips the full walk still removes at least as many
        // entries as it looks at live ones (a few: a lane's front each),
        // and the queue stays within the same bound either way.
        let before = timers.len();
        let dropped = timers.drop_stale_fronts(|at, key| self.timer_is_live(at, key));
        if 2 * dropped < before {
            timers.retain(|at, key| self.timer_is_live(at, key));
        }
        self.timers = timers;
    }

    /// Completes a close once nothing is left to resolve.
    fn finish_close_if_drained(&mut self) {
        if matches!(self.state, State::Draining { .. })
            && self.messages.is_empty()
            && self.awaiting.is_empty()
        {
            self.finish_close();
        }
    }

    /// Fails whatever is still unresolved and empties every table.
    fn finish_close(&mut self) {
        self.state = State::Closed;
        // `close(now)` set `latest`; without it there is nothing to resolve.
        if let Some(now) = self.latest {
            // Resolve in id order, so the events do not depend on map layout.
            let mut remaining: Vec<MessageId> = self.messages.keys().collect();
            remaining.sort_unstable();
            for id in remaining {
                self.resolve(now, id, Err(FailureReason::EndpointClosed));
            }
        }
        self.large_sends.clear();
        self.reassembly.clear();
        self.awaiting.clear();
        self.remembered.clear();
        self.peers.clear();
        self.flagged_peers = 0;
        self.idle_peers.clear();
        self.idle_timer = None;
        self.unvalidated_peers.clear();
        self.unvalidated_count = 0;
        self.held_count = 0;
        self.held_bytes = 0;
        self.parked.clear();
        self.tokens.clear();
        self.moved.clear();
        self.by_identity.clear();
        self.timers.clear();
        self.output.drop_stateful();
    }
}

impl core::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Endpoint")
            .field("state", &self.state)
            .field("tables", &self.table_sizes())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// The instant `ns` nanoseconds after `epoch` (the inverse of
/// [`nanos_since`], exact to the nanosecond); `None` before the first
/// instant, or past the clock's range.
fn instant_at(epoch: Option<Instant>, ns: u64) -> Option<Instant> {
    epoch?.checked_add(std::time::Duration::from_nanos(ns))
}

/// As [`Endpoint::nanos`] for an instant other than the latest, where
/// the endpoint is borrowed in part.
fn nanos_since(epoch: Option<Instant>, at: Instant) -> u64 {
    epoch.map_or(0, |epoch| since(epoch, at))
}

/// Nanoseconds from `epoch` to `at` (0 if `at` is earlier), at most
/// `u64::MAX` (584 years).
fn since(epoch: Instant, at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX)
}

/// SplitMix64's finaliser: spreads seed bits over a 64-bit word.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

// Adapters move the endpoint into a driver task or thread, and share it
// behind a lock (the Python module's classes must be `Sync`).
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Endpoint>();
};

/// A datagram fed to the endpoint: owned by the caller's `Bytes`
/// ([`Endpoint::handle_datagram`]), so what the endpoint keeps is a slice of
/// it, or borrowed from the caller's receive buffer
/// ([`Endpoint::handle_datagram_slice`]), so what it keeps is copied.
enum Input<'a> {
    Owned(Bytes),
    Borrowed(&'a [u8]),
}

impl Input<'_> {
    fn as_slice(&self) -> &[u8] {
        match self {
            Input::Owned(bytes) => bytes,
            Input::Borrowed(slice) => slice,
        }
    }

    /// The whole datagram, to keep.
    fn into_bytes(self) -> Bytes {
        match self {
            Input::Owned(bytes) => bytes,
            Input::Borrowed(slice) => Bytes::copy_from_slice(slice),
        }
    }

    /// What follows the first `header_len` bytes, to keep (the parse
    /// checked that the datagram is at least that long).
    fn into_payload(self, header_len: usize) -> Bytes {
        match self {
            Input::Owned(mut bytes) => {
                // `advance`, not `slice`: slicing a uniquely owned `Bytes`
                // allocates a shared header; advancing it moves its start
                // in place.
                bytes.advance(header_len.min(bytes.len()));
                bytes
            }
            Input::Borrowed(slice) => {
                Bytes::copy_from_slice(slice.get(header_len..).unwrap_or(&[]))
            }
        }
    }
}
