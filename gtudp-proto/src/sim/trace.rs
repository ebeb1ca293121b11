//! A bounded trace of the last datagrams and events of a simulation, printed
//! when a check fails.
//!
//! Entries are small values formatted only when the trace is printed, so
//! tracing costs little on the runs that pass. Times are offsets from the
//! simulation's start, never real instants.

use core::fmt;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use super::network::Fate;
use super::tag::Tag;
use crate::event::{FailureReason, MessageId};
use crate::wire::{Identity, PacketKind};

/// What a datagram was, as far as the simulation's framing tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// A gtUDP packet.
    Gtudp(PacketKind, Identity),
    /// Not gtUDP.
    Other,
}

/// One line of a [`Trace`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceEntry {
    /// A datagram given to the network.
    Sent {
        /// Virtual time.
        at: Duration,
        /// Source.
        from: SocketAddr,
        /// Destination.
        to: SocketAddr,
        /// Length in bytes.
        len: usize,
        /// What it was.
        wire: Wire,
        /// What the network did with it.
        fate: Fate,
        /// Injected by the hostile source.
        hostile: bool,
    },
    /// A datagram handed to an endpoint.
    Arrived {
        /// Virtual time.
        at: Duration,
        /// Source.
        from: SocketAddr,
        /// Destination.
        to: SocketAddr,
        /// Length in bytes.
        len: usize,
        /// What it was.
        wire: Wire,
        /// The network corrupted it on the way.
        corrupted: bool,
    },
    /// A slow reader (see [`SlowReader`](super::SlowReader)) stopped or
    /// resumed reading its events.
    Reader {
        /// Virtual time.
        at: Duration,
        /// The endpoint.
        node: SocketAddr,
        /// Whether it reads events from now on.
        reading: bool,
        /// Whether its endpoint's receiving is paused from now on.
        paused: bool,
    },
    /// An application call.
    Send {
        /// Virtual time.
        at: Duration,
        /// The sending endpoint.
        node: SocketAddr,
        /// Destination.
        to: SocketAddr,
        /// The id given, or `None` if refused.
        id: Option<MessageId>,
        /// The payload's tag.
        tag: Tag,
    },
    /// A cancel call.
    Cancel {
        /// Virtual time.
        at: Duration,
        /// The endpoint.
        node: SocketAddr,
        /// The message.
        id: MessageId,
    },
    /// A close call.
    Close {
        /// Virtual time.
        at: Duration,
        /// The endpoint.
        node: SocketAddr,
    },
    /// An `Event::Received`.
    Received {
        /// Virtual time.
        at: Duration,
        /// The receiving endpoint.
        node: SocketAddr,
        /// The sender.
        from: SocketAddr,
        /// The payload's tag, if it carries one.
        tag: Option<Tag>,
    },
    /// An `Event::Delivered` or `Event::Failed`.
    Outcome {
        /// Virtual time.
        at: Duration,
        /// The sending endpoint.
        node: SocketAddr,
        /// The message.
        id: MessageId,
        /// `None` for Delivered.
        failure: Option<FailureReason>,
    },
    /// An `Event::Foreign`.
    Foreign {
        /// Virtual time.
        at: Duration,
        /// The receiving endpoint.
        node: SocketAddr,
        /// The sender.
        from: SocketAddr,
        /// Length in bytes.
        len: usize,
    },
    /// A phase of the run began.
    Phase {
        /// Virtual time.
        at: Duration,
        /// Its name.
        name: &'static str,
    },
}

/// The last entries of a run, in order.
#[derive(Clone, Debug)]
pub struct Trace {
    entries: VecDeque<TraceEntry>,
    capacity: usize,
    dropped: u64,
}

impl Trace {
    /// A trace keeping the last `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: VecDeque::with_capacity(capacity.min(1024)),
            capacity,
            dropped: 0,
        }
    }

    /// Appends an entry, forgetting the oldest when full.
    pub fn record(&mut self, entry: TraceEntry) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() == self.capacity {
            self.entries.pop_front();
            self.dropped += 1;
        }
        self.entries.push_back(entry);
    }

    /// The entries kept, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = &TraceEntry> + '_ {
        self.entries.iter()
    }
}

impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.dropped > 0 {
            writeln!(f, "  ... {} earlier entries", self.dropped)?;
        }
        for entry in &self.entries {
            writeln!(f, "  {entry}")?;
        }
        Ok(())
    }
}

struct At(Duration);

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>4}.{:06}s", self.0.as_secs(), self.0.subsec_micros())
    }
}

impl fmt::Display for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Wire::Gtudp(kind, identity) => write!(f, "{kind} {:08x}", identity.to_u32()),
            Wire::Other => f.write_str("not-gtudp"),
        }
    }
}

impl fmt::Display for TraceEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TraceEntry::Sent {
                at,
                from,
                to,
                len,
                wire,
                fate,
                hostile,
            } => {
                let who = if hostile { "inject" } else { "send  " };
                write!(f, "{} {who} {from} -> {to} {wire} {len}B {fate:?}", At(at))
            }
            TraceEntry::Arrived {
                at,
                from,
                to,
                len,
                wire,
                corrupted,
            } => {
                let corrupted = if corrupted { " CORRUPTED" } else { "" };
                write!(
                    f,
                    "{} arrive {from} -> {to} {wire} {len}B{corrupted}",
                    At(at)
                )
            }
            TraceEntry::Reader {
                at,
                node,
                reading,
                paused,
            } => {
                let what = if reading {
                    "reads events"
                } else {
                    "stops reading"
                };
                let paused = if paused { " (receive paused)" } else { "" };
                write!(f, "{} app    {node} {what}{paused}", At(at))
            }
            TraceEntry::Send {
                at,
                node,
                to,
                id,
                tag,
            } => match id {
                Some(id) => write!(f, "{} app    {node} send {tag} to {to} as {id}", At(at)),
                None => write!(f, "{} app    {node} send {tag} to {to} refused", At(at)),
            },
            TraceEntry::Cancel { at, node, id } => {
                write!(f, "{} app    {node} cancel {id}", At(at))
            }
            TraceEntry::Close { at, node } => write!(f, "{} app    {node} close", At(at)),
            TraceEntry::Received {
                at,
                node,
                from,
                tag,
            } => match tag {
                Some(tag) => write!(f, "{} event  {node} Received {tag} from {from}", At(at)),
                None => write!(f, "{} event  {node} Received untagged from {from}", At(at)),
            },
            TraceEntry::Outcome {
                at,
                node,
                id,
                failure,
            } => match failure {
                None => write!(f, "{} event  {node} Delivered {id}", At(at)),
                Some(reason) => write!(f, "{} event  {node} Failed {id} ({reason:?})", At(at)),
            },
            TraceEntry::Foreign {
                at,
                node,
                from,
                len,
            } => {
                write!(f, "{} event  {node} Foreign {len}B from {from}", At(at))
            }
            TraceEntry::Phase { at, name } => write!(f, "{} ---- {name}", At(at)),
        }
    }
}
