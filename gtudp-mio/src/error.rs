//! Errors of the driver's and the blocking socket's operations.

use core::fmt;
use std::io;

pub use gtudp_io::{BindError, DeliveryError};

/// A blocking receive returned nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecvError {
    /// The next message is longer than the buffer given to
    /// [`BlockingSocket::recv_from`](crate::BlockingSocket::recv_from).
    /// Nothing was consumed: call again with a buffer of at least `len`
    /// bytes, or use [`BlockingSocket::recv`](crate::BlockingSocket::recv).
    Truncated {
        /// The message's length.
        len: usize,
        /// The buffer's length.
        capacity: usize,
    },
    /// Nothing arrived within the timeout given to
    /// [`BlockingSocket::recv_timeout`](crate::BlockingSocket::recv_timeout).
    TimedOut,
    /// The socket has closed and every received message has been read.
    Closed,
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Truncated { len, capacity } => write!(
                f,
                "the next message has {len} bytes but the buffer holds {capacity}; \
                 it was kept: call again with a larger buffer or use recv()"
            ),
            RecvError::TimedOut => f.write_str("no message arrived within the timeout"),
            RecvError::Closed => f.write_str("the socket has closed and nothing is left to read"),
        }
    }
}

impl std::error::Error for RecvError {}

impl From<RecvError> for io::Error {
    fn from(error: RecvError) -> Self {
        let kind = match error {
            RecvError::Truncated { .. } => io::ErrorKind::InvalidInput,
            RecvError::TimedOut => io::ErrorKind::TimedOut,
            RecvError::Closed => io::ErrorKind::NotConnected,
        };
        io::Error::new(kind, error)
    }
}
