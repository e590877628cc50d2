#!/usr/bin/env bash
# L4 (TCP) proxy benchmark: nginx `stream { proxy_pass }` versus Ferry's tcp_proxy filter,
# both in front of the same HTTP upstream (nginx, 1 worker), plus the upstream directly.
# Interleaved rounds (direct, nginx, ferry, ...). Each target gets:
#   - wrk keep-alive requests through the proxy (wrk -t1 -c64 --latency): small-packet cost;
#   - a bulk download of a BENCH_BULK_MB file with curl: copy throughput in MB/s.
# Servers are pinned to core 0, clients to core 1.
#
# Knobs (environment):
#   BENCH_SECONDS      measured seconds per wrk run (default 10)
#   BENCH_ROUNDS       rounds (default 3)
#   BENCH_WARMUP       warm-up seconds before each wrk run (default 2)
#   BENCH_JIT_WARMUP   seconds of load on each target once before round 1, so a JIT runtime
#                      reaches its steady state before anything is measured (default 5)
#   BENCH_CONNECTIONS  wrk connections (default 64)
#   BENCH_BULK_MB      size of the bulk body in MiB (default 256; 0 skips the bulk test)
#   and those in bench/_common.sh (FERRY_CMD, FERRY_ARGS, BENCH_READY_TIMEOUT, BENCH_KEEP)
#
# Prints a table per round, medians, and `ratio ferry/nginx rps: X` (target >= 0.8) and
# `ratio ferry/nginx bulk: X`.
set -uo pipefail
# shellcheck source=bench/_common.sh
. "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

SECS=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
WARMUP=${BENCH_WARMUP:-2}
JIT_WARMUP=${BENCH_JIT_WARMUP:-5}
BULK_MB=${BENCH_BULK_MB:-256}
TARGET_RATIO=0.8

bench_init tcp
need_pkgs nginx wrk curl
find_nginx

# nginx's stream module: built in, or a dynamic module (Debian: libnginx-mod-stream).
LOAD_STREAM=
nginx_v=$("$NGINX_BIN" -V 2>&1)
case $nginx_v in
  *--with-stream=dynamic*)
    mods=$(nginx_modules_path)
    mods=${mods:-/usr/lib/nginx/modules}
    [ -f "$mods/ngx_stream_module.so" ] || need_pkgs libnginx-mod-stream
    [ -f "$mods/ngx_stream_module.so" ] || bench_die "no $mods/ngx_stream_module.so after installing libnginx-mod-stream"
    LOAD_STREAM="load_module $mods/ngx_stream_module.so;"
    ;;
  *--with-stream*) ;;
  *) bench_die "this nginx has no stream module (configure arguments lack --with-stream)" ;;
esac

UP_PORT=$(free_port)
NGINX_PORT=$(free_port)
FERRY_PORT=$(free_port)
ADMIN_PORT=$(free_port)

BULK_FILE=
if [ "$BULK_MB" -gt 0 ]; then
  BULK_FILE=$BENCH_DIR/bulk.bin
  # Sparse: instant to make, and served from the page cache like any other file.
  truncate -s "$((BULK_MB * 1024 * 1024))" "$BULK_FILE"
  chmod 644 "$BULK_FILE"
fi

write_upstream_conf "$BENCH_DIR/upstream.conf" "$UP_PORT" "$BULK_FILE"
{
  echo "$LOAD_STREAM"
  nginx_common nginx
  cat <<EOF
stream {
  server {
    listen 127.0.0.1:$NGINX_PORT backlog=4096;
    proxy_pass 127.0.0.1:$UP_PORT;
  }
}
EOF
} >"$BENCH_DIR/nginx.conf"
write_ferry_conf "$BENCH_DIR/ferry.yaml" "$ADMIN_PORT" "$FERRY_PORT" "$UP_PORT" "$FERRY_TCP_FILTERS"

start_nginx upstream "$BENCH_DIR/upstream.conf"
UP_PID=$BG_PID
wait_http upstream "$UP_PID" "http://127.0.0.1:$UP_PORT/"
start_nginx nginx "$BENCH_DIR/nginx.conf"
NGINX_PID=$BG_PID
wait_http nginx "$NGINX_PID" "http://127.0.0.1:$NGINX_PORT/"
start_ferry "$BENCH_DIR/ferry.yaml"
FERRY_PID=$BG_PID
wait_ferry "$FERRY_PID" "$ADMIN_PORT" "$FERRY_PORT"

TARGETS=(direct nginx ferry)
declare -A PORT=([direct]=$UP_PORT [nginx]=$NGINX_PORT [ferry]=$FERRY_PORT)
declare -A PID=([direct]=$UP_PID [nginx]=$NGINX_PID [ferry]=$FERRY_PID)
declare -A LOGNAME_OF=([direct]=upstream [nginx]=nginx [ferry]=ferry)
declare -A RPS P99 CPU BULK ERRS

# bulk_mbps PORT: MB/s (10^6 bytes) of one download of /bulk, or 0 when it failed or was short.
bulk_mbps() {
  local out
  out=$(timeout 300 "${PIN_CLIENT[@]}" curl -s -o /dev/null -m 240 -w '%{http_code} %{size_download} %{speed_download}' \
    "http://127.0.0.1:$1/bulk" 2>/dev/null) || true
  awk -v o="$out" -v want=$((BULK_MB * 1024 * 1024)) 'BEGIN {
    split(o, f, " "); if (f[1] != "200" || f[2] != want) { print 0; exit } printf "%.1f\n", f[3] / 1e6 }'
}

