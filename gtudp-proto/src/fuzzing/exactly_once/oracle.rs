//! The oracle: what it records of each endpoint ([`Side`]), and the
//! checks run on every event the endpoints hand to their applications.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use bytes::Bytes;

use super::tag::parse_tag;
use super::trace::{Step, NAMES};
use super::{World, A, B};
use crate::{Endpoint, Event, FailureReason, MessageId};

/// One message accepted by `send`.
pub(super) struct SendRecord {
    pub(super) seq: u32,
    /// Address index of its destination.
    pub(super) to: usize,
    pub(super) payload: Bytes,
    /// `cancel` accepted it.
    pub(super) cancelled: bool,
    pub(super) outcome: Option<Result<(), FailureReason>>,
}

/// One endpoint and what the oracle knows of it.
pub(super) struct Side {
    pub(super) endpoint: Endpoint,
    pub(super) sends: BTreeMap<MessageId, SendRecord>,
    /// Ids in the order given out, for `cancel`.
    pub(super) ids: Vec<MessageId>,
    /// Sequence number of each accepted send.
    pub(super) by_seq: BTreeMap<u32, MessageId>,
    pub(super) next_seq: u32,
    /// The peer's messages handed over from the peer's address, by
    /// sequence number, with the number of hand-overs.
    pub(super) handed_over: BTreeMap<u32, u32>,
    /// With the roaming extension, the peer's messages (by sequence number)
    /// taken from a copy injected from a third address: it carries the
    /// peer's token, so the endpoint may take it for the peer's message
    /// and then recognise the peer's own copy (see `on_received`).
    pub(super) taken_by_injection: BTreeSet<u32>,
    /// Our messages to the peer reported Delivered, not yet checked
    /// against the peer's hand-overs.
    pub(super) delivered_unchecked: Vec<u32>,
    /// The application polls events.
    pub(super) reading: bool,
}

impl World {
    /// Drains both endpoints' transmits into the network, polls the events
    /// of those whose application reads, and checks the oracle.
    pub(super) fn settle(&mut self) {
        for side in [A, B] {
            self.pump(side);
        }
        for side in [A, B] {
            if self.sides[side].reading {
                while let Some(event) = self.sides[side].endpoint.poll_event() {
                    self.on_event(side, event);
                }
            }
        }
        self.check_delivered();
        for side in [A, B] {
            let endpoint = &self.sides[side].endpoint;
            if let Some(exceeded) = endpoint.table_sizes().exceeded(&endpoint.config().limits) {
                self.fail(format!("{}: {exceeded}", NAMES[side]));
            }
        }
    }

    pub(super) fn on_event(&mut self, side: usize, event: Event) {
        match event {
            Event::Received { from, payload } => self.on_received(side, from, payload),
            Event::Delivered { id, to, .. } => self.on_outcome(side, id, to, Ok(())),
            Event::Failed { id, to, reason } => self.on_outcome(side, id, to, Err(reason)),
            Event::Foreign { from, payload } => {
                let from = self.address_index(side, from);
                self.record(Step::Foreign { side, from });
                if !self.injected_raw.contains(&(from, side, payload)) {
                    self.fail(format!(
                        "{} handed over a foreign datagram from {} that was never injected there",
                        NAMES[side], NAMES[from]
                    ));
                }
            }
        }
    }

    pub(super) fn address_index(&self, side: usize, address: SocketAddr) -> usize {
        match self.index_of(address) {
            Some(index) => index,
            None => self.fail(format!(
                "{} named {address}, an address no one used",
                NAMES[side]
            )),
        }
    }

