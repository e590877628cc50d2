#!/usr/bin/env bash
# Resilience soak: wrk load through Ferry to 3 nginx upstreams while a loop kills one upstream
# (SIGKILL of its master and worker: connections reset mid-flight, no FIN) and restarts it a
# moment later, round robin, for the whole run. Loopback only, bounded in time.
#
# Ferry's cluster has active HTTP health checks, outlier detection (gateway failures), a
# retry policy (connect-failure, reset, 5xx; per-try timeout) and a retry budget, so the
# target is: every request answered 2xx while two upstreams live, no 502 from stale pooled
# connections, and Ferry's RSS flat from start to end.
#
# Knobs (environment):
#   SOAK_SECONDS       length of the load (default 60)
#   SOAK_KILL_EVERY    whole seconds between kills (default 3; longer than SOAK_SECONDS: no kills)
#   SOAK_DOWN          seconds an upstream stays down (default 1.5)
#   BENCH_CONNECTIONS  wrk connections (default 32)
#   and those in bench/_common.sh (FERRY_CMD, FERRY_ARGS, BENCH_READY_TIMEOUT, BENCH_KEEP)
#
# Prints requests, responses by status, socket errors by kind, p99, Ferry's stats for retries,
# ejections and health checks, and Ferry's RSS at start and end.
set -uo pipefail
# shellcheck source=bench/_common.sh
. "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

SECS=${SOAK_SECONDS:-60}
KILL_EVERY=${SOAK_KILL_EVERY:-3}
DOWN=${SOAK_DOWN:-1.5}
CONNS=${BENCH_CONNECTIONS:-32}

bench_init soak
need_pkgs nginx wrk curl
find_nginx

FERRY_PORT=$(free_port)
ADMIN_PORT=$(free_port)
UP_PORTS=("$(free_port)" "$(free_port)" "$(free_port)")
UP_PIDS=(0 0 0)

# write_up_conf I: like write_upstream_conf, with pid file and temp paths of its own (up$I).
write_up_conf() {
  local i=$1
  {
    nginx_common "up$i"
    echo "http {"
    nginx_http_common "up$i"
    echo "  server {"
    echo "    listen 127.0.0.1:${UP_PORTS[$i]} backlog=4096 reuseport;"
    printf '%s\n' '    location / { return 200 "hello world\n"; }'
    echo "  }"
    echo "}"
  } >"$BENCH_DIR/up$i.conf"
}

start_upstream() {
  local i=$1
  write_up_conf "$i"
  start_nginx "up$i" "$BENCH_DIR/up$i.conf"
  UP_PIDS[i]=$BG_PID
  # Killed on purpose later: no job-control notice from this shell.
  disown "$BG_PID" 2>/dev/null
}

# kill_upstream I: SIGKILL the nginx master and its workers (by parent pid) — a crash.
kill_upstream() {
  local i=$1 master=${UP_PIDS[$1]} kids
  kids=$(ps -o pid= --ppid "$master" 2>/dev/null | tr -d ' ')
  # shellcheck disable=SC2086 # one word per worker pid
  kill -KILL "$master" $kids 2>/dev/null
  wait "$master" 2>/dev/null
}

for i in 0 1 2; do start_upstream "$i"; done
for i in 0 1 2; do wait_http "up$i" "${UP_PIDS[$i]}" "http://127.0.0.1:${UP_PORTS[$i]}/"; done

eps=""
for p in "${UP_PORTS[@]}"; do
  eps="$eps
        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: $p } } }"
