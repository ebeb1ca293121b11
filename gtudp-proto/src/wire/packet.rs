//! The three gtUDP packet kinds and the reasons a datagram is not gtUDP.

use core::fmt;

use super::Identity;

/// The kind of a gtUDP packet, named after its type identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketKind {
    /// Carries a message; resent by its sender until a RECV names it.
    Data,
    /// Proof of delivery, sent by the receiver of a DATA; resent until ACK.
    Recv,
    /// Tells the receiver that its RECV arrived, so it stops resending it.
    Ack,
}

impl PacketKind {
    /// All kinds, in wire-table order (DATA, RECV, ACK).
    pub const ALL: [PacketKind; 3] = [PacketKind::Data, PacketKind::Recv, PacketKind::Ack];

    /// The kind's name as the protocol spells it: `DATA`, `RECV` or `ACK`.
    pub const fn name(self) -> &'static str {
        match self {
            PacketKind::Data => "DATA",
            PacketKind::Recv => "RECV",
            PacketKind::Ack => "ACK",
        }
    }

    pub(crate) const fn index(self) -> usize {
        match self {
            PacketKind::Data => 0,
            PacketKind::Recv => 1,
            PacketKind::Ack => 2,
        }
    }
}

impl fmt::Display for PacketKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One parsed gtUDP packet, borrowing its payload from the datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Packet<'a> {
    /// A message: its identity and its payload (possibly empty).
    Data {
        /// The identity the sender chose for this message.
        identity: Identity,
        /// The application's bytes.
        payload: &'a [u8],
    },
    /// The receiver has the message named by `identity`.
    Recv {
        /// The identity of the DATA being confirmed.
        identity: Identity,
    },
    /// The sender saw the RECV for `identity`.
    Ack {
        /// The identity of the RECV being acknowledged.
        identity: Identity,
    },
}

impl<'a> Packet<'a> {
    /// The packet's kind.
    pub const fn kind(&self) -> PacketKind {
        match self {
            Packet::Data { .. } => PacketKind::Data,
            Packet::Recv { .. } => PacketKind::Recv,
            Packet::Ack { .. } => PacketKind::Ack,
        }
    }

    /// The identity the packet names.
    pub const fn identity(&self) -> Identity {
        match *self {
            Packet::Data { identity, .. }
            | Packet::Recv { identity }
            | Packet::Ack { identity } => identity,
        }
    }

    /// The payload: the message for DATA, empty for RECV and ACK.
    pub const fn payload(&self) -> &'a [u8] {
        match *self {
            Packet::Data { payload, .. } => payload,
            Packet::Recv { .. } | Packet::Ack { .. } => &[],
        }
    }
}

/// Why a datagram is not a gtUDP packet.
///
/// Such datagrams are counted and dropped by the endpoint, or handed to the
/// application as foreign when it asked for them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NotGtudp {
    /// Shorter than magic + type + identity.
    TooShort,
    /// Does not start with the configured magic prefix.
    WrongMagic,
    /// The type field matches none of DATA, RECV and ACK.
    UnknownType,
    /// A RECV or ACK with bytes after the identity.
    WrongLength,
}

impl NotGtudp {
    /// All reasons, in a fixed order (used to index counters).
    pub const ALL: [NotGtudp; 4] = [
        NotGtudp::TooShort,
        NotGtudp::WrongMagic,
        NotGtudp::UnknownType,
        NotGtudp::WrongLength,
    ];
}

impl fmt::Display for NotGtudp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NotGtudp::TooShort => "datagram is shorter than a gtUDP header",
            NotGtudp::WrongMagic => "datagram does not start with the configured magic prefix",
            NotGtudp::UnknownType => "datagram carries an unknown packet type",
            NotGtudp::WrongLength => "RECV or ACK datagram has bytes after its identity",
        })
    }
}

impl std::error::Error for NotGtudp {}
