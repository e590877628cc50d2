/**
 * {@link ClusterImpl}: one cluster — its info and stats, its hosts, its load balancer, its pools (one per host and
 * codec), and raw TCP connections for tcp_proxy.
 *
 * How hosts are found is the cluster type's job (`cluster_types.ts`: STATIC, STRICT_DNS, LOGICAL_DNS, registered
 * factories). Every host list, from a DNS answer or from {@link ClusterImpl.updateHosts}, goes through one diffing
 * routine (Envoy's `updateDynamicHostList`): hosts are matched by `address:port`; a host that stays keeps its
 * object, pools, connections, active health-check session and outlier-detection state, with weight, metadata,
 * locality and health status updated in place; new hosts are added (their pools are created on first use, and
 * with `slow_start_config` they ramp up); removed hosts leave the balancer at once and their pools drain (in-flight
 * requests finish, connections close as they go idle). The balancer rebuilds lazily on the next pick.
 *
 * Pools: {@link ClusterImpl.pool} keeps one pool per (host, codec), built by the pool factory registered for the
 * codec's `poolMode`; {@link ClusterImpl.httpPool} is the pool of the cluster's default HTTP codec. With
 * `auto_config`, that pool is a `MixedConnPool` (HTTP/1.1 or HTTP/2 per host, by TLS ALPN).
 *
 * @module
 */
import type { CodecFactory, CodecOptions } from "../api/codec.ts";
import { ProxyError } from "../api/errors.ts";
import type { IoEngine, NetConnection } from "../api/network.ts";
import type { Counter, Gauge, StatsScope } from "../api/stats.ts";
import type {
  Cluster,
  ClusterInfo,
  ClusterStats,
  Host,
  HostMonitor,
  LbContext,
  LocalityLbEndpoints,
} from "../api/upstream.ts";
import { type DiscoveryStats, type HostDiscovery, type HostSpec, lookupClusterType } from "./cluster_types.ts";
import type { ClusterConfig, LoadAssignmentPolicy, LocalityConfig, ThresholdsConfig } from "./config.ts";
import { connectHost, type Connector, errorText, isConnectTimeout } from "./connect.ts";
import { type DnsResolver, systemResolver } from "./dns.ts";
import { HealthChecker } from "./health_check.ts";
import { HostImpl, hostKey } from "./host.ts";
import { OutlierDetector } from "./outlier.ts";
import { type LoadBalancer, lookupLoadBalancer } from "./lb/mod.ts";
import { AUTO_ALPN_PROTOCOLS } from "./mixed_pool.ts";
import { createMixedConnPool, type UpstreamConnPool } from "./pool_factory.ts";
import { createUpstreamRegistries, type UpstreamRegistries } from "./registries.ts";
import { type ClusterResources, createResources } from "./resources.ts";
import { createClusterStats } from "./stats.ts";
import { createLazyHttp2Stats } from "../observe/http2_stats.ts";
import { SslStats } from "../tls/stats.ts";
import { tlsConnector } from "../tls/upstream.ts";
import { epollAvailable } from "../network/epoll.ts";

/** Pools by host, then by codec. */
type PoolMap = Map<Host, Map<CodecFactory, UpstreamConnPool>>;

/** {@link ClusterInfo} plus the parsed config and the circuit-breaker resources. */
export class ClusterInfoImpl implements ClusterInfo {
  readonly name: string;
  readonly connectTimeoutMs: number;
  readonly scope: StatsScope;
  readonly stats: ClusterStats;
  readonly maxRequestsPerConnection: number;
  readonly idleTimeoutMs: number;
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly perConnectionBufferLimitBytes: number;
  readonly circuitBreakers: ClusterResources;
  /** The config the cluster was built with (its endpoints may have been updated since: `ClusterImpl.endpoints`). */
  readonly config: ClusterConfig;
  /** Circuit breakers of the DEFAULT priority (shared by all hosts' pools). */
  readonly resources: ClusterResources;
  /** Circuit breakers of the HIGH priority. */
  readonly highResources: ClusterResources;
  /** Options for the upstream codecs (`max_headers_count`, `http2_protocol_options`, the `http2.*` stats). */
  readonly codecOptions: CodecOptions;

