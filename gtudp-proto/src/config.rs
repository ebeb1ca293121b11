//! Endpoint configuration: framing, timing, limits, and their validation.

use core::fmt;
use std::time::{Duration, Instant};

use crate::congestion::CongestionAlgorithm;
use crate::large_messages::{LargeMessages, LargeMessagesError};
use crate::wire::{FragmentHeader, Framing};

/// The largest UDP payload over IPv4 (65,535 − 20 − 8).
pub const MAX_UDP_PAYLOAD: usize = 65_507;

/// The longest accepted setting of a long duration (a week): far beyond
/// any sensible one, and it keeps `now + value` from overflowing `Instant`
/// on every platform.
const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// How an [`Endpoint`](crate::Endpoint) behaves. Start from
/// [`Config::default`] and change fields; [`Endpoint::new`](crate::Endpoint::new)
/// validates the whole and refuses an inconsistent configuration with a
/// [`ConfigError`].
///
/// ```
/// use std::time::Duration;
/// use gtudp_proto::{Config, wire::Framing};
///
/// let mut config = Config::default();
/// config.framing = Framing::with_magic(b"GT");
/// config.max_attempts = 6;
/// config.deliver_foreign = true;
/// config.validate()?;
/// # Ok::<(), gtudp_proto::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// Magic prefix and type identifiers; both ends must agree. Default: the
    /// original's (no magic, `1d`/`5f`/`ae`).
    pub framing: Framing,
    /// The largest datagram the endpoint sends, header included. Default
    /// 1,452: an Ethernet MTU less IPv6 and UDP headers, so a DATA is never
    /// fragmented on a typical path. Raise it (up to [`MAX_UDP_PAYLOAD`]) for
    /// loopback or known jumbo paths.
    pub max_datagram_size: usize,
    /// Retransmission timeout before the first RTT sample. Default 500 ms:
    /// the original's fixed resend interval, so mixed deployments behave
    /// alike; RFC 6298's 1 s is tuned for unknown internet paths, and the
    /// estimate replaces this value after the first exchange.
    pub initial_rto: Duration,
    /// Floor of the retransmission timeout. Default 20 ms: RFC 6298 asks for
    /// 1 s because TCP receivers delay their acknowledgements; a gtUDP RECV
    /// leaves at once, so a floor just above scheduling jitter suffices.
    pub min_rto: Duration,
    /// Ceiling of the (backed-off) retransmission timeout. Default 10 s.
    pub max_rto: Duration,
    /// Transmissions of one DATA before it fails with
    /// [`FailureReason::AttemptsExhausted`](crate::FailureReason). Default 10.
    pub max_attempts: u32,
    /// Transmissions of one RECV before the receiver stops waiting for its
    /// ACK. Default 10.
    pub recv_max_attempts: u32,
    /// For an address that reached us first and has not yet proven it
    /// receives our datagrams (see [`Limits`] on validation): the
    /// retransmission timeouts a DATA of ours held back by its
    /// anti-amplification budget waits before failing with
    /// [`FailureReason::Unvalidated`](crate::FailureReason), and (times
    /// `initial_rto`) how long it keeps its unvalidated peer slot against
    /// newcomers. Default 2.
    pub unvalidated_attempts: u32,
    /// How long a received identity is remembered to suppress late
    /// duplicates when its ACK never comes (plus `datagram_lifetime`, the
    /// longest a copy written at the end of that span may take to arrive).
    /// Must be at least [`Config::max_retry_span`]: a peer with the same
    /// settings never resends after that span from its first send, which
    /// precedes our first receipt. Default 120 s (10 attempts and two resends drawn by
    /// validation probes, × 10 s).
    pub remember_window: Duration,
    /// How long a received identity is still remembered after its ACK
    /// arrives. The ACK proves the sender stopped resending, so only copies
    /// already in the network can still arrive: this is the longest a
    /// datagram may be delayed or reordered. Default 2 s.
    pub datagram_lifetime: Duration,
    /// Messages in flight to a new peer. Default 16.
    pub initial_window: u32,
    /// Most messages in flight to one peer. Default 32,768: above the
    /// bandwidth-delay product of 1 Gbit/s over 100 ms in 1,200-byte
    /// messages (about 10,400) with the controller's headroom, so the window
    /// is set by the path, not by this cap. Memory stays bounded by
    /// [`Limits::max_outstanding_messages`]: every message in flight counts
    /// against it (so a lower limit caps the window too), and holds at most
    /// `max_datagram_size` bytes of payload.
    pub max_window: u32,
    /// The congestion controller run for each peer. Default
    /// [`CongestionAlgorithm::Bbr`]: paced, and not slowed by random loss;
    /// [`CongestionAlgorithm::Aimd`] is the controller of earlier releases.
    pub congestion: CongestionAlgorithm,
    /// Detect loss before the retransmission timeout: a message is resent
    /// once a later one was confirmed and a reordering window passed, and a
    /// tail-loss probe resends the newest message when nothing was
    /// confirmed for two round trips. Default on. Off leaves recovery to the
    /// RTO alone, as in earlier releases: only for comparison.
    pub early_loss_detection: bool,
    /// How long a peer with no messages in either direction keeps its RTT
    /// estimate and window before it is forgotten. Default 60 s.
    pub peer_idle_timeout: Duration,
    /// How long [`Endpoint::close`](crate::Endpoint::close) keeps resolving
    /// messages and RECVs before failing what is left. Default 10 s.
    pub drain_timeout: Duration,
    /// How long a peer that has answered before may stay silent after the
    /// network reported it unreachable (an ICMP port or host unreachable,
    /// given to [`Endpoint::peer_unreachable`](crate::Endpoint::peer_unreachable))
    /// before its messages fail with
    /// [`FailureReason::Unreachable`](crate::FailureReason). Default 5 s.
    ///
    /// ICMP is a soft error once a path has worked (RFC 1122, RFC 5461) and
    /// can be forged, so such a report does not fail anything at once: the
    /// peer becomes *suspect*, its messages keep being resent with the
    /// usual backoff (capped at a quarter of the grace, so several probes
    /// go out within it), and any valid datagram from its address clears
    /// the suspicion. A peer process restarted on the same port within
    /// about three quarters of the grace thus gets every message; a forged
    /// report against a live peer cancels nothing (its next answer clears
    /// it), and for a dead one only shortens the wait from the attempt
    /// limit to the grace. An address that never answered (a first contact
    /// to a closed port), or whose grace already ran out, fails at once.
    ///
    /// A restart loses the old process's memory: a message it took but
    /// whose RECV never reached us is sent to the new process, which takes
    /// it again. Nothing prevents that without memory that survives the
    /// restart; an application that must not see a repeat across restarts
    /// needs its own identifiers in the payload.
    ///
    /// Must be at least `min_rto` (no probe could be answered within a
    /// shorter one). A grace longer than [`Config::max_retry_span`] leaves
    /// the attempt limit to end the messages first, as without a report.
    pub unreachable_grace: Duration,
    /// Recognise a copy of a message handed over when it comes from
    /// another port of the same host (IP address). Default on.
    ///
    /// A NAT may give a flow a new public port mid-stream (a rebinding,
    /// after a quiet spell or under port pressure), and the sender's next
    /// retransmissions then arrive from an address the receiver never saw.
    /// On, the receiver keeps what it handed over by the sender's host, so
    /// those copies are answered with RECV and never handed over twice.
    ///
    /// The price: two senders behind one NAT (one IP address) share that
    /// memory, so a new message from one matches a message of the other
    /// when both its identity (32 random bits) and its payload's
    /// fingerprint (32 keyed bits) are equal. With `n` messages from other
    /// senders of the host remembered (about their rate × 1.25 ×
    /// `datagram_lifetime`), a new message matches with probability at most
    /// `n × 2⁻⁶⁴`, or `n × 2⁻³²` when its payload is byte for byte the same
    /// as theirs. A match is answered but not handed over: the message is
    /// lost and its sender sees it Delivered. Off, each address has its own
    /// memory: no match between senders, no protection across a rebinding.
    /// `docs/address-changes.md` works both out.
    pub recognise_copies_across_ports: bool,
    /// Hand non-gtUDP datagrams to the application as
    /// [`Event::Foreign`](crate::Event::Foreign) instead of counting and
    /// dropping them. Default off.
    pub deliver_foreign: bool,
    /// Messages larger than one datagram, sent as fragments that are each
    /// confirmed and resent on their own: an extension of the wire format
    /// both ends must enable. Default `None`: a message must fit one
    /// datagram, and the wire is the original's. See [`LargeMessages`].
    pub large_messages: Option<LargeMessages>,
    /// Bounds on every table the endpoint keeps.
    pub limits: Limits,
}

