/**
 * Clusters, hosts, load balancers and connection pools, as seen by the router and tcp_proxy.
 * Implementations live in `lib/upstream/`.
 *
 * @module
 */
import type { CodecFactory, StreamDecoder, StreamEncoder } from "./codec.ts";
import type { HeaderMap } from "./headers.ts";
import type { IoEngine, NetConnection } from "./network.ts";
import type { Counter, Gauge, StatsScope } from "./stats.ts";

/** Envoy's cluster stats that Ferry maintains (`cluster.<name>.<stat>`). */
export interface ClusterStats {
  /** Upstream connections opened, pooled and raw (Envoy's `upstream_cx_total`). */
  upstream_cx_total: Counter;
  /** Upstream connections currently open (Envoy's `upstream_cx_active`). */
  upstream_cx_active: Gauge;
  /** HTTP/1 pool connections opened (Envoy's `upstream_cx_http1_total`). */
  upstream_cx_http1_total: Counter;
  /** HTTP/2 pool connections opened (Envoy's `upstream_cx_http2_total`). */
  upstream_cx_http2_total: Counter;
  /** Connection attempts that failed, timeouts included (Envoy's `upstream_cx_connect_fail`). */
  upstream_cx_connect_fail: Counter;
  /** Connection attempts that hit `connect_timeout` (Envoy's `upstream_cx_connect_timeout`). */
  upstream_cx_connect_timeout: Counter;
  /** Upstream connections closed, for any reason (Envoy's `upstream_cx_destroy`). */
  upstream_cx_destroy: Counter;
  /** Pool connections Ferry closed itself (Envoy's `upstream_cx_destroy_local`). */
  upstream_cx_destroy_local: Counter;
  /**
   * Pool connections the upstream closed, a close after its half-close included (Envoy's `upstream_cx_destroy_remote`).
   */
  upstream_cx_destroy_remote: Counter;
  /**
   * Pool connections the upstream announced it would close: HTTP/1 `connection: close` on a response, HTTP/2 GOAWAY
   * (Envoy's `upstream_cx_close_notify`).
   */
  upstream_cx_close_notify: Counter;
  /** Pool connections closed after `idleTimeoutMs` unused (Envoy's `upstream_cx_idle_timeout`). */
  upstream_cx_idle_timeout: Counter;
  /** Connections closed on reaching `maxRequestsPerConnection` (Envoy's `upstream_cx_max_requests`). */
  upstream_cx_max_requests: Counter;
  /** Times the router or tcp_proxy found no host to use (Envoy's `upstream_cx_none_healthy`). */
  upstream_cx_none_healthy: Counter;
  /** Connections refused by the `max_connections` circuit breaker (Envoy's `upstream_cx_overflow`). */
  upstream_cx_overflow: Counter;
  /**
   * Bytes received from upstream connections, counted as they arrive or at close (Envoy's
   * `upstream_cx_rx_bytes_total`).
   */
  upstream_cx_rx_bytes_total: Counter;
  /** Bytes sent on upstream connections, counted as written or at close (Envoy's `upstream_cx_tx_bytes_total`). */
  upstream_cx_tx_bytes_total: Counter;
  /** Requests placed on a pool connection (Envoy's `upstream_rq_total`). */
  upstream_rq_total: Counter;
  /** Requests in flight on pool connections (Envoy's `upstream_rq_active`). */
  upstream_rq_active: Gauge;
  /** Upstream requests whose response completed (Envoy's `upstream_rq_completed`); resets are not counted. */
  upstream_rq_completed: Counter;
  /** Requests that had to wait for a pool connection (Envoy's `upstream_rq_pending_total`). */
  upstream_rq_pending_total: Counter;
  /** Requests waiting for a pool connection now (Envoy's `upstream_rq_pending_active`). */
  upstream_rq_pending_active: Gauge;
  /**
   * Requests refused by `max_pending_requests` or the `max_requests` breaker (Envoy's `upstream_rq_pending_overflow`).
   */
  upstream_rq_pending_overflow: Counter;
  /** Waiting requests failed because their connection attempt failed (Envoy's `upstream_rq_pending_failure_eject`). */
  upstream_rq_pending_failure_eject: Counter;
  /**
   * Requests failed by the route `timeout`, or by a per-try (idle) timeout with no retry left (Envoy's
   * `upstream_rq_timeout`).
   */
  upstream_rq_timeout: Counter;
  /** Attempts abandoned on `per_try_timeout` (Envoy's `upstream_rq_per_try_timeout`). */
  upstream_rq_per_try_timeout: Counter;
  /** Retry attempts the router started (Envoy's `upstream_rq_retry`). */
  upstream_rq_retry: Counter;
  /** Retried requests that ended with a status below 500 (Envoy's `upstream_rq_retry_success`). */
  upstream_rq_retry_success: Counter;
  /** Retries refused by the `max_retries` breaker or retry budget (Envoy's `upstream_rq_retry_overflow`). */
  upstream_rq_retry_overflow: Counter;
  /** Requests reset by the upstream, e.g. a close mid-response (Envoy's `upstream_rq_rx_reset`). */
  upstream_rq_rx_reset: Counter;
  /** Requests Ferry reset towards the upstream (Envoy's `upstream_rq_tx_reset`). */
  upstream_rq_tx_reset: Counter;
  /** Upstream response headers with a 1xx status, counted by the router (Envoy's `upstream_rq_1xx`). */
  upstream_rq_1xx: Counter;
  /** Upstream responses with a 2xx status, counted by the router (Envoy's `upstream_rq_2xx`). */
  upstream_rq_2xx: Counter;
  /** Upstream responses with a 3xx status, counted by the router (Envoy's `upstream_rq_3xx`). */
  upstream_rq_3xx: Counter;
  /** Upstream responses with a 4xx status, counted by the router (Envoy's `upstream_rq_4xx`). */
  upstream_rq_4xx: Counter;
  /** Upstream responses with a 5xx status, counted by the router (Envoy's `upstream_rq_5xx`). */
  upstream_rq_5xx: Counter;
  /** Hosts in the cluster, healthy or not (Envoy's `membership_total`). */
  membership_total: Gauge;
  /** Hosts currently healthy (Envoy's `membership_healthy`). */
  membership_healthy: Gauge;
  /** Host-set changes: initial load, hosts added, removed or moved (Envoy's `membership_change`). */
  membership_change: Counter;
}

