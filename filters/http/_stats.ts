/**
 * Stats helpers the HTTP filters share.
 *
 * @module
 */
import type { Counter, StatsScope } from "../../lib/api/stats.ts";

/** An object of counters, each under its own stat name. */
export type Counters<K extends string> = { readonly [k in K]: Counter };

/** The counters `names` of scope `s` (created in that order), keyed by name. */
export function counters<const K extends string>(s: StatsScope, names: readonly K[]): Counters<K> {
  const out = {} as Record<K, Counter>;
  for (const n of names) out[n] = s.counter(n);
  return out;
}
