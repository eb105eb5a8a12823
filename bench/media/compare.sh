#!/bin/bash
# Relay throughput and latency through real UDP sockets on loopback: trunkgate's relay vs
# rtpengine (Debian rtpengine-daemon, userspace forwarding: --table=-1), one call, plain RTP in
# on leg A, SRTP AES_CM_128_HMAC_SHA1_80 out on leg B, 172-byte packets (G.711, 20 ms).
# The relay under test runs on CPU 0 (one thread), the load tool on CPU 1.
# For each rate (packets/s, "max" = as fast as the sender can) a fresh relay and call:
# prints delivered packets/s, loss and one-way latency p50/p99 (rate-limited steps).
# Needs: cargo, rtpengine-daemon, python3, taskset. Usage: bench/media/compare.sh [SECONDS] [RATES...]
set -u
cd "$(dirname "$0")/../.."
SECS=${1:-2}; shift || true
RATES=${*:-5000 10000 20000 40000 80000 max}
cargo build -q --release -p trunkgate-media --example relay_load || exit 1
BIN=target/release/examples/relay_load
PBX=127.0.0.1:29500; CARRIER=127.0.0.1:29510; NG=127.0.0.1:22222
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; pids=(); }
trap cleanup EXIT
load() { # EDGE_A RATE
  local r=(); [ "$2" = max ] || r=(--rate "$2")
  timeout $((SECS + 20)) taskset -c 1 $BIN load --from $PBX --to "$1" --sink $CARRIER --seconds "$SECS" "${r[@]}"
}
row() { # NAME RATE OUTPUT
  local rx loss lat
  rx=$(echo "$3" | sed -n 's/.*received=[0-9]* (\([0-9]*\)\/s.*/\1/p')
  loss=$(echo "$3" | sed -n 's/.*loss=\([0-9.]*%\).*/\1/p')
  lat=$(echo "$3" | sed -n 's/latency_us p50=\([0-9.]*\) p99=\([0-9.]*\).*/\1 \/ \2/p')
  printf "%-10s %8s %12s %8s   %s\n" "$1" "$2" "${rx:-0}" "${loss:--}" "${lat:--}"
}
printf "%-10s %8s %12s %8s   %s\n" relay offered delivered/s loss "latency p50 / p99 (us)"
for rate in $RATES; do
  out=$(mktemp)
  timeout $((SECS + 30)) taskset -c 0 $BIN serve --pbx $PBX --carrier $CARRIER --seconds $((SECS + 3)) > "$out" 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do grep -q edge_a "$out" && break; sleep 0.1; done
  ea=$(sed -n 's/.*edge_a=\([^ ]*\).*/\1/p' "$out")
  row trunkgate "$rate" "$(load "$ea" "$rate")"
  cleanup; rm -f "$out"

  timeout $((SECS + 30)) taskset -c 0 rtpengine --table=-1 --interface=127.0.0.1 --listen-ng=$NG \
    --port-min=29100 --port-max=29199 --foreground --log-stderr --num-threads=1 -L 3 >/dev/null 2>&1 &
  pids+=($!)
  line=""
  for _ in $(seq 50); do line=$(python3 bench/media/ng.py $NG 29500 29510 2>/dev/null) && break; sleep 0.1; done
  ea=$(echo "$line" | sed -n 's/.*edge_a=\([^ ]*\).*/\1/p')
  if [ -n "$ea" ]; then row rtpengine "$rate" "$(load "$ea" "$rate")"; else echo "rtpengine did not answer on $NG"; fi
  cleanup
done
