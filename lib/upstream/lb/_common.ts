/**
 * Shared machinery of the load balancers (Envoy's `LoadBalancerBase` and `ZoneAwareLoadBalancerBase`): the host
 * source they read, the priority and locality choice made before any policy picks a host, and the `avoid`
 * handling for retries.
 *
 * On every host-set version the base groups the hosts by priority, computes the per-priority load and panic
 * flags (`priority_load.ts`: overprovisioning factor, degraded load, `healthy_panic_threshold`, total panic) and,
 * with `locality_weighted_lb_config`, the localities of each priority. A pick then:
 * 1. chooses a priority and whether its healthy or its degraded hosts serve (by a random number, or by the request
 *    hash for hashing balancers), as Envoy's `choosePriority`;
 * 2. in panic, uses all the priority's hosts (but EDS-excluded ones; all hosts if every one is excluded) and counts
 *    `lb_healthy_panic`;
 * 3. otherwise, with locality weighting, chooses a locality by `locality weight × min(1, factor · eligible /
 *    (total − excluded))` (smooth weighted round robin, Envoy uses an EDF schedule with the same shares);
 * 4. lets the policy pick inside that host list ({@link HostPicker}, built lazily once per list and host-set
 *    version: a round-robin cursor, a ring, a Maglev table).
 *
 * A single-priority cluster without locality weighting, all hosts healthy, takes the fast path: one picker over
 * the healthy hosts, no random draw for the priority.
 *
 * @module
 */
import type { Host, LbContext } from "../../api/upstream.ts";
import { choosePriority, computePriorityLoad, type PriorityCounts, type PriorityLoad } from "./priority_load.ts";

/**
 * What a balancer reads: the cluster's hosts, a version that changes when the set, any host's priority, weight or
 * health changes, and the `ClusterLoadAssignment.policy` of the last endpoint list.
 */
export interface HostSource {
  readonly hosts: readonly Host[];
  /** Bumped on every membership, priority, weight or health change (and policy change). */
  readonly hostsVersion: number;
  /** `overprovisioning_factor` in percent (default 140). */
  readonly overprovisioningFactor?: number | undefined;
  /** `weighted_priority_health` (default false). */
  readonly weightedPriorityHealth?: boolean | undefined;
}

/**
 * What the balancers read of a host beyond {@link Host}; every field is optional (a plain `Host` is a healthy host
 * of priority 0 in no locality). `HostImpl` has them all.
 */
export interface LbHost extends Host {
  /** `performance.now()` when the host was added or last became healthy after failing active health checks. */
  readonly slowStartSinceMs?: number | undefined;
  /** Priority of the host's endpoint group (0 = highest). */
  readonly priority?: number;
  /** Degraded (EDS `DEGRADED`): used only for the load its priority cannot serve with healthy hosts. */
  readonly degraded?: boolean;
  /** Excluded from balancing and from the health ratios (EDS `DRAINING`, pending first health check, ...). */
  readonly excluded?: boolean;
  /** Identity of the host's locality ("" for none). */
  readonly localityKey?: string;
  /** `load_balancing_weight` of the host's locality, if set. */
  readonly localityWeight?: number | undefined;
}

/** A host that may be in slow start (`HostImpl` is one). */
export type SlowStartHost = LbHost;

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
  /** `healthy_panic_threshold` in percent (default 50): below it, all hosts of a priority are used. */
  panicThreshold?: number;
  /** Called on each pick made in panic mode (`lb_healthy_panic`). */
  onPanic?: () => void;
  /** Slow start of new hosts (round robin and least request only, as Envoy). */
  slowStart?: SlowStartOptions | undefined;
  /** Monotonic clock in ms (default `performance.now`); injectable for tests. */
  now?: () => number;
  /** `common_lb_config.locality_weighted_lb_config`: choose a locality by weight and health first. */
  localityWeighted?: boolean;
}

/** What a policy's {@link HostPicker} may use from its balancer. */
export interface PickerContext {
  /** Uniform random in [0, 1). */
  readonly random: () => number;
  /** True while some host of the cluster is in its slow-start window (pickers then weigh every pick). */
  slowStartActive(): boolean;
  /** A host's weight scaled by slow start. */
  effectiveWeight(h: Host): number;
}

