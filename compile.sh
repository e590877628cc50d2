#!/usr/bin/env bash
# Build Ferry into one self-contained executable per target with `deno compile`.
#
#   ./compile.sh                      dist/ferry for the host target
#   ./compile.sh TARGET...            dist/ferry-TARGET[.exe] for each target
#   ./compile.sh --bundle             dist/ferry.js (deno bundle; no denort needed)
#
# Targets: x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu x86_64-apple-darwin
#          aarch64-apple-darwin x86_64-pc-windows-msvc
#
# `deno compile` glues the program onto a `denort` runtime that it downloads from
# dl.deno.land (and caches under $DENO_DIR/dl). Offline, point Deno at a denort
# binary instead (Deno reads the variable itself):
#   DENORT_BIN=/path/to/denort                 used for every target
#   DENORT_BIN_<target with - as _>=/path      per target, wins over DENORT_BIN
#                                              (e.g. DENORT_BIN_aarch64_apple_darwin)
# Before compiling, a tiny probe program is compiled for each target (and, for the
# host target, run) so a missing runtime is reported in one line with exit status 2
# instead of a backtrace halfway through. COMPILE_PROBE=0 skips the probe.
#
# The binary needs no files besides itself: the default config is embedded in code, and the
# worker module for --concurrency is included. The --bundle output is dist/ferry.js plus
# dist/worker_main.ts beside it: copy both (to any directory) and run
#   deno run -A --unstable-net ferry.js [-c CONFIG]     (or ./ferry.js: its shebang has the flags)
# FERRY_DIST=DIR writes into DIR instead of dist/ (tests build into a temporary directory).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$ROOT"

KNOWN_TARGETS=(x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu x86_64-apple-darwin aarch64-apple-darwin
  x86_64-pc-windows-msvc)
ENTRY=main.ts
# Started as `new Worker(new URL("./worker_main.ts", import.meta.url))` for --concurrency N:
# not reachable by static imports, so named explicitly.
WORKER=lib/server/worker_main.ts
OUT_DIR=${FERRY_DIST:-dist}

die() {
  echo "compile.sh: $*" >&2
  exit 2
}

usage() {
  sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'
}

bundle=0
targets=()
for arg in "$@"; do
  case $arg in
    --bundle) bundle=1 ;;
    -h | --help)
      usage
      exit 0
      ;;
    -*) die "unknown option: $arg (try --help)" ;;
    *)
      ok=0
      for t in "${KNOWN_TARGETS[@]}"; do [ "$t" = "$arg" ] && ok=1; done
      [ "$ok" = 1 ] || die "unknown target: $arg (known: ${KNOWN_TARGETS[*]})"
      targets+=("$arg")
      ;;
  esac
done

command -v deno >/dev/null 2>&1 || die "deno is not on PATH"
[ -f "$ENTRY" ] || die "$ENTRY not found in $ROOT"
mkdir -p "$OUT_DIR"

# V8 flags the program runs with, the same as `deno task start` (README, "V8 flags"): WebAssembly wide arithmetic
# for SM2's field multiplication (lib/crypto/wasm/_sm2_wasm_module.ts; without it the 32-bit build runs, 15-20% more
# CPU per GM handshake), earlier tier-up for code that runs once per connection, and no memory reducer (it slows
# the process down for hundreds of handshakes after an idle pause).
V8_FLAGS=--v8-flags=--experimental-wasm-wide-arithmetic,--invocation-count-for-maglev=50,--minimum-invocations-after-ic-update=50,--no-memory-reducer

# deno.json's "unstable" list (e.g. ["net"]) becomes --unstable-* flags for a bundle,
# which runs outside the project and so without deno.json.
unstable_flags() {
  # shellcheck disable=SC2016 # a JS template literal, not a shell expansion
  deno eval 'const c = JSON.parse(Deno.readTextFileSync("deno.json"));
    console.log((c.unstable ?? []).map((u) => `--unstable-${u}`).join(" "));' 2>/dev/null || true
}

