/**
 * The server: stats, clusters, listeners and admin, started from a validated bootstrap, and drained on request.
 *
 * Start-up order: clusters (first DNS resolution, bounded), then every listener binds (a listener that cannot
 * bind fails start-up with its name, and nothing is left half-open), then the admin API, then accepting.
 *
 * Listeners are owned by the {@link ListenerManager}: the bootstrap's static listeners are added through it, and
 * {@link Server.addOrUpdateListener} / {@link Server.removeListener} add, update and remove listeners at run time
 * with Envoy's LDS semantics (what xDS will call).
 *
 * @module
 */
import { ConfigError } from "../api/errors.ts";
import { type BootstrapConfig, type ListenerConfig, parseListener } from "../config/bootstrap.ts";
import { describe } from "../config/reader.ts";
import type { Registries } from "../config/registry.ts";
import { resolveSecretRefs } from "../config/secrets.ts";
import { mergeSnapshots, type StatsSnapshot, StatsStore } from "../observe/stats.ts";
import { getLogger, getLogLevel, isLogLevel, setComponentLogLevel, setLogLevel } from "../observe/log.ts";
import type { LogLevel } from "../observe/log.ts";
import { flushAccessLogs } from "../observe/access_log.ts";
import { ClusterManagerImpl } from "../upstream/cluster_manager.ts";
import { parseLoadAssignment } from "../upstream/config.ts";
import { parseRouteConfiguration, RouteConfigProviders } from "../router/mod.ts";
import { startAdmin } from "../admin/admin.ts";
import type { AdminContext, AdminServer } from "../admin/admin.ts";
import { type Listener, ListenerError } from "./listener.ts";
import { type InheritedSocket, ListenerManager, type ListenerUpdateResult } from "./listener_manager.ts";
import {
  addPerWorkerListenerStats,
  type ListenerFd,
  type WorkerConfigOp,
  type WorkerConfigResult,
  WorkerSet,
} from "./workers.ts";
import { serverRuntime } from "../runtime/mod.ts";
import { VERSION } from "../version.ts";
import { OverloadManager } from "./overload.ts";
import type { SecretManager } from "../tls/secret_manager.ts";

/** What the server holds of its xDS client (`xds/mod.ts`). */
export interface XdsHandle {
  readonly initialized: Promise<void>;
  configDump(options: { includeEds: boolean }): {
    listeners: Record<string, unknown>;
    clusters: Record<string, unknown>;
    routes: Record<string, unknown>;
    secrets: Record<string, unknown>;
    endpoints: Record<string, unknown> | undefined;
  };
  close(): void;
}

const log = getLogger("main");
const upstreamLog = getLogger("upstream");

/** Server state as Envoy reports it in `/server_info`. */
export type ServerState = "PRE_INITIALIZING" | "INITIALIZING" | "LIVE" | "DRAINING";

/** Options for {@link Server.start}. */
export interface ServerOptions {
  /** How long a graceful drain waits for in-flight requests (ms). Default 600 000 as Envoy's `--drain-time-s`. */
  readonly drainTimeMs?: number;
  /** Command-line options, echoed by `/server_info`. */
  readonly commandLine?: Record<string, unknown>;
  /** Override the admin address (tests use port 0). */
  readonly adminPort?: number;
  /** Start the admin API if the bootstrap has one (default true; worker threads pass false). */
  readonly admin?: boolean;
  /** xDS client tuning (tests shorten the reconnect backoff). */
  readonly xds?: { readonly backoffBaseMs?: number; readonly backoffMaxMs?: number };
  /** Log listener start-up at debug level (worker threads, whose listeners the main thread already announced). */
  readonly quiet?: boolean;
  /**
   * This server runs in a worker thread: no xDS client of its own (the main thread forwards what its client
   * applies) and no `server.concurrency` gauge (the admin API adds the workers' stats to the main thread's).
   */
  readonly worker?: boolean;
  /**
   * Worker threads to start (`--concurrency` − 1) from the raw bootstrap, after the listeners bind and before the
   * xDS client starts, so that every dynamic change reaches them.
   */
  readonly workers?: { readonly count: number; readonly raw: unknown; readonly logLevel: string };
  /** At a hot upgrade: the previous Ferry's sockets for a listener, if it has any (see `hot_restart.ts`). */
  readonly inheritedSocket?: (config: ListenerConfig) => InheritedSocket | undefined;
  /** At a hot upgrade: runs after the listeners are bound, before the admin API binds (the parent lets go of it). */
  readonly beforeAdmin?: () => Promise<void>;
}