/** A policy's state over one list of hosts (non-empty): picks one of them. */
export interface HostPicker {
  /** The hosts it picks from. */
  readonly hosts: readonly Host[];
  pick(ctx?: LbContext): Host | undefined;
}

/** How many times a balancer re-picks when the pick is in `avoid` before filtering explicitly. */
const AVOID_ATTEMPTS = 3;

/** One locality of one priority. */
interface LocalityState {
  readonly weight: number;
  readonly healthy: Host[];
  readonly degraded: Host[];
  /** Hosts that are not excluded. */
  count: number;
}

/** The hosts of one priority, split by health (and locality). */
interface PriorityState {
  readonly priority: number;
  readonly hosts: Host[];
  readonly healthy: Host[];
  readonly degraded: Host[];
  excluded: number;
  totalWeight: number;
  healthyWeight: number;
  degradedWeight: number;
  excludedWeight: number;
  /** With locality weighting: the localities, and their smooth-WRR state per availability. */
  localities: LocalityState[];
  healthyLocWeights: number[];
  degradedLocWeights: number[];
  healthyLocCurrent: number[];
  degradedLocCurrent: number[];
}

function newPriority(priority: number): PriorityState {
  return {
    priority,
    hosts: [],
    healthy: [],
    degraded: [],
    excluded: 0,
    totalWeight: 0,
    healthyWeight: 0,
    degradedWeight: 0,
    excludedWeight: 0,
    localities: [],
    healthyLocWeights: [],
    degradedLocWeights: [],
    healthyLocCurrent: [],
    degradedLocCurrent: [],
  };
}

const EMPTY_LOAD: PriorityLoad = {
  health: [0],
  degradedAvailability: [0],
  healthyLoad: [100],
  degradedLoad: [0],
  panic: [false],
};

/** The common part of the balancers: see the module doc. */
export abstract class BaseLoadBalancer implements LoadBalancer {
  protected readonly random: () => number;
  #source: HostSource;
  #version = -1;
  #panicThreshold: number;
  #onPanic: (() => void) | undefined;
  readonly #slowStart: SlowStartOptions | undefined;
  readonly #localityWeighted: boolean;
  /** Monotonic clock in ms. */
  protected readonly now: () => number;
  /** Until when (ms, `now()` clock) some host is still in its slow-start window; 0 = none. */
  #slowStartUntil = 0;
  #priorities: PriorityState[] = [];
  #load: PriorityLoad = EMPTY_LOAD;
  /** The priority that takes all the load to its healthy hosts, if one does (no random draw needed). */
  #single: PriorityState | undefined;
  #total = 0;
  /** Pickers by host list, built lazily; dropped on every refresh. */
  #pickers = new Map<Host[], HostPicker>();
  /** Panic lists by priority (built lazily). */
  #panicLists = new Map<number, Host[]>();
  #lastList: Host[] = [];
  readonly #pickerContext: PickerContext;
  /** True for hashing balancers: the request hash also chooses the priority (Envoy's thread-aware balancers). */
  protected readonly hashChoosesPriority: boolean = false;

