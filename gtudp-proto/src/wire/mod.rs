//! The gtUDP wire format: framing configuration, parsing and encoding.
//!
//! ```text
//! | magic (M bytes) | type (T bytes) | identity (4 bytes) | payload (DATA only) |
//! ```
//!
//! With the roaming extension on ([`Framing::with_roaming`]), an 8-byte
//! token naming the sending endpoint follows the magic.
//!
//! Parsing borrows from the datagram and never allocates or panics, whatever
//! the bytes. Encoding writes into a caller's buffer, or produces a small
//! inline [`Header`] for a payload that stays where it is.

mod fragment;
mod framing;
mod identity;
mod packet;

pub use fragment::{FragmentError, FragmentHeader};
pub use framing::{BufferTooSmall, Framing, FramingError, Header, TOKEN_LEN};
pub use identity::Identity;
pub use packet::{NotGtudp, Packet, PacketKind};
