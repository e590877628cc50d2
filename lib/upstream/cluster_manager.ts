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

  /** Admin view of every cluster, in definition order (for `/clusters`, rendered by `lib/admin/clusters.ts`). */
  describe(): ClusterDescription[] {
    return [...this.#clusters.values()].map((c) => c.describe());
  }
}

function sameConfig(a: ClusterConfig, b: ClusterConfig): boolean {
  const strip = (c: ClusterConfig) => JSON.stringify({ ...c, path: "" });
  return strip(a) === strip(b);
}

/** Narrows the `clusterManager: unknown` of filter contexts. */
export function asClusterManager(v: unknown): ClusterManager | undefined {
  if (v !== null && typeof v === "object" && typeof (v as ClusterManager).get === "function") {
    return v as ClusterManager;
  }
  return undefined;
}

export type { Cluster };
