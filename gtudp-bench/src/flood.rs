//! `flood`: what a spoofed flood costs one [`Endpoint`], with no socket in
//! the way: CPU per flood datagram, memory (accounted and resident), and
//! the datagrams sent back to the spoofed addresses.
//!
//! ```text
//! cargo run --release -p gtudp-bench --bin flood -- \
//!     [--addresses N] [--per-address K] [--rate DATAGRAMS_PER_S] [--payload BYTES]
//! ```
//!
//! The flood runs on virtual time at `--rate`: DATA with random identities
//! from `--addresses` distinct addresses that never answer, `--per-address`
//! each, round-robin (as `hostile.py` sends them). Every event is read as a
//! sink server would, every transmit is drained, and timers run when due.
//! The figure is wall-clock time per flood datagram, so it says how fast a
//! flood one core of the server keeps up with.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use gtudp_proto::{Config, Endpoint};

/// Replay a spoofed DATA flood against one endpoint on virtual time.
#[derive(Parser, Debug)]
struct Args {
    /// Distinct spoofed source addresses.
    #[arg(long, default_value_t = 50_000)]
    addresses: u32,
    /// DATA per address.
    #[arg(long, default_value_t = 150)]
    per_address: u32,
    /// Flood rate on virtual time, datagrams per second.
    #[arg(long, default_value_t = 200_000)]
    rate: u64,
    /// Payload bytes per DATA.
    #[arg(long, default_value_t = 0)]
    payload: usize,
}

fn resident_bytes() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
            let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(0)
}

/// A small deterministic generator for identities.
struct Lcg(u64);

impl Lcg {
    fn next_u32(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 32) as u32
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut endpoint = match Endpoint::new(Config::default(), 7) {
        Ok(endpoint) => endpoint,
        Err(error) => {
            eprintln!("flood: {error}");
            return ExitCode::FAILURE;
        }
    };
    let addresses: Vec<SocketAddr> = (0..args.addresses)
        .map(|n| {
            let ip = Ipv4Addr::from(0x7f00_0000 | (n + 2));
            SocketAddr::from((ip, 40_000))
        })
        .collect();
    let payload = vec![b'x'; args.payload];
    let mut rng = Lcg(1);
    let gap = Duration::from_nanos(1_000_000_000 / args.rate.max(1));
    let start = Instant::now();
    let mut now = start;
    let rss_before = resident_bytes();
    let mut buf = Vec::with_capacity(64 * 1024);
    let (mut sent_datagrams, mut sent_bytes, mut flood_bytes) = (0u64, 0u64, 0u64);
    let total = u64::from(args.addresses) * u64::from(args.per_address);
    let mut datagram = Vec::with_capacity(5 + payload.len());
    let mut peak_accounted = 0usize;
    let wall = Instant::now();
    let mut n = 0u64;
    for _ in 0..args.per_address {
        for &source in &addresses {
            datagram.clear();
            datagram.push(0x1D);
            datagram.extend_from_slice(&rng.next_u32().to_be_bytes());
            datagram.extend_from_slice(&payload);
            flood_bytes += datagram.len() as u64;
            endpoint.handle_datagram(now, source, Bytes::copy_from_slice(&datagram));
            while endpoint.poll_event().is_some() {}
            while let Some(transmit) = endpoint.poll_transmit(now, 1, &mut buf) {
                sent_datagrams += 1;
                sent_bytes += transmit.size as u64;
            }
            if endpoint.poll_timeout().is_some_and(|at| at <= now) {
                endpoint.handle_timeout(now);
            }
            n += 1;
            if n.is_multiple_of(65_536) {
                peak_accounted = peak_accounted.max(endpoint.table_sizes().remembered_bytes);
            }
            now += gap;
        }
    }
    let elapsed = wall.elapsed();
    let sizes = endpoint.table_sizes();
    let stats = endpoint.stats();
    let rss_growth = resident_bytes().saturating_sub(rss_before);
    println!(
        "flood: {}x{} payload={}B virtual_rate={}/s datagrams={} ns_per_datagram={:.0} \
         handled_per_s={:.0} replies={} amplification={:.2} peers={} unvalidated_peers={} \
         awaiting_ack={} remembered_bytes_peak={:.1}MiB rss_growth={:.1}MiB \
         unanswered_full={} probes={}",
        args.addresses,
        args.per_address,
        args.payload,
        args.rate,
        total,
        elapsed.as_nanos() as f64 / total.max(1) as f64,
        total as f64 / elapsed.as_secs_f64().max(1e-9),
        sent_datagrams,
        sent_bytes as f64 / flood_bytes.max(1) as f64,
        sizes.peers,
        sizes.unvalidated_peers,
        sizes.awaiting_ack,
        peak_accounted.max(sizes.remembered_bytes) as f64 / f64::from(1u32 << 20),
        rss_growth as f64 / f64::from(1u32 << 20),
        stats.dropped.data_unanswered_full,
        stats.validation_probes,
    );
    ExitCode::SUCCESS
}
