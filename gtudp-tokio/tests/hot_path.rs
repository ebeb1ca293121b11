//! The calling tasks drive the socket themselves (sends write their DATA,
//! receives read the socket), and a background task covers what nobody
//! calls for: these tests hold each side of that split to its promise.

mod common;

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::within;
use gtudp_tokio::{Config, Delivery, DeliveryError, RecvError, Socket, TrySendErrorKind};

async fn pair() -> (Socket, Socket) {
    let a = Socket::bind("127.0.0.1:0", Config::default())
        .await
        .unwrap();
    let b = Socket::bind("127.0.0.1:0", Config::default())
        .await
        .unwrap();
    (a, b)
}

/// Echoes every message until the socket closes.
fn spawn_echo(server: Socket) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut echoed = 0;
        while let Ok(message) = server.recv().await {
            if let Ok(delivery) = server.start_send(message.payload, message.from).await {
                drop(delivery);
                echoed += 1;
            }
        }
        echoed
    })
}

/// Nobody ever calls `recv` on the client: the RECVs confirming its sends
/// are read by the background task, and every send still resolves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_never_receives_still_learns_every_outcome() {
    let (client, server) = pair().await;
    let to = server.local_addr();
    let sink = tokio::spawn(async move {
        let mut count = 0;
        while server.recv().await.is_ok() {
            count += 1;
        }
        count
    });
    for i in 0..100u32 {
        within(10, client.send_to(i.to_be_bytes().to_vec(), to))
            .await
            .unwrap();
    }
    let client = Arc::new(client);
    let tasks: Vec<_> = (0..4u32)
        .map(|task| {
            let client = client.clone();
            tokio::spawn(async move {
                for i in 0..50u32 {
                    client.send_to(format!("{task}/{i}"), to).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        within(10, task).await.unwrap();
    }
    assert_eq!(client.stats().endpoint.delivered, 300);
    drop(sink);
}

/// A receive that was polled once and then held without being polled
/// counts as a task in `recv`, but reads nothing. Once the task that kept
/// reading has stopped, the background task must read for it: every send
/// to the socket still resolves, and every message is then taken once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receive_held_without_polling_does_not_stop_the_socket_answering() {
    const EACH: u32 = 50;
    let (client, server) = pair().await;
    let to = server.local_addr();
    // A task keeps reading first, so the background task leaves input to
    // it; then it stops.
    let reader = {
        let server = server.clone();
        tokio::spawn(async move {
            let mut taken = HashSet::new();
            while taken.len() < EACH as usize {
                taken.insert(server.recv().await.unwrap().payload);
            }
            taken
        })
    };
    for i in 0..EACH {
        within(10, client.send_to(i.to_be_bytes().to_vec(), to))
            .await
            .unwrap();
    }
    let mut taken = within(10, reader).await.unwrap();
    // Polled once (nothing waits: pending), then held.
    let mut held = Box::pin(server.recv());
    std::future::poll_fn(|cx| {
        assert!(held.as_mut().poll(cx).is_pending(), "nothing was waiting");
        std::task::Poll::Ready(())
    })
    .await;
    for i in EACH..2 * EACH {
        within(10, client.send_to(i.to_be_bytes().to_vec(), to))
            .await
            .unwrap();
    }
    assert!(taken.insert(within(10, held).await.unwrap().payload));
    while taken.len() < 2 * EACH as usize {
        let message = within(10, server.recv()).await.unwrap();
        assert!(taken.insert(message.payload), "handed over twice");
    }
    assert_eq!(server.stats().endpoint.received, u64::from(2 * EACH));
}

/// Four tasks receive on one socket while four others send to it: every
/// message reaches exactly one receiver, every send resolves once, and a
/// close wakes every receiver still waiting, from another task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_receivers_get_each_message_once_and_close_wakes_them() {
    let (client, server) = pair().await;
    let to = server.local_addr();
    let (found, mut seen) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
    let receivers: Vec<_> = (0..4)
        .map(|_| {
            let server = server.clone();
            let found = found.clone();
            tokio::spawn(async move {
                loop {
                    match server.recv().await {
                        Ok(message) => found.send(message.payload).unwrap(),
                        Err(error) => return error,
                    }
                }
            })
        })
        .collect();
    drop(found);
    let senders: Vec<_> = (0..4u32)
        .map(|task| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut outcomes = 0;
                for i in 0..100u32 {
                    let payload = format!("{task}/{i}");
                    let len = payload.len();
                    let outcome = client.send_to(payload, to).await;
                    assert_eq!(outcome, Ok(len));
                    outcomes += 1;
                }
                outcomes
            })
        })
        .collect();
    let mut payloads = HashSet::new();
    for _ in 0..400 {
        let payload = within(10, seen.recv()).await.unwrap();
        assert!(payloads.insert(payload), "a message was handed over twice");
    }
    for sender in senders {
        assert_eq!(within(10, sender).await.unwrap(), 100);
    }
    // Every receiver is waiting now; close from this task.
    let summary = within(20, server.close()).await.unwrap();
    assert_eq!(summary.stats.endpoint.received, 400);
    for receiver in receivers {
        assert_eq!(within(10, receiver).await.unwrap(), RecvError::Closed);
    }
    assert_eq!(client.stats().endpoint.delivered, 400);
    assert!(seen.try_recv().is_err(), "more messages than were sent");
}

