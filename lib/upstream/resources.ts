/**
 * Circuit breakers: cluster-wide resource counters with limits (Envoy's `ResourceManager`). Pools and
 * `Cluster.connect` count connections, pending requests and requests; the router counts retries.
 *
 * With `track_remaining`, each resource publishes `circuit_breakers.<priority>.remaining_<cx|pending|rq|retries>`;
 * the `<cx|rq_pending|rq|rq_retry>_open` gauges (1 while the breaker is open, i.e. the resource is at its limit) are
 * always published, as in Envoy. A `retry_budget` replaces `max_retries` with `max(min_retry_concurrency,
 * budget_percent % of the active and pending requests)`.
 *
 * @module
 */
import type { Gauge, StatsScope } from "../api/stats.ts";
import type { ResourceCounter } from "../api/upstream.ts";
import type { ThresholdsConfig } from "./config.ts";

/** Gauges a resource keeps current. */
interface ResourceGauges {
  open: Gauge;
  remaining: Gauge | undefined;
}

/** One limited resource. */
export class ResourceLimit implements ResourceCounter {
  readonly #max: number;
  #count = 0;
  #gauges: ResourceGauges | undefined;

  constructor(max: number) {
    this.#max = max;
  }

  /** The limit (0 means nothing may be created). */
  get max(): number {
    return this.#max;
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
    this.publish();
  }

  dec(): void {
    if (this.#count > 0) this.#count--;
    this.publish();
  }

  /** Attaches the open / remaining gauges (see the module doc). */
  attachGauges(open: Gauge, remaining: Gauge | undefined): void {
    this.#gauges = { open, remaining };
    this.publish();
  }

  /** Refreshes the gauges. */
  publish(): void {
    const g = this.#gauges;
    if (g === undefined) return;
    const max = this.max;
    g.open.set(this.#count >= max ? 1 : 0);
    g.remaining?.set(Math.max(0, max - this.#count));
  }
}

/** `max_retries` as a `retry_budget`: the limit follows the cluster's active and pending requests. */
export class RetryBudgetLimit extends ResourceLimit {
  readonly #percent: number;
  readonly #min: number;
  readonly #requests: ResourceCounter;
  readonly #pending: ResourceCounter;

  constructor(percent: number, minConcurrency: number, requests: ResourceCounter, pending: ResourceCounter) {
    super(minConcurrency);
    this.#percent = percent;
    this.#min = minConcurrency;
    this.#requests = requests;
    this.#pending = pending;
  }

  override get max(): number {
    const budget = Math.floor((this.#requests.count + this.#pending.count) * this.#percent / 100);
    return Math.max(this.#min, budget);
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

/**
 * Creates the resources of one priority from its thresholds. With `scope` (`cluster.<name>`) and a priority label,
 * publishes the `circuit_breakers.<label>.*` gauges.
 */
export function createResources(t: ThresholdsConfig, scope?: StatsScope, label?: "default" | "high"): ClusterResources {
  const requests = new ResourceLimit(t.maxRequests);
  const pendingRequests = new ResourceLimit(t.maxPendingRequests);
  const res: ClusterResources = {
    connections: new ResourceLimit(t.maxConnections),
    pendingRequests,
    requests,
    retries: t.retryBudget
      ? new RetryBudgetLimit(t.retryBudget.budgetPercent, t.retryBudget.minRetryConcurrency, requests, pendingRequests)
      : new ResourceLimit(t.maxRetries),
  };
  if (scope !== undefined && label !== undefined) {
    const s = scope.scope(`circuit_breakers.${label}`);
    const track = t.trackRemaining === true;
    res.connections.attachGauges(s.gauge("cx_open"), track ? s.gauge("remaining_cx") : undefined);
    res.pendingRequests.attachGauges(s.gauge("rq_pending_open"), track ? s.gauge("remaining_pending") : undefined);
    res.requests.attachGauges(s.gauge("rq_open"), track ? s.gauge("remaining_rq") : undefined);
    res.retries.attachGauges(s.gauge("rq_retry_open"), track ? s.gauge("remaining_retries") : undefined);
  }
  return res;
}
