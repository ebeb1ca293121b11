//! The socket layer: [`gtudp_io::BatchIo`] (batched receive and segmented
//! send through quinn-udp) on a mio socket.

use std::io;

use gtudp_io::{BatchIo, Direction, UdpSockRef};
use mio::net::UdpSocket;

/// A mio UDP socket set up for batched I/O.
pub(crate) type UdpIo = BatchIo<MioSocket>;

/// A mio socket, whose `try_io` runs the system calls of [`BatchIo`].
#[derive(Debug)]
pub(crate) struct MioSocket(pub(crate) UdpSocket);

impl gtudp_io::Socket for MioSocket {
    fn sock_ref(&self) -> UdpSockRef<'_> {
        (&self.0).into()
    }

    fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.0.local_addr()
    }

    #[cfg(target_os = "linux")]
    fn raw_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.0)
    }

    /// mio's `try_io` re-arms readiness where it must (Windows); it has one
    /// readiness for both directions.
    fn try_io<R>(&self, _direction: Direction, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        self.0.try_io(f)
    }
}
