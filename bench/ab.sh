#!/usr/bin/env bash
# Side-by-side A/B of two Ferry checkouts: both serve at the same time, pinned to the same core, each with its own
# wrk (core 1) and the same nginx upstream (core 1). Both see the same machine at the same moment, so a difference of
# 2-3% in CPU per request shows, where one-after-the-other runs on a VM with noisy neighbours swing by 10-20%.
# Ports swap every round to cancel any port bias. Compare CPU per request (printed as B/A), not rps.
#
# Usage: bench/ab.sh A_DIR [B_DIR] [http|tcp]
#   A_DIR, B_DIR   checkouts holding main.ts (B defaults to this one), e.g. `git worktree add /tmp/ferry-base HEAD~1`
#
# Knobs (environment): BENCH_SECONDS (default 6), BENCH_ROUNDS (default 6), BENCH_WARMUP (default 3),
# BENCH_CONNECTIONS (default 64), BENCH_KEEP.
#
# Prints a line per round and `median B/A cpu per request: X` (below 1: B is cheaper).
set -uo pipefail
# shellcheck source=bench/_common.sh
. "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

[ $# -ge 1 ] || bench_die "usage: bench/ab.sh A_DIR [B_DIR] [http|tcp]"
A_DIR=$(cd "$1" && pwd) || bench_die "no directory $1"
B_DIR=$(cd "${2:-$BENCH_ROOT}" && pwd) || bench_die "no directory $2"
KIND=${3:-http}
[ -f "$A_DIR/main.ts" ] || bench_die "$A_DIR has no main.ts"
[ -f "$B_DIR/main.ts" ] || bench_die "$B_DIR has no main.ts"
case $KIND in
  http) FILTERS=$FERRY_HCM_FILTERS ;;
  tcp) FILTERS=$FERRY_TCP_FILTERS ;;
  *) bench_die "kind must be http or tcp, not $KIND" ;;
esac
SECS=${BENCH_SECONDS:-6}
ROUNDS=${BENCH_ROUNDS:-6}
WARMUP=${BENCH_WARMUP:-3}

bench_init ab
need_pkgs nginx wrk curl
find_nginx
[ "${#PIN_SERVER[@]}" -gt 0 ] || bench_die "needs 2 cores and taskset"

UP_PORT=$(free_port)
write_upstream_conf "$BENCH_DIR/upstream.conf" "$UP_PORT"
# The upstream shares the client core: the two Ferry processes are alone on the server core.
PIN_SAVED=("${PIN_SERVER[@]}")
PIN_SERVER=("${PIN_CLIENT[@]}")
start_nginx upstream "$BENCH_DIR/upstream.conf"
PIN_SERVER=("${PIN_SAVED[@]}")
wait_http upstream "$BG_PID" "http://127.0.0.1:$UP_PORT/"

# start_one NAME DIR PORT ADMIN: sets BG_PID.
start_one() {
  write_ferry_conf "$BENCH_DIR/$1.yaml" "$4" "$3" "$UP_PORT" "$FILTERS"
  # One event loop each (main.ts defaults to one per core where it knows --concurrency).
  local one=()
  grep -q -- 'concurrency' "$2/main.ts" && one=(--concurrency 1)
  start_bg "$1" "${PIN_SERVER[@]}" deno run -A --v8-flags=--experimental-wasm-wide-arithmetic,--invocation-count-for-maglev=50,--minimum-invocations-after-ic-update=50,--no-memory-reducer --no-check "$2/main.ts" -c "$BENCH_DIR/$1.yaml" "${one[@]}"
  FERRY_NAME=$1 wait_ferry "$BG_PID" "$4" "$3"
}

echo "ab ($KIND): A=$A_DIR B=$B_DIR; ${ROUNDS} rounds x ${SECS}s, both at once on core 0; $(load_average)"
RATIOS=()
for ((r = 1; r <= ROUNDS; r++)); do
  P1=$(free_port) P2=$(free_port) M1=$(free_port) M2=$(free_port)
  if ((r % 2)); then PA=$P1 PB=$P2; else PA=$P2 PB=$P1; fi
  start_one a "$A_DIR" "$PA" "$M1"
  PIDA=$BG_PID
  start_one b "$B_DIR" "$PB" "$M2"
  PIDB=$BG_PID
  run_wrk "$BENCH_DIR/warm-a.txt" "http://127.0.0.1:$PA/" "$WARMUP" &
  w=$!
  run_wrk "$BENCH_DIR/warm-b.txt" "http://127.0.0.1:$PB/" "$WARMUP"
  wait "$w"
  ca=$(cpu_ticks "$PIDA")
  cb=$(cpu_ticks "$PIDB")
  run_wrk "$BENCH_DIR/wrk-a.txt" "http://127.0.0.1:$PA/" "$SECS" &
  w=$!
  run_wrk "$BENCH_DIR/wrk-b.txt" "http://127.0.0.1:$PB/" "$SECS"
  wait "$w"
  ca=$(($(cpu_ticks "$PIDA") - ca))
  cb=$(($(cpu_ticks "$PIDB") - cb))
  check_alive a "$PIDA"
  check_alive b "$PIDB"
  read -r rpsa _ reqa erra <<<"$(parse_wrk "$BENCH_DIR/wrk-a.txt")"
  read -r rpsb _ reqb errb <<<"$(parse_wrk "$BENCH_DIR/wrk-b.txt")"
  kill -TERM "$PIDA" "$PIDB" 2>/dev/null
  wait "$PIDA" "$PIDB" 2>/dev/null
  if [ "${reqa:-0}" -le 0 ] || [ "${reqb:-0}" -le 0 ] || [ "$erra" != 0 ] || [ "$errb" != 0 ]; then
    bench_log "round $r: a wrk run failed or saw errors (A: $reqa requests, $erra errors; B: $reqb, $errb)"
    continue
  fi
  ua=$(us_per_req "$ca" "$reqa")
  ub=$(us_per_req "$cb" "$reqb")
  rt=$(awk -v a="$ua" -v b="$ub" 'BEGIN { printf "%.3f\n", b / a }')
  RATIOS+=("$rt")
  printf 'round %d: A %8.1f rps %6s us/req   B %8.1f rps %6s us/req   B/A cpu %s\n' "$r" "$rpsa" "$ua" "$rpsb" "$ub" "$rt"
done
[ "${#RATIOS[@]}" -gt 0 ] || bench_die "no round completed"
echo "median B/A cpu per request: $(median "${RATIOS[@]}") (below 1: B is cheaper; $(load_average))"
