#!/bin/bash
# Profile the edge under one `trunkgate bench` load with perf (software clock: works without a
# PMU) and print the top functions by self time and by shared object. Bounded, loopback only.
# Usage: bench/profile.sh options|hs-rsa|hs-ecdhe|calls [seconds]
# Env: TRUNKGATE (binary), KEEP=1 keeps the work dir (perf.data, edge log).
set -u
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/.." && pwd)
WHAT=${1:-options}; SECS=${2:-8}; PB=${PORT_BASE:-26000}
command -v perf >/dev/null || { echo "needs perf (Debian linux-perf); else use valgrind --tool=callgrind on a bounded run"; exit 2; }
if [ -z "${TRUNKGATE:-}" ]; then (cd "$ROOT" && timeout 1800 cargo build --release -q -p trunkgate) || exit 2; TRUNKGATE="$ROOT/target/release/trunkgate"; fi
TG=$TRUNKGATE; W=$(mktemp -d /tmp/trunkgate-profile.XXXXXX)
E_TLS=$((PB+61)); E_UDP=$((PB+60)); A_UDP=$((PB+80)); A_TLS=$((PB+81))
"$TG" bench setup --dir "$W" --edge-tls-port $E_TLS --edge-udp-port $E_UDP --answer-tls-port $A_TLS --answer-udp-port $A_UDP >/dev/null || exit 2
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; return 1; }
AW=; if [ "$WHAT" = calls ]; then
  timeout 300 "$TG" bench answer --udp 127.0.0.1:$A_UDP --tls 127.0.0.1:$A_TLS --cert "$W/cloud.trunkgate.test.chain.pem" \
    --key "$W/cloud.trunkgate.test.key" --contact-host cloud.trunkgate.test:$A_TLS -d 200 > "$W/answer.log" 2>&1 & AW=$!; wait_port $A_TLS; fi
RUST_LOG=warn timeout 300 "$TG" serve --config "$W/edge.toml" > "$W/edge.log" 2>&1 & EW=$!
wait_port $E_TLS || { echo "edge did not start"; exit 1; }
EP=$(pgrep -P $EW | head -1)
case $WHAT in
  options)  LOAD=(options 127.0.0.1:$E_TLS -c 1 -w 64 --tls-version 1.2) ;;
  hs-rsa)   LOAD=(handshakes 127.0.0.1:$E_TLS -c 8 --ciphers AES128-GCM-SHA256 --tls-version 1.2 --source 127.0.0.2-127.0.0.9) ;;
  hs-ecdhe) LOAD=(handshakes 127.0.0.1:$E_TLS -c 8 --ciphers ECDHE-RSA-AES256-GCM-SHA384 --groups P-384 --tls-version 1.2 --source 127.0.0.2-127.0.0.9) ;;
  calls)    LOAD=(calls 127.0.0.1:$E_UDP -t udp -w 50) ;;
  *) echo "unknown load $WHAT"; kill $EW; exit 2 ;;
esac
timeout $((SECS + 60)) "$TG" bench "${LOAD[@]}" -d "$SECS" --quiet --server-pid "$EP" > "$W/load.txt" 2>&1 &
LW=$!
sleep 1
timeout $((SECS + 30)) perf record -q -e cpu-clock -F 1999 -g -p "$EP" -o "$W/perf.data" -- sleep $((SECS - 2)) 2>/dev/null
wait $LW; cat "$W/load.txt"
kill $EW 2>/dev/null; [ -n "$AW" ] && kill $AW 2>/dev/null; wait 2>/dev/null
echo "== top functions by self time (edge, $WHAT) =="
perf report -i "$W/perf.data" --no-children --sort symbol --stdio 2>/dev/null | grep -v '^#' | grep '%' | grep -v '^ *-' | grep -v '^ *|' | head -${TOP:-30}
echo "== by shared object =="
perf report -i "$W/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -v '^#' | grep '%' | grep -v '^ *|' | grep -v '^ *-' | head -8
[ "${KEEP:-0}" = 1 ] && echo "kept $W" || rm -rf "$W"
