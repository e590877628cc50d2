/**
 * The built-in load balancers as registered factories ({@link builtinLoadBalancers}), the registry that looks them
 * up by `lb_policy` name or `load_balancing_policy` `@type` URL ({@link createLoadBalancerRegistry}), and
 * {@link createLoadBalancer}, which builds a built-in balancer by policy name.
 *
 * @module
 */
import { ConfigError } from "../../api/errors.ts";
import { Registry } from "../../config/registry.ts";
import type { HostSource, LbOptions, LoadBalancer } from "./_common.ts";
import type { LbPolicyConfig, LoadBalancerFactory } from "./factory.ts";
import { leastRequestLbFactory } from "./least_request.ts";
import { maglevLbFactory } from "./maglev.ts";
import { randomLbFactory } from "./random.ts";
import { ringHashLbFactory } from "./ring_hash.ts";
import { roundRobinLbFactory } from "./round_robin.ts";

export { BaseLoadBalancer, equalWeights } from "./_common.ts";
export type {
  HostPicker,
  HostSource,
  LbHost,
  LbOptions,
  LoadBalancer,
  PickerContext,
  SlowStartHost,
  SlowStartOptions,
} from "./_common.ts";
export { choosePriority, computePriorityLoad } from "./priority_load.ts";
export type { PriorityCounts, PriorityLoad, PriorityLoadOptions } from "./priority_load.ts";
export { LB_POLICY_TYPE_PREFIX } from "./factory.ts";
export type { LbFactoryContext, LbPolicyConfig, LoadBalancerFactory } from "./factory.ts";
export { maglevLbFactory, MaglevLoadBalancer } from "./maglev.ts";
export type { MaglevOptions } from "./maglev.ts";
export { ringHashLbFactory, RingHashLoadBalancer } from "./ring_hash.ts";
export type { RingHashOptions } from "./ring_hash.ts";
export { hashKey52, xxhash64Hex, xxhash64Parts } from "./xxhash64.ts";
export { leastRequestLbFactory, LeastRequestLoadBalancer } from "./least_request.ts";
export type { LeastRequestOptions } from "./least_request.ts";
export { randomLbFactory, RandomLoadBalancer, randomPicker } from "./random.ts";
export { roundRobinLbFactory, RoundRobinLoadBalancer } from "./round_robin.ts";

/** Every built-in load-balancing policy, in Envoy's `lb_policy` order. */
export const builtinLoadBalancers: readonly LoadBalancerFactory[] = [
  roundRobinLbFactory,
  leastRequestLbFactory,
  randomLbFactory,
  ringHashLbFactory,
  maglevLbFactory,
];

/**
 * A registry of the built-in policies plus `extra` (a third party's own); throws if a name or `@type` URL is
 * registered twice. The cluster manager builds one per instance.
 */
export function createLoadBalancerRegistry(
  extra: readonly LoadBalancerFactory[] = [],
): Registry<LoadBalancerFactory> {
  return new Registry("load balancer", [...builtinLoadBalancers, ...extra]);
}

/**
 * The factory of `policy` in `registry`, or a {@link ConfigError} at `path` (the cluster's `lb_policy` field) that
 * names the known policies.
 */
export function lookupLoadBalancer(
  registry: Registry<LoadBalancerFactory>,
  policy: string,
  path: string,
): LoadBalancerFactory {
  const f = registry.byName(policy);
  if (f !== undefined) return f;
  throw new ConfigError(path, `unknown load balancer ${JSON.stringify(policy)} (known: ${registry.names.join(", ")})`);
}

/** Creates the built-in balancer of a policy over a host source (tests and embedders without a registry). */
export function createLoadBalancer(
  policy: string,
  source: HostSource,
  options: LbOptions & LbPolicyConfig = {},
): LoadBalancer {
  const f = builtinLoadBalancers.find((x) => x.name === policy);
  if (f === undefined) {
    throw new Error(
      `unknown load balancer ${JSON.stringify(policy)} (known: ${builtinLoadBalancers.map((x) => x.name).join(", ")})`,
    );
  }
  return f.create(options, { ...options, source });
}
