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

/// The most datagrams one `sendmmsg` call is given.
#[cfg(target_os = "linux")]
pub(crate) const BATCH: usize = 64;

/// Sends `datagrams` (each a destination and a range of `bytes`, at most
/// [`BATCH`]) through socket `fd` in one `sendmmsg` call, without waiting;
/// how many the kernel took (a prefix). `fd` must be open for the duration
/// of the call.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub(crate) fn send_batch(
    fd: i64,
    bytes: &[u8],
    datagrams: &[(socket2::SockAddr, std::ops::Range<usize>)],
) -> std::io::Result<usize> {
    let fd = raw(fd)?;
    let count = datagrams.len().min(BATCH);
    let mut iovecs = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; BATCH];
    // SAFETY: all-zero is a valid `mmsghdr` (null pointers, zero lengths).
    let mut headers: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    for (index, (to, range)) in datagrams.iter().take(count).enumerate() {
        let datagram = bytes.get(range.clone()).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "datagram out of range")
        })?;
        iovecs[index] = libc::iovec {
            // sendmmsg only reads through it.
            iov_base: datagram.as_ptr().cast_mut().cast(),
            iov_len: datagram.len(),
        };
        let header = &mut headers[index].msg_hdr;
        header.msg_name = to.as_ptr().cast_mut().cast();
        header.msg_namelen = to.len();
        header.msg_iov = &mut iovecs[index];
        header.msg_iovlen = 1;
    }
    // SAFETY: `headers[..count]` point at `iovecs`, the addresses and the
    // datagrams' bytes, all alive and unmoved for the call; the caller
    // keeps `fd` open.
    let sent = unsafe {
        libc::sendmmsg(
            fd,
            headers.as_mut_ptr(),
            count as libc::c_uint,
            libc::MSG_DONTWAIT,
        )
    };
    if sent < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(sent as usize)
}

/// Bytes of one receive slot: more than the largest UDP payload, so no
/// datagram is ever cut.
#[cfg(target_os = "linux")]
pub(crate) const RECV_SLOT: usize = 1 << 16;

/// Receive slots per `recvmmsg` call.
#[cfg(target_os = "linux")]
pub(crate) const RECV_SLOTS: usize = 8;

/// Reads the datagrams queued on socket `fd` (at most `buffer.len() /
/// RECV_SLOT`, and [`RECV_SLOTS`]) in one `recvmmsg` call, without
/// waiting: each datagram at the start of its slot of `buffer` (which need
/// not be initialised: the memory is only written, never touched before,
/// so a new buffer costs no zeroing and only the pages the kernel writes),
/// its sender and length appended to `out`. Returns how many slots the
/// call filled (0 when nothing is queued). `fd` must be open for the
/// duration of the call. Read a datagram with [`received`].
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub(crate) fn recv_batch(
    fd: i64,
    buffer: &mut [std::mem::MaybeUninit<u8>],
    out: &mut Vec<(std::net::SocketAddr, usize)>,
) -> std::io::Result<usize> {
    let fd = raw(fd)?;
    let mut iovecs = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; RECV_SLOTS];
    let mut names: [socket2::SockAddrStorage; RECV_SLOTS] =
        std::array::from_fn(|_| socket2::SockAddrStorage::zeroed());
    // SAFETY: all-zero is a valid `mmsghdr` (null pointers, zero lengths).
    let mut headers: [libc::mmsghdr; RECV_SLOTS] = unsafe { std::mem::zeroed() };
    let mut count = 0;
    for (slot, chunk) in buffer
        .chunks_exact_mut(RECV_SLOT)
        .take(RECV_SLOTS)
        .enumerate()
    {
        iovecs[slot] = libc::iovec {
            iov_base: chunk.as_mut_ptr().cast(),
            iov_len: chunk.len(),
        };
        count = slot + 1;
    }
    for slot in 0..count {
        let header = &mut headers[slot].msg_hdr;
        header.msg_namelen = names[slot].size_of();
        header.msg_name = (&mut names[slot] as *mut socket2::SockAddrStorage).cast();
        header.msg_iov = &mut iovecs[slot];
        header.msg_iovlen = 1;
    }
    if count == 0 {
        return Ok(0);
    }
    // SAFETY: `headers[..count]` point at `names`, `iovecs` and the slots
    // of `buffer`, all alive, unmoved and writable for the call; the caller
    // keeps `fd` open.
    let received = unsafe {
        libc::recvmmsg(
            fd,
            headers.as_mut_ptr(),
            count as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if received < 0 {
        let error = std::io::Error::last_os_error();
        if error.kind() == std::io::ErrorKind::WouldBlock {
            return Ok(0);
        }
        return Err(error);
    }
    let received = received as usize;
    for slot in 0..received {
        let header = &headers[slot];
        if header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
            // Larger than any UDP payload: cannot happen. Its slot stays
            // out of `out`, so nothing reads it.
            out.push((std::net::SocketAddr::from(([0, 0, 0, 0], 0)), 0));
            continue;
        }
        // SAFETY: the kernel wrote `msg_namelen` bytes of a socket address
        // into `names[slot]`.
        let storage = std::mem::replace(&mut names[slot], socket2::SockAddrStorage::zeroed());
        let name = unsafe { socket2::SockAddr::new(storage, header.msg_hdr.msg_namelen) };
        match name.as_socket() {
            Some(from) => out.push((from, (header.msg_len as usize).min(RECV_SLOT))),
            // Not an IP sender (cannot happen on a UDP socket): skipped.
            None => out.push((std::net::SocketAddr::from(([0, 0, 0, 0], 0)), 0)),
        }
    }
    Ok(received)
}

/// The datagram [`recv_batch`] read into `slot` of `buffer`, of `len`
/// bytes (as it reported them, at most [`RECV_SLOT`]), or `None` if the
/// slot is outside `buffer`.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub(crate) fn received(
    buffer: &[std::mem::MaybeUninit<u8>],
    slot: usize,
    len: usize,
) -> Option<&[u8]> {
    let start = slot.checked_mul(RECV_SLOT)?;
    let bytes = buffer.get(start..start.checked_add(len.min(RECV_SLOT))?)?;
    // SAFETY: `recvmmsg` wrote these `len` bytes (the length it reported
    // for this slot) before `recv_batch` returned, and nothing has written
    // the buffer since (the caller holds it); `MaybeUninit<u8>` has the
    // layout of `u8`.
    Some(unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<u8>(), bytes.len()) })
}
