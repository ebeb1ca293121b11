//! The framing configuration (magic prefix and type identifiers), parsing and
//! encoding.

use core::fmt;

use smallvec::SmallVec;

use super::{Identity, NotGtudp, Packet, PacketKind};

/// Bytes of a header kept inline by [`Header`] before it spills to the heap.
const INLINE_HEADER: usize = 32;

/// A validated gtUDP framing: the magic prefix and the three type identifiers.
///
/// Both ends must use the same framing. The default is the original's: no
/// magic, DATA `0x1D`, RECV `0x5F`, ACK `0xAE`.
///
/// Every datagram is `magic | type | identity (4 bytes) | payload (DATA only)`,
/// or, with the roaming extension on ([`with_roaming`](Self::with_roaming)),
/// `magic | sender token (8 bytes) | type | identity | payload`.
///
/// ```
/// use gtudp_proto::wire::{Framing, Identity, Packet};
///
/// let framing = Framing::new(b"GTUDP!", &[0x01, 0x1d], &[0x01, 0x5f], &[0x01, 0xae])?;
/// assert_eq!(framing.header_len(), 12);
///
/// let packet = Packet::Data { identity: Identity::from_u32(0x1234_567a), payload: b"hi" };
/// let mut datagram = Vec::new();
/// framing.encode_to_vec(&packet, &mut datagram);
/// assert_eq!(framing.parse(&datagram), Ok(packet));
/// # Ok::<(), gtudp_proto::wire::FramingError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Framing {
    magic: SmallVec<[u8; 16]>,
    /// DATA, RECV, ACK, indexed by [`PacketKind::index`].
    types: [SmallVec<[u8; 4]>; 3],
    /// The roaming extension: `Some` when on, holding the token this side
    /// writes (all zeros until an endpoint sets its own).
    token: Option<[u8; TOKEN_LEN]>,
    /// The three type identifiers when each is one byte (the default's
    /// case): parsing and encoding then read and write that byte alone
    /// rather than comparing and copying slices.
    single_types: Option<[u8; 3]>,
    /// [`header_len`](Self::header_len), kept with the fields it comes
    /// from (the endpoint asks for it several times a datagram).
    header_len: usize,
}

/// Bytes of the sender token the roaming extension adds after the magic.
pub const TOKEN_LEN: usize = 8;

/// Why a framing configuration was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FramingError {
    /// A type identifier is empty; each needs at least one byte.
    EmptyType {
        /// The kind whose identifier is empty.
        kind: PacketKind,
    },
    /// The three type identifiers differ in length.
    TypeLengthMismatch {
        /// Lengths of the DATA, RECV and ACK identifiers.
        lengths: [usize; 3],
    },
    /// Two type identifiers are the same bytes.
    DuplicateType {
        /// One of the two kinds.
        first: PacketKind,
        /// The other kind.
        second: PacketKind,
    },
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FramingError::EmptyType { kind } => {
                write!(
                    f,
                    "the {kind} type identifier is empty; it needs at least one byte"
                )
            }
            FramingError::TypeLengthMismatch { lengths: [d, r, a] } => write!(
                f,
                "the type identifiers must all have the same length, \
                 but DATA has {d} bytes, RECV {r} and ACK {a}"
            ),
            FramingError::DuplicateType { first, second } => write!(
                f,
                "the {first} and {second} type identifiers are the same bytes; \
                 all three must differ"
            ),
        }
    }
}

impl std::error::Error for FramingError {}

/// A buffer passed to [`Framing::encode`] was too small for the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferTooSmall {
    /// Bytes the packet needs.
    pub needed: usize,
    /// Bytes the buffer has.
    pub available: usize,
}

impl fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the packet needs {} bytes but the buffer holds {}",
            self.needed, self.available
        )
    }
}

impl std::error::Error for BufferTooSmall {}

/// An encoded header (`magic | type | identity`), held inline for the usual
/// sizes, for vectored sends where the payload follows from its own buffer.
pub type Header = SmallVec<[u8; INLINE_HEADER]>;

