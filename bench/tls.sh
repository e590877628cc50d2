#!/usr/bin/env bash
# GM TLS against standard TLS through Ferry, in one run: bulk throughput and full handshakes for
#   native : TLS 1.3, TLS_AES_128_GCM_SHA256, P-256, ECDSA-P256 certificate (Deno's rustls)
#   gm13   : TLS 1.3, TLS_SM4_GCM_SM3, curveSM2, sm2sig_sm3 (Ferry's engine)
#   tlcp   : TLCP 1.1, ECC_SM4_GCM_SM3 and ECDHE_SM4_GCM_SM3, double certificates (Ferry's engine)
# Each listener terminates TLS and proxies HTTP/1.1 to the same nginx upstream. The client for every
# variant is the same program, Tongsuo's s_client (the only widely used client speaking all three), pinned
# to the other core. Because the client's own cost differs per suite, the figure that compares Ferry's
# TLS stacks is Ferry's CPU per MiB and per handshake (from /proc), i.e. capacity per core; wall-clock
# MB/s and handshakes/s are printed too.
#
# Needs Tongsuo (Tongsuo-Project/Tongsuo built with enable-ntls): set TONGSUO_BIN=/path/to/bin/tongsuo.
# Ferry does not ship or build it.
#
# The peer: with NGINX_TONGSUO_BIN=/path/to/sbin/nginx (nginx built from its public source, statically linked
# against Tongsuo built with enable-ntls enable-ec_sm2p_64_gcc_128; not shipped, not built here), the same
# variants also run through nginx+Tongsuo (one worker, same PKI, same upstream, proxy_pass with upstream
# keep-alive; TLCP via ssl_conf_command Enable_ntls/SignCertificate/EncCertificate), interleaved with Ferry,
# plus resumed handshakes (tickets / session cache on in nginx; the client saves its session once with
# -sess_out and resumes it with -sess_in; for standard TLS 1.3, whose rustls tickets are single-use, each
# connection makes one request and saves the ticket it brings for the next). It then prints Ferry ÷ nginx CPU
# per unit of work; a resumed figure reads n/a while a server does not resume (s_client reports "New").
#
# Warm-up: before the first round every server runs BENCH_WARMUP handshakes of each variant (full, and resumed where
# measured) and a short download, unmeasured, from three concurrent clients on any core. Steady state is what an edge
# serving traffic runs in, and a JIT-compiled server (Ferry on V8) reaches it only after thousands of handshakes:
# V8 moves a function to its optimizing compiler (TurboFan) after ~3000 calls (--invocation-count-for-turbofan), and
# much of a handshake's code runs once per handshake. Measured with --trace-opt on one Ferry: TLCP resumed
# handshakes cost 1058, 743, 695 and 432 us of CPU over four successive batches of 300, as the optimized functions
# per batch fell from 148 to 0 (the V8 compiler threads alone took 230 us per handshake in the first batch). With
# the earlier default of 300 the table measured Ferry while it was still compiling. nginx+Tongsuo is compiled ahead of
# time and has nothing to tier up: it gets BENCH_PEER_WARMUP handshakes (default 300, enough to fill its session cache
# and the page cache; the 3000 it used to get were half of a ~65-minute warm-up on the 2-core VM).
# BENCH_WARMUP=0 measures from a cold start.
# CPU is the scheduler's exact run time (/proc/*/task/*/schedstat) of the server and its worker processes.
#
# Knobs: BENCH_BULK_MB (128), BENCH_ROUNDS (2), BENCH_HANDSHAKES (150 per variant and round), BENCH_WARMUP (3000),
# BENCH_PEER_WARMUP (300, capped at BENCH_WARMUP).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

TONGSUO=${TONGSUO_BIN:-$(command -v tongsuo 2>/dev/null || true)}
if [ -z "$TONGSUO" ] || [ ! -x "$TONGSUO" ]; then
  echo "tls: needs Tongsuo's command-line tool for GM clients: set TONGSUO_BIN=/path/to/bin/tongsuo (build Tongsuo-Project/Tongsuo with enable-ntls)" >&2
  exit 2
fi
NGT=${NGINX_TONGSUO_BIN:-}
if [ -n "$NGT" ] && [ ! -x "$NGT" ]; then
  echo "tls: NGINX_TONGSUO_BIN=$NGT is not an executable" >&2
  exit 2
