//! The hot path allocates nothing per message beyond the payload's own
//! storage: once tables and buffers have grown to the working set, a steady
//! stream of messages through two endpoints makes no heap allocation inside
//! the endpoints at all.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::{config, Pair};

struct CountingAllocator;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter and the thread-local flag neither allocate nor touch the memory.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
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
    let before = ALLOCATIONS.load(Ordering::Relaxed);
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
        // Let the remembered identities of this batch expire.
        pair.now += Duration::from_millis(300);
        let now = pair.now;
        counted(|| pair.a.handle_timeout(now));
        counted(|| pair.b.handle_timeout(now));
    }
    ALLOCATIONS.load(Ordering::Relaxed) - before
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
