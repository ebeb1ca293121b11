//! KCP through `tokio_kcp` 0.9: message (non-stream) mode, nodelay with
//! the "fastest" profile (10 ms tick, fast resend, no congestion control),
//! 1024-segment windows and acks flushed on input. KCP is an ordered ARQ
//! and tells the sender nothing per message, so throughput is receive-side.

use std::io;
use std::time::{Duration, Instant};

use tokio_kcp::{KcpConfig, KcpListener, KcpNoDelayConfig, KcpStream};

use crate::common::{cpu_between, cpu_time, fill, Outcome, Params, Tally, STALL};

/// The configuration measured.
pub(crate) fn config() -> KcpConfig {
    KcpConfig {
        nodelay: KcpNoDelayConfig::fastest(),
        wnd_size: (1024, 1024),
        stream: false,
        // Acks right after input: the fastest of the flush settings here
        // (flush_write on top made it slower).
        flush_acks_input: true,
        ..KcpConfig::default()
    }
}

pub(crate) async fn run(params: Params) -> io::Result<Outcome> {
    let config = config();
    let mut listener = KcpListener::bind(config, "127.0.0.1:0")
        .await
        .map_err(io::Error::other)?;
    let addr = listener.local_addr()?;
    let epoch = Instant::now();
    let cpu_before = cpu_time();

    let counting = tokio::spawn(async move {
        let mut tally = Tally::new(&params, epoch);
        let Ok(Ok((mut stream, _))) = tokio::time::timeout(STALL, listener.accept()).await else {
            return (tally, true);
        };
        let mut buf = vec![0u8; 65_536];
        let mut stalled = false;
        while !tally.complete() {
            match tokio::time::timeout(STALL, stream.recv(&mut buf)).await {
                Ok(Ok(len)) => tally.record(&buf[..len]),
                Ok(Err(_)) => break,
                Err(_) => {
                    stalled = true;
                    break;
                }
            }
        }
        drop(listener);
        (tally, stalled)
    });

    let start = Instant::now();
    let mut stream = KcpStream::connect(&config, addr)
        .await
        .map_err(io::Error::other)?;
    let mut buf = vec![0u8; params.size];
    let mut sent = 0u64;
    let mut send_stalled = false;
    let mut send_error = None;
    for seq in 0..params.count {
        fill(&mut buf, seq, epoch);
        match tokio::time::timeout(STALL, stream.send(&buf)).await {
            Ok(Ok(_)) => sent += 1,
            Ok(Err(error)) => {
                send_error = Some(error.to_string());
                break;
            }
            Err(_) => {
                send_stalled = true;
                break;
            }
        }
    }
    let send_elapsed = start.elapsed();
    let (tally, stalled) = counting.await.map_err(io::Error::other)?;
    let cpu = cpu_between(cpu_before, cpu_time());
    drop(stream);

    let last = tally.last;
    let mut outcome = Outcome::new("tokio_kcp", params, tally);
    outcome.sent = sent;
    outcome.elapsed = last.map_or(Duration::ZERO, |last| last.saturating_duration_since(start));
    outcome.cpu = cpu;
    outcome.stalled = stalled || send_stalled;
    if outcome.stalled {
        outcome.notes.push(format!(
            "STALLED at {}/{} (no progress for {} s)",
            outcome.received,
            params.count,
            STALL.as_secs()
        ));
    }
    if let Some(error) = send_error {
        outcome.notes.push(format!("send error: {error}"));
    }
    outcome.notes.push(format!(
        "sender done after {:.0} ms",
        send_elapsed.as_secs_f64() * 1e3
    ));
    Ok(outcome)
}
