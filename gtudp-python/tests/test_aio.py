"""gtudp.aio: the same operations as coroutines on an asyncio loop."""

from __future__ import annotations

import asyncio
import socket
import sys
import time

import pytest

import gtudp
import gtudp.aio
from conftest import FAST, LOSSY, LossyRelay, ipv6_available, udp


def run(coroutine, timeout: float = 60.0):
    async def bounded():
        return await asyncio.wait_for(coroutine, timeout)

    return asyncio.run(bounded())


async def bound(**options):
    return await gtudp.aio.create_socket(local_addr=("127.0.0.1", 0), **{**FAST, **options})


def test_round_trip_through_a_lossy_relay_delivers_each_message_exactly_once():
    async def main():
        server, client = await bound(**LOSSY), await bound(**LOSSY)
        relay = LossyRelay(server.getsockname(), loss=0.25, seed=23)
        try:
            messages = [b"aio %03d" % i for i in range(200)]
            sends = asyncio.gather(*(client.sendto(m, relay.addr) for m in messages))
            received = [await server.recvfrom() for _ in messages]
            assert all(await sends), f"seed {relay.seed}"
            assert sorted(d for d, _ in received) == messages, f"seed {relay.seed}"
            with pytest.raises(gtudp.Timeout):
                server.recvfrom_nowait()
            assert client.stats()["retransmissions"] > 0 and relay.dropped > 0
            # Echo back through the relay too.
            assert await server.sendto(b"reply", received[0][1])
            assert await client.recvfrom() == (b"reply", relay.addr)
        finally:
            relay.close()
            await client.cleanup(timeout=5)
            await server.cleanup(timeout=5)

    run(main())


def test_sendto_to_a_silent_peer_resolves_false_with_its_reason():
    async def main():
        # Kept open and never read: a silent peer (a closed port would
        # answer with ICMP port unreachable, which fails sends at once).
        silent = udp()
        addr = silent.getsockname()
        sock = await bound()
        assert await sock.sendto(b"x", addr, deadline=0.2) is False
        delivery = await sock.sendto_nowait(b"y", addr, attempts=2)
        assert await delivery is False and delivery.reason == "attempts_exhausted"
        pending = await sock.sendto_nowait(b"z", addr)
        assert pending.cancel() is True
        assert await pending is False and pending.reason == "cancelled"
        # Cancelling an awaiting sendto cancels the message.
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(sock.sendto(b"w", addr), 0.05)
        summary = await sock.cleanup(timeout=2)
        assert summary["drained_failed"] == 0 and summary["abandoned"] == 0
        assert summary["failed"] == 4 and summary["delivered"] == 0
        assert sock.stats()["failed"] == 4
        silent.close()

    run(main())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ICMP reports name their destination on Linux")
@pytest.mark.parametrize(
    "bind, target", [("127.0.0.1", "127.0.0.1"), ("::1", "::1"), ("::", "127.0.0.1")]
)
def test_sendto_to_a_closed_port_fails_unreachable_at_once_like_the_blocking_socket(bind, target):
    if ":" in bind and not ipv6_available():
        pytest.skip("no IPv6 loopback")

    async def main():
        closed = udp(target)
        addr = closed.getsockname()
        closed.close()
        # The defaults: without the ICMP report, 65.5 s of attempts.
        sock = await gtudp.aio.create_socket(local_addr=(bind, 0))
        started = time.monotonic()
        delivery = await sock.sendto_nowait(b"anyone?", addr)
        assert await delivery is False
        assert delivery.reason == "unreachable", delivery.error
        # Generous bounds: not a timing measurement, only "not the attempt
        # limit, not the drain deadline".
        assert time.monotonic() - started < 5
        assert await sock.sendto(b"again?", addr) is False
        io = sock.stats()["io"]
        assert io["unreachable_reports"] >= 1 and io["icmp_errors"] >= 1
        started = time.monotonic()
        summary = await sock.cleanup()
        assert time.monotonic() - started < 5
        assert summary["abandoned"] == 0 and not summary["deadline_reached"]
        assert summary["failed"] == 2

    run(main(), timeout=30)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ICMP reports name their destination on Linux")
def test_cleanup_with_a_message_to_a_closed_port_ends_at_once():
    async def main():
        closed = udp()
        addr = closed.getsockname()
        closed.close()
        sock = await gtudp.aio.create_socket(local_addr=("127.0.0.1", 0))
        peer = await bound()
        delivery = await sock.sendto_nowait(b"in flight", addr)
        # A path that works is not failed by another's report.
        assert await sock.sendto(b"fine", peer.getsockname())
        started = time.monotonic()
        summary = await sock.cleanup()
        assert time.monotonic() - started < 5
        assert delivery.reason == "unreachable" and summary["abandoned"] == 0
        assert (await peer.recvfrom())[0] == b"fine"
        await peer.cleanup(timeout=2)

    run(main(), timeout=30)


