/**
 * Parsing of the resilience parts of Envoy v3 `Cluster`: `health_checks`, `outlier_detection`,
 * `ring_hash_lb_config`, `maglev_lb_config`, `slow_start_config` and circuit-breaker `retry_budget`.
 * Defaults are Envoy's. {@link parseCluster} calls these.
 *
 * @module
 */
import { ConfigError } from "../api/errors.ts";
import { describe, type ObjReader } from "../config/reader.ts";
import { type GrpcHealthCheckConfig, parseGrpcHealthCheck } from "./health_check.ts";

/** Envoy's `HealthCheck.Payload`: `text` (hex) or `binary` (base64), as bytes. */
export type Payload = Uint8Array;

/** `http_health_check`. */
export interface HttpHealthCheckConfig {
  readonly kind: "http";
  /** `host` (default: the cluster name, as Envoy). */
  readonly host: string | undefined;
  readonly path: string;
  /** `[start, end)` ranges; default `[[200, 201)]`. */
  readonly expectedStatuses: readonly (readonly [number, number])[];
  /** `request_headers_to_add` as (name, value, append) triples. */
  readonly requestHeadersToAdd: readonly { readonly name: string; readonly value: string; readonly append: boolean }[];
  readonly requestHeadersToRemove: readonly string[];
  /** `method` (default GET). */
  readonly method: string;
}

/** `tcp_health_check`. */
export interface TcpHealthCheckConfig {
  readonly kind: "tcp";
  /** Bytes written after connecting; undefined = connect-only check. */
  readonly send: Payload | undefined;
  /** Byte strings that must all be found, in order, in the response ("fuzzy" match, as Envoy). */
  readonly receive: readonly Payload[];
}

/** One entry of `health_checks`. Times are in ms. */
export interface HealthCheckConfig {
  readonly timeoutMs: number;
  readonly intervalMs: number;
  readonly initialJitterMs: number;
  readonly intervalJitterMs: number;
  /** `interval_jitter_percent` of the interval added as jitter. */
  readonly intervalJitterPercent: number;
  readonly unhealthyThreshold: number;
  readonly healthyThreshold: number;
  /** Interval while the cluster has seen no traffic (default 60 s). */
  readonly noTrafficIntervalMs: number;
  /** Interval for healthy hosts while the cluster has seen no traffic (default `no_traffic_interval`). */
  readonly noTrafficHealthyIntervalMs: number;
  /** Interval for hosts that are unhealthy (default `interval`). */
  readonly unhealthyIntervalMs: number;
  /** Interval right after a host turned unhealthy (default `unhealthy_interval`). */
  readonly unhealthyEdgeIntervalMs: number;
  /** Interval right after a host turned healthy (default `interval`). */
  readonly healthyEdgeIntervalMs: number;
  /** Keep the connection between checks (default true). */
  readonly reuseConnection: boolean;
  readonly alwaysLogHealthCheckFailures: boolean;
  readonly alwaysLogHealthCheckSuccess: boolean;
  readonly checker: HttpHealthCheckConfig | TcpHealthCheckConfig | GrpcHealthCheckConfig;
}

/** `outlier_detection`, times in ms, percentages 0–100. Defaults are Envoy's. */
export interface OutlierDetectionConfig {
  readonly consecutive5xx: number;
  readonly consecutiveGatewayFailure: number;
  readonly consecutiveLocalOriginFailure: number;
  readonly intervalMs: number;
  readonly baseEjectionTimeMs: number;
  readonly maxEjectionTimeMs: number;
  readonly maxEjectionTimeJitterMs: number;
  readonly maxEjectionPercent: number;
  readonly enforcingConsecutive5xx: number;
  readonly enforcingConsecutiveGatewayFailure: number;
  readonly enforcingConsecutiveLocalOriginFailure: number;
  readonly enforcingSuccessRate: number;
  readonly enforcingLocalOriginSuccessRate: number;
  readonly successRateMinimumHosts: number;
  readonly successRateRequestVolume: number;
  readonly successRateStdevFactor: number;
  readonly failurePercentageThreshold: number;
  readonly enforcingFailurePercentage: number;
  readonly enforcingFailurePercentageLocalOrigin: number;
  readonly failurePercentageMinimumHosts: number;
  readonly failurePercentageRequestVolume: number;
  readonly splitExternalLocalOriginErrors: boolean;
  readonly successfulActiveHealthCheckUnejectHost: boolean;
  readonly alwaysEjectOneHost: boolean;
}

