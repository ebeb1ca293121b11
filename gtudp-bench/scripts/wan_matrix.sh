#!/usr/bin/env bash
# Runs the virtual-time `wan` benchmark over a wide matrix of paths (rate x RTT
# x loss, one and several flows) and prints one Markdown table row per run.
#
#   gtudp-bench/scripts/wan_matrix.sh [CONTROLLER...]     (default: aimd bbr)
#
# RTT {2, 20, 100 ms} x loss {0, 1, 10, 30 %} x rate {10, 100, 1000 Mbit/s},
# one flow; then 2 and 4 flows on 20 ms / 100 Mbit/s, clean and 1% loss.
# Every run is deterministic (virtual time, seed 1), so it needs no bench
# lock and gives the same table on any machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
controllers=("${@:-aimd bbr}")
# shellcheck disable=SC2206
controllers=(${controllers[*]})
cargo build --quiet --release -p gtudp-proto --features sim --example wan
wan="${CARGO_TARGET_DIR:-target}/release/examples/wan"

row() {
    local controller=$1; shift
    local line
    line=$("$wan" --congestion "$controller" "$@" | tail -n 1)
    # flows=F goodput_mbit=G link_mbit=M utilization=U bottleneck_drops=D
    # retransmit_ratio=X delivered=N failed=K p50_ms=A p99_ms=B fairness=J
    local -A v
    for field in $line; do v[${field%%=*}]=${field#*=}; done
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
        "$controller" "$*" "${v[flows]}" "${v[goodput_mbit]}" "${v[utilization]}" \
        "${v[bottleneck_drops]}" "${v[retransmit_ratio]}" "${v[delivered]}" "${v[failed]}" \
        "${v[p50_ms]}" "${v[p99_ms]}" "${v[fairness]}"
}

echo '| controller | arguments | flows | goodput Mbit/s | utilization | bottleneck drops | DATA per delivered | delivered | failed | p50 ms | p99 ms | fairness |'
echo '|---|---|---|---|---|---|---|---|---|---|---|---|'
for controller in "${controllers[@]}"; do
    for rate in 10 100 1000; do
        for rtt in 2 20 100; do
            for loss in 0 0.01 0.1 0.3; do
                row "$controller" --rtt-ms "$rtt" --rate-mbit "$rate" --loss "$loss"
            done
        done
    done
    for flows in 2 4; do
        for loss in 0 0.01; do
            row "$controller" --rtt-ms 20 --rate-mbit 100 --loss "$loss" --flows "$flows"
        done
    done
done
