//! Property tests of the wire module over random framings and packets.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use gtudp_proto::wire::{
    BufferTooSmall, Framing, FramingError, Identity, NotGtudp, Packet, PacketKind,
};
use proptest::prelude::*;
use proptest::sample::Index;

/// The pieces of a valid framing, kept so tests can build datagrams by hand.
#[derive(Clone, Debug)]
struct Config {
    magic: Vec<u8>,
    /// DATA, RECV, ACK.
    types: [Vec<u8>; 3],
}

impl Config {
    fn framing(&self) -> Framing {
        let [data, recv, ack] = &self.types;
        Framing::new(&self.magic, data, recv, ack).unwrap()
    }

    fn type_len(&self) -> usize {
        self.types[0].len()
    }

    fn header_len(&self) -> usize {
        self.magic.len() + self.type_len() + 4
    }

    /// The datagram, written out field by field from the wire format.
    fn datagram(&self, packet: &OwnedPacket) -> Vec<u8> {
        let mut out = self.magic.clone();
        out.extend_from_slice(&self.types[kind_index(packet.kind)]);
        out.extend_from_slice(&packet.identity);
        out.extend_from_slice(&packet.payload);
        out
    }
}

fn kind_index(kind: PacketKind) -> usize {
    match kind {
        PacketKind::Data => 0,
        PacketKind::Recv => 1,
        PacketKind::Ack => 2,
    }
}

#[derive(Clone, Debug)]
struct OwnedPacket {
    kind: PacketKind,
    identity: [u8; 4],
    /// Empty unless DATA.
    payload: Vec<u8>,
}

impl OwnedPacket {
    fn packet(&self) -> Packet<'_> {
        let identity = Identity::from_bytes(self.identity);
        match self.kind {
            PacketKind::Data => Packet::Data {
                identity,
                payload: &self.payload,
            },
            PacketKind::Recv => Packet::Recv { identity },
            PacketKind::Ack => Packet::Ack { identity },
        }
    }
}

fn config() -> impl Strategy<Value = Config> {
    (prop::collection::vec(any::<u8>(), 0..=16), 1usize..=4)
        .prop_flat_map(|(magic, type_len)| {
            let ty = prop::collection::vec(any::<u8>(), type_len);
            (Just(magic), [ty.clone(), ty.clone(), ty])
        })
        .prop_filter("type identifiers must be distinct", |(_, [d, r, a])| {
            d != r && d != a && r != a
        })
        .prop_map(|(magic, types)| Config { magic, types })
}

fn kind() -> impl Strategy<Value = PacketKind> {
    prop::sample::select(PacketKind::ALL.to_vec())
}

