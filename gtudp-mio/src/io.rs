//! The socket layer: batched receive (recvmmsg, GRO) and segmented send
//! (GSO) through quinn-udp on a mio socket, with quinn-udp's portable
//! one-datagram fallback on platforms without them.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;

use mio::net::UdpSocket;
use quinn_udp::{RecvMeta, UdpSocketState};

/// Bytes of one receive slot: more than the largest UDP payload and the
/// most one GRO aggregate carries, so no datagram is ever cut.
const SLOT: usize = 1 << 16;

/// Receive slots per system call.
const SLOTS: usize = 8;

/// Segments one GSO send may carry (the kernel's `UDP_MAX_SEGMENTS`).
const MAX_SEGMENTS: usize = 64;

/// A mio UDP socket set up for batched I/O.
#[derive(Debug)]
pub(crate) struct UdpIo {
    pub(crate) socket: UdpSocket,
    state: UdpSocketState,
    buf: Box<[u8]>,
    meta: Vec<RecvMeta>,
    /// ICMP error reports met by sends (see [`is_icmp_report`]).
    pub(crate) send_icmp_reports: u64,
    /// Datagrams dropped because a send failed for good (EMSGSIZE, ...).
    pub(crate) send_errors: u64,
}

/// What one receive call produced.
pub(crate) enum Recv {
    /// `count` slots were filled; read them with [`UdpIo::datagrams`].
    Batch(usize),
    /// Nothing is waiting.
    WouldBlock,
    /// An error; see [`is_icmp_report`] for the harmless ones.
    Error(io::Error),
}

/// What one send call did.
pub(crate) enum Sent {
    /// Handed to the kernel (or dropped after a non-fatal error, logged).
    Done,
    /// The socket buffer is full: keep the bytes and wait for writability.
    WouldBlock,
}

impl UdpIo {
    pub(crate) fn new(socket: UdpSocket) -> io::Result<Self> {
        let state = UdpSocketState::new((&socket).into())?;
        Ok(Self {
            socket,
            state,
            buf: vec![0; SLOT * SLOTS].into_boxed_slice(),
            meta: vec![RecvMeta::default(); SLOTS],
            send_icmp_reports: 0,
            send_errors: 0,
        })
    }

    /// Datagrams that one GSO send may carry on this socket (1 without GSO).
    pub(crate) fn max_segments(&self) -> usize {
        self.state.max_gso_segments().clamp(1, MAX_SEGMENTS)
    }

    /// One batched receive, without waiting.
    pub(crate) fn try_recv(&mut self) -> Recv {
        let Self {
            socket,
            state,
            buf,
            meta,
            ..
        } = self;
        let socket = &*socket;
        let mut slices: Vec<IoSliceMut<'_>> = buf.chunks_mut(SLOT).map(IoSliceMut::new).collect();
        // `try_io` lets mio re-arm readiness where it must (Windows).
        match socket.try_io(|| state.recv(socket.into(), &mut slices, meta)) {
            Ok(count) => Recv::Batch(count),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => Recv::WouldBlock,
            Err(error) => Recv::Error(error),
        }
    }

    /// The datagrams in the first `count` slots of the last receive, each
    /// with its source, GRO aggregates split at their stride.
    pub(crate) fn datagrams(&self, count: usize) -> impl Iterator<Item = (SocketAddr, &[u8])> {
        self.meta[..count]
            .iter()
            .zip(self.buf.chunks(SLOT))
            .flat_map(|(meta, slot)| {
                let filled = &slot[..meta.len.min(slot.len())];
                let stride = if meta.stride == 0 {
                    filled.len().max(1)
                } else {
                    meta.stride
                };
                let addr = meta.addr;
                // An empty datagram is a datagram too.
                let empty = filled.is_empty().then_some((addr, filled));
                filled.chunks(stride).map(move |d| (addr, d)).chain(empty)
            })
    }

    /// Sends `contents` (several datagrams laid out for GSO when
    /// `segment_size` is set) to `destination`.
    ///
    /// Errors other than a full buffer never stop the caller: an ICMP report
    /// left over from an earlier datagram is retried once, a GSO batch the
    /// kernel refuses is resent datagram by datagram, and anything else
    /// (EMSGSIZE included) is logged and dropped: DATA and RECV are resent
    /// by the protocol.
    pub(crate) fn try_send(
        &mut self,
        destination: SocketAddr,
        contents: &[u8],
        segment_size: Option<usize>,
    ) -> Sent {
        let transmit = quinn_udp::Transmit {
            destination,
            ecn: None,
            contents,
            segment_size,
            src_ip: None,
        };
        let mut retried = false;
        loop {
            let result = self
                .socket
                .try_io(|| self.state.try_send((&self.socket).into(), &transmit));
            let error = match result {
                Ok(()) => return Sent::Done,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Sent::WouldBlock,
                Err(error) => error,
            };
            if is_icmp_report(&error) && !retried {
                // The error belongs to an earlier datagram; this one was not
                // sent yet.
                tracing::debug!(target: "gtudp", %destination, %error, "ICMP error report");
                self.send_icmp_reports += 1;
                retried = true;
                continue;
            }
            if let Some(segment) = segment_size.filter(|&s| s < contents.len()) {
                tracing::debug!(
                    target: "gtudp", %destination, %error,
                    "segmented send refused; sending {} datagrams one by one",
                    contents.len().div_ceil(segment.max(1))
                );
                for datagram in contents.chunks(segment.max(1)) {
                    if let Sent::WouldBlock = self.try_send(destination, datagram, None) {
                        // The rest is recovered by retransmission.
                        return Sent::Done;
                    }
                }
                return Sent::Done;
            }
            self.send_errors += 1;
            if quinn_udp::is_msg_size_err(&error) {
                tracing::warn!(
                    target: "gtudp", %destination, size = contents.len(),
                    "datagram larger than the path allows (EMSGSIZE); dropped: lower Config::max_datagram_size"
                );
            } else {
                tracing::warn!(target: "gtudp", %destination, %error, "send failed; datagram dropped");
            }
            return Sent::Done;
        }
    }
}

/// An error reported by ICMP for an earlier datagram (port unreachable and
/// the like), which says nothing about the socket itself.
pub(crate) fn is_icmp_report(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
    )
}
