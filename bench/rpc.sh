#!/usr/bin/env bash
# Bolt (SOFARPC) calls through Ferry against the same calls direct: a sofa-rpc-node consumer
# (tests/integration/rpc/consumer.mjs) makes BENCH_CALLS echo calls at BENCH_CONCURRENCY to a sofa-rpc-node
# provider (tests/integration/rpc/provider.mjs) directly, and through Ferry's RPC proxy (protocol BOLT, one Bolt
# cluster), interleaved. The provider and Ferry are pinned to core 0, the consumer to core 1; the node peers are
# the bottleneck of the direct run, so read the ratio as "what Ferry costs on top of real sofa-rpc-node peers".
# Peers come from tests/integration/rpc/node_modules (npm ci there, as .ci/run does).
#
# With MOSN_BIN set to a MOSN binary (v0.26.0 builds with Debian's Go from its vendored modules:
# `GOFLAGS=-mod=vendor go build ./cmd/mosn/main`; never commit it), MOSN's xprotocol/bolt proxy is measured the same
# way, on one core (GOMAXPROCS=1, as Ferry's --concurrency 1).
#
# Knobs (environment): BENCH_CALLS (default 50000), BENCH_CONCURRENCY (default 100), BENCH_ROUNDS (default 3),
# MOSN_BIN, and those in bench/_common.sh.
#
# Prints per-round calls/s, the proxy's and the provider's CPU microseconds per call, and
# `ratio ferry/direct calls/s: X` (and `ratio ferry/mosn cpu per call: X` with MOSN).
set -uo pipefail
# shellcheck source=bench/_common.sh
. "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

CALLS=${BENCH_CALLS:-50000}
CONC=${BENCH_CONCURRENCY:-100}
ROUNDS=${BENCH_ROUNDS:-3}
PEERS="$BENCH_ROOT/tests/integration/rpc"

bench_init rpc
command -v node >/dev/null || bench_die "node missing"
if [ ! -d "$PEERS/node_modules/sofa-rpc-node" ]; then
  (cd "$PEERS" && npm ci --no-fund --no-audit --loglevel=error) || bench_die "npm ci in $PEERS failed"
fi

UP_PORT=$(free_port)
start_bg provider "${PIN_SERVER[@]}" node "$PEERS/provider.mjs" "$UP_PORT" p com.ferry.Echo:1.0
UP_PID=$BG_PID
for _ in $(seq 1 150); do
  grep -q ready "$BENCH_DIR/provider.log" 2>/dev/null && break
  sleep 0.2
done
grep -q ready "$BENCH_DIR/provider.log" || {
  show_logs provider
  bench_die "the provider did not start"
}

FERRY_PORT=$(free_port)
ADMIN_PORT=$(free_port)
cat >"$BENCH_DIR/ferry.yaml" <<YAML
admin: { address: { socket_address: { address: 127.0.0.1, port_value: $ADMIN_PORT } } }
static_resources:
  listeners:
  - name: rpc
    address: { socket_address: { address: 127.0.0.1, port_value: $FERRY_PORT } }
    filter_chains:
    - filters:
      - name: ferry.filters.network.rpc_proxy
        typed_config:
          "@type": type.googleapis.com/ferry.filters.network.rpc_proxy.v1.RpcProxy
          stat_prefix: rpc
          protocol: BOLT
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes: [{ match: { prefix: "/" }, route: { cluster: echo } }]
  clusters:
  - name: echo
    load_assignment:
      cluster_name: echo
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: $UP_PORT } } } }] }]
YAML
start_ferry "$BENCH_DIR/ferry.yaml"
FERRY_PID=$BG_PID
for _ in $(seq 1 150); do
  curl -s -o /dev/null -m 1 "http://127.0.0.1:$ADMIN_PORT/ready" && break
  sleep 0.2
done
tcp_open "$FERRY_PORT" || {
  show_logs ferry
  bench_die "Ferry did not start"
}

