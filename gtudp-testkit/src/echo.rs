//! What the echo clients of both adapters share: the payloads they send,
//! how they count what came back, and their result line.

use std::time::Duration;

use bytes::Bytes;
use gtudp_proto::EndpointStats;

/// The payload of message `index`: the index (8 bytes, big-endian), then
/// bytes derived from it, `size` bytes in all (at least 8).
pub fn payload(index: u64, size: usize) -> Bytes {
    let mut bytes = Vec::with_capacity(size);
    bytes.extend_from_slice(&index.to_be_bytes());
    bytes.extend((8..size).map(|j| (index as usize).wrapping_mul(31).wrapping_add(j) as u8));
    Bytes::from(bytes)
}

/// The index of an echoed payload, if it is one of the `count` payloads of
/// `size` bytes exactly as sent.
pub fn echoed_index(echo: &[u8], count: u64, size: usize) -> Option<u64> {
    let index = u64::from_be_bytes(echo.get(..8)?.try_into().ok()?);
    (index < count && echo == &payload(index, size)[..]).then_some(index)
}

/// What an echo client saw.
#[derive(Debug, Default)]
pub struct Tally {
    /// Messages confirmed delivered.
    pub delivered: u64,
    /// Messages failed (or refused).
    pub failed: u64,
    /// Distinct echoes received.
    pub echoed: u64,
    /// Echoes received more than once.
    pub duplicates: u64,
    /// Datagrams that are none of the payloads sent.
    pub mismatched: u64,
    /// Round-trip times, in microseconds.
    pub rtts_us: Vec<u64>,
    /// The client endpoint's DATA retransmissions
    /// ([`EndpointStats::retransmissions`]), as of the end of the run.
    pub retransmissions: u64,
    /// Those of the retransmissions found needless
    /// ([`EndpointStats::spurious_retransmissions`]).
    pub spurious: u64,
}

impl Tally {
    /// Takes the retransmission counters from the client endpoint's final
    /// counters (those of its close summary, or of `stats()` after it).
    pub fn note_endpoint(&mut self, stats: &EndpointStats) {
        self.retransmissions = stats.retransmissions;
        self.spurious = stats.spurious_retransmissions;
    }

    /// The result line, the last line both clients print:
    /// `sent=N delivered=D failed=F echoed=E duplicates=U mismatched=M
    /// elapsed_s=S msgs_per_s=R rtt_p50_us=P rtt_p99_us=Q retransmissions=X
    /// spurious=Y` (the last two 0 when the socket could not be bound).
    pub fn result_line(&mut self, count: u64, elapsed: Duration) -> String {
        self.rtts_us.sort_unstable();
        let seconds = elapsed.as_secs_f64();
        format!(
            "sent={count} delivered={} failed={} echoed={} duplicates={} mismatched={} elapsed_s={seconds:.3} msgs_per_s={:.0} rtt_p50_us={} rtt_p99_us={} retransmissions={} spurious={}",
            self.delivered,
            self.failed,
            self.echoed,
            self.duplicates,
            self.mismatched,
            count as f64 / seconds.max(1e-9),
            self.percentile(0.50),
            self.percentile(0.99),
            self.retransmissions,
            self.spurious,
        )
    }

    /// Whether the run succeeded: every message echoed once and nothing
    /// else received, or with `oneway`, every message delivered.
    pub fn success(&self, count: u64, oneway: bool) -> bool {
        if oneway {
            self.delivered == count
        } else {
            self.echoed == count && self.duplicates == 0 && self.mismatched == 0
        }
    }

    /// Prints the result line (the last line on stdout) and returns the
    /// exit code: success per [`success`](Self::success).
    pub fn finish(
        &mut self,
        count: u64,
        oneway: bool,
        elapsed: Duration,
    ) -> std::process::ExitCode {
        println!("{}", self.result_line(count, elapsed));
        if self.success(count, oneway) {
            std::process::ExitCode::SUCCESS
        } else {
            std::process::ExitCode::FAILURE
        }
    }

    /// The `p` quantile of the sorted round-trip times (0 when none).
    fn percentile(&self, p: f64) -> u64 {
        if self.rtts_us.is_empty() {
            return 0;
        }
        let rank = ((self.rtts_us.len() as f64 * p).ceil() as usize).clamp(1, self.rtts_us.len());
        self.rtts_us[rank - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_are_recognised_and_the_line_is_stable() {
        let sent = payload(7, 64);
        assert_eq!(sent.len(), 64);
        assert_eq!(echoed_index(&sent, 10, 64), Some(7));
        assert_eq!(echoed_index(&sent, 5, 64), None, "index out of range");
        assert_eq!(echoed_index(&sent[..63], 10, 64), None, "cut");
        let mut tally = Tally {
            delivered: 2,
            echoed: 2,
            rtts_us: vec![30, 10],
            ..Tally::default()
        };
        let mut stats = EndpointStats::default();
        stats.retransmissions = 3;
        stats.spurious_retransmissions = 1;
        tally.note_endpoint(&stats);
        assert!(tally.success(2, false));
        assert_eq!(
            tally.result_line(2, Duration::from_secs(1)),
            "sent=2 delivered=2 failed=0 echoed=2 duplicates=0 mismatched=0 elapsed_s=1.000 \
             msgs_per_s=2 rtt_p50_us=10 rtt_p99_us=30 retransmissions=3 spurious=1"
        );
    }
}