def test_cleanup_with_messages_in_flight_drains_them():
    async def main():
        server, client = await bound(**LOSSY), await bound(**LOSSY)
        relay = LossyRelay(server.getsockname(), loss=0.2, seed=3)
        try:
            deliveries = [await client.sendto_nowait(b"%d" % i, relay.addr) for i in range(100)]
            summary = await client.cleanup(timeout=20)
            assert not summary["deadline_reached"] and summary["abandoned"] == 0, summary
            assert [d.delivered for d in deliveries] == [True] * 100
            got = sorted([int((await server.recvfrom())[0]) for _ in range(100)])
            assert got == list(range(100))
            with pytest.raises(gtudp.Closed):
                await client.sendto(b"late", relay.addr)
            with pytest.raises(gtudp.Closed):
                await client.recvfrom()
        finally:
            relay.close()
            await server.cleanup(timeout=5)

    run(main())


def test_cleanup_abandons_what_the_drain_deadline_leaves():
    async def main():
        # Kept open and never read: a silent peer.
        silent = udp()
        addr = silent.getsockname()
        sock = await bound(drain_timeout=0.3)
        deliveries = [await sock.sendto_nowait(b"%d" % i, addr) for i in range(3)]
        summary = await sock.cleanup()
        assert summary["deadline_reached"] and summary["abandoned"] == 3
        assert summary["drained_failed"] == 3 and summary["failed"] == 3
        assert {d.reason for d in deliveries} == {"endpoint_closed"}
        silent.close()

    run(main())


def test_foreign_datagrams_raw_send_and_truncation():
    async def main():
        plain = udp()
        sock = await bound(recv_from_any=True)
        plain.sendto(b"plain datagram", sock.getsockname())
        message = await sock.recv_message()
        assert message == gtudp.Message(b"plain datagram", plain.getsockname(), True)
        await sock.sendto_raw(b"raw", plain.getsockname())
        plain.settimeout(10)
        assert plain.recvfrom(100) == (b"raw", sock.getsockname())
        other = await bound()
        assert await other.sendto(b"0123456789", sock.getsockname())
        assert await sock.recvfrom(4) == (b"0123", other.getsockname())
        await other.cleanup(timeout=2)
        await sock.cleanup(timeout=2)
        plain.close()

    run(main())


def test_a_users_socket_is_used_through_a_duplicate_and_given_back():
    async def main():
        mine = udp()
        addr = mine.getsockname()
        sock = await gtudp.aio.create_socket(mine, **FAST)
        peer = await bound()
        assert sock.getsockname() == addr
        assert await peer.sendto(b"via my socket", addr)
        assert (await sock.recvfrom())[0] == b"via my socket"
        await sock.cleanup(timeout=2)
        await peer.cleanup(timeout=2)
        return mine, addr

    mine, addr = run(main())
    assert mine.fileno() >= 0 and mine.getsockname() == addr and mine.gettimeout() is None
    mine.close()


def test_debug_prints_one_line_per_datagram(capsys):
    async def main():
        a, b = await bound(debug=True), await bound()
        assert await a.sendto(b"hi", b.getsockname())
        await a.cleanup(timeout=2)
        await b.cleanup(timeout=2)
        return b.getsockname()

    peer = "%s:%d" % run(main())
    lines = capsys.readouterr().out.splitlines()
    assert any(l.startswith("OUT FRAME ") and l.endswith(f"b'hi' to {peer}") for l in lines), lines
    assert any(l.startswith("IN  RECV  ") for l in lines) and any(l.startswith("OUT ACK   ") for l in lines)


def test_bad_arguments_raise_type_and_value_errors():
    async def main():
        sock = await bound()
        with pytest.raises(TypeError, match="bytes-like"):
            await sock.sendto("text", ("127.0.0.1", 9))
        with pytest.raises(ValueError, match="exceeds") as too_large:
            await sock.sendto(b"x" * (sock.max_payload_size + 1), ("127.0.0.1", 9))
        message = str(too_large.value)
        assert f"max_payload_size ({sock.max_payload_size} bytes)" in message, message
        assert "max_datagram_size=" in message and "Config::" not in message, message
        with pytest.raises(ValueError, match="max_attempts"):
            await sock.sendto(b"x", ("127.0.0.1", 9), attempts=99)
        await sock.cleanup(timeout=2)
        with pytest.raises(ValueError, match="remember_window"):
            await gtudp.aio.create_socket(local_addr=("127.0.0.1", 0), max_rto=60.0)

    run(main())


def test_host_names_are_resolved_on_the_loop():
    async def main():
        a, b = await bound(), await bound()
        assert await a.sendto(b"by name", ("localhost", b.getsockname()[1]))
        assert (await b.recvfrom())[0] == b"by name"
        await a.cleanup(timeout=2)
        await b.cleanup(timeout=2)

    run(main())


def test_concurrent_cleanups_share_one_drain():
    async def main():
        silent = udp()  # never read
        addr = silent.getsockname()
        sock = await bound(drain_timeout=0.2)
        await sock.sendto_nowait(b"x", addr)
        first, second = await asyncio.gather(sock.cleanup(), sock.cleanup())
        assert first is second and first["abandoned"] == 1
        assert await sock.cleanup() is first
        silent.close()

    run(main())


