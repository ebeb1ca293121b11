//! What the endpoint does when the operating system refuses a datagram as
//! too large for the path (`EMSGSIZE`: the socket forbids IP fragmentation
//! and the datagram exceeds the interface's or the known path's MTU).
//!
//! Such a message can never be delivered as it is: resending it until its
//! deadline only hides the cause. The adapter reports the refusal through
//! [`Endpoint::datagram_too_large`]; every message to that destination
//! whose DATA is at least that large fails at once with
//! [`FailureReason::TooLarge`], and the peer remembers the size for a
//! while ([`REMEMBERED_FOR`]), so that a later message that large fails at
//! [`send`](Endpoint::send) rather than after one more refused transmission.
//! Smaller messages to the peer go on as before.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use smallvec::SmallVec;

use super::Endpoint;
use crate::event::{FailureReason, MessageId};

/// How long a peer remembers the smallest datagram refused on its path: the
/// path may change (a route, an interface's MTU), and Linux forgets a
/// learned path MTU after as long (`net.ipv4.route.mtu_expires`). A message
/// sent after it is tried again, and fails on the next refusal.
pub(super) const REMEMBERED_FOR: Duration = Duration::from_secs(600);

/// The smallest datagram to a peer the system refused as too large, and
/// what is known of its path's limit (one per peer, forgotten with it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct TooLargeFrom {
    /// DATA datagrams of at least this many bytes fail at once.
    pub(super) size: usize,
    /// The largest datagram the path takes, when the adapter knew it.
    pub(super) limit: Option<usize>,
    /// Until when this is believed (see [`REMEMBERED_FOR`]).
    pub(super) until: Instant,
}

impl TooLargeFrom {
    /// The reason a DATA datagram of `size` bytes fails, if it is at least
    /// as large as what was refused and the memory is still fresh at `now`.
    pub(super) fn refuses(&self, now: Instant, size: usize) -> Option<FailureReason> {
        (now < self.until && size >= self.size).then_some(FailureReason::TooLarge {
            size,
            limit: self.limit,
        })
    }
}

impl Endpoint {
    /// The operating system refused to send a datagram of `size` bytes to
    /// `destination` because it is too large for the path (`EMSGSIZE`: the
    /// socket forbids IP fragmentation, and the datagram exceeds the
    /// interface's MTU or the path MTU the system knows). `limit` is the
    /// largest datagram (UDP payload, header included) the path takes, when
    /// the adapter knows it. Returns how many messages failed.
    ///
    /// Every message to `destination` whose DATA datagram (the gtUDP
    /// header and the payload) is at least `size` bytes, or larger than
    /// `limit`, fails at once with [`FailureReason::TooLarge`], whether in
    /// flight or queued: it would be refused every time, so it is not
    /// retried until its deadline. Messages smaller than that go on
    /// unaffected. A datagram that was refused never left, so a failed
    /// message's payload did not arrive from that transmission (an earlier
    /// one, before the path shrank, may have).
    ///
    /// A tracked peer remembers the smallest such size for ten minutes
    /// (one size per peer, forgotten with the peer): a message sent to it
    /// meanwhile whose datagram is that large fails at once too, without a
    /// transmission. After that a large message is tried again, in case
    /// the path changed.
    ///
    /// Adapters call this for a transmit the system refuses with
    /// `EMSGSIZE`; for several datagrams sent at once (a
    /// segmentation-offload batch), they first resend them one by one and
    /// report only those refused alone, so that a smaller datagram in the
    /// batch is not taken for too large. The call scans every message the
    /// endpoint holds; it is meant for the rare refusal.
    ///
    /// ```
    /// use std::time::Instant;
    /// use bytes::Bytes;
    /// use gtudp_proto::{Config, Endpoint, Event, FailureReason};
    ///
    /// let mut config = Config::default();
    /// config.max_datagram_size = 20_000;
    /// let mut endpoint = Endpoint::new(config, 1)?;
    /// let (now, peer) = (Instant::now(), "192.0.2.1:4000".parse()?);
    /// let big = endpoint.send(now, peer, Bytes::from(vec![0; 16_000]))?;
    /// let small = endpoint.send(now, peer, Bytes::from(vec![0; 1_000]))?;
    /// let mut buf = Vec::new();
    /// while let Some(transmit) = endpoint.poll_transmit(now, 1, &mut buf) {
    ///     // A 1,500-byte path: the system refuses the large datagram.
    ///     if transmit.size > 1_472 {
    ///         endpoint.datagram_too_large(now, transmit.destination, transmit.size, Some(1_472));
    ///     }
    /// }
    /// let size = 16_000 + endpoint.config().framing.header_len();
    /// assert_eq!(
    ///     endpoint.poll_event(),
    ///     Some(Event::Failed {
    ///         id: big,
    ///         to: peer,
    ///         reason: FailureReason::TooLarge { size, limit: Some(1_472) },
    ///     })
    /// );
    /// assert_eq!(endpoint.poll_event(), None, "the small message is still in flight");
    /// # let _ = small;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn datagram_too_large(
        &mut self,
        now: Instant,
        destination: SocketAddr,
        size: usize,
        limit: Option<usize>,
    ) -> usize {
        let address = crate::canonical_addr(destination);
        let now = self.advance(now);
        // What fails: the refused size, or anything above a known limit.
        let smallest = limit
            .map_or(size, |limit| size.min(limit.saturating_add(1)))
            .max(1);
        self.stats.too_large_reports += 1;
        let memo = TooLargeFrom {
            size: smallest,
            limit,
            until: now + REMEMBERED_FOR,
        };
        if let Some(peer) = self.peers.get_mut(&address) {
            // A smaller refusal still believed stands (a larger one says
            // nothing new about it); otherwise this one is remembered.
            match peer.too_large {
                Some(known) if known.until > now && known.size < smallest => {}
                _ => peer.too_large = Some(memo),
            }
        }
        let header_len = self.config.framing.header_len();
        let mut doomed: SmallVec<[(MessageId, FailureReason); 8]> = self
            .messages
            .iter()
            .filter(|(_, message)| message.destination == address)
            .filter_map(|(id, message)| {
                memo.refuses(now, header_len + message.payload.len())
                    .map(|reason| (id, reason))
            })
            .collect();
        doomed.sort_unstable_by_key(|(id, _)| *id);
        for (id, reason) in &doomed {
            self.resolve(now, *id, Err(*reason));
        }
        self.arm_sender_timer(now, address);
        self.finish_close_if_drained();
        self.compact();
        doomed.len()
    }
}
