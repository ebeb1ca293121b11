//! A gtUDP echo client: sends N distinct payloads to an echo server, at
//! most C awaiting their echo at once, and checks every echo.
//!
//! ```text
//! cargo run --release -p gtudp-tokio --example echo_client -- --server 127.0.0.1:4000 \
//!     [--bind ADDR] [--count N] [--size BYTES] [--concurrency C] [--oneway] \
//!     [--magic HEX] [--types HEX,HEX,HEX] [--wait-secs S]
//! ```
//!
//! The last line is the result, for scripts, printed on every exit (also
//! when the socket cannot be bound, or when the run stops for want of
//! progress):
//! `sent=N delivered=D failed=F echoed=E duplicates=U mismatched=M elapsed_s=S msgs_per_s=R rtt_p50_us=P rtt_p99_us=Q retransmissions=X spurious=Y`,
//! where X counts the client's DATA retransmissions (the close's drain
//! included) and Y those of them found needless (the message was late, not
//! lost); both 0 if the socket could not be bound.
//! Exits 0 only if E = N and U = M = 0, or with `--oneway` (against a
//! `--sink` server) if D = N; then the RTT is send-to-Delivered.
//!
//! The run ends as soon as every message has its outcome and every
//! delivered one its echo (one-way: every outcome), so a client whose
//! messages all failed (a closed port) exits at once; `--wait-secs` only
//! bounds a wait without progress.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use gtudp_testkit::cli::ClientArgs as Args;
use gtudp_testkit::echo::{echoed_index, payload, Tally};
use gtudp_tokio::Socket;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinSet;
use tokio::time::Instant;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Sent; holds a place in the window.
    Waiting,
    /// Its place was given back (echo received, delivered, or failed).
    Released,
}

#[tokio::main]
async fn main() -> ExitCode {
    gtudp_testkit::cli::init_logging();
    let args = Args::parse();
    let mut tally = Tally::default();
    let start = Instant::now();
    let mut elapsed = None;
    if let Err(error) = run(&args, &mut tally, &mut elapsed).await {
        eprintln!("echo_client: {error}");
    }
    let elapsed = elapsed.unwrap_or_else(|| start.elapsed());
    tally.finish(args.count, args.oneway, elapsed)
}

/// Runs the exchange, counting into `tally` and setting `elapsed` when the
/// exchange ends (before the close's drain).
async fn run(
    args: &Args,
    tally: &mut Tally,
    elapsed: &mut Option<Duration>,
) -> Result<(), Box<dyn std::error::Error>> {
    let count = args.count;
    let size = args.size as usize;
    let config = args.config()?;
    let bind = args.bind_addr();
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
    let mut delivered = vec![false; count as usize];
    // Delivered messages whose echo has not come yet.
    let mut echoes_owed = 0u64;
    let (mut next, mut in_flight, mut resolved) = (0u64, 0u64, 0u64);
    let mut deliveries = JoinSet::new();
    let start = Instant::now();
    let idle = Duration::from_secs(args.wait_secs);
    // Reset by every outcome and echo: the run ends after `idle` without
    // progress, whatever is missing.
    let wait = tokio::time::sleep(idle);
    tokio::pin!(wait);
    let mut stopped: Option<String> = None;

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
        // A failed message's echo may never come: wait only for those of
        // the delivered ones.
        let done = resolved == count && (args.oneway || echoes_owed == 0);
        if done {
            break;
        }
        tokio::select! {
            Some(joined) = deliveries.join_next(), if !deliveries.is_empty() => {
                wait.as_mut().reset(Instant::now() + idle);
                let (index, outcome) = match joined {
                    Ok(joined) => joined,
                    Err(error) => {
                        stopped = Some(format!("a delivery task failed: {error}"));
                        break;
                    }
                };
                resolved += 1;
                let i = index as usize;
                let failed = outcome.is_err();
                match outcome {
                    Ok(_) => {
                        tally.delivered += 1;
                        delivered[i] = true;
                        if !args.oneway && !echoed[i] {
                            echoes_owed += 1;
                        }
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
                wait.as_mut().reset(Instant::now() + idle);
                let message = match message {
                    Ok(message) => message,
                    Err(error) => {
                        stopped = Some(format!("receive failed: {error}"));
                        break;
                    }
                };
                match echoed_index(&message.payload, count, size) {
                    Some(index) => {
                        let i = index as usize;
                        if echoed[i] {
                            tally.duplicates += 1;
                        } else {
                            echoed[i] = true;
                            tally.echoed += 1;
                            if delivered[i] {
                                echoes_owed -= 1;
                            }
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
                    None => tally.mismatched += 1,
                }
            }
            () = &mut wait => {
                stopped = Some(format!(
                    "no progress for {} s; gave up with {} outcomes and {} echoes of delivered messages missing",
                    args.wait_secs,
                    count - resolved,
                    if args.oneway { 0 } else { echoes_owed },
                ));
                break;
            }
        }
    }
    *elapsed = Some(start.elapsed());
    progress.finish_and_clear();
    if let Some(reason) = stopped {
        eprintln!("echo_client: {reason}");
    }
    // Drain: the RECVs of the echoes still await our ACK... and vice versa.
    // Bounded by Config::drain_timeout.
    let stats = match socket.close().await {
        Ok(summary) => summary.stats,
        Err(error) => {
            eprintln!("echo_client: close: {error}");
            socket.stats()
        }
    };
    // The final counters, the drain's retransmissions included.
    tally.note_endpoint(&stats.endpoint);

    Ok(())
}
