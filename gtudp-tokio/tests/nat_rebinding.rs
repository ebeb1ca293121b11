//! Exactly once through a NAT that moves the client to a new public port
//! every 300 ms (closing the old one), delays each datagram 25 ms each way
//! and loses 10% of the replies: the server sees the client's
//! retransmissions arrive from ports it never saw, and must hand each
//! message over once.

mod common;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::nat::{Nat, NatBehaviour};
use common::within;
use gtudp_tokio::{Config, Socket};

const COUNT: u32 = 1_000;
const IN_FLIGHT: usize = 16;

async fn through_rebinding_nat(bind: &str, rebind_every: Duration, seed: u64) {
    let server = Socket::bind(bind, Config::default()).await.unwrap();
    let client = Socket::bind(bind, Config::default()).await.unwrap();
    let nat = Nat::start(
        server.local_addr(),
        NatBehaviour {
            rebind_every,
            delay: Duration::from_millis(25),
            reply_loss: 0.1,
            seed,
            changes_ip: false,
        },
    )
    .unwrap();

    let receiving = tokio::spawn({
        let server = server.clone();
        async move {
            let mut handed_over: HashMap<Vec<u8>, u32> = HashMap::new();
            let mut sources = std::collections::HashSet::new();
            loop {
                match tokio::time::timeout(Duration::from_secs(3), server.recv()).await {
                    Ok(Ok(message)) => {
                        sources.insert(message.from);
                        *handed_over.entry(message.payload.to_vec()).or_default() += 1;
                    }
                    _ => return (handed_over, sources.len()),
                }
            }
        }
    });

    // `IN_FLIGHT` at a time, as `sendto_blocking` from 16 threads would.
    let mut next = 0u32;
    let mut pending = tokio::task::JoinSet::new();
    while next < COUNT || !pending.is_empty() {
        while next < COUNT && pending.len() < IN_FLIGHT {
            let delivery = client
                .send_nowait(next.to_be_bytes().to_vec(), nat.addr)
                .unwrap();
            pending.spawn(delivery);
            next += 1;
        }
        let outcome = within(60, pending.join_next()).await;
        outcome
            .unwrap()
            .unwrap()
            .expect("every message is confirmed");
    }
    let (handed_over, sources) = within(60, receiving).await.unwrap();

    let twice: Vec<_> = handed_over.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "handed over more than once: {twice:?}");
    assert_eq!(handed_over.len(), COUNT as usize, "each handed over");
    let rebinds = nat.counters.rebinds.load(Ordering::Relaxed);
    assert!(rebinds >= 2, "the NAT moved the flow {rebinds} times");
    assert!(sources >= 2, "the server saw {sources} client addresses");
    let stats = server.stats().endpoint;
    eprintln!(
        "rebinds={rebinds} sources={sources} duplicates_suppressed={} rebound_duplicates={}",
        stats.duplicates_suppressed, stats.rebound_duplicates
    );
    within(30, client.close()).await.unwrap();
    within(30, server.close()).await.unwrap();
}

#[tokio::test]
async fn a_new_port_every_300_ms_hands_each_message_over_once() {
    through_rebinding_nat("127.0.0.1:0", Duration::from_millis(300), 0x4a7).await;
}

#[tokio::test]
async fn a_new_port_every_second_hands_each_message_over_once() {
    through_rebinding_nat("127.0.0.1:0", Duration::from_millis(1_000), 0x4a8).await;
}

#[tokio::test]
async fn over_ipv6_too() {
    through_rebinding_nat("[::1]:0", Duration::from_millis(300), 0x4a9).await;
}
