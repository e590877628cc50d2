/**
 * Shared machinery of the load balancers: the host source they read, the usable-host computation (healthy hosts,
 * or all hosts in panic mode) cached by host-set version, and the `avoid` handling for retries.
 *
 * The structure keeps room for priorities, localities and hashing balancers: a balancer only sees the list of
 * usable hosts of the chosen priority and the {@link LbContext}.
 *
 * @module
 */
import type { Host, LbContext } from "../../api/upstream.ts";

/** What a balancer reads: the cluster's hosts and a version that changes when the set or any health changes. */
export interface HostSource {
  readonly hosts: readonly Host[];
  /** Bumped on every membership or health change. */
  readonly hostsVersion: number;
}

/** A load balancer of one cluster. */
export interface LoadBalancer {
  /** Picks a host, or undefined if the cluster has none. */
  chooseHost(ctx?: LbContext): Host | undefined;
}

/** Options shared by the balancers. */
export interface LbOptions {
  /** Uniform random in [0, 1); injectable for tests. */
  random?: () => number;
  /** `healthy_panic_threshold` in percent (default 50): below it, all hosts are used. */
  panicThreshold?: number;
  /** Called on each pick made in panic mode (`lb_healthy_panic`). */
  onPanic?: () => void;
}

/** How many times a balancer re-picks when the pick is in `avoid` before filtering explicitly. */
const AVOID_ATTEMPTS = 3;

/** The common part of the balancers: see the module doc. */
export abstract class BaseLoadBalancer implements LoadBalancer {
  protected readonly random: () => number;
  /** The hosts to pick from (healthy, or all in panic). */
  protected usable: Host[] = [];
  #source: HostSource;
  #version = -1;
  #panic = false;
  #panicThreshold: number;
  #onPanic: (() => void) | undefined;

  constructor(source: HostSource, options: LbOptions = {}) {
    this.#source = source;
    this.random = options.random ?? Math.random;
    this.#panicThreshold = options.panicThreshold ?? 50;
    this.#onPanic = options.onPanic;
  }

  /** True if the last refresh found too few healthy hosts and uses all of them. */
  get panic(): boolean {
    this.#refresh();
    return this.#panic;
  }

  #refresh(): void {
    if (this.#version === this.#source.hostsVersion) return;
    this.#version = this.#source.hostsVersion;
    const all = this.#source.hosts;
    const healthy = all.filter((h) => h.healthy);
    this.#panic = all.length > 0 && healthy.length * 100 < this.#panicThreshold * all.length;
    this.usable = this.#panic ? all.slice() : healthy;
    this.hostsChanged();
  }

  chooseHost(ctx?: LbContext): Host | undefined {
    this.#refresh();
    const hosts = this.usable;
    if (hosts.length === 0) return undefined;
    if (this.#panic) this.#onPanic?.();
    let h = this.pick(ctx);
    const avoid = ctx?.avoid;
    if (h === undefined || avoid === undefined || avoid.size === 0 || !avoid.has(h)) return h;
    for (let i = 1; i < AVOID_ATTEMPTS; i++) {
      h = this.pick(ctx);
      if (h !== undefined && !avoid.has(h)) return h;
    }
    // Re-picking did not help (few hosts, or unlucky): choose among the others explicitly.
    const others = hosts.filter((x) => !avoid.has(x));
    if (others.length === 0) return h;
    return others[Math.floor(this.random() * others.length)];
  }

  /** Picks one of `this.usable` (non-empty). */
  protected abstract pick(ctx?: LbContext): Host | undefined;

  /** `this.usable` was recomputed. */
  protected abstract hostsChanged(): void;
}

/** True if every host has the same weight. */
export function equalWeights(hosts: readonly Host[]): boolean {
  for (let i = 1; i < hosts.length; i++) if (hosts[i]!.weight !== hosts[0]!.weight) return false;
  return true;
}
