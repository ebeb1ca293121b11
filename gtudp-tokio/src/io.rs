//! The socket layer: [`gtudp_io::BatchIo`] (batched receive and segmented
//! send through quinn-udp) on a Tokio socket.

use std::io;
use std::sync::Arc;

use gtudp_io::{BatchIo, Direction, UdpSockRef};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// A Tokio UDP socket set up for batched I/O.
pub(crate) type UdpIo = BatchIo<TokioSocket>;

/// A Tokio socket (shared with the handles, which wait for its readiness),
/// whose `try_io` runs the system calls of [`BatchIo`].
#[derive(Debug)]
pub(crate) struct TokioSocket(pub(crate) Arc<UdpSocket>);

impl gtudp_io::Socket for TokioSocket {
    fn sock_ref(&self) -> UdpSockRef<'_> {
        (&*self.0).into()
    }

    fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.0.local_addr()
    }

    #[cfg(target_os = "linux")]
    fn raw_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&*self.0)
    }

    fn try_io<R>(&self, direction: Direction, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        let interest = match direction {
            Direction::Recv => Interest::READABLE,
            Direction::Send => Interest::WRITABLE,
        };
        self.0.try_io(interest, f)
    }
}
