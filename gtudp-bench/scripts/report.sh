#!/usr/bin/env bash
# Regenerates BENCHMARKS.md, and the README's table of headline figures,
# from one run of every benchmark on this machine.
#
#   gtudp-bench/scripts/report.sh            # the full run (about a quarter of an hour on 2 cores)
#   gtudp-bench/scripts/report.sh --quick    # a smoke test (a few minutes; the spoofed floods take most)
#   options: --output FILE (the page; default BENCHMARKS.md, or
#            target/report/quick/BENCHMARKS.md with --quick)
#            --readme FILE | --no-readme (the README whose figures table is
#            replaced; default README.md, none with --quick)
#
# Builds everything once (release), then runs each measurement in turn, each
# under `flock /tmp/gtudp-timing.lock` (the machine may be shared: other
# timings wait for the lock, and each measurement records the load average
# at its start and end). Each measurement's command, output, exit status,
# wall time and load go to target/report/MODE/; report.py then writes the
# page from them. A measurement that fails or times out shows as such in the
# page, with "n/a" for the figures it did not print; a section whose
# prerequisites are missing (root and nftables for the network namespace,
# valgrind, a Python with the gtudp module) is marked "skipped" with the
# reason. The Python sections use $GTUDP_PYTHON, or target/bench-venv if it
# exists (python3 -m venv target/bench-venv && target/bench-venv/bin/pip
# install maturin; this script then installs ./gtudp-python into it).
set -euo pipefail
cd "$(dirname "$0")/../.."

quick=0
output=
readme=default
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1; shift ;;
        --output) output=$2; shift 2 ;;
        --readme) readme=$2; shift 2 ;;
        --no-readme) readme=; shift ;;
        -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
        *) echo "report.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ "$quick" = 1 ]; then
    mode=quick
    run=target/report/quick
    output=${output:-$run/BENCHMARKS.md}
    [ "$readme" = default ] && readme=
else
    mode=full
    run=target/report/full
    output=${output:-BENCHMARKS.md}
    [ "$readme" = default ] && readme=README.md
fi
lock=/tmp/gtudp-timing.lock
bin="${CARGO_TARGET_DIR:-target}/release"
rm -rf "$run"
mkdir -p "$run"
: >"$run/order"
started=$(date +%s)

# One argument as it would be typed (single-quoted when it needs quoting).
shell_word() {
    if [[ "$1" =~ ^[A-Za-z0-9_./=:,+%@-]+$ ]]; then
        printf '%s' "$1"
    else
        printf "'%s'" "${1//\'/\'\\\'\'}"
    fi
}
shell_line() {
    local first=1 word
    for word in "$@"; do
        [ "$first" = 1 ] || printf ' '
        first=0
        shell_word "$word"
    done
    printf '\n'
}

# measure NAME LIMIT_S COMMAND...: runs COMMAND under the timing lock, at
# most LIMIT_S seconds; records its command line, output, status, wall time
# and the load average at its start and end (taken inside the lock).
measure() {
    local name=$1 limit=$2
    shift 2
    echo "$name" >>"$run/order"
    shell_line "$@" >"$run/$name.cmd"
    echo "== $name: $(cat "$run/$name.cmd")" >&2
    # -o: the command's children do not inherit the lock (a server left
    # behind must not hold it).
    flock -o "$lock" bash -c '
        out=$1 limit=$2; shift 2
        cut -d" " -f1-3 /proc/loadavg >"$out.load_start"
        start=$(date +%s.%N)
        status=0
        timeout --kill-after=10 "$limit" "$@" >"$out.out" 2>&1 </dev/null || status=$?
        end=$(date +%s.%N)
        cut -d" " -f1-3 /proc/loadavg >"$out.load_end"
        echo "$status" >"$out.status"
        printf "%.3f\n" "$(echo "$end - $start" | bc)" >"$out.seconds"
    ' _ "$run/$name" "$limit" "$@"
    echo "   status $(cat "$run/$name.status"), $(cat "$run/$name.seconds") s" >&2
}

# The same, for a script that takes the timing lock itself, per measurement.
measure_self_locking() {
    local name=$1 limit=$2
    shift 2
    echo "$name" >>"$run/order"
    shell_line "$@" >"$run/$name.cmd"
    echo "== $name: $(cat "$run/$name.cmd")" >&2
    cut -d" " -f1-3 /proc/loadavg >"$run/$name.load_start"
    local start end status=0
    start=$(date +%s.%N)
    timeout --kill-after=10 "$limit" "$@" >"$run/$name.out" 2>&1 </dev/null || status=$?
    end=$(date +%s.%N)
    cut -d" " -f1-3 /proc/loadavg >"$run/$name.load_end"
    echo "$status" >"$run/$name.status"
    printf "%.3f\n" "$(echo "$end - $start" | bc)" >"$run/$name.seconds"
    echo "self-locking" >"$run/$name.locking"
    echo "   status $status, $(cat "$run/$name.seconds") s" >&2
}

# skip NAME WHY: the measurement NAME did not run.
skip() {
    echo "$1" >>"$run/order"
    echo "$2" >"$run/$1.skipped"
    echo "== $1: skipped: $2" >&2
}

