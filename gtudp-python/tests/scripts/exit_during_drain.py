"""Exits while a socket's drain goes on in the background: `cleanup` with a
timeout returns before its message to a silent peer resolves, and the
interpreter exits at once. Nothing may be printed to stderr."""

import socket

import gtudp

silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
silent.bind(("127.0.0.1", 0))
raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
raw.bind(("127.0.0.1", 0))
sock = gtudp.GTUDP(raw)
sock.sendto(b"never answered", silent.getsockname())
summary = sock.cleanup(timeout=0.05)
print("complete" if summary.get("complete") else "draining")