/// Many tasks ping-pong through one client socket shared in an `Arc`,
/// each awaiting its own outcomes, while one task receives every echo.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_echo_through_one_shared_socket() {
    let (client, server) = pair().await;
    let to = server.local_addr();
    let echo = spawn_echo(server.clone());
    let client = Arc::new(client);
    let reader = {
        let client = client.clone();
        tokio::spawn(async move {
            let mut echoes = HashSet::new();
            while echoes.len() < 8 * 40 {
                let message = client.recv().await.unwrap();
                assert_eq!(message.from, to);
                assert!(echoes.insert(message.payload), "an echo came twice");
            }
            echoes.len()
        })
    };
    let senders: Vec<_> = (0..8u32)
        .map(|task| {
            let client = client.clone();
            tokio::spawn(async move {
                for i in 0..40u32 {
                    client.send_to(format!("{task}/{i}"), to).await.unwrap();
                }
            })
        })
        .collect();
    for sender in senders {
        within(20, sender).await.unwrap();
    }
    assert_eq!(within(20, reader).await.unwrap(), 320);
    within(20, server.close()).await.unwrap();
    assert_eq!(within(10, echo).await.unwrap(), 320);
}

/// One echo at a time: the RECV (and any ACK) a server's `recv` produced
/// waits for the application's next call, its reply, and both leave in
/// one system call (Linux: `sendmmsg`, as their sizes differ); the
/// client's RECV of the reply likewise leaves with its next send. The
/// rounds after the first (whose peers are still being validated) take
/// the server one send call for its RECV, ACK and reply when the reply
/// comes within a tick; a reply held up longer (a loaded machine
/// descheduling the test) finds the RECV sent on the tick, two calls.
/// So every round takes at most two, and at least one of the nine
/// prompt rounds one: without the holding, every round takes two.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "current_thread")]
async fn a_recv_leaves_with_the_reply_in_one_system_call() {
    let mut config = Config::default();
    config.initial_rto = Duration::from_secs(3);
    config.min_rto = Duration::from_secs(3);
    let client = Socket::bind("127.0.0.1:0", config.clone()).await.unwrap();
    let server = Socket::bind("127.0.0.1:0", config).await.unwrap();
    let to = server.local_addr();
    let mut one_call_rounds = 0;
    for round in 0..10u32 {
        let sent = client
            .start_send(round.to_be_bytes().to_vec(), to)
            .await
            .unwrap();
        let before = server.stats().io;
        let message = within(10, server.recv()).await.unwrap();
        let reply = server
            .start_send(message.payload, message.from)
            .await
            .unwrap();
        let after = server.stats().io;
        let echo = within(10, client.recv()).await.unwrap();
        assert_eq!(&echo.payload[..], round.to_be_bytes());
        within(10, sent).await.unwrap();
        drop(reply);
        if round > 0 {
            let calls = after.send_calls - before.send_calls;
            assert!(
                (1..=2).contains(&calls),
                "round {round}: {before:?} -> {after:?}"
            );
            one_call_rounds += u32::from(calls == 1);
            // The RECV and the reply at least (and the ACK of the
            // client's last RECV when it came with the message).
            assert!(after.datagrams_sent - before.datagrams_sent >= 2);
        }
    }
    assert!(
        one_call_rounds >= 1,
        "no round sent the RECV with the reply in one call"
    );
    assert_eq!(server.stats().endpoint.retransmissions, 0);
    assert_eq!(client.stats().endpoint.retransmissions, 0);
}