/** `ring_hash_lb_config`. */
export interface RingHashConfig {
  readonly minimumRingSize: number;
  readonly maximumRingSize: number;
}

/** `maglev_lb_config`. */
export interface MaglevConfig {
  /** A prime (default 65537). */
  readonly tableSize: number;
}

/** `slow_start_config` of `round_robin_lb_config` / `least_request_lb_config`. */
export interface SlowStartConfig {
  readonly windowMs: number;
  /** `aggression` (default 1.0): weight factor is `(t / window) ^ (1 / aggression)`. */
  readonly aggression: number;
  /** `min_weight_percent` (default 10). */
  readonly minWeightPercent: number;
}

/** Circuit-breaker `retry_budget`. */
export interface RetryBudgetConfig {
  /** Percent of active requests that may be retries (default 20). */
  readonly budgetPercent: number;
  /** Retries always allowed regardless of the budget (default 3). */
  readonly minRetryConcurrency: number;
}

function payload(o: ObjReader): Payload {
  const which = o.oneOf(["text", "binary"] as const, { required: true });
  if (which === "text") {
    const hex = o.str("text", { required: true });
    if (!/^([0-9a-fA-F]{2})+$/.test(hex)) throw new ConfigError(o.at("text"), "must be hex digits (an even number)");
    const out = new Uint8Array(hex.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
    return out;
  }
  const b64 = o.str("binary", { required: true });
  try {
    return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  } catch {
    throw new ConfigError(o.at("binary"), "is not valid base64");
  }
}

const HEALTH_CHECKERS = ["http_health_check", "tcp_health_check", "grpc_health_check", "custom_health_check"] as const;

/** Parses one `health_checks` entry. */
export function parseHealthCheck(o: ObjReader): HealthCheckConfig {
  o.envoyMessage("envoy.config.core.v3.HealthCheck");
  const timeoutMs = o.durationMs("timeout", { required: true })!;
  const intervalMs = o.durationMs("interval", { required: true })!;
  if (timeoutMs <= 0) throw new ConfigError(o.at("timeout"), "must be greater than 0");
  if (intervalMs <= 0) throw new ConfigError(o.at("interval"), "must be greater than 0");
  const initialJitterMs = o.durationMs("initial_jitter") ?? 0;
  const intervalJitterMs = o.durationMs("interval_jitter") ?? 0;
  const intervalJitterPercent = o.int("interval_jitter_percent", { min: 0 }) ?? 0;
  const unhealthyThreshold = o.int("unhealthy_threshold", { required: true, min: 0 })!;
  const healthyThreshold = o.int("healthy_threshold", { required: true, min: 0 })!;
  const noTrafficIntervalMs = o.durationMs("no_traffic_interval") ?? 60_000;
  const noTrafficHealthyIntervalMs = o.durationMs("no_traffic_healthy_interval") ?? noTrafficIntervalMs;
  const unhealthyIntervalMs = o.durationMs("unhealthy_interval") ?? intervalMs;
  const unhealthyEdgeIntervalMs = o.durationMs("unhealthy_edge_interval") ?? unhealthyIntervalMs;
  const healthyEdgeIntervalMs = o.durationMs("healthy_edge_interval") ?? intervalMs;
  const reuseConnection = o.bool("reuse_connection") ?? true;
  const alwaysLogHealthCheckFailures = o.bool("always_log_health_check_failures") ?? false;
  const alwaysLogHealthCheckSuccess = o.bool("always_log_health_check_success") ?? false;
  const which = o.oneOf(HEALTH_CHECKERS, { required: true })!;
  let checker: HttpHealthCheckConfig | TcpHealthCheckConfig | GrpcHealthCheckConfig;
  if (which === "http_health_check") {
    const h = o.obj(which)!.envoyMessage("envoy.config.core.v3.HealthCheck.HttpHealthCheck");
    const host = h.str("host");
    const path = h.str("path", { required: true });
    if (!path.startsWith("/")) throw new ConfigError(h.at("path"), `${describe(path)} must start with "/"`);
    const expectedStatuses = h.objs("expected_statuses", (r) => {
      const start = r.int("start", { required: true, min: 100, max: 599 })!;
      const end = r.int("end", { required: true, min: 101, max: 600 })!;
      if (end <= start) throw new ConfigError(r.at("end"), `must be greater than start (${start})`);
      return [start, end] as const;
    });
    const requestHeadersToAdd = h.objs("request_headers_to_add", (hv) => {
      const header = hv.obj("header", { required: true })!;
      const name = header.str("key", { required: true }).toLowerCase();
      const value = header.str("value") ?? "";
      header.unsupported("raw_value");
      header.done();
      if (/[\r\n\0]/.test(value)) throw new ConfigError(header.at("value"), "must not contain CR, LF or NUL");
      let append = hv.bool("append") ?? true;
      const action = hv.enumOf(
        "append_action",
        [
          "APPEND_IF_EXISTS_OR_ADD",
          "ADD_IF_ABSENT",
          "OVERWRITE_IF_EXISTS_OR_ADD",
          "OVERWRITE_IF_EXISTS",
        ] as const,
      );
      if (action !== undefined) append = action === "APPEND_IF_EXISTS_OR_ADD";
      hv.bool("keep_empty_value");
      return { name, value, append };
    });
    const requestHeadersToRemove = h.strs("request_headers_to_remove").map((s) => s.toLowerCase());
    const codec = h.enumOf("codec_client_type", ["HTTP1"] as const, { known: ["HTTP2", "HTTP3"] });
    void codec;
    const method = h.enumOf("method", ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH"] as const, {
      known: ["METHOD_UNSPECIFIED", "CONNECT"],
    }) ?? "GET";
    h.done();
    checker = {
      kind: "http",
      host,
      path,
      expectedStatuses: expectedStatuses.length > 0 ? expectedStatuses : [[200, 201]],
      requestHeadersToAdd,
      requestHeadersToRemove,
      method,
    };
  } else if (which === "tcp_health_check") {
    const t = o.obj(which)!.envoyMessage("envoy.config.core.v3.HealthCheck.TcpHealthCheck");
    const s = t.obj("send");
    const send = s ? payload(s) : undefined;
    s?.done();
    const receive = t.objs("receive", (r) => payload(r));
    t.done();
    checker = { kind: "tcp", send, receive };
  } else if (which === "grpc_health_check") {
    checker = parseGrpcHealthCheck(o.obj(which)!);
  } else {
    o.unsupported(which, "is not supported yet");
    throw new ConfigError(o.at(which), "is not supported yet");
  }
  return {
    timeoutMs,
    intervalMs,
    initialJitterMs,
    intervalJitterMs,
    intervalJitterPercent,
    unhealthyThreshold: Math.max(1, unhealthyThreshold),
    healthyThreshold: Math.max(1, healthyThreshold),
    noTrafficIntervalMs,
    noTrafficHealthyIntervalMs,
    unhealthyIntervalMs,
    unhealthyEdgeIntervalMs,
    healthyEdgeIntervalMs,
    reuseConnection,
    alwaysLogHealthCheckFailures,
    alwaysLogHealthCheckSuccess,
    checker,
  };
}

