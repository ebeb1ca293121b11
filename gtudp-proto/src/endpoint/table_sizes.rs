//! The sizes of an endpoint's tables, and the bounds `Limits` sets on them:
//! what simulations and fuzz targets check after every call.

use super::RememberedIdentities;

/// Sizes of the endpoint's tables, for checking bounds (see
/// [`Endpoint::table_sizes`](crate::Endpoint::table_sizes)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableSizes {
    /// Tracked peers.
    pub peers: usize,
    /// Idle-peer records kept for eviction, live or stale.
    pub idle_peers: usize,
    /// Peers tracked that reached us first and are not validated yet.
    pub unvalidated_peers: usize,
    /// DATA held from unvalidated peers until they prove themselves.
    pub held_for_validation: usize,
    /// Their payload bytes.
    pub held_for_validation_bytes: usize,
    /// Most DATA held for one unvalidated peer.
    pub largest_peer_held: usize,
    /// Messages accepted and unresolved (in flight or queued).
    pub messages: usize,
    /// Messages accepted whose outcome has not been polled.
    pub outstanding: usize,
    /// Messages waiting for a window, over all peers.
    pub queued: usize,
    /// Most messages waiting for one peer's window.
    pub largest_peer_queue: usize,
    /// Received messages whose RECV awaits its ACK.
    pub awaiting_ack: usize,
    /// Most of those for one peer.
    pub largest_peer_awaiting_ack: usize,
    /// Received identities remembered after their exchange ended.
    pub remembered: usize,
    /// Bytes the remembered identities take.
    pub remembered_bytes: usize,
    /// Most of those bytes for one host (the identities are remembered
    /// by the sender's IP address, whatever its port).
    pub largest_peer_remembered_bytes: usize,
    /// Received and foreign payloads not yet polled.
    pub unread: usize,
    /// Events not yet polled.
    pub events: usize,
    /// ACK replies waiting for `poll_transmit`.
    pub pending_control: usize,
    /// Raw datagrams waiting for `poll_transmit`.
    pub pending_raw: usize,
    /// Transmit orders of every kind waiting for `poll_transmit`.
    pub pending_transmits: usize,
    /// Timer entries, live or stale.
    pub timers: usize,
    /// Most entries in one peer's send order (its DATA transmissions
    /// still in flight, plus stale ones not yet dropped).
    pub largest_send_order: usize,
    /// Bytes counted for incomplete large messages (see
    /// [`Limits::max_reassembly_bytes`](crate::Limits::max_reassembly_bytes)).
    pub reassembly_bytes: usize,
    /// Most of those bytes for one host.
    pub largest_peer_reassembly_bytes: usize,
}

impl TableSizes {
    /// The first table found above the bound `limits` sets for it, if any.
    ///
    /// The bounds are those the endpoint keeps by construction: each
    /// [`Limits`](crate::Limits) field for its table; events by outcomes
    /// plus unread payloads; and, for the structures that hold stale entries
    /// until purged (timers, pending transmits), twice the live bound plus a
    /// small constant. Simulations and fuzz targets check it after every call.
    pub fn exceeded(&self, limits: &crate::Limits) -> Option<BoundExceeded> {
        // Stale timer entries and transmit orders are purged once they
        // outnumber twice the live ones (plus 64); one call adds a few more.
        const SLACK: usize = 66;
        const FORCED_INSERT_BYTES: usize = RememberedIdentities::worst_insert_bytes();
        // Per peer: its idle countdown, its send-side timer, its probe, its
        // unreachable grace, its path MTU discovery.
        let live_timers =
            limits.max_outstanding_messages + limits.max_awaiting_ack + 5 * limits.max_peers + 1;
        let live_orders = limits.max_outstanding_messages
            + limits.max_awaiting_ack
            + limits.max_pending_control
            + limits.max_pending_raw;
        let checks = [
            ("peers", self.peers, limits.max_peers),
            ("idle_peers", self.idle_peers, 2 * limits.max_peers + SLACK),
            (
                "unvalidated_peers",
                self.unvalidated_peers,
                limits.max_unvalidated_peers.min(limits.max_peers),
            ),
            (
                "held_for_validation",
                self.held_for_validation,
                limits.max_unvalidated_peers.min(limits.max_peers)
                    * limits.max_held_per_unvalidated_peer,
            ),
            (
                "held_for_validation_bytes",
                self.held_for_validation_bytes,
                limits.max_held_bytes_unvalidated,
            ),
            (
                "largest_peer_held",
                self.largest_peer_held,
                limits.max_held_per_unvalidated_peer,
            ),
            ("messages", self.messages, limits.max_outstanding_messages),
            (
                "outstanding",
                self.outstanding,
                limits.max_outstanding_messages,
            ),
            ("queued", self.queued, limits.max_outstanding_messages),
            (
                "largest_peer_queue",
                self.largest_peer_queue,
                limits.max_queued_per_peer,
            ),
            ("awaiting_ack", self.awaiting_ack, limits.max_awaiting_ack),
            (
                "largest_peer_awaiting_ack",
                self.largest_peer_awaiting_ack,
                limits.max_awaiting_ack_per_peer,
            ),
            // Moving a record that awaited its ACK into the memory may take
            // the room reserved for it, or the smallest new table.
            (
                "remembered_bytes",
                self.remembered_bytes,
                limits.max_remembered_bytes + limits.max_awaiting_ack * FORCED_INSERT_BYTES,
            ),
            // One host's memory takes the records awaiting from each of
            // its ports (NAT rebindings share it): up to the awaiting
            // records of as many peers, within the whole table's.
            (
                "largest_peer_remembered_bytes",
                self.largest_peer_remembered_bytes,
                limits.max_remembered_bytes_per_peer
                    + limits.max_awaiting_ack.min(
                        limits
                            .max_peers
                            .saturating_mul(limits.max_awaiting_ack_per_peer),
                    ) * FORCED_INSERT_BYTES,
            ),
            (
                "reassembly_bytes",
                self.reassembly_bytes,
                limits.max_reassembly_bytes,
            ),
            (
                "largest_peer_reassembly_bytes",
                self.largest_peer_reassembly_bytes,
                limits.max_reassembly_bytes_per_peer,
            ),
            ("unread", self.unread, limits.max_unread),
            (
                "events",
                self.events,
                limits.max_outstanding_messages + limits.max_unread,
            ),
            (
                "pending_control",
                self.pending_control,
                limits.max_pending_control,
            ),
            ("pending_raw", self.pending_raw, limits.max_pending_raw),
            (
                "pending_transmits",
                self.pending_transmits,
                2 * live_orders + SLACK,
            ),
            ("timers", self.timers, 2 * live_timers + SLACK),
            // Compacted once stale entries outnumber twice the live ones.
            (
                "largest_send_order",
                self.largest_send_order,
                2 * limits.max_outstanding_messages + SLACK,
            ),
        ];
        checks
            .into_iter()
            .find(|&(_, size, bound)| size > bound)
            .map(|(table, size, bound)| BoundExceeded { table, size, bound })
    }
}

/// A table above its bound, from [`TableSizes::exceeded`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoundExceeded {
    /// The table's name, as the [`TableSizes`] field.
    pub table: &'static str,
    /// Its size.
    pub size: usize,
    /// Its bound.
    pub bound: usize,
}

impl core::fmt::Display for BoundExceeded {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "table {} holds {} entries, above its bound of {}",
            self.table, self.size, self.bound
        )
    }
}
