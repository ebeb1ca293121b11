//! Command-line helpers shared by the examples.
#![allow(dead_code, unreachable_pub)]

use gtudp_tokio::proto::wire::Framing;
use gtudp_tokio::Config;

/// Bytes given in hex on the command line (`--magic`).
#[derive(Clone, Debug)]
pub struct Hex(pub Vec<u8>);

/// `DATA,RECV,ACK` type identifiers given in hex (`--types`).
#[derive(Clone, Debug)]
pub struct Types(pub [Vec<u8>; 3]);

fn decode(text: &str) -> Result<Vec<u8>, String> {
    hex::decode(text.trim_start_matches("0x")).map_err(|error| format!("not hex: {error}"))
}

/// Parses hex bytes (`--magic`), allowing an empty string.
pub fn parse_hex(text: &str) -> Result<Hex, String> {
    decode(text).map(Hex)
}

/// Parses `DATA,RECV,ACK` type identifiers in hex (`--types`).
pub fn parse_types(text: &str) -> Result<Types, String> {
    let parts: Vec<Vec<u8>> = text.split(',').map(decode).collect::<Result<_, _>>()?;
    <[Vec<u8>; 3]>::try_from(parts)
        .map(Types)
        .map_err(|_| "expected three comma-separated hex values: DATA,RECV,ACK".to_owned())
}

/// A configuration with the given framing (the original's by default).
pub fn config(magic: Option<&Hex>, types: Option<&Types>) -> Result<Config, String> {
    let mut config = Config::default();
    let magic = magic.map_or(&[][..], |hex| &hex.0[..]);
    config.framing = match types.map(|types| &types.0) {
        Some([data, recv, ack]) => {
            Framing::new(magic, data, recv, ack).map_err(|error| error.to_string())?
        }
        None => Framing::with_magic(magic),
    };
    Ok(config)
}

/// Logs to stderr, filtered by `RUST_LOG` (e.g. `RUST_LOG=gtudp=debug`
/// shows every datagram).
pub fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}
