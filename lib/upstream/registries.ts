/**
 * {@link UpstreamRegistries}: the upstream extension points as registries — cluster types, load balancers and
 * connection pools. A cluster manager builds one set at construction and hands it to every cluster it creates, so a
 * third party adds a policy, a discovery type or a pool by listing its factory in `extra`, never by import side
 * effects.
 *
 * @example
 * ```ts
 * import { createUpstreamRegistries } from "./registries.ts";
 *
 * const registries = createUpstreamRegistries();
 * registries.loadBalancers.names; // ["ROUND_ROBIN", "LEAST_REQUEST", "RANDOM", "RING_HASH", "MAGLEV"]
 * ```
 *
 * @module
 */
import type { Registry } from "../config/registry.ts";
import { type ClusterTypeFactory, createClusterTypeRegistry } from "./cluster_types.ts";
import { createLoadBalancerRegistry } from "./lb/mod.ts";
import type { LoadBalancerFactory } from "./lb/factory.ts";
import { type ConnPoolFactory, createConnPoolRegistry } from "./pool_factory.ts";

/** The registries clusters consult. */
export interface UpstreamRegistries {
  /** By Envoy's cluster `type` (`STATIC`, `STRICT_DNS`, `LOGICAL_DNS`). */
  readonly clusterTypes: Registry<ClusterTypeFactory>;
  /** By `lb_policy` name and `load_balancing_policy` `@type` URL. */
  readonly loadBalancers: Registry<LoadBalancerFactory>;
  /** By the codec pool mode they serve. */
  readonly connPools: Registry<ConnPoolFactory>;
}

/** Factories to register beside the built-ins. */
export interface UpstreamExtensions {
  readonly clusterTypes?: readonly ClusterTypeFactory[];
  readonly loadBalancers?: readonly LoadBalancerFactory[];
  readonly connPools?: readonly ConnPoolFactory[];
}

/** The built-in factories plus `extra`; throws if a name (or `@type` URL) is registered twice. */
export function createUpstreamRegistries(extra: UpstreamExtensions = {}): UpstreamRegistries {
  return {
    clusterTypes: createClusterTypeRegistry(extra.clusterTypes),
    loadBalancers: createLoadBalancerRegistry(extra.loadBalancers),
    connPools: createConnPoolRegistry(extra.connPools),
  };
}
