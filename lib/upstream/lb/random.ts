/**
 * {@link RandomLoadBalancer}: Envoy's `RANDOM` — a uniformly random usable host. Like Envoy's, it ignores
 * weights.
 *
 * @module
 */
import type { Host } from "../../api/upstream.ts";
import { BaseLoadBalancer } from "./_common.ts";

/** Uniform random choice among usable hosts. */
export class RandomLoadBalancer extends BaseLoadBalancer {
  protected hostsChanged(): void {}

  protected pick(): Host | undefined {
    return this.usable[Math.floor(this.random() * this.usable.length)];
  }
}
