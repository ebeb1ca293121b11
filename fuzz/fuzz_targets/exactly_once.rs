//! Two endpoints send each other tagged messages over a network the input
//! drives (loss, duplication, reordering, replays within the datagram
//! lifetime, spoofed injections, time), and an oracle checks exactly-once
//! delivery; see `gtudp_proto::fuzzing::exactly_once` for the input layout.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gtudp_proto::fuzzing::exactly_once(data));
