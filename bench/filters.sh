#!/usr/bin/env bash
# HTTP filter chain cost: wrk through Ferry with the router alone vs a chain of five filters
# (cors, rbac, local_ratelimit with a huge bucket, header_mutation, router), side by side in
# one run, interleaved (router, chain, router, chain, ...) so drift on the machine hits both.
#
# Two Ferry processes (one worker each, pinned to core 0; wrk -t1 on core 1) proxy to one
# nginx upstream answering "hello world\n". Every request carries an `origin` header from an
# allowed origin, so the CORS filter does its full work (the response gets
# access-control-allow-origin); RBAC allows GETs by a header permission and an `any`
# principal; the bucket never empties; header_mutation adds one request and one response
# header. Without the rbac filter in filters/http/mod.ts the chain uses fault with 0% instead
# (and says so).
#
# Knobs (environment):
#   BENCH_SECONDS      measured seconds per run (default 10)
#   BENCH_ROUNDS       rounds (default 3)
#   BENCH_WARMUP       warm-up seconds before each measured run (default 2)
#   BENCH_JIT_WARMUP   seconds of load on each target once before round 1 (default 5)
#   BENCH_SIM_ROUNDS   rounds with both targets under load at once (default 3; 0 skips them)
#   BENCH_CONNECTIONS  wrk connections (default 64)
#   and those in bench/_common.sh (FERRY_CMD, FERRY_ARGS, BENCH_READY_TIMEOUT, BENCH_KEEP)
#
# Prints a table per round, the medians, and
#   ratio chain/router rps: 0.93
# (target >= 0.90: at most 10% fewer requests per second), plus CPU microseconds per request; then rounds with
# both targets loaded at the same moment (as bench/ab.sh), ending with
#   simultaneous chain/router cpu per request: 1.05
set -uo pipefail
# shellcheck source=bench/_common.sh
. "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

SECS=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
WARMUP=${BENCH_WARMUP:-2}
JIT_WARMUP=${BENCH_JIT_WARMUP:-5}
SIM_ROUNDS=${BENCH_SIM_ROUNDS:-3}
TARGET_RATIO=0.90
ORIGIN="https://app.bench.example"
T=type.googleapis.com/envoy.extensions.filters.http

bench_init filters
need_pkgs nginx wrk curl
find_nginx

UP_PORT=$(free_port)
ROUTER_PORT=$(free_port)
ROUTER_ADMIN=$(free_port)
CHAIN_PORT=$(free_port)
CHAIN_ADMIN=$(free_port)

