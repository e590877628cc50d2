/**
 * Clusters, hosts, load balancers and connection pools, as seen by the router and tcp_proxy.
 * Implementations live in `lib/upstream/`.
 *
 * @module
 */
import type { CodecFactory, StreamDecoder, StreamEncoder } from "./codec.ts";
import type { HeaderMap } from "./headers.ts";
import type { NetConnection } from "./network.ts";
import type { Counter, Gauge, StatsScope } from "./stats.ts";

/** Envoy's cluster stats that Ferry maintains (`cluster.<name>.<stat>`). */
export interface ClusterStats {
  upstream_cx_total: Counter;
  upstream_cx_active: Gauge;
  upstream_cx_http1_total: Counter;
  upstream_cx_connect_fail: Counter;
  upstream_cx_connect_timeout: Counter;
  upstream_cx_destroy: Counter;
  upstream_cx_destroy_local: Counter;
  upstream_cx_destroy_remote: Counter;
  upstream_cx_idle_timeout: Counter;
  upstream_cx_max_requests: Counter;
  upstream_cx_none_healthy: Counter;
  upstream_cx_overflow: Counter;
  upstream_cx_rx_bytes_total: Counter;
  upstream_cx_tx_bytes_total: Counter;
  upstream_rq_total: Counter;
  upstream_rq_active: Gauge;
  upstream_rq_completed: Counter;
  upstream_rq_pending_total: Counter;
  upstream_rq_pending_active: Gauge;
  upstream_rq_pending_overflow: Counter;
  upstream_rq_pending_failure_eject: Counter;
  upstream_rq_timeout: Counter;
  upstream_rq_per_try_timeout: Counter;
  upstream_rq_retry: Counter;
  upstream_rq_retry_success: Counter;
  upstream_rq_retry_overflow: Counter;
  upstream_rq_rx_reset: Counter;
  upstream_rq_tx_reset: Counter;
  upstream_rq_1xx: Counter;
  upstream_rq_2xx: Counter;
  upstream_rq_3xx: Counter;
  upstream_rq_4xx: Counter;
  upstream_rq_5xx: Counter;
  membership_total: Gauge;
  membership_healthy: Gauge;
  membership_change: Counter;
}

/** Static facts and stats of a cluster. */
export interface ClusterInfo {
  readonly name: string;
  readonly connectTimeoutMs: number;
  /** `cluster.<name>` */
  readonly scope: StatsScope;
  readonly stats: ClusterStats;
  /** 0 = unlimited. */
  readonly maxRequestsPerConnection: number;
  /** Idle timeout of pooled upstream connections (default 1 h, as Envoy). */
  readonly idleTimeoutMs: number;
  /** Upper bound of connections per host pool (circuit breaker `max_connections`, default 1024). */
  readonly maxConnections: number;
  /** Upper bound of requests waiting for a connection (`max_pending_requests`, default 1024). */
  readonly maxPendingRequests: number;
  readonly perConnectionBufferLimitBytes: number;
  /**
   * Circuit breakers of the DEFAULT priority, for the router's `max_retries` / `retry_budget` checks
   * (optional: test doubles may leave it out, and then nothing is limited).
   */
  readonly circuitBreakers?: ClusterCircuitBreakers;
}

/** One circuit-breaker resource (Envoy's `ResourceLimit`). */
export interface ResourceCounter {
  /** The current limit (a retry budget moves it with the number of active requests). */
  readonly max: number;
  readonly count: number;
  canCreate(): boolean;
  inc(): void;
  dec(): void;
}

/** The circuit-breaker resources of a cluster priority. */
export interface ClusterCircuitBreakers {
  readonly connections: ResourceCounter;
  readonly pendingRequests: ResourceCounter;
  readonly requests: ResourceCounter;
  readonly retries: ResourceCounter;
}

/**
 * Why an attempt failed or succeeded at the transport level (Envoy's `Outlier::Result`), as the router reports it
 * to outlier detection. HTTP status codes are reported with `putHttpResponseCode`.
 */
