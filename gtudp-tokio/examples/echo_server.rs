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

use std::process::ExitCode;

use clap::Parser;
use gtudp_testkit::cli::ServerArgs as Args;
use gtudp_tokio::Builder;
use tokio::task::JoinSet;

/// Echoes awaiting their outcome at once; past this the server stops
/// reading, and new DATA waits in the peer's retransmissions.
const MAX_ECHOES_IN_FLIGHT: usize = 4_096;

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
        "{}",
        gtudp_testkit::cli::server_result_line(received, echo_failures, &stats)
    );
    Ok(())
}
