//! Loss recovery on the send side: what is resent, when, and the one timer
//! per peer that drives it.
//!
//! Three rules, cheapest first (see [`crate::loss`]):
//!
//! 1. **Early detection** on every confirmation: a message sent before the
//!    latest confirmed one is presumed lost once the reordering window has
//!    passed, and resent at once.
//! 2. **Tail-loss probe**: when nothing has been confirmed for about two
//!    round trips, the newest message is resent, so a confirmation can
//!    trigger rule 1 for the messages before it.
//! 3. **Retransmission timeout**, the last resort: every message unconfirmed
//!    for an RTO (with the peer's backoff) is resent, or fails once its
//!    attempts are used up.
//!
//! Each peer has one `TimerKey::Sender` entry live at a time, set for the
//! earliest of these deadlines and of its pacer's next release. It is only
//! pushed again when the wanted instant moves earlier; when it moves later,
//! the early entry wakes the endpoint once and is set again. So timer
//! entries do not grow with the number of transmissions.

use std::net::SocketAddr;
use std::time::Instant;

use super::peer::Timeouts;
use super::sender::Cause;
use super::Endpoint;
use crate::event::FailureReason;
use crate::loss::{Liveness, PathTimes, Sent};
use crate::timer::TimerKey;

/// How far back from the newest transmission a tail-loss probe looks for a
/// message with attempts left.
const PROBE_SCAN: usize = 64;

/// How many times one message is resent on validation probes (see
/// `Endpoint::on_unknown_recv`).
const MAX_RESENDS_FOR_PROBES: u8 = crate::config::RESENDS_FOR_PROBES as u8;

impl Endpoint {
    /// Runs early detection for the peer at `address` and resends what it
    /// presumes lost.
    pub(super) fn detect_lost(&mut self, now: Instant, address: SocketAddr) {
        if !self.config.early_loss_detection {
            return;
        }
        let Some(peer) = self.peers.get_mut(&address) else {
            return;
        };
        if !peer.rtt.sampled() {
            return;
        }
        detect_lost_in(peer, &self.messages, now, &mut self.scratch_lost);
        if !self.scratch_lost.is_empty() {
            self.resend_lost(now);
        }
    }

    /// Resends what early detection presumed lost (in `scratch_lost`).
    #[cold]
    fn resend_lost(&mut self, now: Instant) {
        let mut lost = std::mem::take(&mut self.scratch_lost);
        for sent in lost.drain(..) {
            self.resend(now, sent, Cause::Early);
        }
        self.scratch_lost = lost;
    }

    /// The peer's send-side timer fired.
    pub(super) fn on_sender_timer(&mut self, now: Instant, at: Instant, address: SocketAddr) {
        let Some(peer) = self.peers.get_mut(&address) else {
            return;
        };
        if peer.send_timer != Some(at) {
            return;
        }
        peer.send_timer = None;
        self.resend_for_probe(now, address);
        self.detect_lost(now, address);
        if !self.retransmission_timeout(now, address) {
            self.tail_loss_probe(now, address);
        }
        self.release(now, address);
        self.arm_sender_timer(now, address);
    }

    /// Resends (or fails) every message whose RTO passed; true if any did.
    fn retransmission_timeout(&mut self, now: Instant, address: SocketAddr) -> bool {
        let Some(peer) = self.peers.get_mut(&address) else {
            return false;
        };
        let messages = &self.messages;
        let timeouts = Timeouts::new(&peer.rtt, peer.backoff, peer.suspect_rto_cap);
        let deadline = |sent: &Sent| rto_deadline(messages, &timeouts, sent);
        let mut expired = std::mem::take(&mut self.scratch_lost);
        peer.order.take_expired(now, deadline, &mut expired);
        // Lost path MTU probes are no congestion signal (nor a reason to
        // back off): only the other messages count.
        let counted = expired
            .iter()
            .find(|sent| messages.get(&sent.id).is_some_and(|m| !m.probe));
        let fired = counted.is_some();
        if let Some(oldest) = counted {
            let transmissions = messages.get(&oldest.id).map_or(1, |m| m.transmissions);
            self.stats.retransmission_timeouts += 1;
            peer.on_retransmission_timeout(transmissions);
            let at = |instant| super::nanos_since(self.epoch, instant);
            peer.congestion.on_timeout(at(oldest.at), at(now));
        }
        for sent in expired.drain(..) {
            self.resend(now, sent, Cause::Timeout);
        }
        self.scratch_lost = expired;
        fired
    }

