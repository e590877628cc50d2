/**
 * {@link MaglevLoadBalancer}: Envoy's `MAGLEV` (Google's Maglev consistent hashing, weighted as Envoy weighs it).
 *
 * The lookup table has `table_size` slots (a prime, default 65537). Each usable host has an `offset =
 * xxHash64(key, seed 0) mod M` and `skip = xxHash64(key, seed 1) mod (M − 1) + 1`, where key is `address:port`;
 * hosts take turns claiming their next free slot of the permutation `(offset + skip · j) mod M`, a host of weight
 * w claiming on `w / max_weight` of the turns, until the table is full. A request with hash `h` goes to
 * `table[h mod M]`. Removing or adding one of N hosts changes about 1/N of the slots.
 *
 * @module
 */
import type { Host, LbContext } from "../../api/upstream.ts";
import { BaseLoadBalancer, type HostPicker, type HostSource, type LbOptions, type PickerContext } from "./_common.ts";
import { randomPicker } from "./random.ts";
import { LB_POLICY_TYPE_PREFIX, type LoadBalancerFactory } from "./factory.ts";
import { xxhash64Parts } from "./xxhash64.ts";

/** Options of the Maglev balancer (`maglev_lb_config`). */
export interface MaglevOptions extends LbOptions {
  /** A prime; default 65537. */
  tableSize?: number;
}

const enc = new TextEncoder();

/** `(hi · 2^32 + lo) mod m` without losing precision (m < 2^32). */
function mod64(hi: number, lo: number, m: number): number {
  let r = hi % m;
  r = (r * 65536 + (lo >>> 16)) % m;
  return (r * 65536 + (lo & 0xffff)) % m;
}

/** Maglev consistent hashing; see the module doc. */
export class MaglevLoadBalancer extends BaseLoadBalancer {
  readonly #size: number;
  protected override readonly hashChoosesPriority = true;

  constructor(source: HostSource, options: MaglevOptions = {}) {
    super(source, options);
    this.#size = options.tableSize ?? 65537;
  }

  protected createPicker(hosts: readonly Host[], ctx: PickerContext): HostPicker {
    return new MaglevPicker(hosts, this.#size, randomPicker(hosts, ctx));
  }
}

/** The Maglev table of one host list. */
class MaglevPicker implements HostPicker {
  readonly hosts: readonly Host[];
  readonly #size: number;
  /** Slot → index into `hosts`. */
  readonly #table: Int32Array;
  readonly #random: HostPicker;

  constructor(hosts: readonly Host[], m: number, random: HostPicker) {
    this.hosts = hosts;
    this.#size = m;
    this.#random = random;
    const table = new Int32Array(m).fill(-1);
    const n = hosts.length;
    const offset = new Float64Array(n), skip = new Float64Array(n), next = new Float64Array(n);
    const weight = new Float64Array(n), target = new Float64Array(n);
    let maxW = 0;
    const total = hosts.reduce((s, h) => s + h.weight, 0);
    for (let i = 0; i < n; i++) {
      const h = hosts[i]!;
      const key = enc.encode(h.key);
      const [h0, l0] = xxhash64Parts(key, 0);
      const [h1, l1] = xxhash64Parts(key, 1);
      offset[i] = mod64(h0, l0, m);
      skip[i] = mod64(h1, l1, m - 1) + 1;
      weight[i] = h.weight / total;
      maxW = Math.max(maxW, weight[i]!);
    }
    let filled = 0;
    for (let iteration = 1; filled < m; iteration++) {
      for (let i = 0; i < n && filled < m; i++) {
        if (iteration * weight[i]! < target[i]!) continue;
        target[i]! += maxW;
        let c = (offset[i]! + skip[i]! * next[i]!) % m;
        while (table[c] !== -1) {
          next[i]!++;
          c = (offset[i]! + skip[i]! * next[i]!) % m;
        }
        table[c] = i;
        next[i]!++;
        filled++;
      }
    }
    this.#table = table;
  }

  pick(ctx?: LbContext): Host | undefined {
    const key = ctx?.hashKey;
    if (key === undefined) return this.#random.pick(ctx);
    return this.hosts[this.#table[key % this.#size]!];
  }
}

/**
 * `MAGLEV` (Envoy's `envoy.load_balancing_policies.maglev`): a {@link MaglevLoadBalancer} with the cluster's
 * `maglev_lb_config`. Slow start does not apply (as Envoy).
 */
export const maglevLbFactory: LoadBalancerFactory = {
  name: "MAGLEV",
  configTypes: [`${LB_POLICY_TYPE_PREFIX}maglev.v3.Maglev`],
  create(config, context) {
    return new MaglevLoadBalancer(context.source, { ...context, slowStart: undefined, ...(config.maglev ?? {}) });
  },
};
