#!/usr/bin/env bash
# Side-by-side A/B of two Ferry checkouts on TLS handshakes: both serve at the same time, pinned to the same core, with a
# TLCP, a TLS 1.3-SM and a native (rustls) TLS 1.3 listener each; Tongsuo's s_client (core 1) alternates between them, one round of sequential
# handshakes to A, then the same to B, for several rounds. Both see the same machine within seconds of each other,
# where one-after-the-other runs on this VM swing by 15-20% (the same Ferry measured 1092-1202 µs per TLCP resumed
# handshake, then 1261-1436 µs twenty minutes later). It is still noisy: an A/A run (one checkout twice, warm-up 800,
# 4 rounds x 60 TLCP resumed handshakes) gave rounds of 0.73-1.13 and a median of 1.07, so at those settings only a
# difference above ~10% is real; use the defaults or more rounds for less.
# CPU is the scheduler's run time of each Ferry process (all threads) per handshake, as in tls.sh.
#
# Usage: bench/ab_tls.sh A_DIR [B_DIR] [tlcp-res|tlcp-full|gm13-res|gm13-full|native-res|native-full|native-bulk ...]
#   A_DIR, B_DIR   checkouts holding main.ts (B defaults to this one), e.g. `git worktree add /tmp/ferry-base HEAD~1`
#   variants       default: tlcp-res tlcp-full gm13-res
#                  native-res resumes as tls.sh does: an HTTP/1.0 request per connection, proxied to an nginx upstream,
#                  brings the next single-use rustls ticket; native-full is a handshake without a request;
#                  native-bulk downloads BENCH_BULK_MB through the native listener and reports CPU per MiB.
#
# Needs TONGSUO_BIN (a Tongsuo enable-ntls build, as tls.sh). Knobs (environment): BENCH_WARMUP (handshakes per
# variant and server before the first round, unmeasured; default 1500), BENCH_HANDSHAKES (per variant, server and
# round; default 80), BENCH_ROUNDS (default 5), BENCH_GAP (seconds between handshakes; default 0.03), BENCH_BULK_MB
# and BENCH_DOWNLOADS (native-bulk: file size, default 16, and downloads per server and round, default 3; as many
# unmeasured before the first round), BENCH_KEEP.
#
# Prints a line per round and variant, then `median B/A cpu per unit` per variant (below 1: B is cheaper).
set -uo pipefail
# shellcheck source=bench/_common.sh
. "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

[ $# -ge 1 ] || bench_die "usage: bench/ab_tls.sh A_DIR [B_DIR] [variant ...]"
A_DIR=$(cd "$1" && pwd) || bench_die "no directory $1"
B_DIR=$(cd "${2:-$BENCH_ROOT}" && pwd) || bench_die "no directory $2"
shift
[ $# -ge 1 ] && shift
VARIANTS=("$@")
[ "${#VARIANTS[@]}" -gt 0 ] || VARIANTS=(tlcp-res tlcp-full gm13-res)
for v in "${VARIANTS[@]}"; do
  case $v in
    tlcp-res | tlcp-full | gm13-res | gm13-full | native-res | native-full | native-bulk) ;;
    *) bench_die "variant must be tlcp-res, tlcp-full, gm13-res, gm13-full, native-res, native-full or native-bulk, not $v" ;;
  esac
done
[ -f "$A_DIR/main.ts" ] || bench_die "$A_DIR has no main.ts"
[ -f "$B_DIR/main.ts" ] || bench_die "$B_DIR has no main.ts"
TONGSUO=${TONGSUO_BIN:-$(command -v tongsuo 2>/dev/null || true)}
[ -n "$TONGSUO" ] && [ -x "$TONGSUO" ] || bench_die "needs Tongsuo's command-line tool: set TONGSUO_BIN=/path/to/bin/tongsuo"
WARMUP=${BENCH_WARMUP:-1500}
HANDSHAKES=${BENCH_HANDSHAKES:-80}
BULK_MB=${BENCH_BULK_MB:-16}
DOWNLOADS=${BENCH_DOWNLOADS:-3}
ROUNDS=${BENCH_ROUNDS:-5}
GAP=${BENCH_GAP:-0.03}