    /// Resends the newest message once nothing was confirmed for a probe
    /// timeout after the latest transmission.
    fn tail_loss_probe(&mut self, now: Instant, address: SocketAddr) {
        if !self.config.early_loss_detection {
            return;
        }
        let Some(peer) = self.peers.get_mut(&address) else {
            return;
        };
        let (false, Some(timeout), Some(last)) = (
            peer.probe_out,
            peer.rtt.probe_timeout(),
            peer.last_data_sent,
        ) else {
            return;
        };
        if last + timeout > now {
            return;
        }
        let messages = &self.messages;
        let liveness = liveness_in(messages);
        // With no message to probe (all on their last attempt), the tail
        // is left to the RTO as if probed.
        peer.probe_out = true;
        let Some(newest) = peer.order.newest_resendable(PROBE_SCAN, liveness) else {
            return;
        };
        self.stats.tail_loss_probes += 1;
        self.resend(now, newest, Cause::Probe);
    }

    /// A RECV naming none of our messages came from `address`: most likely
    /// a validation probe. A receiver sends one when a DATA comes from an
    /// address it has not validated: it holds the DATA and takes it when
    /// our ACK answers the probe, or, past
    /// [`Limits::max_unvalidated_peers`](crate::Limits), keeps nothing, and
    /// then only our resend gets it taken. The two cannot be told apart, so
    /// the resend waits for the first kind's answer: the DATA sent long
    /// enough ago to have drawn the probe (more than 1.25 smoothed RTTs
    /// ago, or, before any RTT sample, more than half the oldest one's age
    /// ago) are resent if still unconfirmed one retransmission timeout
    /// after the ACK (their RECVs would be back by then; before any RTT
    /// sample, three times the oldest one's age and at least `min_rto`),
    /// rather than at their own timeouts, which back off. The next such
    /// scan of the peer waits 1.25 smoothed RTTs.
    ///
    /// A message is resent this way `MAX_RESENDS_FOR_PROBES` times at most
    /// (twice: the ACK that validates us may be overtaken by the resent
    /// DATA), so forged RECVs cost a bounded number of datagrams and never
    /// use up a message's attempts. It is not a congestion signal.
    pub(super) fn on_unknown_recv(&mut self, now: Instant, address: SocketAddr) {
        let now_ns = self.nanos(now);
        let Some(peer) = self.peers.get_mut(&address) else {
            return;
        };
        if peer.in_flight == 0
            || peer.probe_resend.is_some()
            || peer.probe_resend_scan.is_some_and(|next| now < next)
        {
            return;
        }
        let messages = &self.messages;
        let liveness = liveness_in(messages);
        let Some(oldest) = peer.order.oldest(liveness) else {
            return;
        };
        // Before any RECV, the probe says our DATA is held until our
        // answer: the rate and RTT the held messages measure start here.
        peer.delivery.on_validation_probe(now_ns);
        let age = now.saturating_duration_since(oldest.at);
        // Their RECVs are due a round trip after our ACK, as any RECV is:
        // the resend waits a retransmission timeout, not the bare round
        // trip, or every RECV later than one RTT sample (the probe's
        // exchange, the only one before the first RECV) draws a needless
        // resend.
        let (wait, resend_after) = match peer.rtt.smoothed() {
            Some(smoothed) => (smoothed + smoothed / 4, peer.rtt.rto()),
            // RFC 6298's first RTO from one sample: three times it.
            None => (age / 2, (age * 3).max(peer.rtt.min_rto())),
        };
        peer.probe_resend_scan = Some(now + wait);
        let Some(sent_by) = now.checked_sub(wait) else {
            return;
        };
        peer.probe_resend = Some((now + resend_after, sent_by));
        self.arm_sender_timer(now, address);
    }

