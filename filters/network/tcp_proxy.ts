/**
 * `envoy.filters.network.tcp_proxy`: the terminal network filter that pipes a downstream connection to an upstream
 * host of a cluster.
 *
 * Behaviour, as Envoy's:
 * - On a new connection, pick the cluster (`cluster`, or `weighted_clusters` by weight) and a host, and connect.
 *   Downstream reading is disabled until the upstream connects; bytes that arrived before are queued and forwarded.
 *   A failed connect retries on another host up to `max_connect_attempts`, then closes the downstream (flag `UF`;
 *   `UH` when there is no host, `NC` when the cluster does not exist, `UO` on circuit-breaker overflow).
 * - Bytes flow both ways with backpressure: when one side's output passes its high watermark, reading from the
 *   other side stops until it drains.
 * - Half-close: a FIN from one side is passed on as a FIN (`closeWrite`, after queued bytes); when both directions
 *   have ended, both connections close. A full close of one side closes the other after flushing its queue
 *   (`upstream_flush_*` counts an upstream still flushing after the downstream went away).
 * - `idle_timeout` (default 1 h, `0s` disables) closes both sides when no byte moved either way for that long.
 *
 * Stats `tcp.<stat_prefix>.*` use Envoy's names. Each connection is access-logged once, when both sides are closed.
 *
 * @module
 */
import { ConfigError } from "../../lib/api/errors.ts";
import type { ProxyError } from "../../lib/api/errors.ts";
import type {
  NetConnection,
  NetworkFilter,
  NetworkFilterCallbacks,
  NetworkFilterContext,
  NetworkFilterFactory,
  NetworkFilterFactoryCb,
  NetworkFilterStatus,
} from "../../lib/api/network.ts";
import type { Counter, Gauge, StatsScope } from "../../lib/api/stats.ts";
import { type AccessLogger, newStreamInfo, type ResponseFlag, type StreamInfo } from "../../lib/api/stream_info.ts";
import type { Cluster, ClusterManager, Host } from "../../lib/api/upstream.ts";
import { joinPath, ObjReader } from "../../lib/config/reader.ts";
import { type AccessLogConfig, createAccessLogger, parseAccessLogs } from "../../lib/observe/access_log.ts";
import { approxNow } from "../../lib/network/clock.ts";
import { schedule, type WheelTimer } from "../../lib/network/timer_wheel.ts";

/** The typed-config URL of the TCP proxy. */
export const TCP_PROXY_TYPE = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy";

/** One of `weighted_clusters.clusters`. */
export interface TcpProxyClusterWeight {
  readonly name: string;
  readonly weight: number;
}

/** The validated TcpProxy config. */
export interface TcpProxyConfig {
  /** The field path of the typed_config, for errors found after parsing (an unknown cluster). */
  readonly path: string;
  readonly statPrefix: string;
  /** Set when `cluster` is configured. */
  readonly cluster?: string;
  /** Set when `weighted_clusters` is configured. */
  readonly weightedClusters?: readonly TcpProxyClusterWeight[];
  /** 0 disables. */
  readonly idleTimeoutMs: number;
  readonly maxConnectAttempts: number;
  readonly accessLogs: readonly AccessLogConfig[];
}

