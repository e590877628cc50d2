#!/usr/bin/env bash
# Response compression benchmark: nginx `gzip on` vs Ferry's envoy.filters.http.compressor (gzip, node:zlib) at
# the same zlib level, window (15) and memory level (8), both proxying a text body from one nginx upstream.
# wrk sends `Accept-Encoding: gzip`; the figure is uncompressed MB/s (requests/s x body size), which is what the
# compressors chew through. Also measured, for the cost of compression itself: Ferry proxying the same body
# uncompressed, and Ferry with brotli (quality 3, Envoy's default) and zstd (level 3).
#
# The body is BENCH_BODY_KB of this repository's TypeScript sources (real, compressible text). Servers are pinned
# to core 0, wrk to core 1 (-t1 -c$BENCH_CONNECTIONS); targets interleave per round.
#
# Knobs (environment):
#   BENCH_SECONDS      measured seconds per run (default 8)
#   BENCH_ROUNDS       rounds (default 3)
#   BENCH_LEVELS       zlib levels to compare (default "1 6")
#   BENCH_BODY_KB      body size in KiB (default 64)
#   BENCH_CONNECTIONS  wrk connections (default 16)
#   and those in bench/_common.sh (FERRY_CMD, FERRY_ARGS, BENCH_READY_TIMEOUT, BENCH_KEEP)
set -uo pipefail
# shellcheck source=bench/_common.sh
. "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

SECS=${BENCH_SECONDS:-8}
ROUNDS=${BENCH_ROUNDS:-3}
LEVELS=${BENCH_LEVELS:-"1 6"}
BODY_KB=${BENCH_BODY_KB:-64}
export BENCH_CONNECTIONS=${BENCH_CONNECTIONS:-16}

bench_init compression
need_pkgs nginx wrk curl
find_nginx

BULK="$BENCH_DIR/bulk.txt"
# shellcheck disable=SC2046 # file names without spaces
cat $(cd "$BENCH_ROOT" && git ls-files '*.ts' | sed "s|^|$BENCH_ROOT/|") 2>/dev/null | head -c $((BODY_KB * 1024)) >"$BULK"
chmod 644 "$BULK"
BODY_BYTES=$(stat -c %s "$BULK")

UP_PORT=$(free_port)
ADMIN_PORT=$(free_port)
write_upstream_conf "$BENCH_DIR/upstream.conf" "$UP_PORT" "$BULK"
start_nginx upstream "$BENCH_DIR/upstream.conf"
UP_PID=$BG_PID
wait_http upstream "$UP_PID" "http://127.0.0.1:$UP_PORT/bulk"

# One nginx with a server per level; one Ferry with a listener per target.
declare -A PORT
{
  nginx_common nginx
  echo "http {"
  nginx_http_common nginx
  cat <<EOF
  upstream up {
    server 127.0.0.1:$UP_PORT;
    keepalive 64;
    keepalive_requests 100000000;
  }
  gzip on;
  gzip_proxied any;
  gzip_types text/plain;
  gzip_min_length 30;
  gzip_window 32k;
  gzip_hash 128k;
EOF
  for l in $LEVELS; do
    PORT[nginx-gzip$l]=$(free_port)
    cat <<EOF
  server {
    listen 127.0.0.1:${PORT[nginx-gzip$l]} backlog=4096;
    gzip_comp_level $l;
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
EOF
  done
  echo "}"
} >"$BENCH_DIR/nginx.conf"

hcm() { # hcm NAME PORT FILTER_YAML: one Ferry listener
  cat <<EOF
  - name: $1
    address: { socket_address: { address: 127.0.0.1, port_value: $2 } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: $1
          route_config:
            virtual_hosts: [{ name: all, domains: ["*"], routes: [{ match: { prefix: "/" }, route: { cluster: upstream } }] }]
          http_filters:
$3
          - name: envoy.filters.http.router
            typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
EOF
}
compressor() { # compressor LIBRARY_TYPED_CONFIG
  cat <<EOF
          - name: envoy.filters.http.compressor
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.compressor.v3.Compressor
              compressor_library: { name: lib, typed_config: $1 }
EOF
}
PORT[ferry-plain]=$(free_port)
PORT[ferry-br3]=$(free_port)
PORT[ferry-zstd3]=$(free_port)
{
  cat <<EOF
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: $ADMIN_PORT } }
static_resources:
  listeners:
EOF
  for l in $LEVELS; do
    PORT[ferry-gzip$l]=$(free_port)
    hcm "gzip$l" "${PORT[ferry-gzip$l]}" "$(compressor "{ \"@type\": type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip, compression_level: COMPRESSION_LEVEL_$l, window_bits: 15, memory_level: 8 }")"
  done
  hcm plain "${PORT[ferry-plain]}" ""
  hcm br3 "${PORT[ferry-br3]}" "$(compressor '{ "@type": type.googleapis.com/envoy.extensions.compression.brotli.compressor.v3.Brotli, quality: 3 }')"
  hcm zstd3 "${PORT[ferry-zstd3]}" "$(compressor '{ "@type": type.googleapis.com/envoy.extensions.compression.zstd.compressor.v3.Zstd, compression_level: 3 }')"
  cat <<EOF
  clusters:
  - name: upstream
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: upstream
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: $UP_PORT } } } }] }]
EOF
} >"$BENCH_DIR/ferry.yaml"

