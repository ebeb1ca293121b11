//! Cost per message against the length of the run: whether any table bound
//! or memory size makes a message dearer as a stream goes on (a cliff).
//!
//! ```text
//! cargo bench -p gtudp-proto --bench curve                 # the whole curve
//! cargo bench -p gtudp-proto --bench curve -- pair 1000000 # one point
//! cargo bench -p gtudp-proto --bench curve -- peers 10000 100
//! ```
//!
//! `pair N` sends N messages of 64 bytes from one endpoint to another in
//! batches of 64, through the full DATA → RECV → ACK exchange, at 500,000
//! messages per virtual second: from about 10⁶ messages on, the receiver
//! remembers its steady 1.0–1.25 million identities (the default 2 s
//! `datagram_lifetime`), so the longer runs cross every table's working
//! size many times over. `peers P M` has P client endpoints send M
//! messages each to one server, one message per client per round.
//!
//! A plain bench binary rather than criterion: one point of the curve is one
//! long run (10⁷ messages take seconds), and what matters is the cost per
//! message of each length beside the others, printed as one table with the
//! ratio of the longest to the shortest.

#[path = "support/link.rs"]
mod link;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gtudp_proto::{Config, Endpoint, Limits};
use link::Link;

/// What one point of the curve measured.
struct Point {
    name: String,
    messages: u64,
    elapsed: Duration,
    retransmissions: u64,
    /// The receiver's remembered identities and their bytes at the end.
    remembered: usize,
    remembered_bytes: usize,
    /// A pair's longest round of 64 messages: a pause of the core (a
    /// table allocated, or rebuilt, in one call) shows here.
    longest_round: Option<Duration>,
}

impl Point {
    fn ns_per_message(&self) -> f64 {
        self.elapsed.as_nanos() as f64 / self.messages as f64
    }

    fn print(&self) {
        println!(
            "| {} | {} | {:.0} | {} | {} | {:.1} MB | {} |",
            self.name,
            self.messages,
            self.ns_per_message(),
            self.retransmissions,
            self.remembered,
            self.remembered_bytes as f64 / 1e6,
            self.longest_round.map_or("-".to_string(), |round| format!(
                "{:.0} µs",
                round.as_secs_f64() * 1e6
            ))
        );
    }
}

/// `messages` through one pair, 64 at a time, at 500,000 per virtual second.
fn pair(messages: u64) -> Point {
    const RATE: u32 = 500_000;
    let batch = 64;
    let step = Duration::from_secs(1) * batch as u32 / RATE;
    let payload = Bytes::from(vec![0x5a; 64]);
    let mut link = Link::new();
    let rounds = messages.div_ceil(batch as u64);
    let start = Instant::now();
    let mut longest_round = Duration::ZERO;
    let mut round_start = start;
    for _ in 0..rounds {
        link.round_then_wait(&payload, batch, step);
        let round_end = Instant::now();
        longest_round = longest_round.max(round_end - round_start);
        round_start = round_end;
    }
    let elapsed = start.elapsed();
    let delivered = link.a.stats().delivered;
    assert_eq!(delivered, rounds * batch as u64, "every message delivered");
    let sizes = link.b.table_sizes();
    Point {
        name: format!("pair {messages}"),
        messages: delivered,
        elapsed,
        retransmissions: link.a.stats().retransmissions,
        remembered: sizes.remembered,
        remembered_bytes: sizes.remembered_bytes,
        longest_round: Some(longest_round),
    }
}

