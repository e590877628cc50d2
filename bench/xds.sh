#!/usr/bin/env bash
# xDS at scale (issue 13, "Scale"): Ferry driven over ADS, state of the world (GRPC) and delta (DELTA_GRPC), each
# mode with a fresh Ferry (`deno run -A main.ts -c <bootstrap> --concurrency 1`, pinned to core 0). The driver
# bench/_xds_scale.ts is the ADS server (bench/_xds_cp.ts, grpc-js, its own process, pinned to core 1 with wrk) and
# the measurer. wrk sends a steady, rate-capped load (-t1 -c10, 10 ms between requests per connection: <= 1,000
# req/s) to a static listener answering with a direct_response, unrelated to what is pushed.
#
# 1. Push 10,000 EDS clusters (1 endpoint each) + their ClusterLoadAssignments + 10,000 routes (100 virtual hosts x
#    100 routes, one RouteConfiguration referenced by an LDS listener via RDS), all at once: time from the push to
#    the ACK of each type (CDS, EDS, LDS, RDS; EDS and RDS counted when a response holding every resource is
#    ACKed), Ferry's RSS before/after (VmRSS), wrk p99 and max through the unrelated listener during the push
#    (targets: ACK < 2 s, no stall over 50 ms). A request through the pushed listener then reaches cluster c0.
# 2. 1,000 endpoint changes per second for 30 s (10 pushes/s x 100 clusters; SotW resends all 10,000 assignments
#    each push, delta only the changed ones): achieved change rate, ACK latency p50/p99, Ferry CPU % from /proc,
#    wrk p99 and max meanwhile.
#
# Why not tests/xds/control_plane.ts: its PUT /snapshot re-encodes the whole snapshot from JSON on each change (0.8-
# 2.4 s for these 30,000 resources on the shared machine), too slow for 10 pushes a second; bench/_xds_cp.ts speaks
# the same protocol (go-control-plane semantics) but keeps resources encoded and timestamps ACKs on the stream.
#
# Knobs (environment):
#   XDS_DURATION_S   churn seconds (default 30)
#   XDS_CLUSTERS     clusters = assignments = routes (default 10000)
#   XDS_RATE         endpoint changes per second (default 1000)
#   XDS_PUSHES       pushes per second (default 10)
#   XDS_MODES        sotw,delta (default both)
#   XDS_WRK_CONNS    wrk connections (default 10)
#   XDS_WRK_DELAY_MS ms between requests on one wrk connection (default 10; 0 = closed loop, saturating)
#   XDS_PROFILE=1    Ferry runs under --inspect: CPU profiles of the push and the churn (self and inclusive time per
#                    function, per file) are printed and kept as $BENCH_DIR/profile-*.{txt,cpuprofile} (BENCH_KEEP=1)
#   and FERRY_CMD, FERRY_ARGS, BENCH_KEEP from bench/_common.sh
#
# Prints one block per mode, then a summary table and the targets, e.g.
#   sotw: target ACK < 2000 ms: met (1234 ms); target no stall over 50 ms: not met (max 180.2 ms); ...
set -uo pipefail
# shellcheck source=bench/_common.sh
. "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

bench_init xds
need_pkgs wrk

# The driver records every Ferry it starts in $BENCH_DIR/pids; they die with the driver, and here if it did not.
kill_recorded() {
  local pid
  if [ -f "$BENCH_DIR/pids" ]; then
    while read -r pid; do kill -KILL "$pid" 2>/dev/null; done <"$BENCH_DIR/pids"
  fi
}
trap 'kill_recorded; bench_cleanup' EXIT

FERRY_ARGS_EFF=${FERRY_ARGS-}
if [ -z "${FERRY_ARGS+x}" ] && grep -q -- 'concurrency' "$BENCH_ROOT/main.ts"; then FERRY_ARGS_EFF="--concurrency 1"; fi

cd "$BENCH_ROOT" || exit 1
# A hard bound on the whole run: two modes of setup, push and churn.
timeout $((900 + 2 * ${XDS_DURATION_S:-30})) "${PIN_CLIENT[@]}" deno run -A bench/_xds_scale.ts \
  --dir "$BENCH_DIR" \
  --modes "${XDS_MODES:-sotw,delta}" \
  --clusters "${XDS_CLUSTERS:-10000}" \
  --duration "${XDS_DURATION_S:-30}" \
  --rate "${XDS_RATE:-1000}" \
  --pushes "${XDS_PUSHES:-10}" \
  --wrk-conns "${XDS_WRK_CONNS:-10}" \
  --wrk-delay-ms "${XDS_WRK_DELAY_MS:-10}" \
  --pin-server="${PIN_SERVER[*]}" \
  --pin-client="${PIN_CLIENT[*]}" \
  --ferry-cmd="${FERRY_CMD:-deno run -A --v8-flags=--experimental-wasm-wide-arithmetic,--invocation-count-for-maglev=50,--minimum-invocations-after-ic-update=50,--no-memory-reducer main.ts}" \
  --ferry-args="$FERRY_ARGS_EFF" \
  $([ "${XDS_PROFILE:-0}" = 1 ] && echo --profile)
rc=$?
for f in "$BENCH_DIR"/ferry-*.log; do
  [ -s "$f" ] || continue
  echo "--- $(basename "$f") ($(wc -l <"$f") lines, last 5) ---"
  tail -n 5 "$f"
done
exit "$rc"
