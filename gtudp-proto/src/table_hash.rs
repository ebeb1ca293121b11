//! The keyed hash of the endpoint's tables (peers by address, messages by
//! number and identity, received records, remembered histories).
//!
//! Their keys are small: an address is a discriminant, four or sixteen
//! address bytes and a port; a message number or an identity is one word.
//! A general-purpose hasher spends most of a lookup on such keys in its
//! byte-slice path and per-call setup; this one folds each written word
//! into a 64-bit state with one widening multiply, and reads a short slice
//! (an address's bytes) as one or two words.
//!
//! Every table is reached by keys a remote sender picks (its address, the
//! identities it sends), so the state starts from a secret key and ends
//! with a second one, both drawn from the endpoint's seed: without them a
//! sender cannot aim its keys at one probe sequence. Like foldhash's fast
//! hasher it is built for speed with that minimal resistance, not as a
//! cryptographic function.

use core::hash::{BuildHasher, Hasher};

/// An odd constant with well-spread bits (from PCG's multiplier).
const MULTIPLE: u64 = 0x5851_f42d_4c95_7f2d;

/// Builds [`TableHasher`]s from the two keys drawn from a seed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TableHashState {
    start: u64,
    finish: u64,
}

impl TableHashState {
    /// The keys for `seed`.
    pub(crate) fn with_seed(seed: u64) -> Self {
        Self {
            start: fold(seed ^ 0x243f_6a88_85a3_08d3, MULTIPLE),
            finish: fold(seed ^ 0x1319_8a2e_0370_7344, MULTIPLE) | 1,
        }
    }
}

impl BuildHasher for TableHashState {
    type Hasher = TableHasher;

    #[inline]
    fn build_hasher(&self) -> TableHasher {
        TableHasher {
            state: self.start,
            finish: self.finish,
        }
    }
}

/// One hash in progress: see the module docs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TableHasher {
    state: u64,
    finish: u64,
}

/// The high and low halves of `a × b` folded together.
#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

impl Hasher for TableHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let len = bytes.len();
        let word = |at: usize| -> u64 {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(word)
        };
        let half = |at: usize| -> u64 {
            let mut half = [0u8; 4];
            half.copy_from_slice(&bytes[at..at + 4]);
            u64::from(u32::from_le_bytes(half))
        };
        if len >= 16 {
            let mut at = 0;
            while at + 8 <= len {
                self.write_u64(word(at));
                at += 8;
            }
            if at < len {
                self.write_u64(word(len - 8));
            }
        } else if len >= 8 {
            // Two overlapping words cover 8 to 16 bytes.
            self.write_u64(word(0));
            self.write_u64(word(len - 8));
        } else if len >= 4 {
            self.write_u64(half(0) << 32 | half(len - 4));
        } else if len > 0 {
            let spread = u64::from(bytes[0]) << 16
                | u64::from(bytes[len / 2]) << 8
                | u64::from(bytes[len - 1]);
            self.write_u64(spread);
        }
        self.write_u64(len as u64);
    }

    #[inline]
    fn write_u8(&mut self, value: u8) {
        self.write_u64(u64::from(value));
    }

    #[inline]
    fn write_u16(&mut self, value: u16) {
        self.write_u64(u64::from(value));
    }

    #[inline]
    fn write_u32(&mut self, value: u32) {
        self.write_u64(u64::from(value));
    }

    #[inline]
    fn write_u64(&mut self, value: u64) {
        self.state = fold(self.state ^ value, MULTIPLE);
    }

    #[inline]
    fn write_u128(&mut self, value: u128) {
        self.write_u64(value as u64);
        self.write_u64((value >> 64) as u64);
    }

    #[inline]
    fn write_usize(&mut self, value: usize) {
        self.write_u64(value as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        fold(self.state, self.finish)
    }
}

/// A socket address as a table key, hashed by [`hash_address`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AddressKey(pub(crate) std::net::SocketAddr);

impl core::hash::Hash for AddressKey {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_address(&self.0, state);
    }
}

