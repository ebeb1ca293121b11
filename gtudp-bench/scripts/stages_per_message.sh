#!/usr/bin/env bash
# Where the core's instructions go, per message and per stage, counted by
# valgrind's callgrind on the same run as instructions_per_message.sh (one
# pair of endpoints exchanging messages of 64 B; a message is one DATA,
# one RECV and one ACK, so an input stage covers three datagrams).
#
#   gtudp-bench/scripts/stages_per_message.sh [CURVE_ARGS...]   (default: pair 100000)
#
# Prints a Markdown table: each stage's inclusive instructions per message
# (the functions named, with everything they call), then the whole run's.
# Stages nest (parsing is part of the input), so the rows do not add up.
# Deterministic: the same on a busy or a quiet machine. Needs valgrind.
set -euo pipefail
. "$(dirname "$0")/bench_executable.sh"
cd "$(dirname "$0")/../.."
command -v valgrind >/dev/null || { echo "stages_per_message.sh: valgrind is missing (apt-get install valgrind)" >&2; exit 1; }
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(pair 100000)
bin=$(bench_executable curve)
out=$(mktemp /tmp/gtudp-callgrind.XXXXXX)
trap 'rm -f "$out"' EXIT
report=$(valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" "${args[@]}" 2>&1)
annotated=$(callgrind_annotate --inclusive=yes --threshold=100 "$out" 2>/dev/null)
python3 - "$report" "$annotated" "${args[*]}" <<'PY'
import re, sys
report, annotated, run = sys.argv[1], sys.argv[2], sys.argv[3]
rows = [l for l in report.splitlines() if l.startswith("| ") and not l.startswith("| run")]
messages = int(rows[-1].split("|")[2])
inclusive = {}
for line in annotated.splitlines():
    m = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+\S*?:(.*?) \[", line)
    if m:
        name = m.group(2)
        inclusive[name] = max(inclusive.get(name, 0), int(m.group(1).replace(",", "")))
total = inclusive.get("curve::main", 0)
# (stage, what it covers, function-name suffixes whose inclusive costs add up)
stages = [
    ("input", "handle_datagram(_slice): DATA, RECV and ACK in", ["Endpoint::handle_datagram", "Endpoint::handle_datagram_slice"]),
    # Parse and encode are inlined into input and output (a few
    # comparisons and one copy in the default framing): their rows count
    # only calls left out of line, as with another framing.
    ("  parse", "the framing's parse of each datagram (inlined: counted in input)", ["Framing::parse"]),
    # A DATA's recognition and taking are inlined into input: the first
    # row counts the remembered memory's look-up (the awaited records' is
    # inlined), the second only a taking left out of line (the release of
    # DATA held for validation).
    ("  receive: recognise a repeat", "the remembered memory's look-up (the awaited one inlined: counted in input)", ["RememberedIdentities::recall"]),
    ("  receive: take the message", "record, RECV order, hand-over (inlined: counted in input)", ["::take_data"]),
    # The ACK's own handling is inlined into input: this row counts the
    # remembered memory's insertion, which is not.
    ("  receive: ACK ends the exchange", "identity into the remembered memory", ["RememberedIdentities::insert_bounded"]),
    ("  send side: RECV confirms", "resolve: window, RTT, loss, congestion, event", ["::resolve_with"]),
    ("    RTT estimate", "RFC 6298 update, both sides (the ACK samples too)", ["RttEstimator::on_sample", "RttEstimator::on_sample_ns"]),
    ("    congestion control", "BBR's model per delivery", ["Controller::on_delivered"]),
    ("    loss detection", "RACK over the send order (after a confirmation with nothing lost, inlined: counted in input)", ["::detect_lost"]),
    ("output", "poll_transmit: every datagram out", ["Endpoint::poll_transmit"]),
    ("  encode", "the framing's encoding (inlined: counted in output)", ["Framing::encode_to_vec"]),
    ("send call", "Endpoint::send: identity, table, queue, release", ["Endpoint::send"]),
    ("  pacing and window", "release into flight (a message with nothing queued ahead is released by the send itself: counted in send call)", ["::release"]),
    ("timers", "arming, and purging stale entries (the sender's timer after a confirmation, inlined: counted in input)", ["::arm_sender_timer", "::arm_peer_timer", "Endpoint::compact_tables"]),
    ("hash lookups", "hashbrown get/get_mut, all tables, and the awaiting records' find and remove", ["HashMap<K,V,S,A>::get_inner_mut", "HashMap<K,V,S,A>::get_inner", "AwaitingRecords::find", "AwaitingRecords::remove"]),
    ("clock arithmetic", "Instant differences", ["<std::time::Instant>::duration_since"]),
    # The benches' link moves datagrams as the adapters do: written in
    # segmentation-offload batches, read from a reused receive buffer that
    # the endpoint borrows, so the one copy left is a DATA's payload, taken
    # by the endpoint (counted in input) and freed by the application.
    ("  payload copy", "each DATA's payload into its own `Bytes` (part of input), and its release", ["Bytes::copy_from_slice", "bytes::promotable_even_drop"]),
]
def cost(suffixes):
    return sum(v for k, v in inclusive.items() for s in suffixes if k.endswith(s))
print(f"{run}: {messages} messages, {total / messages:,.0f} instructions per message in all")
print()
print("| stage | what | instructions per message |")
print("|---|---|---|")
for stage, what, suffixes in stages:
    c = cost(suffixes)
    print(f"| {stage.replace('  ', '&nbsp;&nbsp;')} | {what} | {c / messages:,.0f} |")
# What the endpoints' own calls do not cover: the bench's loop, moving the
# datagrams between the two sides, and the application's reading of events.
entries = ["Endpoint::handle_datagram", "Endpoint::handle_datagram_slice", "Endpoint::poll_transmit",
           "Endpoint::send", "Endpoint::handle_timeout", "Endpoint::prefetch"]
core = sum(inclusive.get(k, 0) for k in inclusive if any(k.endswith(e) for e in entries))
print(f"| bench harness | the rest: the bench's loop and moving datagrams between the sides | {(total - core) / messages:,.0f} |")
PY