/// Bounds on every table an [`Endpoint`](crate::Endpoint) keeps, so that no
/// input, at any rate, makes it grow without limit.
///
/// When a receiving-side bound is reached, a new DATA is left unanswered: its
/// sender resends it later. A DATA is never answered with RECV and then
/// dropped. When a sending-side bound is reached, `send` returns
/// [`SendError`](crate::SendError) with the payload, so the caller can retry.
///
/// # Validation: peers that have not proven their address
///
/// Any source address can be spoofed. A peer is in one of two states:
///
/// - **unvalidated**: it reached us first (a datagram from it, not a send of
///   ours, made us track it) and has not yet proven it reads our datagrams.
///   Nothing it sends is taken: its new DATA is *held*, not answered and not
///   handed over, and a validation probe goes to it, a RECV naming a keyed
///   token of its address (see [`crate::Endpoint`]'s guarantees). The probe
///   is resent with backoff while DATA waits on it, at most
///   `recv_max_attempts` times. Everything sent to it counts against three
///   times the bytes it sent. At most
///   [`max_held_per_unvalidated_peer`](Limits::max_held_per_unvalidated_peer)
///   messages are held per address, and
///   [`max_held_bytes_unvalidated`](Limits::max_held_bytes_unvalidated)
///   payload bytes in all; past them a new DATA is dropped unanswered (its
///   sender resends);
/// - **validated**: it answered a probe with the ACK naming its token, or
///   answered one of our DATA with RECV; or we reached it first. An ACK for
///   one of our RECVs validates nothing (its identity is the peer's own).
///   The DATA held from it are taken at once (handed over, answered with
///   RECV), as are messages of ours held for it.
///
/// So an honest new peer's first messages are handed over one round trip
/// later than a known peer's (the probe and its answer), and nothing is ever
/// remembered for an address that has not proven itself: no memory bound
/// and no flood can make the endpoint forget what protects a hand-over,
/// since what is held and dropped was never handed over or answered.
///
/// At most [`max_unvalidated_peers`](Limits::max_unvalidated_peers) are
/// tracked. Past that, a DATA from a new address gets a probe and no state
/// (it is not held, and its sender, once validated by its answer, sends it
/// again), so a flood from spoofed addresses costs one header-sized reply per
/// datagram and no memory. An address with a remembered history (one whose
/// messages we took, within the remembered retention) is validated at once.
///
/// Unvalidated peers give way: the peer table evicts them (oldest first,
/// among those holding none of our messages on the wire) before idle ones,
/// and what they held is dropped at no cost. The answer to a probe counts
/// even after its peer was evicted, so an honest peer is validated a round
/// trip after it arrives, however many spoofed addresses arrive with it.
/// [`SendOptions::once_validated`] holds an application's reply until then.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Limits {
    /// Peers tracked at once (addresses we send to or receive from). When
    /// it is reached, the oldest unvalidated peer holding none of our
    /// messages is forgotten to make room, else the peer idle the longest;
    /// with neither, a new peer is refused. Default 4,096.
    pub max_peers: usize,
    /// Peers tracked at once that reached us first and have not proven yet
    /// that they receive our datagrams (see the validation states above). When it is reached, a DATA from a new address
    /// is not taken: it gets a validation probe and nothing else, and no
    /// state is kept for it (the probe's answer is checked without any). An
    /// honest sender answers the probe, is tracked as validated, and its
    /// next copy of the DATA is taken; a spoofed address costs one
    /// header-sized reply per datagram. The oldest unvalidated peer that had
    /// `unvalidated_attempts × initial_rto` to prove itself gives up its
    /// place to a new one, so the slots turn over at a bounded rate under a
    /// flood. Default 1,024.
    pub max_unvalidated_peers: usize,
    /// Messages accepted by `send` and not yet resolved *and polled*: in
    /// flight, waiting for the window, or with a Delivered/Failed event not
    /// yet taken by `poll_event`. Default 65,536.
    pub max_outstanding_messages: usize,
    /// Messages waiting for one peer's window to open. Default 16,384.
    pub max_queued_per_peer: usize,
    /// Received messages whose RECV awaits its ACK, across all peers: each
    /// holds a full record (about 100 bytes) and a resend timer. A steady
    /// stream needs about rate × RTT of them. Default 262,144.
    pub max_awaiting_ack: usize,
    /// Received messages awaiting their ACK from one peer, so one address
    /// cannot take the whole table. Default 65,536.
    pub max_awaiting_ack_per_peer: usize,
    /// Bytes for remembering the identities of received messages whose
    /// exchange ended, across all peers, to suppress late duplicates.
    ///
    /// After its ACK an identity is remembered for `datagram_lifetime`
    /// (plus at most a quarter of it); after its RECV attempts ran out, for
    /// `remember_window` (plus at most a quarter). A steady stream of `r`
    /// messages/s takes about `r × 1.25 × datagram_lifetime × 14` bytes, so
    /// this bound sets the highest rate the endpoint sustains:
    /// [`Config::max_sustained_rate`]. Past it, new DATA is left unanswered
    /// until older identities expire. Moving a message that awaited its ACK
    /// into this memory is never refused (its memory is what keeps a late
    /// copy from being handed over again), so it may exceed the bound by a
    /// few hundred bytes per such message (a smallest table, and the
    /// records a new host or generation needs). Default 64 MiB (about 1.9 million messages/s with the
    /// default 2 s lifetime).
    pub max_remembered_bytes: usize,
    /// Bytes of remembered identities for one host: identities are
    /// remembered by the sender's IP address, whatever its port, so that a
    /// NAT rebinding does not make a copy look new; the peers behind one NAT
    /// share this bound, and may exceed it, as the whole memory may, by a
    /// few hundred bytes per message awaiting its ACK from any of its
    /// ports. Default 64 MiB: one host may use the whole memory.
    pub max_remembered_bytes_per_peer: usize,
    /// New messages held from one unvalidated address until it answers its
    /// validation probe (see the validation states above); more are dropped
    /// unanswered, and their senders resend them. Default 32: twice the
    /// default `initial_window`, so that an honest sender's first window,
    /// and what it sends while our probe and its answer are on their way,
    /// are all taken a round trip later.
    pub max_held_per_unvalidated_peer: usize,
    /// Payload bytes held from all unvalidated addresses together until
    /// they prove themselves; a new DATA that would exceed it is dropped
    /// unanswered (its sender resends). What is held was never handed over
    /// nor answered, so dropping it breaks no promise. Default 8 MiB.
    pub max_held_bytes_unvalidated: usize,
    /// Received payloads (including foreign datagrams) handed to
    /// `poll_event` but not yet taken. Default 4,096.
    pub max_unread: usize,
    /// ACK replies waiting for `poll_transmit`. Past this, ACKs are dropped
    /// and counted; the peer's RECV resend recovers. Default 4,096.
    pub max_pending_control: usize,
    /// Raw datagrams waiting for `poll_transmit`. Default 1,024.
    pub max_pending_raw: usize,
    /// Bytes held for incomplete large messages from all peers (see
    /// [`Config::large_messages`]). A message's whole declared size is
    /// counted when its first fragment is taken, before anything is
    /// allocated; a fragment that would start a message past this is left
    /// unanswered, so its sender resends it later. Default 64 MiB.
    pub max_reassembly_bytes: usize,
    /// The same, for one host (IP address). Default 32 MiB.
    pub max_reassembly_bytes_per_peer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_peers: 4_096,
            max_unvalidated_peers: 1_024,
            max_outstanding_messages: 65_536,
            max_queued_per_peer: 16_384,
            max_awaiting_ack: 262_144,
            max_awaiting_ack_per_peer: 65_536,
            max_remembered_bytes: 64 << 20,
            max_remembered_bytes_per_peer: 64 << 20,
            max_held_per_unvalidated_peer: 32,
            max_held_bytes_unvalidated: 8 << 20,
            max_unread: 4_096,
            max_pending_control: 4_096,
            max_pending_raw: 1_024,
            max_reassembly_bytes: 64 << 20,
            max_reassembly_bytes_per_peer: 32 << 20,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            framing: Framing::default(),
            max_datagram_size: 1_452,
            initial_rto: Duration::from_millis(500),
            min_rto: Duration::from_millis(20),
            max_rto: Duration::from_secs(10),
            max_attempts: 10,
            recv_max_attempts: 10,
            unvalidated_attempts: 2,
            remember_window: Duration::from_secs(120),
            datagram_lifetime: Duration::from_secs(2),
            initial_window: 16,
            max_window: 32_768,
            congestion: CongestionAlgorithm::default(),
            early_loss_detection: true,
            peer_idle_timeout: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(10),
            unreachable_grace: Duration::from_secs(5),
            recognise_copies_across_ports: true,
            deliver_foreign: false,
            large_messages: None,
            limits: Limits::default(),
        }
    }
}

