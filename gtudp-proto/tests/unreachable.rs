//! ICMP unreachable reports (`Endpoint::peer_unreachable`) on virtual time:
//! a first contact to a closed port fails at once; a peer that answered
//! before is only suspect for `Config::unreachable_grace`, so a restarted
//! server loses nothing, a silent one fails at the end of the grace, and a
//! forged report cancels nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gtudp_proto::{Config, Endpoint, Event, FailureReason, MessageId};

const STEP: Duration = Duration::from_millis(5);

fn client_addr() -> SocketAddr {
    "10.0.0.1:4000".parse().unwrap()
}

fn server_addr() -> SocketAddr {
    "10.0.0.2:5000".parse().unwrap()
}

/// A client and a server process on virtual time. While the server is
/// down, every datagram sent to it draws an unreachable report, as the
/// closed port's ICMP answer would.
struct Run {
    now: Instant,
    client: Endpoint,
    server: Option<Endpoint>,
    /// Server processes started so far (each gets a fresh seed).
    processes: u128,
    /// Unreachable reports given to the client.
    reports: usize,
    /// When the latest report was given.
    last_report: Option<Instant>,
    /// Each message's outcome and when it came.
    outcomes: Vec<(MessageId, Result<(), FailureReason>, Instant)>,
    /// Payloads handed over by any server process.
    handed_over: HashSet<Bytes>,
    /// Messages sent so far (numbers their payloads).
    sent: usize,
    buf: Vec<u8>,
}

impl Run {
    fn new(server_up: bool) -> Self {
        let now = Instant::now();
        let mut run = Self {
            now,
            client: Endpoint::new(Config::default(), 1).unwrap(),
            server: None,
            processes: 0,
            reports: 0,
            last_report: None,
            outcomes: Vec::new(),
            handed_over: HashSet::new(),
            sent: 0,
            buf: Vec::new(),
        };
        if server_up {
            run.start_server();
        }
        run
    }

    fn start_server(&mut self) {
        self.processes += 1;
        let seed = 1_000 + self.processes;
        self.server = Some(Endpoint::new(Config::default(), seed).unwrap());
    }

    fn send(&mut self, count: usize) -> Vec<MessageId> {
        (0..count)
            .map(|_| {
                self.sent += 1;
                let payload = Bytes::from(format!("message {}", self.sent));
                self.client.send(self.now, server_addr(), payload).unwrap()
            })
            .collect()
    }

    /// Moves every datagram until both sides are quiet, collects events,
    /// then advances time by `STEP` and runs due timers.
    fn step(&mut self) {
        for _ in 0..1_000 {
            let mut moved = false;
            while let Some(t) = self.client.poll_transmit(self.now, 1, &mut self.buf) {
                moved = true;
                let datagram = Bytes::copy_from_slice(&self.buf[..t.size]);
                match self.server.as_mut() {
                    Some(server) => server.handle_datagram(self.now, client_addr(), datagram),
                    None => {
                        self.reports += 1;
                        self.last_report = Some(self.now);
                        self.client.peer_unreachable(self.now, t.destination);
                    }
                }
            }
            if let Some(server) = self.server.as_mut() {
                while let Some(t) = server.poll_transmit(self.now, 1, &mut self.buf) {
                    moved = true;
                    let datagram = Bytes::copy_from_slice(&self.buf[..t.size]);
                    self.client
                        .handle_datagram(self.now, server_addr(), datagram);
                }
                while let Some(event) = server.poll_event() {
                    if let Event::Received { payload, .. } = event {
                        self.handed_over.insert(payload);
                    }
                }
            }
            if !moved {
                break;
            }
        }
        while let Some(event) = self.client.poll_event() {
            match event {
                Event::Delivered { id, .. } => self.outcomes.push((id, Ok(()), self.now)),
                Event::Failed { id, reason, .. } => self.outcomes.push((id, Err(reason), self.now)),
                other => panic!("unexpected client event {other:?}"),
            }
        }
        self.now += STEP;
        if self.client.poll_timeout().is_some_and(|at| at <= self.now) {
            self.client.handle_timeout(self.now);
        }
        if let Some(server) = self.server.as_mut() {
            if server.poll_timeout().is_some_and(|at| at <= self.now) {
                server.handle_timeout(self.now);
            }
        }
    }

    /// Steps until every message sent has an outcome, or `limit` passes.
    fn until_resolved(&mut self, limit: Duration) {
        let end = self.now + limit;
        while self.client.table_sizes().outstanding > 0 && self.now < end {
            self.step();
        }
    }

    fn steps_for(&mut self, span: Duration) {
        let end = self.now + span;
        while self.now < end {
            self.step();
        }
    }