/// Hashes `address` as the fewest words it holds: an IPv4 address and
/// its port as one, an IPv6 address as its 16 bytes and one word of port,
/// flow and scope (std's hash of a `SocketAddr` writes five to eight
/// words, each a multiply). For keys whose `Hash` is written by hand.
#[inline]
pub(crate) fn hash_address<H: Hasher>(address: &std::net::SocketAddr, state: &mut H) {
    match address {
        std::net::SocketAddr::V4(v4) => state.write_u64(
            u64::from(u32::from_ne_bytes(v4.ip().octets())) << 16 | u64::from(v4.port()),
        ),
        std::net::SocketAddr::V6(v6) => {
            state.write_u128(u128::from_ne_bytes(v6.ip().octets()));
            state.write_u64(
                u64::from(v6.port()) << 48
                    ^ u64::from(v6.flowinfo()) << 16
                    ^ u64::from(v6.scope_id()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    #[test]
    fn equal_keys_hash_equal_and_seeds_change_the_hash() {
        let a = TableHashState::with_seed(1);
        let b = TableHashState::with_seed(2);
        let address: SocketAddr = "10.0.0.1:9000".parse().expect("address");
        assert_eq!(a.hash_one(address), a.hash_one(address));
        assert_ne!(a.hash_one(address), b.hash_one(address));
    }

    /// Every port of one host, and one port of many hosts: no two of
    /// 2 × 65,536 addresses share a hash under `hash`, and the top seven
    /// bits (a table's control byte) take every value.
    fn assert_hashes_spread(hash: impl Fn(SocketAddr) -> u64) {
        let mut hashes = hashbrown::HashSet::new();
        let mut tops = [false; 128];
        for port in 0..=u16::MAX {
            for address in [
                SocketAddr::from(([192, 168, 1, 1], port)),
                SocketAddr::from(([10, (port >> 8) as u8, port as u8, 1], 443)),
            ] {
                let hash = hash(address);
                assert!(hashes.insert(hash), "{address} collides");
                tops[(hash >> 57) as usize] = true;
            }
        }
        assert!(tops.iter().all(|&seen| seen));
    }

    #[test]
    fn addresses_that_differ_in_one_field_spread() {
        // Every port of one host, and one port of many hosts: no two of
        // 2 × 65,536 addresses share a hash, and the top seven bits (a
        // table's control byte) take every value.
        let state = TableHashState::with_seed(7);
        assert_hashes_spread(|address| state.hash_one(address));
        let v6: SocketAddr = "[2001:db8::1]:443".parse().expect("address");
        let v6_other: SocketAddr = "[2001:db8::2]:443".parse().expect("address");
        assert_ne!(state.hash_one(v6), state.hash_one(v6_other));
    }

    #[test]
    fn address_keys_spread_and_agree_with_equality() {
        // As for std's hash above: every port of one host and one port of
        // many hosts, no two alike, every top seven bits taken.
        let state = TableHashState::with_seed(7);
        assert_hashes_spread(|address| state.hash_one(AddressKey(address)));
        let v6: SocketAddr = "[2001:db8::1]:443".parse().expect("address");
        let same: SocketAddr = "[2001:db8::1]:443".parse().expect("address");
        let other_port: SocketAddr = "[2001:db8::1]:444".parse().expect("address");
        let key = |address| state.hash_one(AddressKey(address));
        assert_eq!(key(v6), key(same));
        assert_ne!(key(v6), key(other_port));
        let scoped = match v6 {
            SocketAddr::V6(mut v6) => {
                v6.set_scope_id(3);
                SocketAddr::V6(v6)
            }
            SocketAddr::V4(_) => unreachable!(),
        };
        assert_ne!(key(v6), key(scoped));
    }

    #[test]
    fn short_slices_of_every_length_differ() {
        let state = TableHashState::with_seed(3);
        let bytes = [
            1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
        ];
        let mut hashes = hashbrown::HashSet::new();
        for len in 0..=bytes.len() {
            let mut hasher = state.build_hasher();
            hasher.write(&bytes[..len]);
            assert!(hashes.insert(hasher.finish()), "length {len} collides");
        }
    }
}
