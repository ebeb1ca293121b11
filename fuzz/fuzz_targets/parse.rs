//! Parses a datagram under a framing chosen by the input, and checks that
//! whatever parses re-encodes to the same bytes; see
//! `gtudp_proto::fuzzing::parse` for the input layout.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gtudp_proto::fuzzing::parse(data));
