#!/usr/bin/env bash
# GM TLS against standard TLS through Ferry, in one run: bulk throughput and full handshakes for
#   native : TLS 1.3, TLS_AES_128_GCM_SHA256, P-256, ECDSA-P256 certificate (Deno's rustls)
#   gm13   : TLS 1.3, TLS_SM4_GCM_SM3, curveSM2, sm2sig_sm3 (Ferry's engine)
#   tlcp   : TLCP 1.1, ECC_SM4_GCM_SM3 and ECDHE_SM4_GCM_SM3, double certificates (Ferry's engine)
# Each listener terminates TLS and proxies HTTP/1.1 to the same nginx upstream. The client for every
# variant is the same program, Tongsuo's s_client (the only widely used client speaking all three), pinned
# to the other core. Because the client's own cost differs per suite, the figure that compares Ferry's
# TLS stacks is Ferry's CPU per MiB and per handshake (from /proc), i.e. capacity per core; wall-clock
# MB/s and handshakes/s are printed too.
#
# Needs Tongsuo (Tongsuo-Project/Tongsuo built with enable-ntls): set TONGSUO_BIN=/path/to/bin/tongsuo.
# Ferry does not ship or build it.
#
# Knobs: BENCH_BULK_MB (128), BENCH_ROUNDS (2), BENCH_HANDSHAKES (150 per variant and round).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

TONGSUO=${TONGSUO_BIN:-$(command -v tongsuo 2>/dev/null || true)}
if [ -z "$TONGSUO" ] || [ ! -x "$TONGSUO" ]; then
  echo "tls: needs Tongsuo's command-line tool for GM clients: set TONGSUO_BIN=/path/to/bin/tongsuo (build Tongsuo-Project/Tongsuo with enable-ntls)" >&2
  exit 2
fi
BULK_MB=${BENCH_BULK_MB:-128}
ROUNDS=${BENCH_ROUNDS:-2}
HANDSHAKES=${BENCH_HANDSHAKES:-150}

bench_init tls
need_pkgs nginx curl
find_nginx
FERRY_NAME=ferry

certs=$BENCH_DIR/certs
(cd "$BENCH_ROOT" && deno run -A main.ts certs --gm --out "$certs" >/dev/null) || bench_die "ferry certs failed"

up_port=$(free_port)
admin_port=$(free_port)
p_native=$(free_port)
p_gm13=$(free_port)
p_tlcp=$(free_port)
bulk=$BENCH_DIR/bulk.bin
truncate -s "${BULK_MB}M" "$bulk"
chmod 644 "$bulk"
write_upstream_conf "$BENCH_DIR/upstream.conf" "$up_port" "$bulk"
start_nginx upstream "$BENCH_DIR/upstream.conf"

hcm() {
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

cat >"$BENCH_DIR/ferry.yaml" <<EOF
admin: { address: { socket_address: { address: 127.0.0.1, port_value: $admin_port } } }
static_resources:
  listeners:
  - name: native
    address: { socket_address: { address: 127.0.0.1, port_value: $p_native } }
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          common_tls_context:
            tls_certificates: [{ certificate_chain: { filename: $certs/server_ecdsa.crt }, private_key: { filename: $certs/server_ecdsa.key } }]
$(hcm native)
  - name: gm13
    address: { socket_address: { address: 127.0.0.1, port_value: $p_gm13 } }
    filter_chains:
    - transport_socket:
        name: ferry.transport_sockets.gm
        typed_config:
          "@type": type.googleapis.com/ferry.transport_sockets.gm.v1.GmTlsContext
          versions: [TLSv1.3]
          certificate: { certificate_chain: { filename: $certs/server.crt }, private_key: { filename: $certs/server.key } }
          cipher_suites: [TLS_SM4_GCM_SM3]
$(hcm gm13)
  - name: tlcp
    address: { socket_address: { address: 127.0.0.1, port_value: $p_tlcp } }
    filter_chains:
    - transport_socket:
        name: ferry.transport_sockets.gm
        typed_config:
          "@type": type.googleapis.com/ferry.transport_sockets.gm.v1.GmTlsContext
          versions: [TLCP]
          sign_certificate: { certificate_chain: { filename: $certs/server_sign.crt }, private_key: { filename: $certs/server_sign.key } }
          enc_certificate: { certificate_chain: { filename: $certs/server_enc.crt }, private_key: { filename: $certs/server_enc.key } }
          cipher_suites: [ECC_SM4_GCM_SM3, ECDHE_SM4_GCM_SM3]
$(hcm tlcp)
  clusters:
  - name: upstream
    connect_timeout: 1s
    load_assignment: { cluster_name: upstream, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: $up_port } } } }] }] }
