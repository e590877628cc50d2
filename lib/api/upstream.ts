/**
 * Clusters, hosts, load balancers and connection pools, as seen by the router and tcp_proxy.
 * Implementations live in `lib/upstream/`.
 *
 * @module
 */
import type { StreamDecoder, StreamEncoder } from "./codec.ts";
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

/** A per-host HTTP connection pool. */
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

/** A cluster: hosts, a balancer, and pools. */
export interface Cluster {
  readonly info: ClusterInfo;
  /** Current hosts (all priorities, healthy or not). */
  readonly hosts: readonly Host[];
  /** Picks a host, or undefined if none is available. */
  chooseHost(ctx?: LbContext): Host | undefined;
  /** The HTTP pool for a host (created on first use). */
  httpPool(host: Host): ConnPool;
  /** Opens a raw TCP connection to a host (for tcp_proxy), honouring `connect_timeout`. */
  connect(host: Host): Promise<NetConnection>;
}

/** All clusters by name. */
export interface ClusterManager {
  get(name: string): Cluster | undefined;
  readonly clusters: ReadonlyMap<string, Cluster>;
}
