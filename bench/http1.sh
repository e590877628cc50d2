#!/usr/bin/env bash
# HTTP/1.1 proxy benchmark: wrk against the upstream directly, through nginx and through
# Ferry, interleaved (direct, nginx, ferry, direct, nginx, ferry, ...) so drift on the
# machine hits all three alike.
#
# The upstream is an nginx (1 worker) answering "hello world\n". nginx-as-proxy has 1 worker
# and a keep-alive upstream pool (keepalive 64); Ferry runs one worker with an
# http_connection_manager listener routing / to the cluster "upstream". Servers are pinned
# to core 0, wrk to core 1 (wrk -t1 -c64 --latency).
#
# Knobs (environment):
#   BENCH_SECONDS      measured seconds per run (default 10)
#   BENCH_ROUNDS       rounds (default 3)
#   BENCH_WARMUP       warm-up seconds before each measured run (default 2)
#   BENCH_JIT_WARMUP   seconds of load on each target once before round 1, so a JIT runtime
#                      reaches its steady state before anything is measured (default 5)
#   BENCH_CONNECTIONS  wrk connections (default 64)
#   and those in bench/_common.sh (FERRY_CMD, FERRY_ARGS, BENCH_READY_TIMEOUT, BENCH_KEEP)
#
# Prints a table per round, then the median RPS and p99 per target and
#   ratio ferry/nginx rps: 0.71
# (target >= 0.6), plus CPU microseconds per request for nginx and Ferry.
set -uo pipefail
# shellcheck source=bench/_common.sh
. "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

SECS=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
WARMUP=${BENCH_WARMUP:-2}
JIT_WARMUP=${BENCH_JIT_WARMUP:-5}
TARGET_RATIO=0.6

bench_init http1
need_pkgs nginx wrk curl
find_nginx

UP_PORT=$(free_port)
NGINX_PORT=$(free_port)
FERRY_PORT=$(free_port)
ADMIN_PORT=$(free_port)

write_upstream_conf "$BENCH_DIR/upstream.conf" "$UP_PORT"
{
  nginx_common nginx
  echo "http {"
  nginx_http_common nginx
  cat <<EOF
  upstream up {
    server 127.0.0.1:$UP_PORT;
    keepalive 64;
    keepalive_requests 100000000;
  }
  server {
    listen 127.0.0.1:$NGINX_PORT backlog=4096;
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
} >"$BENCH_DIR/nginx.conf"
write_ferry_conf "$BENCH_DIR/ferry.yaml" "$ADMIN_PORT" "$FERRY_PORT" "$UP_PORT" "$FERRY_HCM_FILTERS"

start_nginx upstream "$BENCH_DIR/upstream.conf"
UP_PID=$BG_PID
wait_http upstream "$UP_PID" "http://127.0.0.1:$UP_PORT/"
start_nginx nginx "$BENCH_DIR/nginx.conf"
NGINX_PID=$BG_PID
wait_http nginx "$NGINX_PID" "http://127.0.0.1:$NGINX_PORT/"
start_ferry "$BENCH_DIR/ferry.yaml"
FERRY_PID=$BG_PID
wait_ferry "$FERRY_PID" "$ADMIN_PORT" "$FERRY_PORT"

body=$(curl -s -m 5 "http://127.0.0.1:$FERRY_PORT/")
[ "$body" = "hello world" ] || bench_log "warning: Ferry answered body '$body', expected 'hello world'"

TARGETS=(direct nginx ferry)
declare -A PORT=([direct]=$UP_PORT [nginx]=$NGINX_PORT [ferry]=$FERRY_PORT)
declare -A PID=([direct]=$UP_PID [nginx]=$NGINX_PID [ferry]=$FERRY_PID)
declare -A LOGNAME_OF=([direct]=upstream [nginx]=nginx [ferry]=ferry)
declare -A RPS P99 CPU ERRS

echo "http1: ${ROUNDS} rounds x ${SECS}s per target (+${WARMUP}s warm-up), wrk -t1 -c${BENCH_CONNECTIONS:-64}," \
  "upstream :$UP_PORT, nginx :$NGINX_PORT, ferry :$FERRY_PORT"
echo "$(load_average) (other work on the machine skews every number)"
if [ "$JIT_WARMUP" -gt 0 ]; then
  for t in "${TARGETS[@]}"; do run_wrk "$BENCH_DIR/jit-warm-$t.txt" "http://127.0.0.1:${PORT[$t]}/" "$JIT_WARMUP"; done
fi
for ((r = 1; r <= ROUNDS; r++)); do
  echo
  echo "round $r/$ROUNDS"
  printf '%-8s %12s %10s %10s %8s %12s\n' target rps p99_ms requests errors cpu_us/req
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
    # The direct run measures the upstream itself; its CPU is not a proxy's.
    cpu=-
    [ "$t" != direct ] && cpu=$(us_per_req $((after - before)) "$req")
    RPS[$t]="${RPS[$t]:-} $rps"
    P99[$t]="${P99[$t]:-} $p99"
    [ "$cpu" != - ] && CPU[$t]="${CPU[$t]:-} $cpu"
    ERRS[$t]=$((${ERRS[$t]:-0} + err))
    printf '%-8s %12.1f %10.3f %10d %8d %12s\n' "$t" "$rps" "$p99" "$req" "$err" "$cpu"
  done
done

echo
echo "summary (median of $ROUNDS rounds; $(load_average))"
printf '%-8s %12s %10s %8s %12s\n' target rps p99_ms errors cpu_us/req
declare -A M_RPS M_P99 M_CPU
for t in "${TARGETS[@]}"; do
  # shellcheck disable=SC2086 # the lists are space-separated numbers
  M_RPS[$t]=$(median ${RPS[$t]})
  # shellcheck disable=SC2086
  M_P99[$t]=$(median ${P99[$t]})
  M_CPU[$t]=-
  # shellcheck disable=SC2086
  [ -n "${CPU[$t]:-}" ] && M_CPU[$t]=$(median ${CPU[$t]})
  printf '%-8s %12.1f %10.3f %8d %12s\n' "$t" "${M_RPS[$t]}" "${M_P99[$t]}" "${ERRS[$t]}" "${M_CPU[$t]}"
done
r=$(ratio "${M_RPS[ferry]}" "${M_RPS[nginx]}")
echo "ratio ferry/nginx rps: $r"
echo "ratio ferry/nginx p99: $(ratio "${M_P99[ferry]}" "${M_P99[nginx]}")"
# CPU time per request barely moves when other work shares the machine; RPS and p99 do.
echo "ratio ferry/nginx cpu per request: $(ratio "${M_CPU[ferry]}" "${M_CPU[nginx]}")"
echo "ratio ferry/direct rps: $(ratio "${M_RPS[ferry]}" "${M_RPS[direct]}")"
if [ "$r" != n/a ] && awk -v r="$r" -v t="$TARGET_RATIO" 'BEGIN { exit !(r >= t) }'; then
  echo "target ferry/nginx rps >= $TARGET_RATIO: met"
else
  echo "target ferry/nginx rps >= $TARGET_RATIO: not met"
fi
echo
report_log ferry
