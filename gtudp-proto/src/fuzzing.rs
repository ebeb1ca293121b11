//! Fuzz-target bodies, as plain functions.
//!
//! `fuzz/` (cargo-fuzz) calls these from its targets, and `cargo test
//! --features fuzzing` replays the committed seeds in `fuzz/seeds/` through
//! them, so a crash found once stays a regression test. Only built with the
//! `fuzzing` feature; not part of the stable API.
//!
//! Inputs are raw bytes (no `arbitrary`), so the library keeps its short list
//! of dependencies and a seed can be written by hand.

use crate::wire::{Framing, FramingError, Identity, NotGtudp, Packet, PacketKind};

/// The most magic bytes a fuzz input can configure.
pub const MAX_MAGIC: usize = 8;

/// The longest type identifier a fuzz input can configure.
pub const MAX_TYPE: usize = 4;

/// Splits a fuzz input into the framing it configures and the datagram to parse.
///
/// The input is laid out as
///
/// ```text
/// | config (1 byte) | magic (M bytes) | DATA, RECV, ACK types (3 × T bytes) | datagram ... |
/// ```
///
/// where the low nibble of `config`, modulo 9, is M (0 to [`MAX_MAGIC`]) and
/// bits 4–5 plus one are T (1 to [`MAX_TYPE`]); bits 6–7 are ignored. For
/// example the original's default framing followed by an ACK is
/// `00 1d 5f ae | ae 12 34 56 7a`.
///
/// Returns `None` when the input is too short for its configuration or the
/// configuration is refused by [`Framing::new`]; refusal is only possible for
/// duplicate type identifiers, which this asserts.
pub fn split_input(data: &[u8]) -> Option<(Framing, &[u8])> {
    let (&config, rest) = data.split_first()?;
    let magic_len = usize::from(config & 0x0f) % (MAX_MAGIC + 1);
    let type_len = usize::from((config >> 4) & 0x03) + 1;
    let (magic, rest) = split(rest, magic_len)?;
    let (data_type, rest) = split(rest, type_len)?;
    let (recv_type, rest) = split(rest, type_len)?;
    let (ack_type, datagram) = split(rest, type_len)?;
    match Framing::new(magic, data_type, recv_type, ack_type) {
        Ok(framing) => Some((framing, datagram)),
        Err(FramingError::DuplicateType { .. }) => {
            assert!(
                data_type == recv_type || data_type == ack_type || recv_type == ack_type,
                "DuplicateType for distinct types"
            );
            None
        }
        Err(error) => panic!("non-empty types of equal length refused: {error}"),
    }
}

/// Fuzz target `parse`: parses a datagram under a framing taken from the input
/// (see [`split_input`]) and checks the result.
///
/// Panics if parsing panics, if a parsed packet does not re-encode to exactly
/// the datagram by every encoder (`encode`, `encode_to_vec`, `header` plus
/// payload), if the payload is copied rather than borrowed, or if the reason a
/// datagram is refused is not the one the protocol gives.
pub fn parse(data: &[u8]) {
    let Some((framing, datagram)) = split_input(data) else {
        return;
    };
    match framing.parse(datagram) {
        Ok(packet) => check_reencodes(&framing, &packet, datagram),
        Err(reason) => check_refusal(&framing, datagram, reason),
    }
}

/// Every encoder gives back exactly the bytes that parsed.
fn check_reencodes(framing: &Framing, packet: &Packet<'_>, datagram: &[u8]) {
    let header_len = framing.header_len();
    assert_eq!(framing.encoded_len(packet), datagram.len(), "encoded_len");

    let mut vec = Vec::new();
    framing.encode_to_vec(packet, &mut vec);
    assert_eq!(vec, datagram, "encode_to_vec");

    let mut buf = vec![0; datagram.len()];
    assert_eq!(
        framing.encode(packet, &mut buf),
        Ok(datagram.len()),
        "encode"
    );
    assert_eq!(buf, datagram, "encode");
    let short = datagram.len() - 1; // a datagram is never empty: header_len >= 5
    assert!(
        framing.encode(packet, &mut buf[..short]).is_err(),
        "encode into a short buffer"
    );

    let header = framing.header(packet.kind(), packet.identity());
    assert_eq!(&header[..], &datagram[..header_len], "header");
    assert_eq!(packet.payload(), &datagram[header_len..], "payload");
    match packet {
        Packet::Data { payload, .. } => assert!(
            core::ptr::eq(*payload, &datagram[header_len..]),
            "a DATA payload is borrowed from the datagram"
        ),
        Packet::Recv { .. } | Packet::Ack { .. } => {
            assert_eq!(datagram.len(), header_len, "RECV and ACK are header only");
        }
    }
}

/// The reason given is the first rule of the wire format the datagram breaks.
fn check_refusal(framing: &Framing, datagram: &[u8], reason: NotGtudp) {
    let header_len = framing.header_len();
    let magic = framing.magic();
    let expected = if datagram.len() < header_len {
        NotGtudp::TooShort
    } else if !datagram.starts_with(magic) {
        NotGtudp::WrongMagic
    } else {
        let type_field = &datagram[magic.len()..header_len - Identity::LEN];
        match PacketKind::ALL
            .into_iter()
            .find(|&kind| framing.type_bytes(kind) == type_field)
        {
            None => NotGtudp::UnknownType,
            Some(PacketKind::Recv | PacketKind::Ack) if datagram.len() > header_len => {
                NotGtudp::WrongLength
            }
            Some(kind) => panic!("a well-formed {kind} datagram was refused as {reason:?}"),
        }
    };
    assert_eq!(reason, expected, "reason a datagram is not gtUDP");
}

fn split(bytes: &[u8], at: usize) -> Option<(&[u8], &[u8])> {
    (bytes.len() >= at).then(|| bytes.split_at(at))
}