fi
BULK_MB=${BENCH_BULK_MB:-128}
ROUNDS=${BENCH_ROUNDS:-2}
HANDSHAKES=${BENCH_HANDSHAKES:-150}
WARMUP=${BENCH_WARMUP:-3000}
PEER_WARMUP=${BENCH_PEER_WARMUP:-300}
[ "$PEER_WARMUP" -gt "$WARMUP" ] && PEER_WARMUP=$WARMUP

bench_init tls
# Everything this script runs besides the servers is client-side work: the measuring loops' bash, timeout, grep, wc
# and awk. Keep all of it on the client's core (servers are started pinned to theirs), so that none of it lands on
# the server's core between two handshakes and evicts the server's caches there.
if [ "${#PIN_CLIENT[@]}" -gt 0 ]; then taskset -p -c "${PIN_CLIENT[2]}" $$ >/dev/null; fi
need_pkgs nginx curl
find_nginx
FERRY_NAME=ferry

certs=$BENCH_DIR/certs
(cd "$BENCH_ROOT" && deno run -A main.ts certs --gm --out "$certs" >/dev/null) || bench_die "ferry certs failed"

up_port=$(free_port)
admin_port=$(free_port)
p_native=$(free_port)
p_gm13=$(free_port)
p_tlcp=$(free_port)
start_bulk_upstream "$up_port" "$BULK_MB"


cat >"$BENCH_DIR/ferry.yaml" <<EOF
admin: { address: { socket_address: { address: 127.0.0.1, port_value: $admin_port } } }
static_resources:
  listeners:
$(native_listener_yaml "$certs" "$p_native")
$(gm_listeners_yaml "$certs" "$p_gm13" "$p_tlcp" hcm_filters_yaml)
  clusters:
  - name: upstream
    connect_timeout: 1s
    load_assignment: { cluster_name: upstream, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: $up_port } } } }] }] }
EOF
start_ferry "$BENCH_DIR/ferry.yaml"
ferry_pid=$BG_PID
for _ in $(seq 1 300); do
  code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$admin_port/ready" 2>/dev/null) || true
  [ "$code" = 200 ] && break
  kill -0 "$ferry_pid" 2>/dev/null || break
  sleep 0.2
done
[ "${code:-}" = 200 ] || {
  show_logs ferry
  bench_die "ferry not ready"
}

