//! `echo_trace`: where the time of one echo goes. Runs ping-pong echoes
//! (one message in flight, 64 B, over 127.0.0.1) with gtudp-tokio or
//! gtudp-mio's blocking socket, records an `Instant` and the thread at each
//! step (the application's calls, and every datagram the socket layer
//! writes or reads, from its per-datagram `gtudp` debug event), and prints
//! each step's median offset from the client's send call.
//!
//! ```text
//! cargo run --release -p gtudp-bench --bin echo_trace -- [--impl tokio|blocking] [--count N]
//! ```
//!
//! A datagram's `out` time is taken just before its send system call, its
//! `in` time just after the receive call that read it. Recording costs
//! about a microsecond per step (the debug event is formatted into a
//! label), so absolute figures are a little above the `echo` benchmark's;
//! the order of the steps and the threads that run them are the point.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;

/// Trace one echo at a time.
#[derive(Parser, Debug)]
#[command(name = "echo_trace")]
struct Args {
    /// `tokio` (gtudp-tokio, multi-thread runtime with 2 workers, as the
    /// `echo` benchmark) or `blocking` (gtudp-mio's blocking socket).
    /// `raw-tokio` and `raw-std` are the plain sockets' echo, for
    /// comparison (application steps only).
    #[arg(long = "impl", default_value = "tokio", value_parser = ["tokio", "blocking", "raw-tokio", "raw-std"])]
    implementation: String,
    /// Echoes traced (after 200 untraced ones).
    #[arg(long, default_value_t = 2_000)]
    count: usize,
}

/// One recorded step: when, on which thread, what.
struct Step {
    at: Instant,
    thread: usize,
    label: String,
}

static STEPS: Mutex<Vec<Step>> = Mutex::new(Vec::new());
static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static THREAD: usize = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
}

fn record(label: String) {
    let at = Instant::now();
    let thread = THREAD.with(|t| *t);
    STEPS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Step { at, thread, label });
}

/// Records the `gtudp` per-datagram debug events as steps
/// (`<port> <in|out> <KIND>`).
struct Recorder {
    client_port: Arc<Mutex<u16>>,
}

#[derive(Default)]
struct Fields {
    message: String,
    local: String,
    direction: String,
    kind: String,
}

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "direction" {
            self.direction = value.to_owned();
        } else if field.name() == "kind" {
            self.kind = value.to_owned();
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            "local" => {
                let _ = write!(self.local, "{value:?}");
            }
            "direction" => {
                let _ = write!(self.direction, "{value:?}");
            }
            "kind" => {
                let _ = write!(self.kind, "{value:?}");
            }
            _ => {}
        }
    }
}

impl tracing::Subscriber for Recorder {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target() == "gtudp" && *metadata.level() == tracing::Level::DEBUG
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        if fields.message != "datagram" {
            return;
        }
        let client = *self.client_port.lock().unwrap_or_else(|p| p.into_inner());
        let side = if fields.local.ends_with(&format!(":{client}")) {
            "client"
        } else {
            "server"
        };
        let direction = fields.direction.trim_matches('"');
        let kind = fields.kind.trim_matches('"');
        record(format!("{side} {direction} {kind}"));
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let client_port = Arc::new(Mutex::new(0u16));
    tracing::subscriber::set_global_default(Recorder {
        client_port: client_port.clone(),
    })?;
    let tracing = Arc::new(std::sync::atomic::AtomicBool::new(false));
    match args.implementation.as_str() {
        "tokio" | "raw-tokio" => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            if args.implementation == "tokio" {
                runtime.block_on(tokio_echo(args.count, &client_port, &tracing))?;
            } else {
                runtime.block_on(raw_tokio_echo(args.count, &tracing))?;
            }
        }
        "raw-std" => raw_std_echo(args.count, &tracing)?,
        _ => blocking_echo(args.count, &client_port, &tracing)?,
    }
    report(args.count);
    Ok(())
}

fn mark(on: &std::sync::atomic::AtomicBool, label: &str) {
    if on.load(Ordering::Relaxed) {
        record(label.to_owned());
    }
}

