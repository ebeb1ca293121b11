//! CPU cost of the sans-IO core, without sockets: parsing, and one message
//! through a full DATA → RECV → ACK exchange between two endpoints.
//!
//! `cargo bench -p gtudp-proto --bench endpoint`

#![allow(missing_docs)] // criterion_group! generates an undocumented public function

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use gtudp_proto::wire::{Framing, Identity, Packet};
use gtudp_proto::{Config, Endpoint};

fn parse(c: &mut Criterion) {
    let framing = Framing::default();
    let mut datagram = Vec::new();
    framing.encode_to_vec(
        &Packet::Data {
            identity: Identity::from_u32(7),
            payload: &[0u8; 512],
        },
        &mut datagram,
    );
    let mut group = c.benchmark_group("wire");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse_data_512", |b| {
        b.iter(|| framing.parse(black_box(&datagram)))
    });
    group.finish();
}

/// Two endpoints and the buffers to move datagrams between them.
struct Link {
    a: Endpoint,
    b: Endpoint,
    a_addr: SocketAddr,
    b_addr: SocketAddr,
    now: Instant,
    buf: Vec<u8>,
}

impl Link {
    fn new() -> Self {
        Self {
            a: Endpoint::new(Config::default(), 1).expect("valid"),
            b: Endpoint::new(Config::default(), 2).expect("valid"),
            a_addr: "10.0.0.1:1".parse().expect("address"),
            b_addr: "10.0.0.2:2".parse().expect("address"),
            now: Instant::now(),
            buf: Vec::with_capacity(65_536),
        }
    }

    /// Sends `batch` messages and moves datagrams until both sides are quiet.
    fn round(&mut self, payload: &Bytes, batch: usize) {
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
        self.now += Duration::from_millis(100);
        self.a.handle_timeout(self.now);
        self.b.handle_timeout(self.now);
    }
}

fn exchange(c: &mut Criterion) {
    let mut group = c.benchmark_group("endpoint");
    for size in [64usize, 1024] {
        let payload = Bytes::from(vec![0x5a; size]);
        let batch = 64;
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(format!("exchange_{size}B_x{batch}"), |b| {
            b.iter_batched_ref(
                || {
                    let mut link = Link::new();
                    link.round(&payload, batch);
                    link
                },
                |link| link.round(&payload, batch),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, parse, exchange);
criterion_main!(benches);
