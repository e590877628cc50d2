/**
 * The built-in load balancers and {@link createLoadBalancer}, which picks one by policy name.
 *
 * @module
 */
import type { LbPolicy, LeastRequestConfig } from "../config.ts";
import type { MaglevConfig, RingHashConfig } from "../resilience_config.ts";
import { MaglevLoadBalancer } from "./maglev.ts";
import { RingHashLoadBalancer } from "./ring_hash.ts";
import type { HostSource, LbOptions, LoadBalancer } from "./_common.ts";
import { LeastRequestLoadBalancer } from "./least_request.ts";
import { RandomLoadBalancer } from "./random.ts";
import { RoundRobinLoadBalancer } from "./round_robin.ts";

export { BaseLoadBalancer, equalWeights } from "./_common.ts";
export type { HostSource, LbOptions, LoadBalancer, SlowStartHost, SlowStartOptions } from "./_common.ts";
export { MaglevLoadBalancer } from "./maglev.ts";
export type { MaglevOptions } from "./maglev.ts";
export { RingHashLoadBalancer } from "./ring_hash.ts";
export type { RingHashOptions } from "./ring_hash.ts";
export { hashKey52, xxhash64Hex, xxhash64Parts } from "./xxhash64.ts";
export { LeastRequestLoadBalancer } from "./least_request.ts";
export type { LeastRequestOptions } from "./least_request.ts";
export { RandomLoadBalancer } from "./random.ts";
export { RoundRobinLoadBalancer } from "./round_robin.ts";

/** Creates the balancer of a policy over a host source. */
export function createLoadBalancer(
  policy: LbPolicy,
  source: HostSource,
  options: LbOptions & { leastRequest?: LeastRequestConfig; ringHash?: RingHashConfig; maglev?: MaglevConfig } = {},
): LoadBalancer {
  switch (policy) {
    case "ROUND_ROBIN":
      return new RoundRobinLoadBalancer(source, options);
    case "RANDOM":
      return new RandomLoadBalancer(source, options);
    case "LEAST_REQUEST":
      return new LeastRequestLoadBalancer(source, {
        ...options,
        ...(options.leastRequest
          ? { choiceCount: options.leastRequest.choiceCount, activeRequestBias: options.leastRequest.activeRequestBias }
          : {}),
      });
    case "RING_HASH":
      return new RingHashLoadBalancer(source, { ...options, slowStart: undefined, ...(options.ringHash ?? {}) });
    case "MAGLEV":
      return new MaglevLoadBalancer(source, { ...options, slowStart: undefined, ...(options.maglev ?? {}) });
  }
}