    /// Resends what a validation probe drew and is still unconfirmed, once
    /// the receiver had the time to take it on our answer (see
    /// [`Self::on_unknown_recv`]).
    fn resend_for_probe(&mut self, now: Instant, address: SocketAddr) {
        let Some(peer) = self.peers.get_mut(&address) else {
            return;
        };
        let Some((_, sent_by)) = peer.probe_resend.take_if(|(at, _)| *at <= now) else {
            return;
        };
        let messages = &self.messages;
        let liveness = liveness_in(messages);
        let resends_left = |sent: &Sent| {
            messages
                .get(&sent.id)
                .is_some_and(|message| message.resent_for_probe < MAX_RESENDS_FOR_PROBES)
        };
        let mut resend = std::mem::take(&mut self.scratch_lost);
        peer.order
            .sent_by(sent_by, liveness, resends_left, &mut resend);
        for sent in resend.drain(..) {
            if let Some(message) = self.messages.get_mut(&sent.id) {
                message.resent_for_probe += 1;
            }
            self.stats.resent_for_probe += 1;
            self.resend(now, sent, Cause::Deferred);
        }
        self.scratch_lost = resend;
    }

    /// Orders the transmission `sent` again, or fails its message when it
    /// has no attempt left.
    pub(super) fn resend(&mut self, now: Instant, sent: Sent, cause: Cause) {
        let now_ns = self.nanos(now);
        let Some(message) = self.messages.get_mut(&sent.id) else {
            return;
        };
        if message.probe {
            // Never resent: presumed lost is lost, with no congestion
            // response (see `path_mtu`).
            self.resolve(now, sent.id, Err(FailureReason::AttemptsExhausted));
            return;
        }
        if message.attempts_used() >= message.max_attempts || message.retry_span_over(now_ns) {
            self.resolve(now, sent.id, Err(FailureReason::AttemptsExhausted));
            return;
        }
        message.transmit_pending = true;
        message.cause = cause;
        // A resend on a validation probe answers the receiver: no loss.
        message.suspected_lost |= matches!(cause, Cause::Early | Cause::Probe | Cause::Timeout);
        let destination = message.destination;
        if matches!(cause, Cause::Early | Cause::Timeout) {
            let size = self.config.framing.header_len() + message.payload.len();
            self.path_data_lost(now, destination, size);
        }
        let (sent_ns, now_ns) = (self.nanos(sent.at), self.nanos(now));
        if let Some(peer) = self.peers.get_mut(&destination) {
            if cause == Cause::Early {
                self.stats.loss_detected_early += 1;
                peer.stats.loss_detected_early += 1;
                peer.congestion.on_loss(sent_ns, now_ns, peer.in_flight);
            }
            // A paced peer's resends wait for the pacer like new messages
            // (ahead of them): a burst of them after a loss episode would
            // overflow the queue that caused it.
            if peer.congestion.pacing_interval().is_some() {
                peer.resends.push_back(sent.id);
                return;
            }
        }
        self.output.push_data(sent.id);
    }

    /// Makes sure the peer's send-side timer wakes the endpoint by the
    /// earliest instant it needs.
    pub(super) fn arm_sender_timer(&mut self, now: Instant, address: SocketAddr) {
        let Some(peer) = self.peers.get_mut(&address) else {
            return;
        };
        arm_peer_timer(
            peer,
            &self.messages,
            &self.config,
            &mut self.timers,
            now,
            address,
        );
    }

    /// After a RECV confirmed a message to `address` (resolved): early
    /// detection, then [`release`](Self::release), then
    /// [`arm_sender_timer`](Self::arm_sender_timer), in that order, with
    /// one look-up of the peer when early detection finds nothing lost and
    /// nothing waits to be released (the common case). Otherwise each step
    /// runs as its own call.
    #[inline]
    pub(super) fn after_confirmation(&mut self, now: Instant, address: SocketAddr) {
        let Some(peer) = self.peers.get_mut(&address) else {
            return;
        };
        if self.config.early_loss_detection && peer.rtt.sampled() {
            // As `detect_lost`.
            detect_lost_in(peer, &self.messages, now, &mut self.scratch_lost);
            if !self.scratch_lost.is_empty() {
                self.release_and_arm_after_loss(now, address);
                return;
            }
        }
        // As `release`, when nothing waits.
        if !(peer.resends.is_empty() && peer.queue.is_empty()) {
            self.release_and_arm(now, address);
            return;
        }
        if peer.has_window() {
            peer.delivery.on_app_limited(peer.in_flight);
        }
        arm_peer_timer(
            peer,
            &self.messages,
            &self.config,
            &mut self.timers,
            now,
            address,
        );
    }