  constructor(config: ClusterConfig, root: StatsScope) {
    this.config = config;
    this.name = config.name;
    this.connectTimeoutMs = config.connectTimeoutMs;
    this.scope = root.scope(`cluster.${config.name}`);
    this.stats = createClusterStats(this.scope);
    this.maxRequestsPerConnection = config.maxRequestsPerConnection;
    this.idleTimeoutMs = config.idleTimeoutMs;
    this.maxConnections = config.circuitBreakers.DEFAULT.maxConnections;
    this.maxPendingRequests = config.circuitBreakers.DEFAULT.maxPendingRequests;
    this.perConnectionBufferLimitBytes = config.perConnectionBufferLimitBytes;
    this.resources = createResources(config.circuitBreakers.DEFAULT, this.scope, "default");
    this.highResources = createResources(config.circuitBreakers.HIGH, this.scope, "high");
    this.circuitBreakers = this.resources;
    const codecOptions: CodecOptions = {
      http2: config.http2,
      http2Stats: createLazyHttp2Stats(this.scope.scope("http2")),
    };
    if (config.maxHeadersCount !== undefined) codecOptions.maxHeadersCount = config.maxHeadersCount;
    this.codecOptions = codecOptions;
  }
}

/** Looks codecs up by name (the codec registry, `lib/config/registry.ts`). */
export interface CodecLookup {
  byName(name: string): CodecFactory | undefined;
}

/** Services a cluster needs; all optional except stats. */
export interface ClusterOptions {
  /** The root stats scope (the cluster uses `cluster.<name>`). */
  stats: StatsScope;
  /** The default HTTP codec for `httpPool` and HTTP health checks (`codecs/http1`); wins over `codecs`. */
  httpCodec?: CodecFactory | undefined;
  /** Codecs by name: the default HTTP codec is the one named by the cluster's upstream protocol (`http1`). */
  codecs?: CodecLookup | undefined;
  /** Cluster types, load balancers and pools; default: the built-ins (a cluster manager shares one set). */
  registries?: UpstreamRegistries | undefined;
  connect?: Connector | undefined;
  resolver?: DnsResolver | undefined;
  /** Warnings (DNS failures). Default `console.warn`. */
  log?: ((message: string) => void) | undefined;
  /** For the load balancer; injectable for tests. */
  random?: (() => number) | undefined;
  /** True for clusters added after start-up (CDS, admin); shown by `describe`. */
  addedViaApi?: boolean | undefined;
}

/** One host in {@link ClusterDescription}. */
export interface HostDescription {
  address: string;
  port: number;
  hostname: string;
  weight: number;
  healthy: boolean;
  /** Envoy's `health_flags`: "healthy", or flags such as "/failed_eds_health". */
  healthFlags: string;
  locality: LocalityConfig;
  priority: number;
  rqActive: number;
  rqTotal: number;
  rqError: number;
  rqSuccess: number;
  rqTimeout: number;
  cxActive: number;
  cxTotal: number;
  cxConnectFail: number;
}

/** What `/clusters` prints about one cluster. */
export interface ClusterDescription {
  name: string;
  type: ClusterConfig["type"];
  lbPolicy: ClusterConfig["lbPolicy"];
  addedViaApi: boolean;
  circuitBreakers: { DEFAULT: ThresholdsConfig; HIGH: ThresholdsConfig };
  hosts: HostDescription[];
}

