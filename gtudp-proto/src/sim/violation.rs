//! Broken guarantees: a [`Violation`], the guarantee it broke
//! ([`ViolationKind`]), their tallies ([`ViolationCounts`]), and the totals
//! of a run ([`Counts`]) that the world returns and the soak example prints.

use std::time::Duration;

/// A guarantee found broken during a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Virtual time it was found.
    pub at: Duration,
    /// Which guarantee broke.
    pub kind: ViolationKind,
    /// What went wrong.
    pub what: String,
}

/// Which guarantee a [`Violation`] broke: one per invariant the
/// [`World`](super::World) checks, so that totals can say what broke without
/// reading the messages. [`Counts::by_kind`] counts each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ViolationKind {
    /// A tagged payload handed to an application a second time, not excused
    /// by corruption (also counted in [`Counts::duplicates`]).
    Duplicate,
    /// Something handed over that no DATA brought: a payload its source
    /// never sent, a `Received` event read with no DATA taken for it, a
    /// message handed over without taking a DATA, from a datagram that is
    /// not DATA, or several from one datagram (also counted in
    /// [`Counts::phantom`]).
    Phantom,
    /// The application read a `Received` event with another sender or
    /// payload than the next DATA its endpoint took: out of order, or
    /// altered.
    Misread,
    /// A message handed over, or an outcome produced, that never reached
    /// the application by the end of the run.
    Unread,
    /// An outcome that must not exist: for an id never given out, or never
    /// produced by the endpoint, a second one for one id, one for another
    /// destination than the send's, or one id given out twice.
    BadOutcome,
    /// A send resolved more than one RTO after its deadline.
    LateOutcome,
    /// A send without an outcome when the run ended (also counted in
    /// [`Counts::unresolved`]).
    Unresolved,
    /// A message Delivered that its receiver never handed over, not excused
    /// by corruption.
    DeliveredNotHandedOver,
    /// A message sent while
    /// [`World::set_must_deliver`](super::World::set_must_deliver) was on
    /// that Failed.
    MustDeliverFailed,
    /// A table of an endpoint beyond its [`Limits`](crate::Limits).
    BoundExceeded,
    /// More than three times the bytes received sent to an address that is
    /// not an endpoint and never answered.
    Amplification,
    /// A gtUDP datagram handed to the application as `Foreign`.
    ForeignGtudp,
    /// An endpoint not closed after its drain deadline, or closed with a
    /// table not empty.
    Close,
    /// A panic, in an endpoint or while driving it.
    Panic,
    /// Reported from outside the world with no more precise kind (for
    /// example a scenario whose configuration was refused).
    Other,
}

impl ViolationKind {
    /// Every kind, in the order [`ViolationCounts`] prints them.
    pub const ALL: [ViolationKind; 15] = [
        ViolationKind::Duplicate,
        ViolationKind::Phantom,
        ViolationKind::Misread,
        ViolationKind::Unread,
        ViolationKind::BadOutcome,
        ViolationKind::LateOutcome,
        ViolationKind::Unresolved,
        ViolationKind::DeliveredNotHandedOver,
        ViolationKind::MustDeliverFailed,
        ViolationKind::BoundExceeded,
        ViolationKind::Amplification,
        ViolationKind::ForeignGtudp,
        ViolationKind::Close,
        ViolationKind::Panic,
        ViolationKind::Other,
    ];

    /// A short lowercase name, as the soak example prints it (`duplicate`,
    /// `phantom`, ..., `delivered_not_handed_over`, `bound_exceeded`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ViolationKind::Duplicate => "duplicate",
            ViolationKind::Phantom => "phantom",
            ViolationKind::Misread => "misread",
            ViolationKind::Unread => "unread",
            ViolationKind::BadOutcome => "bad_outcome",
            ViolationKind::LateOutcome => "late_outcome",
            ViolationKind::Unresolved => "unresolved",
            ViolationKind::DeliveredNotHandedOver => "delivered_not_handed_over",
            ViolationKind::MustDeliverFailed => "must_deliver_failed",
            ViolationKind::BoundExceeded => "bound_exceeded",
            ViolationKind::Amplification => "amplification",
            ViolationKind::ForeignGtudp => "foreign_gtudp",
            ViolationKind::Close => "close",
            ViolationKind::Panic => "panic",
            ViolationKind::Other => "other",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl core::fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// Violations counted per [`ViolationKind`].
///
/// Displays as `duplicate=0 phantom=0 ... other=0`, every kind in the order
/// of [`ViolationKind::ALL`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ViolationCounts {
    counts: [u64; ViolationKind::ALL.len()],
}

