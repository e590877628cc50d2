#!/usr/bin/env bash
# Memory per idle downstream connection. Starts an upstream nginx and, per round, a fresh
# Ferry with one http_connection_manager listener routing to it; warms Ferry up, reads its
# RSS, opens BENCH_CONNS keep-alive connections that each carry one complete GET and then
# sit idle (bench/_memory_client.ts), reads the RSS again and prints KiB per connection
# (target <= 10 KiB). The RSS delta moves with V8's garbage-collection timing, so several
# rounds, each with its own Ferry process, and their median.
#
# Knobs (environment):
#   BENCH_CONNS        idle connections (default 10000)
#   BENCH_ROUNDS       rounds, each with a fresh Ferry (default 3)
#   BENCH_PARALLEL     connections being opened at once (default 256)
#   BENCH_WARM_CONNS   warm-up requests, each on a connection opened and closed (default BENCH_CONNS)
#   BENCH_SETTLE       seconds to wait before each RSS reading (default 3)
#   BENCH_TIMEOUT      seconds one round may take (default 180)
#   and those in bench/_common.sh (FERRY_CMD, FERRY_ARGS, BENCH_READY_TIMEOUT, BENCH_KEEP)
set -uo pipefail
# shellcheck source=bench/_common.sh
. "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

CONNS=${BENCH_CONNS:-10000}
ROUNDS=${BENCH_ROUNDS:-3}
PARALLEL=${BENCH_PARALLEL:-256}
SETTLE=${BENCH_SETTLE:-3}
TIMEOUT=${BENCH_TIMEOUT:-180}
TARGET_KIB=10

bench_init memory
need_pkgs nginx curl
find_nginx
command -v deno >/dev/null 2>&1 || bench_die "deno is not on PATH (the client is a Deno script)"

# Every connection is a descriptor in the client and in Ferry (plus Ferry's upstream pool).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
limit=$(ulimit -n)
if [ "$limit" != unlimited ] && [ "$limit" -lt $((CONNS + 1024)) ]; then
  bench_log "open-file limit is $limit (hard $(ulimit -Hn)): measuring $((limit - 1024)) connections instead of $CONNS"
  CONNS=$((limit - 1024))
fi
WARM=${BENCH_WARM_CONNS:-$CONNS}

UP_PORT=$(free_port)
write_upstream_conf "$BENCH_DIR/upstream.conf" "$UP_PORT"
start_nginx upstream "$BENCH_DIR/upstream.conf"
UP_PID=$BG_PID
wait_http upstream "$UP_PID" "http://127.0.0.1:$UP_PORT/"

# heap_kib ADMIN_PORT: V8 heap in use plus external memory (buffers) in KiB from the admin
# /memory endpoint (Envoy's shape: allocated, external), or nothing when it is not served.
heap_kib() {
  curl -s -m 5 "http://127.0.0.1:$1/memory" 2>/dev/null | tr -d ' \n' |
    sed -nE 's/.*"allocated":"?([0-9]+).*"external":"?([0-9]+).*/\1 \2/p' | awk '{ printf "%d\n", ($1 + $2) / 1024 }'
}

# per_conn AFTER BEFORE N: (AFTER - BEFORE) / N with two decimals.
per_conn() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.2f\n", (a - b) / n }'; }

# stop_pid PID: SIGTERM, a few seconds' grace, then SIGKILL.
stop_pid() {
  local i
  kill -TERM "$1" 2>/dev/null
  for ((i = 0; i < 50; i++)); do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$1" 2>/dev/null
  wait "$1" 2>/dev/null
}

echo "memory: $ROUNDS rounds, each a fresh Ferry: warm-up $WARM requests, then $CONNS idle keep-alive" \
  "connections (one GET each); $(load_average)"
printf '%-6s %10s %10s %10s %10s %8s %12s %12s\n' round start_kib base_kib open_kib closed_kib open \
  heap_kib/conn rss_kib/conn
