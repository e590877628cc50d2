#!/usr/bin/env bash
# Event-loop scaling: Ferry with --concurrency 1 and N beside nginx with 1 and N worker
# processes, wrk against each, interleaved (nginx-1, nginx-N, ferry-1, ferry-N, ...) so drift on
# the machine hits all alike. Nothing is pinned: the servers may use every core, and wrk
# (-t2) shares them, so on a small machine the client takes its part of the CPU too.
#
# Modes (BENCH_MODE):
#   direct  (default) each server answers "hello world\n" itself (Ferry: a direct_response
#           route; nginx: return 200): what the event loops themselves scale to
#   proxy   each server proxies to a shared nginx upstream (1 worker) with keep-alive, as
#           bench/http1.sh does
#
# Knobs (environment):
#   BENCH_WORKERS      N (default: the number of cores, at least 2)
#   BENCH_SECONDS      measured seconds per run (default 10)
#   BENCH_ROUNDS       rounds (default 3)
#   BENCH_WARMUP       warm-up seconds before each measured run (default 2)
#   BENCH_CONNECTIONS  wrk connections (default 64)
#   and FERRY_CMD, BENCH_READY_TIMEOUT, BENCH_KEEP from bench/_common.sh (FERRY_ARGS is
#   ignored: this script sets --concurrency itself)
#
# Prints a table per round, then per target the median RPS, p99, RSS, and the ratios
#   ferry N/1: 1.62   nginx N/1: 1.80   ferry/nginx at 1: 0.55   at N: 0.50
set -uo pipefail
# shellcheck source=bench/_common.sh
. "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

SECS=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
WARMUP=${BENCH_WARMUP:-2}
MODE=${BENCH_MODE:-direct}
CORES=$(nproc 2>/dev/null || echo 1)
N=${BENCH_WORKERS:-$((CORES < 2 ? 2 : CORES))}
case $MODE in direct | proxy) ;; *) bench_die "BENCH_MODE must be direct or proxy, not $MODE" ;; esac

bench_init workers
need_pkgs nginx wrk curl
find_nginx
# Every server may use every core (that is what is measured); so may wrk.
PIN_SERVER=()
PIN_CLIENT=()

UP_PORT=$(free_port)

# nginx_conf FILE PORT WORKERS
nginx_conf() {
  local file=$1 port=$2 workers=$3 name
  name=$(basename "$file" .conf)
  {
    nginx_common "$name" | sed "s/^worker_processes 1;/worker_processes $workers;/"
    echo "http {"
    nginx_http_common "$name"
    if [ "$MODE" = proxy ]; then
      echo "  upstream up { server 127.0.0.1:$UP_PORT; keepalive 64; }"
    fi
    echo "  server {"
    echo "    listen 127.0.0.1:$port reuseport backlog=4096;"
    if [ "$MODE" = proxy ]; then
      echo "    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection \"\"; }"
    else
      printf '%s\n' '    location / { return 200 "hello world\n"; }'
    fi
    echo "  }"
    echo "}"
  } >"$file"
}

# ferry_conf FILE ADMIN PORT
ferry_conf() {
  local file=$1 admin=$2 port=$3 route
  if [ "$MODE" = proxy ]; then
    route='{ match: { prefix: "/" }, route: { cluster: upstream } }'
  else
    route='{ match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: "hello world\n" } } }'
  fi
  cat >"$file" <<EOF
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: $admin } }
static_resources:
  listeners:
  - name: bench
    address: { socket_address: { address: 127.0.0.1, port_value: $port } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          route_config:
            virtual_hosts: [{ name: all, domains: ["*"], routes: [ $route ] }]
          http_filters:
          - name: envoy.filters.http.router
            typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
  clusters:
  - name: upstream
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: upstream
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: $UP_PORT } } } }] }]
EOF
}

