//! Which peers the endpoint tracks: admitting a new one (unvalidated when
//! it reached us first), evicting one when the table is full (unvalidated
//! peers first, then the idle one idle longest), and forgetting a peer that
//! has held no state for `peer_idle_timeout`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::peer::Peer;
use super::Endpoint;
use crate::event::MessageId;
use crate::timer::TimerKey;

impl Endpoint {
    /// Makes sure a peer is tracked at `address`, `inbound` when a datagram
    /// from it (rather than the application) brings it; false when it is new
    /// and the peer table is full of peers that may not be evicted.
    #[inline(always)]
    pub(super) fn ensure_peer(&mut self, now: Instant, address: SocketAddr, inbound: bool) -> bool {
        // Tracked already on every message but a peer's first.
        self.peers.contains_key(&address) || self.track_peer(now, address, inbound)
    }

    /// [`ensure_peer`](Self::ensure_peer) for an address not tracked yet.
    #[inline(never)]
    fn track_peer(&mut self, now: Instant, address: SocketAddr, inbound: bool) -> bool {
        let proven = inbound && !self.would_be_unvalidated(&address);
        let inbound = inbound && !proven;
        if inbound && !self.admits_unvalidated_peer(now) {
            return false;
        }
        // Unvalidated peers go first, so that a flood from spoofed
        // addresses never costs a validated peer its place.
        if self.peers.len() >= self.config.limits.max_peers
            && !self.evict_unvalidated_peer(now, None)
            && !self.evict_idle_peer()
        {
            return false;
        }
        let mut peer = Peer::new(&self.config);
        peer.inbound = inbound;
        if proven {
            peer.validate();
        }
        peer.serial = self.next_peer_serial;
        self.next_peer_serial += 1;
        if self.config.framing.roaming() {
            peer.sent_token = match self.parked.get(&address) {
                // Messages evicted with an earlier peer here may have gone
                // out already: every copy of each carries one token.
                Some(parked) => parked.token,
                None => super::roaming::fresh_token(self.sent_token_key, &address, peer.serial),
            };
        }
        if inbound {
            self.unvalidated_peers
                .push_back((address, peer.serial, now));
            self.unvalidated_count += 1;
        }
        // A new peer holds nothing yet: forget it if nothing arrives.
        let countdown = idle_from(&mut peer, now, self.config.peer_idle_timeout);
        self.peers.insert(address, peer);
        if let Some(countdown) = countdown {
            self.start_idle_countdown(address, countdown);
        }
        true
    }

    /// Whether a datagram from `address` would make it a new unvalidated
    /// peer: it is not tracked. (An address whose peer was forgotten proves
    /// itself again: what it sent is remembered under its host, which
    /// proves nothing of the port.)
    pub(super) fn would_be_unvalidated(&self, address: &SocketAddr) -> bool {
        !self.peers.contains_key(address)
    }

    /// Whether one more unvalidated peer fits `max_unvalidated_peers`,
    /// making room if the oldest has had the time to prove itself
    /// (`unvalidated_attempts` initial RTOs) and holds none of our messages
    /// on the wire: under a flood the slots turn over at a bounded rate, so
    /// the cost of spoofed addresses stays bounded while newcomers still
    /// get their turn.
    pub(super) fn admits_unvalidated_peer(&mut self, now: Instant) -> bool {
        if self.unvalidated_count < self.config.limits.max_unvalidated_peers {
            return true;
        }
        match now.checked_sub(self.config.validation_window()) {
            Some(joined_by) => self.evict_unvalidated_peer(now, Some(joined_by)),
            None => false,
        }
    }

    /// Removes a peer from the table, keeping the unvalidated count.
    pub(super) fn remove_peer(&mut self, address: &SocketAddr) -> Option<Peer> {
        let peer = self.peers.remove(address)?;
        if peer.is_unvalidated() {
            self.unvalidated_count -= 1;
        }
        if peer.is_flagged() {
            self.flagged_peers -= 1;
        }
        self.release_held_data(&peer.held_data);
        self.forget_token(address, peer.token);
        Some(peer)
    }

    /// Forgets the peer idle the longest, if any, to make room for a new
    /// one. An idle peer holds no message in either direction, only its RTT
    /// estimate and window, so no guarantee depends on it.
    pub(super) fn evict_idle_peer(&mut self) -> bool {
        while let Some(entry) = self.idle_peers.pop_front() {
            if entry.is_live(&self.peers) {
                self.remove_peer(&entry.address);
                self.stats.peers_evicted += 1;
                return true;
            }
        }
        false
    }

