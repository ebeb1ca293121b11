//! The 4-byte identity that names one message on the wire.

use core::fmt;

/// The 4 opaque bytes that name one gtUDP message.
///
/// The sender chooses it; the receiver never interprets it, it only echoes it
/// back in RECV and uses it (together with the sender's address) to recognise
/// duplicates. It prints as 8 lowercase hex digits.
///
/// ```
/// use gtudp_proto::wire::Identity;
///
/// let id = Identity::from_u32(0x1234_567a);
/// assert_eq!(id.to_string(), "1234567a");
/// assert_eq!(id.to_bytes(), [0x12, 0x34, 0x56, 0x7a]);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Identity([u8; 4]);

/// One word: the derived hash of the byte array would write its length,
/// its bytes and their length again, three words for every table look-up
/// by identity.
impl core::hash::Hash for Identity {
    #[inline]
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        state.write_u32(u32::from_ne_bytes(self.0));
    }
}

impl Identity {
    /// The length of an identity on the wire, in bytes.
    pub const LEN: usize = 4;

    /// An identity from its wire bytes.
    pub const fn from_bytes(bytes: [u8; 4]) -> Self {
        Self(bytes)
    }

    /// An identity from a number, in network (big-endian) byte order, as the
    /// original implementation writes it.
    pub const fn from_u32(value: u32) -> Self {
        Self(value.to_be_bytes())
    }

    /// The wire bytes.
    pub const fn to_bytes(self) -> [u8; 4] {
        self.0
    }

    /// The identity read as a big-endian number.
    pub const fn to_u32(self) -> u32 {
        u32::from_be_bytes(self.0)
    }
}

impl From<[u8; 4]> for Identity {
    fn from(bytes: [u8; 4]) -> Self {
        Self(bytes)
    }
}

impl From<Identity> for [u8; 4] {
    fn from(identity: Identity) -> Self {
        identity.0
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(self, f)
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({self})")
    }
}

impl fmt::LowerHex for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a:02x}{b:02x}{c:02x}{d:02x}")
    }
}

impl fmt::UpperHex for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a:02X}{b:02X}{c:02X}{d:02X}")
    }
}
