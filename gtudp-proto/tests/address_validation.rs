//! Address validation: an address that reached us first is validated only
//! by proof that it reads our datagrams (the answer to a validation probe,
//! or a RECV for one of our DATA), never by anything a forger can send
//! blind, and the proof counts even if the address was evicted meanwhile.

mod common;

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use common::{addr, config, drain_transmits, encode, Datagram, Pair};
use gtudp_proto::wire::{Identity, Packet, PacketKind};
use gtudp_proto::{Endpoint, Event, FailureReason};

fn data(identity: u32, payload: &'static [u8]) -> Bytes {
    encode(Packet::Data {
        identity: Identity::from_u32(identity),
        payload,
    })
}

fn ack(identity: Identity) -> Bytes {
    encode(Packet::Ack { identity })
}

/// The RECVs in `out` naming none of `answered`: the validation probes.
fn probes(out: &[Datagram], answered: &[u32]) -> Vec<Identity> {
    out.iter()
        .filter(|d| d.kind() == Some(PacketKind::Recv))
        .map(Datagram::identity)
        .filter(|identity| !answered.contains(&identity.to_u32()))
        .collect()
}

fn validated(endpoint: &Endpoint, peer: SocketAddr) -> bool {
    endpoint
        .peer_stats(peer)
        .is_some_and(|stats| stats.validated)
}

#[test]
fn a_new_address_s_data_is_held_with_a_probe_and_handed_over_once_it_answers() {
    let mut pair = Pair::strangers();
    let id = pair.send(b"hello");
    let data = pair.out_a();
    pair.deliver_to_b(&data[0]);
    let out = pair.out_b_with_probes();
    assert_eq!(common::kinds(&out), [PacketKind::Recv], "a probe alone");
    assert_eq!(probes(&out, &[data[0].identity().to_u32()]).len(), 1);
    assert!(pair.events_b().is_empty(), "handed over before the proof");
    let tables = pair.b.table_sizes();
    assert_eq!(
        (
            tables.held_for_validation,
            tables.awaiting_ack,
            tables.remembered
        ),
        (1, 0, 0),
        "held, not taken"
    );
    assert!(!validated(&pair.b, pair.a_addr));
    // A repeat: no RECV (nothing was taken), another probe (the first or
    // its answer may have been lost).
    pair.deliver_to_b(&data[0]);
    let again = pair.out_b_with_probes();
    assert_eq!(common::kinds(&again), [PacketKind::Recv]);
    assert_eq!(again[0].identity(), out[0].identity(), "the same token");
    assert_eq!(pair.b.stats().duplicates_suppressed, 1);
    // A answers the probe with ACK, as it answers any RECV (a resend of
    // its DATA would wait for the RECV that the answer brings).
    pair.deliver_to_a(&out[0]);
    let answer = pair.out_a();
    assert_eq!(common::kinds(&answer), [PacketKind::Ack]);
    pair.deliver_to_b(&answer[0]);
    assert!(validated(&pair.b, pair.a_addr));
    assert_eq!(pair.b.stats().validated_by_probe, 1);
    assert_eq!(
        pair.events_b(),
        [Event::Received {
            from: pair.a_addr,
            payload: Bytes::from_static(b"hello")
        }]
    );
    let recv = pair.out_b_with_probes();
    assert_eq!(common::kinds(&recv), [PacketKind::Recv]);
    assert_eq!(recv[0].identity(), data[0].identity());
    pair.deliver_to_a(&recv[0]);
    assert_eq!(
        pair.events_a(),
        [Event::Delivered {
            id,
            to: pair.b_addr,
            suspected_lost: false
        }]
    );
    // No resend was needed; a late copy is answered, not handed over again.
    pair.advance_by(std::time::Duration::from_millis(500));
    assert_eq!(pair.a.stats().resent_for_probe, 0);
    assert_eq!(pair.a.stats().retransmissions, 0);
    pair.deliver_to_b(&data[0]);
    assert_eq!(common::kinds(&pair.out_b_with_probes()), [PacketKind::Recv]);
    assert!(pair.events_b().is_empty());
}

