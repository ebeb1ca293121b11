//! Wire compatibility with the original Python gtUDP.
//!
//! `vectors/original-framing.json` holds datagrams built by the original's own
//! frame builders; `vectors/original-echo-transcript.json` holds every datagram
//! of a live exchange between two instances of the original. Our framing must
//! produce and accept exactly those bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed lookup is a failed test

use std::collections::HashMap;

use gtudp_proto::wire::{Framing, Identity, Packet, PacketKind};
use serde_json::Value;

const FRAMING_VECTORS: &str = include_str!("vectors/original-framing.json");
const ECHO_TRANSCRIPT: &str = include_str!("vectors/original-echo-transcript.json");

/// The counter the original's frame builder held when it built each vector.
const VECTOR_COUNTER: u32 = 0x1234_5679;

/// Adler-32 (RFC 1950), as Python's `zlib.adler32`.
fn adler32(bytes: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in bytes {
        a = (a + u32::from(byte)) % MOD;
        b = (b + a) % MOD;
    }
    (b << 16) | a
}

/// The original's identity rule: big-endian `(adler32(payload) + counter) mod 2^32`.
fn original_identity(payload: &[u8], counter: u32) -> Identity {
    Identity::from_u32(adler32(payload).wrapping_add(counter))
}

fn hex_field(value: &Value, field: &str) -> Vec<u8> {
    let text = value[field]
        .as_str()
        .unwrap_or_else(|| panic!("field {field} missing or not a string in {value}"));
    hex::decode(text).unwrap_or_else(|e| panic!("field {field} is not hex ({e}) in {value}"))
}

struct Vector {
    magic: Vec<u8>,
    types: [Vec<u8>; 3],
    payload: Vec<u8>,
    identity: Identity,
    /// DATA, RECV, ACK datagrams.
    datagrams: [Vec<u8>; 3],
}

impl Vector {
    fn framing(&self) -> Framing {
        let [data, recv, ack] = &self.types;
        Framing::new(&self.magic, data, recv, ack).expect("a vector's framing is valid")
    }

    fn packets(&self) -> [Packet<'_>; 3] {
        [
            Packet::Data {
                identity: self.identity,
                payload: &self.payload,
            },
            Packet::Recv {
                identity: self.identity,
            },
            Packet::Ack {
                identity: self.identity,
            },
        ]
    }
}

fn framing_vectors() -> Vec<Vector> {
    let root: Value = serde_json::from_str(FRAMING_VECTORS).unwrap();
    let vectors: Vec<Vector> = root["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| Vector {
            magic: hex_field(v, "magic_hex"),
            types: [
                hex_field(v, "type_data_hex"),
                hex_field(v, "type_recv_hex"),
                hex_field(v, "type_ack_hex"),
            ],
            payload: hex_field(v, "payload_hex"),
            identity: Identity::from_bytes(hex_field(v, "identity_hex").try_into().unwrap()),
            datagrams: [
                hex_field(v, "data_packet_hex"),
                hex_field(v, "recv_packet_hex"),
                hex_field(v, "ack_packet_hex"),
            ],
        })
        .collect();
    // Guard against a truncated file silently shrinking the test.
    assert_eq!(
        vectors.len(),
        8,
        "original-framing.json should hold 8 vectors"
    );
    vectors
}

#[test]
fn vectors_cover_several_configurations() {
    let vectors = framing_vectors();
    let mut magic_lengths: Vec<usize> = vectors.iter().map(|v| v.magic.len()).collect();
    magic_lengths.sort_unstable();
    magic_lengths.dedup();
    let mut type_lengths: Vec<usize> = vectors.iter().map(|v| v.types[0].len()).collect();
    type_lengths.sort_unstable();
    type_lengths.dedup();
    assert_eq!(magic_lengths, [0, 2, 6]);
    assert_eq!(type_lengths, [1, 2, 4]);
    assert!(vectors.iter().any(|v| v.payload.is_empty()));
    assert!(vectors.iter().any(|v| v.payload.len() == 256));
}

