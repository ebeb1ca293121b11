//! Senders that restart on the same address: the case where a 32-bit
//! identity repeats while the receiver still remembers it.
//!
//! A restarted process draws its identities afresh, so a new message may
//! carry an identity the receiver remembers from the old process. The
//! receiver tells the two apart by a fingerprint of the payload; only a
//! repeat of the same identity *and* the same payload is taken for a
//! duplicate. [`RestartProbe`] streams messages with distinct payloads from
//! one address through a clean in-memory link, replacing the sender with a
//! fresh endpoint (a new seed) every `restart_every` messages, and counts
//! every message that was reported Delivered but never handed over.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::{Config, ConfigError, Endpoint, Event};

/// A run of senders restarting on one address; see the module docs.
#[derive(Clone, Debug)]
pub struct RestartProbe {
    /// Messages sent in all.
    pub messages: u64,
    /// Messages each sender process sends before it is replaced.
    pub restart_every: u64,
    /// Messages per virtual second (sets how many identities the receiver
    /// remembers: about `rate × 1.25 × datagram_lifetime`).
    pub rate: u64,
    /// Seeds the receiver and the successive senders.
    pub seed: u64,
}

/// What a [`RestartProbe`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RestartReport {
    /// Messages sent.
    pub messages: u64,
    /// Senders replaced.
    pub restarts: u64,
    /// Messages reported Delivered.
    pub delivered: u64,
    /// Messages handed to the receiving application.
    pub handed_over: u64,
    /// New messages whose identity the receiver still remembered from an
    /// earlier sender (told apart by their payload).
    pub identity_collisions: u64,
    /// Messages never handed over. The link is clean, so every message is
    /// Delivered: each of these would be a Delivered message the
    /// application never got, the failure this guards against.
    pub lost: u64,
    /// Payloads handed over more than once.
    pub duplicates: u64,
    /// Identities the receiver remembered at the end.
    pub remembered: usize,
}

impl RestartProbe {
    /// Runs the probe with the default configuration.
    pub fn run(&self) -> Result<RestartReport, ConfigError> {
        const BATCH: u64 = 100;
        let sender_addr: SocketAddr = ([10, 0, 0, 1], 4000).into();
        let receiver_addr: SocketAddr = ([10, 0, 0, 2], 5000).into();
        let config = Config::default();
        let mut receiver = Endpoint::new(config.clone(), u128::from(self.seed))?;
        let mut sender = Endpoint::new(config.clone(), u128::from(self.seed) << 64)?;
        let step = Duration::from_secs(1) * BATCH as u32 / self.rate.max(1) as u32;
        let mut now = Instant::now();
        let mut report = RestartReport::default();
        // Which sequence numbers were handed over, one bit each.
        let mut seen = vec![0u64; (self.messages as usize).div_ceil(64)];
        let mut buf = Vec::with_capacity(2048);
        let mut inbox: Vec<Bytes> = Vec::with_capacity(BATCH as usize);
        let mut sent_in_process = 0;
        let mut sequence = 0u64;
        while sequence < self.messages {
            if sent_in_process >= self.restart_every {
                report.restarts += 1;
                let seed = (u128::from(self.seed) << 64) | u128::from(report.restarts);
                sender = Endpoint::new(config.clone(), seed)?;
                sent_in_process = 0;
            }
            let batch = BATCH
                .min(self.messages - sequence)
                .min(self.restart_every - sent_in_process);
            let first = sequence;
            for _ in 0..batch {
                let payload = Bytes::copy_from_slice(&sequence.to_le_bytes());
                if sender.send(now, receiver_addr, payload).is_ok() {
                    report.messages += 1;
                }
                sequence += 1;
            }
            sent_in_process += batch;
            let mut delivered_in_batch = 0;
            for _ in 0..16 {
                while let Some(t) = sender.poll_transmit(now, 1, &mut buf) {
                    inbox.push(Bytes::copy_from_slice(&buf[..t.size]));
                }
                let moved = inbox.len();
                for datagram in inbox.drain(..) {
                    receiver.handle_datagram(now, sender_addr, datagram);
                }
                while let Some(t) = receiver.poll_transmit(now, 1, &mut buf) {
                    inbox.push(Bytes::copy_from_slice(&buf[..t.size]));
                }
                let moved = moved + inbox.len();
                for datagram in inbox.drain(..) {
                    sender.handle_datagram(now, receiver_addr, datagram);
                }
                while let Some(event) = receiver.poll_event() {
                    if let Event::Received { payload, .. } = event {
                        let Ok(bytes) = <[u8; 8]>::try_from(&payload[..]) else {
                            continue;
                        };
                        let seq = u64::from_le_bytes(bytes) as usize;
                        let Some(word) = seen.get_mut(seq / 64) else {
                            continue;
                        };
                        if *word & (1 << (seq % 64)) != 0 {
                            report.duplicates += 1;
                        }
                        *word |= 1 << (seq % 64);
                        report.handed_over += 1;
                    }
                }
                while let Some(event) = sender.poll_event() {
                    if matches!(event, Event::Delivered { .. }) {
                        delivered_in_batch += 1;
                    }
                }
                if moved == 0 {
                    break;
                }
            }
            report.delivered += delivered_in_batch;
            // A clean link delivers every message of the batch; count those
            // reported Delivered but never handed over.
            for seq in first..first + batch {
                let handed = seen
                    .get(seq as usize / 64)
                    .is_some_and(|word| word & (1 << (seq % 64)) != 0);
                if !handed {
                    report.lost += 1;
                }
            }
            now += step;
            sender.handle_timeout(now);
            receiver.handle_timeout(now);
        }
        report.identity_collisions = receiver.stats().identity_collisions;
        report.remembered = receiver.table_sizes().remembered;
        Ok(report)
    }
}
