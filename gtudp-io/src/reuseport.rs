//! Sharding one UDP port over several sockets (`SO_REUSEPORT`), each
//! driving its own endpoint, with the kernel steering each peer to the
//! shard computed by [`shard_of`].
//!
//! # How a peer finds its shard
//!
//! [`bind_group`] opens `n` sockets with `SO_REUSEPORT` on one address and
//! attaches a classic BPF program to the group
//! (`SO_ATTACH_REUSEPORT_CBPF`) that picks the socket for each incoming
//! datagram from its **source address and port** alone, with the same
//! function as [`shard_of`]. So the shard that receives a peer's datagrams
//! is known in user space before the peer has sent anything: a send to a
//! peer never seen goes out through `shard_of(peer)`, and the peer's RECV
//! comes back to that same shard, whose endpoint is waiting for it. Without
//! the program the kernel would pick by a hash of the 4-tuple under a
//! secret seed, which no user-space code can reproduce, and a send to a new
//! peer would have its RECV land in a shard that never sent the message.
//!
//! All shards share the local address and port, so whichever socket sends,
//! the peer sees one server.
//!
//! # What the steering assumes, and what breaks it
//!
//! Exactly-once holds per endpoint: a shard remembers the identities it
//! has handed over for the peers it owns. As long as a peer's datagrams
//! keep arriving in one shard, nothing is shared and nothing can be
//! duplicated. That holds while:
//!
//! - **The socket set does not change.** The program returns an index into
//!   the kernel's array of the group's sockets. Closing one shard's socket
//!   moves the last socket into its slot, and another process (same user)
//!   binding the port with `SO_REUSEPORT` joins the group: either way
//!   peers are re-steered to shards that do not hold their history, so a
//!   late retransmission of a message already handed over could be handed
//!   over again, and a RECV could reach a shard that never sent the
//!   message (that send then fails after its attempts). Close all shards
//!   together, and do not let other processes bind the port.
//! - **The sockets stay unconnected.** When a socket of a reuseport group
//!   is `connect`ed, Linux prefers it for its peer over the program's
//!   choice. The adapters never connect their sockets (their `connect` is
//!   a logical default peer).
//! - **The peer's address does not change.** A peer behind a NAT that
//!   rebinds its port becomes a new peer in (possibly) another shard,
//!   exactly as it would be a new peer for an unsharded socket.
//! - **The datagram's header is one the program reads.** IPv4, and IPv6
//!   whose next header is UDP. An IPv6 datagram with extension headers
//!   falls back to the kernel's own hash, which may pick another shard.
//!
//! ICMP error reports are not steered by the program: the kernel picks the
//! socket for them by its own hash (it runs no program without the
//! datagram), so a port-unreachable report for a peer often lands in a
//! shard that never sent to it. A socket told its place in the group
//! ([`BatchIo::set_shard`](crate::BatchIo::set_shard)) sets such reports
//! aside, and the adapters hand them to the owner, so a send to a closed
//! port still fails at once.
//!
//! Steering is available on Linux (kernel 4.5 or later). Elsewhere
//! [`bind_group`] fails with [`BindError::ShardingUnsupported`].

use std::net::SocketAddr;

use crate::BindError;

/// The most shards of one group: the kernel's reuseport group holds at most
/// `u16::MAX` sockets.
pub const MAX_SHARDS: usize = u16::MAX as usize;

/// The shard (in `0..n`) that receives `peer`'s datagrams in a group made
/// by [`bind_group`], and so the one that must send to `peer`.
///
/// A multiplicative hash of the source address (its 32-bit words XORed)
/// XORed with the source port, reduced modulo `n`; IPv4-mapped IPv6
/// addresses count as the IPv4 address (a dual-stack socket receives them
/// as IPv4 datagrams). `n == 0` gives 0.
pub fn shard_of(peer: SocketAddr, n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    let peer = gtudp_proto::canonical_addr(peer);
    let words = match peer.ip() {
        std::net::IpAddr::V4(ip) => u32::from(ip),
        std::net::IpAddr::V6(ip) => {
            let octets = ip.octets();
            octets
                .chunks_exact(4)
                .map(|word| u32::from_be_bytes([word[0], word[1], word[2], word[3]]))
                .fold(0, |acc, word| acc ^ word)
        }
    };
    let mixed = (words ^ u32::from(peer.port())).wrapping_mul(GOLDEN) >> 16;
    // `n` is at most `MAX_SHARDS` in a group; larger only in a direct call.
    (mixed as usize) % n
}

