/**
 * Creation of {@link ClusterStats} under a cluster's scope, with exactly the names of the interface (Envoy's).
 *
 * @module
 */
import type { StatsScope } from "../api/stats.ts";
import type { ClusterStats } from "../api/upstream.ts";

type GaugeName =
  | "upstream_cx_active"
  | "upstream_rq_active"
  | "upstream_rq_pending_active"
  | "membership_total"
  | "membership_healthy";
type CounterName = Exclude<keyof ClusterStats, GaugeName>;

const GAUGES: readonly GaugeName[] = [
  "upstream_cx_active",
  "upstream_rq_active",
  "upstream_rq_pending_active",
  "membership_total",
  "membership_healthy",
];

/** A record, not a list, so that the compiler insists on every counter of the interface. */
const COUNTER_SET: Record<CounterName, true> = {
  upstream_cx_total: true,
  upstream_cx_http1_total: true,
  upstream_cx_http2_total: true,
  upstream_cx_connect_fail: true,
  upstream_cx_connect_timeout: true,
  upstream_cx_destroy: true,
  upstream_cx_destroy_local: true,
  upstream_cx_destroy_remote: true,
  upstream_cx_close_notify: true,
  upstream_cx_idle_timeout: true,
  upstream_cx_max_requests: true,
  upstream_cx_none_healthy: true,
  upstream_cx_overflow: true,
  upstream_cx_rx_bytes_total: true,
  upstream_cx_tx_bytes_total: true,
  upstream_rq_total: true,
  upstream_rq_completed: true,
  upstream_rq_pending_total: true,
  upstream_rq_pending_overflow: true,
  upstream_rq_pending_failure_eject: true,
  upstream_rq_timeout: true,
  upstream_rq_per_try_timeout: true,
  upstream_rq_retry: true,
  upstream_rq_retry_success: true,
  upstream_rq_retry_overflow: true,
  upstream_rq_rx_reset: true,
  upstream_rq_tx_reset: true,
  upstream_rq_1xx: true,
  upstream_rq_2xx: true,
  upstream_rq_3xx: true,
  upstream_rq_4xx: true,
  upstream_rq_5xx: true,
  membership_change: true,
};
const COUNTERS = Object.keys(COUNTER_SET) as CounterName[];

/** Creates every {@link ClusterStats} stat in `scope` (which is `cluster.<name>`). */
export function createClusterStats(scope: StatsScope): ClusterStats {
  const out: Partial<Record<keyof ClusterStats, unknown>> = {};
  if (scope.group) {
    // One block per cluster, not one map entry per stat (10,000 CDS clusters; see StatsScope.group).
    const g = scope.group(COUNTERS, GAUGES);
    COUNTERS.forEach((n, i) => out[n] = g.counters[i]);
    GAUGES.forEach((n, i) => out[n] = g.gauges[i]);
    return out as ClusterStats;
  }
  for (const g of GAUGES) out[g] = scope.gauge(g);
  for (const c of COUNTERS) out[c] = scope.counter(c);
  return out as ClusterStats;
}

/** The names of all cluster stats (for tests and docs). */
export const CLUSTER_STAT_NAMES: readonly string[] = [...COUNTERS, ...GAUGES];
