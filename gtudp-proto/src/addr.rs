//! The one form a peer's address takes inside the endpoint.
//!
//! A dual-stack socket (bound to `[::]`) sees an IPv4 peer as the
//! IPv4-mapped IPv6 address `[::ffff:a.b.c.d]:p`, while the application
//! may name the same peer `a.b.c.d:p`. Both are one peer: the endpoint
//! turns every address it is given into [`canonical_addr`]'s form at each
//! entry point, so a RECV from `[::ffff:127.0.0.1]:p` confirms a message
//! sent to `127.0.0.1:p`, and the addresses in events and statistics use
//! that form too.

use std::net::SocketAddr;

/// `addr` in the endpoint's canonical form: an IPv4-mapped IPv6 address
/// (`[::ffff:a.b.c.d]:p`) becomes the plain IPv4 address `a.b.c.d:p`;
/// every other address is returned unchanged.
///
/// Adapters sending from an IPv6 socket map a plain IPv4 destination back
/// to its IPv4-mapped form for the system call.
///
/// ```
/// use std::net::SocketAddr;
/// use gtudp_proto::canonical_addr;
///
/// let mapped: SocketAddr = "[::ffff:127.0.0.1]:4000".parse().unwrap();
/// let plain: SocketAddr = "127.0.0.1:4000".parse().unwrap();
/// assert_eq!(canonical_addr(mapped), plain);
/// assert_eq!(canonical_addr(plain), plain);
/// ```
pub fn canonical_addr(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_mapped_addresses_change() {
        let cases = [
            ("[::ffff:10.1.2.3]:9", "10.1.2.3:9"),
            ("10.1.2.3:9", "10.1.2.3:9"),
            ("[::1]:9", "[::1]:9"),
            // IPv4-compatible (deprecated) addresses are not IPv4 peers.
            ("[::10.1.2.3]:9", "[::10.1.2.3]:9"),
            ("[fe80::1%3]:9", "[fe80::1%3]:9"),
        ];
        for (input, expected) in cases {
            let input: SocketAddr = input.parse().unwrap();
            let expected: SocketAddr = expected.parse().unwrap();
            assert_eq!(canonical_addr(input), expected, "{input}");
        }
    }
}
