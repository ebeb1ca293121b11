//! Exchanges with the original Python gtUDP, from the datagrams it produced
//! (`tests/vectors/`): our endpoint must interoperate byte for byte.

mod common;

use std::time::Instant;

use bytes::Bytes;
use common::{addr, config, drain_events, drain_transmits};
use gtudp_proto::wire::{Framing, Identity, Packet, PacketKind};
use gtudp_proto::{Endpoint, Event};
use serde_json::Value;

fn json(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("valid JSON")
}

fn bytes(hex_text: &Value) -> Bytes {
    Bytes::from(hex::decode(hex_text.as_str().expect("hex string")).expect("valid hex"))
}

/// The transcript's datagrams with the given direction, in order.
fn transcript(direction: &str) -> Vec<Bytes> {
    json("original-echo-transcript.json")["datagrams"]
        .as_array()
        .expect("datagrams")
        .iter()
        .filter(|d| d["dir"] == direction)
        .map(|d| bytes(&d["hex"]))
        .collect()
}

/// A validation probe is a header-only RECV in the peer's framing naming
/// another identity than the DATA it answers (a token, not a message); the
/// original answers it as it answers every RECV, with the ACK this returns.
fn answer_validation_probe(framing: &Framing, probe: &[u8], data: &[u8]) -> Bytes {
    let (Ok(Packet::Recv { identity: token }), Ok(Packet::Data { identity, .. })) =
        (framing.parse(probe), framing.parse(data))
    else {
        panic!("not a RECV answering a DATA: {probe:02x?} {data:02x?}");
    };
    assert_ne!(token, identity);
    let mut ack = Vec::new();
    framing.encode_to_vec(&Packet::Ack { identity: token }, &mut ack);
    Bytes::from(ack)
}

#[test]
fn serves_the_original_client_as_its_echo_server_did() {
    let client = addr(4323);
    let mut server = Endpoint::new(config(), 7).expect("valid");
    let now = Instant::now();
    let from_client = transcript("client->server");
    // i=0: the client's DATA "first".
    let first = from_client[0].clone();
    assert_eq!(&first[..], b"\x1d\xc8\xd5\x32\x05first");
    server.handle_datagram(now, client, first.clone());
    assert!(
        drain_events(&mut server).is_empty(),
        "held until the client proves its address"
    );
    let probe = drain_transmits(&mut server, now);
    assert_eq!(probe.len(), 1, "a validation probe alone");
    let answer = answer_validation_probe(&Framing::default(), &probe[0].bytes, &first);
    server.handle_datagram(now, client, answer);
    assert_eq!(
        drain_events(&mut server),
        [Event::Received {
            from: client,
            payload: Bytes::from_static(b"first")
        }]
    );
    let out = drain_transmits(&mut server, now);
    assert_eq!(out.len(), 1, "the RECV");
    assert_eq!(
        &out[0].bytes[..],
        &hex::decode("5fc8d53205").expect("hex")[..],
        "our RECV is the original's"
    );
    // The original resends DATA when idle (i=7): not delivered again.
    server.handle_datagram(now, client, first);
    assert!(drain_events(&mut server).is_empty());
    assert_eq!(drain_transmits(&mut server, now).len(), 1, "RECV again");
    // i=9: the client's ACK ends our RECV resends.
    server.handle_datagram(
        now,
        client,
        Bytes::from(hex::decode("aec8d53205").expect("hex")),
    );
    assert_eq!(
        server.stats().dropped.ack_unknown,
        0,
        "the ACK matched our RECV"
    );

    // Echo "first thanks" with a guaranteed send; the original client
    // answers RECV with our identity, and we answer that with ACK.
    let id = server
        .send(now, client, Bytes::from_static(b"first thanks"))
        .expect("accepted");
    let echo = drain_transmits(&mut server, now);
    let parsed = Framing::default().parse(&echo[0].bytes).expect("gtUDP");
    assert_eq!(parsed.kind(), PacketKind::Data);
    assert_eq!(parsed.payload(), b"first thanks");
    let mut recv = vec![0x5f];
    recv.extend_from_slice(&parsed.identity().to_bytes());
    server.handle_datagram(now, client, Bytes::from(recv));
    assert_eq!(
        drain_events(&mut server),
        [Event::Delivered {
            id,
            to: client,
            suspected_lost: false
        }]
    );
    let ack = drain_transmits(&mut server, now);
    assert_eq!(ack[0].bytes[0], 0xae);
    assert_eq!(&ack[0].bytes[1..], &parsed.identity().to_bytes());
}