impl Default for Framing {
    fn default() -> Self {
        Self {
            magic: SmallVec::new(),
            types: [
                SmallVec::from_slice(&[Self::DEFAULT_DATA]),
                SmallVec::from_slice(&[Self::DEFAULT_RECV]),
                SmallVec::from_slice(&[Self::DEFAULT_ACK]),
            ],
            token: None,
            single_types: Some([Self::DEFAULT_DATA, Self::DEFAULT_RECV, Self::DEFAULT_ACK]),
            header_len: 1 + Identity::LEN,
        }
    }
}

impl Framing {
    /// The original's DATA type byte.
    pub const DEFAULT_DATA: u8 = 0x1d;
    /// The original's RECV type byte.
    pub const DEFAULT_RECV: u8 = 0x5f;
    /// The original's ACK type byte.
    pub const DEFAULT_ACK: u8 = 0xae;

    /// A framing with the given magic prefix (may be empty) and type
    /// identifiers, which must be non-empty, equally long and pairwise distinct.
    pub fn new(magic: &[u8], data: &[u8], recv: &[u8], ack: &[u8]) -> Result<Self, FramingError> {
        let types = [data, recv, ack];
        for kind in PacketKind::ALL {
            if types[kind.index()].is_empty() {
                return Err(FramingError::EmptyType { kind });
            }
        }
        if data.len() != recv.len() || data.len() != ack.len() {
            return Err(FramingError::TypeLengthMismatch {
                lengths: [data.len(), recv.len(), ack.len()],
            });
        }
        for (first, second) in [
            (PacketKind::Data, PacketKind::Recv),
            (PacketKind::Data, PacketKind::Ack),
            (PacketKind::Recv, PacketKind::Ack),
        ] {
            if types[first.index()] == types[second.index()] {
                return Err(FramingError::DuplicateType { first, second });
            }
        }
        let single_types = match types {
            [[data], [recv], [ack]] => Some([*data, *recv, *ack]),
            _ => None,
        };
        Ok(Self {
            magic: SmallVec::from_slice(magic),
            types: types.map(SmallVec::from_slice),
            token: None,
            single_types,
            header_len: magic.len() + data.len() + Identity::LEN,
        })
    }

    /// The same framing with the roaming extension on: every datagram
    /// carries, after the magic, an 8-byte token that names its sender to
    /// its receiver, so a peer whose address changes (a NAT rebinding, a
    /// phone moving between networks) is still known. Both ends must turn
    /// it on; see `docs/address-changes.md` in the repository.
    ///
    /// An [`Endpoint`](crate::Endpoint) writes the token it keeps for each
    /// peer (a keyed hash of the peer's first address, under a key drawn
    /// from its seed) whatever this framing holds: the token it sends one
    /// peer is not the one it sends another.
    ///
    /// ```
    /// use gtudp_proto::wire::{Framing, Identity, Packet};
    ///
    /// let framing = Framing::default().with_roaming();
    /// assert!(framing.roaming());
    /// assert_eq!(framing.header_len(), 1 + 8 + 4);
    /// let mut datagram = Vec::new();
    /// framing.encode_to_vec(&Packet::Recv { identity: Identity::from_u32(7) }, &mut datagram);
    /// assert_eq!(framing.sender_token(&datagram), Some(0));
    /// assert_eq!(framing.parse(&datagram), Ok(Packet::Recv { identity: Identity::from_u32(7) }));
    /// ```
    pub fn with_roaming(mut self) -> Self {
        if self.token.is_none() {
            self.token = Some([0; TOKEN_LEN]);
            self.header_len += TOKEN_LEN;
        }
        self
    }

    /// Whether the roaming extension is on.
    pub fn roaming(&self) -> bool {
        self.token.is_some()
    }