/** Parses Envoy's `TcpProxy` (typed_config without `@type`). Throws {@link ConfigError} naming the path. */
export function parseTcpProxyConfig(raw: unknown, path: string): TcpProxyConfig {
  const o = new ObjReader(raw, path).envoyMessage("envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy");
  o.skip("@type");
  const statPrefix = o.str("stat_prefix", { required: true });
  const which = o.oneOf(["cluster", "weighted_clusters"] as const, { required: true });
  let cluster: string | undefined;
  let weightedClusters: TcpProxyClusterWeight[] | undefined;
  if (which === "cluster") cluster = o.str("cluster", { required: true });
  else {
    const w = o.obj("weighted_clusters")!;
    weightedClusters = w.objs("clusters", (c) => {
      c.envoyMessage("envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.WeightedCluster.ClusterWeight");
      const name = c.str("name", { required: true });
      const weight = c.int("weight", { required: true, min: 1 })!;
      return { name, weight };
    }, { nonEmpty: true });
    w.done();
  }
  const idleTimeoutMs = o.durationMs("idle_timeout") ?? 3600_000;
  const maxConnectAttempts = o.int("max_connect_attempts", { min: 1 }) ?? 1;
  const accessLogs = parseAccessLogs(o.value("access_log"), o.at("access_log"));
  o.done();
  if (statPrefix === "") throw new ConfigError(o.at("stat_prefix"), "must not be empty");
  return {
    path,
    statPrefix,
    idleTimeoutMs,
    maxConnectAttempts,
    accessLogs,
    ...(cluster !== undefined ? { cluster } : {}),
    ...(weightedClusters !== undefined ? { weightedClusters } : {}),
  };
}

/** Envoy's TCP proxy stats (`tcp.<stat_prefix>.<name>`). */
export interface TcpProxyStats {
  downstream_cx_total: Counter;
  downstream_cx_no_route: Counter;
  downstream_cx_tx_bytes_total: Counter;
  downstream_cx_rx_bytes_total: Counter;
  downstream_cx_rx_bytes_buffered: Gauge;
  downstream_flow_control_paused_reading_total: Counter;
  downstream_flow_control_resumed_reading_total: Counter;
  idle_timeout: Counter;
  upstream_flush_total: Counter;
  upstream_flush_active: Gauge;
}

/** Creates the TCP proxy stats in `scope` (which is `tcp.<stat_prefix>`). */
export function createTcpProxyStats(scope: StatsScope): TcpProxyStats {
  return {
    downstream_cx_total: scope.counter("downstream_cx_total"),
    downstream_cx_no_route: scope.counter("downstream_cx_no_route"),
    downstream_cx_tx_bytes_total: scope.counter("downstream_cx_tx_bytes_total"),
    downstream_cx_rx_bytes_total: scope.counter("downstream_cx_rx_bytes_total"),
    downstream_cx_rx_bytes_buffered: scope.gauge("downstream_cx_rx_bytes_buffered"),
    downstream_flow_control_paused_reading_total: scope.counter("downstream_flow_control_paused_reading_total"),
    downstream_flow_control_resumed_reading_total: scope.counter("downstream_flow_control_resumed_reading_total"),
    idle_timeout: scope.counter("idle_timeout"),
    upstream_flush_total: scope.counter("upstream_flush_total"),
    upstream_flush_active: scope.gauge("upstream_flush_active"),
  };
}

/**
 * What every connection of one filter chain config shares, built once by {@link createTcpProxyFactory}: the
 * stats, the access loggers, the sum of the cluster weights and the cluster manager.
 */
export interface TcpProxyShared {
  readonly config: TcpProxyConfig;
  readonly stats: TcpProxyStats;
  readonly loggers: readonly AccessLogger[];
  readonly totalWeight: number;
  readonly clusterManager: ClusterManager;
}

/**
 * The config-time step of the TCP proxy: builds the state shared by every connection of `config` under `context`
 * once, and returns the per-connection creator.
 */
export function createTcpProxyFactory(config: TcpProxyConfig, context: NetworkFilterContext): NetworkFilterFactoryCb {
  const shared: TcpProxyShared = {
    config,
    stats: createTcpProxyStats(context.stats.scope(`tcp.${config.statPrefix}`)),
    loggers: config.accessLogs.map((a) => createAccessLogger(a)),
    totalWeight: (config.weightedClusters ?? []).reduce((n, c) => n + c.weight, 0),
    clusterManager: context.clusterManager,
  };
  return (callbacks) => new TcpProxyFilter(shared, callbacks);
}