def test_a_delivery_says_whether_the_message_was_suspected_lost():
    def presumed_lost(sock) -> int:
        stats = sock.stats()
        return stats["retransmissions"] - stats["resent_for_probe"]

    async def main():
        client = await bound()
        port = udp()
        addr = port.getsockname()
        server = None
        try:
            lost = await client.sendto_nowait(b"lost once", addr)
            assert lost.suspected_lost is None
            # The server's socket swallows the first DATA (already sent)
            # before gtudp takes it over: only the resend on the
            # retransmission timeout can arrive.
            port.settimeout(10)
            data, source = port.recvfrom(2048)
            assert source == client.getsockname() and data.endswith(b"lost once")
            port.settimeout(None)
            server = await gtudp.aio.create_socket(port, **FAST)
            assert await lost is True
            assert lost.suspected_lost is True
            assert "suspected lost" in repr(lost)
            assert await server.recvfrom() == (b"lost once", client.getsockname())

            # A clean exchange (unless the loaded machine outran a timer).
            before = presumed_lost(client)
            clean = await client.sendto_nowait(b"clean", addr)
            assert await clean is True
            assert clean.suspected_lost is (presumed_lost(client) > before)
            assert await server.recvfrom() == (b"clean", client.getsockname())
        finally:
            await client.cleanup(timeout=2)
            if server is not None:
                await server.cleanup(timeout=2)
            port.close()

    run(main())


def test_socket_buffers_are_raised_so_a_burst_is_not_dropped_by_the_kernel():
    # The default receive buffer (about 200 KiB) overflowed when 1,000
    # messages arrived faster than the loop read them: every one dropped had
    # to be resent. The transport's socket asks for 2 MiB, as the Rust
    # adapters do (Linux reports twice what it grants; rmem_max may cap it).
    try:
        with open("/proc/sys/net/core/rmem_max") as limit:
            granted = min(gtudp.aio.MIN_SOCKET_BUFFER, int(limit.read()))
    except OSError:
        pytest.skip("no /proc/sys/net/core/rmem_max to read the system's limit")

    async def main():
        sock = await bound()
        try:
            inner = sock._transport.get_extra_info("socket")
            assert inner.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= granted
        finally:
            await sock.cleanup()

    run(main())


def test_names_match_the_blocking_class_and_the_old_one_warns():
    async def main():
        a, b = await bound(), await bound()
        addr = b.getsockname()
        assert addr[0] == "127.0.0.1" and addr[1] != 0
        with pytest.warns(DeprecationWarning, match="getsockname"):
            assert b.local_addr == addr
        assert b.peer_stats(a.getsockname()) is None
        assert await a.sendto(b"x", addr)
        peer = a.peer_stats(addr)
        assert peer is not None and peer["delivered"] == 1 and peer["rtt"] is not None
        summary = await a.cleanup(timeout=2)
        assert summary["delivered"] == 1 and summary["drained_delivered"] == 0
        await b.cleanup(timeout=2)

    run(main())


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6")
def test_dual_stack_socket_talks_to_ipv4_peers():
    async def main():
        server = await bound()
        client = await gtudp.aio.create_socket(local_addr=("::", 0), **FAST)
        assert await client.sendto(b"to v4", server.getsockname())
        data, source = await server.recvfrom()
        assert data == b"to v4" and source[1] == client.getsockname()[1]
        # Replies reach it, and it sees the IPv4 peer in plain form.
        assert await server.sendto(b"back", source)
        assert await client.recvfrom() == (b"back", server.getsockname())
        await client.cleanup(timeout=2)
        await server.cleanup(timeout=2)

    run(main())


@pytest.mark.parametrize("size", [4000, 60_000])
def test_sendto_takes_one_datagram_up_to_the_udp_limit_like_the_blocking_class(size):
    async def main():
        a, b = await bound(), await bound()
        assert a.max_payload_size == 65_507 - 5
        data = bytes(i % 251 for i in range(size))
        assert await a.sendto(data, b.getsockname()) is True
        got, addr = await b.recvfrom()
        assert (got, addr) == (data, a.getsockname())
        await a.cleanup(timeout=2)
        await b.cleanup(timeout=2)

    run(main())


def test_recv_many_takes_each_message_once_in_batches_of_at_most_its_limit():
    async def main():
        server, client = await bound(), await bound()
        try:
            messages = [b"aio batch %02d" % i for i in range(20)]
            assert all(await asyncio.gather(*(client.sendto(m, server.getsockname()) for m in messages)))
            got = []
            while len(got) < len(messages):
                batch = await server.recv_many(limit=3)
                assert 1 <= len(batch) <= 3
                assert all(m.addr == client.getsockname() and not m.foreign for m in batch)
                got.extend(m.data for m in batch)
            assert sorted(got) == messages
            with pytest.raises(ValueError, match="limit"):
                await server.recv_many(limit=0)
        finally:
            await client.cleanup(timeout=5)
            await server.cleanup(timeout=5)

    run(main())