    /// The token this framing writes by itself with the roaming extension on
    /// (`None` when off): zero. An endpoint writes each peer's own token
    /// over it; [`sender_token`](Self::sender_token) reads the one a
    /// datagram carries.
    pub fn token(&self) -> Option<u64> {
        self.token.map(u64::from_be_bytes)
    }

    /// Sets the token written into every datagram, if the roaming extension
    /// is on (the fuzz targets re-encode a datagram with the token it
    /// carried).
    #[cfg(feature = "fuzzing")]
    pub(crate) fn set_token(&mut self, token: u64) {
        if let Some(own) = &mut self.token {
            *own = token.to_be_bytes();
        }
    }

    /// Writes `token` as the sender token of `datagram`, a datagram this
    /// framing encoded, when the roaming extension is on (an endpoint sends
    /// each destination its own token).
    #[inline(always)]
    pub(crate) fn stamp_token(&self, datagram: &mut [u8], token: u64) {
        if self.token.is_some() {
            let start = self.magic.len();
            if let Some(field) = datagram.get_mut(start..start + TOKEN_LEN) {
                field.copy_from_slice(&token.to_be_bytes());
            }
        }
    }

    /// The sender token a datagram carries, when the roaming extension is
    /// on and the datagram is long enough to hold one (it may still not be
    /// gtUDP: [`parse`](Self::parse) says).
    pub fn sender_token(&self, datagram: &[u8]) -> Option<u64> {
        self.token?;
        let start = self.magic.len();
        let bytes = datagram.get(start..start + TOKEN_LEN)?;
        let mut token = [0; TOKEN_LEN];
        token.copy_from_slice(bytes);
        Some(u64::from_be_bytes(token))
    }

    /// Bytes between the magic and the type: the sender token's, or none.
    pub fn token_len(&self) -> usize {
        match self.token {
            Some(_) => TOKEN_LEN,
            None => 0,
        }
    }

    /// Bytes before the type identifier: the magic and the sender token.
    pub fn prefix_len(&self) -> usize {
        self.magic.len() + self.token_len()
    }

