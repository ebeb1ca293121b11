//! Helpers shared by the integration tests.

#![allow(dead_code, unreachable_pub, unused_imports)]

pub use gtudp_testkit::relay;

use std::time::Duration;

use gtudp_mio::Config;

/// Timeouts short enough for tests on loopback, long enough for a loaded
/// CI machine: retransmissions start at 50 ms and back off to 200 ms.
pub fn fast_config() -> Config {
    let mut config = Config::default();
    config.initial_rto = Duration::from_millis(50);
    config.min_rto = Duration::from_millis(10);
    config.max_rto = Duration::from_millis(200);
    config.max_attempts = 50;
    config.recv_max_attempts = 50;
    config.remember_window = Duration::from_secs(15);
    config.drain_timeout = Duration::from_secs(3);
    config
}

/// `addr` (IPv4) in the IPv4-mapped IPv6 form a dual-stack socket sees.
pub fn mapped(addr: std::net::SocketAddr) -> std::net::SocketAddr {
    match addr {
        std::net::SocketAddr::V4(v4) => {
            std::net::SocketAddr::new(v4.ip().to_ipv6_mapped().into(), v4.port())
        }
        v6 => v6,
    }
}