done
cat >"$BENCH_DIR/ferry.yaml" <<EOF
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: $ADMIN_PORT } }
static_resources:
  listeners:
  - name: soak
    address: { socket_address: { address: 127.0.0.1, port_value: $FERRY_PORT } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: soak
          route_config:
            name: soak
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route:
                  cluster: upstream
                  timeout: 5s
                  retry_policy:
                    retry_on: connect-failure,reset,5xx
                    num_retries: 3
                    per_try_timeout: 1s
                    retry_back_off: { base_interval: 0.005s, max_interval: 0.05s }
          http_filters:
          - name: envoy.filters.http.router
            typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
  clusters:
  - name: upstream
    type: STATIC
    connect_timeout: 0.25s
    health_checks:
    - timeout: 0.5s
      interval: 0.5s
      no_traffic_interval: 0.5s
      unhealthy_threshold: 2
      healthy_threshold: 1
      http_health_check: { path: / }
    outlier_detection:
      consecutive_gateway_failure: 3
      enforcing_consecutive_gateway_failure: 100
      consecutive_5xx: 5
      interval: 1s
      base_ejection_time: 1s
      max_ejection_time: 5s
      max_ejection_percent: 34
    circuit_breakers:
      thresholds:
      - retry_budget: { budget_percent: { value: 100 }, min_retry_concurrency: 32 }
        track_remaining: true
    load_assignment:
      cluster_name: upstream
      endpoints:
      - lb_endpoints:$eps
EOF

start_ferry "$BENCH_DIR/ferry.yaml"
FERRY_PID=$BG_PID
wait_ferry "$FERRY_PID" "$ADMIN_PORT" "$FERRY_PORT"

# Count every response status and keep wrk's socket error kinds.
cat >"$BENCH_DIR/count.lua" <<'LUA'
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local all = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for k, v in pairs(s) do all[k] = (all[k] or 0) + v end
  end
  local keys = {}
  for k in pairs(all) do table.insert(keys, k) end
  table.sort(keys)
  for _, k in ipairs(keys) do io.write(string.format("status %d %d\n", k, all[k])) end
  local e = summary.errors
  io.write(string.format("errors connect %d read %d write %d timeout %d status %d\n",
    e.connect, e.read, e.write, e.timeout, e.status))
  io.write(string.format("requests %d p99_ms %.3f\n", summary.requests, latency:percentile(99) / 1000))
end
LUA

# Warm-up, so the start RSS includes JIT code and pools.
timeout 20 wrk -t1 -c"$CONNS" -d3s "http://127.0.0.1:$FERRY_PORT/" >/dev/null 2>&1 || true
sleep 1
RSS_START=$(rss_kib "$FERRY_PID")
bench_log "load ${SECS}s, $CONNS connections; killing one of 3 upstreams every ${KILL_EVERY}s for ${DOWN}s"

(
  i=0
  end=$((SECONDS + SECS))
  while [ $((SECONDS + 1)) -lt "$end" ]; do
    next=$((SECONDS + KILL_EVERY))
    while [ "$SECONDS" -lt "$next" ] && [ "$SECONDS" -lt "$end" ]; do sleep 0.2; done
    [ "$SECONDS" -ge "$end" ] && break
    echo "kill $i"
    kill_upstream "$i"
    sleep "$DOWN"
    echo "start $i"
    rm -f "$BENCH_DIR/up$i.pid"
    "$NGINX_BIN" -p "$BENCH_DIR" -e "$BENCH_DIR/up$i-error.log" -c "$BENCH_DIR/up$i.conf" \
      >>"$BENCH_DIR/up$i.log" 2>&1 &
    UP_PIDS[i]=$!
    echo "pid $i $!"
    i=$(((i + 1) % 3))
  done
) >"$BENCH_DIR/killer.log" 2>&1 &
KILLER=$!
BENCH_PIDS+=("$KILLER")

# The killer restarts upstreams in its own subshell; learn their pids for kill_upstream and cleanup.
track_killer() {
  local line idx pid
  while read -r line; do
    case $line in
      pid\ *)
        read -r _ idx pid <<<"$line"
        UP_PIDS[idx]=$pid
        BENCH_PIDS+=("$pid")
        ;;
    esac
  done <"$BENCH_DIR/killer.log"
}

# Ferry's RSS every 5 s, to tell growth from garbage-collection swings.
(
  while kill -0 "$FERRY_PID" 2>/dev/null; do
    sleep 5
    rss_kib "$FERRY_PID"
  done
) >"$BENCH_DIR/rss.log" 2>/dev/null &
SAMPLER=$!
BENCH_PIDS+=("$SAMPLER")

timeout $((SECS + 30)) "${PIN_CLIENT[@]}" wrk -t1 -c"$CONNS" -d"${SECS}s" --latency -s "$BENCH_DIR/count.lua" \
  "http://127.0.0.1:$FERRY_PORT/" >"$BENCH_DIR/wrk.txt" 2>&1 || true
wait "$KILLER" 2>/dev/null
track_killer
check_alive ferry "$FERRY_PID"
sleep 1
RSS_END=$(rss_kib "$FERRY_PID")

stat_of() {
  curl -s "http://127.0.0.1:$ADMIN_PORT/stats?format=json&filter=$1" |
    tr '{' '\n' | sed -n 's/.*"name":"\([^"]*\)","value":\([0-9.]*\).*/\1 \2/p'
  echo
}

echo "=== soak: ${SECS}s, $CONNS connections, 3 upstreams, kill every ${KILL_EVERY}s for ${DOWN}s ==="
echo "kills: $(grep -c '^kill' "$BENCH_DIR/killer.log")"
grep -E '^(status|errors|requests)' "$BENCH_DIR/wrk.txt"
awk '/^status/ { n += $3; if ($2 >= 200 && $2 < 300) ok += $3; else if ($2 == 502) e502 += $3; else if ($2 >= 500) e5 += $3; else oth += $3 }
  END { printf "2xx %d, 502 %d, other 5xx %d, other non-2xx %d\n", ok, e502 + 0, e5 + 0, oth + 0 }' "$BENCH_DIR/wrk.txt"
grep -E 'Requests/sec' "$BENCH_DIR/wrk.txt"
echo "--- Ferry stats ---"
stat_of 'cluster\.upstream\.(upstream_rq_retry|upstream_rq_retry_success|upstream_rq_retry_overflow|upstream_cx_connect_fail|upstream_rq_per_try_timeout|upstream_cx_destroy_remote_with_active_rq|upstream_rq_5xx|upstream_rq_2xx|membership_healthy|lb_healthy_panic)$'
stat_of 'cluster\.upstream\.(outlier_detection\.ejections_enforced_total|health_check\.(attempt|failure|success))$'
stat_of 'http\.soak\.downstream_rq_(2xx|5xx)$'
kill "$SAMPLER" 2>/dev/null
echo "ferry rss start ${RSS_START} KiB, end ${RSS_END} KiB; every 5 s: $(head -n $((SECS / 5)) "$BENCH_DIR/rss.log" | tr '\n' ' ')"
report_log ferry
