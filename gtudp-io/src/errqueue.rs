//! ICMP unreachable reports through the socket's error queue (Linux
//! `IP_RECVERR` / `IPV6_RECVERR`), which name the destination an
//! unconnected socket could not reach.
//!
//! Without `IP_RECVERR`, Linux drops ICMP port-unreachable reports for
//! unconnected UDP sockets; with it, each report is queued with the
//! original datagram's destination, the socket's pending error is set (the
//! next receive or send returns it), and readiness reports an error. The
//! adapter then reads the queue with `recvmsg(MSG_ERRQUEUE)` and tells the
//! endpoint ([`gtudp_proto::Endpoint::peer_unreachable`]): a destination
//! that never answered has its messages failed at once, one that answered
//! before is suspect for `Config::unreachable_grace`.
//!
//! Elsewhere the functions do nothing: the attempt limit decides.

use std::net::SocketAddr;

/// Reports taken per drain, so a flood of reports cannot stall the loop.
#[cfg(target_os = "linux")]
const MAX_REPORTS: usize = 64;

/// Turns the error queue on (best effort; `ipv6`: also `IPV6_RECVERR`, and
/// `IP_RECVERR` for the IPv4-mapped traffic of a dual-stack socket).
#[cfg(target_os = "linux")]
pub(crate) fn enable(fd: std::os::fd::RawFd, ipv6: bool) -> std::io::Result<()> {
    set_option(fd, libc::SOL_IP, libc::IP_RECVERR)?;
    if ipv6 {
        set_option(fd, libc::SOL_IPV6, libc::IPV6_RECVERR)?;
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn set_option(
    fd: std::os::fd::RawFd,
    level: libc::c_int,
    name: libc::c_int,
) -> std::io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: `fd` is an open socket borrowed for the call; the option value
    // points to a live `c_int` whose size is passed.
    let result = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A send of the socket's own refused as too long for the path (a local
/// `EMSGSIZE`, queued with the MTU beside the error the send returned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LocalTooLarge {
    /// The largest UDP payload that fits: the MTU less the IP and UDP
    /// headers, when the MTU given is plausible (at least IPv4's 576).
    pub(crate) limit: Option<usize>,
}

/// Reads the queued reports, appending the destination of each ICMP
/// unreachable one (port, host or network unreachable) to `out`. Returns
/// how many reports were read (of any kind), and the latest local "message
/// too long" report.
#[cfg(target_os = "linux")]
pub(crate) fn drain(
    fd: std::os::fd::RawFd,
    out: &mut Vec<SocketAddr>,
) -> (usize, Option<LocalTooLarge>) {
    let mut read = 0;
    let mut limit = None;
    while read < MAX_REPORTS {
        match read_one(fd) {
            Some(report) => {
                read += 1;
                match report {
                    Report::Unreachable(destination) => out.push(destination),
                    Report::TooLarge { limit: latest } => limit = Some(latest),
                    Report::Other => {}
                }
            }
            None => break,
        }
    }
    (read, limit)
}

/// One report from the error queue.
#[cfg(target_os = "linux")]
enum Report {
    /// ICMP port, host or network unreachable for this destination.
    Unreachable(SocketAddr),
    /// The socket's own send was refused as too long for the path.
    TooLarge { limit: LocalTooLarge },
    /// Anything else (an ICMP "fragmentation needed", for one).
    Other,
}

/// One report from the queue: `None` when it is empty.
#[cfg(target_os = "linux")]
fn read_one(fd: std::os::fd::RawFd) -> Option<Report> {
    // u64 storage keeps the control buffer aligned for `cmsghdr`.
    let mut control = [0u64; 64];
    let mut data = [0u8; 1];
    // SAFETY: all-zero is a valid `sockaddr_storage` and `msghdr`.
    let mut name: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // SAFETY: as above.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut name as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: every pointer in `msg` refers to a live local buffer of the
    // length given; the call does not block (MSG_DONTWAIT).
    let received = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT) };
    if received < 0 {
        return None;
    }
    let destination = sockaddr(&name, msg.msg_namelen);
    let mut unreachable = false;
    let mut too_large = None;
    // SAFETY: `msg` was filled by `recvmsg`; the CMSG_* helpers walk its
    // control buffer within `msg_controllen`.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !cmsg.is_null() {
        // SAFETY: `cmsg` is non-null and points into `control`.
        let header = unsafe { &*cmsg };
        let is_error = (header.cmsg_level == libc::SOL_IP && header.cmsg_type == libc::IP_RECVERR)
            || (header.cmsg_level == libc::SOL_IPV6 && header.cmsg_type == libc::IPV6_RECVERR);
        if is_error {
            // SAFETY: an IP_RECVERR / IPV6_RECVERR message carries a
            // `sock_extended_err`; it may be unaligned, so it is copied out.
            let error: libc::sock_extended_err =
                unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast()) };
            let from_icmp = error.ee_origin == libc::SO_EE_ORIGIN_ICMP
                || error.ee_origin == libc::SO_EE_ORIGIN_ICMP6;
            let errno = error.ee_errno as libc::c_int;
            unreachable |= from_icmp
                && matches!(
                    errno,
                    libc::ECONNREFUSED | libc::EHOSTUNREACH | libc::ENETUNREACH
                );
            if error.ee_origin == libc::SO_EE_ORIGIN_LOCAL && errno == libc::EMSGSIZE {
                // `ee_info` is the IP MTU the send was measured against;
                // the IP header is the destination's family's (an IPv6
                // socket reports an IPv4-mapped one's at its own level).
                let ipv4 = destination.map_or(header.cmsg_level == libc::SOL_IP, |d| d.is_ipv4());
                let headers = if ipv4 { 20 + 8 } else { 40 + 8 };
                let mtu = error.ee_info as usize;
                too_large = Some(LocalTooLarge {
                    limit: (mtu >= 576).then(|| mtu - headers),
                });
            }
        }
        // SAFETY: as for CMSG_FIRSTHDR.
        cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
    }
    Some(match (destination.filter(|_| unreachable), too_large) {
        (Some(destination), _) => Report::Unreachable(destination),
        (None, Some(limit)) => Report::TooLarge { limit },
        (None, None) => Report::Other,
    })
}