/** Envoy's `ListenersConfigDump`: static listeners, and those added at run time as `dynamic_listeners`. */
function listenersConfigDump(lm: ListenerManager, xds: boolean): Record<string, unknown> {
  const entries = lm.entries;
  const dump: Record<string, unknown> = {
    "@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
    static_listeners: entries.filter((e) => !e.addedViaApi).map((e) => ({ listener: e.listener.config.raw })),
  };
  const dynamic = entries.filter((e) => e.addedViaApi).map((e) => ({
    name: e.listener.config.name,
    active_state: { listener: e.listener.config.raw, last_updated: e.lastUpdated.toISOString() },
  }));
  // With xDS, the xDS manager reports the dynamic listeners (as received, with versions and warming state).
  if (dynamic.length > 0 && !xds) dump["dynamic_listeners"] = dynamic;
  return dump;
}

/** A copy of a raw Envoy `Listener` whose `socket_address` has `port` (either JSON spelling). */
function withPort(raw: unknown, port: number): unknown {
  const o = { ...(raw as Record<string, unknown>) };
  const addr = { ...(o["address"] as Record<string, unknown>) };
  const sk = "socketAddress" in addr ? "socketAddress" : "socket_address";
  const sa = { ...(addr[sk] as Record<string, unknown>) };
  delete sa["portValue"];
  sa["port_value"] = port;
  addr[sk] = sa;
  o["address"] = addr;
  return o;
}

/** A listener manager error as the runtime API reports it: a ConfigError under the API's listener path. */
function asConfigError(e: unknown, path = API_LISTENER_PATH): Error {
  if (e instanceof ListenerError) {
    return new ConfigError(e.field ? `${path}.${e.field}` : path, e.message, { cause: e });
  }
  return e instanceof Error ? e : new Error(String(e));
}

function rawClusters(raw: Record<string, unknown>): unknown[] {
  const sr = raw["static_resources"] as Record<string, unknown> | undefined;
  const c = sr?.["clusters"];
  return Array.isArray(c) ? c : [];
}

/** Options of {@link Server.addOrUpdateListener}. */
export interface ApiListenerOptions {
  /** The field path errors name (default `listener`; xDS passes `listener "name"`). */
  readonly path?: string;
  /**
   * Reject a listener that names a cluster the server does not have (default true). LDS passes false, as Envoy:
   * clusters come and go on their own, and a route to a missing one answers 503 (`NC`).
   */
  readonly validateClusters?: boolean;
}

/** The field path the runtime API parses a listener under (`config: listener.address: ...`). */
const API_LISTENER_PATH = "listener";

/** A running Ferry. */
export class Server {
  readonly config: BootstrapConfig;
  readonly stats: StatsStore;
  readonly clusterManager: ClusterManagerImpl;
  /** The listeners: the bootstrap's static ones and those added at run time. */
  readonly listenerManager: ListenerManager;
  admin: AdminServer | undefined;
  state: ServerState = "PRE_INITIALIZING";
  #healthFailed = false;
  #drainTimeMs: number;
  #startTime = Date.now();
  /** When the first epoch started (ms since the epoch): earlier than this process after a hot upgrade. */
  originalStartTime: number = this.#startTime;
  /** `/server_info`'s `hot_restart_version` ("disabled" unless hot restart is on, see `hot_restart.ts`). */
  hotRestartVersion = "disabled";
  #commandLine: Record<string, unknown>;
  #stopped: Promise<void> | undefined;
  #resolveExit!: (code: number) => void;
  #workers: WorkerSet | undefined;
  /** Config changes posted to the workers and not yet answered by all ({@link Server.workersApplied}). */
  #forwarded: Promise<void>[] = [];
  readonly #registries: Registries;
  /** Route configurations by name, replaceable while traffic flows ({@link Server.updateRouteConfig}). */
  readonly routeConfigs: RouteConfigProviders = new RouteConfigProviders();
  /** The bootstrap's `overload_manager` for this event loop (each worker thread runs its own). */
  readonly overload: OverloadManager | undefined;
  /** Resolves with the exit code when the server has stopped (after `/quitquitquit` or a signal). */
  readonly exited: Promise<number>;
  /** The xDS client, when the bootstrap has `dynamic_resources`. */
  xds: XdsHandle | undefined;
  /**
   * Resolves when the initial dynamic configuration is in (first LDS and CDS applied and warm, or their
   * `initial_fetch_timeout`s passed); at once without `dynamic_resources`. `/ready` says LIVE only after.
   */
  initialized: Promise<void> = Promise.resolve();

