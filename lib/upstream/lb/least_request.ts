/**
 * {@link LeastRequestLoadBalancer}: Envoy's `LEAST_REQUEST`.
 *
 * - Equal weights: power of `choice_count` choices — sample that many hosts at random and take the one with the
 *   fewest active requests.
 * - Unequal weights: an earliest-deadline-first schedule whose weights are recomputed when a host is re-scheduled,
 *   as `weight / (active_requests + 1) ^ active_request_bias` (Envoy's formula; bias 0 is plain weighted RR).
 *
 * @module
 */
import type { Host } from "../../api/upstream.ts";
import {
  BaseLoadBalancer,
  equalWeights,
  type HostPicker,
  type HostSource,
  type LbOptions,
  type PickerContext,
} from "./_common.ts";
import { LB_POLICY_TYPE_PREFIX, type LoadBalancerFactory } from "./factory.ts";

/** Options of the least-request balancer (`least_request_lb_config`). */
export interface LeastRequestOptions extends LbOptions {
  choiceCount?: number;
  activeRequestBias?: number;
}

interface Entry {
  host: Host;
  deadline: number;
  /** Insertion order, to break deadline ties deterministically. */
  seq: number;
}

/** Least-request balancing; see the module doc. */
export class LeastRequestLoadBalancer extends BaseLoadBalancer {
  readonly #choiceCount: number;
  readonly #bias: number;

  constructor(source: HostSource, options: LeastRequestOptions = {}) {
    super(source, options);
    this.#choiceCount = options.choiceCount ?? 2;
    this.#bias = options.activeRequestBias ?? 1;
  }

  protected createPicker(hosts: readonly Host[], ctx: PickerContext): HostPicker {
    return new LeastRequestPicker(hosts, ctx, { choiceCount: this.#choiceCount, bias: this.#bias });
  }
}

/** Least request over one host list. */
class LeastRequestPicker implements HostPicker {
  readonly hosts: readonly Host[];
  readonly #ctx: PickerContext;
  readonly #choiceCount: number;
  readonly #bias: number;
  readonly #weighted: boolean;
  #heap: Entry[] = [];
  #now = 0;
  #seq = 0;

  constructor(hosts: readonly Host[], ctx: PickerContext, o: { choiceCount: number; bias: number }) {
    this.hosts = hosts;
    this.#ctx = ctx;
    this.#choiceCount = o.choiceCount;
    this.#bias = o.bias;
    // Slow start gives hosts different weights for a while: use the weighted schedule then.
    this.#weighted = !equalWeights(hosts) || ctx.slowStartActive();
    if (this.#weighted) { for (const h of hosts) this.#push(h); }
  }

  #effectiveWeight(h: Host): number {
    const w = this.#ctx.effectiveWeight(h);
    if (this.#bias === 0) return w;
    const active = h.activeRequests + 1;
    return w / (this.#bias === 1 ? active : Math.pow(active, this.#bias));
  }

  #push(host: Host): void {
    const e: Entry = { host, deadline: this.#now + 1 / this.#effectiveWeight(host), seq: this.#seq++ };
    const heap = this.#heap;
    heap.push(e);
    let i = heap.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(heap[i]!, heap[p]!)) break;
      [heap[i], heap[p]] = [heap[p]!, heap[i]!];
      i = p;
    }
  }

  #pop(): Entry | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    heap[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < heap.length && less(heap[l]!, heap[m]!)) m = l;
      if (r < heap.length && less(heap[r]!, heap[m]!)) m = r;
      if (m === i) break;
      [heap[i], heap[m]] = [heap[m]!, heap[i]!];
      i = m;
    }
    return top;
  }

  pick(): Host | undefined {
    const hosts = this.hosts;
    if (this.#weighted) {
      // Notices the end of a slow-start window (which rebuilds the pickers on the next pick).
      this.#ctx.slowStartActive();
      const e = this.#pop();
      if (e === undefined) return undefined;
      this.#now = e.deadline;
      this.#push(e.host);
      return e.host;
    }
    if (hosts.length === 1) return hosts[0];
    let best: Host | undefined;
    for (let i = 0; i < this.#choiceCount; i++) {
      const c = hosts[Math.floor(this.#ctx.random() * hosts.length)]!;
      if (best === undefined || c.activeRequests < best.activeRequests) best = c;
    }
    return best;
  }
}

function less(a: Entry, b: Entry): boolean {
  return a.deadline < b.deadline || (a.deadline === b.deadline && a.seq < b.seq);
}

/**
 * `LEAST_REQUEST` (Envoy's `envoy.load_balancing_policies.least_request`): a {@link LeastRequestLoadBalancer} with
 * the cluster's `least_request_lb_config`.
 */
export const leastRequestLbFactory: LoadBalancerFactory = {
  name: "LEAST_REQUEST",
  configTypes: [`${LB_POLICY_TYPE_PREFIX}least_request.v3.LeastRequest`],
  create(config, context) {
    const lr = config.leastRequest;
    return new LeastRequestLoadBalancer(context.source, {
      ...context,
      ...(lr ? { choiceCount: lr.choiceCount, activeRequestBias: lr.activeRequestBias } : {}),
    });
  },
};
