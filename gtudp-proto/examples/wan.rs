//! A virtual-time WAN benchmark: saturating flows over one bottleneck.
//!
//! ```text
//! cargo run --release -p gtudp-proto --features sim --example wan -- \
//!     [--rtt-ms 20] [--rate-mbit 100] [--loss 0.01] [--queue-ms 20] [--jitter-ms 0] \
//!     [--seconds 10] [--size 1200] [--flows 1] [--seed 1] [--congestion bbr|aimd]
//! ```
//!
//! Each of `--flows` senders streams `--size`-byte messages to its own
//! receiver for `--seconds` of virtual time, always keeping messages queued.
//! Every sender's DATA and ACK cross one shared bottleneck of `--rate-mbit`
//! with a tail-drop queue of `--queue-ms`; RECV comes back on an unlimited
//! path. Each direction adds half of `--rtt-ms` of propagation delay plus
//! up to `--jitter-ms` of uniform jitter (so jitter also reorders), and
//! loses each datagram with probability `--loss` (`0.01`, `1%` and `1` all
//! mean 1%) on the wire after the bottleneck, so a lost DATA has used its
//! share of the link. `--congestion` picks the controller (default: the
//! endpoint's default).
//!
//! The last line on stdout is
//!
//! ```text
//! flows=F goodput_mbit=G link_mbit=M utilization=U bottleneck_drops=D retransmit_ratio=X delivered=N failed=K p50_ms=A p99_ms=B fairness=J
//! ```
//!
//! - `goodput_mbit`: unique payload bits handed to the receivers, per second;
//!   `utilization` is that over the link rate. The bottleneck counts 28
//!   bytes of IPv4 and UDP headers per datagram besides gtUDP's own 5, so a
//!   clean link of 1,200-byte messages tops out near 0.973, and a random
//!   loss of `p` caps it near `0.973 × (1 - p)`.
//! - `bottleneck_drops`: datagrams dropped at the full bottleneck queue.
//! - `retransmit_ratio`: DATA datagrams sent per message delivered.
//! - `delivered`, `failed`: messages handed over, and sends that failed.
//! - `p50_ms`, `p99_ms`: from a message's first transmission to its
//!   Delivered event at the sender (a round trip, plus any recovery).
//! - `fairness`: Jain's index over the flows' goodputs (1 is perfectly fair).
//!
//! A line before it gives details (datagrams sent into the bottleneck, the
//! drop share, spurious retransmissions, early loss detections). The same
//! arguments always print the same lines: everything runs on virtual time
//! from the seed.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use gtudp_proto::sim::{Clock, LinkProfile, Network};
use gtudp_proto::{Config, CongestionAlgorithm, Endpoint, Event};

/// Messages each sender keeps waiting beyond what is in flight, so the
/// application never limits the flow.
const BACKLOG: usize = 512;

#[derive(Clone, Debug)]
struct Args {
    rtt_ms: f64,
    rate_mbit: f64,
    loss: f64,
    queue_ms: f64,
    jitter_ms: f64,
    seconds: f64,
    size: usize,
    flows: usize,
    seed: u64,
    congestion: Option<CongestionAlgorithm>,
}

impl Default for Args {
    fn default() -> Self {
        Self {
            rtt_ms: 20.0,
            rate_mbit: 100.0,
            loss: 0.01,
            queue_ms: 20.0,
            jitter_ms: 0.0,
            seconds: 10.0,
            size: 1200,
            flows: 1,
            seed: 1,
            congestion: None,
        }
    }
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("wan: {problem}");
    eprintln!(
        "usage: wan [--rtt-ms 20] [--rate-mbit 100] [--loss 0.01] [--queue-ms 20] [--jitter-ms 0] \
         [--seconds 10] [--size 1200] [--flows 1] [--seed 1] [--congestion bbr|aimd]"
    );
    ExitCode::from(2)
}