    /// Forgets the unvalidated peer that reached us first, among those that
    /// hold no message of ours on the wire, to make room for a new one. What
    /// it sent was held, never handed over nor answered, so dropping it
    /// breaks no promise: its sender resends.
    ///
    /// With `joined_by`, only a peer queued no later than that instant is a
    /// candidate (the queue is in that order, so the search stops at the
    /// first younger one).
    pub(super) fn evict_unvalidated_peer(
        &mut self,
        now: Instant,
        joined_by: Option<Instant>,
    ) -> bool {
        for _ in 0..self.unvalidated_peers.len() {
            let Some(&(address, serial, joined)) = self.unvalidated_peers.front() else {
                return false;
            };
            if joined_by.is_some_and(|by| joined > by) {
                return false;
            }
            self.unvalidated_peers.pop_front();
            let Some(peer) = self.peers.get(&address) else {
                continue;
            };
            if peer.serial != serial || !peer.is_unvalidated() {
                continue;
            }
            if !peer.is_evictable() {
                // It holds our messages: keep it, look further.
                self.unvalidated_peers.push_back((address, serial, now));
                continue;
            }
            let held = peer.held.clone();
            let queued: Vec<MessageId> = peer.queue.iter().copied().collect();
            let token = peer.sent_token;
            // Messages waiting for it to prove itself wait on without it
            // (see `parked`), outside any peer's window.
            for &id in &held {
                if let Some(message) = self.messages.get_mut(&id) {
                    message.in_flight = false;
                    message.parked = true;
                }
            }
            // Those queued beyond its window get the same single wait for
            // the proof.
            let wait = self.config.initial_rto;
            let now_ns = self.nanos(now);
            for &id in &queued {
                if let Some(message) = self.messages.get_mut(&id) {
                    message.parked = true;
                    let at = message.hold_for(now_ns, wait);
                    if let Some(at) = super::instant_at(self.epoch, at) {
                        self.timers.push(at, TimerKey::Message(id));
                    }
                }
            }
            if !held.is_empty() || !queued.is_empty() {
                // (Already parked for the address: by a peer that took
                // the token of those, so it is this one.)
                let parked = self.parked.entry(address).or_insert_with(|| Parked {
                    token,
                    ids: smallvec::SmallVec::new(),
                });
                parked.ids.extend(held);
                parked.ids.extend(queued);
            }
            self.remove_peer(&address);
            self.stats.peers_evicted += 1;
            self.stats.unvalidated_peers_evicted += 1;
            return true;
        }
        false
    }

    /// Queues the peer at `address`, idle from now, to be forgotten at
    /// `deadline` (see `Endpoint::idle_peers`).
    pub(super) fn start_idle_countdown(&mut self, address: SocketAddr, countdown: Countdown) {
        // (Every caller found the peer just now: the slot is remembered.)
        let Some(slot) = self.peers.slot_remembered(&address) else {
            return;
        };
        self.idle_peers.push_back(IdleEntry {
            address,
            slot: slot as u32,
            countdown,
        });
        let deadline = countdown.deadline;
        // Purged here as well as between inputs: one input can start many
        // countdowns (a report failing every message of several peers, a
        // flood turning peers over), and the queue stays within its bound
        // after each one.
        self.purge_idle_peers_if_over();
        self.arm_idle_timer(deadline);
    }

    /// The live entries of the idle peers' queue for `address` (at most
    /// one, the peer's latest countdown).
    #[cfg(test)]
    pub(super) fn live_idle_countdowns(&self, address: SocketAddr) -> usize {
        self.idle_peers
            .iter()
            .filter(|entry| entry.address == address && entry.is_live(&self.peers))
            .count()
    }

    /// Drops the stale entries of the idle peers' queue once it holds more
    /// than twice the tracked peers plus 64 (each peer has at most one live
    /// entry, so a purge frees at least half the queue: amortized O(1)).
    pub(super) fn purge_idle_peers_if_over(&mut self) {
        if self.idle_peers.len() > 2 * self.peers.len() + 64 {
            let peers = &self.peers;
            self.idle_peers.retain(|entry| entry.is_live(peers));
        }
    }

    /// Sets the idle peers' timer for `deadline` unless it is set for an
    /// earlier instant already.
    fn arm_idle_timer(&mut self, deadline: Instant) {
        if self.idle_timer.map_or(true, |at| deadline < at) {
            self.idle_timer = Some(deadline);
            self.timers.push(deadline, TimerKey::IdlePeers);
        }
    }

