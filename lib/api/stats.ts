/**
 * Stats interfaces. Names follow Envoy (`cluster.<name>.upstream_rq_total`), so dashboards carry over.
 * The implementation is `lib/observe/stats.ts`.
 *
 * @module
 */

/** A monotonically increasing count. */
export interface Counter {
  /** Adds `n` (default 1; a non-negative integer, e.g. a byte count). */
  inc(n?: number): void;
  /** The total since the stat was created (never reset; admin `/stats` and Prometheus output read it). */
  readonly value: number;
}

/** A value that goes up and down. */
export interface Gauge {
  /** Adds `n` (default 1), e.g. when a connection or request starts. */
  inc(n?: number): void;
  /** Subtracts `n` (default 1); each `dec` pairs with an earlier `inc`. */
  dec(n?: number): void;
  /** Replaces the value, for gauges computed from state (e.g. `membership_healthy`). */
  set(v: number): void;
  /** The current value. */
  readonly value: number;
}

/** A distribution (latencies in ms, sizes in bytes). */
export interface Histogram {
  /** Records one sample, in the histogram's unit (ms for `*_time`/`*_ms` stats, bytes for sizes). */
  record(v: number): void;
}

/** A named prefix under which stats are created; creating the same name twice returns the same stat. */
export interface StatsScope {
  /** The full prefix of this scope, ending without a dot ("" for the root). */
  readonly prefix: string;
  /** The counter `<prefix>.<name>`, created on first use (a map look-up: hot paths keep the result). */
  counter(name: string): Counter;
  /** The gauge `<prefix>.<name>`, created on first use. */
  gauge(name: string): Gauge;
  /** The histogram `<prefix>.<name>`, created on first use. */
  histogram(name: string): Histogram;
  /** A child scope: `scope("cluster.a")` then `counter("x")` names `cluster.a.x`. */
  scope(prefix: string): StatsScope;
  /**
   * Creates many counters and gauges of this scope at once, in the order of the name lists (for stat sets every
   * object of a kind has, such as a cluster's). The same stats as `counter(name)` / `gauge(name)` would give, but
   * registered as one block: 10,000 clusters from CDS spent a quarter of their set-up creating stats one by one.
   */
  group?(counters: readonly string[], gauges: readonly string[]): { counters: Counter[]; gauges: Gauge[] };
}
