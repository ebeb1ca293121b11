# Sourced by the profiling scripts: `bench_executable NAME` builds
# gtudp-proto's bench NAME (release) and prints the path of its executable.
bench_executable() {
    cargo bench -p gtudp-proto --bench "$1" --no-run --message-format=json 2>/dev/null \
        | python3 -c 'import json,sys
name = sys.argv[1]
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == name and m.get("executable"):
        print(m["executable"])' "$1"
}
