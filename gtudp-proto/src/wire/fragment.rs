//! The fragment header of the large-message extension.
//!
//! A message larger than one datagram travels as fragments. Each fragment is
//! a datagram of its own, confirmed by its own RECV and resent on its own:
//!
//! ```text
//! | magic | FRAGMENT type | identity (4) | message (4) | total (4) | index (4) | unit (2) | lifetime (4) | bytes |
//! ```
//!
//! The part before `message` is the framing's header with the extension's
//! own type identifier (so a whole message is a DATA byte for byte as the
//! original sends it). All fields are big-endian:
//!
//! | field | bytes | meaning |
//! |---|---|---|
//! | message | 4 | names the message among its sender's: the identity of its first fragment |
//! | total | 4 | the whole message's length in bytes, 1 to 2³² − 1 |
//! | index | 4 | this fragment's place: its bytes start at `index × unit` |
//! | unit | 2 | the length of every fragment but the last, at least [`FragmentHeader::MIN_UNIT`] |
//! | lifetime | 4 | milliseconds from the message's acceptance at the sender to its deadline |
//!
//! The last fragment (index `⌈total / unit⌉ − 1`) carries the remainder;
//! every other carries exactly `unit` bytes. Every copy of a fragment is the
//! same bytes: the lifetime is fixed when the message is accepted, not
//! recomputed per transmission, so the receiver's fingerprint of a copy
//! matches the original's.
//!
//! **Path MTU probes.** A fragment-type datagram whose header is
//! [`FragmentHeader::PROBE`] (`message` 0, `total` 0, `index` 2³² − 1,
//! `unit` 0, `lifetime` 0) is a probe of path MTU discovery, padded with
//! any bytes to the size it tries. No fragment has that header (a
//! fragment's `total` is at least 1 and its `unit` at least 64, and a
//! corrupted fragment would need many bits flipped to look like one). The
//! receiver answers a probe with a RECV naming its identity and keeps
//! nothing: no record, no history, nothing handed over. The sender sends a
//! probe once and never resends it.

use core::fmt;

/// The fields a fragment carries after the framing header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FragmentHeader {
    /// The message this fragment belongs to, among its sender's.
    pub message: u32,
    /// The whole message's length in bytes.
    pub total: u32,
    /// This fragment's place in the message.
    pub index: u32,
    /// The length of every fragment but the last.
    pub unit: u16,
    /// Milliseconds from the message's acceptance by its sender to the
    /// sender's deadline for it: no fragment of it is sent after that.
    pub lifetime_ms: u32,
}

/// Why a fragment header was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FragmentError {
    /// Fewer bytes than the header.
    TooShort,
    /// `total` is zero, `unit` is below the minimum, `index` lies past the
    /// message, or the fragment's length is not the one `index` implies.
    Inconsistent,
}

impl fmt::Display for FragmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FragmentError::TooShort => f.write_str("shorter than a fragment header"),
            FragmentError::Inconsistent => {
                f.write_str("the fragment's length, index, unit and total disagree")
            }
        }
    }
}

impl std::error::Error for FragmentError {}

impl FragmentHeader {
    /// Encoded length: 18 bytes.
    pub const LEN: usize = 18;

    /// The smallest `unit` a receiver accepts. Smaller fragments would make
    /// the receiver's record of which arrived large beside the message.
    pub const MIN_UNIT: u16 = 64;

    /// The header of a path MTU probe (see the module docs).
    pub const PROBE: FragmentHeader = FragmentHeader {
        message: 0,
        total: 0,
        index: u32::MAX,
        unit: 0,
        lifetime_ms: 0,
    };

    /// Whether a fragment-type datagram's payload (what follows the
    /// framing header) is a path MTU probe: it starts with
    /// [`FragmentHeader::PROBE`], whatever follows.
    ///
    /// ```
    /// use gtudp_proto::wire::FragmentHeader;
    ///
    /// let mut probe = Vec::new();
    /// FragmentHeader::PROBE.encode(&mut probe);
    /// probe.resize(1_400, 0);
    /// assert!(FragmentHeader::is_probe(&probe));
    /// assert!(FragmentHeader::parse(&probe).is_err(), "never a fragment");
    /// ```
    pub fn is_probe(payload: &[u8]) -> bool {
        const HEAD: [u8; FragmentHeader::LEN] = [
            0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0,
        ];
        payload.get(..Self::LEN) == Some(&HEAD[..])
    }

    /// How many fragments a message of `total` bytes in `unit`-byte
    /// fragments has.
    pub const fn count(total: u32, unit: u16) -> u32 {
        total.div_ceil(unit as u32)
    }

    /// Where this fragment's bytes start in the message.
    pub const fn offset(&self) -> usize {
        self.index as usize * self.unit as usize
    }

