//! CPU cost of the sans-IO core, without sockets: parsing, and one message
//! through a full DATA → RECV → ACK exchange between two endpoints: on a
//! warm pair, on a new pair (its first rounds, from cold memory), and in a
//! steady stream with about a million identities already remembered by the
//! receiver.
//!
//! `cargo bench -p gtudp-proto --bench endpoint`

#![allow(missing_docs)] // criterion_group! generates an undocumented public function

#[path = "support/link.rs"]
mod link;

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use gtudp_proto::wire::{Framing, Identity, Packet};
use link::Link;

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

/// 64 messages through the exchange on a pair that has reached its steady
/// state: the rounds come 100 ms apart in virtual time, so the receiver
/// remembers the last 2 to 2.5 s of them (1,300 to 1,600 identities) and
/// every table is at its working size. This is the per-message cost of the
/// core; `steady_exchange` below is the same with a million identities
/// remembered.
///
/// `_fresh_pair` runs the second round of a new pair instead, from memory
/// criterion set up long before (the inputs of a batch are made first, then
/// the routine runs on each): what a pair's first messages cost, tables
/// growing into fresh allocations, with every line cold.
fn exchange(c: &mut Criterion) {
    let mut group = c.benchmark_group("endpoint");
    for size in [64usize, 1024] {
        let payload = Bytes::from(vec![0x5a; size]);
        let batch = 64;
        group.throughput(Throughput::Elements(batch as u64));
        let mut link = Link::new();
        // Past two lifetimes (2 s each by default): generations have been
        // created, filled and forgotten.
        for _ in 0..64 {
            link.round(&payload, batch);
        }
        let remembered = link.b.table_sizes().remembered;
        assert!(remembered <= 2_000, "{remembered} identities remembered");
        group.bench_function(format!("exchange_{size}B_x{batch}"), |b| {
            b.iter(|| link.round(&payload, batch))
        });
        group.bench_function(format!("exchange_{size}B_x{batch}_fresh_pair"), |b| {
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

/// A stream of 500,000 messages per virtual second: with the default 2 s
/// lifetime the receiver remembers 1.0 to 1.25 million identities
/// throughout, so every new DATA is looked up in full-size tables, and
/// generations are allocated (or reused) and forgotten as the stream goes.
fn steady_exchange(c: &mut Criterion) {
    const RATE: u32 = 500_000;
    let batch = 64;
    let step = Duration::from_secs(1) * batch as u32 / RATE;
    let payload = Bytes::from(vec![0x5a; 64]);
    let mut link = Link::new();
    let lifetime = link.b.config().datagram_lifetime;
    let rounds = (lifetime * 5 / 4).as_nanos() / step.as_nanos() + 1;
    for _ in 0..rounds {
        link.round_then_wait(&payload, batch, step);
    }
    let remembered = link.b.table_sizes().remembered;
    assert!(remembered >= 900_000, "{remembered} identities remembered");
    let mut group = c.benchmark_group("endpoint");
    group.throughput(Throughput::Elements(batch as u64));
    group.bench_function(format!("steady_exchange_64B_x{batch}_1M_remembered"), |b| {
        b.iter(|| link.round_then_wait(&payload, batch, step))
    });
    group.finish();
    let sizes = link.b.table_sizes();
    eprintln!(
        "steady_exchange: receiver remembers {} identities in {} bytes ({:.1} B each), {} DATA unanswered",
        sizes.remembered,
        sizes.remembered_bytes,
        sizes.remembered_bytes as f64 / sizes.remembered as f64,
        link.b.stats().dropped.data_unanswered_full
    );
}

criterion_group!(benches, parse, exchange, steady_exchange);
criterion_main!(benches);
