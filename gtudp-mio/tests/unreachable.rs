//! A send to a loopback port where nothing listens fails at once with
//! `Unreachable` (ICMP port unreachable through the socket's error queue),
//! not after the default attempt limit of about 65 s.
#![cfg(target_os = "linux")]

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use gtudp_mio::{BlockingSocket, Config, DeliveryError, FailureReason};

/// A port nobody listens on: bound, then released.
fn closed_port(bind: &str) -> SocketAddr {
    UdpSocket::bind(bind).unwrap().local_addr().unwrap()
}

fn fails_unreachable(bind: &str, to: SocketAddr) {
    // The default config: only the ICMP report can end the message within
    // the wait below (the attempt limit takes about 65 s).
    let socket = BlockingSocket::bind(bind, Config::default()).unwrap();
    let pending = socket.send_to(&b"anyone?"[..], to).unwrap();
    let outcome = pending.wait_timeout(Duration::from_secs(30));
    assert_eq!(
        outcome,
        Some(Err(DeliveryError::Failed {
            to,
            reason: FailureReason::Unreachable
        })),
        "{:?}",
        socket.stats()
    );
    let stats = socket.stats();
    assert_eq!(stats.io.unreachable_reports, 1, "{stats:?}");
    assert_eq!(stats.endpoint.failed, 1);
}

#[test]
fn ipv4_port_unreachable_fails_at_once() {
    fails_unreachable("127.0.0.1:0", closed_port("127.0.0.1:0"));
}

#[test]
fn ipv6_port_unreachable_fails_at_once() {
    fails_unreachable("[::1]:0", closed_port("[::1]:0"));
}

#[test]
fn dual_stack_socket_learns_of_an_unreachable_ipv4_port() {
    fails_unreachable("[::]:0", closed_port("127.0.0.1:0"));
}

/// A sink server on `driver`'s socket, in its own thread, until `stop` is
/// set; then the driver, and its socket, are dropped at once, as by a
/// `kill -9` (no drain). Returns how many messages it took.
fn sink(
    mut driver: gtudp_mio::Driver,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    use std::sync::atomic::Ordering;
    std::thread::spawn(move || {
        let mut poll = mio::Poll::new().unwrap();
        driver.register(poll.registry(), mio::Token(0)).unwrap();
        let mut events = mio::Events::with_capacity(64);
        let mut received = 0;
        while !stop.load(Ordering::Acquire) {
            let now = std::time::Instant::now();
            let wait = driver
                .poll_timeout()
                .map_or(Duration::from_millis(10), |at| {
                    at.saturating_duration_since(now)
                })
                .min(Duration::from_millis(10));
            poll.poll(&mut events, Some(wait)).unwrap();
            let now = std::time::Instant::now();
            for event in events.iter() {
                if event.is_readable() || event.is_error() {
                    driver.handle_readable(now);
                }
                if event.is_writable() {
                    driver.handle_writable(now);
                }
            }
            driver.handle_timeout(now);
            while let Some(event) = driver.poll_event() {
                if matches!(event, gtudp_mio::Event::Received { .. }) {
                    received += 1;
                }
            }
        }
        received
    })
}

/// A server that dies (its socket closed, so the client's DATA draw ICMP
/// port unreachable) and is bound again on the same port after a pause
/// loses nothing: the client had heard from it, so the reports only make
/// it suspect, and every message ends Delivered once the new process
/// answers.
#[test]
fn a_server_rebound_on_the_same_port_gets_every_message() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let driver =
        gtudp_mio::Driver::bind("127.0.0.1:0".parse().unwrap(), Config::default()).unwrap();
    let server = driver.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let first = sink(driver, Arc::clone(&stop));
    let client = BlockingSocket::bind("127.0.0.1:0", Config::default()).unwrap();
    for i in 0..20u32 {
        let outcome = client
            .send_to(i.to_le_bytes().to_vec(), server)
            .unwrap()
            .wait_timeout(Duration::from_secs(30));
        assert!(matches!(outcome, Some(Ok(_))), "{outcome:?}");
    }

    // The server dies; the client sends on into the closed port.
    stop.store(true, Ordering::Release);
    let taken_before = first.join().unwrap();
    assert_eq!(taken_before, 20);
    let pending: Vec<_> = (0..200u32)
        .map(|i| client.send_to(i.to_le_bytes().to_vec(), server).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));

    // A new process on the same port.
    let driver = gtudp_mio::Driver::bind(server, Config::default()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let second = sink(driver, Arc::clone(&stop));
    let mut outcomes = Vec::new();
    for send in pending {
        outcomes.push(send.wait_timeout(Duration::from_secs(60)));
    }
    stop.store(true, Ordering::Release);
    let taken_after = second.join().unwrap();
    let stats = client.stats();
    let not_delivered: Vec<_> = outcomes
        .iter()
        .filter(|outcome| !matches!(outcome, Some(Ok(_))))
        .collect();
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
}
