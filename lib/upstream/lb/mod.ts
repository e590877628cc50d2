/**
 * The built-in load balancers and {@link createLoadBalancer}, which picks one by policy name.
 *
 * @module
 */
import type { LbPolicy, LeastRequestConfig } from "../config.ts";
import type { HostSource, LbOptions, LoadBalancer } from "./_common.ts";
import { LeastRequestLoadBalancer } from "./least_request.ts";
import { RandomLoadBalancer } from "./random.ts";
import { RoundRobinLoadBalancer } from "./round_robin.ts";

export { BaseLoadBalancer, equalWeights } from "./_common.ts";
export type { HostSource, LbOptions, LoadBalancer } from "./_common.ts";
export { LeastRequestLoadBalancer } from "./least_request.ts";
export type { LeastRequestOptions } from "./least_request.ts";
export { RandomLoadBalancer } from "./random.ts";
export { RoundRobinLoadBalancer } from "./round_robin.ts";

/** Creates the balancer of a policy over a host source. */
export function createLoadBalancer(
  policy: LbPolicy,
  source: HostSource,
  options: LbOptions & { leastRequest?: LeastRequestConfig } = {},
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
  }
}
