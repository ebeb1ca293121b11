//! `echo`: echo (C messages in flight) and ping-pong (one in flight) over
//! 127.0.0.1, comparing raw std UDP, raw Tokio UDP, gtudp-tokio and
//! gtudp-mio's blocking socket in one run, the implementations alternated
//! round by round.
//!
//! ```text
//! cargo run --release -p gtudp-bench --bin echo -- [--count N] [--size BYTES] \
//!     [--concurrency 1,64] [--rounds R] [--only NAME,...]
//! ```
//!
//! Each echo is one message to an in-process echo server and its echo back;
//! the RTT is from the send to the echo's arrival (the payload carries its
//! send time). CPU time is the whole process's (client and server, user and
//! system, from `/proc/self/stat`) divided by the echoes. The gtUDP rows
//! also give retransmissions (both sockets); RSS is the process's resident
//! memory after the run (`VmRSS`).

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;

/// The implementations, in table order.
const NAMES: [&str; 4] = ["raw-std", "raw-tokio", "gtudp-tokio", "gtudp-blocking"];

/// No echo for this long ends a run as stalled.
const STALL: Duration = Duration::from_secs(5);

/// Echo and ping-pong latency and rate over loopback.
#[derive(Parser, Debug)]
#[command(name = "echo")]
struct Args {
    /// Echoes per run.
    #[arg(long, default_value_t = 20_000)]
    count: u64,
    /// Payload bytes (at least 16: sequence number and send time).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(16..=1_400))]
    size: u64,
    /// Messages in flight, one table each (1 is ping-pong).
    #[arg(long, value_delimiter = ',', default_values_t = [1u64, 64])]
    concurrency: Vec<u64>,
    /// Rounds; each round runs every implementation once; the median is
    /// reported.
    #[arg(long, default_value_t = 3)]
    rounds: u64,
    /// Only these implementations (comma-separated).
    #[arg(long, value_delimiter = ',', value_parser = clap::builder::PossibleValuesParser::new(NAMES))]
    only: Vec<String>,
    /// The blocking sockets' `BlockingOptions::spin`, in microseconds: how
    /// long a receive polls before it sleeps (default 0, as a std socket).
    #[arg(long, default_value_t = 0)]
    spin_us: u64,
}

