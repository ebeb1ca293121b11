//! The calls `std::net::UdpSocket` users write: borrowed payloads,
//! `"host:port"` targets, `connect` + `send`.

mod common;

use std::time::Duration;

use gtudp_mio::{BlockingSocket, Config, DeliveryError};

#[test]
fn borrowed_payloads_and_named_targets() {
    let server = BlockingSocket::bind("127.0.0.1:0", Config::default()).unwrap();
    let client = BlockingSocket::bind("127.0.0.1:0", Config::default()).unwrap();
    let target = format!("127.0.0.1:{}", server.local_addr().port());
    let owned = vec![1u8, 2, 3];
    client
        .send_to_blocking(&owned[..], target.as_str())
        .unwrap();
    client.send_to_blocking(b"literal", &*target).unwrap();
    client
        .send_to_blocking(owned.clone(), ("127.0.0.1", server.local_addr().port()))
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        let message = server.recv_timeout(Duration::from_secs(10)).unwrap();
        got.push(message.payload.to_vec());
    }
    got.sort();
    assert_eq!(got, [vec![1, 2, 3], vec![1, 2, 3], b"literal".to_vec()]);
    let error = client.send_to(b"x", "no such address").unwrap_err();
    assert!(
        matches!(error, DeliveryError::Unresolved { .. }),
        "{error:?}"
    );
}

#[test]
fn connect_then_send() {
    let server = BlockingSocket::bind("127.0.0.1:0", Config::default()).unwrap();
    let client = BlockingSocket::bind("127.0.0.1:0", Config::default()).unwrap();
    assert!(matches!(
        client.send(b"nowhere").unwrap_err(),
        DeliveryError::Unresolved {
            kind: std::io::ErrorKind::NotConnected,
            ..
        }
    ));
    client.connect(server.local_addr()).unwrap();
    assert_eq!(client.peer_addr().unwrap(), server.local_addr());
    client.send_blocking(b"hi").unwrap();
    let message = server.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(message.payload, "hi");
    server.connect(message.from).unwrap();
    server.send("back").unwrap().wait().unwrap();
    let mut buf = [0u8; 16];
    let (len, from) = client
        .recv_from_timeout(&mut buf, Duration::from_secs(10))
        .unwrap();
    assert_eq!((&buf[..len], from), (&b"back"[..], server.local_addr()));
}
