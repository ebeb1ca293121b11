//! Datagrams the system refuses as too large for the path
//! (`Endpoint::datagram_too_large`, EMSGSIZE in the adapters), on virtual
//! time: the messages that large fail at once with `TooLarge`, exactly
//! once, and are never sent again; smaller ones to the same peer, and
//! messages to other peers, are delivered; the peer remembers the size, so
//! a later message that large fails at `send`, until the memory expires or
//! the peer is forgotten.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gtudp_proto::{Config, Endpoint, Event, FailureReason, MessageId};

const STEP: Duration = Duration::from_millis(5);
/// The path's largest datagram (a 1,500-byte MTU, less IPv4 and UDP).
const PATH: usize = 1_472;

fn client_addr() -> SocketAddr {
    "10.0.0.1:4000".parse().unwrap()
}

fn server_addr() -> SocketAddr {
    "10.0.0.2:5000".parse().unwrap()
}

fn other_addr() -> SocketAddr {
    "10.0.0.3:6000".parse().unwrap()
}

fn config() -> Config {
    let mut config = Config::default();
    config.max_datagram_size = 20_000;
    config
}

/// A client whose path to `server_addr` takes datagrams up to `PATH`
/// bytes: a larger one is refused, as a socket that forbids fragmentation
/// refuses it with EMSGSIZE, and reported (with the limit when
/// `report_limit`). Other destinations take anything. Every datagram that
/// passes reaches a server endpoint at its address.
struct Run {
    now: Instant,
    client: Endpoint,
    servers: Vec<(SocketAddr, Endpoint)>,
    report_limit: bool,
    /// Refusals reported to the client.
    reports: usize,
    /// DATA sizes sent to each destination (refused ones included).
    sent: Vec<(SocketAddr, usize)>,
    outcomes: Vec<(MessageId, Result<(), FailureReason>)>,
    received: Vec<Bytes>,
    buf: Vec<u8>,
}

impl Run {
    fn new(report_limit: bool) -> Self {
        Self {
            now: Instant::now(),
            client: Endpoint::new(config(), 1).unwrap(),
            servers: vec![
                (server_addr(), Endpoint::new(config(), 2).unwrap()),
                (other_addr(), Endpoint::new(config(), 3).unwrap()),
            ],
            report_limit,
            reports: 0,
            sent: Vec::new(),
            outcomes: Vec::new(),
            received: Vec::new(),
            buf: Vec::new(),
        }
    }

    fn send(&mut self, to: SocketAddr, len: usize) -> MessageId {
        self.client
            .send(self.now, to, Bytes::from(vec![len as u8; len]))
            .unwrap()
    }

    /// Moves datagrams both ways and collects events, once.
    fn exchange(&mut self) {
        while let Some(transmit) = self.client.poll_transmit(self.now, 1, &mut self.buf) {
            let datagram = Bytes::copy_from_slice(&self.buf[..transmit.size]);
            let to = transmit.destination;
            if datagram.len() > 100 {
                self.sent.push((to, datagram.len()));
            }
            if to == server_addr() && datagram.len() > PATH {
                self.reports += 1;
                let limit = self.report_limit.then_some(PATH);
                self.client
                    .datagram_too_large(self.now, to, datagram.len(), limit);
                continue;
            }
            if let Some((_, server)) = self.servers.iter_mut().find(|(at, _)| *at == to) {
                server.handle_datagram(self.now, client_addr(), datagram);
            }
        }
        for (at, server) in &mut self.servers {
            while let Some(transmit) = server.poll_transmit(self.now, 1, &mut self.buf) {
                assert_eq!(transmit.destination, client_addr());
                let datagram = Bytes::copy_from_slice(&self.buf[..transmit.size]);
                self.client.handle_datagram(self.now, *at, datagram);
            }
            while let Some(event) = server.poll_event() {
                if let Event::Received { payload, .. } = event {
                    self.received.push(payload);
                }
            }
        }
        self.collect();
    }

