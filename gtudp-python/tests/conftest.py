"""Shared helpers: sockets on loopback, a lossy UDP relay, bounded waits."""

from __future__ import annotations

import json
import random
import select
import socket
import threading
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import pytest

import gtudp

VECTORS = Path(__file__).parent / "vectors"

# Fast retransmission for tests on loopback (the defaults suit real paths).
FAST = dict(initial_rto=0.05, min_rto=0.01, max_rto=0.2, remember_window=30.0)

# Through a lossy relay: enough attempts (6 s of them) that a stall of a busy
# machine cannot use them all up, since what those tests check is exactly-once
# delivery, not how long a message is retried.
LOSSY = dict(FAST, max_attempts=30)


def udp(host: str = "127.0.0.1") -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    return sock


def ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


def load_vectors(name: str) -> dict:
    return json.loads((VECTORS / name).read_text())


class LossyRelay:
    """A UDP relay between one client and one server that drops a seeded
    fraction of the datagrams in each direction, on its own thread.

    The client sends to ``relay.addr``; datagrams from the server go back to
    the last client address seen. Stops within 0.1 s of ``close()``."""

    def __init__(self, server: Tuple[str, int], loss: float, seed: int, host: str = "127.0.0.1") -> None:
        self.server = server
        self.loss = loss
        self.rng = random.Random(seed)
        self.seed = seed
        self.sock = udp(host)
        self.addr = self.sock.getsockname()
        self.client: Optional[Tuple] = None
        self.forwarded = 0
        self.dropped = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lossy relay", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.sock], [], [], 0.05)
            if not ready:
                continue
            data, source = self.sock.recvfrom(65535)
            if source[:2] == self.server[:2]:
                target = self.client
            else:
                self.client = source
                target = self.server
            if target is None:
                continue
            if self.rng.random() < self.loss:
                self.dropped += 1
                continue
            self.forwarded += 1
            self.sock.sendto(data, target)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def pair() -> Iterator[Tuple[gtudp.GTUDP, gtudp.GTUDP]]:
    """Two started GTUDP sockets on loopback, cleaned up afterwards."""
    a, b = udp(), udp()
    ga, gb = gtudp.GTUDP(a, **FAST), gtudp.GTUDP(b, **FAST)
    ga.start()
    gb.start()
    yield ga, gb
    for g, s in ((ga, a), (gb, b)):
        g.cleanup(timeout=2)
        s.close()


def receive_all(g: gtudp.GTUDP, count: int, timeout: float = 20.0) -> List[Tuple[bytes, Tuple]]:
    """``count`` messages, each waited for at most ``timeout`` seconds."""
    g.settimeout(timeout)
    return [g.recvfrom() for _ in range(count)]