fn packet() -> impl Strategy<Value = OwnedPacket> {
    (
        kind(),
        any::<[u8; 4]>(),
        prop::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(|(kind, identity, payload)| OwnedPacket {
            kind,
            identity,
            payload: if kind == PacketKind::Data {
                payload
            } else {
                Vec::new()
            },
        })
}

/// What `parse` must say about `datagram`, decided field by field from the
/// spec, independently of the implementation.
fn classify(config: &Config, datagram: &[u8]) -> Result<OwnedPacket, NotGtudp> {
    if datagram.len() < config.header_len() {
        return Err(NotGtudp::TooShort);
    }
    let (magic, rest) = datagram.split_at(config.magic.len());
    if magic != config.magic {
        return Err(NotGtudp::WrongMagic);
    }
    let (type_field, rest) = rest.split_at(config.type_len());
    let kind = PacketKind::ALL
        .into_iter()
        .find(|&k| config.types[kind_index(k)] == type_field)
        .ok_or(NotGtudp::UnknownType)?;
    let (identity, payload) = rest.split_at(4);
    if kind != PacketKind::Data && !payload.is_empty() {
        return Err(NotGtudp::WrongLength);
    }
    Ok(OwnedPacket {
        kind,
        identity: identity.try_into().unwrap(),
        payload: payload.to_vec(),
    })
}

/// Checks that a parse result agrees with [`classify`] and that a parsed
/// packet re-encodes to the very same bytes.
fn check_parse(config: &Config, framing: &Framing, datagram: &[u8]) -> Result<(), TestCaseError> {
    let parsed = framing.parse(datagram);
    match classify(config, datagram) {
        Ok(expected) => prop_assert_eq!(parsed, Ok(expected.packet())),
        Err(reason) => prop_assert_eq!(parsed, Err(reason)),
    }
    if let Ok(packet) = parsed {
        let mut out = Vec::new();
        framing.encode_to_vec(&packet, &mut out);
        prop_assert_eq!(&out[..], datagram);
        prop_assert_eq!(framing.encoded_len(&packet), datagram.len());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn framing_reports_its_configuration(config in config()) {
        let framing = config.framing();
        prop_assert_eq!(framing.magic(), &config.magic[..]);
        for kind in PacketKind::ALL {
            prop_assert_eq!(framing.type_bytes(kind), &config.types[kind_index(kind)][..]);
        }
        prop_assert_eq!(framing.header_len(), config.header_len());
    }

    #[test]
    fn encode_writes_the_wire_format_and_parse_reads_it_back(
        config in config(),
        owned in packet(),
        prefix in prop::collection::vec(any::<u8>(), 0..8),
        slack in 0usize..8,
    ) {
        let framing = config.framing();
        let packet = owned.packet();
        let expected = config.datagram(&owned);

        prop_assert_eq!(framing.encoded_len(&packet), expected.len());

        // encode_to_vec appends after what the vector already holds.
        let mut vec = prefix.clone();
        framing.encode_to_vec(&packet, &mut vec);
        prop_assert_eq!(&vec[..prefix.len()], &prefix[..]);
        prop_assert_eq!(&vec[prefix.len()..], &expected[..]);

        // encode writes at the start of a large enough buffer and no further.
        let mut buf = vec![0x5a; expected.len() + slack];
        prop_assert_eq!(framing.encode(&packet, &mut buf), Ok(expected.len()));
        prop_assert_eq!(&buf[..expected.len()], &expected[..]);
        prop_assert!(buf[expected.len()..].iter().all(|&b| b == 0x5a));

        // header() + payload is the same datagram.
        let header = framing.header(packet.kind(), packet.identity());
        prop_assert_eq!(header.len(), framing.header_len());
        let mut vectored = header.to_vec();
        vectored.extend_from_slice(packet.payload());
        prop_assert_eq!(&vectored, &expected);

        // And it parses back to the packet, a DATA borrowing its payload in place.
        let parsed = framing.parse(&expected);
        prop_assert_eq!(parsed, Ok(packet));
        if let Ok(Packet::Data { payload, .. }) = parsed {
            prop_assert!(core::ptr::eq(payload, &expected[framing.header_len()..]));
        }
    }

    #[test]
    fn encode_refuses_a_short_buffer(
        config in config(),
        owned in packet(),
        short in any::<Index>(),
    ) {
        let framing = config.framing();
        let packet = owned.packet();
        let needed = framing.encoded_len(&packet);
        let available = short.index(needed); // 0..needed
        let mut buf = vec![0x5a; available];
        prop_assert_eq!(
            framing.encode(&packet, &mut buf),
            Err(BufferTooSmall { needed, available })
        );
        prop_assert!(buf.iter().all(|&b| b == 0x5a), "a refused encode wrote nothing");
    }

    #[test]
    fn arbitrary_bytes_parse_without_panicking(
        config in config(),
        datagram in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        check_parse(&config, &config.framing(), &datagram)?;
    }

    /// Random bytes rarely get past the magic; these start from a real header
    /// and then damage it, so every outcome is reached.
    #[test]
    fn damaged_datagrams_parse_as_the_spec_says(
        config in config(),
        owned in packet(),
        flip in any::<Index>(),
        xor in 1u8..,
        extra in prop::collection::vec(any::<u8>(), 0..4),
        cut in any::<Index>(),
    ) {
        let framing = config.framing();
        let mut datagram = config.datagram(&owned);
        let at = flip.index(datagram.len());
        datagram[at] ^= xor;
        check_parse(&config, &framing, &datagram)?;
        datagram.extend_from_slice(&extra);
        check_parse(&config, &framing, &datagram)?;
        datagram.truncate(cut.index(datagram.len() + 1));
        check_parse(&config, &framing, &datagram)?;
    }

    #[test]
    fn truncated_datagrams_are_too_short(
        config in config(),
        owned in packet(),
        cut in any::<Index>(),
    ) {
        let framing = config.framing();
        let datagram = config.datagram(&owned);
        let len = cut.index(config.header_len()); // 0..header_len
        prop_assert_eq!(framing.parse(&datagram[..len]), Err(NotGtudp::TooShort));
    }

    /// gtUDP has no length field: a DATA cut anywhere after its header is a
    /// DATA with a shorter payload.
    #[test]
    fn truncated_data_keeps_a_prefix_of_its_payload(
        config in config(),
        identity in any::<[u8; 4]>(),
        payload in prop::collection::vec(any::<u8>(), 0..64),
        cut in any::<Index>(),
    ) {
        let framing = config.framing();
        let owned = OwnedPacket { kind: PacketKind::Data, identity, payload };
        let datagram = config.datagram(&owned);
        let keep = cut.index(owned.payload.len() + 1);
        let parsed = framing.parse(&datagram[..config.header_len() + keep]);
        prop_assert_eq!(
            parsed,
            Ok(Packet::Data { identity: Identity::from_bytes(identity), payload: &owned.payload[..keep] })
        );
    }

    #[test]
    fn recv_and_ack_with_extra_bytes_are_wrong_length(
        config in config(),
        ack in any::<bool>(),
        identity in any::<[u8; 4]>(),
        extra in prop::collection::vec(any::<u8>(), 1..32),
    ) {
        let framing = config.framing();
        let kind = if ack { PacketKind::Ack } else { PacketKind::Recv };
        let mut datagram = config.datagram(&OwnedPacket { kind, identity, payload: Vec::new() });
        prop_assert!(framing.parse(&datagram).is_ok());
        datagram.extend_from_slice(&extra);
        prop_assert_eq!(framing.parse(&datagram), Err(NotGtudp::WrongLength));
    }

    #[test]
    fn wrong_magic_is_wrong_magic(
        config in config().prop_filter("needs a magic", |c| !c.magic.is_empty()),
        owned in packet(),
        flip in any::<Index>(),
        xor in 1u8..,
    ) {
        let framing = config.framing();
        let mut datagram = config.datagram(&owned);
        datagram[flip.index(config.magic.len())] ^= xor;
        prop_assert_eq!(framing.parse(&datagram), Err(NotGtudp::WrongMagic));
    }

    #[test]
    fn unknown_type_is_unknown_type(
        config in config(),
        owned in packet(),
        unknown in prop::collection::vec(any::<u8>(), 4),
    ) {
        let unknown = &unknown[..config.type_len()];
        prop_assume!(config.types.iter().all(|t| t != unknown));
        let framing = config.framing();
        let mut datagram = config.datagram(&owned);
        let at = config.magic.len();
        datagram[at..at + unknown.len()].copy_from_slice(unknown);
        prop_assert_eq!(framing.parse(&datagram), Err(NotGtudp::UnknownType));
    }

    #[test]
    fn framing_refuses_an_empty_type(
        magic in prop::collection::vec(any::<u8>(), 0..=16),
        types in [
            prop::collection::vec(any::<u8>(), 0..=3),
            prop::collection::vec(any::<u8>(), 0..=3),
            prop::collection::vec(any::<u8>(), 0..=3),
        ],
    ) {
        let first_empty = PacketKind::ALL.into_iter().find(|&k| types[kind_index(k)].is_empty());
        prop_assume!(first_empty.is_some());
        let [data, recv, ack] = &types;
        prop_assert_eq!(
            Framing::new(&magic, data, recv, ack),
            Err(FramingError::EmptyType { kind: first_empty.unwrap() })
        );
    }

    #[test]
    fn framing_refuses_types_of_different_lengths(
        magic in prop::collection::vec(any::<u8>(), 0..=16),
        types in [
            prop::collection::vec(any::<u8>(), 1..=5),
            prop::collection::vec(any::<u8>(), 1..=5),
            prop::collection::vec(any::<u8>(), 1..=5),
        ],
    ) {
        let lengths = [types[0].len(), types[1].len(), types[2].len()];
        prop_assume!(lengths[0] != lengths[1] || lengths[0] != lengths[2]);
        let [data, recv, ack] = &types;
        prop_assert_eq!(
            Framing::new(&magic, data, recv, ack),
            Err(FramingError::TypeLengthMismatch { lengths })
        );
    }

    #[test]
    fn framing_refuses_duplicate_types(
        config in config(),
        pair in 0usize..4,
    ) {
        // Copy one identifier over another; pair 3 makes all three the same.
        let mut types = config.types.clone();
        let (first, second) = match pair {
            0 => { types[1] = types[0].clone(); (PacketKind::Data, PacketKind::Recv) }
            1 => { types[2] = types[0].clone(); (PacketKind::Data, PacketKind::Ack) }
            2 => { types[2] = types[1].clone(); (PacketKind::Recv, PacketKind::Ack) }
            _ => {
                types[1] = types[0].clone();
                types[2] = types[0].clone();
                (PacketKind::Data, PacketKind::Recv)
            }
        };
        let [data, recv, ack] = &types;
        prop_assert_eq!(
            Framing::new(&config.magic, data, recv, ack),
            Err(FramingError::DuplicateType { first, second })
        );
    }
}

/// A too-short datagram is `TooShort` even when its first bytes already
/// contradict the magic: length is checked first.
#[test]
fn length_is_checked_before_magic() {
    let framing = Framing::with_magic(b"GT");
    assert_eq!(framing.parse(b""), Err(NotGtudp::TooShort));
    assert_eq!(
        framing.parse(b"XX\x1d\x00\x00\x00"),
        Err(NotGtudp::TooShort)
    );
    assert_eq!(
        framing.parse(b"XX\x1d\x00\x00\x00\x00"),
        Err(NotGtudp::WrongMagic)
    );
    assert_eq!(
        framing.parse(b"GT\x1d\x00\x00\x00\x00"),
        Ok(Packet::Data {
            identity: Identity::from_u32(0),
            payload: b"",
        })
    );
}

#[test]
fn framing_errors_say_what_is_wrong() {
    let empty = Framing::new(b"", b"\x01", b"", b"\x03").unwrap_err();
    assert_eq!(
        empty,
        FramingError::EmptyType {
            kind: PacketKind::Recv
        }
    );
    assert!(empty.to_string().contains("RECV"), "{empty}");

    let mismatch = Framing::new(b"", b"\x01", b"\x02\x02", b"\x03").unwrap_err();
    assert!(
        mismatch
            .to_string()
            .contains("DATA has 1 bytes, RECV 2 and ACK 1"),
        "{mismatch}"
    );

    let duplicate = Framing::new(b"", b"\x01", b"\x02", b"\x02").unwrap_err();
    assert!(
        duplicate.to_string().contains("RECV and ACK"),
        "{duplicate}"
    );
}
