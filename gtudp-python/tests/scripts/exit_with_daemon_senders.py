"""Exits while daemon threads send and wait in a loop: the interpreter must
exit with status 0. On CPython before 3.13, a thread whose wait ends as the
interpreter finalizes is ended by `pthread_exit`; through the extension's
frames that aborted the process ("FATAL: exception not rethrown").

With an argument, the threads send to that host name instead of an IP
address (`localhost`: each send then looks the name up, which blocks)."""
import socket
import sys
import threading

import gtudp

silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
silent.bind(("127.0.0.1", 0))  # bound, never read: nothing is confirmed
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 0))
udp = gtudp.GTUDP(sock)
target = (sys.argv[1], silent.getsockname()[1]) if len(sys.argv) > 1 else silent.getsockname()
started = threading.Barrier(5)


def sender():
    started.wait()
    while True:
        try:
            udp.sendto_blocking(b"x", target, timeout=None)
        except gtudp.GtudpError:
            pass


for _ in range(4):
    threading.Thread(target=sender, daemon=True).start()
started.wait()
print("exiting")
sys.exit(0)
