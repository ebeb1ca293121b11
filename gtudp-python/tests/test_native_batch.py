"""The native calls gtudp.aio drives its endpoint with, on real sockets:
``Endpoint.receive`` takes the datagram it is given and reads what else is
queued on the socket (one call per wake-up), ``Endpoint.receive_ready``
reads a readable socket, and ``Endpoint.poll_send``
sends a round's datagrams itself and, asked to, holds a batch of nothing but
ACKs until a call that sends."""

from __future__ import annotations

import select
import socket
import sys

import pytest

from gtudp._native import Endpoint

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="recvmmsg and sendmmsg are Linux's")


def bound() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


def queued(sock: socket.socket, wait: float = 0.0) -> bool:
    return bool(select.select([sock], [], [], wait)[0])


def take(endpoint: Endpoint, sock: socket.socket) -> list:
    """What a wake-up of gtudp.aio does: the first datagram as the
    transport reads it, the rest through ``receive``; the events."""
    assert queued(sock, 5.0), "nothing arrived"
    data, addr = sock.recvfrom(65536)
    events, errno = endpoint.receive(data, addr, sock.fileno())
    assert errno == 0
    return events


def send(endpoint: Endpoint, sock: socket.socket, hold_acks: bool = False) -> bool:
    unsent, _events, _timeout, errors, holding = endpoint.poll_send(sock.fileno(), hold_acks)
    assert unsent == [] and errors == []
    return holding


def test_receive_reads_the_queue_and_poll_send_holds_only_acks():
    a_sock, b_sock = bound(), bound()
    a = Endpoint(socket.AF_INET, seed=1)
    b = Endpoint(socket.AF_INET, seed=2)
    a.send(b"one", b_sock.getsockname())
    a.send(b"two", b_sock.getsockname())
    assert not send(a, a_sock)  # both DATA, in one system call

    # One call takes both: the one given, and the one still queued.
    assert queued(b_sock, 5.0)
    take(b, b_sock)
    assert b.stats()["datagrams_in"]["data"] == 2
    assert not queued(b_sock)

    # First contact: b asks a to prove its address, then hands both over.
    assert not send(b, b_sock)
    assert take(a, a_sock) == []
    send(a, a_sock)  # its answer (an ACK), sent at once
    received = []
    for _ in range(10):  # bounded: the validation exchange is a few datagrams
        received += [event[1] for event in take(b, b_sock) if event[0] == "received"]
        send(b, b_sock)
        if len(received) == 2:
            break
        take(a, a_sock)
        send(a, a_sock)
    assert received == [b"one", b"two"]

    # The RECVs reach a: delivered; the two ACKs they draw are held ...
    delivered = []
    for _ in range(10):
        delivered += [event[1] for event in take(a, a_sock) if event[0] == "delivered"]
        if len(delivered) == 2:
            break
    assert len(delivered) == 2
    assert send(a, a_sock, hold_acks=True)
    assert not queued(b_sock, 0.2)
    acks_before = b.stats()["datagrams_in"]["ack"]

    # ... until a call that does not hold them sends them, in order; and
    # `receive_ready` (the endpoint reading a readable socket itself, no
    # datagram given) takes both.
    assert not send(a, a_sock)
    assert queued(b_sock, 5.0)
    assert b.receive_ready(b_sock.fileno()) == ([], 0)
    assert b.stats()["datagrams_in"]["ack"] == acks_before + 2
    assert not queued(b_sock)
    a_sock.close()
    b_sock.close()
