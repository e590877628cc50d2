# shellcheck shell=bash
# Shared helpers for the bench/*.sh scripts: tools, ports, processes, nginx and Ferry
# configs, wrk parsing. Sourced, never run. Everything a script starts is recorded and
# killed by the exit trap; every temporary file lives under $BENCH_DIR.
#
# Common knobs (environment):
#   FERRY_CMD            how to start Ferry (default: `deno task start`'s command, "deno run -A --v8-flags=…
#                        main.ts", with its V8 flags; e.g. "dist/ferry")
#   FERRY_ARGS           extra Ferry flags (default "--concurrency 1" when main.ts knows the flag)
#   BENCH_READY_TIMEOUT  seconds to wait for a server to answer (default 60)
#   BENCH_KEEP=1         keep $BENCH_DIR (configs, logs, wrk output) after exit

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_READY_TIMEOUT=${BENCH_READY_TIMEOUT:-60}
BENCH_PIDS=()
BENCH_DIR=
BENCH_NAME=bench

bench_log() { printf '%s\n' "$BENCH_NAME: $*" >&2; }
bench_die() {
  bench_log "$*"
  exit 1
}

bench_cleanup() {
  local pid i
  for pid in "${BENCH_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for ((i = 0; i < 30; i++)); do
    local alive=0
    for pid in "${BENCH_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${BENCH_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  wait 2>/dev/null
  if [ -n "$BENCH_DIR" ] && [ -d "$BENCH_DIR" ]; then
    if [ "${BENCH_KEEP:-0}" = 1 ]; then bench_log "kept $BENCH_DIR"; else rm -rf "$BENCH_DIR"; fi
  fi
}

# bench_init NAME: temp dir, exit trap, CPU pinning plan.
bench_init() {
  BENCH_NAME=$1
  BENCH_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ferry-$1.XXXXXX")
  # nginx workers run as nobody when started by root: let them read the configs and files.
  chmod 755 "$BENCH_DIR"
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
  if [ "$(nproc 2>/dev/null || echo 1)" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
    PIN_SERVER=(taskset -c 0)
    PIN_CLIENT=(taskset -c 1)
  else
    bench_log "fewer than 2 cores or no taskset: not pinning (numbers are less comparable)"
    PIN_SERVER=()
    PIN_CLIENT=()
  fi
}

# as_root CMD...: run as root directly or through password-less sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"; else return 1; fi
}

# show_logs NAME: the last lines of what a server wrote (stdout/stderr, and nginx's error log).
show_logs() {
  local f
  for f in "$BENCH_DIR/$1.log" "$BENCH_DIR/$1-error.log"; do
    [ -s "$f" ] && { echo "--- $f" && tail -n 30 "$f"; } >&2
  done
  return 0
}

BENCH_APT_UPDATED=0
# need_pkgs PKG...: install the Debian packages that are not installed yet.
need_pkgs() {
  local missing=() p
  for p in "$@"; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  command -v apt-get >/dev/null 2>&1 || bench_die "missing ${missing[*]} and no apt-get to install them"
  bench_log "installing ${missing[*]}"
  if [ "$BENCH_APT_UPDATED" = 0 ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || bench_log "apt-get update failed"
    BENCH_APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >"${BENCH_DIR:-/tmp}/apt.log" 2>&1 || {
    cat "${BENCH_DIR:-/tmp}/apt.log" >&2
    bench_die "apt-get install ${missing[*]} failed"
  }
}

# Binaries under /usr/sbin are not on every user's PATH.
NGINX_BIN=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
find_nginx() { NGINX_BIN=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx); }

BENCH_USED_PORTS=" "
# free_port: a loopback TCP port no socket uses, below the ephemeral range so the
# clients' own ports never collide with it.
free_port() {
  local low hex port i
  low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  for ((i = 0; i < 200; i++)); do
    port=$((20000 + RANDOM % (low - 20000)))
    case $BENCH_USED_PORTS in *" $port "*) continue ;; esac
    hex=$(printf ':%04X ' "$port")
    if ! cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk '{print $2" "}' | grep -q -- "$hex"; then
      BENCH_USED_PORTS="$BENCH_USED_PORTS$port "
      echo "$port"
      return 0
    fi
  done
  bench_die "no free port found"
}