/** The per-connection TCP proxy; see the module doc. */
export class TcpProxyFilter implements NetworkFilter {
  /** What is known about this connection, for access logs. */
  readonly info: StreamInfo;
  readonly #shared: TcpProxyShared;
  readonly #down: NetConnection;
  #cluster: Cluster | undefined;
  #up: NetConnection | undefined;
  #started = false;
  #connecting = false;
  /** Downstream bytes that arrived before the upstream connected. */
  #queued: Uint8Array[] = [];
  #queuedBytes = 0;
  #downEof = false;
  #upEof = false;
  #downClosed = false;
  #upClosed = false;
  #logged = false;
  /** Reasons we disabled downstream reading (each toggles `readDisable` once). */
  #downPausedForConnect = false;
  #downPausedForUpstream = false;
  #upPausedForDownstream = false;
  #attempts = 0;
  #avoid = new Set<Host>();
  #idleTimer: WheelTimer | undefined;
  #lastActivity = 0;

  constructor(shared: TcpProxyShared, callbacks: NetworkFilterCallbacks) {
    this.#shared = shared;
    this.#down = callbacks.connection;
    const c = this.#down;
    this.info = newStreamInfo(`${c.remoteAddress}:${c.remotePort}`, `${c.localAddress}:${c.localPort}`, {
      connectionId: c.id,
    });
    // TLS facts of a TLS listener chain, for %DOWNSTREAM_TLS_VERSION% and friends.
    if (c.tls) {
      const t: { version?: string; cipher?: string; sni?: string } = {};
      if (c.tls.version !== undefined) t.version = c.tls.version;
      if (c.tls.cipher !== undefined) t.cipher = c.tls.cipher;
      if (c.tls.sni !== undefined) t.sni = c.tls.sni;
      this.info.tls = t;
    }
  }

  onNewConnection(): NetworkFilterStatus {
    this.#start();
    return "stop";
  }

