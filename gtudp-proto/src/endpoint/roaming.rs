//! The roaming extension: peers known by the token they send, not by their
//! address, so a peer whose address changes (a NAT rebinding, a phone
//! moving from Wi-Fi to cellular) keeps its messages, each handed over
//! once, and nobody else can move it.
//!
//! With [`Framing::with_roaming`](crate::wire::Framing::with_roaming) on at
//! both ends, every datagram carries its sender's token (in the spirit of a
//! QUIC connection ID). An endpoint gives each peer its own
//! (`Peer::sent_token`): a keyed hash of the address it first tracked the
//! peer at and of the peer record's serial, kept when the peer moves. So
//! the token B sends A is sent to A only, and a third party B answers
//! learns only the token B sends it: relaying B's answers to A from its own
//! address proves nothing of B, and whoever holds A's address after A
//! moved gets another token. An answer to an untracked address carries
//! [`NO_TOKEN`], which no address ever proves.
//!
//! - **Receiving.** What a peer sent is remembered under its token
//!   (`receiver::token_key`), so a retransmission is recognised whatever
//!   address it comes from. A new address still proves itself before its
//!   DATA is taken (see `validating`), and is held to three times the bytes
//!   it sent until then.
//! - **Proving a token.** An address proves the token it sends when it
//!   answers a validation probe, or when its RECV confirms one of our
//!   messages sent to it: both name an identity only a reader of our
//!   datagrams knows.
//! - **Moving.** When an address proves the token of a peer tracked at
//!   another address, that peer *moves*: its messages, queue and
//!   estimates go to the new address, and what was in flight to the old
//!   one is resent there by the usual loss recovery, not failed. A RECV
//!   from a new address that carries the token of a message's destination
//!   confirms the message, and draws a validation probe to the new
//!   address; its answer moves the peer.
//! - **The old address.** Sends the application makes to it afterwards go
//!   to the peer's new address, until another endpoint proves itself there.
//!
//! A datagram from a spoofed address that carries a live peer's token
//! moves nothing: the spoofed address never answers its probe. An on-path
//! attacker who reads the token a peer sends us and receives at its own
//! address can answer the probe and draw the peer's traffic until the
//! peer's next datagram moves it back; only an authenticated mode would
//! stop that.

use std::net::SocketAddr;
use std::time::Instant;

use super::peer_table::PeerTable;

/// How many of its peer's moves give a message back its attempts: enough
/// for a peer moving every few hundred milliseconds for a minute, while a
/// peer that never stops moving cannot keep a message alive for ever.
const MAX_MOVE_CREDITS: u8 = u8::MAX;
use super::Endpoint;
use crate::timer::TimerKey;

/// Whether a RECV carrying `token` (from another address than
/// `destination`) carries the token the peer at `destination` proved:
/// with the roaming extension, the peer answering from where it moved to.
pub(super) fn answers_by_token(
    peers: &PeerTable,
    token: Option<u64>,
    destination: &SocketAddr,
) -> bool {
    token.is_some()
        && peers
            .get(destination)
            .is_some_and(|peer| peer.token == token)
}

/// A new token for the peer tracked at `address` with `serial`
/// (`Peer::sent_token`): a keyed hash of both, so that it is another for
/// every peer record, even at an address an earlier peer held (whoever
/// holds the address later must not learn the token the earlier peer knows
/// us by). Never [`NO_TOKEN`].
pub(super) fn fresh_token(key: (u64, u64), address: &SocketAddr, serial: u64) -> u64 {
    crate::validation::keyed_address_hash(key, serial, &crate::canonical_addr(*address))
        .max(NO_TOKEN + 1)
}

/// The token written into datagrams to an address where no peer is
/// tracked (an answer to a RECV for a message already forgotten, say): it
/// names nobody, and no address ever proves it, so whoever learns it can
/// move no peer with it.
pub(super) const NO_TOKEN: u64 = 0;

impl Endpoint {
    /// The address `destination` stands for: with the roaming extension, a
    /// peer's former address stands for the address it moved to, unless a
    /// proven peer is there now. (A late datagram from the former address
    /// may make it an unproven peer again; it stands for the moved peer
    /// until it proves itself.)
    pub(super) fn follow_move(&self, destination: SocketAddr) -> SocketAddr {
        if self.moved.is_empty()
            || self
                .peers
                .get(&destination)
                .is_some_and(|peer| !peer.is_unvalidated())
        {
            return destination;
        }
        self.moved
            .get(&destination)
            .and_then(|token| self.tokens.get(token))
            .copied()
            .unwrap_or(destination)
    }

    /// A RECV confirmed a message to a peer from `source`, another address
    /// of that peer (see [`answers_by_token`]):
    /// `source` is asked to prove itself, and its answer moves the peer.
    pub(super) fn probe_new_address(&mut self, now: Instant, source: SocketAddr, size: usize) {
        // A late RECV from an address the peer has left: nothing to prove.
        if self.arrival_token.is_some() && self.moved.get(&source) == self.arrival_token.as_ref() {
            return;
        }
        if !self.peers.contains_key(&source) {
            if !self.ensure_peer(now, source, true) {
                return;
            }
            // Its RECV opens its budget for our ACK and the probe.
            self.note_inbound(source, crate::wire::PacketKind::Recv, size);
        }
        self.probe_if_due(now, source);
    }