# tcp_open PORT: true when something accepts on 127.0.0.1:PORT.
tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_http NAME PID URL: wait until URL answers 200 (and PID still lives).
wait_http() {
  local name=$1 pid=$2 url=$3 deadline code
  deadline=$((SECONDS + BENCH_READY_TIMEOUT))
  while [ "$SECONDS" -lt "$deadline" ]; do
    kill -0 "$pid" 2>/dev/null || {
      bench_log "$name exited during startup; its log:"
      show_logs "$name"
      exit 1
    }
    code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$url" 2>/dev/null) || true
    [ "$code" = 200 ] && return 0
    sleep 0.2
  done
  bench_log "$name not ready after ${BENCH_READY_TIMEOUT}s ($url answered ${code:-nothing}); its log:"
  show_logs "$name"
  exit 1
}

# start_bg NAME CMD...: start CMD in the background, output to $BENCH_DIR/NAME.log;
# sets BG_PID (the command's own pid: the subshell execs it).
start_bg() {
  local name=$1
  shift
  (cd "$BENCH_ROOT" && exec "$@") >"$BENCH_DIR/$name.log" 2>&1 &
  BG_PID=$!
  BENCH_PIDS+=("$BG_PID")
}

# nginx_modules_path: where this nginx build looks for dynamic modules.
nginx_modules_path() {
  "$NGINX_BIN" -V 2>&1 | tr ' ' '\n' | sed -n 's/^--modules-path=//p' | head -n1
}

# nginx_common NAME: the main-context lines every nginx we start shares. Notice level logs
# the signals nginx receives, with the sender's pid, should something else stop it.
nginx_common() {
  local nofile
  nofile=$(ulimit -Hn)
  [ "$nofile" = unlimited ] || [ "$nofile" -gt 32768 ] && nofile=32768
  cat <<EOF
worker_processes 1;
daemon off;
master_process on;
pid $BENCH_DIR/$1.pid;
error_log $BENCH_DIR/$1-error.log notice;
events { worker_connections $((nofile / 2)); }
worker_rlimit_nofile $nofile;
EOF
}

# nginx_http_common NAME: http-context lines (temp paths in our dir, no access log, and
# keep-alive connections that are never recycled, so no proxy pays for reconnects).
nginx_http_common() {
  cat <<EOF
  access_log off;
  default_type text/plain;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  sendfile on;
  client_body_temp_path $BENCH_DIR/$1-tmp/body;
  proxy_temp_path $BENCH_DIR/$1-tmp/proxy;
  fastcgi_temp_path $BENCH_DIR/$1-tmp/fastcgi;
  uwsgi_temp_path $BENCH_DIR/$1-tmp/uwsgi;
  scgi_temp_path $BENCH_DIR/$1-tmp/scgi;
EOF
}

# write_upstream_conf FILE PORT [BULK_FILE]: the shared upstream, "hello world\n" on /,
# and BULK_FILE (if given) on /bulk.
write_upstream_conf() {
  local file=$1 port=$2 bulk=${3:-}
  {
    nginx_common upstream
    echo "http {"
    nginx_http_common upstream
    echo "  server {"
    echo "    listen 127.0.0.1:$port backlog=4096;"
    echo "    location = /bulk { alias ${bulk:-/nonexistent}; }"
    printf '%s\n' '    location / { return 200 "hello world\n"; }'
    echo "  }"
    echo "}"
  } >"$file"
}

# start_nginx NAME CONF: start an nginx master (pinned to the server core); sets BG_PID.
start_nginx() {
  mkdir -p "$BENCH_DIR/$1-tmp"
  "$NGINX_BIN" -t -q -p "$BENCH_DIR" -e "$BENCH_DIR/$1-error.log" -c "$2" >"$BENCH_DIR/$1-test.log" 2>&1 || {
    cat "$BENCH_DIR/$1-test.log" >&2
    bench_die "nginx config $2 is invalid"
  }
  start_bg "$1" "${PIN_SERVER[@]}" "$NGINX_BIN" -p "$BENCH_DIR" -e "$BENCH_DIR/$1-error.log" -c "$2"
}

