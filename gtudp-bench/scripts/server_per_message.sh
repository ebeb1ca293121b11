#!/usr/bin/env bash
# The server's own cost per message in the curve bench's `peers P M` run
# (P client endpoints, one server): instructions, and misses of a simulated
# 2 MB last-level cache (about one core's L2: a server with many peers
# finds each one's state there or not at all), counted by valgrind's
# callgrind over the server's phases only (`curve::server_*`), so the
# clients' endpoints are left out. Deterministic, like
# instructions_per_message.sh.
#
#   gtudp-bench/scripts/server_per_message.sh [P M]   (default: 10000 20)
#
# Prints one line: the run, instructions, 2 MB-cache misses and first-level
# data misses per message. Needs valgrind (apt-get install valgrind).
set -euo pipefail
. "$(dirname "$0")/bench_executable.sh"
cd "$(dirname "$0")/../.."
command -v valgrind >/dev/null || { echo "server_per_message.sh: valgrind is missing (apt-get install valgrind)" >&2; exit 1; }
peers=${1:-10000}
each=${2:-20}
bin=$(bench_executable curve)
out=$(mktemp /tmp/gtudp-callgrind.XXXXXX)
trap 'rm -f "$out"' EXIT
valgrind --tool=callgrind --cache-sim=yes --LL=2097152,16,64 \
    --toggle-collect='curve::server_*' --callgrind-out-file="$out" \
    "$bin" peers "$peers" "$each" >/dev/null 2>&1
python3 - "$out" "$peers" "$each" <<'PY'
import sys
path, peers, each = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
events = totals = None
for line in open(path):
    if line.startswith("events:"):
        events = line.split()[1:]
    elif line.startswith(("totals:", "summary:")):
        totals = [int(x) for x in line.split()[1:]]
counts = dict(zip(events, totals))
messages = peers * each
print(
    f"server, peers {peers} x {each}: {counts['Ir'] / messages:,.0f} instructions, "
    f"{(counts['DLmr'] + counts['DLmw']) / messages:.1f} misses of a 2 MB cache and "
    f"{(counts['D1mr'] + counts['D1mw']) / messages:.1f} first-level data misses per message"
)
PY