/** Static facts and stats of a cluster. */
export interface ClusterInfo {
  /** The cluster's `name`, as routes and tcp_proxy name it and as messages quote it. */
  readonly name: string;
  /** `connect_timeout` in ms (default 5000): pools and `Cluster.connect` fail an attempt that takes longer. */
  readonly connectTimeoutMs: number;
  /** The scope `cluster.<name>`, where pools, breakers and outlier detection create stats beyond {@link stats}. */
  readonly scope: StatsScope;
  /** The cluster's Envoy stats, created once with the cluster and shared by its pools, the router and tcp_proxy. */
  readonly stats: ClusterStats;
  /** Requests after which a pooled connection is closed (`max_requests_per_connection`); 0 = unlimited. */
  readonly maxRequestsPerConnection: number;
  /** Idle timeout of pooled upstream connections (default 1 h, as Envoy). */
  readonly idleTimeoutMs: number;
  /** Upper bound of connections per host pool (circuit breaker `max_connections`, default 1024). */
  readonly maxConnections: number;
  /** Upper bound of requests waiting for a connection (`max_pending_requests`, default 1024). */
  readonly maxPendingRequests: number;
  /** `per_connection_buffer_limit_bytes` (default 1 MiB): the high watermark of each upstream connection's output. */
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
  /** Units in use now (connections, waiting requests, requests or retries). */
  readonly count: number;
  /** True if one more unit fits under {@link max}; callers check before {@link inc}, and count an overflow if not. */
  canCreate(): boolean;
  /** Takes one unit, when the connection, request or retry starts; the caller pairs it with one {@link dec}. */
  inc(): void;
  /** Gives one unit back, when what {@link inc} counted ends. */
  dec(): void;
}

/** The circuit-breaker resources of a cluster priority. */
export interface ClusterCircuitBreakers {
  /** Open upstream connections, counted by pools and `Cluster.connect` (`max_connections`). */
  readonly connections: ResourceCounter;
  /** Requests waiting for a pool connection, counted by pools (`max_pending_requests`). */
  readonly pendingRequests: ResourceCounter;
  /** Requests in flight on pool connections, counted by pools (`max_requests`). */
  readonly requests: ResourceCounter;
  /** Retries in progress, counted by the router (`max_retries`, or the `retry_budget` limit). */
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
  /** The attempt got a response with this HTTP status (5xx and gateway errors count towards ejection). */
  putHttpResponseCode(status: number): void;
  /** The attempt's transport outcome (connect success or failure, timeout, reset), without a response status. */
  putResult(result: OutlierResult): void;
  /** The host answered with `x-envoy-immediate-health-check-fail`. */
  immediateHealthCheckFail(): void;
}