/// A server reads a message and then makes no further call on its
/// socket: the RECV, held for a reply that never comes, still leaves at
/// once (the background task writes it within a tick), not when the
/// message's retransmission timer fires (paused time, as below).
#[tokio::test(start_paused = true)]
async fn a_recv_without_a_reply_is_still_confirmed_at_once() {
    let mut config = Config::default();
    config.initial_rto = Duration::from_secs(3);
    config.min_rto = Duration::from_secs(3);
    let client = Socket::bind("127.0.0.1:0", config.clone()).await.unwrap();
    let server = Socket::bind("127.0.0.1:0", config).await.unwrap();
    let to = server.local_addr();
    for round in 0..3u32 {
        let delivery = client
            .start_send(round.to_be_bytes().to_vec(), to)
            .await
            .unwrap();
        let start = tokio::time::Instant::now();
        let message = within(10, server.recv()).await.unwrap();
        assert_eq!(&message.payload[..], round.to_be_bytes());
        // The server calls nothing more; the client awaits its outcome.
        within(10, delivery).await.unwrap();
        let waited = start.elapsed();
        assert!(
            waited < Duration::from_secs(1),
            "round {round}: the RECV waited {waited:?}: the DATA was resent"
        );
    }
    assert_eq!(client.stats().endpoint.retransmissions, 0);
}

/// A server that works on each message before it replies: after the
/// first, whose RECV waited for the reply until the background task wrote
/// it, its RECVs are written as soon as it reads the messages, so the
/// client learns `Delivered` without waiting for the server's work or a
/// tick (paused time: no wait means no virtual time passes).
#[tokio::test(start_paused = true)]
async fn the_recvs_of_a_server_slow_to_reply_are_not_held() {
    let mut config = Config::default();
    config.initial_rto = Duration::from_secs(3);
    config.min_rto = Duration::from_secs(3);
    let client = Socket::bind("127.0.0.1:0", config.clone()).await.unwrap();
    let server = Socket::bind("127.0.0.1:0", config).await.unwrap();
    let to = server.local_addr();
    let replier = server.clone();
    let work = tokio::spawn(async move {
        while let Ok(message) = replier.recv().await {
            tokio::time::sleep(Duration::from_millis(5)).await;
            drop(replier.start_send(message.payload, message.from).await);
        }
    });
    for round in 0..6u32 {
        let start = tokio::time::Instant::now();
        within(10, client.send_to(round.to_be_bytes().to_vec(), to))
            .await
            .unwrap();
        let waited = start.elapsed();
        if round >= 2 {
            assert!(
                waited < Duration::from_micros(500),
                "round {round}: Delivered after {waited:?}: the RECV was held"
            );
        }
        let reply = within(10, client.recv()).await.unwrap();
        assert_eq!(&reply.payload[..], round.to_be_bytes());
    }
    assert_eq!(client.stats().endpoint.retransmissions, 0);
    work.abort();
}

