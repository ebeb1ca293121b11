//! gtUDP through `gtudp-tokio`: the sender keeps at most C messages
//! awaiting their [`Delivery`](gtudp_tokio::Delivery) (`send_nowait`), the
//! receiver `recv()`s. Throughput counts until the last Delivered.

use std::io;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use gtudp_tokio::{Builder, Config, Stats, TrySendErrorKind};

use crate::common::{
    cpu_between, cpu_time, histogram, payload, record, Outcome, Params, Tally, STALL,
};

/// How long each socket may take to close after the measurement.
const CLOSE_WAIT: Duration = Duration::from_secs(3);

pub(crate) async fn run(params: Params) -> io::Result<Outcome> {
    let mut config = Config::default();
    let needed = params.size + config.framing.header_len();
    if needed > config.max_datagram_size {
        config.max_datagram_size = needed.min(gtudp_tokio::proto::MAX_UDP_PAYLOAD);
    }
    let max_window = config.max_window;
    let mut receiver = Builder::new(config.clone());
    if let Some(capacity) = params.recv_queue {
        receiver = receiver.recv_queue(capacity);
    }
    let receiver = receiver
        .bind("127.0.0.1:0")
        .await
        .map_err(io::Error::other)?;
    let sender = Builder::new(config)
        .bind("127.0.0.1:0")
        .await
        .map_err(io::Error::other)?;
    let target = receiver.local_addr();
    let epoch = Instant::now();
    let cpu_before = cpu_time();

    let counting = tokio::spawn(async move {
        let mut tally = Tally::new(&params, epoch);
        let mut stalled = false;
        while !tally.complete() {
            match tokio::time::timeout(STALL, receiver.recv()).await {
                Ok(Ok(message)) => tally.record(&message.payload),
                Ok(Err(_)) => break,
                Err(_) => {
                    stalled = true;
                    break;
                }
            }
        }
        let stats = receiver.stats();
        let _ = tokio::time::timeout(CLOSE_WAIT, receiver.close()).await;
        (tally, stalled, stats)
    });

    let start = Instant::now();
    let mut in_flight = FuturesUnordered::new();
    let mut latency = histogram();
    let (mut next, mut delivered, mut failed, mut refused_full) = (0u64, 0u64, 0u64, 0u64);
    let mut first_error = None;
    let mut last_delivered = start;
    let mut stalled = false;
    while delivered + failed < params.count {
        while next < params.count && in_flight.len() < params.concurrency {
            let message = Bytes::from(payload(next, params.size, epoch));
            let sent_at = Instant::now();
            match sender.send_nowait(message, target) {
                Ok(delivery) => {
                    in_flight.push(async move { (sent_at, delivery.await) });
                    next += 1;
                }
                Err(error) if error.is_retryable() && !in_flight.is_empty() => {
                    // Wait for an outcome, then retry this message.
                    if error.kind() == TrySendErrorKind::QueueFull {
                        refused_full += 1;
                    }
                    break;
                }
                Err(error) if error.is_retryable() => {
                    refused_full += 1;
                    tokio::task::yield_now().await;
                }
                Err(error) => {
                    first_error.get_or_insert_with(|| error.to_string());
                    failed += 1;
                    next += 1;
                }
            }
        }
        if in_flight.is_empty() {
            continue;
        }
        match tokio::time::timeout(STALL, in_flight.next()).await {
            Ok(Some((sent_at, Ok(_)))) => {
                let now = Instant::now();
                record(&mut latency, now.saturating_duration_since(sent_at));
                delivered += 1;
                last_delivered = now;
            }
            Ok(Some((_, Err(error)))) => {
                first_error.get_or_insert_with(|| error.to_string());
                failed += 1;
            }
            Ok(None) => {}
            Err(_) => {
                stalled = true;
                break;
            }
        }
    }
    let elapsed = last_delivered.saturating_duration_since(start);
    let sender_stats = sender.stats();
    let peer = sender.peer_stats(target).await.ok().flatten();
    let (tally, receive_stalled, receiver_stats) = counting.await.map_err(io::Error::other)?;
    let cpu = cpu_between(cpu_before, cpu_time());
    let _ = tokio::time::timeout(CLOSE_WAIT, sender.close()).await;

    let mut outcome = Outcome::new("gtudp-tokio", params, tally);
    outcome.sent = next;
    outcome.delivered = Some(delivered);
    outcome.failed = failed;
    outcome.elapsed = elapsed;
    outcome.cpu = cpu;
    outcome.stalled = stalled || receive_stalled;
    outcome.confirm_latency = Some(latency);
    if outcome.stalled {
        outcome.notes.push(format!(
            "STALLED at {} delivered, {} received (no progress for {} s)",
            delivered,
            outcome.received,
            STALL.as_secs()
        ));
    }
    let e = &sender_stats.endpoint;
    outcome.notes.push(format!(
        "failed {failed}, {} retransmissions",
        e.retransmissions
    ));
    if let Some(error) = first_error {
        outcome.notes.push(format!("first error: {error}"));
    }
    if refused_full > 0 {
        outcome
            .notes
            .push(format!("{refused_full} send_nowait refusals"));
    }
    outcome
        .details
        .push(counters("sender", &sender_stats, params.count));
    if let Some(peer) = peer {
        outcome.details.push(format!(
            "sender: congestion window at the end {} (max {}), RTT estimate {:?}, RTO {:?}",
            peer.window, max_window, peer.rtt, peer.rto
        ));
    }
    outcome
        .details
        .push(counters("receiver", &receiver_stats, params.count));
    Ok(outcome)
}

fn counters(side: &str, stats: &Stats, count: u64) -> String {
    let e = &stats.endpoint;
    let io = &stats.io;
    let per = |n: u64| n as f64 / count.max(1) as f64;
    format!(
        "{side}: out DATA/RECV/ACK {}/{}/{}, in DATA/RECV/ACK {}/{}/{}, retx {} (early {}, tail probes {}, timeouts {}; \
         spurious {}), recv-retx {}, dup-suppressed {}, \
         send syscalls {} ({:.3}/msg, {} GSO batches, {} datagrams), recv syscalls {} ({:.3}/msg, {} datagrams), \
         send would-block {}, paused-unanswered DATA {}, full-unanswered DATA {}",
        e.datagrams_out.data,
        e.datagrams_out.recv,
        e.datagrams_out.ack,
        e.datagrams_in.data,
        e.datagrams_in.recv,
        e.datagrams_in.ack,
        e.retransmissions,
        e.loss_detected_early,
        e.tail_loss_probes,
        e.retransmission_timeouts,
        e.spurious_retransmissions,
        e.recv_retransmissions,
        e.duplicates_suppressed,
        io.send_calls,
        per(io.send_calls),
        io.batched_sends,
        io.datagrams_sent,
        io.recv_calls,
        per(io.recv_calls),
        io.datagrams_received,
        io.send_would_block,
        e.dropped.data_unanswered_paused,
        e.dropped.data_unanswered_full,
    )
}
