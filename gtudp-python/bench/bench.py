#!/usr/bin/env python3
"""Python benchmark of gtudp: messages per second one way and sequential
echo RTT over loopback, for this module (both ends in Python, separate
processes) and, as the reference, the Rust blocking socket it is built on
(gtudp-mio's blocking echo examples, both ends in Rust).

Run it alone (real time: take the machine's benchmark lock):

    cargo build --release -p gtudp-mio --example blocking_echo_server --example blocking_echo_client
    pip install ./gtudp-python
    python gtudp-python/bench/bench.py

Every figure comes with the retransmissions it cost and the peak memory
(max RSS) of the measuring process.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import gtudp

HERE = Path(__file__).resolve()
REPO = HERE.parents[2]


def payload(index: int, size: int) -> bytes:
    head = index.to_bytes(8, "big")
    return head + b"x" * (size - len(head))


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----- the peer process ------------------------------------------------------


def serve(role: str, count: int) -> None:
    """A Python peer: ``sink`` receives ``count`` messages, ``echo`` sends
    each of ``count`` back. Prints its port, then its counters at the end."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    udp = gtudp.GTUDP(sock)
    udp.start()
    print(sock.getsockname()[1], flush=True)
    udp.settimeout(60)
    for _ in range(count):
        data, addr = udp.recvfrom()
        if role == "echo":
            udp.sendto(data, addr)
    summary = udp.cleanup(timeout=30)
    print("retransmissions=%d rss_mib=%.1f" % (summary["stats"]["retransmissions"], max_rss_mib()), flush=True)