PER=()
HEAP_PER=()
for ((r = 1; r <= ROUNDS; r++)); do
  FERRY_NAME=ferry-$r
  FERRY_PORT=$(free_port)
  ADMIN_PORT=$(free_port)
  write_ferry_conf "$BENCH_DIR/ferry-$r.yaml" "$ADMIN_PORT" "$FERRY_PORT" "$UP_PORT" "$FERRY_HCM_FILTERS"
  start_ferry "$BENCH_DIR/ferry-$r.yaml"
  FERRY_PID=$BG_PID
  wait_ferry "$FERRY_PID" "$ADMIN_PORT" "$FERRY_PORT"
  CLIENT=(deno run -A --quiet "$BENCH_ROOT/bench/_memory_client.ts" --port "$FERRY_PORT" --parallel "$PARALLEL")

  # Warm up: as many requests as the measurement makes, on connections opened and closed, so
  # JIT code, the upstream pool, buffers and the heap grown by per-request garbage all exist
  # before the baseline; the difference is then what holding the connections costs.
  rss_start=$(rss_kib "$FERRY_PID")
  timeout "$TIMEOUT" "${PIN_CLIENT[@]}" "${CLIENT[@]}" --conns "$WARM" --hold 0 >"$BENCH_DIR/warm-$r.txt" 2>&1 ||
    bench_log "warm-up client failed: $(tail -n 3 "$BENCH_DIR/warm-$r.txt")"
  grep -q "^READY opened=$WARM failed=0" "$BENCH_DIR/warm-$r.txt" ||
    bench_log "warm-up: $(head -n 1 "$BENCH_DIR/warm-$r.txt")"
  sleep "$SETTLE"
  check_alive "$FERRY_NAME" "$FERRY_PID"
  rss_before=$(rss_kib "$FERRY_PID")
  heap_before=$(heap_kib "$ADMIN_PORT")

  # The client holds the connections longer than the measurement can take; SIGTERM ends it.
  start_bg "client-$r" timeout "$TIMEOUT" "${PIN_CLIENT[@]}" "${CLIENT[@]}" --conns "$CONNS" --hold "$TIMEOUT"
  CLIENT_PID=$BG_PID
  deadline=$((SECONDS + TIMEOUT))
  while ! grep -q '^READY' "$BENCH_DIR/client-$r.log" 2>/dev/null; do
    kill -0 "$CLIENT_PID" 2>/dev/null || {
      cat "$BENCH_DIR/client-$r.log" >&2
      bench_die "client exited before opening its connections"
    }
    [ "$SECONDS" -lt "$deadline" ] || bench_die "connections not open after ${TIMEOUT}s"
    sleep 0.5
  done
  ready=$(grep -m1 '^READY' "$BENCH_DIR/client-$r.log")
  opened=$(sed -nE 's/^READY opened=([0-9]+).*/\1/p' <<<"$ready")
  [ "$opened" = "$CONNS" ] || bench_log "round $r: $ready"
  sleep "$SETTLE"
  check_alive "$FERRY_NAME" "$FERRY_PID"
  rss_loaded=$(rss_kib "$FERRY_PID")
  heap_loaded=$(heap_kib "$ADMIN_PORT")
  alive=$(grep '^ALIVE' "$BENCH_DIR/client-$r.log" | tail -n 1 | cut -d' ' -f2)
  [ -z "$alive" ] || [ "$alive" = "$opened" ] || bench_log "round $r: Ferry closed $((opened - alive)) idle connections"

  stop_pid "$CLIENT_PID"
  sleep "$SETTLE"
  rss_after=$(rss_kib "$FERRY_PID")
  stop_pid "$FERRY_PID"

  [ "${opened:-0}" -gt 0 ] || {
    report_log "$FERRY_NAME"
    bench_die "round $r: no connection opened"
  }
  per=$(per_conn "$rss_loaded" "$rss_before" "$opened")
  heap_per=-
  if [ -n "$heap_before" ] && [ -n "$heap_loaded" ]; then
    heap_per=$(per_conn "$heap_loaded" "$heap_before" "$opened")
    HEAP_PER+=("$heap_per")
  fi
  PER+=("$per")
  printf '%-6s %10s %10s %10s %10s %8s %12s %12s\n' "$r" "$rss_start" "$rss_before" "$rss_loaded" "$rss_after" \
    "$opened" "$heap_per" "$per"
done

echo
echo "rss columns: Ferry's VmRSS at start, after warm-up (baseline), with the connections open, after they closed;"
echo "heap: V8 heap used + external from admin /memory (garbage not yet collected included)"
[ "${#HEAP_PER[@]}" -gt 0 ] && echo "heap+external kib per idle connection (median): $(median "${HEAP_PER[@]}")"
m=$(median "${PER[@]}")
echo "kib per idle connection: $m (median of $ROUNDS; rounds: ${PER[*]})"
if awk -v p="$m" -v t="$TARGET_KIB" 'BEGIN { exit !(p <= t) }'; then
  echo "target kib per connection <= $TARGET_KIB: met"
else
  echo "target kib per connection <= $TARGET_KIB: not met"
fi
echo
report_log "$FERRY_NAME"
