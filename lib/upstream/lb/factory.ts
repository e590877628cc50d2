/**
 * {@link LoadBalancerFactory}: a load-balancing policy as a registered factory (Envoy's
 * `TypedLoadBalancerFactory`). The built-ins are listed in `lib/upstream/lb/mod.ts` and registered by their
 * `lb_policy` name (`ROUND_ROBIN`, ...) and by the `@type` URLs of Envoy's `load_balancing_policy` extensions.
 *
 * @example
 * ```ts
 * import { createLoadBalancerRegistry } from "./mod.ts";
 *
 * const registry = createLoadBalancerRegistry();
 * registry.byName("ROUND_ROBIN")!.name; // "ROUND_ROBIN"
 * ```
 *
 * @module
 */
import type { LeastRequestConfig } from "../config.ts";
import type { MaglevConfig, RingHashConfig } from "../resilience_config.ts";
import type { HostSource, LbOptions, LoadBalancer } from "./_common.ts";

/**
 * The policy settings a balancer reads from its cluster's config (`least_request_lb_config`,
 * `ring_hash_lb_config`, `maglev_lb_config`); each policy reads its own, all are optional (defaults are Envoy's).
 */
export interface LbPolicyConfig {
  readonly leastRequest?: LeastRequestConfig | undefined;
  readonly ringHash?: RingHashConfig | undefined;
  readonly maglev?: MaglevConfig | undefined;
}

/**
 * What a balancer is built over: the cluster's host source (hosts plus a version bumped on every membership,
 * weight or health change, so the balancer rebuilds its tables lazily) and the shared options (panic threshold,
 * slow start, random source).
 */
export interface LbFactoryContext extends LbOptions {
  readonly source: HostSource;
}

/**
 * A load-balancing policy. `create` is the config-time step: a cluster calls it once per cluster config and keeps
 * the balancer across host-set updates (the balancer sees them through `source.hostsVersion`). No state lives in
 * the factory itself.
 */
export interface LoadBalancerFactory {
  /** Envoy's `lb_policy` enum name, e.g. `ROUND_ROBIN`. */
  readonly name: string;
  /** Envoy's `load_balancing_policy` typed-extension URLs of this policy. */
  readonly configTypes: readonly string[];
  /** Builds the balancer of one cluster. */
  create(config: LbPolicyConfig, context: LbFactoryContext): LoadBalancer;
}

/** The `@type` URL prefix of Envoy's load-balancing policy extensions. */
export const LB_POLICY_TYPE_PREFIX = "type.googleapis.com/envoy.extensions.load_balancing_policies.";
