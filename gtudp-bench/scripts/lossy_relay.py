#!/usr/bin/env python3
"""A lossy UDP relay on loopback, standalone (stdlib only).

The same model as gtudp-testkit's `relay` (which exists only as a library,
run inside a test or `lossy_demo`): datagrams from the target (server) go to
the client, the last other address the relay heard from; datagrams from
anyone else go to the target. Each datagram, in either direction, is dropped
with probability --loss, decided by a generator seeded with --seed, so the
same seed drops the same positions of the datagram sequence (the sequence
itself depends on timing).

    lossy_relay.py --listen 127.0.0.1:PORT --target 127.0.0.1:PORT \
                   [--loss 0.1] [--seed S] [--duration SECS] [--log FILE]

Prints `relay listening on ADDR` once ready; runs for at most --duration
seconds (default 60), or until SIGINT/SIGTERM, then prints its counters on
stderr: `relay: received=R dropped=D forwarded=F (to_server=.. to_client=..)`.
--log FILE writes one line per datagram (time, direction, dropped, hex).
"""

import argparse
import random
import select
import signal
import socket
import sys
import time


def parse_addr(text):
    host, _, port = text.rpartition(":")
    return (host.strip("[]"), int(port))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", type=parse_addr, default=("127.0.0.1", 0))
    parser.add_argument("--target", type=parse_addr, required=True)
    parser.add_argument("--loss", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--log", default=None)
    args = parser.parse_args()

    stop = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.append(True))

    family = socket.AF_INET6 if ":" in args.listen[0] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind(args.listen)
    target = socket.getaddrinfo(args.target[0], args.target[1], family, socket.SOCK_DGRAM)[0][4]
    target = (target[0], target[1])
    print(f"relay listening on {sock.getsockname()[0]}:{sock.getsockname()[1]}", flush=True)

    rng = random.Random(args.seed)
    log = open(args.log, "w") if args.log else None
    client = None
    counts = dict(received=0, dropped=0, forwarded=0, to_server=0, to_client=0,
                  dropped_to_server=0, dropped_to_client=0)
    start = time.monotonic()
    end = start + args.duration
    while not stop and time.monotonic() < end:
        try:
            ready, _, _ = select.select([sock], [], [], min(0.1, max(0.0, end - time.monotonic())))
        except InterruptedError:
            continue
        if not ready:
            continue
        try:
            datagram, source = sock.recvfrom(65536)
        except OSError:
            continue  # ICMP from a peer that went away
        source = (source[0], source[1])
        counts["received"] += 1
        if source == target:
            if client is None:
                continue
            to, direction = client, "to_client"
        else:
            client = source
            to, direction = target, "to_server"
        dropped = rng.random() < args.loss
        if log:
            log.write(f"{time.monotonic() - start:.4f} {direction} "
                      f"{'DROP' if dropped else 'pass'} {datagram[:24].hex()}\n")
        if dropped:
            counts["dropped"] += 1
            counts["dropped_" + direction] += 1
            continue
        counts["forwarded"] += 1
        counts[direction] += 1
        try:
            sock.sendto(datagram, to)
        except OSError:
            pass
    if log:
        log.close()
    print("relay: " + " ".join(f"{k}={v}" for k, v in counts.items()), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