if [ "$bundle" = 1 ]; then
  [ "${#targets[@]}" -eq 0 ] || die "--bundle makes one portable dist/ferry.js; do not name targets with it"
  out=$OUT_DIR/ferry.js
  flags=$(unstable_flags)
  # The temporary name must end in .js: with another extension deno bundle leaves out the
  # createRequire banner and the npm packages' require() calls fail at run time.
  tmp=$OUT_DIR/.ferry.tmp.js
  deno bundle --platform deno --output "$tmp" "$ENTRY"
  # A shebang lets ./dist/ferry.js run directly with the flags it needs.
  { printf '#!/usr/bin/env -S deno run -A %s %s\n' "$flags" "$V8_FLAGS"; grep -v '^#!' "$tmp"; } >"$out"
  rm -f "$tmp"
  chmod +x "$out"
  if [ -f "$WORKER" ]; then
    # The bundle still opens ./worker_main.ts beside itself; give it a bundled one there
    # (JavaScript under a .ts name, which Deno runs as it is).
    deno bundle --platform deno --output "$OUT_DIR/.worker.tmp.js" "$WORKER"
    mv "$OUT_DIR/.worker.tmp.js" "$OUT_DIR/$(basename "$WORKER")"
  fi
  echo "compile.sh: wrote $out (run: deno run -A ${flags:+$flags }$out -c CONFIG)"
  exit 0
fi

host=$(deno eval 'console.log(Deno.build.target)')
outputs=()
if [ "${#targets[@]}" -eq 0 ]; then
  targets=("$host")
  outputs=("$OUT_DIR/ferry")
else
  for t in "${targets[@]}"; do
    case $t in
      *windows*) outputs+=("$OUT_DIR/ferry-$t.exe") ;;
      *) outputs+=("$OUT_DIR/ferry-$t") ;;
    esac
  done
fi

# Prints the denort path to use for a target, or nothing (Deno then downloads one).
denort_for() {
  local var="DENORT_BIN_${1//-/_}"
  if [ -n "${!var:-}" ]; then echo "${!var}"; elif [ -n "${DENORT_BIN:-}" ]; then echo "$DENORT_BIN"; fi
}

if [ -n "${DENORT_BIN:-}" ] && [ "${#targets[@]}" -gt 1 ]; then
  echo "compile.sh: note: DENORT_BIN is used for every target; set DENORT_BIN_<target> per target" >&2
fi

missing() {
  die "deno compile needs the denort runtime for $1: set DENORT_BIN=/path/to/denort or run where dl.deno.land is reachable${2:+ ($2)}"
}

# Compile (and on the host, run) a one-line program: proves the runtime is there and is a denort.
probe() {
  local target=$1 denort dir log
  denort=$(denort_for "$target")
  if [ -n "$denort" ] && [ ! -f "$denort" ]; then missing "$target" "no file at $denort"; fi
  dir=$(mktemp -d)
  log=$dir/log
  echo 'console.log("ferry-denort-ok");' >"$dir/probe.ts"
  if ! (cd "$dir" && env ${denort:+DENORT_BIN="$denort"} deno compile --no-config --quiet --target "$target" \
    --output "$dir/probe" probe.ts) >"$log" 2>&1; then
    # Deno prints a "Caused by:" chain; the request error, else the innermost cause, says it best.
    local why causes
    causes=$(sed -e 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '^ *[0-9]+: ' | grep -v '<unknown>' | sed -E 's/^ *[0-9]+: //') || true
    why=$(grep -m1 'error sending request' <<<"$causes" || tail -n1 <<<"$causes") || true
    rm -rf "$dir"
    missing "$target" "$why"
  fi
  if [ "$target" = "$host" ]; then
    local got
    got=$(cd "$dir" && timeout 30 ./probe 2>/dev/null) || true
    if [ "$got" != "ferry-denort-ok" ]; then
      rm -rf "$dir"
      missing "$target" "${denort:-the downloaded runtime} did not run a compiled program; is it denort rather than deno?"
    fi
  fi
  rm -rf "$dir"
}

if [ "${COMPILE_PROBE:-1}" != 0 ]; then
  for t in "${targets[@]}"; do probe "$t"; done
fi

for i in "${!targets[@]}"; do
  t=${targets[$i]}
  out=${outputs[$i]}
  denort=$(denort_for "$t")
  echo "compile.sh: $t -> $out${denort:+ (denort: $denort)}"
  # --exclude-unused-npm: embed only the npm packages main.ts reaches, not the test-only ones.
  env ${denort:+DENORT_BIN="$denort"} deno compile -A "$V8_FLAGS" --quiet --exclude-unused-npm --include "$WORKER" --target "$t" --output "$out" "$ENTRY"
done
echo "compile.sh: done: ${outputs[*]}"