# start_bulk_upstream PORT MB: the shared upstream (write_upstream_conf) on PORT, serving an MB MiB file on /bulk.
start_bulk_upstream() {
  local bulk=$BENCH_DIR/bulk.bin
  truncate -s "$2M" "$bulk"
  chmod 644 "$bulk"
  write_upstream_conf "$BENCH_DIR/upstream.conf" "$1" "$bulk"
  start_nginx upstream "$BENCH_DIR/upstream.conf"
}

# write_ferry_conf FILE ADMIN_PORT LISTENER_YAML: a bootstrap with one listener (given as
# its filter_chains filters, indented for the list) and the cluster "upstream".
write_ferry_conf() {
  local file=$1 admin=$2 port=$3 upstream=$4 filters=$5
  cat >"$file" <<EOF
admin:
  address:
    socket_address: { address: 127.0.0.1, port_value: $admin }
static_resources:
  listeners:
  - name: bench
    address:
      socket_address: { address: 127.0.0.1, port_value: $port }
    filter_chains:
    - filters:
$filters
  clusters:
  - name: upstream
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: upstream
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: { address: 127.0.0.1, port_value: $upstream }
EOF
}

# The L7 filter list for write_ferry_conf.
# shellcheck disable=SC2034 # used by the scripts that source this file
FERRY_HCM_FILTERS='      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          route_config:
            name: bench
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route: { cluster: upstream }
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router'

# The L4 filter list for write_ferry_conf.
# shellcheck disable=SC2034
FERRY_TCP_FILTERS='      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: bench
          cluster: upstream'

# hcm_filters_yaml STAT_PREFIX: a filter chain's `filters:` block, an HTTP connection manager (HTTP/1.0 accepted)
# routing everything to the cluster "upstream".
hcm_filters_yaml() {
  cat <<EOF
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: $1
          http_protocol_options: { accept_http_10: true }
          route_config: { virtual_hosts: [{ name: all, domains: ["*"], routes: [{ match: { prefix: "/" }, route: { cluster: upstream, timeout: 120s } }] }] }
          http_filters: [{ name: envoy.filters.http.router, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router } }]
EOF
}

# native_listener_yaml CERTS PORT: the listener entry "native" on Deno's TLS (rustls, the ECDSA certificate of
# `ferry certs`), its HCM routing to the cluster "upstream".
native_listener_yaml() {
  cat <<EOF
  - name: native
    address: { socket_address: { address: 127.0.0.1, port_value: $2 } }
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          common_tls_context:
            tls_certificates: [{ certificate_chain: { filename: $1/server_ecdsa.crt }, private_key: { filename: $1/server_ecdsa.key } }]
$(hcm_filters_yaml native)
EOF
}

# gm_listener_head NAME PORT VERSION: the start of one listener entry on Ferry's GM transport socket, up to and
# including `versions:`; the caller adds the certificates, the suites and the filters.
gm_listener_head() {
  cat <<EOF
  - name: $1
    address: { socket_address: { address: 127.0.0.1, port_value: $2 } }
    filter_chains:
    - transport_socket:
        name: ferry.transport_sockets.gm
        typed_config:
          "@type": type.googleapis.com/ferry.transport_sockets.gm.v1.GmTlsContext
          versions: [$3]
EOF
}

# gm_listeners_yaml CERTS GM13_PORT TLCP_PORT FILTERS_FN: two entries for a bootstrap's `listeners:` list, "gm13" (TLS
# 1.3-SM: TLS_SM4_GCM_SM3 with the SM2 certificate) and "tlcp" (TLCP ECC and ECDHE with the sign and enc certificates),
# both on Ferry's GM transport socket with the `ferry certs --gm` files in CERTS; `FILTERS_FN NAME` prints each one's
# `filters:` block.
gm_listeners_yaml() {
  local certs=$1
  gm_listener_head gm13 "$2" TLSv1.3
  cat <<EOF
          certificate: { certificate_chain: { filename: $certs/server.crt }, private_key: { filename: $certs/server.key } }
          cipher_suites: [TLS_SM4_GCM_SM3]
$("$4" gm13)
EOF
  gm_listener_head tlcp "$3" TLCP
  cat <<EOF
          sign_certificate: { certificate_chain: { filename: $certs/server_sign.crt }, private_key: { filename: $certs/server_sign.key } }
          enc_certificate: { certificate_chain: { filename: $certs/server_enc.crt }, private_key: { filename: $certs/server_enc.key } }
          cipher_suites: [ECC_SM4_GCM_SM3, ECDHE_SM4_GCM_SM3]
$("$4" tlcp)
EOF
}

