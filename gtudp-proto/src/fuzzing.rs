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

// The `exactly_once` target lives in its own module, `fuzzing/exactly_once/`.
mod exactly_once;
pub use exactly_once::{exactly_once, exactly_once_run, ExactlyOnceRun};

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
/// bits 4–5 plus one are T (1 to [`MAX_TYPE`]); bit 6 turns the roaming
/// extension on (an 8-byte sender token follows the magic); bit 7 is
/// ignored. For
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
        Ok(framing) if config & 0x40 != 0 => Some((framing.with_roaming(), datagram)),
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
        Ok(packet) => {
            // Re-encoded with the token the datagram carries.
            let mut framing = framing.clone();
            if let Some(token) = framing.sender_token(datagram) {
                framing.set_token(token);
            }
            check_reencodes(&framing, &packet, datagram)
        }
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
        let type_field = &datagram[framing.prefix_len()..header_len - Identity::LEN];
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

/// Fuzz target `endpoint`: drives one [`Endpoint`](crate::Endpoint) with an
/// arbitrary sequence of operations decoded from the input, and checks what
/// holds without any model of the network.
///
/// The first byte picks a small configuration (framing, limits, foreign
/// delivery); then each operation is one byte whose value modulo 10 is the
/// operation, followed by its argument bytes:
///
/// | op | operation | arguments |
/// |---|---|---|
/// | 0, 1 | a datagram from one of four addresses | source, kind (DATA, RECV, ACK, raw bytes, replay of our last datagram), identity choice, length |
/// | 2 | time passes, then due timers run | step and its unit (µs, ms, 100 ms) |
/// | 3 | `send_with` to one of four addresses | destination, length, deadline, attempts |
/// | 4 | `cancel` of an id given out (or an unknown one) | index |
/// | 5 | `close` | — |
/// | 6 | `poll_transmit` a few times | count, batch size |
/// | 7 | `poll_event` a few times | count |
/// | 8 | `send_raw` | destination, length |
/// | 9 | `handle_timeout` now, due or not | — |
///
/// Missing argument bytes read as zero. Identities of datagrams are drawn
/// from those the endpoint sent or received, or from a small set, so
/// duplicates and matching RECV/ACK are common.
///
/// Panics if the endpoint panics; if a table exceeds its bound after any
/// operation; if a send resolves twice or an unknown id resolves; and if,
/// after the input, closing and running past the drain deadline does not
/// leave the endpoint closed with every table empty and every send resolved
/// exactly once.
pub fn endpoint(data: &[u8]) {
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    use bytes::Bytes;

    use crate::{Config, Endpoint, Event, MessageId, SendOptions, TableSizes};

    let mut input = Bytes8(data);
    let setup = input.next();
    let mut config = Config {
        framing: fuzz_framing(setup),
        ..Config::default()
    };
    config.initial_rto = Duration::from_millis(50);
    config.min_rto = Duration::from_millis(5);
    config.max_rto = Duration::from_millis(200);
    config.max_attempts = 4;
    config.recv_max_attempts = 3;
    config.remember_window = config.max_retry_span();
    config.datagram_lifetime = Duration::from_millis(300);
    config.initial_window = 1 + u32::from((setup >> 2) & 1);
    config.max_window = 4;
    config.peer_idle_timeout = Duration::from_millis(500);
    config.drain_timeout = Duration::from_secs(1);
    config.deliver_foreign = setup & 0x08 != 0;
    config.max_datagram_size = 64;
    set_tiny_limits(&mut config.limits, setup & 0x10 != 0);
    let framing = config.framing.clone();
    let max_payload = config.max_payload_size();
    let mut endpoint = match Endpoint::new(config, u128::from(setup)) {
        Ok(endpoint) => endpoint,
        Err(error) => panic!("fuzz configuration refused: {error}"),
    };

    let epoch = Instant::now();
    let mut elapsed = Duration::ZERO;
    let addresses: [std::net::SocketAddr; 4] = [
        ([10, 0, 0, 1], 1).into(),
        ([10, 0, 0, 2], 2).into(),
        ([10, 0, 0, 3], 3).into(),
        ([192, 168, 0, 1], 4).into(),
    ];
    let mut ids: Vec<MessageId> = Vec::new();
    let mut resolved: BTreeMap<MessageId, u32> = BTreeMap::new();
    let mut identities: Vec<Identity> = vec![Identity::from_u32(1), Identity::from_u32(2)];
    let mut last_out: Option<Vec<u8>> = None;
    let mut buf = Vec::new();

    let on_event = |event: Event, ids: &[MessageId], resolved: &mut BTreeMap<MessageId, u32>| {
        if let Event::Delivered { id, .. } | Event::Failed { id, .. } = event {
            assert!(ids.contains(&id), "outcome for {id}, never given out");
            let count = resolved.entry(id).or_insert(0);
            *count += 1;
            assert_eq!(*count, 1, "{id} resolved twice");
        }
    };

    while !input.is_empty() {
        let now = epoch + elapsed;
        match input.next() % 10 {
            0 | 1 => {
                let from = addresses[usize::from(input.next() % 4)];
                let kind = input.next() % 5;
                let choice = input.next();
                let identity = if choice & 0x80 != 0 {
                    Identity::from_u32(u32::from(choice & 7))
                } else {
                    identities[usize::from(choice) % identities.len()]
                };
                let len = usize::from(input.next() % 24);
                let mut datagram = Vec::new();
                match kind {
                    0 => {
                        let payload = input.take(len);
                        framing.encode_to_vec(&Packet::Data { identity, payload }, &mut datagram);
                    }
                    1 => framing.encode_to_vec(&Packet::Recv { identity }, &mut datagram),
                    2 => framing.encode_to_vec(&Packet::Ack { identity }, &mut datagram),
                    3 => datagram.extend_from_slice(input.take(len)),
                    _ => {
                        // Our last datagram, as if reflected back.
                        if let Some(bytes) = &last_out {
                            datagram.extend_from_slice(bytes);
                        }
                    }
                }
                if let Ok(packet) = framing.parse(&datagram) {
                    if identities.len() < 64 && !identities.contains(&packet.identity()) {
                        identities.push(packet.identity());
                    }
                }
                // Both ways in: owned, or borrowed from a receive buffer
                // as the adapters feed it.
                if choice & 0x20 != 0 {
                    // A hint only: the adapters give it each batch. Given
                    // twice, as a run from one sender, which it reads ahead.
                    endpoint.prefetch([(from, &datagram[..]), (from, &datagram[..])]);
                }
                if choice & 0x40 != 0 {
                    endpoint.handle_datagram_slice(now, from, &datagram);
                } else {
                    endpoint.handle_datagram(now, from, Bytes::from(datagram));
                }
            }
            2 => {
                let step = u64::from(input.next());
                elapsed += match input.next() % 3 {
                    0 => Duration::from_micros(step),
                    1 => Duration::from_millis(step),
                    _ => Duration::from_millis(step * 100),
                };
                let now = epoch + elapsed;
                while let Some(at) = endpoint.poll_timeout().filter(|&at| at <= now) {
                    endpoint.handle_timeout(at);
                }
            }
            3 => {
                let to = addresses[usize::from(input.next() % 4)];
                let len = usize::from(input.next()) % (max_payload + 8);
                let deadline = input.next();
                let attempts = input.next() % 6;
                let mut options = SendOptions::default();
                if deadline != 0 {
                    options.deadline = Some(now + Duration::from_millis(u64::from(deadline) * 4));
                }
                if attempts != 0 {
                    options.max_attempts = Some(u32::from(attempts));
                }
                let payload = Bytes::from(vec![0x5a; len]);
                match endpoint.send_with(now, to, payload, options) {
                    Ok(id) => {
                        assert!(!ids.contains(&id), "{id} given out twice");
                        ids.push(id);
                    }
                    Err(error) => {
                        assert_eq!(error.into_payload().len(), len, "payload handed back")
                    }
                }
            }
            4 => {
                let index = usize::from(input.next());
                let id = ids.get(index % (ids.len() + 1)).copied();
                if let Some(id) = id {
                    let outstanding = endpoint.cancel(id).is_ok();
                    let done = resolved.contains_key(&id);
                    assert!(!(outstanding && done), "{id} cancelled after it resolved");
                }
            }
            5 => endpoint.close(now),
            6 => {
                let count = input.next() % 8;
                let batch = usize::from(input.next() % 4) + 1;
                for _ in 0..count {
                    let Some(transmit) = endpoint.poll_transmit(now, batch, &mut buf) else {
                        break;
                    };
                    assert!(transmit.size <= buf.len());
                    for datagram in transmit.datagrams(&buf) {
                        if let Ok(packet) = framing.parse(datagram) {
                            if identities.len() < 64 && !identities.contains(&packet.identity()) {
                                identities.push(packet.identity());
                            }
                        }
                        last_out = Some(datagram.to_vec());
                    }
                }
            }
            7 => {
                for _ in 0..input.next() % 8 {
                    let Some(event) = endpoint.poll_event() else {
                        break;
                    };
                    on_event(event, &ids, &mut resolved);
                }
            }
            8 => {
                let to = addresses[usize::from(input.next() % 4)];
                let len = usize::from(input.next() % 16);
                let _ = endpoint.send_raw(to, Bytes::copy_from_slice(input.take(len)));
            }
            _ => endpoint.handle_timeout(now),
        }
        check_bounds(&endpoint);
    }

    // Close, and run past every deadline with the outputs drained.
    let now = epoch + elapsed;
    endpoint.close(now);
    let end = now + endpoint.config().drain_timeout + Duration::from_secs(1);
    loop {
        while endpoint.poll_transmit(end, 4, &mut buf).is_some() {}
        while let Some(event) = endpoint.poll_event() {
            on_event(event, &ids, &mut resolved);
        }
        check_bounds(&endpoint);
        match endpoint.poll_timeout().filter(|&at| at <= end) {
            Some(at) => endpoint.handle_timeout(at),
            None => break,
        }
    }
    endpoint.handle_timeout(end);
    while endpoint.poll_transmit(end, 4, &mut buf).is_some() {}
    while let Some(event) = endpoint.poll_event() {
        on_event(event, &ids, &mut resolved);
    }
    assert!(endpoint.is_closed(), "not closed after the drain deadline");
    assert_eq!(
        endpoint.table_sizes(),
        TableSizes::default(),
        "tables left after close"
    );
    for id in &ids {
        assert_eq!(resolved.get(id), Some(&1), "{id} never resolved");
    }
}