fn probability(value: &str) -> Result<f64, String> {
    let number: f64 = value
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("not a probability: {value}"))?;
    let p = if value.ends_with('%') || number > 1.0 {
        number / 100.0
    } else {
        number
    };
    if (0.0..1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("loss out of range: {value}"))
    }
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{flag} needs a number, not {value}"))
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args::default();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--rtt-ms" => parsed.rtt_ms = number(&flag, &value)?,
            "--rate-mbit" => parsed.rate_mbit = number(&flag, &value)?,
            "--loss" => parsed.loss = probability(&value)?,
            "--queue-ms" => parsed.queue_ms = number(&flag, &value)?,
            "--jitter-ms" => parsed.jitter_ms = number(&flag, &value)?,
            "--seconds" => parsed.seconds = number(&flag, &value)?,
            "--size" => parsed.size = number(&flag, &value)?,
            "--flows" => parsed.flows = number(&flag, &value)?,
            "--seed" => parsed.seed = number(&flag, &value)?,
            "--congestion" => {
                parsed.congestion = Some(match value.as_str() {
                    "bbr" => CongestionAlgorithm::Bbr,
                    "aimd" => CongestionAlgorithm::Aimd,
                    other => return Err(format!("unknown controller {other}")),
                })
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let positive = [
        ("--rtt-ms", parsed.rtt_ms),
        ("--rate-mbit", parsed.rate_mbit),
        ("--seconds", parsed.seconds),
    ];
    if let Some((flag, _)) = positive.iter().find(|(_, v)| !(*v > 0.0 && v.is_finite())) {
        return Err(format!("{flag} must be above 0"));
    }
    if !(parsed.queue_ms >= 0.0 && parsed.jitter_ms >= 0.0) {
        return Err("--queue-ms and --jitter-ms must not be negative".into());
    }
    if parsed.flows == 0 || parsed.flows > 64 {
        return Err("--flows must be 1 to 64".into());
    }
    Ok(parsed)
}

/// One sender and its receiver.
struct Flow {
    sender: Endpoint,
    receiver: Endpoint,
    sender_addr: SocketAddr,
    receiver_addr: SocketAddr,
    /// Messages accepted and not yet resolved.
    unresolved: usize,
    next_seq: u64,
    /// First transmission of message `seq`, once sent.
    first_sent: Vec<Option<Duration>>,
    /// Sequence number of each message id (ids are given out in order).
    first_id: Option<u64>,
    delivered_bytes: u64,
    delivered: u64,
    failed: u64,
}

fn duration_ms(ms: f64) -> Duration {
    Duration::from_nanos((ms * 1e6).round() as u64)
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(problem) => return usage(&problem),
    };
    match run(&args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(problem) => usage(&problem),
    }
}

