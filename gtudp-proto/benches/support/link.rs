//! Two endpoints and the buffers to move datagrams between them, shared by
//! the benches.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gtudp_proto::{Config, Endpoint};

/// The most datagrams one `poll_transmit` writes, as an adapter asks for
/// one segmentation-offload send.
const SEGMENTS: usize = 64;

/// Two endpoints, A sending to B, in virtual time.
pub(crate) struct Link {
    pub(crate) a: Endpoint,
    pub(crate) b: Endpoint,
    pub(crate) a_addr: SocketAddr,
    pub(crate) b_addr: SocketAddr,
    pub(crate) now: Instant,
    buf: Vec<u8>,
    /// The datagrams in flight from one side to the other.
    batch: Received,
}

/// Datagrams read by one batched receive: their bytes one after another in
/// a reused buffer, and each one's length (as `recvmmsg` fills its buffers).
#[derive(Default)]
struct Received {
    bytes: Vec<u8>,
    lengths: Vec<usize>,
}

impl Received {
    fn datagrams(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.lengths.iter().map(move |&length| {
            start += length;
            &self.bytes[start - length..start]
        })
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.lengths.clear();
    }
}

impl Link {
    pub(crate) fn new() -> Self {
        Self {
            a: Endpoint::new(Config::default(), 1).expect("valid"),
            b: Endpoint::new(Config::default(), 2).expect("valid"),
            a_addr: "10.0.0.1:1".parse().expect("address"),
            b_addr: "10.0.0.2:2".parse().expect("address"),
            now: Instant::now(),
            buf: Vec::with_capacity(65_536),
            batch: Received::default(),
        }
    }

    /// Sends `batch` messages, moves datagrams until both sides are quiet,
    /// then lets 100 ms pass.
    #[allow(dead_code)] // not every bench uses it
    pub(crate) fn round(&mut self, payload: &Bytes, batch: usize) {
        self.round_then_wait(payload, batch, Duration::from_millis(100));
    }

    /// Sends `batch` messages, moves datagrams until both sides are quiet,
    /// then lets `step` pass.
    pub(crate) fn round_then_wait(&mut self, payload: &Bytes, batch: usize, step: Duration) {
        for _ in 0..batch {
            self.a
                .send(self.now, self.b_addr, payload.clone())
                .expect("accepted");
        }
        loop {
            // As an adapter moves them: each side writes its datagrams in
            // segmentation-offload batches, and the other reads them as
            // one batched receive (prefetched, then each handled from the
            // receive buffer, which the endpoint borrows).
            let mut moved = transmit(&mut self.a, self.now, &mut self.buf, &mut self.batch);
            deliver(&mut self.b, self.now, self.a_addr, &mut self.batch);
            moved |= transmit(&mut self.b, self.now, &mut self.buf, &mut self.batch);
            deliver(&mut self.a, self.now, self.b_addr, &mut self.batch);
            while self.a.poll_event().is_some() {}
            while self.b.poll_event().is_some() {}
            if !moved {
                break;
            }
        }
        self.now += step;
        self.a.handle_timeout(self.now);
        self.b.handle_timeout(self.now);
    }
}

/// Writes every datagram `endpoint` has to send into `received`, as the
/// kernel would hand them to the other side. Returns whether there was any.
fn transmit(
    endpoint: &mut Endpoint,
    now: Instant,
    buf: &mut Vec<u8>,
    received: &mut Received,
) -> bool {
    while let Some(t) = endpoint.poll_transmit(now, SEGMENTS, buf) {
        for datagram in t.datagrams(buf) {
            received.bytes.extend_from_slice(datagram);
            received.lengths.push(datagram.len());
        }
    }
    !received.lengths.is_empty()
}

/// Hands `received` to `endpoint` as a batched receive would: every
/// datagram prefetched, then each handled.
fn deliver(endpoint: &mut Endpoint, now: Instant, from: SocketAddr, received: &mut Received) {
    endpoint.prefetch(received.datagrams().map(|datagram| (from, datagram)));
    for datagram in received.datagrams() {
        endpoint.handle_datagram_slice(now, from, datagram);
    }
    received.clear();
}
