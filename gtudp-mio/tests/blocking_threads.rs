//! The blocking socket shared between threads: the calling threads drive
//! the endpoint themselves (a waiting call leads, the others wait for it),
//! and the background thread answers peers while nobody waits. Each test
//! checks that every message arrives exactly once and every send resolves
//! exactly once, with bounded waits so a lost wake-up fails instead of
//! hanging.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use gtudp_mio::{BlockingSocket, RecvError};

/// Long enough for a loaded CI machine; a lost wake-up waits this long and
/// fails.
const PATIENCE: Duration = Duration::from_secs(20);

fn bind() -> BlockingSocket {
    BlockingSocket::bind("127.0.0.1:0", common::fast_config()).unwrap()
}

/// `(sender, sequence)` encoded as the payload.
fn payload(sender: u8, sequence: u16) -> Vec<u8> {
    let mut payload = vec![sender];
    payload.extend_from_slice(&sequence.to_be_bytes());
    payload
}

fn decode(payload: &[u8]) -> (u8, u16) {
    assert_eq!(payload.len(), 3, "payload {payload:?}");
    (payload[0], u16::from_be_bytes([payload[1], payload[2]]))
}

/// Receives `count` messages on `socket`, asserting none twice.
fn receive_all(socket: &BlockingSocket, count: usize) -> HashSet<(u8, u16)> {
    let mut seen = HashSet::new();
    for _ in 0..count {
        let message = socket.recv_timeout(PATIENCE).expect("a message in time");
        assert!(
            seen.insert(decode(&message.payload)),
            "duplicate {:?}",
            message.payload
        );
    }
    seen
}

fn all(senders: u8, per_sender: u16) -> HashSet<(u8, u16)> {
    (0..senders)
        .flat_map(|sender| (0..per_sender).map(move |sequence| (sender, sequence)))
        .collect()
}

/// Several threads send through one `Arc`'d socket at once, each waiting
/// for its outcomes (so waiting threads take turns driving the socket):
/// every send is delivered once, every message arrives once.
#[test]
fn concurrent_senders_on_a_shared_socket() {
    const SENDERS: u8 = 4;
    const EACH: u16 = 150;
    let client = Arc::new(bind());
    let server = bind();
    let to = server.local_addr();
    let senders: Vec<_> = (0..SENDERS)
        .map(|sender| {
            let client = client.clone();
            thread::spawn(move || {
                for sequence in 0..EACH {
                    client
                        .send_to_blocking(payload(sender, sequence), to)
                        .expect("delivered");
                }
            })
        })
        .collect();
    let seen = receive_all(&server, usize::from(SENDERS) * usize::from(EACH));
    for sender in senders {
        sender.join().unwrap();
    }
    assert_eq!(seen, all(SENDERS, EACH));
    let total = u64::from(SENDERS) * u64::from(EACH);
    assert_eq!(client.stats().endpoint.delivered, total);
    assert_eq!(client.stats().endpoint.failed, 0);
    assert!(matches!(
        server.recv_timeout(Duration::ZERO),
        Err(RecvError::TimedOut)
    ));
}

/// One thread receives (leading: it waits for the socket) while another
/// sends and waits for each outcome: the receiving thread reads the RECVs
/// that resolve the other's sends, and the echoes come back once each.
#[test]
fn recv_on_one_thread_while_another_sends() {
    const COUNT: u16 = 300;
    let client = Arc::new(bind());
    let server = bind();
    let to = server.local_addr();
    let echo = thread::spawn(move || {
        for _ in 0..COUNT {
            let message = server.recv_timeout(PATIENCE).expect("a message in time");
            server
                .send_to(message.payload, message.from)
                .expect("accepted")
                .wait()
                .expect("echo delivered");
        }
        server.close().unwrap()
    });
    let receiver = {
        let client = client.clone();
        thread::spawn(move || receive_all(&client, usize::from(COUNT)))
    };
    for sequence in 0..COUNT {
        client
            .send_to_blocking(payload(0, sequence), to)
            .expect("delivered");
    }
    let seen = receiver.join().unwrap();
    assert_eq!(seen, all(1, COUNT));
    let server_summary = echo.join().unwrap();
    assert_eq!(server_summary.stats.endpoint.delivered, u64::from(COUNT));
    let summary = client.close().unwrap();
    assert_eq!(summary.stats.endpoint.delivered, u64::from(COUNT));
    assert_eq!(summary.stats.endpoint.received, u64::from(COUNT));
}

