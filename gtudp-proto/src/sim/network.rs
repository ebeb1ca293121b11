//! The virtual clock and the simulated network: seeded, lossy links that
//! may corrupt what they carry, and partitions that start and heal.
//!
//! The network is sans-IO like the endpoint: datagrams and virtual time go
//! in, datagrams due for delivery come out. Time is a [`Duration`] since the
//! start of the simulation, so nothing depends on the real clock.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::rng::Rng;

/// Virtual time: one real [`Instant`] taken at construction as the epoch,
/// plus a virtual offset that only moves forward.
///
/// Endpoints are given [`Clock::now`]; traces and the network use the offset
/// ([`Clock::elapsed`]), so no output depends on the epoch's value.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    epoch: Instant,
    elapsed: Duration,
}

impl Clock {
    /// A clock at offset zero.
    pub fn new() -> Self {
        Self {
            epoch: Instant::now(),
            elapsed: Duration::ZERO,
        }
    }

    /// The current virtual instant.
    pub fn now(&self) -> Instant {
        self.epoch + self.elapsed
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// The instant at `offset` from the start.
    pub fn at(&self, offset: Duration) -> Instant {
        self.epoch + offset
    }

    /// The offset of `instant` from the start (zero for earlier instants).
    pub fn offset(&self, instant: Instant) -> Duration {
        instant.saturating_duration_since(self.epoch)
    }

    /// Moves the clock to `offset`; an earlier offset leaves it where it is.
    pub fn advance_to(&mut self, offset: Duration) {
        self.elapsed = self.elapsed.max(offset);
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// How one direction of a link treats the datagrams it carries.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkProfile {
    /// Probability that a datagram is lost.
    pub loss: f64,
    /// Probability that a datagram is delivered twice (the copy has its own
    /// jitter).
    pub duplicate: f64,
    /// Probability that a datagram is held back by up to `reorder_delay`, so
    /// that later datagrams overtake it.
    pub reorder: f64,
    /// Fixed propagation delay.
    pub delay: Duration,
    /// Uniform extra delay in `0..=jitter`, drawn per datagram.
    pub jitter: Duration,
    /// The most a reordered datagram is held back.
    pub reorder_delay: Duration,
    /// Link rate in bytes per second; `None` for unlimited. Datagrams queue
    /// behind each other at this rate.
    pub rate: Option<u64>,
    /// The longest a datagram waits in the rate limiter's queue; beyond, it
    /// is dropped (tail drop).
    pub queue_limit: Duration,
    /// Links naming the same bottleneck share one rate limiter and its
    /// queue (with this profile's `rate` and `queue_limit`), as flows from
    /// many hosts share one router port; `None` gives the direction a queue
    /// of its own. Drops at a full queue count in
    /// [`NetworkStats::rate_dropped`].
    pub bottleneck: Option<u32>,
    /// Draw random loss after the rate limiter instead of before it: a lost
    /// datagram has then used its share of the link, as on a lossy wire
    /// (radio, a long haul) past the bottleneck. Default off (loss before
    /// the queue).
    pub loss_after_queue: bool,
    /// Bytes each datagram takes on a rate-limited link beyond what it
    /// carries: 28 models IPv4 and UDP headers, so link utilization reads as
    /// on a real wire. Default 0.
    pub wire_overhead: usize,
    /// Probability that a datagram (each copy of a duplicated one on its
    /// own) arrives corrupted: usually one to three bits flipped, half of
    /// them within the first [`CORRUPT_HEADER_BYTES`] bytes (where gtUDP's
    /// header and the start of the payload are), the rest anywhere; else
    /// truncated to a random shorter length. A corrupted datagram always
    /// differs from what was sent, and arrives with
    /// [`Datagram::corrupted`] set.
    ///
    /// UDP's checksum normally drops such datagrams; this models the ones it
    /// misses (or a path without it). gtUDP has no checksum of its own, so
    /// a corrupted DATA that still parses is handed over as a message its
    /// peer never sent: see [`World`](super::World) for what the checks
    /// still assert.
    pub corrupt: f64,
    /// Models IP fragmentation: a datagram whose IP payload (its bytes and
    /// `wire_overhead` less 20 bytes of IPv4 header) exceeds this many bytes
    /// travels in pieces of this size, each lost on its own with `loss`, and
    /// arrives only if every piece does. Default `None`: loss is per
    /// datagram whatever its size.
    pub ip_fragment_mtu: Option<usize>,
    /// The path's MTU with don't-fragment set: a datagram whose bytes and
    /// `wire_overhead` exceed this many is dropped (and counted in
    /// [`NetworkStats::too_big`]), as a router drops a packet too large for
    /// its next hop; nothing tells the sender. With `wire_overhead` 28
    /// (IPv4 and UDP headers), 1,280 is an IPv6-minimum link: datagrams of
    /// up to 1,252 bytes pass. Default `None`: no limit.
    pub mtu: Option<usize>,
}

/// Half of the bit flips of a corrupted datagram fall within its first this
/// many bytes (see [`LinkProfile::corrupt`]).
pub const CORRUPT_HEADER_BYTES: usize = 12;

impl LinkProfile {
    /// A perfect link: 1 ms, no loss, no reordering.
    pub fn clean() -> Self {
        Self {
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            delay: Duration::from_millis(1),
            jitter: Duration::ZERO,
            reorder_delay: Duration::ZERO,
            rate: None,
            queue_limit: Duration::ZERO,
            bottleneck: None,
            loss_after_queue: false,
            wire_overhead: 0,
            corrupt: 0.0,
            ip_fragment_mtu: None,
            mtu: None,
        }
    }

    /// Whether a datagram of `len` bytes is larger than the link's
    /// [`mtu`](Self::mtu).
    pub fn too_big(&self, len: usize) -> bool {
        self.mtu.is_some_and(|mtu| len + self.wire_overhead > mtu)
    }

    /// The probability that a datagram of `len` bytes is lost: `loss`, or
    /// with [`LinkProfile::ip_fragment_mtu`], that any of its pieces is.
    pub fn loss_of(&self, len: usize) -> f64 {
        match self.ip_fragment_mtu.filter(|&mtu| mtu > 0) {
            Some(mtu) => {
                let ip_payload = (len + self.wire_overhead).saturating_sub(20).max(1);
                let pieces = ip_payload.div_ceil(mtu) as i32;
                1.0 - (1.0 - self.loss).powi(pieces)
            }
            None => self.loss,
        }
    }

    /// The longest a datagram can spend on this link, queueing included.
    /// Endpoints must be configured with a `datagram_lifetime` above it.
    pub fn max_transit(&self, max_datagram: usize) -> Duration {
        let serialization = match self.rate {
            Some(rate) if rate > 0 => serialization(max_datagram + self.wire_overhead, rate),
            _ => Duration::ZERO,
        };
        self.delay + self.jitter + self.reorder_delay + self.queue_limit + serialization
    }
}

impl Default for LinkProfile {
    fn default() -> Self {
        Self::clean()
    }
}

/// A cut between `side` and every other address, from `start` until it
/// heals at `end`. A datagram sent across the cut while it holds is lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// When the cut starts.
    pub start: Duration,
    /// When it heals.
    pub end: Duration,
    /// The addresses on one side.
    pub side: Vec<SocketAddr>,
}

impl Partition {
    fn cuts(&self, at: Duration, from: SocketAddr, to: SocketAddr) -> bool {
        at >= self.start && at < self.end && self.side.contains(&from) != self.side.contains(&to)
    }
}

/// Which rate limiter a datagram queues in: its own direction's, or a
/// shared bottleneck's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum QueueKey {
    Link(SocketAddr, SocketAddr),
    Bottleneck(u32),
}

