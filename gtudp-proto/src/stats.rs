//! Counters the endpoint keeps, for the whole endpoint and per peer.

use std::time::Duration;

use crate::wire::{NotGtudp, PacketKind};

/// Datagram counts by gtUDP packet kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KindCounts {
    /// DATA datagrams.
    pub data: u64,
    /// RECV datagrams.
    pub recv: u64,
    /// ACK datagrams.
    pub ack: u64,
}

impl KindCounts {
    pub(crate) fn add(&mut self, kind: PacketKind) {
        match kind {
            PacketKind::Data => self.data += 1,
            PacketKind::Recv => self.recv += 1,
            PacketKind::Ack => self.ack += 1,
        }
    }

    /// All three kinds together.
    pub fn total(&self) -> u64 {
        self.data + self.recv + self.ack
    }
}

/// Datagrams that were not gtUDP, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InvalidCounts {
    /// Shorter than a header.
    pub too_short: u64,
    /// Without the magic prefix.
    pub wrong_magic: u64,
    /// With an unknown type.
    pub unknown_type: u64,
    /// RECV or ACK of the wrong length.
    pub wrong_length: u64,
}

impl InvalidCounts {
    pub(crate) fn add(&mut self, reason: NotGtudp) {
        match reason {
            NotGtudp::TooShort => self.too_short += 1,
            NotGtudp::WrongMagic => self.wrong_magic += 1,
            NotGtudp::UnknownType => self.unknown_type += 1,
            NotGtudp::WrongLength => self.wrong_length += 1,
        }
    }

    /// All reasons together.
    pub fn total(&self) -> u64 {
        self.too_short + self.wrong_magic + self.unknown_type + self.wrong_length
    }
}

/// Datagrams the endpoint ignored or did not send, by cause.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropCounts {
    /// New DATA left unanswered because a receive-side bound was reached
    /// (remembered identities, unread payloads, or peers).
    pub data_unanswered_full: u64,
    /// New DATA left unanswered because the endpoint is closing or closed.
    pub data_unanswered_closing: u64,
    /// New DATA left unanswered while receiving was paused.
    pub data_unanswered_paused: u64,
    /// New DATA from an address that has not proven itself, neither taken
    /// nor held: [`Limits::max_unvalidated_peers`](crate::Limits) was
    /// reached, or the address's or all addresses' held share was full. It
    /// was answered with a validation probe only, and its sender, once it
    /// answers the probe, sends it again. Also DATA held longer than
    /// `datagram_lifetime` before its address proved itself, dropped then
    /// unanswered (a copy of a message taken meanwhile from another address
    /// of its sender might no longer be recognised).
    pub data_deferred_unvalidated: u64,
    /// RECV naming a message we sent to a different address.
    pub recv_wrong_source: u64,
    /// RECV naming no message in flight (answered with ACK all the same).
    pub recv_unknown: u64,
    /// ACK naming no RECV we are resending.
    pub ack_unknown: u64,
    /// Foreign datagrams dropped: not asked for, or too many unread.
    pub foreign: u64,
    /// ACK replies not queued because `max_pending_control` was reached.
    pub control_overflow: u64,
    /// RECV or ACK not sent to an address that never answered because it
    /// would exceed three times the bytes received from it.
    pub amplification_limited: u64,
    /// Datagrams that arrived after the endpoint closed.
    pub after_close: u64,
    /// Fragments of large messages left unanswered because they are
    /// malformed, announce more than `max_message_size` or `max_lifetime`,
    /// or disagree with the fragments of their message already taken (see
    /// [`Config::large_messages`](crate::Config::large_messages)).
    pub fragment_refused: u64,
    /// Fragments that would start a large message past the reassembly
    /// budget (`max_reassembly_bytes`, or its share per host), left
    /// unanswered: their senders resend them later.
    pub fragment_unanswered_budget: u64,
}