    fn collect(&mut self) {
        while let Some(event) = self.client.poll_event() {
            match event {
                Event::Delivered { id, .. } => self.outcomes.push((id, Ok(()))),
                Event::Failed { id, reason, .. } => self.outcomes.push((id, Err(reason))),
                other => panic!("unexpected event {other:?}"),
            }
        }
    }

    /// Runs for `span` of virtual time in steps.
    fn run_for(&mut self, span: Duration) {
        let end = self.now + span;
        while self.now < end {
            self.exchange();
            self.now += STEP;
            self.client.handle_timeout(self.now);
            for (_, server) in &mut self.servers {
                server.handle_timeout(self.now);
            }
        }
        self.exchange();
    }

    fn outcome(&self, id: MessageId) -> Vec<Result<(), FailureReason>> {
        self.outcomes
            .iter()
            .filter(|(done, _)| *done == id)
            .map(|(_, outcome)| *outcome)
            .collect()
    }

    fn sent_to(&self, to: SocketAddr, size: usize) -> usize {
        self.sent.iter().filter(|sent| **sent == (to, size)).count()
    }
}

fn header_len() -> usize {
    config().framing.header_len()
}

/// The big message fails at once (in the exchange that sent it), exactly
/// once, with its size and the path's limit, and is never sent again; the
/// small one to the same peer and a big one to another peer arrive.
#[test]
fn a_refused_message_fails_at_once_and_smaller_ones_are_delivered() {
    let mut run = Run::new(true);
    let big = run.send(server_addr(), 16_000);
    let small = run.send(server_addr(), 1_000);
    let elsewhere = run.send(other_addr(), 16_000);
    run.exchange();
    let size = 16_000 + header_len();
    assert_eq!(
        run.outcome(big),
        [Err(FailureReason::TooLarge {
            size,
            limit: Some(PATH)
        })],
        "failed in the exchange that sent it, before any timeout"
    );
    run.run_for(Duration::from_secs(30));
    assert_eq!(run.outcome(big).len(), 1, "exactly one outcome");
    assert_eq!(run.outcome(small), [Ok(())]);
    assert_eq!(run.outcome(elsewhere), [Ok(())]);
    assert_eq!(run.sent_to(server_addr(), size), 1, "never resent");
    assert_eq!(run.reports, 1);
    assert_eq!(run.client.stats().too_large_reports, 1);
    let mut lengths: Vec<usize> = run.received.iter().map(Bytes::len).collect();
    lengths.sort_unstable();
    assert_eq!(
        lengths,
        [1_000, 16_000],
        "the big one went to the other peer"
    );
}

/// Without a known limit, only messages at least as large as the refused
/// datagram fail, and a smaller one that is still too large takes its own
/// refusal; with the limit, every message above it fails on the first
/// refusal, including those queued behind the window and never sent.
#[test]
fn the_limit_decides_which_messages_fail() {
    for report_limit in [false, true] {
        let mut run = Run::new(report_limit);
        // Beyond the initial window (16): the rest waits in the queue.
        let small: Vec<MessageId> = (0..20).map(|_| run.send(server_addr(), 1_000)).collect();
        let huge = run.send(server_addr(), 18_000);
        let medium = run.send(server_addr(), 5_000);
        let also_huge = run.send(server_addr(), 18_000);
        run.run_for(Duration::from_secs(30));
        let limit = report_limit.then_some(PATH);
        let (huge_size, medium_size) = (18_000 + header_len(), 5_000 + header_len());
        let reason = |size| Err(FailureReason::TooLarge { size, limit });
        assert_eq!(run.outcome(huge), [reason(huge_size)], "limit {limit:?}");
        assert_eq!(
            run.outcome(also_huge),
            [reason(huge_size)],
            "limit {limit:?}"
        );
        assert_eq!(
            run.outcome(medium),
            [reason(medium_size)],
            "limit {limit:?}"
        );
        assert_eq!(run.sent_to(server_addr(), huge_size), 1, "limit {limit:?}");
        let (reports, medium_sent) = if report_limit { (1, 0) } else { (2, 1) };
        assert_eq!(run.reports, reports, "limit {limit:?}");
        assert_eq!(
            run.sent_to(server_addr(), medium_size),
            medium_sent,
            "limit {limit:?}"
        );
        for id in small {
            assert_eq!(run.outcome(id), [Ok(())], "limit {limit:?}");
        }
    }
}