    fn delivered(&self) -> usize {
        self.outcomes.iter().filter(|(_, o, _)| o.is_ok()).count()
    }

    fn failed_with(&self, reason: FailureReason) -> usize {
        self.outcomes
            .iter()
            .filter(|(_, o, _)| *o == Err(reason))
            .count()
    }
}

#[test]
fn first_contact_to_a_closed_port_fails_at_once() {
    let mut run = Run::new(false);
    let ids = run.send(50);
    let sent_at = run.now;
    // One step: the DATA go out and draw their reports.
    run.step();
    assert!(run.reports >= 1);
    assert_eq!(run.outcomes.len(), ids.len(), "{:?}", run.client);
    assert_eq!(run.failed_with(FailureReason::Unreachable), ids.len());
    // All within the first step: no grace for an address that never
    // answered.
    assert!(run.outcomes.iter().all(|(_, _, at)| *at == sent_at));
    assert_eq!(run.client.stats().unreachable_suspected, 0);
}

#[test]
fn a_server_restarted_within_the_grace_gets_every_message() {
    let mut run = Run::new(true);
    let first = run.send(100);
    run.until_resolved(Duration::from_secs(5));
    assert_eq!(run.delivered(), first.len(), "the server answered before");
    // The server dies with messages in flight, and comes back on the same
    // port 1 s later, with no memory of the client.
    let second = run.send(300);
    run.server = None;
    run.steps_for(Duration::from_secs(1));
    assert!(run.reports > 0, "the dead port drew reports");
    assert_eq!(
        run.outcomes.len(),
        first.len(),
        "nothing fails while the peer is suspect: {:?}",
        &run.outcomes[first.len()..]
    );
    run.start_server();
    run.until_resolved(Duration::from_secs(60));
    assert_eq!(
        run.delivered(),
        first.len() + second.len(),
        "outcomes {:?}, client {:?}",
        run.outcomes
            .iter()
            .filter(|(_, o, _)| o.is_err())
            .collect::<Vec<_>>(),
        run.client
    );
    // Every Delivered message was handed over by some server process.
    assert_eq!(run.handed_over.len(), first.len() + second.len());
    let stats = run.client.stats();
    assert_eq!(stats.unreachable_suspected, 1, "{stats:?}");
    assert_eq!(stats.unreachable_recovered, 1, "{stats:?}");
}

#[test]
fn a_server_silent_past_the_grace_fails_unreachable_at_the_grace() {
    let mut run = Run::new(true);
    let first = run.send(10);
    run.until_resolved(Duration::from_secs(5));
    assert_eq!(run.delivered(), first.len());
    let doomed = run.send(40);
    run.server = None;
    // The first transmissions draw the first report.
    run.step();
    let reported_at = run.now - STEP;
    assert!(run.reports > 0);
    let grace = run.client.config().unreachable_grace;
    run.until_resolved(grace * 3);
    assert_eq!(
        run.failed_with(FailureReason::Unreachable),
        doomed.len(),
        "{:?}",
        &run.outcomes[first.len()..]
    );
    for (_, _, at) in &run.outcomes[first.len()..] {
        let after = at.duration_since(reported_at);
        assert!(
            after >= grace && after <= grace + 2 * STEP,
            "failed {after:?} after the report, grace {grace:?}"
        );
    }
    // The probes went on late into the grace: the timeout doubling from
    // 20 ms would have sent the last before it at 2.54 s, the cap of a
    // quarter of the grace (1.25 s) sends one at 3.76 s.
    let last_probe = run.last_report.unwrap().duration_since(reported_at);
    assert!(
        last_probe > grace * 3 / 4 - STEP,
        "last probe {last_probe:?} after the first report"
    );
    // Its grace spent, the peer is taken at its word: a new message fails
    // at its first report.
    let late = run.send(1)[0];
    let sent_at = run.now;
    run.step();
    assert_eq!(
        run.outcomes.last(),
        Some(&(late, Err(FailureReason::Unreachable), sent_at))
    );
}

#[test]
fn a_forged_report_against_a_live_peer_cancels_nothing() {
    let mut run = Run::new(true);
    let first = run.send(20);
    run.until_resolved(Duration::from_secs(5));
    assert_eq!(run.delivered(), first.len());
    // Messages in flight, and a report for a server that is alive: at once
    // and then at every step while they are outstanding.
    let second = run.send(200);
    assert_eq!(run.client.peer_unreachable(run.now, server_addr()), 0);
    for _ in 0..20_000 {
        if run.client.table_sizes().outstanding == 0 {
            break;
        }
        assert_eq!(run.client.peer_unreachable(run.now, server_addr()), 0);
        run.step();
    }
    assert_eq!(run.delivered(), first.len() + second.len());
    assert!(run.client.stats().unreachable_recovered >= 1);
}