/// Which datagram of a validation round the network loses.
#[derive(Clone, Copy, Debug)]
enum Lost {
    Probe,
    Answer,
}

/// A's first message to B while validation rounds are lost as `losses`
/// says (A's own resends lost too, so only B's probe timer can recover):
/// the message is handed over once, only after the round that gets
/// through, and confirmed once.
fn handed_over_once_through(losses: &[Lost]) {
    let mut pair = Pair::strangers();
    let id = pair.send(b"hello");
    let data = pair.out_a();
    pair.deliver_to_b(&data[0]);
    let mut probe = pair.out_b_with_probes();
    for (round, lost) in losses.iter().enumerate() {
        assert_eq!(common::kinds(&probe), [PacketKind::Recv], "round {round}");
        if let Lost::Answer = lost {
            pair.deliver_to_a(&probe[0]);
        }
        pair.out_a(); // A's answer and resends: lost
        assert!(pair.events_b().is_empty(), "handed over before the proof");
        // B resends its probe on its own timer, backed off.
        let sent = pair.now;
        let at = pair.b.poll_timeout().expect("a probe timer");
        assert!(at - sent >= config().min_rto, "round {round}");
        pair.advance_to(at);
        probe = pair.out_b_with_probes();
        while probe.is_empty() {
            pair.out_a();
            pair.advance();
            probe = pair.out_b_with_probes();
        }
    }
    assert_eq!(
        pair.b.stats().validation_probes,
        losses.len() as u64 + 1,
        "{losses:?}"
    );
    pair.deliver_to_a(&probe[0]);
    pair.exchange();
    let received = pair.events_b();
    assert_eq!(received.len(), 1, "{losses:?}: {received:?}");
    // Suspected lost if A's own timers resent it (not only the probes).
    let stats = pair.a.stats();
    let suspected_lost =
        stats.retransmission_timeouts + stats.tail_loss_probes + stats.loss_detected_early > 0;
    assert_eq!(
        pair.events_a(),
        [Event::Delivered {
            id,
            to: pair.b_addr,
            suspected_lost
        }],
        "{losses:?}"
    );
}

#[test]
fn a_lost_probe_is_resent_and_the_message_handed_over_once() {
    handed_over_once_through(&[Lost::Probe]);
}

#[test]
fn a_lost_probe_answer_is_recovered_by_the_next_probe() {
    handed_over_once_through(&[Lost::Answer]);
}

#[test]
fn a_lost_probe_then_a_lost_answer_still_validate_the_sender() {
    handed_over_once_through(&[Lost::Probe, Lost::Answer]);
    handed_over_once_through(&[Lost::Answer, Lost::Probe, Lost::Answer]);
}

#[test]
fn probes_stop_when_nothing_waits_on_the_proof_or_attempts_run_out() {
    let mut b = Endpoint::new(config(), 21).expect("valid");
    let silent = addr(7400);
    let mut now = Instant::now();
    b.handle_datagram(now, silent, data(5, b"a payload long enough for probes"));
    let mut probes_sent = drain_transmits(&mut b, now).len();
    while let Some(at) = b.poll_timeout() {
        if at - now > std::time::Duration::from_secs(30) {
            break;
        }
        now = at;
        b.handle_timeout(now);
        probes_sent += drain_transmits(&mut b, now).len();
    }
    assert_eq!(probes_sent, config().recv_max_attempts as usize);
    assert!(b.poll_event().is_none(), "handed over without a proof");
}