/// A server takes one message out of a backlog and replies, then makes no
/// further call on its socket: the reply, written late to join others in
/// one system call, still leaves at once (the background task writes it),
/// not when the message's first retransmission timer fires. On paused
/// time, which only advances when every task waits, so the test measures
/// what woke the write, not the machine's speed.
#[tokio::test(start_paused = true)]
async fn a_reply_made_while_draining_a_backlog_still_leaves() {
    let mut config = Config::default();
    config.initial_rto = Duration::from_secs(3);
    config.min_rto = Duration::from_secs(3);
    let client = Socket::bind("127.0.0.1:0", config.clone()).await.unwrap();
    let server = Socket::bind("127.0.0.1:0", config).await.unwrap();
    let to = server.local_addr();
    for i in 0..20u32 {
        within(10, client.send_to(i.to_be_bytes().to_vec(), to))
            .await
            .unwrap();
    }
    // Let the ACKs of those twenty arrive, so no input is left to read.
    let acks = within(10, async {
        while server.stats().endpoint.datagrams_in.ack < 20 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    acks.await;
    // Twenty messages wait in the server's queue; take one of them.
    let first = within(10, server.recv()).await.unwrap();
    let start = tokio::time::Instant::now();
    let reply = server.start_send(&b"reply"[..], first.from).await.unwrap();
    // The server now calls nothing but awaits its outcome.
    within(10, reply).await.unwrap();
    let waited = start.elapsed();
    assert!(
        waited < Duration::from_secs(1),
        "the reply waited {waited:?}: it left by its retransmission timer"
    );
    let message = within(10, client.recv()).await.unwrap();
    assert_eq!(&message.payload[..], b"reply");
}

/// Many outcomes are handed over at once, so sends that follow are held
/// to leave together; when only one follows, it still leaves within a
/// tick, not at its retransmission timer (paused time, as above).
#[tokio::test(start_paused = true)]
async fn a_send_after_a_burst_of_outcomes_still_leaves() {
    let mut config = Config::default();
    config.initial_rto = Duration::from_secs(3);
    config.min_rto = Duration::from_secs(3);
    let client = Socket::bind("127.0.0.1:0", config.clone()).await.unwrap();
    let server = Socket::bind("127.0.0.1:0", config).await.unwrap();
    let to = server.local_addr();
    let burst = sends(&client, to, 0..32u32);
    for delivery in burst {
        within(10, delivery).await.unwrap();
    }
    let start = tokio::time::Instant::now();
    within(10, client.send_to(&b"one more"[..], to))
        .await
        .unwrap();
    let waited = start.elapsed();
    assert!(
        waited < Duration::from_secs(1),
        "the send waited {waited:?}: it left by its retransmission timer"
    );
    assert_eq!(server.stats().endpoint.received, 33);
}

/// A socket fresh from `bind` writes its first sends within the send
/// calls: none finds the socket "full" and waits for the background task
/// (as when Tokio had not yet seen the new socket writable).
#[tokio::test(flavor = "current_thread")]
async fn the_first_sends_of_a_bound_socket_leave_within_their_calls() {
    let (client, server) = pair().await;
    let to = server.local_addr();
    for i in 0..4u32 {
        let before = client.stats().io;
        drop(client.send_nowait(i.to_be_bytes().to_vec(), to).unwrap());
        let after = client.stats().io;
        assert!(
            after.datagrams_sent > before.datagrams_sent,
            "send {i} did not leave within its call: {before:?} -> {after:?}"
        );
    }
    assert_eq!(client.stats().io.send_would_block, 0);
    for _ in 0..4 {
        within(10, server.recv()).await.unwrap();
    }
}

const REACTIONS: usize = 16;

/// A raw peer for the reaction tests: it takes the socket's `count`
/// DATA, then answers them all at once, in order (blocking the runtime,
/// so the socket reads every RECV in one go).
fn answer_all_at_once(peer: &std::net::UdpSocket, socket: &Socket, count: usize) {
    const DATA: u8 = 0x1d;
    const RECV: u8 = 0x5f;
    let mut buf = [0u8; 2048];
    let mut identities = Vec::new();
    while identities.len() < count {
        let (len, from) = peer.recv_from(&mut buf).unwrap();
        assert_eq!(from, socket.local_addr());
        if len >= 5 && buf[0] == DATA {
            identities.push(buf[1..5].to_vec());
        }
    }
    for identity in &identities {
        peer.send_to(&[&[RECV][..], identity].concat(), socket.local_addr())
            .unwrap();
    }
}

/// The `count` reactions' DATA (payloads 100 and up) all reach the raw
/// peer. Waits without blocking the runtime: what the socket still holds
/// back (its pacer, a deferral) is written by its background task.
async fn expect_reactions(peer: &std::net::UdpSocket, count: usize) {
    peer.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 2048];
    let mut reacted = HashSet::new();
    within(10, async {
        while reacted.len() < count {
            match peer.recv_from(&mut buf) {
                Ok((9, _)) if buf[0] == 0x1d => {
                    reacted.insert(u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]));
                }
                Ok(_) => {}
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err(error) => panic!("{error}"),
            }
        }
    })
    .await;
    assert_eq!(reacted, (100..100 + count as u32).collect::<HashSet<_>>());
}

