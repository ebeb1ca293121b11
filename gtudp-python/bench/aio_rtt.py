#!/usr/bin/env python3
"""Sequential echo RTT over loopback: ``gtudp.aio`` against a plain asyncio
``DatagramProtocol`` echo, alternated in one run.

Run it alone (real time: take the machine's benchmark lock):

    pip install ./gtudp-python
    flock /tmp/gtudp-timing.lock python gtudp-python/bench/aio_rtt.py

Each round runs (a) plain asyncio then (b) ``gtudp.aio``, ``--rounds``
times (default 3). In each, a server process and a client process run
their own asyncio loop (the default loop of the platform), and the client
does ``--warmup`` untimed echoes then ``--count`` timed ones (default
5,000), one message in flight, ``--size`` bytes (default 64).

What is timed, at the client, with ``time.perf_counter_ns``: from just
before the request is handed to the socket to just after the reply's
payload is in the client's hands.

- plain: ``transport.sendto(request)`` .. the ``await`` of the future the
  protocol's ``datagram_received`` resolves with the reply returns. The
  server's ``datagram_received`` calls ``transport.sendto`` at once.
- gtudp: ``await sock.sendto(request, addr)`` (returns ``True`` once the
  server's RECV has come back: the request's DATA -> RECV exchange) then
  ``await sock.recvfrom()`` (returns once the echo's DATA has arrived; the
  client's RECV for it has been queued for sending by then). The server's
  task does ``await sock.recvfrom()`` then ``await sock.sendto_nowait(data,
  addr)`` (the echo's delivery is not awaited, so the server is ready for
  the next request at once). The ACKs of both RECVs are not on the timed
  path (they leave after).

So one timed gtudp echo carries four datagrams on its path (DATA, RECV,
echo DATA; the client's RECV leaves as the reply is handed over), against
two for plain asyncio.

Printed: per run, p50 and p99 RTT in microseconds and the CPU time (user
+ system) per echo of client (timed echoes) and server (all); then the median over
rounds of each side's p50 and p99, and the ratio of the median p50s (gtudp
/ plain); for gtudp, the retransmissions of client and server and the peak
RSS (max RSS) of each process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

HERE = Path(__file__).resolve()


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def payload(index: int, size: int) -> bytes:
    head = index.to_bytes(8, "big")
    return head + b"x" * (size - len(head))


def percentile(sorted_values: List[int], fraction: float) -> float:
    index = min(len(sorted_values) - 1, int(fraction * len(sorted_values)))
    return sorted_values[index] / 1000.0


# ----- plain asyncio -----------------------------------------------------------


class _PlainEcho(asyncio.DatagramProtocol):
    def __init__(self, done: "asyncio.Future[None]", count: int) -> None:
        self.transport: Optional[asyncio.DatagramTransport] = None
        self.left = count
        self.done = done

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        assert self.transport is not None
        self.transport.sendto(data, addr)
        self.left -= 1
        if self.left == 0 and not self.done.done():
            self.done.set_result(None)


class _PlainClient(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: Optional[asyncio.DatagramTransport] = None
        self.waiter: "Optional[asyncio.Future[bytes]]" = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(data)


async def plain_server(count: int) -> Dict[str, Any]:
    loop = asyncio.get_running_loop()
    done: "asyncio.Future[None]" = loop.create_future()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _PlainEcho(done, count), local_addr=("127.0.0.1", 0)
    )
    print(transport.get_extra_info("sockname")[1], flush=True)
    cpu = cpu_seconds()
    await done
    transport.close()
    return {"rss_mib": max_rss_mib(), "cpu_us": (cpu_seconds() - cpu) * 1e6 / count}


async def plain_client(port: int, warmup: int, count: int, size: int) -> Dict[str, Any]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(_PlainClient, local_addr=("127.0.0.1", 0))
    addr = ("127.0.0.1", port)
    rtts: List[int] = []
    clock = time.perf_counter_ns
    cpu = 0.0
    for index in range(warmup + count):
        if index == warmup:
            cpu = cpu_seconds()
        data = payload(index, size)
        protocol.waiter = loop.create_future()
        started = clock()
        transport.sendto(data, addr)
        reply = await protocol.waiter
        elapsed = clock() - started
        if reply != data:
            raise RuntimeError(f"echo {index}: wrong reply")
        if index >= warmup:
            rtts.append(elapsed)
    cpu = cpu_seconds() - cpu
    transport.close()
    return {"rtts": rtts, "rss_mib": max_rss_mib(), "retransmissions": 0, "cpu_us": cpu * 1e6 / count}


# ----- gtudp.aio ---------------------------------------------------------------


async def gtudp_server(count: int) -> Dict[str, Any]:
    import gtudp.aio

    sock = await gtudp.aio.create_socket(local_addr=("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    cpu = cpu_seconds()
    for _ in range(count):
        data, addr = await sock.recvfrom()
        await sock.sendto_nowait(data, addr)
    cpu = cpu_seconds() - cpu
    summary = await sock.cleanup(timeout=10)
    return {
        "rss_mib": max_rss_mib(),
        "retransmissions": summary["stats"]["retransmissions"],
        "cpu_us": cpu * 1e6 / count,
    }


async def gtudp_client(port: int, warmup: int, count: int, size: int) -> Dict[str, Any]:
    import gtudp.aio

    sock = await gtudp.aio.create_socket(local_addr=("127.0.0.1", 0))
    addr = ("127.0.0.1", port)
    rtts: List[int] = []
    clock = time.perf_counter_ns
    cpu = 0.0
    for index in range(warmup + count):
        if index == warmup:
            cpu = cpu_seconds()
        data = payload(index, size)
        started = clock()
        if not await sock.sendto(data, addr):
            raise RuntimeError(f"echo {index}: request not delivered")
        reply, _ = await sock.recvfrom()
        elapsed = clock() - started
        if reply != data:
            raise RuntimeError(f"echo {index}: wrong reply")
        if index >= warmup:
            rtts.append(elapsed)
    cpu = cpu_seconds() - cpu
    summary = await sock.cleanup(timeout=10)
    return {
        "rtts": rtts,
        "rss_mib": max_rss_mib(),
        "retransmissions": summary["stats"]["retransmissions"],
        "cpu_us": cpu * 1e6 / count,
    }


# ----- orchestration -------------------------------------------------------------


def run_pair(kind: str, warmup: int, count: int, size: int) -> Dict[str, Any]:
    server = subprocess.Popen(
        [sys.executable, str(HERE), "--serve", kind, "--count", str(warmup + count)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        client = subprocess.run(
            [
                sys.executable, str(HERE), "--client", kind, "--port", str(port),
                "--warmup", str(warmup), "--count", str(count), "--size", str(size),
            ],
            stdout=subprocess.PIPE,
            text=True,
            timeout=300,
            check=True,
        )
        result: Dict[str, Any] = json.loads(client.stdout.strip().splitlines()[-1])
        out, _ = server.communicate(timeout=60)
        result["server"] = json.loads(out.strip().splitlines()[-1])
    finally:
        if server.poll() is None:
            server.kill()
    rtts = sorted(result.pop("rtts"))
    result["p50_us"] = percentile(rtts, 0.50)
    result["p99_us"] = percentile(rtts, 0.99)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--serve", choices=["plain", "gtudp"], help=argparse.SUPPRESS)
    parser.add_argument("--client", choices=["plain", "gtudp"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.serve:
        server = plain_server if args.serve == "plain" else gtudp_server
        print(json.dumps(asyncio.run(server(args.count))), flush=True)
        return
    if args.client:
        client = plain_client if args.client == "plain" else gtudp_client
        print(json.dumps(asyncio.run(client(args.port, args.warmup, args.count, args.size))), flush=True)
        return

    print(
        f"# sequential echo over loopback, {args.size} B, {args.count} timed echoes "
        f"(+{args.warmup} warm-up), {args.rounds} rounds alternating plain / gtudp; "
        f"python {sys.version.split()[0]}"
    )
    results: Dict[str, List[Dict[str, Any]]] = {"plain": [], "gtudp": []}
    for round_ in range(1, args.rounds + 1):
        for kind in ("plain", "gtudp"):
            r = run_pair(kind, args.warmup, args.count, args.size)
            results[kind].append(r)
            extra = ""
            if kind == "gtudp":
                extra = (
                    f"  retransmissions client={r['retransmissions']} server={r['server']['retransmissions']}"
                    f"  max_rss client={r['rss_mib']:.1f} MiB server={r['server']['rss_mib']:.1f} MiB"
                )
            print(
                f"round {round_} {kind:5}  p50 {r['p50_us']:7.1f} us  p99 {r['p99_us']:7.1f} us"
                f"  cpu/echo client {r['cpu_us']:5.1f} us server {r['server']['cpu_us']:5.1f} us{extra}",
                flush=True,
            )
    med = {
        kind: (
            statistics.median(r["p50_us"] for r in runs),
            statistics.median(r["p99_us"] for r in runs),
        )
        for kind, runs in results.items()
    }
    for kind in ("plain", "gtudp"):
        print(f"median {kind:5}  p50 {med[kind][0]:7.1f} us  p99 {med[kind][1]:7.1f} us")
    print(f"ratio gtudp / plain, median p50: {med['gtudp'][0] / med['plain'][0]:.2f}  (target <= 1.5)")
    print(
        "gtudp retransmissions (client+server, all rounds): "
        f"{sum(r['retransmissions'] + r['server']['retransmissions'] for r in results['gtudp'])}; "
        f"peak max RSS client {max(r['rss_mib'] for r in results['gtudp']):.1f} MiB, "
        f"server {max(r['server']['rss_mib'] for r in results['gtudp']):.1f} MiB"
    )


if __name__ == "__main__":
    main()