/// How long `size` bytes take to leave a link of `rate` bytes per second,
/// rounded up to the nanosecond.
fn serialization(size: usize, rate: u64) -> Duration {
    let nanos = (size as u128 * 1_000_000_000).div_ceil(u128::from(rate));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// A datagram in the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    /// The source address it carries (possibly spoofed).
    pub from: SocketAddr,
    /// Its destination.
    pub to: SocketAddr,
    /// The bytes.
    pub payload: Bytes,
    /// When it was sent.
    pub sent_at: Duration,
    /// The link corrupted it: `payload` is not what was sent.
    pub corrupted: bool,
}

/// What happened to the datagrams given to a [`Network`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// Datagrams given to [`Network::send`].
    pub sent: u64,
    /// Datagrams handed out by [`Network::poll_delivery`] (copies included).
    pub delivered: u64,
    /// Lost at random.
    pub lost: u64,
    /// Extra copies made.
    pub duplicated: u64,
    /// Held back to be reordered.
    pub reordered: u64,
    /// Lost to a partition.
    pub partitioned: u64,
    /// Dropped by a rate limiter's full queue.
    pub rate_dropped: u64,
    /// Copies corrupted on the way (see [`LinkProfile::corrupt`]).
    pub corrupted: u64,
    /// Dropped as larger than the link's MTU (see [`LinkProfile::mtu`]).
    pub too_big: u64,
}

