//! What the endpoint tells the application.

use core::fmt;
use std::net::SocketAddr;

use bytes::Bytes;

/// Names one message given to [`Endpoint::send`](crate::Endpoint::send), from
/// the call until its [`Event::Delivered`] or [`Event::Failed`].
///
/// Ids are unique for the life of an endpoint; they are local handles and
/// never appear on the wire. They order as the messages were given to
/// `send`: a later message has a greater id.
///
/// An id is the message's serial number (the count of messages accepted
/// before it, a `u64` that cannot wrap in the life of any endpoint: 2^64
/// messages at a billion a second take 584 years) and the slot that holds
/// the message while it is unresolved, so the endpoint finds it without
/// hashing. Slots are reused once their message is resolved; the serial is
/// never reused, and a slot answers only to the serial it holds now, so an
/// old id never names a later message. Equality, order and hashing follow
/// the serial (the slot is a function of it).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId {
    /// Compared first, so ids order by send order.
    pub(crate) serial: u64,
    pub(crate) slot: u32,
}

impl MessageId {
    /// The id as a number, for logs and maps: the message's serial number,
    /// unique for the life of the endpoint.
    pub const fn as_u64(self) -> u64 {
        self.serial
    }

    /// An id for tests of structures that only carry ids.
    #[cfg(test)]
    pub(crate) const fn for_test(serial: u64) -> Self {
        Self { serial, slot: 0 }
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({})", self.serial)
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.serial)
    }
}

/// Something the application must learn about, from
/// [`Endpoint::poll_event`](crate::Endpoint::poll_event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A message arrived from `from`. Each message is handed over exactly
    /// once, whatever the network duplicates.
    Received {
        /// The sender's address.
        from: SocketAddr,
        /// The message.
        payload: Bytes,
    },
    /// The peer's endpoint confirmed it has the message (it may not have been
    /// read by the peer's application yet).
    Delivered {
        /// The message.
        id: MessageId,
        /// Where it went: the address it was sent to, or, with the roaming
        /// extension, the address its peer moved to meanwhile.
        to: SocketAddr,
        /// Whether the sender presumed the message lost and resent it
        /// before the confirmation came (msquic's "suspected lost"): early
        /// loss detection, a tail-loss probe or a retransmission timeout
        /// ordered it again. Either a copy was really lost and the resend
        /// recovered it, or the original was only late; the RECV does not
        /// say which copy arrived. A resend that answers the receiver's
        /// validation probe is no loss suspicion and leaves this `false`.
        suspected_lost: bool,
    },
    /// Delivery was not confirmed; the payload may still have arrived.
    Failed {
        /// The message.
        id: MessageId,
        /// Where it was going.
        to: SocketAddr,
        /// Why the endpoint stopped trying.
        reason: FailureReason,
    },
    /// A datagram that is not gtUDP, handed over because
    /// [`Config::deliver_foreign`](crate::Config::deliver_foreign) is on.
    Foreign {
        /// The sender's address.
        from: SocketAddr,
        /// The whole datagram, unchanged.
        payload: Bytes,
    },
}

/// Why a message ended in [`Event::Failed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureReason {
    /// Sent the maximum number of times without a RECV.
    AttemptsExhausted,
    /// Its deadline passed before a RECV arrived.
    DeadlineExpired,
    /// The application cancelled it.
    Cancelled,
    /// The endpoint's drain deadline passed while it was still in flight.
    EndpointClosed,
    /// The destination reached us first and never proved that it receives
    /// our datagrams (a spoofed source looks just like it): sending would
    /// have exceeded three times the bytes it sent us, and it still had not
    /// proven itself after `unvalidated_attempts` retransmission timeouts.
    Unvalidated,
    /// The network reported the peer unreachable (an ICMP port, host or
    /// network unreachable error, passed on by the adapter through
    /// [`Endpoint::peer_unreachable`](crate::Endpoint::peer_unreachable)).
    Unreachable,
    /// The system refused to send its DATA as too large for the path
    /// (`EMSGSIZE`: IP fragmentation is off and the datagram exceeds the
    /// interface's MTU or the known path MTU), passed on by the adapter
    /// through [`Endpoint::datagram_too_large`](crate::Endpoint::datagram_too_large):
    /// it would be refused every time, so it was not retried. Lower the
    /// payload (or `Config::max_datagram_size`, so that `send` refuses it
    /// up front).
    TooLarge {
        /// The message's DATA datagram in bytes (gtUDP header and payload).
        size: usize,
        /// The largest datagram the path takes, when the adapter knew it.
        limit: Option<usize>,
    },
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let FailureReason::TooLarge { size, limit } = self {
            write!(f, "its {size}-byte datagram is too large for the path")?;
            return match limit {
                Some(limit) => write!(f, " (at most {limit} bytes fit; IP fragmentation is off)"),
                None => f.write_str(" (refused by the system: EMSGSIZE; IP fragmentation is off)"),
            };
        }
        f.write_str(match self {
            FailureReason::AttemptsExhausted => "sent the maximum number of times without a RECV",
            FailureReason::DeadlineExpired => "the deadline passed before a RECV arrived",
            FailureReason::Cancelled => "cancelled by the application",
            FailureReason::EndpointClosed => "the endpoint closed before a RECV arrived",
            FailureReason::Unvalidated => {
                "the destination never proved it receives our datagrams, and sending more would \
                 exceed three times what it sent us"
            }
            FailureReason::Unreachable => {
                "the network reported the peer unreachable (ICMP destination unreachable)"
            }
            FailureReason::TooLarge { .. } => "its datagram is too large for the path",
        })
    }
}

/// One or more datagrams written by
/// [`Endpoint::poll_transmit`](crate::Endpoint::poll_transmit) into the
/// caller's buffer, all for the same destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "the datagrams in the buffer must be sent"]
pub struct Transmit {
    /// Where to send.
    pub destination: SocketAddr,
    /// Bytes written to the buffer.
    pub size: usize,
    /// `Some(n)` when the buffer holds several datagrams: each is `n` bytes
    /// except possibly the last, which is shorter (the layout of one
    /// generic-segmentation-offload send). `None` for one datagram.
    pub segment_size: Option<usize>,
}

impl Transmit {
    /// The number of datagrams in the buffer.
    pub fn datagram_count(&self) -> usize {
        match self.segment_size {
            Some(segment) if segment > 0 => self.size.div_ceil(segment),
            _ => 1,
        }
    }

    /// Splits the filled part of `buffer` into its datagrams.
    ///
    /// ```
    /// # use gtudp_proto::Transmit;
    /// let transmit = Transmit { destination: "127.0.0.1:1".parse().unwrap(), size: 5, segment_size: Some(2) };
    /// let parts: Vec<&[u8]> = transmit.datagrams(b"aabbc").collect();
    /// assert_eq!(parts, [&b"aa"[..], b"bb", b"c"]);
    /// ```
    pub fn datagrams<'a>(&self, buffer: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        let filled = &buffer[..self.size.min(buffer.len())];
        let segment = self.segment_size.unwrap_or(filled.len()).max(1);
        filled.chunks(segment)
    }
}
