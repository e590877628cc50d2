/**
 * Parsing of Envoy v3 `Cluster` resources into {@link ClusterConfig}.
 *
 * Every field goes through {@link ObjReader}, so a field that Ferry does not know is an error naming its path,
 * and a field that Envoy has but Ferry does not implement says so (`is not supported` / `is not supported yet`).
 *
 * @example
 * ```ts
 * const clusters = parseClusters(bootstrap.static_resources.clusters, "static_resources.clusters");
 * ```
 *
 * @module
 */
import { type ClientTransportSocket, parseClientTransportSocket } from "../tls/transport_socket.ts";
import { ConfigError } from "../api/errors.ts";
import type { Http2Options } from "../api/codec.ts";
import { parseHttp2ProtocolOptions } from "../config/protocol_options.ts";
import { asList, describe, ObjReader } from "../config/reader.ts";
import {
  type HealthCheckConfig,
  type MaglevConfig,
  type OutlierDetectionConfig,
  parseHealthCheck,
  parseMaglev,
  parseOutlierDetection,
  parseRetryBudget,
  parseRingHash,
  parseSlowStart,
  type RetryBudgetConfig,
  type RingHashConfig,
  type SlowStartConfig,
} from "./resilience_config.ts";

/** Cluster discovery types that Ferry implements. */
export type ClusterType = "STATIC" | "STRICT_DNS" | "LOGICAL_DNS" | "EDS";
/** Load-balancing policies that Ferry implements. */
export type LbPolicy = "ROUND_ROBIN" | "LEAST_REQUEST" | "RANDOM" | "RING_HASH" | "MAGLEV";
/** Envoy's `dns_lookup_family`. */
export type DnsLookupFamily = "AUTO" | "V4_ONLY" | "V6_ONLY" | "V4_PREFERRED" | "ALL";
/** Envoy's `HealthStatus` of an endpoint as written in EDS / `load_assignment`. */
export type EndpointHealthStatus = "UNKNOWN" | "HEALTHY" | "UNHEALTHY" | "DRAINING" | "TIMEOUT" | "DEGRADED";
/** Circuit-breaker priorities. */
export type RoutingPriority = "DEFAULT" | "HIGH";
/**
 * The upstream HTTP protocol: fixed, `downstream` (the downstream request's own, `use_downstream_protocol_config`),
 * or `auto` (`auto_config`: what the host picks by TLS ALPN from `h2` and `http/1.1`, per connection).
 */
export type UpstreamHttpProtocol = "http1" | "http2" | "downstream" | "auto";

/** One `lb_endpoints` entry. */
export interface EndpointConfig {
  /** IP literal (STATIC) or name to resolve (DNS clusters). */
  readonly address: string;
  readonly port: number;
  /** `endpoint.hostname` (used by `auto_host_rewrite`). */
  readonly hostname?: string;
  /** `load_balancing_weight`, default 1. */
  readonly weight: number;
  readonly healthStatus: EndpointHealthStatus;
  /** `metadata` (proto3 JSON, `filter_metadata` by namespace), kept on the host. */
  readonly metadata?: Readonly<Record<string, unknown>>;
  /** Config path, for messages about this endpoint. */
  readonly path: string;
}

/** Envoy's `Locality`. */
export interface LocalityConfig {
  readonly region: string;
  readonly zone: string;
  readonly subZone: string;
}

/** One `load_assignment.endpoints` entry (a locality and priority). */
export interface LocalityEndpointsConfig {
  readonly locality?: LocalityConfig;
  readonly endpoints: readonly EndpointConfig[];
  /** Locality weight, when set (used by locality-weighted balancing, `locality_weighted_lb_config`). */
  readonly weight?: number;
  /** Priority (0, the default, is the highest; at most 128 as Envoy). */
  readonly priority: number;
}

/**
 * `eds_cluster_config` of an EDS cluster: the resource name to subscribe to and where to get it. The config source
 * is kept raw (its proto3 JSON object) for the xDS client to interpret.
 */
export interface EdsClusterConfig {
  /** `service_name`, or the cluster's name when not set. */
  readonly serviceName: string;
  /** `eds_config` (an Envoy `ConfigSource`), as written. */
  readonly configSource: Readonly<Record<string, unknown>>;
}

