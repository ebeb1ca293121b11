//! The blocking socket's per-message options, cancel, raw sends, receive
//! timeouts, `&self` close and dual-stack addressing.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use gtudp_mio::{
    BlockingSocket, Closed, Config, DatagramKind, DeliveryError, FailureReason, RecvError,
    SendOptions, SendRawError,
};

/// A peer that receives but never answers (and so sends no ICMP report
/// either); keep the socket while it is used.
fn silent_peer() -> (UdpSocket, SocketAddr) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    (socket, addr)
}

/// A port nobody listens on: bound, then released.
fn nobody() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A config whose messages to a silent peer are retried for a long time,
/// so only the option under test can end them quickly.
fn patient_config() -> Config {
    let mut config = common::fast_config();
    config.max_attempts = 200;
    config.remember_window = Duration::from_secs(60);
    config
}

#[test]
fn per_message_timeout_fails_with_deadline_expired() {
    let socket = BlockingSocket::bind("127.0.0.1:0", patient_config()).unwrap();
    let (_silent, to) = silent_peer();
    let outcome = socket.send_to_blocking_with(
        &b"x"[..],
        to,
        SendOptions::default().with_timeout(Duration::from_millis(100)),
    );
    assert_eq!(
        outcome,
        Err(DeliveryError::Failed {
            to,
            reason: FailureReason::DeadlineExpired
        })
    );
}

#[test]
fn per_message_attempt_limit_fails_with_attempts_exhausted() {
    let socket = BlockingSocket::bind("127.0.0.1:0", patient_config()).unwrap();
    let (_silent, to) = silent_peer();
    let pending = socket
        .send_to_with(&b"x"[..], to, SendOptions::default().with_max_attempts(2))
        .unwrap();
    assert_eq!(pending.destination(), to);
    assert_eq!(
        pending.wait().unwrap_err().reason(),
        Some(FailureReason::AttemptsExhausted)
    );
    let stats = socket.stats().endpoint;
    assert_eq!(stats.retransmissions, 1, "two attempts: one resend");
}

#[test]
fn cancel_resolves_the_send_as_cancelled_once() {
    let socket = BlockingSocket::bind("127.0.0.1:0", patient_config()).unwrap();
    let (_silent, to) = silent_peer();
    let pending = socket.send_to(&b"x"[..], to).unwrap();
    assert_eq!(pending.try_wait(), None, "still being tried");
    assert_eq!(
        pending.cancel(),
        Err(DeliveryError::Failed {
            to,
            reason: FailureReason::Cancelled
        })
    );
    // The outcome was taken by cancel.
    assert_eq!(pending.cancel(), Err(DeliveryError::Closed));
    assert_eq!(pending.try_wait(), Some(Err(DeliveryError::Closed)));
    assert_eq!(socket.stats().endpoint.failed, 1);
}

#[test]
fn raw_sends_arrive_unframed_and_foreign() {
    let mut config = common::fast_config();
    config.deliver_foreign = true;
    let receiver = BlockingSocket::bind("127.0.0.1:0", config).unwrap();
    let sender = BlockingSocket::bind("127.0.0.1:0", common::fast_config()).unwrap();
    sender
        .send_raw_to(&b"plain udp"[..], receiver.local_addr())
        .unwrap();
    let datagram = receiver.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(&datagram.payload[..], b"plain udp");
    assert_eq!(datagram.kind, DatagramKind::Foreign);
    assert!(datagram.is_foreign());
    assert_eq!(datagram.from, sender.local_addr());

    let too_big = vec![0u8; 70_000];
    assert_eq!(
        sender.send_raw_to(too_big, receiver.local_addr()),
        Err(SendRawError::TooLarge { size: 70_000 })
    );
    sender.close().unwrap();
    assert_eq!(
        sender.send_raw_to(&b"late"[..], receiver.local_addr()),
        Err(SendRawError::Closed)
    );
}

#[test]
fn default_read_timeout_applies_to_recv_and_recv_from() {
    let socket = BlockingSocket::bind("127.0.0.1:0", common::fast_config()).unwrap();
    assert_eq!(socket.read_timeout(), None);
    socket.set_read_timeout(Some(Duration::from_millis(30)));
    assert_eq!(socket.read_timeout(), Some(Duration::from_millis(30)));
    let mut buf = [0u8; 16];
    assert_eq!(socket.recv_from(&mut buf), Err(RecvError::TimedOut));
    assert_eq!(socket.recv(), Err(RecvError::TimedOut));
    // Zero: do not wait at all (Python's settimeout(0)).
    socket.set_read_timeout(Some(Duration::ZERO));
    assert_eq!(socket.recv(), Err(RecvError::TimedOut));
    assert_eq!(
        socket.recv_from_timeout(&mut buf, Duration::from_millis(20)),
        Err(RecvError::TimedOut)
    );

    // A message arriving within the timeout is returned. (Delivered at the
    // sender may come before the message reaches the receive queue, so
    // the wait is a long one rather than zero.)
    let peer = BlockingSocket::bind("127.0.0.1:0", common::fast_config()).unwrap();
    peer.send_to_blocking(&b"hi"[..], socket.local_addr())
        .unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(10)));
    assert_eq!(socket.recv_from(&mut buf), Ok((2, peer.local_addr())));
    socket.set_read_timeout(None);
    assert_eq!(socket.read_timeout(), None);
}

