#!/usr/bin/env bash
# Where the core's time goes, per stage of a message's path: runs a criterion
# bench of gtudp-proto under `perf record` and sums the self time of its
# functions by the stage each belongs to (parse, peer lookup, identity
# lookup and insert, awaiting table, timers, congestion and pacing, loss
# detection, output queue, ...).
#
#   gtudp-bench/scripts/profile_stages.sh [BENCH_FILTER] [SECONDS]
#   (defaults: steady_exchange, 10)
#
# Prints a Markdown table, stage by stage, with the share of samples and
# the functions that weigh most in it. Needs `perf` (apt-get install
# linux-perf); shares are samples of the whole bench process, the harness
# that moves datagrams between the two endpoints included (its own row).
set -euo pipefail
. "$(dirname "$0")/bench_executable.sh"
cd "$(dirname "$0")/../.."
filter=${1:-steady_exchange}
seconds=${2:-10}
command -v perf >/dev/null || { echo "profile_stages.sh: perf is missing (apt-get install linux-perf)" >&2; exit 1; }
bin=$(bench_executable endpoint)
data=$(mktemp /tmp/gtudp-perf.XXXXXX)
trap 'rm -f "$data" "$data.old"' EXIT
perf record -F 2000 -o "$data" -- "$bin" --bench --profile-time "$seconds" "$filter" >/dev/null 2>&1
perf report -i "$data" --no-children --sort symbol --stdio 2>/dev/null | python3 -c '
import re, sys
# (stage, substrings of the symbol), first match wins.
STAGES = [
    ("bench harness (moving datagrams)", ["endpoint::Link", "Bytes::copy_from_slice", "bytes::bytes"]),
    ("parse", ["wire::framing", "wire::packet", "wire::identity"]),
    ("identity lookup and insert (remembered)", ["remembered::"]),
    ("identity generation", ["identities::"]),
    ("awaiting table (RECV awaiting ACK)", ["receiver::", "awaiting"]),
    ("peer lookup (hashing addresses)", ["SocketAddr as core::hash", "ensure_peer", "note_inbound", "Hash>::hash", "foldhash", "peer_table::", "table_hash::"]),
    ("hash tables (peers, messages)", ["hashbrown::"]),
    ("timers", ["timer::", "BinaryHeap", "arm_sender_timer", "handle_timeout", "on_sender_timer"]),
    ("congestion and pacing", ["congestion::", "pacing::"]),
    ("loss detection and RTT", ["loss::", "recovery::", "rtt::"]),
    ("output queue and transmit", ["output::", "poll_transmit"]),
    ("sender bookkeeping", ["sender::"]),
    ("validation", ["validating::", "validation::"]),
    ("events and stats", ["poll_event", "stats::", "VecDeque"]),
    ("time arithmetic", ["Instant", "Timespec", "Duration"]),
    ("allocation and copies", ["malloc", "free", "memmove", "memcpy", "realloc", "alloc::"]),
    ("endpoint dispatch", ["Endpoint::"]),
]
totals, tops = {}, {}
for line in sys.stdin:
    m = re.match(r"\s*([0-9.]+)%\s+\[\.\]\s+(.*)", line)
    if not m:
        continue
    share, symbol = float(m.group(1)), m.group(2).split("  ")[0].strip()
    stage = next((name for name, keys in STAGES if any(k in symbol for k in keys)), "other")
    totals[stage] = totals.get(stage, 0.0) + share
    tops.setdefault(stage, []).append((share, re.sub(r"<impl [^>]*>::", "", symbol)))
print("| stage | share of samples | heaviest functions |")
print("|---|---|---|")
for stage, share in sorted(totals.items(), key=lambda kv: -kv[1]):
    if share < 0.5:
        continue
    sep = "::"
    top = ", ".join(f"`{s.split(sep)[-1]}` {p:.1f}%" for p, s in sorted(tops[stage], reverse=True)[:3])
    print(f"| {stage} | {share:.1f}% | {top} |")
'
