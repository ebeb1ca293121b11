//! A blocking gtUDP echo client: sends N distinct payloads to an echo
//! server, at most C awaiting their echo at once, and checks every echo.
//! The same command line and output as `gtudp-tokio`'s `echo_client`.
//!
//! ```text
//! cargo run --release -p gtudp-mio --example blocking_echo_client -- --server 127.0.0.1:4000 \
//!     [--bind ADDR] [--count N] [--size BYTES] [--concurrency C] [--oneway] \
//!     [--magic HEX] [--types HEX,HEX,HEX] [--wait-secs S]
//! ```
//!
//! The last line is the result, for scripts, printed on every exit:
//! `sent=N delivered=D failed=F echoed=E duplicates=U mismatched=M elapsed_s=S msgs_per_s=R rtt_p50_us=P rtt_p99_us=Q retransmissions=X spurious=Y`,
//! where X counts the client's DATA retransmissions (the close's drain
//! included) and Y those of them found needless (the message was late, not
//! lost); both 0 if the socket could not be bound.
//! Exits 0 only if E = N and U = M = 0, or with `--oneway` (against a
//! `--sink` server) if D = N; then the RTT is send-to-Delivered.
//!
//! The run ends as soon as every message has its outcome and every
//! delivered one its echo (one-way: every outcome), so a client whose
//! messages all failed (a closed port) exits at once; `--wait-secs` only
//! bounds a wait without progress.

use std::collections::VecDeque;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use gtudp_mio::{BlockingSocket, Delivered, DeliveryError, PendingSend, RecvError};
use gtudp_testkit::cli::ClientArgs as Args;
use gtudp_testkit::echo::{echoed_index, payload, Tally};

fn main() -> ExitCode {
    gtudp_testkit::cli::init_logging();
    let args = Args::parse();
    let mut tally = Tally::default();
    let start = Instant::now();
    let mut elapsed = None;
    if let Err(error) = run(&args, &mut tally, &mut elapsed) {
        eprintln!("echo_client: {error}");
    }
    let elapsed = elapsed.unwrap_or_else(|| start.elapsed());
    tally.finish(args.count, args.oneway, elapsed)
}

/// The longest a receive or an outcome wait blocks before the loop looks
/// at the other (outcomes, echoes) again.
const TURN: Duration = Duration::from_millis(5);

/// The client's state between loop turns.
struct Run<'a> {
    args: &'a Args,
    tally: &'a mut Tally,
    sent_at: Vec<Option<Instant>>,
    echoed: Vec<bool>,
    delivered: Vec<bool>,
    /// Delivered messages whose echo has not come yet.
    echoes_owed: u64,
    /// Whether each message still holds a place in the window.
    holds_place: Vec<bool>,
    /// Sends whose outcome is not known yet, with their index, oldest
    /// first.
    pending: VecDeque<(u64, PendingSend)>,
    in_flight: u64,
    resolved: u64,
}

impl Run<'_> {
    fn release(&mut self, index: u64) {
        let i = index as usize;
        if self.holds_place[i] {
            self.holds_place[i] = false;
            self.in_flight -= 1;
        }
    }

    /// Counts one outcome: a failure (or, one-way, any outcome) frees the
    /// message's place; with echoes, a delivery does not (the echo frees it).
    fn note_outcome(&mut self, index: u64, outcome: Result<Delivered, DeliveryError>) {
        self.resolved += 1;
        let failed = outcome.is_err();
        match outcome {
            Ok(_) => {
                self.tally.delivered += 1;
                self.delivered[index as usize] = true;
                if !self.args.oneway && !self.echoed[index as usize] {
                    self.echoes_owed += 1;
                }
                if self.args.oneway {
                    if let Some(at) = self.sent_at[index as usize] {
                        self.tally.rtts_us.push(at.elapsed().as_micros() as u64);
                    }
                }
            }
            Err(error) => {
                tracing::warn!(index, %error, "send failed");
                self.tally.failed += 1;
            }
        }
        if self.args.oneway || failed {
            self.release(index);
        }
    }

    /// Takes the outcomes known, waiting up to `wait` for the oldest first;
    /// whether any was taken. Messages mostly resolve in the order they
    /// were sent, so this takes them from the front; only when the oldest
    /// is still unresolved after `wait` (it is being resent) does it look
    /// at all the others, once, so a burst of N sends costs O(N) looks.
    fn take_outcomes(&mut self, wait: Duration) -> bool {
        let Some((_, oldest)) = self.pending.front() else {
            return false;
        };
        let mut taken = false;
        match oldest.wait_timeout(wait) {
            Some(outcome) => {
                if let Some((index, _)) = self.pending.pop_front() {
                    self.note_outcome(index, outcome);
                    taken = true;
                }
                while let Some(outcome) = self.pending.front().and_then(|(_, next)| next.try_wait())
                {
                    if let Some((index, _)) = self.pending.pop_front() {
                        self.note_outcome(index, outcome);
                    }
                }
            }
            None => {
                let mut resolved = Vec::new();
                self.pending
                    .retain(|(index, pending)| match pending.try_wait() {
                        Some(outcome) => {
                            resolved.push((*index, outcome));
                            false
                        }
                        None => true,
                    });
                taken = !resolved.is_empty();
                for (index, outcome) in resolved {
                    self.note_outcome(index, outcome);
                }
            }
        }
        taken
    }

    fn note_echo(&mut self, payload: &[u8]) {
        let (count, size) = (self.args.count, self.args.size as usize);
        match echoed_index(payload, count, size) {
            Some(index) => {
                let i = index as usize;
                if self.echoed[i] {
                    self.tally.duplicates += 1;
                } else {
                    self.echoed[i] = true;
                    self.tally.echoed += 1;
                    if self.delivered[i] {
                        self.echoes_owed -= 1;
                    }
                    if let Some(at) = self.sent_at[i] {
                        self.tally.rtts_us.push(at.elapsed().as_micros() as u64);
                    }
                    self.release(index);
                }
            }
            None => self.tally.mismatched += 1,
        }
    }
}

