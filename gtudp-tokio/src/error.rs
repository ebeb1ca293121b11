//! Errors of the socket's operations, one type per operation.

use core::fmt;
use std::io;
use std::net::SocketAddr;

use bytes::Bytes;
use gtudp_proto::{ConfigError, FailureReason, SendErrorKind};

/// A socket could not be created.
#[derive(Debug)]
#[non_exhaustive]
pub enum BindError {
    /// The endpoint configuration is inconsistent.
    Config(ConfigError),
    /// A socket-level option is zero (see [`Builder`](crate::Builder)).
    ZeroCapacity {
        /// The option's name.
        field: &'static str,
    },
    /// The operating system refused the socket (address in use, bad
    /// address, no random source, not inside a Tokio runtime, ...).
    Io(io::Error),
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindError::Config(error) => write!(f, "invalid gtUDP configuration: {error}"),
            BindError::ZeroCapacity { field } => {
                write!(f, "{field} is 0; it must be at least 1")
            }
            BindError::Io(error) => write!(f, "could not set up the UDP socket: {error}"),
        }
    }
}

impl std::error::Error for BindError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BindError::Config(error) => Some(error),
            BindError::Io(error) => Some(error),
            BindError::ZeroCapacity { .. } => None,
        }
    }
}

impl From<io::Error> for BindError {
    fn from(error: io::Error) -> Self {
        BindError::Io(error)
    }
}

impl From<ConfigError> for BindError {
    fn from(error: ConfigError) -> Self {
        BindError::Config(error)
    }
}

/// A guaranteed send did not end in delivery.
///
/// [`Failed`](DeliveryError::Failed) means the peer never confirmed receipt:
/// the payload may still have arrived. Every other variant means the message
/// was never handed to the endpoint, so it was not sent at all.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The endpoint gave up: no RECV from `to` before the attempt limit, the
    /// deadline, a cancel or the close deadline.
    Failed {
        /// Where the message was going.
        to: SocketAddr,
        /// Why the endpoint stopped trying.
        reason: FailureReason,
    },
    /// The endpoint refused the message (too large, a limit reached, or the
    /// socket is closing); it was never sent.
    Refused {
        /// Where the message was going.
        to: SocketAddr,
        /// Why it was refused.
        kind: SendErrorKind,
    },
    /// The socket was closed before the message was handed over, or its
    /// driver task stopped (the Tokio runtime shut down).
    Closed,
}

impl DeliveryError {
    /// The endpoint's reason for a [`Failed`](DeliveryError::Failed) message.
    pub fn reason(&self) -> Option<FailureReason> {
        match self {
            DeliveryError::Failed { reason, .. } => Some(*reason),
            _ => None,
        }
    }

    /// Whether the payload may have reached the peer (only a message that
    /// was actually sent and then failed may have).
    pub fn may_have_arrived(&self) -> bool {
        matches!(self, DeliveryError::Failed { .. })
    }
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeliveryError::Failed { to, reason } => write!(
                f,
                "delivery to {to} not confirmed: {reason} (the payload may still have arrived)"
            ),
            DeliveryError::Refused { to, kind } => {
                write!(f, "message to {to} not sent: {kind}")
            }
            DeliveryError::Closed => f.write_str(
                "the socket closed (or its runtime shut down) before the message was sent",
            ),
        }
    }
}

impl std::error::Error for DeliveryError {}

/// [`Socket::send_nowait`](crate::Socket::send_nowait) could not take a
/// message at once. The payload is handed back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrySendError {
    kind: TrySendErrorKind,
    payload: Bytes,
}

