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
            let mut moved = false;
            while let Some(t) = self.a.poll_transmit(self.now, 1, &mut self.buf) {
                let datagram = Bytes::copy_from_slice(&self.buf[..t.size]);
                self.b.handle_datagram(self.now, self.a_addr, datagram);
                moved = true;
            }
            while let Some(t) = self.b.poll_transmit(self.now, 1, &mut self.buf) {
                let datagram = Bytes::copy_from_slice(&self.buf[..t.size]);
                self.a.handle_datagram(self.now, self.b_addr, datagram);
                moved = true;
            }
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
