//! Guaranteed delivery through a lossy, duplicating, reordering relay on
//! loopback.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::relay::{Impairment, Relay};
use common::within;
use gtudp_tokio::{Config, Socket};

async fn through_relay(bind: &str, seed: u64) {
    let mut config = Config::default();
    config.initial_rto = Duration::from_millis(50);
    config.max_rto = Duration::from_millis(500);
    config.max_attempts = 20;
    let server = Socket::bind(bind, config.clone()).await.unwrap();
    let client = Socket::bind(bind, config).await.unwrap();
    let relay = Relay::start(
        server.local_addr(),
        Impairment {
            loss: 0.2,
            duplicate: 0.2,
            max_delay: Duration::from_millis(10),
            seed,
        },
    )
    .unwrap();

    const COUNT: u32 = 200;
    let deliveries: Vec<_> = (0..COUNT)
        .map(|i| {
            client
                .send_nowait(i.to_be_bytes().to_vec(), relay.addr)
                .unwrap()
        })
        .collect();
    let mut seen = HashSet::new();
    for _ in 0..COUNT {
        let message = within(30, server.recv()).await.unwrap();
        assert_eq!(message.from, relay.addr);
        assert!(seen.insert(message.payload.clone()), "delivered twice");
    }
    for delivery in deliveries {
        within(30, delivery).await.unwrap();
    }
    // Duplicates still in the network must not be handed over again.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(100), server.recv())
            .await
            .is_err()
    );

    let client_stats = client.stats().endpoint;
    let server_stats = server.stats().endpoint;
    assert_eq!(client_stats.delivered, u64::from(COUNT));
    assert_eq!(server_stats.received, u64::from(COUNT));
    assert!(client_stats.retransmissions > 0, "{client_stats:?}");
    assert!(
        server_stats.duplicates_suppressed > 0,
        "the relay duplicated datagrams: {server_stats:?}"
    );
    let counters = &relay.counters;
    assert!(counters.dropped.load(std::sync::atomic::Ordering::Relaxed) > 0);
    within(30, client.close()).await.unwrap();
    within(30, server.close()).await.unwrap();
}

#[tokio::test]
async fn every_message_arrives_once_over_ipv4() {
    through_relay("127.0.0.1:0", 0x5eed).await;
}

#[tokio::test]
async fn every_message_arrives_once_over_ipv6() {
    through_relay("[::1]:0", 0xfeed).await;
}
