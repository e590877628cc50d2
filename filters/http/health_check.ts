/**
 * `envoy.filters.http.health_check`: answers health check requests (those matching `headers`) from the server's
 * state, as Envoy's. With `pass_through_mode: false` it answers itself: `503` after the admin's
 * `POST /healthcheck/fail` (until `/healthcheck/ok`) or when a cluster of `cluster_min_healthy_percentages` is
 * missing or has fewer healthy hosts than its percentage, else `200`. With `pass_through_mode: true` the request
 * goes upstream, except while health checks are failed (then `503`). Responses to health check requests carry
 * `x-envoy-immediate-health-check-fail: true` while failed. `cache_time` is not supported.
 *
 * @module
 */
import { ConfigError } from "../../lib/api/errors.ts";
import type { HeaderMap } from "../../lib/api/headers.ts";
import type { HeaderMatcher } from "../../lib/api/route.ts";
import type { ClusterManager } from "../../lib/api/upstream.ts";
import type {
  FilterFactoryContext,
  FilterResult,
  HttpFilterFactory,
  StreamFilter,
  StreamFilterCallbacks,
} from "../../lib/api/stream_filter.ts";
import { ObjReader } from "../../lib/config/reader.ts";
import { matchHeaders, parseHeaderMatcher } from "../../lib/router/mod.ts";
import { serverRuntime } from "../../lib/runtime/mod.ts";

/** The health check filter's `@type`. */
export const HEALTH_CHECK_TYPE = "type.googleapis.com/envoy.extensions.filters.http.health_check.v3.HealthCheck";

/** Parsed `HealthCheck`. */
export interface HealthCheckConfig {
  readonly passThrough: boolean;
  /** A request is a health check if every matcher matches (an empty list matches every request). */
  readonly headers: readonly HeaderMatcher[];
  /** Cluster name → minimum healthy percentage (0–100). */
  readonly clusterMinHealthy: ReadonlyMap<string, number>;
}

function parseHealthCheckConfig(raw: Record<string, unknown>, path: string): HealthCheckConfig {
  const o = new ObjReader(raw, path);
  o.skip("@type");
  const pt = o.value("pass_through_mode", { required: true });
  let passThrough: boolean;
  if (typeof pt === "boolean") passThrough = pt;
  else if (pt !== null && typeof pt === "object") {
    const w = new ObjReader(pt, o.at("pass_through_mode"));
    passThrough = w.bool("value") ?? false;
    w.done();
  } else throw new ConfigError(o.at("pass_through_mode"), "expected a boolean");
  o.unsupported("cache_time", "is not supported");
  const headers = o.arr("headers", (h, p) => parseHeaderMatcher(h, p));
  const clusterMinHealthy = new Map<string, number>();
  const m = o.obj("cluster_min_healthy_percentages");
  if (m) {
    for (const k of m.keys()) {
      const pc = m.obj(k, { required: true })!;
      const v = pc.num("value", { min: 0, max: 100 }) ?? 0;
      pc.done();
      clusterMinHealthy.set(k, v);
    }
    m.done();
  }
  o.done();
  return { passThrough, headers, clusterMinHealthy };
}

/** The status a health check gets now, and its `%RESPONSE_CODE_DETAILS%`. */
function verdict(cfg: HealthCheckConfig, cm: ClusterManager): { status: number; details: string } {
  if (serverRuntime.healthCheckFailed) return { status: 503, details: "health_check_failed" };
  for (const [name, min] of cfg.clusterMinHealthy) {
    const c = cm.get(name);
    if (!c) return { status: 503, details: "health_check_failed_cluster_not_found" };
    const total = c.hosts.length;
    if (total === 0) {
      if (min === 0) continue;
      return { status: 503, details: "health_check_failed_cluster_empty" };
    }
    let healthy = 0;
    for (const h of c.hosts) if (h.healthy) healthy++;
    if (100 * healthy < total * min) return { status: 503, details: "health_check_failed_cluster_unhealthy" };
  }
  return { status: 200, details: "health_check_ok" };
}

/** The per-stream health check filter. */
export class HealthCheckFilter implements StreamFilter {
  readonly #cfg: HealthCheckConfig;
  readonly #cb: StreamFilterCallbacks;
  readonly #cm: ClusterManager;
  #isHealthCheck = false;
  #handling = false;

  constructor(cfg: HealthCheckConfig, cb: StreamFilterCallbacks, cm: ClusterManager) {
    this.#cfg = cfg;
    this.#cb = cb;
    this.#cm = cm;
  }

  decodeHeaders(headers: HeaderMap, endStream: boolean): FilterResult {
    if (!matchHeaders(this.#cfg.headers, headers)) return "continue";
    this.#isHealthCheck = true;
    this.#handling = !this.#cfg.passThrough || serverRuntime.healthCheckFailed;
    if (!this.#handling) return "continue";
    if (endStream) this.#complete();
    return "stop";
  }

  decodeData(_data: Uint8Array, endStream: boolean): FilterResult {
    if (!this.#handling) return "continue";
    if (endStream) this.#complete();
    return "stop-no-buffer";
  }

  decodeTrailers(_trailers: HeaderMap): FilterResult {
    if (!this.#handling) return "continue";
    this.#complete();
    return "stop-no-buffer";
  }

  #complete(): void {
    const v = verdict(this.#cfg, this.#cm);
    this.#cb.sendLocalReply(v.status, "", { details: v.details });
  }

  encodeHeaders(headers: HeaderMap, _endStream: boolean): FilterResult {
    if (this.#isHealthCheck && serverRuntime.healthCheckFailed) {
      headers.set("x-envoy-immediate-health-check-fail", "true");
    }
    return "continue";
  }
}

/** The config-time step: nothing to share beyond the config and the cluster manager. */
export function createHealthCheckFactory(
  config: HealthCheckConfig,
  context: FilterFactoryContext,
): (callbacks: StreamFilterCallbacks) => StreamFilter {
  const cm = context.clusterManager;
  return (callbacks) => new HealthCheckFilter(config, callbacks, cm);
}

/** The health check filter factory. */
export const healthCheckFilterFactory: HttpFilterFactory<HealthCheckConfig> = {
  name: "envoy.filters.http.health_check",
  configTypes: [HEALTH_CHECK_TYPE],
  parseConfig: parseHealthCheckConfig,
  createFactory: createHealthCheckFactory,
  create(config, callbacks, context) {
    return createHealthCheckFactory(config, context)(callbacks);
  },
};
