//! Drives one endpoint with an arbitrary sequence of operations (datagrams
//! from a few addresses, time steps, sends, cancels, close) and checks that
//! nothing panics, every table stays bounded and each send resolves once;
//! see `gtudp_proto::fuzzing::endpoint` for the input layout.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gtudp_proto::fuzzing::endpoint(data));