/// What [`Network::send`] did with a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// On its way (twice when duplicated), possibly to be corrupted.
    Queued {
        /// Copies scheduled: 1, or 2 when duplicated.
        copies: u8,
    },
    /// Lost at random.
    Lost,
    /// Lost to a partition.
    Partitioned,
    /// Dropped by the rate limiter.
    RateDropped,
    /// Dropped as larger than the link's MTU.
    TooBig,
}

/// A seeded, sans-IO network between any number of addresses.
///
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use gtudp_proto::sim::{LinkProfile, Network};
///
/// let (a, b) = ("10.0.0.1:1".parse()?, "10.0.0.2:1".parse()?);
/// let mut net = Network::new(1, LinkProfile::clean());
/// net.send(Duration::ZERO, a, b, Bytes::from_static(b"hi"));
/// let at = net.next_delivery().unwrap();
/// let datagram = net.poll_delivery(at).unwrap();
/// assert_eq!((datagram.from, datagram.to, &datagram.payload[..]), (a, b, &b"hi"[..]));
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Network {
    rng: Rng,
    default: LinkProfile,
    links: BTreeMap<(SocketAddr, SocketAddr), LinkProfile>,
    partitions: Vec<Partition>,
    busy_until: BTreeMap<QueueKey, Duration>,
    in_flight: BTreeMap<(Duration, u64), Datagram>,
    next_seq: u64,
    stats: NetworkStats,
}

impl Network {
    /// A network whose every link follows `default`, its randomness drawn
    /// from `seed`.
    pub fn new(seed: u64, default: LinkProfile) -> Self {
        Self {
            rng: Rng::new(seed),
            default,
            links: BTreeMap::new(),
            partitions: Vec::new(),
            busy_until: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            next_seq: 0,
            stats: NetworkStats::default(),
        }
    }

    /// Replaces the profile of every link without its own.
    pub fn set_default_profile(&mut self, profile: LinkProfile) {
        self.default = profile;
    }

    /// Gives the direction `from -> to` its own profile.
    pub fn set_link(&mut self, from: SocketAddr, to: SocketAddr, profile: LinkProfile) {
        self.links.insert((from, to), profile);
    }

    /// Removes every per-link profile.
    pub fn clear_links(&mut self) {
        self.links.clear();
    }

    /// Adds a partition.
    pub fn add_partition(&mut self, partition: Partition) {
        self.partitions.push(partition);
    }

    /// The partitions added so far.
    pub fn partitions(&self) -> &[Partition] {
        &self.partitions
    }

    /// The profile of the direction `from -> to`.
    pub fn link(&self, from: SocketAddr, to: SocketAddr) -> &LinkProfile {
        self.links.get(&(from, to)).unwrap_or(&self.default)
    }

    /// What happened so far.
    pub fn stats(&self) -> NetworkStats {
        self.stats
    }