#[test]
fn close_through_a_shared_handle_returns_the_summary_once() {
    let a = Arc::new(BlockingSocket::bind("127.0.0.1:0", common::fast_config()).unwrap());
    let b = BlockingSocket::bind("127.0.0.1:0", common::fast_config()).unwrap();
    a.send_to_blocking(&b"one"[..], b.local_addr()).unwrap();
    let other = a.clone();
    let closer = std::thread::spawn(move || other.close());
    let first = closer.join().unwrap().unwrap();
    assert_eq!(first.stats.endpoint.delivered, 1);
    assert_eq!(a.close(), Err(Closed));
    assert_eq!(a.cleanup(), Err(Closed));
    // No more sends after the close; receives say closed once drained.
    assert!(matches!(
        a.send_to(&b"late"[..], b.local_addr()),
        Err(DeliveryError::Refused { .. })
    ));
    assert_eq!(
        a.recv_timeout(Duration::from_secs(5)),
        Err(RecvError::Closed)
    );
    assert_eq!(
        b.recv_timeout(Duration::from_secs(5)).unwrap().payload,
        "one"
    );
}

#[test]
fn peer_stats_name_the_peer_in_either_form() {
    let a = BlockingSocket::bind("127.0.0.1:0", common::fast_config()).unwrap();
    let b = BlockingSocket::bind("127.0.0.1:0", common::fast_config()).unwrap();
    a.send_to_blocking(&b"one"[..], b.local_addr()).unwrap();
    let plain = a.peer_stats(b.local_addr()).unwrap();
    assert_eq!(plain.delivered, 1);
    assert_eq!(a.peer_stats(common::mapped(b.local_addr())), Some(plain));
    assert_eq!(a.peer_stats(nobody()), None);
}

/// A `[::]` socket talks to an IPv4 socket and back: every send is
/// delivered (not failed for want of a RECV from the "same" address) and
/// addresses come out in plain IPv4 form.
#[test]
fn dual_stack_socket_talks_to_ipv4_peers() {
    let dual = BlockingSocket::bind("[::]:0", common::fast_config()).unwrap();
    let v4 = BlockingSocket::bind("127.0.0.1:0", common::fast_config()).unwrap();
    let dual_v4: SocketAddr = format!("127.0.0.1:{}", dual.local_addr().port())
        .parse()
        .unwrap();

    // [::] -> IPv4, named plainly and IPv4-mapped.
    dual.send_to_blocking(&b"plain"[..], v4.local_addr())
        .unwrap();
    dual.send_to_blocking(&b"mapped"[..], common::mapped(v4.local_addr()))
        .unwrap();
    for expected in ["plain", "mapped"] {
        let message = v4.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(message.payload, expected);
        assert_eq!(message.from, dual_v4);
    }
    // IPv4 -> [::], and the reply to the address it came from.
    v4.send_to_blocking(&b"back"[..], dual_v4).unwrap();
    let message = dual.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(message.from, v4.local_addr(), "plain IPv4, not [::ffff:..]");
    dual.send_to_blocking(&b"reply"[..], message.from).unwrap();
    assert_eq!(
        v4.recv_timeout(Duration::from_secs(10)).unwrap().payload,
        "reply"
    );

    let stats = dual.close().unwrap().stats.endpoint;
    assert_eq!(stats.delivered, 3);
    assert_eq!(stats.failed, 0);
    let v4_stats = v4.close().unwrap().stats.endpoint;
    assert_eq!(v4_stats.failed, 0);
    // Nothing dropped but what the exchanges explain on a busy machine.
    gtudp_testkit::drops::assert_only_explained_drops(&stats, &v4_stats);
}

/// `recv_many` takes what has arrived in batches of at most its limit,
/// each message once, mixed with `recv`; it honours the read timeout, and
/// says closed once the socket closed and everything was taken.
#[test]
fn recv_many_takes_each_message_once_in_batches_of_at_most_its_limit() {
    let socket = BlockingSocket::bind("127.0.0.1:0", common::fast_config()).unwrap();
    let peer = BlockingSocket::bind("127.0.0.1:0", common::fast_config()).unwrap();
    let mut buffer = Vec::new();
    assert_eq!(socket.recv_many(&mut buffer, 0), Ok(0));
    assert_eq!(
        socket.recv_many_timeout(&mut buffer, 8, Duration::from_millis(20)),
        Err(RecvError::TimedOut)
    );
    let pending: Vec<_> = (0..20u32)
        .map(|i| peer.send_to(format!("m{i}"), socket.local_addr()).unwrap())
        .collect();
    for send in pending {
        send.wait().unwrap();
    }
    let mut seen = std::collections::HashSet::new();
    let first = socket.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(seen.insert(first.payload));
    let mut batches = 0;
    while seen.len() + buffer.len() < 20 {
        let before = buffer.len();
        let taken = socket
            .recv_many_timeout(&mut buffer, 3, Duration::from_secs(10))
            .unwrap();
        assert!((1..=3).contains(&taken), "took {taken} with a limit of 3");
        assert_eq!(buffer.len(), before + taken, "appended, not replaced");
        batches += 1;
    }
    assert!(
        batches >= 7,
        "{batches} batches of at most 3 for 19 messages"
    );
    for message in buffer.drain(..) {
        assert_eq!(message.from, peer.local_addr());
        assert!(
            seen.insert(message.payload),
            "a message was handed over twice"
        );
    }
    let expected: std::collections::HashSet<bytes::Bytes> = (0..20u32)
        .map(|i| bytes::Bytes::from(format!("m{i}")))
        .collect();
    assert_eq!(seen, expected);
    socket.close().unwrap();
    assert_eq!(
        socket.recv_many_timeout(&mut buffer, 8, Duration::from_secs(5)),
        Err(RecvError::Closed)
    );
}