if [ "$MODE" = proxy ]; then
  write_upstream_conf "$BENCH_DIR/upstream.conf" "$UP_PORT"
  start_nginx upstream "$BENCH_DIR/upstream.conf"
  wait_http upstream "$BG_PID" "http://127.0.0.1:$UP_PORT/"
fi

TARGETS=(nginx-1 "nginx-$N" ferry-1 "ferry-$N")
declare -A PORT PID
for t in "${TARGETS[@]}"; do
  PORT[$t]=$(free_port)
  w=${t#*-}
  case $t in
    nginx-*)
      nginx_conf "$BENCH_DIR/$t.conf" "${PORT[$t]}" "$w"
      start_nginx "$t" "$BENCH_DIR/$t.conf"
      PID[$t]=$BG_PID
      wait_http "$t" "$BG_PID" "http://127.0.0.1:${PORT[$t]}/"
      ;;
    ferry-*)
      admin=$(free_port)
      ferry_conf "$BENCH_DIR/$t.yaml" "$admin" "${PORT[$t]}"
      FERRY_NAME=$t FERRY_ARGS="--concurrency $w -l warn" start_ferry "$BENCH_DIR/$t.yaml"
      PID[$t]=$BG_PID
      FERRY_NAME=$t wait_ferry "$BG_PID" "$admin" "${PORT[$t]}"
      ;;
  esac
done

wrk2() {
  timeout $(($2 + 30)) wrk -t2 -c"${BENCH_CONNECTIONS:-64}" -d"$2s" --latency "$1" >"$3" 2>&1 || true
}

bench_log "$MODE, $N workers vs 1, $CORES cores, ${SECS}s x $ROUNDS rounds, $(load_average)"
for t in "${TARGETS[@]}"; do wrk2 "http://127.0.0.1:${PORT[$t]}/" 5 /dev/null; done
declare -A RPS P99 RSS
for ((r = 1; r <= ROUNDS; r++)); do
  printf '%-10s %12s %10s %8s %10s\n' "round $r" rps p99_ms errors rss_mib
  for t in "${TARGETS[@]}"; do
    check_alive "$t" "${PID[$t]}"
    url="http://127.0.0.1:${PORT[$t]}/"
    wrk2 "$url" "$WARMUP" /dev/null
    out=$BENCH_DIR/$t-$r.wrk
    wrk2 "$url" "$SECS" "$out"
    read -r rps p99 _req err <<<"$(parse_wrk "$out")"
    # nginx: the master and its workers; Ferry: one process, every isolate inside.
    rss=0
    for p in ${PID[$t]} $(pgrep -P "${PID[$t]}" 2>/dev/null); do rss=$((rss + $(rss_kib "$p" || echo 0))); done
    printf '%-10s %12s %10s %8s %10s\n' "$t" "$rps" "$p99" "$err" "$((rss / 1024))"
    RPS[$t]="${RPS[$t]:-} $rps"
    P99[$t]="${P99[$t]:-} $p99"
    RSS[$t]=$((rss / 1024))
  done
done

echo
printf '%-10s %12s %10s %10s\n' median rps p99_ms rss_mib
declare -A MED
for t in "${TARGETS[@]}"; do
  # shellcheck disable=SC2086 # word splitting intended: a list of numbers
  MED[$t]=$(median ${RPS[$t]})
  # shellcheck disable=SC2086
  printf '%-10s %12s %10s %10s\n' "$t" "${MED[$t]}" "$(median ${P99[$t]})" "${RSS[$t]}"
done
echo "ferry $N/1: $(ratio "${MED[ferry-$N]}" "${MED[ferry-1]}")   nginx $N/1: $(ratio "${MED[nginx-$N]}" "${MED[nginx-1]}")" \
  "  ferry/nginx at 1: $(ratio "${MED[ferry-1]}" "${MED[nginx-1]}")   at $N: $(ratio "${MED[ferry-$N]}" "${MED[nginx-$N]}")"
for t in "${TARGETS[@]}"; do report_log "$t" | grep -v '^\s*$' | grep -iv 'notice' || true; done
