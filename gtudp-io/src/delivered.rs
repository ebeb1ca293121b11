//! What both adapters report about a message once it is delivered.

/// A confirmed delivery: the `Ok` of a guaranteed send's outcome in both
/// adapters (`gtudp-tokio`'s `Delivery`, `gtudp-mio`'s `PendingSend`), the
/// adapters' form of [`gtudp_proto::Event::Delivered`].
///
/// The common `delivery.await?` or `pending.wait()?` may ignore it; read
/// it to learn how the delivery went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Delivered {
    /// Whether the sender presumed the message lost and resent it before
    /// the confirmation came (msquic's "suspected lost"): early loss
    /// detection, a tail-loss probe or a retransmission timeout ordered it
    /// again. Either a copy was really lost and the resend recovered it,
    /// or the original was only late; the confirmation does not say which
    /// copy arrived. A resend answering the receiver's address-validation
    /// probe is no loss suspicion and leaves this `false`.
    pub suspected_lost: bool,
}

impl Delivered {
    /// A delivery, suspected lost on the way or not.
    pub fn new(suspected_lost: bool) -> Self {
        Self { suspected_lost }
    }
}
