//! A gtUDP echo client: sends N distinct payloads to an echo server, at
//! most C awaiting their echo at once, and checks every echo.
//!
//! ```text
//! cargo run --release -p gtudp-tokio --example echo_client -- --server 127.0.0.1:4000 \
//!     [--count N] [--size BYTES] [--concurrency C] [--oneway]
//! ```
//!
//! The last line is the result, for scripts:
//! `sent=N delivered=D failed=F echoed=E duplicates=U mismatched=M elapsed_s=S msgs_per_s=R rtt_p50_us=P rtt_p99_us=Q`.
//! Exits 0 only if E = N and U = M = 0, or with `--oneway` (against a
//! `--sink` server) if D = N; then the RTT is send-to-Delivered.

#[path = "common/mod.rs"]
mod common;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use gtudp_tokio::proto::MAX_UDP_PAYLOAD;
use gtudp_tokio::Socket;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Send N payloads to a gtUDP echo server and check the echoes.
#[derive(Parser, Debug)]
struct Args {
    /// The echo server's address.
    #[arg(long, default_value = "127.0.0.1:4000")]
    server: SocketAddr,
    /// Messages to send.
    #[arg(long, default_value_t = 1_000)]
    count: u64,
    /// Bytes per payload (at least 8: each starts with its index).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(8..=65_000))]
    size: u64,
    /// Most messages awaiting their echo (or, with --oneway, their
    /// delivery) at once.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    concurrency: u64,
    /// Wait for Delivered instead of echoes (use against `echo_server --sink`).
    #[arg(long)]
    oneway: bool,
    /// Magic prefix, in hex (default: none).
    #[arg(long, value_parser = common::parse_hex)]
    magic: Option<common::Hex>,
    /// DATA,RECV,ACK type identifiers, in hex (default: 1d,5f,ae).
    #[arg(long, value_parser = common::parse_types)]
    types: Option<common::Types>,
    /// Seconds to wait for missing echoes once every send has resolved.
    #[arg(long, default_value_t = 10)]
    wait_secs: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Sent; holds a place in the window.
    Waiting,
    /// Its place was given back (echo received, delivered, or failed).
    Released,
}

#[derive(Default)]
struct Tally {
    delivered: u64,
    failed: u64,
    echoed: u64,
    duplicates: u64,
    mismatched: u64,
    rtts_us: Vec<u64>,
}

#[tokio::main]
async fn main() -> ExitCode {
    common::init_logging();
    let args = Args::parse();
    match run(&args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("echo_client: {error}");
            ExitCode::FAILURE
        }
    }
}

fn payload(index: u64, size: usize) -> Bytes {
    let mut bytes = Vec::with_capacity(size);
    bytes.extend_from_slice(&index.to_be_bytes());
    bytes.extend((8..size).map(|j| (index as usize).wrapping_mul(31).wrapping_add(j) as u8));
    Bytes::from(bytes)
}

