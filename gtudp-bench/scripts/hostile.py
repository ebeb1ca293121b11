#!/usr/bin/env python3
"""Black-box hostile benchmark: spoofed floods against `echo_server` on
loopback while a legitimate `echo_client` runs.

Spoofed sources are distinct 127.x.y.z addresses (Linux routes all of
127.0.0.0/8 to `lo`); one socket sends from each of them (IP_PKTINFO) and
never answers: exactly what a server sees from a spoofed address. The same
socket receives everything the server sends back to those addresses: that
is the amplification figure (bytes the server sent to flood addresses /
bytes they sent it, all datagram kinds).

    cargo build --release -p gtudp-tokio --examples
    python3 gtudp-bench/scripts/hostile.py [--quick]

Each case prints one line; the last line of the run is a summary. Cases:
floods from 5,000 and 50,000 addresses with 1 and 150 DATA each (with and
without payload), garbage, and forged RECV/ACK, against a sink server and
an echo server, with the legitimate client started after the flood ("after")
or during it ("during").

The `frag-` cases attack the large-message extension (server and
legitimate client enable it; the client sends 4 KB messages, three
fragments each): fragments claiming a 4 GiB message, fragment counts near
the field's maximum (16 MiB in 64-byte fragments, indexes up to 262,143),
fragments of one message that disagree about its total, unit and index,
and a million partial messages (the first of two fragments only) from
50,000 spoofed addresses. The server's memory growth is reported beside
its reassembly budget (64 MiB).
"""

import argparse
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "examples")
DATA, RECV, ACK, FRAGMENT = 0x1D, 0x5F, 0xAE, 0x1E
FRAGMENT_KINDS = ("frag-4g", "frag-count", "frag-inconsistent", "frag-partial")


def fragment(identity, message, total, index, unit, body):
    """A fragment datagram of the large-message extension (default framing)."""
    header = struct.pack(">IIIHI", message, total, index, unit, 60_000)
    return bytes([FRAGMENT]) + identity + header + body


def proc_stat(pid):
    """(rss bytes, cpu seconds) of a process."""
    with open(f"/proc/{pid}/status") as f:
        rss = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) * 1024
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return rss, cpu


def flood_addresses(count, seed):
    rng = random.Random(seed)
    seen = set()
    while len(seen) < count:
        seen.add((rng.randrange(1, 255), rng.randrange(0, 256), rng.randrange(1, 255)))
    return [f"127.{a}.{b}.{c}" for a, b, c in sorted(seen)]


IP_PKTINFO = 8  # Linux


