//! Address validation tokens: how an address proves it receives our
//! datagrams, without the endpoint keeping state for the proof.
//!
//! A datagram's source address can be forged, so an address that reached us
//! first is *unvalidated* until it shows it reads what we send to it. The
//! proof must carry something only a reader of our datagrams knows. Of the
//! three gtUDP packets, only the identity in a RECV of ours is chosen by us
//! and echoed back (every gtUDP sender answers every RECV with an ACK, even
//! for an identity it does not know). An ACK for a RECV that answers the
//! peer's own DATA proves nothing: the peer chose that identity, so a forger
//! who sent the DATA can send the ACK blind.
//!
//! So the endpoint sends a *validation probe*: a header-only RECV naming a
//! token, a keyed hash of the address and the current epoch. The ACK that
//! names the token validates the address, whether or not the endpoint still
//! tracks it (under a flood from many spoofed addresses, an honest peer may
//! be evicted from the peer table before its answer arrives; its answer
//! still counts, as a SYN cookie does in TCP). An off-path forger must guess
//! 32 bits per address and epoch.
//!
//! Epochs last `max_rto`; a token is accepted during its epoch and the next,
//! so an answer is never refused within one `max_rto` of its probe.
//!
//! The residual risk: a token, like any identity, is 32 bits, and the probed
//! peer may by chance have a DATA of its own in flight to us with the same
//! identity; it would take the probe for that DATA's RECV. The odds are its
//! messages in flight over 2^32, once per validation of an address.

use core::hash::Hasher;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::wire::Identity;

/// Issues and checks validation tokens.
#[derive(Clone, Debug)]
pub(crate) struct ValidationTokens {
    key: (u64, u64),
    epoch_length: Duration,
    epoch: u64,
    /// When the current epoch began; none before the first instant seen.
    epoch_started: Option<Instant>,
    /// When it ends (none if that is past what an `Instant` holds).
    epoch_ends: Option<Instant>,
}

impl ValidationTokens {
    pub(crate) fn new(key: (u64, u64), epoch_length: Duration) -> Self {
        Self {
            key,
            epoch_length: epoch_length.max(Duration::from_millis(1)),
            epoch: 0,
            epoch_started: None,
            epoch_ends: None,
        }
    }

    /// Moves to the epoch `now` falls in.
    #[inline]
    pub(crate) fn advance(&mut self, now: Instant) {
        // Called on every input: one comparison while the epoch lasts.
        if self.epoch_ends.is_some_and(|ends| now < ends) {
            return;
        }
        self.start_epoch(now);
    }

    fn start_epoch(&mut self, now: Instant) {
        let Some(started) = self.epoch_started else {
            self.epoch_started = Some(now);
            self.epoch_ends = now.checked_add(self.epoch_length);
            return;
        };
        let elapsed = now.saturating_duration_since(started);
        if elapsed < self.epoch_length {
            return;
        }
        let epochs = elapsed.as_nanos() / self.epoch_length.as_nanos();
        self.epoch = self
            .epoch
            .wrapping_add(u64::try_from(epochs).unwrap_or(u64::MAX));
        let skipped = u32::try_from(epochs).unwrap_or(u32::MAX);
        let started = started
            .checked_add(self.epoch_length.saturating_mul(skipped))
            .unwrap_or(now);
        self.epoch_started = Some(started);
        self.epoch_ends = started.checked_add(self.epoch_length);
    }

    /// The token to probe `address` with now.
    pub(crate) fn token(&self, address: &SocketAddr) -> Identity {
        self.token_in(self.epoch, address)
    }

    /// Whether `identity` is the token of `address` for this epoch or the
    /// one before.
    pub(crate) fn verify(&self, address: &SocketAddr, identity: Identity) -> bool {
        identity == self.token_in(self.epoch, address)
            || (self.epoch > 0 && identity == self.token_in(self.epoch - 1, address))
    }

    fn token_in(&self, epoch: u64, address: &SocketAddr) -> Identity {
        let digest = keyed_address_hash(self.key, epoch, address);
        Identity::from_u32((digest ^ (digest >> 32)) as u32)
    }
}

/// SipHash-2-4 of `address` (its family, IP, IPv6 scope and port) after
/// `domain`, under `key`: a value of the address nobody without the key
/// can compute, whatever values of other addresses they have seen.
pub(crate) fn keyed_address_hash(key: (u64, u64), domain: u64, address: &SocketAddr) -> u64 {
    // `SipHasher` is deprecated only in favour of `DefaultHasher`, which
    // cannot be keyed; it remains the standard library's keyed SipHash.
    #[allow(deprecated)]
    let mut hasher = core::hash::SipHasher::new_with_keys(key.0, key.1);
    hasher.write_u64(domain);
    match address {
        SocketAddr::V4(v4) => {
            hasher.write_u8(4);
            hasher.write(&v4.ip().octets());
        }
        SocketAddr::V6(v6) => {
            hasher.write_u8(6);
            hasher.write(&v6.ip().octets());
            hasher.write_u32(v6.scope_id());
        }
    }
    hasher.write_u16(address.port());
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 7], port))
    }

    #[test]
    fn a_token_is_accepted_in_its_epoch_and_the_next_only() {
        let start = Instant::now();
        let mut tokens = ValidationTokens::new((3, 4), Duration::from_secs(10));
        tokens.advance(start);
        let token = tokens.token(&address(9));
        assert!(tokens.verify(&address(9), token));
        tokens.advance(start + Duration::from_secs(15));
        assert!(
            tokens.verify(&address(9), token),
            "refused in the next epoch"
        );
        tokens.advance(start + Duration::from_secs(20));
        assert!(!tokens.verify(&address(9), token), "accepted two epochs on");
    }

    #[test]
    fn tokens_differ_by_address_and_key() {
        let tokens = ValidationTokens::new((3, 4), Duration::from_secs(10));
        let other_key = ValidationTokens::new((3, 5), Duration::from_secs(10));
        let token = tokens.token(&address(9));
        assert!(!tokens.verify(&address(10), token));
        assert!(!other_key.verify(&address(9), token));
        let v6 = SocketAddr::from(([0xfe80, 0, 0, 0, 0, 0, 0, 1], 9));
        assert_ne!(tokens.token(&v6), token);
    }

    #[test]
    fn a_long_jump_in_time_keeps_epochs_aligned() {
        let start = Instant::now();
        let mut tokens = ValidationTokens::new((1, 2), Duration::from_secs(10));
        tokens.advance(start);
        tokens.advance(start + Duration::from_secs(1_000_005));
        let token = tokens.token(&address(1));
        tokens.advance(start + Duration::from_secs(1_000_009));
        assert_eq!(
            tokens.token(&address(1)),
            token,
            "epoch moved within itself"
        );
        tokens.advance(start + Duration::from_secs(1_000_010));
        assert_ne!(tokens.token(&address(1)), token, "epoch did not move");
    }
}
