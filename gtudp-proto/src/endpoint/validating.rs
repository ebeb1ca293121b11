//! The receiving side of address validation: DATA from an address that has
//! not proven it reads our datagrams is *held*, neither answered nor handed
//! over, while a validation probe (see [`crate::validation`]) asks the
//! address to prove itself; the answer takes what was held.
//!
//! This is what keeps exactly-once independent of memory bounds and floods:
//! a message is remembered (to suppress its late copies) only once it was
//! handed over, and it is handed over only for an address that proved
//! itself, whose history is never forgotten before its retention ends. What
//! is held may be dropped at any time at no cost: it was never handed over
//! nor answered with RECV, so its sender resends it.
//!
//! The price for an honest new peer is one round trip: its first messages
//! are handed over when the answer to the probe arrives, not when they do.

use std::net::SocketAddr;
use std::time::Instant;

use super::receiver::NewData;
use super::Endpoint;
use crate::timer::TimerKey;
use crate::wire::PacketKind;

/// A new message from an unvalidated address, held until it proves itself.
pub(super) type HeldData = super::receiver::NewData;

impl Endpoint {
    /// Holds a new DATA from the unvalidated peer at `source` (tracked) and
    /// asks the address to prove itself. A repeat of a held message is
    /// counted as a duplicate; a held message's identity with another
    /// payload replaces it (a sender that restarted). Past the peer's or the
    /// endpoint's held share, the DATA is dropped unanswered.
    pub(super) fn hold_until_validated(
        &mut self,
        now: Instant,
        source: SocketAddr,
        data: NewData,
        size: usize,
    ) {
        let NewData {
            kept_under,
            identity,
            fingerprint,
            payload,
            fragment,
            arrived,
        } = data;
        let limits = &self.config.limits;
        let (max_held, max_bytes) = (
            limits.max_held_per_unvalidated_peer,
            limits.max_held_bytes_unvalidated,
        );
        let Some(peer) = self.peers.get_mut(&source) else {
            return;
        };
        let held_len = peer.held_data.len();
        let position = peer
            .held_data
            .iter()
            .position(|held| held.identity == identity);
        match position.map(|index| (index, &mut peer.held_data[index])) {
            Some((_, held)) if held.fingerprint == fingerprint => {
                self.count_duplicate(source, size);
            }
            Some((_, held)) => {
                let (old, new) = (held.payload.len(), payload.len());
                if self.held_bytes - old + new > max_bytes {
                    self.stats.dropped.data_deferred_unvalidated += 1;
                } else {
                    self.held_bytes = self.held_bytes - old + new;
                    held.fingerprint = fingerprint;
                    held.kept_under = kept_under;
                    held.arrived = arrived;
                    held.payload = payload;
                    held.fragment = fragment;
                    self.stats.identity_collisions += 1;
                }
                self.note_inbound(source, PacketKind::Data, size);
            }
            None if held_len >= max_held || self.held_bytes + payload.len() > max_bytes => {
                self.stats.dropped.data_deferred_unvalidated += 1;
                self.note_inbound(source, PacketKind::Data, size);
            }
            None => {
                self.held_bytes += payload.len();
                self.held_count += 1;
                peer.held_data.push(HeldData {
                    kept_under,
                    identity,
                    fingerprint,
                    payload,
                    fragment,
                    arrived,
                });
                self.stats.data_held_for_validation += 1;
                self.note_inbound(source, PacketKind::Data, size);
            }
        }
        // A probe for every DATA that waits on it, not one per RTO: one lost
        // probe (or answer) must not stall a whole first window for a
        // timeout. It is never larger than the DATA, so no amplification.
        self.send_probe(now, source, false);
    }

    /// Takes every DATA held from `address`, which has just proven itself:
    /// each is handed over and answered with RECV as if it came now (or
    /// dropped unanswered if a receive bound is reached; its sender
    /// resends).
    pub(super) fn take_held_data(&mut self, now: Instant, address: SocketAddr) {
        let Some(peer) = self.peers.get_mut(&address) else {
            return;
        };
        if peer.held_data.is_empty() {
            return;
        }
        let held = std::mem::take(&mut peer.held_data);
        let lifetime = self.config.datagram_lifetime;
        for data in held {
            self.held_bytes -= data.payload.len();
            self.held_count -= 1;
            // Held longer than a datagram's lifetime, it is left unanswered:
            // it was recognised as new when it came, but the message it may
            // copy could have been taken since (from another address of its
            // sender) and its memory, kept a lifetime after that, be gone by
            // now. A new message's sender resends it.
            if now.saturating_duration_since(data.arrived) > lifetime {
                self.stats.dropped.data_deferred_unvalidated += 1;
                continue;
            }
            self.stats.held_data_taken += 1;
            // While it was held, a copy from another port of its host (a
            // NAT rebinding) may have been taken.
            let known = self.recognise(
                now,
                address,
                data.kept_under,
                data.identity,
                data.fingerprint,
            );
            let super::receiver::Known::New { collision, hash } = known else {
                self.stats.duplicates_suppressed += 1;
                continue;
            };
            self.take_data(now, address, data, collision, hash);
        }
    }

