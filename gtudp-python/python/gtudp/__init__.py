"""gtudp: guaranteed-delivery UDP, the Rust-backed successor of gtUDP.

Every datagram sent with :meth:`GTUDP.sendto` is either confirmed delivered
(the peer's endpoint has it; it may not have been read yet) or reported
failed (delivery was not confirmed; the payload may still have arrived),
exactly once; every datagram received is handed over exactly once. Delivery
is unordered. The wire format is the original gtUDP's (DATA, RECV, ACK with
a 4-byte identity), so both interoperate with the default settings.

:class:`GTUDP` keeps the original's calls (``start``, ``sendto``,
``recvfrom``, ``settimeout``, ``setblocking``, ``cleanup``), so existing
code runs unchanged, and adds what the original wished for:
:meth:`GTUDP.sendto_blocking`, a :class:`Delivery` handle from ``sendto``,
per-message deadlines and attempts, cancel, foreign datagrams and raw
sends, :meth:`GTUDP.stats`, and a bounded :meth:`GTUDP.cleanup` that
returns its summary. :mod:`gtudp.aio` offers the same on asyncio.
"""

from __future__ import annotations

import atexit
import collections
import os
import socket as _socket
import threading
import time
import weakref
from typing import Any, Deque, Dict, List, NamedTuple, Optional, Tuple, Union

from ._errors import Closed, GtudpError, Refused, Timeout
from ._native import Delivery
from ._native import Socket as _NativeSocket
from ._native import after_fork_in_child as _after_fork_in_child
from ._native import interpreter_exiting as _interpreter_exiting
from ._native import validate_options as _validate_options

__all__ = [
    "GTUDP",
    "Delivery",
    "Message",
    "Address",
    "GtudpError",
    "Timeout",
    "Closed",
    "Refused",
    "EXIT_TIMEOUT",
]

Address = Union[Tuple[str, int], Tuple[str, int, int, int]]
"""``(host, port)`` for IPv4, ``(host, port, flowinfo, scope_id)`` for IPv6,
as the :mod:`socket` module writes them."""

EXIT_TIMEOUT = 2.0
"""Seconds a socket not cleaned up by the program may spend draining its
messages in flight when the interpreter exits (at most its
``drain_timeout``); what is left fails, and exit goes on."""


class Message(NamedTuple):
    """A received datagram, from :meth:`GTUDP.recv_message`."""

    data: bytes
    """The payload (cut to the ``length`` asked for, if any)."""
    addr: Address
    """The sender's address."""
    foreign: bool
    """``True`` for a datagram that is not gtUDP, handed over because
    ``recv_from_any`` is on (it carried no delivery guarantee)."""