    /// The length of this fragment's bytes, as `total`, `unit` and `index`
    /// imply (`None` if they are inconsistent).
    pub fn expected_len(&self) -> Option<usize> {
        if self.total == 0 || self.unit < Self::MIN_UNIT {
            return None;
        }
        let count = Self::count(self.total, self.unit);
        if self.index >= count {
            return None;
        }
        let rest = self.total as usize - self.offset();
        Some(rest.min(usize::from(self.unit)))
    }

    /// Appends the header's 18 bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.message.to_be_bytes());
        out.extend_from_slice(&self.total.to_be_bytes());
        out.extend_from_slice(&self.index.to_be_bytes());
        out.extend_from_slice(&self.unit.to_be_bytes());
        out.extend_from_slice(&self.lifetime_ms.to_be_bytes());
    }

    /// Splits a fragment's payload (what follows the framing header) into
    /// its header and bytes, checking that they agree. Never panics.
    ///
    /// ```
    /// use gtudp_proto::wire::FragmentHeader;
    ///
    /// let header = FragmentHeader { message: 7, total: 100, index: 1, unit: 64, lifetime_ms: 1_000 };
    /// let mut payload = Vec::new();
    /// header.encode(&mut payload);
    /// payload.extend_from_slice(&[0xab; 36]); // the remainder: 100 - 64
    /// let (parsed, bytes) = FragmentHeader::parse(&payload)?;
    /// assert_eq!((parsed, bytes.len()), (header, 36));
    /// # Ok::<(), gtudp_proto::wire::FragmentError>(())
    /// ```
    pub fn parse(payload: &[u8]) -> Result<(FragmentHeader, &[u8]), FragmentError> {
        let (Some(head), Some(bytes)) = (payload.get(..Self::LEN), payload.get(Self::LEN..)) else {
            return Err(FragmentError::TooShort);
        };
        let word =
            |at: usize| u32::from_be_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
        let header = FragmentHeader {
            message: word(0),
            total: word(4),
            index: word(8),
            unit: u16::from_be_bytes([head[12], head[13]]),
            lifetime_ms: word(14),
        };
        match header.expected_len() {
            Some(len) if len == bytes.len() => Ok((header, bytes)),
            _ => Err(FragmentError::Inconsistent),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(total: u32, index: u32, unit: u16) -> FragmentHeader {
        FragmentHeader {
            message: 0x0102_0304,
            total,
            index,
            unit,
            lifetime_ms: 120_000,
        }
    }

    fn payload(header: FragmentHeader, len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        header.encode(&mut out);
        out.resize(FragmentHeader::LEN + len, 0x5a);
        out
    }

    #[test]
    fn round_trips_and_lays_out_big_endian() {
        let h = header(1_000, 3, 256);
        let encoded = payload(h, 232);
        assert_eq!(&encoded[..4], &[1, 2, 3, 4]);
        assert_eq!(&encoded[12..14], &[1, 0]);
        let (parsed, bytes) = FragmentHeader::parse(&encoded).unwrap();
        assert_eq!(parsed, h);
        assert_eq!(bytes.len(), 1_000 - 3 * 256);
    }

    #[test]
    fn a_probe_is_no_fragment_and_no_fragment_is_a_probe() {
        let probe = payload(FragmentHeader::PROBE, 100);
        assert!(FragmentHeader::is_probe(&probe));
        assert!(FragmentHeader::is_probe(&probe[..FragmentHeader::LEN]));
        assert!(!FragmentHeader::is_probe(&probe[..FragmentHeader::LEN - 1]));
        assert_eq!(
            FragmentHeader::parse(&probe),
            Err(FragmentError::Inconsistent)
        );
        // One to three flipped bits never turn a fragment into a probe.
        let fragment = payload(header(64, 0, 64), 64);
        for a in 0..FragmentHeader::LEN * 8 {
            for b in a..FragmentHeader::LEN * 8 {
                let mut bytes = fragment.clone();
                bytes[a / 8] ^= 1 << (a % 8);
                if b != a {
                    bytes[b / 8] ^= 1 << (b % 8);
                }
                assert!(!FragmentHeader::is_probe(&bytes));
            }
        }
    }

    #[test]
    fn refuses_what_does_not_add_up() {
        // A middle fragment shorter than its unit.
        assert_eq!(
            FragmentHeader::parse(&payload(header(1_000, 1, 256), 255)),
            Err(FragmentError::Inconsistent)
        );
        // An index past the message, a zero total, a tiny unit.
        for bad in [
            header(1_000, 4, 256),
            header(0, 0, 256),
            header(1_000, 0, 8),
        ] {
            assert_eq!(
                FragmentHeader::parse(&payload(bad, 8)),
                Err(FragmentError::Inconsistent)
            );
        }
        // The largest total and index the fields allow: no overflow.
        let huge = header(u32::MAX, u32::MAX / 64, 64);
        assert!(FragmentHeader::parse(&payload(huge, 63)).is_ok());
        assert_eq!(
            FragmentHeader::parse(&[0; 17]),
            Err(FragmentError::TooShort)
        );
    }
}
