//! How the endpoint chooses message identities.
//!
//! An identity must be unpredictable to an off-path attacker (or a forged RECV
//! could confirm a message that never arrived) and must not repeat while a
//! peer may still remember it (or the peer would take a new message for a
//! duplicate and drop it). Random draws give the first but not the second: by
//! the birthday bound, two of 100,000 random 32-bit identities collide more
//! often than not.
//!
//! So identities are a keyed pseudo-random *permutation* of a counter: the
//! counter enciphered with Speck32/64, the 32-bit block cipher of the Speck
//! family (Beaulieu et al., "The SIMON and SPECK Families of Lightweight
//! Block Ciphers", 2013), keyed from the endpoint's seed. A permutation never
//! maps two counter values to the same identity, so identities repeat only
//! after 2^32 messages; without the key, the next identity cannot be told from
//! the ones seen. Its 22 add-rotate-xor rounds on 16-bit words cost a few
//! dozen instructions, a fraction of a hash-based Feistel network's.

use crate::wire::Identity;

/// Speck32/64's number of rounds.
const ROUNDS: usize = 22;

/// Hands out identities: a keyed permutation of a 32-bit counter.
#[derive(Clone, Debug)]
pub(crate) struct IdentityGenerator {
    /// The cipher's round keys, expanded once from the key.
    round_keys: [u16; ROUNDS],
    counter: u32,
}

impl IdentityGenerator {
    pub(crate) fn new(key: (u64, u64), first_counter: u32) -> Self {
        // Speck32/64 takes a 64-bit key; fold the 128 drawn bits into it.
        let folded = key.0 ^ key.1.rotate_left(29);
        Self {
            round_keys: expand_key(folded),
            counter: first_counter,
        }
    }

    pub(crate) fn next_identity(&mut self) -> Identity {
        let counter = self.counter;
        self.counter = self.counter.wrapping_add(1);
        Identity::from_u32(self.permute(counter))
    }

    /// Whether `identity` is one of the last `span` identities handed out
    /// (the permutation is inverted to its counter value). A RECV naming
    /// one of those is a late copy for a message already resolved, not a
    /// validation probe; a probe's token falls in the span with odds
    /// `span / 2^32`.
    pub(crate) fn issued_recently(&self, identity: Identity, span: u32) -> bool {
        let counter = self.unpermute(identity.to_u32());
        let age = self.counter.wrapping_sub(counter);
        (1..=span).contains(&age)
    }

    fn permute(&self, value: u32) -> u32 {
        let (x, y) = encrypt(&self.round_keys, ((value >> 16) as u16, value as u16));
        (u32::from(x) << 16) | u32::from(y)
    }

    fn unpermute(&self, value: u32) -> u32 {
        let (x, y) = decrypt(&self.round_keys, ((value >> 16) as u16, value as u16));
        (u32::from(x) << 16) | u32::from(y)
    }
}

/// Speck's round: the only nonlinear step is the modular addition.
#[inline(always)]
fn round((x, y): (u16, u16), key: u16) -> (u16, u16) {
    let x = x.rotate_right(7).wrapping_add(y) ^ key;
    (x, y.rotate_left(2) ^ x)
}

/// The round inverted.
#[inline(always)]
fn unround((x, y): (u16, u16), key: u16) -> (u16, u16) {
    let y = (y ^ x).rotate_right(2);
    ((x ^ key).wrapping_sub(y).rotate_left(7), y)
}

fn encrypt(round_keys: &[u16; ROUNDS], block: (u16, u16)) -> (u16, u16) {
    round_keys
        .iter()
        .fold(block, |block, &key| round(block, key))
}

fn decrypt(round_keys: &[u16; ROUNDS], block: (u16, u16)) -> (u16, u16) {
    round_keys
        .iter()
        .rev()
        .fold(block, |block, &key| unround(block, key))
}

/// Speck32/64's key schedule: the key's four 16-bit words, lowest first,
/// are `k0, l0, l1, l2`; the schedule runs the round function over them
/// with the round number as the key.
fn expand_key(key: u64) -> [u16; ROUNDS] {
    let mut round_keys = [0u16; ROUNDS];
    let mut k = key as u16;
    let mut l = [(key >> 16) as u16, (key >> 32) as u16, (key >> 48) as u16];
    for (i, slot) in round_keys.iter_mut().enumerate() {
        *slot = k;
        let (next_l, next_k) = round((l[i % 3], k), i as u16);
        l[i % 3] = next_l;
        k = next_k;
    }
    round_keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use hashbrown::HashSet;

    #[test]
    fn the_cipher_is_speck32_64() {
        // The test vector of the Speck paper (appendix C): key
        // 1918 1110 0908 0100, plaintext 6574 694c, ciphertext a868 42f2.
        let round_keys = expand_key(0x1918_1110_0908_0100);
        assert_eq!(encrypt(&round_keys, (0x6574, 0x694c)), (0xa868, 0x42f2));
        assert_eq!(decrypt(&round_keys, (0xa868, 0x42f2)), (0x6574, 0x694c));
    }

    #[test]
    fn identities_do_not_repeat_within_a_long_run() {
        let mut generator = IdentityGenerator::new((1, 2), u32::MAX - 1000);
        let mut seen = HashSet::new();
        for _ in 0..200_000 {
            assert!(seen.insert(generator.next_identity()), "identity repeated");
        }
    }

    #[test]
    fn permutation_is_a_bijection_on_a_sample() {
        let generator = IdentityGenerator::new((7, 9), 0);
        let mut images = HashSet::new();
        for value in (0..u32::MAX).step_by(4099).take(100_000) {
            assert!(images.insert(generator.permute(value)));
        }
    }

    #[test]
    fn recent_identities_are_recognised_and_others_are_not() {
        let mut generator = IdentityGenerator::new((3, 5), u32::MAX - 10);
        let issued: Vec<Identity> = (0..100).map(|_| generator.next_identity()).collect();
        for value in (0..u32::MAX).step_by(7919).take(10_000) {
            assert_eq!(generator.unpermute(generator.permute(value)), value);
        }
        assert!(issued
            .iter()
            .all(|identity| generator.issued_recently(*identity, 100)));
        assert!(!generator.issued_recently(issued[0], 99));
        let next = generator.clone().next_identity();
        assert!(!generator.issued_recently(next, 1 << 20));
    }

    #[test]
    fn different_keys_give_different_sequences() {
        let mut a = IdentityGenerator::new((1, 2), 0);
        let mut b = IdentityGenerator::new((1, 3), 0);
        let same = (0..64)
            .filter(|_| a.next_identity() == b.next_identity())
            .count();
        assert!(same < 4, "{same} of 64 identities coincide across keys");
    }

    #[test]
    fn consecutive_identities_are_not_consecutive_numbers() {
        let mut generator = IdentityGenerator::new((11, 13), 0);
        let first = generator.next_identity().to_u32();
        let second = generator.next_identity().to_u32();
        assert_ne!(second.wrapping_sub(first), 1);
    }
}
