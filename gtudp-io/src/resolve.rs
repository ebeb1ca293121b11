//! Targets named the way `std::net::UdpSocket` users name them.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use crate::DeliveryError;

/// The first address `target` resolves to (once; a `SocketAddr` resolves
/// to itself without a lookup), in the endpoint's canonical form
/// ([`gtudp_proto::canonical_addr`]).
pub fn resolve_std(target: impl ToSocketAddrs) -> Result<SocketAddr, DeliveryError> {
    first(target.to_socket_addrs())
}

/// The peer set by `connect`, or `NotConnected` when there is none.
pub fn connected_peer(peer: Option<SocketAddr>) -> io::Result<SocketAddr> {
    peer.ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "no peer: call connect first"))
}

/// The peer set by `connect` as a send's target, or
/// [`DeliveryError::Unresolved`] (`NotConnected`).
pub fn send_target(peer: Option<SocketAddr>) -> Result<SocketAddr, DeliveryError> {
    connected_peer(peer).map_err(|error| DeliveryError::Unresolved {
        kind: error.kind(),
        message: error.to_string(),
    })
}

/// The first address of a resolver's answer, or why there is none.
pub fn first(
    addrs: io::Result<impl Iterator<Item = SocketAddr>>,
) -> Result<SocketAddr, DeliveryError> {
    match addrs {
        Ok(mut addrs) => match addrs.next() {
            Some(addr) => Ok(gtudp_proto::canonical_addr(addr)),
            None => Err(DeliveryError::Unresolved {
                kind: io::ErrorKind::InvalidInput,
                message: "the target resolved to no address".to_owned(),
            }),
        },
        Err(error) => Err(DeliveryError::Unresolved {
            kind: error.kind(),
            message: error.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn targets_resolve_once_to_the_canonical_form() {
        let plain: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(resolve_std(plain), Ok(plain));
        assert_eq!(resolve_std("[::ffff:127.0.0.1]:9"), Ok(plain));
        assert_eq!(resolve_std(("127.0.0.1", 9)), Ok(plain));
        assert!(matches!(
            resolve_std("not an address"),
            Err(DeliveryError::Unresolved { .. })
        ));
    }
}