    /// `address`, tracked and validated, has just proven that it sends the
    /// token of the datagram being handled. If another address proved that
    /// token before, the peer there moves to `address`.
    #[inline(always)]
    pub(super) fn on_token_proven(&mut self, now: Instant, address: SocketAddr) {
        // Without the roaming extension, every RECV stops here. A token
        // that names nobody proves nothing.
        if let Some(token) = self.arrival_token.filter(|token| *token != NO_TOKEN) {
            self.on_token_proven_by(now, address, token);
        }
    }

    /// [`on_token_proven`](Self::on_token_proven) for the datagram's `token`.
    fn on_token_proven_by(&mut self, now: Instant, address: SocketAddr, token: u64) {
        let Some(peer) = self.peers.get_mut(&address) else {
            return;
        };
        // Every RECV from a proven peer comes here.
        if peer.token == Some(token) {
            return;
        }
        let previous = peer.token.replace(token);
        if let Some(previous) = previous {
            if self.tokens.get(&previous) == Some(&address) {
                self.tokens.remove(&previous);
            }
        }
        // An endpoint of its own is there now.
        self.moved.remove(&address);
        match self.tokens.insert(token, address) {
            Some(old) if old != address => self.move_peer(now, old, address, token),
            _ => {}
        }
    }

    /// Forgets the token a peer that is going away had proven.
    pub(super) fn forget_token(&mut self, address: &SocketAddr, token: Option<u64>) {
        if let Some(token) = token {
            if self.tokens.get(&token) == Some(address) {
                self.tokens.remove(&token);
            }
        }
    }

    /// Moves the peer at `old` to `new`, where it has just proven its token.
    fn move_peer(&mut self, now: Instant, old: SocketAddr, new: SocketAddr, token: u64) {
        let busy = |peer: &super::peer::Peer| {
            peer.in_flight > 0 || !peer.queue.is_empty() || !peer.held.is_empty()
        };
        // The application sent to the new address before it proved the
        // token: both sides' sends cannot be merged, so the old one's stay
        // where they are and resolve there.
        match self.peers.get(&new) {
            Some(arrived) if !busy(arrived) && self.peers.contains_key(&old) => {}
            _ => return,
        }
        let (Some(mut moving), Some(arrived)) = (self.remove_peer(&old), self.remove_peer(&new))
        else {
            return;
        };
        self.stats.peer_moves += 1;
        // The records awaiting an ACK from the old address get their RECVs
        // at the new one, within the new address's share.
        moving.awaiting = arrived.awaiting + self.retarget_records(now, old, new, arrived.awaiting);
        // (Nothing is held from a validated address.)
        moving.inbound = arrived.inbound;
        moving.serial = arrived.serial;
        moving.probe_sent = arrived.probe_sent;
        moving.probes = arrived.probes;
        moving.probe_timer = None;
        // The path is new: what was learnt of the old one's size and
        // reachability does not hold.
        moving.path = arrived.path;
        moving.too_large = arrived.too_large;
        moving.suspect_until = None;
        moving.suspect_rto_cap = None;
        moving.gone = false;
        moving.idle_deadline = None;
        // It takes the serial of the peer it replaces, whose countdowns may
        // still be queued: its own count continues past theirs, so none of
        // them is taken for its own (`IdleEntry::is_live`).
        moving.idle_countdowns = arrived.idle_countdowns;
        moving.token = Some(token);
        moving.stats.moves += 1;
        moving.stats.validated = true;
        moving.send_deadline_moved = true;
        // Its silence was the old path's: the new one starts unbacked-off.
        moving.backoff = 0;
        moving.probe_out = false;
        if let Some(at) = moving.send_timer {
            self.timers.push(at, TimerKey::Sender(new));
        }
        self.unvalidated_count += usize::from(moving.is_unvalidated());
        self.peers.insert(new, moving);
        // Removing the peers forgot the token.
        self.tokens.insert(token, new);
        self.retarget_messages(old, new);
        self.remember_move(old, token);
        // What was in flight went to the old address: it goes to the new
        // one now (no loss, no congestion signal), and what waited follows.
        self.resend_after_move(now, new);
        self.release(now, new);
        self.arm_sender_timer(now, new);
        self.note_if_idle(now, new);
    }

    /// Keeps that the peer named `token` was at `old`, for sends to it
    /// there. At most `max_peers` are kept: when full, those whose peer is
    /// forgotten go first; if none is, the move is not kept (sends to `old`
    /// then go to `old`).
    fn remember_move(&mut self, old: SocketAddr, token: u64) {
        if self.moved.len() >= self.config.limits.max_peers {
            let tokens = &self.tokens;
            self.moved.retain(|_, token| tokens.contains_key(token));
        }
        if self.moved.len() < self.config.limits.max_peers {
            self.moved.insert(old, token);
        }
    }

