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
//!
//! It serves like a careful public server: an echo to an address that has
//! not proven it receives our datagrams (its `PeerStats::validated` is false;
//! a spoofed source never proves it) goes in a pool of its own with a short
//! timeout, so a flood of spoofed DATA cannot starve echoes to proven
//! clients.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use gtudp_testkit::cli::ServerArgs as Args;
use gtudp_tokio::{Builder, SendOptions};
use tokio::task::JoinSet;

/// Echoes awaiting their outcome at once; past this the server stops
/// reading, and new DATA waits in the peer's retransmissions.
const MAX_ECHOES_IN_FLIGHT: usize = 4_096;
/// Echoes in flight to addresses that have not yet proven they receive our
/// datagrams (any source address can be spoofed). Kept apart, with their
/// own bound and a short timeout, so a flood of spoofed DATA cannot take
/// the places of echoes to proven peers. Every client starts unproven (it
/// proves itself with its first ACK), so an echo is never skipped: past
/// this bound the server waits for the oldest unproven echo to resolve.
const MAX_UNPROVEN_ECHOES_IN_FLIGHT: usize = 16_384;
/// How long an echo to an unproven address may take. A real client proves
/// itself within a round trip (its ACK for our RECV); a spoofed address
/// never does, and the endpoint fails such echoes with `Unvalidated` after
/// a few retransmission timeouts anyway.
const UNPROVEN_ECHO_TIMEOUT: Duration = Duration::from_secs(2);

#[tokio::main]
async fn main() -> ExitCode {
    gtudp_testkit::cli::init_logging();
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
    let config = args.config()?;
    let socket = Builder::new(config).bind(args.bind).await?;
    println!("listening on {}", socket.local_addr());

    let mut echoes = JoinSet::new();
    let mut unproven_echoes = JoinSet::new();
    let (mut received, mut echo_failures) = (0u64, 0u64);
    while args.count.is_none_or(|count| received < count) {
        tokio::select! {
            message = socket.recv() => {
                let Ok(message) = message else { break };
                received += 1;
                if !args.sink {
                    let proven = matches!(
                        socket.peer_stats(message.from).await,
                        Ok(Some(peer)) if peer.validated
                    );
                    let echo_socket = socket.clone();
                    if proven {
                        echoes.spawn(async move {
                            echo_socket.send_to(message.payload, message.from).await
                        });
                    } else {
                        let options = SendOptions::with_timeout(UNPROVEN_ECHO_TIMEOUT);
                        unproven_echoes.spawn(async move {
                            echo_socket
                                .send_to_with(message.payload, message.from, options)
                                .await
                        });
                    }
                }
            }
            Some(outcome) = echoes.join_next(), if !echoes.is_empty() => {
                if !matches!(outcome, Ok(Ok(()))) { echo_failures += 1; }
            }
            Some(outcome) = unproven_echoes.join_next(), if !unproven_echoes.is_empty() => {
                if !matches!(outcome, Ok(Ok(()))) { echo_failures += 1; }
            }
            _ = tokio::signal::ctrl_c() => break,
        }
        while unproven_echoes.len() >= MAX_UNPROVEN_ECHOES_IN_FLIGHT {
            if let Some(outcome) = unproven_echoes.join_next().await {
                if !matches!(outcome, Ok(Ok(()))) {
                    echo_failures += 1;
                }
            }
        }
        while echoes.len() >= MAX_ECHOES_IN_FLIGHT {
            if let Some(outcome) = echoes.join_next().await {
                if !matches!(outcome, Ok(Ok(()))) {
                    echo_failures += 1;
                }
            }
        }
    }
    for set in [&mut echoes, &mut unproven_echoes] {
        while let Some(outcome) = set.join_next().await {
            if !matches!(outcome, Ok(Ok(()))) {
                echo_failures += 1;
            }
        }
    }

    let summary = socket.close().await?;
    let stats = summary.stats.endpoint;
    eprintln!(
        "{}",
        gtudp_testkit::cli::server_result_line(received, echo_failures, &stats)
    );
    Ok(())
}
