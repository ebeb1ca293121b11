//! A message whose datagram the kernel refuses as too large for the path
//! (EMSGSIZE) fails at once with `TooLarge`, not after its deadline; a
//! small message to the same peer is still delivered.
//!
//! IPv6 loopback has an MTU of 65,536 and the sockets forbid
//! fragmentation, so a UDP payload of 65,507 bytes (the largest
//! `Config::max_datagram_size`) does not fit its 48 bytes of headers.
#![cfg(target_os = "linux")]

mod common;

use common::within;
use gtudp_tokio::proto::MAX_UDP_PAYLOAD;
use gtudp_tokio::{Builder, Config, DeliveryError, FailureReason, Fragmentation, Socket};

#[tokio::test]
async fn a_message_too_large_for_the_path_fails_at_once() {
    let mut config = Config::default();
    config.max_datagram_size = MAX_UDP_PAYLOAD;
    let server = Socket::bind("[::1]:0", config.clone()).await.unwrap();
    let client = Socket::bind("[::1]:0", config).await.unwrap();
    let to = server.local_addr();
    let big = vec![7u8; client.max_payload_size()];
    // The bound is generous; the default attempt limit would take ~65 s.
    let outcome = within(5, client.send_to(big, to)).await;
    match outcome {
        Err(DeliveryError::Failed {
            to: failed_to,
            reason: FailureReason::TooLarge { size, limit },
        }) => {
            assert_eq!((failed_to, size), (to, MAX_UDP_PAYLOAD));
            assert!(limit.is_some_and(|limit| limit < size), "{limit:?}");
        }
        other => panic!("expected TooLarge, got {other:?} ({:?})", client.stats()),
    }
    let small = within(5, client.send_to(vec![8u8; 1_000], to)).await;
    assert!(small.is_ok(), "{small:?}");
    let received = within(5, server.recv()).await.unwrap();
    assert_eq!(received.payload.len(), 1_000);
    let stats = client.stats();
    assert_eq!(stats.io.too_large, 1, "{stats:?}");
    assert_eq!(stats.endpoint.too_large_reports, 1, "{stats:?}");
    let _ = client.close().await;
    let _ = server.close().await;
}

/// With fragmentation allowed, the same datagram leaves in IPv6 fragments
/// and is delivered.
#[tokio::test]
async fn a_socket_that_allows_fragmentation_delivers_it() {
    let mut config = Config::default();
    config.max_datagram_size = MAX_UDP_PAYLOAD;
    let server = Socket::bind("[::1]:0", config.clone()).await.unwrap();
    let client = Builder::new(config)
        .fragmentation(Fragmentation::Allowed)
        .bind("[::1]:0")
        .await
        .unwrap();
    let to = server.local_addr();
    let big = vec![7u8; client.max_payload_size()];
    let outcome = within(5, client.send_to(big.clone(), to)).await;
    assert!(outcome.is_ok(), "{outcome:?}");
    let received = within(5, server.recv()).await.unwrap();
    assert_eq!(received.payload, big);
    assert_eq!(client.stats().io.too_large, 0);
    let _ = client.close().await;
    let _ = server.close().await;
}