    /// [`after_confirmation`](Self::after_confirmation) once early
    /// detection presumed messages lost: resends them, releases and arms.
    #[cold]
    #[inline(never)]
    fn release_and_arm_after_loss(&mut self, now: Instant, address: SocketAddr) {
        self.resend_lost(now);
        self.release_and_arm(now, address);
    }

    /// [`release`](Self::release), then
    /// [`arm_sender_timer`](Self::arm_sender_timer).
    #[inline(never)]
    fn release_and_arm(&mut self, now: Instant, address: SocketAddr) {
        self.release(now, address);
        self.arm_sender_timer(now, address);
    }

    /// After a message for `address` was accepted and `release` let what
    /// it could into flight: arms the peer's send-side timer only if that
    /// can have moved its deadline earlier.
    ///
    /// It can only if something is left in the queue (the pacer's release
    /// may now count). Otherwise every term of the deadline (see
    /// [`sender_deadline`]) is as it was or later: a message released is
    /// pending, not yet in the send order, so the oldest live entry and the
    /// probe are unchanged; the pacer's term counts no more for an empty
    /// queue, and for the resends as before (its next release only moved
    /// later); the reordering deadline and the probe resend are unchanged.
    /// As for [`transmission_may_move_deadline`], the timer then needs
    /// nothing unless `send_deadline_moved`. Debug builds with the
    /// simulator check the result.
    // Inlined into `send`'s path: for most messages it is a look at the
    // peer and two tests.
    #[inline]
    pub(super) fn arm_after_release(&mut self, now: Instant, address: SocketAddr) {
        let Some(peer) = self.peers.get(&address) else {
            return;
        };
        if peer.send_deadline_moved || !peer.queue.is_empty() {
            self.arm_sender_timer(now, address);
            return;
        }
        self.check_send_timer(now, address);
    }

    /// Debug builds with the simulator (its tests and soak): the peer's
    /// send-side timer is set no later than the deadline its state gives
    /// (arming it would find nothing to do).
    #[inline(always)]
    pub(super) fn check_send_timer(&self, now: Instant, address: SocketAddr) {
        #[cfg(all(debug_assertions, feature = "sim"))]
        if let Some(peer) = self.peers.get(&address) {
            let oldest = peer
                .order
                .first_live(liveness_in(&self.messages))
                .and_then(|sent| Some((sent, live_attempts(&self.messages, &sent)?)));
            let wanted = sender_deadline(&self.config, peer, oldest, now);
            debug_assert!(
                wanted.map_or(true, |wanted| peer
                    .send_timer
                    .is_some_and(|armed| armed <= wanted)),
                "the send timer is at {:?}, past its deadline {wanted:?}",
                peer.send_timer
            );
        }
        let _ = (now, address);
    }
}

/// Makes sure `peer`'s (at `address`) send-side timer wakes the endpoint
/// by the earliest instant it needs (see
/// [`Endpoint::arm_sender_timer`]).
#[inline(always)]
fn arm_peer_timer(
    peer: &mut super::peer::Peer,
    messages: &super::messages::Messages,
    config: &crate::Config,
    timers: &mut crate::timer::TimerQueue,
    now: Instant,
    address: SocketAddr,
) {
    peer.send_deadline_moved = false;
    // One look at the oldest live entry's message gives its liveness
    // and the attempts its RTO counts.
    let oldest = peer.order.oldest_with(|sent| live_attempts(messages, sent));
    let Some(wanted) = sender_deadline(config, peer, oldest, now) else {
        return;
    };
    if peer.send_timer.map_or(true, |armed| armed > wanted) {
        peer.send_timer = Some(wanted);
        timers.push(wanted, TimerKey::Sender(address));
    }
}

/// The earliest instant the peer's send side needs to wake at: the
/// reordering deadline, the RTO of the oldest live transmission `oldest`
/// (with its message's attempts used) and the tail-loss probe after the
/// latest, the pacer's next release when something waits for it, and the
/// resend of what a validation probe drew.
// Always: armed after every confirmation, and its terms are a few
// comparisons of instants once inlined.
#[inline(always)]
fn sender_deadline(
    config: &crate::Config,
    peer: &super::peer::Peer,
    oldest: Option<(Sent, u32)>,
    now: Instant,
) -> Option<Instant> {
    let mut wanted = peer.rack_deadline.filter(|at| *at > now);
    if let Some((oldest, attempts)) = oldest {
        wanted = earlier(wanted, oldest.at + peer.timeouts().data_after(attempts));
        if config.early_loss_detection && !peer.probe_out {
            if let (Some(timeout), Some(last)) = (peer.rtt.probe_timeout(), peer.last_data_sent) {
                wanted = earlier(wanted, last + timeout);
            }
        }
    }
    if (!peer.queue.is_empty() && peer.has_window()) || !peer.resends.is_empty() {
        if let Some(release) = peer.pacer.next_release(now) {
            wanted = earlier(wanted, release);
        }
    }
    if let Some((resend, _)) = peer.probe_resend {
        wanted = earlier(wanted, resend);
    }
    wanted
}

