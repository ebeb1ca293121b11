//! Path MTU discovery at the endpoint (large-message extension, `pmtud`
//! on): probes sent and answered, and the datagram size each peer's path
//! takes. The decisions are [`crate::path_mtu`]'s.
//!
//! **Probes are internal messages.** Each has its own identity and counts
//! in flight like any DATA, but it is sent once and never resent: presumed
//! lost (early detection, tail-loss probe, timeout, or a quarter of a round
//! trip after its round's marker was confirmed) is lost, with no congestion
//! response and no backoff. Its RECV says the path carries its size, not
//! that the receiver takes data (a receiver answers probes without taking
//! anything): it gives an RTT sample that ends no backoff and a delivery
//! for the controller, but no early detection of the DATA sent before it.
//! Nothing the application sent depends on one, and none reaches the
//! application's events. A round's probes go into
//! flight at once, past the window and ahead of the queue, largest first,
//! then a header-sized marker. Discovery starts for a peer when it proves
//! its address (it first confirms one of our messages, or answers a
//! validation probe: it speaks gtUDP), and a round is put off by one RTO
//! while the tables lack room for it.
//!
//! **Probes are answered without state.** A receiver with the extension on
//! answers a probe with a RECV naming its identity, bounded like the RECV
//! of a repeat, and keeps nothing: it hands nothing over, so there is
//! nothing to remember. The RECV is smaller than the probe.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use smallvec::SmallVec;

use super::sender::Message;
use super::{Endpoint, State};
use crate::event::{FailureReason, MessageId};
use crate::path_mtu::{PathMtu, ProbeResult, Verdict, PROBES_PER_ROUND};
use crate::timer::TimerKey;
use crate::wire::{FragmentHeader, PacketKind};

/// One probe of the round in flight: its message, the size it tries
/// (`None` for the marker) and its result once known.
type RoundProbe = (MessageId, Option<usize>, Option<ProbeResult>);

/// A peer's path MTU discovery.
#[derive(Debug)]
pub(super) struct PeerPath {
    pub(super) mtu: PathMtu,
    /// The round (or check batch) in flight; empty between rounds.
    round: SmallVec<[RoundProbe; PROBES_PER_ROUND + 1]>,
    /// The instant its live `TimerKey::PathMtu` entry is set for: the next
    /// search, or a round put off for lack of room.
    pub(super) timer: Option<Instant>,
}

