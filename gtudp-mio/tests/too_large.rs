//! A message whose datagram the kernel refuses as too large for the path
//! (EMSGSIZE) fails at once with `TooLarge`, not after its deadline; a
//! small message to the same peer is still delivered.
//!
//! IPv6 loopback has an MTU of 65,536 and the sockets forbid
//! fragmentation, so a UDP payload of 65,507 bytes (the largest
//! `Config::max_datagram_size`) does not fit its 48 bytes of headers.
#![cfg(target_os = "linux")]

use std::time::Duration;

use gtudp_mio::proto::MAX_UDP_PAYLOAD;
use gtudp_mio::{BlockingSocket, Config, DeliveryError, FailureReason};

#[test]
fn a_message_too_large_for_the_path_fails_at_once() {
    let mut config = Config::default();
    config.max_datagram_size = MAX_UDP_PAYLOAD;
    let server = BlockingSocket::bind("[::1]:0", config.clone()).unwrap();
    let client = BlockingSocket::bind("[::1]:0", config).unwrap();
    let to = server.local_addr();
    let big = vec![7u8; client.max_payload_size()];
    let pending = client.send_to(big, to).unwrap();
    // The bound is generous; the default attempt limit would take ~65 s.
    match pending.wait_timeout(Duration::from_secs(5)) {
        Some(Err(DeliveryError::Failed {
            to: failed_to,
            reason: FailureReason::TooLarge { size, limit },
        })) => {
            assert_eq!((failed_to, size), (to, MAX_UDP_PAYLOAD));
            assert!(limit.is_some_and(|limit| limit < size), "{limit:?}");
        }
        other => panic!("expected TooLarge, got {other:?} ({:?})", client.stats()),
    }
    let small = client.send_to(vec![8u8; 1_000], to).unwrap();
    let small = small.wait_timeout(Duration::from_secs(5));
    assert!(matches!(small, Some(Ok(_))), "{small:?}");
    let received = server.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(received.payload.len(), 1_000);
    let stats = client.stats();
    assert_eq!(stats.io.too_large, 1, "{stats:?}");
    assert_eq!(stats.endpoint.too_large_reports, 1, "{stats:?}");
}
