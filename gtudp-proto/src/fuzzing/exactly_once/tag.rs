//! The tag at the start of every payload A and B send: who sent it to
//! whom, and which message, so the oracle can tell a payload's origin.

use bytes::Bytes;

/// The first byte of a tagged payload.
const TAG_MARK: u8 = 0xe7;
/// Length of the tag at the start of every payload A and B send.
pub(super) const TAG_LEN: usize = 9;

/// A payload whose first bytes say who sent it to whom, and which message.
pub(super) fn tagged_payload(sender: usize, to: usize, seq: u32, filler: usize) -> Bytes {
    let mut payload = Vec::with_capacity(TAG_LEN + filler);
    payload.push(TAG_MARK);
    payload.push(sender as u8);
    payload.push(to as u8);
    payload.extend_from_slice(&seq.to_le_bytes());
    payload.push(filler as u8);
    payload.push(TAG_MARK ^ (sender as u8) ^ (seq as u8));
    payload.extend((0..filler).map(|i| (seq as u8).wrapping_add(i as u8)));
    Bytes::from(payload)
}

/// The tag of a payload: (sender, destination, sequence number).
pub(super) fn parse_tag(payload: &[u8]) -> Option<(usize, usize, u32)> {
    if payload.len() < TAG_LEN || payload[0] != TAG_MARK {
        return None;
    }
    let seq = u32::from_le_bytes([payload[3], payload[4], payload[5], payload[6]]);
    Some((usize::from(payload[1]), usize::from(payload[2]), seq))
}
