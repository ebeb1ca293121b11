//! A blocking gtUDP echo server: every message received is sent back to
//! its sender with guaranteed delivery. The same command line and output as
//! `gtudp-tokio`'s `echo_server`.
//!
//! ```text
//! cargo run --release -p gtudp-mio --example blocking_echo_server -- --bind 127.0.0.1:4000 \
//!     [--count N] [--sink] [--magic HEX] [--types HEX,HEX,HEX]
//! ```
//!
//! Prints `listening on ADDR` once ready. With `--sink` it only receives.
//! With `--count N` it exits 0 after N messages, once every echo resolved
//! and the socket drained; the last line (on stderr) is
//! `received=N echo_failures=F retransmissions=R duplicates_suppressed=D`.

use std::collections::VecDeque;
use std::process::ExitCode;
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
    let socket = BlockingSocket::bind(args.bind, config)?;
    println!("listening on {}", socket.local_addr());
    socket.set_read_timeout(Some(REAP_EVERY));

    let mut echoes = VecDeque::new();
    let (mut received, mut echo_failures) = (0u64, 0u64);
    while args.count.is_none_or(|count| received < count) {
        match socket.recv() {
            Ok(message) => {
                received += 1;
                if !args.sink {
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
    let summary = socket.close()?;
    let stats = summary.stats.endpoint;
    eprintln!(
        "{}",
        gtudp_testkit::cli::server_result_line(received, echo_failures, &stats)
    );
    Ok(())
}
