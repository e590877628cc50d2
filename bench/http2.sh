#!/usr/bin/env bash
# HTTP/2 proxy benchmark: h2load (cleartext HTTP/2, prior knowledge) through nginx and through
# Ferry, interleaved per round (nginx, ferry, ferry-h2up, nginx, ...) so drift on the machine
# hits every target alike; then Ferry's memory per idle HTTP/2 connection.
#
# Downstream is HTTP/2 everywhere: nginx (1 worker) `listen ... http2` (h2c), Ferry an
# http_connection_manager with codec_type AUTO. Two upstream modes, same upstream nginx
# (1 worker) answering "hello world\n":
#   nginx       HTTP/1.1 keep-alive upstream (proxy_pass, keepalive 64)
#   ferry       HTTP/1.1 keep-alive upstream (Ferry's default cluster protocol)
#   ferry-h2up  HTTP/2 upstream (cluster with typed_extension_protocol_options ->
#               explicit_http_config.http2_protocol_options) to the upstream nginx's h2c port.
# nginx cannot proxy_pass over HTTP/2, so there is no nginx HTTP/2-upstream figure: ferry-h2up
# is compared with the same nginx HTTP/1.1-upstream run, and the output says so.
# Servers are pinned to core 0, h2load to core 1 (h2load -t1 -c64 -m10 -D SECS).
#
# Memory: a fresh Ferry per round is warmed up with BENCH_H2_CONNS HTTP/2 connections that
# each carry one GET and close; then BENCH_H2_CONNS connections are opened that send the
# preface and SETTINGS, ack Ferry's SETTINGS and sit idle. (RSS with them open - RSS
# before) / BENCH_H2_CONNS, median over rounds (target <= 16 KiB).
#
# Knobs (environment):
#   BENCH_SECONDS      measured seconds per run (default 8)
#   BENCH_ROUNDS       rounds (default 3)
#   BENCH_WARMUP       warm-up seconds before each measured run (default 2)
#   BENCH_JIT_WARMUP   seconds of load on each target once before round 1 (default 4)
#   BENCH_CONNECTIONS  h2load connections (default 64)
#   BENCH_STREAMS      h2load concurrent streams per connection (default 10)
#   BENCH_H2_CONNS     idle HTTP/2 connections for the memory figure (default 1000; 0 skips it)
#   BENCH_MEM_ROUNDS   memory rounds, each with a fresh Ferry (default 2)
#   BENCH_SETTLE       seconds before each RSS reading (default 2)
#   and those in bench/_common.sh (FERRY_CMD, FERRY_ARGS, BENCH_READY_TIMEOUT, BENCH_KEEP)
#
# Prints a table per round, the medians and
#   ratio ferry/nginx rps: 0.85                (target >= 0.8)
#   ratio ferry/nginx cpu per request: 1.20    (target <= 1.3)
#   kib per idle http2 connection: 9.10        (target <= 16)
set -uo pipefail
# shellcheck source=bench/_common.sh
. "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

SECS=${BENCH_SECONDS:-8}
ROUNDS=${BENCH_ROUNDS:-3}
WARMUP=${BENCH_WARMUP:-2}
JIT_WARMUP=${BENCH_JIT_WARMUP:-4}
H2_CONNS=${BENCH_H2_CONNS:-1000}
MEM_ROUNDS=${BENCH_MEM_ROUNDS:-2}
SETTLE=${BENCH_SETTLE:-2}
TARGET_RPS=0.8
TARGET_CPU=1.3
TARGET_KIB=16

bench_init http2
need_pkgs nginx nghttp2-client curl
find_nginx
PYTHON=$(command -v python3 2>/dev/null) || bench_die "python3 is needed for the idle-connection client"

UP_PORT=$(free_port)
UP_H2_PORT=$(free_port)
NGINX_PORT=$(free_port)
FERRY_PORT=$(free_port)
FERRY_H2UP_PORT=$(free_port)
ADMIN_PORT=$(free_port)

# The upstream: the shared HTTP/1.1 server, plus an h2c server with the same answer.
write_upstream_conf "$BENCH_DIR/upstream.conf" "$UP_PORT"
sed -i '$d' "$BENCH_DIR/upstream.conf" # the closing brace of http {}
cat >>"$BENCH_DIR/upstream.conf" <<EOF
  server {
    listen 127.0.0.1:$UP_H2_PORT http2 backlog=4096;
    location / { return 200 "hello world\n"; }
  }
}
EOF
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
  server {
    listen 127.0.0.1:$NGINX_PORT http2 backlog=4096;
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
} >"$BENCH_DIR/nginx.conf"