/**
 * Envoy's `HealthStatus` of an endpoint as `load_assignment` / EDS reports it. `UNHEALTHY` and `TIMEOUT` fail the
 * host (`/failed_eds_health`), `DRAINING` fails and excludes it (`/eds_status_draining`), `DEGRADED` makes it
 * degraded (`/degraded_eds_health`: used only for load the healthy hosts cannot take); the others leave it usable.
 */
export type EndpointHealthStatus = "UNKNOWN" | "HEALTHY" | "UNHEALTHY" | "DRAINING" | "TIMEOUT" | "DEGRADED";

/** Envoy's `Locality` of a group of endpoints (empty strings when not given). */
export interface Locality {
  /** `locality.region`. */
  readonly region: string;
  /** `locality.zone`. */
  readonly zone: string;
  /** `locality.sub_zone`. */
  readonly subZone: string;
}

/**
 * One `lb_endpoints` entry of a `ClusterLoadAssignment`, parsed (Envoy's `LbEndpoint`). `lib/upstream/config.ts`
 * produces this shape from `load_assignment`; xDS (EDS) will produce it from `ClusterLoadAssignment` resources.
 */
export interface LbEndpoint {
  /** IP literal (or, in DNS clusters' config, a name to resolve). */
  readonly address: string;
  /** `socket_address.port_value`. */
  readonly port: number;
  /** `endpoint.hostname` (used by `auto_host_rewrite`). */
  readonly hostname?: string;
  /** `load_balancing_weight` (1 when not given). */
  readonly weight: number;
  /** `health_status` as the control plane reports it (`UNKNOWN` when not given). */
  readonly healthStatus: EndpointHealthStatus;
  /** `metadata` as proto3 JSON (`filter_metadata` by namespace); kept on the host, compared structurally. */
  readonly metadata?: Readonly<Record<string, unknown>>;
}

/** One `endpoints` entry of a `ClusterLoadAssignment`: endpoints of one locality and priority. */
export interface LocalityLbEndpoints {
  /** Where these endpoints run, when the assignment says so. */
  readonly locality?: Locality;
  /** The `lb_endpoints` of this locality, in config order. */
  readonly endpoints: readonly LbEndpoint[];
  /** Locality weight, when set (used with `locality_weighted_lb_config`). */
  readonly weight?: number;
  /** Priority, 0 (the highest) to 128: traffic spills to the next priority as one loses healthy hosts. */
  readonly priority: number;
}

/** One upstream endpoint. */
export interface Host {
  /** Resolved IP address (or the configured one for STATIC). */
  readonly address: string;
  /** The endpoint's TCP port. */
  readonly port: number;
  /** The configured name for DNS clusters (used by `auto_host_rewrite`). */
  readonly hostname: string | undefined;
  /** `load_balancing_weight` (1 when not given), read by weighted balancers; updated in place by host-set updates. */
  readonly weight: number;
  /** `address:port` (IPv6 in brackets). */
  readonly key: string;
  /** The cluster the host belongs to (its stats, breakers and limits). */
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
  /** The downstream request's headers, for balancers that choose by them. */
  readonly downstreamHeaders?: HeaderMap;
}

/** Facts about the pooled connection a stream was placed on. */
export interface PoolReadyInfo {
  /** The host the connection goes to. */
  readonly host: Host;
  /**
   * True if the connection carried a request before and a close before any response byte means the request was not
   * processed (a keep-alive connection the upstream closed while idle): the router then re-sends it once. Ping-pong
   * pools only; multiplexed pools say false (a close there proves nothing, so retries follow the route's policy).
   */
  readonly reused: boolean;
  /** The upstream connection (for its addresses and TLS facts; the codec owns its reads and writes). */
  readonly connection: NetConnection;
}

/** Why a pool could not give a stream a connection. */
export type PoolFailureReason = "connect-failure" | "timeout" | "overflow" | "closed";