/** A cluster; see the module doc. */
export class ClusterImpl implements Cluster {
  readonly info: ClusterInfoImpl;
  #config: ClusterConfig;
  #endpoints: readonly LocalityLbEndpoints[];
  #addedViaApi: boolean;
  #hosts: HostImpl[] = [];
  /** Current hosts, for membership checks. */
  #members = new Set<HostImpl>();
  /** Matching identity of each current host (`address:port`, or the cluster type's own id). */
  #ids = new Map<HostImpl, string>();
  /**
   * Current hosts by matching identity, kept across updates so that a push costs O(its endpoints), not a rebuilt
   * index: the first host of each id, and the others for ids listed more than once (rare).
   */
  #byId = new Map<string, HostImpl>();
  #dupes = new Map<string, HostImpl[]>();
  /** True while `#setHosts` applies a list (host health changes then defer the gauges to its end). */
  #applying = false;
  /** False until the first host list was applied (which always counts as a membership change). */
  #hostsSet = false;
  #version = 0;
  #lb: LoadBalancer;
  /** Pools by host and codec, for streams of epoll-engine downstream connections and of none (see `pool`). */
  #pools: PoolMap = new Map();
  /** The same for streams of downstream connections on Deno's runtime (`Deno.Conn`, native TLS). */
  #runtimePools: PoolMap = new Map();
  /** Both, for what applies to every pool (host removal, drain, shutdown). */
  readonly #poolMaps: readonly PoolMap[] = [this.#pools, this.#runtimePools];
  /** Pools draining after their host was removed, ejected or replaced; closed by `shutdown`. */
  #drainingPools = new Set<UpstreamConnPool>();
  #registries: UpstreamRegistries;
  #httpCodec: CodecFactory | undefined;
  #downstreamHttp2: CodecFactory | undefined;
  #connect: Connector;
  /** The connector of the HTTP pools: `#connect`, offering ALPN h2 and http/1.1 with `auto_config`. */
  #poolConnect: Connector;
  /** `#poolConnect` on the runtime's engine, for {@link #runtimePools}. */
  #runtimePoolConnect: Connector;
  /** With `auto_config` (and a TLS transport socket): the HTTP/2 codec of the default codec's mixed pools. */
  #autoHttp2: CodecFactory | undefined;
  #discovery: HostDiscovery;
  #initialized: Promise<void> | undefined;
  /** Set by `drain` (the cluster was replaced or removed): new pools drain after their first use. */
  #draining = false;
  #shutdown = false;
  #panic: Counter;
  #discoveryStats: DiscoveryStats;
  /** `update_no_rebuild`, `update_rejected` and the membership gauges Envoy has beyond {@link ClusterStats}. */
  #noRebuild: Counter;
  #rejected: Counter;
  #membershipDegraded: Gauge;
  #membershipExcluded: Gauge;
  /** `ClusterLoadAssignment.policy` of the endpoint list applied last. */
  #policy: LoadAssignmentPolicy;
  /** True once an endpoint list came through {@link updateHosts} (EDS) rather than from the config. */
  #pushed = false;
  #hc: HealthChecker | undefined;
  #outlier: OutlierDetector | undefined;

