//! Errors of the endpoint's application calls.

use core::fmt;

use bytes::Bytes;

use crate::event::MessageId;

/// [`Endpoint::send`](crate::Endpoint::send) refused a message. The payload
/// is handed back, so the caller can retry without having kept a copy.
///
/// Its `Debug` output names the payload's length, not its bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SendError {
    kind: SendErrorKind,
    payload: Bytes,
}

impl fmt::Debug for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendError")
            .field("kind", &self.kind)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// Why a send was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendErrorKind {
    /// The payload does not fit in one datagram.
    PayloadTooLarge {
        /// The payload's length.
        size: usize,
        /// The largest payload the configuration allows.
        max: usize,
    },
    /// [`Endpoint::close`](crate::Endpoint::close) was called.
    Closing,
    /// `limits.max_peers` peers are tracked, none of them idle, and the
    /// destination is new.
    TooManyPeers,
    /// `limits.max_outstanding_messages` messages are unresolved or their
    /// outcome has not been polled.
    TooManyOutstanding,
    /// `limits.max_queued_per_peer` messages already wait for this peer.
    PeerQueueFull,
    /// The per-message attempt limit is 0 or above the configured maximum.
    InvalidAttempts {
        /// The requested limit.
        requested: u32,
        /// `Config::max_attempts`.
        max: u32,
    },
    /// The per-message deadline is not after the current time.
    DeadlineInPast,
}

impl SendError {
    pub(crate) fn new(kind: SendErrorKind, payload: Bytes) -> Self {
        Self { kind, payload }
    }

    /// Why the send was refused.
    pub fn kind(&self) -> SendErrorKind {
        self.kind
    }

    /// Whether the same send may succeed later, once messages resolve or
    /// events are polled (a limit was reached), as opposed to never.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            SendErrorKind::TooManyPeers
                | SendErrorKind::TooManyOutstanding
                | SendErrorKind::PeerQueueFull
        )
    }

    /// The refused payload.
    pub fn into_payload(self) -> Bytes {
        self.payload
    }
}

impl fmt::Display for SendErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendErrorKind::PayloadTooLarge { size, max } => write!(
                f,
                "payload of {size} bytes exceeds the {max} bytes one datagram carries \
                 (raise Config::max_datagram_size or split the message)"
            ),
            SendErrorKind::Closing => f.write_str("the endpoint is closing"),
            SendErrorKind::TooManyPeers => {
                f.write_str("limits.max_peers reached and every peer is busy; retry once one goes idle")
            }
            SendErrorKind::TooManyOutstanding => f.write_str(
                "limits.max_outstanding_messages reached; poll events and retry once messages resolve",
            ),
            SendErrorKind::PeerQueueFull => f.write_str(
                "limits.max_queued_per_peer reached for this destination; retry once messages resolve",
            ),
            SendErrorKind::InvalidAttempts { requested, max } => write!(
                f,
                "max_attempts of {requested} is invalid; it must be between 1 and Config::max_attempts ({max})"
            ),
            SendErrorKind::DeadlineInPast => f.write_str("the deadline is not after now"),
        }
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "send refused: {}", self.kind)
    }
}

impl std::error::Error for SendError {}

/// [`Endpoint::send_raw`](crate::Endpoint::send_raw) refused a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendRawError {
    /// Larger than a UDP datagram can be.
    TooLarge {
        /// The datagram's length.
        size: usize,
    },
    /// `limits.max_pending_raw` raw datagrams wait for `poll_transmit`.
    QueueFull,
    /// The endpoint has closed.
    Closed,
}

impl fmt::Display for SendRawError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendRawError::TooLarge { size } => write!(
                f,
                "raw datagram of {size} bytes exceeds the largest UDP payload ({})",
                crate::config::MAX_UDP_PAYLOAD
            ),
            SendRawError::QueueFull => f.write_str(
                "limits.max_pending_raw raw datagrams wait to be sent; retry once they are",
            ),
            SendRawError::Closed => f.write_str("closed: no more datagrams are sent"),
        }
    }
}

impl std::error::Error for SendRawError {}

/// [`Endpoint::cancel`](crate::Endpoint::cancel) named a message that is not
/// outstanding: it already resolved, or never existed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownMessage(pub MessageId);

impl fmt::Display for UnknownMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "message {} is not outstanding (already resolved?)",
            self.0
        )
    }
}

impl std::error::Error for UnknownMessage {}