/// The 32-bit golden-ratio multiplier of [`shard_of`]'s hash.
const GOLDEN: u32 = 0x9E37_79B1;

/// Opens `n` UDP sockets bound to `addr` with `SO_REUSEPORT` and the
/// steering program of the module documentation, in blocking mode (the
/// adapters make them non-blocking). Port 0 picks one port for all.
///
/// Errors: [`BindError::ZeroCapacity`] (`shards`) when `n == 0`,
/// [`BindError::TooLarge`] above [`MAX_SHARDS`],
/// [`BindError::ShardingUnsupported`] when the platform has no
/// `SO_REUSEPORT` or cannot steer by program, [`BindError::Io`] when the
/// address cannot be bound (in use by a socket without `SO_REUSEPORT`, ...).
pub fn bind_group(addr: SocketAddr, n: usize) -> Result<Vec<std::net::UdpSocket>, BindError> {
    if n == 0 {
        return Err(BindError::ZeroCapacity { field: "shards" });
    }
    if n > MAX_SHARDS {
        return Err(BindError::TooLarge {
            field: "shards",
            value: n,
            max: MAX_SHARDS,
        });
    }
    imp::bind_group(addr, n)
}

#[cfg(not(all(
    target_os = "linux",
    not(any(target_arch = "sparc64", target_arch = "sparc"))
)))]
mod imp {
    use super::*;

    pub(super) fn bind_group(
        _addr: SocketAddr,
        _n: usize,
    ) -> Result<Vec<std::net::UdpSocket>, BindError> {
        Err(BindError::ShardingUnsupported {
            reason: "steering peers to shards needs SO_ATTACH_REUSEPORT_CBPF (Linux)".to_owned(),
        })
    }
}

#[cfg(all(
    target_os = "linux",
    not(any(target_arch = "sparc64", target_arch = "sparc"))
))]
mod imp {
    use std::os::fd::AsRawFd;

    use socket2::{Domain, Protocol, SockAddr, Socket, Type};

    use super::*;

    /// `SO_ATTACH_REUSEPORT_CBPF` (asm-generic/socket.h; the `libc` crate
    /// defines it for Android only).
    const SO_ATTACH_REUSEPORT_CBPF: libc::c_int = 51;

    pub(super) fn bind_group(
        addr: SocketAddr,
        n: usize,
    ) -> Result<Vec<std::net::UdpSocket>, BindError> {
        let mut sockets = Vec::with_capacity(n);
        let mut addr = addr;
        for index in 0..n {
            let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
            socket
                .set_reuse_port(true)
                .map_err(|error| unsupported("SO_REUSEPORT", &error))?;
            if index == 0 {
                // Before binding: the group is created with its program, so
                // no datagram is steered by the kernel's hash.
                attach_program(&socket, n).map_err(|error| {
                    unsupported("SO_ATTACH_REUSEPORT_CBPF (Linux 4.5 or later)", &error)
                })?;
            }
            socket.bind(&SockAddr::from(addr))?;
            if index == 0 {
                // Port 0: the others join the port the first one got.
                addr = socket
                    .local_addr()?
                    .as_socket()
                    .ok_or_else(|| std::io::Error::other("bound socket has no IP address"))?;
            }
            sockets.push(std::net::UdpSocket::from(socket));
        }
        Ok(sockets)
    }