class GTUDP:
    """A UDP socket wrapper that guarantees datagram delivery.

    ``GTUDP(sock, debug=False, magic_numbers=b'', recv_from_any=False)``
    takes a UDP socket (``socket.socket(AF_INET or AF_INET6, SOCK_DGRAM)``),
    bound by you or not (an unbound one is bound to an ephemeral port, as
    its first ``sendto`` would). gtudp works on a duplicate of its file
    descriptor: the binding, and the socket object, stay yours; do not read
    from it yourself while wrapped, and close it after :meth:`cleanup`.

    Keyword-only options (``None`` keeps the default; see the Rust
    ``gtudp_proto::Config`` for the reasons behind each):

    - ``frame_identifier``, ``recv_identifier``, ``ack_identifier``: the
      type bytes (default ``b'\\x1d'``, ``b'\\x5f'``, ``b'\\xae'``); any
      length, all three the same length and distinct, the same at both ends.
    - ``max_attempts`` (10), ``recv_max_attempts`` (10): transmissions of a
      DATA before it fails, of a RECV before the receiver stops waiting for
      its ACK.
    - ``initial_rto`` (0.5 s), ``min_rto`` (0.02 s), ``max_rto`` (10 s):
      the retransmission timeout before the first RTT sample, its floor and
      ceiling, in seconds.
    - ``drain_timeout`` (10 s): the longest :meth:`cleanup` keeps resolving
      messages in flight.
    - ``unreachable_grace`` (5 s): how long a peer that has answered before
      may stay silent after an ICMP unreachable report before its messages
      fail ``"unreachable"`` (a peer restarted on the same port within it
      loses nothing; one that never answered fails at once).
    - ``recognise_copies_across_ports`` (True): a copy of a message already
      handed over is recognised when it comes from another port of the same
      IP address (a NAT gave the sender a new port mid-stream), and never
      handed over again. Senders behind one NAT then share that memory: a
      new message from one with the same identity and byte-identical payload
      as one of another's is taken for it (see docs/address-changes.md for
      the odds). ``False``: one memory per address.
    - ``roaming`` (False): the roaming extension, which both ends must turn
      on (like ``magic_numbers``): every datagram names its sender with an
      8-byte token (one per peer record, known only to that peer), so a peer whose
      IP address or port changes keeps
      its messages, each handed over once, and replies follow it to its new
      address once that address has answered a probe
      (docs/address-changes.md).
    - ``remember_window`` (120 s), ``datagram_lifetime`` (2 s),
      ``peer_idle_timeout`` (60 s): how long received identities and idle
      peers are remembered.
    - ``max_datagram_size`` (65507 bytes, header included: one UDP
      datagram up to its limit, as the original sent; the socket lets the
      kernel fragment what the path cannot carry whole, on Linux; a lost
      fragment costs the whole datagram, so on a lossy path pass 1452 and
      split large messages),
      ``initial_window`` (16), ``max_window`` (32768 messages in flight).
    - ``max_message_size`` (None): turns on large messages, an extension of
      the wire format both ends must turn on. A message larger than one
      datagram is sent as fragments, each confirmed and resent on its own
      (a lost packet costs one packet, not the message), and handed over
      whole, once; up to this many bytes (at most 4 GiB, and at most the
      32 MiB a peer may hold in incomplete messages). Pass it with
      ``max_datagram_size=1452`` so that every fragment fits the path.
      Messages that fit one datagram stay the original's DATA.
      ``fragment_identifier`` (``b"\x1e"``): the fragments' type
      identifier, as long as the other three and unlike each.
    - ``max_peers``, ``max_outstanding_messages``, ``max_queued_per_peer``,
      ``max_awaiting_ack``, ``max_awaiting_ack_per_peer``,
      ``max_remembered_bytes`` (64 MiB of remembered identities, which sets
      the highest sustained receive rate), ``max_unread``: bounds of
      every table; ``receive_queue`` (4096): messages held for
      :meth:`recvfrom` (when full, senders resend later; nothing is lost).

    Bad values raise ``TypeError`` or ``ValueError`` at once, saying why.

    A bound socket starts at once: from then on it receives, and answers
    senders, in the background, whether or not :meth:`recvfrom` is called
    (messages wait for it in the receive queue). An unbound one starts at
    its first use, which binds it.

    Like the original, the attributes ``debug``, ``magic_numbers``,
    ``recv_from_any``, ``FRAME_IDENTIFIER``, ``RECV_IDENTIFIER``,
    ``ACK_IDENTIFIER``, ``data_attempts`` and ``recv_attempts`` may be
    changed before :meth:`start` or the first other call; that call
    restarts the socket with them (messages it had already received stay
    queued for :meth:`recvfrom`). Changes after it have no effect.
    All methods may be called from any number of threads; those that wait
    release the GIL.
    """

    def __init__(
        self,
        sock: _socket.socket,
        debug: bool = False,
        magic_numbers: bytes = b"",
        recv_from_any: bool = False,
        *,
        frame_identifier: bytes = b"\x1d",
        recv_identifier: bytes = b"\x5f",
        ack_identifier: bytes = b"\xae",
        max_attempts: Optional[int] = None,
        recv_max_attempts: Optional[int] = None,
        initial_rto: Optional[float] = None,
        min_rto: Optional[float] = None,
        max_rto: Optional[float] = None,
        drain_timeout: Optional[float] = None,
        unreachable_grace: Optional[float] = None,
        recognise_copies_across_ports: Optional[bool] = None,
        roaming: Optional[bool] = None,
        remember_window: Optional[float] = None,
        datagram_lifetime: Optional[float] = None,
        peer_idle_timeout: Optional[float] = None,
        max_datagram_size: Optional[int] = None,
        max_message_size: Optional[int] = None,
        fragment_identifier: Optional[bytes] = None,
        initial_window: Optional[int] = None,
        max_window: Optional[int] = None,
        max_peers: Optional[int] = None,
        max_outstanding_messages: Optional[int] = None,
        max_queued_per_peer: Optional[int] = None,
        max_awaiting_ack: Optional[int] = None,
        max_awaiting_ack_per_peer: Optional[int] = None,
        max_remembered_bytes: Optional[int] = None,
        max_unread: Optional[int] = None,
        receive_queue: Optional[int] = None,
    ) -> None:
        if not isinstance(sock, _socket.socket):
            raise TypeError(f"sock must be a socket.socket, not {type(sock).__name__}")
        if sock.type != _socket.SOCK_DGRAM:
            raise ValueError("sock must be a UDP (SOCK_DGRAM) socket")
        if sock.family not in (_socket.AF_INET, _socket.AF_INET6):
            raise ValueError("sock must be an AF_INET or AF_INET6 socket")
        self.socket = sock
        self._socket = sock
        self.debug = bool(debug)
        self.magic_numbers = magic_numbers
        self.recv_from_any = bool(recv_from_any)
        self.FRAME_IDENTIFIER = frame_identifier
        self.RECV_IDENTIFIER = recv_identifier
        self.ACK_IDENTIFIER = ack_identifier
        # The original's attribute names (its defaults were 6 and 10).
        self.data_attempts = 10 if max_attempts is None else max_attempts
        self.recv_attempts = 10 if recv_max_attempts is None else recv_max_attempts
        self._more_options: Dict[str, Any] = {
            "initial_rto": initial_rto,
            "min_rto": min_rto,
            "max_rto": max_rto,
            "drain_timeout": drain_timeout,
            "unreachable_grace": unreachable_grace,
            "recognise_copies_across_ports": recognise_copies_across_ports,
            "roaming": roaming,
            "remember_window": remember_window,
            "datagram_lifetime": datagram_lifetime,
            "peer_idle_timeout": peer_idle_timeout,
            "max_datagram_size": max_datagram_size,
            "max_message_size": max_message_size,
            "fragment_identifier": fragment_identifier,
            "initial_window": initial_window,
            "max_window": max_window,
            "max_peers": max_peers,
            "max_outstanding_messages": max_outstanding_messages,
            "max_queued_per_peer": max_queued_per_peer,
            "max_awaiting_ack": max_awaiting_ack,
            "max_awaiting_ack_per_peer": max_awaiting_ack_per_peer,
            "max_remembered_bytes": max_remembered_bytes,
            "max_unread": max_unread,
            "receive_queue": receive_queue,
        }
        _validate_options(self.magic_numbers, self.recv_from_any, self._options())
        self.blocking = True
        self.recv_timeout: Optional[float] = None
        self.running = False
        self._native: Optional[_NativeSocket] = None
        # Started at construction, not used yet: a configuration attribute
        # set now applies at the first call (`_reconfigure` says one was).
        self._configurable = False
        self._reconfigure = False
        # Messages received before a restart, handed over first.
        self._carried: Deque[Message] = collections.deque()
        self._cleaned_up = False
        self._summary: Optional[Dict[str, Any]] = None
        self._lock = threading.Lock()
        self._socket_timeout = sock.gettimeout()
        if not _unbound(sock):
            # Receiving, and answering senders, from now on: the socket
            # "starts on first use" includes a peer's first message.
            with self._lock:
                self._native = self._new_native()
            self._configurable = True

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name in _CONFIGURATION and self.__dict__.get("_configurable"):
            object.__setattr__(self, "_reconfigure", True)

    # ----- the original's calls ------------------------------------------

    def start(self) -> None:
        """Starts the socket's background thread, with the configuration
        attributes as they are now (at most once; a bound socket is
        receiving already, and every other call starts it too)."""
        self._started()

    def sendto(
        self,
        data: bytes,
        addr: Address,
        *,
        deadline: Optional[float] = None,
        attempts: Optional[int] = None,
    ) -> Delivery:
        """Sends ``data`` to ``addr`` with guaranteed delivery and returns at
        once with a :class:`Delivery` handle (the original returned the
        byte count of its first transmission).

        ``data`` is any bytes-like object; ``addr`` an address tuple (a host
        name is looked up). ``deadline``: seconds from now after which the
        message fails (reason ``"deadline_expired"``) if not confirmed;
        ``attempts``: transmissions before it fails (at most
        ``max_attempts``). Raises ``ValueError`` for a payload larger than
        :attr:`max_payload_size` or bad options, :class:`Closed` after
        cleanup.
        """
        return self._started().sendto(data, addr, deadline, attempts)

    def recvfrom(self, length: Optional[int] = None) -> Tuple[bytes, Address]:
        """The next message and its sender, ``(data, addr)``; ``data`` is cut
        to ``length`` bytes when given (the rest of that message is
        discarded, as ``socket.recvfrom`` does).

        Waits as :meth:`settimeout` and :meth:`setblocking` say; raises
        :class:`Timeout` (a ``queue.Empty``, as the original raised) when
        nothing came in time, :class:`Closed` once cleaned up and drained.
        With ``recv_from_any``, foreign datagrams come here too, whole.
        """
        message = self.recv_message(length)
        return message.data, message.addr

    def settimeout(self, seconds: Optional[float]) -> None:
        """How long a blocking :meth:`recvfrom` waits: ``None`` (the
        default) without limit."""
        if seconds is not None and not seconds >= 0:
            raise ValueError("'timeout' must be a non-negative number")
        self.recv_timeout = seconds

    def setblocking(self, should_block: bool) -> None:
        """``False``: :meth:`recvfrom` returns at once or raises
        :class:`Timeout`."""
        self.blocking = bool(should_block)

    def cleanup(self, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Stops: no new messages in or out; messages in flight and RECVs
        awaiting their ACK are resolved until done or until ``drain_timeout``
        (default 10 s), when what is left fails. Returns the summary:
        ``delivered`` and ``failed``, the messages resolved over the
        socket's life; ``drained_delivered``, ``drained_failed`` and
        ``abandoned`` (still unconfirmed at the drain deadline, counted in
        both failed figures), those the drain resolved; ``deadline_reached``,
        ``elapsed`` seconds, the final ``stats``, and ``complete``. (Earlier
        versions gave the drain's figures as ``delivered`` and ``failed``;
        they are now ``drained_delivered`` and ``drained_failed``.)

        With ``timeout``, returns after at most that many seconds: if the
        drain has not ended by then, the summary says what it did so far
        (``complete`` false) and the drain goes on in the background until
        ``drain_timeout``; it never outlives that.

        Safe to call more than once and from any thread; a thread blocked in
        :meth:`recvfrom` gets the messages still queued, then
        :class:`Closed`. The wrapped socket is given back in blocking mode
        as it was once the drain ended (in the background, if ``timeout``
        came first); close it yourself.
        """
        with self._lock:
            self._cleaned_up = True
            # What it had received is still handed over, then `Closed`.
            self._configurable = False
            native = self._native
        if native is None:
            return _empty_summary()
        summary = native.close(timeout)
        self.running = False
        _live.discard(self)
        if summary.get("complete", True):
            self._give_socket_back()
        elif _exiting:
            # No thread may outlive the interpreter; the process is ending.
            pass
        else:
            # The drain goes on reading the shared descriptor, which must
            # stay non-blocking until it ends: give it back then.
            def finish() -> None:
                try:
                    native.close(None)
                except Closed:
                    # The interpreter began exiting first and refuses
                    # every new call: the process, and the drain with it,
                    # is ending. Nothing to report, nobody to give the
                    # socket back to.
                    return
                self._give_socket_back()

            threading.Thread(target=finish, name="gtudp cleanup", daemon=True).start()
        return summary

    def _give_socket_back(self) -> None:
        try:
            # The descriptor was shared in non-blocking mode; give it back.
            self.socket.settimeout(self._socket_timeout)
        except OSError:
            pass

    # ----- what the original wished for ------------------------------------

    def sendto_blocking(
        self,
        data: bytes,
        addr: Address,
        timeout: Optional[float] = None,
        *,
        attempts: Optional[int] = None,
    ) -> bool:
        """Sends and waits: ``True`` once the peer's endpoint has the message,
        ``False`` when delivery failed or ``timeout`` seconds passed first
        (the timeout is the message's deadline: it is not tried after it).
        Without a timeout it waits at most ``max_attempts`` retransmission
        timeouts."""
        return self._started().sendto_blocking(data, addr, timeout, attempts)

    def sendto_raw(self, data: bytes, addr: Address) -> None:
        """Sends ``data`` as one plain UDP datagram, without gtUDP framing or
        guarantee, for peers that do not speak gtUDP. Raises
        :class:`Refused` when too many raw datagrams wait to be sent."""
        self._started().sendto_raw(data, addr)

    def peer_stats(self, addr: Address) -> Optional[Dict[str, Any]]:
        """What the endpoint knows of one peer: ``rtt`` and ``rto`` (seconds),
        ``window``, ``in_flight``, ``queued`` and its counters; ``None`` for
        a peer it does not track."""
        return self._started().peer_stats(addr)

    def recv_message(self, length: Optional[int] = None) -> Message:
        """Like :meth:`recvfrom`, as a :class:`Message` that also says
        whether the datagram is foreign (not gtUDP)."""
        if length is not None and length < 0:
            raise ValueError("negative buffersize in recvfrom")
        native = self._started()
        if self._carried:
            try:
                message = self._carried.popleft()
            except IndexError:  # another thread took it
                pass
            else:
                return Message(message.data[:length] if length else message.data, message.addr, message.foreign)
        wait = self.recv_timeout if self.blocking else 0.0
        data, addr, foreign = native.recv(wait, length or None)
        return Message(data, addr, foreign)

    def recv_many(self, limit: int = 64, length: Optional[int] = None) -> List[Message]:
        """Up to ``limit`` messages as :class:`Message`: waits for the first
        as :meth:`recvfrom` does (as :meth:`settimeout` and
        :meth:`setblocking` say), then takes whatever else has arrived
        without waiting again, in one call (one call into the extension, and
        one lock, for the lot). ``data`` is cut to ``length`` bytes when
        given. Raises :class:`Timeout` when nothing came in time,
        :class:`Closed` once cleaned up and drained, ``ValueError`` for a
        ``limit`` below 1."""
        if limit < 1:
            raise ValueError("'limit' must be at least 1")
        if length is not None and length < 0:
            raise ValueError("negative buffersize in recvfrom")
        native = self._started()
        messages: List[Message] = []
        while self._carried and len(messages) < limit:
            try:
                message = self._carried.popleft()
            except IndexError:  # another thread took it
                break
            messages.append(Message(message.data[:length] if length else message.data, message.addr, message.foreign))
        if messages:
            return messages
        wait = self.recv_timeout if self.blocking else 0.0
        return [Message(data, addr, foreign) for data, addr, foreign in native.recv_many(wait, limit, length or None)]

    def gettimeout(self) -> Optional[float]:
        """The receive timeout: ``0.0`` when non-blocking, else as set by
        :meth:`settimeout`."""
        return self.recv_timeout if self.blocking else 0.0

    def stats(self) -> Dict[str, Any]:
        """Counters of the endpoint and the socket I/O: datagrams by kind in
        and out, retransmissions, duplicates suppressed, delivered, failed,
        drops by cause, system calls."""
        return self._started().stats()

    @property
    def max_payload_size(self) -> int:
        """The largest payload one message can carry."""
        return self._started().max_payload_size

    def getsockname(self) -> Address:
        """The local address."""
        return self._started().local_addr

    # ----- context manager -------------------------------------------------

    def __enter__(self) -> "GTUDP":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        state = "cleaned up" if self._cleaned_up else ("running" if self.running else "not started")
        return f"<gtudp.GTUDP {state} on {self.socket!r}>"

    # ----- helpers ---------------------------------------------------------

    def _options(self) -> Dict[str, Any]:
        options = dict(self._more_options)
        options["frame_identifier"] = self.FRAME_IDENTIFIER
        options["recv_identifier"] = self.RECV_IDENTIFIER
        options["ack_identifier"] = self.ACK_IDENTIFIER
        options["max_attempts"] = self.data_attempts
        options["recv_max_attempts"] = self.recv_attempts
        return options

    def _started(self) -> _NativeSocket:
        native = self._native
        if native is not None and not self._configurable:
            return native
        with self._lock:
            if self._cleaned_up:
                raise Closed("the gtUDP socket has been cleaned up")
            if self._native is not None and not self._configurable:
                return self._native
            # The first call: the configuration is fixed from now on (once
            # the socket runs with it, so no other thread takes the old
            # one meanwhile).
            if self._native is not None and self._reconfigure:
                self._reconfigure = False
                self._restart(self._native)
            if self._native is None:
                self._native = self._new_native()
            self._configurable = False
            return self._native

    def _new_native(self) -> _NativeSocket:
        """The running socket, configured by the attributes (the lock
        held)."""
        sock = self.socket
        if sock.fileno() < 0:
            raise Closed("the wrapped socket is closed")
        if _unbound(sock):
            sock.bind(("", 0))
        native = _NativeSocket(
            sock.fileno(),
            sock.family,
            self.debug,
            self.magic_numbers,
            self.recv_from_any,
            self._options(),
        )
        self.running = True
        _live.add(self)
        return native

    def _restart(self, old: _NativeSocket) -> None:
        """Replaces the socket started at construction by one configured by
        the attributes changed since (the lock held). The old one is closed
        first: its drain waits for the ACKs of the messages it received, so
        their senders will not send them again (it ends at once when none
        came), and those messages are handed over before any other."""
        self._native = None
        old.close(None)
        while True:
            try:
                data, addr, foreign = old.recv(0.0, None)
            except (Timeout, Closed):
                break
            self._carried.append(Message(data, addr, foreign))
        self._native = self._new_native()


# The attributes that configure the socket, as the original named them.
_CONFIGURATION = frozenset(
    {
        "debug",
        "magic_numbers",
        "recv_from_any",
        "FRAME_IDENTIFIER",
        "RECV_IDENTIFIER",
        "ACK_IDENTIFIER",
        "data_attempts",
        "recv_attempts",
    }
)


def _unbound(sock: _socket.socket) -> bool:
    try:
        return sock.getsockname()[1] == 0
    except OSError:
        return True


def _empty_summary() -> Dict[str, Any]:
    return {
        "delivered": 0,
        "failed": 0,
        "drained_delivered": 0,
        "drained_failed": 0,
        "abandoned": 0,
        "deadline_reached": False,
        "elapsed": 0.0,
        "stats": None,
        "complete": True,
    }


_live: "weakref.WeakSet[GTUDP]" = weakref.WeakSet()
# Set once the interpreter started exiting (see `_cleanup_at_exit`).
_exiting = False


def _cleanup_at_exit() -> None:
    """Closes every socket the program left open, all within
    :data:`EXIT_TIMEOUT` together, so exit neither hangs nor drops what a
    short drain can still deliver; threads blocked in ``recvfrom`` get
    :class:`Closed` and can end."""
    global _exiting
    _exiting = True
    sockets = list(_live)
    deadline = time.monotonic() + EXIT_TIMEOUT
    for timeout in (0.0, None):  # start every drain, then wait for them
        for gtudp in sockets:
            left = max(0.0, deadline - time.monotonic()) if timeout is None else timeout
            try:
                gtudp.cleanup(timeout=left)
            except Exception:  # noqa: BLE001 - exit must go on
                pass


# Once non-daemon threads are joined and the sockets are closed: from then
# on a gtudp call from a daemon thread raises Closed, and the exit waits
# (at most 2 s) for those inside one to come back while the interpreter
# still runs, so that none re-enters it once it finalizes, which would abort
# the process on CPython before 3.13 (see the extension's `exit` module).
# Registered first, so that in the fallback below it also runs after the
# cleanup (atexit callbacks run last registered first).
atexit.register(_interpreter_exiting)
# A forked child has none of its parent's other threads inside a call.
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

# Before non-daemon threads are joined (so a thread blocked in recvfrom is
# released), where the interpreter offers it; else at ordinary atexit time.
_register = getattr(threading, "_register_atexit", None)
if _register is not None:
    _register(_cleanup_at_exit)
else:  # pragma: no cover
    atexit.register(_cleanup_at_exit)