/** Circuit-breaker thresholds of one priority (Envoy defaults 1024 / 1024 / 1024 / 3). */
export interface ThresholdsConfig {
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
  readonly maxRetries: number;
  /** `retry_budget`: when set, it replaces `max_retries` (as Envoy). */
  readonly retryBudget?: RetryBudgetConfig;
  /** `track_remaining`: publish `circuit_breakers.<priority>.remaining_*` gauges. */
  readonly trackRemaining?: boolean;
}

/** `least_request_lb_config`. */
export interface LeastRequestConfig {
  /** Hosts sampled per pick when weights are equal (default 2). */
  readonly choiceCount: number;
  /** Exponent of `weight / (active + 1) ^ bias` when weights differ (default 1.0). */
  readonly activeRequestBias: number;
}

/** A validated cluster. */
export interface ClusterConfig {
  readonly name: string;
  readonly type: ClusterType;
  readonly connectTimeoutMs: number;
  readonly lbPolicy: LbPolicy;
  readonly leastRequest: LeastRequestConfig;
  /** `common_lb_config.healthy_panic_threshold` in percent (default 50, as Envoy). */
  readonly healthyPanicThreshold: number;
  /** `load_assignment.policy.overprovisioning_factor` in percent (default 140). */
  readonly overprovisioningFactor: number;
  /** `load_assignment.policy.weighted_priority_health` (default false). */
  readonly weightedPriorityHealth: boolean;
  /** `common_lb_config.locality_weighted_lb_config` is set: pick a locality by weight and health first. */
  readonly localityWeightedLb: boolean;
  /** For `type: EDS`: `eds_cluster_config` (see {@link edsServiceName}). */
  readonly eds?: EdsClusterConfig;
  /** `load_assignment.cluster_name` if set, else `name`. */
  readonly loadAssignmentName: string;
  readonly localities: readonly LocalityEndpointsConfig[];
  readonly dnsLookupFamily: DnsLookupFamily;
  readonly dnsRefreshRateMs: number;
  readonly respectDnsTtl: boolean;
  readonly perConnectionBufferLimitBytes: number;
  /** 0 = unlimited. */
  readonly maxRequestsPerConnection: number;
  /** Pooled connection idle timeout; 0 disables. */
  readonly idleTimeoutMs: number;
  readonly maxHeadersCount?: number;
  readonly httpProtocol: UpstreamHttpProtocol;
  /** `http2_protocol_options` for HTTP/2 upstream connections (absent fields: the codec's defaults). */
  readonly http2: Http2Options;
  readonly circuitBreakers: { readonly DEFAULT: ThresholdsConfig; readonly HIGH: ThresholdsConfig };
  readonly metadata?: unknown;
  /** `health_checks` (at most one for now). */
  readonly healthChecks: readonly HealthCheckConfig[];
  readonly outlierDetection?: OutlierDetectionConfig;
  /** `ring_hash_lb_config` (defaults when RING_HASH without it). */
  readonly ringHash: RingHashConfig;
  /** `maglev_lb_config`. */
  readonly maglev: MaglevConfig;
  /** `slow_start_config` of the round-robin or least-request config. */
  readonly slowStart?: SlowStartConfig;
  /** `transport_socket`: TLS to the hosts (undefined: plain TCP). */
  readonly transportSocket?: ClientTransportSocket;
  /** Config path of the cluster, for messages. */
  readonly path: string;
}

const DEFAULT_THRESHOLDS: ThresholdsConfig = {
  maxConnections: 1024,
  maxPendingRequests: 1024,
  maxRequests: 1024,
  maxRetries: 3,
};

const KNOWN_TYPES = ["ORIGINAL_DST"] as const;
/** Envoy's upper bound of `LocalityLbEndpoints.priority`. */
export const MAX_PRIORITY = 128;
const KNOWN_LB = [
  "CLUSTER_PROVIDED",
  "LOAD_BALANCING_POLICY_CONFIG",
  "ORIGINAL_DST_LB",
] as const;
const HEALTH_STATUSES = ["UNKNOWN", "HEALTHY", "UNHEALTHY", "DRAINING", "TIMEOUT", "DEGRADED"] as const;
const HTTP_PROTOCOL_OPTIONS_TYPE = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
const HTTP_PROTOCOL_OPTIONS_KEY = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