# ferry_h2_conf FILE ADMIN H1UP_PORT H2UP_PORT: two AUTO listeners, "h1up" to the HTTP/1.1
# cluster "upstream" and "h2up" to the HTTP/2 cluster "upstream_h2".
ferry_h2_conf() {
  local file=$1 admin=$2 l1=$3 l2=$4 name port cluster
  {
    cat <<EOF
admin:
  address:
    socket_address: { address: 127.0.0.1, port_value: $admin }
static_resources:
  listeners:
EOF
    for name in h1up h2up; do
      if [ "$name" = h1up ]; then port=$l1 cluster=upstream; else port=$l2 cluster=upstream_h2; fi
      cat <<EOF
  - name: $name
    address:
      socket_address: { address: 127.0.0.1, port_value: $port }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: $name
          codec_type: AUTO
          route_config:
            name: $name
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route: { cluster: $cluster }
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
EOF
    done
    cat <<EOF
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
              socket_address: { address: 127.0.0.1, port_value: $UP_PORT }
  - name: upstream_h2
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http2_protocol_options: {}
    load_assignment:
      cluster_name: upstream_h2
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: { address: 127.0.0.1, port_value: $UP_H2_PORT }
EOF
  } >"$file"
}
ferry_h2_conf "$BENCH_DIR/ferry.yaml" "$ADMIN_PORT" "$FERRY_PORT" "$FERRY_H2UP_PORT"

# h2_get PORT: the body of one HTTP/2 (prior knowledge) GET /, or nothing.
h2_get() { curl -s -m 5 --http2-prior-knowledge "http://127.0.0.1:$1/" 2>/dev/null; }

start_nginx upstream "$BENCH_DIR/upstream.conf"
UP_PID=$BG_PID
wait_http upstream "$UP_PID" "http://127.0.0.1:$UP_PORT/"
[ "$(h2_get "$UP_H2_PORT")" = "hello world" ] || bench_die "the upstream's h2c port :$UP_H2_PORT does not answer"
start_nginx nginx "$BENCH_DIR/nginx.conf"
NGINX_PID=$BG_PID
deadline=$((SECONDS + BENCH_READY_TIMEOUT))
until [ "$(h2_get "$NGINX_PORT")" = "hello world" ]; do
  check_alive nginx "$NGINX_PID"
  [ "$SECONDS" -lt "$deadline" ] || bench_die "nginx (h2c :$NGINX_PORT) not ready"
  sleep 0.2
done
start_ferry "$BENCH_DIR/ferry.yaml"
FERRY_PID=$BG_PID
wait_ferry "$FERRY_PID" "$ADMIN_PORT" "$FERRY_PORT"
for p in "$FERRY_PORT" "$FERRY_H2UP_PORT"; do
  body=$(h2_get "$p")
  [ "$body" = "hello world" ] || {
    show_logs ferry
    bench_die "Ferry :$p answered HTTP/2 GET / with '$body', expected 'hello world' (is HTTP/2 wired?)"
  }
done

TARGETS=(nginx ferry ferry-h2up)
declare -A PORT=([nginx]=$NGINX_PORT [ferry]=$FERRY_PORT [ferry-h2up]=$FERRY_H2UP_PORT)
declare -A PID=([nginx]=$NGINX_PID [ferry]=$FERRY_PID [ferry-h2up]=$FERRY_PID)
declare -A LOGNAME_OF=([nginx]=nginx [ferry]=ferry [ferry-h2up]=ferry)
declare -A RPS CPU ERRS

echo "http2: ${ROUNDS} rounds x ${SECS}s per target (+${WARMUP}s warm-up), h2load -t1 -c${BENCH_CONNECTIONS:-64}" \
  "-m${BENCH_STREAMS:-10} (h2c prior knowledge); upstream :$UP_PORT (HTTP/1.1) :$UP_H2_PORT (h2c)"
echo "targets: nginx = nginx h2c -> HTTP/1.1 keep-alive upstream; ferry = Ferry AUTO -> HTTP/1.1 upstream;"
echo "         ferry-h2up = Ferry AUTO -> HTTP/2 upstream (nginx cannot proxy over HTTP/2: compared with nginx's"
echo "         HTTP/1.1-upstream figure)"
echo "$(load_average) (other work on the machine skews every number)"
if [ "$JIT_WARMUP" -gt 0 ]; then
  for t in "${TARGETS[@]}"; do run_h2load "$BENCH_DIR/jit-warm-$t.txt" "http://127.0.0.1:${PORT[$t]}/" "$JIT_WARMUP"; done