impl Endpoint {
    /// The largest datagram (header included) sent to `peer` now: what
    /// path MTU discovery found for it, the base size before it has, or
    /// `Config::max_datagram_size` with discovery off.
    ///
    /// ```
    /// use gtudp_proto::{Config, Endpoint, LargeMessages};
    ///
    /// let mut config = Config::default();
    /// config.large_messages = Some(LargeMessages::default());
    /// let endpoint = Endpoint::new(config, 1)?;
    /// // Nothing discovered yet: the base size.
    /// assert_eq!(endpoint.path_datagram_size("192.0.2.1:9".parse()?), 1_200);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn path_datagram_size(&self, peer: SocketAddr) -> usize {
        self.path_datagram_limit(crate::canonical_addr(peer))
    }

    /// [`path_datagram_size`](Self::path_datagram_size) for a canonical
    /// address.
    pub(super) fn path_datagram_limit(&self, destination: SocketAddr) -> usize {
        match &self.config.large_messages {
            Some(large) if large.pmtud => self
                .peers
                .get(&destination)
                .and_then(|peer| peer.path.as_deref())
                .map_or(
                    large.pmtud_base.min(self.config.max_datagram_size),
                    |path| path.mtu.current(),
                ),
            _ => self.config.max_datagram_size,
        }
    }

    /// `address` proved itself (a gtUDP peer): starts its discovery if
    /// not yet started.
    pub(super) fn start_path_mtu(&mut self, now: Instant, address: SocketAddr) {
        let Some(large) = &self.config.large_messages else {
            return;
        };
        let base = large.pmtud_base;
        let max = self.config.max_datagram_size;
        let Some(peer) = self.peers.get_mut(&address) else {
            return;
        };
        if peer.path.is_some() {
            return;
        }
        peer.path = Some(Box::new(PeerPath {
            mtu: PathMtu::new(base, max),
            round: SmallVec::new(),
            timer: None,
        }));
        self.probe_round(now, address);
    }

    /// Sends the next round of probes to `address`, or settles its
    /// discovery when there is nothing left to probe.
    fn probe_round(&mut self, now: Instant, address: SocketAddr) {
        let Some(interval) = self
            .config
            .large_messages
            .as_ref()
            .map(|l| l.pmtud_interval)
        else {
            return;
        };
        let max_outstanding = self.config.limits.max_outstanding_messages;
        let header_len = self.config.framing.header_len();
        let Some(peer) = self.peers.get_mut(&address) else {
            return;
        };
        let rto = peer.retransmission_timeout(1);
        let Some(path) = peer.path.as_deref_mut() else {
            return;
        };
        if self.state != State::Open || !path.round.is_empty() {
            return;
        }
        let sizes = path.mtu.next_round();
        if sizes.is_empty() {
            path.mtu.settle();
            if path.mtu.may_grow() {
                let at = now + interval;
                path.timer = Some(at);
                self.timers.push(at, TimerKey::PathMtu(address));
            }
            return;
        }
        let count = sizes.len() + 1;
        if self.outstanding + count > max_outstanding
            || self.messages.len() + count > max_outstanding
        {
            // No room for a round now: a full table delays new work.
            let at = now + rto;
            path.timer = Some(at);
            self.timers.push(at, TimerKey::PathMtu(address));
            return;
        }
        let mut round: SmallVec<[RoundProbe; PROBES_PER_ROUND + 1]> = SmallVec::new();
        for size in sizes.iter().copied().map(Some).chain([None]) {
            let len = size.map_or(FragmentHeader::LEN, |size| size - header_len);
            let mut payload = Vec::with_capacity(len);
            FragmentHeader::PROBE.encode(&mut payload);
            payload.resize(len, 0);
            let Some(id) = self.messages.vacant_id(self.next_message_id) else {
                break;
            };
            self.next_message_id += 1;
            let identity = loop {
                let identity = self.identities.next_identity();
                if let hashbrown::hash_map::Entry::Vacant(vacant) = self.by_identity.entry(identity)
                {
                    vacant.insert(id);
                    break identity;
                }
            };
            self.messages.insert(
                id,
                // Two attempts, so that early detection judges it (a message
                // on its last attempt waits for its timeout); it is never
                // resent all the same.
                {
                    let mut probe = Message::new(
                        address,
                        identity,
                        Bytes::from(payload),
                        super::sender::NO_TIME,
                        2,
                        false,
                        None,
                        true,
                    );
                    // Into flight at once (see below).
                    probe.in_flight = true;
                    probe.transmit_pending = true;
                    probe
                },
            );
            self.outstanding += 1;
            round.push((id, size, None));
        }
        self.stats.pmtu_probes_sent +=
            round.iter().filter(|probe| probe.1.is_some()).count() as u64;
        let Some(peer) = self.peers.get_mut(&address) else {
            return;
        };
        // Into flight at once, in round order, past the window and the
        // pacer: a round is a handful of datagrams a round trip, and
        // waiting behind the queue would stall the search (and a black
        // hole's check) behind the very datagrams the path drops. They
        // count in flight like any DATA.
        for (id, _, _) in &round {
            peer.in_flight += 1;
            self.output.push_data(*id);
        }
        peer.idle_deadline = None;
        if let Some(path) = peer.path.as_deref_mut() {
            path.round = round;
            // Any grace of an earlier round's marker is over.
            path.timer = None;
        }
        self.release(now, address);
        self.arm_sender_timer(now, address);
    }

    /// The probe `id` to `destination` was resolved (its message already
    /// removed): records its result, and once the round is over, lets the
    /// discovery decide and sends the next round.
    pub(super) fn on_probe_outcome(
        &mut self,
        now: Instant,
        id: MessageId,
        destination: SocketAddr,
        marker: bool,
        outcome: Result<(), FailureReason>,
    ) {
        self.outstanding -= 1;
        let result = match outcome {
            Ok(()) => ProbeResult::Confirmed,
            Err(FailureReason::TooLarge { .. }) => ProbeResult::TooLarge,
            Err(_) => ProbeResult::Lost,
        };
        if !marker {
            match result {
                ProbeResult::Confirmed => self.stats.pmtu_probes_confirmed += 1,
                _ => self.stats.pmtu_probes_lost += 1,
            }
        }
        let Some(peer) = self.peers.get_mut(&destination) else {
            return;
        };
        let peer_rtt = peer.rtt.smoothed();
        let Some(path) = peer.path.as_deref_mut() else {
            return;
        };
        if let Err(FailureReason::TooLarge {
            limit: Some(limit), ..
        }) = outcome
        {
            path.mtu.limit_to(limit);
        }
        // A probe of a round already decided tells nothing more.
        let Some(probe) = path.round.iter_mut().find(|probe| probe.0 == id) else {
            return;
        };
        probe.2 = Some(result);
        // Decided once every probe still out is the marker or no larger
        // than one confirmed: a larger size passing is all it could learn.
        let confirmed = path
            .round
            .iter()
            .filter(|probe| probe.2 == Some(ProbeResult::Confirmed))
            .filter_map(|probe| probe.1)
            .max();
        let decided = path.round.iter().all(|&(_, size, result)| {
            result.is_some()
                || match (size, confirmed) {
                    (None, Some(_)) => true,
                    (Some(size), Some(confirmed)) => size <= confirmed,
                    (_, None) => false,
                }
        });
        if !decided {
            // The marker went last: once it is confirmed, the probes sent
            // before it are lost unless their RECVs follow within a
            // quarter of a round trip (a probe's confirmation takes no
            // part in the peer's early loss detection).
            if marker && result == ProbeResult::Confirmed {
                let grace = peer_rtt.map_or(Duration::from_millis(1), |rtt| rtt / 4)
                    + Duration::from_millis(1);
                let at = now + grace;
                path.timer = Some(at);
                self.timers.push(at, TimerKey::PathMtu(destination));
            }
            return;
        }
        let results: SmallVec<[(usize, ProbeResult); PROBES_PER_ROUND]> = path
            .round
            .iter()
            .filter_map(|&(_, size, result)| Some((size?, result?)))
            .collect();
        let marker = path
            .round
            .iter()
            .any(|&(_, size, result)| size.is_none() && result == Some(ProbeResult::Confirmed));
        path.round.clear();
        if path.mtu.on_round(&results, marker) == Verdict::BlackHole {
            self.stats.pmtu_black_holes += 1;
        }
        self.probe_round(now, destination);
    }

    /// A DATA of `size` bytes to `destination` was presumed lost: feeds
    /// black-hole detection, which may start a check.
    pub(super) fn path_data_lost(&mut self, now: Instant, destination: SocketAddr, size: usize) {
        let suspect = self
            .peers
            .get_mut(&destination)
            .and_then(|peer| peer.path.as_deref_mut())
            .is_some_and(|path| path.mtu.on_data_lost(size));
        if suspect {
            self.probe_round(now, destination);
        }
    }

    /// The path MTU timer of `address` fired: a search is due, or a round
    /// put off for lack of room may go now.
    pub(super) fn on_path_mtu_timer(&mut self, now: Instant, at: Instant, address: SocketAddr) {
        let Some(path) = self
            .peers
            .get_mut(&address)
            .and_then(|peer| peer.path.as_deref_mut())
        else {
            return;
        };
        if path.timer != Some(at) {
            return;
        }
        path.timer = None;
        if !path.round.is_empty() {
            // The marker's grace is over: what is still out is lost.
            let pending: SmallVec<[MessageId; PROBES_PER_ROUND + 1]> = path
                .round
                .iter()
                .filter(|probe| probe.2.is_none())
                .map(|probe| probe.0)
                .collect();
            for id in pending {
                self.resolve(now, id, Err(FailureReason::AttemptsExhausted));
            }
            return;
        }
        if path.mtu.is_settled() && !path.mtu.research() {
            return;
        }
        self.probe_round(now, address);
    }

    /// Withdraws every probe in flight (the endpoint is closing).
    pub(super) fn withdraw_path_probes(&mut self, now: Instant) {
        if !self.config.large_messages.as_ref().is_some_and(|l| l.pmtud) {
            return;
        }
        let probes: Vec<MessageId> = self
            .messages
            .iter()
            .filter(|(_, message)| message.probe)
            .map(|(id, _)| id)
            .collect();
        for id in probes {
            self.resolve(now, id, Err(FailureReason::Cancelled));
        }
    }

    /// A path MTU probe from `source`: answered with a RECV, nothing kept,
    /// if a new DATA from it would be taken now. While new DATA is left
    /// unanswered (receiving paused, a receive bound reached, closing),
    /// probes are too: a receiver holding off its peer's DATA sends it
    /// nothing that reads as progress (the sender takes no loss signal from
    /// a probe's RECV anyway, and ends no backoff on it; see the module
    /// docs).
    pub(super) fn answer_path_probe(
        &mut self,
        source: SocketAddr,
        identity: crate::wire::Identity,
        size: usize,
    ) {
        self.note_inbound(source, PacketKind::Data, size);
        let kept_under = self.arrival_key(&source);
        if self.state != State::Open
            || self.receive_paused
            || !self.has_room_to_receive(&kept_under)
        {
            self.stats.pmtu_probes_unanswered += 1;
            return;
        }
        self.stats.pmtu_probes_answered += 1;
        self.queue_stateless_recv(source, identity);
    }
}
