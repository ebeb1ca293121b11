#!/usr/bin/env python3
"""Echo through loss (issue #18, item 5): the original gtUDP, emulated,
against the Rust echo server through a lossy relay, on loopback.

For each relay seed: starts `echo_server` (gtudp-tokio's example, built
once with `cargo build --release`), `lossy_relay.py` in front of it
(--loss, default 10 % in each direction) and `original_client.py` sending
--count messages (default 30) through the relay; prints one line per seed
(echoed/count, the client's elapsed time, the relay's drops, the server's
last lines) and a summary. Exit status 0 when every seed echoed everything.

    python3 gtudp-bench/scripts/echo_through_loss.py [--seeds 1-10] [--count 30]
        [--loss 0.1] [--window 1] [--no-build] [--logs DIR]

Every process is bounded in time (the client by its --timeout, the relay by
its --duration, the server stopped with SIGINT, then killed) and stopped at
the end of its seed. The server runs with RUST_LOG=gtudp=debug (override
with --rust-log); each seed's logs (server stderr, relay datagram log,
client datagram log) go to --logs (default target/echo-through-loss/).
"""

import argparse
import os
import re
import signal
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPTS = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(ROOT, "target", "release", "examples", "echo_server")


def parse_seeds(text):
    seeds = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        seeds.extend(range(int(low), int(high or low) + 1))
    return seeds


