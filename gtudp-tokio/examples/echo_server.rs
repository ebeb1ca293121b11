//! A gtUDP echo server: every message received is sent back to its sender
//! with guaranteed delivery.
//!
//! ```text
//! cargo run --release -p gtudp-tokio --example echo_server -- --bind 127.0.0.1:4000 [--count N] [--sink] [--shards N [--shard-threads]]
//! ```
//!
//! Prints `listening on ADDR` once ready. With `--sink` it only receives.
//! With `--count N` it exits 0 after N messages, once every echo resolved
//! and the socket drained.
//!
//! With `--shards N` (Linux) it serves from a [`ShardedSocket`]: `N`
//! `SO_REUSEPORT` sockets on the one address, each with its own endpoint,
//! served by its own task (on Tokio's multi-threaded runtime, one worker
//! per core), each echo going out through the shard its message came in
//! on, which is the shard that owns the client. With `--shard-threads` too,
//! each shard is driven on a thread of its own (`Builder::shard_threads`)
//! and its task runs there (`ShardedSocket::spawn_on_shard`). The last
//! line then sums the shards' counters.
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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use futures_util::stream::{FuturesUnordered, StreamExt};
use gtudp_testkit::cli::ServerArgs as Args;
use gtudp_tokio::{Builder, Delivered, DeliveryError, SendOptions, ShardedSocket, Socket};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Echoes to proven clients awaiting their outcome at once (per socket or
/// shard); past this the server stops reading, and new DATA waits in the
/// peers' retransmissions.
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

/// What one socket's (or shard's) serving loop counted.
#[derive(Default)]
struct Served {
    echo_failures: u64,
    /// Why echoes to unproven addresses ended without delivery.
    unproven_failed: HashMap<String, u64>,
    /// Echoes to unproven addresses that found no place.
    unproven_dropped: u64,
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let builder = Builder::new(args.config()?);
    let (sharded, sockets): (Option<ShardedSocket>, Vec<Socket>) = match args.shards {
        None => (None, vec![builder.bind(args.bind).await?]),
        Some(shards) => {
            let server = builder
                .shard_threads(args.shard_threads)
                .bind_sharded(args.bind, shards)
                .await?;
            let sockets = server.shards().to_vec();
            (Some(server), sockets)
        }
    };
    println!("listening on {}", sockets[0].local_addr());
    if let Some(shards) = args.shards {
        eprintln!("echo_server: {shards} shards");
    }

    // Messages received by all sockets; `stop` ends every loop.
    let received = Arc::new(AtomicU64::new(0));
    let (stop, stopped) = watch::channel(false);
    let mut serving = JoinSet::new();
    for (index, socket) in sockets.iter().enumerate() {
        let serving_one = serve(
            socket.clone(),
            args.sink,
            args.count,
            received.clone(),
            stop.clone(),
            stopped.clone(),
        );
        match &sharded {
            // Where the shard runs (its own thread with --shard-threads);
            // awaited from here.
            Some(server) => {
                let on_shard = server.spawn_on_shard(index, serving_one);
                serving.spawn(async move {
                    on_shard
                        .await
                        .unwrap_or_else(|error| panic!("shard {index}'s task: {error}"))
                });
            }
            None => {
                serving.spawn(serving_one);
            }
        }
    }
    let mut served = Served::default();
    loop {
        tokio::select! {
            done = serving.join_next() => {
                let Some(done) = done else { break };
                let part = done?;
                served.echo_failures += part.echo_failures;
                served.unproven_dropped += part.unproven_dropped;
                for (reason, count) in part.unproven_failed {
                    *served.unproven_failed.entry(reason).or_default() += count;
                }
            }
            _ = tokio::signal::ctrl_c() => { let _ = stop.send(true); }
        }
    }
    if served.unproven_dropped > 0 || !served.unproven_failed.is_empty() {
        let mut reasons: Vec<_> = served.unproven_failed.into_iter().collect();
        reasons.sort();
        eprintln!(
            "echo_server: echoes to unproven addresses: {} dropped \
             (more than {MAX_UNPROVEN_ECHOES} waiting), failed {reasons:?}",
            served.unproven_dropped
        );
    }

    let summaries = match sharded {
        Some(server) => server.close().await?,
        None => vec![sockets[0].close().await?],
    };
    let received = received.load(Ordering::Relaxed);
    let all: Vec<_> = summaries
        .iter()
        .map(|summary| summary.stats.endpoint)
        .collect();
    for (index, stats) in all.iter().enumerate() {
        let shard = if args.shards.is_some() {
            format!(" shard {index}:")
        } else {
            String::new()
        };
        // What was refused or dropped, and why: under a flood, most of it.
        eprintln!(
            "echo_server:{shard} invalid {:?}, dropped {:?}, unvalidated peers evicted {}",
            stats.invalid, stats.dropped, stats.unvalidated_peers_evicted
        );
        eprintln!(
            "echo_server:{shard} validation probes {}, validated by probe {}, DATA held for validation {}, \
             held DATA taken {}",
            stats.validation_probes,
            stats.validated_by_probe,
            stats.data_held_for_validation,
            stats.held_data_taken
        );
    }
    eprintln!(
        "{}",
        gtudp_testkit::cli::sharded_result_line(received, served.echo_failures, &all)
    );
    Ok(())
}

/// Echoes what `socket` receives until `count` messages were received by
/// all sockets together, or `stop`.
async fn serve(
    socket: Socket,
    sink: bool,
    count: Option<u64>,
    received: Arc<AtomicU64>,
    stop: watch::Sender<bool>,
    mut stopped: watch::Receiver<bool>,
) -> Served {
    let mut served = Served::default();
    let mut echoes = JoinSet::new();
    let mut unproven = FuturesUnordered::new();
    let echo_unproven = SendOptions::default()
        .with_timeout(UNPROVEN_ECHO_TIMEOUT)
        .once_validated();
    let count_unproven = |served: &mut Served, outcome: Result<Delivered, DeliveryError>| {
        if let Err(error) = outcome {
            let reason = match error {
                DeliveryError::Failed { reason, .. } => format!("{reason:?}"),
                _ => "not sent".to_string(),
            };
            *served.unproven_failed.entry(reason).or_default() += 1;
        }
    };
    let all_received =
        |received: &AtomicU64| count.is_some_and(|count| received.load(Ordering::Relaxed) >= count);
    while !*stopped.borrow() && !all_received(&received) {
        tokio::select! {
            message = socket.recv() => {
                let Ok(message) = message else { break };
                if count.is_some_and(|count| received.fetch_add(1, Ordering::Relaxed) + 1 >= count) {
                    let _ = stop.send(true);
                }
                if sink {
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
                        Err(_) => served.unproven_dropped += 1,
                    }
                } else {
                    served.unproven_dropped += 1;
                }
            }
            Some(outcome) = echoes.join_next(), if !echoes.is_empty() => {
                if !matches!(outcome, Ok(Ok(_))) { served.echo_failures += 1; }
            }
            Some(outcome) = unproven.next(), if !unproven.is_empty() => count_unproven(&mut served, outcome),
            _ = stopped.changed() => {}
        }
        while echoes.len() >= MAX_ECHOES_IN_FLIGHT {
            if let Some(outcome) = echoes.join_next().await {
                if !matches!(outcome, Ok(Ok(_))) {
                    served.echo_failures += 1;
                }
            }
        }
    }
    while let Some(outcome) = echoes.join_next().await {
        if !matches!(outcome, Ok(Ok(_))) {
            served.echo_failures += 1;
        }
    }
    while let Some(outcome) = unproven.next().await {
        count_unproven(&mut served, outcome);
    }
    served
}
