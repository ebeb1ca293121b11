//! The socket over real loopback sockets, IPv4 and IPv6.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::within;
use gtudp_tokio::{
    Builder, Config, DatagramKind, Delivered, DeliveryError, FailureReason, RecvError,
    SendErrorKind, SendOptions, SendRawError, Socket, TrySendErrorKind,
};

fn fast_config() -> Config {
    let mut config = Config::default();
    config.initial_rto = Duration::from_millis(50);
    config.max_rto = Duration::from_secs(1);
    config.drain_timeout = Duration::from_secs(5);
    config
}

async fn echo_roundtrip(bind: &str) {
    let server = Socket::bind(bind, Config::default()).await.unwrap();
    let client = Socket::bind(bind, Config::default()).await.unwrap();
    let server_addr = server.local_addr();
    assert_eq!(server_addr.is_ipv6(), bind.starts_with('['));

    let echo = tokio::spawn(async move {
        for _ in 0..50 {
            let message = server.recv().await.unwrap();
            assert_eq!(message.kind, DatagramKind::Message);
            server.send_to(message.payload, message.from).await.unwrap();
        }
        server.close().await.unwrap()
    });

    let mut expected = HashSet::new();
    let mut deliveries = Vec::new();
    for i in 0..50u32 {
        let payload = format!("message {i}");
        expected.insert(payload.clone());
        deliveries.push(client.send_nowait(payload, server_addr).unwrap());
    }
    for delivery in deliveries {
        within(10, delivery).await.unwrap();
    }
    let mut buf = [0u8; 128];
    for _ in 0..50 {
        let (len, from) = within(10, client.recv_from(&mut buf)).await.unwrap();
        assert_eq!(from, server_addr);
        let text = String::from_utf8(buf[..len].to_vec()).unwrap();
        assert!(
            expected.remove(&text),
            "unexpected or repeated echo {text:?}"
        );
    }
    assert!(expected.is_empty());

    let summary = within(10, client.close()).await.unwrap();
    assert_eq!(summary.stats.endpoint.delivered, 50);
    assert_eq!(summary.stats.endpoint.received, 50);
    assert!(!summary.deadline_reached);
    let server_summary = within(10, echo).await.unwrap();
    assert_eq!(server_summary.stats.endpoint.received, 50);
    assert_eq!(server_summary.stats.endpoint.delivered, 50);
    // Receives end once the socket has closed and the queue is empty.
    assert_eq!(client.recv().await, Err(RecvError::Closed));
}

#[tokio::test]
async fn echo_over_ipv4() {
    echo_roundtrip("127.0.0.1:0").await;
}

#[tokio::test]
async fn echo_over_ipv6() {
    echo_roundtrip("[::1]:0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_share_one_socket() {
    let server = Socket::bind("127.0.0.1:0", Config::default())
        .await
        .unwrap();
    let client = Socket::bind("127.0.0.1:0", Config::default())
        .await
        .unwrap();
    let to = server.local_addr();
    let mut tasks = Vec::new();
    for task in 0..8u32 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25u32 {
                client.send_to(format!("{task}/{i}"), to).await.unwrap();
            }
        }));
    }
    let mut seen = HashSet::new();
    for _ in 0..200 {
        let message = within(10, server.recv()).await.unwrap();
        assert!(
            seen.insert(message.payload),
            "a message was handed over twice"
        );
    }
    for task in tasks {
        within(10, task).await.unwrap();
    }
    assert_eq!(client.stats().endpoint.delivered, 200);
}

