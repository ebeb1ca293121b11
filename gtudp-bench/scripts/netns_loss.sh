#!/usr/bin/env bash
# Real per-datagram random loss on loopback, gtudp-tokio beside tokio_kcp.
#
#   sudo gtudp-bench/scripts/netns_loss.sh [LOSS_PERCENT] [COUNT] [RUNS]
#   (defaults: 10 % loss, 10000 messages, 3 runs)
#
# Creates a network namespace whose loopback drops LOSS_PERCENT of the
# datagrams it receives (an nftables `numgen random` rule on the input
# hook), with `gso_max_segs 1` so each datagram meets the rule on its own,
# as on a real link, rather than whole segmentation-offload batches. Inside
# it, it runs:
#
# 1. `echo_server --sink` and `echo_client --oneway --concurrency 1024` with
#    COUNT 64-byte messages, RUNS times (gtudp-tokio, as a user would); each
#    run's line is `run K: wall_s=W` then the client's result line (which
#    ends `retransmissions=X spurious=Y`), then `retx_per_msg=X/COUNT`; a
#    last line sums the runs' retransmissions and spurious ones;
# 2. the `compare` benchmark for gtudp-tokio and tokio_kcp (fast profile:
#    nodelay, fast resend, no congestion window) in one run, median of RUNS.
#
# Needs root (namespaces, nftables); installs nftables with apt-get if `nft`
# is missing. Timing: make sure no other measurement runs at the same time. CI does not run it.
set -euo pipefail
loss=${1:-10}
count=${2:-10000}
runs=${3:-3}
ns=gtudp-loss-$$
cd "$(dirname "$0")/../.."

if ! command -v nft >/dev/null; then
    echo "installing nftables" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables >/dev/null
fi
cargo build --quiet --release -p gtudp-tokio --example echo_server --example echo_client
cargo build --quiet --release -p gtudp-bench
bin="${CARGO_TARGET_DIR:-target}/release"

cleanup() {
    [[ -n "${server:-}" ]] && kill "$server" 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
}
trap cleanup EXIT

ip netns add "$ns"
in_ns() { ip netns exec "$ns" "$@"; }
in_ns ip link set lo up
in_ns ip link set lo gso_max_segs 1
in_ns nft -f - <<NFT
table inet gtudp_loss {
    chain input {
        type filter hook input priority 0; policy accept;
        meta l4proto udp numgen random mod 100 < $loss drop
    }
}
NFT
echo "namespace $ns: lo drops ${loss}% of received UDP datagrams, gso_max_segs 1"

echo "== gtudp-tokio echo_client --oneway against echo_server --sink: $count x 64 B, concurrency 1024"
# The value of `key=` in a result line (empty if absent).
field() {
    awk -v key="$1" '{ for (i = 1; i <= NF; i++) if (index($i, key "=") == 1) print substr($i, length(key) + 2) }' <<<"$2"
}
per_msg() { awk -v r="$1" -v n="$2" 'BEGIN { printf "%.4f", (n > 0 ? r / n : 0) }'; }
port=4000
total_retx=0
total_spurious=0
total_sent=0
for run in $(seq 1 "$runs"); do
    port=$((port + 1))
    # Not through in_ns: a backgrounded function is a subshell, and killing
    # it would leave the server running (and holding whatever it inherited).
    ip netns exec "$ns" "$bin/examples/echo_server" --bind "127.0.0.1:$port" --sink >/dev/null 2>&1 &
    server=$!
    sleep 0.5
    start=$(date +%s.%N)
    line=$(in_ns "$bin/examples/echo_client" --server "127.0.0.1:$port" --count "$count" \
        --size 64 --concurrency 1024 --oneway 2>/dev/null | tail -n 1) || true
    end=$(date +%s.%N)
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    server=
    retx=$(field retransmissions "$line")
    spurious=$(field spurious "$line")
    if [[ -n "$retx" && -n "$spurious" ]]; then
        retx_per_msg=$(per_msg "$retx" "$count")
        total_retx=$((total_retx + retx))
        total_spurious=$((total_spurious + spurious))
        total_sent=$((total_sent + count))
    else
        retx_per_msg='?'
    fi
    printf 'run %s: wall_s=%.2f %s retx_per_msg=%s\n' "$run" "$(echo "$end - $start" | bc)" "$line" \
        "$retx_per_msg"
done
echo "echo_client, all runs: messages=$total_sent retransmissions=$total_retx spurious=$total_spurious" \
    "retx_per_msg=$(per_msg "$total_retx" "$total_sent")"

echo "== compare: gtudp-tokio and tokio_kcp, $count x 64 B, concurrency 1024, median of $runs"
in_ns "$bin/compare" --only gtudp-tokio,tokio_kcp --count "$count" --size 64 \
    --concurrency 1024 --runs "$runs"