/// Resends of one message that a validation probe may draw, using no
/// attempt (see `Endpoint::on_unknown_recv`).
pub(crate) const RESENDS_FOR_PROBES: u32 = 2;

impl Config {
    /// The time an address that reached us first is given to prove it
    /// receives our datagrams before its unvalidated state may be dropped
    /// to make room: `unvalidated_attempts` initial RTOs. An unvalidated
    /// peer holds its slot at least this long (see
    /// [`Limits::max_unvalidated_peers`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = gtudp_proto::Config::default();
    /// assert_eq!(config.validation_window(), Duration::from_secs(1));
    /// ```
    pub fn validation_window(&self) -> Duration {
        self.initial_rto
            .saturating_mul(self.unvalidated_attempts.max(1))
    }

    /// The longest a sender with this configuration keeps resending one
    /// message after its first transmission: `max_attempts` timeouts of at
    /// most `max_rto` each, plus one for each of the (at most two) resends
    /// a validation probe draws, which use no attempt. The endpoint never
    /// sends a message again once this span has passed since its first
    /// transmission, even with attempts left (a peer that moved gives some
    /// back): it fails with `AttemptsExhausted` instead.
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = gtudp_proto::Config::default();
    /// assert_eq!(config.max_retry_span(), Duration::from_secs(120));
    /// assert!(config.remember_window >= config.max_retry_span());
    /// ```
    pub fn max_retry_span(&self) -> Duration {
        self.max_rto
            .saturating_mul(self.max_attempts.saturating_add(RESENDS_FOR_PROBES))
    }