    fn unsupported(what: &str, error: &std::io::Error) -> BindError {
        BindError::ShardingUnsupported {
            reason: format!("{what} refused: {error}"),
        }
    }

    /// The classic BPF program that returns [`shard_of`] of each datagram's
    /// source (or an index out of range, which makes the kernel fall back
    /// to its hash, for what it cannot parse).
    fn program(n: usize) -> Vec<libc::sock_filter> {
        use libc::{
            BPF_ABS, BPF_ALU, BPF_B, BPF_H, BPF_IND, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_LDX,
            BPF_MEM, BPF_MOD, BPF_MSH, BPF_MUL, BPF_RET, BPF_RSH, BPF_ST, BPF_W, BPF_X, BPF_XOR,
            SKF_NET_OFF,
        };
        // Offsets from the network header (the data pointer is past the
        // UDP header when the program runs).
        let net = |offset: i32| (SKF_NET_OFF + offset) as u32;
        let stmt = |code: u32, k: u32| libc::sock_filter {
            code: code as u16,
            jt: 0,
            jf: 0,
            k,
        };
        let jeq = |k: u32, jt: u8, jf: u8| libc::sock_filter {
            code: (BPF_JMP | BPF_JEQ | BPF_K) as u16,
            jt,
            jf,
            k,
        };
        let xor_word = |offset: i32| {
            [
                stmt(BPF_LD | BPF_W | BPF_ABS, net(offset)),
                stmt(BPF_LDX | BPF_MEM, 0),
                stmt(BPF_ALU | BPF_XOR | BPF_X, 0),
                stmt(BPF_ST, 0),
            ]
        };
        let mut ipv6 = vec![
            // 0: next header must be UDP.
            stmt(BPF_LD | BPF_B | BPF_ABS, net(6)),
            jeq(17, 1, 0),
            stmt(BPF_RET | BPF_K, u32::MAX),
            // M[0] = source port.
            stmt(BPF_LD | BPF_H | BPF_ABS, net(40)),
            stmt(BPF_ST, 0),
        ];
        for offset in [8, 12, 16, 20] {
            ipv6.extend(xor_word(offset));
        }
        let ipv4 = [
            // X = IHL * 4; A = source port; M[0] = A.
            stmt(BPF_LDX | BPF_B | BPF_MSH, net(0)),
            stmt(BPF_LD | BPF_H | BPF_IND, net(0)),
            stmt(BPF_ST, 0),
        ]
        .into_iter()
        .chain(xor_word(12))
        .collect::<Vec<_>>();
        let mix = [
            // A = M[0] * GOLDEN >> 16 % n.
            stmt(BPF_LD | BPF_MEM, 0),
            stmt(BPF_ALU | BPF_MUL | BPF_K, GOLDEN),
            stmt(BPF_ALU | BPF_RSH | BPF_K, 16),
            stmt(BPF_ALU | BPF_MOD | BPF_K, n as u32),
            stmt(BPF_RET | libc::BPF_A, 0),
        ];
        let mut program = vec![
            // The IP version: 4 or 6.
            stmt(BPF_LD | BPF_B | BPF_ABS, net(0)),
            stmt(BPF_ALU | BPF_RSH | BPF_K, 4),
        ];
        // if version == 4 goto ipv4 else (if 6 goto ipv6 else fall back)
        // (the IPv4 part starts after: the jump on 6, the fallback return,
        // the IPv6 part and its jump to the mix).
        program.push(jeq(4, (3 + ipv6.len()) as u8, 0));
        program.push(jeq(6, 1, 0));
        program.push(stmt(BPF_RET | BPF_K, u32::MAX));
        program.extend(ipv6);
        // After the IPv6 words: jump over the IPv4 part to the mix.
        program.push(stmt(BPF_JMP | libc::BPF_JA, ipv4.len() as u32));
        program.extend(ipv4);
        program.extend(mix);
        program
    }

