"""Exactly once through a NAT that moves the client to a new public port
mid-stream (closing the old one), delays each datagram 25 ms each way and
loses 10 % of the replies: the server sees the client's retransmissions
arrive from ports it never saw, and must hand each message over once."""

from __future__ import annotations

import collections
import heapq
import queue
import random
import select
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional, Tuple

import pytest

import gtudp
from conftest import udp


class RebindingNat:
    """Forwards one client's datagrams to ``server`` from a public port of
    its own, and every ``rebind_every`` seconds moves the flow to a new
    port, closing the old one. Each datagram waits ``delay`` seconds in each
    direction; ``reply_loss`` of the server's datagrams are dropped. The
    client sends to ``nat.addr``. Stops within 0.1 s of ``close()``. With
    ``changes_ip``, each new port is on a new loopback IP address
    (127.0.0.2, 127.0.0.3, ...), as for a phone moving between networks."""

    def __init__(
        self, server: Tuple[str, int], rebind_every: float, seed: int, changes_ip: bool = False
    ) -> None:
        self.server = server
        self.changes_ip = changes_ip
        self.rebind_every = rebind_every
        self.delay = 0.025
        self.reply_loss = 0.1
        self.rng = random.Random(seed)
        self.inside = udp()
        self.addr = self.inside.getsockname()
        self.outside = udp()
        self.rebinds = 0
        self.client: Optional[Tuple] = None
        self._due: List[Tuple[float, int, bool, bytes]] = []
        self._sequence = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rebinding nat", daemon=True)
        self._thread.start()

    def _later(self, to_server: bool, data: bytes) -> None:
        self._sequence += 1
        heapq.heappush(self._due, (time.monotonic() + self.delay, self._sequence, to_server, data))

    def _run(self) -> None:
        next_rebind = time.monotonic() + self.rebind_every
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_rebind:
                self.outside.close()  # the old port closes
                self.rebinds += 1
                self.outside = udp(f"127.0.0.{2 + self.rebinds % 200}" if self.changes_ip else "127.0.0.1")
                next_rebind = now + self.rebind_every
            while self._due and self._due[0][0] <= now:
                _, _, to_server, data = heapq.heappop(self._due)
                if to_server:
                    # Mapped when it reaches the NAT: the port of that moment.
                    self.outside.sendto(data, self.server)
                elif self.client is not None:
                    self.inside.sendto(data, self.client)
            wait = min(0.005, max(0.0, self._due[0][0] - now)) if self._due else 0.005
            ready, _, _ = select.select([self.inside, self.outside], [], [], wait)
            for sock in ready:
                try:
                    data, source = sock.recvfrom(65535)
                except OSError:
                    continue
                if sock is self.inside:
                    self.client = source
                    self._later(True, data)
                elif self.rng.random() >= self.reply_loss:
                    self._later(False, data)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.inside.close()
        self.outside.close()


@pytest.mark.parametrize("rebind_every", [0.3, 1.0])
def test_each_message_is_handed_over_once_across_rebindings(rebind_every: float) -> None:
    server_sock, client_sock = udp(), udp()
    server = gtudp.GTUDP(server_sock)
    client = gtudp.GTUDP(client_sock)
    nat = RebindingNat(server_sock.getsockname(), rebind_every, seed=int(rebind_every * 10))
    counts: collections.Counter = collections.Counter()
    sources = set()
    done = threading.Event()

    def receive() -> None:
        server.settimeout(0.2)
        while not done.is_set():
            try:
                data, source = server.recvfrom()
            except queue.Empty:
                continue
            counts[data] += 1
            sources.add(source)

    receiver = threading.Thread(target=receive, daemon=True)
    receiver.start()
    try:
        messages = [b"message %04d" % i for i in range(1000)]
        with ThreadPoolExecutor(max_workers=16) as pool:
            confirmed = list(pool.map(lambda m: client.sendto_blocking(m, nat.addr), messages))
        assert all(confirmed), f"{confirmed.count(False)} not confirmed"
        # Late copies still in flight must not be handed over either.
        time.sleep(0.5)
        done.set()
        receiver.join(timeout=5)
        twice = {data: n for data, n in counts.items() if n > 1}
        assert not twice, f"handed over more than once: {sorted(twice.items())[:5]}"
        assert set(counts) == set(messages)
        assert nat.rebinds >= 2 and len(sources) >= 2, (nat.rebinds, len(sources))
        stats = server.stats()
        assert stats["duplicates_suppressed"] > 0, stats
    finally:
        done.set()
        nat.close()
        for g, s in ((client, client_sock), (server, server_sock)):
            g.cleanup(timeout=5)
            s.close()


def _raw_peer(server_addr: Tuple[str, int], identity: int, payload: bytes) -> Tuple[socket.socket, bool]:
    """Sends one gtUDP DATA (default type bytes, no magic) from a new port,
    answering the server's validation probe; returns the socket and whether
    the server's RECV for ``identity`` came back."""
    sock = udp()
    sock.settimeout(2.0)
    data = b"\x1d" + identity.to_bytes(4, "big") + payload
    sock.sendto(data, server_addr)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        try:
            reply, _ = sock.recvfrom(65535)
        except socket.timeout:
            sock.sendto(data, server_addr)
            continue
        if reply[:1] != b"\x5f":
            continue
        named = int.from_bytes(reply[1:5], "big")
        # The RECV for our DATA, or a validation probe: answered with ACK.
        sock.sendto(b"\xae" + reply[1:5], server_addr)
        if named == identity:
            return sock, True
    return sock, False