/// Why [`Socket::send_nowait`](crate::Socket::send_nowait) refused a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrySendErrorKind {
    /// [`Builder::max_outstanding`](crate::Builder::max_outstanding)
    /// messages await their outcome. Retry once some resolve, or use the
    /// waiting [`Socket::send_to`](crate::Socket::send_to).
    TooManyOutstanding,
    /// The driver's command queue
    /// ([`Builder::command_queue`](crate::Builder::command_queue)) is full.
    /// Retry shortly, or use the waiting [`Socket::send_to`](crate::Socket::send_to).
    QueueFull,
    /// The payload does not fit in one datagram.
    PayloadTooLarge {
        /// The payload's length.
        size: usize,
        /// The largest payload the configuration allows.
        max: usize,
    },
    /// The socket is closing or closed.
    Closed,
}

impl TrySendError {
    pub(crate) fn new(kind: TrySendErrorKind, payload: Bytes) -> Self {
        Self { kind, payload }
    }

    /// Why the message was refused.
    pub fn kind(&self) -> TrySendErrorKind {
        self.kind
    }

    /// Whether the same send may succeed later (a limit was reached).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            TrySendErrorKind::TooManyOutstanding | TrySendErrorKind::QueueFull
        )
    }

    /// The refused payload.
    pub fn into_payload(self) -> Bytes {
        self.payload
    }
}

impl fmt::Display for TrySendErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendErrorKind::TooManyOutstanding => f.write_str(
                "max_outstanding messages await their outcome; retry once some resolve or use send_to",
            ),
            TrySendErrorKind::QueueFull => f.write_str(
                "the driver's command queue is full; retry shortly or use send_to, which waits",
            ),
            TrySendErrorKind::PayloadTooLarge { size, max } => write!(
                f,
                "payload of {size} bytes exceeds the {max} bytes one datagram carries \
                 (raise Config::max_datagram_size or split the message)"
            ),
            TrySendErrorKind::Closed => f.write_str("the socket is closing or closed"),
        }
    }
}

impl fmt::Display for TrySendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "send refused: {}", self.kind)
    }
}

impl std::error::Error for TrySendError {}

/// A raw (unframed) send was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendRawError {
    /// Larger than a UDP datagram can be.
    TooLarge {
        /// The datagram's length.
        size: usize,
    },
    /// `limits.max_pending_raw` raw datagrams wait to be written; retry
    /// shortly.
    QueueFull,
    /// The socket has closed.
    Closed,
}

impl fmt::Display for SendRawError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendRawError::TooLarge { size } => write!(
                f,
                "raw datagram of {size} bytes exceeds the largest UDP payload ({})",
                gtudp_proto::MAX_UDP_PAYLOAD
            ),
            SendRawError::QueueFull => f.write_str(
                "limits.max_pending_raw raw datagrams wait to be written; retry shortly",
            ),
            SendRawError::Closed => f.write_str("the socket has closed"),
        }
    }
}

impl std::error::Error for SendRawError {}

impl From<gtudp_proto::SendRawError> for SendRawError {
    fn from(error: gtudp_proto::SendRawError) -> Self {
        match error {
            gtudp_proto::SendRawError::TooLarge { size } => SendRawError::TooLarge { size },
            gtudp_proto::SendRawError::QueueFull => SendRawError::QueueFull,
            _ => SendRawError::Closed,
        }
    }
}

/// A receive found nothing to return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecvError {
    /// The next datagram is longer than the buffer given to
    /// [`Socket::recv_from`](crate::Socket::recv_from). Nothing was
    /// consumed: call again with a buffer of at least `len` bytes, or use
    /// [`Socket::recv`](crate::Socket::recv).
    Truncated {
        /// The datagram's length.
        len: usize,
        /// The buffer's length.
        capacity: usize,
    },
    /// The socket has closed and every received datagram has been read.
    Closed,
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Truncated { len, capacity } => write!(
                f,
                "the next datagram has {len} bytes but the buffer holds {capacity}; \
                 it was kept: call again with a larger buffer or use recv()"
            ),
            RecvError::Closed => f.write_str("the socket has closed and nothing is left to read"),
        }
    }
}

impl std::error::Error for RecvError {}

/// The socket's driver has stopped: it closed, or its runtime shut down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Closed;

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the socket has closed")
    }
}

impl std::error::Error for Closed {}
