//! A bulk transfer of large messages through a lossy network, on one
//! machine.
//!
//! ```text
//! cargo run --release -p gtudp-tokio --example transfer -- [--megabytes 100 | --messages N] \
//!     [--message-kib 1024] [--loss 0.05] [--in-flight 8] [--seed 7] [--direct] \
//!     [--carriage fragments|ip-fragments]
//! ```
//!
//! Both sockets turn on the large-message extension
//! (`Config::large_messages`): each message of `--message-kib` KiB is sent
//! as fragments of one 1,452-byte datagram each, confirmed and resent on
//! their own, through a loopback relay that drops `--loss` of the datagrams
//! in each direction. The receiver checks that every message arrives whole,
//! once. A progress bar shows the bytes confirmed; the last line is
//! `messages=N delivered=D failed=F received_once=R repeats=P
//! goodput_mbit=G datagrams_sent=S retransmissions=X relay_dropped=L
//! elapsed_s=T => OK` (or `=> FAILED`): DATA retransmissions beside the
//! datagrams the relay dropped in both directions (RECV and ACK included).
//!
//! `--direct` leaves the relay out (the client sends to the server itself),
//! for a network that loses packets on its own, such as a namespace with an
//! nftables drop rule (`gtudp-bench/scripts/netns_large.sh`).
//! `--carriage ip-fragments` turns the extension off and sends each message
//! as one datagram that the kernel may fragment (`Fragmentation::Allowed`),
//! as the original gtUDP did: on a lossy path, one lost IP fragment costs
//! the whole message.

use std::collections::HashSet;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Parser;
use gtudp_testkit::relay::{Impairment, Relay};
use gtudp_tokio::{Builder, Config, Fragmentation, LargeMessages};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How long the server waits for a message before it counts the rest as
/// never coming.
const QUIET: Duration = Duration::from_secs(90);