EOF
start_ferry "$BENCH_DIR/ferry.yaml"
ferry_pid=$BG_PID
for _ in $(seq 1 300); do
  code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$admin_port/ready" 2>/dev/null) || true
  [ "$code" = 200 ] && break
  kill -0 "$ferry_pid" 2>/dev/null || break
  sleep 0.2
done
[ "${code:-}" = 200 ] || {
  show_logs ferry
  bench_die "ferry not ready"
}

# client_args VARIANT: Tongsuo s_client arguments for one variant (ECDHE TLCP needs client double certs).
client_args() {
  case $1 in
    native) echo "-connect 127.0.0.1:$p_native -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256 -groups P-256" ;;
    gm13) echo "-connect 127.0.0.1:$p_gm13 -tls1_3 -ciphersuites TLS_SM4_GCM_SM3 -groups curveSM2 -sigalgs sm2sig_sm3" ;;
    tlcp) echo "-connect 127.0.0.1:$p_tlcp -enable_ntls -ntls -cipher ECC-SM2-SM4-GCM-SM3" ;;
    tlcp_ecdhe) echo "-connect 127.0.0.1:$p_tlcp -enable_ntls -ntls -cipher ECDHE-SM2-SM4-GCM-SM3 -sign_cert $certs/client_sign.crt -sign_key $certs/client_sign.key -enc_cert $certs/client_enc.crt -enc_key $certs/client_enc.key" ;;
  esac
}

now() { date +%s.%N; }
declare -A BULK_MBS BULK_CPU HS_RATE HS_CPU

# bulk VARIANT: one download of the bulk file; sets mbs and cpu_per_mib (µs of Ferry CPU per MiB).
bulk_run() {
  local v=$1 t0 t1 c0 c1 bytes
  c0=$(cpu_ticks "$ferry_pid")
  t0=$(now)
  # shellcheck disable=SC2046
  bytes=$(printf 'GET /bulk HTTP/1.0\r\nHost: x\r\n\r\n' | timeout 300 "${PIN_CLIENT[@]}" "$TONGSUO" s_client $(client_args "$v") -quiet 2>/dev/null | wc -c)
  t1=$(now)
  c1=$(cpu_ticks "$ferry_pid")
  if [ "$bytes" -lt $((BULK_MB * 1024 * 1024)) ]; then
    bench_log "$v: download short ($bytes bytes)"
    mbs=0
    cpu_per_mib=0
    return
  fi
  mbs=$(awk -v b="$bytes" -v a="$t0" -v c="$t1" 'BEGIN { printf "%.1f", b / 1048576 / (c - a) }')
  cpu_per_mib=$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" -v m="$BULK_MB" 'BEGIN { printf "%.0f", t / hz * 1e6 / m }')
}

# hs_run VARIANT: HANDSHAKES sequential full handshakes; sets rate (per wall second) and cpu_per_hs (µs).
hs_run() {
  local v=$1 t0 t1 c0 c1 ok=0 i
  c0=$(cpu_ticks "$ferry_pid")
  t0=$(now)
  for ((i = 0; i < HANDSHAKES; i++)); do
    # shellcheck disable=SC2046
    if timeout 10 "${PIN_CLIENT[@]}" "$TONGSUO" s_client $(client_args "$v") </dev/null >/dev/null 2>&1; then ok=$((ok + 1)); fi
  done
  t1=$(now)
  c1=$(cpu_ticks "$ferry_pid")
  [ "$ok" -eq "$HANDSHAKES" ] || bench_log "$v: only $ok of $HANDSHAKES handshakes succeeded"
  rate=$(awk -v n="$ok" -v a="$t0" -v c="$t1" 'BEGIN { printf "%.0f", n / (c - a) }')
  cpu_per_hs=$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" -v n="$ok" 'BEGIN { if (n == 0) print 0; else printf "%.0f", t / hz * 1e6 / n }')
}

