//! The blocking, thread-backed socket: echo, failure, loss, backpressure,
//! truncation and close.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::relay::{Impairment, Relay};
use gtudp_mio::{
    BindError, BlockingOptions, BlockingSocket, Config, Delivered, DeliveryError, FailureReason,
    RecvError,
};

/// Echoes `count` messages back to their senders, then closes.
fn echo_server(server: BlockingSocket, count: usize) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut pending = Vec::new();
        for _ in 0..count {
            let message = server.recv_timeout(Duration::from_secs(15)).unwrap();
            pending.push(server.send_to(message.payload, message.from).unwrap());
        }
        for send in pending {
            send.wait().unwrap();
        }
        server.close().unwrap();
    })
}

#[test]
fn echo_with_send_to_blocking() {
    let server = BlockingSocket::bind("127.0.0.1:0", common::fast_config()).unwrap();
    let client = BlockingSocket::bind("127.0.0.1:0", common::fast_config()).unwrap();
    let server_addr = server.local_addr();
    let server = echo_server(server, 20);

    let mut buf = [0u8; 64];
    for n in 0..20u32 {
        let payload = format!("message {n}");
        client
            .send_to_blocking(payload.clone().into_bytes(), server_addr)
            .unwrap();
        let (len, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!(from, server_addr);
        assert_eq!(&buf[..len], payload.as_bytes());
    }
    server.join().unwrap();
    let summary = client.close().unwrap();
    assert_eq!(summary.stats.endpoint.delivered, 20);
    assert_eq!(summary.stats.endpoint.received, 20);
    assert!(!summary.deadline_reached);
    // A normal run: the totals are the socket's, the drain had nothing left.
    assert_eq!((summary.delivered, summary.failed), (20, 0));
    assert_eq!((summary.drained_delivered, summary.drained_failed), (0, 0));
    let line = summary.to_string();
    assert!(
        line.starts_with("delivered 20, failed 0 (drain: delivered 0, failed 0, abandoned 0, "),
        "{line}"
    );
    assert!(!line.contains('\n') && !line.contains("deadline"), "{line}");
}

#[test]
fn send_to_nobody_fails_after_attempts() {
    let mut config = Config::default();
    config.initial_rto = Duration::from_millis(20);
    config.min_rto = Duration::from_millis(10);
    config.max_rto = Duration::from_millis(40);
    config.max_attempts = 3;
    config.remember_window = Duration::from_millis(500);
    config.datagram_lifetime = Duration::from_millis(500);
    let socket = BlockingSocket::bind("127.0.0.1:0", config).unwrap();
    // A peer that receives but never answers (no ICMP report either).
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let nobody = silent.local_addr().unwrap();

    let outcome = socket.send_to_blocking(&b"anyone?"[..], nobody);
    assert_eq!(
        outcome,
        Err(DeliveryError::Failed {
            to: nobody,
            reason: FailureReason::AttemptsExhausted
        })
    );
    assert!(outcome.unwrap_err().may_have_arrived());
    // A port where nothing listens: the ICMP report fails the message
    // (Linux) or the attempt limit does, and the socket goes on working.
    let closed = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let second = socket.send_to(&b"again"[..], closed).unwrap();
    let mut result = None;
    for _ in 0..100 {
        result = second.wait_timeout(Duration::from_millis(100));
        if result.is_some() {
            break;
        }
    }
    let expected = if cfg!(target_os = "linux") {
        FailureReason::Unreachable
    } else {
        FailureReason::AttemptsExhausted
    };
    assert_eq!(
        result.and_then(|r| r.err()).and_then(|e| e.reason()),
        Some(expected)
    );
    assert_eq!(socket.stats().endpoint.failed, 2);
    drop(silent);
}

#[test]
fn echo_through_lossy_relay() {
    const COUNT: usize = 150;
    let server = BlockingSocket::bind("127.0.0.1:0", common::fast_config()).unwrap();
    let relay = Relay::start(
        server.local_addr(),
        Impairment {
            loss: 0.2,
            duplicate: 0.1,
            max_delay: Duration::from_millis(5),
            seed: 7,
        },
    )
    .unwrap();
    let server = echo_server(server, COUNT);
    let client = BlockingSocket::bind("127.0.0.1:0", common::fast_config()).unwrap();

    let pending: Vec<_> = (0..COUNT)
        .map(|n| client.send_to(format!("lossy {n}"), relay.addr).unwrap())
        .collect();
    let mut echoes = HashSet::new();
    for _ in 0..COUNT {
        let message = client.recv_timeout(Duration::from_secs(15)).unwrap();
        assert_eq!(message.from, relay.addr);
        assert!(echoes.insert(message.payload), "echo received twice");
    }
    for send in pending {
        send.wait().unwrap();
    }
    let expected: HashSet<Bytes> = (0..COUNT)
        .map(|n| Bytes::from(format!("lossy {n}")))
        .collect();
    assert_eq!(echoes, expected);
    server.join().unwrap();
    // Nothing more arrives: duplicates were suppressed.
    assert_eq!(
        client.recv_timeout(Duration::from_millis(200)),
        Err(RecvError::TimedOut)
    );
    let summary = client.close().unwrap();
    assert!(summary.stats.endpoint.retransmissions > 0);
    assert!(
        relay
            .counters
            .dropped
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
}

#[test]
fn full_receive_queue_pauses_without_loss() {
    const COUNT: usize = 60;
    let options = BlockingOptions::default().with_receive_queue(4);
    let receiver = BlockingSocket::with_options(
        std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
        common::fast_config(),
        options,
    )
    .unwrap();
    let sender = BlockingSocket::bind("127.0.0.1:0", common::fast_config()).unwrap();
    let pending: Vec<_> = (0..COUNT)
        .map(|n| {
            sender
                .send_to(format!("{n}"), receiver.local_addr())
                .unwrap()
        })
        .collect();

    // Read nothing until the receiver has left some DATA unanswered.
    let give_up = Instant::now() + Duration::from_secs(10);
    while receiver.stats().endpoint.dropped.data_unanswered_paused == 0 {
        assert!(Instant::now() < give_up, "the receiver never paused");
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut got = HashSet::new();
    for _ in 0..COUNT {
        let message = receiver.recv_timeout(Duration::from_secs(15)).unwrap();
        assert!(got.insert(message.payload), "message delivered twice");
    }
    let expected: HashSet<Bytes> = (0..COUNT).map(|n| Bytes::from(format!("{n}"))).collect();
    assert_eq!(got, expected);
    for send in pending {
        send.wait().unwrap();
    }
    let stats = receiver.close().unwrap().stats;
    assert_eq!(stats.endpoint.received, COUNT as u64);
    assert!(stats.endpoint.dropped.data_unanswered_paused > 0);
}

#[test]
fn truncation_is_reported_and_nothing_is_lost() {
    let receiver = BlockingSocket::bind("127.0.0.1:0", common::fast_config()).unwrap();
    let sender = BlockingSocket::bind("127.0.0.1:0", common::fast_config()).unwrap();
    sender
        .send_to_blocking(vec![7u8; 100], receiver.local_addr())
        .unwrap();

    let mut small = [0u8; 10];
    assert_eq!(
        receiver.recv_from(&mut small),
        Err(RecvError::Truncated {
            len: 100,
            capacity: 10
        })
    );
    let error: std::io::Error = RecvError::Truncated {
        len: 100,
        capacity: 10,
    }
    .into();
    assert!(error.to_string().contains("larger buffer"));
    let mut large = [0u8; 200];
    let (len, from) = receiver.recv_from(&mut large).unwrap();
    assert_eq!((len, from), (100, sender.local_addr()));
    assert!(large[..len].iter().all(|&b| b == 7));
}

#[test]
fn close_and_drop() {
    let a = Arc::new(BlockingSocket::bind("127.0.0.1:0", common::fast_config()).unwrap());
    let b = BlockingSocket::bind("127.0.0.1:0", common::fast_config()).unwrap();
    // A receiver blocked in another thread learns of the close.
    let reader = std::thread::spawn({
        let b_addr = b.local_addr();
        let a = a.clone();
        move || {
            let _ = b_addr;
            a.recv()
        }
    });
    b.send_to_blocking(&b"one"[..], a.local_addr()).unwrap();
    assert_eq!(&reader.join().unwrap().unwrap().payload[..], b"one");

    let summary = b.cleanup().unwrap();
    assert_eq!(summary.stats.endpoint.delivered, 1);
    assert!(!summary.deadline_reached);

    // Dropping the last handle closes in the background.
    let a = Arc::into_inner(a).unwrap();
    let a_addr = a.local_addr();
    drop(a);
    let _ = a_addr;
}

#[test]
fn refusals_are_typed() {
    let socket = BlockingSocket::bind("127.0.0.1:0", Config::default()).unwrap();
    let too_big = vec![0u8; socket.max_payload_size() + 1];
    let error = socket.send_to(too_big, "127.0.0.1:9").unwrap_err();
    assert!(matches!(error, DeliveryError::Refused { .. }));
    assert!(!error.may_have_arrived());

    let zero = BlockingOptions::default().with_receive_queue(0);
    let refused = BlockingSocket::with_options(
        std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
        Config::default(),
        zero,
    );
    assert!(matches!(refused, Err(BindError::ZeroCapacity { .. })));
}

#[test]
fn recv_after_close_reports_closed() {
    let socket = BlockingSocket::bind("127.0.0.1:0", common::fast_config()).unwrap();
    assert_eq!(
        socket.recv_timeout(Duration::from_millis(20)),
        Err(RecvError::TimedOut)
    );
    let summary = socket.close().unwrap();
    assert_eq!(summary.delivered, 0);
}

/// Resends ordered because the message was presumed lost.
fn presumed_lost(client: &BlockingSocket) -> u64 {
    let stats = client.stats().endpoint;
    stats.retransmission_timeouts + stats.tail_loss_probes + stats.loss_detected_early
}

#[test]
fn a_delivery_says_whether_the_message_was_suspected_lost() {
    let client = BlockingSocket::bind("127.0.0.1:0", common::fast_config()).unwrap();
    // The server's port swallows the first DATA before gtUDP takes it
    // over: only the resend on the retransmission timeout can arrive.
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    port.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let server_addr = port.local_addr().unwrap();
    let pending = client.send_to("lost once", server_addr).unwrap();
    let mut buf = [0u8; 64];
    let (_, from) = port.recv_from(&mut buf).unwrap();
    assert_eq!(from, client.local_addr());
    let server = BlockingSocket::from_std(port, common::fast_config()).unwrap();
    let delivered: Delivered = pending.wait().unwrap();
    assert!(delivered.suspected_lost);
    assert!(presumed_lost(&client) > 0);
    let message = server.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(&message.payload[..], b"lost once");

    // A clean exchange (unless the loaded machine outran a timer).
    let before = presumed_lost(&client);
    let delivered = client.send_to_blocking("clean", server_addr).unwrap();
    assert_eq!(delivered.suspected_lost, presumed_lost(&client) > before);
    let message = server.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(&message.payload[..], b"clean");
}
