//! A server whose socket is closed (as by `kill -9`) and bound again on the
//! same port after a pause loses nothing: the client had heard from it, so
//! the ICMP port-unreachable reports of the closed port only make it
//! suspect, and every message ends Delivered once the new process answers.
#![cfg(target_os = "linux")]

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::within;
use gtudp_tokio::proto::{Endpoint, Event};
use gtudp_tokio::{Config, Socket};

/// A sink server process: a hand-driven endpoint over `socket` in its own
/// thread until `stop` is set; then the socket is closed at once, with no
/// drain. Returns how many messages it took.
fn sink(socket: UdpSocket, seed: u128, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        socket
            .set_read_timeout(Some(Duration::from_millis(2)))
            .unwrap();
        let mut endpoint = Endpoint::new(Config::default(), seed).unwrap();
        let (mut buf, mut out, mut received) = (vec![0u8; 65_536], Vec::new(), 0);
        while !stop.load(Ordering::Acquire) {
            if let Ok((size, from)) = socket.recv_from(&mut buf) {
                let datagram = Bytes::copy_from_slice(&buf[..size]);
                endpoint.handle_datagram(Instant::now(), from, datagram);
            }
            let now = Instant::now();
            if endpoint.poll_timeout().is_some_and(|at| at <= now) {
                endpoint.handle_timeout(now);
            }
            while let Some(transmit) = endpoint.poll_transmit(now, 1, &mut out) {
                let _ = socket.send_to(&out[..transmit.size], transmit.destination);
            }
            while let Some(event) = endpoint.poll_event() {
                if matches!(event, Event::Received { .. }) {
                    received += 1;
                }
            }
        }
        received
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_rebound_on_the_same_port_gets_every_message() {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let server: SocketAddr = socket.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let first = sink(socket, 1, Arc::clone(&stop));
    let client = Socket::bind("127.0.0.1:0", Config::default())
        .await
        .unwrap();
    for i in 0..20u32 {
        let sent = within(30, client.send_to(&i.to_le_bytes(), server)).await;
        assert!(sent.is_ok(), "{sent:?}");
    }

    // The server dies; the client sends on into the closed port.
    stop.store(true, Ordering::Release);
    assert_eq!(first.join().unwrap(), 20);
    let mut deliveries = Vec::new();
    for i in 0..200u32 {
        let payload = i.to_le_bytes().to_vec();
        deliveries.push(client.start_send(payload, server).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A new process on the same port, with no memory of the old one.
    let socket = UdpSocket::bind(server).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let second = sink(socket, 2, Arc::clone(&stop));
    let mut not_delivered = Vec::new();
    for delivery in deliveries {
        let outcome = within(60, delivery).await;
        if outcome.is_err() {
            not_delivered.push(outcome);
        }
    }
    stop.store(true, Ordering::Release);
    let taken_after = second.join().unwrap();
    let stats = client.stats();
    assert!(not_delivered.is_empty(), "{not_delivered:?} {stats:?}");
    assert_eq!(taken_after, 200, "{stats:?}");
    // The closed port did answer with reports; they failed nothing.
    assert!(stats.io.unreachable_reports >= 1, "{stats:?}");
    assert!(stats.endpoint.unreachable_suspected >= 1, "{stats:?}");
    assert_eq!(
        stats.endpoint.unreachable_recovered, stats.endpoint.unreachable_suspected,
        "{stats:?}"
    );
    assert_eq!(stats.endpoint.failed, 0, "{stats:?}");
    let _ = client.close().await;
}
