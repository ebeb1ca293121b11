//! The gtUDP wire format: framing configuration, parsing and encoding.
//!
//! ```text
//! | magic (M bytes) | type (T bytes) | identity (4 bytes) | payload (DATA only) |
//! ```
//!
//! Parsing borrows from the datagram and never allocates or panics, whatever
//! the bytes. Encoding writes into a caller's buffer, or produces a small
//! inline [`Header`] for a payload that stays where it is.

mod fragment;
mod framing;
mod identity;
mod packet;

pub use fragment::{FragmentError, FragmentHeader};
pub use framing::{BufferTooSmall, Framing, FramingError, Header};
pub use identity::Identity;
pub use packet::{NotGtudp, Packet, PacketKind};
