"""The exceptions of the gtudp package (raised by its Rust part too)."""

import queue

__all__ = ["GtudpError", "Timeout", "Closed", "Refused"]


class GtudpError(Exception):
    """Base class of the exceptions gtudp defines."""


class Timeout(GtudpError, queue.Empty, TimeoutError):
    """Nothing arrived within the timeout, or nothing was queued in
    non-blocking mode.

    It is a ``queue.Empty``, as the original gtUDP raised, so ``except
    queue.Empty`` keeps working, and a ``TimeoutError``, as ``socket``
    raises."""


class Closed(GtudpError, OSError):
    """The socket has been cleaned up (and, for a receive, every message
    it had received has been read)."""


class Refused(GtudpError):
    """A configured limit (messages outstanding, queued for one peer, raw
    datagrams waiting) refused the message; it was not sent. Retry once
    messages resolve."""
