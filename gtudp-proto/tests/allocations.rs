//! The hot path allocates nothing per message beyond the payload's own
//! storage: once tables and buffers have grown to the working set, a steady
//! stream of messages through two endpoints makes no heap allocation inside
//! the endpoints at all. And the remembered-identity memory's own byte
//! accounting matches what the allocator hands it.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use bytes::Bytes;
use common::{config, Pair};

struct CountingAllocator;

// Per thread, so tests running side by side do not count each other.
thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    /// Bytes allocated minus bytes freed while counting.
    static LIVE_BYTES: Cell<isize> = const { Cell::new(0) };
}

fn bump<T: Copy + core::ops::Add<Output = T>>(
    counter: &'static std::thread::LocalKey<Cell<T>>,
    by: T,
) {
    counter.with(|c| c.set(c.get() + by));
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter and the thread-local flag neither allocate nor touch the memory.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            bump(&ALLOCATIONS, 1);
            bump(&LIVE_BYTES, layout.size() as isize);
        }
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.with(Cell::get) {
            bump(&LIVE_BYTES, -(layout.size() as isize));
        }
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            bump(&ALLOCATIONS, 1);
            bump(&LIVE_BYTES, new_size as isize - layout.size() as isize);
        }
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Runs `f` with allocations counted.
fn counted<T>(f: impl FnOnce() -> T) -> T {
    COUNTING.with(|c| c.set(true));
    let result = f();
    COUNTING.with(|c| c.set(false));
    result
}

/// Sends `count` messages from A to B in batches, moving every datagram,
/// and returns how many allocations the endpoints made.
fn run(pair: &mut Pair, payload: &Bytes, count: usize) -> usize {
    // 300 ms between batches: each batch's identities are forgotten
    // before the next few arrive.
    run_stepped(pair, payload, count, Duration::from_millis(300))
}

/// As `run`, with `step` of virtual time between batches of 50.
fn run_stepped(pair: &mut Pair, payload: &Bytes, count: usize, step: Duration) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut inbox: Vec<Bytes> = Vec::with_capacity(256);
    let (a_addr, b_addr) = (pair.a_addr, pair.b_addr);
    for _ in 0..count / 50 {
        for _ in 0..50 {
            let now = pair.now;
            counted(|| pair.a.send(now, b_addr, payload.clone())).expect("accepted");
        }
        // Move datagrams until both endpoints are quiet. Copying a datagram
        // into its own `Bytes` is the receive buffer, not the endpoint's.
        loop {
            let now = pair.now;
            while let Some(t) = counted(|| pair.a.poll_transmit(now, 1, &mut buf)) {
                inbox.push(Bytes::copy_from_slice(&buf[..t.size]));
            }
            let from_a = inbox.len();
            for datagram in inbox.drain(..) {
                counted(|| pair.b.handle_datagram(now, a_addr, datagram));
            }
            while let Some(t) = counted(|| pair.b.poll_transmit(now, 1, &mut buf)) {
                inbox.push(Bytes::copy_from_slice(&buf[..t.size]));
            }
            let from_b = inbox.len();
            for datagram in inbox.drain(..) {
                counted(|| pair.a.handle_datagram(now, b_addr, datagram));
            }
            counted(|| while pair.a.poll_event().is_some() {});
            counted(|| while pair.b.poll_event().is_some() {});
            if from_a == 0 && from_b == 0 {
                break;
            }
        }
        pair.now += step;
        let now = pair.now;
        counted(|| pair.a.handle_timeout(now));
        counted(|| pair.b.handle_timeout(now));
    }
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn steady_state_messages_allocate_nothing_in_the_endpoints() {
    let mut pair = Pair::with_configs(config(), config());
    let payload = Bytes::from_static(&[0x42; 512]);
    // Warm-up: tables, queues and the timer heap grow to the working set.
    run(&mut pair, &payload, 5_000);
    let allocations = run(&mut pair, &payload, 5_000);
    assert_eq!(pair.a.stats().delivered, 10_000);
    assert_eq!(pair.b.stats().received, 10_000);
    assert_eq!(
        allocations, 0,
        "{allocations} allocations for 5,000 messages after warm-up"
    );
}

/// The same over a million messages: nothing that grows with the length
/// of the run (a table, a queue, a history) reaches the allocator.
#[test]
fn a_million_messages_allocate_nothing_in_the_endpoints() {
    let mut pair = Pair::with_configs(config(), config());
    let payload = Bytes::from_static(&[0x42; 64]);
    run(&mut pair, &payload, 5_000);
    let allocations = run(&mut pair, &payload, 1_000_000);
    assert_eq!(pair.b.stats().received, 1_005_000);
    assert_eq!(
        allocations, 0,
        "{allocations} allocations for 1,000,000 messages after warm-up"
    );
}

