//! Path MTU discovery (large-message extension, `pmtud` on) in the
//! simulator, whose links can drop what exceeds their MTU: the search finds
//! the largest datagram a path takes, within one step and in few round
//! trips; fragments then use it; probes are never handed over; a path whose
//! MTU shrinks is found out (a black hole) and the size falls back; random
//! loss does not pass for a black hole; and without the extension, nothing
//! of this reaches the wire.
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use gtudp_proto::sim::{Clock, LinkProfile, Network};
use gtudp_proto::wire::FragmentHeader;
use gtudp_proto::{Config, Endpoint, Event, LargeMessages, MessageId};

/// One way; the round trip is twice this.
const DELAY: Duration = Duration::from_millis(10);
const RTT: Duration = Duration::from_millis(20);

fn a_addr() -> SocketAddr {
    "10.0.0.1:4000".parse().unwrap()
}

fn b_addr() -> SocketAddr {
    "10.0.0.2:5000".parse().unwrap()
}

fn config(max_datagram_size: usize) -> Config {
    let mut config = Config::default();
    config.max_datagram_size = max_datagram_size;
    config.initial_rto = Duration::from_millis(100);
    config.min_rto = Duration::from_millis(10);
    config.max_rto = Duration::from_secs(1);
    config.remember_window = Duration::from_secs(15);
    config.datagram_lifetime = Duration::from_secs(1);
    config.large_messages = Some(LargeMessages::default().with_max_message_size(1 << 20));
    config
}

/// A link of `mtu` bytes (IPv4: 28 bytes of headers counted), `loss`.
fn link(mtu: Option<usize>, loss: f64) -> LinkProfile {
    let mut profile = LinkProfile::clean();
    profile.delay = DELAY;
    profile.wire_overhead = 28;
    profile.mtu = mtu;
    profile.loss = loss;
    profile
}

fn payload(n: u32, len: usize) -> Bytes {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).wrapping_add(n) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// Two endpoints on a simulated network, in virtual time.
struct Pair {
    clock: Clock,
    net: Network,
    a: Endpoint,
    b: Endpoint,
    buf: Vec<u8>,
    /// Every datagram `a` wrote, with its virtual send time.
    sent_by_a: Vec<(Duration, Bytes)>,
    outcomes: HashMap<MessageId, bool>,
    received: Vec<Bytes>,
    /// Datagrams above this many bytes are refused by `a`'s system
    /// (`EMSGSIZE`), reported with this limit.
    local_limit: Option<usize>,
    /// The sender's path size after each change, and when.
    sizes: Vec<(Duration, usize)>,
    /// When the sender's first message was confirmed: discovery starts.
    first_delivered: Option<Duration>,
}

impl Pair {
    fn new(a: Config, b: Config, profile: LinkProfile, seed: u64) -> Self {
        Self {
            clock: Clock::new(),
            net: Network::new(seed, profile),
            a: Endpoint::new(a, 1).unwrap(),
            b: Endpoint::new(b, 2).unwrap(),
            buf: Vec::new(),
            sent_by_a: Vec::new(),
            outcomes: HashMap::new(),
            received: Vec::new(),
            local_limit: None,
            sizes: Vec::new(),
            first_delivered: None,
        }
    }

    fn send(&mut self, payload: Bytes) -> MessageId {
        let now = self.clock.now();
        self.a.send(now, b_addr(), payload).unwrap()
    }

    fn path_size(&self) -> usize {
        self.a.path_datagram_size(b_addr())
    }