    /// Forgets what a peer that is going away held (it was never handed
    /// over nor answered, so nothing is lost).
    pub(super) fn release_held_data(&mut self, held: &[HeldData]) {
        for data in held {
            self.held_bytes -= data.payload.len();
            self.held_count -= 1;
        }
    }

    /// Sends `source` a validation probe if it is an unvalidated peer and
    /// none went to it within one retransmission timeout (for messages of
    /// ours held for it; a DATA held from it draws one each).
    pub(super) fn probe_if_due(&mut self, now: Instant, source: SocketAddr) {
        let Some(peer) = self.peers.get(&source) else {
            return;
        };
        if !peer.is_unvalidated()
            || peer
                .probe_sent
                .is_some_and(|sent| now < sent + peer.retransmission_timeout(1))
        {
            return;
        }
        self.send_probe(now, source, false);
    }

    /// Queues a validation probe to the unvalidated peer at `source` and,
    /// while something waits on its proof, makes sure a timer resends it
    /// (backed off like a RECV; `recv_max_attempts` rounds of it at most):
    /// one lost probe or answer never leaves an honest peer unvalidated.
    /// `on_timer` when it is such a resend.
    fn send_probe(&mut self, now: Instant, source: SocketAddr, on_timer: bool) {
        if self.output.pending_control >= self.config.limits.max_pending_control {
            self.stats.dropped.control_overflow += 1;
            return;
        }
        let token = self.validation.token(&source);
        let Some(peer) = self.peers.get_mut(&source) else {
            return;
        };
        peer.probe_sent = Some(now);
        if on_timer {
            peer.probes = peer.probes.saturating_add(1);
        }
        self.stats.validation_probes += 1;
        self.output.push_probe(source, token);
        let rounds_left = peer.probes.saturating_add(1) < self.config.recv_max_attempts;
        if peer.awaits_proof() && rounds_left && (on_timer || peer.probe_timer.is_none()) {
            let at = now + peer.retransmission_timeout(peer.probes.saturating_add(1));
            peer.probe_timer = Some(at);
            self.timers.push(at, TimerKey::Probe(source));
        }
    }

    /// A peer's probe timer fired: probe again if the address still has
    /// not proven itself and something still waits on it.
    pub(super) fn on_probe_timer(&mut self, now: Instant, at: Instant, address: SocketAddr) {
        let Some(peer) = self.peers.get_mut(&address) else {
            return;
        };
        if peer.probe_timer != Some(at) {
            return;
        }
        peer.probe_timer = None;
        if peer.awaits_proof() {
            self.send_probe(now, address, true);
        }
    }

    /// Answers a new DATA from an address not tracked, when no unvalidated
    /// peer slot is free, with a validation probe alone: nothing is kept and
    /// nothing handed over. An honest sender answers the probe (which
    /// validates it, statelessly) and sends the DATA again, and then it is
    /// taken; a spoofed address costs one header-sized reply per datagram.
    pub(super) fn defer_until_validated(&mut self, source: SocketAddr, size: usize) {
        self.stats.dropped.data_deferred_unvalidated += 1;
        self.note_inbound(source, PacketKind::Data, size);
        if self.output.pending_control >= self.config.limits.max_pending_control {
            self.stats.dropped.control_overflow += 1;
            return;
        }
        self.stats.validation_probes += 1;
        self.output
            .push_probe(source, self.validation.token(&source));
    }

    /// An ACK naming `source`'s validation token: the address reads our
    /// datagrams. It is validated even if it was evicted since the probe
    /// (tracked again, as validated, if the peer table has room for it).
    pub(super) fn on_probe_answered(&mut self, now: Instant, source: SocketAddr) {
        let tracked = self.peers.contains_key(&source);
        // Proven: it takes a peer slot, not an unvalidated one.
        if !tracked && !self.ensure_peer(now, source, false) {
            self.stats.dropped.ack_unknown += 1;
            return;
        }
        if tracked
            && !self
                .peers
                .get(&source)
                .is_some_and(|peer| peer.is_unvalidated())
        {
            return;
        }
        self.on_validated(now, source);
        self.stats.validated_by_probe += 1;
        self.on_token_proven(now, source);
    }
}