/** True for `a.b.c.d` with four groups of 1–3 digits, each at most 255 (a scan: EDS pushes check every endpoint). */
function isIpv4(s: string): boolean {
  let groups = 0, digits = 0, value = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (++digits > 3) return false;
      value = value * 10 + c - 48;
    } else if (c === 46) {
      if (digits === 0 || value > 255 || ++groups > 3) return false;
      digits = value = 0;
    } else {
      return false;
    }
  }
  return groups === 3 && digits > 0 && value <= 255;
}

function isIpLiteral(s: string): boolean {
  if (isIpv4(s)) return true;
  return s.includes(":") && /^[0-9a-fA-F:.]+$/.test(s);
}

/** True if `s` is an IPv4 or IPv6 literal (no brackets). */
export function isIpAddress(s: string): boolean {
  return isIpLiteral(s);
}

/**
 * Parses a list of clusters and checks that names are unique.
 * Throws {@link ConfigError} naming the path of the first problem.
 */
export function parseClusters(rawList: unknown, path: string): ClusterConfig[] {
  if (rawList === undefined || rawList === null) return [];
  const seen = new Map<string, number>();
  return asList(rawList).map((raw, i) => {
    const p = `${path}[${i}]`;
    const c = parseCluster(raw, p);
    const prev = seen.get(c.name);
    if (prev !== undefined) {
      throw new ConfigError(`${p}.name`, `cluster ${describe(c.name)} is already defined at ${path}[${prev}]`);
    }
    seen.set(c.name, i);
    return c;
  });
}

