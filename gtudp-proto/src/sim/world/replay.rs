//! Late replays: copies of DATA that reach their receiver again at the edge
//! of their lifetime (see [`World::set_late_replays`](super::World::set_late_replays)).

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use crate::wire::Identity;

/// DATA kept for late replays, at most.
const RECENT_DATA_KEPT: usize = 4_096;

/// The last transmission of one DATA, kept for a late replay.
struct RecentData {
    datagram: Bytes,
    /// When it was last sent.
    sent: Duration,
    /// A replay of this transmission is scheduled: at most one is.
    replayed: bool,
}

/// The state of late replays: off by default.
#[derive(Default)]
pub(super) struct LateReplays {
    /// Whether late copies of DATA are replayed at the edge of their
    /// lifetime.
    on: bool,
    /// The last DATA each endpoint sent, per (from, to, identity): what a
    /// late replay repeats, and when. Bounded: the oldest are forgotten
    /// first.
    recent_data: BTreeMap<(SocketAddr, SocketAddr, Identity), RecentData>,
    recent_order: VecDeque<(SocketAddr, SocketAddr, Identity)>,
    /// Replays due, by delivery time: (at, from, to, datagram).
    replays: BTreeMap<(Duration, u64), (SocketAddr, SocketAddr, Bytes)>,
    replay_seq: u64,
}

impl LateReplays {
    /// Turns late replays on or off.
    pub(super) fn set_on(&mut self, on: bool) {
        self.on = on;
    }

    /// Whether late replays are on.
    pub(super) fn is_on(&self) -> bool {
        self.on
    }

    /// When the next replay is due.
    pub(super) fn next_time(&self) -> Option<Duration> {
        self.replays.keys().next().map(|&(at, _)| at)
    }

    /// Takes the next replay due: (from, to, datagram).
    pub(super) fn pop_first(&mut self) -> Option<(SocketAddr, SocketAddr, Bytes)> {
        self.replays.pop_first().map(|(_, replay)| replay)
    }

    /// Keeps the DATA just sent, at `at`, for a later replay.
    pub(super) fn keep(
        &mut self,
        at: Duration,
        from: SocketAddr,
        to: SocketAddr,
        identity: Identity,
        data: &Bytes,
    ) {
        let key = (from, to, identity);
        let recent = RecentData {
            datagram: data.clone(),
            sent: at,
            replayed: false,
        };
        if self.recent_data.insert(key, recent).is_none() {
            self.recent_order.push_back(key);
        }
        while self.recent_order.len() > RECENT_DATA_KEPT {
            if let Some(old) = self.recent_order.pop_front() {
                self.recent_data.remove(&old);
            }
        }
    }

    /// The ACK from `from` to `to` naming `identity` ended a RECV exchange
    /// at `now`, at a receiver whose datagrams live `lifetime`: a copy of
    /// the DATA's last transmission arrives again just inside its lifetime.
    pub(super) fn schedule(
        &mut self,
        now: Duration,
        lifetime: Duration,
        from: SocketAddr,
        to: SocketAddr,
        identity: Identity,
    ) {
        let Some(data) = self.recent_data.get_mut(&(from, to, identity)) else {
            return;
        };
        // Within the lifetime of the last transmission, not of this ACK: a
        // later copy would be one the network cannot deliver.
        let at = data.sent + lifetime.saturating_sub(Duration::from_millis(1));
        if at <= now || data.replayed {
            return;
        }
        data.replayed = true;
        self.replay_seq += 1;
        self.replays
            .insert((at, self.replay_seq), (from, to, data.datagram.clone()));
    }
}
