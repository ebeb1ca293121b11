//! Socket addresses between Rust and Python: `(host, port)` for IPv4 and
//! `(host, port, flowinfo, scope_id)` for IPv6, as the `socket` module
//! writes them.

use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6, ToSocketAddrs};

use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

use crate::config::type_name;
use crate::errors::{gaierror, type_error, value_error};

/// The address family of the socket a conversion serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    /// `AF_INET`: IPv4 addresses only.
    V4,
    /// `AF_INET6`: IPv6 addresses, and IPv4 ones as IPv4-mapped IPv6
    /// (what a dual-stack socket sees them as).
    V6,
}

impl Family {
    /// The family of a socket from its `family` number.
    pub(crate) fn from_af(py: Python<'_>, af: i32) -> PyResult<Self> {
        let socket = py.import("socket")?;
        if af == socket.getattr("AF_INET")?.extract::<i32>()? {
            Ok(Family::V4)
        } else if af == socket.getattr("AF_INET6")?.extract::<i32>()? {
            Ok(Family::V6)
        } else {
            Err(value_error(format!(
                "gtUDP needs an AF_INET or AF_INET6 socket, not family {af}"
            )))
        }
    }

    /// The `socket.AF_*` constant's name, for messages.
    fn af_name(self) -> &'static str {
        match self {
            Family::V4 => "AF_INET",
            Family::V6 => "AF_INET6",
        }
    }
}

/// Whether a host name that is not an IP literal may be looked up (with
/// the system's `getaddrinfo`, which blocks) or is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// Resolve names with the system's resolver.
    Resolve,
    /// IP literals only (the asyncio module resolves names on the loop).
    LiteralOnly,
}

/// `addr` as the Python `socket` module writes it.
pub(crate) fn to_py(py: Python<'_>, addr: SocketAddr) -> PyResult<Bound<'_, PyTuple>> {
    match addr {
        SocketAddr::V4(v4) => (v4.ip().to_string(), v4.port()).into_pyobject(py),
        SocketAddr::V6(v6) => {
            (v6.ip().to_string(), v6.port(), v6.flowinfo(), v6.scope_id()).into_pyobject(py)
        }
    }
}

/// `addr` as a socket of `family` sends to it: an IPv4 address as
/// IPv4-mapped IPv6 for an `AF_INET6` socket (the core reports IPv4 peers
/// in plain form, which such a socket's `sendto` refuses).
pub(crate) fn for_sending(addr: SocketAddr, family: Family) -> SocketAddr {
    match (addr, family) {
        (SocketAddr::V4(v4), Family::V6) => {
            SocketAddr::V6(SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0))
        }
        _ => addr,
    }
}

/// The socket address a Python address tuple names, for a socket of
/// `family`.
pub(crate) fn from_py(
    addr: &Bound<'_, PyAny>,
    family: Family,
    lookup: Lookup,
) -> PyResult<SocketAddr> {
    let tuple = addr.cast::<PyTuple>().map_err(|_| {
        type_error(format!(
            "address must be a (host, port) tuple, not {}",
            type_name(addr)
        ))
    })?;
    let (host, port, flowinfo, scope_id) = match tuple.len() {
        2 => (tuple.get_item(0)?, tuple.get_item(1)?, 0, 0),
        4 => (
            tuple.get_item(0)?,
            tuple.get_item(1)?,
            tuple
                .get_item(2)?
                .extract::<u32>()
                .map_err(|_| value_error("flowinfo must be 0-2**32-1"))?,
            tuple
                .get_item(3)?
                .extract::<u32>()
                .map_err(|_| value_error("scope_id must be 0-2**32-1"))?,
        ),
        n => {
            return Err(type_error(format!(
                "address must be (host, port) or (host, port, flowinfo, scope_id), not a {n}-tuple"
            )))
        }
    };
    let host_str = host.cast::<PyString>().map_err(|_| {
        type_error(format!(
            "address host must be a str, not {}",
            type_name(&host)
        ))
    })?;
    let port: u16 = port
        .extract()
        .map_err(|_| value_error(format!("port must be 0-65535, not {port}")))?;
    let text = host_str.to_cow()?;
    let text: &str = &text;
    let ip = match text.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) if lookup == Lookup::Resolve => return resolve(addr.py(), text, port, family),
        Err(_) => {
            return Err(value_error(format!(
                "{text:?} is not an IP address (resolve names first)"
            )))
        }
    };
    for_family(ip, port, flowinfo, scope_id, family)
}

/// Whether `host` is an IP literal, which [`from_py`] converts without a
/// name lookup.
pub(crate) fn is_ip_literal(host: &str) -> bool {
    host.parse::<IpAddr>().is_ok()
}

fn for_family(
    ip: IpAddr,
    port: u16,
    flowinfo: u32,
    scope_id: u32,
    family: Family,
) -> PyResult<SocketAddr> {
    match (ip, family) {
        (IpAddr::V4(v4), Family::V4) => Ok(SocketAddr::V4(SocketAddrV4::new(v4, port))),
        (IpAddr::V4(v4), Family::V6) => Ok(SocketAddr::V6(SocketAddrV6::new(
            v4.to_ipv6_mapped(),
            port,
            0,
            0,
        ))),
        (IpAddr::V6(v6), Family::V6) => Ok(SocketAddr::V6(SocketAddrV6::new(
            v6, port, flowinfo, scope_id,
        ))),
        (IpAddr::V6(v6), Family::V4) => match v6.to_ipv4_mapped() {
            Some(v4) => Ok(SocketAddr::V4(SocketAddrV4::new(v4, port))),
            None => Err(value_error(format!(
                "{v6} is an IPv6 address; this is an IPv4 (AF_INET) socket"
            ))),
        },
    }
}

/// Looks `host` up with the system's resolver (`getaddrinfo`, as
/// `socket.getaddrinfo` does) and takes the first address of the socket's
/// family. The lookup blocks, so it runs with the GIL released, through
/// [`crate::exit::detach`] like every such call: at interpreter exit a
/// thread is refused a lookup or waited for, never left inside one while
/// the interpreter finalizes. A failure raises `socket.gaierror`.
fn resolve(py: Python<'_>, host: &str, port: u16, family: Family) -> PyResult<SocketAddr> {
    let found = crate::exit::detach(py, || {
        (host, port).to_socket_addrs().map(|mut addrs| {
            addrs.find(|addr| match family {
                Family::V4 => addr.is_ipv4(),
                Family::V6 => addr.is_ipv6(),
            })
        })
    })?;
    // The class was looked up as the module loaded: a thread whose lookup
    // outlasted the start of the interpreter's exit neither imports nor
    // calls Python code here (see `crate::exit`).
    match found {
        Ok(Some(addr)) => Ok(addr),
        Ok(None) => Err(gaierror(
            py,
            format!("{host:?} has no {} address", family.af_name()),
        )),
        Err(error) => Err(gaierror(py, format!("{host:?}: {error}"))),
    }
}
