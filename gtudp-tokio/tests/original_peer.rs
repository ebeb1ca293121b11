//! Our socket against the original Python implementation's behaviour,
//! replayed from a raw UDP socket with the datagrams of
//! `vectors/original-echo-transcript.json` (two instances of the original
//! through a relay that dropped some datagrams).
//!
//! The transcript's client sends "first" and "second" to an echo server
//! that answers each with the payload + " thanks". Here our socket is the
//! client and the raw socket plays the original server: it answers our DATA
//! with the original's framing and the transcript's own bytes for its echo
//! DATA and ACKs, and it drops what the relay dropped (the RECV of "first"
//! and the first copy of "second").

mod common;

use std::collections::HashMap;

use common::within;
use gtudp_tokio::{Config, DatagramKind, Socket};
use tokio::net::UdpSocket;

const DATA: u8 = 0x1d;
const RECV: u8 = 0x5f;
const ACK: u8 = 0xae;

/// The transcript's datagrams as (direction, bytes, dropped).
fn transcript() -> Vec<(String, Vec<u8>, bool)> {
    let text = include_str!("vectors/original-echo-transcript.json");
    let json: serde_json::Value = serde_json::from_str(text).unwrap();
    json["datagrams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["dir"].as_str().unwrap().to_owned(),
                hex::decode(d["hex"].as_str().unwrap()).unwrap(),
                d["dropped"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// The server's datagram of the transcript of `kind` whose payload is
/// `payload` (for DATA) or whose identity is that DATA's (for ACK).
fn server_datagram(transcript: &[(String, Vec<u8>, bool)], kind: u8, identity: &[u8]) -> Vec<u8> {
    transcript
        .iter()
        .find(|(dir, bytes, _)| {
            dir == "server->client" && bytes[0] == kind && &bytes[1..5] == identity
        })
        .map(|(_, bytes, _)| bytes.clone())
        .unwrap()
}

#[tokio::test]
async fn talks_to_the_original_echo_server() {
    let transcript = transcript();
    // The server's echo DATA, straight from the transcript.
    let echoes: Vec<Vec<u8>> = transcript
        .iter()
        .filter(|(dir, bytes, _)| dir == "server->client" && bytes[0] == DATA)
        .map(|(_, bytes, _)| bytes.clone())
        .collect();
    assert_eq!(echoes.len(), 2);
    assert_eq!(&echoes[0][5..], b"first thanks");
    assert_eq!(&echoes[1][5..], b"second thanks");
    let (echo_first_id, echo_second_id) = (echoes[0][1..5].to_vec(), echoes[1][1..5].to_vec());
    // The RECV our socket must send for each echo: the transcript's client
    // sent exactly these bytes.
    let expected_recvs: Vec<Vec<u8>> = transcript
        .iter()
        .filter(|(dir, bytes, _)| dir == "client->server" && bytes[0] == RECV)
        .map(|(_, bytes, _)| bytes.clone())
        .collect();
    assert_eq!(
        expected_recvs,
        [
            [&[RECV][..], &echo_first_id].concat(),
            [&[RECV][..], &echo_second_id].concat()
        ]
    );

    let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let server_addr = server.local_addr().unwrap();
    let client = Socket::bind("127.0.0.1:0", Config::default())
        .await
        .unwrap();
    let first = client.send_nowait(&b"first"[..], server_addr).unwrap();
    let second = client.send_nowait(&b"second"[..], server_addr).unwrap();

    // Play the original server until both of our DATA are acknowledged and
    // both echoes are confirmed.
    let mut copies: HashMap<Vec<u8>, u32> = HashMap::new();
    let mut data_ids: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    let mut recvs_from_client: Vec<Vec<u8>> = Vec::new();
    let mut acks_from_client: Vec<Vec<u8>> = Vec::new();
    let mut buf = [0u8; 2048];
    within(20, async {
        loop {
            let (len, from) = server.recv_from(&mut buf).await.unwrap();
            assert_eq!(from, client.local_addr());
            let datagram = buf[..len].to_vec();
            match datagram[0] {
                DATA => {
                    let identity = datagram[1..5].to_vec();
                    let payload = datagram[5..].to_vec();
                    if let Some(known) = data_ids.insert(payload.clone(), identity.clone()) {
                        assert_eq!(known, identity, "a resent DATA keeps its identity");
                    }
                    let copy = copies.entry(payload.clone()).or_insert(0);
                    *copy += 1;
                    let recv = [&[RECV][..], &identity].concat();
                    match (&payload[..], *copy) {
                        // The relay dropped this RECV; the echo went out.
                        (b"first", 1) => server.send_to(&echoes[0], from).await.unwrap(),
                        // The RECV resent, and the echo once more (a late
                        // duplicate that must not be handed over again).
                        (b"first", 2) => {
                            server.send_to(&recv, from).await.unwrap();
                            server.send_to(&echoes[0], from).await.unwrap()
                        }
                        // The relay dropped the first copy of "second".
                        (b"second", 1) => 0,
                        (b"second", 2) => {
                            server.send_to(&echoes[1], from).await.unwrap();
                            server.send_to(&recv, from).await.unwrap()
                        }
                        _ => server.send_to(&recv, from).await.unwrap(),
                    };
                }
                RECV => {
                    assert_eq!(len, 5, "RECV is exactly type + identity");
                    let identity = &datagram[1..5];
                    let ack = server_datagram(&transcript, ACK, identity);
                    server.send_to(&ack, from).await.unwrap();
                    recvs_from_client.push(datagram);
                }
                ACK => {
                    assert_eq!(len, 5, "ACK is exactly type + identity");
                    acks_from_client.push(datagram);
                }
                other => panic!("unexpected datagram type {other:#x}"),
            }
            let acked = |payload: &[u8]| {
                data_ids
                    .get(payload)
                    .is_some_and(|id| acks_from_client.contains(&[&[ACK][..], id].concat()))
            };
            if acked(b"first") && acked(b"second") && recvs_from_client.len() >= 3 {
                break;
            }
        }
    })
    .await;

    // Our sends were confirmed by the original's RECVs...
    within(10, first).await.unwrap();
    within(10, second).await.unwrap();
    // ...each echo was handed over once, the duplicate suppressed...
    let mut echoed = Vec::new();
    for _ in 0..2 {
        let message = within(10, client.recv()).await.unwrap();
        assert_eq!(message.kind, DatagramKind::Message);
        assert_eq!(message.from, server_addr);
        echoed.push(message.payload.to_vec());
    }
    echoed.sort();
    assert_eq!(
        echoed,
        [b"first thanks".to_vec(), b"second thanks".to_vec()]
    );
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), client.recv())
            .await
            .is_err(),
        "an echo was handed over twice"
    );
    // ...and every RECV our socket sent has the original's exact bytes
    // (the duplicate echo got its RECV again).
    for recv in &recvs_from_client {
        assert!(expected_recvs.contains(recv), "RECV {}", hex::encode(recv));
    }
    assert!(recvs_from_client.contains(&expected_recvs[0]));
    assert!(recvs_from_client.contains(&expected_recvs[1]));
    let stats = client.stats().endpoint;
    assert_eq!(stats.received, 2);
    assert!(stats.duplicates_suppressed >= 1, "{stats:?}");
    assert!(stats.retransmissions >= 2, "{stats:?}");
    assert!(stats.datagrams_out.ack >= 2);
    within(15, client.close()).await.unwrap();
}