/// A message as large as a refused one, sent later while the peer is
/// tracked, fails at `send` without a transmission; after the memory's ten
/// minutes it is tried again (and refused again).
#[test]
fn the_peer_remembers_the_refusal_for_a_while() {
    let mut run = Run::new(false);
    let first = run.send(server_addr(), 16_000);
    run.exchange();
    assert_eq!(run.outcome(first).len(), 1);
    // Keep the peer tracked (not idle) with a small message now and then.
    let later = run.send(server_addr(), 17_000);
    assert_eq!(
        run.outcome(later),
        [],
        "not polled yet: the event waits in the queue"
    );
    run.collect();
    assert_eq!(
        run.outcome(later),
        [Err(FailureReason::TooLarge {
            size: 17_000 + header_len(),
            limit: None
        })]
    );
    // Smaller than the refused datagram: tried (and, too large for the
    // path still, refused on its own), not failed from memory.
    let smaller = run.send(server_addr(), 10_000);
    let fits = run.send(server_addr(), 1_000);
    run.run_for(Duration::from_secs(1));
    assert_eq!(run.sent_to(server_addr(), 10_000 + header_len()), 1);
    assert_eq!(run.outcome(smaller).len(), 1);
    assert_eq!(run.outcome(fits), [Ok(())]);
    assert_eq!(run.reports, 2);
    for _ in 0..11 {
        let keep_alive = run.send(server_addr(), 100);
        run.run_for(Duration::from_secs(55));
        assert_eq!(run.outcome(keep_alive), [Ok(())]);
    }
    // 11 × 55 s + 1 s > 600 s: forgotten, so tried (and refused) again.
    let retried = run.send(server_addr(), 16_000);
    run.exchange();
    assert_eq!(run.reports, 3);
    assert_eq!(run.sent_to(server_addr(), 16_000 + header_len()), 2);
    assert_eq!(run.outcome(retried).len(), 1);
}

/// The memory goes with the peer: once it is forgotten (idle), a large
/// message to it is tried again.
#[test]
fn the_refusal_is_forgotten_with_the_peer() {
    let mut run = Run::new(true);
    let first = run.send(server_addr(), 16_000);
    run.exchange();
    assert_eq!(run.outcome(first).len(), 1);
    let idle = config().peer_idle_timeout;
    run.run_for(idle + Duration::from_secs(5));
    assert!(
        !run.client.peers().any(|peer| peer == server_addr()),
        "the idle peer is forgotten"
    );
    let again = run.send(server_addr(), 16_000);
    run.exchange();
    assert_eq!(run.reports, 2, "sent again, and refused again");
    assert_eq!(run.outcome(again).len(), 1);
}

/// Reports that name no message of the destination (a raw datagram, a
/// repeated report) fail nothing; a second report of the same refusal
/// fails nothing twice.
#[test]
fn repeated_and_unrelated_reports_fail_nothing_twice() {
    let mut run = Run::new(false);
    let small = run.send(server_addr(), 1_000);
    let now = run.now;
    assert_eq!(
        run.client
            .datagram_too_large(now, server_addr(), 5_000, None),
        0
    );
    let big = run.send(server_addr(), 6_000);
    run.collect();
    assert_eq!(run.outcome(big).len(), 1, "remembered from the report");
    assert_eq!(
        run.client
            .datagram_too_large(now, server_addr(), 5_000, None),
        0
    );
    assert_eq!(
        run.client.datagram_too_large(now, other_addr(), 10, None),
        0,
        "no message to that address"
    );
    run.run_for(Duration::from_secs(5));
    assert_eq!(run.outcome(big).len(), 1);
    assert_eq!(run.outcome(small), [Ok(())]);
}
