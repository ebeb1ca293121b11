//! A gtUDP echo server: every message received is sent back to its sender
//! with guaranteed delivery.
//!
//! ```text
//! cargo run --release -p gtudp-tokio --example echo_server -- --bind 127.0.0.1:4000 [--count N] [--sink]
//! ```
//!
//! Prints `listening on ADDR` once ready. With `--sink` it only receives.
//! With `--count N` it exits 0 after N messages, once every echo resolved
//! and the socket drained.

#[path = "common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use gtudp_tokio::proto::MAX_UDP_PAYLOAD;
use gtudp_tokio::Builder;
use tokio::task::JoinSet;

/// Echo every gtUDP message back to its sender.
#[derive(Parser, Debug)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:4000")]
    bind: SocketAddr,
    /// Exit after this many messages (once drained).
    #[arg(long)]
    count: Option<u64>,
    /// Only receive; send nothing back.
    #[arg(long)]
    sink: bool,
    /// Magic prefix, in hex (default: none).
    #[arg(long, value_parser = common::parse_hex)]
    magic: Option<common::Hex>,
    /// DATA,RECV,ACK type identifiers, in hex (default: 1d,5f,ae).
    #[arg(long, value_parser = common::parse_types)]
    types: Option<common::Types>,
}

/// Echoes awaiting their outcome at once; past this the server stops
/// reading, and new DATA waits in the peer's retransmissions.
const MAX_ECHOES_IN_FLIGHT: usize = 4_096;

#[tokio::main]
async fn main() -> ExitCode {
    common::init_logging();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("echo_server: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut config = common::config(args.magic.as_ref(), args.types.as_ref())?;
    // Echo any message a client can send.
    config.max_datagram_size = MAX_UDP_PAYLOAD;
    let socket = Builder::new(config).bind(args.bind).await?;
    println!("listening on {}", socket.local_addr());

    let mut echoes = JoinSet::new();
    let (mut received, mut echo_failures) = (0u64, 0u64);
    while args.count.is_none_or(|count| received < count) {
        tokio::select! {
            message = socket.recv() => {
                let Ok(message) = message else { break };
                received += 1;
                if !args.sink {
                    let socket = socket.clone();
                    echoes.spawn(async move {
                        socket.send_to(message.payload, message.from).await
                    });
                }
            }
            Some(outcome) = echoes.join_next(), if !echoes.is_empty() => {
                if !matches!(outcome, Ok(Ok(()))) { echo_failures += 1; }
            }
            _ = tokio::signal::ctrl_c() => break,
        }
        while echoes.len() >= MAX_ECHOES_IN_FLIGHT {
            if let Some(outcome) = echoes.join_next().await {
                if !matches!(outcome, Ok(Ok(()))) {
                    echo_failures += 1;
                }
            }
        }
    }
    while let Some(outcome) = echoes.join_next().await {
        if !matches!(outcome, Ok(Ok(()))) {
            echo_failures += 1;
        }
    }
    let summary = socket.close().await?;
    let stats = summary.stats.endpoint;
    eprintln!(
        "received={received} echo_failures={echo_failures} retransmissions={} duplicates_suppressed={}",
        stats.retransmissions, stats.duplicates_suppressed
    );
    Ok(())
}
