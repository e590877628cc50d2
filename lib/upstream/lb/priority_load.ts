/**
 * {@link computePriorityLoad}: how a cluster's traffic splits across its priorities (Envoy's
 * `LoadBalancerBase::recalculatePerPriorityState`, `recalculatePerPriorityPanic` and
 * `recalculateLoadInTotalPanic`), in Envoy's integer arithmetic so the percentages match Envoy's.
 *
 * - The health of priority P is `min(100, overprovisioning_factor · healthy / (total − excluded))` (factor in
 *   percent, default 140), its degraded availability the same over degraded hosts; with
 *   `weighted_priority_health` the counts are sums of host weights.
 * - The sum over priorities of health and degraded availability, capped at 100, is the normalized total
 *   availability. Load goes to healthy hosts top-down (P gets `min(left, health_P · 100 / normalized)`), what is
 *   left to degraded hosts the same way, and rounding leftovers to the first priority with availability.
 * - A priority is in panic when `100 · (healthy + degraded) / (total − excluded)` is below
 *   `healthy_panic_threshold` (or when the normalized total availability is 0). When every priority is in panic,
 *   load is split by total host counts ("total panic"). With the threshold 0 and nothing available, P0 takes all
 *   the load (and finds no host).
 *
 * @module
 */

/** What the load computation needs to know about one priority's hosts. */
export interface PriorityCounts {
  /** All hosts of the priority (healthy, degraded, unhealthy, excluded). */
  readonly total: number;
  readonly healthy: number;
  readonly degraded: number;
  /** Hosts excluded from the ratios (pending first health check, immediate health-check failure, EDS DRAINING). */
  readonly excluded: number;
  /** Weight sums, for `weighted_priority_health`. */
  readonly totalWeight?: number;
  readonly healthyWeight?: number;
  readonly degradedWeight?: number;
  readonly excludedWeight?: number;
}

/** Options of {@link computePriorityLoad}. */
export interface PriorityLoadOptions {
  /** `ClusterLoadAssignment.policy.overprovisioning_factor` in percent (default 140). */
  readonly overprovisioningFactor?: number;
  /** `ClusterLoadAssignment.policy.weighted_priority_health` (default false). */
  readonly weightedPriorityHealth?: boolean;
  /** `common_lb_config.healthy_panic_threshold` in percent (default 50). */
  readonly panicThreshold?: number;
}

/** The result: per priority, percent of requests to its healthy and to its degraded hosts, and its panic flag. */
export interface PriorityLoad {
  /** Per-priority health (0–100) after the overprovisioning factor. */
  readonly health: number[];
  /** Per-priority degraded availability (0–100). */
  readonly degradedAvailability: number[];
  /** Percent of requests for each priority's healthy hosts (all hosts when it is in panic). */
  readonly healthyLoad: number[];
  /** Percent of requests for each priority's degraded hosts. */
  readonly degradedLoad: number[];
  /** True for a priority in panic: it balances over all its hosts. */
  readonly panic: boolean[];
}

/** Distributes `total` over priorities by availability; returns the first available priority and what is left. */
function distribute(
  out: number[],
  availability: readonly number[],
  total: number,
  normalized: number,
): [number, number] {
  let first = -1;
  for (let i = 0; i < availability.length; i++) {
    const a = availability[i]!;
    if (first < 0 && a > 0) first = i;
    const load = Math.min(total, Math.floor(a * 100 / normalized));
    out[i] = load;
    total -= load;
  }
  return [first, total];
}

/** Computes the load split; see the module doc. */
export function computePriorityLoad(
  priorities: readonly PriorityCounts[],
  options: PriorityLoadOptions = {},
): PriorityLoad {
  const factor = options.overprovisioningFactor ?? 140;
  const weighted = options.weightedPriorityHealth ?? false;
  const threshold = Math.min(100, options.panicThreshold ?? 50);
  const n = Math.max(1, priorities.length);
  const health = new Array<number>(n).fill(0);
  const degradedAvailability = new Array<number>(n).fill(0);
  const healthyLoad = new Array<number>(n).fill(0);
  const degradedLoad = new Array<number>(n).fill(0);
  const panic = new Array<boolean>(n).fill(false);
  let sum = 0;
  for (let i = 0; i < priorities.length; i++) {
    const p = priorities[i]!;
    const count = p.total - p.excluded;
    if (count <= 0) continue;
    let healthy = p.healthy, degraded = p.degraded, total = count;
    if (weighted) {
      healthy = p.healthyWeight ?? p.healthy;
      degraded = p.degradedWeight ?? p.degraded;
      total = (p.totalWeight ?? p.total) - (p.excludedWeight ?? p.excluded);
    }
    if (total <= 0) continue;
    health[i] = Math.min(100, Math.floor(factor * healthy / total));
    degradedAvailability[i] = Math.min(100, Math.floor(factor * degraded / total));
    sum += health[i]! + degradedAvailability[i]!;
  }
  const normalized = Math.min(100, sum);
  if (normalized > 0) {
    const [firstHealthy, left] = distribute(healthyLoad, health, 100, normalized);
    const [firstDegraded, rest] = distribute(degradedLoad, degradedAvailability, left, normalized);
    if (rest !== 0) {
      if (firstHealthy >= 0) healthyLoad[firstHealthy]! += rest;
      else degradedLoad[firstDegraded]! += rest;
    }
  }
  if (threshold === 0 && normalized === 0) {
    healthyLoad[0] = 100;
    return { health, degradedAvailability, healthyLoad, degradedLoad, panic };
  }
  for (let i = 0; i < n; i++) {
    const p = priorities[i];
    if (normalized === 0 || p === undefined) {
      panic[i] = true;
      continue;
    }
    const count = p.total - p.excluded;
    const pct = count <= 0 ? 0 : 100 * (p.healthy + p.degraded) / count;
    panic[i] = pct < threshold;
  }
  if (panic.every((x) => x)) {
    // Total panic: split by host counts, whatever their health.
    const all = priorities.reduce((s, p) => s + p.total, 0);
    healthyLoad.fill(0);
    degradedLoad.fill(0);
    if (all === 0) {
      healthyLoad[0] = 100;
    } else {
      let left = 100;
      let first = -1;
      for (let i = 0; i < priorities.length; i++) {
        const t = priorities[i]!.total;
        if (first < 0 && t > 0) first = i;
        const load = Math.floor(100 * t / all);
        healthyLoad[i] = load;
        left -= load;
      }
      healthyLoad[first]! += left;
    }
  }
  return { health, degradedAvailability, healthyLoad, degradedLoad, panic };
}

/**
 * Envoy's `choosePriority`: maps `hash` (any non-negative integer; a random one for non-hashing balancers) to a
 * priority and whether its healthy or degraded hosts serve, by walking the healthy loads, then the degraded loads.
 */
export function choosePriority(load: PriorityLoad, hash: number): { priority: number; degraded: boolean } {
  const h = (hash % 100) + 1;
  let acc = 0;
  const hl = load.healthyLoad;
  for (let i = 0; i < hl.length; i++) {
    acc += hl[i]!;
    if (h <= acc) return { priority: i, degraded: false };
  }
  const dl = load.degradedLoad;
  for (let i = 0; i < dl.length; i++) {
    acc += dl[i]!;
    if (h <= acc) return { priority: i, degraded: true };
  }
  return { priority: 0, degraded: false };
}
