//! Sending a message allocates nothing in steady state beyond the payload's
//! own storage: once queues, tables and the completion registry have grown
//! to the working set, a stream of messages between two sockets makes no
//! heap allocation per message except the copy of each received DATA's
//! payload into its `Bytes` (the payload's storage). RECV and ACK, two of
//! every message's three datagrams, are read where the socket put them.
//!
//! Everything in the process is counted (a current-thread runtime runs both
//! drivers and the test on this one thread), and the payload copies are
//! subtracted using the endpoints' own counters, so the result does not
//! depend on timing: retransmissions, if any, are received DATA too.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use gtudp_testkit::alloc::{allocations, CountingAllocator};
use gtudp_tokio::{Builder, Config, Delivery, Socket};
use tokio::time::Instant;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Messages each way per batch.
const BATCH: usize = 32;
/// Round trips measured (one message each way per round trip).
const ROUND_TRIPS: usize = 2_000;

fn config() -> Config {
    let mut config = Config::default();
    config.initial_rto = Duration::from_millis(100);
    config
}

struct Run {
    allocations: usize,
    data_received: u64,
}

/// Sends `round_trips` messages each way in batches: A's deliveries are
/// awaited, B's are dropped at once (abandoned, still delivered); both
/// sides read every message.
async fn run(
    a: &Socket,
    b: &Socket,
    payload: &Bytes,
    round_trips: usize,
    awaited: &mut Vec<Delivery>,
    deadline: Instant,
) -> Run {
    let received_before =
        a.stats().endpoint.datagrams_in.data + b.stats().endpoint.datagrams_in.data;
    let before = allocations();
    let (a_addr, b_addr) = (a.local_addr(), b.local_addr());
    for _ in 0..round_trips / BATCH {
        for _ in 0..BATCH {
            awaited.push(send(a, payload, b_addr));
            drop(send(b, payload, a_addr));
        }
        for delivery in awaited.drain(..) {
            let outcome = tokio::time::timeout_at(deadline, delivery).await;
            outcome.expect("delivered in time").expect("delivered");
        }
        for socket in [a, b] {
            for _ in 0..BATCH {
                let message = tokio::time::timeout_at(deadline, socket.recv()).await;
                let message = message.expect("received in time").expect("received");
                assert_eq!(message.payload.len(), payload.len());
            }
        }
    }
    let allocations = allocations() - before;
    let received_after =
        a.stats().endpoint.datagrams_in.data + b.stats().endpoint.datagrams_in.data;
    Run {
        allocations,
        data_received: received_after - received_before,
    }
}

fn send(socket: &Socket, payload: &Bytes, to: SocketAddr) -> Delivery {
    socket
        .send_nowait(payload.clone(), to)
        .expect("room for the batch")
}

#[test]
fn steady_state_sends_allocate_nothing_per_message() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let bind = |_| Builder::new(config()).bind("127.0.0.1:0");
        let a = bind(()).await.expect("bind A");
        let b = bind(()).await.expect("bind B");
        let payload = Bytes::from_static(&[0x42; 256]);
        let mut awaited = Vec::with_capacity(BATCH);
        // Generous: a loaded machine only makes this slower, never failing
        // the bound below.
        let deadline = Instant::now() + Duration::from_secs(120);

        // Warm-up: queues, tables and the timer wheel grow to the working set.
        run(&a, &b, &payload, 4_000, &mut awaited, deadline).await;
        let measured = run(&a, &b, &payload, ROUND_TRIPS, &mut awaited, deadline).await;

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
        // A per-message allocation (a oneshot channel, say) alone would make
        // this at least `messages` = 4 * (messages / 4).
        assert!(
            beyond_payload_copies < messages / 4,
            "{} allocations for {messages} messages beyond {} payload copies",
            measured.allocations,
            measured.data_received,
        );
        a.close().await.expect("close A");
        b.close().await.expect("close B");
    });
}
