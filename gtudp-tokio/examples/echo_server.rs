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

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;

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
/// the places of echoes to proven peers, nor stop the server receiving.
const MAX_UNPROVEN_ECHOES_IN_FLIGHT: usize = 1_024;
/// How long an echo to an unproven address may take. A real client proves
/// itself within a round trip (its ACK for our RECV); a spoofed address
/// never does, and the endpoint fails such echoes with `Unvalidated` after
/// a few retransmission timeouts anyway.
const UNPROVEN_ECHO_TIMEOUT: Duration = Duration::from_secs(2);
/// Echoes to unproven addresses waiting for a place in the pool. Every
/// client starts unproven, so its first echoes may wait here; they go out
/// at once when one of its later messages shows it proven. Past this bound
/// the oldest waiting address's echoes are dropped (counted and reported):
/// under a flood that large they are almost all for spoofed addresses.
const MAX_WAITING_ECHOES: usize = 65_536;

/// Echoes to unproven addresses waiting for the pool, by address, oldest
/// address first.
#[derive(Default)]
struct Waiting {
    by_address: HashMap<SocketAddr, Vec<Bytes>>,
    order: VecDeque<SocketAddr>,
    len: usize,
    dropped: u64,
}

impl Waiting {
    fn push(&mut self, from: SocketAddr, payload: Bytes) {
        if self.len >= MAX_WAITING_ECHOES {
            if let Some(oldest) = self.pop_oldest() {
                self.dropped += oldest.1.len() as u64;
            }
        }
        let entry = self.by_address.entry(from).or_default();
        if entry.is_empty() {
            self.order.push_back(from);
        }
        entry.push(payload);
        self.len += 1;
    }

    fn take(&mut self, from: &SocketAddr) -> Vec<Bytes> {
        let taken = self.by_address.remove(from).unwrap_or_default();
        self.len -= taken.len();
        taken
    }

    fn pop_oldest(&mut self) -> Option<(SocketAddr, Vec<Bytes>)> {
        while let Some(address) = self.order.pop_front() {
            let taken = self.take(&address);
            if !taken.is_empty() {
                return Some((address, taken));
            }
        }
        None
    }
}

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
    let mut waiting = Waiting::default();
    let (mut received, mut echo_failures) = (0u64, 0u64);
    let echo = |set: &mut JoinSet<_>, payload: Bytes, to: SocketAddr, proven: bool| {
        let socket = socket.clone();
        set.spawn(async move {
            match proven {
                true => socket.send_to(payload, to).await,
                false => {
                    let options = SendOptions::with_timeout(UNPROVEN_ECHO_TIMEOUT);
                    socket.send_to_with(payload, to, options).await
                }
            }
        });
    };
    while args.count.is_none_or(|count| received < count) {
        tokio::select! {
            message = socket.recv() => {
                let Ok(message) = message else { break };
                received += 1;
                if !args.sink {
                    let from = message.from;
                    let proven = matches!(
                        socket.peer_stats(from).await,
                        Ok(Some(peer)) if peer.validated
                    );
                    if proven {
                        for payload in waiting.take(&from) {
                            echo(&mut echoes, payload, from, true);
                        }
                        echo(&mut echoes, message.payload, from, true);
                    } else if unproven_echoes.len() < MAX_UNPROVEN_ECHOES_IN_FLIGHT {
                        echo(&mut unproven_echoes, message.payload, from, false);
                    } else {
                        waiting.push(from, message.payload);
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
        while unproven_echoes.len() < MAX_UNPROVEN_ECHOES_IN_FLIGHT {
            let Some((from, payloads)) = waiting.pop_oldest() else {
                break;
            };
            let proven = matches!(socket.peer_stats(from).await, Ok(Some(peer)) if peer.validated);
            for payload in payloads {
                match proven {
                    true => echo(&mut echoes, payload, from, true),
                    false => echo(&mut unproven_echoes, payload, from, false),
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
    while let Some((from, payloads)) = waiting.pop_oldest() {
        for payload in payloads {
            echo(&mut unproven_echoes, payload, from, false);
        }
    }
    if waiting.dropped > 0 {
        eprintln!(
            "echo_server: {} echoes to unproven addresses dropped (more than {MAX_WAITING_ECHOES} waiting)",
            waiting.dropped
        );
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
