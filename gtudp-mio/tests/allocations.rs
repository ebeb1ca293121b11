//! Sending a message through a [`BlockingSocket`] allocates nothing in
//! steady state beyond the payload's own storage: once queues, tables and
//! the outcome registry have grown to the working set, a stream of messages
//! between two sockets makes no heap allocation per message except the copy
//! of each received DATA's payload into its `Bytes` (the payload's
//! storage). RECV and ACK, two of every message's three datagrams, are read
//! where the socket put them.
//!
//! Everything in the process is counted (this thread and both sockets'
//! threads), and the payload copies are subtracted using the endpoints' own
//! counters, so the result does not depend on timing: retransmissions, if
//! any, are received DATA too.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use gtudp_mio::{BlockingSocket, Config, PendingSend};
use gtudp_testkit::alloc::{allocations, CountingAllocator};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Messages each way per batch.
const BATCH: usize = 32;
/// Round trips measured (one message each way per round trip).
const ROUND_TRIPS: usize = 2_000;
/// Generous: a loaded machine only makes the test slower, never failing
/// the bound.
const PATIENCE: Duration = Duration::from_secs(60);

fn config() -> Config {
    let mut config = Config::default();
    config.initial_rto = Duration::from_millis(100);
    config
}

struct Run {
    allocations: usize,
    data_received: u64,
}

fn data_received(a: &BlockingSocket, b: &BlockingSocket) -> u64 {
    a.stats().endpoint.datagrams_in.data + b.stats().endpoint.datagrams_in.data
}

/// Sends `round_trips` messages each way in batches: A's pending sends are
/// waited for, B's are dropped at once (abandoned, still delivered); both
/// sides read every message.
fn run(
    a: &BlockingSocket,
    b: &BlockingSocket,
    payload: &Bytes,
    round_trips: usize,
    awaited: &mut Vec<PendingSend>,
) -> Run {
    let received_before = data_received(a, b);
    let before = allocations();
    let (a_addr, b_addr) = (a.local_addr(), b.local_addr());
    for _ in 0..round_trips / BATCH {
        for _ in 0..BATCH {
            awaited.push(send(a, payload, b_addr));
            drop(send(b, payload, a_addr));
        }
        for pending in awaited.drain(..) {
            let outcome = pending.wait_timeout(PATIENCE).expect("delivered in time");
            outcome.expect("delivered");
        }
        for socket in [a, b] {
            for _ in 0..BATCH {
                let message = socket.recv_timeout(PATIENCE).expect("received");
                assert_eq!(message.payload.len(), payload.len());
            }
        }
    }
    let allocations = allocations() - before;
    Run {
        allocations,
        data_received: data_received(a, b) - received_before,
    }
}

fn send(socket: &BlockingSocket, payload: &Bytes, to: SocketAddr) -> PendingSend {
    socket.send_to(payload.clone(), to).expect("accepted")
}

#[test]
fn steady_state_sends_allocate_nothing_per_message() {
    let a = BlockingSocket::bind("127.0.0.1:0", config()).expect("bind A");
    let b = BlockingSocket::bind("127.0.0.1:0", config()).expect("bind B");
    let payload = Bytes::from_static(&[0x42; 256]);
    let mut awaited = Vec::with_capacity(BATCH);

    // Warm-up: queues, tables and the registry grow to the working set.
    run(&a, &b, &payload, 4_000, &mut awaited);
    let measured = run(&a, &b, &payload, ROUND_TRIPS, &mut awaited);

    let messages = 2 * ROUND_TRIPS;
    let beyond_payload_copies = measured
        .allocations
        .saturating_sub(measured.data_received as usize);
    println!(
        "{} allocations, {} DATA received, {} messages: {:.3} allocations per \
         message beyond the payload copies",
        measured.allocations,
        measured.data_received,
        messages,
        measured.allocations as f64 / messages as f64
            - measured.data_received as f64 / messages as f64,
    );
    // A per-message allocation (a reply channel, say) alone would make this
    // at least `messages` = 4 * (messages / 4). The counters the datagrams
    // are read from lag the copies by at most a loop turn of each thread,
    // far less than the margin.
    assert!(
        beyond_payload_copies < messages / 4,
        "{} allocations for {messages} messages beyond {} payload copies",
        measured.allocations,
        measured.data_received,
    );
    a.close().unwrap();
    b.close().unwrap();
}
