//! Large messages over real sockets: with `Config::large_messages` on at
//! both ends, messages of 300 KB cross a loopback relay that drops 10% and
//! duplicates 5% of the datagrams, each arriving whole and once, beside
//! small ones.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::relay::{Impairment, Relay};
use common::within;
use gtudp_tokio::{Config, LargeMessages, Socket};

fn message(index: u8, size: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..size)
        .map(|i| (i as u8).wrapping_mul(31) ^ index)
        .collect();
    bytes[0] = index;
    bytes
}

#[tokio::test]
async fn large_messages_arrive_whole_and_once_through_loss() {
    let mut config = Config::default();
    config.large_messages = Some(LargeMessages::default().with_max_message_size(1 << 20));
    let server = Socket::bind("127.0.0.1:0", config.clone()).await.unwrap();
    let client = Socket::bind("127.0.0.1:0", config).await.unwrap();
    assert_eq!(client.max_payload_size(), 1 << 20);
    let relay = Relay::start(
        server.local_addr(),
        Impairment {
            loss: 0.1,
            duplicate: 0.05,
            max_delay: Duration::from_millis(2),
            seed: 11,
        },
    )
    .unwrap();
    let sizes = [300_000, 12, 300_000, 1_447, 1_448, 100_000, 300_000, 5];
    let sent: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(index, &size)| message(index as u8, size))
        .collect();
    let mut deliveries = Vec::new();
    for payload in &sent {
        deliveries.push(
            client
                .start_send(payload.clone(), relay.addr)
                .await
                .unwrap(),
        );
    }
    within(60, async {
        for delivery in deliveries {
            delivery.await.expect("delivered");
        }
    })
    .await;
    let mut received: HashMap<Vec<u8>, u32> = HashMap::new();
    within(30, async {
        while received.values().sum::<u32>() < sent.len() as u32 {
            let message = server.recv().await.unwrap();
            *received.entry(message.payload.to_vec()).or_insert(0) += 1;
        }
    })
    .await;
    for payload in &sent {
        assert_eq!(
            received.get(payload),
            Some(&1),
            "message of {} bytes",
            payload.len()
        );
    }
    // Nothing more comes: no message is handed over twice.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), server.recv())
            .await
            .is_err()
    );
    let stats = server.stats().endpoint;
    assert!(stats.fragments_received >= 3 * 210 + 70, "{stats:?}");
    server.close().await.unwrap();
    client.close().await.unwrap();
}
