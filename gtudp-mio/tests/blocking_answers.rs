//! When the blocking socket sends the RECVs and ACKs a receive's read
//! produced: with the application's next call (its reply, in one system
//! call), or without one all the same, before any retransmission timer.

use std::sync::Arc;
use std::time::Duration;

use gtudp_mio::{BlockingSocket, Config};

/// Retransmission timers far longer than any test step, so a message that
/// needs one shows as a retransmission.
/// Resends only on a 3 s timer: no tail-loss probe or early loss
/// detection, which a thread not scheduled for a few milliseconds on a
/// loaded machine would otherwise set off, so a resend in these tests means
/// something waited seconds.
fn slow_timers() -> Config {
    let mut config = Config::default();
    config.initial_rto = Duration::from_secs(3);
    config.min_rto = Duration::from_secs(3);
    config.early_loss_detection = false;
    config
}

/// One echo at a time, the server a thread that receives and replies: the
/// RECV (and any ACK) the server's receive produced waits for its next
/// call, the reply, and both leave in one system call (Linux: `sendmmsg`,
/// as their sizes differ), so the server makes about one send call per
/// echo, not two. (About: a message that arrives while the server's
/// thread is not yet back in its receive is read by the background thread,
/// which answers at once.)
#[cfg(target_os = "linux")]
#[test]
fn a_recv_leaves_with_the_reply_in_one_system_call() {
    const ROUNDS: u64 = 200;
    let client = BlockingSocket::bind("127.0.0.1:0", slow_timers()).unwrap();
    let server = Arc::new(BlockingSocket::bind("127.0.0.1:0", slow_timers()).unwrap());
    let to = server.local_addr();
    let timeout = Duration::from_secs(10);
    let echo = {
        let server = server.clone();
        std::thread::spawn(move || {
            for _ in 0..=ROUNDS {
                let message = server.recv_timeout(timeout).unwrap();
                drop(server.send_to(message.payload, message.from).unwrap());
            }
        })
    };
    // The first echo validates both peers.
    client.send_to(&b"first"[..], to).unwrap().wait().unwrap();
    client.recv_timeout(timeout).unwrap();
    let before = server.stats().io;
    for round in 0..ROUNDS {
        // As an echo client does, it reads the reply and sends on; the
        // outcomes are counted at the close.
        drop(client.send_to(round.to_be_bytes().to_vec(), to).unwrap());
        let echo = client.recv_timeout(timeout).unwrap();
        assert_eq!(&echo.payload[..], round.to_be_bytes());
    }
    echo.join().unwrap();
    let after = server.stats().io;
    let summary = client.close().unwrap();
    assert_eq!(summary.delivered, ROUNDS + 1);
    assert_eq!(summary.failed, 0);
    let calls = after.send_calls - before.send_calls;
    let datagrams = after.datagrams_sent - before.datagrams_sent;
    // Each echo is a RECV, a reply and an ACK from the server.
    assert!(datagrams >= 2 * ROUNDS, "{before:?} -> {after:?}");
    assert!(
        calls * 4 < ROUNDS * 5,
        "{calls} send calls for {ROUNDS} echoes: the RECVs were not held for the replies"
    );
    // A RECV held for every reply that never left would cost a resend (and
    // 3 s) an echo.
    let resent = server.stats().endpoint.retransmissions + summary.stats.endpoint.retransmissions;
    assert!(resent < ROUNDS / 20, "{resent} resends in {ROUNDS} echoes");
}

/// A server reads a message and then makes no further call on its
/// socket: the RECV, held for a reply that never comes, still leaves (the
/// background thread sends it at the end of its lease), so the sender
/// learns Delivered without a retransmission, long before its first
/// retransmission timer (3 s) could have fired, in all but a few rounds.
#[test]
fn a_recv_without_a_reply_is_still_confirmed() {
    let client = BlockingSocket::bind("127.0.0.1:0", slow_timers()).unwrap();
    let server = Arc::new(BlockingSocket::bind("127.0.0.1:0", slow_timers()).unwrap());
    let to = server.local_addr();
    for round in 0..10u32 {
        let pending = client.send_to(round.to_be_bytes().to_vec(), to).unwrap();
        let message = server.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(&message.payload[..], round.to_be_bytes());
        // The server calls nothing more; the client waits for its outcome.
        pending.wait().unwrap();
    }
    // Held until a reply, each RECV would cost a resend, 3 s later.
    let resent = client.stats().endpoint.retransmissions;
    assert!(
        resent < 5,
        "{resent} resends in 10 rounds: the RECVs were held"
    );
}

/// A reply made while received messages still wait to be read is held
/// for the receive loop's batch; when the application then makes no
/// further call, it still leaves (the background thread sends it within
/// its lease), long before any retransmission timer (3 s) would send it.
#[test]
fn a_reply_deferred_for_the_receive_loop_leaves_without_another_call() {
    let client = BlockingSocket::bind("127.0.0.1:0", slow_timers()).unwrap();
    let server = BlockingSocket::bind("127.0.0.1:0", slow_timers()).unwrap();
    let to = server.local_addr();
    // Three messages in the server's inbox: each confirmed means its
    // endpoint has it.
    for round in 0..3u32 {
        client
            .send_to(round.to_be_bytes().to_vec(), to)
            .unwrap()
            .wait()
            .unwrap();
    }
    let first = server.recv_timeout(Duration::from_secs(10)).unwrap();
    // Two messages still wait: this reply is deferred, and the server
    // calls nothing more.
    let reply = server.send_to(first.payload, first.from).unwrap();
    let echo = client.recv_timeout(Duration::from_secs(2)).unwrap();
    assert_eq!(&echo.payload[..], 0u32.to_be_bytes());
    reply.wait().unwrap();
    assert_eq!(server.stats().endpoint.retransmissions, 0);
}

/// With `BlockingOptions::spin`, a receive polls before it sleeps: echoes
/// still arrive each once, a receive with nothing to read still ends with
/// `TimedOut`, and a close still ends a receive that waits.
#[test]
fn a_receive_that_spins_before_it_sleeps_behaves_as_one_that_does_not() {
    use gtudp_mio::{BlockingOptions, RecvError};
    let options = BlockingOptions::default().with_spin(Duration::from_micros(200));
    let bind = || {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        BlockingSocket::with_options(socket, slow_timers(), options).unwrap()
    };
    let (client, server) = (bind(), Arc::new(bind()));
    let to = server.local_addr();
    let echo = {
        let server = server.clone();
        std::thread::spawn(move || {
            let mut echoed = 0;
            while let Ok(message) = server.recv() {
                drop(server.send_to(message.payload, message.from).unwrap());
                echoed += 1;
            }
            echoed
        })
    };
    for round in 0..100u32 {
        drop(client.send_to(round.to_be_bytes().to_vec(), to).unwrap());
        let echo = client.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(&echo.payload[..], round.to_be_bytes());
    }
    assert!(matches!(
        client.recv_timeout(Duration::from_millis(1)),
        Err(RecvError::TimedOut)
    ));
    let summary = client.close().unwrap();
    assert_eq!(summary.delivered, 100);
    server.close().unwrap();
    assert_eq!(echo.join().unwrap(), 100);
}
