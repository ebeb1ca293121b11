"""Exits while daemon threads send in a loop, with `builtins.__import__`
replaced (as import hooks, debuggers and lazy-import tools do) by Python
code that, in a daemon thread once exit has begun, waits until the
interpreter finalizes, releasing the GIL as it waits (as an import waiting
for a module lock does): the interpreter must exit with status 0.

A gtudp call that imported while the interpreter exited (the first
`gtudp.Closed` it raised looked its class up then, releasing the GIL, which
PyO3 also did on its own to initialise the cache) took the GIL back inside
the extension once finalization had begun: CPython before 3.13 ends such a
thread with `pthread_exit`, and through the extension's frames that
aborted the process ("FATAL: exception not rethrown"). Here the first
daemon thread to import at exit waits until then, so that happens at
every run; a thread waiting in Python code alone ends harmlessly."""
import builtins
import socket
import sys
import threading
import time

import gtudp

real_import = builtins.__import__
exit_began = False


def slow_import(*args, **kwargs):
    if exit_began and threading.current_thread() is not threading.main_thread():
        while not sys.is_finalizing():
            time.sleep(0.001)  # without the GIL; its thread ends on waking
    return real_import(*args, **kwargs)


builtins.__import__ = slow_import

silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
silent.bind(("127.0.0.1", 0))  # bound, never read: nothing is confirmed
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 0))
udp = gtudp.GTUDP(sock)
target = silent.getsockname()
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
exit_began = True
print("exiting")
sys.exit(0)
