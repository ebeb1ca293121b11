//! Two drivers in one hand-written mio loop, over loopback IPv4 and IPv6.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gtudp_mio::{Driver, Event};
use mio::{Events, Poll, Token};

const MESSAGES: usize = 200;

/// Sends `MESSAGES` each way between two drivers and checks that every one
/// is delivered and received exactly once.
fn exchange(bind: &str) {
    let mut poll = Poll::new().unwrap();
    let mut drivers = [
        Driver::bind(bind.parse().unwrap(), common::fast_config()).unwrap(),
        Driver::bind(bind.parse().unwrap(), common::fast_config()).unwrap(),
    ];
    for (index, driver) in drivers.iter_mut().enumerate() {
        // Through the `mio::event::Source` impl, as a loop would.
        poll.registry()
            .register(driver, Token(index), mio::Interest::READABLE)
            .unwrap();
    }
    let addrs: Vec<SocketAddr> = drivers.iter().map(|d| d.local_addr().unwrap()).collect();

    let now = Instant::now();
    let mut outstanding = [HashSet::new(), HashSet::new()];
    for (index, driver) in drivers.iter_mut().enumerate() {
        let peer = addrs[1 - index];
        for n in 0..MESSAGES {
            let payload = Bytes::from(format!("{index}:{n}"));
            let id = driver.send(now, peer, payload).unwrap();
            outstanding[index].insert(id);
        }
        driver.flush(now);
    }

    let mut received = [HashSet::new(), HashSet::new()];
    let mut events = Events::with_capacity(64);
    let give_up = Instant::now() + Duration::from_secs(10);
    let mut turns = 0;
    while (outstanding.iter().any(|o| !o.is_empty()) || received.iter().any(|r| r.len() < MESSAGES))
        && Instant::now() < give_up
    {
        turns += 1;
        assert!(turns < 100_000, "the loop spins");
        let deadline = drivers.iter_mut().filter_map(|d| d.poll_timeout()).min();
        let timeout = deadline
            .map(|at| at.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_millis(200))
            .min(Duration::from_millis(200));
        poll.poll(&mut events, Some(timeout)).unwrap();
        let now = Instant::now();
        for event in events.iter() {
            let driver = &mut drivers[event.token().0];
            if event.is_readable() {
                driver.handle_readable(now);
            }
            if event.is_writable() {
                driver.handle_writable(now);
            }
        }
        for (index, driver) in drivers.iter_mut().enumerate() {
            driver.handle_timeout(now);
            while let Some(event) = driver.poll_event() {
                match event {
                    Event::Delivered { id, to, .. } => {
                        assert_eq!(to, addrs[1 - index]);
                        assert!(outstanding[index].remove(&id), "outcome reported twice");
                    }
                    Event::Failed { id, reason, .. } => panic!("{id} failed: {reason}"),
                    Event::Received { from, payload } => {
                        assert_eq!(from, addrs[1 - index]);
                        assert!(received[index].insert(payload), "message delivered twice");
                    }
                    Event::Foreign { .. } => panic!("foreign datagram on loopback"),
                }
            }
        }
    }
    assert!(
        outstanding.iter().all(HashSet::is_empty),
        "not all delivered"
    );
    for (index, got) in received.iter().enumerate() {
        let expected: HashSet<Bytes> = (0..MESSAGES)
            .map(|n| Bytes::from(format!("{}:{n}", 1 - index)))
            .collect();
        assert_eq!(*got, expected);
    }

    // Close both and run the loop until they are done.
    let now = Instant::now();
    for driver in &mut drivers {
        driver.close(now);
    }
    let give_up = Instant::now() + Duration::from_secs(10);
    while !drivers.iter().all(Driver::is_closed) && Instant::now() < give_up {
        let timeout = drivers
            .iter_mut()
            .filter_map(|d| d.poll_timeout())
            .min()
            .map(|at| at.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_millis(200))
            .min(Duration::from_millis(200));
        poll.poll(&mut events, Some(timeout)).unwrap();
        let now = Instant::now();
        for event in events.iter() {
            drivers[event.token().0].handle_readable(now);
        }
        for driver in &mut drivers {
            driver.handle_timeout(now);
            while driver.poll_event().is_some() {}
        }
    }
    assert!(drivers.iter().all(Driver::is_closed));
    for driver in &drivers {
        let stats = driver.stats();
        assert_eq!(stats.endpoint.delivered, MESSAGES as u64);
        assert_eq!(stats.endpoint.received, MESSAGES as u64);
        assert!(stats.io.datagrams_sent > 0 && stats.io.datagrams_received > 0);
    }
}

#[test]
fn driver_exchange_ipv4() {
    exchange("127.0.0.1:0");
}

#[test]
fn driver_exchange_ipv6() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("IPv6 loopback unavailable; skipped");
        return;
    }
    exchange("[::1]:0");
}

/// An idle driver asks for no wake-up: nothing runs in a loop.
#[test]
fn idle_driver_has_no_timeout() {
    let mut driver = Driver::bind("127.0.0.1:0".parse().unwrap(), common::fast_config()).unwrap();
    let poll = Poll::new().unwrap();
    driver.register(poll.registry(), Token(0)).unwrap();
    assert_eq!(driver.poll_timeout(), None);
    driver.handle_timeout(Instant::now());
    assert_eq!(driver.poll_timeout(), None);
}
