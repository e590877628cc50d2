/**
 * The server: stats, clusters, listeners and admin, started from a validated bootstrap, and drained on request.
 *
 * Start-up order: clusters (first DNS resolution, bounded), then every listener binds (a listener that cannot
 * bind fails start-up with its name, and nothing is left half-open), then the admin API, then accepting.
 *
 * @module
 */
import type { BootstrapConfig } from "../config/bootstrap.ts";
import type { Registries } from "../config/registry.ts";
import { mergeSnapshots, StatsStore } from "../observe/stats.ts";
import { getLogger, getLogLevel, isLogLevel, setComponentLogLevel, setLogLevel } from "../observe/log.ts";
import type { LogLevel } from "../observe/log.ts";
import { flushAccessLogs } from "../observe/access_log.ts";
import { ClusterManagerImpl } from "../upstream/cluster_manager.ts";
import { startAdmin } from "../admin/admin.ts";
import type { AdminContext, AdminServer } from "../admin/admin.ts";
import { Listener } from "./listener.ts";
import { WorkerSet } from "./workers.ts";
import { VERSION } from "../version.ts";
import { http1CodecFactory } from "../../codecs/http1/mod.ts";

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
  /** Log listener start-up at debug level (worker threads, whose listeners the main thread already announced). */
  readonly quiet?: boolean;
}

function rawClusters(raw: Record<string, unknown>): unknown[] {
  const sr = raw["static_resources"] as Record<string, unknown> | undefined;
  const c = sr?.["clusters"];
  return Array.isArray(c) ? c : [];
}

/** A running Ferry. */
export class Server {
  readonly config: BootstrapConfig;
  readonly stats: StatsStore;
  readonly clusterManager: ClusterManagerImpl;
  readonly listeners: Listener[] = [];
  admin: AdminServer | undefined;
  state: ServerState = "PRE_INITIALIZING";
  #healthFailed = false;
  #drainTimeMs: number;
  #startTime = Date.now();
  #commandLine: Record<string, unknown>;
  #stopped: Promise<void> | undefined;
  #resolveExit!: (code: number) => void;
  #workers: WorkerSet | undefined;
  /** Resolves with the exit code when the server has stopped (after `/quitquitquit` or a signal). */
  readonly exited: Promise<number>;

  private constructor(config: BootstrapConfig, _registries: Registries, options: ServerOptions) {
    this.config = config;
    this.stats = new StatsStore();
    this.clusterManager = new ClusterManagerImpl(config.clusters, {
      stats: this.stats,
      httpCodec: http1CodecFactory,
      log: (m) => upstreamLog.warn(m),
    });
    this.#drainTimeMs = options.drainTimeMs ?? 600_000;
    this.#commandLine = options.commandLine ?? {};
    this.exited = new Promise((r) => this.#resolveExit = r);
  }

  /** Starts a server; throws (after cleaning up) if a listener or the admin cannot bind. */
  static async start(config: BootstrapConfig, registries: Registries, options: ServerOptions = {}): Promise<Server> {
    const s = new Server(config, registries, options);
    s.state = "INITIALIZING";
    for (const w of config.warnings) log.warn(w);
    await s.clusterManager.initialize();
    const ctx = {
      stats: s.stats,
      clusterManager: s.clusterManager,
      draining: () => s.state === "DRAINING",
    };
    try {
      for (const lc of config.listeners) {
        const l = new Listener(lc, ctx);
        l.bind();
        s.listeners.push(l);
      }
      if (config.admin && options.admin !== false) {
        const a = config.admin.address;
        s.admin = await startAdmin({
          address: a.address,
          port: options.adminPort ?? a.port,
          context: s.#adminContext(),
        });
      }
    } catch (e) {
      for (const l of s.listeners) l.stopAccepting();
      s.clusterManager.shutdown();
      throw e;
    }
    for (const l of s.listeners) {
      l.start();
      const line = `listener "${l.config.name}" accepting on ${l.address} (${l.engine})`;
      if (options.quiet) log.debug(line);
      else log.info(line);
    }
    if (s.admin) log.info(`admin listening on http://${config.admin!.address.address}:${s.admin.port}/`);
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
    if (this.state === "LIVE") this.state = "INITIALIZING";
    try {
      this.#workers = await WorkerSet.start(n, raw, { drainTimeMs: this.#drainTimeMs, logLevel: options.logLevel });
    } finally {
      if (this.state === "INITIALIZING") this.state = "LIVE";
    }
    log.info(`${n} worker thread(s) started; ${n + 1} event loops serve the listeners`);
  }

  /** Stops accepting on every listener; with `graceful`, idle connections are closed and the rest drain. */
  stopAccepting(graceful: boolean): void {
    this.state = "DRAINING";
    for (const l of this.listeners) l.stopAccepting();
    if (graceful) { for (const l of this.listeners) l.drainConnections(); }
    this.#workers?.stopAccepting(graceful);
  }

  /** The listener with this name. */
  listener(name: string): Listener | undefined {
    return this.listeners.find((l) => l.config.name === name);
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
    log.info(`draining ${this.listeners.length} listener(s) for up to ${Math.round(drainTimeMs / 1000)} s`);
    for (const l of this.listeners) l.stopAccepting();
    for (const l of this.listeners) l.drainConnections();
    const deadline = performance.now() + drainTimeMs;
    while (performance.now() < deadline && this.listeners.some((l) => l.connections > 0)) {
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const l of this.listeners) l.closeAll();
    await this.#workers?.drainAndStop(Math.max(0, deadline - performance.now()));
    this.clusterManager.shutdown();
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
        hot_restart_version: "disabled",
        uptime_current_epoch: `${Math.floor((Date.now() - s.#startTime) / 1000)}s`,
        uptime_all_epochs: `${Math.floor((Date.now() - s.#startTime) / 1000)}s`,
        node: s.config.node,
        command_line_options: s.#commandLine,
        healthcheck_failed: s.#healthFailed,
      }),
      stats: async () => {
        if (!s.#workers) return s.stats;
        // Counters, gauges and histograms of every event loop, added up.
        return mergeSnapshots([s.stats.snapshot(), ...await s.#workers.snapshots()]);
      },
      configDump: () => ({
        configs: [
          {
            "@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump",
            bootstrap: s.config.raw,
          },
          {
            "@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
            static_listeners: s.config.listeners.map((l) => ({ listener: l.raw })),
          },
          {
            "@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
            static_clusters: rawClusters(s.config.raw).map((c) => ({ cluster: c })),
          },
        ],
      }),
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