/// The earlier of `wanted` (if any) and `at`.
#[inline(always)]
fn earlier(wanted: Option<Instant>, at: Instant) -> Option<Instant> {
    Some(wanted.map_or(at, |wanted| wanted.min(at)))
}

/// After a DATA transmission to `peer` whose entry in the send order is
/// `seq`: whether the transmission can have moved the peer's send-side
/// deadline earlier, so that its timer must be armed
/// ([`Endpoint::arm_sender_timer`]); when not, it needs nothing (debug
/// builds with the simulator check it: `Endpoint::check_send_timer`).
///
/// It can only if no earlier entry is live. Otherwise every term of the
/// deadline (see [`sender_deadline`]) is as it was or later: the live
/// entries are those before plus this one, at the back, so the oldest
/// (its RTO) is unchanged; the tail-loss probe counts from this
/// transmission, later than the last; the reordering deadline, the
/// pacer's (the queue, the resends and the window are untouched by a
/// transmission) and the probe resend are unchanged. So the timer needs
/// nothing if it was set for the deadline when last armed and nothing
/// moved the deadline earlier since: a change that can without arming
/// the timer at once (an RTT sample from the peer's ACK or a late
/// RECV, a message resolved, the peer validated) sets
/// `send_deadline_moved`, and the timer is armed in full then, as at
/// every other call.
///
/// Takes the peer found by the transmission's writer, rather than an
/// address to look up again.
#[inline]
pub(super) fn transmission_may_move_deadline(
    peer: &mut super::peer::Peer,
    messages: &super::messages::Messages,
    seq: u64,
) -> bool {
    let oldest = peer.order.oldest(liveness_in(messages));
    peer.send_deadline_moved || oldest.map_or(true, |oldest| oldest.seq == seq)
}

/// RACK's early detection over `peer`'s send order: sets its deadline and
/// adds what it presumes lost to `lost`. The path's times are read only if
/// a transmission is there to judge (see `SendOrder::detect_lost`).
#[inline]
fn detect_lost_in(
    peer: &mut super::peer::Peer,
    messages: &super::messages::Messages,
    now: Instant,
    lost: &mut Vec<Sent>,
) {
    let rtt = &peer.rtt;
    let path = || PathTimes {
        min_rtt: rtt.min().unwrap_or_default(),
        smoothed: rtt.smoothed().unwrap_or_default(),
    };
    peer.rack_deadline = peer
        .order
        .detect_lost(now, &peer.rack, path, liveness_in(messages), lost);
}

/// Whether a transmission is still its message's latest and unconfirmed,
/// looked up in `messages`.
pub(super) fn liveness_in(
    messages: &super::messages::Messages,
) -> impl Fn(&Sent) -> Liveness + Copy + '_ {
    |sent: &Sent| {
        messages
            .get(&sent.id)
            .map_or(Liveness::Stale, |message| message.liveness(sent))
    }
}

/// The attempts used by the message behind `sent`, if `sent` is live
/// (see [`liveness_in`]).
fn live_attempts(messages: &super::messages::Messages, sent: &Sent) -> Option<u32> {
    let message = messages.get(&sent.id)?;
    (message.liveness(sent) != Liveness::Stale).then(|| message.attempts_used())
}

/// When the transmission `sent` reaches its retransmission timeout, with
/// its message's backoff; `None` when the entry is stale.
fn rto_deadline(
    messages: &super::messages::Messages,
    timeouts: &Timeouts<'_>,
    sent: &Sent,
) -> Option<Instant> {
    let message = messages.get(&sent.id)?;
    (message.liveness(sent) != Liveness::Stale)
        .then(|| sent.at + timeouts.data_after(message.attempts_used()))
}
