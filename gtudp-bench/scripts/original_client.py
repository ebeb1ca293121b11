#!/usr/bin/env python3
"""An emulation of the ORIGINAL Python gtUDP, used as an echo client.

There is no copy of the original implementation in this project. This script
reproduces its behaviour on the wire as described by its README
(`/work/shared/000_9a75fbc505badd6b.txt`, the seed document) and by SPEC.md's
table "What the original does", and as seen in
`vectors/original-echo-transcript.json` (a live exchange between two
instances of the original). It is a test peer, not a library; stdlib only.

What it does, as the original does:

- Default framing: no magic, 1-byte types DATA 0x1D, RECV 0x5F, ACK 0xAE,
  a 4-byte identity, the payload after it (DATA only).
- Identity of a DATA = big-endian (adler32(payload) + counter) mod 2**32, the
  counter starting at a random value and incremented per message.
- Sending: the DATA goes out at once; every unconfirmed DATA is resent each
  time the socket has been idle for 0.5 s (no datagram received for 0.5 s;
  the original's receive loop resends on its `recvfrom` timeout), so under
  steady traffic nothing is resent. After 6 DATA sends it gives up silently.
- Any RECV, whatever its identity (known or not), is answered with an ACK of
  that identity; a RECV carrying a known identity, from any address, clears
  that message (the original does not check the source).
- Receiving: a DATA is delivered and answered with RECV; the RECV is resent
  on the same idle timeout until its ACK arrives, at most 10 sends. A repeat
  of a DATA whose exchange is still open is answered with RECV again and not
  delivered; a repeat that arrives after the exchange ended (ACK received or
  RECV sends ran out) is delivered again (the original's flaw).

The client part plays the README's example the other way round: it sends
"msg-<i>" to an echo server, one (or --window) at a time, and reads the
echoes with the blocking-style recvfrom a user of the original would write,
except that a message whose echo does not come within --echo-wait seconds
stops holding its place in the window, so the run stays bounded (its echo
still counts if it comes later). It exits when all N are echoed or
after --timeout seconds, printing

    sent=N echoed=E elapsed=SECONDS

(plus, on stderr, a line of counters). Exit status 0 when E == N.

Usage:
    original_client.py --server HOST:PORT --count N [--bind HOST:PORT]
                       [--seed S] [--window W] [--timeout SECS] [--verbose]
"""

import argparse
import random
import select
import socket
import sys
import time
import zlib

DATA, RECV, ACK = b"\x1d", b"\x5f", b"\xae"
HEADER = 1 + 4
IDLE_RESEND = 0.5  # the original's fixed resend interval (socket idle)
DATA_MAX_SENDS = 6
RECV_MAX_SENDS = 10


def parse_addr(text):
    host, _, port = text.rpartition(":")
    return (host.strip("[]"), int(port))