echo "tcp: ${ROUNDS} rounds x ${SECS}s per target (+${WARMUP}s warm-up), wrk -t1 -c${BENCH_CONNECTIONS:-64}," \
  "bulk ${BULK_MB} MiB; upstream :$UP_PORT, nginx stream :$NGINX_PORT, ferry tcp_proxy :$FERRY_PORT"
echo "$(load_average) (other work on the machine skews every number)"
if [ "$JIT_WARMUP" -gt 0 ]; then
  for t in "${TARGETS[@]}"; do run_wrk "$BENCH_DIR/jit-warm-$t.txt" "http://127.0.0.1:${PORT[$t]}/" "$JIT_WARMUP"; done
fi
for ((r = 1; r <= ROUNDS; r++)); do
  echo
  echo "round $r/$ROUNDS"
  printf '%-8s %12s %10s %10s %8s %12s %10s\n' target rps p99_ms requests errors cpu_us/req bulk_MB/s
  for t in "${TARGETS[@]}"; do
    url="http://127.0.0.1:${PORT[$t]}/"
    [ "$WARMUP" -gt 0 ] && run_wrk "$BENCH_DIR/warm-$t.txt" "$url" "$WARMUP"
    before=$(cpu_ticks "${PID[$t]}")
    run_wrk "$BENCH_DIR/wrk-$t-$r.txt" "$url" "$SECS"
    after=$(cpu_ticks "${PID[$t]}")
    check_alive "${LOGNAME_OF[$t]}" "${PID[$t]}"
    read -r rps p99 req err <<<"$(parse_wrk "$BENCH_DIR/wrk-$t-$r.txt")"
    if [ "$err" = -1 ]; then
      bench_log "wrk gave no result for $t:"
      cat "$BENCH_DIR/wrk-$t-$r.txt" >&2
      err=0
    fi
    cpu=-
    [ "$t" != direct ] && cpu=$(us_per_req $((after - before)) "$req")
    bulk=-
    if [ "$BULK_MB" -gt 0 ]; then
      bulk=$(bulk_mbps "${PORT[$t]}")
      [ "$bulk" = 0 ] && bench_log "bulk download through $t failed or came up short"
      check_alive "${LOGNAME_OF[$t]}" "${PID[$t]}"
      BULK[$t]="${BULK[$t]:-} $bulk"
    fi
    RPS[$t]="${RPS[$t]:-} $rps"
    P99[$t]="${P99[$t]:-} $p99"
    [ "$cpu" != - ] && CPU[$t]="${CPU[$t]:-} $cpu"
    ERRS[$t]=$((${ERRS[$t]:-0} + err))
    printf '%-8s %12.1f %10.3f %10d %8d %12s %10s\n' "$t" "$rps" "$p99" "$req" "$err" "$cpu" "$bulk"
  done
done

echo
echo "summary (median of $ROUNDS rounds; $(load_average))"
printf '%-8s %12s %10s %8s %12s %10s\n' target rps p99_ms errors cpu_us/req bulk_MB/s
declare -A M_RPS M_P99 M_BULK M_CPU
for t in "${TARGETS[@]}"; do
  # shellcheck disable=SC2086 # the lists are space-separated numbers
  M_RPS[$t]=$(median ${RPS[$t]})
  # shellcheck disable=SC2086
  M_P99[$t]=$(median ${P99[$t]})
  M_CPU[$t]=-
  # shellcheck disable=SC2086
  [ -n "${CPU[$t]:-}" ] && M_CPU[$t]=$(median ${CPU[$t]})
  M_BULK[$t]=-
  # shellcheck disable=SC2086
  [ -n "${BULK[$t]:-}" ] && M_BULK[$t]=$(median ${BULK[$t]})
  printf '%-8s %12.1f %10.3f %8d %12s %10s\n' "$t" "${M_RPS[$t]}" "${M_P99[$t]}" "${ERRS[$t]}" "${M_CPU[$t]}" "${M_BULK[$t]}"
done
r=$(ratio "${M_RPS[ferry]}" "${M_RPS[nginx]}")
echo "ratio ferry/nginx rps: $r"
echo "ratio ferry/nginx p99: $(ratio "${M_P99[ferry]}" "${M_P99[nginx]}")"
# CPU time per request barely moves when other work shares the machine; RPS and p99 do.
echo "ratio ferry/nginx cpu per request: $(ratio "${M_CPU[ferry]}" "${M_CPU[nginx]}")"
[ "$BULK_MB" -gt 0 ] && echo "ratio ferry/nginx bulk: $(ratio "${M_BULK[ferry]}" "${M_BULK[nginx]}")"
if [ "$r" != n/a ] && awk -v r="$r" -v t="$TARGET_RATIO" 'BEGIN { exit !(r >= t) }'; then
  echo "target ferry/nginx rps >= $TARGET_RATIO: met"
else
  echo "target ferry/nginx rps >= $TARGET_RATIO: not met"
fi
echo
report_log ferry