bench_init ab_tls
need_pkgs curl nginx
find_nginx
[ "${#PIN_SERVER[@]}" -gt 0 ] || bench_die "needs 2 cores and taskset"
if [ "${#PIN_CLIENT[@]}" -gt 0 ]; then taskset -p -c "${PIN_CLIENT[2]}" $$ >/dev/null; fi

certs=$BENCH_DIR/certs
(cd "$BENCH_ROOT" && deno run -A main.ts certs --gm --out "$certs" >/dev/null) || bench_die "ferry certs failed"

# The upstream of native-res's requests (GM variants are handshake-only and never reach it).
up_port=$(free_port)
start_bulk_upstream "$up_port" "$BULK_MB"

# write_conf FILE ADMIN GM13_PORT TLCP_PORT NATIVE_PORT
write_conf() {
  cat >"$1" <<EOF
admin: { address: { socket_address: { address: 127.0.0.1, port_value: $2 } } }
static_resources:
  listeners:
$(native_listener_yaml "$certs" "$5")
$(gm_listeners_yaml "$certs" "$3" "$4" hcm_filters_yaml)
  clusters:
  - name: upstream
    connect_timeout: 1s
    load_assignment: { cluster_name: upstream, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: $up_port } } } }] }] }
EOF
}

declare -A PID GM13 TLCP NATIVE
# start_one NAME DIR: one event loop on the server core.
start_one() {
  local admin gm tl na one=()
  admin=$(free_port) gm=$(free_port) tl=$(free_port) na=$(free_port)
  write_conf "$BENCH_DIR/$1.yaml" "$admin" "$gm" "$tl" "$na"
  grep -q -- 'concurrency' "$2/main.ts" && one=(--concurrency 1)
  start_bg "$1" "${PIN_SERVER[@]}" deno run -A --v8-flags=--experimental-wasm-wide-arithmetic,--invocation-count-for-maglev=50,--minimum-invocations-after-ic-update=50,--no-memory-reducer --no-check "$2/main.ts" -c "$BENCH_DIR/$1.yaml" "${one[@]}"
  PID[$1]=$BG_PID GM13[$1]=$gm TLCP[$1]=$tl NATIVE[$1]=$na
  for _ in $(seq 1 300); do
    tcp_open "$tl" && tcp_open "$gm" && tcp_open "$na" && return
    kill -0 "$BG_PID" 2>/dev/null || break
    sleep 0.2
  done
  show_logs "$1"
  bench_die "ferry $1 ($2) did not start"
}

# client_args SERVER VARIANT
client_args() {
  case $2 in
    tlcp-*) echo "-connect 127.0.0.1:${TLCP[$1]} -enable_ntls -ntls -cipher ECC-SM2-SM4-GCM-SM3" ;;
    gm13-*) echo "-connect 127.0.0.1:${GM13[$1]} -tls1_3 -ciphersuites TLS_SM4_GCM_SM3 -groups curveSM2 -sigalgs sm2sig_sm3" ;;
    native-*) echo "-connect 127.0.0.1:${NATIVE[$1]} -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256 -groups P-256" ;;
  esac
}

# save_session SERVER VARIANT: a full handshake with a request (so that a TLS 1.3 ticket arrives) saving the session.
save_session() {
  local sess=$BENCH_DIR/sess-$1-$2.pem
  rm -f "$sess"
  # shellcheck disable=SC2046
  printf 'GET / HTTP/1.0\r\nHost: x\r\n\r\n' | timeout 10 "$TONGSUO" s_client $(client_args "$1" "$2") -ign_eof -sess_out "$sess" >/dev/null 2>&1
  [ -s "$sess" ] || bench_die "$1 $2: no session to resume"
}

