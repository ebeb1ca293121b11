//! `sendmmsg` (Linux): several transmits of any sizes and destinations in
//! one system call. `quinn-udp` sends one `Transmit` per call (GSO batches
//! only equal-size datagrams to one destination), so a 5-byte RECV and the
//! reply written right after it would take two.

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;

/// Transmits one `sendmmsg` call carries at most.
pub(crate) const BATCH: usize = 32;

/// `SOL_UDP` and `UDP_SEGMENT` (Linux 4.18+), spelled here because not
/// every libc target defines the latter.
const SOL_UDP: libc::c_int = 17;
const UDP_SEGMENT: libc::c_int = 103;

/// Room for one control message carrying a `u16` (`CMSG_SPACE(2)`: 24
/// bytes on 64-bit targets), aligned for `cmsghdr`.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct Control([u8; 32]);

/// One transmit for [`send`]: the destination as the system call takes it
/// (see `socket_form`), the bytes, and the GSO segment size when the bytes
/// hold several datagrams.
pub(crate) struct Item<'a> {
    pub(crate) destination: SocketAddr,
    pub(crate) contents: &'a [u8],
    pub(crate) segment_size: Option<usize>,
}

/// Sends `items` (the first [`BATCH`]; more are ignored) through socket `fd`
/// in one `sendmmsg` call, without waiting, in order. Returns how many the
/// kernel took (a prefix: the kernel stops at the first it refuses and then
/// reports no error unless it took none), or the error of the first.
/// `fd` must be open for the call (the caller owns the socket).
#[allow(unsafe_code)]
pub(crate) fn send<'a>(fd: RawFd, items: impl IntoIterator<Item = Item<'a>>) -> io::Result<usize> {
    let mut count = 0;
    let mut names: [Option<socket2::SockAddr>; BATCH] = std::array::from_fn(|_| None);
    let mut iovecs = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; BATCH];
    let mut controls = [Control([0; 32]); BATCH];
    // SAFETY: all-zero is a valid `mmsghdr` (null pointers, zero lengths).
    let mut headers: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    for (index, item) in items.into_iter().take(BATCH).enumerate() {
        count = index + 1;
        let name = names[index].insert(socket2::SockAddr::from(item.destination));
        iovecs[index] = libc::iovec {
            // sendmmsg only reads through it.
            iov_base: item.contents.as_ptr().cast_mut().cast(),
            iov_len: item.contents.len(),
        };
        let header = &mut headers[index].msg_hdr;
        header.msg_name = name.as_ptr().cast_mut().cast();
        header.msg_namelen = name.len();
        header.msg_iov = &mut iovecs[index];
        header.msg_iovlen = 1;
        // GSO only when the bytes hold more than one segment (as
        // quinn-udp does).
        if let Some(segment) = item
            .segment_size
            .filter(|&segment| segment < item.contents.len())
        {
            let segment = u16::try_from(segment).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "GSO segment above 65,535 bytes",
                )
            })?;
            let control = &mut controls[index];
            header.msg_control = control.0.as_mut_ptr().cast();
            // SAFETY: CMSG_SPACE and CMSG_LEN only compute sizes.
            let (space, len) = unsafe {
                (
                    libc::CMSG_SPACE(std::mem::size_of::<u16>() as libc::c_uint),
                    libc::CMSG_LEN(std::mem::size_of::<u16>() as libc::c_uint),
                )
            };
            debug_assert!(space as usize <= control.0.len());
            header.msg_controllen = space as _;
            // SAFETY: `header.msg_control` points at `control`, aligned for
            // `cmsghdr` and at least `space` bytes long, so the first header
            // and its `u16` of data lie inside it; the data may be
            // unaligned, hence the unaligned write.
            unsafe {
                let cmsg = libc::CMSG_FIRSTHDR(header);
                (*cmsg).cmsg_level = SOL_UDP;
                (*cmsg).cmsg_type = UDP_SEGMENT;
                (*cmsg).cmsg_len = len as _;
                std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), segment);
            }
        }
    }
    loop {
        // SAFETY: `headers[..count]` point at `iovecs`, `names` and
        // `controls`, all alive and unmoved for the call, and through the
        // iovecs at the items' bytes, borrowed for the call; the kernel
        // only reads them (and writes each header's `msg_len`). The caller
        // keeps `fd` open.
        let sent = unsafe {
            libc::sendmmsg(
                fd,
                headers.as_mut_ptr(),
                count as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if sent >= 0 {
            return Ok(sent as usize);
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}
