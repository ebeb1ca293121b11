"""Large messages (``max_message_size=``): a message larger than one datagram
crosses as fragments, each confirmed and resent on its own, and arrives
whole, once, even through a relay that drops a fifth of the datagrams."""

from __future__ import annotations

import pytest

import gtudp
from conftest import LOSSY, LossyRelay, receive_all, udp

# Through a lossy relay: `LOSSY`'s attempts (see conftest), so that a
# busy machine cannot end a fragment's attempts before its RECV comes.
LARGE = dict(LOSSY, max_message_size=1 << 20, max_datagram_size=1452)


def payload(n: int, size: int) -> bytes:
    return bytes((i * 31 + n) % 251 for i in range(size))


def test_a_large_message_arrives_whole_through_loss_and_small_ones_still_work():
    client_sock, server_sock = udp(), udp()
    client = gtudp.GTUDP(client_sock, **LARGE)
    server = gtudp.GTUDP(server_sock, **LARGE)
    relay = LossyRelay(server_sock.getsockname(), loss=0.2, seed=3)
    try:
        assert client.max_payload_size == 1 << 20
        messages = [payload(n, size) for n, size in enumerate([300_000, 10, 70_000, 1_447, 1_448])]
        handles = [client.sendto(m, relay.addr) for m in messages]
        received = receive_all(server, len(messages))
        assert sorted(data for data, _ in received) == sorted(messages), f"seed {relay.seed}"
        assert all(h.wait(timeout=30) for h in handles), f"seed {relay.seed}"
        stats = server.stats()
        assert stats["received"] == len(messages)
        assert relay.dropped > 0
    finally:
        relay.close()
        for g, s in ((client, client_sock), (server, server_sock)):
            g.cleanup(timeout=2)
            s.close()


def test_the_limit_and_the_keywords_are_checked():
    sock = udp()
    try:
        with pytest.raises(ValueError, match="max_message_size"):
            gtudp.GTUDP(sock, max_message_size=0)
        with pytest.raises(ValueError, match="fragment_identifier"):
            gtudp.GTUDP(sock, fragment_identifier=b"\x1f")
        with pytest.raises(ValueError, match="fragment type"):
            gtudp.GTUDP(sock, max_message_size=1 << 20, fragment_identifier=b"\x1d")
        socket_ = gtudp.GTUDP(sock, **LARGE)
        try:
            with pytest.raises(ValueError):
                socket_.sendto(b"x" * ((1 << 20) + 1), ("127.0.0.1", 9))
        finally:
            socket_.cleanup(timeout=1)
    finally:
        sock.close()
