//! The echo examples' command lines, the same for both adapters
//! ([`ClientArgs`], [`ServerArgs`]), and their helpers.

use std::net::SocketAddr;

use clap::Parser;
use gtudp_proto::wire::Framing;
use gtudp_proto::{Config, LargeMessages, MAX_UDP_PAYLOAD};

/// The echo clients' command line: send N payloads to a gtUDP echo server
/// and check the echoes.
#[derive(Parser, Debug)]
pub struct ClientArgs {
    /// The echo server's address.
    #[arg(long, default_value = "127.0.0.1:4000")]
    pub server: SocketAddr,
    /// The local address to bind (default `0.0.0.0:0`, or `[::]:0` for an
    /// IPv6 server).
    #[arg(long)]
    pub bind: Option<SocketAddr>,
    /// Messages to send.
    #[arg(long, default_value_t = 1_000)]
    pub count: u64,
    /// Bytes per payload (at least 8: each starts with its index; more
    /// than one datagram holds needs --large-messages).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(8..=16 << 20))]
    pub size: u64,
    /// Most messages awaiting their echo (or, with --oneway, their
    /// delivery) at once.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    pub concurrency: u64,
    /// Wait for Delivered instead of echoes (use against a `--sink` server).
    #[arg(long)]
    pub oneway: bool,
    /// Magic prefix, in hex (default: none).
    #[arg(long, value_parser = parse_hex)]
    pub magic: Option<Hex>,
    /// DATA,RECV,ACK type identifiers, in hex (default: 1d,5f,ae).
    #[arg(long, value_parser = parse_types)]
    pub types: Option<Types>,
    /// Seconds without progress (no outcome, no echo) before giving up on
    /// what is missing. Every exit is bounded by it: a server that confirms
    /// messages but never echoes them (it died between its RECV and its
    /// echo) ends the run after this long, with the result line.
    #[arg(long, default_value_t = 10)]
    pub wait_secs: u64,
    /// Enable the large-message extension (messages of up to 16 MiB, sent
    /// as fragments); the server must enable it too.
    #[arg(long)]
    pub large_messages: bool,
}

impl ClientArgs {
    /// The configuration: the framing asked for, datagrams large enough
    /// for `--size`.
    pub fn config(&self) -> Result<Config, String> {
        let mut config = config(self.magic.as_ref(), self.types.as_ref())?;
        if self.large_messages {
            config.large_messages = Some(large_messages(&config.framing));
            return Ok(config);
        }
        let needed = self.size as usize + config.framing.header_len();
        if needed > MAX_UDP_PAYLOAD {
            return Err(format!(
                "--size {} does not fit one datagram; add --large-messages (on the server too)",
                self.size
            ));
        }
        if needed > config.max_datagram_size {
            config.max_datagram_size = needed;
        }
        Ok(config)
    }

    /// The address to bind: `--bind`, or [`default_bind`] for the server.
    pub fn bind_addr(&self) -> SocketAddr {
        self.bind.unwrap_or_else(|| default_bind(self.server))
    }
}

/// The echo servers' command line: echo every gtUDP message back to its
/// sender.
#[derive(Parser, Debug)]
pub struct ServerArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:4000")]
    pub bind: SocketAddr,
    /// Exit after this many messages (once drained).
    #[arg(long)]
    pub count: Option<u64>,
    /// Only receive; send nothing back.
    #[arg(long)]
    pub sink: bool,
    /// Serve from this many SO_REUSEPORT sockets on the address (Linux),
    /// each with its own endpoint and task (or thread); default: one
    /// unsharded socket.
    #[arg(long)]
    pub shards: Option<usize>,
    /// With --shards: drive each shard on a thread of its own, serving it
    /// there (gtudp-tokio's `Builder::shard_threads`; the blocking server
    /// always does).
    #[arg(long, requires = "shards")]
    pub shard_threads: bool,
    /// Magic prefix, in hex (default: none).
    #[arg(long, value_parser = parse_hex)]
    pub magic: Option<Hex>,
    /// DATA,RECV,ACK type identifiers, in hex (default: 1d,5f,ae).
    #[arg(long, value_parser = parse_types)]
    pub types: Option<Types>,
    /// Enable the large-message extension (messages of up to 16 MiB, sent
    /// as fragments, reassembled within the default memory budget).
    #[arg(long)]
    pub large_messages: bool,
}

impl ServerArgs {
    /// The configuration: the framing asked for, datagrams of any size (to
    /// echo any message a client can send).
    pub fn config(&self) -> Result<Config, String> {
        let mut config = config(self.magic.as_ref(), self.types.as_ref())?;
        config.max_datagram_size = MAX_UDP_PAYLOAD;
        if self.large_messages {
            config.large_messages = Some(large_messages(&config.framing));
        }
        Ok(config)
    }
}

/// The large-message extension's defaults, with a fragment type that fits
/// `framing`.
fn large_messages(framing: &Framing) -> LargeMessages {
    LargeMessages::default().with_fragment_type(&LargeMessages::fragment_type_for(framing))
}

/// The servers' last line (on stderr):
/// `received=N echo_failures=F retransmissions=R duplicates_suppressed=D
/// data_unanswered=U`, where `U` counts DATA left unanswered because the
/// application's receive queue was full (its senders resend them).
pub fn server_result_line(
    received: u64,
    echo_failures: u64,
    stats: &gtudp_proto::EndpointStats,
) -> String {
    sharded_result_line(received, echo_failures, std::slice::from_ref(stats))
}

/// DATA an endpoint left unanswered while its receive queue was full.
fn data_unanswered(stats: &gtudp_proto::EndpointStats) -> u64 {
    stats.dropped.data_unanswered_full + stats.dropped.data_unanswered_paused
}

/// [`server_result_line`] for a sharded server: the counters summed over
/// its shards.
pub fn sharded_result_line(
    received: u64,
    echo_failures: u64,
    shards: &[gtudp_proto::EndpointStats],
) -> String {
    let retransmissions: u64 = shards.iter().map(|stats| stats.retransmissions).sum();
    let duplicates: u64 = shards.iter().map(|stats| stats.duplicates_suppressed).sum();
    let unanswered: u64 = shards.iter().map(data_unanswered).sum();
    format!(
        "received={received} echo_failures={echo_failures} retransmissions={retransmissions} duplicates_suppressed={duplicates} data_unanswered={unanswered}"
    )
}

/// Logs to stderr, filtered by `RUST_LOG` (e.g. `RUST_LOG=gtudp=debug`
/// shows every datagram; default `warn`).
pub fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

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

/// The address a client binds by default for `server`: `0.0.0.0:0` for an
/// IPv4 server, `[::]:0` for an IPv6 one.
pub fn default_bind(server: std::net::SocketAddr) -> std::net::SocketAddr {
    if server.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    }
}