/// Several tasks in `recv` on one socket, while one of them reads a batch
/// and queues the rest for the others: each message reaches exactly one
/// task, and every task gets its share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_receive_from_one_socket() {
    const TASKS: u32 = 4;
    const PER_TASK: u32 = 100;
    let server = Socket::bind("127.0.0.1:0", Config::default())
        .await
        .unwrap();
    let client = Socket::bind("127.0.0.1:0", Config::default())
        .await
        .unwrap();
    let to = server.local_addr();
    let mut receivers = Vec::new();
    for _ in 0..TASKS {
        let server = server.clone();
        receivers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..PER_TASK {
                got.push(within(10, server.recv()).await.unwrap().payload);
            }
            got
        }));
    }
    let mut deliveries = Vec::new();
    for i in 0..TASKS * PER_TASK {
        deliveries.push(client.send_nowait(format!("{i}"), to).unwrap());
        if i % 50 == 49 {
            // Bursts, so that one read takes several messages at once.
            tokio::task::yield_now().await;
        }
    }
    for delivery in deliveries {
        within(10, delivery).await.unwrap();
    }
    let mut seen = HashSet::new();
    for receiver in receivers {
        for payload in within(10, receiver).await.unwrap() {
            assert!(seen.insert(payload), "a message was handed over twice");
        }
    }
    assert_eq!(seen.len() as u32, TASKS * PER_TASK);
}

#[tokio::test]
async fn recv_from_reports_truncation_and_keeps_the_datagram() {
    let server = Socket::bind("127.0.0.1:0", Config::default())
        .await
        .unwrap();
    let client = Socket::bind("127.0.0.1:0", Config::default())
        .await
        .unwrap();
    client
        .send_to(vec![7u8; 100], server.local_addr())
        .await
        .unwrap();
    let mut small = [0u8; 10];
    assert_eq!(
        within(10, server.recv_from(&mut small)).await,
        Err(RecvError::Truncated {
            len: 100,
            capacity: 10
        })
    );
    let mut large = [0u8; 200];
    let (len, from) = within(10, server.recv_from(&mut large)).await.unwrap();
    assert_eq!(len, 100);
    assert_eq!(from, client.local_addr());
    assert!(large[..100].iter().all(|&b| b == 7));
}

#[tokio::test]
async fn oversized_payload_is_refused_at_once() {
    let client = Socket::bind("127.0.0.1:0", Config::default())
        .await
        .unwrap();
    let max = client.max_payload_size();
    let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let error = client.send_nowait(vec![0u8; max + 1], to).unwrap_err();
    assert_eq!(
        error.kind(),
        TrySendErrorKind::PayloadTooLarge { size: max + 1, max }
    );
    assert_eq!(error.into_payload().len(), max + 1);
    let error = client.send_to(vec![0u8; max + 1], to).await.unwrap_err();
    assert!(matches!(
        error,
        DeliveryError::Refused {
            kind: SendErrorKind::PayloadTooLarge { .. },
            ..
        }
    ));
}

#[tokio::test]
async fn foreign_datagrams_are_flagged_and_raw_sends_are_unframed() {
    let mut config = Config::default();
    config.deliver_foreign = true;
    let socket = Socket::bind("127.0.0.1:0", config).await.unwrap();
    let plain = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();

    plain.send_to(b"hello", socket.local_addr()).await.unwrap();
    let datagram = within(10, socket.recv()).await.unwrap();
    assert_eq!(datagram.kind, DatagramKind::Foreign);
    assert_eq!(&datagram.payload[..], b"hello");
    assert_eq!(datagram.from, plain.local_addr().unwrap());

    socket
        .send_raw_to(
            Bytes::from_static(b"\x1dnot framed"),
            plain.local_addr().unwrap(),
        )
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let (len, from) = within(10, plain.recv_from(&mut buf)).await.unwrap();
    assert_eq!(&buf[..len], b"\x1dnot framed");
    assert_eq!(from, socket.local_addr());
    assert_eq!(socket.stats().endpoint.raw_out, 1);

    let error = socket
        .send_raw_to(vec![0u8; 70_000], plain.local_addr().unwrap())
        .await
        .unwrap_err();
    assert_eq!(error, SendRawError::TooLarge { size: 70_000 });
}

