/**
 * {@link ClusterImpl}: one cluster — its info and stats, its hosts (static, or resolved by DNS), its load
 * balancer, its per-host HTTP pools, and raw TCP connections for tcp_proxy.
 *
 * DNS clusters (see {@link DnsResolver}):
 * - `STRICT_DNS` resolves every endpoint name every `dns_refresh_rate` (or the record TTL with `respect_dns_ttl`);
 *   every address becomes a host with the endpoint's weight. Hosts whose address stays keep their pools; removed
 *   hosts' pools drain.
 * - `LOGICAL_DNS` keeps one host and moves it to the first address of each answer: new connections go to the new
 *   address, pooled connections stay.
 * - A failed resolution is logged and counted (`update_failure`); the hosts of the previous answer stay (none before
 *   the first success).
 *
 * @module
 */
import type { CodecFactory, CodecOptions } from "../api/codec.ts";
import { ProxyError } from "../api/errors.ts";
import type { NetConnection } from "../api/network.ts";
import type { Counter, StatsScope } from "../api/stats.ts";
import type { Cluster, ClusterInfo, ClusterStats, ConnPool, Host, LbContext } from "../api/upstream.ts";
import type { ClusterConfig, EndpointConfig, LocalityConfig, ThresholdsConfig } from "./config.ts";
import { isIpAddress } from "./config.ts";
import { connectHost, type Connector, errorText, isConnectTimeout } from "./connect.ts";
import { type DnsResolver, systemResolver } from "./dns.ts";
import { HealthChecker } from "./health_check.ts";
import { HostImpl } from "./host.ts";
import { OutlierDetector } from "./outlier.ts";
import type { HostMonitor } from "../api/upstream.ts";
import { Http1ConnPool } from "./http1_pool.ts";
import { createLoadBalancer, type LoadBalancer } from "./lb/mod.ts";
import { type ClusterResources, createResources } from "./resources.ts";
import { createClusterStats } from "./stats.ts";
import { SslStats } from "../tls/stats.ts";
import { tlsConnector } from "../tls/upstream.ts";

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
  readonly config: ClusterConfig;
  /** Circuit breakers of the DEFAULT priority (shared by all hosts' pools). */
  readonly resources: ClusterResources;
  /** Circuit breakers of the HIGH priority. */
  readonly highResources: ClusterResources;
  /** Options for the upstream codecs (`max_headers_count`). */
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
    this.codecOptions = config.maxHeadersCount !== undefined ? { maxHeadersCount: config.maxHeadersCount } : {};
  }
}

/** Services a cluster needs; all optional except stats. */
export interface ClusterOptions {
  /** The root stats scope (the cluster uses `cluster.<name>`). */
  stats: StatsScope;
  /** The HTTP/1 codec for `httpPool` (`codecs/http1`). */
  httpCodec?: CodecFactory | undefined;
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

const NO_LOCALITY: LocalityConfig = { region: "", zone: "", subZone: "" };

interface EndpointSlot {
  readonly endpoint: EndpointConfig;
  readonly locality: LocalityConfig;
  /** Hosts of this endpoint from the last successful resolution. */
  hosts: HostImpl[];
}

/** A cluster; see the module doc. */
export class ClusterImpl implements Cluster {
  readonly info: ClusterInfoImpl;
  readonly config: ClusterConfig;
  readonly addedViaApi: boolean;
  #hosts: HostImpl[] = [];
  #version = 0;
  #lb: LoadBalancer;
  #pools = new Map<Host, Http1ConnPool>();
  #slots: EndpointSlot[];
  #httpCodec: CodecFactory | undefined;
  #connect: Connector;
  #resolver: DnsResolver;
  #log: (message: string) => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #initialized: Promise<void> | undefined;
  #shutdown = false;
  /** Set by `drain`: no more DNS refreshes. */
  #draining = false;
  #updateAttempt: Counter;
  #updateSuccess: Counter;
  #updateFailure: Counter;
  #panic: Counter;
  #hc: HealthChecker | undefined;
  #outlier: OutlierDetector | undefined;