SERVERS=(ferry)
declare -A SPID
SPID[ferry]=$ferry_pid
if [ -n "$NGT" ]; then
  n_native=$(free_port)
  n_gm13=$(free_port)
  n_tlcp=$(free_port)
  mkdir -p "$BENCH_DIR/ngt-tmp" "$BENCH_DIR/logs"
  {
    nginx_common ngt
    cat <<EOF
http {
$(nginx_http_common ngt)
  ssl_session_tickets on;
  ssl_session_cache shared:SSL:10m;
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_max_temp_file_size 0;
  proxy_buffers 8 64k;
  proxy_read_timeout 120s;
  upstream up { server 127.0.0.1:$up_port; keepalive 16; }
  server {
    listen 127.0.0.1:$n_native ssl;
    ssl_protocols TLSv1.3;
    ssl_certificate $certs/server_ecdsa.crt;
    ssl_certificate_key $certs/server_ecdsa.key;
    ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;
    ssl_ecdh_curve prime256v1;
    location / { proxy_pass http://up; }
  }
  server {
    listen 127.0.0.1:$n_gm13 ssl;
    ssl_protocols TLSv1.3;
    ssl_certificate $certs/server.crt;
    ssl_certificate_key $certs/server.key;
    ssl_conf_command Ciphersuites TLS_SM4_GCM_SM3;
    ssl_ecdh_curve SM2;
    location / { proxy_pass http://up; }
  }
  server {
    listen 127.0.0.1:$n_tlcp ssl;
    ssl_certificate $certs/server_sign.crt;
    ssl_certificate_key $certs/server_sign.key;
    ssl_conf_command Enable_ntls on;
    ssl_conf_command SignCertificate $certs/server_sign.crt;
    ssl_conf_command SignPrivateKey $certs/server_sign.key;
    ssl_conf_command EncCertificate $certs/server_enc.crt;
    ssl_conf_command EncPrivateKey $certs/server_enc.key;
    ssl_ciphers ECC-SM2-SM4-GCM-SM3:ECDHE-SM2-SM4-GCM-SM3;
    location / { proxy_pass http://up; }
  }
}
EOF
  } >"$BENCH_DIR/ngt.conf"
  "$NGT" -t -q -p "$BENCH_DIR" -e "$BENCH_DIR/ngt-error.log" -c "$BENCH_DIR/ngt.conf" >"$BENCH_DIR/ngt-test.log" 2>&1 || {
    cat "$BENCH_DIR/ngt-test.log" >&2
    bench_die "nginx+Tongsuo config is invalid"
  }
  start_bg ngt "${PIN_SERVER[@]}" "$NGT" -p "$BENCH_DIR" -e "$BENCH_DIR/ngt-error.log" -c "$BENCH_DIR/ngt.conf"
  SPID[ngt]=$BG_PID
  for _ in $(seq 1 100); do
    tcp_open "$n_tlcp" && break
    sleep 0.1
  done
  check_alive ngt "${SPID[ngt]}"
  SERVERS+=(ngt)
fi

# client_args SERVER VARIANT: Tongsuo s_client arguments for one variant (ECDHE TLCP needs client double certs).
client_args() {
  local pn=$p_native pg=$p_gm13 pt=$p_tlcp
  if [ "$1" = ngt ]; then pn=$n_native pg=$n_gm13 pt=$n_tlcp; fi
  case $2 in
    native) echo "-connect 127.0.0.1:$pn -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256 -groups P-256" ;;
    gm13) echo "-connect 127.0.0.1:$pg -tls1_3 -ciphersuites TLS_SM4_GCM_SM3 -groups curveSM2 -sigalgs sm2sig_sm3" ;;
    tlcp) echo "-connect 127.0.0.1:$pt -enable_ntls -ntls -cipher ECC-SM2-SM4-GCM-SM3" ;;
    tlcp_ecdhe) echo "-connect 127.0.0.1:$pt -enable_ntls -ntls -cipher ECDHE-SM2-SM4-GCM-SM3 -sign_cert $certs/client_sign.crt -sign_key $certs/client_sign.key -enc_cert $certs/client_enc.crt -enc_key $certs/client_enc.key" ;;
  esac
}

now() { date +%s.%N; }
declare -A BULK_MBS BULK_CPU HS_RATE HS_CPU

# bulk_run SERVER VARIANT: one download of the bulk file; sets mbs and cpu_per_mib (µs of server CPU per MiB).
bulk_run() {
  local srv=$1 v=$2 pid=${SPID[$1]} t0 t1 c0 c1 bytes
  c0=$(cpu_ns_snapshot "$pid")
  t0=$(now)
  # shellcheck disable=SC2046
  bytes=$(printf 'GET /bulk HTTP/1.0\r\nHost: x\r\n\r\n' | timeout 300 "${PIN_CLIENT[@]}" "$TONGSUO" s_client $(client_args "$srv" "$v") -quiet 2>/dev/null | wc -c)
  t1=$(now)
  c1=$(cpu_ns_since "$pid" "$c0")
  if [ "$bytes" -lt $((BULK_MB * 1024 * 1024)) ]; then
    bench_log "$srv $v: download short ($bytes bytes)"
    mbs=0
    cpu_per_mib=0
    return
  fi
  mbs=$(awk -v b="$bytes" -v a="$t0" -v c="$t1" 'BEGIN { printf "%.1f", b / 1048576 / (c - a) }')
  cpu_per_mib=$(awk -v t="$c1" -v m="$BULK_MB" 'BEGIN { printf "%.0f", t / 1e3 / m }')
}

# hs_run SERVER VARIANT: HANDSHAKES sequential full handshakes; sets rate (per wall second) and cpu_per_hs (µs).
hs_run() {
  local srv=$1 v=$2 pid=${SPID[$1]} t0 t1 c0 c1 ok=0 i
  c0=$(cpu_ns_snapshot "$pid")
  t0=$(now)
  for ((i = 0; i < HANDSHAKES; i++)); do
    # shellcheck disable=SC2046
    if timeout 10 "${PIN_CLIENT[@]}" "$TONGSUO" s_client $(client_args "$srv" "$v") </dev/null >/dev/null 2>&1; then ok=$((ok + 1)); fi
  done
  t1=$(now)
  c1=$(cpu_ns_since "$pid" "$c0")
  [ "$ok" -eq "$HANDSHAKES" ] || bench_log "$srv $v: only $ok of $HANDSHAKES handshakes succeeded"
  rate=$(awk -v n="$ok" -v a="$t0" -v c="$t1" 'BEGIN { printf "%.0f", n / (c - a) }')
  cpu_per_hs=$(awk -v t="$c1" -v n="$ok" 'BEGIN { if (n == 0) print 0; else printf "%.0f", t / 1e3 / n }')
}