fi
for ((r = 1; r <= ROUNDS; r++)); do
  echo
  echo "round $r/$ROUNDS"
  printf '%-11s %12s %10s %8s %12s\n' target rps requests errors cpu_us/req
  for t in "${TARGETS[@]}"; do
    url="http://127.0.0.1:${PORT[$t]}/"
    [ "$WARMUP" -gt 0 ] && run_h2load "$BENCH_DIR/warm-$t.txt" "$url" "$WARMUP"
    before=$(cpu_ticks "${PID[$t]}")
    run_h2load "$BENCH_DIR/h2load-$t-$r.txt" "$url" "$SECS"
    after=$(cpu_ticks "${PID[$t]}")
    check_alive "${LOGNAME_OF[$t]}" "${PID[$t]}"
    read -r rps req err <<<"$(parse_h2load "$BENCH_DIR/h2load-$t-$r.txt")"
    if [ "$err" = -1 ]; then
      bench_log "h2load gave no result for $t:"
      cat "$BENCH_DIR/h2load-$t-$r.txt" >&2
      err=0
    fi
    cpu=$(us_per_req $((after - before)) "$req")
    RPS[$t]="${RPS[$t]:-} $rps"
    [ "$cpu" != - ] && CPU[$t]="${CPU[$t]:-} $cpu"
    ERRS[$t]=$((${ERRS[$t]:-0} + err))
    printf '%-11s %12.1f %10d %8d %12s\n' "$t" "$rps" "$req" "$err" "$cpu"
  done
done

echo
echo "summary (median of $ROUNDS rounds; $(load_average))"
printf '%-11s %12s %8s %12s\n' target rps errors cpu_us/req
declare -A M_RPS M_CPU
for t in "${TARGETS[@]}"; do
  # shellcheck disable=SC2086 # the lists are space-separated numbers
  M_RPS[$t]=$(median ${RPS[$t]})
  M_CPU[$t]=-
  # shellcheck disable=SC2086
  [ -n "${CPU[$t]:-}" ] && M_CPU[$t]=$(median ${CPU[$t]})
  printf '%-11s %12.1f %8d %12s\n' "$t" "${M_RPS[$t]}" "${ERRS[$t]}" "${M_CPU[$t]}"
done
r_rps=$(ratio "${M_RPS[ferry]}" "${M_RPS[nginx]}")
r_cpu=$(ratio "${M_CPU[ferry]}" "${M_CPU[nginx]}")
echo "ratio ferry/nginx rps: $r_rps"
# CPU time per request barely moves when other work shares the machine; RPS does.
echo "ratio ferry/nginx cpu per request: $r_cpu"
echo "ratio ferry-h2up/nginx rps: $(ratio "${M_RPS[ferry-h2up]}" "${M_RPS[nginx]}")" \
  "(Ferry with an HTTP/2 upstream vs nginx with an HTTP/1.1 one)"
echo "ratio ferry-h2up/nginx cpu per request: $(ratio "${M_CPU[ferry-h2up]}" "${M_CPU[nginx]}")"
# meets VALUE OP TARGET: "met" or "not met".
meets() {
  if [ "$1" != n/a ] && awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN { exit !(op == ">=" ? v >= t : v <= t) }'; then
    echo met
  else
    echo "not met"
  fi
}
echo "target ferry/nginx rps >= $TARGET_RPS: $(meets "$r_rps" ">=" "$TARGET_RPS")"
echo "target ferry/nginx cpu per request <= $TARGET_CPU: $(meets "$r_cpu" "<=" "$TARGET_CPU")"
echo
report_log ferry

[ "$H2_CONNS" -gt 0 ] || exit 0

# The idle-connection client: raw HTTP/2 frames over plain sockets (no h2 module needed).
cat >"$BENCH_DIR/h2_idle.py" <<'PY'
import signal, socket, struct, sys, time

port, conns, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload
# GET / with :scheme http, :path / and :method GET from the static table; :authority literal.
GET = bytes([0x82, 0x86, 0x84, 0x01, 5]) + b"bench"

def read_frames(s, buf):
    """Reads until at least one whole frame is buffered; returns (frames, rest)."""
    while True:
        out = []
        while len(buf) >= 9:
            n = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + n:
                break
            out.append((buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF, buf[9:9 + n]))
            buf = buf[9 + n:]
        if out:
            return out, buf
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed by the server")
        buf += chunk

def open_one():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(PREFACE + frame(4, 0, 0))
    if mode == "warm":
        s.sendall(frame(1, 0x5, 1, GET))
    buf, acked, done = b"", False, mode != "warm"
    while not (acked and done):
        frames, buf = read_frames(s, buf)
        for ftype, flags, sid, _ in frames:
            if ftype == 4 and not flags & 1:
                s.sendall(frame(4, 1, 0))
                acked = True
            elif ftype == 7:
                raise ConnectionError("GOAWAY from the server")
            elif sid == 1 and ftype in (0, 1) and flags & 1:
                done = True
    return s

socks, failed = [], 0
for _ in range(conns):
    try:
        socks.append(open_one())
    except Exception as e:  # counted: the measurement divides by what opened
        failed += 1
        print(f"error {e}", file=sys.stderr)
