//! The run's trace, printed when the oracle panics: datagrams summarised
//! ([`Wire`]) and the steps of the run ([`Step`]).

use std::time::Duration;

use super::tag::parse_tag;
use crate::wire::{Framing, Packet, PacketKind};
use crate::{FailureReason, MessageId};

/// Printable names of the four addresses.
pub(super) const NAMES: [&str; 4] = ["A", "B", "C", "D"];

/// A datagram, summarised for the trace.
#[derive(Clone, Copy)]
pub(super) struct Wire {
    kind: Option<PacketKind>,
    identity: u32,
    /// The tag of a DATA payload: sender, destination, sequence number.
    tag: Option<(usize, usize, u32)>,
    len: usize,
}

impl core::fmt::Debug for Wire {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.kind {
            Some(kind) => write!(f, "{kind} {:08x}", self.identity)?,
            None => write!(f, "raw ({} bytes)", self.len)?,
        }
        if let Some((sender, to, seq)) = self.tag {
            let name = |i: usize| NAMES.get(i).copied().unwrap_or("?");
            write!(f, " [{}->{} #{seq}]", name(sender), name(to))?;
        }
        Ok(())
    }
}

impl Wire {
    /// Summarises `bytes` as parsed under `framing`.
    pub(super) fn of(framing: &Framing, bytes: &[u8]) -> Self {
        match framing.parse(bytes) {
            Ok(packet) => Wire {
                kind: Some(packet.kind()),
                identity: packet.identity().to_u32(),
                tag: match packet {
                    Packet::Data { payload, .. } => parse_tag(payload),
                    _ => None,
                },
                len: bytes.len(),
            },
            Err(_) => Wire {
                kind: None,
                identity: 0,
                tag: None,
                len: bytes.len(),
            },
        }
    }
}

/// One step of the run, for the panic message.
pub(super) enum Step {
    Transmit {
        from: usize,
        to: usize,
        wire: Wire,
    },
    Deliver {
        to: usize,
        wire: Wire,
        age: Duration,
    },
    Duplicate {
        to: usize,
        wire: Wire,
    },
    Drop {
        to: usize,
        wire: Wire,
    },
    Lost {
        to: usize,
        wire: Wire,
    },
    /// A datagram reached a port the receiver's NAT had closed.
    Closed {
        to: usize,
        wire: Wire,
    },
    /// `side`'s NAT moved it to a new public port.
    Rebind {
        side: usize,
        port: u16,
    },
    /// The attacker took over `address`, which `side` left.
    TakeOver {
        side: usize,
        address: std::net::SocketAddr,
    },
    Replay {
        from: usize,
        to: usize,
        wire: Wire,
        age: Duration,
    },
    Spoof {
        from: usize,
        to: usize,
        wire: Wire,
    },
    Timers {
        side: usize,
    },
    Send {
        side: usize,
        to: usize,
        seq: u32,
        id: Option<MessageId>,
        /// The deadline, from now.
        deadline: Option<Duration>,
        max_attempts: Option<u32>,
        once_validated: bool,
    },
    Cancel {
        side: usize,
        id: MessageId,
        accepted: bool,
    },
    Reading {
        side: usize,
        reading: bool,
    },
    ReceivePaused {
        side: usize,
        paused: bool,
    },
    Received {
        side: usize,
        from: usize,
        tag: Option<(usize, usize, u32)>,
    },
    Foreign {
        side: usize,
        from: usize,
    },
    Unreachable {
        side: usize,
        about: usize,
        failed: usize,
    },
    Outcome {
        side: usize,
        id: MessageId,
        seq: u32,
        outcome: Result<(), FailureReason>,
    },
    Drain,
}

impl core::fmt::Display for Step {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let n = |i: &usize| NAMES.get(*i).copied().unwrap_or("?");
        match self {
            Step::Transmit { from, to, wire } => {
                write!(f, "{} sends {wire:?} to {}", n(from), n(to))
            }
            Step::Deliver { to, wire, age } => {
                write!(f, "deliver to {}: {wire:?} (sent {age:?} ago)", n(to))
            }
            Step::Duplicate { to, wire } => write!(f, "duplicate to {}: {wire:?}", n(to)),
            Step::Drop { to, wire } => write!(f, "drop on its way to {}: {wire:?}", n(to)),
            Step::Closed { to, wire } => {
                write!(f, "lost at a port {}'s NAT closed: {wire:?}", n(to))
            }
            Step::Rebind { side, port } => {
                write!(f, "{}'s NAT moves it to public port {port}", n(side))
            }
            Step::TakeOver { side, address } => {
                write!(f, "C takes over {address}, which {} left", n(side))
            }
            Step::Lost { to, wire } => {
                write!(
                    f,
                    "lost (lifetime or queue) on its way to {}: {wire:?}",
                    n(to)
                )
            }
            Step::Replay {
                from,
                to,
                wire,
                age,
            } => write!(
                f,
                "replay {}->{}: {wire:?} (last sent {age:?} ago)",
                n(from),
                n(to)
            ),
            Step::Spoof { from, to, wire } => {
                write!(f, "spoof {}->{}: {wire:?}", n(from), n(to))
            }
            Step::Timers { side } => write!(f, "{} handle_timeout", n(side)),
            Step::Send {
                side,
                to,
                seq,
                id,
                deadline,
                max_attempts,
                once_validated,
            } => {
                write!(f, "{} send #{seq} to {}: ", n(side), n(to))?;
                match id {
                    Some(id) => write!(f, "accepted as {id}")?,
                    None => write!(f, "refused")?,
                }
                if let Some(deadline) = deadline {
                    write!(f, ", deadline in {deadline:?}")?;
                }
                if let Some(attempts) = max_attempts {
                    write!(f, ", {attempts} attempts")?;
                }
                if *once_validated {
                    write!(f, ", only once validated")?;
                }
                Ok(())
            }
            Step::Cancel { side, id, accepted } => {
                write!(f, "{} cancel {id}: accepted {accepted}", n(side))
            }
            Step::Reading { side, reading } => {
                write!(f, "{} application reading: {reading}", n(side))
            }
            Step::ReceivePaused { side, paused } => {
                write!(f, "{} set_receive_paused({paused})", n(side))
            }
            Step::Received { side, from, tag } => {
                write!(f, "{} Received from {}: tag {tag:?}", n(side), n(from))
            }
            Step::Foreign { side, from } => write!(f, "{} Foreign from {}", n(side), n(from)),
            Step::Unreachable {
                side,
                about,
                failed,
            } => write!(
                f,
                "{} told {} is unreachable: {failed} failed at once",
                n(side),
                n(about)
            ),
            Step::Outcome {
                side,
                id,
                seq,
                outcome,
            } => write!(f, "{} outcome {id} (#{seq}): {outcome:?}", n(side)),
            Step::Drain => write!(f, "-- end of input: drain --"),
        }
    }
}