impl ViolationCounts {
    /// Violations of `kind`.
    pub fn get(&self, kind: ViolationKind) -> u64 {
        self.counts[kind.index()]
    }

    /// Counts one more violation of `kind`.
    pub fn add(&mut self, kind: ViolationKind) {
        self.counts[kind.index()] += 1;
    }

    /// Every kind with its count, in the order of [`ViolationKind::ALL`].
    pub fn iter(&self) -> impl Iterator<Item = (ViolationKind, u64)> + '_ {
        ViolationKind::ALL
            .into_iter()
            .map(|kind| (kind, self.get(kind)))
    }

    /// All violations, of every kind.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

impl core::ops::AddAssign for ViolationCounts {
    fn add_assign(&mut self, other: Self) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts) {
            *mine += theirs;
        }
    }
}

impl core::fmt::Display for ViolationCounts {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, (kind, count)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{kind}={count}")?;
        }
        Ok(())
    }
}

/// Totals of a run, as the soak example prints them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Sends accepted by an endpoint.
    pub messages: u64,
    /// Sends that ended Delivered.
    pub delivered: u64,
    /// Sends that ended Failed.
    pub failed: u64,
    /// Tagged payloads handed to an application a second time: violations
    /// of kind [`ViolationKind::Duplicate`].
    pub duplicates: u64,
    /// Payloads handed over that no DATA brought: violations of kind
    /// [`ViolationKind::Phantom`].
    pub phantom: u64,
    /// Sends without an outcome when the run ended: violations of kind
    /// [`ViolationKind::Unresolved`].
    pub unresolved: u64,
    /// Every broken guarantee, the above included.
    pub violations: u64,
    /// [`Counts::violations`] by the guarantee that broke.
    pub by_kind: ViolationCounts,
    /// Datagrams the network corrupted that reached an endpoint.
    pub corrupted: u64,
    /// Payloads handed over from corrupted DATA: injected by the network,
    /// neither phantoms nor duplicates.
    pub corrupt_received: u64,
    /// Delivered messages whose receiver never handed over the intact
    /// payload, excused by corruption: the confirming RECV was corrupted, or
    /// the receiver took a corrupted copy of the DATA (see
    /// [`World`](super::World)).
    pub corrupt_confirmed: u64,
    /// Intact payloads handed over a second time because an ACK born of
    /// corruption ended the receiver's RECV exchange early (see
    /// [`World`](super::World)).
    pub corrupt_duplicates: u64,
    /// Late copies of DATA replayed just inside their datagram lifetime
    /// (see [`World::set_late_replays`](super::World::set_late_replays)).
    pub late_replays: u64,
    /// Copies of DATA that endpoints recognised as coming from another
    /// port of a host whose message they had taken (a NAT rebinding: see
    /// [`World::set_nat`](super::World::set_nat)), summed at the end.
    pub rebound_duplicates: u64,
    /// Fragments of large messages that endpoints took, summed at the end.
    pub fragments_received: u64,
    /// Incomplete large messages dropped once their senders had stopped
    /// (see [`LargeMessages::max_lifetime`](crate::LargeMessages)), summed
    /// at the end.
    pub large_messages_expired: u64,
    /// Path MTU probes sent, confirmed and answered, and black holes
    /// declared, summed at the end (see
    /// [`EndpointStats::pmtu_probes_sent`](crate::EndpointStats::pmtu_probes_sent)).
    pub pmtu: [u64; 4],
    /// Messages sent after the heal that failed with `Unvalidated` to a
    /// peer that never proved its address (see
    /// [`World`](super::World)).
    pub unvalidated_failures: u64,
}

impl core::ops::AddAssign for Counts {
    fn add_assign(&mut self, other: Self) {
        self.messages += other.messages;
        self.delivered += other.delivered;
        self.failed += other.failed;
        self.duplicates += other.duplicates;
        self.phantom += other.phantom;
        self.unresolved += other.unresolved;
        self.violations += other.violations;
        self.by_kind += other.by_kind;
        self.corrupted += other.corrupted;
        self.corrupt_received += other.corrupt_received;
        self.corrupt_confirmed += other.corrupt_confirmed;
        self.corrupt_duplicates += other.corrupt_duplicates;
        self.late_replays += other.late_replays;
        self.rebound_duplicates += other.rebound_duplicates;
        self.fragments_received += other.fragments_received;
        self.large_messages_expired += other.large_messages_expired;
        for (total, more) in self.pmtu.iter_mut().zip(other.pmtu) {
            *total += more;
        }
        self.unvalidated_failures += other.unvalidated_failures;
    }
}