  private constructor(config: BootstrapConfig, registries: Registries, options: ServerOptions) {
    this.config = config;
    this.#registries = registries;
    this.stats = new StatsStore();
    serverRuntime.configure(config.runtime);
    this.clusterManager = new ClusterManagerImpl(config.clusters, {
      stats: this.stats,
      // Each cluster speaks the protocol its config names (`http1`, `http2`), from the codec registry.
      codecs: registries.codecs,
      log: (m) => upstreamLog.warn(m),
    });
    this.#drainTimeMs = options.drainTimeMs ?? 600_000;
    this.overload = config.overloadManager
      ? new OverloadManager(config.overloadManager, { stats: this.stats })
      : undefined;
    this.listenerManager = new ListenerManager({
      ...(this.overload ? { overload: this.overload } : {}),
      stats: this.stats,
      clusterManager: this.clusterManager,
      draining: () => this.state === "DRAINING",
      drainTimeMs: this.#drainTimeMs,
      quiet: options.quiet ?? false,
      routeConfigs: this.routeConfigs,
    });
    this.#commandLine = options.commandLine ?? {};
    this.exited = new Promise((r) => this.#resolveExit = r);
  }

  /** Starts a server; throws (after cleaning up) if a listener or the admin cannot bind. */
  static async start(config: BootstrapConfig, registries: Registries, options: ServerOptions = {}): Promise<Server> {
    const s = new Server(config, registries, options);
    s.state = "INITIALIZING";
    // Once per process: the main thread has said them before its workers parse the same bootstrap.
    if (options.worker !== true) { for (const w of config.warnings) log.warn(w); }
    await s.clusterManager.initialize();
    const lm = s.listenerManager;
    // Kept for listeners xDS adds while initializing too; `hot_restart.ts` clears it when it hands over.
    lm.inheritedSocket = options.inheritedSocket;
    try {
      for (const lc of config.listeners) lm.addOrUpdate(lc, { addedViaApi: false });
      await options.beforeAdmin?.();
      if (config.admin && options.admin !== false) {
        const a = config.admin.address;
        s.admin = await startAdmin({
          address: a.address,
          port: options.adminPort ?? a.port,
          context: s.#adminContext(),
        });
      }
    } catch (e) {
      lm.closeAll();
      s.clusterManager.shutdown();
      throw e;
    }
    s.overload?.start();
    lm.startAccepting();
    if (s.admin) log.info(`admin listening on http://${config.admin!.address.address}:${s.admin.port}/`);
    if (options.worker !== true) s.stats.gauge("server.concurrency").set(1 + (options.workers?.count ?? 0));
    if (options.workers && options.workers.count > 0) {
      try {
        await s.startWorkers(options.workers.count, options.workers.raw, { logLevel: options.workers.logLevel });
      } catch (e) {
        await s.drainAndStop(0);
        throw e;
      }
    }
    if (config.dynamicResources && options.worker !== true) {
      // Loaded only when used: the protobuf definitions cost start-up time and memory.
      const { startXds } = await import("../../xds/mod.ts");
      try {
        s.xds = await startXds(s, config.dynamicResources, options.xds ?? {});
      } catch (e) {
        lm.closeAll();
        s.clusterManager.shutdown();
        await s.admin?.close();
        throw e;
      }
      // LIVE once the workers serve the initial config too (a warm-up that timed out is forwarded unACKed).
      s.initialized = s.xds.initialized.then(() => s.workersApplied()).then(() => {
        if (s.state === "INITIALIZING") s.state = "LIVE";
      });
      return s;
    }
    s.state = "LIVE";
    return s;
  }

  /**
   * Runs `n` more copies of the listeners in worker threads (SO_REUSEPORT shares the ports); the admin API then
   * merges their stats and drains them with this server. Throws if a worker fails to start.
   */
  async startWorkers(n: number, raw: unknown, options: { logLevel: string }): Promise<void> {
    if (n <= 0) return;
    // As Envoy: not ready (`/ready` 503 INITIALIZING) until every worker serves the listeners.
    const wasLive = this.state === "LIVE";
    if (wasLive) this.state = "INITIALIZING";
    try {
      this.#workers = await WorkerSet.start(n, this.#withBoundPorts(raw), {
        drainTimeMs: this.#drainTimeMs,
        logLevel: options.logLevel,
      });
      serverRuntime.onChange(() => this.#workers?.setRuntimeState(serverRuntime.state()));
    } finally {
      if (wasLive && this.state === "INITIALIZING") this.state = "LIVE";
    }
    this.stats.gauge("server.concurrency").set(n + 1);
    log.info(`${n} worker thread(s) started; ${n + 1} event loops serve the listeners`);
  }