    /// Appends what precedes the type in every datagram: the magic and, with
    /// the roaming extension on, this side's token.
    pub fn extend_prefix(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.magic);
        if let Some(token) = &self.token {
            out.extend_from_slice(token);
        }
    }

    /// The default types with a magic prefix.
    pub fn with_magic(magic: &[u8]) -> Self {
        let default = Self::default();
        Self {
            magic: SmallVec::from_slice(magic),
            header_len: magic.len() + default.header_len,
            ..default
        }
    }

    /// The magic prefix (empty when off).
    pub fn magic(&self) -> &[u8] {
        &self.magic
    }

    /// The type identifier of `kind`.
    pub fn type_bytes(&self, kind: PacketKind) -> &[u8] {
        &self.types[kind.index()]
    }

    /// The length of every header: magic + sender token (with the roaming
    /// extension) + type + 4-byte identity. RECV and ACK datagrams are
    /// exactly this long.
    #[inline]
    pub fn header_len(&self) -> usize {
        debug_assert_eq!(
            self.header_len,
            self.prefix_len() + self.types[0].len() + Identity::LEN
        );
        self.header_len
    }

    /// Parses one datagram without copying or allocating.
    ///
    /// Any bytes are accepted: the result is a packet borrowing the payload,
    /// or the reason the datagram is not gtUDP.
    // Always: every datagram in goes through it, and the default
    // framing's path is a few comparisons.
    #[inline(always)]
    pub fn parse<'a>(&self, datagram: &'a [u8]) -> Result<Packet<'a>, NotGtudp> {
        match self.single_types {
            Some(types) => self.parse_single_type(types, datagram),
            None => self.parse_slices(datagram),
        }
    }

    /// [`parse`](Self::parse) for any type identifiers.
    fn parse_slices<'a>(&self, datagram: &'a [u8]) -> Result<Packet<'a>, NotGtudp> {
        let header_len = self.header_len();
        if datagram.len() < header_len {
            return Err(NotGtudp::TooShort);
        }
        let (magic, rest) = datagram.split_at(self.magic.len());
        if magic != self.magic.as_slice() {
            return Err(NotGtudp::WrongMagic);
        }
        // The sender token, any bytes (see `sender_token`).
        let rest = &rest[self.token_len()..];
        let (type_field, rest) = rest.split_at(self.types[0].len());
        let kind = PacketKind::ALL
            .into_iter()
            .find(|kind| self.types[kind.index()].as_slice() == type_field)
            .ok_or(NotGtudp::UnknownType)?;
        let (identity, payload) = rest.split_at(Identity::LEN);
        packet(kind, identity, payload)
    }

    /// [`parse`](Self::parse) when every type identifier is one byte, `types`.
    #[inline(always)]
    fn parse_single_type<'a>(
        &self,
        types: [u8; 3],
        datagram: &'a [u8],
    ) -> Result<Packet<'a>, NotGtudp> {
        let header_len = self.header_len();
        let type_at = header_len - 1 - Identity::LEN;
        let Some((header, payload)) = datagram.split_at_checked(header_len) else {
            return Err(NotGtudp::TooShort);
        };
        if !self.magic.is_empty() {
            let magic = self.magic.as_slice();
            if &header[..magic.len()] != magic {
                return Err(NotGtudp::WrongMagic);
            }
        }
        let kind = match header[type_at] {
            byte if byte == types[0] => PacketKind::Data,
            byte if byte == types[1] => PacketKind::Recv,
            byte if byte == types[2] => PacketKind::Ack,
            _ => return Err(NotGtudp::UnknownType),
        };
        let identity = &header[type_at + 1..];
        packet(kind, identity, payload)
    }

    /// The encoded length of `packet`.
    pub fn encoded_len(&self, packet: &Packet<'_>) -> usize {
        self.header_len() + packet.payload().len()
    }

    /// Encodes `packet` at the start of `buf` and returns its length.
    pub fn encode(&self, packet: &Packet<'_>, buf: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let needed = self.encoded_len(packet);
        let Some(out) = buf.get_mut(..needed) else {
            return Err(BufferTooSmall {
                needed,
                available: buf.len(),
            });
        };
        let (header, payload) = out.split_at_mut(self.header_len());
        self.write_header(packet.kind(), packet.identity(), header);
        payload.copy_from_slice(packet.payload());
        Ok(needed)
    }

    /// Appends `packet` to `out`; allocates only if `out` lacks capacity.
    #[inline]
    pub fn encode_to_vec(&self, packet: &Packet<'_>, out: &mut Vec<u8>) {
        self.extend_header_vec(packet.kind(), packet.identity(), out);
        out.extend_from_slice(packet.payload());
    }

    /// Appends the header of a packet of `kind` naming `identity` to `out`:
    /// a whole RECV or ACK, or what precedes a DATA's payload (as
    /// [`encode_to_vec`](Self::encode_to_vec) writes it).
    #[inline]
    pub(crate) fn extend_header_vec(
        &self,
        kind: PacketKind,
        identity: Identity,
        out: &mut Vec<u8>,
    ) {
        match self.single_types {
            // The default's case, no magic and no token (a header of one
            // type byte and the identity, told by its length alone): the
            // header is written as one slice.
            Some(types) if self.header_len == 1 + Identity::LEN => {
                let [a, b, c, d] = identity.to_bytes();
                out.extend_from_slice(&[types[kind.index()], a, b, c, d]);
            }
            _ => self.extend_header(kind, identity, out),
        }
    }

    /// The header of a packet of `kind` naming `identity`; a DATA payload
    /// follows it unchanged, so a payload held elsewhere need not be copied to
    /// be framed (for example with vectored I/O).
    pub fn header(&self, kind: PacketKind, identity: Identity) -> Header {
        let mut header = Header::new();
        self.extend_header(kind, identity, &mut header);
        header
    }

    fn extend_header<E: Extend<u8>>(&self, kind: PacketKind, identity: Identity, out: &mut E) {
        out.extend(self.magic.iter().copied());
        if let Some(token) = &self.token {
            out.extend(token.iter().copied());
        }
        out.extend(self.types[kind.index()].iter().copied());
        out.extend(identity.to_bytes());
    }

    fn write_header(&self, kind: PacketKind, identity: Identity, out: &mut [u8]) {
        let (magic, rest) = out.split_at_mut(self.magic.len());
        magic.copy_from_slice(&self.magic);
        let (token, rest) = rest.split_at_mut(self.token_len());
        if let Some(own) = &self.token {
            token.copy_from_slice(own);
        }
        let (type_field, identity_field) = rest.split_at_mut(self.types[0].len());
        type_field.copy_from_slice(&self.types[kind.index()]);
        identity_field.copy_from_slice(&identity.to_bytes());
    }
}

