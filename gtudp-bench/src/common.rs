//! What every benchmark shares: the payload layout, the receive-side
//! tally, latency histograms and the outcome of one run.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// No progress for this long ends a run as stalled.
pub(crate) const STALL: Duration = Duration::from_secs(5);

/// Raw UDP receivers stop after this long without a datagram.
pub(crate) const RAW_IDLE: Duration = Duration::from_millis(500);

/// Bytes at the start of each payload: sequence number, then the send time
/// in nanoseconds since the run's epoch (both big-endian).
pub(crate) const HEADER: usize = 16;

/// What one run is asked to do.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Params {
    pub(crate) count: u64,
    pub(crate) size: usize,
    pub(crate) concurrency: usize,
    /// gtUDP's receive queue ([`gtudp_tokio::Builder::recv_queue`]);
    /// `None` keeps the library's default.
    pub(crate) recv_queue: Option<usize>,
}

/// Writes message `seq` into `buf` (whose length is the payload size),
/// stamped with the current time relative to `epoch`.
pub(crate) fn fill(buf: &mut [u8], seq: u64, epoch: Instant) {
    buf[..8].copy_from_slice(&seq.to_be_bytes());
    stamp(buf, epoch);
    for (j, byte) in buf.iter_mut().enumerate().skip(HEADER) {
        *byte = filler(seq, j);
    }
}

/// Rewrites the send time of a filled payload.
pub(crate) fn stamp(buf: &mut [u8], epoch: Instant) {
    let nanos = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
    buf[8..HEADER].copy_from_slice(&nanos.to_be_bytes());
}

/// A new payload for message `seq`.
pub(crate) fn payload(seq: u64, size: usize, epoch: Instant) -> Vec<u8> {
    let mut buf = vec![0; size];
    fill(&mut buf, seq, epoch);
    buf
}

fn filler(seq: u64, j: usize) -> u8 {
    (seq.wrapping_mul(31).wrapping_add(j as u64) & 0xff) as u8
}

/// A latency histogram in microseconds.
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).unwrap_or_else(|_| unreachable!())
}

/// Records `elapsed` (at least 1 µs) into `hist`.
pub(crate) fn record(hist: &mut Histogram<u64>, elapsed: Duration) {
    let micros = u64::try_from(elapsed.as_micros())
        .unwrap_or(u64::MAX)
        .max(1);
    hist.saturating_record(micros);
}

/// The receiving side's count: each message at most once, payload checked.
pub(crate) struct Tally {
    size: usize,
    epoch: Instant,
    seen: Vec<bool>,
    /// Distinct, intact messages received.
    pub(crate) unique: u64,
    /// Messages received again.
    pub(crate) duplicates: u64,
    /// Datagrams of the wrong length, sequence number or contents.
    pub(crate) corrupt: u64,
    /// Messages that arrived after a higher sequence number.
    pub(crate) reordered: u64,
    highest: Option<u64>,
    /// When the latest new message arrived.
    pub(crate) last: Option<Instant>,
    /// Send-to-receive latency (the payload carries its send time).
    pub(crate) one_way: Histogram<u64>,
}

impl Tally {
    pub(crate) fn new(params: &Params, epoch: Instant) -> Self {
        Self {
            size: params.size,
            epoch,
            seen: vec![false; params.count as usize],
            unique: 0,
            duplicates: 0,
            corrupt: 0,
            reordered: 0,
            highest: None,
            last: None,
            one_way: histogram(),
        }
    }

    /// Whether every message arrived.
    pub(crate) fn complete(&self) -> bool {
        self.unique == self.seen.len() as u64
    }