    /// Datagrams still in the network.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Sends a datagram at virtual time `at`.
    pub fn send(&mut self, at: Duration, from: SocketAddr, to: SocketAddr, payload: Bytes) -> Fate {
        self.stats.sent += 1;
        if self.partitions.iter().any(|p| p.cuts(at, from, to)) {
            self.stats.partitioned += 1;
            return Fate::Partitioned;
        }
        let link = self.links.get(&(from, to)).unwrap_or(&self.default).clone();
        if link.too_big(payload.len()) {
            self.stats.too_big += 1;
            return Fate::TooBig;
        }
        let loss = link.loss_of(payload.len());
        if !link.loss_after_queue && self.rng.chance(loss) {
            self.stats.lost += 1;
            return Fate::Lost;
        }
        let mut departure = at;
        if let Some(rate) = link.rate.filter(|&rate| rate > 0) {
            let queue = match link.bottleneck {
                Some(id) => QueueKey::Bottleneck(id),
                None => QueueKey::Link(from, to),
            };
            let busy = self.busy_until.get(&queue).copied().unwrap_or(at);
            let start = busy.max(at);
            if start - at > link.queue_limit {
                self.stats.rate_dropped += 1;
                return Fate::RateDropped;
            }
            departure = start + serialization(payload.len() + link.wire_overhead, rate);
            self.busy_until.insert(queue, departure);
        }
        if link.loss_after_queue && self.rng.chance(loss) {
            self.stats.lost += 1;
            return Fate::Lost;
        }
        let copies = if self.rng.chance(link.duplicate) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut arrival = departure + link.delay + self.rng.duration(link.jitter);
            if self.rng.chance(link.reorder) {
                self.stats.reordered += 1;
                arrival += self.rng.duration(link.reorder_delay);
            }
            let corrupted = !payload.is_empty() && self.rng.chance(link.corrupt);
            let payload = if corrupted {
                self.stats.corrupted += 1;
                corrupt(&mut self.rng, &payload)
            } else {
                payload.clone()
            };
            let datagram = Datagram {
                from,
                to,
                payload,
                sent_at: at,
                corrupted,
            };
            self.in_flight.insert((arrival, self.next_seq), datagram);
            self.next_seq += 1;
        }
        Fate::Queued { copies }
    }

    /// When the next datagram arrives, if any is in the network.
    pub fn next_delivery(&self) -> Option<Duration> {
        self.in_flight.keys().next().map(|(at, _)| *at)
    }

    /// The next datagram that has arrived by `now`, in arrival order (ties in
    /// sending order).
    pub fn poll_delivery(&mut self, now: Duration) -> Option<Datagram> {
        let (&key, _) = self.in_flight.iter().next()?;
        if key.0 > now {
            return None;
        }
        self.stats.delivered += 1;
        self.in_flight.remove(&key)
    }
}

/// A corrupted copy of `payload` (not empty): one to three bits flipped, or
/// cut short; never equal to `payload`.
fn corrupt(rng: &mut Rng, payload: &Bytes) -> Bytes {
    let mut bytes = payload.to_vec();
    if rng.chance(0.2) {
        bytes.truncate(rng.below(bytes.len() as u64) as usize);
        return Bytes::from(bytes);
    }
    for _ in 0..rng.range(1, 3) {
        flip(rng, &mut bytes);
    }
    // Two flips of the same bit undo each other: flip until it differs.
    while bytes[..] == payload[..] {
        flip(rng, &mut bytes);
    }
    Bytes::from(bytes)
}

