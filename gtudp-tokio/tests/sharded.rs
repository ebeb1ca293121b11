//! A server sharded over SO_REUSEPORT sockets ([`ShardedSocket`]) on
//! loopback: many client sockets, each message handed over exactly once,
//! in the shard that owns its sender, and every reply back at its client.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gtudp_tokio::{BindError, Builder, Config, RecvError, ShardedSocket, Socket};

const CLIENTS: usize = 24;
const PER_CLIENT: u16 = 25;
/// Guards against a hang only; nothing here measures time.
const LIMIT: Duration = Duration::from_secs(60);

fn payload(client: usize, seq: u16) -> Vec<u8> {
    let client = u16::try_from(client).unwrap();
    [client.to_be_bytes(), seq.to_be_bytes()].concat()
}

/// Every client sends `PER_CLIENT` messages at once and waits for their
/// delivery, then for as many echoes, each of its own messages once.
async fn run_clients(server: SocketAddr) -> Vec<SocketAddr> {
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        tasks.push(tokio::spawn(async move {
            let socket = Socket::bind("127.0.0.1:0", Config::default())
                .await
                .unwrap();
            let mut deliveries = Vec::new();
            for seq in 0..PER_CLIENT {
                deliveries.push(
                    socket
                        .start_send(payload(client, seq), server)
                        .await
                        .unwrap(),
                );
            }
            for delivery in deliveries {
                delivery.await.unwrap();
            }
            let mut echoed = HashSet::new();
            for _ in 0..PER_CLIENT {
                let echo = socket.recv().await.unwrap();
                assert_eq!(
                    echo.from, server,
                    "the reply comes from the server's address"
                );
                assert_eq!(
                    &echo.payload[..2],
                    &payload(client, 0)[..2],
                    "another client's echo"
                );
                assert!(
                    echoed.insert(echo.payload.clone()),
                    "echo handed over twice"
                );
            }
            let address = socket.local_addr();
            socket.close().await.unwrap();
            address
        }));
    }
    let mut addresses = Vec::new();
    for task in tasks {
        addresses.push(task.await.unwrap());
    }
    addresses
}

/// Each client's peer state is in its own shard and nowhere else.
async fn assert_steered(server: &ShardedSocket, clients: &[SocketAddr]) {
    for &client in clients {
        let owner = server.shard_index(client);
        for (index, shard) in server.shards().iter().enumerate() {
            let tracked = shard.peer_stats(client).await.unwrap().is_some();
            assert_eq!(
                tracked,
                index == owner,
                "{client}: shard {index}, owner {owner}"
            );
        }
    }
}

