//! Helpers shared by the integration tests.

#![allow(dead_code, unreachable_pub)]

pub mod relay;

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
