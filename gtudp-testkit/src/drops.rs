//! What a socket may drop in a short exchange with one peer on a busy
//! machine: the tests of both adapters check the same rule.

use gtudp_proto::{DropCounts, EndpointStats};

/// Asserts that `ours` (the endpoint under test) dropped nothing but what
/// its exchanges with the one peer `theirs` explain: the peer's validation
/// probe (a RECV naming a token, answered with ACK like any unknown RECV),
/// and, on a busy machine, a RECV or probe the peer resent, or sent for a
/// copy of a DATA we resent, after the exchange ended; and the ACKs of
/// RECVs we sent again (one resent when its ACK was slow, or one answering
/// a DATA resent after its exchange ended), at most one each.
pub fn assert_only_explained_drops(ours: &EndpointStats, theirs: &EndpointStats) {
    let dropped = ours.dropped;
    assert!(
        (1..=theirs.validation_probes
            + theirs.recv_retransmissions
            + theirs.duplicates_suppressed
            + theirs.recv_copies_sent)
            .contains(&dropped.recv_unknown),
        "{} unknown RECVs; the peer sent {} probes, resent {} RECVs, answered {} copies, \
         sent {} RECVs twice",
        dropped.recv_unknown,
        theirs.validation_probes,
        theirs.recv_retransmissions,
        theirs.duplicates_suppressed,
        theirs.recv_copies_sent
    );
    assert!(
        dropped.ack_unknown <= ours.recv_retransmissions + ours.duplicates_suppressed,
        "{} ACKs for no exchange, {} RECVs resent, {} copies answered",
        dropped.ack_unknown,
        ours.recv_retransmissions,
        ours.duplicates_suppressed
    );
    assert_eq!(
        dropped,
        DropCounts {
            recv_unknown: dropped.recv_unknown,
            ack_unknown: dropped.ack_unknown,
            ..Default::default()
        }
    );
}
