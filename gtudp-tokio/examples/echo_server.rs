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
//! It serves like a careful public server. Any source address can be
//! spoofed, so an echo to an address that has not proven it receives our
//! datagrams (its `PeerStats::validated` is false) is sent with
//! `SendOptions::once_validated`: the endpoint sends nothing to it until it
//! answers its validation probe (an honest client does within a round trip,
//! and its echo then leaves at once), and fails it as `Unvalidated` after
//! a retransmission timeout or two. Those echoes have a bound of their own
//! and no task each, so a flood of spoofed DATA costs a small record per
//! message for a moment, neither traffic towards the victims nor the places
//! of echoes to proven clients.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use futures_util::stream::{FuturesUnordered, StreamExt};
use gtudp_testkit::cli::ServerArgs as Args;
use gtudp_tokio::{Builder, Delivered, DeliveryError, SendOptions};
use tokio::task::JoinSet;

/// Echoes to proven clients awaiting their outcome at once; past this the
/// server stops reading, and new DATA waits in the peers' retransmissions.
const MAX_ECHOES_IN_FLIGHT: usize = 4_096;
/// Echoes waiting for their unproven destination to prove itself. Past this
/// an echo to an unproven address is dropped (counted and reported): with
/// each waiting at most about a second, that takes a flood of more than
/// 60,000 new spoofed messages a second.
const MAX_UNPROVEN_ECHOES: usize = 60_000;
/// How long an echo to an unproven address may wait for it to prove itself.
const UNPROVEN_ECHO_TIMEOUT: Duration = Duration::from_secs(1);

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
    let mut unproven = FuturesUnordered::new();
    let (mut received, mut echo_failures) = (0u64, 0u64);
    // Why echoes to unproven addresses ended without delivery, and how many
    // found no place.
    let mut unproven_failed: HashMap<String, u64> = HashMap::new();
    let mut unproven_dropped = 0u64;
    let echo_unproven = SendOptions::default()
        .with_timeout(UNPROVEN_ECHO_TIMEOUT)
        .once_validated();
    let mut count_unproven = |outcome: Result<Delivered, DeliveryError>| {
        if let Err(error) = outcome {
            let reason = match error {
                DeliveryError::Failed { reason, .. } => format!("{reason:?}"),
                _ => "not sent".to_string(),
            };
            *unproven_failed.entry(reason).or_default() += 1;
        }
    };
    while args.count.is_none_or(|count| received < count) {
        tokio::select! {
            message = socket.recv() => {
                let Ok(message) = message else { break };
                received += 1;
                if args.sink {
                    continue;
                }
                let from = message.from;
                let proven = matches!(
                    socket.peer_stats(from).await,
                    Ok(Some(peer)) if peer.validated
                );
                if proven {
                    let socket = socket.clone();
                    echoes.spawn(async move { socket.send_to(message.payload, from).await });
                } else if unproven.len() < MAX_UNPROVEN_ECHOES {
                    match socket.send_nowait_with(message.payload, from, echo_unproven) {
                        Ok(delivery) => unproven.push(delivery),
                        Err(_) => unproven_dropped += 1,
                    }
                } else {
                    unproven_dropped += 1;
                }
            }
            Some(outcome) = echoes.join_next(), if !echoes.is_empty() => {
                if !matches!(outcome, Ok(Ok(_))) { echo_failures += 1; }
            }
            Some(outcome) = unproven.next(), if !unproven.is_empty() => count_unproven(outcome),
            _ = tokio::signal::ctrl_c() => break,
        }
        while echoes.len() >= MAX_ECHOES_IN_FLIGHT {
            if let Some(outcome) = echoes.join_next().await {
                if !matches!(outcome, Ok(Ok(_))) {
                    echo_failures += 1;
                }
            }
        }
    }
    while let Some(outcome) = echoes.join_next().await {
        if !matches!(outcome, Ok(Ok(_))) {
            echo_failures += 1;
        }
    }
    while let Some(outcome) = unproven.next().await {
        count_unproven(outcome);
    }
    if unproven_dropped > 0 || !unproven_failed.is_empty() {
        let mut reasons: Vec<_> = unproven_failed.into_iter().collect();
        reasons.sort();
        eprintln!(
            "echo_server: echoes to unproven addresses: {unproven_dropped} dropped \
             (more than {MAX_UNPROVEN_ECHOES} waiting), failed {reasons:?}"
        );
    }

    let summary = socket.close().await?;
    let stats = summary.stats.endpoint;
    // What was refused or dropped, and why: under a flood, most of it.
    eprintln!(
        "echo_server: invalid {:?}, dropped {:?}, unvalidated peers evicted {}",
        stats.invalid, stats.dropped, stats.unvalidated_peers_evicted
    );
    eprintln!(
        "echo_server: validation probes {}, validated by probe {}, DATA held for validation {}, \
         held DATA taken {}",
        stats.validation_probes,
        stats.validated_by_probe,
        stats.data_held_for_validation,
        stats.held_data_taken
    );
    eprintln!(
        "{}",
        gtudp_testkit::cli::server_result_line(received, echo_failures, &stats)
    );
    Ok(())
}