/// Every table within its configured bound.
fn check_bounds(endpoint: &crate::Endpoint) {
    if let Some(exceeded) = endpoint.table_sizes().exceeded(&endpoint.config().limits) {
        panic!("{exceeded}");
    }
}

/// Reads an input byte by byte; past its end, zeros.
struct Bytes8<'a>(&'a [u8]);

impl<'a> Bytes8<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn next(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&byte, rest)) => {
                self.0 = rest;
                byte
            }
            None => 0,
        }
    }

    fn take(&mut self, len: usize) -> &'a [u8] {
        let (taken, rest) = self.0.split_at(len.min(self.0.len()));
        self.0 = rest;
        taken
    }
}

/// The framing the low two bits of a fuzz input's setup byte pick: the
/// default, a magic prefix, or two-byte types. Shared by the fuzz targets.
pub(crate) fn fuzz_framing(setup: u8) -> Framing {
    match setup & 3 {
        0 | 1 => Framing::default(),
        2 => Framing::with_magic(b"GT"),
        _ => Framing::new(b"", b"DD", b"RR", b"AA").unwrap_or_default(),
    }
}

/// Limits small enough that a short input fills every table: `small` picks
/// the smaller of two sets. Shared by the fuzz targets.
pub(crate) fn set_tiny_limits(limits: &mut crate::Limits, small: bool) {
    limits.max_peers = if small { 2 } else { 3 };
    limits.max_unvalidated_peers = if small { 1 } else { 2 };
    limits.max_outstanding_messages = if small { 2 } else { 6 };
    limits.max_queued_per_peer = if small { 1 } else { 3 };
    limits.max_awaiting_ack = if small { 2 } else { 6 };
    limits.max_awaiting_ack_per_peer = if small { 1 } else { 4 };
    limits.max_remembered_bytes = if small { 600 } else { 4_096 };
    limits.max_remembered_bytes_per_peer = if small { 400 } else { 2_048 };
    limits.max_held_per_unvalidated_peer = if small { 1 } else { 2 };
    limits.max_held_bytes_unvalidated = if small { 80 } else { 200 };
    limits.max_unread = if small { 1 } else { 4 };
    limits.max_pending_control = if small { 1 } else { 4 };
    limits.max_pending_raw = if small { 1 } else { 2 };
}