    fn attach_program(socket: &Socket, n: usize) -> std::io::Result<()> {
        let mut filter = program(n);
        let fprog = libc::sock_fprog {
            len: u16::try_from(filter.len()).map_err(std::io::Error::other)?,
            filter: filter.as_mut_ptr(),
        };
        // SAFETY: the socket's descriptor is open for the call; the option
        // value points to a live `sock_fprog` whose size is passed, and its
        // `filter` to `len` instructions that outlive the call (the kernel
        // copies them).
        let result = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_ATTACH_REUSEPORT_CBPF,
                (&fprog as *const libc::sock_fprog).cast(),
                std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
            )
        };
        if result == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::net::UdpSocket;
    use std::time::Duration;

    #[test]
    fn zero_or_too_many_shards_are_typed_errors() {
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        assert!(matches!(
            bind_group(addr, 0),
            Err(BindError::ZeroCapacity { field: "shards" })
        ));
        assert!(matches!(
            bind_group(addr, MAX_SHARDS + 1),
            Err(BindError::TooLarge {
                field: "shards",
                ..
            })
        ));
    }

    #[test]
    fn shard_of_spreads_ports_and_maps_ipv4_mapped_addresses() {
        let mut counts = [0usize; 4];
        for port in 40_000..41_000u16 {
            counts[shard_of(SocketAddr::from(([127, 0, 0, 1], port)), 4)] += 1;
        }
        assert!(counts.iter().all(|&count| count > 150), "{counts:?}");
        let v4: SocketAddr = "10.1.2.3:5000".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:10.1.2.3]:5000".parse().unwrap();
        assert_eq!(shard_of(v4, 7), shard_of(mapped, 7));
        assert_eq!(shard_of(v4, 0), 0);
    }

    /// Every datagram lands in the shard `shard_of` names for its source:
    /// the kernel runs the program, and the program computes `shard_of`.
    /// `local`: the group's address; `clients`: the address clients bind
    /// and send to (with the group's port).
    fn steers_like_shard_of(local: &str, clients: &str, n: usize) {
        let Ok(addr) = local.parse::<SocketAddr>() else {
            panic!("bad address {local}");
        };
        let shards = bind_group(addr, n).unwrap();
        let port = shards[0].local_addr().unwrap().port();
        let client_ip: std::net::IpAddr = clients.parse().unwrap();
        let server = SocketAddr::new(client_ip, port);
        for shard in &shards {
            assert_eq!(shard.local_addr().unwrap().port(), port);
            shard
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
        }
        let clients: Vec<UdpSocket> = (0..64)
            .map(|_| UdpSocket::bind(SocketAddr::new(client_ip, 0)).unwrap())
            .collect();
        let mut expected = vec![0usize; n];
        for client in &clients {
            client.send_to(b"x", server).unwrap();
            expected[shard_of(client.local_addr().unwrap(), n)] += 1;
        }
        let mut buf = [0u8; 16];
        for (index, shard) in shards.iter().enumerate() {
            for _ in 0..expected[index] {
                let (_, from) = shard.recv_from(&mut buf).unwrap();
                assert_eq!(shard_of(from, n), index, "{from} arrived in shard {index}");
            }
            shard.set_nonblocking(true).unwrap();
            assert!(shard.recv_from(&mut buf).is_err(), "shard {index} got more");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_kernel_steers_ipv4_peers_to_shard_of() {
        steers_like_shard_of("127.0.0.1:0", "127.0.0.1", 4);
        steers_like_shard_of("127.0.0.1:0", "127.0.0.1", 3);
        steers_like_shard_of("0.0.0.0:0", "127.0.0.1", 2);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_kernel_steers_ipv6_peers_to_shard_of() {
        if UdpSocket::bind("[::1]:0").is_err() {
            eprintln!("no IPv6 loopback: skipped");
            return;
        }
        steers_like_shard_of("[::1]:0", "::1", 4);
        // A dual-stack socket receives IPv4 peers as IPv4 datagrams.
        steers_like_shard_of("[::]:0", "127.0.0.1", 4);
    }
}
