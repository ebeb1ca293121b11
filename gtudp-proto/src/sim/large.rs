//! Large messages in a simulation: the extension on at every endpoint, small
//! datagrams (so a message of a few kilobytes is tens of fragments), tight
//! reassembly budgets, and half the sends larger than one datagram.

use std::time::Duration;

use super::rng::Rng;
use super::tag::Tag;
use crate::{Config, LargeMessages};

/// How a seed with large messages draws them (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LargeProfile {
    /// The largest message sent, and `max_message_size`.
    pub max_message: usize,
    /// The bytes one fragment carries.
    pub unit: usize,
    /// Seeds the stream the message sizes are drawn from, apart from the
    /// scenario's, so the rest of a seed's run is drawn as before.
    pub sizes_seed: u64,
}

impl LargeProfile {
    /// Draws the profile from `rng` and sets `config` for it: datagrams of
    /// 120 to 600 bytes (path MTU discovery searching from two thirds of
    /// that), messages of up to 4 to 24 fragments, a reassembly
    /// budget per host of two to three such messages, a lifetime of 0.5 to
    /// 1.5 s, and table bounds with room for the fragments.
    pub fn drawn(rng: &mut Rng, config: &mut Config) -> Self {
        config.max_datagram_size = rng.range(120, 600) as usize;
        let unit = config.fragment_unit();
        let fragments = rng.range(4, 24) as usize;
        let max_message = unit * fragments;
        let lifetime = Duration::from_millis(rng.range(500, 1_500));
        // Path MTU discovery searches from two thirds of the datagram size
        // up to it (drawn from nothing, so the seed's stream is as before).
        let min_base = config.framing.header_len() + crate::wire::FragmentHeader::LEN + 64;
        let base = (config.max_datagram_size * 2 / 3).max(min_base);
        config.large_messages = Some(
            LargeMessages::default()
                .with_max_message_size(max_message)
                .with_max_lifetime(lifetime)
                .with_fragment_type(&LargeMessages::fragment_type_for(&config.framing))
                .with_pmtud_base(base),
        );
        // Before discovery, fragments are cut to the base: more of them.
        let base_unit = base - config.framing.header_len() - crate::wire::FragmentHeader::LEN;
        let fragments = max_message.div_ceil(base_unit);
        let limits = &mut config.limits;
        let per_peer = max_message * rng.range(2, 3) as usize + 1_024;
        limits.max_reassembly_bytes_per_peer = per_peer;
        limits.max_reassembly_bytes = per_peer * rng.range(1, 3) as usize;
        limits.max_outstanding_messages += 2 * (fragments + 1);
        limits.max_queued_per_peer += 2 * fragments;
        limits.max_awaiting_ack += 4 * fragments;
        limits.max_awaiting_ack_per_peer += 2 * fragments;
        limits.max_remembered_bytes += 64 << 10;
        limits.max_remembered_bytes_per_peer += 32 << 10;
        limits.max_held_per_unvalidated_peer += fragments;
        limits.max_held_bytes_unvalidated += 2 * max_message;
        Self {
            max_message,
            unit,
            sizes_seed: rng.next_u64(),
        }
    }

    /// The bytes after the tag of a send whose small draw was
    /// `small_extra`: half the sends keep it, the other half are larger
    /// than one datagram.
    pub fn extra(&self, sizes: &mut Rng, small_extra: usize) -> usize {
        if !sizes.chance(0.5) {
            return small_extra;
        }
        let size = sizes.range(self.unit as u64 + 1, self.max_message as u64) as usize;
        size.saturating_sub(Tag::LEN)
    }
}
