//! A blocking gtUDP echo server: every message received is sent back to
//! its sender with guaranteed delivery. The same command line and output as
//! `gtudp-tokio`'s `echo_server`.
//!
//! ```text
//! cargo run --release -p gtudp-mio --example blocking_echo_server -- --bind 127.0.0.1:4000 \
//!     [--count N] [--sink] [--magic HEX] [--types HEX,HEX,HEX] [--shards N]
//! ```
//!
//! Prints `listening on ADDR` once ready. With `--sink` it only receives.
//! With `--count N` it exits 0 after N messages, once every echo resolved
//! and the socket drained; the last line (on stderr) is
//! `received=N echo_failures=F retransmissions=R duplicates_suppressed=D data_unanswered=U`.
//!
//! With `--shards N` (Linux) it serves from a
//! [`ShardedBlockingSocket`](gtudp_mio::ShardedBlockingSocket):
//! `N` `SO_REUSEPORT` sockets on the one address, each with its own
//! endpoint, served by its own thread, each echo going out through the
//! shard its message came in on (the shard that owns the client). The last
//! line then sums the shards' counters.

use std::collections::VecDeque;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use gtudp_mio::{BlockingSocket, PendingSend, RecvError};
use gtudp_testkit::cli::ServerArgs as Args;

/// Echoes awaiting their outcome at once; past this the server waits for
/// the oldest before reading on, and new DATA waits in the peer's
/// retransmissions.
const MAX_ECHOES_IN_FLIGHT: usize = 4_096;

/// How often the receive loop looks at the echoes' outcomes while idle.
const REAP_EVERY: Duration = Duration::from_millis(100);

fn main() -> ExitCode {
    gtudp_testkit::cli::init_logging();
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("echo_server: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Takes the outcomes already known, oldest first; with `block`, waits for
/// the oldest one.
fn reap(echoes: &mut VecDeque<PendingSend>, failures: &mut u64, block: bool) {
    while let Some(front) = echoes.front() {
        let outcome = if block {
            Some(front.wait_timeout(Duration::from_secs(3_600)))
        } else {
            Some(front.try_wait())
        };
        match outcome.flatten() {
            Some(outcome) => {
                if outcome.is_err() {
                    *failures += 1;
                }
                echoes.pop_front();
            }
            None => return,
        }
        if block {
            return;
        }
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let config = args.config()?;
    let (sharded, sockets) = match args.shards {
        None => (
            None,
            vec![Arc::new(BlockingSocket::bind(args.bind, config)?)],
        ),
        Some(shards) => {
            let server = BlockingSocket::bind_sharded(args.bind, shards, config)?;
            let sockets = server.shards().to_vec();
            (Some(server), sockets)
        }
    };
    println!("listening on {}", sockets[0].local_addr());
    if let Some(shards) = args.shards {
        eprintln!("echo_server: {shards} shards");
    }

    // Messages received by all sockets together.
    let received = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = sockets
        .iter()
        .map(|socket| {
            let (socket, received) = (socket.clone(), received.clone());
            let (count, sink) = (args.count, args.sink);
            std::thread::spawn(move || serve(&socket, count, sink, &received))
        })
        .collect();
    let mut echo_failures = 0;
    for thread in threads {
        echo_failures += thread.join().map_err(|_| "a serving thread panicked")?;
    }
    let summaries = match sharded {
        Some(server) => server.close()?,
        None => vec![sockets[0].close()?],
    };
    let all: Vec<_> = summaries
        .iter()
        .map(|summary| summary.stats.endpoint)
        .collect();
    eprintln!(
        "{}",
        gtudp_testkit::cli::sharded_result_line(
            received.load(Ordering::Relaxed),
            echo_failures,
            &all
        )
    );
    Ok(())
}

/// Echoes what `socket` receives until `count` messages were received by
/// all sockets together (or the socket closes); returns the echoes that
/// failed.
fn serve(socket: &BlockingSocket, count: Option<u64>, sink: bool, received: &AtomicU64) -> u64 {
    socket.set_read_timeout(Some(REAP_EVERY));
    let mut echoes = VecDeque::new();
    let mut echo_failures = 0u64;
    while count.is_none_or(|count| received.load(Ordering::Relaxed) < count) {
        match socket.recv() {
            Ok(message) => {
                received.fetch_add(1, Ordering::Relaxed);
                if !sink {
                    match socket.send_to(message.payload, message.from) {
                        Ok(pending) => echoes.push_back(pending),
                        Err(_) => echo_failures += 1,
                    }
                }
            }
            Err(RecvError::TimedOut) => {}
            Err(_) => break,
        }
        reap(&mut echoes, &mut echo_failures, false);
        while echoes.len() >= MAX_ECHOES_IN_FLIGHT {
            reap(&mut echoes, &mut echo_failures, true);
        }
    }
    for echo in echoes {
        if echo.wait().is_err() {
            echo_failures += 1;
        }
    }
    echo_failures
}