    /// Starts the idle countdown of a peer that holds no state any more.
    #[inline]
    pub(super) fn note_if_idle(&mut self, now: Instant, address: SocketAddr) {
        let Some(peer) = self.peers.get_mut(&address) else {
            return;
        };
        if let Some(countdown) = idle_from(peer, now, self.config.peer_idle_timeout) {
            self.start_idle_countdown(address, countdown);
        }
    }

    /// Forgets every peer whose idle deadline has come and that is still
    /// idle since (entries of peers busy again, idle again or gone are
    /// stale), then sets the timer for the next deadline.
    pub(super) fn on_idle_peers_timer(&mut self, now: Instant, at: Instant) {
        if self.idle_timer != Some(at) {
            return;
        }
        self.idle_timer = None;
        while let Some(&entry) = self.idle_peers.front() {
            if entry.countdown.deadline > now {
                self.arm_idle_timer(entry.countdown.deadline);
                return;
            }
            self.idle_peers.pop_front();
            if entry.is_live(&self.peers) {
                self.remove_peer(&entry.address);
            }
        }
    }
}

/// The messages held for an unvalidated peer that was evicted before it
/// proved itself (see `Endpoint::parked`), with the token they carry.
#[derive(Debug)]
pub(super) struct Parked {
    /// The evicted peer's `sent_token`. A message held for the budget may
    /// have gone out before the eviction, and its receiver remembers it
    /// under the token it carried: the next peer tracked at the address
    /// takes this one, so that every copy carries it.
    pub(super) token: u64,
    /// The messages, in the order they were parked.
    pub(super) ids: smallvec::SmallVec<[MessageId; 2]>,
}

/// An idle countdown a peer has just started (see [`idle_from`]), for the
/// idle peers' queue.
#[derive(Clone, Copy, Debug)]
pub(super) struct Countdown {
    /// When the peer is forgotten if it stays idle.
    deadline: Instant,
    /// The peer's serial: a peer tracked later in its slot (at its address
    /// or another) has another.
    serial: u64,
    /// Which of the peer's countdowns this is (`Peer::idle_countdowns`).
    count: u32,
}

/// A peer's idle countdown, in the idle peers' queue (see
/// `Endpoint::idle_peers`).
///
/// It names the peer by its slot in the peer table, not by its address:
/// a server whose peers turn idle after each exchange pushes an entry per
/// exchange, and checks about two for each when it purges the stale ones,
/// so that a check that hashed the address would cost two cache misses
/// more for every message (the address map's and the table's), where the
/// slot reads the peer's first lines only.
#[derive(Clone, Copy, Debug)]
pub(super) struct IdleEntry {
    /// Where the peer is tracked, to forget it.
    address: SocketAddr,
    /// Its slot in the peer table when the countdown began.
    slot: u32,
    countdown: Countdown,
}

impl IdleEntry {
    /// The peer of the entry is idle since this countdown began: it has not
    /// been busy since, nor forgotten (its slot would hold another serial,
    /// or none).
    ///
    /// A peer keeps its slot and its address while tracked. One that moves
    /// ([`super::roaming`]) is tracked afresh at its new address, in any
    /// slot, under the serial of the peer it replaces there, with its
    /// countdowns counted past that peer's: so an entry that finds its
    /// serial and count in its slot names the peer at its address.
    fn is_live(&self, peers: &super::peer_table::PeerTable) -> bool {
        peers.at_slot(self.slot as usize).is_some_and(|peer| {
            peer.serial == self.countdown.serial
                && peer.idle_countdowns == self.countdown.count
                && peer.idle_deadline.is_some()
                && peer.is_idle()
        })
    }
}

/// For [`Endpoint::note_if_idle`] where the peer is at hand: if `peer`
/// holds no state and has no idle deadline, sets one `timeout` from `now`
/// and returns it; the caller then starts its countdown.
pub(super) fn idle_from(peer: &mut Peer, now: Instant, timeout: Duration) -> Option<Countdown> {
    if peer.is_idle() && peer.idle_deadline.is_none() {
        let deadline = now + timeout;
        peer.idle_deadline = Some(deadline);
        peer.idle_countdowns = peer.idle_countdowns.wrapping_add(1);
        return Some(Countdown {
            deadline,
            serial: peer.serial,
            count: peer.idle_countdowns,
        });
    }
    None
}
