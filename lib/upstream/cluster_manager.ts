/**
 * {@link ClusterManagerImpl}: all clusters by name, built from parsed {@link ClusterConfig}s.
 *
 * Life cycle: construct (hosts of STATIC clusters exist at once) → `initialize()` (first DNS answers, bounded by a
 * timeout so start-up never hangs) → serve → `addOrUpdate` / `remove` (CDS, admin) → `shutdown()`.
 *
 * @example
 * ```ts
 * const cm = new ClusterManagerImpl(parseClusters(raw, "static_resources.clusters"), {
 *   stats: store.root,
 *   httpCodec: http1CodecFactory,
 * });
 * await cm.initialize();
 * // ... serve ...
 * cm.shutdown();
 * ```
 *
 * @module
 */
import type { Cluster, ClusterManager } from "../api/upstream.ts";
import { type ClusterDescription, ClusterImpl, type ClusterOptions } from "./cluster.ts";
import type { ClusterConfig } from "./config.ts";

/** Options of a {@link ClusterManagerImpl}: the services every cluster gets. */
export type ClusterManagerOptions = Omit<ClusterOptions, "addedViaApi">;

/** The cluster manager; see the module doc. */
export class ClusterManagerImpl implements ClusterManager {
  readonly #clusters = new Map<string, ClusterImpl>();
  readonly #options: ClusterManagerOptions;
  #initialized = false;
  #draining = new Set<ClusterImpl>();

  constructor(configs: readonly ClusterConfig[], options: ClusterManagerOptions) {
    this.#options = options;
    for (const c of configs) {
      if (this.#clusters.has(c.name)) throw new Error(`cluster "${c.name}": defined twice`);
      this.#clusters.set(c.name, new ClusterImpl(c, options));
    }
  }

  get(name: string): ClusterImpl | undefined {
    return this.#clusters.get(name);
  }

  get clusters(): ReadonlyMap<string, ClusterImpl> {
    return this.#clusters;
  }

  /**
   * Resolves DNS clusters for the first time. Resolves after all first answers or `timeoutMs` (default 5 s),
   * whichever comes first; never rejects (a cluster whose names do not resolve has no hosts and keeps retrying).
   */
  async initialize(options: { timeoutMs?: number } = {}): Promise<void> {
    this.#initialized = true;
    const all = Promise.all([...this.#clusters.values()].map((c) => c.initialize()));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((res) => {
      // Not unref'd: at start-up this timer may be all that keeps the process waiting.
      timer = setTimeout(res, options.timeoutMs ?? 5000);
    });
    try {
      await Promise.race([all, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Adds a cluster, or replaces one of the same name whose config differs (the old one drains its pools).
   * Returns the cluster now serving the name. After `initialize`, a new DNS cluster starts resolving at once; await
   * its `initialize()` to wait for its first answer.
   */
  addOrUpdate(config: ClusterConfig): ClusterImpl {
    const old = this.#clusters.get(config.name);
    if (old !== undefined && sameConfig(old.config, config)) return old;
    const c = new ClusterImpl(config, { ...this.#options, addedViaApi: true });
    this.#clusters.set(config.name, c);
    if (old !== undefined) this.#retire(old);
    if (this.#initialized) c.initialize();
    return c;
  }

  /** Removes a cluster; its pools drain. Returns false if there was none. */
  remove(name: string): boolean {
    const c = this.#clusters.get(name);
    if (c === undefined) return false;
    this.#clusters.delete(name);
    this.#retire(c);
    return true;
  }

  #retire(c: ClusterImpl): void {
    this.#draining.add(c);
    c.drain(() => {
      this.#draining.delete(c);
      c.shutdown();
    });
  }

  /** Stops DNS timers and closes every connection. */
  shutdown(): void {
    for (const c of this.#clusters.values()) c.shutdown();
    for (const c of this.#draining) c.shutdown();
    this.#draining.clear();
  }

  /** Admin view of every cluster, in definition order (for `/clusters`; see {@link formatClusters}). */
  describe(): ClusterDescription[] {
    return [...this.#clusters.values()].map((c) => c.describe());
  }
}

function sameConfig(a: ClusterConfig, b: ClusterConfig): boolean {
  const strip = (c: ClusterConfig) => JSON.stringify({ ...c, path: "" });
  return strip(a) === strip(b);
}

/**
 * Envoy's `/clusters` text format: `name::default_priority::max_connections::1024`,
 * `name::10.0.0.1:80::cx_active::2`, ...
 */
export function formatClusters(clusters: readonly ClusterDescription[]): string {
  const out: string[] = [];
  for (const c of clusters) {
    const n = c.name;
    out.push(`${n}::observability_name::${n}`);
    for (const [prio, label] of [["DEFAULT", "default_priority"], ["HIGH", "high_priority"]] as const) {
      const t = c.circuitBreakers[prio];
      out.push(`${n}::${label}::max_connections::${t.maxConnections}`);
      out.push(`${n}::${label}::max_pending_requests::${t.maxPendingRequests}`);
      out.push(`${n}::${label}::max_requests::${t.maxRequests}`);
      out.push(`${n}::${label}::max_retries::${t.maxRetries}`);
    }
    out.push(`${n}::added_via_api::${c.addedViaApi}`);
    for (const h of c.hosts) {
      const k = `${n}::${h.address.includes(":") ? `[${h.address}]` : h.address}:${h.port}`;
      out.push(`${k}::cx_active::${h.cxActive}`);
      out.push(`${k}::cx_connect_fail::${h.cxConnectFail}`);
      out.push(`${k}::cx_total::${h.cxTotal}`);
      out.push(`${k}::rq_active::${h.rqActive}`);
      out.push(`${k}::rq_error::${h.rqError}`);
      out.push(`${k}::rq_success::${h.rqSuccess}`);
      out.push(`${k}::rq_timeout::${h.rqTimeout}`);
      out.push(`${k}::rq_total::${h.rqTotal}`);
      out.push(`${k}::hostname::${h.hostname}`);
      out.push(`${k}::health_flags::${h.healthFlags}`);
      out.push(`${k}::weight::${h.weight}`);
      out.push(`${k}::region::${h.locality.region}`);
      out.push(`${k}::zone::${h.locality.zone}`);
      out.push(`${k}::sub_zone::${h.locality.subZone}`);
      out.push(`${k}::canary::false`);
      out.push(`${k}::priority::${h.priority}`);
      out.push(`${k}::success_rate::-1`);
      out.push(`${k}::local_origin_success_rate::-1`);
    }
  }
  return out.length > 0 ? out.join("\n") + "\n" : "";
}

/** Narrows the `clusterManager: unknown` of filter contexts. */
export function asClusterManager(v: unknown): ClusterManager | undefined {
  if (v !== null && typeof v === "object" && typeof (v as ClusterManager).get === "function") {
    return v as ClusterManager;
  }
  return undefined;
}

export type { Cluster };
