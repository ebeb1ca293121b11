//! A ping-pong through two [`BlockingSocket`]s allocates nothing per
//! message in steady state beyond each received DATA's payload copy: the path
//! where each receive waits for the socket itself (leading), the sender
//! makes its own send system call, and an echo thread on the other socket
//! does the same. Everything in the process is counted; the payload copies
//! are subtracted using the endpoints' own counters (see `allocations.rs`).

use std::thread;
use std::time::Duration;

use bytes::Bytes;
use gtudp_mio::{BlockingSocket, Config};
use gtudp_testkit::alloc::{allocations, CountingAllocator};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

const ROUND_TRIPS: usize = 2_000;
const PATIENCE: Duration = Duration::from_secs(60);

fn config() -> Config {
    let mut config = Config::default();
    config.initial_rto = Duration::from_millis(100);
    config
}

/// `round_trips` pings from `client`, each echoed by the server thread;
/// every other ping's outcome is waited for (a leading wait), the others
/// are dropped.
fn ping_pong(
    client: &BlockingSocket,
    server: std::net::SocketAddr,
    payload: &Bytes,
    round_trips: usize,
) {
    for round in 0..round_trips {
        let pending = client.send_to(payload.clone(), server).expect("accepted");
        let echo = client.recv_timeout(PATIENCE).expect("echoed");
        assert_eq!(echo.payload.len(), payload.len());
        if round % 2 == 0 {
            pending
                .wait_timeout(PATIENCE)
                .expect("an outcome in time")
                .expect("delivered");
        }
    }
}

#[test]
fn steady_state_ping_pong_allocates_nothing_per_message() {
    let client = BlockingSocket::bind("127.0.0.1:0", config()).expect("bind client");
    let server =
        std::sync::Arc::new(BlockingSocket::bind("127.0.0.1:0", config()).expect("bind server"));
    let server_addr = server.local_addr();
    let echo = {
        let server = server.clone();
        thread::spawn(move || {
            for _ in 0..2 * ROUND_TRIPS {
                let message = server.recv_timeout(PATIENCE).expect("a ping");
                drop(
                    server
                        .send_to(message.payload, message.from)
                        .expect("accepted"),
                );
            }
        })
    };
    let payload = Bytes::from_static(&[0x42; 64]);
    let received =
        || client.stats().endpoint.datagrams_in.data + server.stats().endpoint.datagrams_in.data;

    // Warm-up: queues, tables and the registry grow to the working set.
    ping_pong(&client, server_addr, &payload, ROUND_TRIPS);
    let received_before = received();
    let before = allocations();
    ping_pong(&client, server_addr, &payload, ROUND_TRIPS);
    let measured = allocations() - before;
    let copies = (received() - received_before) as usize;
    echo.join().unwrap();

    let messages = 2 * ROUND_TRIPS;
    println!("{measured} allocations, {copies} DATA received, {messages} messages");
    // One allocation per message (a reply channel, a boxed waker) would
    // make this at least `messages`.
    assert!(
        measured.saturating_sub(copies) < messages / 4,
        "{measured} allocations for {messages} messages beyond {copies} payload copies"
    );
    client.close().unwrap();
    server.close().unwrap();
}
