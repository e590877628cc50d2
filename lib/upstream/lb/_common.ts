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

/** A host that may be in slow start (`HostImpl` is one). */
export interface SlowStartHost extends Host {
  /** `performance.now()` when the host was added or last became healthy after failing active health checks. */
  readonly slowStartSinceMs?: number | undefined;
}

/** `slow_start_config`, as the balancers use it. */
export interface SlowStartOptions {
  readonly windowMs: number;
  readonly aggression: number;
  readonly minWeightPercent: number;
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
  /** Slow start of new hosts (round robin and least request only, as Envoy). */
  slowStart?: SlowStartOptions | undefined;
  /** Monotonic clock in ms (default `performance.now`); injectable for tests. */
  now?: () => number;
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
  readonly #slowStart: SlowStartOptions | undefined;
  /** Monotonic clock in ms. */
  protected readonly now: () => number;
  /** Until when (ms, `now()` clock) some usable host is still in its slow-start window; 0 = none. */
  #slowStartUntil = 0;

  constructor(source: HostSource, options: LbOptions = {}) {
    this.#source = source;
    this.random = options.random ?? Math.random;
    this.#panicThreshold = options.panicThreshold ?? 50;
    this.#onPanic = options.onPanic;
    this.#slowStart = options.slowStart;
    this.now = options.now ?? (() => performance.now());
  }

  /**
   * True while some usable host is in its slow-start window: balancers then weigh every pick with
   * {@link effectiveWeight} instead of their cached schedules.
   */
  protected get slowStartActive(): boolean {
    if (this.#slowStartUntil === 0) return false;
    if (this.now() < this.#slowStartUntil) return true;
    this.#slowStartUntil = 0;
    this.hostsChanged();
    return false;
  }

  /**
   * A host's weight scaled by slow start (Envoy's formula): `weight · max(min_weight_percent / 100,
   * (elapsed / window) ^ (1 / aggression))` inside the window, `weight` after it.
   */
  protected effectiveWeight(h: Host): number {
    const ss = this.#slowStart;
    const since = (h as SlowStartHost).slowStartSinceMs;
    if (ss === undefined || since === undefined) return h.weight;
    const elapsed = this.now() - since;
    if (elapsed >= ss.windowMs) return h.weight;
    const f = Math.pow(Math.max(elapsed, 1) / ss.windowMs, 1 / ss.aggression);
    return h.weight * Math.max(ss.minWeightPercent / 100, f);
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
    this.#slowStartUntil = 0;
    const ss = this.#slowStart;
    if (ss !== undefined) {
      const now = this.now();
      for (const h of this.usable) {
        const since = (h as SlowStartHost).slowStartSinceMs;
        if (since !== undefined && since + ss.windowMs > now) {
          this.#slowStartUntil = Math.max(this.#slowStartUntil, since + ss.windowMs);
        }
      }
    }
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