/// `clients` endpoints sending `each` messages to one server, one message
/// per client per round, at 500,000 messages per virtual second in all.
fn peers(clients: usize, each: u64) -> Point {
    let mut server_config = Config::default();
    let limits: &mut Limits = &mut server_config.limits;
    limits.max_peers = limits.max_peers.max(clients);
    limits.max_unvalidated_peers = limits.max_unvalidated_peers.max(clients);
    let mut server = Endpoint::new(server_config, 1).expect("valid");
    let server_addr: SocketAddr = "10.0.0.1:1".parse().expect("address");
    let address = |client: usize| -> SocketAddr {
        let [_, _, high, low] = (client as u32).to_be_bytes();
        ([10, 1, high, low], 9000).into()
    };
    let index = |address: SocketAddr| -> usize {
        match address {
            SocketAddr::V4(v4) => {
                let [_, _, high, low] = v4.ip().octets();
                usize::from(u16::from_be_bytes([high, low]))
            }
            SocketAddr::V6(_) => usize::MAX,
        }
    };
    let mut clients_ep: Vec<Endpoint> = (0..clients)
        .map(|client| Endpoint::new(Config::default(), 10 + client as u128).expect("valid"))
        .collect();
    let payload = Bytes::from(vec![0x5a; 64]);
    let step = Duration::from_secs(1) * clients as u32 / 500_000;
    let mut now = Instant::now();
    let mut buf = Vec::with_capacity(65_536);
    let mut inbox: Vec<(usize, Bytes)> = Vec::with_capacity(clients);
    // The server's datagrams, by client; reused, so that the server's time
    // does not count growing it.
    let mut replies: Vec<(usize, Bytes)> = Vec::with_capacity(2 * clients);
    // The server's own time, apart from the clients': each round's work is
    // done in phases (clients, server, clients), and the server phases are
    // timed.
    let mut server_time = Duration::ZERO;
    let start = Instant::now();
    // `each` rounds of one message per client, then rounds without new
    // messages until every one is resolved (at most 500 virtual seconds).
    let mut round = 0u64;
    let outstanding = |clients: &[Endpoint]| {
        clients
            .iter()
            .any(|client| client.table_sizes().messages > 0)
    };
    while round < each || (outstanding(&clients_ep) && round < each + 25_000) {
        if round < each {
            for client in clients_ep.iter_mut() {
                client
                    .send(now, server_addr, payload.clone())
                    .expect("accepted");
            }
        }
        round += 1;
        loop {
            for (i, client) in clients_ep.iter_mut().enumerate() {
                while let Some(t) = client.poll_transmit(now, 1, &mut buf) {
                    inbox.push((i, Bytes::copy_from_slice(&buf[..t.size])));
                }
                while client.poll_event().is_some() {}
            }
            let moved = !inbox.is_empty();
            let server_start = Instant::now();
            server_turn(
                &mut server,
                now,
                &mut inbox,
                &mut replies,
                &mut buf,
                address,
                index,
            );
            server_time += server_start.elapsed();
            let replied = !replies.is_empty();
            for (i, datagram) in replies.drain(..) {
                if let Some(client) = clients_ep.get_mut(i) {
                    client.handle_datagram(now, server_addr, datagram);
                }
            }
            if !moved && !replied {
                break;
            }
        }
        now += step;
        let server_start = Instant::now();
        server_timeout(&mut server, now);
        server_time += server_start.elapsed();
        for client in clients_ep.iter_mut() {
            client.handle_timeout(now);
        }
    }
    let elapsed = start.elapsed();
    let delivered: u64 = clients_ep.iter().map(|c| c.stats().delivered).sum();
    assert_eq!(delivered, clients as u64 * each, "every message delivered");
    let sizes = server.table_sizes();
    eprintln!(
        "peers {clients} x {each}: the server alone {:.0} ns per message",
        server_time.as_nanos() as f64 / delivered as f64
    );
    Point {
        name: format!("peers {clients} x {each}"),
        messages: delivered,
        elapsed,
        retransmissions: clients_ep.iter().map(|c| c.stats().retransmissions).sum(),
        remembered: sizes.remembered,
        remembered_bytes: sizes.remembered_bytes,
        longest_round: None,
    }
}

/// Datagrams an adapter feeds the endpoint before it polls: gtudp-tokio
/// reads up to four `recvmmsg` batches of 32, then sends what they drew.
const ADAPTER_BATCH: usize = 4 * 32;

/// The server's share of one exchange step in `peers`: the datagrams the
/// clients sent, polled as an adapter polls, after each batch of
/// [`ADAPTER_BATCH`]. Out of line, like [`server_timeout`], so that a
/// profiler can count the server apart from the clients
/// (`callgrind --toggle-collect='curve::server_*'`).
#[inline(never)]
fn server_turn(
    server: &mut Endpoint,
    now: Instant,
    inbox: &mut Vec<(usize, Bytes)>,
    replies: &mut Vec<(usize, Bytes)>,
    buf: &mut Vec<u8>,
    address: impl Fn(usize) -> SocketAddr,
    index: impl Fn(SocketAddr) -> usize,
) {
    // As an adapter reads them: a batch at a time, prefetched, then each
    // datagram handled.
    for batch in inbox.chunks_mut(ADAPTER_BATCH) {
        server.prefetch(
            batch
                .iter()
                .map(|(i, datagram)| (address(*i), &datagram[..])),
        );
        for (i, datagram) in batch.iter_mut() {
            server.handle_datagram(now, address(*i), std::mem::take(datagram));
        }
        if batch.len() == ADAPTER_BATCH {
            poll_outputs(server, now, replies, buf, &index);
        }
    }
    inbox.clear();
    // The rest of the last batch, and what the timers drew.
    poll_outputs(server, now, replies, buf, &index);
}

/// Everything `server` has to send, into `replies`, and its events. (Its
/// name must not match `curve::server_*`: callgrind's toggle would stop
/// counting inside `server_turn`.)
fn poll_outputs(
    server: &mut Endpoint,
    now: Instant,
    replies: &mut Vec<(usize, Bytes)>,
    buf: &mut Vec<u8>,
    index: &impl Fn(SocketAddr) -> usize,
) {
    while let Some(t) = server.poll_transmit(now, 1, buf) {
        replies.push((index(t.destination), Bytes::copy_from_slice(&buf[..t.size])));
    }
    while server.poll_event().is_some() {}
}

/// The server's timers in `peers` (see [`server_turn`]).
#[inline(never)]
fn server_timeout(server: &mut Endpoint, now: Instant) {
    server.handle_timeout(now);
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let number = |i: usize| -> u64 {
        args.get(i)
            .and_then(|a| a.replace('_', "").parse().ok())
            .unwrap_or_else(|| panic!("usage: curve [pair N | peers P M]"))
    };
    println!("| run | messages | ns per message | retransmissions | remembered at end | remembered bytes | longest round |");
    println!("|---|---|---|---|---|---|---|");
    match args.first().map(String::as_str) {
        Some("pair") => pair(number(1)).print(),
        Some("peers") => peers(number(1) as usize, number(2)).print(),
        Some(other) => panic!("unknown run {other:?}: usage: curve [pair N | peers P M]"),
        None => {
            let short = pair(10_000);
            short.print();
            pair(1_000_000).print();
            let long = pair(10_000_000);
            long.print();
            peers(10_000, 100).print();
            println!(
                "\n10^7 ÷ 10^4 per message: {:.2}",
                long.ns_per_message() / short.ns_per_message()
            );
        }
    }
}
