//! Raw UDP, without guarantees: the ceiling. A sender blasts every
//! datagram; the receiver counts until it has them all or the socket stays
//! idle for [`RAW_IDLE`].

use std::io;
use std::net::UdpSocket;
use std::time::Instant;

use crate::common::{cpu_between, cpu_time, fill, Outcome, Params, Tally, RAW_IDLE};

/// Receive buffer: larger than any datagram.
const BUF: usize = 65_536;

/// Blocking standard-library sockets, one thread per side.
pub(crate) fn std_blocking(params: Params) -> io::Result<Outcome> {
    let receiver = UdpSocket::bind("127.0.0.1:0")?;
    receiver.set_read_timeout(Some(RAW_IDLE))?;
    let sender = UdpSocket::bind("127.0.0.1:0")?;
    sender.connect(receiver.local_addr()?)?;
    let epoch = Instant::now();
    let cpu_before = cpu_time();

    let counting = std::thread::spawn(move || {
        let mut tally = Tally::new(&params, epoch);
        let mut buf = vec![0u8; BUF];
        while !tally.complete() {
            match receiver.recv(&mut buf) {
                Ok(len) => tally.record(&buf[..len]),
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        tally
    });

    let start = Instant::now();
    let mut buf = vec![0u8; params.size];
    let mut send_errors = 0u64;
    for seq in 0..params.count {
        fill(&mut buf, seq, epoch);
        if sender.send(&buf).is_err() {
            send_errors += 1;
        }
    }
    let send_elapsed = start.elapsed();
    let tally = counting
        .join()
        .map_err(|_| io::Error::other("receiver thread panicked"))?;
    Ok(finish(
        "raw-udp",
        params,
        tally,
        start,
        send_elapsed,
        send_errors,
        cpu_between(cpu_before, cpu_time()),
    ))
}

/// Tokio sockets, one task per side on a multi-threaded runtime.
pub(crate) async fn tokio(params: Params) -> io::Result<Outcome> {
    let receiver = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    let sender = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    sender.connect(receiver.local_addr()?).await?;
    let epoch = Instant::now();
    let cpu_before = cpu_time();

    let counting = tokio::spawn(async move {
        let mut tally = Tally::new(&params, epoch);
        let mut buf = vec![0u8; BUF];
        while !tally.complete() {
            match tokio::time::timeout(RAW_IDLE, receiver.recv(&mut buf)).await {
                Ok(Ok(len)) => tally.record(&buf[..len]),
                Ok(Err(error)) if error.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(_)) | Err(_) => break,
            }
        }
        tally
    });

    let start = Instant::now();
    let mut buf = vec![0u8; params.size];
    let mut send_errors = 0u64;
    for seq in 0..params.count {
        fill(&mut buf, seq, epoch);
        if sender.send(&buf).await.is_err() {
            send_errors += 1;
        }
    }
    let send_elapsed = start.elapsed();
    let tally = counting.await.map_err(io::Error::other)?;
    Ok(finish(
        "raw-udp-tokio",
        params,
        tally,
        start,
        send_elapsed,
        send_errors,
        cpu_between(cpu_before, cpu_time()),
    ))
}

fn finish(
    name: &'static str,
    params: Params,
    tally: Tally,
    start: Instant,
    send_elapsed: std::time::Duration,
    send_errors: u64,
    cpu: Option<std::time::Duration>,
) -> Outcome {
    let last = tally.last;
    let mut outcome = Outcome::new(name, params, tally);
    outcome.sent = params.count - send_errors;
    outcome.elapsed = last.map_or(send_elapsed, |last| last.saturating_duration_since(start));
    outcome.cpu = cpu;
    let lost = params.count - outcome.received;
    outcome.notes.push(format!(
        "lost {lost} ({:.1}%)",
        100.0 * lost as f64 / params.count.max(1) as f64
    ));
    outcome.notes.push(format!(
        "sender {:.0} msgs/s",
        params.count as f64 / send_elapsed.as_secs_f64().max(1e-9)
    ));
    if send_errors > 0 {
        outcome.notes.push(format!("{send_errors} send errors"));
    }
    outcome
}
