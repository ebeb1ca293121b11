"""Exits with sockets never cleaned up, a message in flight to a dead port
and a thread blocked in recvfrom: the interpreter must still exit promptly."""
import socket
import sys
import threading

import gtudp

dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dead.bind(("127.0.0.1", 0))
target = dead.getsockname()
dead.close()

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 0))
udp = gtudp.GTUDP(sock)
udp.sendto(b"never confirmed", target)


def reader():
    try:
        udp.recvfrom()
    except gtudp.Closed:
        print("reader released")


threading.Thread(target=reader).start()  # not a daemon: exit waits for it
print("exiting")
sys.exit(0)
