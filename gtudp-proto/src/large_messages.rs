//! The large-message extension's settings: messages larger than one
//! datagram, sent as fragments each confirmed and resent on its own.
//!
//! The extension changes the wire format, so both ends must enable it with
//! the same fragment type, as with the framing. Off (the default), a message
//! must fit one datagram and the wire is byte for byte the original's. On, a
//! message that fits one datagram is still sent as one DATA, unchanged; only
//! larger ones travel as fragments (see [`crate::wire::FragmentHeader`] for
//! their layout, and `docs/large-messages.md`).

use core::fmt;
use std::time::Duration;

use crate::wire::{Framing, PacketKind};

/// The large-message extension's settings, in
/// [`Config::large_messages`](crate::Config::large_messages).
///
/// ```
/// use gtudp_proto::{Config, LargeMessages};
///
/// let mut config = Config::default();
/// config.large_messages = Some(LargeMessages::default().with_max_message_size(4 << 20));
/// config.validate()?;
/// # Ok::<(), gtudp_proto::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LargeMessages {
    /// The largest message `send` accepts, and the largest a peer may
    /// announce to us. Default 16 MiB; at most `u32::MAX`, and at most
    /// [`Limits::max_reassembly_bytes_per_peer`](crate::Limits::max_reassembly_bytes_per_peer).
    pub max_message_size: usize,
    /// The type identifier of a fragment: as long as the framing's three,
    /// and different from each. Default `1e` (the original's DATA is `1d`).
    pub fragment_type: Vec<u8>,
    /// How long a large message may take. A message sent without a deadline
    /// gets one this far ahead (a shorter one of its own is kept), and each
    /// fragment tells the receiver how long its message may still take, so
    /// the receiver keeps an incomplete message at least that long: it never
    /// drops one whose sender may still complete it. A fragment announcing
    /// more than this is refused. Default 300 s.
    pub max_lifetime: Duration,
    /// Path MTU discovery: find, per peer, the largest datagram its path
    /// carries, between `pmtud_base` and `Config::max_datagram_size` (set
    /// that to the interface's limit), with padded probes; fragments and
    /// whole DATA then use that size, and a path that stops carrying it (a
    /// black hole) falls back to the base. Default on. Off, every datagram
    /// may be as large as `Config::max_datagram_size`. Both ends must run
    /// a version that answers probes (see `docs/large-messages.md`).
    pub pmtud: bool,
    /// The datagram size (UDP payload, header included) assumed to cross
    /// any path, where discovery starts and falls back to. Default 1,200,
    /// as in QUIC; at least the framing header plus 82 bytes (a fragment
    /// header and the smallest fragment), at most 65,507. Above
    /// `Config::max_datagram_size`, that limit is used and nothing is
    /// searched.
    pub pmtud_base: usize,
    /// How long after a search settled below `Config::max_datagram_size` a
    /// peer's path is searched again (it may have grown). Default 600 s.
    pub pmtud_interval: Duration,
}

impl Default for LargeMessages {
    fn default() -> Self {
        Self {
            max_message_size: 16 << 20,
            fragment_type: vec![0x1e],
            max_lifetime: Duration::from_secs(300),
            pmtud: true,
            pmtud_base: 1_200,
            pmtud_interval: Duration::from_secs(600),
        }
    }
}

impl LargeMessages {
    /// These settings with `max_message_size` set.
    pub fn with_max_message_size(mut self, max_message_size: usize) -> Self {
        self.max_message_size = max_message_size;
        self
    }

    /// These settings with `fragment_type` set.
    pub fn with_fragment_type(mut self, fragment_type: &[u8]) -> Self {
        self.fragment_type = fragment_type.to_vec();
        self
    }