export type OutlierResult =
  | "local-origin-connect-failed"
  | "local-origin-connect-success"
  | "local-origin-timeout"
  | "local-origin-reset";

/**
 * Passive health signals about a host (Envoy's `Outlier::DetectorHostMonitor` plus the immediate health-check
 * failure of `HealthCheckHostMonitor`). The router calls these once per attempt; implementations must be cheap.
 */
export interface HostMonitor {
  putHttpResponseCode(status: number): void;
  putResult(result: OutlierResult): void;
  /** The host answered with `x-envoy-immediate-health-check-fail`. */
  immediateHealthCheckFail(): void;
}

/**
 * Envoy's `HealthStatus` of an endpoint as `load_assignment` / EDS reports it. `UNHEALTHY` and `TIMEOUT` fail the
 * host (`/failed_eds_health`), `DRAINING` excludes it (`/pending_dynamic_removal`); the others leave it usable.
 */
export type EndpointHealthStatus = "UNKNOWN" | "HEALTHY" | "UNHEALTHY" | "DRAINING" | "TIMEOUT" | "DEGRADED";

/** Envoy's `Locality` of a group of endpoints (empty strings when not given). */
export interface Locality {
  readonly region: string;
  readonly zone: string;
  readonly subZone: string;
}

/**
 * One `lb_endpoints` entry of a `ClusterLoadAssignment`, parsed (Envoy's `LbEndpoint`). `lib/upstream/config.ts`
 * produces this shape from `load_assignment`; xDS (EDS) will produce it from `ClusterLoadAssignment` resources.
 */
export interface LbEndpoint {
  /** IP literal (or, in DNS clusters' config, a name to resolve). */
  readonly address: string;
  readonly port: number;
  /** `endpoint.hostname` (used by `auto_host_rewrite`). */
  readonly hostname?: string;
  /** `load_balancing_weight` (1 when not given). */
  readonly weight: number;
  readonly healthStatus: EndpointHealthStatus;
  /** `metadata` as proto3 JSON (`filter_metadata` by namespace); kept on the host, compared structurally. */
  readonly metadata?: Readonly<Record<string, unknown>>;
}

/** One `endpoints` entry of a `ClusterLoadAssignment`: endpoints of one locality and priority. */
export interface LocalityLbEndpoints {
  readonly locality?: Locality;
  readonly endpoints: readonly LbEndpoint[];
  /** Locality weight, when set. */
  readonly weight?: number;
  /** Priority; only 0 is supported. */
  readonly priority: number;
}

/** One upstream endpoint. */
export interface Host {
  /** Resolved IP address (or the configured one for STATIC). */
  readonly address: string;
  readonly port: number;
  /** The configured name for DNS clusters (used by `auto_host_rewrite`). */
  readonly hostname: string | undefined;
  readonly weight: number;
  /** `address:port` (IPv6 in brackets). */
  readonly key: string;
  readonly cluster: ClusterInfo;
  /** Health as known to the balancer (active checks / outlier detection set it). */
  healthy: boolean;
  /** Requests in flight on this host (LEAST_REQUEST uses it). */
  activeRequests: number;
  /** Where the router reports attempt results (outlier detection, immediate health-check failure); optional. */
  readonly monitor?: HostMonitor | undefined;
  /** The endpoint's `metadata`, when it has one (updated in place by host-set updates). */
  readonly metadata?: Readonly<Record<string, unknown>> | undefined;
}

/** What a load balancer may use to choose. */
export interface LbContext {
  /** A hash for consistent-hashing balancers. */
  readonly hashKey?: number;
  /** Hosts to avoid if possible (retry `previous_hosts`). */
  readonly avoid?: ReadonlySet<Host>;
  readonly downstreamHeaders?: HeaderMap;
}