print(f"READY opened={len(socks)} failed={failed}", flush=True)
if mode == "warm":
    sys.exit(0)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
deadline = time.time() + 120
while time.time() < deadline:
    time.sleep(1)
PY

# heap_kib ADMIN_PORT: V8 heap used plus external memory in KiB from the admin /memory, or nothing.
heap_kib() {
  curl -s -m 5 "http://127.0.0.1:$1/memory" 2>/dev/null | tr -d ' \n' |
    sed -nE 's/.*"allocated":"?([0-9]+).*"external":"?([0-9]+).*/\1 \2/p' | awk '{ printf "%d\n", ($1 + $2) / 1024 }'
}
per_conn() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.2f\n", (a - b) / n }'; }

# Ferry under load is stopped first: each memory round starts its own.
kill -TERM "$FERRY_PID" 2>/dev/null
wait "$FERRY_PID" 2>/dev/null
echo
echo "memory: $MEM_ROUNDS rounds, each a fresh Ferry: warm-up $H2_CONNS HTTP/2 connections (one GET each, closed)," \
  "then $H2_CONNS idle HTTP/2 connections (preface, SETTINGS, SETTINGS ack)"
printf '%-6s %10s %10s %8s %12s %12s\n' round base_kib open_kib open heap_kib/conn rss_kib/conn
PER=()
for ((m = 1; m <= MEM_ROUNDS; m++)); do
  FERRY_NAME=ferry-mem-$m
  port=$(free_port)
  admin=$(free_port)
  ferry_h2_conf "$BENCH_DIR/ferry-mem-$m.yaml" "$admin" "$port" "$(free_port)"
  start_ferry "$BENCH_DIR/ferry-mem-$m.yaml"
  pid=$BG_PID
  wait_ferry "$pid" "$admin" "$port"
  timeout 120 "${PIN_CLIENT[@]}" "$PYTHON" "$BENCH_DIR/h2_idle.py" "$port" "$H2_CONNS" warm \
    >"$BENCH_DIR/mem-warm-$m.txt" 2>&1 || bench_log "warm-up client: $(tail -n 2 "$BENCH_DIR/mem-warm-$m.txt")"
  grep -q "^READY opened=$H2_CONNS failed=0" "$BENCH_DIR/mem-warm-$m.txt" ||
    bench_log "warm-up: $(grep -m1 -E '^(READY|error)' "$BENCH_DIR/mem-warm-$m.txt")"
  sleep "$SETTLE"
  check_alive "$FERRY_NAME" "$pid"
  rss_before=$(rss_kib "$pid")
  heap_before=$(heap_kib "$admin")
  start_bg "mem-client-$m" timeout 150 "${PIN_CLIENT[@]}" "$PYTHON" "$BENCH_DIR/h2_idle.py" "$port" "$H2_CONNS" hold
  client=$BG_PID
  deadline=$((SECONDS + 120))
  until grep -q '^READY' "$BENCH_DIR/mem-client-$m.log" 2>/dev/null; do
    kill -0 "$client" 2>/dev/null || bench_die "idle client exited: $(tail -n 3 "$BENCH_DIR/mem-client-$m.log")"
    [ "$SECONDS" -lt "$deadline" ] || bench_die "idle connections not open after 120s"
    sleep 0.3
  done
  opened=$(sed -nE 's/^READY opened=([0-9]+).*/\1/p' "$BENCH_DIR/mem-client-$m.log")
  [ "$opened" = "$H2_CONNS" ] || bench_log "round $m: $(grep -m1 '^READY' "$BENCH_DIR/mem-client-$m.log")"
  sleep "$SETTLE"
  check_alive "$FERRY_NAME" "$pid"
  rss_open=$(rss_kib "$pid")
  heap_open=$(heap_kib "$admin")
  kill -TERM "$client" 2>/dev/null
  wait "$client" 2>/dev/null
  kill -TERM "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  [ "${opened:-0}" -gt 0 ] || bench_die "round $m: no idle HTTP/2 connection opened"
  per=$(per_conn "$rss_open" "$rss_before" "$opened")
  heap_per=-
  [ -n "$heap_before" ] && [ -n "$heap_open" ] && heap_per=$(per_conn "$heap_open" "$heap_before" "$opened")
  PER+=("$per")
  printf '%-6s %10s %10s %8s %12s %12s\n' "$m" "$rss_before" "$rss_open" "$opened" "$heap_per" "$per"
done
kib=$(median "${PER[@]}")
echo "kib per idle http2 connection: $kib (median of $MEM_ROUNDS; rounds: ${PER[*]})"
echo "target kib per idle http2 connection <= $TARGET_KIB: $(meets "$kib" "<=" "$TARGET_KIB")"