/// Counters for the whole endpoint, from [`Endpoint::stats`](crate::Endpoint::stats).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointStats {
    /// gtUDP datagrams received, by kind.
    pub datagrams_in: KindCounts,
    /// gtUDP datagrams sent, by kind.
    pub datagrams_out: KindCounts,
    /// Raw (unframed) datagrams sent.
    pub raw_out: u64,
    /// Bytes received, all datagrams.
    pub bytes_in: u64,
    /// Bytes sent, all datagrams.
    pub bytes_out: u64,
    /// Datagrams that were not gtUDP, by reason.
    pub invalid: InvalidCounts,
    /// Foreign datagrams handed to the application.
    pub foreign_delivered: u64,
    /// DATA retransmissions (transmissions after the first).
    pub retransmissions: u64,
    /// DATA retransmissions found needless (the message was only late, not
    /// lost): its RECV came back sooner after the retransmission than the
    /// path's minimum RTT, so it answered an earlier copy (Eifel's test), or
    /// a second RECV came for it, each within a plausible RTT of the copy
    /// it answers (what a DSACK tells TCP).
    pub spurious_retransmissions: u64,
    /// Messages presumed lost before their retransmission timeout (a
    /// message sent after them was confirmed and the reordering window
    /// passed) and sent again.
    pub loss_detected_early: u64,
    /// Tail-loss probes sent: the newest message resent when nothing was
    /// confirmed for about two round trips.
    pub tail_loss_probes: u64,
    /// DATA resent at once because the receiver answered with a validation
    /// probe instead of its RECV (it had deferred the DATA until our address
    /// proved itself); at most once per message.
    pub resent_for_probe: u64,
    /// Retransmission timeouts that fired (the last resort).
    pub retransmission_timeouts: u64,
    /// RECV retransmissions (sent on timeout, not in answer to a DATA).
    pub recv_retransmissions: u64,
    /// Copies of RECVs (a second, third or fourth time, back to back with
    /// the first), sent because the path back to their peer was losing
    /// RECVs (see `docs/tuning.md`).
    pub recv_copies_sent: u64,
    /// Second copies of a RECV recognised and dropped: no ACK goes back for
    /// them.
    pub recv_copies_received: u64,
    /// Repeated DATA recognised and not handed over again.
    pub duplicates_suppressed: u64,
    /// Of those, copies that came from another port of the host whose
    /// DATA was taken (with the roaming extension, from another address of
    /// its sender), while its RECV still awaited the ACK: a NAT gave the
    /// sender a new port mid-stream (see `docs/address-changes.md`).
    pub rebound_duplicates: u64,
    /// Peers that moved to a new address, with the roaming extension: the
    /// new address proved the token the peer had proven at its old one.
    pub peer_moves: u64,
    /// New messages whose identity matched one awaited or remembered from
    /// the same address but whose payload differed (a sender that restarted
    /// and drew identities afresh): handed over as the new messages they are.
    pub identity_collisions: u64,
    /// Messages handed to the application.
    pub received: u64,
    /// Fragments of large messages taken (each answered with its RECV).
    pub fragments_received: u64,
    /// Incomplete large messages dropped because the lifetime their
    /// fragments announced passed: their senders had stopped.
    pub large_messages_expired: u64,
    /// Messages confirmed delivered.
    pub delivered: u64,
    /// Messages that failed.
    pub failed: u64,
    /// Idle peers forgotten early to make room for a new one when
    /// `limits.max_peers` was reached.
    pub peers_evicted: u64,
    /// Of those, peers that had not proven they receive our datagrams,
    /// forgotten while busy (their RECV exchanges cut short, their
    /// identities kept) because no peer was idle.
    pub unvalidated_peers_evicted: u64,
    /// New DATA from an address that had not proven itself, held (neither
    /// answered nor handed over) until it answered its validation probe.
    pub data_held_for_validation: u64,
    /// Held DATA taken once its address proved itself: handed over and
    /// answered with RECV, a round trip after it came.
    pub held_data_taken: u64,
    /// Validation probes sent: header-only RECVs naming a token, one when
    /// an address that reached us first sends its first DATA, then resent
    /// with backoff while something waits on its proof.
    pub validation_probes: u64,
    /// Addresses that proved they receive our datagrams by answering a
    /// validation probe.
    pub validated_by_probe: u64,
    /// Unreachable reports (see
    /// [`Endpoint::peer_unreachable`](crate::Endpoint::peer_unreachable))
    /// that made a peer which had answered before suspect, failing nothing
    /// at once.
    pub unreachable_suspected: u64,
    /// Of those suspicions, the ones a datagram from the peer ended within
    /// the grace (a restarted peer process, or a forged report).
    pub unreachable_recovered: u64,
    /// Datagrams the system refused to send as too large for the path,
    /// reported by the adapter (see
    /// [`Endpoint::datagram_too_large`](crate::Endpoint::datagram_too_large));
    /// their messages failed with
    /// [`FailureReason::TooLarge`](crate::FailureReason::TooLarge).
    pub too_large_reports: u64,
    /// Path MTU probes sent (each once; the header-sized markers that
    /// follow them are not counted). See `docs/large-messages.md`.
    pub pmtu_probes_sent: u64,
    /// Path MTU probes confirmed by their RECV: the size passed.
    pub pmtu_probes_confirmed: u64,
    /// Path MTU probes declared lost, or refused by the system as too
    /// large. Neither is a congestion signal nor fails anything.
    pub pmtu_probes_lost: u64,
    /// Paths whose discovered datagram size stopped passing (a black
    /// hole): their size fell back to the base and was searched again.
    pub pmtu_black_holes: u64,
    /// Path MTU probes from peers answered with RECV (never handed over,
    /// never remembered).
    pub pmtu_probes_answered: u64,
    /// Path MTU probes from peers left unanswered, as a new DATA would
    /// have been then (receiving paused, a receive bound reached, closing).
    pub pmtu_probes_unanswered: u64,
    /// Datagrams ignored or not sent, by cause.
    pub dropped: DropCounts,
}