start_nginx nginx "$BENCH_DIR/nginx.conf"
NGINX_PID=$BG_PID
first_level=${LEVELS%% *}
wait_http nginx "$NGINX_PID" "http://127.0.0.1:${PORT[nginx-gzip$first_level]}/bulk"
start_ferry "$BENCH_DIR/ferry.yaml"
FERRY_PID=$BG_PID
wait_ferry "$FERRY_PID" "$ADMIN_PORT" "${PORT[ferry-plain]}" /bulk

TARGETS=()
for l in $LEVELS; do TARGETS+=("nginx-gzip$l" "ferry-gzip$l"); done
TARGETS+=(ferry-plain ferry-br3 ferry-zstd3)

# Check every target answers the body, compressed as asked, and note the compressed size.
declare -A ENC SIZE
for t in "${TARGETS[@]}"; do
  case $t in *br3) ae=br ;; *zstd3) ae=zstd ;; *) ae=gzip ;; esac
  ENC[$t]=$ae
  hdr=$(curl -s -m 10 -D - -o "$BENCH_DIR/out-$t" -H "Accept-Encoding: $ae" "http://127.0.0.1:${PORT[$t]}/bulk")
  SIZE[$t]=$(stat -c %s "$BENCH_DIR/out-$t")
  if [ "$t" != ferry-plain ] && ! grep -qi "^content-encoding: $ae" <<<"$hdr"; then
    bench_log "warning: $t did not answer content-encoding $ae"
  fi
  if [ "$ae" = gzip ] && [ "$t" != ferry-plain ] && ! gunzip -c "$BENCH_DIR/out-$t" | cmp -s - "$BULK"; then
    bench_log "warning: $t's gzip body does not decompress to the original"
  fi
done

wrk_ae() { # wrk_ae OUT URL SECONDS ENCODING
  timeout $(($3 + 30)) "${PIN_CLIENT[@]}" wrk -t1 -c"$BENCH_CONNECTIONS" -d"$3s" --latency \
    -H "Accept-Encoding: $4" "$2" >"$1" 2>&1 || true
}

echo "compression: ${ROUNDS} rounds x ${SECS}s per target, wrk -t1 -c$BENCH_CONNECTIONS, body ${BODY_BYTES} bytes" \
  "of TypeScript source, levels: $LEVELS"
echo "$(load_average) (other work on the machine skews every number)"
for t in "${TARGETS[@]}"; do wrk_ae "$BENCH_DIR/warm-$t.txt" "http://127.0.0.1:${PORT[$t]}/bulk" 2 "${ENC[$t]}"; done
declare -A RPS P99 ERRS CPU
for ((r = 1; r <= ROUNDS; r++)); do
  echo
  echo "round $r/$ROUNDS"
  printf '%-14s %10s %10s %10s %8s %12s\n' target rps MB/s p99_ms errors cpu_us/req
  for t in "${TARGETS[@]}"; do
    pid=$FERRY_PID
    case $t in nginx*) pid=$NGINX_PID ;; esac
    before=$(cpu_ticks "$pid")
    wrk_ae "$BENCH_DIR/wrk-$t-$r.txt" "http://127.0.0.1:${PORT[$t]}/bulk" "$SECS" "${ENC[$t]}"
    after=$(cpu_ticks "$pid")
    check_alive "${t%%-*}" "$pid"
    read -r rps p99 req err <<<"$(parse_wrk "$BENCH_DIR/wrk-$t-$r.txt")"
    [ "$err" = -1 ] && err=0
    mbs=$(awk -v r="$rps" -v b="$BODY_BYTES" 'BEGIN { printf "%.1f", r * b / 1048576 }')
    cpu=$(us_per_req $((after - before)) "$req")
    RPS[$t]="${RPS[$t]:-} $rps"
    P99[$t]="${P99[$t]:-} $p99"
    CPU[$t]="${CPU[$t]:-} $cpu"
    ERRS[$t]=$((${ERRS[$t]:-0} + err))
    printf '%-14s %10.1f %10s %10.3f %8d %12s\n' "$t" "$rps" "$mbs" "$p99" "$err" "$cpu"
  done
done

echo
echo "summary (median of $ROUNDS rounds; $(load_average))"
printf '%-14s %10s %10s %10s %8s %12s %10s\n' target rps MB/s p99_ms errors cpu_us/req ratio
declare -A M_MBS
for t in "${TARGETS[@]}"; do
  # shellcheck disable=SC2086
  rps=$(median ${RPS[$t]})
  # shellcheck disable=SC2086
  p99=$(median ${P99[$t]})
  # shellcheck disable=SC2086
  cpu=$(median ${CPU[$t]})
  M_MBS[$t]=$(awk -v r="$rps" -v b="$BODY_BYTES" 'BEGIN { printf "%.1f", r * b / 1048576 }')
  printf '%-14s %10.1f %10s %10.3f %8d %12s %10s\n' "$t" "$rps" "${M_MBS[$t]}" "$p99" "${ERRS[$t]}" "$cpu" \
    "$(awk -v c="${SIZE[$t]}" -v b="$BODY_BYTES" 'BEGIN { printf "%.3f", c / b }')"
done
for l in $LEVELS; do
  echo "ratio ferry/nginx gzip level $l MB/s: $(ratio "${M_MBS[ferry-gzip$l]}" "${M_MBS[nginx-gzip$l]}")"
done
echo
report_log ferry