/** Parses one Envoy v3 `Cluster`. Throws {@link ConfigError} naming the path of the problem. */
export function parseCluster(raw: unknown, path: string): ClusterConfig {
  const o = new ObjReader(raw, path).envoyMessage("envoy.config.cluster.v3.Cluster");
  const name = o.str("name", { required: true });
  const type = o.enumOf("type", ["STATIC", "STRICT_DNS", "LOGICAL_DNS", "EDS"] as const, { known: KNOWN_TYPES }) ??
    "STATIC";
  let eds: EdsClusterConfig | undefined;
  const edsRaw = o.obj("eds_cluster_config");
  if (type === "EDS") {
    if (edsRaw === undefined) {
      throw new ConfigError(
        o.at("eds_cluster_config"),
        "is required for an EDS cluster (eds_config says where to get its endpoints)",
      );
    }
    const source = edsRaw.obj("eds_config", { required: true })!;
    // The xDS client reads the ConfigSource; everything in it counts as consumed here.
    source.skip(...source.keys());
    source.done();
    const serviceName = edsRaw.str("service_name");
    edsRaw.done();
    eds = {
      serviceName: serviceName === undefined || serviceName === "" ? name : serviceName,
      configSource: source.raw,
    };
  } else if (edsRaw !== undefined) {
    throw new ConfigError(edsRaw.path, `is only for type EDS (this cluster is ${type})`);
  }
  const connectTimeoutMs = o.durationMs("connect_timeout") ?? 5000;
  if (connectTimeoutMs <= 0) throw new ConfigError(o.at("connect_timeout"), "must be greater than 0");
  const lbPolicy = o.enumOf("lb_policy", ["ROUND_ROBIN", "LEAST_REQUEST", "RANDOM", "RING_HASH", "MAGLEV"] as const, {
    known: KNOWN_LB,
  }) ?? "ROUND_ROBIN";
  let slowStart: SlowStartConfig | undefined;

  let leastRequest: LeastRequestConfig = { choiceCount: 2, activeRequestBias: 1 };
  const lr = o.obj("least_request_lb_config");
  if (lr) {
    const choiceCount = lr.int("choice_count", { min: 2 }) ?? 2;
    let activeRequestBias = 1;
    const bias = lr.obj("active_request_bias");
    if (bias) {
      activeRequestBias = bias.num("default_value", { required: true, min: 0 })!;
      bias.str("runtime_key");
      bias.done();
    }
    const ss = lr.obj("slow_start_config");
    if (ss) slowStart = parseSlowStart(ss);
    lr.unsupported("locality_lb_config");
    lr.unsupported("enable_full_scan");
    lr.unsupported("selection_method");
    lr.done();
    leastRequest = { choiceCount, activeRequestBias };
  }
  const rr = o.obj("round_robin_lb_config");
  if (rr) {
    const ss = rr.obj("slow_start_config");
    if (ss) slowStart = parseSlowStart(ss);
    rr.unsupported("locality_lb_config");
    rr.done();
  }
  const rh = o.obj("ring_hash_lb_config");
  const ringHash = rh ? parseRingHash(rh) : { minimumRingSize: 1024, maximumRingSize: 8_388_608 };
  const mg = o.obj("maglev_lb_config");
  const maglev = mg ? parseMaglev(mg) : { tableSize: 65537 };
  let healthyPanicThreshold = 50;
  let localityWeightedLb = false;
  const common = o.obj("common_lb_config")?.envoyMessage("envoy.config.cluster.v3.Cluster.CommonLbConfig");
  if (common) {
    common.unsupported("ignore_new_hosts_until_first_hc", "is not supported yet");
    const t = common.obj("healthy_panic_threshold");
    if (t) {
      healthyPanicThreshold = t.num("value", { min: 0, max: 100 }) ?? 0;
      t.done();
    }
    const lw = common.obj("locality_weighted_lb_config");
    if (lw) {
      localityWeightedLb = true;
      lw.done(); // an empty message
    }
    common.done();
  }

  const dnsLookupFamily =
    o.enumOf("dns_lookup_family", ["AUTO", "V4_ONLY", "V6_ONLY", "V4_PREFERRED", "ALL"] as const) ??
      "AUTO";
  const dnsRefreshRateMs = o.durationMs("dns_refresh_rate") ?? 5000;
  if (o.has("dns_refresh_rate") && dnsRefreshRateMs < 1) {
    throw new ConfigError(o.at("dns_refresh_rate"), "must be at least 1ms");
  }
  const respectDnsTtl = o.bool("respect_dns_ttl") ?? false;
  const perConnectionBufferLimitBytes = o.int("per_connection_buffer_limit_bytes", { min: 0 }) ?? 1024 * 1024;
  let maxRequestsPerConnection = o.int("max_requests_per_connection", { min: 0 }) ?? 0;
  let idleTimeoutMs = 3600_000;
  let maxHeadersCount: number | undefined;

  const applyCommonHttp = (c: ObjReader): void => {
    c.envoyMessage("envoy.config.core.v3.HttpProtocolOptions");
    const idle = c.durationMs("idle_timeout");
    if (idle !== undefined) idleTimeoutMs = idle;
    const mr = c.int("max_requests_per_connection", { min: 0 });
    if (mr !== undefined) maxRequestsPerConnection = mr;
    const mh = c.int("max_headers_count", { min: 1 });
    if (mh !== undefined) maxHeadersCount = mh;
    c.done();
  };
  const commonHttp = o.obj("common_http_protocol_options");
  if (commonHttp) applyCommonHttp(commonHttp);

  let httpProtocol: UpstreamHttpProtocol = "http1";
  let autoConfigPath: string | undefined;
  let http2: Http2Options = {};
  // The deprecated cluster-level field, still common in examples: HTTP/2 to every host.
  const legacyH2 = o.obj("http2_protocol_options");
  if (legacyH2) {
    httpProtocol = "http2";
    http2 = parseHttp2ProtocolOptions(legacyH2);
  }
  const tepo = o.obj("typed_extension_protocol_options");
  if (tepo) {
    for (const key of tepo.keys()) {
      const entry = tepo.obj(key)!.envoyMessage("envoy.extensions.upstreams.http.v3.HttpProtocolOptions");
      const t = entry.str("@type", { required: true });
      if (key !== HTTP_PROTOCOL_OPTIONS_KEY && t !== HTTP_PROTOCOL_OPTIONS_TYPE) {
        throw new ConfigError(entry.path, `protocol options ${describe(key)} are not supported`);
      }
      if (t !== HTTP_PROTOCOL_OPTIONS_TYPE) {
        throw new ConfigError(entry.at("@type"), `${describe(t)} is not ${describe(HTTP_PROTOCOL_OPTIONS_TYPE)}`);
      }
      const c = entry.obj("common_http_protocol_options");
      if (c) applyCommonHttp(c);
      entry.oneOf(["explicit_http_config", "use_downstream_protocol_config", "auto_config"] as const);
      const auto = entry.obj("auto_config");
      if (auto) {
        httpProtocol = "auto";
        autoConfigPath = auto.path;
        auto.obj("http_protocol_options")?.envoyMessage("envoy.config.core.v3.Http1ProtocolOptions").done();
        const h2 = auto.obj("http2_protocol_options");
        if (h2) http2 = parseHttp2ProtocolOptions(h2);
        if (auto.has("http3_protocol_options")) auto.unsupported("http3_protocol_options");
        if (auto.has("alternate_protocols_cache_options")) {
          auto.unsupported("alternate_protocols_cache_options", "is not supported (it serves HTTP/3)");
        }
        auto.done();
      }
      const downstream = entry.obj("use_downstream_protocol_config");
      if (downstream) {
        httpProtocol = "downstream";
        const h1 = downstream.obj("http_protocol_options");
        h1?.envoyMessage("envoy.config.core.v3.Http1ProtocolOptions").done();
        const h2 = downstream.obj("http2_protocol_options");
        if (h2) http2 = parseHttp2ProtocolOptions(h2);
        if (downstream.has("http3_protocol_options")) downstream.unsupported("http3_protocol_options");
        downstream.done();
      }
      const explicit = entry.obj("explicit_http_config");
      if (explicit) {
        const p = explicit.oneOf(
          ["http_protocol_options", "http2_protocol_options", "http3_protocol_options"] as const,
          {
            required: true,
          },
        );
        if (p === "http3_protocol_options") explicit.unsupported(p, "is not supported");
        if (p === "http2_protocol_options") {
          httpProtocol = "http2";
          http2 = parseHttp2ProtocolOptions(explicit.obj("http2_protocol_options")!);
        } else {
          // Ferry's upstream HTTP/1 codec has no options: every field of Http1ProtocolOptions is unsupported.
          explicit.obj("http_protocol_options")!.envoyMessage("envoy.config.core.v3.Http1ProtocolOptions").done();
        }
        explicit.done();
      }
      entry.done();
    }
    tepo.done();
  }

  const circuitBreakers = { DEFAULT: DEFAULT_THRESHOLDS, HIGH: DEFAULT_THRESHOLDS };
  const cb = o.obj("circuit_breakers")?.envoyMessage("envoy.config.cluster.v3.CircuitBreakers");
  if (cb) {
    const seenPrio = new Set<string>();
    cb.objs("thresholds", (t) => {
      t.envoyMessage("envoy.config.cluster.v3.CircuitBreakers.Thresholds");
      const priority = t.enumOf("priority", ["DEFAULT", "HIGH"] as const) ?? "DEFAULT";
      if (seenPrio.has(priority)) throw new ConfigError(t.at("priority"), `${priority} is already configured`);
      seenPrio.add(priority);
      const rb = t.obj("retry_budget");
      const retryBudget = rb ? parseRetryBudget(rb) : undefined;
      const trackRemaining = t.bool("track_remaining") ?? false;
      circuitBreakers[priority] = {
        maxConnections: t.int("max_connections", { min: 0 }) ?? DEFAULT_THRESHOLDS.maxConnections,
        maxPendingRequests: t.int("max_pending_requests", { min: 0 }) ?? DEFAULT_THRESHOLDS.maxPendingRequests,
        maxRequests: t.int("max_requests", { min: 0 }) ?? DEFAULT_THRESHOLDS.maxRequests,
        maxRetries: t.int("max_retries", { min: 0 }) ?? DEFAULT_THRESHOLDS.maxRetries,
        ...(retryBudget ? { retryBudget } : {}),
        ...(trackRemaining ? { trackRemaining } : {}),
      };
    });
    cb.done();
  }

  const healthChecks = o.objs("health_checks", (h) => parseHealthCheck(h));
  if (healthChecks.length > 1) {
    throw new ConfigError(`${o.at("health_checks")}[1]`, "more than one health check is not supported yet");
  }
  const od = o.obj("outlier_detection");
  const outlierDetection = od ? parseOutlierDetection(od) : undefined;
  // Ferry drops a host as soon as discovery removes it (its pool drains), which is Envoy's behaviour with
  // ignore_health_on_host_removal: true; Envoy's default keeps a removed host while it passes health checks.
  if (o.bool("ignore_health_on_host_removal") === false && healthChecks.length > 0) {
    throw new ConfigError(
      o.at("ignore_health_on_host_removal"),
      "false is not supported yet (Ferry removes hosts at once, as with true)",
    );
  }
  const tsRaw = o.value("transport_socket");
  const transportSocket = tsRaw === undefined ? undefined : parseClientTransportSocket(tsRaw, o.at("transport_socket"));
  // As Envoy ("ALPN configured for cluster ... which has a non-ALPN transport socket"): the protocol is ALPN's pick.
  if (autoConfigPath !== undefined && transportSocket === undefined) {
    throw new ConfigError(autoConfigPath, "needs a TLS transport_socket (the upstream protocol is chosen by ALPN)");
  }
  const metadata = o.value("metadata");

  let loadAssignmentName = name;
  let localities: LocalityEndpointsConfig[] = [];
  let overprovisioningFactor = DEFAULT_OVERPROVISIONING_FACTOR;
  let weightedPriorityHealth = false;
  const la = o.obj("load_assignment");
  if (la) {
    ({ clusterName: loadAssignmentName = name, localities, overprovisioningFactor, weightedPriorityHealth } =
      readLoadAssignment(la, type));
  }
  o.done();

  if (type === "LOGICAL_DNS") {
    const count = localities.reduce((n, l) => n + l.endpoints.length, 0);
    if (count !== 1) {
      throw new ConfigError(
        joinLa(path),
        `LOGICAL_DNS clusters must have exactly one endpoint (found ${count})`,
      );
    }
  }

  const cfg: ClusterConfig = {
    name,
    type,
    connectTimeoutMs,
    lbPolicy,
    leastRequest,
    healthyPanicThreshold,
    overprovisioningFactor,
    weightedPriorityHealth,
    localityWeightedLb,
    loadAssignmentName,
    localities,
    dnsLookupFamily,
    dnsRefreshRateMs,
    respectDnsTtl,
    perConnectionBufferLimitBytes,
    maxRequestsPerConnection,
    idleTimeoutMs,
    httpProtocol,
    http2,
    circuitBreakers,
    healthChecks,
    ringHash,
    maglev,
    path,
    ...(outlierDetection ? { outlierDetection } : {}),
    ...(transportSocket ? { transportSocket } : {}),
    ...(slowStart ? { slowStart } : {}),
    ...(maxHeadersCount !== undefined ? { maxHeadersCount } : {}),
    ...(metadata !== undefined ? { metadata } : {}),
    ...(eds ? { eds } : {}),
  };
  return cfg;
}

