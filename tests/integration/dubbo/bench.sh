#!/usr/bin/env bash
# Dubbo calls through Ferry vs direct, with the real node peers of this folder: a sofa-rpc-node provider, and the
# sofa-rpc-node and dubbo2.js consumers making CALLS calls at CONC concurrency. Prints calls/s for each path and
# Ferry's CPU time per call (utime+stime of the Ferry process over the run, from /proc). Loopback only.
# Usage: bash tests/integration/dubbo/bench.sh [CALLS] [CONC]      (default 20000 100)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
CALLS=${1:-20000}
CONC=${2:-100}
SVC=com.ferry.EchoService
TMP=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT

cd "$HERE"
node provider.mjs A "$SVC:1.0.0" >"$TMP/provider.out" 2>/dev/null &
PIDS+=($!)
for _ in $(seq 100); do grep -q PORT "$TMP/provider.out" && break; sleep 0.1; done
UP=$(awk '/PORT/{print $2}' "$TMP/provider.out")
FERRY_PORT=$((20000 + RANDOM % 20000))
cat >"$TMP/ferry.yaml" <<YAML
static_resources:
  listeners:
  - name: dubbo
    address: { socket_address: { address: 127.0.0.1, port_value: $FERRY_PORT } }
    filter_chains:
    - filters:
      - name: ferry.filters.network.rpc_proxy
        typed_config:
          "@type": type.googleapis.com/ferry.filters.network.rpc_proxy.v1.RpcProxy
          stat_prefix: dubbo
          protocol: DUBBO
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes: [{ match: { prefix: "/" }, route: { cluster: provider } }]
  clusters:
  - name: provider
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: provider
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: $UP } } } }] }]
YAML
deno run -A "$ROOT/main.ts" -c "$TMP/ferry.yaml" -l error --concurrency 1 >/dev/null 2>&1 &
FERRY=$!
PIDS+=($FERRY)
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$FERRY_PORT) 2>/dev/null && break; sleep 0.1; done
# The deno process may be a wrapper: take the process listening on the port.
FPID=$(ss -ltnpH "sport = :$FERRY_PORT" | sed -nE 's/.*pid=([0-9]+).*/\1/p' | head -n1)
FPID=${FPID:-$FERRY}
ticks() { awk '{print $14 + $15}' "/proc/$FPID/stat"; }
HZ=$(getconf CLK_TCK)

run() { # name script host
  local t0 t1 c0 c1 out ok ms
  node "$2" "$3" "$SVC" 1.0.0 1000 "$CONC" >/dev/null # warm-up
  c0=$(ticks)
  out=$(node "$2" "$3" "$SVC" 1.0.0 "$CALLS" "$CONC")
  c1=$(ticks)
  ok=$(sed -nE 's/.*"ok":([0-9]+).*/\1/p' <<<"$out")
  ms=$(sed -nE 's/.*"ms":([0-9]+).*/\1/p' <<<"$out")
  printf '%-28s %6s ok  %8.0f calls/s' "$1" "$ok" "$(echo "$ok * 1000 / $ms" | bc -l)"
  if [ "$3" = "127.0.0.1:$FERRY_PORT" ]; then
    printf '   Ferry CPU %.1f us/call' "$(echo "($c1 - $c0) * 1000000 / $HZ / $CALLS" | bc -l)"
  fi
  echo
}
echo "calls=$CALLS concurrency=$CONC cores=$(nproc) (numbers from a shared machine are indicative only)"
run "sofa-rpc-node direct" consumer.mjs "127.0.0.1:$UP"
run "sofa-rpc-node via Ferry" consumer.mjs "127.0.0.1:$FERRY_PORT"
run "dubbo2.js direct" dubbo2_consumer.mjs "127.0.0.1:$UP"
run "dubbo2.js via Ferry" dubbo2_consumer.mjs "127.0.0.1:$FERRY_PORT"