/// The address in `name` (IPv4 or IPv6), in canonical form.
#[cfg(target_os = "linux")]
fn sockaddr(name: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6};
    let len = len as usize;
    let addr = match name.ss_family as libc::c_int {
        libc::AF_INET if len >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family and length say it is a `sockaddr_in`.
            let v4: &libc::sockaddr_in =
                unsafe { &*(name as *const libc::sockaddr_storage).cast() };
            SocketAddr::new(
                Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr)).into(),
                u16::from_be(v4.sin_port),
            )
        }
        libc::AF_INET6 if len >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: the family and length say it is a `sockaddr_in6`.
            let v6: &libc::sockaddr_in6 =
                unsafe { &*(name as *const libc::sockaddr_storage).cast() };
            SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(v6.sin6_addr.s6_addr),
                u16::from_be(v6.sin6_port),
                v6.sin6_flowinfo,
                v6.sin6_scope_id,
            ))
        }
        _ => return None,
    };
    Some(gtudp_proto::canonical_addr(addr))
}

/// Turns on ICMP unreachable reports for the UDP socket `fd`, through its
/// error queue (`IP_RECVERR`, and `IPV6_RECVERR` when `ipv6`, as the
/// adapters do), for a socket driven by another event loop (the Python
/// module's asyncio one). Returns whether the queue is on: `Ok(false)`
/// elsewhere than Linux, where nothing is done.
///
/// With the queue on, an ICMP report sets the socket's pending error: the
/// next receive or send fails with it (`ECONNREFUSED` and the like), and
/// readiness reports an error until [`read_unreachable_reports`] has read
/// the queue. Read it whenever such an error comes up.
#[cfg(unix)]
pub fn enable_unreachable_reports(
    fd: std::os::fd::BorrowedFd<'_>,
    ipv6: bool,
) -> std::io::Result<bool> {
    #[cfg(target_os = "linux")]
    {
        enable(std::os::fd::AsRawFd::as_raw_fd(&fd), ipv6).map(|()| true)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (fd, ipv6);
        Ok(false)
    }
}

/// Reads the whole error queue of the UDP socket `fd` without waiting
/// (see [`enable_unreachable_reports`]), appending the destination of each
/// ICMP port, host or network unreachable report to `out`, in canonical
/// form, for [`Endpoint::peer_unreachable`](gtudp_proto::Endpoint::peer_unreachable).
/// Returns how many reports were read, of any kind (0 elsewhere than
/// Linux).
#[cfg(unix)]
pub fn read_unreachable_reports(
    fd: std::os::fd::BorrowedFd<'_>,
    out: &mut Vec<SocketAddr>,
) -> usize {
    #[cfg(target_os = "linux")]
    {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&fd);
        let mut total = 0;
        loop {
            // Empty the queue: a report left in it keeps the socket
            // reported ready, and a level-triggered loop would spin.
            let (read, _) = drain(fd, out);
            total += read;
            if read < MAX_REPORTS {
                return total;
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (fd, out);
        0
    }
}

/// No error queue here: nothing to turn on.
#[cfg(not(target_os = "linux"))]
pub(crate) fn enable<S>(_socket: &S, _ipv6: bool) -> std::io::Result<()> {
    Ok(())
}

/// No error queue here: nothing to read.
#[cfg(not(target_os = "linux"))]
pub(crate) fn drain<S>(_socket: &S, _out: &mut Vec<SocketAddr>) -> (usize, Option<LocalTooLarge>) {
    (0, None)
}