/** Envoy's default `overprovisioning_factor` (percent): a priority at 72 % healthy hosts still takes all its load. */
export const DEFAULT_OVERPROVISIONING_FACTOR = 140;

/** `ClusterLoadAssignment.policy`, as the balancers use it. */
export interface LoadAssignmentPolicy {
  /** `overprovisioning_factor` in percent (default 140). */
  readonly overprovisioningFactor: number;
  /** `weighted_priority_health`: priority health from host weights rather than host counts (default false). */
  readonly weightedPriorityHealth: boolean;
}

/** A parsed `ClusterLoadAssignment`: its `cluster_name` (if set), its localities and its policy. */
export interface LoadAssignmentConfig extends LoadAssignmentPolicy {
  readonly clusterName: string | undefined;
  readonly localities: LocalityEndpointsConfig[];
}

/** The EDS resource name of an EDS cluster (`eds_cluster_config.service_name`, default its name); else undefined. */
export function edsServiceName(config: ClusterConfig): string | undefined {
  return config.eds?.serviceName;
}

function readLoadAssignment(raw: ObjReader, type: ClusterType): LoadAssignmentConfig {
  const la = raw.envoyMessage("envoy.config.endpoint.v3.ClusterLoadAssignment");
  const clusterName = la.str("cluster_name");
  const localities = la.objs("endpoints", (lo) => parseLocality(lo, type));
  let overprovisioningFactor = DEFAULT_OVERPROVISIONING_FACTOR;
  let weightedPriorityHealth = false;
  const policy = la.obj("policy")?.envoyMessage("envoy.config.endpoint.v3.ClusterLoadAssignment.Policy");
  if (policy) {
    overprovisioningFactor = policy.int("overprovisioning_factor", { min: 1 }) ?? DEFAULT_OVERPROVISIONING_FACTOR;
    // Accepted and ignored: Ferry keeps the last endpoints however old they are.
    policy.durationMs("endpoint_stale_after");
    weightedPriorityHealth = policy.bool("weighted_priority_health") ?? false;
    policy.done();
  }
  la.done();
  return { clusterName, localities, overprovisioningFactor, weightedPriorityHealth };
}

