//! Path MTU discovery over real loopback sockets: with the large-message
//! extension on at both ends and `max_datagram_size` at the UDP limit, the
//! sender finds that loopback carries datagrams of that size (its MTU is
//! 65,536), and then sends a large message in fragments of that size.

mod common;

use std::time::{Duration, Instant};

use common::within;
use gtudp_tokio::{Config, LargeMessages, Socket};

#[tokio::test]
async fn loopback_carries_the_largest_datagram() {
    let mut config = Config::default();
    config.max_datagram_size = 65_507;
    config.large_messages = Some(LargeMessages::default().with_max_message_size(1 << 20));
    let server = Socket::bind("127.0.0.1:0", config.clone()).await.unwrap();
    let client = Socket::bind("127.0.0.1:0", config).await.unwrap();
    let to = server.local_addr();
    let start = Instant::now();
    within(10, async {
        client
            .start_send(vec![7u8; 100], to)
            .await
            .unwrap()
            .await
            .unwrap();
    })
    .await;
    let confirmed = start.elapsed();
    let found = within(10, async {
        loop {
            let stats = client.peer_stats(to).await.unwrap().unwrap();
            if stats.path_datagram_size == Some(65_507) {
                return stats;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    let elapsed = start.elapsed() - confirmed;
    let rtt = found.rtt.unwrap_or(Duration::from_micros(1));
    eprintln!(
        "loopback: 65,507 bytes found {elapsed:?} after the first confirmation \
         (smoothed RTT {rtt:?})"
    );
    // A 200 KB message now takes four datagrams.
    within(10, async {
        client
            .start_send(vec![9u8; 200_000], to)
            .await
            .unwrap()
            .await
            .unwrap();
    })
    .await;
    let received = within(10, async {
        let mut sizes = Vec::new();
        while sizes.len() < 2 {
            sizes.push(server.recv().await.unwrap().payload.len());
        }
        sizes
    })
    .await;
    assert_eq!(received, vec![100, 200_000]);
    let stats = client.stats().endpoint;
    assert!(stats.pmtu_probes_confirmed >= 1, "{stats:?}");
    assert_eq!(stats.pmtu_black_holes, 0);
    assert_eq!(server.stats().endpoint.fragments_received, 4);
    server.close().await.unwrap();
    client.close().await.unwrap();
}
