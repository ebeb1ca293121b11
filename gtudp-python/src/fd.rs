//! The Python socket's file descriptor, duplicated: the Rust socket owns
//! its copy, and the Python socket object (and its binding) stays the
//! user's.

use std::net::UdpSocket;

/// A new socket on a duplicate of descriptor `fd`, which must be open for
/// the duration of the call (the Python caller holds its socket object).
#[cfg(unix)]
#[allow(unsafe_code)]
pub(crate) fn duplicate(fd: i64) -> std::io::Result<UdpSocket> {
    use std::os::fd::{BorrowedFd, RawFd};
    let fd = RawFd::try_from(fd).map_err(|_| invalid(fd))?;
    if fd < 0 {
        return Err(invalid(fd.into()));
    }
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

fn invalid(fd: i64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("{fd} is not a valid file descriptor"),
    )
}
