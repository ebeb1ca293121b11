//! What the endpoint does when the network says a peer cannot be reached.
//!
//! An ICMP port or host unreachable report is a hard error for an address
//! that never answered (nothing listens there: fail at once), and a soft
//! one for a peer that has (RFC 1122 section 4.2.3.9, RFC 5461, RFC 9000
//! section 14): its process may be restarting on the same port, or the
//! report may be forged. Such a peer becomes *suspect* for
//! [`Config::unreachable_grace`](crate::Config::unreachable_grace): its
//! messages keep being resent (with their timeout capped, so probes keep
//! going out), any valid datagram from its address clears the suspicion,
//! and only at the end of a silent grace do its messages fail.

use std::net::SocketAddr;
use std::time::Instant;

use smallvec::SmallVec;

use super::Endpoint;
use crate::event::{FailureReason, MessageId};
use crate::timer::TimerKey;

/// The suspect peer's retransmission timeout is capped at the grace over
/// this, so that several probes go out within it.
const PROBES_PER_GRACE: u32 = 4;

impl Endpoint {
    /// The network reported `peer` unreachable (an ICMP port, host or
    /// network unreachable error for a datagram sent to it). Returns how
    /// many messages failed at once with [`FailureReason::Unreachable`]
    /// (0 when the peer is only suspected).
    ///
    /// - An address that has never answered (no RECV for our DATA, no
    ///   answer to a validation probe, not a peer we took messages from),
    ///   or whose earlier grace ran out with no datagram from it: every
    ///   message to it, in flight or queued, fails at once. A first contact
    ///   to a closed port learns it within a round trip, not after the
    ///   attempt limit (about 65 s with the default
    ///   [`Config`](crate::Config)).
    /// - A peer that has answered becomes suspect for
    ///   [`Config::unreachable_grace`](crate::Config::unreachable_grace)
    ///   (a report while suspect changes nothing): its messages are resent
    ///   as usual, with backoff, but at least every quarter of the grace
    ///   and with no tail-loss probe; any valid gtUDP datagram from its
    ///   address ends the suspicion, and the messages go on. If none comes
    ///   within the grace, every message to it then fails with
    ///   `Unreachable` (those sent during the grace too). A restarted peer
    ///   process thus loses nothing, and a forged report against a live
    ///   peer cancels nothing.
    ///
    /// A failed message's payload may still have arrived (an earlier
    /// transmission may have got through before the peer went away), and a
    /// delivered one may have reached both the old and the new process of
    /// a restarted peer (see `unreachable_grace`). Messages sent after a
    /// failure are tried as usual.
    ///
    /// The failure scans every message the endpoint holds; it is meant for
    /// the rare error report, not for every datagram.
    pub fn peer_unreachable(&mut self, now: Instant, peer: SocketAddr) -> usize {
        let address = crate::canonical_addr(peer);
        let now = self.advance(now);
        let grace = self.config.unreachable_grace;
        match self.peers.get_mut(&address) {
            Some(peer) if peer.suspect_until.is_some() => return 0,
            Some(peer) if peer.stats.validated && !peer.gone && !peer.is_idle() => {
                let deadline = now + grace;
                peer.suspect_until = Some(deadline);
                peer.suspect_rto_cap = Some(grace / PROBES_PER_GRACE);
                // The report says the latest transmission was lost: back
                // off, and leave the probing to the (capped) timeout, not
                // to tail-loss probes that would only draw more reports.
                peer.on_retransmission_timeout(1);
                self.stats.unreachable_suspected += 1;
                self.flagged_peers += 1;
                self.timers.push(deadline, TimerKey::Unreachable(address));
                self.arm_sender_timer(now, address);
                return 0;
            }
            _ => {}
        }
        let failed = self.fail_unreachable(now, address);
        self.finish_close_if_drained();
        self.compact();
        failed
    }

    /// A valid gtUDP datagram came from `address`: a suspect peer is back
    /// (or was never gone).
    pub(super) fn heard_from(&mut self, now: Instant, address: SocketAddr) {
        let Some(peer) = self.peers.get_mut(&address) else {
            return;
        };
        if !peer.is_flagged() {
            return;
        }
        self.flagged_peers -= 1;
        peer.gone = false;
        if peer.suspect_until.take().is_some() {
            peer.suspect_rto_cap = None;
            self.stats.unreachable_recovered += 1;
            // Its timeouts are the usual ones again; the armed timer, if
            // earlier, wakes once and is set again.
            self.arm_sender_timer(now, address);
        }
    }

    /// The grace of a suspect peer ran out.
    pub(super) fn on_unreachable_timer(&mut self, now: Instant, at: Instant, address: SocketAddr) {
        let Some(peer) = self.peers.get_mut(&address) else {
            return;
        };
        if peer.suspect_until != Some(at) {
            return;
        }
        peer.suspect_until = None;
        peer.suspect_rto_cap = None;
        // Probes went unanswered for the whole grace: the next report is
        // taken at its word (the peer stays flagged, as gone). With nothing
        // to fail, nothing was probed, and the peer is as before.
        if self.fail_unreachable(now, address) > 0 {
            if let Some(peer) = self.peers.get_mut(&address) {
                peer.gone = true;
                return;
            }
        }
        self.flagged_peers -= 1;
    }

    /// Fails every message to `address`, in flight, queued or parked, with
    /// [`FailureReason::Unreachable`], in id order; returns how many.
    fn fail_unreachable(&mut self, now: Instant, address: SocketAddr) -> usize {
        let mut doomed: SmallVec<[MessageId; 16]> = self
            .messages
            .iter()
            .filter(|(_, message)| message.destination == address)
            .map(|(id, _)| id)
            .collect();
        doomed.sort_unstable();
        for id in &doomed {
            self.resolve(now, *id, Err(FailureReason::Unreachable));
        }
        doomed.len()
    }
}
