//! The error types both adapters expose (re-exported by each at its root).

use core::fmt;
use std::io;
use std::net::SocketAddr;

use gtudp_proto::{ConfigError, FailureReason, SendErrorKind};

/// A socket (or driver) could not be created.
#[derive(Debug)]
#[non_exhaustive]
pub enum BindError {
    /// The endpoint configuration is inconsistent.
    Config(ConfigError),
    /// A capacity option of the socket (a queue size, the outstanding-send
    /// limit, ...) is zero.
    ZeroCapacity {
        /// The option's name.
        field: &'static str,
    },
    /// A capacity option of the socket is larger than the adapter can
    /// represent (Tokio's semaphore holds at most `usize::MAX >> 3`
    /// permits, for example).
    TooLarge {
        /// The option's name.
        field: &'static str,
        /// The value given.
        value: usize,
        /// The largest value accepted.
        max: usize,
    },
    /// A Tokio socket was created outside a Tokio runtime (`from_std` and
    /// `from_tokio` must be called inside one: the socket's driver is a
    /// task of that runtime).
    NoRuntime,
    /// A sharded socket (`bind_sharded`) cannot be made here: the platform
    /// has no `SO_REUSEPORT`, or cannot steer each peer to a known shard
    /// (`SO_ATTACH_REUSEPORT_CBPF`, Linux 4.5 or later).
    ShardingUnsupported {
        /// What was missing or refused.
        reason: String,
    },
    /// The operating system refused the socket, the poller or the thread
    /// (address in use, bad address, no random source, ...).
    Io(io::Error),
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindError::Config(error) => write!(f, "invalid gtUDP configuration: {error}"),
            BindError::ZeroCapacity { field } => {
                write!(f, "{field} is 0; it must be at least 1")
            }
            BindError::TooLarge { field, value, max } => {
                write!(f, "{field} is {value}; it must be at most {max}")
            }
            BindError::NoRuntime => f.write_str(
                "not inside a Tokio runtime: create gtudp-tokio sockets from within one",
            ),
            BindError::ShardingUnsupported { reason } => write!(
                f,
                "sharding over SO_REUSEPORT sockets is unsupported here: {reason}; bind one socket instead"
            ),
            BindError::Io(error) => write!(f, "could not set up the UDP socket: {error}"),
        }
    }
}

impl std::error::Error for BindError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BindError::Config(error) => Some(error),
            BindError::Io(error) => Some(error),
            BindError::ZeroCapacity { .. }
            | BindError::TooLarge { .. }
            | BindError::NoRuntime
            | BindError::ShardingUnsupported { .. } => None,
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
    /// The socket closed, or its driver stopped (the Tokio runtime shut
    /// down, the background thread failed), before the message was handed
    /// over.
    Closed,
    /// The target named no address: resolving it failed or gave none (or
    /// the socket has no peer to `send` to: `connect` first). Nothing was
    /// sent.
    Unresolved {
        /// The resolver's error kind (`NotConnected` without a peer).
        kind: io::ErrorKind,
        /// What the resolver said.
        message: String,
    },
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
            DeliveryError::Failed {
                to,
                reason: reason @ gtudp_proto::FailureReason::TooLarge { .. },
            } => write!(
                f,
                "delivery to {to} not confirmed: {reason}; the system refused the datagram, so \
                 it was not sent"
            ),
            DeliveryError::Failed { to, reason } => write!(
                f,
                "delivery to {to} not confirmed: {reason} (the payload may still have arrived)"
            ),
            DeliveryError::Refused { to, kind } => {
                write!(f, "message to {to} not sent: {kind}")
            }
            DeliveryError::Closed => f.write_str(
                "the socket closed (or its driver stopped) before the message was handed to it",
            ),
            DeliveryError::Unresolved { message, .. } => {
                write!(f, "no address to send to: {message}")
            }
        }
    }
}

impl std::error::Error for DeliveryError {}

impl From<DeliveryError> for io::Error {
    fn from(error: DeliveryError) -> Self {
        let kind = match error {
            DeliveryError::Failed { .. } => io::ErrorKind::TimedOut,
            DeliveryError::Refused { .. } => io::ErrorKind::InvalidInput,
            DeliveryError::Closed => io::ErrorKind::NotConnected,
            DeliveryError::Unresolved { kind, .. } => kind,
        };
        io::Error::new(kind, error)
    }
}

/// A receive returned nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecvError {
    /// The next message is longer than the buffer given to `recv_from`.
    /// Nothing was consumed: call again with a buffer of at least `len`
    /// bytes, or use `recv`, which returns the message whole.
    Truncated {
        /// The message's length.
        len: usize,
        /// The buffer's length.
        capacity: usize,
    },
    /// Nothing arrived within the receive timeout.
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

/// The socket has closed (or, for `close`, was closed already and its
/// summary taken), or its driver stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Closed;

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the socket has closed")
    }
}

impl std::error::Error for Closed {}

impl From<Closed> for io::Error {
    fn from(error: Closed) -> Self {
        io::Error::new(io::ErrorKind::NotConnected, error)
    }
}
