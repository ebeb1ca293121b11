//! The calls `tokio::net::UdpSocket` users write: borrowed payloads,
//! `"host:port"` targets, `connect` + `send`, and sends that return the
//! bytes sent.

mod common;

use std::time::Duration;

use common::within;
use gtudp_tokio::{Config, DeliveryError, SendOptions, Socket};

#[tokio::test]
async fn borrowed_payloads_and_named_targets() {
    let server = Socket::bind("127.0.0.1:0", Config::default())
        .await
        .unwrap();
    let client = Socket::bind("127.0.0.1:0", Config::default())
        .await
        .unwrap();
    let target = format!("127.0.0.1:{}", server.local_addr().port());
    within(20, async {
        let owned = vec![1u8, 2, 3];
        // A slice borrowed from a local (copied), a literal, a Vec, a &str
        // target and an (ip, port) target.
        // Each returns the payload's length, as Tokio's `send_to` does.
        let sent = client.send_to(&owned[..], target.as_str()).await;
        assert_eq!(sent, Ok(3));
        assert_eq!(client.send_to(b"literal", &target).await, Ok(7));
        let sent = client
            .send_to_with(
                owned.clone(),
                ("127.0.0.1", server.local_addr().port()),
                SendOptions::default().with_timeout(Duration::from_secs(20)),
            )
            .await;
        assert_eq!(sent, Ok(3));
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(server.recv().await.unwrap().payload.to_vec());
        }
        got.sort();
        assert_eq!(got, [vec![1, 2, 3], vec![1, 2, 3], b"literal".to_vec()]);
        let error = client.send_to(b"x", "no such address").await.unwrap_err();
        assert!(
            matches!(error, DeliveryError::Unresolved { .. }),
            "{error:?}"
        );
        assert!(!error.may_have_arrived());
    })
    .await;
}

#[tokio::test]
async fn connect_then_send() {
    let server = Socket::bind("127.0.0.1:0", Config::default())
        .await
        .unwrap();
    let client = Socket::bind("127.0.0.1:0", Config::default())
        .await
        .unwrap();
    let before = client.send(b"nowhere").await.unwrap_err();
    assert!(
        matches!(
            before,
            DeliveryError::Unresolved {
                kind: std::io::ErrorKind::NotConnected,
                ..
            }
        ),
        "{before:?}"
    );
    assert!(client.peer_addr().is_err());
    client
        .connect(format!("localhost:{}", server.local_addr().port()))
        .await
        .unwrap();
    // `localhost` may resolve to ::1 first; connect to the address itself
    // when it does not match the server's family.
    if client.peer_addr().unwrap() != server.local_addr() {
        client.connect(server.local_addr()).await.unwrap();
    }
    assert_eq!(client.peer_addr().unwrap(), server.local_addr());
    within(20, async {
        assert_eq!(client.send(b"hi").await, Ok(2));
        let message = server.recv().await.unwrap();
        assert_eq!(message.payload, "hi");
        server.connect(message.from).await.unwrap();
        let sent = server.send_with("back", SendOptions::default()).await;
        assert_eq!(sent, Ok(4));
        let mut buf = [0u8; 16];
        let (len, from) = client.recv_from(&mut buf).await.unwrap();
        assert_eq!((&buf[..len], from), (&b"back"[..], server.local_addr()));
    })
    .await;
    let _ = tokio::time::timeout(Duration::from_secs(10), client.close()).await;
}
