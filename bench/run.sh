#!/bin/bash
# Side-by-side benchmark: the trunkgate edge (A) and Kamailio 5.6 (B) under the same
# `trunkgate bench` load, alternating A/B/A/B, fresh server per run. Prints, per scenario and
# run, the successful operations per core-second of *server* CPU (utime+stime of the server
# process and its descendants, /proc/PID/stat) and the ratio A/B of the means. Bounded: every
# child runs under `timeout`, every load has a count and a duration. Loopback only. Not a test.
#
# Usage: bench/run.sh [scenario ...]     scenarios: options calls handshakes idle (default: all)
# Env:   REPS=2  DUR=8 (s per load)  IDLE_N=10000  IDLE_BIG=100000 (tried when ulimit -n allows)
#        TRUNKGATE=path/to/trunkgate (default: cargo build --release -p trunkgate)
#        KEEP=1 keeps the work directory; PORT_BASE=25000
set -u
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/.." && pwd)
REPS=${REPS:-2}; DUR=${DUR:-8}; IDLE_N=${IDLE_N:-10000}; IDLE_BIG=${IDLE_BIG:-100000}; PB=${PORT_BASE:-25000}
SCEN=${*:-"options calls handshakes idle"}
command -v kamailio >/dev/null || { echo "needs Debian packages kamailio kamailio-tls-modules"; exit 2; }
command -v jq >/dev/null || { echo "needs jq"; exit 2; }
if [ -z "${TRUNKGATE:-}" ]; then
  (cd "$ROOT" && timeout 1800 cargo build --release -q -p trunkgate) || exit 2
  TRUNKGATE="$ROOT/target/release/trunkgate"
fi
TG=$TRUNKGATE
W=$(mktemp -d /tmp/trunkgate-bench.XXXXXX)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$W"' EXIT
# Ports: edge TLS, edge inside UDP, openssl s_server TLS (reference), Kamailio TLS, Kamailio UDP, Kamailio TLS source, callee UDP/TLS.
E_TLS=$((PB+61)); E_UDP=$((PB+60)); S_TLS=$((PB+261)); K_TLS=$((PB+161)); K_UDP=$((PB+160)); K_SRC=$((PB+162)); A_UDP=$((PB+80)); A_TLS=$((PB+81))
SRC="127.0.0.2-127.0.0.9"   # source addresses: 8 × ~28k ephemeral ports toward one server port
ulimit -n "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -n)
"$TG" bench setup --dir "$W" --edge-tls-port $E_TLS --edge-udp-port $E_UDP --answer-tls-port $A_TLS --answer-udp-port $A_UDP >/dev/null || exit 2
P=$W; PEER=cloud.trunkgate.test; SRV=edge.bench.test
SUITES="ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES256-SHA:AES256-GCM-SHA384:AES128-GCM-SHA256:AES256-SHA256:AES256-SHA"

# --- Kamailio configurations (same job as the edge: TLS server answering OPTIONS; stateful UDP->TLS relay)
cat > "$W/k-tls.cfg" <<EOF
[server:default]
method = TLSv1.2
verify_certificate = no
require_certificate = no
certificate = $P/$SRV.chain.pem
private_key = $P/$SRV.key
cipher_list = $SUITES
[client:default]
method = TLSv1.2
verify_certificate = yes
require_certificate = yes
ca_list = $P/root.pem
cipher_list = $SUITES
EOF
cat > "$W/kamailio.cfg" <<EOF
#!KAMAILIO
debug=1
log_stderror=yes
fork=yes
children=1
tcp_children=1
enable_tls=yes
auto_aliases=no
dns=no
rev_dns=no
use_dns_cache=off
listen=tls:127.0.0.1:$K_TLS
listen=udp:127.0.0.1:$K_UDP
listen=tls:127.0.0.1:$K_SRC
tcp_connection_lifetime=3600
tcp_max_connections=200000
tls_max_connections=200000
open_files_limit=$NOFILE
loadmodule "tls.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "siputils.so"
loadmodule "textops.so"
loadmodule "maxfwd.so"
loadmodule "pv.so"
modparam("tls", "config", "$W/k-tls.cfg")
modparam("tm", "fr_timer", 5000)
request_route {
    if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
    if (has_totag()) {
        if (loose_route()) { t_relay(); exit; }
        if (is_method("ACK")) { if (t_check_trans()) t_relay(); exit; }
        sl_send_reply("404", "Not here"); exit;
    }
    if (is_method("CANCEL")) { if (t_check_trans()) t_relay(); exit; }
    if (is_method("OPTIONS")) { sl_send_reply("200", "OK"); exit; }
    if (is_method("INVITE")) {
        record_route();
        \$du = "sip:127.0.0.1:$A_TLS;transport=tls";
        if (!t_relay()) sl_reply_error();
        exit;
    }
    sl_send_reply("404", "Not here");
}
EOF

wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; return 1; }
SERVER_WRAP=; SERVER_PID=; ANSWER_WRAP=
start_server() {  # edge|kamailio
  case $1 in
    edge)
      RUST_LOG=warn timeout 900 "$TG" serve --config "$W/edge.toml" > "$W/edge.log" 2>&1 &
      SERVER_WRAP=$!; wait_port $E_TLS || { echo "edge did not start:"; tail "$W/edge.log"; return 1; }
      SERVER_PID=$(pgrep -P "$SERVER_WRAP" | head -1) ;;
    kamailio)
      rm -rf "$W/krun"; mkdir -p "$W/krun"
      timeout 900 kamailio -f "$W/kamailio.cfg" -DD -E -m "${KMEM:-1024}" -M 16 -Y "$W/krun" -P "$W/krun/k.pid" > "$W/kamailio.log" 2>&1 &
      SERVER_WRAP=$!; wait_port $K_TLS || { echo "kamailio did not start:"; tail "$W/kamailio.log"; return 1; }
      SERVER_PID=$(pgrep -P "$SERVER_WRAP" | head -1) ;;
    s_server)  # the reference: OpenSSL's own server, on the library `openssl speed` measured
      awk '/BEGIN CERT/ {n++} n >= 2' "$P/$SRV.chain.pem" > "$W/$SRV.intermediates.pem"
      timeout 900 openssl s_server -accept 127.0.0.1:$S_TLS -cert "$P/$SRV.chain.pem" -cert_chain "$W/$SRV.intermediates.pem" \
        -key "$P/$SRV.key" -tls1_2 -cipher "$SUITES" -groups P-384 -quiet < /dev/null > "$W/s_server.log" 2>&1 &
      SERVER_WRAP=$!; wait_port $S_TLS || { echo "openssl s_server did not start:"; tail "$W/s_server.log"; return 1; }
      SERVER_PID=$(pgrep -P "$SERVER_WRAP" | head -1) ;;
  esac
  sleep 0.5
}
stop_server() { [ -n "$SERVER_WRAP" ] && kill "$SERVER_WRAP" 2>/dev/null; wait "$SERVER_WRAP" 2>/dev/null; SERVER_WRAP=; sleep 0.5; }
start_answer() {  # contact host
  timeout 900 "$TG" bench answer --udp 127.0.0.1:$A_UDP --tls 127.0.0.1:$A_TLS --cert "$P/$PEER.chain.pem" --key "$P/$PEER.key" \
    --contact-host "$1" -d 600 > "$W/answer.log" 2>&1 &
  ANSWER_WRAP=$!; wait_port $A_TLS
}
stop_answer() { [ -n "$ANSWER_WRAP" ] && kill "$ANSWER_WRAP" 2>/dev/null; wait "$ANSWER_WRAP" 2>/dev/null; ANSWER_WRAP=; }
trap 'stop_server; stop_answer; [ "${KEEP:-0}" = 1 ] || rm -rf "$W"' EXIT

