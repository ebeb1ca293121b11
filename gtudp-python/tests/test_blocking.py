"""The blocking GTUDP class: the original's calls, and what it wished for."""

from __future__ import annotations

import queue
import socket
import sys
import threading
import time

import pytest

import gtudp
from conftest import FAST, LOSSY, LossyRelay, ipv6_available, receive_all, udp


def test_round_trip_through_a_lossy_relay_delivers_each_message_exactly_once():
    server_sock, client_sock = udp(), udp()
    server = gtudp.GTUDP(server_sock, **LOSSY)
    client = gtudp.GTUDP(client_sock, **LOSSY)
    server.start()
    relay = LossyRelay(server_sock.getsockname(), loss=0.25, seed=11)
    try:
        messages = [b"message %03d" % i for i in range(200)]
        handles = [client.sendto(m, relay.addr) for m in messages]
        received = receive_all(server, len(messages))
        assert sorted(data for data, _ in received) == messages, f"seed {relay.seed}"
        assert all(h.wait(timeout=20) for h in handles), f"seed {relay.seed}"
        assert all(h.delivered and h.reason is None for h in handles)
        # Nothing more arrives: the duplicates the losses caused were suppressed.
        server.setblocking(False)
        with pytest.raises(queue.Empty):
            server.recvfrom()
        assert relay.dropped > 0
        stats = client.stats()
        assert stats["delivered"] == len(messages)
        assert stats["retransmissions"] > 0
        # The server asked the relay's address to prove itself; one peer
        # is far below the unvalidated bound, so nothing was deferred.
        server_stats = server.stats()
        assert server_stats["validation_probes"] >= 1
        assert server_stats["dropped"]["data_deferred_unvalidated"] == 0
    finally:
        relay.close()
        for g, s in ((client, client_sock), (server, server_sock)):
            g.cleanup(timeout=5)
            s.close()


def test_sendto_blocking_to_a_dead_port_returns_false_within_its_timeout():
    dead = udp()
    port = dead.getsockname()
    dead.close()
    sock = udp()
    g = gtudp.GTUDP(sock)
    started = time.monotonic()
    assert g.sendto_blocking(b"anyone?", port, timeout=0.5) is False
    # The timeout is the message's deadline: it resolves then, not later
    # (the bound is generous: this is not a timing measurement).
    assert time.monotonic() - started < 5
    assert g.stats()["failed"] == 1
    summary = g.cleanup(timeout=2)
    assert summary["complete"] and summary["abandoned"] == 0
    sock.close()


def test_sendto_blocking_true_once_delivered(pair):
    a, b = pair
    assert a.sendto_blocking(b"hi", b.getsockname(), timeout=10) is True
    assert b.recvfrom() == (b"hi", a.getsockname())


def test_recvfrom_cuts_to_length_like_socket_recvfrom(pair):
    a, b = pair
    a.sendto_blocking(b"0123456789", b.getsockname(), timeout=10)
    a.sendto_blocking(b"abcdef", b.getsockname(), timeout=10)
    a.sendto_blocking(b"whole", b.getsockname(), timeout=10)
    b.settimeout(10)
    got = sorted(b.recvfrom(4)[0] for _ in range(2)) + [b.recvfrom()[0]]
    assert got[:2] == sorted([b"0123", b"abcd"])
    assert got[2] == b"whole"
    with pytest.raises(ValueError, match="negative"):
        b.recvfrom(-1)


def test_recv_many_takes_each_message_once_in_batches_of_at_most_its_limit(pair):
    a, b = pair
    messages = [b"batch %02d" % i for i in range(20)]
    assert all(h.wait(timeout=10) for h in [a.sendto(m, b.getsockname()) for m in messages])
    b.settimeout(10)
    got = []
    while len(got) < len(messages):
        batch = b.recv_many(limit=3, length=7)
        assert 1 <= len(batch) <= 3
        assert all(isinstance(m, gtudp.Message) and m.addr == a.getsockname() and not m.foreign for m in batch)
        got.extend(m.data for m in batch)
    # Each once, cut to the length asked for.
    assert sorted(got) == sorted(m[:7] for m in messages)
    b.setblocking(False)
    with pytest.raises(gtudp.Timeout):
        b.recv_many()
    with pytest.raises(ValueError, match="limit"):
        b.recv_many(limit=0)