# start_ferry CONF: start Ferry pinned to the server core; sets BG_PID. Its output goes to
# $BENCH_DIR/$FERRY_NAME.log (FERRY_NAME defaults to ferry).
FERRY_NAME=ferry
start_ferry() {
  local cmd args
  read -r -a cmd <<<"${FERRY_CMD:-deno run -A --v8-flags=--experimental-wasm-wide-arithmetic,--invocation-count-for-maglev=50,--minimum-invocations-after-ic-update=50,--no-memory-reducer main.ts}"
  if [ -n "${FERRY_ARGS+x}" ]; then
    read -r -a args <<<"$FERRY_ARGS"
  elif [ -f "$BENCH_ROOT/main.ts" ] && grep -q -- 'concurrency' "$BENCH_ROOT/main.ts"; then
    args=(--concurrency 1)
  else
    args=()
  fi
  if [ "${cmd[*]: -1}" = "main.ts" ] && [ "${cmd[0]}" = deno ] && [ ! -f "$BENCH_ROOT/main.ts" ]; then
    bench_die "main.ts not found in $BENCH_ROOT (set FERRY_CMD to run another build)"
  fi
  start_bg "$FERRY_NAME" "${PIN_SERVER[@]}" "${cmd[@]}" -c "$1" "${args[@]}"
}

# wait_ferry PID ADMIN_PORT PORT [PATH]: wait for /ready on the admin port or the listener
# port, then insist that one request through the listener gets a 200.
wait_ferry() {
  local pid=$1 admin=$2 port=$3 path=${4:-/} deadline code
  deadline=$((SECONDS + BENCH_READY_TIMEOUT))
  while [ "$SECONDS" -lt "$deadline" ]; do
    kill -0 "$pid" 2>/dev/null || break
    code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$admin/ready" 2>/dev/null) || true
    if [ "$code" = 200 ] || tcp_open "$port"; then break; fi
    sleep 0.2
  done
  wait_http "$FERRY_NAME" "$pid" "http://127.0.0.1:$port$path"
}