/// Flips one bit of `bytes` (not empty): half the time within the first
/// [`CORRUPT_HEADER_BYTES`].
fn flip(rng: &mut Rng, bytes: &mut [u8]) {
    let region = if rng.chance(0.5) {
        bytes.len().min(CORRUPT_HEADER_BYTES)
    } else {
        bytes.len()
    };
    let index = rng.below(region as u64) as usize;
    bytes[index] ^= 1 << rng.below(8);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(n: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, n], 1))
    }

    #[test]
    fn partition_cuts_only_across_and_only_while_it_holds() {
        let mut net = Network::new(1, LinkProfile::clean());
        net.add_partition(Partition {
            start: Duration::from_secs(1),
            end: Duration::from_secs(2),
            side: vec![addr(1)],
        });
        let hi = Bytes::from_static(b"x");
        assert_eq!(
            net.send(Duration::from_millis(1500), addr(1), addr(2), hi.clone()),
            Fate::Partitioned
        );
        assert_eq!(
            net.send(Duration::from_millis(1500), addr(2), addr(3), hi.clone()),
            Fate::Queued { copies: 1 }
        );
        assert_eq!(
            net.send(Duration::from_secs(2), addr(2), addr(1), hi),
            Fate::Queued { copies: 1 }
        );
    }

    #[test]
    fn rate_limit_queues_then_drops() {
        let mut profile = LinkProfile::clean();
        profile.rate = Some(1_000); // 1 byte per ms
        profile.queue_limit = Duration::from_millis(25);
        let mut net = Network::new(1, profile);
        let ten = Bytes::from_static(&[0; 10]);
        let fates: Vec<Fate> = (0..5)
            .map(|_| net.send(Duration::ZERO, addr(1), addr(2), ten.clone()))
            .collect();
        assert_eq!(fates[..3], [Fate::Queued { copies: 1 }; 3]);
        assert_eq!(fates[3..], [Fate::RateDropped; 2]);
        let mut arrivals = Vec::new();
        while let Some(at) = net.next_delivery() {
            arrivals.push(at);
            net.poll_delivery(at);
        }
        assert!(arrivals
            .windows(2)
            .all(|w| w[1] - w[0] >= Duration::from_millis(10)));
    }

    #[test]
    fn links_naming_one_bottleneck_share_its_queue() {
        let mut profile = LinkProfile::clean();
        profile.rate = Some(1_000); // 1 byte per ms
        profile.queue_limit = Duration::from_millis(25);
        profile.bottleneck = Some(7);
        profile.wire_overhead = 5;
        let mut net = Network::new(1, profile);
        let five = Bytes::from_static(&[0; 5]);
        // Each datagram takes 10 ms (5 bytes + 5 of overhead): three fit
        // the queue whichever link they come from, the fourth is dropped.
        let fates: Vec<Fate> = [(1, 2), (3, 4), (1, 2), (3, 4)]
            .into_iter()
            .map(|(from, to)| net.send(Duration::ZERO, addr(from), addr(to), five.clone()))
            .collect();
        assert_eq!(fates[..3], [Fate::Queued { copies: 1 }; 3]);
        assert_eq!(fates[3], Fate::RateDropped);
        assert_eq!(net.stats().rate_dropped, 1);
    }

    #[test]
    fn loss_after_queue_still_uses_the_link() {
        let mut profile = LinkProfile::clean();
        profile.rate = Some(1_000);
        profile.queue_limit = Duration::from_millis(15);
        profile.loss = 0.999_999;
        profile.loss_after_queue = true;
        let mut net = Network::new(1, profile);
        let ten = Bytes::from_static(&[0; 10]);
        let fates: Vec<Fate> = (0..3)
            .map(|_| net.send(Duration::ZERO, addr(1), addr(2), ten.clone()))
            .collect();
        // Lost on the wire, yet each one occupied the queue.
        assert_eq!(fates, [Fate::Lost, Fate::Lost, Fate::RateDropped]);
    }

    #[test]
    fn corruption_changes_every_corrupted_copy_and_only_those() {
        let mut profile = LinkProfile::clean();
        profile.corrupt = 0.5;
        profile.duplicate = 0.3;
        let mut net = Network::new(4, profile);
        let sent = Bytes::from_static(b"0123456789abcdefghijklmnopqrstuv");
        for i in 0..400 {
            net.send(Duration::from_millis(i), addr(1), addr(2), sent.clone());
        }
        let (mut corrupted, mut truncated, mut header) = (0, 0, 0);
        while let Some(at) = net.next_delivery() {
            let datagram = net.poll_delivery(at).unwrap();
            assert_eq!(datagram.corrupted, datagram.payload != sent);
            if datagram.corrupted {
                corrupted += 1;
                if datagram.payload.len() < sent.len() {
                    truncated += 1;
                } else if datagram.payload[..CORRUPT_HEADER_BYTES] != sent[..CORRUPT_HEADER_BYTES] {
                    header += 1;
                }
            }
        }
        assert_eq!(corrupted, net.stats().corrupted);
        assert!(
            corrupted > 150 && truncated > 20 && header > 40,
            "{corrupted} {truncated} {header}"
        );
    }

    #[test]
    fn a_datagram_above_the_mtu_is_dropped() {
        let mut profile = LinkProfile::clean();
        profile.mtu = Some(1_280);
        profile.wire_overhead = 28;
        let mut net = Network::new(1, profile);
        let fits = Bytes::from(vec![0; 1_252]);
        let over = Bytes::from(vec![0; 1_253]);
        assert_eq!(
            net.send(Duration::ZERO, addr(1), addr(2), fits),
            Fate::Queued { copies: 1 }
        );
        assert_eq!(
            net.send(Duration::ZERO, addr(1), addr(2), over),
            Fate::TooBig
        );
        assert_eq!(net.stats().too_big, 1);
    }

    #[test]
    fn same_seed_same_fates() {
        let run = |seed| {
            let mut profile = LinkProfile::clean();
            profile.loss = 0.3;
            profile.duplicate = 0.2;
            profile.reorder = 0.2;
            profile.jitter = Duration::from_millis(5);
            profile.reorder_delay = Duration::from_millis(20);
            let mut net = Network::new(seed, profile);
            let fates: Vec<Fate> = (0..100)
                .map(|i| net.send(Duration::from_millis(i), addr(1), addr(2), Bytes::new()))
                .collect();
            let mut order = Vec::new();
            while let Some(at) = net.next_delivery() {
                order.push((at, net.poll_delivery(at).map(|d| d.sent_at)));
            }
            (fates, order)
        };
        assert_eq!(run(9), run(9));
        assert_ne!(run(9), run(10));
    }
}