def test_timeouts_and_non_blocking_raise_queue_empty(pair):
    _, b = pair
    b.settimeout(0.05)
    with pytest.raises(queue.Empty):
        b.recvfrom()
    with pytest.raises(TimeoutError):
        b.recvfrom()
    b.settimeout(None)
    b.setblocking(False)
    assert b.gettimeout() == 0.0
    with pytest.raises(gtudp.Timeout):
        b.recvfrom()
    with pytest.raises(ValueError):
        b.settimeout(-1)


def test_handle_reports_attempts_exhausted_and_cancel():
    dead = udp()
    addr = dead.getsockname()
    # Kept open and never read: a silent peer (a closed port would
    # answer with ICMP port unreachable, which fails sends at once).
    sock = udp()
    g = gtudp.GTUDP(sock, **FAST)
    limited = g.sendto(b"x", addr, attempts=2)
    assert limited.wait(timeout=10) is False
    assert limited.reason == "attempts_exhausted"
    assert "not confirmed" in limited.error
    deadline = g.sendto(b"y", addr, deadline=0.1)
    assert deadline.wait(timeout=10) is False and deadline.reason == "deadline_expired"
    pending = g.sendto(b"z", addr)
    assert pending.done() is False and pending.delivered is None
    assert pending.cancel() is True
    assert pending.delivered is False and pending.reason == "cancelled"
    assert pending.cancel() is False
    assert pending.destination == addr
    g.cleanup(timeout=2)
    sock.close()


def test_foreign_datagrams_in_and_raw_send_out():
    plain, sock = udp(), udp()
    g = gtudp.GTUDP(sock, recv_from_any=True)
    g.start()
    plain.sendto(b"not gtudp", sock.getsockname())
    g.settimeout(10)
    message = g.recv_message()
    assert message == gtudp.Message(b"not gtudp", plain.getsockname(), True)
    g.sendto_raw(b"plain reply", plain.getsockname())
    plain.settimeout(10)
    assert plain.recvfrom(100) == (b"plain reply", sock.getsockname())
    assert g.stats()["raw_out"] == 1 and g.stats()["foreign_delivered"] == 1
    g.cleanup(timeout=2)
    sock.close()
    plain.close()


def test_foreign_datagrams_are_dropped_without_recv_from_any(pair):
    a, b = pair
    plain = udp()
    plain.sendto(b"\x00noise", b.getsockname())
    a.sendto_blocking(b"real", b.getsockname(), timeout=10)
    assert b.recv_message() == gtudp.Message(b"real", a.getsockname(), False)
    b.setblocking(False)
    with pytest.raises(queue.Empty):
        b.recvfrom()
    plain.close()