def read_line(proc, pattern, timeout):
    """Reads stdout lines until one matches; returns the match."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        match = re.search(pattern, line)
        if match:
            return match
    raise RuntimeError(f"no line matching {pattern!r} within {timeout} s")


def stop(proc, sig=signal.SIGINT, wait=5.0):
    """Signals `proc` and waits for it; kills it after `wait` seconds.
    Returns False if it had to be killed."""
    if proc is None or proc.poll() is not None:
        return True
    proc.send_signal(sig)
    try:
        proc.wait(wait)
        return True
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return False


def probes_in_log(path):
    """Validation probes seen in the server's debug log: RECVs out naming an
    identity that no DATA in carried; and the ACKs in that answered them."""
    datagram = re.compile(r'direction="(in|out)" kind="(\w+)" identity=([0-9a-f]+)')
    data_in, probe_ids, probes, answers = set(), set(), 0, 0
    with open(path) as f:
        for line in f:
            match = datagram.search(line)
            if not match:
                continue
            direction, kind, identity = match.groups()
            if direction == "in" and kind == "DATA":
                data_in.add(identity)
            elif direction == "out" and kind == "RECV" and identity not in data_in:
                probes += 1
                probe_ids.add(identity)
            elif direction == "in" and kind == "ACK" and identity in probe_ids:
                answers += 1
    return probes, answers


def run_seed(seed, args, logdir):
    server = relay = None
    files = {name: open(os.path.join(logdir, f"seed{seed}-{name}.log"), "w")
             for name in ("server", "client")}
    env = dict(os.environ, RUST_LOG=args.rust_log)
    try:
        server_stopped = True
        server = subprocess.Popen([SERVER, "--bind", "127.0.0.1:0"], stdout=subprocess.PIPE,
                                  stderr=files["server"], text=True, env=env)
        server_addr = read_line(server, r"listening on (\S+)", 10).group(1)
        relay = subprocess.Popen(
            [sys.executable, os.path.join(SCRIPTS, "lossy_relay.py"), "--listen", "127.0.0.1:0",
             "--target", server_addr, "--loss", str(args.loss), "--seed", str(seed),
             "--duration", str(args.timeout + 10),
             "--log", os.path.join(logdir, f"seed{seed}-relay-datagrams.log")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        relay_addr = read_line(relay, r"relay listening on (\S+)", 10).group(1)
        client_cmd = [sys.executable, os.path.join(SCRIPTS, "original_client.py"),
                      "--server", relay_addr, "--bind", "127.0.0.1:0", "--count", str(args.count),
                      "--seed", str(seed), "--window", str(args.window),
                      "--timeout", str(args.timeout), "--verbose"]
        try:
            client = subprocess.run(client_cmd, stdout=subprocess.PIPE, stderr=files["client"],
                                    text=True, timeout=args.timeout + 10)
            client_out = client.stdout.strip()
        except subprocess.TimeoutExpired:
            client_out = "client timed out"
    finally:
        # On SIGINT the server waits for its echoes in flight and closes,
        # draining for at most `drain_timeout` (10 s): a client gone with
        # an ACK lost can keep it that long. Then it prints its stats.
        server_stopped = stop(server, wait=args.server_stop_wait)
        stop(relay)
        for f in files.values():
            f.close()
    relay_err = relay.stderr.read().strip() if relay else ""
    with open(os.path.join(logdir, f"seed{seed}-server.log")) as f:
        server_tail = [line.strip() for line in f if line.startswith("echo_server:")
                       or line.startswith("received=")]
    if not server_stopped:
        server_tail.append(f"echo_server killed: no stats within {args.server_stop_wait} s "
                           "of SIGINT")
    with open(os.path.join(logdir, f"seed{seed}-client.log")) as f:
        client_counters = [line.strip() for line in f if line.startswith("original_client:")]
    match = re.search(r"sent=(\d+) echoed=(\d+) elapsed=([\d.]+)", client_out)
    echoed, elapsed = (int(match.group(2)), float(match.group(3))) if match else (0, float("nan"))
    dropped = re.search(r"dropped=(\d+)", relay_err)
    received = re.search(r"received=(\d+)", relay_err)
    probes, answers = probes_in_log(os.path.join(logdir, f"seed{seed}-server.log"))
    return dict(seed=seed, echoed=echoed, elapsed=elapsed, client=client_out,
                probes=f"{probes}/{answers}" if "debug" in args.rust_log else "-",
                relay=f"{dropped.group(1) if dropped else '?'}/{received.group(1) if received else '?'}",
                relay_err=relay_err, server=server_tail, client_counters=client_counters)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=parse_seeds, default=parse_seeds("1-10"))
    parser.add_argument("--count", type=int, default=30)
    parser.add_argument("--loss", type=float, default=0.1)
    parser.add_argument("--window", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--rust-log", default="gtudp=debug")
    parser.add_argument("--server-stop-wait", type=float, default=15.0,
                        help="seconds the server gets after SIGINT before it is killed")
    parser.add_argument("--logs", default=os.path.join(ROOT, "target", "echo-through-loss"))
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--details", action="store_true",
                        help="print the relay's and server's counters under each seed's line")
    args = parser.parse_args()

    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-p", "gtudp-tokio", "--example",
                        "echo_server"], cwd=ROOT, check=True)
    os.makedirs(args.logs, exist_ok=True)

    print(f"echo through loss: {args.count} messages, relay loss {args.loss:.0%} each way, "
          f"client window {args.window}; logs in {args.logs}")
    results = []
    for seed in args.seeds:
        result = run_seed(seed, args, args.logs)
        results.append(result)
        status = "ok" if result["echoed"] == args.count else "FAILED"
        print(f"seed {seed:>3}: echoed {result['echoed']:>3}/{args.count}  "
              f"elapsed {result['elapsed']:6.2f} s  relay dropped {result['relay']:>8}  "
              f"probes sent/answered {result['probes']:>5}  {status}",
              flush=True)
        if args.details or status != "ok":
            for line in [result["relay_err"], *result["client_counters"], *result["server"]]:
                print(f"           {line}")
    passed = sum(r["echoed"] == args.count for r in results)
    times = sorted(r["elapsed"] for r in results)
    print(f"summary: {passed}/{len(results)} seeds echoed {args.count}/{args.count}; "
          f"elapsed min {times[0]:.2f} s, median {times[len(times) // 2]:.2f} s, "
          f"max {times[-1]:.2f} s")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