  onData(data: Uint8Array, endStream: boolean): NetworkFilterStatus {
    if (!this.#started) this.#start();
    const n = data.length;
    if (n > 0) {
      this.#shared.stats.downstream_cx_rx_bytes_total.inc(n);
      this.info.bytesReceived += n;
      this.#lastActivity = approxNow();
    }
    const up = this.#up;
    if (up === undefined) {
      if (n > 0 && this.#connecting) {
        this.#queued.push(data.slice());
        this.#queuedBytes += n;
        this.#shared.stats.downstream_cx_rx_bytes_buffered.inc(n);
      }
      if (endStream) this.#downEof = true;
      return "stop";
    }
    if (n > 0) up.write(data);
    if (endStream && !this.#downEof) {
      this.#downEof = true;
      up.closeWrite();
      this.#checkBothEnded();
    }
    return "stop";
  }

  onClose(_reason: string): void {
    this.#downClosed = true;
    this.#clearIdleTimer();
    const up = this.#up;
    if (up !== undefined && !up.closed) {
      if (up.bufferedAmount > 0) {
        // The downstream is gone but the upstream still has bytes to write: let it flush, then close.
        const stats = this.#shared.stats;
        stats.upstream_flush_total.inc();
        stats.upstream_flush_active.inc();
        up.done.then(() => stats.upstream_flush_active.dec());
        up.close({ flush: true, reason: "downstream closed" });
      } else up.close({ reason: "downstream closed" });
    }
    this.#maybeLog();
  }

  onWriteBlocked(): void {
    // Downstream output is full: stop reading upstream.
    if (this.#upPausedForDownstream) return;
    this.#upPausedForDownstream = true;
    this.#up?.readDisable(true);
  }

  onWriteDrained(): void {
    if (!this.#upPausedForDownstream) return;
    this.#upPausedForDownstream = false;
    this.#up?.readDisable(false);
  }

  /** Graceful drain: a TCP proxy has no message boundary, so connections are left to finish by themselves. */
  drain(): void {}

  #start(): void {
    if (this.#started) return;
    this.#started = true;
    const stats = this.#shared.stats;
    stats.downstream_cx_total.inc();
    const name = this.#pickClusterName();
    const cluster = this.#shared.clusterManager.get(name);
    if (cluster === undefined) {
      stats.downstream_cx_no_route.inc();
      this.#fail("NC", `cluster "${name}": not found`);
      return;
    }
    this.#cluster = cluster;
    this.info.upstreamCluster = cluster.info.name;
    this.#setDownPaused("connect", true);
    this.#connect();
  }

  #pickClusterName(): string {
    const cfg = this.#shared.config;
    if (cfg.cluster !== undefined) return cfg.cluster;
    const list = cfg.weightedClusters!;
    let r = Math.random() * this.#shared.totalWeight;
    for (const c of list) {
      if (r < c.weight) return c.name;
      r -= c.weight;
    }
    return list[list.length - 1]!.name;
  }

  #connect(): void {
    const cluster = this.#cluster!;
    const host = cluster.chooseHost(this.#avoid.size > 0 ? { avoid: this.#avoid } : undefined);
    if (host === undefined) {
      cluster.info.stats.upstream_cx_none_healthy.inc();
      this.#fail("UH", `cluster "${cluster.info.name}": no healthy upstream host`);
      return;
    }
    this.#attempts++;
    this.#connecting = true;
    this.info.upstreamHost = host.key;
    cluster.connect(host, this.#down.ioEngine).then(
      (conn) => this.#onUpstream(conn),
      (e: unknown) => this.#onConnectFailed(host, e),
    );
  }

  #onConnectFailed(host: Host, e: unknown): void {
    this.#connecting = false;
    if (this.#downClosed) {
      this.#maybeLog();
      return;
    }
    const err = e as Partial<ProxyError>;
    const msg = e instanceof Error ? e.message : String(e);
    if (err.code === "Overflow") {
      this.#fail("UO", msg);
      return;
    }
    this.info.upstreamTransportFailureReason = msg;
    if (this.#attempts < this.#shared.config.maxConnectAttempts) {
      this.#avoid.add(host);
      this.#connect();
      return;
    }
    if (this.#shared.config.maxConnectAttempts > 1) {
      this.#cluster!.info.scope.counter("upstream_cx_connect_attempts_exceeded").inc();
    }
    this.#fail("UF", msg);
  }

  #onUpstream(up: NetConnection): void {
    this.#connecting = false;
    if (this.#downClosed) {
      up.close({ reason: "downstream closed" });
      this.#maybeLog();
      return;
    }
    this.#up = up;
    this.info.upstreamLocalAddress = `${up.localAddress}:${up.localPort}`;
    const stats = this.#shared.stats;
    const down = this.#down;
    up.setHandler({
      onData: (d) => {
        const n = d.length;
        stats.downstream_cx_tx_bytes_total.inc(n);
        this.info.bytesSent += n;
        this.#lastActivity = approxNow();
        down.write(d);
      },
      onEof: () => {
        if (this.#upEof) return;
        this.#upEof = true;
        down.closeWrite();
        this.#checkBothEnded();
      },
      onClose: () => {
        this.#upClosed = true;
        if (!down.closed) down.close({ flush: true, reason: "upstream closed" });
        this.#maybeLog();
      },
      onWriteBlocked: () => this.#setDownPaused("upstream", true),
      onWriteDrained: () => this.#setDownPaused("upstream", false),
    });
    if (this.#upPausedForDownstream) up.readDisable(true);
    up.start();
    const queued = this.#queued;
    this.#queued = [];
    if (this.#queuedBytes > 0) {
      stats.downstream_cx_rx_bytes_buffered.dec(this.#queuedBytes);
      this.#queuedBytes = 0;
    }
    for (const q of queued) up.write(q);
    if (this.#downEof) {
      up.closeWrite();
      this.#checkBothEnded();
    }
    this.#lastActivity = approxNow();
    this.#armIdleTimer(this.#shared.config.idleTimeoutMs);
    this.#setDownPaused("connect", false);
  }

  #setDownPaused(why: "connect" | "upstream", pause: boolean): void {
    if (why === "connect") {
      if (this.#downPausedForConnect === pause) return;
      this.#downPausedForConnect = pause;
    } else {
      if (this.#downPausedForUpstream === pause) return;
      this.#downPausedForUpstream = pause;
      const stats = this.#shared.stats;
      if (pause) stats.downstream_flow_control_paused_reading_total.inc();
      else stats.downstream_flow_control_resumed_reading_total.inc();
    }
    this.#down.readDisable(pause);
  }

  #checkBothEnded(): void {
    if (!this.#downEof || !this.#upEof) return;
    // Both directions are done: close once the queued bytes are out.
    this.#up?.close({ flush: true, reason: "both sides ended" });
    this.#down.close({ flush: true, reason: "both sides ended" });
  }

  #armIdleTimer(ms: number): void {
    if (ms <= 0 || this.#downClosed) return;
    this.#idleTimer = schedule(Math.max(1, ms), () => this.#onIdleTimer());
  }

  #onIdleTimer(): void {
    this.#idleTimer = undefined;
    const timeout = this.#shared.config.idleTimeoutMs;
    const left = timeout - (approxNow() - this.#lastActivity);
    if (left > 1) {
      this.#armIdleTimer(left);
      return;
    }
    this.#shared.stats.idle_timeout.inc();
    this.info.connectionTerminationDetails = "idle_timeout";
    this.#up?.close({ reason: "idle timeout" });
    this.#down.close({ reason: "idle timeout" });
  }

  #clearIdleTimer(): void {
    if (this.#idleTimer !== undefined) {
      this.#idleTimer.cancel();
      this.#idleTimer = undefined;
    }
  }

  /** Ends the downstream connection without an upstream. */
  #fail(flag: ResponseFlag, detail: string): void {
    this.info.responseFlags.push(flag);
    this.info.connectionTerminationDetails = detail;
    this.#queued = [];
    if (this.#queuedBytes > 0) {
      this.#shared.stats.downstream_cx_rx_bytes_buffered.dec(this.#queuedBytes);
      this.#queuedBytes = 0;
    }
    this.#setDownPaused("connect", false);
    this.#down.close({ reason: detail });
  }

  #maybeLog(): void {
    if (this.#logged || !this.#downClosed) return;
    if (this.#up !== undefined && !this.#upClosed) return;
    if (this.#connecting) return;
    this.#logged = true;
    this.#clearIdleTimer();
    this.info.durationMs = approxNow() - this.info.startMono;
    for (const l of this.#shared.loggers) l.log(this.info);
  }
}

/** The TCP proxy network filter factory. */
export const tcpProxyFilterFactory: NetworkFilterFactory<TcpProxyConfig> = {
  name: "envoy.filters.network.tcp_proxy",
  configTypes: [TCP_PROXY_TYPE],
  terminal: true,
  parseConfig(raw, path) {
    return parseTcpProxyConfig(raw, path);
  },
  referencedClusters(config) {
    if (config.cluster !== undefined) return [{ name: config.cluster, path: joinPath(config.path, "cluster") }];
    const base = joinPath(joinPath(config.path, "weighted_clusters"), "clusters");
    return (config.weightedClusters ?? []).map((c, i) => ({ name: c.name, path: joinPath(joinPath(base, i), "name") }));
  },
  createFactory: createTcpProxyFactory,
  /** The one-step form (tests, benchmarks): one config-time step per connection, so stats are looked up anew. */
  create(config, callbacks, context) {
    return createTcpProxyFactory(config, context)(callbacks);
  },
};
