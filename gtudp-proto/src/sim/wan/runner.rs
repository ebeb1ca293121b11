//! The runner: a cell's endpoints and network on virtual time, from start to
//! report.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use super::cell::{Carriage, WanCell, WanError};
use super::report::{FlowReport, FlowSample, Traffic, WanReport, WanSample};
use crate::sim::network::{Clock, Fate, LinkProfile, Network};
use crate::{Config, Endpoint, Event, LargeMessages};

/// Messages each sender keeps waiting beyond what is in flight, so the
/// application never limits the flow.
const BACKLOG: usize = 512;

/// Bytes of IPv4 and UDP headers the bottleneck counts per datagram, besides
/// what gtUDP sends.
const WIRE_OVERHEAD: usize = 28;

impl WanCell {
    /// Runs the cell to its end on virtual time.
    ///
    /// # Errors
    ///
    /// [`WanError::Invalid`] for a cell out of range (no flows or too many,
    /// a zero RTT, rate or duration, a loss of 1 or more, a zero sample
    /// interval), [`WanError::Config`] when the endpoints refuse the
    /// configuration it needs (a message too large for a datagram).
    pub fn run(&self) -> Result<WanReport, WanError> {
        self.check()?;
        Runner::new(self)?.run()
    }
}

/// One sender and its receiver, while the cell runs.
struct Flow {
    sender: Endpoint,
    receiver: Endpoint,
    sender_addr: SocketAddr,
    receiver_addr: SocketAddr,
    next_seq: u64,
    /// First transmission of message `seq`, once sent.
    first_sent: Vec<Option<Duration>>,
    /// Identity of the first message (ids are given out in order).
    first_id: Option<u64>,
    /// With fragments (whose ids are not consecutive, and whose first
    /// datagram does not start with the message), when each message was
    /// accepted, by id: its delay is counted from then.
    accepted: std::collections::BTreeMap<u64, Duration>,
    delivered_bytes: u64,
    /// Of `delivered_bytes`, those handed over in the run's second half.
    second_half_bytes: u64,
    /// `delivered_bytes` at the previous sample.
    sampled_bytes: u64,
    delivered: u64,
    failed: u64,
    latencies: Vec<Duration>,
    bottleneck_sent: u64,
    bottleneck_drops: u64,
}

struct Runner<'a> {
    cell: &'a WanCell,
    flows: Vec<Flow>,
    net: Network,
    header_len: usize,
    samples: Vec<WanSample>,
    next_sample: Option<Duration>,
}

fn duration_ms(ms: f64) -> Duration {
    Duration::from_nanos((ms * 1e6).round() as u64)
}

/// The `p` quantile of `sorted` in ms, 0 when empty.
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1e3
}

impl<'a> Runner<'a> {
    fn new(cell: &'a WanCell) -> Result<Self, WanError> {
        let rate_bytes = (cell.rate_mbit * 1e6 / 8.0).round() as u64;
        let mut base = Config::default();
        if cell.carriage == Carriage::Fragments {
            base.large_messages =
                Some(LargeMessages::default().with_max_message_size(cell.size.max(1)));
        } else if cell.size > base.max_payload_size() {
            base.max_datagram_size = cell.size + base.framing.header_len();
        }
        base.limits.max_outstanding_messages = base
            .limits
            .max_outstanding_messages
            .max(base.max_window as usize + 2 * BACKLOG);

        let wire_for = |rtt: Duration| {
            let mut wire = LinkProfile::clean();
            wire.delay = duration_ms(rtt.as_secs_f64() * 1e3 / 2.0);
            wire.jitter = cell.jitter;
            wire.loss = cell.loss;
            if cell.carriage == Carriage::IpFragments {
                wire.ip_fragment_mtu = Some(1_480);
            }
            wire.loss_after_queue = true;
            wire
        };
        let bottleneck_for = |rtt: Duration| {
            let mut bottleneck = wire_for(rtt);
            bottleneck.rate = Some(rate_bytes.max(1));
            bottleneck.queue_limit = cell.queue;
            bottleneck.bottleneck = Some(0);
            bottleneck.wire_overhead = WIRE_OVERHEAD;
            bottleneck
        };
        // Every address gets its own links; the default only matters for
        // nothing, but is the first flow's wire as it always was.
        let first_rtt = cell.flows.first().map_or(Duration::ZERO, |f| f.rtt);
        let mut net = Network::new(cell.seed, wire_for(first_rtt));
        let longest = cell.max_rtt();
        let max_transit = bottleneck_for(longest).max_transit(base.max_datagram_size)
            + wire_for(longest).max_transit(0);
        base.datagram_lifetime = base.datagram_lifetime.max(max_transit * 2);

        let mut flows = Vec::with_capacity(cell.flows.len());
        for (i, spec) in cell.flows.iter().enumerate() {
            let host = u8::try_from(i + 1)
                .map_err(|_| WanError::Invalid("a cell needs 1 to 64 flows".into()))?;
            let sender_addr = SocketAddr::from(([10, 0, 1, host], 9000));
            let receiver_addr = SocketAddr::from(([10, 0, 2, host], 9000));
            net.set_link(sender_addr, receiver_addr, bottleneck_for(spec.rtt));
            net.set_link(receiver_addr, sender_addr, wire_for(spec.rtt));
            let mut config = base.clone();
            config.congestion = spec.congestion;
            let seed = u128::from(cell.seed) << 16 | (i as u128) << 1;
            let sender = Endpoint::new(config.clone(), seed)?;
            let receiver = Endpoint::new(config, seed | 1)?;
            flows.push(Flow {
                sender,
                receiver,
                sender_addr,
                receiver_addr,
                next_seq: 0,
                first_sent: Vec::new(),
                first_id: None,
                accepted: std::collections::BTreeMap::new(),
                delivered_bytes: 0,
                second_half_bytes: 0,
                sampled_bytes: 0,
                delivered: 0,
                failed: 0,
                latencies: Vec::new(),
                bottleneck_sent: 0,
                bottleneck_drops: 0,
            });
        }
        Ok(Self {
            cell,
            flows,
            net,
            header_len: base.framing.header_len(),
            samples: Vec::new(),
            next_sample: cell.sample_every,
        })
    }

