//! Endpoint events sorted the way both adapters hand them out.

use gtudp_proto::{Event, FailureReason, MessageId};

use crate::{Datagram, DatagramKind, Delivered, DeliveryError};

/// An endpoint [`Event`], sorted for an adapter: a message for the
/// application's receive queue, or the outcome of a guaranteed send for the
/// caller waiting on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Routed {
    /// A message (or a foreign datagram) for the application.
    Message(Datagram),
    /// The outcome of a guaranteed send.
    Outcome {
        /// The message.
        id: MessageId,
        /// Delivered, or why not.
        outcome: Result<Delivered, DeliveryError>,
        /// Whether the message was abandoned at the close's drain deadline
        /// ([`FailureReason::EndpointClosed`]), which a close summary counts.
        abandoned: bool,
    },
}

/// Sorts one endpoint event; see [`Routed`].
pub fn route(event: Event) -> Routed {
    match event {
        Event::Received { from, payload } => {
            Routed::Message(Datagram::new(payload, from, DatagramKind::Message))
        }
        Event::Foreign { from, payload } => {
            Routed::Message(Datagram::new(payload, from, DatagramKind::Foreign))
        }
        Event::Delivered {
            id, suspected_lost, ..
        } => Routed::Outcome {
            id,
            outcome: Ok(Delivered { suspected_lost }),
            abandoned: false,
        },
        Event::Failed { id, to, reason } => Routed::Outcome {
            id,
            outcome: Err(DeliveryError::Failed { to, reason }),
            abandoned: reason == FailureReason::EndpointClosed,
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::net::SocketAddr;

    use bytes::Bytes;

    use super::*;

    #[test]
    fn failures_at_the_close_deadline_are_abandoned() {
        let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let mut endpoint = gtudp_proto::Endpoint::new(gtudp_proto::Config::default(), 3).unwrap();
        let id = endpoint
            .send(std::time::Instant::now(), to, Bytes::from_static(b"x"))
            .unwrap();
        for (reason, abandoned) in [
            (FailureReason::EndpointClosed, true),
            (FailureReason::AttemptsExhausted, false),
        ] {
            assert_eq!(
                route(Event::Failed { id, to, reason }),
                Routed::Outcome {
                    id,
                    outcome: Err(DeliveryError::Failed { to, reason }),
                    abandoned,
                }
            );
        }
        let from = to;
        let payload = Bytes::from_static(b"raw");
        assert_eq!(
            route(Event::Foreign {
                from,
                payload: payload.clone()
            }),
            Routed::Message(Datagram::new(payload, from, DatagramKind::Foreign))
        );
    }

    #[test]
    fn deliveries_say_whether_the_message_was_suspected_lost() {
        let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let mut endpoint = gtudp_proto::Endpoint::new(gtudp_proto::Config::default(), 3).unwrap();
        let id = endpoint
            .send(std::time::Instant::now(), to, Bytes::from_static(b"x"))
            .unwrap();
        for suspected_lost in [false, true] {
            assert_eq!(
                route(Event::Delivered {
                    id,
                    to,
                    suspected_lost
                }),
                Routed::Outcome {
                    id,
                    outcome: Ok(Delivered::new(suspected_lost)),
                    abandoned: false,
                }
            );
        }
    }
}
