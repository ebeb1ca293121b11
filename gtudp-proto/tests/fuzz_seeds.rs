//! Replays the committed fuzz seeds (`fuzz/seeds/<target>/`) through the
//! fuzz-target bodies, so `cargo test --features fuzzing` runs every seed and
//! every crash input added there as a regression test.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::path::{Path, PathBuf};

use gtudp_proto::fuzzing;
use gtudp_proto::wire::{NotGtudp, PacketKind};

fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(target);
    let mut seeds: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    seeds.sort();
    seeds
}

/// Runs `target` on every seed, naming the seed that panics.
fn replay(target: &str, body: fn(&[u8])) -> Vec<(PathBuf, Vec<u8>)> {
    let seeds = seeds(target);
    for (path, bytes) in &seeds {
        if std::panic::catch_unwind(|| body(bytes)).is_err() {
            panic!("fuzz target {target} panicked on {}", path.display());
        }
    }
    seeds
}

#[test]
fn parse_seeds_pass() {
    let seeds = replay("parse", fuzzing::parse);
    assert!(seeds.len() >= 12, "only {} parse seeds", seeds.len());
}

/// The seeds reach every outcome of parsing, so the fuzzer starts from all of
/// them and the replay above exercises every check in `fuzzing::parse`.
#[test]
fn parse_seeds_cover_every_outcome() {
    let mut kinds = Vec::new();
    let mut reasons = Vec::new();
    let mut refused_configs = 0;
    for (_, bytes) in seeds("parse") {
        match fuzzing::split_input(&bytes) {
            None => refused_configs += 1,
            Some((framing, datagram)) => match framing.parse(datagram) {
                Ok(packet) => kinds.push(packet.kind()),
                Err(reason) => reasons.push(reason),
            },
        }
    }
    for kind in PacketKind::ALL {
        assert!(kinds.contains(&kind), "no seed parses as {kind}");
    }
    for reason in NotGtudp::ALL {
        assert!(
            reasons.contains(&reason),
            "no seed is refused as {reason:?}"
        );
    }
    assert!(refused_configs > 0, "no seed has a refused configuration");
}

#[test]
fn split_input_reads_the_documented_layout() {
    // Default framing, then an ACK.
    let (framing, datagram) =
        fuzzing::split_input(&[0x00, 0x1d, 0x5f, 0xae, 0xae, 0x12, 0x34, 0x56, 0x7a]).unwrap();
    assert_eq!(framing, Default::default());
    assert_eq!(datagram, [0xae, 0x12, 0x34, 0x56, 0x7a]);

    // Magic "GT" (low nibble 2), 2-byte types (bits 4-5 = 1); bits 6-7 ignored.
    let input = b"\xd2GTd1r1a1rest";
    let (framing, datagram) = fuzzing::split_input(input).unwrap();
    assert_eq!(framing.magic(), b"GT");
    assert_eq!(framing.type_bytes(PacketKind::Data), b"d1");
    assert_eq!(framing.type_bytes(PacketKind::Recv), b"r1");
    assert_eq!(framing.type_bytes(PacketKind::Ack), b"a1");
    assert_eq!(datagram, b"rest");

    // Low nibble 15 is magic length 15 % 9 = 6; 4-byte types.
    let (framing, _) = fuzzing::split_input(b"\x3fMAGIC!DATARECVACK!").unwrap();
    assert_eq!(framing.magic(), b"MAGIC!");
    assert_eq!(framing.header_len(), 6 + 4 + 4);

    // Too short for its own configuration, or no configuration at all.
    assert!(fuzzing::split_input(b"\x3fMAGIC!DATARECVACK").is_none());
    assert!(fuzzing::split_input(b"").is_none());
    // Duplicate types.
    assert!(fuzzing::split_input(b"\x00\x01\x01\x02").is_none());
}

#[test]
fn endpoint_seeds_pass() {
    let seeds = replay("endpoint", fuzzing::endpoint);
    assert!(seeds.len() >= 24, "only {} endpoint seeds", seeds.len());
}

#[test]
fn exactly_once_seeds_pass() {
    let seeds = replay("exactly_once", fuzzing::exactly_once);
    assert!(seeds.len() >= 8, "only {} exactly_once seeds", seeds.len());
}

/// Exactly-once holds with unreachable reports, true or forged, among the
/// fuzz operations (op 12): seeded random inputs, one in four operations a
/// report about the peer or a stranger. Prints the seed of a failing input.
#[test]
fn exactly_once_holds_with_unreachable_reports() {
    for seed in 0..1_000u64 {
        let mut state = seed;
        let len = 64 + (next(&mut state) % 400) as usize;
        let mut input: Vec<u8> = (0..len).map(|_| next(&mut state) as u8).collect();
        for byte in input.iter_mut().skip(3) {
            if next(&mut state) % 4 == 0 {
                *byte = (*byte & 0xf0) | 12;
            }
        }
        if std::panic::catch_unwind(|| fuzzing::exactly_once(&input)).is_err() {
            panic!("exactly_once failed with unreachable reports, seed {seed}: {input:02x?}");
        }
    }
}

/// Exactly-once holds when the attacker gets an address A or B left (a NAT
/// handing the port on) and, with the roaming extension, spoofs with the
/// tokens A and B sent it there: seeded random inputs with roaming on, in
/// which one operation in three moves A or B, has the attacker take over
/// what one left, or spoofs from the attacker (with a learned token, when
/// its token byte says so). Prints the seed of a failing input.
///
/// A smoke test of the takeover's paths, not a search: random inputs this
/// short do not play the whole attack a token drawn from the address alone
/// allowed (a newcomer at B's former address learning the token B knows A
/// by, then proving it to B from its own address and answering B's probe
/// with the probe's identity). `tests/roaming.rs` plays that one.
#[test]
fn exactly_once_holds_when_the_attacker_takes_over_a_former_address() {
    let mut total = fuzzing::ExactlyOnceRun {
        roaming: true,
        ..Default::default()
    };
    for seed in 0..600u64 {
        let mut state = seed;
        let len = 96 + (next(&mut state) % 500) as usize;
        let mut input: Vec<u8> = (0..len).map(|_| next(&mut state) as u8).collect();
        // An odd endpoint seed (misc bit 3): the roaming extension.
        input[2] |= 0x08;
        for byte in input.iter_mut().skip(3) {
            match next(&mut state) % 12 {
                // A or B moves (x even), or the attacker takes over (x odd).
                0 => *byte = (*byte & 0xe0) | 15,
                1 => *byte = (*byte & 0xe0) | 0x10 | 15,
                // A spoof from C, D or the address taken over.
                2 | 3 => *byte = (*byte & 0xf0) | 6,
                _ => {}
            }
        }
        let run = match std::panic::catch_unwind(|| fuzzing::exactly_once_run(&input)) {
            Ok(run) => run,
            Err(_) => panic!("exactly_once failed after a takeover, seed {seed}: {input:02x?}"),
        };
        assert!(run.roaming, "seed {seed}");
        total.takeovers += run.takeovers;
        total.learned_token_spoofs += run.learned_token_spoofs;
        total.delivered += run.delivered;
    }
    // The inputs reach what they aim at.
    assert!(total.takeovers >= 100, "{total:?}");
    assert!(total.learned_token_spoofs >= 300, "{total:?}");
    assert!(total.delivered >= 150, "{total:?}");
}

/// The next value of a splitmix64 sequence at `state`: the seeded random
/// inputs of the tests above.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut x = *state;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