    /// The highest steady receive rate, in messages per second, that the
    /// remembered-identity memory allows (see
    /// [`Limits::max_remembered_bytes`]): `bytes / (14 × 1.25 ×
    /// datagram_lifetime)`, per peer and for the whole endpoint. A stream
    /// above it is slowed to it: new DATA waits unanswered, and its sender
    /// resends, until older identities expire.
    ///
    /// ```
    /// let rate = gtudp_proto::Config::default().max_sustained_rate();
    /// assert!(rate.per_peer >= 1_900_000.0);
    /// ```
    pub fn max_sustained_rate(&self) -> SustainedRate {
        let held_per_rate = crate::remembered::STEADY_SLOT_BYTES as f64
            * self.datagram_lifetime.as_secs_f64()
            * (1.0 + 1.0 / f64::from(crate::remembered::GENERATIONS));
        let rate = |bytes: usize| bytes as f64 / held_per_rate;
        SustainedRate {
            per_peer: rate(
                self.limits
                    .max_remembered_bytes_per_peer
                    .min(self.limits.max_remembered_bytes),
            ),
            per_endpoint: rate(self.limits.max_remembered_bytes),
        }
    }

    fn validate_large_messages(&self, large: &LargeMessages) -> Result<(), LargeMessagesError> {
        let type_len = self.framing.type_bytes(crate::wire::PacketKind::Data).len();
        let clashes = crate::wire::PacketKind::ALL
            .into_iter()
            .any(|kind| self.framing.type_bytes(kind) == large.fragment_type.as_slice());
        if large.fragment_type.len() != type_len || clashes {
            return Err(LargeMessagesError::FragmentType {
                fragment_type: large.fragment_type.clone(),
                type_len,
            });
        }
        let max = (u32::MAX as usize).min(self.limits.max_reassembly_bytes_per_peer);
        if large.max_message_size == 0 || large.max_message_size > max {
            return Err(LargeMessagesError::MessageSize {
                size: large.max_message_size,
                max,
            });
        }
        let unit = self.fragment_unit();
        let min = usize::from(FragmentHeader::MIN_UNIT);
        if unit < min {
            return Err(LargeMessagesError::FragmentTooSmall { unit, min });
        }
        if large.max_lifetime.is_zero() || large.max_lifetime.as_millis() > u128::from(u32::MAX) {
            return Err(LargeMessagesError::Lifetime {
                lifetime: large.max_lifetime,
            });
        }
        let base_min = self.framing.header_len() + FragmentHeader::LEN + min;
        if large.pmtud_base < base_min || large.pmtud_base > MAX_UDP_PAYLOAD {
            return Err(LargeMessagesError::PmtudBase {
                base: large.pmtud_base,
                min: base_min,
                max: MAX_UDP_PAYLOAD,
            });
        }
        if large.pmtud_interval.is_zero() {
            return Err(LargeMessagesError::PmtudInterval);
        }
        Ok(())
    }