  constructor(config: ClusterConfig, options: ClusterOptions) {
    this.config = config;
    this.info = new ClusterInfoImpl(config, options.stats);
    this.addedViaApi = options.addedViaApi ?? false;
    this.#httpCodec = options.httpCodec;
    this.#connect = options.connect ?? connectHost;
    if (config.transportSocket) {
      this.#connect = tlsConnector(this.#connect, config.transportSocket, new SslStats(this.info.scope));
    }
    this.#resolver = options.resolver ?? systemResolver;
    this.#log = options.log ?? ((m) => console.warn(m));
    const scope = this.info.scope;
    this.#updateAttempt = scope.counter("update_attempt");
    this.#updateSuccess = scope.counter("update_success");
    this.#updateFailure = scope.counter("update_failure");
    this.#panic = scope.counter("lb_healthy_panic");
    const hcConfig = config.healthChecks[0];
    if (hcConfig !== undefined) {
      this.#hc = new HealthChecker(hcConfig, {
        name: config.name,
        scope,
        hasTraffic: () => this.info.stats.upstream_cx_total.value > 0,
      }, {
        connect: this.#connect,
        httpCodec: this.#httpCodec,
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
          if (ejected) this.#dropPool(h);
        },
      });
    }
    this.#lb = createLoadBalancer(config.lbPolicy, this, {
      leastRequest: config.leastRequest,
      ringHash: config.ringHash,
      maglev: config.maglev,
      slowStart: config.slowStart,
      panicThreshold: config.healthyPanicThreshold,
      onPanic: () => this.#panic.inc(),
      ...(options.random ? { random: options.random } : {}),
    });
    this.#slots = [];
    for (const l of config.localities) {
      for (const e of l.endpoints) this.#slots.push({ endpoint: e, locality: l.locality ?? NO_LOCALITY, hosts: [] });
    }
    if (config.type === "STATIC") {
      for (const s of this.#slots) s.hosts = [this.#newHost(s, s.endpoint.address)];
      this.#rebuild();
    } else {
      // IP literals in DNS clusters need no lookup.
      let any = false;
      for (const s of this.#slots) {
        if (isIpAddress(s.endpoint.address)) {
          s.hosts = [this.#newHost(s, s.endpoint.address)];
          any = true;
        }
      }
      if (any) this.#rebuild();
    }
  }

  get name(): string {
    return this.info.name;
  }

  /** Current hosts. */
  get hosts(): readonly HostImpl[] {
    return this.#hosts;
  }

  /** Bumped on every membership or health change. */
  get hostsVersion(): number {
    return this.#version;
  }

  /**
   * Picks a host with the cluster's balancer. Like Envoy, the caller (router, tcp_proxy) counts
   * `upstream_cx_none_healthy` when this returns undefined.
   */
  chooseHost(ctx?: LbContext): Host | undefined {
    return this.#lb.chooseHost(ctx);
  }

  httpPool(host: Host): ConnPool {
    let pool = this.#pools.get(host);
    if (pool !== undefined) return pool;
    if (this.#httpCodec === undefined) {
      throw new Error(`cluster "${this.name}": no HTTP codec was given to the cluster manager`);
    }
    pool = new Http1ConnPool(host, {
      codec: this.#httpCodec,
      codecOptions: this.info.codecOptions,
      resources: this.info.resources,
      connect: this.#connect,
    });
    this.#pools.set(host, pool);
    return pool;
  }

  /** The pools created so far (for admin and tests). */
  get pools(): ReadonlyMap<Host, Http1ConnPool> {
    return this.#pools;
  }

  async connect(host: Host): Promise<NetConnection> {
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
   * Resolves DNS clusters for the first time and starts the refresh timers; resolves at once for STATIC.
   * Never rejects: a failed resolution leaves the cluster without hosts and retries at the refresh rate.
   */
  initialize(): Promise<void> {
    if (this.#initialized) return this.#initialized;
    let first: Promise<void>;
    if (this.config.type === "STATIC" || this.#slots.every((s) => isIpAddress(s.endpoint.address))) {
      first = Promise.resolve();
    } else {
      first = this.#resolveAll();
    }
    const hc = this.#hc;
    // Like Envoy's cluster warming: with active health checks, ready once every host has had its first result.
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
    return this.#resolveAll();
  }

  async #resolveAll(): Promise<void> {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const cfg = this.config;
    let minTtl = Infinity;
    const dnsSlots = this.#slots.filter((s) => !isIpAddress(s.endpoint.address));
    await Promise.all(dnsSlots.map(async (slot) => {
      const name = slot.endpoint.address;
      this.#updateAttempt.inc();
      try {
        const r = await this.#resolver(name, cfg.dnsLookupFamily, { withTtl: cfg.respectDnsTtl });
        if (this.#shutdown) return;
        this.#updateSuccess.inc();
        if (r.ttlMs !== undefined && r.ttlMs > 0) minTtl = Math.min(minTtl, r.ttlMs);
        this.#apply(slot, r.addresses);
      } catch (e) {
        this.#updateFailure.inc();
        this.#log(`cluster "${this.name}": DNS resolution of ${JSON.stringify(name)} failed: ${errorText(e)}`);
      }
    }));
    if (this.#shutdown || this.#draining) return;
    const next = cfg.respectDnsTtl && minTtl !== Infinity ? minTtl : cfg.dnsRefreshRateMs;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#resolveAll();
    }, next);
    Deno.unrefTimer(this.#timer);
  }

  #apply(slot: EndpointSlot, addresses: readonly string[]): void {
    if (this.config.type === "LOGICAL_DNS") {
      const first = addresses[0];
      if (first === undefined) return;
      const h = slot.hosts[0];
      if (h === undefined) {
        slot.hosts = [this.#newHost(slot, first)];
        this.#rebuild();
      } else if (h.address !== first) {
        h.setAddress(first);
        this.info.stats.membership_change.inc();
      }
      return;
    }
    const old = new Map(slot.hosts.map((h) => [h.address, h]));
    const next = addresses.map((a) => old.get(a) ?? this.#newHost(slot, a));
    const same = next.length === slot.hosts.length && next.every((h, i) => h === slot.hosts[i]);
    if (same) return;
    const keep = new Set(next);
    const removed = slot.hosts.filter((h) => !keep.has(h));
    slot.hosts = next;
    this.#rebuild();
    for (const h of removed) this.#dropPool(h);
  }

  #dropPool(h: Host): void {
    const pool = this.#pools.get(h);
    if (pool === undefined) return;
    pool.drain(() => {
      if (this.#pools.get(h) === pool) this.#pools.delete(h);
    });
  }

  #newHost(slot: EndpointSlot, address: string): HostImpl {
    const e = slot.endpoint;
    const hostname = e.hostname ?? (isIpAddress(e.address) ? undefined : e.address);
    const h = new HostImpl(this.info, address, e.port, {
      hostname,
      weight: e.weight,
      healthStatus: e.healthStatus,
      locality: slot.locality,
      onHealthChange: () => this.#onHealthChange(),
      // Hosts present when the cluster starts take full load at once; later ones ramp up (slow_start_config).
      slowStartSinceMs: this.config.slowStart !== undefined && this.#version > 0 ? performance.now() : undefined,
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
    this.info.stats.membership_healthy.set(this.#hosts.filter((h) => h.healthy).length);
  }

  #rebuild(): void {
    const hosts: HostImpl[] = [];
    for (const s of this.#slots) hosts.push(...s.hosts);
    const before = new Set(this.#hosts);
    const now = new Set(hosts);
    const added = hosts.filter((h) => !before.has(h));
    const removed = this.#hosts.filter((h) => !now.has(h));
    this.#hosts = hosts;
    this.#hc?.onHostsChanged(added, removed);
    for (const h of removed) this.#outlier?.removeHost(h);
    this.#version++;
    const stats = this.info.stats;
    stats.membership_total.set(hosts.length);
    stats.membership_healthy.set(hosts.filter((h) => h.healthy).length);
    stats.membership_change.inc();
  }

  /** Drains every pool (for removal or update); `onDrained` when all are empty. Stops DNS refresh. */
  drain(onDrained?: () => void): void {
    this.#draining = true;
    this.#stopTimer();
    this.#hc?.stop();
    this.#outlier?.stop();
    const pools = [...this.#pools.values()];
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
    this.#stopTimer();
    this.#hc?.stop();
    this.#outlier?.stop();
    for (const p of this.#pools.values()) p.close();
    this.#pools.clear();
  }

  #stopTimer(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  /** Admin view of the cluster (`/clusters`). */
  describe(): ClusterDescription {
    return {
      name: this.name,
      type: this.config.type,
      lbPolicy: this.config.lbPolicy,
      addedViaApi: this.addedViaApi,
      circuitBreakers: { DEFAULT: this.config.circuitBreakers.DEFAULT, HIGH: this.config.circuitBreakers.HIGH },
      hosts: this.#hosts.map((h) => ({
        address: h.address,
        port: h.port,
        hostname: h.hostname ?? "",
        weight: h.weight,
        healthy: h.healthy,
        healthFlags: healthFlags(h),
        locality: h.locality,
        priority: 0,
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

function healthFlags(h: HostImpl): string {
  return h.healthFlagsText;
}
