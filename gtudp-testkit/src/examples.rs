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
