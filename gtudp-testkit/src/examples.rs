//! Running the echo examples as processes, to check their command-line
//! contract from integration tests.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The path of example `name`, built by `cargo test` next to the test
/// binary (`target/<profile>/examples/`).
pub fn example_path(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    // target/<profile>/deps/<test> -> target/<profile>/examples/<name>
    let profile_dir = exe.parent()?.parent()?;
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    path.exists().then_some(path)
}

/// A server example started on `127.0.0.1:0`-like `bind` with `args`; its
/// `listening on ADDR` line read.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// The address the server printed.
    pub addr: std::net::SocketAddr,
}

impl Server {
    /// Starts example `name` with `args` and waits for `listening on ADDR`.
    pub fn start(name: &str, args: &[&str]) -> Result<Server, String> {
        let path = example_path(name).ok_or(format!(
        "example {name} not built: `cargo test` of its crate builds it (or `cargo build --examples`)"
    ))?;
        let mut child = Command::new(path)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| error.to_string())?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|error| error.to_string())?;
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|addr| addr.parse().ok())
            .ok_or(format!("unexpected first line {line:?}"))?;
        Ok(Server { child, addr })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs example `name` with `args` to completion, killing it after `limit`
/// (a safety bound, so a hang fails the test instead of blocking it).
pub fn run(name: &str, args: &[&str], limit: Duration) -> Result<Output, String> {
    let path = example_path(name).ok_or(format!(
        "example {name} not built: `cargo test` of its crate builds it (or `cargo build --examples`)"
    ))?;
    let mut child = Command::new(path)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| error.to_string())?;
    let start = Instant::now();
    loop {
        match child.try_wait().map_err(|error| error.to_string())? {
            Some(_) => return child.wait_with_output().map_err(|error| error.to_string()),
            None if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{name} did not exit within {limit:?}"));
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// The last line of `output`'s stdout, parsed into `key=value` pairs.
pub fn result_fields(output: &Output) -> Vec<(String, String)> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|field| field.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

// ----- the echo examples' command-line contract, shared by both adapters ----

/// The keys of the echo clients' result line, in order.
pub const RESULT_KEYS: [&str; 12] = [
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
    "retransmissions",
    "spurious",
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

/// A server and client pair: the client prints the result line with every
/// key and succeeds.
pub fn check_echo_pair(server: &str, client: &str) {
    let server = Server::start(server, &["--bind", "127.0.0.1:0"]).expect("the example runs");
    let addr = server.addr.to_string();
    let output = run(
        client,
        &["--server", &addr, "--count", "200", "--bind", "127.0.0.1:0"],
        Duration::from_secs(120),
    )
    .expect("the example runs");
    let fields = result_fields(&output);
    assert_eq!(keys(&fields), RESULT_KEYS, "{output:?}");
    assert_eq!(value(&fields, "echoed"), "200");
    let counter = |key| -> u64 { value(&fields, key).parse().expect("a count") };
    assert!(
        counter("spurious") <= counter("retransmissions"),
        "{output:?}"
    );
    assert!(output.status.success());
}

/// A server sharded over 2 SO_REUSEPORT sockets (`--shards 2`) echoes the
/// messages of 3 clients at once (distinct source ports, so spread over
/// the shards by the kernel), each one's own 200.
pub fn check_sharded_echo_pair(server: &str, client: &str) {
    check_sharded_echo_pair_with(server, client, &[]);
}

/// [`check_sharded_echo_pair`] with more server arguments.
pub fn check_sharded_echo_pair_with(server: &str, client: &str, server_args: &[&str]) {
    let args = [&["--bind", "127.0.0.1:0", "--shards", "2"], server_args].concat();
    let server = Server::start(server, &args).expect("the example runs");
    let addr = server.addr.to_string();
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let (addr, client) = (addr.clone(), client.to_owned());
            std::thread::spawn(move || {
                run(
                    &client,
                    &["--server", &addr, "--count", "200", "--bind", "127.0.0.1:0"],
                    Duration::from_secs(120),
                )
                .expect("the example runs")
            })
        })
        .collect();
    for client in clients {
        let output = client.join().expect("the client thread");
        let fields = result_fields(&output);
        assert_eq!(keys(&fields), RESULT_KEYS, "{output:?}");
        assert_eq!(value(&fields, "echoed"), "200", "{output:?}");
        assert!(output.status.success());
    }
}

/// A server that confirms every message but never echoes (`--sink`) used
/// to leave a client waiting forever with its window full. Now the client
/// gives up after `--wait-secs` without progress and still prints its line.
pub fn check_sink_cannot_hang_the_client(server: &str, client: &str) {
    let server =
        Server::start(server, &["--bind", "127.0.0.1:0", "--sink"]).expect("the example runs");
    let addr = server.addr.to_string();
    let output = run(
        client,
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
    .expect("the example runs");
    let fields = result_fields(&output);
    assert_eq!(keys(&fields), RESULT_KEYS, "{output:?}");
    assert_eq!(value(&fields, "echoed"), "0");
    // At most one window was sent, and never echoed.
    let delivered: u64 = value(&fields, "delivered")
        .parse()
        .expect("the example runs");
    assert!(delivered <= 16, "{output:?}");
    assert!(!output.status.success());
}

/// A client that cannot bind still prints its result line, and fails.
pub fn check_bind_error_prints_the_result_line(client: &str) {
    let output = run(
        client,
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
    .expect("the example runs");
    assert_eq!(keys(&result_fields(&output)), RESULT_KEYS, "{output:?}");
    assert!(!output.status.success());
}
