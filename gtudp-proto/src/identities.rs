//! How the endpoint chooses message identities.
//!
//! An identity must be unpredictable to an off-path attacker (or a forged RECV
//! could confirm a message that never arrived) and must not repeat while a
//! peer may still remember it (or the peer would take a new message for a
//! duplicate and drop it). Random draws give the first but not the second: by
//! the birthday bound, two of 100,000 random 32-bit identities collide more
//! often than not.
//!
//! So identities are a keyed pseudo-random *permutation* of a counter: a
//! six-round Feistel network over the two 16-bit halves, with SipHash-1-3
//! keyed by the endpoint's seed as its round function. A permutation never
//! maps two counter values to the same identity, so identities repeat only
//! after 2^32 messages; without the key, the next identity cannot be told from
//! the ones seen.

use crate::wire::Identity;

const ROUNDS: u32 = 6;

/// Hands out identities: a keyed permutation of a 32-bit counter.
#[derive(Clone, Debug)]
pub(crate) struct IdentityGenerator {
    /// SipHash's state after the key is set: the round function's key.
    sip_state: [u64; 4],
    counter: u32,
}

impl IdentityGenerator {
    pub(crate) fn new(key: (u64, u64), first_counter: u32) -> Self {
        Self {
            sip_state: sip_state(key),
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

    fn unpermute(&self, value: u32) -> u32 {
        let mut left = (value >> 16) as u16;
        let mut right = value as u16;
        for round in (0..ROUNDS).rev() {
            let earlier_right = left;
            left = right ^ self.round_function(round, earlier_right);
            right = earlier_right;
        }
        (u32::from(left) << 16) | u32::from(right)
    }

    fn permute(&self, value: u32) -> u32 {
        let mut left = (value >> 16) as u16;
        let mut right = value as u16;
        for round in 0..ROUNDS {
            let mixed = left ^ self.round_function(round, right);
            left = right;
            right = mixed;
        }
        (u32::from(left) << 16) | u32::from(right)
    }

    fn round_function(&self, round: u32, half: u16) -> u16 {
        sip13(self.sip_state, u64::from((round << 16) | u32::from(half))) as u16
    }
}

/// SipHash-1-3 (the variant the standard library's `HashMap` uses) of one
/// 8-byte word, from the state its key sets up: the keyed round function,
/// at a third of SipHash-2-4's cost through `Hasher`.
fn sip13(state: [u64; 4], word: u64) -> u64 {
    let [mut v0, mut v1, mut v2, mut v3] = state;
    let round = |v0: &mut u64, v1: &mut u64, v2: &mut u64, v3: &mut u64| {
        *v0 = v0.wrapping_add(*v1);
        *v1 = v1.rotate_left(13) ^ *v0;
        *v0 = v0.rotate_left(32);
        *v2 = v2.wrapping_add(*v3);
        *v3 = v3.rotate_left(16) ^ *v2;
        *v0 = v0.wrapping_add(*v3);
        *v3 = v3.rotate_left(21) ^ *v0;
        *v2 = v2.wrapping_add(*v1);
        *v1 = v1.rotate_left(17) ^ *v2;
        *v2 = v2.rotate_left(32);
    };
    v3 ^= word;
    round(&mut v0, &mut v1, &mut v2, &mut v3);
    v0 ^= word;
    // The final block: the message length (8) in the top byte.
    let last = 8u64 << 56;
    v3 ^= last;
    round(&mut v0, &mut v1, &mut v2, &mut v3);
    v0 ^= last;
    v2 ^= 0xff;
    for _ in 0..3 {
        round(&mut v0, &mut v1, &mut v2, &mut v3);
    }
    v0 ^ v1 ^ v2 ^ v3
}

/// SipHash's initial state for `key`.
fn sip_state((k0, k1): (u64, u64)) -> [u64; 4] {
    [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use hashbrown::HashSet;

    #[test]
    fn the_round_function_is_siphash_1_3() {
        // The standard library's `DefaultHasher` is SipHash-1-3 with a zero
        // key; writing one u64 is one 8-byte message.
        use core::hash::Hasher;
        for word in [0u64, 1, 0x0123_4567_89ab_cdef, u64::MAX] {
            let mut reference = std::collections::hash_map::DefaultHasher::new();
            reference.write_u64(word);
            assert_eq!(sip13(sip_state((0, 0)), word), reference.finish());
        }
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