#[test]
fn encode_reproduces_the_originals_bytes() {
    for (n, vector) in framing_vectors().iter().enumerate() {
        let framing = vector.framing();
        for (packet, expected) in vector.packets().iter().zip(&vector.datagrams) {
            let what = format!("vector {n}, {}", packet.kind());

            assert_eq!(
                framing.encoded_len(packet),
                expected.len(),
                "{what}: encoded_len"
            );

            // Into a caller's buffer, larger than needed: the tail is untouched.
            let mut buf = vec![0xa5; expected.len() + 7];
            let len = framing.encode(packet, &mut buf).unwrap();
            assert_eq!(len, expected.len(), "{what}: encode length");
            assert_eq!(
                hex::encode(&buf[..len]),
                hex::encode(expected),
                "{what}: encode"
            );
            assert!(
                buf[len..].iter().all(|&b| b == 0xa5),
                "{what}: encode wrote past the packet"
            );

            // Appended to a vector that already holds bytes.
            let mut out = b"prefix".to_vec();
            framing.encode_to_vec(packet, &mut out);
            assert_eq!(
                &out[..6],
                b"prefix",
                "{what}: encode_to_vec clobbered the vector"
            );
            assert_eq!(
                hex::encode(&out[6..]),
                hex::encode(expected),
                "{what}: encode_to_vec"
            );

            // Header from the framing, payload from wherever it lives.
            let header = framing.header(packet.kind(), packet.identity());
            assert_eq!(header.len(), framing.header_len(), "{what}: header length");
            let mut vectored = header.to_vec();
            vectored.extend_from_slice(packet.payload());
            assert_eq!(
                hex::encode(&vectored),
                hex::encode(expected),
                "{what}: header + payload"
            );
        }
    }
}

#[test]
fn parse_reads_the_originals_bytes() {
    for (n, vector) in framing_vectors().iter().enumerate() {
        let framing = vector.framing();
        for (packet, datagram) in vector.packets().iter().zip(&vector.datagrams) {
            let parsed = framing.parse(datagram);
            assert_eq!(parsed, Ok(*packet), "vector {n}, {}", packet.kind());
            // The payload is borrowed from the datagram, not copied.
            let payload = parsed.unwrap().payload();
            if !payload.is_empty() {
                let at = framing.header_len();
                assert!(
                    core::ptr::eq(payload, &datagram[at..]),
                    "vector {n}: payload copied"
                );
            }
        }
    }
}

#[test]
fn default_framing_is_the_originals() {
    let vectors = framing_vectors();
    let defaults: Vec<&Vector> = vectors
        .iter()
        .filter(|v| v.magic.is_empty() && v.types == [[0x1d], [0x5f], [0xae]].map(Vec::from))
        .collect();
    assert!(
        !defaults.is_empty(),
        "the vectors include the default configuration"
    );
    for vector in defaults {
        assert_eq!(Framing::default(), vector.framing());
        for (packet, datagram) in vector.packets().iter().zip(&vector.datagrams) {
            assert_eq!(Framing::default().parse(datagram), Ok(*packet));
        }
    }
    assert_eq!(Framing::DEFAULT_DATA, 0x1d);
    assert_eq!(Framing::DEFAULT_RECV, 0x5f);
    assert_eq!(Framing::DEFAULT_ACK, 0xae);
}

#[test]
fn with_magic_keeps_the_default_types() {
    let framing = Framing::with_magic(b"GTUDP!");
    assert_eq!(framing.magic(), b"GTUDP!");
    assert_eq!(framing.type_bytes(PacketKind::Data), [0x1d]);
    assert_eq!(framing.type_bytes(PacketKind::Recv), [0x5f]);
    assert_eq!(framing.type_bytes(PacketKind::Ack), [0xae]);
    assert_eq!(framing.header_len(), 6 + 1 + 4);
}

#[test]
fn adler32_matches_known_values() {
    // RFC 1950 / zlib reference values.
    assert_eq!(adler32(b""), 1);
    assert_eq!(adler32(b"a"), 0x0062_0062);
    assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
    // Long enough for both sums to wrap modulo 65521.
    assert_eq!(adler32(&[0xff; 6000]), 0xa497_59ea);
}

#[test]
fn vector_identities_follow_the_originals_rule() {
    for (n, vector) in framing_vectors().iter().enumerate() {
        assert_eq!(
            original_identity(&vector.payload, VECTOR_COUNTER),
            vector.identity,
            "vector {n}: identity is not (adler32(payload) + 0x12345679) mod 2^32"
        );
    }
}

struct Exchanged {
    index: u64,
    dir: String,
    datagram: Vec<u8>,
    dropped: bool,
}