/** Parses `outlier_detection`. */
export function parseOutlierDetection(o: ObjReader): OutlierDetectionConfig {
  o.envoyMessage("envoy.config.cluster.v3.OutlierDetection");
  const pct = (k: string, def: number) => o.int(k, { min: 0, max: 100 }) ?? def;
  const baseEjectionTimeMs = o.durationMs("base_ejection_time") ?? 30_000;
  const intervalMs = o.durationMs("interval") ?? 10_000;
  if (intervalMs <= 0) throw new ConfigError(o.at("interval"), "must be greater than 0");
  const cfg: OutlierDetectionConfig = {
    consecutive5xx: o.int("consecutive_5xx", { min: 0 }) ?? 5,
    consecutiveGatewayFailure: o.int("consecutive_gateway_failure", { min: 0 }) ?? 5,
    consecutiveLocalOriginFailure: o.int("consecutive_local_origin_failure", { min: 0 }) ?? 5,
    intervalMs,
    baseEjectionTimeMs,
    maxEjectionTimeMs: o.durationMs("max_ejection_time") ?? Math.max(300_000, baseEjectionTimeMs),
    maxEjectionTimeJitterMs: o.durationMs("max_ejection_time_jitter") ?? 0,
    maxEjectionPercent: pct("max_ejection_percent", 10),
    enforcingConsecutive5xx: pct("enforcing_consecutive_5xx", 100),
    enforcingConsecutiveGatewayFailure: pct("enforcing_consecutive_gateway_failure", 0),
    enforcingConsecutiveLocalOriginFailure: pct("enforcing_consecutive_local_origin_failure", 100),
    enforcingSuccessRate: pct("enforcing_success_rate", 100),
    enforcingLocalOriginSuccessRate: pct("enforcing_local_origin_success_rate", 100),
    successRateMinimumHosts: o.int("success_rate_minimum_hosts", { min: 0 }) ?? 5,
    successRateRequestVolume: o.int("success_rate_request_volume", { min: 0 }) ?? 100,
    successRateStdevFactor: o.int("success_rate_stdev_factor", { min: 0 }) ?? 1900,
    failurePercentageThreshold: pct("failure_percentage_threshold", 85),
    enforcingFailurePercentage: pct("enforcing_failure_percentage", 0),
    enforcingFailurePercentageLocalOrigin: pct("enforcing_failure_percentage_local_origin", 0),
    failurePercentageMinimumHosts: o.int("failure_percentage_minimum_hosts", { min: 0 }) ?? 5,
    failurePercentageRequestVolume: o.int("failure_percentage_request_volume", { min: 0 }) ?? 50,
    splitExternalLocalOriginErrors: o.bool("split_external_local_origin_errors") ?? false,
    successfulActiveHealthCheckUnejectHost: o.bool("successful_active_health_check_uneject_host") ?? true,
    alwaysEjectOneHost: o.bool("always_eject_one_host") ?? false,
  };
  if (cfg.maxEjectionTimeMs < baseEjectionTimeMs) {
    throw new ConfigError(o.at("max_ejection_time"), "must not be less than base_ejection_time");
  }
  o.done();
  return cfg;
}

