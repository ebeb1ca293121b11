"""Exits while daemon threads log through a handler that sends with gtudp:
the interpreter must exit with status 0, and at once. `logging.shutdown`,
an `atexit` callback that runs after gtudp's own (logging registered it
first), takes every handler's lock; a daemon thread inside `emit`, which
runs under that lock, must come back and release it rather than hang the
exit (or abort it, on CPython before 3.13)."""
import logging  # registers logging.shutdown with atexit before gtudp
import socket
import sys
import threading

import gtudp

silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
silent.bind(("127.0.0.1", 0))  # bound, never read: nothing is confirmed
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 0))
udp = gtudp.GTUDP(sock)


class GtudpHandler(logging.Handler):
    """Sends each record, and waits for its outcome, under the handler's
    lock (`Handler.handle` holds it around `emit`)."""

    def emit(self, record):
        try:
            udp.sendto_blocking(self.format(record).encode(), silent.getsockname(), timeout=None)
        except gtudp.GtudpError:
            pass


log = logging.getLogger("app")
log.addHandler(GtudpHandler())
log.setLevel(logging.INFO)
log.propagate = False
started = threading.Barrier(3)


def worker():
    started.wait()
    while True:
        log.info("tick")


for _ in range(2):
    threading.Thread(target=worker, daemon=True).start()
started.wait()
print("exiting", flush=True)
sys.exit(0)