# pick FULL QUICK: the value for this mode.
pick() { if [ "$quick" = 1 ]; then echo "$2"; else echo "$1"; fi; }

# --- the machine and the commit
{
    echo "mode: $mode"
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    dirty=
    git diff --quiet HEAD -- . ':!BENCHMARKS.md' ':!README.md' ':!docs/figures' 2>/dev/null || dirty=" (dirty: uncommitted changes)"
    echo "commit: $(git rev-parse --short HEAD)$dirty"
    echo "nproc: $(nproc)"
    echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    echo "kernel: $(uname -r)"
    echo "rustc: $(rustc --version)"
    echo "python: $(python3 --version 2>&1)"
    echo "rmem: $(cat /proc/sys/net/core/rmem_default) / $(cat /proc/sys/net/core/rmem_max)"
    echo "load_start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$run/meta"

# --- build once
# One package at a time, as the scripts below build them, so that their own
# `cargo build` finds everything fresh (building packages together unifies
# their features and gives other artifacts).
build_cmds=(
    "cargo build --release -p gtudp-bench"
    "cargo build --release -p gtudp-tokio --examples"
    "cargo build --release -p gtudp-mio --examples"
    "cargo build --release -p gtudp-proto --features sim --example wan"
    "cargo bench -p gtudp-proto --no-run"
)
build_start=$(date +%s)
for cmd in "${build_cmds[@]}"; do
    echo "== build: $cmd" >&2
    # shellcheck disable=SC2086
    $cmd --quiet
    echo "$cmd" >>"$run/build"
done

# Python: $GTUDP_PYTHON as it is, or target/bench-venv with this commit's
# module installed into it.
python=${GTUDP_PYTHON:-}
python_why="no Python with the gtudp module: set GTUDP_PYTHON, or create target/bench-venv (python3 -m venv target/bench-venv && target/bench-venv/bin/pip install maturin)"
if [ -z "$python" ] && [ -x target/bench-venv/bin/python ]; then
    echo "== build: pip install ./gtudp-python into target/bench-venv" >&2
    if PATH="$(pwd)/target/bench-venv/bin:$PATH" target/bench-venv/bin/python -m pip --quiet --disable-pip-version-check --no-input install \
        --no-build-isolation --no-deps --force-reinstall ./gtudp-python >"$run/pip.log" 2>&1; then
        python=target/bench-venv/bin/python
        echo "target/bench-venv/bin/python -m pip install --no-build-isolation --no-deps --force-reinstall ./gtudp-python" >>"$run/build"
    else
        python_why="pip install ./gtudp-python into target/bench-venv failed (see $run/pip.log)"
    fi
fi
if [ -n "$python" ] && ! "$python" -c 'import gtudp' 2>/dev/null; then
    python=
fi
echo "$(( $(date +%s) - build_start ))" >"$run/build_seconds"

# --- the measurements, in page order

# One-way throughput against raw UDP and other libraries.
measure compare_256 600 "$bin/compare" $(pick "--count 50000 --runs 3" "--quick --runs 1")
measure compare_1024 600 "$bin/compare" --size 1024 $(pick "--count 50000 --runs 3" "--quick --runs 1 --only raw-udp,gtudp-tokio")
# A sustained stream, and a 100,000-message one-way burst beside a raw blast.
measure sustained 900 "$bin/compare" --only raw-udp,gtudp-tokio --size 64 --concurrency 1024 \
    $(pick "--count 50000 --sustained 1000000 --runs 5" "--count 5000 --sustained 50000 --runs 1")
measure oneway_100k 600 "$bin/compare" --only raw-udp,gtudp-tokio --size 64 --concurrency 1024 \
    $(pick "--count 100000 --runs 3" "--count 10000 --runs 1")
# Echo, 1 and 64 in flight.
measure echo 900 "$bin/echo" $(pick "--count 20000 --rounds 3" "--count 2000 --rounds 1")
# The blocking socket with BlockingOptions::spin (opt-in): a receive polls
# 50 µs before it sleeps.
measure echo_spin 600 "$bin/echo" --only raw-std,gtudp-blocking --spin-us 50 \
    $(pick "--count 20000 --rounds 3" "--count 2000 --rounds 1")
# Where one echo's time goes: each step's median offset, per socket.
for impl in tokio raw-tokio blocking raw-std; do
    measure "echo_trace_$impl" 300 "$bin/echo_trace" --impl "$impl" --count $(pick 5000 500)
done
# The core alone.
if [ "$quick" = 1 ]; then
    measure criterion 600 cargo bench -q -p gtudp-proto --bench endpoint -- \
        --warm-up-time 1 --measurement-time 2 'exchange_64B_x64(_fresh_pair)?$|steady'
    measure curve 600 cargo bench -q -p gtudp-proto --bench curve -- pair 10000
else
    measure criterion 900 cargo bench -q -p gtudp-proto --bench endpoint -- 'exchange_64B_x64(_fresh_pair)?$|steady'
    measure curve 900 cargo bench -q -p gtudp-proto --bench curve
fi
if command -v valgrind >/dev/null; then
    measure instructions 900 bash gtudp-bench/scripts/instructions_per_message.sh pair "$(pick 100000 10000)"
    measure stages 900 bash gtudp-bench/scripts/stages_per_message.sh pair "$(pick 100000 10000)"
    measure server_instructions 900 bash gtudp-bench/scripts/server_per_message.sh $(pick "10000 20" "2000 10")
else
    skip instructions "valgrind is not installed (apt-get install valgrind)"
    skip stages "valgrind is not installed (apt-get install valgrind)"
    skip server_instructions "valgrind is not installed (apt-get install valgrind)"
fi
# Virtual time: the WAN matrix (seed 1) and one plot.
measure wan_matrix 1500 "$bin/examples/wan" --matrix --seed 1 $(pick "" "--seconds 1")
plot=$(pick docs/figures/bbr-vs-aimd.svg "$run/bbr-vs-aimd.svg")
measure wan_plot 600 "$bin/examples/wan" --flow-congestion bbr,aimd --rtt-ms 20 --rate-mbit 100 \
    --loss 0 --seconds "$(pick 20 2)" --seed 1 --plot "$plot"
echo "$plot" >"$run/wan_plot.file"
# Large messages (issue 24), virtual time: sizes and carriages on 20 ms,
# 100 Mbit/s, seed 1.
large_case=0
for case in "one 1024 0" "fragments 65536 0" "fragments 65536 0.1" "ip-fragments 60000 0.1" \
    "fragments 1048576 0"; do
    # shellcheck disable=SC2086
    set -- $case
    large_case=$((large_case + 1))
    measure "wan_large_$large_case" 600 "$bin/examples/wan" --rtt-ms 20 --rate-mbit 100 --seed 1 \
        --carriage "$1" --size "$2" --loss "$3" $(pick "" "--seconds 2")
done
# The same on real sockets: 100 MB as 1 MiB messages through a lossy relay.
measure transfer 300 "$bin/examples/transfer" $(pick "" "--megabytes 10")
# Loss through a relay on loopback (lossy_demo), 3 runs each.
for i in $(seq 1 "$(pick 3 1)"); do
    measure "lossy_default.$i" 300 "$bin/examples/lossy_demo"
done
for i in $(seq 1 "$(pick 3 1)"); do
    measure "lossy_jitter.$i" 300 "$bin/examples/lossy_demo" --loss 0 --duplicate 0 --delay-ms 5
done
# Real loss in a network namespace.
netns_why=
if [ "$(id -u)" != 0 ]; then
    netns_why="needs root (network namespaces and nftables)"
elif ! command -v nft >/dev/null || ! command -v ip >/dev/null; then
    netns_why="needs nft (nftables) and ip (iproute2)"
fi
for loss in 10 0; do
    if [ -z "$netns_why" ]; then
        measure "netns_$loss" 900 bash gtudp-bench/scripts/netns_loss.sh "$loss" $(pick "10000 3" "2000 1")
    else
        skip "netns_$loss" "$netns_why"
    fi
done
# A server killed and restarted on the same port.
measure restart 300 bash gtudp-bench/scripts/restart_server.sh $(pick "50000 0.1 1" "5000 0.1 0.5")
# The sharded server (the script takes the timing lock per measurement).
# `tokio_threads`: the Tokio server with each shard on a thread of its own.
for server in tokio tokio_threads mio; do
    flags=(--server "${server%_threads}")
    [ "$server" = tokio_threads ] && flags+=(--shard-threads)
    if [ "$quick" = 1 ]; then
        measure_self_locking "sharded_$server" 300 bash gtudp-bench/scripts/sharded_server.sh \
            "${flags[@]}" --window 4 --runs 1 --secs 1 --shards "1 2"
    else
        measure_self_locking "sharded_$server" 900 bash gtudp-bench/scripts/sharded_server.sh \
            "${flags[@]}" --window 4 --runs 3
    fi
done
# Spoofed floods: the core alone, then real sockets.
measure flood 600 "$bin/flood" $(pick "" "--addresses 5000 --per-address 20")
measure hostile 2400 python3 gtudp-bench/scripts/hostile.py $(pick "--legit 2000" "--legit 500 --quick --server sink")
# Python.
if [ -n "$python" ]; then
    measure python_bench 600 "$python" gtudp-python/bench/bench.py \
        $(pick "--rounds 3" "--rounds 1 --bursts 1000 --echoes 500")
    measure python_aio 600 "$python" gtudp-python/bench/aio_rtt.py $(pick "--rounds 3" "--rounds 1 --count 500")
else
    skip python_bench "$python_why"
    skip python_aio "$python_why"
fi

{
    echo "load_end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "seconds: $(( $(date +%s) - started ))"
} >>"$run/meta"

# --- the page, and the README's figures
readme_args=()
[ -n "$readme" ] && readme_args=(--readme "$readme")
python3 gtudp-bench/scripts/report.py "$run" --output "$output" "${readme_args[@]}"
echo "report.sh: wrote $output${readme:+ and the figures of $readme} in $(( $(date +%s) - started )) s" >&2
