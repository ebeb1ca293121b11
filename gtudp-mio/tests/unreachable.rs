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