    /// Moves datagrams and time for `span`, or until nothing is left.
    fn run(&mut self, span: Duration) {
        let end = self.clock.elapsed() + span;
        loop {
            self.flush();
            let next = [
                self.net.next_delivery(),
                self.a.poll_timeout().map(|at| self.clock.offset(at)),
                self.b.poll_timeout().map(|at| self.clock.offset(at)),
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next.filter(|next| *next <= end) else {
                self.clock.advance_to(end);
                return;
            };
            self.clock.advance_to(next);
            let (now, at) = (self.clock.now(), self.clock.elapsed());
            while let Some(datagram) = self.net.poll_delivery(at) {
                match datagram.to == b_addr() {
                    true => self.b.handle_datagram(now, datagram.from, datagram.payload),
                    false => self.a.handle_datagram(now, datagram.from, datagram.payload),
                }
            }
            self.a.handle_timeout(now);
            self.b.handle_timeout(now);
        }
    }

    fn flush(&mut self) {
        let (now, at) = (self.clock.now(), self.clock.elapsed());
        loop {
            let mut moved = false;
            while let Some(t) = self.a.poll_transmit(now, 1, &mut self.buf) {
                moved = true;
                if self.local_limit.is_some_and(|limit| t.size > limit) {
                    self.a
                        .datagram_too_large(now, t.destination, t.size, self.local_limit);
                    continue;
                }
                let bytes = Bytes::copy_from_slice(&self.buf[..t.size]);
                self.sent_by_a.push((at, bytes.clone()));
                self.net.send(at, a_addr(), t.destination, bytes);
            }
            while let Some(t) = self.b.poll_transmit(now, 1, &mut self.buf) {
                moved = true;
                let bytes = Bytes::copy_from_slice(&self.buf[..t.size]);
                self.net.send(at, b_addr(), t.destination, bytes);
            }
            while let Some(event) = self.a.poll_event() {
                moved = true;
                match event {
                    Event::Delivered { id, .. } => {
                        self.first_delivered.get_or_insert(at);
                        assert!(self.outcomes.insert(id, true).is_none(), "two outcomes")
                    }
                    Event::Failed { id, .. } => {
                        assert!(self.outcomes.insert(id, false).is_none(), "two outcomes")
                    }
                    other => panic!("unexpected at the sender: {other:?}"),
                }
            }
            while let Some(event) = self.b.poll_event() {
                moved = true;
                match event {
                    Event::Received { payload, .. } => self.received.push(payload),
                    other => panic!("unexpected at the receiver: {other:?}"),
                }
            }
            let size = self.path_size();
            if self.sizes.last().map(|(_, last)| *last) != Some(size) {
                self.sizes.push((at, size));
            }
            if !moved {
                return;
            }
        }
    }

    /// Sends one small message and runs until discovery has settled:
    /// returns the size found and the round trips from the first
    /// confirmation (discovery's start) to the last change of size.
    fn discover(&mut self) -> (usize, f64) {
        let id = self.send(payload(0, 100));
        self.run(Duration::from_secs(5));
        assert_eq!(self.outcomes.get(&id), Some(&true));
        let start = self.first_delivered.unwrap();
        let last_change = self.sizes.last().unwrap().0;
        let rtts = last_change.saturating_sub(start).as_secs_f64() / RTT.as_secs_f64();
        (self.path_size(), rtts)
    }
}

/// The datagram size (UDP payload) a 1,280-byte IPv4 link takes.
const LIMIT_1280: usize = 1_280 - 28;

#[test]
fn the_search_finds_a_1280_byte_link_within_a_step_and_ten_rtts() {
    for max in [1_452, 9_000, 65_507] {
        let mut pair = Pair::new(config(max), config(max), link(Some(1_280), 0.0), 1);
        let (found, rtts) = pair.discover();
        eprintln!("1,280-byte link, local limit {max}: {found} bytes after {rtts:.1} RTTs");
        assert!(
            found <= LIMIT_1280 && LIMIT_1280 - found <= 20,
            "{max}: found {found}"
        );
        assert!(rtts <= 10.0, "{max}: {rtts} RTTs");
        let stats = pair.a.stats();
        assert!(stats.pmtu_probes_lost > 0 && stats.pmtu_probes_confirmed > 0);
        assert_eq!(stats.pmtu_black_holes, 0);
        assert_eq!(stats.failed, 0);
        assert_eq!(
            pair.a.peer_stats(b_addr()).unwrap().path_datagram_size,
            Some(found)
        );
    }
}

#[test]
fn the_search_finds_a_loopback_like_limit_at_once() {
    for max in [1_452, 65_507] {
        let mut pair = Pair::new(config(max), config(max), link(None, 0.0), 2);
        let (found, rtts) = pair.discover();
        eprintln!("no path limit, local limit {max}: {found} bytes after {rtts:.1} RTTs");
        assert_eq!(found, max);
        assert!(rtts <= 2.0, "{max}: {rtts} RTTs");
        assert_eq!(pair.a.stats().pmtu_probes_lost, 0);
    }
}

#[test]
fn a_probe_refused_locally_ends_its_size_at_once() {
    let mut pair = Pair::new(config(65_507), config(65_507), link(None, 0.0), 3);
    pair.local_limit = Some(9_000);
    let (found, rtts) = pair.discover();
    eprintln!("local refusal above 9,000: {found} bytes after {rtts:.1} RTTs");
    assert_eq!(found, 9_000, "the limit the system gave");
    assert_eq!(pair.a.stats().failed, 0, "no message failed");
    assert!(pair.a.stats().too_large_reports > 0);
}

#[test]
fn fragments_follow_the_discovered_size_and_probes_are_never_handed_over() {
    let mut pair = Pair::new(config(1_452), config(1_452), link(Some(1_280), 0.0), 4);
    // Before discovery: a message above the base is cut to the base.
    let early = pair.send(payload(1, 5_000));
    let (found, _) = pair.discover();
    assert_eq!(pair.outcomes.get(&early), Some(&true));
    let first_sends = pair.sent_by_a.len();
    let whole = pair.send(payload(2, 20_000));
    // Below the path's size but above the base: one DATA.
    let single = pair.send(payload(3, found - 5));
    pair.run(Duration::from_secs(5));
    assert_eq!(pair.outcomes.get(&whole), Some(&true));
    assert_eq!(pair.outcomes.get(&single), Some(&true));
    let sizes: Vec<usize> = pair.sent_by_a[first_sends..]
        .iter()
        .map(|(_, bytes)| bytes.len())
        .collect();
    assert!(sizes.iter().all(|&size| size <= found), "{sizes:?}");
    let full = sizes.iter().filter(|&&size| size == found).count();
    assert!(
        full >= 20_000 / found,
        "fragments of the path's size: {sizes:?}"
    );
    // The early message's fragments were cut to the base.
    assert!(pair.sent_by_a[..first_sends]
        .iter()
        .filter(|(_, bytes)| !FragmentHeader::is_probe(&bytes[5..]))
        .all(|(_, bytes)| bytes.len() <= 1_200));
    // Exactly the application's messages were handed over, once each.
    let mut expected = vec![payload(0, 100), payload(1, 5_000), payload(2, 20_000)];
    expected.push(payload(3, found - 5));
    let mut received = pair.received.clone();
    received.sort();
    expected.sort();
    assert_eq!(received, expected);
    assert!(pair.b.stats().pmtu_probes_answered >= pair.a.stats().pmtu_probes_confirmed);
    assert!(pair.a.stats().pmtu_probes_confirmed > 0);
    assert_eq!(pair.b.stats().received, 4);
}

/// Keeps `window` large messages of `size` bytes outstanding for `span`;
/// returns how many were sent.
fn stream(
    pair: &mut Pair,
    span: Duration,
    size: usize,
    window: usize,
) -> Vec<(Duration, MessageId)> {
    let mut sent: Vec<(Duration, MessageId)> = Vec::new();
    let end = pair.clock.elapsed() + span;
    let mut n = 100;
    while pair.clock.elapsed() < end {
        while sent
            .iter()
            .filter(|(_, id)| !pair.outcomes.contains_key(id))
            .count()
            < window
        {
            n += 1;
            let id = pair.send(payload(n, size));
            sent.push((pair.clock.elapsed(), id));
        }
        pair.run(RTT);
    }
    sent
}

#[test]
fn a_black_hole_is_found_and_the_size_falls_back() {
    let mut pair = Pair::new(config(1_452), config(1_452), link(None, 0.0), 5);
    let (found, _) = pair.discover();
    assert_eq!(found, 1_452);
    // The path's MTU shrinks to 1,280 under a stream of large messages.
    pair.net.set_default_profile(link(Some(1_280), 0.0));
    let changed = pair.clock.elapsed();
    let sent = stream(&mut pair, Duration::from_secs(5), 6_000, 4);
    pair.run(Duration::from_secs(30));
    let stats = pair.a.stats();
    assert_eq!(stats.pmtu_black_holes, 1);
    let after = pair.path_size();
    assert!(after <= LIMIT_1280 && LIMIT_1280 - after <= 20, "{after}");
    let (fell_at, _) = pair
        .sizes
        .iter()
        .find(|(at, size)| *at > changed && *size < 1_452)
        .copied()
        .unwrap();
    eprintln!(
        "black hole found {:.1} RTTs after the MTU shrank",
        (fell_at - changed).as_secs_f64() / RTT.as_secs_f64()
    );
    // Messages cut before the fall keep their fragments and may fail;
    // those sent later are delivered.
    assert!(sent.iter().all(|(_, id)| pair.outcomes.contains_key(id)));
    let later: Vec<MessageId> = (0..4).map(|n| pair.send(payload(500 + n, 6_000))).collect();
    pair.run(Duration::from_secs(5));
    assert!(later.iter().all(|id| pair.outcomes.get(id) == Some(&true)));
}

/// 10⁴ round trips of large messages at `loss`: no black hole.
fn no_false_black_hole(loss: f64, seed: u64) {
    let mut pair = Pair::new(config(1_452), config(1_452), link(None, 0.0), seed);
    let (found, _) = pair.discover();
    assert_eq!(found, 1_452);
    let probes_before = pair.a.stats().pmtu_probes_sent;
    pair.net.set_default_profile(link(None, loss));
    let span = RTT * 10_000;
    let sent = stream(&mut pair, span, 8_000, 4);
    let stats = pair.a.stats();
    let delivered = pair.outcomes.values().filter(|ok| **ok).count();
    eprintln!(
        "{:.0}% loss, 10^4 RTTs: {} messages, {delivered} delivered, {} datagrams lost, \
         {} check probes, {} black holes",
        loss * 100.0,
        sent.len(),
        pair.net.stats().lost,
        stats.pmtu_probes_sent - probes_before,
        stats.pmtu_black_holes
    );
    assert_eq!(stats.pmtu_black_holes, 0);
    assert_eq!(pair.path_size(), 1_452);
    assert!(
        stats.pmtu_probes_sent > probes_before,
        "the detector was put to the test"
    );
}

#[test]
fn no_false_black_hole_at_10_percent_loss() {
    no_false_black_hole(0.10, 6);
}

#[test]
fn no_false_black_hole_at_30_percent_loss() {
    no_false_black_hole(0.30, 7);
}

#[test]
fn without_the_extension_no_probe_reaches_the_wire() {
    let mut off = Config::default();
    off.initial_rto = Duration::from_millis(100);
    let mut pmtud_off = config(1_452);
    pmtud_off.large_messages = Some(LargeMessages::default().with_pmtud(false));
    for (config, large) in [(off, false), (pmtud_off, true)] {
        let mut pair = Pair::new(config.clone(), config, link(None, 0.0), 8);
        for n in 0..20 {
            let len = if large { 5_000 } else { 1_000 };
            pair.send(payload(n, len));
        }
        pair.run(Duration::from_secs(5));
        assert_eq!(pair.outcomes.values().filter(|ok| **ok).count(), 20);
        assert_eq!(pair.a.stats().pmtu_probes_sent, 0);
        assert_eq!(pair.b.stats().pmtu_probes_answered, 0);
        assert!(pair
            .sent_by_a
            .iter()
            .all(|(_, bytes)| bytes.len() < 5 || !FragmentHeader::is_probe(&bytes[5..])));
        assert_eq!(pair.path_size(), 1_452);
        if !large {
            // The original's wire: DATA of type 1d and ACK of type ae only.
            assert!(pair
                .sent_by_a
                .iter()
                .all(|(_, bytes)| bytes[0] == 0x1d || bytes[0] == 0xae));
        }
    }
}

#[test]
fn the_path_is_searched_again_after_the_interval() {
    let mut config = config(1_452);
    config.large_messages = Some(
        LargeMessages::default()
            .with_max_message_size(1 << 20)
            .with_pmtud_interval(Duration::from_secs(10)),
    );
    let mut pair = Pair::new(config.clone(), config, link(Some(1_280), 0.0), 9);
    let (found, _) = pair.discover();
    assert!(found <= LIMIT_1280 && LIMIT_1280 - found <= 20);
    let settled = pair.sizes.last().unwrap().0;
    let changes = pair.sizes.len();
    // The path grows; a small message a second keeps the peer tracked.
    pair.net.set_default_profile(link(None, 0.0));
    for n in 0..15 {
        pair.send(payload(1_000 + n, 100));
        pair.run(Duration::from_secs(1));
    }
    // One change since: up to the local limit, once the interval passed
    // (never back to the base: the peer was not forgotten).
    assert_eq!(pair.sizes.len(), changes + 1, "{:?}", pair.sizes);
    let (grew_at, size) = *pair.sizes.last().unwrap();
    assert_eq!(size, 1_452);
    assert!(grew_at >= settled + Duration::from_secs(10), "{grew_at:?}");
    assert!(grew_at <= settled + Duration::from_secs(11), "{grew_at:?}");
}

#[test]
fn a_paused_receiver_leaves_probes_unanswered() {
    let mut config = config(1_452);
    config.large_messages = Some(
        LargeMessages::default()
            .with_max_message_size(1 << 20)
            .with_pmtud_interval(Duration::from_secs(2)),
    );
    let mut pair = Pair::new(config.clone(), config, link(Some(1_280), 0.0), 10);
    let (found, _) = pair.discover();
    let answered = pair.b.stats().pmtu_probes_answered;
    // The path grows, but the receiver stops taking messages: a message
    // waits unanswered, and so do the probes of the search due meanwhile.
    pair.net.set_default_profile(link(None, 0.0));
    pair.b.set_receive_paused(true);
    let waiting = pair.send(payload(7, 100));
    pair.run(Duration::from_secs(3));
    assert!(pair.b.stats().pmtu_probes_unanswered > 0);
    assert_eq!(pair.b.stats().pmtu_probes_answered, answered);
    assert_eq!(
        pair.path_size(),
        found,
        "nothing confirmed, nothing learned"
    );
    assert_eq!(pair.outcomes.get(&waiting), None, "still trying");
    pair.b.set_receive_paused(false);
    pair.run(Duration::from_secs(10));
    assert_eq!(pair.outcomes.get(&waiting), Some(&true));
}
