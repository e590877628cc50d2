#!/usr/bin/env bash
# gRPC unary through Ferry against the same calls direct: h2load sends gRPC unary requests (POST
# /bench.Echo/Call, a 5-byte-prefixed 64-byte message, `content-type: application/grpc`, `te: trailers`) to a
# @grpc/grpc-js server (bench/_grpc_server.ts, under Deno) directly and through Ferry (AUTO listener, HTTP/2
# cluster), interleaved. The upstream and Ferry are pinned to core 0, h2load to core 1; grpc-js itself is the
# bottleneck of the direct run, so read the ratio as "what Ferry costs on top of a real gRPC server".
#
# Knobs (environment): BENCH_SECONDS (default 6), BENCH_ROUNDS (default 3), BENCH_CONNECTIONS (default 8),
# BENCH_STREAMS (default 10), and those in bench/_common.sh.
#
# Prints per-round rps and `ratio ferry/direct rps: X`, plus Ferry's CPU microseconds per request.
set -uo pipefail
# shellcheck source=bench/_common.sh
. "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

SECS=${BENCH_SECONDS:-6}
ROUNDS=${BENCH_ROUNDS:-3}
export BENCH_CONNECTIONS=${BENCH_CONNECTIONS:-8}
export BENCH_STREAMS=${BENCH_STREAMS:-10}

bench_init grpc
need_pkgs nghttp2-client curl
command -v h2load >/dev/null || bench_die "h2load missing (nghttp2-client)"

# The request body: gRPC framing (uncompressed flag, 4-byte length) + 64 bytes.
printf '\x00\x00\x00\x00\x40' >"$BENCH_DIR/body.bin"
head -c 64 /dev/zero | tr '\0' 'x' >>"$BENCH_DIR/body.bin"

start_bg upstream "${PIN_SERVER[@]}" deno run -A "$BENCH_ROOT/bench/_grpc_server.ts"
UP_PID=$BG_PID
for _ in $(seq 1 150); do
  UP_PORT=$(head -n1 "$BENCH_DIR/upstream.log" 2>/dev/null | tr -dc '0-9')
  [ -n "$UP_PORT" ] && break
  sleep 0.2
done
[ -n "${UP_PORT:-}" ] || {
  show_logs upstream
  bench_die "the gRPC upstream did not start"
}

FERRY_PORT=$(free_port)
ADMIN_PORT=$(free_port)
cat >"$BENCH_DIR/ferry.yaml" <<YAML
admin: { address: { socket_address: { address: 127.0.0.1, port_value: $ADMIN_PORT } } }
static_resources:
  listeners:
  - name: grpc
    address: { socket_address: { address: 127.0.0.1, port_value: $FERRY_PORT } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: grpc
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes: [{ match: { prefix: "/" }, route: { cluster: grpc } }]
          http_filters:
          - name: envoy.filters.http.router
            typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
  clusters:
  - name: grpc
    http2_protocol_options: {}
    load_assignment:
      cluster_name: grpc
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: $UP_PORT } } } }] }]
YAML
FERRY_NAME=ferry
start_ferry "$BENCH_DIR/ferry.yaml"
FERRY_PID=$BG_PID
for _ in $(seq 1 150); do
  curl -s -o /dev/null -m 1 "http://127.0.0.1:$ADMIN_PORT/ready" && break
  sleep 0.2
done
CLK_TCK=$(getconf CLK_TCK)

# one NAME PORT SECS: one h2load run; prints "rps requests errors".
one() {
  local out="$BENCH_DIR/$1.h2load"
  timeout $(($3 + 30)) "${PIN_CLIENT[@]}" h2load -t1 -c"$BENCH_CONNECTIONS" -m"$BENCH_STREAMS" -D "$3" \
    -d "$BENCH_DIR/body.bin" -H "content-type: application/grpc" -H "te: trailers" \
    "http://127.0.0.1:$2/bench.Echo/Call" >"$out" 2>&1 || true
  parse_h2load "$out"
}

one warm-direct "$UP_PORT" 3 >/dev/null
one warm-ferry "$FERRY_PORT" 3 >/dev/null
printf '%-6s %-8s %10s %10s %12s\n' round target rps errors cpu_us/req
D=()
F=()
for r in $(seq 1 "$ROUNDS"); do
  read -r rps n err < <(one direct "$UP_PORT" "$SECS")
  printf '%-6s %-8s %10s %10s %12s\n' "$r" direct "$rps" "$err" -
  D+=("$rps")
  t0=$(cpu_ticks "$FERRY_PID")
  read -r rps n err < <(one ferry "$FERRY_PORT" "$SECS")
  t1=$(cpu_ticks "$FERRY_PID")
  printf '%-6s %-8s %10s %10s %12s\n' "$r" ferry "$rps" "$err" "$(us_per_req $((t1 - t0)) "$n")"
  F+=("$rps")
  check_alive ferry "$FERRY_PID"
  check_alive upstream "$UP_PID"
done
d=$(median "${D[@]}")
f=$(median "${F[@]}")
echo "median direct $d / ferry $f rps"
echo "ratio ferry/direct rps: $(ratio "$f" "$d")"
