//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub, unused_imports)]

pub use gtudp_testkit::{nat, relay};

use std::future::Future;
use std::time::Duration;

/// Awaits `future`, failing the test after a generous `seconds`.
pub async fn within<T>(seconds: u64, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(seconds), future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {seconds} s"),
    }
}
