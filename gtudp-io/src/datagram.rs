//! What both adapters hand over when a message arrives.

use std::net::SocketAddr;

use bytes::Bytes;

/// A message taken from a socket by `recv` (or one of its variants), in
/// both adapters.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Datagram {
    /// The message (or, for a foreign datagram, the whole datagram).
    pub payload: Bytes,
    /// The sender's address, IPv4 peers of a dual-stack socket in plain
    /// IPv4 form ([`gtudp_proto::canonical_addr`]).
    pub from: SocketAddr,
    /// Whether it is a gtUDP message or a foreign datagram.
    pub kind: DatagramKind,
}

impl Datagram {
    /// A datagram of `kind` from `from`.
    pub fn new(payload: Bytes, from: SocketAddr, kind: DatagramKind) -> Self {
        Self {
            payload,
            from,
            kind,
        }
    }

    /// Whether this is a foreign (non-gtUDP) datagram, handed over because
    /// `Config::deliver_foreign` is on; it carried no delivery guarantee.
    pub fn is_foreign(&self) -> bool {
        self.kind == DatagramKind::Foreign
    }
}

/// What a received datagram is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DatagramKind {
    /// A gtUDP message, confirmed to its sender and handed over once.
    Message,
    /// A datagram that is not gtUDP, handed over as it arrived (no
    /// guarantees) because `Config::deliver_foreign` is on.
    Foreign,
}