#[test]
fn held_data_past_the_held_share_is_dropped_unanswered_and_taken_when_resent() {
    let mut b_config = config();
    b_config.limits.max_held_per_unvalidated_peer = 1;
    let mut pair = Pair::strangers_with_configs(config(), b_config);
    pair.send(b"first");
    pair.send(b"second");
    let data = pair.out_a();
    pair.deliver_to_b(&data[0]);
    pair.deliver_to_b(&data[1]);
    assert_eq!(pair.b.table_sizes().held_for_validation, 1);
    assert_eq!(pair.b.stats().dropped.data_deferred_unvalidated, 1);
    assert!(pair.events_b().is_empty());
    // Every message arrives exactly once all the same.
    for _ in 0..20 {
        pair.exchange();
        if pair.a.table_sizes().messages == 0 {
            break;
        }
        pair.advance();
    }
    let mut received: Vec<Bytes> = pair
        .events_b()
        .into_iter()
        .filter_map(|event| match event {
            Event::Received { payload, .. } => Some(payload),
            _ => None,
        })
        .collect();
    received.sort();
    assert_eq!(received, [&b"first"[..], &b"second"[..]]);
}

#[test]
fn an_ack_for_our_recv_validates_nothing_as_a_forger_chooses_its_identity() {
    let mut b = Endpoint::new(config(), 9).expect("valid");
    let victim = addr(4000);
    let now = Instant::now();
    // A forger sends DATA from the victim's address, then the ACK for the
    // RECV it knows we sent, since it chose the identity.
    b.handle_datagram(now, victim, data(77, b"forged"));
    drain_transmits(&mut b, now);
    b.handle_datagram(now, victim, ack(Identity::from_u32(77)));
    assert!(!validated(&b, victim), "a blind ACK validated the address");
    // So an echo to the victim still counts against its budget: a reply of
    // ten times the bytes received is held, then fails as unvalidated.
    let reply = b
        .send(now, victim, Bytes::from(vec![0u8; 200]))
        .expect("accepted");
    let mut now = now;
    for _ in 0..100 {
        let out = drain_transmits(&mut b, now);
        assert!(out.iter().all(|d| d.kind() != Some(PacketKind::Data)));
        match b.poll_timeout() {
            Some(at) => {
                now = at;
                b.handle_timeout(now);
            }
            None => break,
        }
        if b.stats().failed > 0 {
            break;
        }
    }
    let events: Vec<Event> = std::iter::from_fn(|| b.poll_event()).collect();
    assert!(
        events.contains(&Event::Failed {
            id: reply,
            to: victim,
            reason: FailureReason::Unvalidated
        }),
        "{events:?}"
    );
}

#[test]
fn a_wrong_token_validates_nothing() {
    let mut b = Endpoint::new(config(), 9).expect("valid");
    let peer = addr(4001);
    let now = Instant::now();
    b.handle_datagram(now, peer, data(5, b"hello"));
    let out = drain_transmits(&mut b, now);
    let token = probes(&out, &[5])[0];
    b.handle_datagram(now, peer, ack(Identity::from_u32(token.to_u32() ^ 1)));
    // The right token from another address is no proof either.
    b.handle_datagram(now, addr(4002), ack(token));
    assert!(!validated(&b, peer));
    assert_eq!(b.stats().validated_by_probe, 0);
    assert_eq!(b.stats().dropped.ack_unknown, 2);
}