#[test]
fn talks_to_the_original_server_as_its_client_did() {
    let server = addr(4324);
    let mut client = Endpoint::new(config(), 8).expect("valid");
    let now = Instant::now();
    let id = client
        .send(now, server, Bytes::from_static(b"first"))
        .expect("accepted");
    let data = drain_transmits(&mut client, now);
    let identity = Framing::default()
        .parse(&data[0].bytes)
        .expect("gtUDP")
        .identity();
    // The original server answers RECV(our identity), then its echo DATA
    // exactly as in the transcript (i=2), then ACKs our RECV (i=5).
    let mut recv = vec![0x5f];
    recv.extend_from_slice(&identity.to_bytes());
    client.handle_datagram(now, server, Bytes::from(recv));
    let from_server = transcript("server->client");
    let echo = from_server[1].clone();
    assert_eq!(&echo[5..], b"first thanks");
    client.handle_datagram(now, server, echo);
    let events = drain_events(&mut client);
    assert_eq!(
        events,
        [
            Event::Delivered {
                id,
                to: server,
                suspected_lost: false
            },
            Event::Received {
                from: server,
                payload: Bytes::from_static(b"first thanks")
            }
        ]
    );
    let out: Vec<Bytes> = drain_transmits(&mut client, now)
        .into_iter()
        .map(|d| d.bytes)
        .collect();
    let mut expected_ack = vec![0xae];
    expected_ack.extend_from_slice(&identity.to_bytes());
    assert_eq!(out.len(), 2);
    assert!(out.contains(&Bytes::from(expected_ack)));
    // The transcript's client answered the echo with exactly this RECV (i=3).
    assert!(out.contains(&transcript("client->server")[1]));
    client.handle_datagram(now, server, from_server[2].clone());
    assert_eq!(client.stats().dropped.ack_unknown, 0);
}

#[test]
fn every_original_framing_interoperates() {
    for (n, vector) in json("original-framing.json")["vectors"]
        .as_array()
        .expect("vectors")
        .iter()
        .enumerate()
    {
        let framing = Framing::new(
            &bytes(&vector["magic_hex"]),
            &bytes(&vector["type_data_hex"]),
            &bytes(&vector["type_recv_hex"]),
            &bytes(&vector["type_ack_hex"]),
        )
        .expect("the original's framings are valid");
        let mut config = config();
        config.framing = framing.clone();
        let mut endpoint = Endpoint::new(config, n as u128).expect("valid");
        let peer = addr(5000);
        let now = Instant::now();
        let data = bytes(&vector["data_packet_hex"]);
        endpoint.handle_datagram(now, peer, data.clone());
        let probe = drain_transmits(&mut endpoint, now);
        assert_eq!(probe.len(), 1, "a validation probe alone, vector {n}");
        let answer = answer_validation_probe(&framing, &probe[0].bytes, &data);
        endpoint.handle_datagram(now, peer, answer);
        assert_eq!(
            drain_events(&mut endpoint),
            [Event::Received {
                from: peer,
                payload: bytes(&vector["payload_hex"])
            }],
            "vector {n}"
        );
        let out = drain_transmits(&mut endpoint, now);
        assert_eq!(out.len(), 1, "the RECV, vector {n}");
        assert_eq!(
            out[0].bytes,
            bytes(&vector["recv_packet_hex"]),
            "vector {n}"
        );
        endpoint.handle_datagram(now, peer, bytes(&vector["ack_packet_hex"]));
        assert_eq!(endpoint.stats().dropped.ack_unknown, 0, "vector {n}");
        assert_eq!(endpoint.stats().invalid.total(), 0, "vector {n}");
    }
}

#[test]
fn other_framings_are_foreign() {
    let mut endpoint = Endpoint::new(config(), 1).expect("valid");
    let mut buf = Vec::new();
    Framing::with_magic(b"GT").encode_to_vec(
        &Packet::Data {
            identity: Identity::from_u32(1),
            payload: b"x",
        },
        &mut buf,
    );
    endpoint.handle_datagram(Instant::now(), addr(1), Bytes::from(buf));
    assert!(drain_events(&mut endpoint).is_empty());
    assert_eq!(endpoint.stats().invalid.total(), 1);
}