# run_load NAME SERVER ARGS... -> prints one line; JSON kept in $W/NAME-SERVER-REP.json
declare -A SUM
run_load() {
  local name=$1 who=$2 rep=$3; shift 3
  local out="$W/$name-$who-$rep.json"
  timeout $((DUR + 200)) "$TG" bench "$@" --json --quiet --server-pid "$SERVER_PID" > "$out" 2> "$W/$name-$who-$rep.err"
  local v; v=$(jq -r '[.ok, .failed, .rate_per_s, .server.cpu_s, .server.ops_per_cpu_s, .latency.p50_ms, .latency.p99_ms, .client_cores, (.failures|tostring)] | @tsv' "$out" 2>/dev/null)
  if [ -z "$v" ]; then echo "  $name $who run $rep: no report ($(tail -1 "$W/$name-$who-$rep.err"))"; return; fi
  read -r ok failed rate cpu per p50 p99 cc fails <<<"$v"
  printf "  %-10s %-9s run %s  ok %7d failed %5d  %8.0f/s  server %6.2f CPU s → %8.0f per core-second  p50 %7.2f ms p99 %7.2f ms  client %.2f cores %s\n" \
    "$name" "$who" "$rep" "$ok" "$failed" "$rate" "$cpu" "$per" "$p50" "$p99" "$cc" "$([ "$failed" = 0 ] || echo "$fails")"
  SUM[$name-$who]=$(echo "${SUM[$name-$who]:-0} + $per" | bc -l)
}
ratio() {  # name goal-text
  local a=${SUM[$1-edge]:-0} b=${SUM[$1-kamailio]:-0}
  a=$(echo "$a / $REPS" | bc -l); b=$(echo "$b / $REPS" | bc -l)
  printf "  => %-10s edge %8.0f, kamailio %8.0f per core-second; ratio %s  (%s)\n" "$1" "$a" "$b" \
    "$( [ "$(echo "$b > 0" | bc)" = 1 ] && printf '%.2f×' "$(echo "$a / $b" | bc -l)" || echo n/a)" "$2"
}
# reference NAME LOAD-ARGS (port $S_TLS): the same load on `openssl s_server`, REPS runs
reference() {
  local name=$1; shift
  for rep in $(seq "$REPS"); do start_server s_server && run_load "$name" s_server "$rep" "$@"; stop_server; done
}
# A/B/A/B over one scenario: ab NAME GOAL LOAD-ARGS-FOR-EDGE -- LOAD-ARGS-FOR-KAMAILIO
ab() {
  local name=$1 goal=$2; shift 2
  local ea=() ka=() side=e
  for x in "$@"; do if [ "$x" = "--" ]; then side=k; elif [ $side = e ]; then ea+=("$x"); else ka+=("$x"); fi; done
  for rep in $(seq "$REPS"); do
    start_server edge && run_load "$name" edge "$rep" "${ea[@]}"; stop_server
    start_server kamailio && run_load "$name" kamailio "$rep" "${ka[@]}"; stop_server
  done
  ratio "$name" "$goal"
}

echo "trunkgate bench: edge (A) vs Kamailio $(kamailio -v 2>/dev/null | head -1 | awk '{print $3}') (B), $(nproc) CPUs, $(date -u +%FT%TZ); REPS=$REPS DUR=${DUR}s"
echo "  (figures: successful operations per second of server CPU; the load generator's own CPU is shown as 'client')"
for s in $SCEN; do case $s in
options)
  echo "OPTIONS over one TLS connection (window 64) — goal 3× Kamailio"
  ab options "goal ≥ 3×" options 127.0.0.1:$E_TLS -c 1 -w 64 -d "$DUR" -n 2000000 --tls-version 1.2 \
     -- options 127.0.0.1:$K_TLS -c 1 -w 64 -d "$DUR" -n 2000000 --tls-version 1.2 ;;
calls)
  echo "Calls INVITE-200-ACK-BYE, UDP inside -> TLS trunk (callee: trunkgate bench answer over TLS), 50 at once — goal 1.5× Kamailio"
  for rep in $(seq "$REPS"); do
    start_answer "$PEER:$A_TLS"; start_server edge && run_load calls edge "$rep" calls 127.0.0.1:$E_UDP -t udp -w 50 -d "$DUR" -n 400000; stop_server; stop_answer
    start_answer "127.0.0.1:$A_TLS"; start_server kamailio && run_load calls kamailio "$rep" calls 127.0.0.1:$K_UDP -t udp -w 50 -d "$DUR" -n 400000; stop_server; stop_answer
  done
  ratio calls "goal ≥ 1.5×" ;;