#[test]
fn the_answer_to_a_probe_counts_after_the_address_was_evicted() {
    let mut b_config = config();
    b_config.limits.max_peers = 4;
    let mut b = Endpoint::new(b_config, 11).expect("valid");
    let honest = addr(5000);
    let now = Instant::now();
    b.handle_datagram(now, honest, data(1, b"hello"));
    let token = probes(&drain_transmits(&mut b, now), &[1])[0];
    // A flood from spoofed addresses pushes the honest peer out of the
    // table before its answer arrives.
    for port in 0..16 {
        b.handle_datagram(now, addr(6000 + port), data(100 + u32::from(port), b"x"));
    }
    drain_transmits(&mut b, now);
    assert!(b.peer_stats(honest).is_none(), "not evicted");
    assert!(b.stats().unvalidated_peers_evicted > 0);
    b.handle_datagram(now, honest, ack(token));
    assert!(validated(&b, honest), "the late answer was refused");
    // Validated, it keeps its place whatever the flood does next.
    for port in 16..64 {
        b.handle_datagram(now, addr(6000 + port), data(100 + u32::from(port), b"x"));
    }
    assert!(
        validated(&b, honest),
        "a validated peer was evicted for a flood"
    );
    // Its late copy of the first DATA is still known (its identity moved
    // to the remembered memory on eviction).
    b.handle_datagram(now, honest, data(1, b"hello"));
    let delivered = std::iter::from_fn(|| b.poll_event())
        .filter(|event| matches!(event, Event::Received { from, .. } if *from == honest))
        .count();
    assert_eq!(delivered, 1, "handed over twice");
}

#[test]
fn a_recv_for_our_data_validates_the_address() {
    let mut pair = Pair::strangers();
    // B reached A first, so A is the one to prove itself to B; then B sends
    // to A, and A's RECV for B's DATA validates A at B. (A long first DATA,
    // so that B's budget for A allows the reply.)
    pair.send(b"a payload of some thirty bytes");
    let data = pair.out_a();
    pair.deliver_to_b(&data[0]);
    pair.out_b(); // the RECV and the probe are lost
    assert!(!validated(&pair.b, pair.a_addr));
    pair.b
        .send(pair.now, pair.a_addr, Bytes::from_static(b"reply"))
        .expect("accepted");
    let reply: Vec<_> = pair
        .out_b()
        .into_iter()
        .filter(|d| d.kind() == Some(PacketKind::Data))
        .collect();
    assert_eq!(reply.len(), 1, "the budget allows a small reply");
    pair.deliver_to_a(&reply[0]);
    let recv: Vec<_> = pair
        .out_a()
        .into_iter()
        .filter(|d| d.kind() == Some(PacketKind::Recv))
        .collect();
    pair.deliver_to_b(&recv[0]);
    assert!(validated(&pair.b, pair.a_addr));
    assert_eq!(pair.b.stats().validated_by_probe, 0);
}

#[test]
fn a_reply_sent_once_validated_waits_for_the_probe_answer_then_goes_at_once() {
    let mut pair = Pair::strangers();
    pair.send(b"a payload of some thirty bytes");
    let data = pair.out_a();
    pair.deliver_to_b(&data[0]);
    let _recv_to_lose = pair.out_b();
    let options = gtudp_proto::SendOptions::default().once_validated();
    let reply = pair
        .b
        .send_with(pair.now, pair.a_addr, Bytes::from_static(b"reply"), options)
        .expect("accepted");
    assert!(
        pair.out_b()
            .iter()
            .all(|d| d.kind() != Some(PacketKind::Data)),
        "sent to an unvalidated address"
    );
    // A answers the probe: A's held DATA is taken (its RECV) and the reply
    // leaves in the same instant.
    pair.answer_probes();
    let out = pair.out_b();
    assert_eq!(common::kinds(&out), [PacketKind::Recv, PacketKind::Data]);
    assert_eq!(pair.a.stats().resent_for_probe, 0);
    pair.deliver_to_a(&out[1]);
    for recv in pair.out_a() {
        pair.deliver_to_b(&recv);
    }
    let events: Vec<Event> = std::iter::from_fn(|| pair.b.poll_event()).collect();
    assert!(events.contains(&Event::Delivered {
        id: reply,
        to: pair.a_addr,
        suspected_lost: false
    }));
}