    /// Records the samples due up to `until` (inclusive): nothing changes
    /// between events, so the state now is the state then.
    fn sample_until(&mut self, until: Duration) {
        let Some(every) = self.cell.sample_every else {
            return;
        };
        while let Some(at) = self.next_sample.filter(|&at| at <= until) {
            let flows = self
                .flows
                .iter_mut()
                .map(|flow| {
                    let stats = flow.sender.peer_stats(flow.receiver_addr);
                    let bytes = flow.delivered_bytes - flow.sampled_bytes;
                    flow.sampled_bytes = flow.delivered_bytes;
                    FlowSample {
                        goodput_mbit: bytes as f64 * 8.0 / every.as_secs_f64() / 1e6,
                        in_flight: stats.map_or(0, |s| s.in_flight),
                        window: stats.map_or(0, |s| s.window),
                        rtt: stats.and_then(|s| s.rtt),
                    }
                })
                .collect();
            self.samples.push(WanSample { at, flows });
            self.next_sample = at.checked_add(every);
        }
    }

    fn run(mut self) -> Result<WanReport, WanError> {
        let cell = self.cell;
        let payload = vec![0u8; cell.size];
        let stamp = 8.min(cell.size);
        let header_len = self.header_len;
        let mut clock = Clock::new();
        let end = cell.duration;
        let mut buf = Vec::new();
        let mut pending: Vec<(usize, SocketAddr, SocketAddr, Bytes)> = Vec::new();
        let mut spins = 0;

        loop {
            let now = clock.now();
            let elapsed = clock.elapsed();
            // Deliver what has arrived.
            while let Some(datagram) = self.net.poll_delivery(elapsed) {
                if let Some(flow) = self
                    .flows
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
            for (index, flow) in self.flows.iter_mut().enumerate() {
                for endpoint in [&mut flow.sender, &mut flow.receiver] {
                    if endpoint.poll_timeout().is_some_and(|at| at <= now) {
                        endpoint.handle_timeout(now);
                    }
                }
                // Keep the sender busy.
                if elapsed < end {
                    let queued = |flow: &Flow| {
                        flow.sender
                            .peer_stats(flow.receiver_addr)
                            .map_or(0, |stats| stats.queued)
                    };
                    let before = queued(flow);
                    for sent in 0..BACKLOG.saturating_sub(before) {
                        // A message of many fragments queues many datagrams.
                        if sent > 0
                            && cell.carriage == Carriage::Fragments
                            && queued(flow) >= BACKLOG
                        {
                            break;
                        }
                        let mut message = payload.clone();
                        message[..stamp].copy_from_slice(&flow.next_seq.to_be_bytes()[..stamp]);
                        match flow
                            .sender
                            .send(now, flow.receiver_addr, Bytes::from(message))
                        {
                            Ok(id) => {
                                flow.first_id.get_or_insert(id.as_u64());
                                if cell.carriage == Carriage::Fragments {
                                    flow.accepted.insert(id.as_u64(), elapsed);
                                }
                                flow.next_seq += 1;
                                flow.first_sent.push(None);
                            }
                            Err(_) => break,
                        }
                    }
                }
                // Transmit, noting each message's first transmission.
                while let Some(t) = flow.sender.poll_transmit(now, 1, &mut buf) {
                    if stamp == 8 {
                        if let Some(seq) = buf
                            .get(header_len..header_len + 8)
                            .and_then(|bytes| bytes.try_into().ok())
                            .map(u64::from_be_bytes)
                        {
                            if let Some(slot @ None) = flow.first_sent.get_mut(seq as usize) {
                                *slot = Some(elapsed);
                            }
                        }
                    }
                    pending.push((
                        index,
                        flow.sender_addr,
                        t.destination,
                        Bytes::copy_from_slice(&buf[..t.size]),
                    ));
                }
                while let Some(t) = flow.receiver.poll_transmit(now, 1, &mut buf) {
                    pending.push((
                        index,
                        flow.receiver_addr,
                        t.destination,
                        Bytes::copy_from_slice(&buf[..t.size]),
                    ));
                }
                while let Some(event) = flow.sender.poll_event() {
                    match event {
                        Event::Delivered { id, .. } if cell.carriage == Carriage::Fragments => {
                            if let Some(sent) = flow.accepted.remove(&id.as_u64()) {
                                if elapsed <= end {
                                    flow.latencies.push(elapsed - sent);
                                }
                            }
                        }
                        Event::Delivered { id, .. } => {
                            let seq = id.as_u64().wrapping_sub(flow.first_id.unwrap_or(0));
                            if let Some(Some(sent)) = flow.first_sent.get(seq as usize) {
                                if elapsed <= end {
                                    flow.latencies.push(elapsed - *sent);
                                }
                            }
                        }
                        Event::Failed { .. } if elapsed <= end => flow.failed += 1,
                        _ => {}
                    }
                }
                while let Some(event) = flow.receiver.poll_event() {
                    if let Event::Received { payload, .. } = event {
                        if elapsed <= end {
                            flow.delivered += 1;
                            flow.delivered_bytes += payload.len() as u64;
                            if elapsed > end / 2 {
                                flow.second_half_bytes += payload.len() as u64;
                            }
                        }
                    }
                }
            }
            for (index, from, to, datagram) in pending.drain(..) {
                let fate = self.net.send(elapsed, from, to, datagram);
                if let Some(flow) = self.flows.get_mut(index) {
                    if from == flow.sender_addr {
                        flow.bottleneck_sent += 1;
                        if fate == Fate::RateDropped {
                            flow.bottleneck_drops += 1;
                        }
                    }
                }
            }
            // Next instant anything happens.
            let mut next = self.net.next_delivery();
            for flow in &mut self.flows {
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
                        self.sample_until(next);
                        clock.advance_to(next);
                        spins = 0;
                    } else {
                        // A timer due now that asked for nothing more: after
                        // a few passes, step past it.
                        spins += 1;
                        if spins > 3 {
                            let step = elapsed + Duration::from_micros(1);
                            self.sample_until(step);
                            clock.advance_to(step);
                            spins = 0;
                        }
                    }
                }
                _ => break,
            }
        }
        self.sample_until(end);
        Ok(self.report())
    }

    fn report(self) -> WanReport {
        let cell = self.cell;
        let seconds = cell.duration.as_secs_f64();
        let stats = self.net.stats();
        let mut all_latencies = Vec::new();
        let second_half_bytes: u64 = self.flows.iter().map(|f| f.second_half_bytes).sum();
        let flows: Vec<FlowReport> = self
            .flows
            .into_iter()
            .zip(&cell.flows)
            .map(|(mut flow, spec)| {
                flow.latencies.sort_unstable();
                all_latencies.extend_from_slice(&flow.latencies);
                let sender = flow.sender.stats();
                let receiver = flow.receiver.stats();
                let goodput_mbit = flow.delivered_bytes as f64 * 8.0 / seconds / 1e6;
                FlowReport {
                    flow: *spec,
                    goodput_mbit,
                    share: goodput_mbit / cell.rate_mbit,
                    traffic: Traffic {
                        delivered: flow.delivered,
                        failed: flow.failed,
                        data_sent: sender.datagrams_out.data,
                        retransmissions: sender.retransmissions,
                        spurious: sender.spurious_retransmissions,
                        loss_detected_early: sender.loss_detected_early,
                        bottleneck_sent: flow.bottleneck_sent,
                        bottleneck_drops: flow.bottleneck_drops,
                        data_arrived: receiver.datagrams_in.data,
                    },
                    p50_ms: percentile(&flow.latencies, 0.5),
                    p99_ms: percentile(&flow.latencies, 0.99),
                }
            })
            .collect();
        all_latencies.sort_unstable();
        let goodput_mbit: f64 = flows.iter().map(|f| f.goodput_mbit).sum();
        let second_half_mbit = second_half_bytes as f64 * 8.0 / (seconds / 2.0) / 1e6;
        let sum_sq: f64 = flows.iter().map(|f| f.goodput_mbit * f.goodput_mbit).sum();
        let fairness = if sum_sq > 0.0 {
            goodput_mbit * goodput_mbit / (flows.len() as f64 * sum_sq)
        } else {
            0.0
        };
        let mut traffic = Traffic::default();
        for flow in &flows {
            traffic += flow.traffic;
        }
        WanReport {
            cell: cell.clone(),
            goodput_mbit,
            utilization: goodput_mbit / cell.rate_mbit,
            second_half_utilization: second_half_mbit / cell.rate_mbit,
            traffic,
            wire_lost: stats.lost,
            p50_ms: percentile(&all_latencies, 0.5),
            p99_ms: percentile(&all_latencies, 0.99),
            fairness,
            samples: self.samples,
            flows,
        }
    }
}
