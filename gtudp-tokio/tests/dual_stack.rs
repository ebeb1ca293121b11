//! A `[::]` socket talks to IPv4 peers and back: sends are delivered and
//! addresses come out in plain IPv4 form.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::within;
use gtudp_tokio::{Config, Socket};

fn mapped(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(v4) => SocketAddr::new(v4.ip().to_ipv6_mapped().into(), v4.port()),
        v6 => v6,
    }
}

fn config() -> Config {
    let mut config = Config::default();
    config.initial_rto = Duration::from_millis(50);
    config.max_rto = Duration::from_secs(1);
    config.drain_timeout = Duration::from_secs(5);
    config
}

#[tokio::test]
async fn dual_stack_socket_talks_to_ipv4_peers() {
    let dual = Socket::bind("[::]:0", config()).await.unwrap();
    let v4 = Socket::bind("127.0.0.1:0", config()).await.unwrap();
    let dual_v4: SocketAddr = format!("127.0.0.1:{}", dual.local_addr().port())
        .parse()
        .unwrap();
    within(20, async {
        // [::] -> IPv4, the peer named plainly and IPv4-mapped.
        dual.send_to(&b"plain"[..], v4.local_addr()).await.unwrap();
        dual.send_to(&b"mapped"[..], mapped(v4.local_addr()))
            .await
            .unwrap();
        for expected in ["plain", "mapped"] {
            let message = v4.recv().await.unwrap();
            assert_eq!(message.payload, expected);
            assert_eq!(message.from, dual_v4);
        }
        // IPv4 -> [::], and the reply to the address it came from.
        v4.send_to(&b"back"[..], dual_v4).await.unwrap();
        let message = dual.recv().await.unwrap();
        assert_eq!(message.from, v4.local_addr(), "plain IPv4, not [::ffff:..]");
        dual.send_to(&b"reply"[..], message.from).await.unwrap();
        assert_eq!(v4.recv().await.unwrap().payload, "reply");
        let peer = dual.peer_stats(mapped(v4.local_addr())).await.unwrap();
        assert_eq!(peer.map(|p| p.delivered), Some(3));
    })
    .await;
    let stats = dual.close().await.unwrap().stats.endpoint;
    assert_eq!(stats.delivered, 3);
    assert_eq!(stats.failed, 0);
    let v4_stats = v4.close().await.unwrap().stats.endpoint;
    assert_eq!(v4_stats.failed, 0);
    // Nothing dropped but what the exchanges explain on a busy machine.
    gtudp_testkit::drops::assert_only_explained_drops(&stats, &v4_stats);
}
