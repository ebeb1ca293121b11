#!/usr/bin/env bash
# Instructions (and last-level cache misses) per message through the core,
# counted by valgrind's cachegrind: unlike a timing, the count is the same
# on a busy or a quiet machine, so it compares commits exactly.
#
#   gtudp-bench/scripts/instructions_per_message.sh [CURVE_ARGS...]
#   (default: pair 100000, one pair of endpoints exchanging 100,000
#   messages of 64 B at 500,000 a virtual second; see benches/curve.rs)
#
# Prints one line: the run, messages, instructions per message and
# simulated last-level misses per message. Needs valgrind
# (apt-get install valgrind). The count includes the bench harness (moving
# datagrams between the endpoints as an adapter does: batched transmits
# copied into a receive buffer the other side borrows) and the endpoints'
# creation, which 100,000 messages make negligible.
set -euo pipefail
. "$(dirname "$0")/bench_executable.sh"
cd "$(dirname "$0")/../.."
command -v valgrind >/dev/null || { echo "instructions_per_message.sh: valgrind is missing (apt-get install valgrind)" >&2; exit 1; }
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(pair 100000)
bin=$(bench_executable curve)
out=$(mktemp /tmp/gtudp-cachegrind.XXXXXX)
trap 'rm -f "$out"' EXIT
report=$(valgrind --tool=cachegrind --cache-sim=yes --cachegrind-out-file="$out" "$bin" "${args[@]}" 2>&1)
python3 - "$report" "${args[*]}" <<'PY'
import re, sys
report, run = sys.argv[1], sys.argv[2]
rows = [l for l in report.splitlines() if l.startswith("| ") and not l.startswith("| run")]
messages = int(rows[-1].split("|")[2])
count = lambda label: int(re.search(label + r"\s*([\d,]+)", report).group(1).replace(",", ""))
instructions, misses = count(r"I\s+refs:"), count(r"LL misses:")
print(f"{run}: {messages} messages, {instructions / messages:,.0f} instructions and {misses / messages:.2f} last-level misses per message")
PY
