//! Errors of the socket's operations, one type per operation.

use core::fmt;

use bytes::Bytes;

pub use gtudp_io::{BindError, Closed, DeliveryError, RecvError};

/// [`Socket::send_nowait`](crate::Socket::send_nowait) could not take a
/// message at once. The payload is handed back.
///
/// Its `Debug` output names the payload's length, not its bytes, so a
/// `?` in `main` prints one short line.
#[derive(Clone, PartialEq, Eq)]
pub struct TrySendError {
    kind: TrySendErrorKind,
    payload: Bytes,
}

impl fmt::Debug for TrySendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrySendError")
            .field("kind", &self.kind)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// Why [`Socket::send_nowait`](crate::Socket::send_nowait) refused a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrySendErrorKind {
    /// [`Builder::max_outstanding`](crate::Builder::max_outstanding)
    /// messages await their outcome. Retry once some resolve, or use the
    /// waiting [`Socket::send_to`](crate::Socket::send_to).
    TooManyOutstanding,
    /// A request queue is full. Kept for code that matches on it: sends
    /// are handed to the endpoint by the calling task, so no queue exists
    /// and this kind is no longer returned
    /// ([`Builder::command_queue`](crate::Builder::command_queue)).
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
                "the request queue is full; retry shortly or use send_to, which waits",
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

/// A raw (unframed) send was refused: the endpoint's own error, whose
/// variants already say everything a socket user needs.
pub use gtudp_proto::SendRawError;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_names_the_payload_length_not_its_bytes() {
        let error = TrySendError::new(TrySendErrorKind::QueueFull, Bytes::from(vec![7u8; 6_000]));
        let debug = format!("{error:?}");
        assert_eq!(debug, "TrySendError { kind: QueueFull, payload_len: 6000 }");
    }
}