@pytest.mark.parametrize("across_ports", [True, False])
def test_the_same_message_from_a_second_port_follows_the_setting(across_ports: bool) -> None:
    server_sock = udp()
    server = gtudp.GTUDP(server_sock, recognise_copies_across_ports=across_ports)
    server.settimeout(2.0)
    first, confirmed = _raw_peer(server_sock.getsockname(), 7, b"ping")
    assert confirmed
    assert server.recvfrom()[0] == b"ping"
    # The same identity and payload from another port of the same host: the
    # sender's NAT moved it (one setting), or another sender behind it sent
    # the same bytes (the other).
    second, confirmed = _raw_peer(server_sock.getsockname(), 7, b"ping")
    assert confirmed
    server.setblocking(False)
    try:
        again = server.recvfrom()[0]
    except queue.Empty:
        again = None
    assert again == (None if across_ports else b"ping")
    for sock in (first, second):
        sock.close()
    server.cleanup(timeout=2)
    server_sock.close()


def test_the_setting_takes_a_bool_only() -> None:
    sock = udp()
    try:
        with pytest.raises(TypeError, match="recognise_copies_across_ports must be a bool"):
            gtudp.GTUDP(sock, recognise_copies_across_ports=1)  # type: ignore[arg-type]
    finally:
        sock.close()


def test_roaming_keeps_a_client_that_changes_ip_address_both_ways() -> None:
    """With the roaming extension at both ends, a client whose IP address and
    port change every 300 ms keeps its messages, each handed over once, and
    the server's replies to it follow it to its new addresses."""
    server_sock, client_sock = udp(), udp()
    server = gtudp.GTUDP(server_sock, roaming=True)
    client = gtudp.GTUDP(client_sock, roaming=True)
    nat = RebindingNat(server_sock.getsockname(), 0.3, seed=25, changes_ip=True)
    counts: collections.Counter = collections.Counter()
    replies_seen: collections.Counter = collections.Counter()
    replies = []
    sources = set()
    done = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not done.is_set():
            try:
                data, source = server.recvfrom()
            except queue.Empty:
                continue
            if data == b"keepalive":
                continue
            counts[data] += 1
            sources.add(source[0])
            replies.append(server.sendto(b"re:" + data, source))

    def read_replies() -> None:
        client.settimeout(0.2)
        while not done.is_set():
            try:
                data, _ = client.recvfrom()
            except queue.Empty:
                continue
            replies_seen[data] += 1

    threads = [threading.Thread(target=f, daemon=True) for f in (serve, read_replies)]
    for thread in threads:
        thread.start()
    try:
        messages = [b"message %04d" % i for i in range(1000)]
        with ThreadPoolExecutor(max_workers=16) as pool:
            confirmed = list(pool.map(lambda m: client.sendto_blocking(m, nat.addr), messages))
        assert all(confirmed), f"{confirmed.count(False)} not confirmed"
        # The NAT keeps moving the client: it sends a keepalive every 100 ms
        # until every reply is in, as an application whose peers may move
        # while idle must (a peer that moves and stays silent cannot be found).
        deadline = time.monotonic() + 60
        while len(replies_seen) < 1000 and time.monotonic() < deadline:
            client.sendto(b"keepalive", nat.addr)
            time.sleep(0.1)
        for reply in list(replies):
            reply.wait(60)
        outcomes = [reply.delivered for reply in list(replies)]
        reasons = collections.Counter(reply.reason for reply in list(replies))
        time.sleep(0.5)
        done.set()
        for thread in threads:
            thread.join(timeout=5)
        twice = {data: n for data, n in counts.items() if n > 1}
        assert not twice, f"handed over more than once: {sorted(twice.items())[:5]}"
        assert set(counts) == set(messages)
        failed = [outcome for outcome in outcomes if outcome is not True]
        assert len(outcomes) == 1000 and not failed, f"{len(failed)} replies not delivered: {reasons}"
        twice = {data: n for data, n in replies_seen.items() if n > 1}
        assert not twice, f"replies handed over more than once: {sorted(twice.items())[:5]}"
        assert set(replies_seen) == {b"re:" + m for m in messages}
        assert nat.rebinds >= 2 and len(sources) >= 2, (nat.rebinds, len(sources))
        assert server.stats()["peer_moves"] >= 1, server.stats()
    finally:
        done.set()
        nat.close()
        for g, s in ((client, client_sock), (server, server_sock)):
            g.cleanup(timeout=5)
            s.close()


def test_roaming_takes_a_bool_only() -> None:
    sock = udp()
    try:
        with pytest.raises(TypeError, match="roaming must be a bool"):
            gtudp.GTUDP(sock, roaming=1)  # type: ignore[arg-type]
    finally:
        sock.close()
