"""Type stubs of gtudp's Rust extension module (``gtudp._native``).

Applications use :class:`gtudp.GTUDP`, :class:`gtudp.Delivery` and
:mod:`gtudp.aio`; :class:`Socket` and :class:`Endpoint` are their engines.
"""

from typing import Any, Dict, List, Literal, Optional, Tuple, Union

Address = Union[Tuple[str, int], Tuple[str, int, int, int]]
Buffer = Union[bytes, bytearray, memoryview]
Event = Union[
    Tuple[Literal["received"], bytes, Address],
    Tuple[Literal["foreign"], bytes, Address],
    Tuple[Literal["delivered"], int, bool],
    Tuple[Literal["failed"], int, str, str],
]

def is_ip_literal(host: str) -> bool: ...
def validate_options(
    magic_numbers: bytes, recv_from_any: bool, options: Optional[Dict[str, Any]] = None
) -> None: ...

class Delivery:
    """The outcome of one guaranteed send, from ``GTUDP.sendto``."""

    def done(self) -> bool: ...
    def wait(self, timeout: Optional[float] = None) -> bool: ...
    def cancel(self) -> bool: ...
    @property
    def delivered(self) -> Optional[bool]: ...
    @property
    def reason(
        self,
    ) -> Optional[
        Literal[
            "attempts_exhausted",
            "deadline_expired",
            "cancelled",
            "endpoint_closed",
            "unvalidated",
            "unreachable",
            "refused",
            "closed",
        ]
    ]:
        """Why the message failed, ``None`` while pending or once delivered:
        ``"attempts_exhausted"``, ``"deadline_expired"``, ``"cancelled"``,
        ``"endpoint_closed"`` (the drain deadline of ``cleanup``),
        ``"unvalidated"`` (the destination reached us first and never
        proved it receives our datagrams; sending more would have exceeded
        three times what it sent us), ``"unreachable"`` (the network
        reported the destination unreachable, ICMP), ``"refused"`` (a limit
        refused it; never sent) or ``"closed"`` (never sent)."""
        ...
    @property
    def suspected_lost(self) -> Optional[bool]:
        """Once delivered, whether the message was suspected lost on the
        way: ``True`` if the sender presumed it lost and resent it (early
        loss detection, a tail-loss probe or a retransmission timeout)
        before the confirmation came, ``False`` if not; ``None`` while
        pending or once failed. Either a copy was really lost and the resend
        recovered it, or the original was only late: the confirmation does
        not say which copy arrived."""
        ...
    @property
    def error(self) -> Optional[str]: ...
    @property
    def destination(self) -> Address: ...

class Socket:
    def __init__(
        self,
        fd: int,
        family: int,
        debug: bool = False,
        magic_numbers: bytes = b"",
        recv_from_any: bool = False,
        options: Optional[Dict[str, Any]] = None,
    ) -> None: ...
    @property
    def local_addr(self) -> Address: ...
    @property
    def max_payload_size(self) -> int: ...
    @property
    def closed(self) -> bool: ...
    def sendto(
        self,
        data: Buffer,
        addr: Address,
        deadline: Optional[float] = None,
        attempts: Optional[int] = None,
    ) -> Delivery: ...
    def sendto_blocking(
        self,
        data: Buffer,
        addr: Address,
        timeout: Optional[float] = None,
        attempts: Optional[int] = None,
    ) -> bool: ...
    def sendto_raw(self, data: Buffer, addr: Address) -> None: ...
    def recv(
        self, timeout: Optional[float] = None, length: Optional[int] = None
    ) -> Tuple[bytes, Address, bool]: ...
    def stats(self) -> Dict[str, Any]: ...
    def peer_stats(self, addr: Address) -> Optional[Dict[str, Any]]: ...
    def close(self, timeout: Optional[float] = None) -> Dict[str, Any]: ...

class Endpoint:
    def __init__(
        self,
        family: int,
        debug: bool = False,
        magic_numbers: bytes = b"",
        recv_from_any: bool = False,
        options: Optional[Dict[str, Any]] = None,
        seed: Optional[int] = None,
    ) -> None: ...
    def handle_datagram(self, data: bytes, addr: Address) -> None: ...
    def handle_timeout(self) -> None: ...
    def send(
        self,
        data: Buffer,
        addr: Address,
        deadline: Optional[float] = None,
        attempts: Optional[int] = None,
    ) -> int: ...
    def cancel(self, number: int) -> bool: ...
    def send_raw(self, data: Buffer, addr: Address) -> None: ...
    def set_receive_paused(self, paused: bool) -> None: ...
    def close(self) -> None: ...
    @property
    def is_closed(self) -> bool: ...
    @property
    def max_payload_size(self) -> int: ...
    @property
    def drain_timeout(self) -> float: ...
    def stats(self) -> Dict[str, Any]: ...
    def poll(self) -> Tuple[List[Tuple[bytes, Address]], List[Event], Optional[float]]: ...