/**
 * Parses one Envoy `ClusterLoadAssignment` (EDS, or the runtime API's host updates) with the same rules as a
 * cluster's inline `load_assignment`. `type` is the cluster's type (STATIC endpoints must be IP addresses).
 */
export function parseLoadAssignment(raw: unknown, path: string, type: ClusterType): LoadAssignmentConfig {
  return readLoadAssignment(new ObjReader(raw, path), type);
}

function joinLa(path: string): string {
  return `${path}.load_assignment`;
}

function parseLocality(lo: ObjReader, type: ClusterType): LocalityEndpointsConfig {
  lo.envoyMessage("envoy.config.endpoint.v3.LocalityLbEndpoints");
  let locality: LocalityConfig | undefined;
  const l = lo.obj("locality");
  if (l) {
    locality = { region: l.str("region") ?? "", zone: l.str("zone") ?? "", subZone: l.str("sub_zone") ?? "" };
    l.done();
  }
  const weight = lo.int("load_balancing_weight", { min: 1 });
  const priority = lo.int("priority", { min: 0, max: MAX_PRIORITY }) ?? 0;
  // Locality metadata only feeds subset load balancing (not supported): accepted, as on endpoints.
  lo.value("metadata");
  const endpoints = lo.objs("lb_endpoints", (e) => parseLbEndpoint(e, type));
  return {
    endpoints,
    priority,
    ...(locality ? { locality } : {}),
    ...(weight !== undefined ? { weight } : {}),
  };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

const HEALTH_STATUS_SET: ReadonlySet<string> = new Set(HEALTH_STATUSES);

/**
 * The common shape of an `lb_endpoints` entry (snake_case or camelCase keys; `endpoint.address.socket_address` with
 * an address and a `port_value`; optional `hostname`, `health_status` in capitals, an integer weight, object
 * metadata), read straight from the JSON: an EDS push carries hundreds of these, and the field-by-field reader cost
 * ~2 µs each (bench/eds_update.ts). Anything else — including every invalid entry — returns undefined and takes
 * the reader's path, which names the problem.
 */
function fastLbEndpoint(raw: Record<string, unknown>, path: string, type: ClusterType): EndpointConfig | undefined {
  let weight = 1;
  let healthStatus: EndpointHealthStatus = "UNKNOWN";
  let metadata: Record<string, unknown> | undefined;
  let endpoint: unknown;
  let seen = 0;
  for (const k in raw) {
    const v = raw[k];
    let bit: number;
    switch (k) {
      case "endpoint":
        bit = 1;
        endpoint = v;
        break;
      case "health_status":
      case "healthStatus":
        bit = 2;
        if (typeof v !== "string" || !HEALTH_STATUS_SET.has(v)) return undefined;
        healthStatus = v as EndpointHealthStatus;
        break;
      case "load_balancing_weight":
      case "loadBalancingWeight":
        bit = 4;
        if (typeof v !== "number" || !Number.isInteger(v) || v < 1) return undefined;
        weight = v;
        break;
      case "metadata":
        bit = 8;
        if (!isPlainObject(v)) return undefined;
        metadata = v;
        break;
      default:
        return undefined;
    }
    if ((seen & bit) !== 0) return undefined;
    seen |= bit;
  }
  if (!isPlainObject(endpoint)) return undefined;
  let hostname: string | undefined;
  let address: unknown;
  for (const k in endpoint) {
    const v = endpoint[k];
    if (k === "address" && address === undefined) address = v;
    else if (k === "hostname" && hostname === undefined && typeof v === "string") hostname = v;
    else return undefined;
  }
  if (!isPlainObject(address)) return undefined;
  let sa: unknown;
  for (const k in address) {
    if ((k === "socket_address" || k === "socketAddress") && sa === undefined) sa = address[k];
    else return undefined;
  }
  if (!isPlainObject(sa)) return undefined;
  let ip: unknown, port: unknown;
  for (const k in sa) {
    const v = sa[k];
    if (k === "address" && ip === undefined) ip = v;
    else if ((k === "port_value" || k === "portValue") && port === undefined) port = v;
    else if (k === "protocol" && v === "TCP") continue;
    else return undefined;
  }
  if (typeof ip !== "string" || ip === "" || typeof port !== "number" || !Number.isInteger(port)) return undefined;
  if (port < 1 || port > 65535) return undefined;
  if ((type === "STATIC" || type === "EDS") && !isIpLiteral(ip)) return undefined;
  return {
    address: ip,
    port,
    weight,
    healthStatus,
    path,
    ...(hostname !== undefined ? { hostname } : {}),
    ...(metadata !== undefined ? { metadata } : {}),
  };
}

function parseLbEndpoint(e: ObjReader, type: ClusterType): EndpointConfig {
  const fast = fastLbEndpoint(e.raw, e.path, type);
  if (fast !== undefined) {
    // Every field was read (the caller's `done` checks that).
    for (const k in e.raw) e.skip(k);
    return fast;
  }
  e.envoyMessage("envoy.config.endpoint.v3.LbEndpoint");
  const weight = e.int("load_balancing_weight", { min: 1 }) ?? 1;
  const healthStatus = e.enumOf("health_status", HEALTH_STATUSES) ?? "UNKNOWN";
  const md = e.value("metadata");
  if (md !== undefined && !isPlainObject(md)) {
    throw new ConfigError(e.at("metadata"), `expected an object, got ${describe(md)}`);
  }
  e.unsupported("endpoint_name"); // the alternative to the required endpoint: named before its absence is
  const ep = e.obj("endpoint", { required: true })!.envoyMessage("envoy.config.endpoint.v3.Endpoint");
  const hostname = ep.str("hostname");
  ep.unsupported("health_check_config", "is not supported yet");
  const addr = ep.obj("address", { required: true })!;
  addr.unsupported("pipe");
  addr.unsupported("envoy_internal_address");
  const sa = addr.obj("socket_address", { required: true })!;
  const address = sa.str("address", { required: true });
  const which = sa.oneOf(["port_value", "named_port"] as const, { required: true });
  if (which === "named_port") sa.unsupported("named_port");
  const port = sa.int("port_value", { min: 0, max: 65535 })!;
  sa.enumOf("protocol", ["TCP"] as const, { known: ["UDP"] });
  sa.unsupported("resolver_name");
  sa.bool("ipv4_compat");
  sa.done();
  addr.done();
  ep.done();
  if ((type === "STATIC" || type === "EDS") && !isIpLiteral(address)) {
    throw new ConfigError(
      sa.at("address"),
      `${describe(address)} is not an IP address (${type} clusters need IP addresses; use STRICT_DNS or LOGICAL_DNS)`,
    );
  }
  if (port === 0) throw new ConfigError(sa.at("port_value"), "must be between 1 and 65535");
  return {
    address,
    port,
    weight,
    healthStatus,
    path: e.path,
    ...(hostname !== undefined ? { hostname } : {}),
    ...(md !== undefined ? { metadata: md as Record<string, unknown> } : {}),
  };
}
