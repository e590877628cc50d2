/**
 * What the admin API shows about clusters and listeners, and Envoy's `/clusters` and `/listeners` output (text
 * and `?format=json`). The shapes are structural: the cluster manager's own description type fits them.
 *
 * @module
 */

/** Circuit breaker limits of one priority. */
export interface AdminThresholds {
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
  readonly maxRetries: number;
}

/** One upstream host in a {@link ClusterDescription}. */
export interface HostDescription {
  /** IP address or resolved name, without brackets. */
  readonly address: string;
  readonly port: number;
  readonly hostname?: string;
  readonly weight: number;
  /**
   * Envoy's `health_flags` string: `"healthy"`, or flags each prefixed with `/`: `/failed_active_hc`,
   * `/failed_outlier_check`, `/failed_eds_health`, `/degraded_eds_health`, `/degraded_active_hc`,
   * `/pending_dynamic_removal`, `/pending_active_hc`, `/excluded_via_immediate_hc_fail`, `/active_hc_timeout`,
   * `/eds_status_draining`.
   */
  readonly healthFlags: string;
  readonly locality?: { readonly region: string; readonly zone: string; readonly subZone: string };
  readonly priority?: number;
  readonly cxActive?: number;
  readonly cxConnectFail?: number;
  readonly cxTotal?: number;
  readonly rqActive?: number;
  readonly rqError?: number;
  readonly rqSuccess?: number;
  readonly rqTimeout?: number;
  readonly rqTotal?: number;
}

/** One cluster as `/clusters` shows it. */
export interface ClusterDescription {
  readonly name: string;
  readonly addedViaApi: boolean;
  /** Defaults to the name. */
  readonly observabilityName?: string;
  readonly circuitBreakers?: { readonly DEFAULT: AdminThresholds; readonly HIGH: AdminThresholds };
  readonly hosts: readonly HostDescription[];
}

/** One listener as `/listeners` shows it; `address` is `host:port` (`[v6]:port`) or a pipe path. */
export interface ListenerDescription {
  readonly name: string;
  readonly address: string;
}

const HOST_COUNTERS = ["cx_connect_fail", "cx_total", "rq_error", "rq_success", "rq_timeout", "rq_total"] as const;
const HOST_GAUGES = ["cx_active", "rq_active"] as const;

function hostStat(h: HostDescription, name: string): number {
  switch (name) {
    case "cx_active":
      return h.cxActive ?? 0;
    case "cx_connect_fail":
      return h.cxConnectFail ?? 0;
    case "cx_total":
      return h.cxTotal ?? 0;
    case "rq_active":
      return h.rqActive ?? 0;
    case "rq_error":
      return h.rqError ?? 0;
    case "rq_success":
      return h.rqSuccess ?? 0;
    case "rq_timeout":
      return h.rqTimeout ?? 0;
    case "rq_total":
      return h.rqTotal ?? 0;
  }
  return 0;
}

function hostKey(h: HostDescription): string {
  return `${h.address.includes(":") ? `[${h.address}]` : h.address}:${h.port}`;
}

/**
 * Envoy's `/clusters` text: `name::default_priority::max_connections::1024`, `name::added_via_api::false`,
 * `name::10.0.0.1:80::cx_active::0`, ..., `name::10.0.0.1:80::health_flags::healthy`.
 */
export function formatClustersText(clusters: readonly ClusterDescription[]): string {
  const out: string[] = [];
  for (const c of clusters) {
    const n = c.name;
    out.push(`${n}::observability_name::${c.observabilityName ?? n}`);
    if (c.circuitBreakers !== undefined) {
      for (const [prio, label] of [["DEFAULT", "default_priority"], ["HIGH", "high_priority"]] as const) {
        const t = c.circuitBreakers[prio];
        out.push(`${n}::${label}::max_connections::${t.maxConnections}`);
        out.push(`${n}::${label}::max_pending_requests::${t.maxPendingRequests}`);
        out.push(`${n}::${label}::max_requests::${t.maxRequests}`);
        out.push(`${n}::${label}::max_retries::${t.maxRetries}`);
      }
    }
    out.push(`${n}::added_via_api::${c.addedViaApi}`);
    for (const h of c.hosts) {
      const k = `${n}::${hostKey(h)}`;
      for (const s of ["cx_active", "cx_connect_fail", "cx_total", "rq_active", "rq_error", "rq_success"]) {
        out.push(`${k}::${s}::${hostStat(h, s)}`);
      }
      out.push(`${k}::rq_timeout::${hostStat(h, "rq_timeout")}`);
      out.push(`${k}::rq_total::${hostStat(h, "rq_total")}`);
      out.push(`${k}::hostname::${h.hostname ?? ""}`);
      out.push(`${k}::health_flags::${h.healthFlags}`);
      out.push(`${k}::weight::${h.weight}`);
      out.push(`${k}::region::${h.locality?.region ?? ""}`);
      out.push(`${k}::zone::${h.locality?.zone ?? ""}`);
      out.push(`${k}::sub_zone::${h.locality?.subZone ?? ""}`);
      out.push(`${k}::canary::false`);
      out.push(`${k}::priority::${h.priority ?? 0}`);
      out.push(`${k}::success_rate::-1`);
      out.push(`${k}::local_origin_success_rate::-1`);
    }
  }
  return out.length > 0 ? `${out.join("\n")}\n` : "";
}

