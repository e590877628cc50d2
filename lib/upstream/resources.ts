/**
 * Circuit breakers: cluster-wide resource counters with limits (Envoy's `ResourceManager`). Pools and
 * `Cluster.connect` count connections, pending requests and requests; the router counts retries.
 *
 * @module
 */
import type { ThresholdsConfig } from "./config.ts";

/** One limited resource. */
export class ResourceLimit {
  /** The limit (0 means nothing may be created). */
  readonly max: number;
  #count = 0;

  constructor(max: number) {
    this.max = max;
  }

  /** In use now. */
  get count(): number {
    return this.#count;
  }

  /** True if one more may be created. */
  canCreate(): boolean {
    return this.#count < this.max;
  }

  inc(): void {
    this.#count++;
  }

  dec(): void {
    if (this.#count > 0) this.#count--;
  }
}

/** The circuit-breaker resources of one cluster priority. */
export interface ClusterResources {
  readonly connections: ResourceLimit;
  readonly pendingRequests: ResourceLimit;
  readonly requests: ResourceLimit;
  /** Counted by the router around retries (`upstream_rq_retry_overflow` when exhausted). */
  readonly retries: ResourceLimit;
}

/** Creates the resources of one priority from its thresholds. */
export function createResources(t: ThresholdsConfig): ClusterResources {
  return {
    connections: new ResourceLimit(t.maxConnections),
    pendingRequests: new ResourceLimit(t.maxPendingRequests),
    requests: new ResourceLimit(t.maxRequests),
    retries: new ResourceLimit(t.maxRetries),
  };
}