#[tokio::test]
async fn full_receive_queue_defers_data_without_loss() {
    let receiver = Builder::new(fast_config())
        .recv_queue(4)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let sender = Socket::bind("127.0.0.1:0", fast_config()).await.unwrap();
    let to = receiver.local_addr();
    let deliveries: Vec<_> = (0..20u32)
        .map(|i| sender.send_nowait(i.to_be_bytes().to_vec(), to).unwrap())
        .collect();
    // Let the queue fill while nobody reads.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(receiver.stats().endpoint.dropped.data_unanswered_paused > 0);
    let mut seen = HashSet::new();
    for _ in 0..20 {
        let message = within(20, receiver.recv()).await.unwrap();
        assert!(seen.insert(message.payload));
    }
    for delivery in deliveries {
        within(20, delivery).await.unwrap();
    }
    assert_eq!(receiver.stats().endpoint.received, 20);
}

#[tokio::test]
async fn icmp_errors_do_not_stop_the_driver() {
    // A port with nobody behind it (for now).
    let placeholder = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let target = placeholder.local_addr().unwrap();
    drop(placeholder);

    // A connected socket receives the ICMP port-unreachable reports as
    // ConnectionRefused errors.
    let std_socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    std_socket.connect(target).unwrap();
    let mut config = fast_config();
    config.max_attempts = 3;
    config.initial_rto = Duration::from_millis(20);
    let socket = Socket::from_std(std_socket, config).unwrap();

    let error = within(10, socket.send_to(&b"anyone?"[..], target))
        .await
        .unwrap_err();
    // Linux names the unreachable destination (the error queue); elsewhere
    // the attempt limit ends the message.
    let expected = if cfg!(target_os = "linux") {
        FailureReason::Unreachable
    } else {
        FailureReason::AttemptsExhausted
    };
    assert_eq!(error.reason(), Some(expected));
    assert!(error.may_have_arrived());

    // The socket still works: the same socket now reaches a live peer
    // bound on that port.
    let peer = Socket::bind(target, Config::default()).await.unwrap();
    within(10, socket.send_to(&b"now?"[..], target))
        .await
        .unwrap();
    assert_eq!(&within(10, peer.recv()).await.unwrap().payload[..], b"now?");
    let io = socket.stats().io;
    assert!(io.icmp_errors + io.unreachable_reports > 0, "{io:?}");
}

#[tokio::test]
async fn limits_refuse_sends_without_queueing() {
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let to = silent.local_addr().unwrap();
    let socket = Builder::new(Config::default())
        .max_outstanding(2)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let first = socket.send_nowait(&b"1"[..], to).unwrap();
    let second = socket.send_nowait(&b"2"[..], to).unwrap();
    let error = socket.send_nowait(&b"3"[..], to).unwrap_err();
    assert_eq!(error.kind(), TrySendErrorKind::TooManyOutstanding);
    assert!(error.is_retryable());

    // Cancelling resolves the send and frees its place.
    let outcome = within(10, first.cancel()).await;
    assert_eq!(
        outcome.unwrap_err().reason(),
        Some(FailureReason::Cancelled)
    );
    let third = socket.send_nowait(&b"3"[..], to).unwrap();

    // A dropped Delivery does not cancel: the message keeps being resent.
    drop(second);
    let before = socket.stats().endpoint.datagrams_out.data;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert!(socket.stats().endpoint.datagrams_out.data > before);
    drop(third);
}

#[tokio::test(start_paused = true)]
async fn deadlines_and_attempt_limits_run_on_paused_time() {
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let to = silent.local_addr().unwrap();
    let socket = Socket::bind("127.0.0.1:0", Config::default())
        .await
        .unwrap();

    let start = tokio::time::Instant::now();
    let error = socket
        .send_to_with(
            &b"x"[..],
            to,
            SendOptions::default().with_timeout(Duration::from_secs(30)),
        )
        .await
        .unwrap_err();
    assert_eq!(error.reason(), Some(FailureReason::DeadlineExpired));
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(30) && waited < Duration::from_secs(31),
        "{waited:?}"
    );

    let error = socket
        .send_to_with(&b"y"[..], to, SendOptions::default().with_max_attempts(2))
        .await
        .unwrap_err();
    assert_eq!(error.reason(), Some(FailureReason::AttemptsExhausted));
}