    /// Counts one received payload.
    pub(crate) fn record(&mut self, payload: &[u8]) {
        let now = Instant::now();
        if payload.len() != self.size {
            self.corrupt += 1;
            return;
        }
        let seq = u64::from_be_bytes(payload[..8].try_into().unwrap_or_default());
        let sent_ns = u64::from_be_bytes(payload[8..HEADER].try_into().unwrap_or_default());
        let intact = payload
            .iter()
            .enumerate()
            .skip(HEADER)
            .all(|(j, &byte)| byte == filler(seq, j));
        let Some(seen) = self.seen.get_mut(seq as usize).filter(|_| intact) else {
            self.corrupt += 1;
            return;
        };
        if *seen {
            self.duplicates += 1;
            return;
        }
        *seen = true;
        self.unique += 1;
        self.last = Some(now);
        if self.highest.is_some_and(|highest| seq < highest) {
            self.reordered += 1;
        } else {
            self.highest = Some(seq);
        }
        let sent = self.epoch + Duration::from_nanos(sent_ns);
        record(&mut self.one_way, now.saturating_duration_since(sent));
    }
}

/// Process CPU time (user + system, all threads) from `/proc/self/stat`,
/// in clock ticks of 10 ms; `None` where that file does not exist.
pub(crate) fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux configuration in use.
    Some(Duration::from_millis((utime + stime) * 10))
}

/// Resets the process's peak resident set size (`VmHWM`), so that the next
/// [`peak_rss`] covers one run only (Linux 4.0 and later).
pub(crate) fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The process's peak resident set size since the last [`reset_peak_rss`],
/// in bytes (`VmHWM` in `/proc/self/status`).
pub(crate) fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The kernel's count of UDP datagrams dropped because a socket's receive
/// buffer was full (`RcvbufErrors` in `/proc/net/snmp`, system-wide).
pub(crate) fn rcvbuf_errors() -> Option<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = snmp.lines().filter(|line| line.starts_with("Udp:"));
    let names = udp.next()?.split_whitespace();
    let values = udp.next()?.split_whitespace();
    names
        .zip(values)
        .find(|(name, _)| *name == "RcvbufErrors")
        .and_then(|(_, value)| value.parse().ok())
}

/// What one run of one implementation measured.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) name: &'static str,
    pub(crate) params: Params,
    /// Messages handed to the library or socket.
    pub(crate) sent: u64,
    /// Distinct intact messages received.
    pub(crate) received: u64,
    pub(crate) duplicates: u64,
    pub(crate) corrupt: u64,
    pub(crate) reordered: u64,
    /// Messages confirmed delivered to the sender, where the library says.
    pub(crate) delivered: Option<u64>,
    /// Sends that failed, where the library says.
    pub(crate) failed: u64,
    /// From the first send to the last completion (delivery confirmation
    /// where there is one, else the last new message received).
    pub(crate) elapsed: Duration,
    /// Process CPU time spent over the run (both sides).
    pub(crate) cpu: Option<Duration>,
    pub(crate) stalled: bool,
    /// Send-to-confirmation latency, where the library confirms.
    pub(crate) confirm_latency: Option<Histogram<u64>>,
    /// Send-to-receive latency.
    pub(crate) one_way: Histogram<u64>,
    /// Extra facts for the notes column.
    pub(crate) notes: Vec<String>,
    /// Counters printed below the table.
    pub(crate) details: Vec<String>,
}

impl Outcome {
    pub(crate) fn new(name: &'static str, params: Params, tally: Tally) -> Self {
        Self {
            name,
            params,
            sent: 0,
            received: tally.unique,
            duplicates: tally.duplicates,
            corrupt: tally.corrupt,
            reordered: tally.reordered,
            delivered: None,
            failed: 0,
            elapsed: Duration::ZERO,
            cpu: None,
            stalled: false,
            confirm_latency: None,
            one_way: tally.one_way,
            notes: Vec::new(),
            details: Vec::new(),
        }
    }

    /// Messages completed: confirmed where the library confirms, else
    /// received.
    pub(crate) fn completed(&self) -> u64 {
        self.delivered.unwrap_or(self.received)
    }

    pub(crate) fn msgs_per_sec(&self) -> f64 {
        self.completed() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Sets `outcome.cpu` from two [`cpu_time`] readings.
pub(crate) fn cpu_between(before: Option<Duration>, after: Option<Duration>) -> Option<Duration> {
    Some(after?.saturating_sub(before?))
}
