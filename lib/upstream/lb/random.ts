/**
 * {@link RandomLoadBalancer}: Envoy's `RANDOM` — a uniformly random usable host. Like Envoy's, it ignores
 * weights.
 *
 * @module
 */
import type { Host } from "../../api/upstream.ts";
import { BaseLoadBalancer, type HostPicker, type PickerContext } from "./_common.ts";
import { LB_POLICY_TYPE_PREFIX, type LoadBalancerFactory } from "./factory.ts";

/** Uniform random choice among usable hosts. */
export class RandomLoadBalancer extends BaseLoadBalancer {
  protected createPicker(hosts: readonly Host[], ctx: PickerContext): HostPicker {
    return randomPicker(hosts, ctx);
  }
}

/** A uniformly random host of `hosts` (also the hashing balancers' pick for a request without a hash). */
export function randomPicker(hosts: readonly Host[], ctx: PickerContext): HostPicker {
  return { hosts, pick: () => hosts[Math.floor(ctx.random() * hosts.length)] };
}

/** `RANDOM` (Envoy's `envoy.load_balancing_policies.random`): a {@link RandomLoadBalancer}. */
export const randomLbFactory: LoadBalancerFactory = {
  name: "RANDOM",
  configTypes: [`${LB_POLICY_TYPE_PREFIX}random.v3.Random`],
  create(_config, context) {
    return new RandomLoadBalancer(context.source, context);
  },
};
