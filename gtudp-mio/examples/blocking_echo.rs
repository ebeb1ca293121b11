//! A blocking echo server and client in two threads on loopback, shaped
//! like the original gtUDP's `sendto` / `recvfrom` / `cleanup`.
//!
//! ```text
//! cargo run --release -p gtudp-mio --example blocking_echo
//! ```
//!
//! Prints a one-line summary; exits 0 when every message came back exactly
//! once and every send was confirmed delivered. `RUST_LOG=gtudp=debug`
//! shows each datagram.

use std::collections::HashSet;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use gtudp_mio::{BlockingSocket, Config};

const MESSAGES: usize = 1_000;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    match run() {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("blocking_echo failed: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<String, Box<dyn std::error::Error>> {
    let server = BlockingSocket::bind("127.0.0.1:0", Config::default())?;
    let client = BlockingSocket::bind("127.0.0.1:0", Config::default())?;
    let server_addr = server.local_addr();
    let started = Instant::now();

    // The server echoes each message back with guaranteed delivery, then
    // drains and closes (the original's `cleanup()`, with a deadline).
    let server = std::thread::spawn(move || -> Result<u64, String> {
        let mut buf = vec![0u8; server.max_payload_size()];
        let mut pending = Vec::with_capacity(MESSAGES);
        for _ in 0..MESSAGES {
            let (len, from) = server.recv_from(&mut buf).map_err(|e| e.to_string())?;
            let echo = server
                .send_to(buf[..len].to_vec(), from)
                .map_err(|e| e.to_string())?;
            pending.push(echo);
        }
        for echo in pending {
            echo.wait().map_err(|e| e.to_string())?;
        }
        Ok(server
            .cleanup()
            .map_err(|e| e.to_string())?
            .stats
            .endpoint
            .delivered)
    });

    // The first message with the blocking send, the rest pipelined.
    client.send_to_blocking(&b"echo 0"[..], server_addr)?;
    let pending = (1..MESSAGES)
        .map(|n| client.send_to(format!("echo {n}"), server_addr))
        .collect::<Result<Vec<_>, _>>()?;
    let mut echoes = HashSet::new();
    for _ in 0..MESSAGES {
        let message = client.recv_timeout(Duration::from_secs(30))?;
        if !echoes.insert(message.payload) {
            return Err("an echo arrived twice".into());
        }
    }
    for send in pending {
        send.wait()?;
    }
    let server_delivered = server.join().map_err(|_| "server thread panicked")??;
    let elapsed = started.elapsed();
    let summary = client.cleanup()?;
    let missing = (0..MESSAGES)
        .filter(|n| !echoes.contains(format!("echo {n}").as_bytes()))
        .count();
    if missing > 0 {
        return Err(format!("{missing} echoes missing").into());
    }
    Ok(format!(
        "blocking_echo: {MESSAGES} messages echoed in {:.1} ms; client delivered {}, server delivered {}, failed {}, retransmissions {}, {} datagrams in {} send calls",
        elapsed.as_secs_f64() * 1e3,
        summary.stats.endpoint.delivered,
        server_delivered,
        summary.stats.endpoint.failed,
        summary.stats.endpoint.retransmissions,
        summary.stats.io.datagrams_sent,
        summary.stats.io.send_calls,
    ))
}
