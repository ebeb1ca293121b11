//! A send to a loopback port where nothing listens fails at once with
//! `Unreachable` (ICMP port unreachable through the socket's error queue),
//! not after the default attempt limit of about 65 s.
#![cfg(target_os = "linux")]

mod common;

use std::net::{SocketAddr, UdpSocket};

use common::within;
use gtudp_tokio::{Config, DeliveryError, FailureReason, Socket};

/// A port nobody listens on: bound, then released.
fn closed_port(bind: &str) -> SocketAddr {
    UdpSocket::bind(bind).unwrap().local_addr().unwrap()
}

async fn fails_unreachable(bind: &str, to: SocketAddr) {
    // The default config: only the ICMP report can end the message within
    // the wait below (the attempt limit takes about 65 s).
    let socket = Socket::bind(bind, Config::default()).await.unwrap();
    let outcome = within(30, socket.send_to(b"anyone?", to)).await;
    assert_eq!(
        outcome,
        Err(DeliveryError::Failed {
            to,
            reason: FailureReason::Unreachable
        }),
        "{:?}",
        socket.stats()
    );
    let stats = socket.stats();
    assert_eq!(stats.io.unreachable_reports, 1, "{stats:?}");
    // The socket goes on working: a later message is tried again.
    let _ = socket.close().await;
}

#[tokio::test]
async fn ipv4_port_unreachable_fails_at_once() {
    fails_unreachable("127.0.0.1:0", closed_port("127.0.0.1:0")).await;
}

#[tokio::test]
async fn ipv6_port_unreachable_fails_at_once() {
    fails_unreachable("[::1]:0", closed_port("[::1]:0")).await;
}

#[tokio::test]
async fn dual_stack_socket_learns_of_an_unreachable_ipv4_port() {
    fails_unreachable("[::]:0", closed_port("127.0.0.1:0")).await;
}
