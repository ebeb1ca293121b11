"""gtudp on asyncio: the same operations as :class:`gtudp.GTUDP`, as
coroutines on an event loop.

::

    import asyncio, gtudp.aio

    async def main():
        sock = await gtudp.aio.create_socket(local_addr=("127.0.0.1", 0))
        delivered = await sock.sendto(b"hello", ("127.0.0.1", 4323))  # True / False
        data, addr = await sock.recvfrom()
        summary = await sock.cleanup()

The names are :class:`gtudp.GTUDP`'s (``recvfrom``, ``recv_message``,
``sendto_raw``, ``getsockname``, ``stats``, ``peer_stats``,
``max_payload_size``, ``cleanup``, and the same options), with asyncio's
convention for waiting: ``await sock.sendto(...)`` waits for the outcome
(``GTUDP.sendto_blocking``), ``sock.sendto_nowait(...)`` returns the
:class:`Delivery` at once (``GTUDP.sendto``), and ``recvfrom_nowait`` does
not wait (``GTUDP.recvfrom`` after ``setblocking(False)``).

The model, and why: an asyncio :class:`~asyncio.DatagramProtocol` drives
the Rust sans-IO endpoint (``gtudp_proto::Endpoint``, wrapped as
``gtudp._native.Endpoint``) on the event loop's own thread, as aioquic
drives its QUIC state machine. Timers are a ``loop.call_at`` handle, and
each delivery is an :class:`asyncio.Future`. On Linux, with a loop that has
``add_reader`` (the default loops, uvloop), the endpoint reads the socket
itself when the loop finds it readable, every queued datagram in one
``recvmmsg``, and sends each round of datagrams in one ``sendmmsg``, the
answers a datagram draws (RECV, ACK) leaving with the application's reply
when it sends one in the same loop pass; elsewhere datagrams go in through
``datagram_received`` and out through the transport.
ICMP unreachable reports are read as :class:`gtudp.GTUDP` reads them (the
socket's error queue, on Linux), so a message to a closed port fails at once
with reason ``"unreachable"``.
There is no thread and no second event loop: nothing to synchronise with,
nothing to stop at exit, and cancellation, ``asyncio.wait_for`` and
``asyncio.gather`` behave as asyncio users expect (cancelling a waiting
``sendto`` cancels the message). Bridging to the Tokio adapter instead
would run a second runtime on its own threads and cross the GIL on every
event.
"""

from __future__ import annotations

import asyncio
import collections
import os
import socket as _socket
import sys
import time
import warnings
from typing import TYPE_CHECKING, Any, Deque, Dict, List, Optional, Tuple, cast

from . import Address, Message
from ._errors import Closed, Timeout
from ._native import Endpoint as _Endpoint
from ._native import enable_unreachable_reports as _enable_unreachable_reports
from ._native import is_ip_literal as _is_ip_literal
from ._native import validate_options as _validate_options

if TYPE_CHECKING:
    from ._native import _Event

__all__ = ["create_socket", "Socket", "Delivery"]