#[test]
fn a_reply_sent_once_validated_to_a_spoofed_address_fails_without_a_byte_sent() {
    let mut b = Endpoint::new(config(), 9).expect("valid");
    let victim = addr(4100);
    let mut now = Instant::now();
    b.handle_datagram(now, victim, data(3, b"a long enough spoofed payload"));
    drain_transmits(&mut b, now);
    let options = gtudp_proto::SendOptions::default().once_validated();
    let reply = b
        .send_with(now, victim, Bytes::from_static(b"x"), options)
        .expect("accepted");
    let mut failed = false;
    for _ in 0..100 {
        let out = drain_transmits(&mut b, now);
        assert!(out.iter().all(|d| d.kind() != Some(PacketKind::Data)));
        failed |= std::iter::from_fn(|| b.poll_event()).any(|event| {
            event
                == Event::Failed {
                    id: reply,
                    to: victim,
                    reason: FailureReason::Unvalidated,
                }
        });
        if failed {
            break;
        }
        let Some(at) = b.poll_timeout() else { break };
        now = at;
        b.handle_timeout(now);
    }
    assert!(failed, "never failed as unvalidated");
}

#[test]
fn a_peer_holding_only_replies_waiting_for_validation_gives_way_to_newcomers() {
    let mut b_config = config();
    b_config.limits.max_peers = 2;
    let mut b = Endpoint::new(b_config, 13).expect("valid");
    let mut now = Instant::now();
    let options = gtudp_proto::SendOptions::default().once_validated();
    let (early, silent) = (addr(7000), addr(7001));
    let mut replies = Vec::new();
    let mut tokens = Vec::new();
    for (n, peer) in [early, silent].into_iter().enumerate() {
        b.handle_datagram(now, peer, data(10 + n as u32, b"hello"));
        // More than its window: some wait queued, not only held.
        for _ in 0..40 {
            replies.push(
                b.send_with(now, peer, Bytes::from_static(b"echo"), options)
                    .expect("accepted"),
            );
        }
        tokens.push(probes(&drain_transmits(&mut b, now), &[10 + n as u32])[0]);
    }
    // The table is full of peers whose only messages wait for validation:
    // a newcomer still gets in (the oldest gives way), and nothing fails yet.
    let newcomer = addr(7100);
    b.handle_datagram(now, newcomer, data(99, b"hello"));
    let out = drain_transmits(&mut b, now);
    assert!(out.iter().any(|d| d.to == newcomer
        && d.kind() == Some(PacketKind::Recv)
        && d.identity().to_u32() != 99));
    assert!(b.peer_stats(early).is_none(), "the oldest was not evicted");
    assert!(std::iter::from_fn(|| b.poll_event()).all(|e| !matches!(e, Event::Failed { .. })));
    // The evicted address answers its probe in time: its reply goes out.
    b.handle_datagram(now, early, ack(tokens[0]));
    let out = drain_transmits(&mut b, now);
    let sent = out
        .iter()
        .filter(|d| d.to == early && d.kind() == Some(PacketKind::Data))
        .count();
    assert_eq!(
        sent,
        config().initial_window as usize,
        "the parked replies did not fill the window on validation"
    );
    // The other one stays silent: its reply fails, unsent.
    let mut failed = Vec::new();
    for _ in 0..50 {
        let out = drain_transmits(&mut b, now);
        assert!(out
            .iter()
            .all(|d| !(d.to == silent && d.kind() == Some(PacketKind::Data))));
        failed.extend(
            std::iter::from_fn(|| b.poll_event()).filter(|e| matches!(e, Event::Failed { .. })),
        );
        let Some(at) = b.poll_timeout() else { break };
        now = at;
        b.handle_timeout(now);
        if b.peer_stats(silent).is_none() && !failed.is_empty() {
            break;
        }
    }
    assert!(failed.contains(&Event::Failed {
        id: replies[40],
        to: silent,
        reason: FailureReason::Unvalidated
    }));
}

