//! The echo examples' command-line contract: the same lines as the Tokio
//! examples, and every exit of the client bounded with its result line
//! (the checks live in `gtudp_testkit::examples`, shared by both adapters).

use gtudp_testkit::examples::{
    check_bind_error_prints_the_result_line, check_echo_pair, check_sharded_echo_pair,
    check_sharded_echo_pair_with, check_sink_cannot_hang_the_client,
};

#[test]
fn echo_pair_prints_the_result_line_and_succeeds() {
    check_echo_pair("echo_server", "echo_client");
}

/// A server that confirms every message but never echoes (`--sink`) used
/// to leave a client waiting forever with its window full. Now the client
/// gives up after `--wait-secs` without progress and still prints its line.
#[test]
fn a_server_that_never_echoes_cannot_hang_the_client() {
    check_sink_cannot_hang_the_client("echo_server", "echo_client");
}

#[test]
fn a_bind_error_still_prints_the_result_line() {
    check_bind_error_prints_the_result_line("echo_client");
}

#[cfg(target_os = "linux")]
#[test]
fn a_sharded_server_echoes_every_client() {
    check_sharded_echo_pair("echo_server", "echo_client");
}

#[cfg(target_os = "linux")]
#[test]
fn a_server_with_a_thread_per_shard_echoes_every_client() {
    check_sharded_echo_pair_with("echo_server", "echo_client", &["--shard-threads"]);
}