/** The pool's answer to `newStream`. */
export interface PoolCallbacks {
  /** A connection is ready: write the request on `encoder`. May be called synchronously from `newStream`. */
  onPoolReady(encoder: StreamEncoder, info: PoolReadyInfo): void;
  /**
   * No connection for this stream: `reason` says why, `detail` is a one-line message naming the cluster and host.
   * Called at most once, possibly synchronously from `newStream`; `onPoolReady` is then never called.
   */
  onPoolFailure(reason: PoolFailureReason, detail: string, host: Host): void;
}

/** A pending `newStream` that can be abandoned. */
export interface Cancellable {
  /** Withdraws the waiting stream: neither pool callback is called afterwards. Does nothing once one was. */
  cancel(): void;
}

/**
 * A per-host connection pool of one codec (Envoy's `ConnectionPool::Instance`). The cluster builds it from the
 * codec's {@link CodecFactory.poolMode}: ping-pong pools hold one stream per connection, multiplexing pools many.
 */
export interface ConnPool {
  /** The host every connection of this pool goes to. */
  readonly host: Host;
  /**
   * Places a stream on an idle connection, a new one, or a wait queue. Returns a handle to cancel while waiting,
   * or undefined if the callbacks were already called.
   */
  newStream(decoder: StreamDecoder, callbacks: PoolCallbacks): Cancellable | undefined;
  /** Stop placing streams; close connections as they go idle; `onDrained` when none are left. */
  drain(onDrained?: () => void): void;
  /** Open connections of this pool, busy or idle (connecting ones included). */
  readonly activeConnections: number;
  /** Open connections carrying no stream, ready for the next one. */
  readonly idleConnections: number;
  /** Streams waiting in the queue for a connection. */
  readonly pendingStreams: number;
}

/**
 * A cluster: hosts, a balancer, and pools. The router and tcp_proxy call `chooseHost` and then, synchronously,
 * `httpPool` / `pool` / `connect` with the host it returned. The host set may change between requests
 * (`updateHosts`, DNS refreshes); a host that stays keeps its object, pools and health state.
 */
export interface Cluster {
  /** Name, limits and stats; a CDS update replaces the whole cluster, so this never changes. */
  readonly info: ClusterInfo;
  /** Current hosts (all priorities, healthy or not). */
  readonly hosts: readonly Host[];
  /** Picks a host, or undefined if none is available. */
  chooseHost(ctx?: LbContext): Host | undefined;
  /**
   * The pool of a host for the cluster's HTTP codec (created on first use); with `use_downstream_protocol_config`, by
   * `downstreamProtocol` (`"HTTP/2"` → HTTP/2, anything else HTTP/1.1). `ioEngine`: that of the downstream
   * connection the stream comes from, whose event loop the pool's connections then share (see {@link IoEngine}).
   */
  httpPool(host: Host, downstreamProtocol?: string, ioEngine?: IoEngine): ConnPool;
  /**
   * The pool of a host for `codec` (created on first use; one per host, codec and `ioEngine`). The implementation
   * follows the codec's `poolMode`; throws if the cluster has no pool for that mode.
   */
  pool(host: Host, codec: CodecFactory, ioEngine?: IoEngine): ConnPool;
  /**
   * Opens a raw TCP connection to a host (for tcp_proxy), honouring `connect_timeout`, on `ioEngine` (the downstream
   * connection's) where it can.
   */
  connect(host: Host, ioEngine?: IoEngine): Promise<NetConnection>;
  /**
   * Applies a new endpoint list (every priority), as EDS delivers it or a CDS update of `load_assignment` carries it.
   * Hosts are matched by `address:port`: a host that stays keeps its object, pools, connections, active
   * health-check and outlier-detection state (weight, metadata, locality and health status are updated in place);
   * a new host is added (pools are created on first use); a removed host's pools drain (in-flight requests finish,
   * connections close as they go idle) and the balancer no longer picks it. A host that changes priority stays the
   * same host.
   *
   * Control plane only: throws, changing nothing, if the cluster's type finds its hosts itself (STRICT_DNS,
   * LOGICAL_DNS) or the list is invalid (a priority above 128, a name where an IP address is needed).
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
  /** The live map of clusters by name, for admin output and config checks; CDS adds and removes entries. */
  readonly clusters: ReadonlyMap<string, Cluster>;
}