handshakes)
  # The bounds move with the machine's noise as much as the handshakes do, so they are sampled
  # between the runs (openssl speed on the system OpenSSL, `trunkgate bench speed` on the linked
  # one; 2 s each) and every ratio below uses their median.
  S_RSA=(); S_ECDH=(); S_LE=(); S_LR=()
  speed_sample() {
    local sp ls
    sp=$(timeout 60 openssl speed -seconds 2 rsa2048 ecdhp384 2>/dev/null)
    S_RSA+=("$(echo "$sp" | awk '/^rsa 2048 bits/ {print $6}')"); S_ECDH+=("$(echo "$sp" | awk '/ecdh \(nistp384\)/ {print $(NF)}')")
    ls=$("$TG" bench speed --seconds 2 --json 2>/dev/null)
    S_LE+=("$(echo "$ls" | jq -r '.bound_ecdhe_rsa_p384 // 0')"); S_LR+=("$(echo "$ls" | jq -r '.bound_tls_rsa // 0')")
    printf "  bound sample %d: openssl speed RSA-2048 sign %.0f/s, ECDH P-384 %.0f op/s; linked library (%s) bound ECDHE-RSA %.0f/s, TLS_RSA %.0f/s\n" \
      "${#S_RSA[@]}" "${S_RSA[-1]}" "${S_ECDH[-1]}" "$(echo "$ls" | jq -r .library)" "${S_LE[-1]}" "${S_LR[-1]}"
  }
  median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
  ECDHE=(--ciphers ECDHE-RSA-AES256-GCM-SHA384 --groups P-384 --tls-version 1.2 --source $SRC)
  RSAKX=(--ciphers AES128-GCM-SHA256 --tls-version 1.2 --source $SRC)
  echo "Full TLS 1.2 handshakes per core-second of server CPU — goal 85% of the crypto bound (summary at the end)"
  speed_sample
  echo "ECDHE-RSA-AES256-GCM-SHA384 on P-384, handshake + one OPTIONS per connection, 8 at once"
  ab hs-ecdhe "vs Kamailio" handshakes 127.0.0.1:$E_TLS -c 8 -d "$DUR" -n 100000 "${ECDHE[@]}" -- handshakes 127.0.0.1:$K_TLS -c 8 -d "$DUR" -n 100000 "${ECDHE[@]}"
  speed_sample
  echo "TLS_RSA_WITH_AES_128_GCM_SHA256 (AES128-GCM-SHA256), handshake + one OPTIONS per connection"
  ab hs-rsa "vs Kamailio" handshakes 127.0.0.1:$E_TLS -c 8 -d "$DUR" -n 100000 "${RSAKX[@]}" -- handshakes 127.0.0.1:$K_TLS -c 8 -d "$DUR" -n 100000 "${RSAKX[@]}"
  speed_sample
  echo "The same two, handshake only (--handshake-only: connect, full handshake, close_notify, close; no OPTIONS)"
  ab hs-ecdhe-only "vs Kamailio" handshakes 127.0.0.1:$E_TLS -c 8 -d "$DUR" -n 100000 --handshake-only "${ECDHE[@]}" \
     -- handshakes 127.0.0.1:$K_TLS -c 8 -d "$DUR" -n 100000 --handshake-only "${ECDHE[@]}"
  ab hs-rsa-only "vs Kamailio" handshakes 127.0.0.1:$E_TLS -c 8 -d "$DUR" -n 100000 --handshake-only "${RSAKX[@]}" \
     -- handshakes 127.0.0.1:$K_TLS -c 8 -d "$DUR" -n 100000 --handshake-only "${RSAKX[@]}"
  speed_sample
  echo "Reference: the handshake-only loads on \`openssl s_server\` (system OpenSSL — the library \`openssl speed\` measures —, one thread, session tickets on like the edge)"
  reference hs-ecdhe-only handshakes 127.0.0.1:$S_TLS -c 8 -d "$DUR" -n 100000 --handshake-only "${ECDHE[@]}"
  reference hs-rsa-only handshakes 127.0.0.1:$S_TLS -c 8 -d "$DUR" -n 100000 --handshake-only "${RSAKX[@]}"
  speed_sample
  RSA=$(median "${S_RSA[@]}"); ECDH=$(median "${S_ECDH[@]}"); L_E=$(median "${S_LE[@]}"); L_R=$(median "${S_LR[@]}")
  BOUND_E=$(echo "1 / (1/$RSA + 1/$ECDH)" | bc -l); BOUND_E2=$(echo "1 / (1/$RSA + 2/$ECDH)" | bc -l); BOUND_R=$RSA
  printf "Bounds (median of %d samples): openssl speed RSA-2048 sign %.0f/s, ECDH P-384 %.0f op/s →\n" "${#S_RSA[@]}" "$RSA" "$ECDH"
  printf "  ECDHE-RSA P-384 %.0f/s counting one ECDH op (1/(1/sign+1/ecdh)), %.0f/s counting the two scalar multiplications a server does (1/(1/sign+2/ecdh)); TLS_RSA %.0f/s (one RSA-2048 private operation)\n" \
    "$BOUND_E" "$BOUND_E2" "$BOUND_R"
  printf "  on the linked library (trunkgate bench speed: sign + keygen + derive): ECDHE-RSA P-384 %.0f/s, TLS_RSA %.0f/s\n" "$L_E" "$L_R"
  pct() { [ "$(echo "${2:-0} > 0" | bc)" = 1 ] && printf '%5.0f %%' "$(echo "100 * $1 / $2" | bc -l)" || printf '    –  '; }
  printf "  %-14s %-9s %10s   %-37s %s\n" scenario server "per core-s" "vs openssl speed bound" "vs linked-library bound"
  for name in hs-ecdhe hs-rsa hs-ecdhe-only hs-rsa-only; do
    for who in edge kamailio s_server; do
      [ -n "${SUM[$name-$who]:-}" ] || continue
      m=$(echo "${SUM[$name-$who]} / $REPS" | bc -l)
      case $name in
        hs-ecdhe*) printf "  %-14s %-9s %10.0f   %s / %s (one/two ECDH)   %s\n" "$name" "$who" "$m" "$(pct "$m" "$BOUND_E")" "$(pct "$m" "$BOUND_E2")" "$(pct "$m" "$L_E")" ;;
        *)         printf "  %-14s %-9s %10.0f   %s                              %s\n" "$name" "$who" "$m" "$(pct "$m" "$BOUND_R")" "$(pct "$m" "$L_R")" ;;
      esac
    done
  done ;;
