#!/usr/bin/env bash
# A sink server killed mid-run and restarted on the same port (issue 21,
# item 3: restarts are not failures).
#
#   gtudp-bench/scripts/restart_server.sh [COUNT] [KILL_AFTER_S] [DOWN_S] [PORT]
#   (defaults: 50000 messages, kill 0.1 s in, down 1 s, port 4817)
#
# Starts `echo_server --sink` on 127.0.0.1:PORT and `echo_client --oneway
# --concurrency 1024` with COUNT 64-byte messages; KILL_AFTER_S seconds
# after the client starts, `kill -9`s the server, and DOWN_S seconds later
# starts a new one on the same port. Prints the client's result line
# (`sent=N delivered=D failed=F ...`), the restarted server's result line, and
# `lost=COUNT-D`. Messages the old process took but whose RECV was lost are
# taken again by the new one (so the servers' sum may exceed COUNT).
#
# Timing: wrap it in `flock /tmp/gtudp-timing.lock` so no other measurement
# runs at the same time.
set -euo pipefail
count=${1:-50000}
kill_after=${2:-0.1}
down=${3:-1}
port=${4:-4817}
cd "$(dirname "$0")/../.."

cargo build --quiet --release -p gtudp-tokio --example echo_server --example echo_client
bin="${CARGO_TARGET_DIR:-target}/release/examples"
log=$(mktemp -d)

cleanup() {
    for pid in ${server:-} ${server2:-} ${client:-}; do
        kill -9 "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT

wait_listening() {
    for _ in $(seq 1 200); do
        grep -q "listening on" "$1" 2>/dev/null && return 0
        sleep 0.01
    done
    echo "server did not start: $(cat "$1")" >&2
    return 1
}

"$bin/echo_server" --bind "127.0.0.1:$port" --sink >"$log/server1" 2>&1 &
server=$!
wait_listening "$log/server1"

"$bin/echo_client" --server "127.0.0.1:$port" --oneway --concurrency 1024 \
    --count "$count" --size 64 --wait-secs 30 >"$log/client" 2>"$log/client.err" &
client=$!

sleep "$kill_after"
kill -9 "$server"
wait "$server" 2>/dev/null || true
killed_at=$(date +%s.%N)
sleep "$down"
"$bin/echo_server" --bind "127.0.0.1:$port" --sink >"$log/server2" 2>&1 &
server2=$!
wait_listening "$log/server2"
restarted_at=$(date +%s.%N)

status=0
wait "$client" || status=$?
client=
kill -INT "$server2" 2>/dev/null || true
sleep 0.2
kill -9 "$server2" 2>/dev/null || true
server2=

echo "down_s=$(echo "$restarted_at - $killed_at" | bc)"
echo "client: $(tail -1 "$log/client")"
echo "client exit status: $status"
grep -h "received=" "$log/server1" "$log/server2" | sed 's/^/server: /' || true
delivered=$(tail -1 "$log/client" | sed -n 's/.*delivered=\([0-9]*\).*/\1/p')
echo "lost=$((count - ${delivered:-0}))"
rm -rf "$log"