#[tokio::test(start_paused = true)]
async fn close_drains_with_a_deadline_on_paused_time() {
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let to = silent.local_addr().unwrap();
    let mut config = Config::default();
    config.drain_timeout = Duration::from_secs(3);
    let socket = Socket::bind("127.0.0.1:0", config).await.unwrap();
    let deliveries: Vec<_> = (0..3u8)
        .map(|i| socket.send_nowait(vec![i], to).unwrap())
        .collect();

    let start = tokio::time::Instant::now();
    let summary = socket.close().await.unwrap();
    assert!(summary.deadline_reached);
    assert_eq!(summary.abandoned, 3);
    assert_eq!(summary.failed, 3);
    assert_eq!(summary.delivered, 0);
    // All three failed while draining: the drain's share is the total.
    assert_eq!((summary.drained_delivered, summary.drained_failed), (0, 3));
    let line = summary.to_string();
    assert!(
        line.starts_with("delivered 0, failed 3 (drain: delivered 0, failed 3, abandoned 3, ")
            && line.ends_with(", deadline reached)"),
        "{line}"
    );
    assert!(start.elapsed() >= Duration::from_secs(3));
    for delivery in deliveries {
        assert_eq!(
            delivery.await.unwrap_err().reason(),
            Some(FailureReason::EndpointClosed)
        );
    }
    // Closing again returns the same summary; sending is refused.
    assert_eq!(socket.close().await.unwrap(), summary);
    assert!(socket.is_closing());
    let error = socket.send_nowait(&b"late"[..], to).unwrap_err();
    assert_eq!(error.kind(), TrySendErrorKind::Closed);
}

#[tokio::test]
async fn close_waits_for_in_flight_messages() {
    let server = Socket::bind("[::1]:0", Config::default()).await.unwrap();
    let client = Socket::bind("[::1]:0", Config::default()).await.unwrap();
    let to = server.local_addr();
    for i in 0..20u8 {
        drop(client.send_nowait(vec![i; 10], to).unwrap());
    }
    let summary = within(10, client.close()).await.unwrap();
    assert_eq!(summary.delivered, 20);
    assert_eq!(summary.failed, 0);
    assert!(!summary.deadline_reached);
    let peer = within(10, client.peer_stats(to)).await;
    assert!(peer.is_err(), "the socket has stopped");
    for _ in 0..20 {
        within(10, server.recv()).await.unwrap();
    }
}

/// Resends ordered because the message was presumed lost.
fn presumed_lost(client: &Socket) -> u64 {
    let stats = client.stats().endpoint;
    stats.retransmission_timeouts + stats.tail_loss_probes + stats.loss_detected_early
}

#[tokio::test]
async fn a_delivery_says_whether_the_message_was_suspected_lost() {
    let client = Socket::bind("127.0.0.1:0", fast_config()).await.unwrap();
    // The server's port swallows the first DATA before gtUDP takes it
    // over: only the resend on the retransmission timeout can arrive.
    let port = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let server_addr = port.local_addr().unwrap();
    let delivery = client.start_send("lost once", server_addr).await.unwrap();
    let mut buf = [0u8; 64];
    let (_, from) = within(10, port.recv_from(&mut buf)).await.unwrap();
    assert_eq!(from, client.local_addr());
    let server = Socket::from_tokio(port, fast_config()).unwrap();
    let delivered: Delivered = within(10, delivery).await.unwrap();
    assert!(delivered.suspected_lost);
    assert!(presumed_lost(&client) > 0);
    assert_eq!(
        &within(10, server.recv()).await.unwrap().payload[..],
        b"lost once"
    );

    // A clean exchange (unless the loaded machine outran a timer).
    let before = presumed_lost(&client);
    let delivery = client.start_send("clean", server_addr).await.unwrap();
    let delivered = within(10, delivery).await.unwrap();
    assert_eq!(delivered.suspected_lost, presumed_lost(&client) > before);
    assert_eq!(
        &within(10, server.recv()).await.unwrap().payload[..],
        b"clean"
    );
}