# resume_once SERVER VARIANT SESSION [PINNED]: one handshake offering the saved session; prints 1 when it resumed.
# rustls's TLS 1.3 tickets are single-use (its stateful session cache; Deno exposes no ticket keys), so for `native`
# a client resumes with the newest ticket it got, as browsers do: one request per connection brings it, and the
# session file is rewritten. Both servers are measured that way for this variant. PINNED (any word) runs the client
# on the client's core.
resume_once() {
  local srv=$1 v=$2 sess=$3 pin=()
  [ -n "${4:-}" ] && pin=("${PIN_CLIENT[@]}")
  if [ "$v" = native ]; then
    # shellcheck disable=SC2046
    printf 'GET / HTTP/1.0\r\nHost: x\r\n\r\n' | timeout 10 "${pin[@]}" "$TONGSUO" s_client $(client_args "$srv" "$v") -ign_eof -sess_in "$sess" -sess_out "$sess" 2>/dev/null | grep -c '^Reused'
  else
    # shellcheck disable=SC2046
    timeout 10 "${pin[@]}" "$TONGSUO" s_client $(client_args "$srv" "$v") -sess_in "$sess" </dev/null 2>/dev/null | grep -c '^Reused'
  fi
}

# save_session SERVER VARIANT SESSION [PINNED]: one full handshake with a request (so that a TLS 1.3 ticket arrives),
# saving the session.
save_session() {
  local pin=()
  [ -n "${4:-}" ] && pin=("${PIN_CLIENT[@]}")
  rm -f "$3"
  # shellcheck disable=SC2046
  printf 'GET / HTTP/1.0\r\nHost: x\r\n\r\n' | timeout 10 "${pin[@]}" "$TONGSUO" s_client $(client_args "$1" "$2") -ign_eof -sess_out "$3" >/dev/null 2>&1
}

# res_run SERVER VARIANT: one full handshake saving the session, then HANDSHAKES sequential handshakes offering it
# (resume_once); sets cpu_res (µs per handshake), or n/a when fewer than 90 % of them resumed.
res_run() {
  local srv=$1 v=$2 pid=${SPID[$1]} c0 c1 reused=0 i sess=$BENCH_DIR/sess-$1-$2.pem out
  save_session "$srv" "$v" "$sess" pinned
  if [ ! -s "$sess" ]; then
    cpu_res=n/a
    return
  fi
  c0=$(cpu_ns_snapshot "$pid")
  for ((i = 0; i < HANDSHAKES; i++)); do
    out=$(resume_once "$srv" "$v" "$sess" pinned)
    reused=$((reused + out))
  done
  c1=$(cpu_ns_since "$pid" "$c0")
  if [ $((reused * 10)) -lt $((HANDSHAKES * 9)) ]; then
    cpu_res=n/a
  else
    cpu_res=$(awk -v t="$c1" -v n="$HANDSHAKES" 'BEGIN { printf "%.0f", t / 1e3 / n }')
  fi
}