    /// The bytes of a large message one fragment carries (all but the last
    /// carry exactly this many; see [`Config::large_messages`]).
    pub fn fragment_unit(&self) -> usize {
        self.max_payload_size()
            .saturating_sub(FragmentHeader::LEN)
            .min(usize::from(u16::MAX))
    }

    /// The largest message `send` accepts: one datagram's payload, or with
    /// [`Config::large_messages`] on, its `max_message_size` if larger.
    pub fn max_message_size(&self) -> usize {
        let single = self.max_payload_size();
        self.large_messages
            .as_ref()
            .map_or(single, |large| large.max_message_size.max(single))
    }

    /// The largest payload one DATA can carry.
    pub fn max_payload_size(&self) -> usize {
        self.max_datagram_size
            .saturating_sub(self.framing.header_len())
    }

    /// Checks that the configuration is consistent.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let header = self.framing.header_len();
        if self.max_datagram_size < header || self.max_datagram_size > MAX_UDP_PAYLOAD {
            return Err(ConfigError::DatagramSize {
                size: self.max_datagram_size,
                header,
            });
        }
        if self.min_rto.is_zero() || self.min_rto > self.max_rto {
            return Err(ConfigError::RtoRange {
                min: self.min_rto,
                max: self.max_rto,
            });
        }
        if self.initial_rto < self.min_rto || self.initial_rto > self.max_rto {
            return Err(ConfigError::InitialRto {
                initial: self.initial_rto,
                min: self.min_rto,
                max: self.max_rto,
            });
        }
        if self.max_rto > Duration::from_secs(3600) {
            return Err(ConfigError::DurationTooLong {
                field: "max_rto",
                max: Duration::from_secs(3600),
            });
        }
        for (field, value) in [
            ("max_attempts", self.max_attempts),
            ("recv_max_attempts", self.recv_max_attempts),
            ("unvalidated_attempts", self.unvalidated_attempts),
            ("initial_window", self.initial_window),
            ("max_window", self.max_window),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero { field });
            }
        }
        if self.initial_window > self.max_window {
            return Err(ConfigError::InitialWindow {
                initial: self.initial_window,
                max: self.max_window,
            });
        }
        if self.remember_window < self.max_retry_span() {
            return Err(ConfigError::RememberWindowTooShort {
                window: self.remember_window,
                retry_span: self.max_retry_span(),
            });
        }
        if self.datagram_lifetime > self.remember_window {
            return Err(ConfigError::LifetimeLongerThanWindow {
                lifetime: self.datagram_lifetime,
                window: self.remember_window,
            });
        }
        for (field, value) in [
            ("remember_window", self.remember_window),
            ("peer_idle_timeout", self.peer_idle_timeout),
            ("drain_timeout", self.drain_timeout),
        ] {
            if value > MAX_DURATION {
                return Err(ConfigError::DurationTooLong {
                    field,
                    max: MAX_DURATION,
                });
            }
        }
        if self.unreachable_grace < self.min_rto || self.unreachable_grace > MAX_DURATION {
            return Err(ConfigError::UnreachableGrace {
                grace: self.unreachable_grace,
                min: self.min_rto,
                max: MAX_DURATION,
            });
        }
        let limits = &self.limits;
        for (field, value) in [
            ("limits.max_peers", limits.max_peers),
            (
                "limits.max_outstanding_messages",
                limits.max_outstanding_messages,
            ),
            ("limits.max_queued_per_peer", limits.max_queued_per_peer),
            ("limits.max_unvalidated_peers", limits.max_unvalidated_peers),
            ("limits.max_awaiting_ack", limits.max_awaiting_ack),
            (
                "limits.max_awaiting_ack_per_peer",
                limits.max_awaiting_ack_per_peer,
            ),
            ("limits.max_remembered_bytes", limits.max_remembered_bytes),
            (
                "limits.max_remembered_bytes_per_peer",
                limits.max_remembered_bytes_per_peer,
            ),
            (
                "limits.max_held_per_unvalidated_peer",
                limits.max_held_per_unvalidated_peer,
            ),
            (
                "limits.max_held_bytes_unvalidated",
                limits.max_held_bytes_unvalidated,
            ),
            ("limits.max_unread", limits.max_unread),
            ("limits.max_pending_control", limits.max_pending_control),
            ("limits.max_pending_raw", limits.max_pending_raw),
            ("limits.max_reassembly_bytes", limits.max_reassembly_bytes),
            (
                "limits.max_reassembly_bytes_per_peer",
                limits.max_reassembly_bytes_per_peer,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero { field });
            }
        }
        if let Some(large) = &self.large_messages {
            self.validate_large_messages(large)
                .map_err(ConfigError::LargeMessages)?;
        }
        Ok(())
    }
}

