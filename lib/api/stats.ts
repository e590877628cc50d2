/**
 * Stats interfaces. Names follow Envoy (`cluster.<name>.upstream_rq_total`), so dashboards carry over.
 * The implementation is `lib/observe/stats.ts`.
 *
 * @module
 */

/** A monotonically increasing count. */
export interface Counter {
  inc(n?: number): void;
  readonly value: number;
}

/** A value that goes up and down. */
export interface Gauge {
  inc(n?: number): void;
  dec(n?: number): void;
  set(v: number): void;
  readonly value: number;
}

/** A distribution (latencies in ms, sizes in bytes). */
export interface Histogram {
  record(v: number): void;
}

/** A named prefix under which stats are created; creating the same name twice returns the same stat. */
export interface StatsScope {
  /** The full prefix of this scope, ending without a dot ("" for the root). */
  readonly prefix: string;
  counter(name: string): Counter;
  gauge(name: string): Gauge;
  histogram(name: string): Histogram;
  /** A child scope: `scope("cluster.a")` then `counter("x")` names `cluster.a.x`. */
  scope(prefix: string): StatsScope;
}
