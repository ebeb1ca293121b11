//! How an endpoint hands its datagrams to the adapter, driving endpoints by
//! hand on virtual time: batching and pending transmits.

mod common;

use bytes::Bytes;
use common::{addr, encode, Pair};
use gtudp_proto::wire::{Identity, Packet};

#[test]
fn batches_same_size_datagrams_for_one_destination() {
    let mut pair = Pair::new();
    for _ in 0..5 {
        pair.send(b"same");
    }
    pair.a
        .send(pair.now, addr(3000), Bytes::from_static(b"elsewhere"))
        .expect("ok");
    let mut buf = Vec::new();
    let transmit = pair.a.poll_transmit(pair.now, 10, &mut buf).expect("batch");
    assert_eq!(transmit.destination, pair.b_addr);
    assert_eq!(transmit.segment_size, Some(9));
    assert_eq!(transmit.datagram_count(), 5);
    for datagram in transmit.datagrams(&buf) {
        pair.b
            .handle_datagram(pair.now, pair.a_addr, Bytes::copy_from_slice(datagram));
    }
    assert_eq!(pair.events_b().len(), 5);
    let next = pair
        .a
        .poll_transmit(pair.now, 10, &mut buf)
        .expect("other peer");
    assert_eq!((next.destination, next.segment_size), (addr(3000), None));
}

#[test]
fn pending_transmits_are_reported_until_drained() {
    let mut pair = Pair::new();
    assert!(!pair.a.has_pending_transmits());
    pair.send(b"x");
    assert!(pair.a.has_pending_transmits());
    pair.out_a();
    assert!(!pair.a.has_pending_transmits());
}

#[test]
fn replies_and_data_batch_separately_even_when_interleaved() {
    let mut pair = Pair::new();
    for n in 0..10u32 {
        pair.send(b"a full-size message");
        // A RECV arrives between sends, so an ACK is queued between DATA.
        let identity = Identity::from_u32(0xffff_0000 + n);
        pair.a
            .handle_datagram(pair.now, pair.b_addr, encode(Packet::Recv { identity }));
    }
    let mut buf = Vec::new();
    let replies = pair.a.poll_transmit(pair.now, 64, &mut buf).expect("ACKs");
    assert_eq!(
        replies.datagram_count(),
        10,
        "the ACKs go out in one batch, first"
    );
    assert_eq!(replies.segment_size, Some(5));
    let data = pair.a.poll_transmit(pair.now, 64, &mut buf).expect("DATA");
    assert_eq!(data.datagram_count(), 10, "then the DATA, in one batch");
    assert!(pair.a.poll_transmit(pair.now, 64, &mut buf).is_none());
}