/// Counters for one peer, from [`Endpoint::peer_stats`](crate::Endpoint::peer_stats).
///
/// Laid out in declaration order (`repr(C)`): the endpoint keeps one in
/// each peer and counts every datagram in the first fields, so that they
/// share a cache line or two.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
#[repr(C)]
pub struct PeerStats {
    /// gtUDP datagrams received from the peer, by kind.
    pub datagrams_in: KindCounts,
    /// gtUDP datagrams sent to the peer, by kind.
    pub datagrams_out: KindCounts,
    /// Bytes received from the peer.
    pub bytes_in: u64,
    /// Bytes sent to the peer.
    pub bytes_out: u64,
    /// Messages from the peer handed to the application.
    pub received: u64,
    /// Messages to the peer confirmed delivered.
    pub delivered: u64,
    /// Current congestion window, in messages.
    pub window: u32,
    /// Whether the peer has proven it receives our datagrams (a RECV for a
    /// message we sent it). Until then, replies to it are limited to three
    /// times the bytes it sent.
    pub validated: bool,
    /// Datagrams from the peer's address that were not gtUDP, by reason.
    pub invalid: InvalidCounts,
    /// DATA retransmissions to the peer.
    pub retransmissions: u64,
    /// DATA retransmissions to the peer found needless (see
    /// [`EndpointStats::spurious_retransmissions`]).
    pub spurious_retransmissions: u64,
    /// Messages to the peer presumed lost before their retransmission
    /// timeout (see [`EndpointStats::loss_detected_early`]).
    pub loss_detected_early: u64,
    /// Repeated DATA from the peer not handed over again.
    pub duplicates_suppressed: u64,
    /// Messages to the peer that failed.
    pub failed: u64,
    /// Smoothed round-trip time, once measured.
    pub rtt: Option<Duration>,
    /// Current retransmission timeout (before per-message backoff).
    pub rto: Duration,
    /// Messages in flight now.
    pub in_flight: usize,
    /// Messages waiting for the window now.
    pub queued: usize,
    /// Times the peer moved here from another address, with the roaming
    /// extension (see [`EndpointStats::peer_moves`]).
    pub moves: u64,
    /// The largest datagram (UDP payload, header included) sent to the
    /// peer now, as path MTU discovery found it; `None` while discovery is
    /// off or has not started for the peer (see
    /// [`Endpoint::path_datagram_size`](crate::Endpoint::path_datagram_size)).
    pub path_datagram_size: Option<usize>,
}