fn run(args: &Args) -> Result<String, String> {
    let rate_bytes = (args.rate_mbit * 1e6 / 8.0).round() as u64;
    let one_way = duration_ms(args.rtt_ms / 2.0);
    let mut config = Config::default();
    if let Some(congestion) = args.congestion {
        config.congestion = congestion;
    }
    if args.size > config.max_payload_size() {
        config.max_datagram_size = args.size + config.framing.header_len();
    }
    config.limits.max_outstanding_messages = config
        .limits
        .max_outstanding_messages
        .max(config.max_window as usize + 2 * BACKLOG);

    let mut wire = LinkProfile::clean();
    wire.delay = one_way;
    wire.jitter = duration_ms(args.jitter_ms);
    wire.loss = args.loss;
    wire.loss_after_queue = true;
    let mut bottleneck = wire.clone();
    bottleneck.rate = Some(rate_bytes.max(1));
    bottleneck.queue_limit = duration_ms(args.queue_ms);
    bottleneck.bottleneck = Some(0);
    bottleneck.wire_overhead = 28;
    let mut net = Network::new(args.seed, wire.clone());
    let header_len = config.framing.header_len();
    let max_transit = bottleneck.max_transit(config.max_datagram_size) + wire.max_transit(0);
    config.datagram_lifetime = config.datagram_lifetime.max(max_transit * 2);

    let mut flows = Vec::with_capacity(args.flows);
    for i in 0..args.flows {
        let sender_addr = SocketAddr::from(([10, 0, 1, i as u8 + 1], 9000));
        let receiver_addr = SocketAddr::from(([10, 0, 2, i as u8 + 1], 9000));
        net.set_link(sender_addr, receiver_addr, bottleneck.clone());
        let seed = u128::from(args.seed) << 16 | (i as u128) << 1;
        let sender = Endpoint::new(config.clone(), seed).map_err(|e| e.to_string())?;
        let receiver = Endpoint::new(config.clone(), seed | 1).map_err(|e| e.to_string())?;
        flows.push(Flow {
            sender,
            receiver,
            sender_addr,
            receiver_addr,
            unresolved: 0,
            next_seq: 0,
            first_sent: Vec::new(),
            first_id: None,
            delivered_bytes: 0,
            delivered: 0,
            failed: 0,
        });
    }

    let payload = Bytes::from(vec![0u8; args.size]);
    let mut clock = Clock::new();
    let end = Duration::from_secs_f64(args.seconds);
    let mut buf = Vec::new();
    let mut latencies: Vec<Duration> = Vec::new();
    let mut pending_to: Vec<(SocketAddr, SocketAddr, Bytes)> = Vec::new();
    let mut spins = 0;

    loop {
        let now = clock.now();
        let elapsed = clock.elapsed();
        // Deliver what has arrived.
        while let Some(datagram) = net.poll_delivery(elapsed) {
            if let Some(flow) = flows
                .iter_mut()
                .find(|f| datagram.to == f.sender_addr || datagram.to == f.receiver_addr)
            {
                let endpoint = if datagram.to == flow.sender_addr {
                    &mut flow.sender
                } else {
                    &mut flow.receiver
                };
                endpoint.handle_datagram(now, datagram.from, datagram.payload);
            }
        }
        for flow in &mut flows {
            for endpoint in [&mut flow.sender, &mut flow.receiver] {
                if endpoint.poll_timeout().is_some_and(|at| at <= now) {
                    endpoint.handle_timeout(now);
                }
            }
            // Keep the sender busy.
            if elapsed < end {
                let queued = flow
                    .sender
                    .peer_stats(flow.receiver_addr)
                    .map_or(0, |stats| stats.queued);
                let mut room = BACKLOG.saturating_sub(queued);
                while room > 0 {
                    let mut message = payload.to_vec();
                    message[..8.min(args.size)]
                        .copy_from_slice(&flow.next_seq.to_be_bytes()[..8.min(args.size)]);
                    match flow
                        .sender
                        .send(now, flow.receiver_addr, Bytes::from(message))
                    {
                        Ok(id) => {
                            flow.first_id.get_or_insert(id.as_u64());
                            flow.next_seq += 1;
                            flow.first_sent.push(None);
                            flow.unresolved += 1;
                        }
                        Err(_) => break,
                    }
                    room -= 1;
                }
            }
            // Transmit, noting each message's first transmission.
            while let Some(t) = flow.sender.poll_transmit(now, 1, &mut buf) {
                if buf.len() >= header_len + 8 && args.size >= 8 {
                    if let Ok(seq_bytes) = buf[header_len..header_len + 8].try_into() {
                        let seq = u64::from_be_bytes(seq_bytes) as usize;
                        if let Some(slot @ None) = flow.first_sent.get_mut(seq) {
                            *slot = Some(elapsed);
                        }
                    }
                }
                pending_to.push((
                    flow.sender_addr,
                    t.destination,
                    Bytes::copy_from_slice(&buf[..t.size]),
                ));
            }
            while let Some(t) = flow.receiver.poll_transmit(now, 1, &mut buf) {
                pending_to.push((
                    flow.receiver_addr,
                    t.destination,
                    Bytes::copy_from_slice(&buf[..t.size]),
                ));
            }
            while let Some(event) = flow.sender.poll_event() {
                match event {
                    Event::Delivered { id, .. } => {
                        flow.unresolved -= 1;
                        let seq = id.as_u64() - flow.first_id.unwrap_or(0);
                        if let Some(Some(sent)) = flow.first_sent.get(seq as usize) {
                            if elapsed <= end {
                                latencies.push(elapsed - *sent);
                            }
                        }
                    }
                    Event::Failed { .. } => {
                        flow.unresolved -= 1;
                        if elapsed <= end {
                            flow.failed += 1;
                        }
                    }
                    _ => {}
                }
            }
            while let Some(event) = flow.receiver.poll_event() {
                if let Event::Received { payload, .. } = event {
                    if elapsed <= end {
                        flow.delivered += 1;
                        flow.delivered_bytes += payload.len() as u64;
                    }
                }
            }
        }
        for (from, to, datagram) in pending_to.drain(..) {
            net.send(elapsed, from, to, datagram);
        }
        // Next instant anything happens.
        let mut next = net.next_delivery();
        for flow in &mut flows {
            for endpoint in [&mut flow.sender, &mut flow.receiver] {
                if let Some(at) = endpoint.poll_timeout() {
                    let offset = clock.offset(at);
                    next = Some(next.map_or(offset, |n| n.min(offset)));
                }
            }
        }
        match next {
            Some(next) if next <= end => {
                if next > elapsed {
                    clock.advance_to(next);
                    spins = 0;
                } else {
                    // A timer due now that asked for nothing more: after a
                    // few passes, step past it.
                    spins += 1;
                    if spins > 3 {
                        clock.advance_to(elapsed + Duration::from_micros(1));
                        spins = 0;
                    }
                }
            }
            _ => break,
        }
    }

    let seconds = args.seconds;
    let goodputs: Vec<f64> = flows
        .iter()
        .map(|f| f.delivered_bytes as f64 * 8.0 / seconds / 1e6)
        .collect();
    let goodput: f64 = goodputs.iter().sum();
    let sum_sq: f64 = goodputs.iter().map(|g| g * g).sum();
    let fairness = if sum_sq > 0.0 {
        goodput * goodput / (goodputs.len() as f64 * sum_sq)
    } else {
        0.0
    };
    let delivered: u64 = flows.iter().map(|f| f.delivered).sum();
    let failed: u64 = flows.iter().map(|f| f.failed).sum();
    let data_sent: u64 = flows
        .iter()
        .map(|f| f.sender.stats().datagrams_out.data)
        .sum();
    let spurious: u64 = flows
        .iter()
        .map(|f| f.sender.stats().spurious_retransmissions)
        .sum();
    let early: u64 = flows
        .iter()
        .map(|f| f.sender.stats().loss_detected_early)
        .sum();
    let retransmissions: u64 = flows.iter().map(|f| f.sender.stats().retransmissions).sum();
    latencies.sort_unstable();
    let percentile = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let index = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[index].as_secs_f64() * 1e3
    };
    let stats = net.stats();
    let into_bottleneck = data_sent
        + flows
            .iter()
            .map(|f| f.sender.stats().datagrams_out.ack)
            .sum::<u64>();
    let per_flow: Vec<String> = goodputs.iter().map(|g| format!("{g:.2}")).collect();
    println!(
        "details: congestion={:?} bottleneck_sent={} bottleneck_drop_pct={:.3} wire_lost={} \
         retransmissions={} spurious={} loss_detected_early={} per_flow_mbit={}",
        config.congestion,
        into_bottleneck,
        100.0 * stats.rate_dropped as f64 / into_bottleneck.max(1) as f64,
        stats.lost,
        retransmissions,
        spurious,
        early,
        per_flow.join(",")
    );
    Ok(format!(
        "flows={} goodput_mbit={:.2} link_mbit={} utilization={:.3} bottleneck_drops={} \
         retransmit_ratio={:.3} delivered={} failed={} p50_ms={:.1} p99_ms={:.1} fairness={:.3}",
        args.flows,
        goodput,
        args.rate_mbit,
        goodput / args.rate_mbit,
        stats.rate_dropped,
        data_sent as f64 / delivered.max(1) as f64,
        delivered,
        failed,
        percentile(0.5),
        percentile(0.99),
        fairness
    ))
}
