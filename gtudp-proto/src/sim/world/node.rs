//! What the world keeps per endpoint and per send, for the checks.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use crate::endpoint::Endpoint;
use crate::event::{Event, FailureReason, MessageId};
use crate::sim::reader::ReaderState;
use crate::sim::tag::Tag;
use crate::wire::Identity;

/// A message the endpoint handed over, until its application reads it.
pub(super) struct Handover {
    pub(super) from: SocketAddr,
    pub(super) payload: Bytes,
    /// Taken by an endpoint with large messages on, where one datagram may
    /// complete a message of many: the payload is not known from the
    /// datagram, so what is read is checked by its content instead (sent by
    /// its sender to this node, never handed over before).
    pub(super) by_content: bool,
}

/// DATA kept by the world per node, at most this many, for checking the
/// messages an endpoint holds until their address proves itself.
pub(super) const HELD_DATA_KEPT: usize = 65_536;

/// One endpoint, and what the checker knows of it and of its application.
pub(super) struct Node {
    pub(super) address: SocketAddr,
    pub(super) endpoint: Endpoint,
    /// Tags handed over at this node from intact datagrams.
    pub(super) received: BTreeSet<Tag>,
    /// Send record of each id the endpoint gave out.
    pub(super) sends: BTreeMap<MessageId, usize>,
    /// Send record of each tag this node sent.
    pub(super) by_tag: BTreeMap<Tag, usize>,
    pub(super) next_seq: u64,
    /// Events kept for the user, when asked.
    pub(super) inbox: Vec<(Duration, Event)>,
    /// `None`: the application reads every event at once.
    pub(super) reader: Option<ReaderState>,
    /// Messages handed over whose `Received` event is not read yet, in order.
    pub(super) unread: VecDeque<Handover>,
    /// When each outcome event not read yet was produced, in order.
    pub(super) outcome_times: VecDeque<Duration>,
    /// The endpoint's `received` and `delivered + failed` counters when last
    /// looked at.
    pub(super) seen_received: u64,
    pub(super) seen_outcomes: u64,
    /// `(sender, identity)` of every DATA handed over from a corrupted
    /// datagram.
    pub(super) corrupt_handed: BTreeSet<(SocketAddr, Identity)>,
    /// Identities of this node's messages confirmed by a corrupted RECV.
    pub(super) corrupt_confirmed: BTreeSet<Identity>,
    /// `(sender, identity)` of received messages whose RECV exchange an ACK
    /// born of corruption may have ended.
    pub(super) ack_tainted: BTreeSet<(SocketAddr, Identity)>,
    /// DATA the endpoint held until their address proves itself, by
    /// `(sender, identity)`, with their payload and whether they were
    /// corrupted (the newest copy of each identity, as the endpoint keeps;
    /// those it dropped since stay here, unmatched).
    pub(super) held_data: BTreeMap<(SocketAddr, Identity), (Bytes, bool)>,
    /// Keys of `held_data`, oldest first, to bound it.
    pub(super) held_order: VecDeque<(SocketAddr, Identity)>,
    /// Messages the endpoint took from what it held when this address just
    /// proved itself, not matched yet with the RECV that answers each.
    pub(super) proof_handovers: Option<(SocketAddr, u64)>,
}

impl Node {
    /// A node for `endpoint` at `address`, before any traffic.
    pub(super) fn new(address: SocketAddr, endpoint: Endpoint) -> Self {
        Self {
            address,
            endpoint,
            received: BTreeSet::new(),
            sends: BTreeMap::new(),
            by_tag: BTreeMap::new(),
            next_seq: 0,
            inbox: Vec::new(),
            reader: None,
            unread: VecDeque::new(),
            outcome_times: VecDeque::new(),
            seen_received: 0,
            seen_outcomes: 0,
            corrupt_handed: BTreeSet::new(),
            corrupt_confirmed: BTreeSet::new(),
            ack_tainted: BTreeSet::new(),
            held_data: BTreeMap::new(),
            held_order: VecDeque::new(),
            proof_handovers: None,
        }
    }

    /// Whether its application reads its events now.
    pub(super) fn reads(&self) -> bool {
        self.reader.map_or(true, |reader| reader.reading())
    }
}

/// One send an endpoint accepted, until (and after) its outcome.
pub(super) struct SendRecord {
    pub(super) node: usize,
    pub(super) to: SocketAddr,
    pub(super) id: MessageId,
    pub(super) tag: Option<Tag>,
    /// Learned from its first DATA on the wire.
    pub(super) identity: Option<Identity>,
    pub(super) deadline: Option<Duration>,
    pub(super) must_deliver: bool,
    /// When it was accepted.
    pub(super) sent: Duration,
    pub(super) outcome: Option<(Duration, Result<(), FailureReason>)>,
}

/// Bytes exchanged with an address that is not an endpoint, per endpoint.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Exchange {
    pub(super) bytes_in: u64,
    pub(super) bytes_out: u64,
}