async fn tokio_echo(
    count: usize,
    client_port: &Mutex<u16>,
    on: &Arc<std::sync::atomic::AtomicBool>,
) -> Result<(), Box<dyn std::error::Error>> {
    use gtudp_tokio::{Config, Socket};
    let server = Socket::bind("127.0.0.1:0", Config::default()).await?;
    let client = Socket::bind("127.0.0.1:0", Config::default()).await?;
    *client_port.lock().unwrap_or_else(|p| p.into_inner()) = client.local_addr().port();
    let echo = {
        let server = server.clone();
        let on = on.clone();
        tokio::spawn(async move {
            while let Ok(message) = server.recv().await {
                mark(&on, "server recv returned");
                if let Ok(delivery) = server.start_send(message.payload, message.from).await {
                    drop(delivery);
                }
                mark(&on, "server start_send returned");
            }
        })
    };
    let payload = Bytes::from(vec![7u8; 64]);
    for i in 0..count + 200 {
        if i == 200 {
            on.store(true, Ordering::Relaxed);
        }
        mark(on, "client start_send called");
        let delivery = client
            .start_send(payload.clone(), server.local_addr())
            .await?;
        drop(delivery);
        mark(on, "client start_send returned");
        let _ = tokio::time::timeout(Duration::from_secs(5), client.recv()).await??;
        mark(on, "client recv returned");
    }
    on.store(false, Ordering::Relaxed);
    let _ = client.close().await;
    let _ = server.close().await;
    echo.abort();
    Ok(())
}

async fn raw_tokio_echo(
    count: usize,
    on: &Arc<std::sync::atomic::AtomicBool>,
) -> Result<(), Box<dyn std::error::Error>> {
    let server = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    let server_addr = server.local_addr()?;
    let echo = {
        let on = on.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            while let Ok((len, from)) = server.recv_from(&mut buf).await {
                mark(&on, "server recv returned");
                let _ = server.send_to(&buf[..len], from).await;
                mark(&on, "server send_to returned");
            }
        })
    };
    let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    let payload = vec![7u8; 64];
    let mut buf = vec![0u8; 2048];
    for i in 0..count + 200 {
        if i == 200 {
            on.store(true, Ordering::Relaxed);
        }
        mark(on, "client send_to called");
        client.send_to(&payload, server_addr).await?;
        mark(on, "client send_to returned");
        let _ = tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf)).await??;
        mark(on, "client recv returned");
    }
    on.store(false, Ordering::Relaxed);
    echo.abort();
    Ok(())
}

fn raw_std_echo(
    count: usize,
    on: &Arc<std::sync::atomic::AtomicBool>,
) -> Result<(), Box<dyn std::error::Error>> {
    let server = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let server_addr = server.local_addr()?;
    server.set_read_timeout(Some(Duration::from_millis(200)))?;
    let echo = {
        let on = on.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 2048];
            while let Ok((len, from)) = server.recv_from(&mut buf) {
                mark(&on, "server recv returned");
                let _ = server.send_to(&buf[..len], from);
                mark(&on, "server send_to returned");
            }
        })
    };
    let client = std::net::UdpSocket::bind("127.0.0.1:0")?;
    client.set_read_timeout(Some(Duration::from_secs(5)))?;
    let payload = vec![7u8; 64];
    let mut buf = vec![0u8; 2048];
    for i in 0..count + 200 {
        if i == 200 {
            on.store(true, Ordering::Relaxed);
        }
        mark(on, "client send_to called");
        client.send_to(&payload, server_addr)?;
        mark(on, "client send_to returned");
        client.recv_from(&mut buf)?;
        mark(on, "client recv returned");
    }
    on.store(false, Ordering::Relaxed);
    let _ = echo.join();
    Ok(())
}