/// Runs the exchange, counting into `tally` and setting `elapsed` when the
/// exchange ends (before the close's drain).
fn run(
    args: &Args,
    tally: &mut Tally,
    elapsed: &mut Option<Duration>,
) -> Result<(), Box<dyn std::error::Error>> {
    let count = args.count;
    let size = args.size as usize;
    let config = args.config()?;
    let bind = args.bind_addr();
    let socket = BlockingSocket::bind(bind, config)?;
    let mut state = Run {
        args,
        tally,
        sent_at: vec![None; count as usize],
        echoed: vec![false; count as usize],
        delivered: vec![false; count as usize],
        echoes_owed: 0,
        holds_place: vec![false; count as usize],
        pending: VecDeque::new(),
        in_flight: 0,
        resolved: 0,
    };
    let idle = Duration::from_secs(args.wait_secs);
    let start = Instant::now();
    let mut last_progress = start;
    let mut next = 0u64;
    let mut stopped = None;
    loop {
        while next < count && state.in_flight < args.concurrency {
            let index = next;
            next += 1;
            state.sent_at[index as usize] = Some(Instant::now());
            match socket.send_to(payload(index, size), args.server) {
                Ok(pending) => {
                    state.holds_place[index as usize] = true;
                    state.in_flight += 1;
                    state.pending.push_back((index, pending));
                }
                Err(error) => {
                    eprintln!("message {index} not sent: {error}");
                    state.tally.failed += 1;
                    state.resolved += 1;
                }
            }
        }
        // A failed message's echo may never come: wait only for those of
        // the delivered ones.
        let done = state.resolved == count && (args.oneway || state.echoes_owed == 0);
        if done {
            break;
        }
        let mut progressed;
        if args.oneway {
            progressed = state.take_outcomes(TURN);
        } else {
            progressed = state.take_outcomes(Duration::ZERO);
            match socket.recv_timeout(TURN) {
                Ok(message) => {
                    state.note_echo(&message.payload);
                    progressed = true;
                }
                Err(RecvError::TimedOut) => {}
                Err(error) => {
                    stopped = Some(format!("receive failed: {error}"));
                    break;
                }
            }
        }
        if progressed {
            last_progress = Instant::now();
        } else if last_progress.elapsed() >= idle {
            stopped = Some(format!(
                "no progress for {} s; gave up with {} outcomes and {} echoes of delivered messages missing",
                args.wait_secs,
                count - state.resolved,
                state.echoes_owed,
            ));
            break;
        }
    }
    *elapsed = Some(start.elapsed());
    if let Some(reason) = stopped {
        eprintln!("echo_client: {reason}");
    }
    // Drain: the RECVs of the echoes still await our ACK... and vice versa.
    // Bounded by Config::drain_timeout.
    let stats = match socket.close() {
        Ok(summary) => summary.stats,
        Err(error) => {
            eprintln!("echo_client: close: {error}");
            socket.stats()
        }
    };
    // The final counters, the drain's retransmissions included.
    state.tally.note_endpoint(&stats.endpoint);
    Ok(())
}
