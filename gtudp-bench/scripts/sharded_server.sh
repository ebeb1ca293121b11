#!/usr/bin/env bash
# Server messages/s and CPU per message of a gtUDP sink server at 1, 2 and
# 4 shards (SO_REUSEPORT), driven by `many_peers` (many client addresses).
#
#   gtudp-bench/scripts/sharded_server.sh [--server tokio|mio] [--shards "1 2 4"] \
#       [--runs 3] [--peers 256] [--threads 1] [--window 16] [--size 64] [--secs 3] \
#       [--shard-threads]
#
# --shard-threads drives each shard of the Tokio server on a thread of its own
# (`echo_server --shard-threads`, `Builder::shard_threads`) instead of as
# tasks on the multi-threaded runtime.
#
# Builds the release binaries, then runs the shard counts alternated, --runs
# rounds, each measurement under `flock /tmp/gtudp-timing.lock` (the machine
# is shared). Each line is many_peers' result; the last block gives each
# shard count's median rate, its ratio to the first shard count's, and the
# median server CPU per message. `server_cores + client_cores` near the
# machine's core count, or a large `runq` (time runnable but waiting for a
# CPU, taken by other load), means the machine, not the server, set the rate.
set -euo pipefail
cd "$(dirname "$0")/../.."

SERVER=tokio SHARDS="1 2 4" RUNS=3 PEERS=256 THREADS=1 WINDOW=16 SIZE=64 SECS=3 SERVER_FLAGS=""
while [ $# -gt 0 ]; do
    case "$1" in
        --server) SERVER=$2; shift 2 ;;
        --shards) SHARDS=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --peers) PEERS=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --window) WINDOW=$2; shift 2 ;;
        --size) SIZE=$2; shift 2 ;;
        --secs) SECS=$2; shift 2 ;;
        --shard-threads) SERVER_FLAGS=--shard-threads; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

case "$SERVER" in
    tokio) PKG=gtudp-tokio EXAMPLE=echo_server ;;
    mio) PKG=gtudp-mio EXAMPLE=blocking_echo_server ;;
    *) echo "--server tokio|mio" >&2; exit 2 ;;
esac
cargo build --release -q -p "$PKG" --example "$EXAMPLE"
cargo build --release -q -p gtudp-bench --bin many_peers
SERVER_BIN=target/release/examples/$EXAMPLE
CLIENT_BIN=target/release/many_peers

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

measure() { # shards -> one result line
    local shards=$1 log=$OUT/server.$1 pid addr=""
    "$SERVER_BIN" --bind 127.0.0.1:0 --sink --shards "$shards" $SERVER_FLAGS >"$log" 2>"$log.err" &
    pid=$!
    for _ in $(seq 100); do
        addr=$(sed -n 's/^listening on //p' "$log")
        [ -n "$addr" ] && break
        sleep 0.05
    done
    [ -n "$addr" ] || { echo "server did not start: $(cat "$log.err")" >&2; kill "$pid"; exit 1; }
    "$CLIENT_BIN" --server "$addr" --server-pid "$pid" --label "$shards" \
        --peers "$PEERS" --threads "$THREADS" --window "$WINDOW" --size "$SIZE" --secs "$SECS"
    kill "$pid" 2>/dev/null || true  # (a background job ignores SIGINT)
    wait "$pid" 2>/dev/null || true
}

echo "server=$SERVER${SERVER_FLAGS:+ $SERVER_FLAGS} peers=$PEERS threads=$THREADS window=$WINDOW size=$SIZE secs=$SECS cores=$(nproc)"
for run in $(seq "$RUNS"); do
    for shards in $SHARDS; do
        flock /tmp/gtudp-timing.lock bash -c "$(declare -f measure); OUT=$OUT SERVER_BIN=$SERVER_BIN SERVER_FLAGS=$SERVER_FLAGS CLIENT_BIN=$CLIENT_BIN PEERS=$PEERS THREADS=$THREADS WINDOW=$WINDOW SIZE=$SIZE SECS=$SECS; measure $shards" | tee -a "$OUT/results"
    done
done

echo "-- medians over $RUNS runs"
python3 - "$OUT/results" $SHARDS <<'PY'
import statistics, sys
rows = [dict(f.split("=", 1) for f in line.split()) for line in open(sys.argv[1]) if line.startswith("peers=")]
base = None
for shards in sys.argv[2:]:
    mine = [r for r in rows if r["shards"] == shards]
    rate = statistics.median(float(r["msgs_per_s"]) for r in mine)
    cpu = statistics.median(float(r["server_cpu_us_per_msg"]) for r in mine)
    cores = statistics.median(float(r["server_cores"]) + float(r["client_cores"]) for r in mine)
    runq = statistics.median(float(r["server_runq"]) + float(r["client_runq"]) for r in mine)
    base = base or rate
    print(f"shards={shards} msgs_per_s={rate:.0f} ratio={rate / base:.2f} server_cpu_us_per_msg={cpu:.2f} "
          f"server+client_cores={cores:.2f} server+client_runq={runq:.2f}")
PY