  constructor(source: HostSource, options: LbOptions = {}) {
    this.#source = source;
    this.random = options.random ?? Math.random;
    this.#panicThreshold = options.panicThreshold ?? 50;
    this.#onPanic = options.onPanic;
    this.#slowStart = options.slowStart;
    this.#localityWeighted = options.localityWeighted ?? false;
    this.now = options.now ?? (() => performance.now());
    this.#pickerContext = {
      random: this.random,
      slowStartActive: () => this.slowStartActive,
      effectiveWeight: (h) => this.effectiveWeight(h),
    };
  }

  /**
   * True while some host is in its slow-start window: balancers then weigh every pick with
   * {@link effectiveWeight} instead of their cached schedules.
   */
  protected get slowStartActive(): boolean {
    if (this.#slowStartUntil === 0) return false;
    if (this.now() < this.#slowStartUntil) return true;
    this.#slowStartUntil = 0;
    // Rebuild the pickers on the next pick: their schedules go back to plain weights.
    this.#version = -1;
    return false;
  }

  /**
   * A host's weight scaled by slow start (Envoy's formula): `weight · max(min_weight_percent / 100,
   * (elapsed / window) ^ (1 / aggression))` inside the window, `weight` after it.
   */
  protected effectiveWeight(h: Host): number {
    const ss = this.#slowStart;
    const since = (h as LbHost).slowStartSinceMs;
    if (ss === undefined || since === undefined) return h.weight;
    const elapsed = this.now() - since;
    if (elapsed >= ss.windowMs) return h.weight;
    const f = Math.pow(Math.max(elapsed, 1) / ss.windowMs, 1 / ss.aggression);
    return h.weight * Math.max(ss.minWeightPercent / 100, f);
  }

  /** True if some priority that takes load is in panic (too few healthy hosts: all of its hosts are used). */
  get panic(): boolean {
    this.#refresh();
    const l = this.#load;
    return l.panic.some((p, i) => p && (l.healthyLoad[i]! > 0 || l.degradedLoad[i]! > 0));
  }

  /** The current per-priority load (for tests and admin). */
  get priorityLoad(): PriorityLoad {
    this.#refresh();
    return this.#load;
  }

  #refresh(): void {
    const source = this.#source;
    if (this.#version === source.hostsVersion) return;
    this.#version = source.hostsVersion;
    this.#pickers.clear();
    this.#panicLists.clear();
    const all = source.hosts;
    this.#total = all.length;
    const byPriority: PriorityState[] = [];
    const localityWeighted = this.#localityWeighted;
    const locIndex: Map<string, number>[] = [];
    for (const host of all) {
      const h = host as LbHost;
      const p = h.priority ?? 0;
      let ps = byPriority[p];
      if (ps === undefined) {
        for (let i = byPriority.length; i <= p; i++) byPriority[i] = newPriority(i);
        ps = byPriority[p]!;
      }
      ps.hosts.push(h);
      ps.totalWeight += h.weight;
      const excluded = h.excluded === true;
      if (excluded) {
        ps.excluded++;
        ps.excludedWeight += h.weight;
      }
      let loc: LocalityState | undefined;
      if (localityWeighted) {
        const key = h.localityKey ?? "";
        let m = locIndex[p];
        if (m === undefined) locIndex[p] = m = new Map();
        let li = m.get(key);
        if (li === undefined) {
          li = ps.localities.length;
          m.set(key, li);
          ps.localities.push({ weight: h.localityWeight ?? 0, healthy: [], degraded: [], count: 0 });
        }
        loc = ps.localities[li]!;
        if (!excluded) loc.count++;
      }
      if (excluded) {
        // Neither healthy nor degraded: only a panicking priority whose hosts are all excluded uses it.
      } else if (h.healthy) {
        ps.healthy.push(h);
        ps.healthyWeight += h.weight;
        loc?.healthy.push(h);
      } else if (h.degraded === true) {
        ps.degraded.push(h);
        ps.degradedWeight += h.weight;
        loc?.degraded.push(h);
      }
    }
    this.#priorities = byPriority;
    const counts: PriorityCounts[] = byPriority.map((ps) => ({
      total: ps.hosts.length,
      healthy: ps.healthy.length,
      degraded: ps.degraded.length,
      excluded: ps.excluded,
      totalWeight: ps.totalWeight,
      healthyWeight: ps.healthyWeight,
      degradedWeight: ps.degradedWeight,
      excludedWeight: ps.excludedWeight,
    }));
    const factor = source.overprovisioningFactor ?? 140;
    this.#load = computePriorityLoad(counts, {
      overprovisioningFactor: factor,
      weightedPriorityHealth: source.weightedPriorityHealth ?? false,
      panicThreshold: this.#panicThreshold,
    });
    if (localityWeighted) {
      for (const ps of byPriority) {
        const eff = (n: (l: LocalityState) => number) =>
          ps.localities.map((l) => l.count === 0 ? 0 : l.weight * Math.min(1, (factor / 100) * n(l) / l.count));
        ps.healthyLocWeights = eff((l) => l.healthy.length);
        ps.degradedLocWeights = eff((l) => l.degraded.length);
        ps.healthyLocCurrent = ps.localities.map(() => 0);
        ps.degradedLocCurrent = ps.localities.map(() => 0);
      }
    }
    const first = this.#load.healthyLoad.indexOf(100);
    this.#single = first >= 0 && !this.#load.panic[first] && !localityWeighted ? byPriority[first] : undefined;
    this.#slowStartUntil = 0;
    const ss = this.#slowStart;
    if (ss !== undefined) {
      const now = this.now();
      for (const h of all) {
        const since = (h as LbHost).slowStartSinceMs;
        if (since !== undefined && since + ss.windowMs > now) {
          this.#slowStartUntil = Math.max(this.#slowStartUntil, since + ss.windowMs);
        }
      }
    }
  }

  /** The hosts a panicking priority balances over: all but excluded ones (all, if every one is excluded). */
  #panicList(ps: PriorityState): Host[] {
    let list = this.#panicLists.get(ps.priority);
    if (list === undefined) {
      list = ps.excluded === 0 || ps.excluded === ps.hosts.length
        ? ps.hosts
        : ps.hosts.filter((h) => (h as LbHost).excluded !== true);
      this.#panicLists.set(ps.priority, list);
    }
    return list;
  }

  /** Smooth weighted round robin over locality weights; -1 if every weight is 0. */
  #chooseLocality(weights: readonly number[], current: number[]): number {
    let best = -1;
    let total = 0;
    for (let i = 0; i < weights.length; i++) {
      const w = weights[i]!;
      if (w <= 0) continue;
      total += w;
      current[i]! += w;
      if (best < 0 || current[i]! > current[best]!) best = i;
    }
    if (best >= 0) current[best]! -= total;
    return best;
  }

  /** Chooses the host list of one pick (priority, availability, locality); empty if there is none. */
  #chooseList(ctx: LbContext | undefined, countPanic: boolean): Host[] {
    const single = this.#single;
    if (single !== undefined) return single.healthy;
    const hash = this.hashChoosesPriority && ctx?.hashKey !== undefined
      ? ctx.hashKey
      : Math.floor(this.random() * 0x100000000);
    const { priority, degraded } = choosePriority(this.#load, hash);
    const ps = this.#priorities[priority];
    if (ps === undefined) return [];
    if (this.#load.panic[priority]) {
      if (countPanic) this.#onPanic?.();
      return this.#panicList(ps);
    }
    if (this.#localityWeighted && ps.localities.length > 0) {
      const li = degraded
        ? this.#chooseLocality(ps.degradedLocWeights, ps.degradedLocCurrent)
        : this.#chooseLocality(ps.healthyLocWeights, ps.healthyLocCurrent);
      const loc = li >= 0 ? ps.localities[li] : undefined;
      if (loc !== undefined) return degraded ? loc.degraded : loc.healthy;
    }
    return degraded ? ps.degraded : ps.healthy;
  }

  #pickFrom(list: Host[], ctx: LbContext | undefined): Host | undefined {
    this.#lastList = list;
    if (list.length === 0) return undefined;
    let p = this.#pickers.get(list);
    if (p === undefined) {
      p = this.createPicker(list, this.#pickerContext);
      this.#pickers.set(list, p);
    }
    return p.pick(ctx);
  }

  chooseHost(ctx?: LbContext): Host | undefined {
    this.#refresh();
    if (this.#total === 0) return undefined;
    let h = this.#pickFrom(this.#chooseList(ctx, true), ctx);
    const avoid = ctx?.avoid;
    if (h === undefined || avoid === undefined || avoid.size === 0 || !avoid.has(h)) return h;
    for (let i = 1; i < AVOID_ATTEMPTS; i++) {
      h = this.#pickFrom(this.#chooseList(ctx, false), ctx);
      if (h !== undefined && !avoid.has(h)) return h;
    }
    // Re-picking did not help (few hosts, or unlucky): choose among the others explicitly.
    const others = this.#lastList.filter((x) => !avoid.has(x));
    if (others.length === 0) return h;
    return others[Math.floor(this.random() * others.length)];
  }

  /** Builds the policy's picker over `hosts` (non-empty, fixed until the next host-set version). */
  protected abstract createPicker(hosts: readonly Host[], ctx: PickerContext): HostPicker;
}

/** True if every host has the same weight. */
export function equalWeights(hosts: readonly Host[]): boolean {
  for (let i = 1; i < hosts.length; i++) if (hosts[i]!.weight !== hosts[0]!.weight) return false;
  return true;
}