/// The packet a datagram of `kind` carries, from the four bytes of its
/// identity and what follows them: a RECV or an ACK has nothing after.
#[inline(always)]
fn packet<'a>(
    kind: PacketKind,
    identity: &[u8],
    payload: &'a [u8],
) -> Result<Packet<'a>, NotGtudp> {
    let identity = Identity::from_bytes([identity[0], identity[1], identity[2], identity[3]]);
    match kind {
        PacketKind::Data => Ok(Packet::Data { identity, payload }),
        _ if !payload.is_empty() => Err(NotGtudp::WrongLength),
        PacketKind::Recv => Ok(Packet::Recv { identity }),
        PacketKind::Ack => Ok(Packet::Ack { identity }),
    }
}

impl fmt::Debug for Framing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Hex<'a>(&'a [u8]);
        impl fmt::Debug for Hex<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
            }
        }
        f.debug_struct("Framing")
            .field("magic", &Hex(&self.magic))
            .field("data", &Hex(&self.types[0]))
            .field("recv", &Hex(&self.types[1]))
            .field("ack", &Hex(&self.types[2]))
            .field("roaming", &self.roaming())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every prefix of every datagram below, and each with one byte
    /// changed, parses the same through the one-byte types' path as
    /// through the general one, for framings with and without magic and
    /// token; and what the one-byte path encodes is what the general
    /// header gives.
    #[test]
    fn one_byte_types_parse_and_encode_as_the_general_path() {
        let framings = [
            Framing::default(),
            Framing::default().with_roaming(),
            Framing::with_magic(b"GT"),
            Framing::new(b"GTU", &[1], &[2], &[3]).expect("valid"),
            Framing::new(b"", &[9], &[8], &[7])
                .expect("valid")
                .with_roaming(),
        ];
        let identity = Identity::from_u32(0x0102_0304);
        for framing in framings {
            let types = framing.single_types.expect("one-byte types");
            for packet in [
                Packet::Data {
                    identity,
                    payload: b"payload",
                },
                Packet::Data {
                    identity,
                    payload: b"",
                },
                Packet::Recv { identity },
                Packet::Ack { identity },
            ] {
                let mut encoded = Vec::new();
                framing.encode_to_vec(&packet, &mut encoded);
                let mut general = framing.header(packet.kind(), identity).to_vec();
                general.extend_from_slice(packet.payload());
                assert_eq!(encoded, general);
                for len in 0..=encoded.len() {
                    for flip in 0..=len {
                        let mut datagram = encoded[..len].to_vec();
                        if let Some(byte) = datagram.get_mut(flip) {
                            *byte ^= 0x5a;
                        }
                        assert_eq!(
                            framing.parse_single_type(types, &datagram),
                            framing.parse_slices(&datagram),
                            "{framing:?} {datagram:02x?}"
                        );
                    }
                }
            }
        }
        let two_bytes = Framing::new(b"", &[1, 1], &[1, 2], &[1, 3]).expect("valid");
        assert_eq!(two_bytes.single_types, None);
    }
}