# run_hs SERVER VARIANT N GAP [SESSION]: N sequential handshakes; prints how many resumed. native-res sends a
# request on each connection and keeps the ticket it brings (SESSION: the client's own file, for concurrent clients).
run_hs() {
  local extra=() reused=0 i bytes sess=${5:-$BENCH_DIR/sess-$1-$2.pem}
  [[ $2 == *-res ]] && extra=(-sess_in "$sess")
  for ((i = 0; i < $3; i++)); do
    if [ "$2" = native-bulk ]; then
      # shellcheck disable=SC2046
      bytes=$(printf 'GET /bulk HTTP/1.0\r\nHost: x\r\n\r\n' | timeout 120 "$TONGSUO" s_client $(client_args "$1" "$2") -quiet 2>/dev/null | wc -c)
      [ "$bytes" -ge $((BULK_MB * 1048576)) ] || bench_log "$1 $2: download short ($bytes bytes)"
    elif [ "$2" = native-res ]; then
      # shellcheck disable=SC2046
      reused=$((reused + $(printf 'GET / HTTP/1.0\r\nHost: x\r\n\r\n' | timeout 10 "$TONGSUO" s_client $(client_args "$1" "$2") -ign_eof "${extra[@]}" -sess_out "$sess" 2>/dev/null | grep -c '^Reused')))
    else
      # shellcheck disable=SC2046
      reused=$((reused + $(timeout 10 "$TONGSUO" s_client $(client_args "$1" "$2") "${extra[@]}" </dev/null 2>/dev/null | grep -c '^Reused')))
    fi
    [ "$4" = 0 ] || sleep "$4"
  done
  echo "$reused"
}

start_one a "$A_DIR"
start_one b "$B_DIR"
echo "ab_tls: A=$A_DIR B=$B_DIR; variants ${VARIANTS[*]}; warm-up $WARMUP, then $ROUNDS rounds x $HANDSHAKES handshakes ${GAP}s apart, alternating; $(load_average)"
for v in "${VARIANTS[@]}"; do
  for s in a b; do
    [[ $v == *-res ]] && save_session "$s" "$v"
    # Two clients at once, unmeasured, so that warming up takes half the time; each with its own copy of the session.
    [[ $v == *-res ]] && cp "$BENCH_DIR/sess-$s-$v.pem" "$BENCH_DIR/sess-$s-$v-w.pem"
    n=$WARMUP
    [ "$v" = native-bulk ] && n=$DOWNLOADS
    run_hs "$s" "$v" $((n / 2)) 0 "$BENCH_DIR/sess-$s-$v-w.pem" >/dev/null &
    w=$!
    run_hs "$s" "$v" $((n - n / 2)) 0 >/dev/null
    wait "$w" # not a bare wait: the Ferry processes are this shell's children too
  done
done

declare -A RATIOS
for ((r = 1; r <= ROUNDS; r++)); do
  for v in "${VARIANTS[@]}"; do
    line="round $r $v:"
    declare -A US=()
    for s in a b; do
      c0=$(cpu_ns_snapshot "${PID[$s]}")
      n=$HANDSHAKES unit=hs per=$HANDSHAKES
      [ "$v" = native-bulk ] && n=$DOWNLOADS unit=MiB per=$((DOWNLOADS * BULK_MB))
      reused=$(run_hs "$s" "$v" "$n" "$GAP")
      c1=$(cpu_ns_since "${PID[$s]}" "$c0")
      check_alive "$s" "${PID[$s]}"
      if [[ $v == *-res ]] && [ "$reused" -lt "$HANDSHAKES" ]; then
        bench_log "round $r $v: $s resumed only $reused of $HANDSHAKES"
      fi
      US[$s]=$(awk -v t="$c1" -v n="$per" 'BEGIN { printf "%.0f", t / 1e3 / n }')
      line+=" ${s^^} ${US[$s]} us/$unit"
    done
    rt=$(awk -v a="${US[a]}" -v b="${US[b]}" 'BEGIN { printf "%.3f", b / a }')
    RATIOS[$v]+="$rt "
    echo "$line   B/A $rt"
  done
done
for v in "${VARIANTS[@]}"; do
  # shellcheck disable=SC2086
  echo "median B/A cpu per unit, $v: $(median ${RATIOS[$v]}) (below 1: B is cheaper; $(load_average))"
done