function healthStatus(flags: string): Record<string, unknown> {
  const set = new Set(flags.split("/").filter((f) => f !== "" && f !== "healthy"));
  const s: Record<string, unknown> = {
    eds_health_status: set.has("failed_eds_health")
      ? "UNHEALTHY"
      : set.has("eds_status_draining")
      ? "DRAINING"
      : set.has("degraded_eds_health")
      ? "DEGRADED"
      : "HEALTHY",
  };
  if (set.has("failed_active_hc")) s.failed_active_health_check = true;
  if (set.has("failed_outlier_check")) s.failed_outlier_check = true;
  if (set.has("degraded_active_hc")) s.failed_active_degraded_check = true;
  if (set.has("pending_dynamic_removal")) s.pending_dynamic_removal = true;
  if (set.has("pending_active_hc")) s.pending_active_hc = true;
  if (set.has("excluded_via_immediate_hc_fail")) s.excluded_via_immediate_hc_fail = true;
  if (set.has("active_hc_timeout")) s.active_hc_timeout = true;
  return s;
}

/** Envoy's `/clusters?format=json` (`envoy.admin.v3.Clusters`); uint64 values are strings, as in proto3 JSON. */
export function formatClustersJson(clusters: readonly ClusterDescription[]): unknown {
  return {
    cluster_statuses: clusters.map((c) => {
      const status: Record<string, unknown> = {
        name: c.name,
        added_via_api: c.addedViaApi,
        observability_name: c.observabilityName ?? c.name,
      };
      if (c.circuitBreakers !== undefined) {
        status.circuit_breakers = {
          thresholds: (["DEFAULT", "HIGH"] as const).map((p) => {
            const t = c.circuitBreakers![p];
            return {
              priority: p,
              max_connections: t.maxConnections,
              max_pending_requests: t.maxPendingRequests,
              max_requests: t.maxRequests,
              max_retries: t.maxRetries,
            };
          }),
        };
      }
      status.host_statuses = c.hosts.map((h) => {
        const locality: Record<string, string> = {};
        if (h.locality?.region) locality.region = h.locality.region;
        if (h.locality?.zone) locality.zone = h.locality.zone;
        if (h.locality?.subZone) locality.sub_zone = h.locality.subZone;
        return {
          address: { socket_address: { address: h.address, port_value: h.port } },
          stats: [
            ...HOST_COUNTERS.map((s) => ({ name: s, value: String(hostStat(h, s)) })),
            ...HOST_GAUGES.map((s) => ({ name: s, type: "GAUGE", value: String(hostStat(h, s)) })),
          ],
          health_status: healthStatus(h.healthFlags),
          weight: h.weight,
          hostname: h.hostname ?? "",
          priority: h.priority ?? 0,
          locality,
        };
      });
      return status;
    }),
  };
}

function splitAddress(a: string): { address: string; port: number } | undefined {
  const m = /^\[([^\]]*)\]:(\d+)$/.exec(a) ?? /^([^:]*):(\d+)$/.exec(a);
  return m === null ? undefined : { address: m[1]!, port: Number(m[2]) };
}

/** Envoy's `/listeners` text: `name::address` lines. */
export function formatListenersText(listeners: readonly ListenerDescription[]): string {
  return listeners.map((l) => `${l.name}::${l.address}\n`).join("");
}

/** Envoy's `/listeners?format=json` (`envoy.admin.v3.Listeners`). */
export function formatListenersJson(listeners: readonly ListenerDescription[]): unknown {
  return {
    listener_statuses: listeners.map((l) => {
      const sa = splitAddress(l.address);
      return {
        name: l.name,
        local_address: sa === undefined
          ? { pipe: { path: l.address } }
          : { socket_address: { address: sa.address, port_value: sa.port } },
      };
    }),
  };
}