    /// Points the records awaiting an ACK from `old` at `new`, where
    /// `already` await one, and sends there the RECVs that were waiting to
    /// go to `old`; returns how many moved. Those beyond the peer's share
    /// (`max_awaiting_ack_per_peer`) end their exchange instead: they are
    /// remembered, so a copy from the new address is still recognised and
    /// answered, only without a RECV resent unasked.
    fn retarget_records(
        &mut self,
        now: Instant,
        old: SocketAddr,
        new: SocketAddr,
        already: usize,
    ) -> usize {
        let room = self
            .config
            .limits
            .max_awaiting_ack_per_peer
            .saturating_sub(already);
        let mut keys: Vec<_> = self
            .awaiting
            .iter()
            .filter(|(_, record)| record.from == old)
            .map(|(key, _)| *key)
            .collect();
        // In a fixed order (by identity), so the choice does not depend on
        // the map's layout.
        keys.sort_unstable_by_key(|key| (key.1.to_u32(), key.0));
        let ended = keys.split_off(keys.len().min(room));
        for key in ended {
            self.give_up_recv(now, key);
        }
        for key in &keys {
            let hash = self.awaiting.hash(key);
            if let Some((id, record)) = self.awaiting.find(hash, key) {
                record.from = new;
                if record.reply_pending {
                    self.output.push_recv(new, id, key.1);
                }
            }
        }
        keys.len()
    }

    /// Orders every transmission in flight to the peer now at `new` again.
    fn resend_after_move(&mut self, now: Instant, new: SocketAddr) {
        let mut moved = std::mem::take(&mut self.scratch_lost);
        if let Some(peer) = self.peers.get_mut(&new) {
            let liveness = super::recovery::liveness_in(&self.messages);
            let live = |sent: &crate::loss::Sent| {
                (liveness(sent) != crate::loss::Liveness::Stale).then_some(now)
            };
            peer.order.take_expired(now, live, &mut moved);
        }
        for sent in moved.drain(..) {
            self.resend(now, sent, super::sender::Cause::Deferred);
        }
        self.scratch_lost = moved;
    }

    /// Points every message to `old` at `new`. The attempts a message
    /// spent at the old address are given back (but one), so that what
    /// was in flight when the peer moved is resent there, not failed; a
    /// message gets this `MAX_MOVE_CREDITS` times at most, so a peer that
    /// keeps moving cannot keep it alive for ever, and never past its retry
    /// span (`Message::resend_until_ns`), which the receiver's
    /// `remember_window` covers.
    fn retarget_messages(&mut self, old: SocketAddr, new: SocketAddr) {
        let ids: Vec<_> = self
            .messages
            .iter()
            .filter(|(_, message)| message.destination == old)
            .map(|(id, _)| id)
            .collect();
        for id in ids {
            if let Some(message) = self.messages.get_mut(&id) {
                message.destination = new;
                if message.moves < MAX_MOVE_CREDITS {
                    message.moves += 1;
                    let given_back = u16::try_from(message.attempts_used() - 1).unwrap_or(u16::MAX);
                    message.move_credit = message.move_credit.saturating_add(given_back);
                }
            }
        }
        self.retarget_large_sends(old, new);
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Instant;

    use crate::wire::Framing;
    use crate::{Config, Endpoint};

    /// A peer that moves takes the serial of the record it replaces, whose
    /// idle countdowns may still be queued: none of them may pass for the
    /// moved peer's own (it would be forgotten at the replaced record's
    /// deadline, up to `peer_idle_timeout` early).
    #[test]
    fn a_moved_peer_takes_none_of_the_replaced_records_countdowns_for_its_own() {
        let config = Config {
            framing: Framing::default().with_roaming(),
            ..Config::default()
        };
        let mut endpoint = Endpoint::new(config, 1).expect("valid");
        let now = Instant::now();
        let old: SocketAddr = "192.0.2.1:4000".parse().expect("address");
        let new: SocketAddr = "198.51.100.7:31000".parse().expect("address");
        assert!(endpoint.ensure_peer(now, old, false));
        assert!(endpoint.ensure_peer(now, new, false));
        // The record at `new` went busy and idle again twice: three of its
        // countdowns are queued, the last one live.
        for _ in 0..2 {
            if let Some(peer) = endpoint.peers.get_mut(&new) {
                peer.idle_deadline = None;
            }
            endpoint.note_if_idle(now, new);
        }
        assert_eq!(endpoint.live_idle_countdowns(new), 1);
        endpoint.move_peer(now, old, new, 7);
        assert_eq!(endpoint.stats.peer_moves, 1, "the peer did not move");
        assert_eq!(
            endpoint.live_idle_countdowns(new),
            1,
            "a countdown of the replaced record passes for the moved peer's"
        );
    }
}