VARIANTS=(native gm13 tlcp tlcp_ecdhe)
echo "tls: $ROUNDS rounds; bulk $BULK_MB MiB per download; $HANDSHAKES handshakes per variant and round; client: $($TONGSUO version | head -n1)"
for ((r = 1; r <= ROUNDS; r++)); do
  echo
  echo "round $r/$ROUNDS"
  printf '%-11s %10s %14s %10s %14s\n' variant "bulk_MB/s" "cpu_us/MiB" "hs/s" "cpu_us/hs"
  for v in "${VARIANTS[@]}"; do
    bulk_run "$v"
    hs_run "$v"
    printf '%-11s %10s %14s %10s %14s\n' "$v" "$mbs" "$cpu_per_mib" "$rate" "$cpu_per_hs"
    BULK_MBS[$v]+="$mbs "
    BULK_CPU[$v]+="$cpu_per_mib "
    HS_RATE[$v]+="$rate "
    HS_CPU[$v]+="$cpu_per_hs "
  done
done

echo
echo "summary (median of $ROUNDS rounds; $(load_average))"
printf '%-11s %10s %14s %10s %14s\n' variant "bulk_MB/s" "cpu_us/MiB" "hs/s" "cpu_us/hs"
declare -A M_CPU M_HS
for v in "${VARIANTS[@]}"; do
  # shellcheck disable=SC2086
  m_mbs=$(median ${BULK_MBS[$v]})
  # shellcheck disable=SC2086
  M_CPU[$v]=$(median ${BULK_CPU[$v]})
  # shellcheck disable=SC2086
  m_rate=$(median ${HS_RATE[$v]})
  # shellcheck disable=SC2086
  M_HS[$v]=$(median ${HS_CPU[$v]})
  printf '%-11s %10s %14s %10s %14s\n' "$v" "$m_mbs" "${M_CPU[$v]}" "$m_rate" "${M_HS[$v]}"
done
# Capacity ratios: how much GM work one core of Ferry does per unit of native work.
echo "ratio gm13/native bulk capacity (cpu per MiB): $(ratio "${M_CPU[native]}" "${M_CPU[gm13]}")"
echo "ratio tlcp/native bulk capacity (cpu per MiB): $(ratio "${M_CPU[native]}" "${M_CPU[tlcp]}")"
echo "ratio gm13/native handshake capacity (cpu per handshake): $(ratio "${M_HS[native]}" "${M_HS[gm13]}")"
echo "ratio tlcp/native handshake capacity (cpu per handshake): $(ratio "${M_HS[native]}" "${M_HS[tlcp]}")"
echo "ratio tlcp-ecdhe/native handshake capacity (cpu per handshake): $(ratio "${M_HS[native]}" "${M_HS[tlcp_ecdhe]}")"
# Wall-clock figures for the record: with one client they measure the slower of Ferry and the client (Tongsuo's
# s_client decrypts SM4-GCM at ~100 MB/s, and even AES-GCM downloads leave Ferry's core half idle), so they are
# not the comparison the targets are about.
declare -A M_MBS
for v in "${VARIANTS[@]}"; do
  # shellcheck disable=SC2086
  M_MBS[$v]=$(median ${BULK_MBS[$v]})
done
echo "(wall-clock, client-bound) ratio gm13/native bulk MB/s: $(ratio "${M_MBS[gm13]}" "${M_MBS[native]}")"
echo "targets (capacity ratios): gm13 bulk >= 0.5, gm13 handshakes >= 0.3"
report_log ferry