async fn reaction_pair() -> (Socket, std::net::UdpSocket) {
    let mut config = Config::default();
    config.initial_rto = Duration::from_secs(3);
    config.min_rto = Duration::from_secs(3);
    let socket = Socket::bind("127.0.0.1:0", config).await.unwrap();
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    (socket, peer)
}

/// Sixteen outcomes (a first window's worth) reach sixteen waiting tasks
/// at once. The first task woken keeps the runtime busy for 2 ms (as a
/// loaded machine delays tasks), so the other fifteen run late, each
/// reacting with a send. The sends still leave together: the batch of
/// outcomes is younger than `LATE` (4 ms), and holds more than the sends
/// made since. Were the expectation to lapse after a tick (1 ms), every
/// late send would take a system call of its own (fifteen; GSO joins the
/// held ones into one).
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "current_thread")]
async fn sends_of_tasks_woken_together_leave_together_however_late_they_run() {
    // One or two (the ACKs may leave first); a loaded machine may add a
    // write by the background task or the pacer. Without the
    // expectation: fifteen or more.
    reactions_take_at_most(5, late_reactions).await;
}

/// Runs `attempt` (which returns the send calls some reactions took) until
/// it takes at most `calls`, three times at most: a loaded machine may
/// delay the reactions past `LATE`, and then an attempt proves nothing.
async fn reactions_take_at_most<F, Fut>(calls: u64, mut attempt: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = u64>,
{
    let mut attempts = Vec::new();
    for _ in 0..3 {
        attempts.push(attempt().await);
        if attempts.last().is_some_and(|&taken| taken <= calls) {
            return;
        }
    }
    panic!("send calls for the reactions, in each attempt: {attempts:?}");
}

/// One attempt of the test above: the send calls the late reactions took.
async fn late_reactions() -> u64 {
    const LATE: usize = REACTIONS - 1;
    let (client, peer) = reaction_pair().await;
    let to = peer.local_addr().unwrap();
    // Message 0's RECV is read first, so its task is woken first.
    let busy = client.send_nowait(0u32.to_be_bytes().to_vec(), to).unwrap();
    let busy = tokio::spawn(async move {
        busy.await.unwrap();
        std::thread::sleep(Duration::from_millis(2));
    });
    let reactions: Vec<_> = (1..=LATE as u32)
        .map(|i| {
            let delivery = client.send_nowait(i.to_be_bytes().to_vec(), to).unwrap();
            let client = client.clone();
            tokio::spawn(async move {
                delivery.await.unwrap();
                drop(
                    client
                        .send_nowait((99 + i).to_be_bytes().to_vec(), to)
                        .unwrap(),
                );
            })
        })
        .collect();
    // Let every task poll its delivery, so that its outcome wakes it.
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
    let before = client.stats().io;
    answer_all_at_once(&peer, &client, LATE + 1);
    within(10, busy).await.unwrap();
    for reaction in reactions {
        within(10, reaction).await.unwrap();
    }
    let calls = client.stats().io.send_calls - before.send_calls;
    expect_reactions(&peer, LATE).await;
    calls
}

/// The application sends sixteen messages, and only once all sixteen are
/// confirmed reads their outcomes, reacting to each with a send (as a
/// sender does that fills its window faster than it polls it). Nobody was
/// woken, yet the reactions still leave together: each outcome left for a
/// live handle is a send to come. Counting only the outcomes that woke a
/// task would write every reaction in a system call of its own.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "current_thread")]
async fn outcomes_read_later_still_bring_sends_that_leave_together() {
    // One, or a few on a loaded machine; sixteen without the expectation.
    reactions_take_at_most(4, reactions_read_later).await;
}

/// One attempt of the test above: the send calls the reactions took.
async fn reactions_read_later() -> u64 {
    let (client, peer) = reaction_pair().await;
    let to = peer.local_addr().unwrap();
    let deliveries = sends(&client, to, 0..REACTIONS as u32);
    answer_all_at_once(&peer, &client, REACTIONS);
    confirmed(&client, REACTIONS as u64).await;
    let before = client.stats().io;
    for (i, delivery) in (0u32..).zip(deliveries) {
        within(10, delivery).await.unwrap();
        drop(
            client
                .send_nowait((100 + i).to_be_bytes().to_vec(), to)
                .unwrap(),
        );
    }
    let calls = client.stats().io.send_calls - before.send_calls;
    expect_reactions(&peer, REACTIONS).await;
    calls
}

/// Sends messages `range` (each its number) to `to`, keeping the handles.
fn sends(client: &Socket, to: SocketAddr, range: std::ops::Range<u32>) -> Vec<Delivery> {
    range
        .map(|i| client.send_nowait(i.to_be_bytes().to_vec(), to).unwrap())
        .collect()
}

/// Waits until `client` has seen `count` messages delivered.
async fn confirmed(client: &Socket, count: u64) {
    within(10, async {
        while client.stats().endpoint.delivered < count {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
}

/// After a short pause, sends message `i` to `to` and drops its handle;
/// returns the datagrams `client` wrote before and after the call.
async fn send_unawaited(client: &Socket, to: SocketAddr, i: u32) -> (u64, u64) {
    tokio::time::sleep(Duration::from_micros(300)).await;
    let before = client.stats().io.datagrams_sent;
    drop(client.send_nowait(i.to_be_bytes().to_vec(), to).unwrap());
    (before, client.stats().io.datagrams_sent)
}

/// How many of `sends` (each made by `send`, which returns the socket's
/// datagrams written before and after it) did not leave within their call.
async fn held_back<F, Fut>(sends: std::ops::Range<u32>, mut send: F) -> usize
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = (u64, u64)>,
{
    let mut held = 0;
    for i in sends {
        let (before, after) = send(i).await;
        held += usize::from(after == before);
    }
    held
}

/// An application keeps two handles unread, then sends and awaits each
/// message in turn: each outcome it awaits is a batch of one, which
/// expects no further send, so only the first send can be held (by the
/// kept batch's credit), and then only until the background task's tick.
#[tokio::test(flavor = "current_thread")]
async fn kept_handles_do_not_hold_back_the_sends_of_an_application_that_awaits_each() {
    let (client, server) = pair().await;
    let to = server.local_addr();
    let kept = sends(&client, to, 0..2u32);
    let send = |i: u32| {
        let client = client.clone();
        async move {
            let before = client.stats().io.datagrams_sent;
            let delivery = client.send_nowait(i.to_be_bytes().to_vec(), to).unwrap();
            let after = client.stats().io.datagrams_sent;
            within(10, delivery).await.unwrap();
            (before, after)
        }
    };
    let held = held_back(2..42, send).await;
    assert!(held <= 1, "{held} of 40 sends held back");
    for delivery in kept {
        within(10, delivery).await.unwrap();
    }
    for _ in 0..42 {
        within(10, server.recv()).await.unwrap();
    }
}

/// One task reads twenty outcomes slowly and sends nothing; another sends
/// now and then. Once the outcomes' batch is older than `LATE` (4 ms),
/// nothing is expected of it any more: every send leaves within its call,
/// though most of the twenty are still unread.
#[tokio::test(flavor = "current_thread")]
async fn a_slow_reader_does_not_hold_back_another_task_s_sends_for_long() {
    let (client, server) = pair().await;
    let to = server.local_addr();
    let burst = sends(&client, to, 0..20u32);
    let reader = tokio::spawn(async move {
        for delivery in burst {
            delivery.await.unwrap();
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    confirmed(&client, 20).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let send = |i: u32| send_unawaited(&client, to, i);
    assert_eq!(held_back(20..30, send).await, 0);
    within(10, reader).await.unwrap();
    for _ in 0..30 {
        within(10, server.recv()).await.unwrap();
    }
}

/// The runtime that ran the socket's background task shuts down with a
/// send in flight: the send resolves (as closed) instead of hanging, and
/// `close` still returns a summary.
#[test]
fn a_runtime_shutdown_resolves_pending_sends() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to: SocketAddr = silent.local_addr().unwrap();
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (socket, delivery) = first.block_on(async {
        let socket = Socket::bind("127.0.0.1:0", Config::default())
            .await
            .unwrap();
        let delivery = socket.start_send(&b"lost"[..], to).await.unwrap();
        (socket, delivery)
    });
    drop(first);
    let second = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    second.block_on(async {
        assert_eq!(within(10, delivery).await, Err(DeliveryError::Closed));
        // Later sends are refused, never left unresolved.
        assert!(socket.is_closing());
        let late = socket.send_nowait(&b"late"[..], to).unwrap_err();
        assert_eq!(late.kind(), TrySendErrorKind::Closed);
        assert!(matches!(
            socket.send_to(&b"late"[..], to).await,
            Err(DeliveryError::Refused { .. })
        ));
        let summary = within(10, socket.close()).await.unwrap();
        assert_eq!(summary.stats.endpoint.delivered, 0);
        assert_eq!(socket.recv().await, Err(RecvError::Closed));
    });
    drop(silent);
}

/// A receive that is dropped while it waits (a `select!` or a timeout)
/// loses nothing: the next receive gets the message.
#[tokio::test]
async fn a_cancelled_receive_loses_nothing() {
    let (client, server) = pair().await;
    let to = server.local_addr();
    let timed_out = tokio::time::timeout(Duration::from_millis(20), server.recv()).await;
    assert!(timed_out.is_err());
    let send = client.send_to(&b"after"[..], to);
    let (sent, message) = tokio::join!(send, within(10, server.recv()));
    sent.unwrap();
    assert_eq!(&message.unwrap().payload[..], b"after");
}

/// `recv_many` takes what is queued in batches of at most its limit,
/// hands each message over once, mixes with `recv`, appends to the
/// buffer, and ends with `Closed` once the socket closed and all was
/// taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recv_many_takes_each_message_once_in_batches_of_at_most_its_limit() {
    let (client, server) = pair().await;
    let to = server.local_addr();
    let deliveries: Vec<_> = (0..50u32)
        .map(|i| client.send_nowait(format!("m{i}"), to).unwrap())
        .collect();
    for delivery in deliveries {
        within(10, delivery).await.unwrap();
    }
    // Every message is queued at the server now: its endpoint confirmed
    // each one.
    let mut buffer = vec![];
    assert_eq!(server.recv_many(&mut buffer, 0).await, Ok(0));
    let mut seen = HashSet::new();
    let first = within(10, server.recv()).await.unwrap();
    assert!(seen.insert(first.payload));
    let mut batches = 0;
    while seen.len() + buffer.len() < 50 {
        let before = buffer.len();
        let taken = within(10, server.recv_many(&mut buffer, 7)).await.unwrap();
        assert!((1..=7).contains(&taken), "took {taken} with a limit of 7");
        assert_eq!(buffer.len(), before + taken, "appended, not replaced");
        batches += 1;
    }
    assert!(
        batches >= 7,
        "{batches} batches of at most 7 for 49 messages"
    );
    for message in buffer.drain(..) {
        assert_eq!(message.from, client.local_addr());
        assert!(
            seen.insert(message.payload),
            "a message was handed over twice"
        );
    }
    let expected: HashSet<Bytes> = (0..50u32).map(|i| Bytes::from(format!("m{i}"))).collect();
    assert_eq!(seen, expected);
    // Nothing more: a waiting `recv_many` ends with the close.
    let waiting = tokio::spawn({
        let server = server.clone();
        async move {
            let mut buffer = vec![];
            server.recv_many(&mut buffer, 16).await
        }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    within(20, server.close()).await.unwrap();
    assert_eq!(within(10, waiting).await.unwrap(), Err(RecvError::Closed));
}

/// A message that arrives while `recv_many` waits wakes it: the batch
/// API waits as `recv` does, reading the socket itself.
#[tokio::test]
async fn recv_many_waits_for_the_next_message() {
    let (client, server) = pair().await;
    let to = server.local_addr();
    let mut buffer = Vec::new();
    let send = client.send_to(&b"late"[..], to);
    let (sent, taken) = tokio::join!(send, within(10, server.recv_many(&mut buffer, 64)));
    sent.unwrap();
    assert_eq!(taken, Ok(1));
    assert_eq!(&buffer[0].payload[..], b"late");
}