async fn serve_through_one_handle(shards: usize) {
    let server = Socket::bind_sharded("127.0.0.1:0", shards, Config::default())
        .await
        .unwrap();
    assert_eq!(server.shards().len(), shards);
    let seen = Arc::new(Mutex::new(HashSet::new()));
    // Two tasks share the one handle: receive from every shard (one a
    // message at a time, the other in batches), reply through the owner.
    let mut servers = Vec::new();
    for batched in [false, true] {
        let (server, seen) = (server.clone(), seen.clone());
        servers.push(tokio::spawn(async move {
            let mut batch = Vec::new();
            loop {
                let received = if batched {
                    server.recv_many(&mut batch, 8).await.map(|taken| {
                        assert!((1..=8).contains(&taken), "took {taken} with a limit of 8");
                    })
                } else {
                    server.recv().await.map(|message| batch.push(message))
                };
                if received.is_err() {
                    break;
                }
                for message in batch.drain(..) {
                    let fresh = seen
                        .lock()
                        .unwrap()
                        .insert((message.from, message.payload.clone()));
                    assert!(fresh, "{} handed over twice", hex(&message.payload));
                    server.send_to(message.payload, message.from).await.unwrap();
                }
            }
        }));
    }
    let clients = tokio::time::timeout(LIMIT, run_clients(server.local_addr()))
        .await
        .expect("clients finished");
    assert_eq!(
        seen.lock().unwrap().len(),
        CLIENTS * usize::from(PER_CLIENT)
    );
    assert_steered(&server, &clients).await;
    let summaries = server.close().await.unwrap();
    assert_eq!(summaries.len(), shards);
    let delivered: u64 = summaries.iter().map(|summary| summary.delivered).sum();
    assert_eq!(delivered, (CLIENTS * usize::from(PER_CLIENT)) as u64);
    for task in servers {
        task.await.unwrap();
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_serve_many_clients_exactly_once_through_one_handle() {
    serve_through_one_handle(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_shards_serve_many_clients_exactly_once_through_one_handle() {
    serve_through_one_handle(4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_shard_served_on_its_own_task_replies_to_the_right_clients() {
    let server = Socket::bind_sharded("127.0.0.1:0", 4, Config::default())
        .await
        .unwrap();
    let seen = Arc::new(Mutex::new(HashSet::new()));
    for (index, shard) in server.shards().iter().enumerate() {
        let (shard, seen, owner) = (shard.clone(), seen.clone(), server.clone());
        tokio::spawn(async move {
            while let Ok(message) = shard.recv().await {
                assert_eq!(owner.shard_index(message.from), index, "steered elsewhere");
                assert!(seen
                    .lock()
                    .unwrap()
                    .insert((message.from, message.payload.clone())));
                shard.send_to(message.payload, message.from).await.unwrap();
            }
        });
    }
    tokio::time::timeout(LIMIT, run_clients(server.local_addr()))
        .await
        .expect("clients finished");
    assert_eq!(
        seen.lock().unwrap().len(),
        CLIENTS * usize::from(PER_CLIENT)
    );
    server.close().await.unwrap();
}

/// The shard a send to a new peer goes out through is the one its RECV
/// comes back to: were it another, the send would fail after its attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_to_a_peer_never_seen_is_delivered() {
    let server = Socket::bind_sharded("127.0.0.1:0", 4, Config::default())
        .await
        .unwrap();
    let mut clients = Vec::new();
    for _ in 0..16 {
        clients.push(
            Socket::bind("127.0.0.1:0", Config::default())
                .await
                .unwrap(),
        );
    }
    tokio::time::timeout(LIMIT, async {
        for client in &clients {
            let delivered = server.send_to(&b"hello"[..], client.local_addr()).await;
            assert!(delivered.is_ok(), "{}: {delivered:?}", client.local_addr());
            let message = client.recv().await.unwrap();
            assert_eq!(
                (&message.payload[..], message.from),
                (&b"hello"[..], server.local_addr())
            );
        }
    })
    .await
    .expect("sends resolved");
    let addresses: Vec<SocketAddr> = clients.iter().map(Socket::local_addr).collect();
    assert_steered(&server, &addresses).await;
    server.close().await.unwrap();
}

#[tokio::test]
async fn recv_from_keeps_a_message_too_long_for_the_buffer() {
    let server = Socket::bind_sharded("127.0.0.1:0", 2, Config::default())
        .await
        .unwrap();
    let client = Socket::bind("127.0.0.1:0", Config::default())
        .await
        .unwrap();
    client
        .send_to(&b"0123456789"[..], server.local_addr())
        .await
        .unwrap();
    let mut small = [0u8; 4];
    assert!(matches!(
        server.recv_from(&mut small).await,
        Err(RecvError::Truncated {
            len: 10,
            capacity: 4
        })
    ));
    let mut buf = [0u8; 16];
    let (len, from) = server.recv_from(&mut buf).await.unwrap();
    assert_eq!(
        (&buf[..len], from),
        (&b"0123456789"[..], client.local_addr())
    );
}

#[tokio::test]
async fn zero_shards_is_a_typed_error() {
    let error = Socket::bind_sharded("127.0.0.1:0", 0, Config::default())
        .await
        .unwrap_err();
    assert!(
        matches!(error, BindError::ZeroCapacity { field: "shards" }),
        "{error}"
    );
    assert_eq!(error.to_string(), "shards is 0; it must be at least 1");
}

#[tokio::test]
async fn the_port_of_a_socket_without_reuseport_is_refused() {
    let plain = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let error = Socket::bind_sharded(plain.local_addr().unwrap(), 2, Config::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, BindError::Io(io) if io.kind() == std::io::ErrorKind::AddrInUse),
        "{error}"
    );
}

#[cfg(not(target_os = "linux"))]
#[tokio::test]
async fn without_steering_sharding_is_a_typed_error() {
    let error = Socket::bind_sharded("127.0.0.1:0", 2, Config::default())
        .await
        .unwrap_err();
    assert!(
        matches!(error, BindError::ShardingUnsupported { .. }),
        "{error}"
    );
}

#[test]
fn binding_outside_a_runtime_is_a_typed_error() {
    let error = futures_util::FutureExt::now_or_never(Socket::bind_sharded(
        "127.0.0.1:0",
        2,
        Config::default(),
    ));
    assert!(matches!(error, Some(Err(BindError::NoRuntime))));
}

/// What the handle's choice of shard prevents: a send through a shard that
/// does not own the peer is never confirmed (its RECV lands in the owner),
/// although the peer has the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_through_a_shard_not_owning_the_peer_is_never_confirmed() {
    let server = Socket::bind_sharded("127.0.0.1:0", 4, Config::default())
        .await
        .unwrap();
    let client = Socket::bind("127.0.0.1:0", Config::default())
        .await
        .unwrap();
    let wrong = (server.shard_index(client.local_addr()) + 1) % 4;
    let options = gtudp_tokio::SendOptions::default().with_timeout(Duration::from_millis(300));
    let outcome = tokio::time::timeout(
        LIMIT,
        server.shards()[wrong].send_to_with(&b"lost proof"[..], client.local_addr(), options),
    )
    .await
    .expect("the send resolved");
    assert!(
        matches!(outcome, Err(gtudp_tokio::DeliveryError::Failed { .. })),
        "{outcome:?}"
    );
    let message = tokio::time::timeout(LIMIT, client.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&message.payload[..], b"lost proof");
}

/// The kernel steers ICMP reports by its own hash, not by the group's
/// program, so a port-unreachable report often lands in a shard that never
/// sent to the destination; that shard hands it to the owner, whose send
/// then fails as `Unreachable` (not after all its attempts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_report_reaches_the_shard_that_sent() {
    let server = Socket::bind_sharded("127.0.0.1:0", 4, Config::default())
        .await
        .unwrap();
    let mut owners = HashSet::new();
    for _ in 0..12 {
        let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        owners.insert(server.shard_index(addr));
        let outcome = tokio::time::timeout(LIMIT, server.send_to(&b"anyone?"[..], addr))
            .await
            .expect("the send resolved");
        assert!(
            matches!(
                outcome,
                Err(gtudp_tokio::DeliveryError::Failed {
                    reason: gtudp_tokio::FailureReason::Unreachable,
                    ..
                })
            ),
            "{addr} (shard {}): {outcome:?}",
            server.shard_index(addr)
        );
    }
    assert!(
        owners.len() > 1,
        "every closed port in one shard: {owners:?}"
    );
}

/// With `shard_threads`, each shard's serving task runs on that shard's
/// own thread (not the test's, not another shard's), every message is
/// handed over exactly once by the shard that owns its sender, and the
/// tasks still end normally once the server closes. The test runs on a
/// current-thread runtime, as a plain `#[tokio::main]` program may.
#[tokio::test]
async fn shard_threads_serve_each_shard_on_its_own_thread_exactly_once() {
    const SHARDS: usize = 3;
    let server = Builder::new(Config::default())
        .shard_threads(true)
        .bind_sharded("127.0.0.1:0", SHARDS)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for (index, shard) in server.shards().iter().enumerate() {
        let (shard, owner) = (shard.clone(), server.clone());
        tasks.push(server.spawn_on_shard(index, async move {
            let thread = std::thread::current();
            let mut seen = Vec::new();
            while let Ok(message) = shard.recv().await {
                assert_eq!(owner.shard_index(message.from), index, "steered elsewhere");
                assert_eq!(std::thread::current().id(), thread.id(), "moved thread");
                seen.push((message.from, message.payload.clone()));
                shard.send_to(message.payload, message.from).await.unwrap();
            }
            (thread.id(), thread.name().map(str::to_owned), seen)
        }));
    }
    let clients = tokio::time::timeout(LIMIT, run_clients(server.local_addr()))
        .await
        .expect("clients finished");
    assert_steered(&server, &clients).await;
    server.close().await.unwrap();
    let mut threads = HashSet::from([std::thread::current().id()]);
    let mut all = HashSet::new();
    for (index, task) in tasks.into_iter().enumerate() {
        let (thread, name, seen) = tokio::time::timeout(LIMIT, task)
            .await
            .expect("the shard's task ended")
            .expect("the shard's task ran to its end");
        assert!(threads.insert(thread), "shard {index} shares a thread");
        assert_eq!(name.as_deref(), Some(&*format!("gtudp-shard-{index}")));
        assert!(!seen.is_empty(), "shard {index} served nobody");
        for message in seen {
            assert!(all.insert(message), "handed over twice");
        }
    }
    assert_eq!(all.len(), CLIENTS * usize::from(PER_CLIENT));
}