#[test]
fn an_evicted_address_s_held_data_is_never_handed_over() {
    let mut b_config = config();
    b_config.limits.max_peers = 1;
    let mut b = Endpoint::new(b_config, 17).expect("valid");
    let (spoofed, newcomer) = (addr(7300), addr(7301));
    let now = Instant::now();
    b.handle_datagram(now, spoofed, data(1, b"hello"));
    b.handle_datagram(now, newcomer, data(2, b"hello"));
    drain_transmits(&mut b, now);
    assert!(b.peer_stats(spoofed).is_none(), "not evicted");
    assert_eq!(b.table_sizes().held_for_validation, 1, "the newcomer's");
    assert!(b.poll_event().is_none(), "handed over before the proof");
}

#[test]
fn past_the_unvalidated_peer_bound_a_newcomer_gets_a_probe_and_no_state_until_it_answers() {
    let mut b_config = config();
    b_config.limits.max_unvalidated_peers = 2;
    let mut pair = Pair::strangers_with_configs(config(), b_config);
    // Two addresses that never answer take both unvalidated slots.
    for (n, port) in [7200u16, 7201].into_iter().enumerate() {
        pair.b
            .handle_datagram(pair.now, addr(port), data(50 + n as u32, b"spoofed"));
    }
    drain_transmits(&mut pair.b, pair.now);
    while pair.b.poll_event().is_some() {}
    assert_eq!(pair.b.table_sizes().unvalidated_peers, 2);

    let sent = pair.send(b"from an honest newcomer");
    let data = pair.out_a();
    pair.deliver_to_b(&data[0]);
    let out = pair.out_b_with_probes();
    assert_eq!(common::kinds(&out), [PacketKind::Recv], "a probe alone");
    assert_ne!(out[0].identity(), data[0].identity(), "not the DATA's RECV");
    assert!(
        pair.b.peer_stats(pair.a_addr).is_none(),
        "state kept for it"
    );
    assert!(
        pair.b.poll_event().is_none(),
        "handed over before it proved itself"
    );
    assert_eq!(pair.b.stats().dropped.data_deferred_unvalidated, 1);
    assert_eq!(pair.b.table_sizes().unvalidated_peers, 2);

    // A answers the probe, which validates it; B kept nothing, so no RECV
    // comes, and A sends the DATA again 1.5 round trips after its answer,
    // well before the RTO.
    pair.deliver_to_a(&out[0]);
    let answer = pair.out_a();
    assert_eq!(common::kinds(&answer), [PacketKind::Ack]);
    pair.deliver_to_b(&answer[0]);
    assert!(validated(&pair.b, pair.a_addr));
    assert!(pair.out_b_with_probes().is_empty());
    let resend_at = pair.a.poll_timeout().expect("the resend");
    assert!(resend_at < pair.now + config().initial_rto);
    pair.advance_to(resend_at);
    let resent = pair.out_a();
    assert_eq!(common::kinds(&resent), [PacketKind::Data]);
    assert_eq!(pair.a.stats().resent_for_probe, 1);
    pair.deliver_to_b(&resent[0]);
    let out = pair.out_b_with_probes();
    assert_eq!(common::kinds(&out), [PacketKind::Recv]);
    assert_eq!(out[0].identity(), data[0].identity());
    let received: Vec<Event> = std::iter::from_fn(|| pair.b.poll_event()).collect();
    assert_eq!(received.len(), 1, "{received:?}");
    pair.deliver_to_a(&out[0]);
    assert!(pair.events_a().contains(&Event::Delivered {
        id: sent,
        to: pair.b_addr,
        suspected_lost: false
    }));
}

