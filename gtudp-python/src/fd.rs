//! The Python socket's file descriptor, duplicated: the Rust socket owns
//! its copy, and the Python socket object (and its binding) stays the
//! user's.

use std::net::UdpSocket;

/// A new socket on a duplicate of descriptor `fd`, which must be open for
/// the duration of the call (the Python caller holds its socket object).
#[cfg(unix)]
#[allow(unsafe_code)]
pub(crate) fn duplicate(fd: i64) -> std::io::Result<UdpSocket> {
    use std::os::fd::BorrowedFd;
    let fd = raw(fd)?;
    // SAFETY: the descriptor is only borrowed for `dup` (F_DUPFD_CLOEXEC)
    // while the caller keeps the Python socket, and so the descriptor, open.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    Ok(UdpSocket::from(borrowed.try_clone_to_owned()?))
}

/// A new socket on a duplicate of socket handle `fd`, which must be open
/// for the duration of the call (the Python caller holds its socket object).
#[cfg(windows)]
#[allow(unsafe_code)]
pub(crate) fn duplicate(fd: i64) -> std::io::Result<UdpSocket> {
    use std::os::windows::io::{BorrowedSocket, RawSocket};
    let raw = RawSocket::try_from(fd).map_err(|_| invalid(fd))?;
    // SAFETY: the handle is only borrowed for `WSADuplicateSocket` while
    // the caller keeps the Python socket, and so the handle, open.
    let borrowed = unsafe { BorrowedSocket::borrow_raw(raw) };
    Ok(UdpSocket::from(borrowed.try_clone_to_owned()?))
}

/// Turns on ICMP unreachable reports through the error queue of socket
/// `fd` (Linux; see `gtudp_io::enable_unreachable_reports`); whether they
/// are on. `fd` must be open for the duration of the call.
#[cfg(unix)]
#[allow(unsafe_code)]
pub(crate) fn enable_unreachable_reports(fd: i64, ipv6: bool) -> std::io::Result<bool> {
    let fd = raw(fd)?;
    // SAFETY: the descriptor is only borrowed for one `setsockopt` while
    // the caller keeps its socket, and so the descriptor, open.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    gtudp_io::enable_unreachable_reports(borrowed, ipv6)
}

/// No error queue here.
#[cfg(windows)]
pub(crate) fn enable_unreachable_reports(_fd: i64, _ipv6: bool) -> std::io::Result<bool> {
    Ok(false)
}

/// Reads the whole error queue of socket `fd` without waiting, appending
/// the destinations ICMP reported unreachable to `out`. `fd` must be open
/// for the duration of the call.
#[cfg(unix)]
#[allow(unsafe_code)]
pub(crate) fn read_unreachable_reports(
    fd: i64,
    out: &mut Vec<std::net::SocketAddr>,
) -> std::io::Result<usize> {
    let fd = raw(fd)?;
    // SAFETY: the descriptor is only borrowed for `recvmsg(MSG_ERRQUEUE)`
    // calls while the caller keeps its socket, and so the descriptor, open.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    Ok(gtudp_io::read_unreachable_reports(borrowed, out))
}

/// No error queue here.
#[cfg(windows)]
pub(crate) fn read_unreachable_reports(
    _fd: i64,
    _out: &mut Vec<std::net::SocketAddr>,
) -> std::io::Result<usize> {
    Ok(0)
}

#[cfg(unix)]
fn raw(fd: i64) -> std::io::Result<std::os::fd::RawFd> {
    match std::os::fd::RawFd::try_from(fd) {
        Ok(raw) if raw >= 0 => Ok(raw),
        _ => Err(invalid(fd)),
    }
}

fn invalid(fd: i64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("{fd} is not a valid file descriptor"),
    )
}
