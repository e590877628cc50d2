/**
 * {@link ClusterManagerImpl}: all clusters by name, built from parsed {@link ClusterConfig}s (Envoy's
 * `ClusterManagerImpl`).
 *
 * Life cycle: construct (hosts of STATIC clusters exist at once) → `initialize()` (first DNS answers, bounded by a
 * timeout so start-up never hangs) → serve → `addOrUpdate` / `updateHosts` / `remove` (CDS, EDS, admin) →
 * `shutdown()`.
 *
 * Updates keep what they can: `addOrUpdate` with an identical config keeps the cluster; with only
 * `load_assignment` changed it updates the hosts of the existing cluster (pools, connections and health state of
 * the hosts that stay survive); with anything else changed it builds a new cluster and drains the old one.
 * `updateHosts` is the EDS path: a new endpoint list for a cluster whose type takes one.
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
import type { Cluster, ClusterManager, LocalityLbEndpoints } from "../api/upstream.ts";
import { deepEqual } from "./_deep_equal.ts";
import { type ClusterDescription, ClusterImpl, type ClusterOptions } from "./cluster.ts";
import type { ClusterConfig, LoadAssignmentPolicy } from "./config.ts";
import { createUpstreamRegistries } from "./registries.ts";

/** Options of a {@link ClusterManagerImpl}: the services (and registries) every cluster gets. */
export type ClusterManagerOptions = Omit<ClusterOptions, "addedViaApi">;

/** How a new config of a cluster differs from the one it serves with. */
export type ClusterConfigChange = "none" | "endpoints" | "other";

/** Config paths are where a config was written, not what it says. */
const PATH = new Set(["path"]);

/**
 * Compares a cluster's new config with its current config and endpoints, structurally: `"none"` if they mean the
 * same, `"endpoints"` if only `load_assignment` differs (endpoints, or its policy), `"other"` otherwise. Config
 * paths are ignored. For an EDS cluster `load_assignment` is only where it starts: a config that differs only there
 * is `"none"`, so that a CDS update re-sending the cluster keeps the hosts EDS gave it.
 */
export function compareClusterConfig(
  current: ClusterConfig,
  currentEndpoints: readonly LocalityLbEndpoints[],
  next: ClusterConfig,
  currentPolicy: LoadAssignmentPolicy = current,
): ClusterConfigChange {
  const rest = (c: ClusterConfig) => ({
    ...c,
    path: "",
    localities: [],
    loadAssignmentName: "",
    overprovisioningFactor: 0,
    weightedPriorityHealth: false,
  });
  if (!deepEqual(rest(current), rest(next))) return "other";
  if (current.type === "EDS") return "none";
  if (current.loadAssignmentName !== next.loadAssignmentName) return "endpoints";
  if (
    currentPolicy.overprovisioningFactor !== next.overprovisioningFactor ||
    currentPolicy.weightedPriorityHealth !== next.weightedPriorityHealth
  ) return "endpoints";
  // Endpoint paths are the only `path` keys inside localities.
  return deepEqual(currentEndpoints, next.localities, PATH) ? "none" : "endpoints";
}

/** The cluster manager; see the module doc. */
export class ClusterManagerImpl implements ClusterManager {
  readonly #clusters = new Map<string, ClusterImpl>();
  readonly #options: ClusterManagerOptions;
  #initialized = false;
  #draining = new Set<ClusterImpl>();
  /** EDS clusters by `service_name`, so that an assignment finds its clusters without a walk over all. */
  readonly #byService = new Map<string, Set<ClusterImpl>>();

  constructor(configs: readonly ClusterConfig[], options: ClusterManagerOptions) {
    // One set of registries for every cluster of this manager (built here, not per cluster or per module).
    this.#options = { ...options, registries: options.registries ?? createUpstreamRegistries() };
    for (const c of configs) {
      if (this.#clusters.has(c.name)) throw new Error(`cluster "${c.name}": defined twice`);
      this.#set(new ClusterImpl(c, this.#options));
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
   * Adds a cluster or updates the one of the same name (CDS): an identical config keeps it; a config that differs
   * only in `load_assignment` updates its hosts in place (for cluster types that take endpoint lists; DNS clusters
   * are rebuilt; an EDS cluster ignores it and keeps the hosts EDS gave it); any other difference builds a new
   * cluster and drains the old one's pools. An EDS cluster rebuilt so starts with the old one's last pushed
   * endpoints (same `service_name`), as Envoy serves them until the new cluster's first assignment. Returns the
   * cluster now serving the name. After `initialize`, a new DNS cluster starts resolving at once; await its
   * `initialize()` to wait for its first answer. Throws (changing nothing) on an invalid endpoint list.
   */
  addOrUpdate(config: ClusterConfig): ClusterImpl {
    const old = this.#clusters.get(config.name);
    if (old !== undefined) {
      const change = compareClusterConfig(old.config, old.endpoints, config, old.policy);
      if (change === "none") return old;
      if (change === "endpoints" && old.takesEndpointUpdates) {
        old.updateConfig(config);
        return old;
      }
    }
    const c = new ClusterImpl(config, { ...this.#options, addedViaApi: true });
    const carried = old?.pushedAssignment;
    if (
      carried !== undefined && config.eds !== undefined && old!.config.eds?.serviceName === config.eds.serviceName
    ) {
      try {
        c.updateHosts(carried.endpoints, carried.policy);
      } catch {
        // The old endpoints do not fit the new cluster: it starts empty and waits for EDS.
      }
    }
    this.#set(c);
    if (old !== undefined) this.#retire(old);
    if (this.#initialized) c.initialize();
    return c;
  }

  /**
   * Applies a new endpoint list to a cluster (EDS), with its `ClusterLoadAssignment.policy` (pass the whole
   * `parseLoadAssignment` result; default Envoy's): see `Cluster.updateHosts`. Throws an error naming the cluster if
   * there is no such cluster or its type finds its hosts itself (STRICT_DNS, LOGICAL_DNS), or if the list is
   * invalid; nothing changes then.
   */
  updateHosts(
    clusterName: string,
    endpoints: readonly LocalityLbEndpoints[],
    policy?: Partial<LoadAssignmentPolicy>,
  ): void {
    const c = this.#clusters.get(clusterName);
    if (c === undefined) throw new Error(`cluster "${clusterName}": no such cluster to update the hosts of`);
    c.updateHosts(endpoints, policy);
  }

  /** The EDS clusters that subscribe to `serviceName` (`eds_cluster_config.service_name`, default their name). */
  clustersForService(serviceName: string): ClusterImpl[] {
    return [...this.#byService.get(serviceName) ?? []];
  }

  /** Serves `c` under its name (replacing whatever did) and indexes it by EDS service name. */
  #set(c: ClusterImpl): void {
    const old = this.#clusters.get(c.name);
    if (old !== undefined) this.#unindex(old);
    this.#clusters.set(c.name, c);
    const service = c.config.eds?.serviceName;
    if (service === undefined) return;
    let set = this.#byService.get(service);
    if (set === undefined) this.#byService.set(service, set = new Set());
    set.add(c);
  }

  #unindex(c: ClusterImpl): void {
    const service = c.config.eds?.serviceName;
    if (service === undefined) return;
    const set = this.#byService.get(service);
    set?.delete(c);
    if (set?.size === 0) this.#byService.delete(service);
  }

  /** Removes a cluster; its pools drain. Returns false if there was none. */
  remove(name: string): boolean {
    const c = this.#clusters.get(name);
    if (c === undefined) return false;
    this.#clusters.delete(name);
    this.#unindex(c);
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

export type { Cluster };
