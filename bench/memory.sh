#!/usr/bin/env bash
# Memory per idle downstream connection. Starts an upstream nginx and Ferry with one
# http_connection_manager listener routing to it, warms Ferry up, reads its RSS, opens
# BENCH_CONNS keep-alive connections that each carry one complete GET and then sit idle
# (bench/_memory_client.ts), reads the RSS again and prints KiB per connection
# (target <= 10 KiB).
#
# Knobs (environment):
#   BENCH_CONNS        idle connections (default 10000)
#   BENCH_PARALLEL     connections being opened at once (default 256)
#   BENCH_WARM_CONNS   warm-up requests, each on a connection opened and closed (default BENCH_CONNS)
#   BENCH_SETTLE       seconds to wait before each RSS reading (default 3)
#   BENCH_TIMEOUT      seconds the whole measurement may take (default 180)
#   and those in bench/_common.sh (FERRY_CMD, FERRY_ARGS, BENCH_READY_TIMEOUT, BENCH_KEEP)
set -uo pipefail
# shellcheck source=bench/_common.sh
. "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

CONNS=${BENCH_CONNS:-10000}
PARALLEL=${BENCH_PARALLEL:-256}
WARM=${BENCH_WARM_CONNS:-$CONNS}
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

UP_PORT=$(free_port)
FERRY_PORT=$(free_port)
ADMIN_PORT=$(free_port)
write_upstream_conf "$BENCH_DIR/upstream.conf" "$UP_PORT"
write_ferry_conf "$BENCH_DIR/ferry.yaml" "$ADMIN_PORT" "$FERRY_PORT" "$UP_PORT" "$FERRY_HCM_FILTERS"

start_nginx upstream "$BENCH_DIR/upstream.conf"
UP_PID=$BG_PID
wait_http upstream "$UP_PID" "http://127.0.0.1:$UP_PORT/"
start_ferry "$BENCH_DIR/ferry.yaml"
FERRY_PID=$BG_PID
wait_ferry "$FERRY_PID" "$ADMIN_PORT" "$FERRY_PORT"

# heap_kib ADMIN_PORT: V8 heap in use plus external memory (buffers) in KiB from the admin
# /memory endpoint (Envoy's shape: allocated, external), or nothing when it is not served.
heap_kib() {
  curl -s -m 5 "http://127.0.0.1:$1/memory" 2>/dev/null | tr -d ' \n' |
    sed -nE 's/.*"allocated":"?([0-9]+).*"external":"?([0-9]+).*/\1 \2/p' | awk '{ printf "%d\n", ($1 + $2) / 1024 }'
}

CLIENT=(deno run -A --quiet "$BENCH_ROOT/bench/_memory_client.ts" --port "$FERRY_PORT" --parallel "$PARALLEL")

# Warm up: as many requests as the measurement makes, on connections opened and closed, so
# JIT code, the upstream pool, buffers and the heap grown by per-request garbage all exist
# before the baseline; the difference is then what holding the connections costs.
rss_start=$(rss_kib "$FERRY_PID")
timeout "$TIMEOUT" "${PIN_CLIENT[@]}" "${CLIENT[@]}" --conns "$WARM" --hold 0 >"$BENCH_DIR/warm.txt" 2>&1 ||
  bench_log "warm-up client failed: $(tail -n 3 "$BENCH_DIR/warm.txt")"
grep -q "^READY opened=$WARM failed=0" "$BENCH_DIR/warm.txt" || bench_log "warm-up: $(head -n 1 "$BENCH_DIR/warm.txt")"
sleep "$SETTLE"
check_alive ferry "$FERRY_PID"
rss_before=$(rss_kib "$FERRY_PID")
heap_before=$(heap_kib "$ADMIN_PORT")

# Hold the connections a little longer than the measurement can take; SIGTERM ends it early.
start_bg client timeout "$TIMEOUT" "${PIN_CLIENT[@]}" "${CLIENT[@]}" --conns "$CONNS" --hold "$TIMEOUT"
CLIENT_PID=$BG_PID
deadline=$((SECONDS + TIMEOUT))
while ! grep -q '^READY' "$BENCH_DIR/client.log" 2>/dev/null; do
  kill -0 "$CLIENT_PID" 2>/dev/null || {
    cat "$BENCH_DIR/client.log" >&2
    bench_die "client exited before opening its connections"
  }
  [ "$SECONDS" -lt "$deadline" ] || bench_die "connections not open after ${TIMEOUT}s"
  sleep 0.5
done
ready=$(grep -m1 '^READY' "$BENCH_DIR/client.log")
opened=$(sed -nE 's/^READY opened=([0-9]+).*/\1/p' <<<"$ready")
sleep "$SETTLE"
check_alive ferry "$FERRY_PID"
rss_loaded=$(rss_kib "$FERRY_PID")
heap_loaded=$(heap_kib "$ADMIN_PORT")
alive=$(grep '^ALIVE' "$BENCH_DIR/client.log" | tail -n 1 | cut -d' ' -f2)

kill -TERM "$CLIENT_PID" 2>/dev/null
wait "$CLIENT_PID" 2>/dev/null
sleep "$SETTLE"
rss_after=$(rss_kib "$FERRY_PID")

echo "memory: Ferry pid $FERRY_PID, $CONNS idle keep-alive connections (one GET each) on :$FERRY_PORT;" \
  "warm-up $WARM requests; $(load_average)"
echo "client: $ready"
echo "connections still open at measurement: ${alive:-$opened}"
printf '%-34s %10s KiB\n' "rss at start" "$rss_start" "rss after warm-up (baseline)" "$rss_before" \
  "rss with connections open" "$rss_loaded" "rss after they closed" "$rss_after"
if [ "${opened:-0}" -gt 0 ]; then
  per=$(awk -v a="$rss_loaded" -v b="$rss_before" -v n="$opened" 'BEGIN { printf "%.2f\n", (a - b) / n }')
  if [ -n "$heap_before" ] && [ -n "$heap_loaded" ]; then
    printf '%-34s %10s KiB\n' "heap+external, baseline (/memory)" "$heap_before" \
      "heap+external, connections open" "$heap_loaded"
    echo "heap+external kib per idle connection: $(awk -v a="$heap_loaded" -v b="$heap_before" -v n="$opened" \
      'BEGIN { printf "%.2f\n", (a - b) / n }') (includes garbage not yet collected)"
  fi
  echo "kib per idle connection: $per"
  if awk -v p="$per" -v t="$TARGET_KIB" 'BEGIN { exit !(p <= t) }'; then
    echo "target kib per connection <= $TARGET_KIB: met"
  else
    echo "target kib per connection <= $TARGET_KIB: not met"
  fi
else
  bench_log "no connection opened"
  report_log ferry
  exit 1
fi
echo
report_log ferry
