//! The roaming extension on real sockets: a client behind a NAT on loopback
//! that moves it to a new IP address and port every 300 ms (closing the
//! old one), delays each datagram 25 ms each way and loses 10% of the
//! replies. The client sends 1,000 messages, 16 at a time, then keepalives
//! until every reply is in; the server answers each message at the address
//! it came from. Every message in both directions must end Delivered and be
//! handed over once.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::nat::{Nat, NatBehaviour};
use common::within;
use gtudp_tokio::proto::wire::Framing;
use gtudp_tokio::{Config, Socket};

const COUNT: u32 = 1_000;
const KEEPALIVE: &[u8] = b"keepalive";
const IN_FLIGHT: usize = 16;

fn roaming() -> Config {
    let mut config = Config::default();
    config.framing = Framing::default().with_roaming();
    config
}

#[tokio::test]
async fn a_client_that_changes_ip_address_keeps_its_messages_both_ways() {
    let server = Socket::bind("127.0.0.1:0", roaming()).await.unwrap();
    let client = Socket::bind("127.0.0.1:0", roaming()).await.unwrap();
    let nat = Nat::start(
        server.local_addr(),
        NatBehaviour {
            rebind_every: Duration::from_millis(300),
            delay: Duration::from_millis(25),
            reply_loss: 0.1,
            seed: 0x70a3,
            changes_ip: true,
        },
    )
    .unwrap();

    // The server answers every message where it came from, and waits for
    // each answer's outcome.
    let serving = tokio::spawn({
        let server = server.clone();
        async move {
            let mut handed_over: HashMap<Vec<u8>, u32> = HashMap::new();
            let mut sources = HashSet::new();
            let mut replies = tokio::task::JoinSet::new();
            while let Ok(Ok(message)) =
                tokio::time::timeout(Duration::from_secs(3), server.recv()).await
            {
                if &message.payload[..] == KEEPALIVE {
                    continue;
                }
                sources.insert(message.from.ip());
                *handed_over.entry(message.payload.to_vec()).or_default() += 1;
                let mut reply = b"re:".to_vec();
                reply.extend_from_slice(&message.payload);
                let delivery = server.send_nowait(reply, message.from).unwrap();
                replies.spawn(delivery);
            }
            let mut failed = Vec::new();
            while let Some(outcome) = replies.join_next().await {
                if !matches!(outcome, Ok(Ok(_))) {
                    failed.push(format!("{outcome:?}"));
                }
            }
            (handed_over, sources.len(), failed)
        }
    });
    let replies_received = Arc::new(AtomicUsize::new(0));
    let receiving = tokio::spawn({
        let (client, replies_received) = (client.clone(), replies_received.clone());
        async move {
            let mut handed_over: HashMap<Vec<u8>, u32> = HashMap::new();
            loop {
                match tokio::time::timeout(Duration::from_secs(5), client.recv()).await {
                    Ok(Ok(message)) => {
                        *handed_over.entry(message.payload.to_vec()).or_default() += 1;
                        replies_received.store(handed_over.len(), Ordering::Relaxed);
                    }
                    _ => return handed_over,
                }
            }
        }
    });

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
    // The NAT keeps moving the client: it sends a keepalive every 100 ms
    // until every reply is in, as an application whose peers may move while
    // idle must (a peer that moves and stays silent cannot be found).
    for _ in 0..600 {
        if replies_received.load(Ordering::Relaxed) >= COUNT as usize {
            break;
        }
        let _ = client.send_nowait(KEEPALIVE.to_vec(), nat.addr);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (by_server, sources, replies_failed) = within(120, serving).await.unwrap();
    let by_client = within(60, receiving).await.unwrap();

    let twice: Vec<_> = by_server.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "server handed over more than once: {twice:?}"
    );
    assert_eq!(by_server.len(), COUNT as usize, "each handed over");
    assert!(
        replies_failed.is_empty(),
        "every reply to the moving client Delivered: {} failed: {:?}",
        replies_failed.len(),
        &replies_failed[..replies_failed.len().min(5)]
    );
    let twice: Vec<_> = by_client.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "client handed over more than once: {twice:?}"
    );
    assert_eq!(by_client.len(), COUNT as usize, "each reply handed over");
    let rebinds = nat.counters.rebinds.load(Ordering::Relaxed);
    assert!(rebinds >= 2, "the NAT moved the flow {rebinds} times");
    assert!(sources >= 2, "the server saw {sources} client IP addresses");
    let stats = server.stats().endpoint;
    assert!(stats.peer_moves >= 1, "{stats:?}");
    eprintln!(
        "rebinds={rebinds} ip_addresses={sources} peer_moves={} rebound_duplicates={}",
        stats.peer_moves, stats.rebound_duplicates
    );
    within(30, client.close()).await.unwrap();
    within(30, server.close()).await.unwrap();
}