VARIANTS=(native gm13 tlcp tlcp_ecdhe)
RESUMED=(native gm13 tlcp)
echo "tls: $ROUNDS rounds; bulk $BULK_MB MiB per download; $HANDSHAKES handshakes per variant and round; client: $($TONGSUO version | head -n1)"
[ -n "$NGT" ] && echo "peer: $("$NGT" -V 2>&1 | head -n1), $("$NGT" -V 2>&1 | sed -n 's/^built with //p'), one worker"
declare -A RES_CPU
is_resumed() { [[ " ${RESUMED[*]} " == *" $1 "* ]]; }
FMT='%-6s %-11s %10s %14s %10s %14s %14s\n'
# warm_run SERVER VARIANT: WARMUP full handshakes (PEER_WARMUP for nginx+Tongsuo), and as many resumed ones where they
# are measured, done as the measured ones are (resume_once: for `native`, with a request and a fresh ticket each, so
# that the request path is warm too; the warm-up of stop 32 resumed spent tickets, i.e. ran full handshakes without a
# request, and the measured rounds then paid for compiling that path), from three concurrent clients, each with its
# own session, unpinned and unmeasured.
warm_run() {
  local srv=$1 v=$2 j i pids=() n=$WARMUP
  [ "$1" = ngt ] && n=$PEER_WARMUP
  for j in 1 2 3; do
    (
      # Warm-up clients may use any core (the script itself keeps to the client's).
      if [ "${#PIN_CLIENT[@]}" -gt 0 ]; then taskset -p -c "0-$(($(nproc) - 1))" "$BASHPID" >/dev/null; fi
      local sess=$BENCH_DIR/warm-$srv-$v-$j.pem resumes=
      if [ -n "$NGT" ] && is_resumed "$v"; then resumes=1; fi
      for ((i = j; i <= n; i += 3)); do
        # shellcheck disable=SC2046
        timeout 10 "$TONGSUO" s_client $(client_args "$srv" "$v") </dev/null >/dev/null 2>&1
        [ -n "$resumes" ] || continue
        # The first session, or one lost with a failed connection: saved (again), so that the rest still resume.
        [ -s "$sess" ] || save_session "$srv" "$v" "$sess"
        if [ -s "$sess" ]; then resume_once "$srv" "$v" "$sess" >/dev/null; fi
      done
    ) &
    pids+=($!)
  done
  wait "${pids[@]}"
}
if [ "$WARMUP" -gt 0 ]; then
  echo "warm-up: $WARMUP handshakes per variant for Ferry, $PEER_WARMUP for nginx+Tongsuo (full and resumed), and an 8 MiB download, unmeasured"
  for v in "${VARIANTS[@]}"; do
    for srv in "${SERVERS[@]}"; do
      # shellcheck disable=SC2046
      printf 'GET /bulk HTTP/1.0\r\nRange: bytes=0-8388607\r\nHost: x\r\n\r\n' | timeout 60 "${PIN_CLIENT[@]}" "$TONGSUO" s_client $(client_args "$srv" "$v") -quiet >/dev/null 2>&1
      warm_run "$srv" "$v"
    done
  done
fi
for ((r = 1; r <= ROUNDS; r++)); do
  echo
  echo "round $r/$ROUNDS"
  # shellcheck disable=SC2059
  printf "$FMT" server variant "bulk_MB/s" "cpu_us/MiB" "hs/s" "cpu_us/hs" "cpu_us/resumed"
  for v in "${VARIANTS[@]}"; do
    for srv in "${SERVERS[@]}"; do
      bulk_run "$srv" "$v"
      hs_run "$srv" "$v"
      cpu_res=-
      if [ -n "$NGT" ] && is_resumed "$v"; then res_run "$srv" "$v"; fi
      # shellcheck disable=SC2059
      printf "$FMT" "$srv" "$v" "$mbs" "$cpu_per_mib" "$rate" "$cpu_per_hs" "$cpu_res"
      k=$srv:$v
      BULK_MBS[$k]+="$mbs "
      BULK_CPU[$k]+="$cpu_per_mib "
      HS_RATE[$k]+="$rate "
      HS_CPU[$k]+="$cpu_per_hs "
      RES_CPU[$k]+="$cpu_res "
    done
  done
done

echo
echo "summary (median of $ROUNDS rounds; $(load_average))"
# shellcheck disable=SC2059
printf "$FMT" server variant "bulk_MB/s" "cpu_us/MiB" "hs/s" "cpu_us/hs" "cpu_us/resumed"
declare -A M_CPU M_HS M_MBS M_RES
for v in "${VARIANTS[@]}"; do
  for srv in "${SERVERS[@]}"; do
    k=$srv:$v
    # shellcheck disable=SC2086
    M_MBS[$k]=$(median ${BULK_MBS[$k]})
    # shellcheck disable=SC2086
    M_CPU[$k]=$(median ${BULK_CPU[$k]})
    # shellcheck disable=SC2086
    m_rate=$(median ${HS_RATE[$k]})
    # shellcheck disable=SC2086
    M_HS[$k]=$(median ${HS_CPU[$k]})
    # Resumed: a median only when every round resumed.
    case " ${RES_CPU[$k]} " in
      *" n/a "*) M_RES[$k]=n/a ;;
      *" - "*) M_RES[$k]=- ;;
      # shellcheck disable=SC2086
      *) M_RES[$k]=$(median ${RES_CPU[$k]}) ;;
    esac
    # shellcheck disable=SC2059
    printf "$FMT" "$srv" "$v" "${M_MBS[$k]}" "${M_CPU[$k]}" "$m_rate" "${M_HS[$k]}" "${M_RES[$k]}"
  done
