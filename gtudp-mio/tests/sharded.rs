//! A blocking server sharded over SO_REUSEPORT sockets
//! ([`ShardedBlockingSocket`]) on loopback: many client sockets, each
//! message handed over exactly once, in the shard that owns its sender, and
//! every reply back at its client.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gtudp_mio::{BindError, BlockingSocket, Config, RecvError, ShardedBlockingSocket};

const CLIENTS: usize = 24;
const PER_CLIENT: u16 = 25;
/// Bounds every wait (a hang fails the test); nothing here measures time.
const LIMIT: Duration = Duration::from_secs(30);

fn payload(client: usize, seq: u16) -> Vec<u8> {
    let client = u16::try_from(client).unwrap();
    [client.to_be_bytes(), seq.to_be_bytes()].concat()
}

/// Every client sends `PER_CLIENT` messages at once and waits for their
/// delivery, then for as many echoes, each of its own messages once.
fn run_clients(server: SocketAddr) -> Vec<SocketAddr> {
    let threads: Vec<_> = (0..CLIENTS)
        .map(|client| {
            std::thread::spawn(move || {
                let socket = BlockingSocket::bind("127.0.0.1:0", Config::default()).unwrap();
                let pending: Vec<_> = (0..PER_CLIENT)
                    .map(|seq| socket.send_to(payload(client, seq), server).unwrap())
                    .collect();
                for send in pending {
                    send.wait().unwrap();
                }
                let mut echoed = HashSet::new();
                for _ in 0..PER_CLIENT {
                    let echo = socket.recv_timeout(LIMIT).unwrap();
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
                socket.close().unwrap();
                address
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|thread| thread.join().unwrap())
        .collect()
}

/// Each client's peer state is in its own shard and nowhere else.
fn assert_steered(server: &ShardedBlockingSocket, clients: &[SocketAddr]) {
    for &client in clients {
        let owner = server.shard_index(client);
        for (index, shard) in server.shards().iter().enumerate() {
            let tracked = shard.peer_stats(client).is_some();
            assert_eq!(
                tracked,
                index == owner,
                "{client}: shard {index}, owner {owner}"
            );
        }
    }
}

fn serve_through_one_handle(shards: usize) {
    let server =
        Arc::new(BlockingSocket::bind_sharded("127.0.0.1:0", shards, Config::default()).unwrap());
    assert_eq!(server.shards().len(), shards);
    let seen = Arc::new(Mutex::new(HashSet::new()));
    // Two threads share the one handle: receive from every shard, reply
    // through the owner. The second takes what has arrived in batches.
    let servers: Vec<_> = (0..2)
        .map(|thread| {
            let (server, seen) = (server.clone(), seen.clone());
            std::thread::spawn(move || loop {
                let mut messages = Vec::new();
                let received = match thread {
                    0 => server
                        .recv_timeout(Duration::from_millis(200))
                        .map(|message| messages.push(message)),
                    _ => server
                        .recv_many_timeout(&mut messages, 8, Duration::from_millis(200))
                        .map(|taken| assert!((1..=8).contains(&taken), "{taken}")),
                };
                match received {
                    Ok(()) => {
                        for message in messages {
                            let fresh = seen
                                .lock()
                                .unwrap()
                                .insert((message.from, message.payload.clone()));
                            assert!(fresh, "a message handed over twice");
                            let _ = server.send_to(message.payload, message.from).unwrap();
                        }
                    }
                    Err(RecvError::TimedOut) => {
                        if seen.lock().unwrap().len() == CLIENTS * usize::from(PER_CLIENT) {
                            return;
                        }
                    }
                    Err(error) => panic!("{error}"),
                }
            })
        })
        .collect();
    let clients = run_clients(server.local_addr());
    for thread in servers {
        thread.join().unwrap();
    }
    assert_eq!(
        seen.lock().unwrap().len(),
        CLIENTS * usize::from(PER_CLIENT)
    );
    assert_steered(&server, &clients);
    let summaries = server.close().unwrap();
    assert_eq!(summaries.len(), shards);
    let delivered: u64 = summaries.iter().map(|summary| summary.delivered).sum();
    assert_eq!(delivered, (CLIENTS * usize::from(PER_CLIENT)) as u64);
    assert!(matches!(server.recv_timeout(LIMIT), Err(RecvError::Closed)));
    assert!(matches!(
        server.recv_many_timeout(&mut Vec::new(), 8, LIMIT),
        Err(RecvError::Closed)
    ));
    assert_eq!(server.recv_many(&mut Vec::new(), 0), Ok(0));
}

#[test]
fn two_shards_serve_many_clients_exactly_once_through_one_handle() {
    serve_through_one_handle(2);
}

#[test]
fn four_shards_serve_many_clients_exactly_once_through_one_handle() {
    serve_through_one_handle(4);
}

#[test]
fn each_shard_served_on_its_own_thread_replies_to_the_right_clients() {
    let server =
        Arc::new(BlockingSocket::bind_sharded("127.0.0.1:0", 4, Config::default()).unwrap());
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let threads: Vec<_> = server
        .shards()
        .iter()
        .enumerate()
        .map(|(index, shard)| {
            let (shard, seen, owner) = (shard.clone(), seen.clone(), server.clone());
            std::thread::spawn(move || {
                while let Ok(message) = shard.recv() {
                    assert_eq!(owner.shard_index(message.from), index, "steered elsewhere");
                    assert!(seen
                        .lock()
                        .unwrap()
                        .insert((message.from, message.payload.clone())));
                    let _ = shard.send_to(message.payload, message.from).unwrap();
                }
            })
        })
        .collect();
    let clients = run_clients(server.local_addr());
    assert_eq!(
        seen.lock().unwrap().len(),
        CLIENTS * usize::from(PER_CLIENT)
    );
    assert_steered(&server, &clients);
    server.close().unwrap();
    for thread in threads {
        thread.join().unwrap();
    }
}

/// The shard a send to a new peer goes out through is the one its RECV
/// comes back to: were it another, the send would fail after its attempts.
#[test]
fn a_send_to_a_peer_never_seen_is_delivered() {
    let server = BlockingSocket::bind_sharded("127.0.0.1:0", 4, Config::default()).unwrap();
    let clients: Vec<_> = (0..16)
        .map(|_| BlockingSocket::bind("127.0.0.1:0", Config::default()).unwrap())
        .collect();
    for client in &clients {
        let delivered = server
            .send_to(&b"hello"[..], client.local_addr())
            .unwrap()
            .wait();
        assert!(delivered.is_ok(), "{}: {delivered:?}", client.local_addr());
        let message = client.recv_timeout(LIMIT).unwrap();
        assert_eq!(
            (&message.payload[..], message.from),
            (&b"hello"[..], server.local_addr())
        );
    }
    let addresses: Vec<SocketAddr> = clients.iter().map(BlockingSocket::local_addr).collect();
    assert_steered(&server, &addresses);
    server.close().unwrap();
}

#[test]
fn recv_from_keeps_a_message_too_long_for_the_buffer() {
    let server = BlockingSocket::bind_sharded("127.0.0.1:0", 2, Config::default()).unwrap();
    let client = BlockingSocket::bind("127.0.0.1:0", Config::default()).unwrap();
    client
        .send_to_blocking(&b"0123456789"[..], server.local_addr())
        .unwrap();
    let mut small = [0u8; 4];
    assert!(matches!(
        server.recv_from_timeout(&mut small, LIMIT),
        Err(RecvError::Truncated {
            len: 10,
            capacity: 4
        })
    ));
    let mut buf = [0u8; 16];
    let (len, from) = server.recv_from_timeout(&mut buf, LIMIT).unwrap();
    assert_eq!(
        (&buf[..len], from),
        (&b"0123456789"[..], client.local_addr())
    );
}

#[test]
fn zero_shards_is_a_typed_error() {
    let error = BlockingSocket::bind_sharded("127.0.0.1:0", 0, Config::default()).unwrap_err();
    assert!(
        matches!(error, BindError::ZeroCapacity { field: "shards" }),
        "{error}"
    );
}

#[test]
fn the_port_of_a_socket_without_reuseport_is_refused() {
    let plain = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let error = BlockingSocket::bind_sharded(plain.local_addr().unwrap(), 2, Config::default())
        .unwrap_err();
    assert!(
        matches!(&error, BindError::Io(io) if io.kind() == std::io::ErrorKind::AddrInUse),
        "{error}"
    );
}

#[cfg(not(target_os = "linux"))]
#[test]
fn without_steering_sharding_is_a_typed_error() {
    let error = BlockingSocket::bind_sharded("127.0.0.1:0", 2, Config::default()).unwrap_err();
    assert!(
        matches!(error, BindError::ShardingUnsupported { .. }),
        "{error}"
    );
}

/// The kernel steers ICMP reports by its own hash, not by the group's
/// program, so a port-unreachable report often lands in a shard that never
/// sent to the destination; that shard hands it to the owner, whose send
/// then fails as `Unreachable` (not after all its attempts).
#[test]
fn an_unreachable_report_reaches_the_shard_that_sent() {
    let server = BlockingSocket::bind_sharded("127.0.0.1:0", 4, Config::default()).unwrap();
    let mut owners = HashSet::new();
    for _ in 0..12 {
        let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        owners.insert(server.shard_index(addr));
        let outcome = server
            .send_to(&b"anyone?"[..], addr)
            .unwrap()
            .wait_timeout(LIMIT)
            .expect("the send resolved");
        assert!(
            matches!(
                outcome,
                Err(gtudp_mio::DeliveryError::Failed {
                    reason: gtudp_mio::FailureReason::Unreachable,
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
