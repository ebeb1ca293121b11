//! A NAT in front of a simulated endpoint: its datagrams leave from a
//! public address, and the NAT moves the flow to a new public port every so
//! often (a rebinding), closing the old one.
//!
//! The mapping is a function of virtual time, so a run stays deterministic
//! and a datagram's public source is fixed when it leaves its endpoint (the
//! NAT sits next to it): a copy delayed in the network keeps the port it
//! left under, as a real one does. A datagram that reaches a public port
//! after the NAT closed it is dropped. Filtering is endpoint-independent:
//! anyone may reach the current port.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::rng::Rng;

/// How the NAT in front of one endpoint maps it (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatProfile {
    /// The NAT's public IP address.
    pub public_ip: IpAddr,
    /// The public port until the first rebinding; each rebinding takes the
    /// next one.
    pub first_port: u16,
    /// Virtual time between two rebindings.
    pub rebind_every: Duration,
    /// When the first rebinding happens.
    pub first_rebind: Duration,
    /// From then on the NAT keeps the mapping it has (a path that settled);
    /// `None`: it rebinds for ever.
    pub settled_at: Option<Duration>,
    /// Each rebinding also changes the public IP address (a phone moving
    /// between networks, not a port change): the `n`th rebinding's address
    /// is `public_ip` with `n` added to its last octet, modulo 256.
    pub changes_ip: bool,
}

impl NatProfile {
    /// A NAT at `public_ip` whose first port and rebinding times are drawn
    /// from `rng`: a new port every `rebind_every`.
    pub fn drawn(rng: &mut Rng, public_ip: IpAddr, rebind_every: Duration) -> Self {
        Self {
            public_ip,
            first_port: rng.range(20_000, 40_000) as u16,
            rebind_every: rebind_every.max(Duration::from_millis(1)),
            first_rebind: rng.duration(rebind_every),
            settled_at: None,
            changes_ip: false,
        }
    }

    /// The number of rebindings by virtual time `at`.
    pub fn rebindings_by(&self, at: Duration) -> u64 {
        let at = self.settled_at.map_or(at, |settled| at.min(settled));
        match at.checked_sub(self.first_rebind) {
            None => 0,
            Some(since) => {
                let every = self.rebind_every.as_nanos().max(1);
                1 + (since.as_nanos() / every) as u64
            }
        }
    }

    /// The public address the endpoint's datagrams leave from at `at`, and
    /// the only one that reaches it then.
    pub fn public_at(&self, at: Duration) -> SocketAddr {
        // Ports cycle through 60,000 of them, never 0.
        let rebindings = self.rebindings_by(at);
        let offset = (u64::from(self.first_port) - 1 + rebindings) % 60_000;
        let ip = match (self.changes_ip, self.public_ip) {
            (false, ip) => ip,
            (true, IpAddr::V4(v4)) => {
                let mut octets = v4.octets();
                octets[3] = octets[3].wrapping_add(rebindings as u8);
                IpAddr::from(octets)
            }
            (true, IpAddr::V6(v6)) => {
                let mut octets = v6.octets();
                octets[15] = octets[15].wrapping_add(rebindings as u8);
                IpAddr::from(octets)
            }
        };
        SocketAddr::new(ip, 1 + offset as u16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_changes_every_period_until_the_nat_settles() {
        let mut nat = NatProfile {
            public_ip: IpAddr::from([198, 51, 100, 1]),
            first_port: 30_000,
            rebind_every: Duration::from_millis(300),
            first_rebind: Duration::from_millis(100),
            settled_at: None,
            changes_ip: false,
        };
        let port = |nat: &NatProfile, ms| nat.public_at(Duration::from_millis(ms)).port();
        assert_eq!(port(&nat, 0), 30_000);
        assert_eq!(port(&nat, 99), 30_000);
        assert_eq!(port(&nat, 100), 30_001);
        assert_eq!(port(&nat, 399), 30_001);
        assert_eq!(port(&nat, 400), 30_002);
        nat.settled_at = Some(Duration::from_millis(500));
        assert_eq!(port(&nat, 10_000), 30_002);
    }
}
