//! Guaranteed delivery through a bad network, on one machine.
//!
//! ```text
//! cargo run --release -p gtudp-tokio --example lossy_demo
//! ```
//!
//! Starts a gtUDP server, a client, and between them a UDP relay on
//! loopback that drops, duplicates and reorders datagrams. The client sends
//! every message with guaranteed delivery; the server checks that each
//! arrives exactly once. Prints a summary and exits 0 when every message
//! was delivered exactly once. The last line is
//! `sent=N delivered=D failed=F received_once=R repeats=P retransmissions=X
//! relay_dropped=L relay_duplicated=U spurious=S duplicates_suppressed=Y
//! elapsed_s=T => OK` (or `=> FAILED`): the client's DATA retransmissions
//! beside the datagrams the relay dropped and duplicated (both directions),
//! and how many of those retransmissions proved needless.

use std::collections::HashSet;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Parser;
use gtudp_testkit::relay::{Impairment, Relay};
use gtudp_tokio::{Config, Socket};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Send messages through a lossy, duplicating, reordering relay and check
/// that each arrives exactly once.
#[derive(Parser, Debug)]
struct Args {
    /// Messages to send.
    #[arg(long, default_value_t = 2_000)]
    count: u32,
    /// Probability that the relay drops a datagram.
    #[arg(long, default_value_t = 0.10)]
    loss: f64,
    /// Probability that the relay forwards a datagram twice.
    #[arg(long, default_value_t = 0.05)]
    duplicate: f64,
    /// Largest random delay the relay adds, in milliseconds (reorders).
    #[arg(long, default_value_t = 5)]
    delay_ms: u64,
    /// Most messages awaiting delivery at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seed of the relay's random choices.
    #[arg(long, default_value_t = 2024)]
    seed: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    gtudp_testkit::cli::init_logging();
    let args = Args::parse();
    match run(&args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("lossy_demo: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<bool, Box<dyn std::error::Error>> {
    let server = Socket::bind("127.0.0.1:0", Config::default()).await?;
    let client = Socket::bind("127.0.0.1:0", Config::default()).await?;
    let relay = Relay::start(
        server.local_addr(),
        Impairment {
            loss: args.loss,
            duplicate: args.duplicate,
            max_delay: Duration::from_millis(args.delay_ms),
            seed: args.seed,
        },
    )?;
    println!(
        "client {} -> relay {} (loss {:.0}%, duplication {:.0}%, delay up to {} ms) -> server {}",
        client.local_addr(),
        relay.addr,
        args.loss * 100.0,
        args.duplicate * 100.0,
        args.delay_ms,
        server.local_addr()
    );

    // The server counts every message it is handed, and any repeat.
    let count = args.count;
    let receiver = {
        let server = server.clone();
        tokio::spawn(async move {
            let (mut seen, mut repeats) = (HashSet::new(), 0u32);
            while seen.len() < count as usize {
                match server.recv().await {
                    Ok(message) => {
                        if !seen.insert(message.payload) {
                            repeats += 1;
                        }
                    }
                    Err(_) => break,
                }
            }
            (seen.len() as u32, repeats)
        })
    };

    let progress =
        ProgressBar::with_draw_target(Some(u64::from(count)), ProgressDrawTarget::stderr());
    progress.set_style(
        ProgressStyle::with_template("{spinner} {bar:40} {pos}/{len} delivered {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let start = Instant::now();
    let mut sends = JoinSet::new();
    let (mut delivered, mut failed) = (0u32, 0u32);
    let mut latencies = Vec::with_capacity(count as usize);
    for index in 0..count {
        while sends.len() >= args.concurrency {
            collect(
                sends.join_next().await,
                &mut delivered,
                &mut failed,
                &mut latencies,
                &progress,
            );
        }
        let payload = format!("message {index:06}").into_bytes();
        let delivery = client.start_send(payload, relay.addr).await?;
        let sent = Instant::now();
        sends.spawn(async move { (delivery.await, sent.elapsed()) });
    }
    while !sends.is_empty() {
        collect(
            sends.join_next().await,
            &mut delivered,
            &mut failed,
            &mut latencies,
            &progress,
        );
    }
    let elapsed = start.elapsed();
    progress.finish_and_clear();

    let (received, repeats) = tokio::time::timeout(Duration::from_secs(10), receiver)
        .await
        .unwrap_or(Ok((0, 0)))?;
    // The server first: its RECVs still awaiting an ACK need the client.
    let server_stats = server.close().await?.stats.endpoint;
    let client_stats = client.close().await?.stats.endpoint;
    // Read once, so that both lines below show the same counts.
    let relay_in = relay.counters.received.load(Ordering::Relaxed);
    let relay_dropped = relay.counters.dropped.load(Ordering::Relaxed);
    let relay_duplicated = relay.counters.duplicated.load(Ordering::Relaxed);

    latencies.sort_unstable();
    let percentile = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let rank = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len());
        latencies[rank - 1].as_secs_f64() * 1_000.0
    };
    println!(
        "relay: {relay_in} datagrams in, {relay_dropped} dropped, {relay_duplicated} duplicated"
    );
    println!(
        "client: {} DATA retransmissions ({} spurious; losses found early {}, tail-loss probes {}, timeouts {}); server: {} duplicates suppressed, {} RECV retransmissions",
        client_stats.retransmissions,
        client_stats.spurious_retransmissions,
        client_stats.loss_detected_early,
        client_stats.tail_loss_probes,
        client_stats.retransmission_timeouts,
        server_stats.duplicates_suppressed,
        server_stats.recv_retransmissions
    );
    println!(
        "latency send-to-delivered: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(0.50),
        percentile(0.99),
        percentile(1.0)
    );
    let ok = delivered == count && received == count && repeats == 0;
    println!(
        "sent={count} delivered={delivered} failed={failed} received_once={received} repeats={repeats} \
         retransmissions={} relay_dropped={relay_dropped} relay_duplicated={relay_duplicated} \
         spurious={} duplicates_suppressed={} elapsed_s={:.2} => {}",
        client_stats.retransmissions,
        client_stats.spurious_retransmissions,
        server_stats.duplicates_suppressed,
        elapsed.as_secs_f64(),
        if ok { "OK" } else { "FAILED" }
    );
    Ok(ok)
}

type Outcome = (
    Result<gtudp_tokio::Delivered, gtudp_tokio::DeliveryError>,
    Duration,
);

fn collect(
    joined: Option<Result<Outcome, tokio::task::JoinError>>,
    delivered: &mut u32,
    failed: &mut u32,
    latencies: &mut Vec<Duration>,
    progress: &ProgressBar,
) {
    match joined {
        Some(Ok((Ok(_), latency))) => {
            *delivered += 1;
            latencies.push(latency);
            progress.inc(1);
        }
        Some(Ok((Err(error), _))) => {
            *failed += 1;
            progress.println(format!("failed: {error}"));
        }
        Some(Err(_)) | None => *failed += 1,
    }
    progress.set_message(format!("({failed} failed)"));
}