/// A million messages at 500,000 a virtual second, so that the receiver
/// remembers hundreds of thousands of identities throughout and forgets a
/// generation of them every quarter of the lifetime: once the stream is
/// steady, each generation's table is a spare one reused, and nothing per
/// message reaches the allocator.
#[test]
fn a_million_remembered_identities_allocate_nothing_in_the_endpoints() {
    let mut pair = Pair::with_configs(config(), config());
    let payload = Bytes::from_static(&[0x42; 64]);
    // 50 messages per 100 µs; warm up over two lifetimes, so that every
    // generation size has been seen and its table is kept as a spare.
    let step = Duration::from_micros(100);
    let lifetime = pair.b.config().datagram_lifetime;
    let warm_up = (lifetime * 2).as_micros() as usize / 100 * 50;
    run_stepped(&mut pair, &payload, warm_up, step);
    let allocations = run_stepped(&mut pair, &payload, 1_000_000, step);
    let remembered = pair.b.table_sizes().remembered;
    assert!(remembered >= 100_000, "{remembered} identities remembered");
    assert_eq!(
        allocations, 0,
        "{allocations} allocations for 1,000,000 messages with {remembered} identities remembered"
    );
}

/// A receiver fed 300,000 messages from one peer over three virtual seconds
/// (100,000/s, each acknowledged at once): what the allocator holds for it
/// matches the memory's own accounting, and an identity costs at most 16
/// bytes.
#[test]
fn remembered_identities_cost_what_their_accounting_says() {
    use gtudp_proto::wire::{Framing, Identity, Packet};
    use gtudp_proto::Endpoint;

    let framing = Framing::default();
    let datagram = |kind: u8, identity: u32| {
        let identity = Identity::from_u32(identity);
        let mut out = Vec::new();
        match kind {
            0 => framing.encode_to_vec(
                &Packet::Data {
                    identity,
                    payload: &identity.to_u32().to_le_bytes(),
                },
                &mut out,
            ),
            _ => framing.encode_to_vec(&Packet::Ack { identity }, &mut out),
        }
        Bytes::from(out)
    };
    let mut b = counted(|| Endpoint::new(config(), 5)).expect("valid config");
    let a = common::addr(1);
    let start = std::time::Instant::now();
    let mut buf = Vec::with_capacity(2048);
    let before = LIVE_BYTES.with(Cell::get);
    let mut identity = 0x1234_5678u32;
    for tick in 0..3_000u64 {
        let now = start + Duration::from_millis(tick);
        for _ in 0..100 {
            identity = identity.wrapping_mul(0x9e37_79b9).wrapping_add(1);
            // The test's own buffers are made and freed while counting, so
            // they cancel out of the balance.
            counted(|| {
                b.handle_datagram(now, a, datagram(0, identity));
                let mut probe = None;
                while b.poll_transmit(now, 1, &mut buf).is_some() {
                    if let Ok(Packet::Recv { identity: named }) = framing.parse(&buf) {
                        probe = probe.or((named.to_u32() != identity).then_some(named));
                    }
                    buf.clear();
                }
                b.handle_datagram(now, a, datagram(1, identity));
                // The peer answers the validation probe, as any gtUDP
                // sender does, so it gets a validated peer's share.
                if let Some(token) = probe {
                    b.handle_datagram(now, a, datagram(1, token.to_u32()));
                }
                drop(b.poll_event());
            });
        }
        counted(|| b.handle_timeout(now));
    }
    let held = (LIVE_BYTES.with(Cell::get) - before) as f64;
    let sizes = b.table_sizes();
    let accounted = sizes.remembered_bytes as f64;
    // 100,000/s for the 1 s lifetime, plus up to a quarter.
    assert!(
        sizes.remembered >= 100_000,
        "{} remembered",
        sizes.remembered
    );
    let per_identity = accounted / sizes.remembered as f64;
    assert!(per_identity <= 16.0, "{per_identity:.1} bytes per identity");
    // Everything else the endpoint holds (peer, maps, queues) is small next
    // to the memory; the two agree within 10 % plus 256 KiB.
    assert!(
        (held - accounted).abs() <= accounted * 0.1 + 256.0 * 1024.0,
        "allocator holds {held} bytes, accounting says {accounted}"
    );
}
