//! Per-message options, the same in both adapters.

use std::time::{Duration, Instant};

/// Per-message options of a guaranteed send (`send_to_with` in both
/// adapters, `Driver::send_with` in `gtudp-mio`).
///
/// # How long a silent peer takes to fail
///
/// Without options, a message to a peer that never answers (nothing
/// listens, the host is gone) fails with `AttemptsExhausted` after
/// `Config::max_attempts` transmissions, each waiting one retransmission
/// timeout, which starts at `Config::initial_rto` and doubles up to
/// `Config::max_rto`. With the defaults (10 attempts, 500 ms doubling to
/// 10 s) that is 0.5 + 1 + 2 + 4 + 8 + 5 × 10 = 65.5 s. On Linux, an ICMP
/// port, host or network unreachable report for the destination ends its
/// messages with `FailureReason::Unreachable` (counted in
/// `IoStats::unreachable_reports`): at once if it never answered (a closed
/// port), or, for a peer that answered before, once it has stayed silent
/// for `Config::unreachable_grace` (5 s; a peer process restarted on the
/// same port within it loses nothing). A peer that is silent without such a
/// report (a firewall dropping, a host gone without an ICMP answer, other
/// systems) takes the full span.
///
/// Shorter policies: per message, [`SendOptions::with_timeout`] (fails with
/// `DeadlineExpired` after that long, whatever the attempts) or
/// [`SendOptions::with_max_attempts`]; for the whole socket, a lower
/// `Config::max_attempts` or `Config::max_rto` (5 attempts with a 2 s
/// ceiling: 0.5 + 1 + 2 + 2 + 2 = 7.5 s). A shorter span tolerates shorter
/// outages: a peer unreachable for longer than the span sees its messages
/// fail although they might have got through later.
///
/// # Building
///
/// One way: start from [`SendOptions::default()`] and chain a `with_*`
/// method per option, and [`once_validated()`](SendOptions::once_validated())
/// for the flag (or set the public fields of a default).
///
/// ```
/// use std::time::Duration;
/// use gtudp_io::SendOptions;
///
/// let options = SendOptions::default()
///     .with_timeout(Duration::from_millis(500))
///     .with_max_attempts(3);
/// assert_eq!(options.timeout, Some(Duration::from_millis(500)));
/// assert_eq!(options.max_attempts, Some(3));
/// assert!(!options.once_validated);
///
/// let reply = SendOptions::default().once_validated();
/// assert!(reply.once_validated);
/// ```
///
/// Migrating: `with_timeout` and `with_max_attempts` were constructors
/// (`SendOptions::with_timeout(d)`); write `SendOptions::default().with_timeout(d)`.
/// The chaining methods `timeout` and `max_attempts` still work, deprecated
/// in favour of `with_timeout` and `with_max_attempts`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendOptions {
    /// Fail with [`FailureReason::DeadlineExpired`](gtudp_proto::FailureReason)
    /// if no RECV arrived within this time of the call. Default: none, the
    /// attempt limit alone decides.
    pub timeout: Option<Duration>,
    /// Transmissions before failing with
    /// [`FailureReason::AttemptsExhausted`](gtudp_proto::FailureReason); at
    /// most `Config::max_attempts`, which is also the default.
    pub max_attempts: Option<u32>,
    /// Send nothing while the destination has not proven it receives our
    /// datagrams (it reached us first, and any source address can be
    /// spoofed): the message goes out the moment it does (an honest peer
    /// answers the validation probe within a round trip), or fails with
    /// [`FailureReason::Unvalidated`](gtudp_proto::FailureReason) without a
    /// byte sent. For a public server's replies; see
    /// [`gtudp_proto::SendOptions::only_once_validated`]. Default false.
    pub once_validated: bool,
}

impl SendOptions {
    /// These options with a delivery timeout, counted from the send call:
    /// the message fails with `DeadlineExpired` if not confirmed by then.
    ///
    /// ```
    /// use std::time::Duration;
    /// use gtudp_io::SendOptions;
    ///
    /// let options = SendOptions::default().with_timeout(Duration::from_secs(2));
    /// assert_eq!(options.timeout, Some(Duration::from_secs(2)));
    /// ```
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// These options with an attempt limit (transmissions before the
    /// message fails with `AttemptsExhausted`; at most
    /// `Config::max_attempts`).
    #[must_use]
    pub fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = Some(max_attempts);
        self
    }

    /// These options with a delivery timeout.
    #[deprecated(note = "use `with_timeout`, the one chaining method for the timeout")]
    #[must_use]
    pub fn timeout(self, timeout: Duration) -> Self {
        self.with_timeout(timeout)
    }

    /// These options with an attempt limit.
    #[deprecated(note = "use `with_max_attempts`, the one chaining method for the attempt limit")]
    #[must_use]
    pub fn max_attempts(self, max_attempts: u32) -> Self {
        self.with_max_attempts(max_attempts)
    }

    /// These options, sending only once the destination is validated (see
    /// [`SendOptions::once_validated`](#structfield.once_validated)).
    #[must_use]
    pub fn once_validated(mut self) -> Self {
        self.once_validated = true;
        self
    }

    /// The endpoint's options for a send made at `now`: the timeout becomes
    /// a deadline (none if it is too far to represent).
    pub fn to_proto(self, now: Instant) -> gtudp_proto::SendOptions {
        let mut options = gtudp_proto::SendOptions::default();
        options.deadline = self.timeout.and_then(|timeout| now.checked_add(timeout));
        options.max_attempts = self.max_attempts;
        options.only_once_validated = self.once_validated;
        options
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_option_chains_from_default() {
        let options = SendOptions::default()
            .with_timeout(Duration::from_secs(1))
            .with_max_attempts(4)
            .once_validated();
        assert_eq!(options.timeout, Some(Duration::from_secs(1)));
        assert_eq!(options.max_attempts, Some(4));
        assert!(options.once_validated);
    }

    #[test]
    #[allow(deprecated)]
    fn the_older_chaining_names_still_work() {
        let older = SendOptions::default()
            .timeout(Duration::from_secs(1))
            .max_attempts(4);
        let newer = SendOptions::default()
            .with_timeout(Duration::from_secs(1))
            .with_max_attempts(4);
        assert_eq!(older, newer);
    }
}