/// Send a bulk transfer as large messages through a lossy relay and check
/// that each arrives whole, exactly once.
#[derive(Parser, Debug)]
struct Args {
    /// Megabytes to send in all.
    #[arg(long, default_value_t = 100)]
    megabytes: usize,
    /// Size of each message in KiB.
    #[arg(long, default_value_t = 1024)]
    message_kib: usize,
    /// Probability that the relay drops a datagram, each direction.
    #[arg(long, default_value_t = 0.05)]
    loss: f64,
    /// Most messages awaiting delivery at once.
    #[arg(long, default_value_t = 8)]
    in_flight: usize,
    /// Seed of the relay's random choices.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Messages to send (instead of `--megabytes`).
    #[arg(long)]
    messages: Option<u64>,
    /// Send straight to the server, without the relay.
    #[arg(long)]
    direct: bool,
    /// How a message crosses: `fragments` (the large-message extension) or
    /// `ip-fragments` (one datagram, fragmented by the kernel).
    #[arg(long, default_value = "fragments")]
    carriage: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    gtudp_testkit::cli::init_logging();
    let args = Args::parse();
    match run(&args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("transfer: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Message `index`: its number in the first 8 bytes, then bytes that
/// depend on it, so a message put together wrongly is noticed.
fn message(index: u64, size: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..size)
        .map(|i| (i as u64).wrapping_mul(0x9e37_79b9).wrapping_add(index) as u8)
        .collect();
    bytes[..8].copy_from_slice(&index.to_be_bytes());
    bytes
}

async fn run(args: &Args) -> Result<bool, Box<dyn std::error::Error>> {
    let size = (args.message_kib * 1024).max(8);
    let count = args
        .messages
        .unwrap_or(((args.megabytes * 1_000_000).div_ceil(size)) as u64);
    let mut config = Config::default();
    let fragmentation = match args.carriage.as_str() {
        "fragments" => {
            config.large_messages = Some(LargeMessages::default().with_max_message_size(size));
            Fragmentation::Forbidden
        }
        "ip-fragments" => {
            config.max_datagram_size = size + config.framing.header_len();
            Fragmentation::Allowed
        }
        other => {
            return Err(format!("--carriage is fragments or ip-fragments, not {other}").into())
        }
    };
    let server = Builder::new(config.clone())
        .fragmentation(fragmentation)
        .bind("127.0.0.1:0")
        .await?;
    let client = Builder::new(config)
        .fragmentation(fragmentation)
        .bind("127.0.0.1:0")
        .await?;
    let relay = Relay::start(
        server.local_addr(),
        Impairment {
            loss: args.loss,
            duplicate: 0.0,
            max_delay: Duration::from_millis(1),
            seed: args.seed,
        },
    )?;
    let target = match args.direct {
        true => server.local_addr(),
        false => relay.addr,
    };
    println!(
        "{count} messages of {size} bytes ({}): client {} -> {} -> server {}",
        args.carriage,
        client.local_addr(),
        match args.direct {
            true => "directly".to_string(),
            false => format!(
                "relay {} (loss {:.0}% each way)",
                relay.addr,
                args.loss * 100.0
            ),
        },
        server.local_addr()
    );

    // The server checks every message it is handed, and counts repeats.
    let receiver = {
        let server = server.clone();
        tokio::spawn(async move {
            let (mut seen, mut repeats, mut corrupt) = (HashSet::new(), 0u64, 0u64);
            while (seen.len() as u64) < count {
                // Quiet for long after the last message: the rest failed.
                let Ok(Ok(received)) = tokio::time::timeout(QUIET, server.recv()).await else {
                    break;
                };
                let payload = received.payload;
                let index = payload
                    .get(..8)
                    .and_then(|head| head.try_into().ok())
                    .map(u64::from_be_bytes)
                    .unwrap_or(u64::MAX);
                if payload.len() != size || payload[..] != message(index, size)[..] {
                    corrupt += 1;
                } else if !seen.insert(index) {
                    repeats += 1;
                }
            }
            (seen.len() as u64, repeats, corrupt)
        })
    };

    let progress =
        ProgressBar::with_draw_target(Some(count * size as u64), ProgressDrawTarget::stderr());
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} {bar:40} {bytes}/{total_bytes} confirmed, {bytes_per_sec}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let start = Instant::now();
    let mut sends = JoinSet::new();
    let (mut delivered, mut failed) = (0u64, 0u64);
    let mut collect = |outcome: Option<Result<Result<gtudp_tokio::Delivered, _>, _>>| match outcome
    {
        Some(Ok(Ok(_))) => {
            delivered += 1;
            progress.inc(size as u64);
        }
        _ => failed += 1,
    };
    for index in 0..count {
        while sends.len() >= args.in_flight {
            collect(sends.join_next().await);
        }
        let delivery = client.start_send(message(index, size), target).await?;
        sends.spawn(delivery);
    }
    while !sends.is_empty() {
        collect(sends.join_next().await);
    }
    let elapsed = start.elapsed();
    progress.finish_and_clear();

    let (received, repeats, corrupt) = receiver.await?;
    // The server first: its RECVs still awaiting an ACK need the client.
    let server_stats = server.close().await?.stats.endpoint;
    let client_stats = client.close().await?.stats.endpoint;
    let relay_dropped = relay.counters.dropped.load(Ordering::Relaxed);
    let goodput_mbit = (delivered * size as u64) as f64 * 8.0 / elapsed.as_secs_f64() / 1e6;
    println!(
        "server: {} fragments taken, {} duplicates suppressed; client: {} DATA retransmissions \
         ({} spurious)",
        server_stats.fragments_received,
        server_stats.duplicates_suppressed,
        client_stats.retransmissions,
        client_stats.spurious_retransmissions,
    );
    let ok = delivered == count && received == count && repeats == 0 && corrupt == 0;
    println!(
        "messages={count} delivered={delivered} failed={failed} received_once={received} \
         repeats={repeats} corrupt={corrupt} goodput_mbit={goodput_mbit:.1} datagrams_sent={} \
         retransmissions={} relay_dropped={relay_dropped} elapsed_s={:.2} => {}",
        client_stats.datagrams_out.data,
        client_stats.retransmissions,
        elapsed.as_secs_f64(),
        if ok { "OK" } else { "FAILED" }
    );
    Ok(ok)
}