/// One run's result.
#[derive(Clone, Debug)]
struct Run {
    echoes: u64,
    elapsed: Duration,
    cpu: Option<Duration>,
    p50_us: u64,
    p99_us: u64,
    retransmissions: Option<u64>,
    stalled: bool,
    /// Resident set size of the process after the run, in KiB.
    rss_kib: Option<u64>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.echoes as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut ok = true;
    for &concurrency in &args.concurrency {
        let mut runs: Vec<Vec<Run>> = vec![Vec::new(); NAMES.len()];
        for round in 0..args.rounds + 1 {
            for (i, name) in NAMES.iter().enumerate() {
                if !args.only.is_empty() && !args.only.iter().any(|o| o == name) {
                    continue;
                }
                let count = if round == 0 {
                    (args.count / 10).max(1)
                } else {
                    args.count
                };
                match run_one(
                    name,
                    count,
                    args.size as usize,
                    concurrency as usize,
                    args.spin_us,
                ) {
                    Ok(run) if round > 0 => {
                        eprintln!(
                            "  c={concurrency} round {round} {name}: {:.0}/s p50 {} us",
                            run.rate(),
                            run.p50_us
                        );
                        runs[i].push(run);
                    }
                    Ok(_) => {}
                    Err(error) => {
                        eprintln!("  {name}: error: {error}");
                        ok = false;
                    }
                }
            }
        }
        println!();
        println!(
            "{} echoes x {} B over 127.0.0.1, {} in flight, median of {} round(s)",
            args.count, args.size, concurrency, args.rounds
        );
        println!();
        println!("| implementation | echoes/s | RTT p50 µs | RTT p99 µs | CPU µs/echo | retransmissions | RSS MiB | stalled |");
        println!("|---|---|---|---|---|---|---|---|");
        let mut medians = Vec::new();
        for (i, name) in NAMES.iter().enumerate() {
            let mut runs = runs[i].clone();
            runs.sort_by(|a, b| {
                a.rate()
                    .partial_cmp(&b.rate())
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
            let Some(median) = runs.get(runs.len() / 2).cloned() else {
                continue;
            };
            println!(
                "| {name} | {:.0} | {} | {} | {} | {} | {} | {} |",
                median.rate(),
                median.p50_us,
                median.p99_us,
                median.cpu.map_or("n/a".to_owned(), |cpu| format!(
                    "{:.1}",
                    cpu.as_secs_f64() * 1e6 / median.echoes.max(1) as f64
                )),
                median
                    .retransmissions
                    .map_or("-".to_owned(), |r| r.to_string()),
                median.rss_kib.map_or("n/a".to_owned(), |kib| format!(
                    "{:.1}",
                    kib as f64 / 1024.0
                )),
                median.stalled
            );
            medians.push((*name, median));
        }
        let find = |name: &str| medians.iter().find(|(n, _)| *n == name).map(|(_, r)| r);
        if let (Some(raw), Some(ours)) = (find("raw-tokio"), find("gtudp-tokio")) {
            println!();
            println!(
                "gtudp-tokio / raw-tokio: RTT p50 {:.2}x, rate {:.2}x",
                ours.p50_us as f64 / raw.p50_us.max(1) as f64,
                ours.rate() / raw.rate()
            );
        }
        if let (Some(raw), Some(ours)) = (find("raw-std"), find("gtudp-blocking")) {
            println!(
                "gtudp-blocking / raw-std: RTT p50 {:.2}x, rate {:.2}x",
                ours.p50_us as f64 / raw.p50_us.max(1) as f64,
                ours.rate() / raw.rate()
            );
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run_one(
    name: &str,
    count: u64,
    size: usize,
    concurrency: usize,
    spin_us: u64,
) -> io::Result<Run> {
    let cpu_before = cpu_time();
    let mut run = match name {
        "raw-std" => raw_std(count, size, concurrency)?,
        "gtudp-blocking" => blocking(count, size, concurrency, spin_us)?,
        _ => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let run = runtime.block_on(async {
                match name {
                    "raw-tokio" => raw_tokio(count, size, concurrency).await,
                    _ => gtudp_tokio(count, size, concurrency).await,
                }
            });
            runtime.shutdown_timeout(Duration::from_secs(1));
            run?
        }
    };
    run.rss_kib = rss_kib();
    run.cpu = match (cpu_before, cpu_time()) {
        (Some(before), Some(after)) => Some(after.saturating_sub(before)),
        _ => None,
    };
    Ok(run)
}

/// The process's resident set size (`VmRSS` of `/proc/self/status`), KiB.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User + system CPU time of the process so far (Linux), in clock ticks of
/// 10 ms converted to a duration.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13
    // after the name, counted from 1 at the state field.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// Counts echoes and their RTTs: the payload is sequence number then send
/// time in nanoseconds since `epoch`.
struct Tally {
    epoch: Instant,
    histogram: Histogram<u64>,
    echoes: u64,
}

impl Tally {
    fn new() -> Self {
        Self {
            epoch: Instant::now(),
            histogram: Histogram::new_with_bounds(1, 60_000_000, 3)
                .unwrap_or_else(|_| unreachable!()),
            echoes: 0,
        }
    }

    fn payload(&self, seq: u64, size: usize) -> Vec<u8> {
        let mut buf = vec![0u8; size];
        buf[..8].copy_from_slice(&seq.to_be_bytes());
        let nanos = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        buf[8..16].copy_from_slice(&nanos.to_be_bytes());
        buf
    }

    fn echo(&mut self, echo: &[u8]) {
        let Some(sent) = echo.get(8..16).and_then(|b| <[u8; 8]>::try_from(b).ok()) else {
            return;
        };
        let sent = Duration::from_nanos(u64::from_be_bytes(sent));
        let rtt = self.epoch.elapsed().saturating_sub(sent);
        let _ = self.histogram.record((rtt.as_micros() as u64).max(1));
        self.echoes += 1;
    }

    fn finish(self, start: Instant, stalled: bool, retransmissions: Option<u64>) -> Run {
        Run {
            echoes: self.echoes,
            elapsed: start.elapsed(),
            cpu: None,
            p50_us: self.histogram.value_at_quantile(0.5),
            p99_us: self.histogram.value_at_quantile(0.99),
            retransmissions,
            stalled,
            rss_kib: None,
        }
    }
}

fn raw_std(count: u64, size: usize, concurrency: usize) -> io::Result<Run> {
    let server = UdpSocket::bind("127.0.0.1:0")?;
    let server_addr = server.local_addr()?;
    server.set_read_timeout(Some(Duration::from_millis(200)))?;
    let echo = std::thread::spawn(move || {
        let mut buf = vec![0u8; 2048];
        let mut idle = 0;
        while idle < 5 {
            match server.recv_from(&mut buf) {
                Ok((len, from)) => {
                    idle = 0;
                    let _ = server.send_to(&buf[..len], from);
                }
                Err(_) => idle += 1,
            }
        }
    });
    let client = UdpSocket::bind("127.0.0.1:0")?;
    client.set_read_timeout(Some(STALL))?;
    let mut tally = Tally::new();
    let start = Instant::now();
    let mut sent = 0u64;
    let mut buf = vec![0u8; 2048];
    let mut stalled = false;
    while tally.echoes < count {
        while sent < count && sent - tally.echoes < concurrency as u64 {
            client.send_to(&tally.payload(sent, size), server_addr)?;
            sent += 1;
        }
        match client.recv_from(&mut buf) {
            Ok((len, _)) => tally.echo(&buf[..len]),
            Err(_) => {
                stalled = true;
                break;
            }
        }
    }
    let run = tally.finish(start, stalled, None);
    let _ = echo.join();
    Ok(run)
}

async fn raw_tokio(count: u64, size: usize, concurrency: usize) -> io::Result<Run> {
    let server = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    let server_addr = server.local_addr()?;
    let echo = tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        while let Ok(Ok((len, from))) =
            tokio::time::timeout(Duration::from_secs(1), server.recv_from(&mut buf)).await
        {
            let _ = server.send_to(&buf[..len], from).await;
        }
    });
    let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    let mut tally = Tally::new();
    let start = Instant::now();
    let mut sent = 0u64;
    let mut buf = vec![0u8; 2048];
    let mut stalled = false;
    while tally.echoes < count {
        while sent < count && sent - tally.echoes < concurrency as u64 {
            client
                .send_to(&tally.payload(sent, size), server_addr)
                .await?;
            sent += 1;
        }
        match tokio::time::timeout(STALL, client.recv_from(&mut buf)).await {
            Ok(Ok((len, _))) => tally.echo(&buf[..len]),
            _ => {
                stalled = true;
                break;
            }
        }
    }
    let run = tally.finish(start, stalled, None);
    echo.abort();
    Ok(run)
}

async fn gtudp_tokio(count: u64, size: usize, concurrency: usize) -> io::Result<Run> {
    use gtudp_tokio::{Config, Socket};
    let server = Socket::bind("127.0.0.1:0", Config::default())
        .await
        .map_err(io::Error::other)?;
    let server_addr = server.local_addr();
    let echo = {
        let server = server.clone();
        tokio::spawn(async move {
            while let Ok(message) = server.recv().await {
                // The outcome is not awaited: an echo server does not wait.
                if let Ok(delivery) = server.start_send(message.payload, message.from).await {
                    drop(delivery);
                }
            }
        })
    };
    let client = Socket::bind("127.0.0.1:0", Config::default())
        .await
        .map_err(io::Error::other)?;
    let mut tally = Tally::new();
    let start = Instant::now();
    let mut sent = 0u64;
    let mut stalled = false;
    while tally.echoes < count {
        while sent < count && sent - tally.echoes < concurrency as u64 {
            let delivery = client
                .start_send(Bytes::from(tally.payload(sent, size)), server_addr)
                .await
                .map_err(io::Error::other)?;
            drop(delivery);
            sent += 1;
        }
        match tokio::time::timeout(STALL, client.recv()).await {
            Ok(Ok(message)) => tally.echo(&message.payload),
            _ => {
                stalled = true;
                break;
            }
        }
    }
    let retransmissions =
        client.stats().endpoint.retransmissions + server.stats().endpoint.retransmissions;
    let run = tally.finish(start, stalled, Some(retransmissions));
    let _ = client.close().await;
    let _ = server.close().await;
    echo.abort();
    Ok(run)
}

fn blocking(count: u64, size: usize, concurrency: usize, spin_us: u64) -> io::Result<Run> {
    use gtudp_mio::{BlockingOptions, BlockingSocket, Config};
    let options = BlockingOptions::default().with_spin(Duration::from_micros(spin_us));
    let bind = || -> io::Result<BlockingSocket> {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
        BlockingSocket::with_options(socket, Config::default(), options).map_err(io::Error::other)
    };
    let server = Arc::new(bind()?);
    let server_addr: SocketAddr = server.local_addr();
    let echo = {
        let server = server.clone();
        std::thread::spawn(move || {
            while let Ok(message) = server.recv() {
                if let Ok(pending) = server.send_to(message.payload, message.from) {
                    drop(pending);
                }
            }
        })
    };
    let client = bind()?;
    let mut tally = Tally::new();
    let start = Instant::now();
    let mut sent = 0u64;
    let mut stalled = false;
    while tally.echoes < count {
        while sent < count && sent - tally.echoes < concurrency as u64 {
            let pending = client
                .send_to(Bytes::from(tally.payload(sent, size)), server_addr)
                .map_err(io::Error::other)?;
            drop(pending);
            sent += 1;
        }
        match client.recv_timeout(STALL) {
            Ok(message) => tally.echo(&message.payload),
            Err(_) => {
                stalled = true;
                break;
            }
        }
    }
    let retransmissions =
        client.stats().endpoint.retransmissions + server.stats().endpoint.retransmissions;
    let run = tally.finish(start, stalled, Some(retransmissions));
    let _ = client.close();
    let _ = server.close();
    let _ = echo.join();
    Ok(run)
}
