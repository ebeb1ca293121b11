"""Type stubs of gtudp's Rust extension module (``gtudp._native``).

Applications use :class:`gtudp.GTUDP`, :class:`gtudp.Delivery` and
:mod:`gtudp.aio`; :class:`Socket` and :class:`Endpoint` are their engines.
"""

from typing import Any, Dict, List, Literal, Optional, Tuple, Union, final

__all__ = [
    "Socket",
    "Endpoint",
    "Delivery",
    "is_ip_literal",
    "validate_options",
    "enable_unreachable_reports",
    "interpreter_exiting",
    "after_fork_in_child",
]

# Type aliases of the stubs only (private: the module has no such names).
_Address = Union[Tuple[str, int], Tuple[str, int, int, int]]
_Buffer = Union[bytes, bytearray, memoryview]
_Event = Union[
    Tuple[Literal["received"], bytes, _Address],
    Tuple[Literal["foreign"], bytes, _Address],
    Tuple[Literal["delivered"], int, bool],
    Tuple[Literal["failed"], int, str, str],
]

def is_ip_literal(host: str) -> bool: ...
def validate_options(
    magic_numbers: bytes, recv_from_any: bool, options: Optional[Dict[str, Any]] = None
) -> None: ...
def enable_unreachable_reports(fd: int, ipv6: bool) -> bool: ...
def interpreter_exiting() -> None: ...
def after_fork_in_child() -> None: ...

@final
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
            "too_large",
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
        reported the destination unreachable, ICMP), ``"too_large"`` (the
        system refused the datagram as too large for the path; only where
        IP fragmentation is off), ``"refused"`` (a limit refused it; never
        sent) or ``"closed"`` (never sent)."""
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
    def destination(self) -> _Address: ...

@final
class Socket:
    def __new__(
        cls,
        fd: int,
        family: int,
        debug: bool = False,
        magic_numbers: bytes = b"",
        recv_from_any: bool = False,
        options: Optional[Dict[str, Any]] = None,
    ) -> Socket: ...
    @property
    def local_addr(self) -> _Address: ...
    @property
    def max_payload_size(self) -> int: ...
    @property
    def closed(self) -> bool: ...
    def sendto(
        self,
        data: _Buffer,
        addr: _Address,
        deadline: Optional[float] = None,
        attempts: Optional[int] = None,
    ) -> Delivery: ...
    def sendto_blocking(
        self,
        data: _Buffer,
        addr: _Address,
        timeout: Optional[float] = None,
        attempts: Optional[int] = None,
    ) -> bool: ...
    def sendto_raw(self, data: _Buffer, addr: _Address) -> None: ...
    def recv(
        self, timeout: Optional[float] = None, length: Optional[int] = None
    ) -> Tuple[bytes, _Address, bool]: ...
    def recv_many(
        self, timeout: Optional[float] = None, limit: int = 64, length: Optional[int] = None
    ) -> List[Tuple[bytes, _Address, bool]]: ...
    def stats(self) -> Dict[str, Any]: ...
    def peer_stats(self, addr: _Address) -> Optional[Dict[str, Any]]: ...
    def close(self, timeout: Optional[float] = None) -> Dict[str, Any]: ...

@final
class Endpoint:
    def __new__(
        cls,
        family: int,
        debug: bool = False,
        magic_numbers: bytes = b"",
        recv_from_any: bool = False,
        options: Optional[Dict[str, Any]] = None,
        seed: Optional[int] = None,
    ) -> Endpoint: ...
    def handle_datagram(self, data: bytes, addr: _Address) -> None: ...
    def handle_timeout(self) -> None: ...
    def send(
        self,
        data: _Buffer,
        addr: _Address,
        deadline: Optional[float] = None,
        attempts: Optional[int] = None,
    ) -> int: ...
    def cancel(self, number: int) -> bool: ...
    def send_raw(self, data: _Buffer, addr: _Address) -> None: ...
    def read_unreachable_reports(self, fd: int) -> int: ...
    def set_receive_paused(self, paused: bool) -> None: ...
    def close(self) -> None: ...
    @property
    def is_closed(self) -> bool: ...
    @property
    def max_payload_size(self) -> int: ...
    @property
    def drain_timeout(self) -> float: ...
    def stats(self) -> Dict[str, Any]: ...
    def peer_stats(self, addr: _Address) -> Optional[Dict[str, Any]]: ...
    def poll(self) -> Tuple[List[Tuple[bytes, _Address]], List[_Event], Optional[float]]: ...
    def receive(self, data: bytes, addr: _Address, fd: int = -1) -> Tuple[List[_Event], int]: ...
    def receive_ready(self, fd: int) -> Tuple[List[_Event], int]: ...
    def poll_send(
        self, fd: int, hold_acks: bool = False
    ) -> Tuple[List[Tuple[bytes, _Address]], List[_Event], Optional[float], List[int], bool]: ...