def test_many_threads_sending_at_once_all_deliver(pair):
    a, b = pair
    threads, per_thread = 8, 50
    results: list = []

    def sender(n: int) -> None:
        mine = [a.sendto_blocking(b"%d-%d" % (n, i), b.getsockname(), timeout=20) for i in range(per_thread)]
        results.append(mine)

    workers = [threading.Thread(target=sender, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    received = receive_all(b, threads * per_thread)
    for w in workers:
        w.join(timeout=30)
    assert all(all(r) for r in results) and len(results) == threads
    expected = sorted(b"%d-%d" % (n, i) for n in range(threads) for i in range(per_thread))
    assert sorted(data for data, _ in received) == expected


def test_cleanup_with_messages_in_flight_drains_them():
    server_sock, client_sock = udp(), udp()
    server = gtudp.GTUDP(server_sock, **LOSSY)
    client = gtudp.GTUDP(client_sock, **LOSSY)
    server.start()
    relay = LossyRelay(server_sock.getsockname(), loss=0.2, seed=5)
    try:
        handles = [client.sendto(b"%d" % i, relay.addr) for i in range(100)]
        summary = client.cleanup(timeout=20)
        assert summary["complete"] and not summary["deadline_reached"], summary
        assert summary["failed"] == 0 and summary["abandoned"] == 0
        assert summary["stats"]["delivered"] == 100
        assert all(h.delivered for h in handles)
        received = receive_all(server, 100)
        assert sorted(int(d) for d, _ in received) == list(range(100))
        # After cleanup: the summary again, no new sends, the socket is yours.
        assert client.cleanup()["complete"]
        with pytest.raises(gtudp.Closed):
            client.sendto(b"late", relay.addr)
        assert client_sock.gettimeout() is None
    finally:
        relay.close()
        server.cleanup(timeout=5)
        server_sock.close()
        client_sock.close()


def test_cleanup_abandons_what_the_drain_deadline_leaves():
    dead = udp()
    addr = dead.getsockname()
    # Kept open and never read: a silent peer (a closed port would
    # answer with ICMP port unreachable, which fails sends at once).
    sock = udp()
    g = gtudp.GTUDP(sock, drain_timeout=0.3)
    handles = [g.sendto(b"%d" % i, addr) for i in range(5)]
    summary = g.cleanup()
    assert summary["deadline_reached"] and summary["abandoned"] == 5 and summary["failed"] == 5
    assert {h.reason for h in handles} == {"endpoint_closed"}
    sock.close()


def test_cleanup_timeout_returns_early_while_the_drain_goes_on():
    dead = udp()
    addr = dead.getsockname()
    # Kept open and never read: a silent peer (a closed port would
    # answer with ICMP port unreachable, which fails sends at once).
    sock = udp()
    g = gtudp.GTUDP(sock, drain_timeout=1.0)
    handle = g.sendto(b"x", addr)
    summary = g.cleanup(timeout=0.05)
    assert summary["complete"] is False
    # The drain ends by itself at its deadline.
    assert handle.wait(timeout=10) is False and handle.reason == "endpoint_closed"
    assert g.cleanup()["complete"] is True
    sock.close()


def test_recvfrom_after_cleanup_reads_what_is_left_then_raises_closed(pair):
    a, b = pair
    a.sendto_blocking(b"left", b.getsockname(), timeout=10)
    b.cleanup(timeout=2)
    assert b.recvfrom() == (b"left", a.getsockname())
    with pytest.raises(gtudp.Closed):
        b.recvfrom()


def test_cleanup_wakes_a_thread_blocked_in_recvfrom(pair):
    _, b = pair
    outcome: list = []

    def reader() -> None:
        try:
            b.recvfrom()
        except gtudp.Closed as error:
            outcome.append(error)

    thread = threading.Thread(target=reader)
    thread.start()
    time.sleep(0.1)
    b.cleanup(timeout=2)
    thread.join(timeout=10)
    assert not thread.is_alive() and len(outcome) == 1


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback")
def test_ipv6_round_trip_with_four_tuple_addresses():
    a_sock, b_sock = udp("::1"), udp("::1")
    a, b = gtudp.GTUDP(a_sock, **FAST), gtudp.GTUDP(b_sock, **FAST)
    b.start()
    assert a.sendto_blocking(b"six", b_sock.getsockname(), timeout=10)
    data, addr = b.recvfrom()
    assert data == b"six" and addr == a_sock.getsockname() and len(addr) == 4
    assert a.sendto_blocking(b"two-tuple", ("::1", b_sock.getsockname()[1]), timeout=10)
    assert b.recvfrom()[0] == b"two-tuple"
    for g, s in ((a, a_sock), (b, b_sock)):
        g.cleanup(timeout=2)
        s.close()


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback")
def test_dual_stack_socket_talks_to_ipv4_peers():
    dual = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    dual.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    dual.bind(("::", 0))
    v4 = udp()
    d, g4 = gtudp.GTUDP(dual, **FAST), gtudp.GTUDP(v4, **FAST)
    d.start()
    g4.start()
    assert d.sendto_blocking(b"to v4", v4.getsockname(), timeout=10)
    data, addr = g4.recvfrom()
    assert data == b"to v4"
    assert g4.sendto_blocking(b"back", ("127.0.0.1", dual.getsockname()[1]), timeout=10)
    assert d.recvfrom()[0] == b"back"
    for g, s in ((d, dual), (g4, v4)):
        g.cleanup(timeout=2)
        s.close()


def test_bad_arguments_raise_type_and_value_errors_with_reasons(pair):
    a, b = pair
    with pytest.raises(TypeError, match="bytes-like"):
        a.sendto("text", b.getsockname())
    with pytest.raises(TypeError, match="tuple"):
        a.sendto(b"x", "127.0.0.1:4000")
    with pytest.raises(ValueError, match="port"):
        a.sendto(b"x", ("127.0.0.1", 70000))
    with pytest.raises(ValueError, match="IPv6"):
        a.sendto(b"x", ("::1", 4000))
    with pytest.raises(ValueError, match="exceeds") as too_large:
        a.sendto(b"x" * (a.max_payload_size + 1), b.getsockname())
    # In Python's terms: the sizes in bytes and the keyword that raises the
    # limit, not the Rust Config.
    message = str(too_large.value)
    assert f"{a.max_payload_size + 1} bytes" in message, message
    assert f"max_payload_size ({a.max_payload_size} bytes)" in message, message
    assert "max_datagram_size=" in message and "Config::" not in message, message
    with pytest.raises(ValueError, match="max_datagram_size="):
        a.sendto_blocking(b"x" * (a.max_payload_size + 1), b.getsockname())
    # ...and that keyword sets it (the header stays the same); the default
    # is one UDP datagram's limit.
    assert a.max_payload_size == 65_507 - 5
    smaller_sock = udp()
    smaller = gtudp.GTUDP(smaller_sock, max_datagram_size=4000)
    assert smaller.max_payload_size == 4000 - 5
    smaller.cleanup(timeout=2)
    smaller_sock.close()
    with pytest.raises(ValueError, match="max_attempts"):
        a.sendto(b"x", b.getsockname(), attempts=1000)
    sock = udp()
    with pytest.raises(ValueError, match="same length|length"):
        gtudp.GTUDP(sock, frame_identifier=b"\x01\x02")
    with pytest.raises(ValueError, match="remember_window"):
        gtudp.GTUDP(sock, max_rto=60.0)
    with pytest.raises(ValueError, match="non-negative"):
        gtudp.GTUDP(sock, initial_rto=-1)
    with pytest.raises(TypeError, match="int"):
        gtudp.GTUDP(sock, max_attempts="3")
    with pytest.raises(TypeError, match="UDP|socket"):
        gtudp.GTUDP("not a socket")
    with pytest.raises(ValueError, match="UDP"):
        gtudp.GTUDP(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    sock.close()


def test_memoryview_and_bytearray_payloads(pair):
    a, b = pair
    assert a.sendto_blocking(bytearray(b"array"), b.getsockname(), timeout=10)
    assert a.sendto_blocking(memoryview(b"view"), b.getsockname(), timeout=10)
    assert sorted(d for d, _ in receive_all(b, 2)) == [b"array", b"view"]


def test_debug_prints_one_line_per_datagram(capfd):
    a_sock, b_sock = udp(), udp()
    a = gtudp.GTUDP(a_sock, debug=True)
    b = gtudp.GTUDP(b_sock)
    b.start()
    assert a.sendto_blocking(b"hello", b_sock.getsockname(), timeout=10)
    a.cleanup(timeout=2)
    b.cleanup(timeout=2)
    lines = capfd.readouterr().out.splitlines()
    peer = "%s:%d" % b_sock.getsockname()
    frame = [l for l in lines if l.startswith("OUT FRAME ")]
    assert frame and frame[0].endswith(f" b'hello' to {peer}"), lines
    identity = frame[0].split()[2]
    assert len(identity) == 8 and int(identity, 16) >= 0
    assert f"IN  RECV  {identity} from {peer}" in lines
    assert f"OUT ACK   {identity} to {peer}" in lines
    # Only the debug socket prints: b's DATA-in would be an "IN  FRAME" line.
    assert not [l for l in lines if l.startswith("IN  FRAME")]
    a_sock.close()
    b_sock.close()


def test_the_wrapped_socket_stays_the_users(pair):
    sock = udp()
    addr = sock.getsockname()
    g = gtudp.GTUDP(sock)
    g.start()
    assert g.getsockname() == addr
    g.cleanup(timeout=2)
    # Still bound where the user bound it, and blocking as before.
    other = udp()
    other.sendto(b"after", addr)
    sock.settimeout(5)
    assert sock.recvfrom(100) == (b"after", other.getsockname())
    other.close()
    sock.close()


def test_an_unbound_socket_is_bound_to_an_ephemeral_port():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    g = gtudp.GTUDP(sock)
    g.start()
    assert g.getsockname()[1] != 0 and g.getsockname() == sock.getsockname()
    g.cleanup(timeout=2)
    sock.close()


def test_original_attributes_configure_before_start():
    a_sock, b_sock = udp(), udp()
    a, b = gtudp.GTUDP(a_sock), gtudp.GTUDP(b_sock)
    for g in (a, b):
        g.FRAME_IDENTIFIER, g.RECV_IDENTIFIER, g.ACK_IDENTIFIER = b"D", b"R", b"A"
        g.magic_numbers = b"MAGIC"
        g.start()
    plain = udp()
    assert a.sendto_blocking(b"custom", b_sock.getsockname(), timeout=10)
    assert b.recvfrom() == (b"custom", a_sock.getsockname())
    for g, s in ((a, a_sock), (b, b_sock)):
        g.cleanup(timeout=2)
        s.close()
    plain.close()


def test_stats_and_peer_stats_are_dicts(pair):
    a, b = pair
    assert a.sendto_blocking(b"x", b.getsockname(), timeout=10)
    stats = a.stats()
    assert stats["datagrams_out"]["data"] >= 1 and stats["datagrams_in"]["recv"] >= 1
    assert stats["io"]["send_calls"] >= 1
    peer = a.peer_stats(b.getsockname())
    assert peer is not None and peer["delivered"] == 1 and peer["rtt"] is not None
    assert a.peer_stats(("127.0.0.1", 9)) is None


def test_context_manager_cleans_up():
    sock = udp()
    with gtudp.GTUDP(sock) as g:
        assert g.running
    assert not g.running
    with pytest.raises(gtudp.Closed):
        g.sendto(b"x", ("127.0.0.1", 9))
    sock.close()


def presumed_lost(g: gtudp.GTUDP) -> int:
    """Resends ordered because a message was presumed lost (not those that
    answer a validation probe)."""
    stats = g.stats()
    return stats["retransmissions"] - stats["resent_for_probe"]


def test_a_delivery_says_whether_the_message_was_suspected_lost():
    client_sock, server_sock = udp(), udp()
    client = gtudp.GTUDP(client_sock, **FAST)
    addr = server_sock.getsockname()
    server = None
    try:
        lost = client.sendto(b"lost once", addr)
        assert lost.suspected_lost is None
        # The server's socket swallows the first DATA before gtudp takes it
        # over: only the resend on the retransmission timeout can arrive.
        server_sock.settimeout(10)
        data, source = server_sock.recvfrom(2048)
        assert source == client_sock.getsockname() and data.endswith(b"lost once")
        server_sock.settimeout(None)
        server = gtudp.GTUDP(server_sock, **FAST)
        server.start()
        assert lost.wait(timeout=10) is True
        assert lost.suspected_lost is True
        assert "suspected lost" in repr(lost)
        server.settimeout(10)
        assert server.recvfrom() == (b"lost once", client_sock.getsockname())

        # A clean exchange (unless the loaded machine outran a timer).
        before = presumed_lost(client)
        clean = client.sendto(b"clean", addr)
        assert clean.wait(timeout=10) is True
        assert clean.suspected_lost is (presumed_lost(client) > before)
        assert server.recvfrom() == (b"clean", client_sock.getsockname())

        dead = udp()
        dead_addr = dead.getsockname()
        dead.close()
        failed = client.sendto(b"anyone?", dead_addr, deadline=0.2)
        assert failed.wait(timeout=10) is False
        assert failed.suspected_lost is None
    finally:
        client.cleanup(timeout=2)
        if server is not None:
            server.cleanup(timeout=2)
        client_sock.close()
        server_sock.close()


def test_a_bound_receiver_answers_before_it_is_called():
    # Bound, wrapped and never called: it receives, and answers the sender,
    # in the background all the same (the defaults, as in the report).
    receiver_sock, sender_sock = udp(), udp()
    receiver = gtudp.GTUDP(receiver_sock)
    sender = gtudp.GTUDP(sender_sock)
    try:
        assert receiver.running
        assert sender.sendto_blocking(b"early", receiver_sock.getsockname(), timeout=10) is True
        assert sender.sendto_blocking(b"late", receiver_sock.getsockname(), timeout=10) is True
        # Cleaned up before any other call: what it received is still read.
        receiver.cleanup(timeout=2)
        got = sorted([receiver.recvfrom(), receiver.recvfrom()])
        assert got == [(b"early", sender_sock.getsockname()), (b"late", sender_sock.getsockname())]
        with pytest.raises(gtudp.Closed):
            receiver.recvfrom()
    finally:
        for g, s in ((sender, sender_sock), (receiver, receiver_sock)):
            g.cleanup(timeout=2)
            s.close()


def test_configuration_set_after_a_message_arrived_keeps_the_message_once():
    receiver_sock, sender_sock = udp(), udp()
    to = receiver_sock.getsockname()
    receiver = gtudp.GTUDP(receiver_sock, **FAST)
    sender = gtudp.GTUDP(sender_sock, **FAST)
    try:
        assert sender.sendto_blocking(b"before", to, timeout=10)
        # Still configurable: the first call restarts the socket with it.
        receiver.recv_attempts = 5
        receiver.start()
        assert receiver.recvfrom() == (b"before", sender_sock.getsockname())
        assert sender.sendto_blocking(b"after", to, timeout=10)
        receiver.settimeout(10)
        assert receiver.recvfrom() == (b"after", sender_sock.getsockname())
        receiver.settimeout(0.3)
        with pytest.raises(gtudp.Timeout):
            receiver.recvfrom()  # each message once
    finally:
        for g, s in ((sender, sender_sock), (receiver, receiver_sock)):
            g.cleanup(timeout=2)
            s.close()


def test_cleanup_summary_gives_totals_and_what_the_drain_resolved(pair):
    a, b = pair
    for i in range(3):
        assert a.sendto_blocking(b"%d" % i, b.getsockname(), timeout=10)
    summary = a.cleanup(timeout=5)
    # A normal run: everything resolved before the drain.
    assert summary["complete"] and summary["delivered"] == 3 and summary["failed"] == 0
    assert summary["drained_delivered"] == 0 and summary["drained_failed"] == 0
    assert summary["abandoned"] == 0 and summary["stats"]["delivered"] == 3
    assert "unreachable_reports" in summary["stats"]["io"]


@pytest.mark.parametrize("size", [4000, 60_000])
def test_sendto_takes_what_the_original_sends_one_datagram_up_to_the_udp_limit(pair, size):
    # The original sent `sendto(b"y" * 4000, addr)` in one datagram, and so
    # does the drop-in by default (it raised ValueError beyond 1,447 bytes).
    a, b = pair
    data = bytes(i % 251 for i in range(size))
    assert a.sendto_blocking(data, b.getsockname(), timeout=10) is True
    b.settimeout(10)
    assert b.recvfrom() == (data, a.getsockname())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the socket allows IP fragmentation on Linux")
@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback")
def test_the_largest_payload_crosses_a_path_that_must_fragment_it():
    # IPv6 loopback's MTU (65,536) is below a 65,507-byte datagram and its
    # 48 bytes of headers: it arrives only because the kernel may fragment
    # it, as the original's plain socket did.
    socks = udp("::1"), udp("::1")
    a, b = (gtudp.GTUDP(s, **FAST) for s in socks)
    try:
        assert a.max_payload_size == 65_507 - 5
        data = bytes(i % 253 for i in range(a.max_payload_size))
        assert a.sendto_blocking(data, b.getsockname(), timeout=10) is True
        b.settimeout(10)
        got, _ = b.recvfrom()
        assert got == data
        assert a.stats()["io"]["too_large"] == 0
    finally:
        for g, s in zip((a, b), socks):
            g.cleanup(timeout=2)
            s.close()
