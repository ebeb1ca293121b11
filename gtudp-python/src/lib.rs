//! gtUDP for Python: the native part of the `gtudp` package (module
//! `gtudp._native`), built with PyO3 and maturin into one abi3 wheel per
//! platform (CPython 3.9 and newer). Not published as a crate: it ships in
//! the wheel, `pip install ./gtudp-python`.
//!
//! The Python package (`python/gtudp/`) holds the user-facing classes and
//! their documentation; this crate converts addresses, payloads,
//! configuration, counters and errors, and releases the GIL whenever it
//! waits. What a Python user writes (the pytest suite in `tests/` runs the
//! same):
//!
//! ```python
//! import socket
//! from gtudp import GTUDP
//!
//! server_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
//! server_sock.bind(("127.0.0.1", 0))
//! client_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
//! server, client = GTUDP(server_sock), GTUDP(client_sock)  # _native.Socket inside
//! assert client.sendto_blocking(b"hello", server_sock.getsockname(), timeout=5.0)
//! data, addr = server.recvfrom(1500)
//! client.cleanup(); server.cleanup()
//! ```
//!
//! # Modules
//!
//! - `socket`: `Socket` wraps `gtudp_mio::BlockingSocket` (driven by the
//!   calling threads, a background thread for timers) for the blocking
//!   `gtudp.GTUDP` class, the original gtUDP's drop-in successor.
//! - `endpoint`: `Endpoint` wraps the sans-IO `gtudp_proto::Endpoint` for
//!   `gtudp.aio`, an asyncio `DatagramProtocol` that drives it on the event
//!   loop's thread.
//! - `delivery`: `Delivery`, the handle of one blocking send.
//! - `config`: keyword arguments to a `gtudp_proto::Config`, checked.
//! - `address`, `payload`: socket addresses and bytes-like payloads between
//!   Python and Rust.
//! - `stats`: counters and close summaries as Python dicts.
//! - `errors`: Rust errors as Python exceptions, in Python's terms.
//! - `debug`: `debug=True`, one line per datagram as the original printed.
//! - `fd`: the Python socket's descriptor, duplicated, and ICMP reports.
//! - `wait`: waiting without the GIL, in slices, so Ctrl-C is handled.
//! - `exit`: every release of the GIL, so that a daemon thread coming back
//!   while the interpreter exits parks instead of aborting the process.
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![deny(unsafe_code)]

mod address;
mod config;
mod debug;
mod delivery;
mod endpoint;
mod errors;
mod exit;
mod fd;
mod payload;
mod socket;
mod stats;
mod wait;

use pyo3::prelude::*;

/// Whether `host` is an IP address literal (no name lookup needed).
#[pyfunction]
fn is_ip_literal(host: &str) -> bool {
    address::is_ip_literal(host)
}

/// Checks the options `gtudp.GTUDP` and `gtudp.aio` take, raising
/// `TypeError`/`ValueError` with the reason, before any socket is touched.
#[pyfunction]
#[pyo3(signature = (magic_numbers, recv_from_any, options = None))]
fn validate_options(
    magic_numbers: &[u8],
    recv_from_any: bool,
    options: Option<&Bound<'_, pyo3::types::PyDict>>,
) -> PyResult<()> {
    config::settings(magic_numbers, recv_from_any, options).map(drop)
}

/// Turns on ICMP unreachable reports for the UDP socket `fd` (open; an
/// IPv6 one when `ipv6`) through its error queue, as the Rust adapters do:
/// `True` if on (Linux), `False` where there is no such queue. Once on, read
/// the reports with `Endpoint.read_unreachable_reports` whenever the socket
/// reports an error.
#[pyfunction]
fn enable_unreachable_reports(fd: i64, ipv6: bool) -> PyResult<bool> {
    Ok(fd::enable_unreachable_reports(fd, ipv6)?)
}

/// The module `gtudp._native`.
#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    // The exception classes, now: raising one must not import (see `exit`).
    errors::init(module.py())?;
    debug::install();
    module.add_class::<socket::Socket>()?;
    module.add_class::<endpoint::Endpoint>()?;
    module.add_class::<delivery::Delivery>()?;
    module.add_function(wrap_pyfunction!(is_ip_literal, module)?)?;
    module.add_function(wrap_pyfunction!(validate_options, module)?)?;
    module.add_function(wrap_pyfunction!(enable_unreachable_reports, module)?)?;
    module.add_function(wrap_pyfunction!(exit::interpreter_exiting, module)?)?;
    module.add_function(wrap_pyfunction!(exit::after_fork_in_child, module)?)?;
    Ok(())
}