async fn run(args: &Args) -> Result<bool, Box<dyn std::error::Error>> {
    let count = args.count;
    let size = args.size as usize;
    let mut config = common::config(args.magic.as_ref(), args.types.as_ref())?;
    let header = config.framing.header_len();
    if size + header > config.max_datagram_size {
        config.max_datagram_size = (size + header).min(MAX_UDP_PAYLOAD);
    }
    let bind = if args.server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = Socket::bind(bind, config).await?;

    let progress = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::with_draw_target(Some(count), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };

    let mut slots: Vec<Option<Slot>> = vec![None; count as usize];
    let mut sent_at: Vec<Option<Instant>> = vec![None; count as usize];
    let mut echoed = vec![false; count as usize];
    let mut tally = Tally::default();
    let (mut next, mut in_flight, mut resolved) = (0u64, 0u64, 0u64);
    let mut deliveries = JoinSet::new();
    let start = Instant::now();
    let wait = tokio::time::sleep(Duration::from_secs(args.wait_secs));
    tokio::pin!(wait);
    let mut waiting_armed = false;

    loop {
        while next < count && in_flight < args.concurrency {
            let index = next;
            next += 1;
            sent_at[index as usize] = Some(Instant::now());
            match socket.start_send(payload(index, size), args.server).await {
                Ok(delivery) => {
                    slots[index as usize] = Some(Slot::Waiting);
                    in_flight += 1;
                    deliveries.spawn(async move { (index, delivery.await) });
                }
                Err(error) => {
                    eprintln!("message {index} not sent: {error}");
                    tally.failed += 1;
                    resolved += 1;
                }
            }
        }
        let done = if args.oneway {
            resolved == count
        } else {
            resolved == count && tally.echoed == count
        };
        if done {
            break;
        }
        if resolved == count && !waiting_armed {
            wait.as_mut()
                .reset(Instant::now() + Duration::from_secs(args.wait_secs));
            waiting_armed = true;
        }
        tokio::select! {
            Some(joined) = deliveries.join_next(), if !deliveries.is_empty() => {
                let (index, outcome) = joined?;
                resolved += 1;
                let i = index as usize;
                let failed = outcome.is_err();
                match outcome {
                    Ok(()) => {
                        tally.delivered += 1;
                        if args.oneway {
                            if let Some(at) = sent_at[i] {
                                tally.rtts_us.push(at.elapsed().as_micros() as u64);
                            }
                            progress.inc(1);
                        }
                    }
                    Err(error) => {
                        tracing::warn!(index, %error, "send failed");
                        tally.failed += 1;
                    }
                }
                // One-way, the outcome frees the place; with echoes, only a
                // failure does (the echo may never come).
                if slots[i] == Some(Slot::Waiting) && (args.oneway || failed) {
                    slots[i] = Some(Slot::Released);
                    in_flight -= 1;
                }
            }
            message = socket.recv(), if !args.oneway => {
                let message = message?;
                let payload = message.payload;
                let index = payload.get(..8).map(|b| u64::from_be_bytes(b.try_into().unwrap_or_default()));
                match index {
                    Some(index) if index < count && payload == self::payload(index, size) => {
                        let i = index as usize;
                        if echoed[i] {
                            tally.duplicates += 1;
                        } else {
                            echoed[i] = true;
                            tally.echoed += 1;
                            progress.inc(1);
                            if let Some(at) = sent_at[i] {
                                tally.rtts_us.push(at.elapsed().as_micros() as u64);
                            }
                            if slots[i] == Some(Slot::Waiting) {
                                slots[i] = Some(Slot::Released);
                                in_flight -= 1;
                            }
                        }
                    }
                    _ => tally.mismatched += 1,
                }
            }
            () = &mut wait, if waiting_armed => {
                eprintln!("gave up waiting for {} echoes", count - tally.echoed);
                break;
            }
        }
    }
    let elapsed = start.elapsed();
    progress.finish_and_clear();
    // Drain: the RECVs of the echoes still await our ACK... and vice versa.
    socket.close().await?;

    tally.rtts_us.sort_unstable();
    let percentile = |p: f64| -> u64 {
        if tally.rtts_us.is_empty() {
            return 0;
        }
        let rank = ((tally.rtts_us.len() as f64 * p).ceil() as usize).clamp(1, tally.rtts_us.len());
        tally.rtts_us[rank - 1]
    };
    let seconds = elapsed.as_secs_f64();
    println!(
        "sent={count} delivered={} failed={} echoed={} duplicates={} mismatched={} elapsed_s={seconds:.3} msgs_per_s={:.0} rtt_p50_us={} rtt_p99_us={}",
        tally.delivered,
        tally.failed,
        tally.echoed,
        tally.duplicates,
        tally.mismatched,
        count as f64 / seconds.max(1e-9),
        percentile(0.50),
        percentile(0.99),
    );
    Ok(if args.oneway {
        tally.delivered == count
    } else {
        tally.echoed == count && tally.duplicates == 0 && tally.mismatched == 0
    })
}