fn transcript() -> Vec<Exchanged> {
    let root: Value = serde_json::from_str(ECHO_TRANSCRIPT).unwrap();
    let datagrams: Vec<Exchanged> = root["datagrams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| Exchanged {
            index: d["i"].as_u64().unwrap(),
            dir: d["dir"].as_str().unwrap().to_owned(),
            datagram: hex_field(d, "hex"),
            dropped: d["dropped"].as_bool().unwrap(),
        })
        .collect();
    assert_eq!(
        datagrams.len(),
        15,
        "the transcript should hold 15 datagrams"
    );
    datagrams
}

#[test]
fn transcript_datagrams_parse_as_their_type_byte_says() {
    let framing = Framing::default();
    let mut kinds = HashMap::new();
    for d in transcript() {
        let bytes = &d.datagram;
        let identity = Identity::from_bytes(bytes[1..5].try_into().unwrap());
        let expected = match bytes[0] {
            0x1d => Packet::Data {
                identity,
                payload: &bytes[5..],
            },
            0x5f => Packet::Recv { identity },
            0xae => Packet::Ack { identity },
            other => panic!("datagram {}: unexpected type byte {other:#04x}", d.index),
        };
        assert_eq!(framing.parse(bytes), Ok(expected), "datagram {}", d.index);
        *kinds.entry(expected.kind()).or_insert(0) += 1;
    }
    // 6 DATA (4 messages, 2 resent), 5 RECV (1 resent), 4 ACK.
    assert_eq!(kinds[&PacketKind::Data], 6);
    assert_eq!(kinds[&PacketKind::Recv], 5);
    assert_eq!(kinds[&PacketKind::Ack], 4);
}

/// The transcript is a coherent exchange: every RECV names a DATA that went the
/// other way, every ACK names a RECV that went the other way, and the payloads
/// are the echo client's and server's messages.
#[test]
fn transcript_is_a_coherent_exchange() {
    let framing = Framing::default();
    let datagrams = transcript();
    let mut sent: Vec<(String, Packet<'_>)> = Vec::new();
    for d in &datagrams {
        let packet = framing.parse(&d.datagram).unwrap();
        let reply_to = |kind: PacketKind| {
            sent.iter().any(|(dir, p)| {
                *dir != d.dir && p.kind() == kind && p.identity() == packet.identity()
            })
        };
        match packet.kind() {
            PacketKind::Data => {}
            PacketKind::Recv => {
                assert!(reply_to(PacketKind::Data), "RECV {} names no DATA", d.index)
            }
            PacketKind::Ack => assert!(reply_to(PacketKind::Recv), "ACK {} names no RECV", d.index),
        }
        sent.push((d.dir.clone(), packet));
    }

    let payloads = |dir: &str| -> Vec<&[u8]> {
        let mut seen: Vec<&[u8]> = Vec::new();
        for (d, p) in &sent {
            if d == dir && p.kind() == PacketKind::Data && !seen.contains(&p.payload()) {
                seen.push(p.payload());
            }
        }
        seen
    };
    assert_eq!(payloads("client->server"), [&b"first"[..], b"second"]);
    assert_eq!(
        payloads("server->client"),
        [&b"first thanks"[..], b"second thanks"]
    );
    assert!(
        datagrams.iter().any(|d| d.dropped),
        "the relay dropped some datagrams"
    );
}

/// Each instance of the original numbers its messages with a counter that
/// starts at a random value and goes up by one per message; a resent DATA keeps
/// its identity.
#[test]
fn transcript_identities_follow_the_originals_rule() {
    let framing = Framing::default();
    let mut counters: HashMap<String, Vec<(Vec<u8>, u32)>> = HashMap::new();
    for d in transcript() {
        if let Ok(Packet::Data { identity, payload }) = framing.parse(&d.datagram) {
            let counter = identity.to_u32().wrapping_sub(adler32(payload));
            let messages = counters.entry(d.dir).or_default();
            match messages.iter().find(|(p, _)| p == payload) {
                Some(&(_, first)) => {
                    assert_eq!(counter, first, "datagram {}: resend renamed", d.index)
                }
                None => messages.push((payload.to_vec(), counter)),
            }
        }
    }
    assert_eq!(counters.len(), 2, "both ends sent DATA");
    for (dir, messages) in &counters {
        assert_eq!(messages.len(), 2, "{dir}: two messages");
        let (first, second) = (messages[0].1, messages[1].1);
        assert_eq!(
            second,
            first.wrapping_add(1),
            "{dir}: counters {first:#x}, {second:#x}"
        );
    }
}
