//! Whether the kernel may split a datagram into IP fragments: the socket
//! option behind [`BatchIo::set_fragmentation`](crate::BatchIo::set_fragmentation).

use std::io;

/// Whether a socket lets the kernel split a datagram larger than the path's
/// MTU into IP fragments.
///
/// The Rust adapters forbid it ([`Fragmentation::Forbidden`], the default):
/// a datagram larger than the interface's MTU is refused with `EMSGSIZE`,
/// and its message fails at once with
/// [`FailureReason::TooLarge`](gtudp_proto::FailureReason::TooLarge). The
/// Python module's sockets allow it ([`Fragmentation::Allowed`]), as the
/// original gtUDP's plain socket did: one message is one datagram up to
/// the UDP limit, fragmented where the path needs it. A fragmented datagram
/// arrives only if every fragment does, and is resent whole: on a lossy
/// path that costs much (see `docs/tuning.md`, "Message size").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Fragmentation {
    /// Never fragment (Linux: `IP_MTU_DISCOVER` and `IPV6_MTU_DISCOVER` set
    /// to `PMTUDISC_PROBE`, and `IPV6_DONTFRAG`; what `quinn-udp` sets):
    /// every packet carries don't-fragment, and a datagram larger than the
    /// interface's MTU is refused. The default.
    #[default]
    Forbidden,
    /// Fragment as a new socket does by default (Linux: `PMTUDISC_WANT`
    /// for IPv4 and IPv6, `IPV6_DONTFRAG` off): a datagram up to the UDP
    /// limit is sent, in fragments of the path MTU the kernel knows.
    Allowed,
}

/// Sets `choice` on the UDP socket `fd` (`ipv6`: an IPv6 socket, whose
/// IPv4-mapped traffic takes the IPv4 option too). Elsewhere than Linux
/// only [`Fragmentation::Forbidden`], which `quinn-udp` already set, is
/// supported.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub(crate) fn set(fd: std::os::fd::RawFd, ipv6: bool, choice: Fragmentation) -> io::Result<()> {
    let set = |level: libc::c_int, name: libc::c_int, value: libc::c_int| {
        // SAFETY: `fd` is an open socket borrowed for the call; the option
        // value points to a live `c_int` whose size is passed.
        let result = unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if result == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    let (v4, v6, dontfrag) = match choice {
        Fragmentation::Forbidden => (libc::IP_PMTUDISC_PROBE, libc::IPV6_PMTUDISC_PROBE, 1),
        Fragmentation::Allowed => (libc::IP_PMTUDISC_WANT, libc::IPV6_PMTUDISC_WANT, 0),
    };
    let ipv4_option = set(libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, v4);
    if !ipv6 {
        return ipv4_option;
    }
    // An IPv6-only socket may refuse the IPv4 option; it has no IPv4
    // traffic for it to matter.
    set(libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER, v6)?;
    set(libc::IPPROTO_IPV6, libc::IPV6_DONTFRAG, dontfrag)
}

/// No such option here: only the default is supported.
#[cfg(not(target_os = "linux"))]
pub(crate) fn set<S>(_socket: &S, _ipv6: bool, choice: Fragmentation) -> io::Result<()> {
    match choice {
        Fragmentation::Forbidden => Ok(()),
        Fragmentation::Allowed => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "allowing IP fragmentation is supported on Linux only",
        )),
    }
}