/// Steady receive rates a configuration allows, from
/// [`Config::max_sustained_rate`], in messages per second.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct SustainedRate {
    /// From one peer address.
    pub per_peer: f64,
    /// From all peers together.
    pub per_endpoint: f64,
}

/// Why a [`Config`] was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `max_datagram_size` cannot hold a header or exceeds a UDP payload.
    DatagramSize {
        /// The configured size.
        size: usize,
        /// The framing's header length.
        header: usize,
    },
    /// `min_rto` is zero or above `max_rto`.
    RtoRange {
        /// The configured floor.
        min: Duration,
        /// The configured ceiling.
        max: Duration,
    },
    /// `initial_rto` lies outside `min_rto..=max_rto`.
    InitialRto {
        /// The configured initial value.
        initial: Duration,
        /// The floor.
        min: Duration,
        /// The ceiling.
        max: Duration,
    },
    /// A count or limit that must be at least 1 is zero.
    Zero {
        /// The field's name.
        field: &'static str,
    },
    /// `initial_window` exceeds `max_window`.
    InitialWindow {
        /// The configured initial window.
        initial: u32,
        /// The configured maximum.
        max: u32,
    },
    /// `remember_window` is shorter than the retry span, so a late
    /// retransmission could be taken for a new message.
    RememberWindowTooShort {
        /// The configured window.
        window: Duration,
        /// [`Config::max_retry_span`].
        retry_span: Duration,
    },
    /// `datagram_lifetime` is longer than `remember_window`.
    LifetimeLongerThanWindow {
        /// The configured lifetime.
        lifetime: Duration,
        /// The configured window.
        window: Duration,
    },
    /// `unreachable_grace` is shorter than `min_rto` (no probe could be
    /// answered within it) or longer than the supported maximum.
    UnreachableGrace {
        /// The configured grace.
        grace: Duration,
        /// The shortest accepted: `min_rto`.
        min: Duration,
        /// The longest accepted (a week).
        max: Duration,
    },
    /// A duration is beyond what the endpoint supports.
    DurationTooLong {
        /// The field's name.
        field: &'static str,
        /// The largest accepted value.
        max: Duration,
    },
    /// The large-message settings are inconsistent.
    LargeMessages(LargeMessagesError),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::DatagramSize { size, header } => write!(
                f,
                "max_datagram_size is {size} bytes; it must be at least the header ({header} bytes) \
                 and at most {MAX_UDP_PAYLOAD}"
            ),
            ConfigError::RtoRange { min, max } => write!(
                f,
                "min_rto ({min:?}) must be above zero and not above max_rto ({max:?})"
            ),
            ConfigError::InitialRto { initial, min, max } => write!(
                f,
                "initial_rto ({initial:?}) must lie between min_rto ({min:?}) and max_rto ({max:?})"
            ),
            ConfigError::Zero { field } => write!(f, "{field} is 0; it must be at least 1"),
            ConfigError::InitialWindow { initial, max } => write!(
                f,
                "initial_window ({initial}) must not exceed max_window ({max})"
            ),
            ConfigError::RememberWindowTooShort { window, retry_span } => write!(
                f,
                "remember_window ({window:?}) is shorter than the retry span \
                 (max_attempts + 2) × max_rto ({retry_span:?}): a late retransmission could be \
                 delivered twice; lengthen it or lower max_attempts or max_rto"
            ),
            ConfigError::LifetimeLongerThanWindow { lifetime, window } => write!(
                f,
                "datagram_lifetime ({lifetime:?}) must not exceed remember_window ({window:?})"
            ),
            ConfigError::UnreachableGrace { grace, min, max } => write!(
                f,
                "unreachable_grace ({grace:?}) must lie between min_rto ({min:?}), the shortest \
                 wait in which a probe can be answered, and {max:?}"
            ),
            ConfigError::DurationTooLong { field, max } => {
                write!(f, "{field} is longer than the supported maximum of {max:?}")
            }
            ConfigError::LargeMessages(error) => write!(f, "large_messages: {error}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Per-message options for [`Endpoint::send_with`](crate::Endpoint::send_with).
///
/// Built from [`SendOptions::default()`] with one chaining method per
/// option (or by setting the public fields of a default):
///
/// ```
/// use std::time::{Duration, Instant};
/// use gtudp_proto::SendOptions;
///
/// let now = Instant::now();
/// let options = SendOptions::default()
///     .with_deadline(now + Duration::from_secs(2))
///     .with_max_attempts(3)
///     .once_validated();
/// assert_eq!(options.deadline, Some(now + Duration::from_secs(2)));
/// assert_eq!(options.max_attempts, Some(3));
/// assert!(options.only_once_validated);
/// ```
///
/// Migrating: `with_deadline` and `with_max_attempts` were constructors
/// (`SendOptions::with_deadline(d)`); write
/// `SendOptions::default().with_deadline(d)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendOptions {
    /// Fail with [`FailureReason::DeadlineExpired`](crate::FailureReason)
    /// if no RECV has arrived by then. Default: no deadline beyond the
    /// attempt limit.
    pub deadline: Option<Instant>,
    /// Transmissions before failing; at most [`Config::max_attempts`], which
    /// is also the default.
    pub max_attempts: Option<u32>,
    /// Send nothing while the destination is an unvalidated peer (it
    /// reached us first and has not proven it receives our datagrams): the
    /// message waits, and goes out the moment the peer answers its
    /// validation probe, which an honest peer does within a round trip. It
    /// fails with [`FailureReason::Unvalidated`](crate::FailureReason) after
    /// `unvalidated_attempts` retransmission timeouts, or at its deadline,
    /// without a byte sent. For replies to addresses that may be spoofed,
    /// such as a public server's echoes: a spoofed address costs a waiting
    /// message, not traffic towards a victim. To an address we heard from
    /// but no longer track (evicted before it proved itself), the message
    /// waits the same way for its answer to an earlier probe; to an address
    /// that proved itself, or that we never heard from (one we chose to
    /// reach), it is sent as any. Default false.
    pub only_once_validated: bool,
}