/** Facts about the pooled connection a stream was placed on. */
export interface PoolReadyInfo {
  readonly host: Host;
  /** True if the connection carried a request before: a close before any response byte is then retried. */
  readonly reused: boolean;
  readonly connection: NetConnection;
}

/** Why a pool could not give a stream a connection. */
export type PoolFailureReason = "connect-failure" | "timeout" | "overflow" | "closed";

/** The pool's answer to `newStream`. */
export interface PoolCallbacks {
  /** A connection is ready: write the request on `encoder`. May be called synchronously from `newStream`. */
  onPoolReady(encoder: StreamEncoder, info: PoolReadyInfo): void;
  onPoolFailure(reason: PoolFailureReason, detail: string, host: Host): void;
}

/** A pending `newStream` that can be abandoned. */
export interface Cancellable {
  cancel(): void;
}

/**
 * A per-host connection pool of one codec (Envoy's `ConnectionPool::Instance`). The cluster builds it from the
 * codec's {@link CodecFactory.poolMode}: ping-pong pools hold one stream per connection, multiplexing pools many.
 */
export interface ConnPool {
  readonly host: Host;
  /**
   * Places a stream on an idle connection, a new one, or a wait queue. Returns a handle to cancel while waiting,
   * or undefined if the callbacks were already called.
   */
  newStream(decoder: StreamDecoder, callbacks: PoolCallbacks): Cancellable | undefined;
  /** Stop placing streams; close connections as they go idle; `onDrained` when none are left. */
  drain(onDrained?: () => void): void;
  readonly activeConnections: number;
  readonly idleConnections: number;
  readonly pendingStreams: number;
}

/**
 * A cluster: hosts, a balancer, and pools. The router and tcp_proxy call `chooseHost` and then, synchronously,
 * `httpPool` / `pool` / `connect` with the host it returned. The host set may change between requests
 * (`updateHosts`, DNS refreshes); a host that stays keeps its object, pools and health state.
 */
export interface Cluster {
  readonly info: ClusterInfo;
  /** Current hosts (all priorities, healthy or not). */
  readonly hosts: readonly Host[];
  /** Picks a host, or undefined if none is available. */
  chooseHost(ctx?: LbContext): Host | undefined;
  /** The pool of a host for the cluster's default HTTP codec (created on first use). */
  httpPool(host: Host): ConnPool;
  /**
   * The pool of a host for `codec` (created on first use; one per host and codec). The implementation follows
   * the codec's `poolMode`; throws if the cluster has no pool for that mode.
   */
  pool(host: Host, codec: CodecFactory): ConnPool;
  /** Opens a raw TCP connection to a host (for tcp_proxy), honouring `connect_timeout`. */
  connect(host: Host): Promise<NetConnection>;
  /**
   * Applies a new endpoint list (priority 0), as EDS delivers it or a CDS update of `load_assignment` carries it.
   * Hosts are matched by `address:port`: a host that stays keeps its object, pools, connections, active
   * health-check and outlier-detection state (weight, metadata, locality and health status are updated in place);
   * a new host is added (pools are created on first use); a removed host's pools drain (in-flight requests finish,
   * connections close as they go idle) and the balancer no longer picks it.
   *
   * Control plane only: throws, changing nothing, if the cluster's type finds its hosts itself (STRICT_DNS,
   * LOGICAL_DNS) or the list is invalid (a priority other than 0, a name where an IP address is needed).
   */
  updateHosts(endpoints: readonly LocalityLbEndpoints[]): void;
}

/**
 * All clusters by name: what filters (router, tcp_proxy) see of the cluster manager. Adding, updating and removing
 * clusters are control-plane operations of the implementation (`ClusterManagerImpl` in `lib/upstream`).
 */
export interface ClusterManager {
  /** The cluster serving `name` now, or undefined. Look it up per request: CDS may replace it. */
  get(name: string): Cluster | undefined;
  readonly clusters: ReadonlyMap<string, Cluster>;
}