def start_peer(role: str, count: int) -> "tuple[subprocess.Popen, tuple]":
    peer = subprocess.Popen(
        [sys.executable, str(HERE), "--role", role, "--count", str(count)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert peer.stdout is not None
    port = int(peer.stdout.readline())
    return peer, ("127.0.0.1", port)


def finish_peer(peer: subprocess.Popen) -> str:
    out, _ = peer.communicate(timeout=120)
    return out.strip()


# ----- Python measurements -----------------------------------------------------


def python_oneway(count: int, size: int) -> Dict[str, float]:
    """A burst of ``count`` sends; the rate counts until every one is
    confirmed delivered."""
    peer, addr = start_peer("sink", count)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    udp = gtudp.GTUDP(sock)
    udp.start()
    payloads = [payload(i, size) for i in range(count)]
    started = time.perf_counter()
    handles = [udp.sendto(p, addr) for p in payloads]
    delivered = sum(h.wait(timeout=60) for h in handles)
    elapsed = time.perf_counter() - started
    stats = udp.cleanup(timeout=10)["stats"]
    sock.close()
    peer_line = finish_peer(peer)
    return {
        "count": count,
        "delivered": delivered,
        "msgs_per_s": count / elapsed,
        "retransmissions": stats["retransmissions"],
        "rss_mib": max_rss_mib(),
        "peer": peer_line,
    }


def python_echo(count: int, size: int) -> Dict[str, float]:
    """``count`` sequential echoes: send, wait for the echo, repeat."""
    peer, addr = start_peer("echo", count)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    udp = gtudp.GTUDP(sock)
    udp.start()
    udp.settimeout(30)
    rtts: List[float] = []
    started = time.perf_counter()
    for i in range(count):
        message = payload(i, size)
        sent = time.perf_counter()
        udp.sendto(message, addr)
        data, _ = udp.recvfrom()
        rtts.append(time.perf_counter() - sent)
        assert data == message
    elapsed = time.perf_counter() - started
    stats = udp.cleanup(timeout=10)["stats"]
    sock.close()
    peer_line = finish_peer(peer)
    rtts.sort()
    return {
        "count": count,
        "echoes_per_s": count / elapsed,
        "rtt_p50_us": rtts[len(rtts) // 2] * 1e6,
        "rtt_p99_us": rtts[int(len(rtts) * 0.99)] * 1e6,
        "retransmissions": stats["retransmissions"],
        "rss_mib": max_rss_mib(),
        "peer": peer_line,
    }


# ----- the Rust reference ------------------------------------------------------


def rust(examples: Path, count: int, size: int, oneway: bool) -> Optional[Dict[str, str]]:
    server_bin, client_bin = examples / "blocking_echo_server", examples / "blocking_echo_client"
    if not (server_bin.exists() and client_bin.exists()):
        return None
    server_args = [str(server_bin), "--bind", "127.0.0.1:0", "--count", str(count)]
    if oneway:
        server_args.append("--sink")
    server = subprocess.Popen(server_args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert server.stdout is not None
    line = server.stdout.readline()
    match = re.search(r"listening on (\S+)", line)
    assert match, line
    client_args = [str(client_bin), "--server", match.group(1), "--count", str(count), "--size", str(size)]
    client_args += ["--oneway", "--concurrency", str(count)] if oneway else ["--concurrency", "1"]
    measured = subprocess.run(
        ["/usr/bin/time", "-f", "maxrss_kib=%M"] + client_args if Path("/usr/bin/time").exists() else client_args,
        capture_output=True,
        text=True,
        timeout=300,
    )
    _, server_err = server.communicate(timeout=60)
    result = dict(re.findall(r"(\w+)=(\S+)", measured.stdout.strip().splitlines()[-1]))
    rss = re.search(r"maxrss_kib=(\d+)", measured.stderr)
    if rss:
        result["rss_mib"] = "%.1f" % (int(rss.group(1)) / 1024)
    server_retransmissions = re.findall(r"retransmissions=(\d+)", server_err)
    if server_retransmissions:
        result["server_retransmissions"] = server_retransmissions[-1]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--role", choices=["sink", "echo"], help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=64, help="payload bytes (default 64)")
    parser.add_argument("--bursts", type=int, nargs="+", default=[1000, 20000], help="one-way burst sizes")
    parser.add_argument("--echoes", type=int, default=5000, help="sequential echoes per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, Python and Rust alternating")
    parser.add_argument(
        "--rust-examples",
        type=Path,
        default=Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "release" / "examples",
        help="where the gtudp-mio blocking echo examples were built",
    )
    args = parser.parse_args()
    if args.role:
        serve(args.role, args.count)
        return
    print(f"gtudp {gtudp.__name__} on Python {sys.version.split()[0]}, payload {args.size} B, loopback")
    for round_ in range(1, args.rounds + 1):
        print(f"\n-- round {round_}")
        for burst in args.bursts:
            py = python_oneway(burst, args.size)
            print(
                "python one-way burst=%d: %.0f msgs/s (delivered %d), retransmissions %d, client max RSS %.1f MiB; sink: %s"
                % (burst, py["msgs_per_s"], py["delivered"], py["retransmissions"], py["rss_mib"], py["peer"])
            )
            rs = rust(args.rust_examples, burst, args.size, oneway=True)
            if rs:
                print("rust   one-way burst=%d: %s" % (burst, " ".join(f"{k}={v}" for k, v in rs.items())))
        py = python_echo(args.echoes, args.size)
        print(
            "python echo x%d sequential: %.0f echoes/s, RTT p50 %.0f us, p99 %.0f us, retransmissions %d, client max RSS %.1f MiB; server: %s"
            % (args.echoes, py["echoes_per_s"], py["rtt_p50_us"], py["rtt_p99_us"], py["retransmissions"], py["rss_mib"], py["peer"])
        )
        rs = rust(args.rust_examples, args.echoes, args.size, oneway=False)
        if rs:
            print("rust   echo x%d sequential: %s" % (args.echoes, " ".join(f"{k}={v}" for k, v in rs.items())))
        elif round_ == 1:
            print(f"(no Rust reference: build the gtudp-mio blocking echo examples into {args.rust_examples})")


if __name__ == "__main__":
    main()