# cpu_ticks PID: user+system clock ticks of PID and its direct children (nginx workers;
# Deno's threads are already in its own counters).
cpu_ticks() {
  local pid=$1 total=0 f st rest
  for f in /proc/[0-9]*/stat; do
    st=$(cat "$f" 2>/dev/null) || continue
    rest=${st##*) } # fields after "pid (comm) "
    # rest: state ppid ... ; utime and stime are fields 14 and 15 of the line (12, 13 here)
    read -r -a fields <<<"$rest"
    if [ "${f#/proc/}" = "$pid/stat" ] || [ "${fields[1]}" = "$pid" ]; then
      total=$((total + fields[11] + fields[12]))
    fi
  done
  echo "$total"
}

# cpu_ns_snapshot PID: "tid ns" lines, the on-CPU nanoseconds of every thread of PID and of its direct children
# (nginx workers), from /proc/*/task/*/schedstat: the scheduler's exact run time, where cpu_ticks samples at 10 ms
# (a 150-handshake run of ~1 ms each is only ~15 ticks).
cpu_ns_snapshot() {
  local pid=$1 p t run rest
  local pids=("$pid")
  for p in /proc/[0-9]*/stat; do
    rest=$(cat "$p" 2>/dev/null) || continue
    rest=${rest##*) }
    read -r -a fields <<<"$rest"
    [ "${fields[1]}" = "$pid" ] && pids+=("$(basename "$(dirname "$p")")")
  done
  for p in "${pids[@]}"; do
    for t in /proc/"$p"/task/*/schedstat; do
      read -r run rest <"$t" 2>/dev/null || continue
      t=${t%/schedstat}
      echo "${t##*/} $run"
    done
  done
}

# cpu_ns_since PID SNAPSHOT: on-CPU nanoseconds since SNAPSHOT (from cpu_ns_snapshot), thread by thread: a thread
# that exited since counts 0 (its total is gone from /proc; a plain sum would subtract its whole lifetime, e.g.
# a runtime's idle blocking-pool thread ending after 10 s), a new thread counts all of its time.
cpu_ns_since() {
  awk 'NR == FNR { before[$1] = $2; next } { total += $2 - (($1 in before) ? before[$1] : 0) } END { printf "%.0f\n", total }' \
    <(echo "$2") <(cpu_ns_snapshot "$1")
}

# load_average: the 1-minute load; well above 0 before a run means other work shares the cores.
load_average() { echo "load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"; }

# rss_kib PID: resident set size in KiB.
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

# run_wrk OUT URL SECONDS: wrk pinned to the client core, 1 thread, $BENCH_CONNECTIONS
# connections, latency distribution; bounded by timeout.
run_wrk() {
  local out=$1 url=$2 secs=$3
  timeout $((secs + 30)) "${PIN_CLIENT[@]}" wrk -t1 -c"${BENCH_CONNECTIONS:-64}" -d"${secs}s" --latency "$url" \
    >"$out" 2>&1 || true
}

# parse_wrk FILE: prints "rps p99_ms requests errors" (errors = socket errors + non-2xx/3xx),
# or "0 0 0 -1" when wrk printed no result.
parse_wrk() {
  awk '
    function ms(v) {
      if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0;
      if (v ~ /m$/) return v * 60000; if (v ~ /s$/) return v * 1000; return v + 0
    }
    /^Requests\/sec:/ { rps = $2 }
    $1 == "99%" { p99 = ms($2) }
    / requests in / { req = $1 }
    /Socket errors:/ { gsub(/,/, ""); err += $4 + $6 + $8 + $10 }
    /Non-2xx or 3xx responses:/ { err += $5 }
    END {
      if (rps == "") { print "0 0 0 -1"; exit }
      printf "%s %.3f %d %d\n", rps, p99, req, err
    }' "$1"
}

# median N...: the median of the numbers (mean of the middle two for an even count).
median() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print 0; exit }
    if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# ratio A B: A/B with two decimals ("n/a" when B is 0).
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f\n", a / b }'; }

# us_per_req TICKS REQUESTS: CPU microseconds per request.
us_per_req() {
  awk -v t="$1" -v r="$2" -v hz="$CLK_TCK" 'BEGIN { if (r + 0 == 0) print "-"; else printf "%.1f\n", t * 1e6 / hz / r }'
}

# check_alive NAME PID: fail loudly (with the log) when a server died.
check_alive() {
  kill -0 "$2" 2>/dev/null && return 0
  local status=unknown
  wait "$2" 2>/dev/null
  status=$?
  bench_log "$1 (pid $2) died (wait status $status: above 128 means signal $((status - 128))); its log:"
  show_logs "$1"
  exit 1
}

# report_log NAME: print what a server wrote (errors under load show up here).
report_log() {
  local f=$BENCH_DIR/$1.log
  if [ -s "$f" ]; then
    echo "--- $1 output ($(wc -l <"$f") lines, last 20) ---"
    tail -n 20 "$f"
  fi
}

# run_h2load OUT URL SECONDS: h2load (HTTP/2 prior knowledge over cleartext) pinned to the
# client core, 1 thread, $BENCH_CONNECTIONS connections x $BENCH_STREAMS concurrent streams
# (defaults 64 x 10), for SECONDS; bounded by timeout.
run_h2load() {
  local out=$1 url=$2 secs=$3
  timeout $((secs + 30)) "${PIN_CLIENT[@]}" h2load -t1 -c"${BENCH_CONNECTIONS:-64}" -m"${BENCH_STREAMS:-10}" \
    -D "$secs" "$url" >"$out" 2>&1 || true
}

# parse_h2load FILE: prints "rps requests errors" (requests = completed ones; errors = failed
# requests, which h2load counts with the errored and timed-out ones, plus responses other
# than 2xx), or "0 0 -1" when h2load printed no result.
parse_h2load() {
  awk '
    /^finished in / { rps = $4; sub(/,$/, "", rps) }
    /^requests: / { done = $6; err += $10 }
    /^status codes: / { err += $5 + $7 + $9 }
    END {
      if (rps == "") { print "0 0 -1"; exit }
      printf "%s %d %d\n", rps, done, err
    }' "$1"
}
