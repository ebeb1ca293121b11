//! laminar 0.5: `reliable_unordered` packets, one thread per side, each
//! driving its socket with `manual_poll`.
//!
//! laminar reports no per-packet delivery, and it has no send-side flow
//! control: a connection with more than `max_packets_in_flight` unacked
//! packets is dropped. So the sender keeps at most C packets ahead of the
//! receiver's count, read from a shared counter (in-process feedback that
//! a networked laminar sender would not have). Throughput is receive-side.
//! laminar acknowledges only in packets going the other way; here the
//! receiver sends nothing but heartbeats, so those carry the acks.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use laminar::{Packet, Socket, SocketEvent};

use crate::common::{cpu_between, cpu_time, payload, Outcome, Params, Tally, STALL};

/// Heartbeats: the receiver's only outgoing packets, hence its only acks.
/// Zero sends one on every poll (a 1 ms interval stalled sooner).
const HEARTBEAT: Duration = Duration::ZERO;

/// laminar drops a connection with more unacked packets than this (and
/// with it every packet it was resending). Its default, 512, is exceeded
/// here within a few thousand packets: one heartbeat acks 33 packets at
/// most, so bulk one-way traffic looks lossy to it.
const MAX_IN_FLIGHT: u16 = 16_384;

/// The longest either thread keeps polling after the run's end.
const RUN_LIMIT: Duration = Duration::from_secs(60);

pub(crate) fn run(params: Params) -> io::Result<Outcome> {
    let config = laminar::Config {
        heartbeat_interval: Some(HEARTBEAT),
        idle_connection_timeout: STALL,
        receive_buffer_max_size: params.size + 64,
        max_packets_in_flight: MAX_IN_FLIGHT,
        ..laminar::Config::default()
    };
    let max_in_flight = config.max_packets_in_flight;
    let bind = |config: laminar::Config| {
        Socket::bind_with_config("127.0.0.1:0", config)
            .map_err(|error| io::Error::other(error.to_string()))
    };
    let mut sender = bind(config.clone())?;
    let mut receiver = bind(config)?;
    let sender_addr = sender
        .local_addr()
        .map_err(|e| io::Error::other(e.to_string()))?;
    let receiver_addr = receiver
        .local_addr()
        .map_err(|e| io::Error::other(e.to_string()))?;

    let received = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let epoch = Instant::now();
    let cpu_before = cpu_time();

    let counting = {
        let received = received.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            receive(&mut receiver, sender_addr, params, epoch, &received, &done)
        })
    };

    let start = Instant::now();
    let packets = sender.get_packet_sender();
    let events = sender.get_event_receiver();
    let mut next = 0u64;
    let (mut disconnects, mut timeouts) = (0u64, 0u64);
    while !done.load(Ordering::Acquire) && start.elapsed() < RUN_LIMIT {
        let acked = received.load(Ordering::Acquire);
        while next < params.count && next - acked < params.concurrency as u64 {
            let packet =
                Packet::reliable_unordered(receiver_addr, payload(next, params.size, epoch));
            if packets.send(packet).is_err() {
                break;
            }
            next += 1;
        }
        sender.manual_poll(Instant::now());
        while let Ok(event) = events.try_recv() {
            match event {
                SocketEvent::Timeout(_) => timeouts += 1,
                SocketEvent::Disconnect(_) => disconnects += 1,
                SocketEvent::Packet(_) | SocketEvent::Connect(_) => {}
            }
        }
        std::thread::yield_now();
    }
    done.store(true, Ordering::Release);
    let (tally, stalled) = counting
        .join()
        .map_err(|_| io::Error::other("receiver thread panicked"))?;
    let cpu = cpu_between(cpu_before, cpu_time());
    let last = tally.last;
    let mut outcome = Outcome::new("laminar", params, tally);
    outcome.sent = next;
    outcome.elapsed = last.map_or(Duration::ZERO, |last| last.saturating_duration_since(start));
    outcome.cpu = cpu;
    outcome.stalled = stalled;
    if stalled {
        outcome.notes.push(format!(
            "STALLED at {}/{} (no progress for {} s)",
            outcome.received,
            params.count,
            STALL.as_secs()
        ));
    }
    outcome
        .notes
        .push(format!("window {} via shared counter", params.concurrency));
    if timeouts + disconnects > 0 {
        outcome.notes.push(format!(
            "sender saw {timeouts} timeouts, {disconnects} disconnects (limit {max_in_flight} in flight)"
        ));
    }
    Ok(outcome)
}

/// The receiving thread: says hello (a connection needs a packet each way
/// before heartbeats flow), then polls and counts until every message is
/// in, the sender gives up, or nothing new arrives for [`STALL`].
fn receive(
    socket: &mut Socket,
    sender_addr: SocketAddr,
    params: Params,
    epoch: Instant,
    received: &AtomicU64,
    done: &AtomicBool,
) -> (Tally, bool) {
    let mut tally = Tally::new(&params, epoch);
    let events = socket.get_event_receiver();
    let _ = socket
        .get_packet_sender()
        .send(Packet::unreliable(sender_addr, vec![0]));
    let start = Instant::now();
    let mut progress_at = Instant::now();
    let mut stalled = false;
    while !tally.complete() && !done.load(Ordering::Acquire) {
        socket.manual_poll(Instant::now());
        let before = tally.unique;
        while let Ok(event) = events.try_recv() {
            if let SocketEvent::Packet(packet) = event {
                tally.record(packet.payload());
            }
        }
        if tally.unique != before {
            received.store(tally.unique, Ordering::Release);
            progress_at = Instant::now();
        } else if progress_at.elapsed() >= STALL || start.elapsed() >= RUN_LIMIT {
            stalled = true;
            break;
        }
        std::thread::yield_now();
    }
    done.store(true, Ordering::Release);
    (tally, stalled)
}
