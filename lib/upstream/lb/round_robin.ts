/**
 * {@link RoundRobinLoadBalancer}: Envoy's `ROUND_ROBIN`. Equal weights rotate through the usable hosts; unequal
 * weights use smooth weighted round robin (nginx's algorithm: each pick adds every host's weight to its current
 * value, takes the largest and subtracts the total), which spreads picks of a heavy host evenly instead of in
 * bursts.
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

/** Weighted round robin; see the module doc. */
export class RoundRobinLoadBalancer extends BaseLoadBalancer {
  constructor(source: HostSource, options: LbOptions = {}) {
    super(source, options);
  }

  protected createPicker(hosts: readonly Host[], ctx: PickerContext): HostPicker {
    return new RoundRobinPicker(hosts, ctx);
  }
}

/** Round robin over one host list. */
class RoundRobinPicker implements HostPicker {
  readonly hosts: readonly Host[];
  readonly #ctx: PickerContext;
  #next: number;
  readonly #weighted: boolean;
  readonly #current: number[];
  readonly #total: number;

  constructor(hosts: readonly Host[], ctx: PickerContext) {
    this.hosts = hosts;
    this.#ctx = ctx;
    // Start at a random offset, as Envoy does, so that many proxies do not hit the same first host.
    this.#next = Math.floor(ctx.random() * 1e9);
    this.#weighted = !equalWeights(hosts);
    this.#current = new Array(hosts.length).fill(0);
    this.#total = hosts.reduce((n, h) => n + h.weight, 0);
  }

  pick(): Host | undefined {
    const hosts = this.hosts;
    if (this.#ctx.slowStartActive()) return this.#pickSlowStart(hosts);
    if (!this.#weighted) return hosts[this.#next++ % hosts.length];
    const cur = this.#current;
    let best = 0;
    for (let i = 0; i < hosts.length; i++) {
      cur[i]! += hosts[i]!.weight;
      if (cur[i]! > cur[best]!) best = i;
    }
    cur[best]! -= this.#total;
    return hosts[best];
  }

  /** Smooth WRR over the slow-start weights of this moment (recomputed per pick while a window is open). */
  #pickSlowStart(hosts: readonly Host[]): Host | undefined {
    const cur = this.#current;
    let best = 0;
    let total = 0;
    for (let i = 0; i < hosts.length; i++) {
      const w = this.#ctx.effectiveWeight(hosts[i]!);
      total += w;
      cur[i]! += w;
      if (cur[i]! > cur[best]!) best = i;
    }
    cur[best]! -= total;
    return hosts[best];
  }
}

/** `ROUND_ROBIN` (Envoy's `envoy.load_balancing_policies.round_robin`): a {@link RoundRobinLoadBalancer}. */
export const roundRobinLbFactory: LoadBalancerFactory = {
  name: "ROUND_ROBIN",
  configTypes: [`${LB_POLICY_TYPE_PREFIX}round_robin.v3.RoundRobin`],
  create(_config, context) {
    return new RoundRobinLoadBalancer(context.source, context);
  },
};