class Flood:
    """Hostile datagrams to `server` from many spoofed 127.x.y.z addresses.

    One socket bound to 0.0.0.0 sends from every address (IP_PKTINFO picks
    the source per datagram) and, being bound to all local addresses,
    receives what the server sends back to any of them: a thread counts
    those bytes for the amplification figure."""

    def __init__(self, server, addresses, per_address, kind, payload):
        self.server = server
        self.sources = [socket.inet_aton(address) for address in addresses]
        self.kind = kind
        self.per_address = per_address
        self.payload = payload
        self.sent_bytes = 0
        self.sent_datagrams = 0
        self.back_bytes = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("0.0.0.0", 0))
        self.sock.settimeout(0.2)
        self.reading = True
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        while self.reading:
            try:
                self.back_bytes += len(self.sock.recv(65536))
            except (socket.timeout, OSError):
                continue

    def datagram(self, rng):
        identity = struct.pack(">I", rng.getrandbits(32))
        if self.kind == "data":
            return bytes([DATA]) + identity + self.payload
        if self.kind == "forged":
            return bytes([rng.choice([RECV, ACK])]) + identity
        message = rng.getrandbits(32)
        if self.kind == "frag-4g":
            # A first fragment claiming the largest total the field holds.
            return fragment(identity, message, 0xFFFF_FFFF, 0, 1200, b"g" * 1200)
        if self.kind == "frag-count":
            # 16 MiB in 64-byte fragments: 262,144 of them; any index.
            total = 16 << 20
            return fragment(identity, message, total, rng.randrange(total // 64), 64, b"c" * 64)
        if self.kind == "frag-inconsistent":
            # One message number per run, whose fragments disagree.
            total = rng.choice([1000, 5000, 70_000, 16 << 20])
            unit = rng.choice([64, 1000, 1200, 1400])
            index = rng.randrange(8)
            length = rng.choice([unit, unit - 1, total % unit, 0])
            return fragment(identity, 7, total, index, unit, b"i" * length)
        if self.kind == "frag-partial":
            # The first of two fragments: never completed.
            return fragment(identity, message, 2400, 0, 1200, b"p" * 1200)
        return rng.randbytes(rng.randrange(0, 64))

    def run(self, seconds):
        """Sends every datagram, spread over about `seconds`."""
        rng = random.Random(7)
        total = len(self.sources) * self.per_address
        gap = seconds / max(total, 1)
        start = time.monotonic()
        n = 0
        for _ in range(self.per_address):
            for source in self.sources:
                d = self.datagram(rng)
                info = struct.pack("I4s4s", 0, source, bytes(4))
                try:
                    self.sock.sendmsg([d], [(socket.IPPROTO_IP, IP_PKTINFO, info)], 0, self.server)
                    self.sent_bytes += len(d)
                    self.sent_datagrams += 1
                except OSError:
                    pass
                n += 1
                if gap > 0 and n % 256 == 0:
                    lag = start + n * gap - time.monotonic()
                    if lag > 0:
                        time.sleep(lag)

    def received_bytes(self):
        """Bytes the server sent to the flood addresses (then stops)."""
        time.sleep(0.5)
        self.reading = False
        self.reader.join()
        self.sock.close()
        return self.back_bytes


def case(args, name, addresses, per_address, kind, payload, echo, when):
    port = 47000 + random.randrange(1000)
    large = kind in FRAGMENT_KINDS
    server_cmd = [os.path.join(EXAMPLES, "echo_server"), "--bind", f"127.0.0.1:{port}"]
    if not echo:
        server_cmd.append("--sink")
    if large:
        server_cmd.append("--large-messages")
    # The server's log goes to a file: an unread pipe would fill and stall it.
    server_log = open(os.path.join(os.environ.get("HOSTILE_LOG_DIR", "/tmp"), f"hostile-{name}-{'echo' if echo else 'sink'}-{when}.log"), "w")
    server = subprocess.Popen(server_cmd, stdout=subprocess.PIPE, stderr=server_log, text=True)
    server.stdout.readline()  # listening on ...
    rss0, cpu0 = proc_stat(server.pid)
    flood = Flood(("127.0.0.1", port), flood_addresses(addresses, per_address), per_address, kind, payload)
    flood_seconds = 0.5 if per_address == 1 else 3.0
    client_cmd = [
        os.path.join(EXAMPLES, "echo_client"),
        "--server", f"127.0.0.1:{port}",
        "--count", str(args.legit),
        "--concurrency", "64",
        "--wait-secs", "20",
    ]
    if not echo:
        client_cmd.append("--oneway")
    if large:
        client_cmd += ["--large-messages", "--size", "4096"]
    flood_start = time.monotonic()
    if when == "after":
        flood.run(flood_seconds)
        flood_time = time.monotonic() - flood_start
        client = subprocess.run(client_cmd, capture_output=True, text=True, timeout=300)
    else:
        thread = threading.Thread(target=flood.run, args=(flood_seconds,))
        thread.start()
        time.sleep(0.05)
        client = subprocess.run(client_cmd, capture_output=True, text=True, timeout=300)
        thread.join()
        flood_time = time.monotonic() - flood_start
    rss1, cpu1 = proc_stat(server.pid)
    time.sleep(0.2)
    back = flood.received_bytes()
    server.send_signal(signal.SIGINT)  # the server prints its counters on Ctrl-C
    try:
        server.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
    server_log.close()
    result = client.stdout.strip().splitlines()[-1] if client.stdout.strip() else "no result line"
    fields = dict(kv.split("=", 1) for kv in result.split() if "=" in kv)
    amplification = back / max(flood.sent_bytes, 1)
    line = (
        f"{name}: server={'echo' if echo else 'sink'} client={when} "
        f"flood={addresses}x{per_address} {kind}{'' if payload or large else ' (empty)'} "
        f"flood_dgrams={flood.sent_datagrams} flood_rate={flood.sent_datagrams / max(flood_time, 1e-9):.0f}/s "
        f"legit_delivered={fields.get('delivered', '?')}/{args.legit} legit_failed={fields.get('failed', '?')} "
        f"legit_echoed={fields.get('echoed', '-') if echo else '-'} legit_elapsed_s={fields.get('elapsed_s', '?')} "
        f"legit_rtt_p50_us={fields.get('rtt_p50_us', '?')} legit_rtt_p99_us={fields.get('rtt_p99_us', '?')} "
        f"amplification={amplification:.2f} server_rss_growth_mib={(rss1 - rss0) / 2**20:.1f} "
        f"server_cpu_s={cpu1 - cpu0:.2f}"
    )
    print(line, flush=True)
    ok = fields.get("failed") == "0" and fields.get("delivered") == str(args.legit)
    if echo:
        ok = ok and fields.get("echoed") == str(args.legit)
    return ok, amplification, rss1 - rss0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--legit", type=int, default=2000, help="legitimate messages per case")
    parser.add_argument("--quick", action="store_true", help="only the 5,000-address cases")
    parser.add_argument("--only", default="", help="only cases whose name starts with this")
    parser.add_argument("--server", choices=["sink", "echo", "both"], default="both")
    args = parser.parse_args()
    big = 50_000
    cases = [
        ("flood-5k-1", 5_000, 1, "data", b"x" * 32),
        ("flood-5k-1-empty", 5_000, 1, "data", b""),
        ("flood-5k-150", 5_000, 150, "data", b"x" * 32),
        ("garbage-5k", 5_000, 20, "garbage", b""),
        ("forged-5k", 5_000, 20, "forged", b""),
    ]
    cases += [
        ("frag-4g", 5_000, 20, "frag-4g", b""),
        ("frag-count", 5_000, 20, "frag-count", b""),
        ("frag-inconsistent", 5_000, 20, "frag-inconsistent", b""),
    ]
    if not args.quick:
        cases += [
            (f"flood-{big // 1000}k-1", big, 1, "data", b"x" * 32),
            (f"flood-{big // 1000}k-150", big, 150, "data", b""),
            ("frag-partial-1m", big, 20, "frag-partial", b""),
        ]
    all_ok, worst_amp, worst_rss = True, 0.0, 0
    servers = {"sink": (False,), "echo": (True,), "both": (False, True)}[args.server]
    for name, addresses, per, kind, payload in cases:
        if not name.startswith(args.only):
            continue
        for echo in servers:
            for when in ("after", "during"):
                ok, amp, rss = case(args, name, addresses, per, kind, payload, echo, when)
                all_ok &= ok
                worst_amp = max(worst_amp, amp)
                worst_rss = max(worst_rss, rss)
    print(
        f"hostile: all_legit_served={all_ok} worst_amplification={worst_amp:.2f} "
        f"worst_server_rss_growth_mib={worst_rss / 2**20:.1f}"
    )
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
