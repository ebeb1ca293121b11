//! Two endpoints and the buffers to move datagrams between them, shared by
//! the benches.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gtudp_proto::{Config, Endpoint};

/// Two endpoints, A sending to B, in virtual time.
pub(crate) struct Link {
    pub(crate) a: Endpoint,
    pub(crate) b: Endpoint,
    pub(crate) a_addr: SocketAddr,
    pub(crate) b_addr: SocketAddr,
    pub(crate) now: Instant,
    buf: Vec<u8>,
    /// The datagrams in flight from one side to the other.
    batch: Vec<Bytes>,
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
            batch: Vec::with_capacity(1024),
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
            // Each side's datagrams are read as one batch, as an adapter's
            // batched receive reads them: prefetched, then handled.
            let mut moved = false;
            while let Some(t) = self.a.poll_transmit(self.now, 1, &mut self.buf) {
                self.batch.push(Bytes::copy_from_slice(&self.buf[..t.size]));
            }
            moved |= deliver(&mut self.b, self.now, self.a_addr, &mut self.batch);
            while let Some(t) = self.b.poll_transmit(self.now, 1, &mut self.buf) {
                self.batch.push(Bytes::copy_from_slice(&self.buf[..t.size]));
            }
            moved |= deliver(&mut self.a, self.now, self.b_addr, &mut self.batch);
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

/// Hands `batch` to `endpoint` as a batched receive would: every datagram
/// prefetched, then each handled. Returns whether there was any.
fn deliver(
    endpoint: &mut Endpoint,
    now: Instant,
    from: SocketAddr,
    batch: &mut Vec<Bytes>,
) -> bool {
    endpoint.prefetch(batch.iter().map(|datagram| (from, &datagram[..])));
    let any = !batch.is_empty();
    for datagram in batch.drain(..) {
        endpoint.handle_datagram(now, from, datagram);
    }
    any
}