/// Several threads receive from one socket at once: the lead passes from
/// one to the next, and every message is handed to exactly one of them.
#[test]
fn concurrent_receivers_each_get_distinct_messages() {
    const RECEIVERS: usize = 3;
    const COUNT: u16 = 600;
    let server = Arc::new(bind());
    let client = bind();
    let (found, results) = mpsc::channel();
    let receivers: Vec<_> = (0..RECEIVERS)
        .map(|_| {
            let server = server.clone();
            let found = found.clone();
            thread::spawn(move || loop {
                match server.recv_timeout(PATIENCE) {
                    Ok(message) => found.send(decode(&message.payload)).unwrap(),
                    Err(RecvError::Closed) => return,
                    Err(error) => panic!("receive failed: {error}"),
                }
            })
        })
        .collect();
    drop(found);
    let to = server.local_addr();
    let pending: Vec<_> = (0..COUNT)
        .map(|sequence| client.send_to(payload(0, sequence), to).expect("accepted"))
        .collect();
    for send in pending {
        send.wait_timeout(PATIENCE)
            .expect("an outcome in time")
            .expect("delivered");
    }
    let mut seen = HashSet::new();
    for _ in 0..COUNT {
        let message = results.recv_timeout(PATIENCE).expect("received in time");
        assert!(seen.insert(message), "handed out twice: {message:?}");
    }
    assert_eq!(seen, all(1, COUNT));
    // Closing ends every receive (they wait with a timeout, so a missed
    // wake-up fails the join below instead of hanging).
    server.close().unwrap();
    for receiver in receivers {
        receiver.join().unwrap();
    }
    assert!(results.try_recv().is_err(), "no message after the last");
}

/// A receive that timed out, or returned, leaves nobody reading, yet the
/// background thread keeps answering a peer: its sends are confirmed, and
/// the messages wait in the queue for a later receive.
#[test]
fn the_background_answers_peers_after_a_receive_timed_out() {
    const COUNT: u16 = 50;
    let quiet = bind();
    let peer = bind();
    assert!(matches!(
        quiet.recv_timeout(Duration::from_millis(5)),
        Err(RecvError::TimedOut)
    ));
    let to: SocketAddr = quiet.local_addr();
    // And after a receive that got its message (the socket stays with the
    // calling threads for a while, then goes back to the background).
    peer.send_to_blocking(payload(1, COUNT), to)
        .expect("confirmed");
    assert_eq!(
        decode(&quiet.recv_timeout(PATIENCE).expect("received").payload),
        (1, COUNT)
    );
    for sequence in 0..COUNT {
        peer.send_to_blocking(payload(1, sequence), to)
            .expect("confirmed without a reader");
    }
    assert_eq!(peer.stats().endpoint.delivered, u64::from(COUNT) + 1);
    let expected: HashSet<_> = (0..COUNT).map(|sequence| (1, sequence)).collect();
    assert_eq!(receive_all(&quiet, usize::from(COUNT)), expected);
}

/// `close` from one thread while another is blocked in a receive without
/// a timeout: the receive returns `Closed`, and the close its summary.
#[test]
fn close_while_another_thread_is_blocked_in_recv() {
    let socket = Arc::new(bind());
    let (done, ended) = mpsc::channel();
    let receiver = {
        let socket = socket.clone();
        thread::spawn(move || {
            let outcome = socket.recv();
            done.send(()).unwrap();
            outcome
        })
    };
    // Give the receive time to block (the test passes either way).
    thread::sleep(Duration::from_millis(50));
    let summary = socket.close().expect("the summary, once");
    assert_eq!(summary.stats.endpoint.delivered, 0);
    ended
        .recv_timeout(PATIENCE)
        .expect("the blocked receive returned");
    assert!(matches!(receiver.join().unwrap(), Err(RecvError::Closed)));
    assert!(socket.close().is_err(), "the summary is returned once");
}