async def create_socket(
    sock: Optional[_socket.socket] = None,
    *,
    local_addr: Optional[Address] = None,
    debug: bool = False,
    magic_numbers: bytes = b"",
    recv_from_any: bool = False,
    **options: Any,
) -> "Socket":
    """A gtUDP socket on the running loop, over ``sock`` (a UDP socket,
    bound by you or not; gtudp uses a duplicate, so the socket object stays
    yours) or a new one bound to ``local_addr``. ``debug``,
    ``magic_numbers``, ``recv_from_any`` and the keyword options are those
    of :class:`gtudp.GTUDP` (``frame_identifier``, ``max_attempts``,
    ``drain_timeout``, ``receive_queue``, ...)."""
    _validate_options(magic_numbers, recv_from_any, options)
    loop = asyncio.get_running_loop()
    restore = None
    if sock is None:
        host = local_addr[0] if local_addr else "0.0.0.0"
        family = _socket.AF_INET6 if ":" in host else _socket.AF_INET
        sock = _socket.socket(family, _socket.SOCK_DGRAM)
        sock.bind(local_addr or ("0.0.0.0", 0))
        own = sock
    else:
        if sock.type != _socket.SOCK_DGRAM:
            raise ValueError("sock must be a UDP (SOCK_DGRAM) socket")
        if sock.getsockname()[1] == 0:
            sock.bind(("", 0))
        # The transport closes the socket it is given: give it a duplicate,
        # and the user's socket its blocking mode back at cleanup.
        restore = (sock, sock.gettimeout())
        own = sock.dup()
    _raise_buffers(own)
    try:
        # ICMP unreachable reports, as the blocking socket reads them
        # (Linux): see `_Protocol.error_received`.
        _enable_unreachable_reports(own.fileno(), own.family == _socket.AF_INET6)
    except OSError:
        pass  # The attempt limit decides, as elsewhere than Linux.
    receive_queue = options.pop("receive_queue", None) or 4096
    endpoint = _Endpoint(own.family, debug, magic_numbers, recv_from_any, options)
    result = Socket(endpoint, receive_queue, restore)
    await loop.create_datagram_endpoint(lambda: _Protocol(result), sock=own)
    result._take_reading()
    return result


#: The socket buffer size asked for when a socket's is smaller, as the Rust
#: adapters do: the default (about 200 KiB) overflows when a burst of
#: messages arrives faster than the event loop reads them, and every
#: datagram it drops must be resent.
MIN_SOCKET_BUFFER = 2 << 20

#: The longest an ACK waits, after the datagrams that drew it, for another
#: datagram to leave with (the application's answer, typically): one system
#: call and one wake-up of the peer fewer per exchange. Far below the
#: peer's least retransmission timeout (``min_rto``, 20 ms by default), so
#: the peer never resends its RECV for it.
ACK_HOLD = 0.001


def _raise_buffers(sock: _socket.socket) -> None:
    for option in (_socket.SO_RCVBUF, _socket.SO_SNDBUF):
        try:
            if sock.getsockopt(_socket.SOL_SOCKET, option) < MIN_SOCKET_BUFFER:
                sock.setsockopt(_socket.SOL_SOCKET, option, MIN_SOCKET_BUFFER)
        except OSError:
            pass  # The system's limit stands; gtudp resends what it drops.


class Delivery:
    """The outcome of one :meth:`Socket.sendto_nowait`: await it for
    ``True`` (delivered) or ``False`` (failed); ``reason`` says why, and
    ``suspected_lost`` how a delivery went."""

    __slots__ = ("_future", "_socket", "_number", "_settled", "reason", "error", "suspected_lost", "destination")

    def __init__(self, sock: "Socket", number: int, destination: Address) -> None:
        self._future: "asyncio.Future[bool]" = sock._loop.create_future()
        self._socket = sock
        self._number = number
        self._settled = False
        self.destination = destination
        self.reason: Optional[str] = None
        """Why it failed (as :attr:`gtudp.Delivery.reason`), else ``None``."""
        self.error: Optional[str] = None
        """The failure in words, else ``None``."""
        self.suspected_lost: Optional[bool] = None
        """Once delivered, whether it was resent as presumed lost before
        the confirmation came (as :attr:`gtudp.Delivery.suspected_lost`);
        ``None`` while pending or once failed."""

    def __await__(self):  # type: ignore[no-untyped-def]
        return asyncio.shield(self._future).__await__()

    def done(self) -> bool:
        """Whether the outcome is known."""
        return self._settled

    @property
    def delivered(self) -> Optional[bool]:
        """``True`` once delivered, ``False`` once failed, ``None`` while
        pending."""
        if not self._settled:
            return None
        return self.reason is None

    def cancel(self) -> bool:
        """Stops trying to deliver it: ``True`` if this cancelled it (it now
        reports ``False``, reason ``"cancelled"``)."""
        if self._settled:
            return False
        cancelled = self._socket._endpoint.cancel(self._number)
        self._socket._flush()
        return cancelled

    def _resolve(
        self,
        delivered: bool,
        reason: Optional[str] = None,
        error: Optional[str] = None,
        suspected_lost: Optional[bool] = None,
    ) -> None:
        if self._settled:
            return
        self._settled = True
        self.reason, self.error, self.suspected_lost = reason, error, suspected_lost
        if not self._future.done():
            self._future.set_result(delivered)

    def __repr__(self) -> str:
        delivered = "delivered (suspected lost)" if self.suspected_lost else "delivered"
        state = {None: "pending", True: delivered, False: f"failed: {self.reason}"}[self.delivered]
        return f"<gtudp.aio.Delivery to {self.destination} {state}>"