    /// A fragment type that fits `framing`: as long as its type
    /// identifiers, and unlike each (its DATA type with the last byte
    /// raised by one to three). Both ends must use the same one.
    ///
    /// ```
    /// use gtudp_proto::wire::Framing;
    /// use gtudp_proto::LargeMessages;
    ///
    /// let framing = Framing::new(b"", &[0x01, 0x1d], &[0x01, 0x5f], &[0x01, 0xae])?;
    /// assert_eq!(LargeMessages::fragment_type_for(&framing), vec![0x01, 0x1e]);
    /// # Ok::<(), gtudp_proto::wire::FramingError>(())
    /// ```
    pub fn fragment_type_for(framing: &Framing) -> Vec<u8> {
        let data = framing.type_bytes(PacketKind::Data);
        let mut fragment = data.to_vec();
        let last = fragment.len() - 1;
        for delta in 1..=3u8 {
            fragment[last] = data[last].wrapping_add(delta);
            if PacketKind::ALL
                .into_iter()
                .all(|kind| framing.type_bytes(kind) != fragment.as_slice())
            {
                break;
            }
        }
        fragment
    }

    /// These settings with `max_lifetime` set.
    pub fn with_max_lifetime(mut self, max_lifetime: Duration) -> Self {
        self.max_lifetime = max_lifetime;
        self
    }

    /// These settings with path MTU discovery on or off.
    pub fn with_pmtud(mut self, pmtud: bool) -> Self {
        self.pmtud = pmtud;
        self
    }

    /// These settings with `pmtud_base` set.
    pub fn with_pmtud_base(mut self, base: usize) -> Self {
        self.pmtud_base = base;
        self
    }

    /// These settings with `pmtud_interval` set.
    pub fn with_pmtud_interval(mut self, interval: Duration) -> Self {
        self.pmtud_interval = interval;
        self
    }
}

/// Why the large-message settings were refused (inside
/// [`ConfigError::LargeMessages`](crate::ConfigError::LargeMessages)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LargeMessagesError {
    /// The fragment type is not as long as the framing's type identifiers,
    /// or equals one of them.
    FragmentType {
        /// The configured fragment type.
        fragment_type: Vec<u8>,
        /// The length of the framing's type identifiers.
        type_len: usize,
    },
    /// `max_message_size` is zero, above `u32::MAX`, or above what the
    /// reassembly limits let one peer hold.
    MessageSize {
        /// The configured size.
        size: usize,
        /// The largest accepted.
        max: usize,
    },
    /// A datagram of `max_datagram_size` leaves fragments fewer bytes than
    /// the smallest a receiver accepts.
    FragmentTooSmall {
        /// Bytes a fragment would carry.
        unit: usize,
        /// The smallest accepted.
        min: usize,
    },
    /// `max_lifetime` is zero or longer than `u32::MAX` milliseconds.
    Lifetime {
        /// The configured lifetime.
        lifetime: Duration,
    },
    /// `pmtud_base` leaves a fragment fewer bytes than the smallest a
    /// receiver accepts, or exceeds a UDP payload.
    PmtudBase {
        /// The configured base.
        base: usize,
        /// The smallest accepted.
        min: usize,
        /// The largest accepted.
        max: usize,
    },
    /// `pmtud_interval` is zero.
    PmtudInterval,
}

impl fmt::Display for LargeMessagesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LargeMessagesError::FragmentType {
                fragment_type,
                type_len,
            } => write!(
                f,
                "the fragment type {fragment_type:02x?} must be {type_len} byte(s) long, like the \
                 framing's type identifiers, and differ from each of them"
            ),
            LargeMessagesError::MessageSize { size, max } => write!(
                f,
                "max_message_size is {size} bytes; it must be at least 1 and at most {max} \
                 (u32::MAX and limits.max_reassembly_bytes_per_peer)"
            ),
            LargeMessagesError::FragmentTooSmall { unit, min } => write!(
                f,
                "max_datagram_size leaves a fragment {unit} bytes; it needs at least {min}"
            ),
            LargeMessagesError::Lifetime { lifetime } => write!(
                f,
                "large_messages.max_lifetime ({lifetime:?}) must be above zero and at most \
                 u32::MAX milliseconds"
            ),
            LargeMessagesError::PmtudBase { base, min, max } => write!(
                f,
                "large_messages.pmtud_base is {base} bytes; it must be at least {min} and at \
                 most {max}"
            ),
            LargeMessagesError::PmtudInterval => {
                f.write_str("large_messages.pmtud_interval must be above zero")
            }
        }
    }
}

impl std::error::Error for LargeMessagesError {}