/** Parses `ring_hash_lb_config`. */
export function parseRingHash(o: ObjReader): RingHashConfig {
  const minimumRingSize = o.int("minimum_ring_size", { min: 1, max: 8_388_608 }) ?? 1024;
  const maximumRingSize = o.int("maximum_ring_size", { min: 1, max: 8_388_608 }) ?? 8_388_608;
  if (maximumRingSize < minimumRingSize) {
    throw new ConfigError(o.at("maximum_ring_size"), `must not be less than minimum_ring_size (${minimumRingSize})`);
  }
  o.enumOf("hash_function", ["XX_HASH"] as const, { known: ["MURMUR_HASH_2", "DEFAULT_HASH"] });
  o.unsupported("consistent_hashing_lb_config");
  o.unsupported("locality_weighted_lb_config");
  o.done();
  return { minimumRingSize, maximumRingSize };
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let i = 2; i * i <= n; i++) if (n % i === 0) return false;
  return true;
}

/** Parses `maglev_lb_config`. */
export function parseMaglev(o: ObjReader): MaglevConfig {
  const tableSize = o.int("table_size", { min: 2, max: 5_000_011 }) ?? 65537;
  if (!isPrime(tableSize)) throw new ConfigError(o.at("table_size"), `${tableSize} is not a prime number`);
  o.unsupported("consistent_hashing_lb_config");
  o.unsupported("locality_weighted_lb_config");
  o.done();
  return { tableSize };
}

/** Parses `slow_start_config`. */
export function parseSlowStart(o: ObjReader): SlowStartConfig {
  const windowMs = o.durationMs("slow_start_window", { required: true })!;
  let aggression = 1;
  const ag = o.obj("aggression");
  if (ag) {
    aggression = ag.num("default_value", { required: true })!;
    if (!(aggression > 0)) throw new ConfigError(ag.at("default_value"), "must be greater than 0");
    ag.str("runtime_key");
    ag.done();
  }
  const mw = o.obj("min_weight_percent");
  let minWeightPercent = 10;
  if (mw) {
    minWeightPercent = mw.num("value", { min: 0, max: 100 }) ?? 0;
    mw.done();
  }
  o.done();
  return { windowMs, aggression, minWeightPercent };
}

/** Parses a circuit-breaker `retry_budget`. */
export function parseRetryBudget(o: ObjReader): RetryBudgetConfig {
  let budgetPercent = 20;
  const bp = o.obj("budget_percent");
  if (bp) {
    budgetPercent = bp.num("value", { min: 0, max: 100 }) ?? 0;
    bp.done();
  }
  const minRetryConcurrency = o.int("min_retry_concurrency", { min: 0 }) ?? 3;
  o.done();
  return { budgetPercent, minRetryConcurrency };
}
