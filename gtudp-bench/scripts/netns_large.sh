#!/usr/bin/env bash
# Large messages over real packet loss on a 1,500-byte path (issue 24).
#
#   sudo gtudp-bench/scripts/netns_large.sh [LOSS_PERCENT] [MESSAGES] [MESSAGE_KIB]
#   (defaults: 10 % loss, 1000 messages of 64 KiB)
#
# Creates a network namespace whose loopback has an MTU of 1,500 bytes (a
# typical Ethernet path) and `gso_max_segs 1`, and an nftables rule that
# drops LOSS_PERCENT of the packets on the prerouting hook at priority
# -450, below IP defragmentation (-400): each IP fragment is dropped on its
# own, as on a real link. Inside it, the `transfer` example sends MESSAGES
# messages of MESSAGE_KIB KiB directly from client to server (no relay):
#
# 1. with the large-message extension (`--carriage fragments`): fragments of
#    one 1,452-byte datagram, each confirmed and resent on its own;
# 2. as one datagram per message that the kernel fragments
#    (`--carriage ip-fragments`), as the original gtUDP sends, for
#    comparison (at most 16 messages, all at once, of at most 63 KiB, the
#    UDP limit: most of them fail, each after its whole retry span).
#
# Each prints the example's result line (`messages= delivered= failed=
# received_once= repeats= corrupt= goodput_mbit= ...`).
#
# Needs root (namespaces, nftables); installs nftables with apt-get if `nft`
# is missing. CI does not run it.
set -euo pipefail
loss=${1:-10}
messages=${2:-1000}
kib=${3:-64}
ns=gtudp-large-$$
cd "$(dirname "$0")/../.."

if ! command -v nft >/dev/null; then
    echo "installing nftables" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables >/dev/null
fi
cargo build --quiet --release -p gtudp-tokio --example transfer
bin="${CARGO_TARGET_DIR:-target}/release"

cleanup() { ip netns del "$ns" 2>/dev/null || true; }
trap cleanup EXIT

ip netns add "$ns"
in_ns() { ip netns exec "$ns" "$@"; }
in_ns ip link set lo up
in_ns ip link set lo mtu 1500
in_ns ip link set lo gso_max_segs 1
in_ns nft -f - <<NFT
table inet gtudp_large {
    chain prerouting {
        type filter hook prerouting priority -450; policy accept;
        numgen random mod 100 < $loss drop
    }
}
NFT
echo "namespace $ns: lo MTU 1500, drops ${loss}% of packets before defragmentation"

echo "== large-message extension: $messages x $kib KiB"
in_ns "$bin/examples/transfer" --direct --carriage fragments --messages "$messages" \
    --message-kib "$kib" --in-flight 8 | tail -n 1
few=$((messages < 16 ? messages : 16))
# One UDP datagram carries at most 65,507 bytes: 63 KiB at most here.
ip_kib=$((kib < 63 ? kib : 63))
echo "== one datagram per message, fragmented by the kernel: $few x $ip_kib KiB"
# All at once: each that fails spends its whole retry span (about a minute).
line=$(in_ns timeout 240 "$bin/examples/transfer" --direct --carriage ip-fragments \
    --messages "$few" --message-kib "$ip_kib" --in-flight "$few" | tail -n 1) || true
echo "${line:-(no result within 240 s)}"