class OriginalGtudp:
    """The original's state, without its threads: one loop owns it."""

    def __init__(self, sock, rng, verbose=False):
        self.sock = sock
        self.counter = rng.randrange(2**32)
        self.verbose = verbose
        # identity -> [datagram, address, sends]; the original keys by identity only.
        self.unconfirmed = {}
        # identity -> [datagram, address, sends]: our RECVs awaiting their ACK.
        self.awaiting_ack = {}
        self.delivered = []  # (payload, address) for the application
        self.last_activity = time.monotonic()  # last datagram in, or last resend round
        self.stats = dict(data_sent=0, data_resent=0, data_given_up=0, recv_sent=0,
                          recv_resent=0, recv_given_up=0, acks_sent=0, acks_unknown_recv=0,
                          delivered=0, redelivered=0, datagrams_in=0)
        self.ended = set()  # identities whose RECV exchange ended (for counting redeliveries)

    def log(self, text):
        if self.verbose:
            print(f"{time.monotonic():.3f} {text}", file=sys.stderr)

    def sendto(self, payload, address):
        identity = ((zlib.adler32(payload) + self.counter) % 2**32).to_bytes(4, "big")
        self.counter = (self.counter + 1) % 2**32
        datagram = DATA + identity + payload
        self.unconfirmed[identity] = [datagram, address, 1]
        self.stats["data_sent"] += 1
        self.log(f"DATA {identity.hex()} -> {address} {payload!r}")
        self._send(datagram, address)
        return identity

    def _send(self, datagram, address):
        try:
            self.sock.sendto(datagram, address)
        except OSError:
            pass  # the original ignores send errors too (UDP)

    def handle(self, datagram, address):
        self.last_activity = time.monotonic()
        self.stats["datagrams_in"] += 1
        if len(datagram) < HEADER:
            return
        kind, identity = datagram[:1], datagram[1:5]
        if kind == RECV and len(datagram) == HEADER:
            # Any RECV gets its ACK; a known identity clears the message,
            # whichever address the RECV came from.
            known = self.unconfirmed.pop(identity, None) is not None
            if not known:
                self.stats["acks_unknown_recv"] += 1
            self.log(f"RECV {identity.hex()} <- {address} ({'known' if known else 'unknown'}); ACK")
            self.stats["acks_sent"] += 1
            self._send(ACK + identity, address)
        elif kind == ACK and len(datagram) == HEADER:
            self.log(f"ACK {identity.hex()} <- {address}")
            if self.awaiting_ack.pop(identity, None) is not None:
                self.ended.add(identity)
        elif kind == DATA:
            payload = datagram[HEADER:]
            reply = RECV + identity
            if identity in self.awaiting_ack:
                self.log(f"DATA {identity.hex()} <- {address} (repeat, exchange open); RECV")
            else:
                self.awaiting_ack[identity] = [reply, address, 0]
                if identity in self.ended:
                    self.stats["redelivered"] += 1
                self.stats["delivered"] += 1
                self.delivered.append((payload, address))
                self.log(f"DATA {identity.hex()} <- {address} {payload!r}; delivered, RECV")
            entry = self.awaiting_ack[identity]
            entry[2] += 1
            self.stats["recv_sent"] += 1
            self._send(reply, address)

    def on_idle(self):
        """The socket was idle for 0.5 s: resend everything unconfirmed."""
        self.last_activity = time.monotonic()
        for identity, entry in list(self.unconfirmed.items()):
            if entry[2] >= DATA_MAX_SENDS:
                del self.unconfirmed[identity]  # silently
                self.stats["data_given_up"] += 1
                self.log(f"DATA {identity.hex()} given up")
                continue
            entry[2] += 1
            self.stats["data_resent"] += 1
            self.log(f"DATA {identity.hex()} resent ({entry[2]})")
            self._send(entry[0], entry[1])
        for identity, entry in list(self.awaiting_ack.items()):
            if entry[2] >= RECV_MAX_SENDS:
                del self.awaiting_ack[identity]
                self.ended.add(identity)
                self.stats["recv_given_up"] += 1
                self.log(f"RECV {identity.hex()} given up")
                continue
            entry[2] += 1
            self.stats["recv_resent"] += 1
            self.log(f"RECV {identity.hex()} resent ({entry[2]})")
            self._send(entry[0], entry[1])

    def poll(self, until):
        """Runs the receive loop until `until` (monotonic) or a delivery."""
        while True:
            now = time.monotonic()
            idle_at = self.last_activity + IDLE_RESEND
            if now >= idle_at:
                self.on_idle()
                continue
            if self.delivered or now >= until:
                return
            ready, _, _ = select.select([self.sock], [], [], min(idle_at, until) - now)
            if ready:
                try:
                    datagram, address = self.sock.recvfrom(65536)
                except OSError:
                    continue  # ICMP port unreachable and the like
                self.handle(datagram, address)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True, type=parse_addr)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--bind", type=parse_addr, default=None)
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the identity counter's random start")
    parser.add_argument("--window", type=int, default=1,
                        help="messages awaiting their echo at once (default 1)")
    parser.add_argument("--echo-wait", type=float, default=10.0,
                        help="seconds to wait for one message's echo before moving on")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--verbose", action="store_true", help="log every datagram to stderr")
    args = parser.parse_args()

    family = socket.AF_INET6 if ":" in args.server[0] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind(args.bind or (("::" if family == socket.AF_INET6 else "0.0.0.0"), 0))
    gt = OriginalGtudp(sock, random.Random(args.seed), args.verbose)

    start = time.monotonic()
    deadline = start + args.timeout
    waiting = {}  # payload -> time sent, while it holds a place in the window
    sent = set()
    echoed, given_up, late, repeats = set(), 0, 0, 0
    next_index = 0
    while time.monotonic() < deadline:
        now = time.monotonic()
        for payload, sent_at in list(waiting.items()):
            if now - sent_at > args.echo_wait:
                del waiting[payload]
                given_up += 1
        while next_index < args.count and len(waiting) < args.window:
            payload = f"msg-{next_index}".encode()
            next_index += 1
            gt.sendto(payload, args.server)
            waiting[payload] = time.monotonic()
            sent.add(payload)
        if len(echoed) == args.count or (next_index >= args.count and not waiting):
            break
        gt.poll(min(deadline, now + 0.05))
        for payload, _ in gt.delivered:
            if payload in echoed:
                repeats += 1  # delivered again (the original's flaw)
            elif payload in sent:
                echoed.add(payload)
                if waiting.pop(payload, None) is None:
                    late += 1  # after its --echo-wait: counted, but it freed no place
        gt.delivered.clear()
    elapsed = time.monotonic() - start
    # Keep answering for a moment, as the original's thread would until
    # cleanup(): the server's last RECVs still wait for their ACK.
    linger = time.monotonic() + 0.5
    while time.monotonic() < linger:
        gt.poll(linger)
        gt.delivered.clear()
    sock.close()
    print(f"sent={next_index} echoed={len(echoed)} elapsed={elapsed:.2f}")
    counters = " ".join(f"{k}={v}" for k, v in gt.stats.items())
    print(f"original_client: {counters} echo_waits_expired={given_up} late_echoes={late} repeated_echoes={repeats}",
          file=sys.stderr)
    return 0 if len(echoed) == args.count else 1


if __name__ == "__main__":
    sys.exit(main())
