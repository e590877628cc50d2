#!/usr/bin/env bash
# `deno task bench`: every benchmark in turn, each under a header, then a status list.
#   http1   bench/http1.sh   Ferry vs nginx as HTTP/1.1 proxy (ratio target >= 0.6)
#   tcp     bench/tcp.sh     Ferry tcp_proxy vs nginx stream (ratio target >= 0.8)
#   memory  bench/memory.sh  KiB per idle keep-alive connection (target <= 10)
#   crypto  bench/crypto_sm4.ts, bench/crypto_sm2.ts when present
#   tls     bench/tls.sh     GM TLS vs native TLS through Ferry (needs TONGSUO_BIN; skipped without it)
#   http2 grpc rpc filters compression xds: bench/<name>.sh (run only when named: each takes minutes)
#
# Arguments name the sections to run (default: all), e.g. `bash bench/run.sh http1 memory`.
# The knobs of each script (BENCH_SECONDS, BENCH_ROUNDS, ...) pass through the environment.
# Exit status: non-zero when any section failed to run (missed targets are not failures).
set -uo pipefail

DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$DIR/.." && pwd)
cd "$ROOT" || exit 1

sections=("$@")
[ "${#sections[@]}" -gt 0 ] || sections=(http1 tcp memory crypto tls)

results=()
header() {
  echo
  echo "=================================================================="
  echo "== $*"
  echo "=================================================================="
}

run_section() {
  local name=$1
  shift
  header "$name: $*"
  local start=$SECONDS rc
  "$@"
  rc=$?
  results+=("$(printf '%-16s %s (%ss)' "$name" "$([ "$rc" = 0 ] && echo ok || echo "FAILED (exit $rc)")" $((SECONDS - start)))")
}

for s in "${sections[@]}"; do
  case $s in
    http1 | tcp | memory | http2 | grpc | rpc | filters | compression | xds) run_section "$s" bash "$DIR/$s.sh" ;;
    crypto)
      for f in crypto_sm4 crypto_sm2; do
        if [ -f "$DIR/$f.ts" ]; then
          run_section "$f" deno run -A "$DIR/$f.ts"
        else
          results+=("$(printf '%-16s skipped (bench/%s.ts not present)' "$f" "$f")")
        fi
      done
      ;;
    tls)
      if [ -n "${TONGSUO_BIN:-}" ] || command -v tongsuo >/dev/null 2>&1; then
        run_section tls bash "$DIR/tls.sh"
      else
        results+=("$(printf '%-16s skipped (set TONGSUO_BIN to a Tongsuo build for GM clients)' tls)")
      fi
      ;;
    *)
      echo "run.sh: unknown section: $s (known: http1 tcp memory crypto tls http2 grpc rpc filters compression xds)" >&2
      exit 2
      ;;
  esac
done

header "summary"
failed=0
for r in "${results[@]}"; do
  echo "$r"
  case $r in *FAILED*) failed=1 ;; esac
done
exit "$failed"