impl SendOptions {
    /// These options with a deadline: the message fails with
    /// [`FailureReason::DeadlineExpired`](crate::FailureReason) if not
    /// confirmed by then.
    #[must_use]
    pub fn with_deadline(self, deadline: Instant) -> Self {
        Self {
            deadline: Some(deadline),
            ..self
        }
    }

    /// These options with an attempt limit (at most
    /// [`Config::max_attempts`]).
    #[must_use]
    pub fn with_max_attempts(self, max_attempts: u32) -> Self {
        Self {
            max_attempts: Some(max_attempts),
            ..self
        }
    }

    /// These options, sending only once the destination is validated (see
    /// [`SendOptions::only_once_validated`]).
    #[must_use]
    pub fn once_validated(self) -> Self {
        Self {
            only_once_validated: true,
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn remember_window_must_cover_retry_span() {
        let config = Config {
            remember_window: Duration::from_secs(5),
            ..Config::default()
        };
        let Err(error) = config.validate() else {
            panic!("a window shorter than the retry span was accepted");
        };
        assert!(matches!(error, ConfigError::RememberWindowTooShort { .. }));
        assert!(error.to_string().contains("retry span"));
    }

    #[test]
    fn zero_limits_and_bad_rto_are_refused() {
        let config = Config {
            limits: Limits {
                max_peers: 0,
                ..Limits::default()
            },
            ..Config::default()
        };
        assert_eq!(
            config.validate(),
            Err(ConfigError::Zero {
                field: "limits.max_peers"
            })
        );
        let config = Config {
            min_rto: Duration::from_secs(20),
            ..Config::default()
        };
        assert!(matches!(
            config.validate(),
            Err(ConfigError::RtoRange { .. })
        ));
        let config = Config {
            max_datagram_size: 3,
            ..Config::default()
        };
        assert!(matches!(
            config.validate(),
            Err(ConfigError::DatagramSize { .. })
        ));
    }

    #[test]
    fn unreachable_grace_must_allow_one_probe() {
        let config = Config {
            unreachable_grace: Duration::from_millis(5),
            ..Config::default()
        };
        let Err(error) = config.validate() else {
            panic!("a grace shorter than min_rto was accepted");
        };
        assert_eq!(
            error,
            ConfigError::UnreachableGrace {
                grace: Duration::from_millis(5),
                min: Duration::from_millis(20),
                max: MAX_DURATION,
            }
        );
        assert!(error.to_string().contains("unreachable_grace"));
        let config = Config {
            unreachable_grace: MAX_DURATION + Duration::from_secs(1),
            ..Config::default()
        };
        assert!(matches!(
            config.validate(),
            Err(ConfigError::UnreachableGrace { .. })
        ));
        let config = Config {
            unreachable_grace: Duration::from_millis(20),
            ..Config::default()
        };
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn pmtud_settings_are_checked() {
        let with = |large: LargeMessages| Config {
            large_messages: Some(large),
            ..Config::default()
        };
        // The base must leave the smallest fragment: 5 + 18 + 64 bytes.
        assert_eq!(
            with(LargeMessages::default().with_pmtud_base(86)).validate(),
            Err(ConfigError::LargeMessages(LargeMessagesError::PmtudBase {
                base: 86,
                min: 87,
                max: MAX_UDP_PAYLOAD,
            }))
        );
        assert_eq!(
            with(LargeMessages::default().with_pmtud_base(87)).validate(),
            Ok(())
        );
        assert!(matches!(
            with(LargeMessages::default().with_pmtud_base(MAX_UDP_PAYLOAD + 1)).validate(),
            Err(ConfigError::LargeMessages(
                LargeMessagesError::PmtudBase { .. }
            ))
        ));
        let error = with(LargeMessages::default().with_pmtud_interval(Duration::ZERO))
            .validate()
            .unwrap_err();
        assert_eq!(
            error,
            ConfigError::LargeMessages(LargeMessagesError::PmtudInterval)
        );
        assert!(error.to_string().contains("pmtud_interval"));
        // Off, the base still has to make sense, and nothing else changes.
        assert_eq!(
            with(LargeMessages::default().with_pmtud(false)).validate(),
            Ok(())
        );
    }
}
