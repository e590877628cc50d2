/**
 * {@link RingHashLoadBalancer}: Envoy's `RING_HASH` (Ketama-style consistent hashing).
 *
 * The ring is built as Envoy builds it: every usable host gets `scale · weight / Σweights` entries, where `scale`
 * is the smallest size that gives the lightest host at least one entry per `minimum_ring_size / hosts` share,
 * capped by `maximum_ring_size`; entry `i` of a host sits at `xxHash64("<address:port>_<i>")`. A request with
 * hash `h` goes to the first entry at or after `h`, wrapping around. Positions are kept as the upper 52 bits of the
 * 64-bit hash (exact in a double, see `hashKey52`), so the ring order is Envoy's except between entries that share
 * their upper 52 bits. Adding or removing one of N hosts moves about 1/N of the keys.
 *
 * Without a hash (no `hash_policy`, or none of its inputs present) the pick is random, as Envoy's.
 *
 * @module
 */
import type { Host, LbContext } from "../../api/upstream.ts";
import { BaseLoadBalancer, type HostPicker, type HostSource, type LbOptions, type PickerContext } from "./_common.ts";
import { randomPicker } from "./random.ts";
import { LB_POLICY_TYPE_PREFIX, type LoadBalancerFactory } from "./factory.ts";
import { xxhash64Parts } from "./xxhash64.ts";

/** Options of the ring-hash balancer (`ring_hash_lb_config`). */
export interface RingHashOptions extends LbOptions {
  minimumRingSize?: number;
  maximumRingSize?: number;
}

const enc = new TextEncoder();

/** Consistent hashing on a ring; see the module doc. */
export class RingHashLoadBalancer extends BaseLoadBalancer {
  readonly #min: number;
  readonly #max: number;
  protected override readonly hashChoosesPriority = true;
  #last: RingPicker | undefined;

  constructor(source: HostSource, options: RingHashOptions = {}) {
    super(source, options);
    this.#min = options.minimumRingSize ?? 1024;
    this.#max = options.maximumRingSize ?? 8_388_608;
  }

  /** Entries on the ring the balancer picks from now (for tests and stats). */
  get ringSize(): number {
    this.chooseHost({ hashKey: 0 });
    return this.#last?.size ?? 0;
  }

  protected createPicker(hosts: readonly Host[], ctx: PickerContext): HostPicker {
    const random = randomPicker(hosts, ctx);
    const ring = new RingPicker(hosts, this.#min, this.#max, random);
    return {
      hosts,
      pick: (c) => {
        this.#last = ring;
        return ring.pick(c);
      },
    };
  }
}

/** The ring of one host list. */
class RingPicker implements HostPicker {
  readonly hosts: readonly Host[];
  readonly #positions: Float64Array;
  readonly #owners: Host[];
  readonly #random: HostPicker;

  constructor(hosts: readonly Host[], min: number, max: number, random: HostPicker) {
    this.hosts = hosts;
    this.#random = random;
    const total = hosts.reduce((n, h) => n + h.weight, 0);
    let minNorm = 1;
    for (const h of hosts) minNorm = Math.min(minNorm, h.weight / total);
    const scale = Math.min(Math.ceil(minNorm * min) / minNorm, max);
    const pos: number[] = [];
    const owners: Host[] = [];
    let current = 0;
    let target = 0;
    for (const h of hosts) {
      target += scale * (h.weight / total);
      let i = 0;
      while (current < target) {
        const [hi, lo] = xxhash64Parts(enc.encode(`${h.key}_${i}`));
        pos.push(hi * 0x100000 + (lo >>> 12));
        owners.push(h);
        i++;
        current++;
      }
    }
    const order = pos.map((_, i) => i).sort((a, b) => pos[a]! - pos[b]! || a - b);
    this.#positions = Float64Array.from(order, (i) => pos[i]!);
    this.#owners = order.map((i) => owners[i]!);
  }

  get size(): number {
    return this.#positions.length;
  }

  pick(ctx?: LbContext): Host | undefined {
    const key = ctx?.hashKey;
    const ring = this.#positions;
    if (ring.length === 0) return undefined;
    if (key === undefined) return this.#random.pick(ctx);
    let lo = 0, hi = ring.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ring[mid]! < key) lo = mid + 1;
      else hi = mid;
    }
    return this.#owners[lo === ring.length ? 0 : lo];
  }
}

/**
 * `RING_HASH` (Envoy's `envoy.load_balancing_policies.ring_hash`): a {@link RingHashLoadBalancer} with the
 * cluster's `ring_hash_lb_config`. Slow start does not apply (as Envoy).
 */
export const ringHashLbFactory: LoadBalancerFactory = {
  name: "RING_HASH",
  configTypes: [`${LB_POLICY_TYPE_PREFIX}ring_hash.v3.RingHash`],
  create(config, context) {
    return new RingHashLoadBalancer(context.source, { ...context, slowStart: undefined, ...(config.ringHash ?? {}) });
  },
};
