//! A hint for a batch of received datagrams: read, before any of them is
//! handled, the memory of identities they will read.
//!
//! A long stream from one sender keeps more identities than the cache
//! holds (a million at 500,000 messages a second), and an identity's
//! bucket is a random place in that memory: each DATA's recall, and each
//! ACK's insertion, is a cache miss. Reading those buckets for a whole
//! batch first issues the batch's misses together, so they overlap, and
//! handling finds them in the cache. Nothing is changed: every read here
//! is one the handling makes anyway.
//!
//! Only a memory larger than a core's cache is read ahead
//! ([`READ_AHEAD_FROM`]): a smaller one is found in the cache anyway, and
//! reading ahead would only add its own instructions. And only runs of
//! datagrams from one sender are. A sender's
//! memory is looked up once for its run; a datagram from a sender unlike
//! the one before it (a server's batch from many peers) would need a
//! look-up of its own, as costly as the miss it saves, so it is left to
//! its handling.

use std::net::SocketAddr;

use super::Endpoint;
use crate::remembered::Warmer;
use crate::wire::Packet;

/// The size of the memory of identities from which a batch's identities
/// are read ahead: about what a core's second-level cache holds (2 MiB on
/// current server cores). Below it, the memory stays in the cache.
///
/// The simulator and the fuzz targets read ahead from the first byte, so
/// that their runs, whose memories stay small, exercise it.
const READ_AHEAD_FROM: usize = if cfg!(any(feature = "sim", feature = "fuzzing")) {
    1
} else {
    2 << 20
};

/// The sender of the batch's previous datagram, and, once a second
/// datagram came from it, its memory.
struct Run<'a> {
    source: SocketAddr,
    token: Option<u64>,
    /// Looked up (`Some`) from the run's second datagram on; `Some(None)`
    /// when nothing is remembered for the sender.
    memory: Option<Option<Warmer<'a>>>,
}

impl Endpoint {
    /// A hint for a batch of received datagrams: reads, without changing
    /// anything, where the endpoint remembers the identities they name
    /// (the memory that a long stream leaves outside the cache), for each
    /// run of datagrams from one sender. Given a batch before any of its
    /// datagrams is handled, it lets the batch's cache misses overlap
    /// instead of each stalling its own datagram. Handling is the same with
    /// or without it; both adapters give it each batch they read.
    ///
    /// ```
    /// use std::time::Instant;
    /// use gtudp_proto::{Config, Endpoint};
    ///
    /// let mut endpoint = Endpoint::new(Config::default(), 7).unwrap();
    /// let from = "127.0.0.1:9".parse().unwrap();
    /// let batch: [&[u8]; 2] = [b"first", b"second"]; // as a batched receive fills it
    /// endpoint.prefetch(batch.iter().map(|datagram| (from, *datagram)));
    /// for datagram in batch {
    ///     endpoint.handle_datagram_slice(Instant::now(), from, datagram);
    /// }
    /// assert_eq!(endpoint.stats().invalid.total(), 2); // not gtUDP packets
    /// ```
    pub fn prefetch<'a>(&self, datagrams: impl IntoIterator<Item = (SocketAddr, &'a [u8])>) {
        if self.remembered.bytes() < READ_AHEAD_FROM {
            return;
        }
        let mut run: Option<Run<'_>> = None;
        for (source, datagram) in datagrams {
            let Ok(packet) = self.config.framing.parse(datagram) else {
                continue;
            };
            let token = self.config.framing.sender_token(datagram);
            let memory = match &mut run {
                Some(run) if run.source == source && run.token == token => {
                    *run.memory.get_or_insert_with(|| {
                        let kept_under = self.key_of(token, &crate::canonical_addr(source));
                        self.remembered.warmer(&kept_under)
                    })
                }
                _ => {
                    run = Some(Run {
                        source,
                        token,
                        memory: None,
                    });
                    None
                }
            };
            let Some(memory) = memory else {
                continue;
            };
            match packet {
                // Its recall reads the newest generation, the filter and
                // the older generations the filter names.
                Packet::Data { identity, .. } => memory.warm(identity),
                // Its exchange ends: the identity is remembered in the
                // newest generation.
                Packet::Ack { identity } => {
                    memory.warm_newest(identity);
                }
                Packet::Recv { .. } => {}
            }
        }
    }
}