MOSN_PID=
if [ -n "${MOSN_BIN:-}" ]; then
  [ -x "$MOSN_BIN" ] || bench_die "MOSN_BIN=$MOSN_BIN is not executable"
  MOSN_PORT=$(free_port)
  MOSN_ADMIN=$(free_port)
  cat >"$BENCH_DIR/mosn.json" <<JSON
{
  "servers": [{
    "default_log_path": "$BENCH_DIR/mosn-default.log",
    "default_log_level": "ERROR",
    "routers": [{
      "router_config_name": "bolt_router",
      "virtual_hosts": [{ "name": "all", "domains": ["*"],
        "routers": [{ "match": { "headers": [{ "name": "service", "value": ".*" }] }, "route": { "cluster_name": "echo" } }] }]
    }],
    "listeners": [{
      "name": "bolt", "address": "127.0.0.1:$MOSN_PORT", "bind_port": true,
      "filter_chains": [{ "filters": [{ "type": "proxy", "config": {
        "downstream_protocol": "X", "upstream_protocol": "X", "extend_config": { "sub_protocol": "bolt" },
        "router_config_name": "bolt_router" } }] }]
    }]
  }],
  "cluster_manager": { "clusters": [{ "name": "echo", "type": "SIMPLE", "lb_type": "LB_RANDOM",
    "max_request_per_conn": 1024, "conn_buffer_limit_bytes": 32768, "hosts": [{ "address": "127.0.0.1:$UP_PORT" }] }] },
  "admin": { "address": { "socket_address": { "address": "127.0.0.1", "port_value": $MOSN_ADMIN } } }
}
JSON
  start_bg mosn env GOMAXPROCS=1 "${PIN_SERVER[@]}" "$MOSN_BIN" start -c "$BENCH_DIR/mosn.json"
  MOSN_PID=$BG_PID
  for _ in $(seq 1 150); do
    tcp_open "$MOSN_PORT" && break
    sleep 0.2
  done
  tcp_open "$MOSN_PORT" || {
    show_logs mosn
    bench_die "MOSN did not start"
  }
fi

# one PORT N: one consumer run; prints "calls_per_s ok errors".
one() {
  local out
  out=$(timeout 300 "${PIN_CLIENT[@]}" node "$PEERS/consumer.mjs" "127.0.0.1:$1" com.ferry.Echo 1.0 echo "$2" "$CONC" 10000)
  echo "$out" | tail -n1 | node -e 'const o = JSON.parse(require("fs").readFileSync(0, "utf8"));
    console.log(Math.round((o.ok + o.errors) * 1000 / Math.max(1, o.ms)), o.ok, o.errors)'
}

load_average >&2
one "$UP_PORT" 5000 >/dev/null
one "$FERRY_PORT" 5000 >/dev/null
[ -n "$MOSN_PID" ] && one "$MOSN_PORT" 5000 >/dev/null
printf '%-6s %-8s %10s %8s %14s %16s\n' round target calls/s errors proxy_us/call provider_us/call
D=()
F=()
FU=()
M=()
MU=()
# measure NAME PORT PROXY_PID: one round against PORT; prints the row, sets CPS and US.
measure() {
  local t0=0 t1=0 p0 p1 ok err
  [ -n "$3" ] && t0=$(cpu_ticks "$3")
  p0=$(cpu_ticks "$UP_PID")
  read -r CPS ok err < <(one "$2" "$CALLS")
  p1=$(cpu_ticks "$UP_PID")
  US=-
  [ -n "$3" ] && t1=$(cpu_ticks "$3") && US=$(us_per_req $((t1 - t0)) "$ok")
  printf '%-6s %-8s %10s %8s %14s %16s\n' "$r" "$1" "$CPS" "$err" "$US" "$(us_per_req $((p1 - p0)) "$ok")"
}
for r in $(seq 1 "$ROUNDS"); do
  measure direct "$UP_PORT" ""
  D+=("$CPS")
  measure ferry "$FERRY_PORT" "$FERRY_PID"
  F+=("$CPS")
  FU+=("$US")
  check_alive ferry "$FERRY_PID"
  if [ -n "$MOSN_PID" ]; then
    measure mosn "$MOSN_PORT" "$MOSN_PID"
    M+=("$CPS")
    MU+=("$US")
    check_alive mosn "$MOSN_PID"
  fi
  check_alive provider "$UP_PID"
done
d=$(median "${D[@]}")
f=$(median "${F[@]}")
echo "median direct $d / ferry $f calls/s; ferry CPU $(median "${FU[@]}") us/call"
echo "ratio ferry/direct calls/s: $(ratio "$f" "$d")"
if [ -n "$MOSN_PID" ]; then
  echo "median mosn $(median "${M[@]}") calls/s; mosn CPU $(median "${MU[@]}") us/call"
  echo "ratio ferry/mosn cpu per call: $(ratio "$(median "${FU[@]}")" "$(median "${MU[@]}")")"
fi