  constructor(config: ClusterConfig, options: ClusterOptions) {
    this.#config = config;
    this.#endpoints = config.localities;
    this.#policy = {
      overprovisioningFactor: config.overprovisioningFactor,
      weightedPriorityHealth: config.weightedPriorityHealth,
    };
    this.info = new ClusterInfoImpl(config, options.stats);
    this.#addedViaApi = options.addedViaApi ?? false;
    this.#registries = options.registries ?? createUpstreamRegistries();
    const clusterType = lookupClusterType(this.#registries.clusterTypes, config.type, `${config.path}.type`);
    const lbFactory = lookupLoadBalancer(this.#registries.loadBalancers, config.lbPolicy, `${config.path}.lb_policy`);
    // `downstream` (use_downstream_protocol_config): HTTP/1.1 by default and for health checks, HTTP/2 for HTTP/2
    // requests.
    // `auto` (auto_config): HTTP/1.1 for health checks, and for a pool's hosts until ALPN chooses otherwise.
    const proto = config.httpProtocol === "downstream" || config.httpProtocol === "auto"
      ? "http1"
      : config.httpProtocol;
    this.#httpCodec = options.httpCodec ?? options.codecs?.byName(proto);
    if (config.httpProtocol === "downstream") this.#downstreamHttp2 = options.codecs?.byName("http2");
    this.#connect = options.connect ?? connectHost;
    this.#poolConnect = this.#connect;
    if (config.transportSocket) {
      const tcp = this.#connect;
      const sslStats = new SslStats(this.info.scope);
      this.#connect = tlsConnector(tcp, config.transportSocket, sslStats);
      this.#poolConnect = this.#connect;
      if (config.httpProtocol === "auto") {
        this.#autoHttp2 = options.codecs?.byName("http2");
        // Only the HTTP pools offer h2 (Envoy's ALPN fallback is a pool's transport socket option): health checks
        // and tcp_proxy connections keep the context's own offer.
        this.#poolConnect = tlsConnector(tcp, config.transportSocket, sslStats, { alpnFallback: AUTO_ALPN_PROTOCOLS });
      }
    }
    const poolConnect = this.#poolConnect;
    const runtimePoolConnect: Connector = (h, o) => poolConnect(h, { ...o, ioEngine: "runtime" });
    this.#runtimePoolConnect = runtimePoolConnect;
    const log = options.log ?? ((m: string) => console.warn(m));
    const scope = this.info.scope;
    const discoveryStats = {
      attempt: scope.counter("update_attempt"),
      success: scope.counter("update_success"),
      failure: scope.counter("update_failure"),
    };
    this.#discoveryStats = discoveryStats;
    this.#panic = scope.counter("lb_healthy_panic");
    this.#noRebuild = scope.counter("update_no_rebuild");
    this.#rejected = scope.counter("update_rejected");
    this.#membershipDegraded = scope.gauge("membership_degraded");
    this.#membershipExcluded = scope.gauge("membership_excluded");
    const hcConfig = config.healthChecks[0];
    if (hcConfig !== undefined) {
      this.#hc = new HealthChecker(hcConfig, {
        name: config.name,
        scope,
        hasTraffic: () => this.info.stats.upstream_cx_total.value > 0,
      }, {
        connect: this.#connect,
        httpCodec: this.#httpCodec,
        grpcCodec: options.codecs?.byName("http2"),
        ...(options.random ? { random: options.random } : {}),
        onHostHealthChange: (h, healthy) => {
          if (healthy && config.slowStart !== undefined) h.slowStartSinceMs = performance.now();
        },
        onHostCheckSuccess: (h) => {
          if (config.outlierDetection?.successfulActiveHealthCheckUnejectHost) this.#outlier?.uneject(h);
        },
      });
    }
    if (config.outlierDetection !== undefined) {
      this.#outlier = new OutlierDetector(config.outlierDetection, config.name, scope, {
        ...(options.random ? { random: options.random } : {}),
        // An ejected host's connections drain: in-flight requests finish, nothing new is placed on them.
        onEjectionChange: (h, ejected) => {
          if (ejected) this.#dropPools(h);
        },
      });
    }
    this.#lb = lbFactory.create(config, {
      source: this,
      slowStart: config.slowStart,
      panicThreshold: config.healthyPanicThreshold,
      onPanic: () => this.#panic.inc(),
      localityWeighted: config.localityWeightedLb,
      ...(options.random ? { random: options.random } : {}),
    });
    this.#discovery = clusterType.create(config, {
      clusterName: config.name,
      resolver: options.resolver ?? systemResolver,
      log,
      stats: discoveryStats,
      setHosts: (hosts) => this.#setHosts(hosts),
    });
  }

  get name(): string {
    return this.info.name;
  }

  /** The config the cluster was built with, or last updated with by `ClusterManagerImpl.addOrUpdate`. */
  get config(): ClusterConfig {
    return this.#config;
  }

  /** The endpoint list applied last: `load_assignment` of the config, or the last {@link updateHosts}. */
  get endpoints(): readonly LocalityLbEndpoints[] {
    return this.#endpoints;
  }

  /** True for clusters added or updated after start-up (CDS, admin). */
  get addedViaApi(): boolean {
    return this.#addedViaApi;
  }

  /** True if the cluster's type takes endpoint lists ({@link updateHosts}): STATIC (and EDS), not the DNS types. */
  get takesEndpointUpdates(): boolean {
    return this.#discovery.updateEndpoints !== undefined;
  }

  /** Current hosts. */
  get hosts(): readonly HostImpl[] {
    return this.#hosts;
  }

  /** Bumped on every membership, priority, weight or health change, and on a change of the assignment policy. */
  get hostsVersion(): number {
    return this.#version;
  }

  /** `overprovisioning_factor` of the endpoint list applied last (percent; default 140). */
  get overprovisioningFactor(): number {
    return this.#policy.overprovisioningFactor;
  }

  /** `weighted_priority_health` of the endpoint list applied last. */
  get weightedPriorityHealth(): boolean {
    return this.#policy.weightedPriorityHealth;
  }

  /** The `ClusterLoadAssignment.policy` of the endpoint list applied last. */
  get policy(): LoadAssignmentPolicy {
    return this.#policy;
  }

  /**
   * The endpoint list and policy last pushed through {@link updateHosts} (EDS), or undefined if none was: what a
   * cluster that replaces this one starts with (`ClusterManagerImpl.addOrUpdate`), as Envoy keeps serving an EDS
   * cluster's hosts until the new cluster's first assignment.
   */
  get pushedAssignment(): { endpoints: readonly LocalityLbEndpoints[]; policy: LoadAssignmentPolicy } | undefined {
    return this.#pushed ? { endpoints: this.#endpoints, policy: this.#policy } : undefined;
  }

  /**
   * Picks a host with the cluster's balancer. Like Envoy, the caller (router, tcp_proxy) counts
   * `upstream_cx_none_healthy` when this returns undefined.
   */
  chooseHost(ctx?: LbContext): Host | undefined {
    return this.#lb.chooseHost(ctx);
  }

  /** The pool of `host` for the cluster's default HTTP codec; throws if the cluster has none. */
  httpPool(host: Host, downstreamProtocol?: string, ioEngine?: IoEngine): UpstreamConnPool {
    const codec = this.#downstreamHttp2 !== undefined && downstreamProtocol === "HTTP/2"
      ? this.#downstreamHttp2
      : this.#httpCodec;
    if (codec === undefined) {
      throw new Error(`cluster "${this.name}": no HTTP codec was given to the cluster manager`);
    }
    return this.pool(host, codec, ioEngine);
  }

  /**
   * The pool of `host` for `codec`, created on first use by the pool factory of the codec's `poolMode`. A pool
   * that is draining (its host was ejected) is replaced by a fresh one. A host that is no longer in the cluster
   * (removed by an update after the caller chose it), or any host of a draining cluster (a retry on a cluster that
   * CDS replaced meanwhile), gets a pool that drains once the caller's stream is placed.
   *
   * Streams of downstream connections on Deno's runtime (`ioEngine` "runtime") get pools of their own, whose
   * connections are `Deno.Conn`s too (see {@link IoEngine}); where the epoll engine does not run, every connection is
   * the runtime's and they share one pool.
   */
  pool(host: Host, codec: CodecFactory, ioEngine?: IoEngine): UpstreamConnPool {
    const runtime = ioEngine === "runtime" && epollAvailable();
    const pools = runtime ? this.#runtimePools : this.#pools;
    let byCodec = pools.get(host);
    const existing = byCodec?.get(codec);
    if (existing !== undefined && !existing.draining) return existing;
    const factory = this.#registries.connPools.byName(codec.poolMode);
    if (factory === undefined) {
      throw new Error(
        `cluster "${this.name}": no connection pool for pool mode "${codec.poolMode}" of codec "${codec.name}"` +
          ` (known: ${this.#registries.connPools.names.join(", ")})`,
      );
    }
    const params = {
      codec,
      codecOptions: this.info.codecOptions,
      resources: this.info.resources,
      connect: runtime ? this.#runtimePoolConnect : this.#poolConnect,
    };
    // auto_config: the default codec's pool serves each host over HTTP/1.1 or HTTP/2, as ALPN chose.
    const pool = this.#autoHttp2 !== undefined && codec === this.#httpCodec
      ? createMixedConnPool(host, params, this.#autoHttp2)
      : factory.create(host, params);
    if (existing !== undefined) this.#drainingPools.add(existing);
    if (this.#shutdown) {
      // After shutdown: the caller's stream fails with "closed" rather than opening a connection nobody closes.
      pool.close();
      return pool;
    }
    if (this.#draining || !(host instanceof HostImpl && this.#members.has(host))) {
      // Not ours (any more): serve the stream the caller places now, then let the connection go.
      this.#drainingPools.add(pool);
      queueMicrotask(() => pool.drain(() => this.#drainingPools.delete(pool)));
      return pool;
    }
    if (byCodec === undefined) {
      byCodec = new Map();
      pools.set(host, byCodec);
    }
    byCodec.set(codec, pool);
    return pool;
  }

  /** The default HTTP codec's pool of each host that has one, for epoll-engine streams (for admin and tests). */
  get pools(): ReadonlyMap<Host, UpstreamConnPool> {
    const out = new Map<Host, UpstreamConnPool>();
    const codec = this.#httpCodec;
    if (codec === undefined) return out;
    for (const [h, byCodec] of this.#pools) {
      const p = byCodec.get(codec);
      if (p !== undefined) out.set(h, p);
    }
    return out;
  }

  /** Every pool of a host for epoll-engine streams, one per codec used with it so far. */
  poolsOf(host: Host): ReadonlyMap<CodecFactory, UpstreamConnPool> {
    return this.#pools.get(host) ?? new Map();
  }

  /** Opens a raw connection to a host (tcp_proxy), on the engine of the downstream connection it serves. */
  async connect(host: Host, ioEngine?: IoEngine): Promise<NetConnection> {
    const info = this.info;
    const stats = info.stats;
    const res = info.resources;
    if (!res.connections.canCreate()) {
      stats.upstream_cx_overflow.inc();
      throw new ProxyError(
        "Overflow",
        `cluster "${this.name}": too many connections (max_connections ${res.connections.max})`,
        { source: "upstream" },
      );
    }
    const hc = host instanceof HostImpl ? host.counters : undefined;
    res.connections.inc();
    stats.upstream_cx_total.inc();
    stats.upstream_cx_active.inc();
    if (hc) {
      hc.cxTotal++;
      hc.cxActive++;
    }
    let conn: NetConnection;
    try {
      conn = await this.#connect(host, {
        timeoutMs: info.connectTimeoutMs,
        highWatermark: info.perConnectionBufferLimitBytes,
        ioEngine,
      });
    } catch (e) {
      res.connections.dec();
      stats.upstream_cx_active.dec();
      stats.upstream_cx_connect_fail.inc();
      if (hc) {
        hc.cxActive--;
        hc.cxConnectFail++;
      }
      const timeout = isConnectTimeout(e);
      if (timeout) stats.upstream_cx_connect_timeout.inc();
      throw new ProxyError(
        timeout ? "ConnectTimeout" : "ConnectRefused",
        `cluster "${this.name}": connect to ${host.key} failed: ${errorText(e)}`,
        { source: "upstream", retryable: true, cause: e },
      );
    }
    conn.done.then(() => {
      res.connections.dec();
      stats.upstream_cx_active.dec();
      stats.upstream_cx_destroy.inc();
      stats.upstream_cx_rx_bytes_total.inc(conn.bytesRead);
      stats.upstream_cx_tx_bytes_total.inc(conn.bytesWritten);
      if (hc) hc.cxActive--;
    });
    return conn;
  }

  /**
   * Runs the first discovery (DNS answers) and starts refreshing; resolves at once for STATIC. Never rejects: a
   * failed resolution leaves the cluster without hosts and retries at the refresh rate. With active health checks,
   * resolves once every host has had its first result (Envoy's cluster warming).
   */
  initialize(): Promise<void> {
    if (this.#initialized) return this.#initialized;
    const first = this.#discovery.initialize();
    const hc = this.#hc;
    this.#initialized = hc === undefined ? first : first.then(() => {
      if (this.#shutdown) return;
      hc.start(this.#hosts);
      return hc.firstRound();
    });
    return this.#initialized;
  }

  /** The active health checker, if configured (tests, admin). */
  get healthChecker(): HealthChecker | undefined {
    return this.#hc;
  }

  /** The outlier detector, if configured (tests, admin). */
  get outlierDetector(): OutlierDetector | undefined {
    return this.#outlier;
  }

  /** Re-resolves now (tests and admin); resolves when done. */
  refresh(): Promise<void> {
    return this.#discovery.refresh();
  }

  /**
   * Applies a new endpoint list (see `Cluster.updateHosts` in `lib/api/upstream.ts`), with the
   * `ClusterLoadAssignment.policy` it came with (default: Envoy's, overprovisioning factor 140). Counts
   * `update_attempt`, then `update_success` (and `update_no_rebuild` if nothing changed) or `update_rejected`.
   * Throws, changing nothing, if the cluster's type finds its hosts itself (STRICT_DNS, LOGICAL_DNS) or the list is
   * invalid.
   */
  updateHosts(endpoints: readonly LocalityLbEndpoints[], policy?: Partial<LoadAssignmentPolicy>): void {
    this.#applyEndpoints(endpoints, policy);
    this.#pushed = true;
  }

  #applyEndpoints(endpoints: readonly LocalityLbEndpoints[], policy: Partial<LoadAssignmentPolicy> | undefined): void {
    const d = this.#discovery;
    if (d.updateEndpoints === undefined) {
      throw new Error(
        `cluster "${this.name}": a ${this.#config.type} cluster finds its hosts itself and takes no endpoint updates`,
      );
    }
    this.#discoveryStats.attempt.inc();
    const before = this.#version;
    try {
      d.updateEndpoints(endpoints);
    } catch (e) {
      this.#rejected.inc();
      throw e;
    }
    this.#endpoints = endpoints;
    const next: LoadAssignmentPolicy = {
      overprovisioningFactor: policy?.overprovisioningFactor ?? 140,
      weightedPriorityHealth: policy?.weightedPriorityHealth ?? false,
    };
    const p = this.#policy;
    if (
      next.overprovisioningFactor !== p.overprovisioningFactor ||
      next.weightedPriorityHealth !== p.weightedPriorityHealth
    ) {
      this.#policy = next;
      this.#version++;
    }
    this.#discoveryStats.success.inc();
    if (this.#version === before) this.#noRebuild.inc();
  }

  /**
   * Takes `config`, which differs from the current one only in `load_assignment` (the cluster manager checked),
   * by updating the hosts: the cluster object, its pools and health state stay.
   */
  updateConfig(config: ClusterConfig): void {
    if (config.name !== this.name) {
      throw new Error(`cluster "${this.name}": cannot take the config of "${config.name}"`);
    }
    this.#applyEndpoints(config.localities, config);
    this.#config = config;
    this.#addedViaApi = true;
  }

  /**
   * The one host-diffing routine (Envoy's `updateDynamicHostList`): see the module doc. Hosts are matched by id in
   * order, so duplicate endpoints keep their own hosts.
   */
  #setHosts(specs: readonly HostSpec[]): void {
    if (this.#shutdown) return;
    this.#applying = true;
    try {
      this.#applyHosts(specs);
    } finally {
      this.#applying = false;
    }
  }

  #applyHosts(specs: readonly HostSpec[]): void {
    const old = this.#hosts;
    const next: HostImpl[] = [];
    const added: HostImpl[] = [];
    /** Hosts claimed by this list (the members of the new set). */
    const members = new Set<HostImpl>();
    let changed = false;
    let moved = false;
    for (const s of specs) {
      const id = s.id ?? hostKey(s.address, s.port);
      let h = this.#byId.get(id);
      if (h !== undefined && members.has(h)) h = this.#dupes.get(id)?.find((x) => !members.has(x));
      if (h === undefined) {
        const n = this.#newHost(s);
        this.#ids.set(n, id);
        next.push(n);
        added.push(n);
        members.add(n);
        continue;
      }
      members.add(h);
      if (h.address !== s.address) {
        // LOGICAL_DNS: new connections go to the new address, pooled ones stay.
        h.setAddress(s.address);
        moved = true;
      }
      const priority = h.priority;
      if (h.update(s)) {
        changed = true;
        // Envoy sees a priority move as a removal from one priority and an addition to another.
        if (h.priority !== priority) moved = true;
      }
      next.push(h);
    }
    const removed = old.length === 0 ? [] : old.filter((h) => !members.has(h));
    const reordered = !changed && next.some((h, i) => h !== old[i]);
    if (this.#hostsSet && added.length === 0 && removed.length === 0 && !changed && !moved && !reordered) return;
    const first = !this.#hostsSet;
    this.#hostsSet = true;
    this.#hosts = next;
    this.#members = members;
    for (const h of removed) this.#unindex(h);
    for (const h of added) this.#index(h);
    this.#hc?.onHostsChanged(added, removed);
    for (const h of removed) this.#outlier?.removeHost(h);
    this.#version++;
    this.#updateMembershipGauges();
    const stats = this.info.stats;
    if (first || added.length > 0 || removed.length > 0 || moved) stats.membership_change.inc();
    for (const h of removed) this.#dropPools(h);
  }

  #index(h: HostImpl): void {
    const id = this.#ids.get(h)!;
    if (!this.#byId.has(id)) {
      this.#byId.set(id, h);
      return;
    }
    const list = this.#dupes.get(id);
    if (list === undefined) this.#dupes.set(id, [h]);
    else list.push(h);
  }

  #unindex(h: HostImpl): void {
    const id = this.#ids.get(h)!;
    this.#ids.delete(h);
    const list = this.#dupes.get(id);
    if (this.#byId.get(id) === h) {
      const promoted = list?.shift();
      if (promoted === undefined) this.#byId.delete(id);
      else this.#byId.set(id, promoted);
    } else if (list !== undefined) {
      const i = list.indexOf(h);
      if (i >= 0) list.splice(i, 1);
    }
    if (list !== undefined && list.length === 0) this.#dupes.delete(id);
  }

  /** Drains every pool of a host (removed or ejected); each leaves its pool map once drained. */
  #dropPools(h: Host): void {
    for (const pools of this.#poolMaps) {
      const byCodec = pools.get(h);
      if (byCodec === undefined) continue;
      for (const [codec, pool] of byCodec) {
        if (pool.draining) continue;
        this.#drainingPools.add(pool);
        pool.drain(() => {
          this.#drainingPools.delete(pool);
          const now = pools.get(h);
          if (now?.get(codec) !== pool) return;
          now.delete(codec);
          if (now.size === 0) pools.delete(h);
        });
      }
    }
  }

  #newHost(s: HostSpec): HostImpl {
    const h = new HostImpl(this.info, s.address, s.port, {
      hostname: s.hostname,
      weight: s.weight,
      healthStatus: s.healthStatus,
      locality: s.locality,
      metadata: s.metadata,
      priority: s.priority,
      localityWeight: s.localityWeight,
      onHealthChange: () => this.#onHealthChange(),
      // Hosts present when the cluster starts take full load at once; later ones ramp up (slow_start_config).
      slowStartSinceMs: this.#config.slowStart !== undefined && this.#version > 0 ? performance.now() : undefined,
      // Envoy: hosts of a cluster with active health checking start failed until their first check passes.
      initialFlags: this.#hc !== undefined ? HealthChecker.INITIAL_FLAGS : 0,
    });
    h.monitor = this.#monitorFor(h);
    return h;
  }

  #monitorFor(h: HostImpl): HostMonitor | undefined {
    const om = this.#outlier?.addHost(h);
    const hc = this.#hc;
    if (om === undefined && hc === undefined) return undefined;
    if (om !== undefined && hc === undefined) return om;
    return {
      putHttpResponseCode: (s) => om?.putHttpResponseCode(s),
      putResult: (r) => om?.putResult(r),
      immediateHealthCheckFail: () => hc?.immediateFail(h),
    };
  }

  #onHealthChange(): void {
    this.#version++;
    // Inside a host-set update the gauges are recomputed once at its end, not once per changed host.
    if (!this.#applying) this.#updateMembershipGauges();
  }

  /** `membership_total`, `_healthy`, `_degraded` and `_excluded` (Envoy's, over all priorities). */
  #updateMembershipGauges(): void {
    let healthy = 0, degraded = 0, excluded = 0;
    for (const h of this.#hosts) {
      if (h.healthy) healthy++;
      else if (h.degraded) degraded++;
      if (h.excluded) excluded++;
    }
    const stats = this.info.stats;
    stats.membership_total.set(this.#hosts.length);
    stats.membership_healthy.set(healthy);
    this.#membershipDegraded.set(degraded);
    this.#membershipExcluded.set(excluded);
  }

  /** Drains every pool (for removal or update); `onDrained` when all are empty. Stops discovery. */
  drain(onDrained?: () => void): void {
    this.#draining = true;
    this.#discovery.stop();
    this.#hc?.stop();
    this.#outlier?.stop();
    const pools = [...this.#drainingPools];
    for (const map of this.#poolMaps) {
      for (const byCodec of map.values()) for (const p of byCodec.values()) if (!p.draining) pools.push(p);
    }
    let left = pools.length;
    if (left === 0) {
      onDrained?.();
      return;
    }
    for (const p of pools) {
      p.drain(() => {
        if (--left === 0) onDrained?.();
      });
    }
  }

  /** Stops timers and closes every pool now. */
  shutdown(): void {
    this.#shutdown = true;
    this.#discovery.stop();
    this.#hc?.stop();
    this.#outlier?.stop();
    for (const map of this.#poolMaps) {
      for (const byCodec of map.values()) for (const p of byCodec.values()) p.close();
      map.clear();
    }
    for (const p of this.#drainingPools) p.close();
    this.#drainingPools.clear();
  }

  /** Admin view of the cluster (`/clusters`). */
  describe(): ClusterDescription {
    const config = this.#config;
    return {
      name: this.name,
      type: config.type,
      lbPolicy: config.lbPolicy,
      addedViaApi: this.#addedViaApi,
      circuitBreakers: { DEFAULT: config.circuitBreakers.DEFAULT, HIGH: config.circuitBreakers.HIGH },
      hosts: this.#hosts.map((h) => ({
        address: h.address,
        port: h.port,
        hostname: h.hostname ?? "",
        weight: h.weight,
        healthy: h.healthy,
        healthFlags: h.healthFlagsText,
        locality: h.locality,
        priority: h.priority,
        rqActive: h.activeRequests,
        rqTotal: h.counters.rqTotal,
        rqError: h.counters.rqError,
        rqSuccess: h.counters.rqSuccess,
        rqTimeout: h.counters.rqTimeout,
        cxActive: h.counters.cxActive,
        cxTotal: h.counters.cxTotal,
        cxConnectFail: h.counters.cxConnectFail,
      })),
    };
  }
}
