/**
 * A tiny in-memory {@link StatsScope} for the upstream and tcp_proxy tests (the real store is `lib/observe/stats.ts`).
 *
 * @module
 */
import type { Counter, Gauge, Histogram, StatsScope } from "../../lib/api/stats.ts";

class TestCounter implements Counter {
  value = 0;
  inc(n = 1): void {
    this.value += n;
  }
}

class TestGauge implements Gauge {
  value = 0;
  inc(n = 1): void {
    this.value += n;
  }
  dec(n = 1): void {
    this.value -= n;
  }
  set(v: number): void {
    this.value = v;
  }
}

class TestHistogram implements Histogram {
  values: number[] = [];
  record(v: number): void {
    this.values.push(v);
  }
}

/** All stats by full name, shared by a root scope and its children. */
export class TestStats implements StatsScope {
  readonly prefix: string;
  readonly counters: Map<string, TestCounter>;
  readonly gauges: Map<string, TestGauge>;
  readonly histograms: Map<string, TestHistogram>;

  constructor(prefix = "", parent?: TestStats) {
    this.prefix = prefix;
    this.counters = parent?.counters ?? new Map();
    this.gauges = parent?.gauges ?? new Map();
    this.histograms = parent?.histograms ?? new Map();
  }

  #name(n: string): string {
    return this.prefix ? `${this.prefix}.${n}` : n;
  }

  counter(name: string): Counter {
    const k = this.#name(name);
    let c = this.counters.get(k);
    if (!c) this.counters.set(k, c = new TestCounter());
    return c;
  }

  gauge(name: string): Gauge {
    const k = this.#name(name);
    let g = this.gauges.get(k);
    if (!g) this.gauges.set(k, g = new TestGauge());
    return g;
  }

  histogram(name: string): Histogram {
    const k = this.#name(name);
    let h = this.histograms.get(k);
    if (!h) this.histograms.set(k, h = new TestHistogram());
    return h;
  }

  scope(prefix: string): StatsScope {
    return new TestStats(this.#name(prefix), this);
  }

  /** Value of a counter or gauge by full name (0 if never created). */
  get(name: string): number {
    return this.counters.get(name)?.value ?? this.gauges.get(name)?.value ?? 0;
  }
}