#[test]
fn forged_recvs_resend_a_message_twice_at_most_and_never_use_up_its_attempts() {
    let mut a_config = config();
    a_config.max_attempts = 3;
    let mut pair = Pair::strangers_with_configs(a_config, config());
    let sent = pair.send(b"to a receiver that never answers");
    let first = pair.out_a();
    assert_eq!(first.len(), 1);
    // A forged RECV every 5 ms, "from" B, naming none of A's identities:
    // what a forger or a probe looks like. A's timers run as well.
    let mut events = Vec::new();
    for n in 0..200u32 {
        pair.now += std::time::Duration::from_millis(5);
        let forged = encode(Packet::Recv {
            identity: Identity::from_u32(0x5eed_0000 + n),
        });
        pair.a.handle_datagram(pair.now, pair.b_addr, forged);
        pair.a.handle_timeout(pair.now);
        pair.out_a();
        events.extend(pair.events_a());
        if !events.is_empty() {
            break;
        }
    }
    assert_eq!(pair.a.stats().resent_for_probe, 2);
    // Its attempts were all left: it fails after its three, by timeout.
    for _ in 0..20 {
        if !events.is_empty() {
            break;
        }
        pair.advance();
        pair.out_a();
        events.extend(pair.events_a());
    }
    let failed = events.pop().expect("never failed");
    assert_eq!(
        failed,
        Event::Failed {
            id: sent,
            to: pair.b_addr,
            reason: FailureReason::AttemptsExhausted
        }
    );
    assert_eq!(
        pair.a.stats().retransmissions,
        2 + 2,
        "two resends, two retries"
    );
}

#[test]
fn a_late_recv_for_a_confirmed_message_resends_nothing() {
    let mut pair = Pair::new();
    pair.send(b"first");
    pair.send(b"second");
    let data = pair.out_a();
    pair.deliver_to_b(&data[0]);
    let recv = pair.out_b();
    pair.deliver_to_a(&recv[0]);
    pair.out_a();
    // The second DATA is still unconfirmed when a copy of the first RECV
    // comes late: it names one of our identities, so it is no probe.
    pair.now += std::time::Duration::from_millis(200);
    pair.deliver_to_a(&recv[0]);
    assert_eq!(common::kinds(&pair.out_a()), [PacketKind::Ack]);
    assert_eq!(pair.a.stats().resent_for_probe, 0);
}

/// An address whose peer record was forgotten (idle) proves itself again
/// before its new messages are taken: what it sent is remembered under its
/// host, which vouches for no port. A late copy of a message it sent before
/// is still recognised at once, without a probe, and not handed over.
#[test]
fn a_forgotten_peer_proves_itself_again_but_its_old_messages_stay_recognised() {
    let mut pair = Pair::new();
    pair.send(b"before");
    let old = pair.out_a();
    pair.deliver_to_b(&old[0]);
    assert_eq!(pair.events_b().len(), 1);
    // Every RECV is lost: b's attempts run out, and it remembers the
    // identity for `remember_window`.
    while pair.b.table_sizes().awaiting_ack > 0 {
        pair.advance();
        pair.out_b();
    }
    // Idle past `peer_idle_timeout`: b forgets the peer.
    pair.advance_by(config().peer_idle_timeout + config().max_rto);
    pair.out_b();
    assert!(
        pair.b.peer_stats(pair.a_addr).is_none(),
        "the peer was forgotten"
    );
    assert!(pair.b.table_sizes().remembered >= 1, "still remembered");

    // A late copy of the old message: answered at once, not handed over.
    pair.deliver_to_b(&old[0]);
    let replies = pair.out_b_with_probes();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].identity(), old[0].identity());
    assert!(pair.events_b().is_empty());

    // A new message: held, and a probe goes out, before it is taken.
    let held_before = pair.b.stats().data_held_for_validation;
    pair.send(b"after");
    for datagram in pair.out_a() {
        pair.deliver_to_b(&datagram);
    }
    assert!(pair.events_b().is_empty(), "held until the address answers");
    assert_eq!(pair.b.stats().data_held_for_validation, held_before + 1);
    pair.out_b();
    assert!(!pair.probes_b.is_empty(), "a validation probe went out");
    pair.answer_probes();
    let events = pair.events_b();
    assert!(
        matches!(&events[..], [Event::Received { payload, .. }] if &payload[..] == b"after"),
        "{events:?}"
    );
}