  /** The raw bootstrap with each static listener on port 0 given the port this thread bound (SO_REUSEPORT). */
  #withBoundPorts(raw: unknown): unknown {
    const sr = (raw as Record<string, unknown> | undefined)?.["static_resources"] as Record<string, unknown>;
    const ls = sr?.["listeners"];
    if (!Array.isArray(ls)) return raw;
    const listeners = ls.map((l, i) => {
      const lc = this.config.listeners[i];
      const bound = lc && this.listenerManager.get(lc.name);
      return lc && bound && lc.address.port === 0 ? withPort(l, bound.port) : l;
    });
    return { ...(raw as Record<string, unknown>), static_resources: { ...sr, listeners } };
  }

  /** How many event loops serve the listeners: the main thread and its workers. */
  get concurrency(): number {
    return 1 + (this.#workers?.size ?? 0);
  }

  /**
   * Forwards one dynamic config change this thread has applied to every worker thread: posted now, so workers
   * apply changes in the order of the calls. A worker that fails to apply it is logged at error level with its
   * number (the main thread keeps the change: it is what the control plane sent) and counted in
   * `server.worker_config_update_failed`. No-op without workers.
   */
  forwardToWorkers(op: WorkerConfigOp): void {
    if (!this.#workers) return;
    const what = op.kind === "hosts" ? `endpoints of cluster "${op.cluster}"` : `${op.kind} "${op.name}"`;
    this.#forwarded.push(this.#workers.applyConfig(op).then((results) => this.#reportWorkerFailures(what, results)));
  }

  #reportWorkerFailures(what: string, results: readonly WorkerConfigResult[]): void {
    for (const r of results) {
      if (r.error === undefined) continue;
      this.stats.counter("server.worker_config_update_failed").inc();
      log.error(`worker ${r.worker}: ${what} applied on the main thread but failed on the worker: ${r.error}`);
    }
  }

  /** Resolves when every worker has answered every change forwarded so far (the xDS client ACKs after). */
  async workersApplied(): Promise<void> {
    while (this.#forwarded.length > 0) {
      const pending = this.#forwarded;
      this.#forwarded = [];
      await Promise.all(pending);
    }
  }

  /**
   * Each event loop's listening sockets, per listener: this thread's first, then each worker's. With SO_REUSEPORT
   * every loop has its own socket (and its own accept queue), so a hot upgrade must hand all of them over, N per
   * listener, or connections queued on a worker's socket are lost when it closes. The descriptors are this
   * process's: worker threads share its descriptor table.
   */
  async listenerFds(): Promise<ListenerFd[][]> {
    const own = this.listeners.map((l) => ({ listener: l.config.name, address: l.address, fds: l.fds }));
    return [own, ...(await this.#workers?.listenerFds() ?? [])];
  }

  /**
   * Binds the admin API again after {@link Server.admin} was closed for a hot upgrade whose new process then failed
   * (`hot_restart.ts`), on the configured address. Does nothing if it is open or the bootstrap has none.
   */
  async reopenAdmin(): Promise<void> {
    if (this.admin || !this.config.admin || this.state === "DRAINING") return;
    const a = this.config.admin.address;
    this.admin = await startAdmin({ address: a.address, port: a.port, context: this.#adminContext() });
    log.info(`admin listening again on http://${a.address}:${this.admin.port}/`);
  }

  /** Every event loop's stats added up, as `/stats` shows them (what a hot upgrade carries to the next Ferry). */
  async statsSnapshot(): Promise<StatsSnapshot> {
    const st = await this.#adminContext().stats();
    return st instanceof StatsStore ? st.snapshot() : st;
  }

  /** Stops accepting on every listener; with `graceful`, idle connections are closed and the rest drain. */
  stopAccepting(graceful: boolean): void {
    this.state = "DRAINING";
    this.listenerManager.stopAccepting();
    if (graceful) this.listenerManager.drainConnections();
    this.#workers?.stopAccepting(graceful);
  }

  /** The active listeners, in the order they were added (a snapshot: updates replace listeners). */
  get listeners(): Listener[] {
    return this.listenerManager.list;
  }

  /** The listener with this name. */
  listener(name: string): Listener | undefined {
    return this.listenerManager.get(name);
  }

  /**
   * Adds a listener, or updates the one of the same name, from one Envoy v3 `Listener` object (its JSON mapping,
   * read by the bootstrap's parser; secret references resolve against the bootstrap's static secrets). As Envoy's
   * LDS: new connections get the new config, the old config's connections drain and are closed after the drain
   * time, the bound socket is kept when the address is unchanged, and the same config again changes nothing. With
   * worker threads, each worker applies it too before this resolves (a worker that fails to is logged and counted as
   * in {@link Server.forwardToWorkers}: this thread serves the change). Rejects with a one-line {@link ConfigError} naming the field path
   * (`config: listener.address: ...`), leaving the running config as it was, if the listener is invalid, names an
   * unknown cluster, cannot be bound, or is one of the bootstrap's static listeners.
   */
  async addOrUpdateListener(raw: unknown, options: ApiListenerOptions = {}): Promise<ListenerUpdateResult> {
    const path = options.path ?? API_LISTENER_PATH;
    const config = this.#parseApiListener(raw, path, options.validateClusters ?? true);
    let result: ListenerUpdateResult;
    try {
      result = this.listenerManager.addOrUpdate(config);
    } catch (e) {
      throw asConfigError(e, path);
    }
    if (result !== "unchanged" && this.#workers) {
      // Port 0: the workers bind the port the main thread got (SO_REUSEPORT), not ports of their own.
      const port = this.listenerManager.get(config.name)!.port;
      const results = await this.#workers.addOrUpdateListener(
        config.address.port === 0 ? withPort(raw, port) : raw,
        path,
      );
      this.#reportWorkerFailures(`listener "${config.name}"`, results);
    }
    return result;
  }

  /**
   * Removes a listener added through {@link Server.addOrUpdateListener}: it stops accepting, its connections drain
   * and are closed after the drain time. Resolves false if there is no listener by that name; rejects with a
   * {@link ConfigError} for one of the bootstrap's static listeners.
   */
  async removeListener(name: string): Promise<boolean> {
    let removed: boolean;
    try {
      removed = this.listenerManager.remove(name);
    } catch (e) {
      throw asConfigError(e);
    }
    if (removed && this.#workers) {
      this.#reportWorkerFailures(`removal of listener "${name}"`, await this.#workers.removeListener(name));
    }
    return removed;
  }

  /**
   * Replaces a route configuration, from one Envoy v3 `RouteConfiguration` object, in every connection manager
   * whose route configuration has its `name` (as RDS does): streams that begin afterwards route with it, streams in
   * flight finish on the configuration they began with. Returns how many connection managers took it; throws a
   * one-line {@link ConfigError} naming the field path (`config: route_config.virtual_hosts[0]...`) for an invalid
   * configuration, or when no connection manager uses that name, and nothing changes then. Worker threads
   * (`--concurrency`) get it next (see {@link Server.forwardToWorkers}); the count is this thread's.
   */
  updateRouteConfig(raw: unknown): number {
    const config = parseRouteConfiguration(raw, "route_config");
    const n = this.routeConfigs.update(config);
    if (n === 0) {
      throw new ConfigError(
        "route_config.name",
        `no connection manager serves a route configuration named ${JSON.stringify(config.name)}`,
      );
    }
    this.forwardToWorkers({ kind: "route", name: config.name, raw, path: "route_config" });
    return n;
  }

  /**
   * Replaces the hosts of a cluster from one Envoy v3 `ClusterLoadAssignment` object (as EDS does): added hosts get
   * pools, removed hosts drain, unchanged hosts keep their pooled connections and health state. Throws a one-line
   * {@link ConfigError} naming the field path, the unknown cluster, or a cluster that finds its hosts itself (DNS);
   * nothing changes then. Worker threads (`--concurrency`) get it next (see {@link Server.forwardToWorkers}).
   */
  updateClusterHosts(clusterName: string, raw: unknown): void {
    const path = "cluster_load_assignment";
    const cluster = this.clusterManager.get(clusterName);
    if (cluster === undefined) throw new ConfigError(path, `cluster ${JSON.stringify(clusterName)}: no such cluster`);
    const la = parseLoadAssignment(raw, path, cluster.config.type);
    try {
      this.clusterManager.updateHosts(clusterName, la.localities, la);
    } catch (e) {
      throw new ConfigError(path, e instanceof Error ? e.message : String(e), { cause: e });
    }
    this.forwardToWorkers({ kind: "hosts", cluster: clusterName, raw });
  }

  /**
   * Replaces the secret `name` (from `static_resources.secrets`) with `raw`, one Envoy v3 `Secret` object (`name`
   * may be left out; the kind, `tls_certificate` or `validation_context`, must stay), as SDS does: every TLS context
   * that names the secret is rebuilt with it, so new handshakes use the new certificate or trust anchors while
   * connections already open stay up on theirs. Throws a one-line {@link ConfigError} naming the field path
   * (`config: secret.tls_certificate.private_key: ...`), or naming the secret if none is called `name`, and nothing
   * changes then. The new version is `config.secrets.get(name)`. Worker threads (`--concurrency`) get it next
   * (see {@link Server.forwardToWorkers}).
   */
  updateSecret(name: string, raw: unknown): void {
    this.config.secrets.update(name, raw, "secret");
    this.forwardToWorkers({ kind: "secret", name, raw, path: "secret" });
  }

  /** Parses a runtime listener as the bootstrap does, checking its clusters against the running ones. */
  /** The secret provider (static secrets and those SDS delivers). */
  get secrets(): SecretManager {
    return this.config.secrets;
  }

  /** Names of the bootstrap's static listeners. */
  get staticListenerNames(): ReadonlySet<string> {
    return new Set(this.config.listeners.map((l) => l.name));
  }

  /** Names of the bootstrap's static clusters. */
  get staticClusterNames(): ReadonlySet<string> {
    return new Set(this.config.clusters.map((c) => c.name));
  }

  /** Parses a listener as {@link Server.addOrUpdateListener} does (clusters unchecked) without applying it. */
  validateListener(raw: unknown, path: string): void {
    this.#parseApiListener(raw, path, false);
  }

  #parseApiListener(raw: unknown, path = API_LISTENER_PATH, validateClusters = true): ListenerConfig {
    const config = parseListener(resolveSecretRefs(raw, path, this.config.secrets), path, this.#registries);
    if (!validateClusters) return config;
    const known = this.clusterManager.clusters;
    for (const chain of config.filterChains) {
      for (const f of chain.filters) {
        for (const ref of f.factory.referencedClusters?.(f.config) ?? []) {
          if (!known.has(ref.name)) throw new ConfigError(ref.path, `unknown cluster ${describe(ref.name)}`);
        }
      }
    }
    return config;
  }

  /**
   * Graceful drain then stop: stop accepting, let in-flight requests finish (keep-alive connections are told to
   * close), wait up to the drain time, close what is left, shut down clusters and admin.
   */
  drainAndStop(drainTimeMs: number = this.#drainTimeMs): Promise<void> {
    this.#stopped ??= this.#drainAndStop(drainTimeMs);
    return this.#stopped;
  }

  async #drainAndStop(drainTimeMs: number): Promise<void> {
    this.state = "DRAINING";
    this.xds?.close();
    const lm = this.listenerManager;
    log.info(`draining ${lm.list.length} listener(s) for up to ${Math.round(drainTimeMs / 1000)} s`);
    lm.stopAccepting();
    lm.drainConnections();
    const deadline = performance.now() + drainTimeMs;
    while (performance.now() < deadline && lm.connections > 0) {
      await new Promise((r) => setTimeout(r, 50));
    }
    lm.closeAll();
    await this.#workers?.drainAndStop(Math.max(0, deadline - performance.now()));
    this.clusterManager.shutdown();
    this.overload?.stop();
    await flushAccessLogs();
    await this.admin?.close();
    log.info("stopped");
    this.#resolveExit(0);
  }

  /** Stops listeners without waiting for in-flight requests (tests). */
  async stop(): Promise<void> {
    await this.drainAndStop(0);
  }

  #adminContext(): AdminContext {
    // deno-lint-ignore no-this-alias
    const s = this;
    return {
      serverInfo: () => ({
        version: VERSION,
        state: s.state,
        hot_restart_version: s.hotRestartVersion,
        uptime_current_epoch: `${Math.floor((Date.now() - s.#startTime) / 1000)}s`,
        uptime_all_epochs: `${Math.floor((Date.now() - s.originalStartTime) / 1000)}s`,
        node: s.config.node,
        command_line_options: s.#commandLine,
        healthcheck_failed: s.#healthFailed,
      }),
      stats: async () => {
        if (!s.#workers) return s.stats;
        // Counters, gauges and histograms of every event loop, added up.
        // (and Envoy's per-worker listener counters, `listener.<prefix>.worker_<i>.downstream_cx_total`).
        return mergeSnapshots(addPerWorkerListenerStats([s.stats.snapshot(), ...await s.#workers.snapshots()]));
      },
      configDump: (opts) => {
        const x = s.xds?.configDump({ includeEds: opts?.includeEds ?? false });
        const listeners = listenersConfigDump(s.listenerManager, x !== undefined);
        const configs: Record<string, unknown>[] = [
          {
            "@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump",
            bootstrap: s.config.raw,
          },
          x ? { ...listeners, ...x.listeners } : listeners,
          {
            "@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
            static_clusters: rawClusters(s.config.raw).map((c) => ({ cluster: c })),
            ...x?.clusters,
          },
        ];
        if (x) {
          configs.push({ "@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump", ...x.routes });
          configs.push({ "@type": "type.googleapis.com/envoy.admin.v3.SecretsConfigDump", ...x.secrets });
          if (x.endpoints) {
            configs.push({ "@type": "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump", ...x.endpoints });
          }
        }
        return { configs };
      },
      clusters: () => s.clusterManager.describe(),
      listeners: () => s.listeners.map((l) => ({ name: l.config.name, address: l.address })),
      setLogLevel: (level: string) => {
        if (!isLogLevel(level)) return false;
        setLogLevel(level);
        s.#workers?.setLogLevel(level);
        return true;
      },
      setComponentLogLevel: (component: string, level: LogLevel) => {
        setComponentLogLevel(component, level);
        s.#workers?.setComponentLogLevel(component, level);
        return true;
      },
      resetCounters: async () => {
        s.stats.resetCounters();
        await s.#workers?.resetCounters();
      },
      logLevel: () => getLogLevel(),
      healthcheckFail: () => {
        s.#healthFailed = true;
      },
      healthcheckOk: () => {
        s.#healthFailed = false;
      },
      drainListeners: (opts: { graceful?: boolean; inboundOnly?: boolean }) => {
        s.stopAccepting(opts.graceful ?? false);
      },
      quit: () => {
        void s.drainAndStop(0);
      },
      ready: () => s.state === "LIVE" && !s.#healthFailed,
    };
  }
}