class Socket:
    """A gtUDP socket on an asyncio loop (from :func:`create_socket`).
    Use it from the loop's thread only, like any asyncio object."""

    def __init__(
        self,
        endpoint: _Endpoint,
        receive_queue: int,
        restore: Optional[Tuple[_socket.socket, Optional[float]]],
    ) -> None:
        self._endpoint = endpoint
        self._loop = asyncio.get_running_loop()
        self._transport: Optional[asyncio.DatagramTransport] = None
        self._local_addr: Address = ("", 0)
        self._family = _socket.AF_INET
        self._inbox: Deque[Message] = collections.deque()
        self._capacity = receive_queue
        self._paused = False
        self._readers: Deque["asyncio.Future[None]"] = collections.deque()
        self._deliveries: Dict[int, Delivery] = {}
        self._timer: Optional[asyncio.TimerHandle] = None
        self._timer_at: Optional[float] = None
        self._closing = False
        self._closed = asyncio.Event()
        self._restore = restore
        self._cleanup: "Optional[asyncio.Future[Dict[str, Any]]]" = None
        self._icmp_errors = 0
        self._unreachable_reports = 0
        # The transport's socket descriptor, whose error queue names the
        # destinations ICMP reported unreachable.
        self._fd = -1
        # Messages the endpoint failed at its drain deadline.
        self._abandoned_in_drain = 0
        # `_flush` is running, and was asked to run again meanwhile (by an
        # error the transport reported from one of its sends).
        self._flushing = False
        self._reflush = False
        # A flush is scheduled (`call_soon`) after received datagrams.
        self._flush_soon = False
        # Datagrams went in since the last flush: the endpoint may owe
        # answers (see `_on_datagram`).
        self._dirty = False
        # The last address `_send` resolved (or found a literal), to skip
        # the checks for a run of sends to one peer.
        self._last_addr: Any = None
        # The transport's `get_write_buffer_size`, if it has one.
        self._queued: Any = None
        # A duplicate of the socket's descriptor that the loop watches for
        # us, when the endpoint reads the socket itself (`_take_reading`).
        self._reader_fd = -1
        # While the endpoint holds ACKs (see `_flush_once`), the timer that
        # sends them if nothing else goes first.
        self._ack_timer: Optional[asyncio.TimerHandle] = None

    # ----- sending ---------------------------------------------------------

    async def sendto(
        self,
        data: bytes,
        addr: Address,
        *,
        deadline: Optional[float] = None,
        attempts: Optional[int] = None,
    ) -> bool:
        """Sends with guaranteed delivery: ``True`` once the peer's endpoint
        has it, ``False`` when delivery failed (or ``deadline`` seconds
        passed). Cancelling the await cancels the message."""
        delivery = await self._send(data, addr, deadline, attempts)
        try:
            # The future itself, not the shielded `await delivery`: the
            # shield costs a loop iteration, and this future is no one
            # else's (cancelling the await cancels it, and the message).
            return await delivery._future
        except asyncio.CancelledError:
            delivery.cancel()
            raise

    async def sendto_nowait(
        self,
        data: bytes,
        addr: Address,
        *,
        deadline: Optional[float] = None,
        attempts: Optional[int] = None,
    ) -> Delivery:
        """Starts a guaranteed send and returns its :class:`Delivery` at once
        (awaiting only a name lookup, if ``addr`` names a host)."""
        return await self._send(data, addr, deadline, attempts)

    async def sendto_raw(self, data: bytes, addr: Address) -> None:
        """Sends one plain UDP datagram, no framing, no guarantee."""
        addr = await self._resolve(addr)
        self._endpoint.send_raw(data, addr)
        self._flush()

    # ----- receiving -------------------------------------------------------

    async def recvfrom(self, length: Optional[int] = None) -> Tuple[bytes, Address]:
        """The next message and its sender; ``data`` cut to ``length`` bytes
        when given. Raises :class:`gtudp.Closed` once closed and drained.
        Use ``asyncio.wait_for`` for a timeout."""
        message = await self.recv_message(length)
        return message.data, message.addr

    async def recv_message(self, length: Optional[int] = None) -> Message:
        """Like :meth:`recvfrom`, as a :class:`gtudp.Message` that says
        whether the datagram is foreign."""
        if length is not None and length < 0:
            raise ValueError("negative buffersize in recvfrom")
        while not self._inbox:
            if self._closed.is_set() or self._transport is None:
                raise Closed("the socket has closed and nothing is left to read")
            waiter = self._loop.create_future()
            self._readers.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._readers:
                    self._readers.remove(waiter)
        message = self._take()
        if length:
            message = Message(message.data[:length], message.addr, message.foreign)
        return message

    async def recv_many(self, limit: int = 64, length: Optional[int] = None) -> List[Message]:
        """Up to ``limit`` messages as :class:`gtudp.Message`: waits for the
        first as :meth:`recv_message` does, then takes whatever else is
        queued without waiting again. Raises ``ValueError`` for a ``limit``
        below 1, :class:`gtudp.Closed` once closed and drained."""
        if limit < 1:
            raise ValueError("'limit' must be at least 1")
        first = await self.recv_message(length)
        taken: List[Message] = []
        while self._inbox and len(taken) + 1 < limit:
            taken.append(self._inbox.popleft())
        if taken:
            try:
                self._after_take()
            except BaseException:
                # Nothing taken is lost: what follows the first goes back.
                self._inbox.extendleft(reversed(taken))
                raise
        if length:
            taken = [Message(m.data[:length], m.addr, m.foreign) for m in taken]
        return [first, *taken]

    def recvfrom_nowait(self, length: Optional[int] = None) -> Tuple[bytes, Address]:
        """A message already queued, or :class:`gtudp.Timeout` (a
        ``queue.Empty``) at once."""
        if not self._inbox:
            raise Timeout("no message is queued")
        message = self._take()
        return (message.data[:length] if length else message.data), message.addr

    # ----- state -----------------------------------------------------------

    def stats(self) -> Dict[str, Any]:
        """The endpoint's counters (as :meth:`gtudp.GTUDP.stats`, with
        ``io`` holding the socket errors the transport reported,
        ``icmp_errors``, and the ICMP unreachable reports read from the
        socket's error queue, ``unreachable_reports``)."""
        stats = self._endpoint.stats()
        stats["io"] = {"icmp_errors": self._icmp_errors, "unreachable_reports": self._unreachable_reports}
        return stats

    def peer_stats(self, addr: Address) -> Optional[Dict[str, Any]]:
        """What the endpoint knows of one peer (an IP address, as
        :meth:`recvfrom` gives it), as :meth:`gtudp.GTUDP.peer_stats`;
        ``None`` for a peer it does not track."""
        return self._endpoint.peer_stats(addr)

    def getsockname(self) -> Address:
        """The local address (as :meth:`gtudp.GTUDP.getsockname`)."""
        return self._local_addr

    @property
    def local_addr(self) -> Address:
        """The local address.

        .. deprecated:: use :meth:`getsockname`, the name
           :class:`gtudp.GTUDP` has."""
        warnings.warn(
            "gtudp.aio.Socket.local_addr is deprecated; use getsockname(), as gtudp.GTUDP has",
            DeprecationWarning,
            stacklevel=2,
        )
        return self._local_addr

    @property
    def max_payload_size(self) -> int:
        """The largest payload one message can carry."""
        return self._endpoint.max_payload_size

    async def cleanup(self, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Closes: messages in flight and RECVs awaiting their ACK are
        resolved until done, or until ``timeout`` seconds (default and at
        most ``drain_timeout``), when what is left fails. Returns the
        summary, as :meth:`gtudp.GTUDP.cleanup` does (every call the same
        one; concurrent calls wait for the first)."""
        if self._cleanup is None:
            self._cleanup = asyncio.ensure_future(self._drain(timeout))
        return await asyncio.shield(self._cleanup)

    async def _drain(self, timeout: Optional[float]) -> Dict[str, Any]:
        # The summary's keys and meanings are :meth:`gtudp.GTUDP.cleanup`'s.
        limit = self._endpoint.drain_timeout if timeout is None else min(timeout, self._endpoint.drain_timeout)
        before = self._endpoint.stats()
        started = time.monotonic()
        self._closing = True
        self._endpoint.close()
        self._flush()
        try:
            await asyncio.wait_for(self._closed.wait(), limit)
            deadline_reached = False
        except asyncio.TimeoutError:
            deadline_reached = True
        abandoned = 0
        for delivery in list(self._deliveries.values()):
            abandoned += 1
            delivery._resolve(False, "endpoint_closed", "the socket closed before a RECV arrived")
        self._deliveries.clear()
        after = self._endpoint.stats()
        self._stop()
        stats = self.stats()
        return {
            "delivered": after["delivered"],
            "failed": after["failed"] + abandoned,
            "drained_delivered": after["delivered"] - before["delivered"],
            "drained_failed": after["failed"] - before["failed"] + abandoned,
            "abandoned": abandoned + self._abandoned_in_drain,
            "deadline_reached": deadline_reached or self._abandoned_in_drain > 0,
            "elapsed": time.monotonic() - started,
            "stats": stats,
            "complete": True,
        }

    async def __aenter__(self) -> "Socket":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.cleanup()

    # ----- driving the endpoint ----------------------------------------------

    def _take(self) -> Message:
        message = self._inbox.popleft()
        self._after_take()
        return message

    def _after_take(self) -> None:
        """Resumes receiving once the inbox has drained to half."""
        if self._paused and len(self._inbox) < self._capacity // 2:
            self._paused = False
            self._endpoint.set_receive_paused(False)
            self._flush()

    async def _send(self, data: bytes, addr: Address, deadline: Optional[float], attempts: Optional[int]) -> Delivery:
        if self._closing or self._transport is None:
            raise Closed("the socket is closing")
        if addr != self._last_addr:
            addr = await self._resolve(addr)
            self._last_addr = addr
        number = self._endpoint.send(data, addr, deadline, attempts)
        delivery = Delivery(self, number, addr)
        self._deliveries[number] = delivery
        self._flush()
        return delivery

    async def _resolve(self, addr: Address) -> Address:
        if not isinstance(addr, tuple) or len(addr) < 2 or not isinstance(addr[0], str) or _is_ip_literal(addr[0]):
            return addr  # the endpoint checks it
        infos = await self._loop.getaddrinfo(addr[0], addr[1], family=self._family, type=_socket.SOCK_DGRAM)
        if not infos:
            raise OSError(f"no address for {addr[0]!r}")
        return cast(Address, infos[0][4])

    def _take_reading(self) -> None:
        """Reads the socket natively from here on (Linux, a loop with
        ``add_reader``): the loop calls :meth:`_on_readable` when the socket
        is readable, and one native call reads every datagram queued
        (``recvmmsg``) and hands their events over, instead of the
        transport reading one datagram per iteration into a new 256 KiB
        buffer and calling ``datagram_received``. The transport still
        sends and closes. The loop watches a duplicate of the descriptor
        (it refuses a descriptor a transport owns); both name one socket."""
        transport = self._transport
        pause_reading = getattr(transport, "pause_reading", None)
        if pause_reading is None or not sys.platform.startswith("linux") or self._fd < 0:
            return
        try:
            fd = os.dup(self._fd)
        except OSError:
            return
        try:
            self._loop.add_reader(fd, self._on_readable)
        except (NotImplementedError, RuntimeError, ValueError, OSError):
            os.close(fd)
            return  # the transport keeps reading
        self._reader_fd = fd
        pause_reading()

    def _release_reading(self) -> None:
        fd, self._reader_fd = self._reader_fd, -1
        if fd >= 0:
            try:
                self._loop.remove_reader(fd)
            except (RuntimeError, ValueError, OSError):
                pass  # the loop is closed
            os.close(fd)

    def _on_readable(self) -> None:
        events, errno = self._endpoint.receive_ready(self._reader_fd)
        self._after_receive(events, errno)

    def _on_datagram(self, data: bytes, addr: Any) -> None:
        # The events now (a waiting reader or sender wakes on the next
        # iteration); when they woke someone, the datagrams they produced
        # (a RECV, an ACK) and the timer once the loop has run what is
        # ready, so that a reply the application sends meanwhile leaves with
        # them, in one system call; else at once.
        # The endpoint reads what else is queued on the socket too, so that
        # one wake-up takes a burst (a RECV and the echo after it) at once.
        events, errno = self._endpoint.receive(data, addr, self._fd if self._transport is not None else -1)
        self._after_receive(events, errno)

    def _after_receive(self, events: "List[_Event]", errno: int) -> None:
        woke = self._hand_over(events) if events else False
        if errno:
            self._on_error(OSError(errno, os.strerror(errno)))
        if not woke:
            self._flush()  # no one to answer: nothing to wait for
            return
        self._dirty = True
        if not self._flush_soon:
            self._flush_soon = True
            self._loop.call_soon(self._flush_later)

    def _flush_later(self) -> None:
        self._flush_soon = False
        if self._dirty:  # else a flush since (a reply sent) took all
            self._flush(hold_acks=True)

    def _flush_acks(self) -> None:
        self._ack_timer = None
        self._flush()

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self._endpoint.handle_timeout()
        self._flush()

    def _on_error(self, exc: Exception) -> None:
        """An error the transport met receiving or sending: an ICMP report
        about an earlier send (port unreachable, ...) sets it. The socket's
        error queue names the destinations reported unreachable, whose
        messages fail at once (after a grace of silence for a peer that
        answered before), as in the blocking socket (Linux); otherwise
        the retransmissions and attempt limit decide."""
        self._icmp_errors += 1
        if self._transport is None:
            return
        try:
            found = self._endpoint.read_unreachable_reports(self._fd)
        except OSError:
            return
        if found:
            self._unreachable_reports += found
            self._flush()

    def _flush(self, hold_acks: bool = False) -> None:
        """Sends what the endpoint produced, hands its events over and sets
        its timer (the core's call contract). A call made while it runs (an
        error reported by one of its sends) makes it run once more.
        ``hold_acks``: a batch of nothing but ACKs may wait, at most
        :data:`ACK_HOLD` seconds, for the next datagram to leave with it (a
        flush after received datagrams: the application often answers)."""
        if self._flushing:
            self._reflush = True
            return
        self._flushing = True
        try:
            self._reflush = True
            while self._reflush:
                self._reflush = False
                self._flush_once(hold_acks)
        finally:
            self._flushing = False

    def _flush_once(self, hold_acks: bool) -> None:
        self._dirty = False
        transport = self._transport
        queued = self._queued
        if transport is not None and queued is not None and not transport.is_closing() and not queued():
            # The endpoint sends through the socket itself, all in one
            # system call; what the socket would not take goes through the
            # transport, which queues it.
            datagrams, events, timeout, errors, holding = self._endpoint.poll_send(self._fd, hold_acks)
            for errno in errors:
                self._on_error(OSError(errno, os.strerror(errno)))
            if holding:
                if self._ack_timer is None:
                    self._ack_timer = self._loop.call_later(ACK_HOLD, self._flush_acks)
            elif self._ack_timer is not None:
                # What it held has left: no wake-up for nothing.
                self._ack_timer.cancel()
                self._ack_timer = None
        else:
            datagrams, events, timeout = self._endpoint.poll()
        if transport is not None:
            for datagram, addr in datagrams:
                transport.sendto(datagram, addr)
        if events:
            self._hand_over(events)
        if self._closing and self._endpoint.is_closed:
            self._closed.set()
        self._schedule(timeout)

    def _hand_over(self, events: "List[_Event]") -> bool:
        """Hands events over; whether they may have woken a task (a reader,
        or a sender awaiting its delivery)."""
        arrived = False
        woke = False
        for event in events:
            if self._handle(event):
                arrived = True
            else:
                woke = True
        if arrived:
            if len(self._inbox) >= self._capacity and not self._paused:
                # Backpressure: new messages wait in their senders (which
                # resend) until the application reads.
                self._paused = True
                self._endpoint.set_receive_paused(True)
            while self._readers:
                waiter = self._readers.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    woke = True
        return woke

    def _handle(self, event: Any) -> bool:
        """Hands one endpoint event over; whether it was a message."""
        # `event` is an `_Event`, typed `Any` to index it without a
        # `typing.cast` of a subscripted type (not free at run time) per
        # event.
        kind = event[0]
        if kind == "received" or kind == "foreign":
            data, addr = event[1], event[2]
            self._inbox.append(Message(data, addr, kind == "foreign"))
            return True
        if kind == "delivered":
            number, suspected_lost = event[1], event[2]
            delivery = self._deliveries.pop(number, None)
            if delivery is not None:
                delivery._resolve(True, suspected_lost=suspected_lost)
            return False
        number, reason, error = event[1], event[2], event[3]
        delivery = self._deliveries.pop(number, None)
        if reason == "endpoint_closed":
            self._abandoned_in_drain += 1
        if delivery is not None:
            delivery._resolve(False, reason, error)
        return False

    def _schedule(self, timeout: Optional[float]) -> None:
        if timeout is None:
            return
        at = self._loop.time() + timeout
        if self._timer is not None:
            if self._timer_at is not None and self._timer_at <= at:
                return  # an earlier wake-up re-asks the endpoint
            self._timer.cancel()
        self._timer_at = at
        self._timer = self._loop.call_at(at, self._on_timer)

    def _stop(self) -> None:
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None
            self._flush()  # the ACKs held
        self._release_reading()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        self._closed.set()
        for waiter in self._readers:
            if not waiter.done():
                waiter.set_result(None)
        if self._restore is not None:
            sock, timeout = self._restore
            self._restore = None
            try:
                sock.settimeout(timeout)
            except OSError:
                pass


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, sock: Socket) -> None:
        self._socket = sock

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._socket._transport = transport  # type: ignore[assignment]
        self._socket._local_addr = transport.get_extra_info("sockname")
        sock = transport.get_extra_info("socket")
        self._socket._family = sock.family
        self._socket._fd = sock.fileno()
        self._socket._queued = getattr(transport, "get_write_buffer_size", None)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._socket._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP reports (port unreachable, ...) about earlier sends: with the
        # error queue on (Linux), the destinations reported unreachable fail
        # at once, as in the blocking socket; else the protocol's
        # retransmissions and attempt limit decide.
        self._socket._on_error(exc)

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._socket._release_reading()
        self._socket._transport = None
        self._socket._closed.set()