    /// Checks one hand-over at `side`: (4) it was sent from there, to here,
    /// intact, and (1) a message from the peer is handed over once.
    pub(super) fn on_received(&mut self, side: usize, from: SocketAddr, payload: Bytes) {
        let from = self.address_index(side, from);
        let tag = parse_tag(&payload);
        self.record(Step::Received { side, from, tag });
        let peer = 1 - side;
        if from == side {
            self.fail(format!("{} handed over a message from itself", NAMES[side]));
        }
        // A message the peer sent here, intact.
        let sent = tag.and_then(|(sender, _, seq)| {
            let id = (sender == peer).then(|| self.sides[peer].by_seq.get(&seq))??;
            let record = self.sides[peer].sends.get(id)?;
            (record.to == side && record.payload == payload).then_some(seq)
        });
        if from != peer {
            // A message A or B sent (to anyone), whole: a replay put
            // together from copies of its fragments injected from third
            // addresses (with roaming, from several of them).
            let replayed = tag.is_some_and(|(sender, _, seq)| {
                self.sides.get(sender).is_some_and(|sender| {
                    sender
                        .by_seq
                        .get(&seq)
                        .and_then(|id| sender.sends.get(id))
                        .is_some_and(|record| record.payload == payload)
                })
            });
            if !replayed && !self.injected_payloads.contains(&(from, side, payload)) {
                self.fail(format!(
                    "phantom: {} handed over from {} a payload never injected from there to it",
                    NAMES[side], NAMES[from]
                ));
            }
            // With the roaming extension a copy of the peer's DATA injected
            // from a third address that answered its probe (an on-path
            // attacker) carries the peer's token: it may be taken as the
            // peer's message, whose own copy is then recognised. Like any
            // injection it is outside the exactly-once promise (a copy
            // injected after the message's memory ended is new again).
            if let (true, Some(seq)) = (self.framing.roaming(), sent) {
                self.sides[side].taken_by_injection.insert(seq);
            }
            return;
        }
        let Some(seq) = sent else {
            self.fail(format!(
                "phantom: {} handed over from {} a payload ({} bytes, tag {tag:?}) {} never sent it",
                NAMES[side],
                NAMES[peer],
                payload.len(),
                NAMES[peer]
            ));
        };
        let count = self.sides[side].handed_over.entry(seq).or_insert(0);
        *count += 1;
        let count = *count;
        if count > 1 {
            self.fail(format!(
                "exactly-once violated: {}'s message #{seq} handed over at {} {count} times",
                NAMES[peer], NAMES[side]
            ));
        }
    }

    /// Checks one outcome at `side` (3).
    pub(super) fn on_outcome(
        &mut self,
        side: usize,
        id: MessageId,
        to: SocketAddr,
        outcome: Result<(), FailureReason>,
    ) {
        let to = self.address_index(side, to);
        let Some(record) = self.sides[side].sends.get_mut(&id) else {
            self.fail(format!(
                "{}: outcome {outcome:?} for {id}, never given out",
                NAMES[side]
            ));
        };
        let previous = record.outcome.replace(outcome);
        let (seq, destination, cancelled) = (record.seq, record.to, record.cancelled);
        self.record(Step::Outcome {
            side,
            id,
            seq,
            outcome,
        });
        if let Some(previous) = previous {
            self.fail(format!(
                "{}: {id} (#{seq}) resolved twice: {previous:?}, then {outcome:?}",
                NAMES[side]
            ));
        }
        // With the roaming extension, C and D (the attacker's two
        // addresses, one party to the protocol) may prove one token, as a
        // peer behind a NAT would from two ports: a message to one may
        // then resolve at the other, where its peer moved.
        let attackers_move = self.framing.roaming() && destination > B && to > B;
        if to != destination && !attackers_move {
            self.fail(format!(
                "{}: {id} (#{seq}) to {} resolved naming {}",
                NAMES[side], NAMES[destination], NAMES[to]
            ));
        }
        let is_cancelled = outcome == Err(FailureReason::Cancelled);
        if cancelled != is_cancelled {
            self.fail(format!(
                "{}: {id} (#{seq}) resolved {outcome:?}, but cancel accepted: {cancelled}",
                NAMES[side]
            ));
        }
        if outcome.is_ok() && destination == 1 - side {
            self.sides[side].delivered_unchecked.push(seq);
        }
    }

    /// (2) Every message reported Delivered was handed over at its
    /// destination, checked once the destination's events are all read.
    pub(super) fn check_delivered(&mut self) {
        for side in [A, B] {
            let peer = 1 - side;
            if !self.sides[peer].reading || self.sides[side].delivered_unchecked.is_empty() {
                continue;
            }
            let unchecked = std::mem::take(&mut self.sides[side].delivered_unchecked);
            for seq in unchecked {
                if !self.sides[peer].handed_over.contains_key(&seq)
                    && !self.sides[peer].taken_by_injection.contains(&seq)
                {
                    self.fail(format!(
                        "{}'s message #{seq} reported Delivered, but {} never handed it over",
                        NAMES[side], NAMES[peer]
                    ));
                }
            }
        }
    }
}
