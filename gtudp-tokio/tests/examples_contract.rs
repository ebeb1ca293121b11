//! The echo examples' command-line contract: the same lines as the Tokio
//! examples, and every exit of the client bounded with its result line.

use std::time::Duration;

use gtudp_testkit::examples::{result_fields, run, Server};

const KEYS: [&str; 10] = [
    "sent",
    "delivered",
    "failed",
    "echoed",
    "duplicates",
    "mismatched",
    "elapsed_s",
    "msgs_per_s",
    "rtt_p50_us",
    "rtt_p99_us",
];

fn keys(fields: &[(String, String)]) -> Vec<&str> {
    fields.iter().map(|(key, _)| key.as_str()).collect()
}

fn value<'a>(fields: &'a [(String, String)], key: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .map_or("", |(_, v)| v.as_str())
}

#[test]
fn echo_pair_prints_the_result_line_and_succeeds() {
    let server = Server::start("echo_server", &["--bind", "127.0.0.1:0"]).unwrap();
    let addr = server.addr.to_string();
    let output = run(
        "echo_client",
        &["--server", &addr, "--count", "200", "--bind", "127.0.0.1:0"],
        Duration::from_secs(120),
    )
    .unwrap();
    let fields = result_fields(&output);
    assert_eq!(keys(&fields), KEYS, "{output:?}");
    assert_eq!(value(&fields, "echoed"), "200");
    assert!(output.status.success());
}

/// A server that confirms every message but never echoes (`--sink`) used
/// to leave a client waiting forever with its window full. Now the client
/// gives up after `--wait-secs` without progress and still prints its line.
#[test]
fn a_server_that_never_echoes_cannot_hang_the_client() {
    let server = Server::start("echo_server", &["--bind", "127.0.0.1:0", "--sink"]).unwrap();
    let addr = server.addr.to_string();
    let output = run(
        "echo_client",
        &[
            "--server",
            &addr,
            "--count",
            "200",
            "--concurrency",
            "16",
            "--wait-secs",
            "1",
        ],
        Duration::from_secs(120),
    )
    .unwrap();
    let fields = result_fields(&output);
    assert_eq!(keys(&fields), KEYS, "{output:?}");
    assert_eq!(value(&fields, "echoed"), "0");
    // At most one window was sent, and never echoed.
    let delivered: u64 = value(&fields, "delivered").parse().unwrap();
    assert!(delivered <= 16, "{output:?}");
    assert!(!output.status.success());
}

#[test]
fn a_bind_error_still_prints_the_result_line() {
    let output = run(
        "echo_client",
        &[
            "--server",
            "127.0.0.1:9",
            "--bind",
            "192.0.2.1:0",
            "--count",
            "5",
        ],
        Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(keys(&result_fields(&output)), KEYS, "{output:?}");
    assert!(!output.status.success());
}