if grep -q rbacFilterFactory "$BENCH_ROOT/filters/http/mod.ts"; then
  SECOND="          - name: envoy.filters.http.rbac
            typed_config:
              \"@type\": $T.rbac.v3.RBAC
              rules:
                action: ALLOW
                policies:
                  gets:
                    permissions: [{ header: { name: \":method\", string_match: { exact: GET } } }]
                    principals: [{ any: true }]"
  SECOND_NAME=rbac
else
  bench_log "no rbac filter in this build: the chain uses fault (0%) in its place"
  SECOND="          - name: envoy.filters.http.fault
            typed_config:
              \"@type\": $T.fault.v3.HTTPFault
              abort: { http_status: 503, percentage: { numerator: 0 } }"
  SECOND_NAME="fault 0%"
fi

# hcm FILTERS: the connection manager with one catch-all route (and a CORS policy on its
# virtual host) and the given http_filters before the router.
hcm() {
  cat <<EOF
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          route_config:
            name: bench
            virtual_hosts:
            - name: all
              domains: ["*"]
              typed_per_filter_config:
                envoy.filters.http.cors:
                  "@type": $T.cors.v3.CorsPolicy
                  allow_origin_string_match: [{ exact: "$ORIGIN" }]
                  allow_methods: "GET, POST"
                  expose_headers: "x-bench"
              routes:
              - match: { prefix: "/" }
                route: { cluster: upstream }
          http_filters:
$1
          - name: envoy.filters.http.router
            typed_config:
              "@type": $T.router.v3.Router
EOF
}

CHAIN="          - name: envoy.filters.http.cors
            typed_config: { \"@type\": $T.cors.v3.Cors }
$SECOND
          - name: envoy.filters.http.local_ratelimit
            typed_config:
              \"@type\": $T.local_ratelimit.v3.LocalRateLimit
              stat_prefix: bench
              token_bucket: { max_tokens: 1000000000, tokens_per_fill: 1000000000, fill_interval: 1s }
              filter_enabled: { default_value: { numerator: 100 } }
              filter_enforced: { default_value: { numerator: 100 } }
          - name: envoy.filters.http.header_mutation
            typed_config:
              \"@type\": $T.header_mutation.v3.HeaderMutation
              mutations:
                request_mutations: [{ append: { header: { key: x-via-chain, value: \"1\" } } }]
                response_mutations: [{ append: { header: { key: x-bench, value: \"1\" } } }]"

write_upstream_conf "$BENCH_DIR/upstream.conf" "$UP_PORT"
write_ferry_conf "$BENCH_DIR/router.yaml" "$ROUTER_ADMIN" "$ROUTER_PORT" "$UP_PORT" "$(hcm "")"
write_ferry_conf "$BENCH_DIR/chain.yaml" "$CHAIN_ADMIN" "$CHAIN_PORT" "$UP_PORT" "$(hcm "$CHAIN")"

start_nginx upstream "$BENCH_DIR/upstream.conf"
UP_PID=$BG_PID
wait_http upstream "$UP_PID" "http://127.0.0.1:$UP_PORT/"
FERRY_NAME=router
start_ferry "$BENCH_DIR/router.yaml"
ROUTER_PID=$BG_PID
wait_ferry "$ROUTER_PID" "$ROUTER_ADMIN" "$ROUTER_PORT"
FERRY_NAME=chain
start_ferry "$BENCH_DIR/chain.yaml"
CHAIN_PID=$BG_PID
wait_ferry "$CHAIN_PID" "$CHAIN_ADMIN" "$CHAIN_PORT"

# The chain must really run every filter: CORS and header_mutation show on the response.
head=$(curl -s -m 5 -D - -o /dev/null -H "origin: $ORIGIN" "http://127.0.0.1:$CHAIN_PORT/")
grep -qi "^access-control-allow-origin: $ORIGIN" <<<"$head" || bench_die "chain: no CORS header on the response"
grep -qi '^x-bench: 1' <<<"$head" || bench_die "chain: no header_mutation header on the response"

# wrk_origin OUT URL SECONDS: run_wrk with the origin header.
wrk_origin() {
  timeout $(($3 + 30)) "${PIN_CLIENT[@]}" wrk -t1 -c"${BENCH_CONNECTIONS:-64}" -d"${3}s" --latency \
    -H "origin: $ORIGIN" "$2" >"$1" 2>&1 || true
}

TARGETS=(router chain)
declare -A PORT=([router]=$ROUTER_PORT [chain]=$CHAIN_PORT)
declare -A PID=([router]=$ROUTER_PID [chain]=$CHAIN_PID)
declare -A RPS P99 CPU ERRS

echo "filters: ${ROUNDS} rounds x ${SECS}s per target (+${WARMUP}s warm-up), wrk -t1 -c${BENCH_CONNECTIONS:-64}," \
  "router alone :$ROUTER_PORT vs cors, $SECOND_NAME, local_ratelimit, header_mutation, router :$CHAIN_PORT"
echo "$(load_average) (other work on the machine skews every number)"
if [ "$JIT_WARMUP" -gt 0 ]; then
  for t in "${TARGETS[@]}"; do wrk_origin "$BENCH_DIR/jit-warm-$t.txt" "http://127.0.0.1:${PORT[$t]}/" "$JIT_WARMUP"; done
fi
for ((r = 1; r <= ROUNDS; r++)); do
  echo
  echo "round $r/$ROUNDS"
  printf '%-8s %12s %10s %10s %8s %12s\n' target rps p99_ms requests errors cpu_us/req
  for t in "${TARGETS[@]}"; do
    url="http://127.0.0.1:${PORT[$t]}/"
    [ "$WARMUP" -gt 0 ] && wrk_origin "$BENCH_DIR/warm-$t.txt" "$url" "$WARMUP"
    before=$(cpu_ticks "${PID[$t]}")
    wrk_origin "$BENCH_DIR/wrk-$t-$r.txt" "$url" "$SECS"
    after=$(cpu_ticks "${PID[$t]}")
    check_alive "$t" "${PID[$t]}"
    read -r rps p99 req err <<<"$(parse_wrk "$BENCH_DIR/wrk-$t-$r.txt")"
    if [ "$err" = -1 ]; then
      bench_log "wrk gave no result for $t:"
      cat "$BENCH_DIR/wrk-$t-$r.txt" >&2
      err=0
    fi
    cpu=$(us_per_req $((after - before)) "$req")
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
r=$(ratio "${M_RPS[chain]}" "${M_RPS[router]}")
echo "ratio chain/router rps: $r"
echo "ratio chain/router p99: $(ratio "${M_P99[chain]}" "${M_P99[router]}")"
echo "ratio chain/router cpu per request: $(ratio "${M_CPU[chain]}" "${M_CPU[router]}")"
if [ "$r" != n/a ] && awk -v r="$r" -v t="$TARGET_RATIO" 'BEGIN { exit !(r >= t) }'; then
  echo "target chain/router rps >= $TARGET_RATIO: met"
else
  echo "target chain/router rps >= $TARGET_RATIO: not met"
fi

# Second view, as bench/ab.sh does: both Ferry processes under load at the same moment (each with its own wrk), so
# drift on a shared machine hits both alike; CPU microseconds per request of each, chain/router per round.
echo
echo "simultaneous: ${SIM_ROUNDS} rounds x ${SECS}s, both targets under load at once"
printf '%-6s %12s %12s %14s %14s %8s\n' round router_rps chain_rps router_us/req chain_us/req ratio
SIM=""
for ((r = 1; r <= SIM_ROUNDS; r++)); do
  cr=$(cpu_ticks "$ROUTER_PID")
  cc=$(cpu_ticks "$CHAIN_PID")
  wrk_origin "$BENCH_DIR/sim-router-$r.txt" "http://127.0.0.1:$ROUTER_PORT/" "$SECS" &
  sim_wrk=$!
  wrk_origin "$BENCH_DIR/sim-chain-$r.txt" "http://127.0.0.1:$CHAIN_PORT/" "$SECS"
  wait "$sim_wrk"
  cr=$(($(cpu_ticks "$ROUTER_PID") - cr))
  cc=$(($(cpu_ticks "$CHAIN_PID") - cc))
  check_alive router "$ROUTER_PID"
  check_alive chain "$CHAIN_PID"
  read -r rps_r _ req_r _ <<<"$(parse_wrk "$BENCH_DIR/sim-router-$r.txt")"
  read -r rps_c _ req_c _ <<<"$(parse_wrk "$BENCH_DIR/sim-chain-$r.txt")"
  ur=$(us_per_req "$cr" "$req_r")
  uc=$(us_per_req "$cc" "$req_c")
  q=$(ratio "$uc" "$ur")
  [ "$q" != n/a ] && SIM="$SIM $q"
  printf '%-6s %12.1f %12.1f %14s %14s %8s\n' "$r" "$rps_r" "$rps_c" "$ur" "$uc" "$q"
done
# shellcheck disable=SC2086
echo "simultaneous chain/router cpu per request: $(median $SIM) (median of $SIM_ROUNDS; 1.10 = 10% more CPU per request)"

echo
report_log router
report_log chain
