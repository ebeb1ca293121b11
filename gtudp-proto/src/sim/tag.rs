//! Tags: what the simulator writes at the start of every payload it sends,
//! so that the checker can tell what a received payload is, who sent it,
//! and whether it was handed over before. Shared by the world, hostile
//! sources and the trace.

use core::fmt;

/// Names a payload sent in a simulation: who sent it and its sequence
/// number. Payloads start with their tag, so the checker can tell what a
/// received payload is, who sent it, and whether it was handed over before.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag {
    /// The sending node's index, or [`Tag::FLOOD`] plus a flood source's index.
    pub origin: u32,
    /// Unique per origin.
    pub seq: u64,
}

impl Tag {
    /// Encoded length: 4 bytes of marker, 4 of origin, 8 of sequence.
    pub const LEN: usize = 16;
    /// Set in `origin` for payloads of the hostile DATA flood.
    pub const FLOOD: u32 = 1 << 31;
    const MARKER: [u8; 4] = *b"gtSM";

    /// The tag of message `seq` of node `node`.
    pub fn node(node: u32, seq: u64) -> Self {
        Self { origin: node, seq }
    }

    /// The tag of flood datagram `seq` from flood source `source`.
    pub fn flood(source: u32, seq: u64) -> Self {
        Self {
            origin: Self::FLOOD | source,
            seq,
        }
    }

    /// Whether the payload came from the hostile flood.
    pub fn is_flood(&self) -> bool {
        self.origin & Self::FLOOD != 0
    }

    /// The tag's bytes; a payload may carry more after them.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(Self::LEN);
        bytes.extend_from_slice(&Self::MARKER);
        bytes.extend_from_slice(&self.origin.to_be_bytes());
        bytes.extend_from_slice(&self.seq.to_be_bytes());
        bytes
    }

    /// The tag a payload starts with, if any.
    pub fn decode(payload: &[u8]) -> Option<Self> {
        let bytes = payload.get(..Self::LEN)?;
        if bytes[..4] != Self::MARKER {
            return None;
        }
        let origin = u32::from_be_bytes(bytes[4..8].try_into().ok()?);
        let seq = u64::from_be_bytes(bytes[8..16].try_into().ok()?);
        Some(Self { origin, seq })
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_flood() {
            write!(f, "flood{}/{}", self.origin & !Tag::FLOOD, self.seq)
        } else {
            write!(f, "node{}/{}", self.origin, self.seq)
        }
    }
}
