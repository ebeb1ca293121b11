//! Failing a peer's messages when the network says it cannot be reached.

use std::net::SocketAddr;
use std::time::Instant;

use smallvec::SmallVec;

use super::Endpoint;
use crate::event::{FailureReason, MessageId};

impl Endpoint {
    /// Fails every message to `peer`, in flight or queued, with
    /// [`FailureReason::Unreachable`], and returns how many.
    ///
    /// For an adapter whose socket reported an ICMP destination-unreachable
    /// error (port or host unreachable) for `peer`: without it, such a
    /// message fails only after its attempt limit (about 65 s with the
    /// default [`Config`](crate::Config)). A failed message's payload may
    /// still have arrived (an earlier transmission may have got through
    /// before the peer went away). Messages sent afterwards are tried as
    /// usual.
    ///
    /// The scan is over every message the endpoint holds; it is meant for
    /// the rare error report, not for every datagram.
    pub fn peer_unreachable(&mut self, now: Instant, peer: SocketAddr) -> usize {
        let peer = crate::canonical_addr(peer);
        let now = self.advance(now);
        let doomed: SmallVec<[MessageId; 16]> = self
            .messages
            .iter()
            .filter(|(_, message)| message.destination == peer)
            .map(|(id, _)| *id)
            .collect();
        for id in &doomed {
            self.resolve(now, *id, Err(FailureReason::Unreachable));
        }
        self.finish_close_if_drained();
        self.compact();
        doomed.len()
    }
}