fn blocking_echo(
    count: usize,
    client_port: &Mutex<u16>,
    on: &Arc<std::sync::atomic::AtomicBool>,
) -> Result<(), Box<dyn std::error::Error>> {
    use gtudp_mio::{BlockingSocket, Config};
    let server = Arc::new(BlockingSocket::bind("127.0.0.1:0", Config::default())?);
    let client = BlockingSocket::bind("127.0.0.1:0", Config::default())?;
    *client_port.lock().unwrap_or_else(|p| p.into_inner()) = client.local_addr().port();
    let echo = {
        let server = server.clone();
        let on = on.clone();
        std::thread::spawn(move || {
            while let Ok(message) = server.recv() {
                mark(&on, "server recv returned");
                if let Ok(pending) = server.send_to(message.payload, message.from) {
                    drop(pending);
                }
                mark(&on, "server send_to returned");
            }
        })
    };
    let payload = Bytes::from(vec![7u8; 64]);
    for i in 0..count + 200 {
        if i == 200 {
            on.store(true, Ordering::Relaxed);
        }
        mark(on, "client send_to called");
        drop(client.send_to(payload.clone(), server.local_addr())?);
        mark(on, "client send_to returned");
        let _ = client.recv_timeout(Duration::from_secs(5))?;
        mark(on, "client recv returned");
    }
    on.store(false, Ordering::Relaxed);
    let _ = client.close();
    let _ = server.close();
    let _ = echo.join();
    Ok(())
}

/// Splits the steps into echoes (at each client send call) and prints, per
/// step, its median offset, how often it occurs per echo, and on which
/// threads it ran.
fn report(count: usize) {
    let steps = std::mem::take(&mut *STEPS.lock().unwrap_or_else(|p| p.into_inner()));
    let mut echoes: Vec<Vec<&Step>> = Vec::new();
    for step in &steps {
        if step.label.ends_with("called") {
            echoes.push(Vec::new());
        }
        if let Some(echo) = echoes.last_mut() {
            echo.push(step);
        }
    }
    // Per label (with its occurrence within the echo): offsets and threads.
    let mut offsets: HashMap<String, Vec<f64>> = HashMap::new();
    let mut threads: HashMap<String, HashMap<usize, usize>> = HashMap::new();
    let mut totals = Vec::new();
    for echo in &echoes {
        let Some(start) = echo.first().map(|s| s.at) else {
            continue;
        };
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for step in echo {
            let n = seen.entry(&step.label).or_insert(0);
            *n += 1;
            let key = if *n == 1 {
                step.label.clone()
            } else {
                format!("{} #{n}", step.label)
            };
            offsets
                .entry(key.clone())
                .or_default()
                .push(step.at.duration_since(start).as_secs_f64() * 1e6);
            *threads
                .entry(key)
                .or_default()
                .entry(step.thread)
                .or_insert(0) += 1;
            if step.label == "client recv returned" {
                totals.push(step.at.duration_since(start).as_secs_f64() * 1e6);
            }
        }
    }
    let mut rows: Vec<(f64, String, usize, String)> = offsets
        .into_iter()
        .map(|(key, mut v)| {
            v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
            let median = v[v.len() / 2];
            let mut on: Vec<(usize, usize)> = threads
                .get(&key)
                .map(|t| t.iter().map(|(k, v)| (*k, *v)).collect())
                .unwrap_or_default();
            on.sort_by_key(|t| std::cmp::Reverse(t.1));
            let on = on
                .iter()
                .take(3)
                .map(|(t, n)| format!("t{t} {:.0}%", *n as f64 * 100.0 / v.len() as f64))
                .collect::<Vec<_>>()
                .join(", ");
            (median, key, v.len(), on)
        })
        .collect();
    rows.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    totals.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    println!(
        "{} echoes traced; RTT (send call to recv return) p50 {:.1} µs",
        echoes.len().min(count),
        totals.get(totals.len() / 2).copied().unwrap_or(0.0)
    );
    println!();
    println!("| step | median µs from send call | per echo | threads (t0 = main) |");
    println!("|---|---|---|---|");
    for (median, key, n, on) in rows {
        let per = n as f64 / echoes.len().max(1) as f64;
        if per < 0.05 {
            continue;
        }
        println!("| {key} | {median:.1} | {per:.2} | {on} |");
    }
}
