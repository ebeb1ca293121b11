"""The original README's example, run unchanged (apart from its
``udp.cleanup()`` typo, which named a variable that does not exist)."""

import subprocess
import sys
import time
from pathlib import Path

import gtudp
from conftest import udp

SCRIPT = Path(__file__).parent / "scripts" / "seed_example.py"


def wait_for_udp_port(port: int, process: subprocess.Popen) -> None:
    """Waits (at most 20 s) until some socket is bound to UDP ``port``, so
    no message is sent before the example listens."""
    table = Path("/proc/net/udp")
    for _ in range(200):
        assert process.poll() is None, process.communicate()
        if not table.exists():
            time.sleep(1.0)  # no socket table to read: give it a second
            return
        if any(
            line.split()[1].endswith(":%04X" % port)
            for line in table.read_text().splitlines()[1:]
        ):
            return
        time.sleep(0.1)
    raise AssertionError(f"nothing bound UDP port {port}")


def test_the_seed_readme_example_echoes_ten_messages_cut_to_128_bytes():
    server = subprocess.Popen(
        [sys.executable, str(SCRIPT)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        client_sock = udp()
        client = gtudp.GTUDP(client_sock, initial_rto=0.05, min_rto=0.01)
        client.start()
        wait_for_udp_port(4323, server)
        messages = [b"message %d " % i + b"x" * (40 * i) for i in range(10)]
        assert client.sendto_blocking(messages[0], ("localhost", 4323), timeout=10)
        for message in messages[1:]:
            assert client.sendto_blocking(message, ("127.0.0.1", 4323), timeout=10)
        client.settimeout(10)
        echoes = sorted(client.recvfrom()[0] for _ in messages)
        assert echoes == sorted(message[:128] for message in messages)
        out, err = server.communicate(timeout=30)
        assert server.returncode == 0, err
        lines = out.splitlines()
        # One debug line per datagram, as the original printed them.
        assert sum(line.startswith("IN  FRAME ") for line in lines) >= 10, out
        assert sum(line.startswith("OUT RECV  ") for line in lines) >= 10, out
        assert sum(line.startswith("OUT FRAME ") for line in lines) >= 10, out
        client.cleanup(timeout=5)
        client_sock.close()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