done
# Capacity ratios: how much GM work one core of Ferry does per unit of native work.
echo "ratio gm13/native bulk capacity (cpu per MiB): $(ratio "${M_CPU[ferry:native]}" "${M_CPU[ferry:gm13]}")"
echo "ratio tlcp/native bulk capacity (cpu per MiB): $(ratio "${M_CPU[ferry:native]}" "${M_CPU[ferry:tlcp]}")"
echo "ratio gm13/native handshake capacity (cpu per handshake): $(ratio "${M_HS[ferry:native]}" "${M_HS[ferry:gm13]}")"
echo "ratio tlcp/native handshake capacity (cpu per handshake): $(ratio "${M_HS[ferry:native]}" "${M_HS[ferry:tlcp]}")"
echo "ratio tlcp-ecdhe/native handshake capacity (cpu per handshake): $(ratio "${M_HS[ferry:native]}" "${M_HS[ferry:tlcp_ecdhe]}")"
# Wall-clock figures for the record: with one client they measure the slower of Ferry and the client (Tongsuo's
# s_client decrypts SM4-GCM at ~100 MB/s, and even AES-GCM downloads leave Ferry's core half idle), so they are
# not the comparison the targets are about.
echo "(wall-clock, client-bound) ratio gm13/native bulk MB/s: $(ratio "${M_MBS[ferry:gm13]}" "${M_MBS[ferry:native]}")"
echo "targets (capacity ratios): gm13 bulk >= 0.5, gm13 handshakes >= 0.3"
if [ -n "$NGT" ]; then
  # ratio_or_na A B: A/B, or n/a when either is not a number.
  ratio_or_na() { if [[ $1 =~ ^[0-9.]+$ && $2 =~ ^[0-9.]+$ ]]; then ratio "$1" "$2"; else echo n/a; fi; }
  row() { printf '%-40s %8s %8s\n' "$1" "$2" "$3"; }
  echo
  echo "Ferry ÷ nginx+Tongsuo, CPU per unit of work (below 1: Ferry cheaper; targets from issue 17)"
  row "unit" "ratio" "target"
  row "TLS 1.3-SM SM4-GCM bulk, per MiB" "$(ratio_or_na "${M_CPU[ferry:gm13]}" "${M_CPU[ngt:gm13]}")" "<= 0.66"
  row "TLCP ECC SM4-GCM bulk, per MiB" "$(ratio_or_na "${M_CPU[ferry:tlcp]}" "${M_CPU[ngt:tlcp]}")" "<= 0.66"
  row "TLS 1.3 AES-128-GCM bulk, per MiB" "$(ratio_or_na "${M_CPU[ferry:native]}" "${M_CPU[ngt:native]}")" "<= 1.5"
  row "TLS 1.3-SM full handshake" "$(ratio_or_na "${M_HS[ferry:gm13]}" "${M_HS[ngt:gm13]}")" "<= 1.5"
  row "TLCP ECC full handshake" "$(ratio_or_na "${M_HS[ferry:tlcp]}" "${M_HS[ngt:tlcp]}")" "<= 1.5"
  row "TLCP ECDHE full handshake" "$(ratio_or_na "${M_HS[ferry:tlcp_ecdhe]}" "${M_HS[ngt:tlcp_ecdhe]}")" "<= 1.5"
  row "TLS 1.3 ECDSA-P256 full handshake" "$(ratio_or_na "${M_HS[ferry:native]}" "${M_HS[ngt:native]}")" "<= 1.5"
  row "TLS 1.3-SM resumed handshake" "$(ratio_or_na "${M_RES[ferry:gm13]}" "${M_RES[ngt:gm13]}")" "<= 1.2"
  row "TLCP ECC resumed handshake" "$(ratio_or_na "${M_RES[ferry:tlcp]}" "${M_RES[ngt:tlcp]}")" "<= 1.2"
  row "TLS 1.3 resumed handshake" "$(ratio_or_na "${M_RES[ferry:native]}" "${M_RES[ngt:native]}")" "<= 1.2"
fi
report_log ferry