idle)
  for n in $IDLE_N $IDLE_BIG; do
    if [ $((n + 200)) -gt "$NOFILE" ]; then
      echo "Idle TLS connections: $n skipped — ulimit -n is $NOFILE here (hard limit; each side needs one descriptor per connection)"
      continue
    fi
    echo "Resident memory per idle TLS connection, $n open (TLS 1.2, AES256-GCM-SHA384; VmRSS and PSS growth / connections) — goal ≤ 16 kB"
    for rep in $(seq "$REPS"); do
      for who in edge kamailio; do
        port=$E_TLS; [ $who = kamailio ] && port=$K_TLS
        start_server $who || continue
        out="$W/idle-$n-$who-$rep.json"
        timeout 900 "$TG" bench idle 127.0.0.1:$port -c "$n" -w 16 -d 600 --hold-ms 500 --ciphers AES256-GCM-SHA384 --tls-version 1.2 \
          --source $SRC --json --quiet --server-pid "$SERVER_PID" > "$out" 2> "$W/idle.err"
        jq -r --arg who $who --arg rep $rep '"  idle \(.open_connections) \($who) run \($rep): VmRSS \(.server.rss_kb_before) → \(.server.rss_kb_after) kB, PSS \(.server.pss_kb_before) → \(.server.pss_kb_after) kB → \(.server_rss_bytes_per_conn|floor) B (RSS) / \(.server_pss_bytes_per_conn|floor) B (PSS) per connection; marginal (\(.open_at_mid) → \(.open_connections)) \(.server_rss_bytes_per_conn_marginal // 0|floor) B / \(.server_pss_bytes_per_conn_marginal // 0|floor) B; failed \(.failed) \(.failures|tostring)"' "$out" 2>/dev/null || echo "  idle $who: no report"
        stop_server
      done
    done
  done ;;
*) echo "unknown scenario $s" ;;
esac; done
