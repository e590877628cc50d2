/**
 * The stats store: counters, gauges and histograms by full dotted name (Envoy's naming, e.g.
 * `cluster.payments.upstream_rq_total`), and their output in Envoy's admin formats.
 *
 * Creating a stat is rare (config time) and goes through a map; using one is the hot path and touches one
 * numeric field of a plain object. Each worker owns a store; the admin thread merges their
 * {@link StatsSnapshot}s ({@link StatsStore.snapshot} / {@link StatsStore.merge}) and renders the result with
 * {@link renderStatsText}, {@link renderStatsJson} or {@link renderPrometheus}.
 *
 * @example
 * ```ts
 * const store = new StatsStore();
 * const cluster = store.scope("cluster.payments");
 * const total = cluster.counter("upstream_rq_total"); // "cluster.payments.upstream_rq_total"
 * total.inc();
 * cluster.histogram("upstream_rq_time").record(12);
 * const text = renderPrometheus(store.snapshot());
 * ```
 *
 * @module
 */
import type { Counter, Gauge, Histogram, StatsScope } from "../api/stats.ts";

/** Envoy's default histogram bucket upper bounds (milliseconds for latencies). */
export const DEFAULT_BUCKETS: readonly number[] = [
  0.5,
  1,
  5,
  10,
  25,
  50,
  100,
  250,
  500,
  1000,
  2500,
  5000,
  10000,
  30000,
  60000,
  300000,
  600000,
  1800000,
  3600000,
];

/** The quantiles Envoy reports in `/stats` (percent). */
export const SUPPORTED_QUANTILES: readonly number[] = [0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100];

/** A counter: a plain object whose `inc` adds to one number. */
export class CounterImpl implements Counter {
  readonly #local: string;
  readonly #prefix: string;
  value = 0;

  /** A counter named `name`, or `<prefix>.<name>` (joined only when asked: blocks of stats make many). */
  constructor(name: string, prefix = "") {
    this.#local = name;
    this.#prefix = prefix;
  }

  /** Full dotted name. */
  get name(): string {
    return joinName(this.#prefix, this.#local);
  }

  /** Adds `n` (default 1). */
  inc(n = 1): void {
    this.value += n;
  }
}

/** A gauge; `used` records that it was ever written (Envoy's `usedonly` semantics). */
export class GaugeImpl implements Gauge {
  readonly #local: string;
  readonly #prefix: string;
  value = 0;
  used = false;

  /** A gauge named `name`, or `<prefix>.<name>` (see {@link CounterImpl}). */
  constructor(name: string, prefix = "") {
    this.#local = name;
    this.#prefix = prefix;
  }

  /** Full dotted name. */
  get name(): string {
    return joinName(this.#prefix, this.#local);
  }

  /** Adds `n` (default 1). */
  inc(n = 1): void {
    this.value += n;
    this.used = true;
  }

  /** Subtracts `n` (default 1). */
  dec(n = 1): void {
    this.value -= n;
    this.used = true;
  }

  /** Sets the value. */
  set(v: number): void {
    this.value = v;
    this.used = true;
  }
}

/** A histogram over {@link DEFAULT_BUCKETS}: per-bucket counts (the last slot is overflow), count, sum, min, max. */
export class HistogramImpl implements Histogram {
  /** Full dotted name. */
  readonly name: string;
  /** Per-bucket (non-cumulative) counts; index `DEFAULT_BUCKETS.length` holds values above the last bound. */
  readonly buckets: Float64Array;
  count = 0;
  sum = 0;
  min = Infinity;
  max = -Infinity;

  constructor(name: string) {
    this.name = name;
    this.buckets = new Float64Array(DEFAULT_BUCKETS.length + 1);
  }

  /** Records one value. */
  record(v: number): void {
    const b = DEFAULT_BUCKETS;
    let i = 0;
    // A linear scan: most latencies fall in the first few buckets, so this beats a binary search.
    while (i < b.length && v > b[i]!) i++;
    this.buckets[i]!++;
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }
}

/** A histogram's state in a {@link StatsSnapshot}. */
export interface HistogramSnapshot {
  /** Per-bucket (non-cumulative) counts, `DEFAULT_BUCKETS.length + 1` entries (last = overflow). */
  buckets: number[];
  count: number;
  sum: number;
  /** Smallest recorded value (null when empty). */
  min: number | null;
  /** Largest recorded value (null when empty). */
  max: number | null;
}

/**
 * A plain, structured-cloneable copy of a store's stats, for sending from workers to the admin thread and for
 * rendering. Keys are full dotted names.
 */
export interface StatsSnapshot {
  counters: Record<string, number>;
  gauges: Record<string, { value: number; used: boolean }>;
  histograms: Record<string, HistogramSnapshot>;
  /** Envoy's text readouts (`listener_manager.lds.version_text`), when any exist. */
  textReadouts?: Record<string, string>;
}

/** Joins a prefix and a name with a dot (no dot for the empty prefix). */
function joinName(prefix: string, name: string): string {
  return prefix === "" ? name : name === "" ? prefix : `${prefix}.${name}`;
}

/**
 * Replaces characters Envoy does not keep in stat name segments (`:` becomes `_`), as Envoy does for listener
 * addresses (`listener.0.0.0.0_8080.`) and cluster names.
 */
export function sanitizeStatName(segment: string): string {
  return segment.replaceAll(":", "_");
}

class ScopeImpl implements StatsScope {
  readonly prefix: string;
  readonly #store: StatsStore;

  constructor(store: StatsStore, prefix: string) {
    this.#store = store;
    this.prefix = prefix;
  }

  counter(name: string): CounterImpl {
    return this.#store.counter(joinName(this.prefix, name));
  }

  gauge(name: string): GaugeImpl {
    return this.#store.gauge(joinName(this.prefix, name));
  }

  histogram(name: string): HistogramImpl {
    return this.#store.histogram(joinName(this.prefix, name));
  }

  scope(prefix: string): StatsScope {
    return new ScopeImpl(this.#store, joinName(this.prefix, prefix));
  }

  group(counters: readonly string[], gauges: readonly string[]): { counters: CounterImpl[]; gauges: GaugeImpl[] } {
    return this.#store.groupAt(this.prefix, counters, gauges);
  }
}

/** Stats registered as a block under one prefix (see `StatsScope.group`); named only when looked up or listed. */
interface StatGroup {
  readonly prefix: string;
  readonly counterNames: readonly string[];
  readonly gaugeNames: readonly string[];
  readonly counters: CounterImpl[];
  readonly gauges: GaugeImpl[];
}

/** Name → index of the name lists groups share (one map per list, not per group). */
const GROUP_INDEX = new WeakMap<readonly string[], Map<string, number>>();

function indexOf(names: readonly string[], name: string): number | undefined {
  let m = GROUP_INDEX.get(names);
  if (m === undefined) {
    m = new Map(names.map((n, i) => [n, i]));
    GROUP_INDEX.set(names, m);
  }
  return m.get(name);
}

/** The root stats scope of one thread. See the module doc. */
export class StatsStore implements StatsScope {
  readonly prefix = "";
  readonly #counters = new Map<string, CounterImpl>();
  readonly #gauges = new Map<string, GaugeImpl>();
  readonly #histograms = new Map<string, HistogramImpl>();
  readonly #texts = new Map<string, { value: string }>();
  /** Blocks by prefix; several blocks may share one (their names must differ). */
  readonly #groups = new Map<string, StatGroup[]>();

  /** See `StatsScope.group`: the block's stats are found by `counter(name)` / `gauge(name)` too. */
  groupAt(
    prefix: string,
    counterNames: readonly string[],
    gaugeNames: readonly string[],
  ): { counters: CounterImpl[]; gauges: GaugeImpl[] } {
    let list = this.#groups.get(prefix);
    // An object made again under the same prefix (a rebuilt cluster) keeps its stats, as one by one.
    const same = list?.find((g) => g.counterNames === counterNames && g.gaugeNames === gaugeNames);
    if (same !== undefined) return same;
    // Block names are not looked up among stats made one by one (that lookup is the cost blocks avoid): a block
    // must come before any stat of its names.
    const counters = counterNames.map((n) => new CounterImpl(n, prefix));
    const gauges = gaugeNames.map((n) => new GaugeImpl(n, prefix));
    if (list === undefined) this.#groups.set(prefix, list = []);
    list.push({ prefix, counterNames, gaugeNames, counters, gauges });
    return { counters, gauges };
  }

  #fromGroup<K extends "counters" | "gauges">(name: string, kind: K): StatGroup[K][number] | undefined {
    const dot = name.lastIndexOf(".");
    const list = this.#groups.get(dot < 0 ? "" : name.slice(0, dot));
    if (list === undefined) return undefined;
    const local = dot < 0 ? name : name.slice(dot + 1);
    for (const g of list) {
      const i = indexOf(kind === "counters" ? g.counterNames : g.gaugeNames, local);
      if (i !== undefined) return g[kind][i];
    }
    return undefined;
  }

  /**
   * The text readout with this full name (Envoy's `TextReadout`: a string stat, such as the version an xDS
   * subscription last accepted), created on first use. Set `value`.
   */
  textReadout(name: string): { value: string } {
    let t = this.#texts.get(name);
    if (t === undefined) {
      t = { value: "" };
      this.#texts.set(name, t);
    }
    return t;
  }

  /** The counter with this full name, created on first use. */
  counter(name: string): CounterImpl {
    let c = this.#counters.get(name);
    if (c === undefined) {
      c = this.#fromGroup(name, "counters") ?? new CounterImpl(name);
      this.#counters.set(name, c);
    }
    return c;
  }

  /** The gauge with this full name, created on first use. */
  gauge(name: string): GaugeImpl {
    let g = this.#gauges.get(name);
    if (g === undefined) {
      g = this.#fromGroup(name, "gauges") ?? new GaugeImpl(name);
      this.#gauges.set(name, g);
    }
    return g;
  }

  /** The histogram with this full name, created on first use. */
  histogram(name: string): HistogramImpl {
    let h = this.#histograms.get(name);
    if (h === undefined) {
      h = new HistogramImpl(name);
      this.#histograms.set(name, h);
    }
    return h;
  }

  /** A child scope; `scope("cluster.a").counter("x")` is `cluster.a.x`. */
  scope(prefix: string): StatsScope {
    return new ScopeImpl(this, prefix);
  }

  /** All counters (for tests and iteration). */
  counters(): IterableIterator<CounterImpl> {
    return this.#all(this.#counters, "counters");
  }

  /** All gauges. */
  gauges(): IterableIterator<GaugeImpl> {
    return this.#all(this.#gauges, "gauges");
  }

  /** Every stat of a kind once: those made one by one, then those of blocks not looked up by name. */
  *#all<K extends "counters" | "gauges">(
    map: Map<string, StatGroup[K][number]>,
    kind: K,
  ): IterableIterator<StatGroup[K][number]> {
    const seen = new Set<StatGroup[K][number]>();
    for (const s of map.values()) {
      seen.add(s);
      yield s;
    }
    for (const list of this.#groups.values()) {
      for (const g of list) for (const s of g[kind]) if (!seen.has(s)) yield s;
    }
  }

  /** All histograms. */
  histograms(): IterableIterator<HistogramImpl> {
    return this.#histograms.values();
  }

  /** A plain copy of every stat. */
  snapshot(): StatsSnapshot {
    const s: StatsSnapshot = { counters: {}, gauges: {}, histograms: {} };
    if (this.#texts.size > 0) s.textReadouts = Object.fromEntries([...this.#texts].map(([n, t]) => [n, t.value]));
    for (const c of this.counters()) s.counters[c.name] = c.value;
    for (const g of this.gauges()) s.gauges[g.name] = { value: g.value, used: g.used };
    for (const h of this.#histograms.values()) {
      s.histograms[h.name] = {
        buckets: Array.from(h.buckets),
        count: h.count,
        sum: h.sum,
        min: h.count > 0 ? h.min : null,
        max: h.count > 0 ? h.max : null,
      };
    }
    return s;
  }

  /**
   * Adds a snapshot (from another thread) into this store: counters, gauges and histograms add. Build an
   * aggregate for the admin API with a fresh store and one `merge` per worker.
   */
  merge(other: StatsSnapshot): void {
    for (const [name, v] of Object.entries(other.counters)) this.counter(name).value += v;
    for (const [name, v] of Object.entries(other.textReadouts ?? {})) if (v !== "") this.textReadout(name).value = v;
    for (const [name, v] of Object.entries(other.gauges)) {
      const g = this.gauge(name);
      g.value += v.value;
      g.used ||= v.used;
    }
    for (const [name, v] of Object.entries(other.histograms)) {
      const h = this.histogram(name);
      const n = Math.min(h.buckets.length, v.buckets.length);
      for (let i = 0; i < n; i++) h.buckets[i]! += v.buckets[i]!;
      h.count += v.count;
      h.sum += v.sum;
      if (v.min !== null && v.min < h.min) h.min = v.min;
      if (v.max !== null && v.max > h.max) h.max = v.max;
    }
  }

  /** Sets every counter back to zero (Envoy's `/reset_counters`). */
  resetCounters(): void {
    for (const c of this.counters()) c.value = 0;
  }
}

/** Merges snapshots into a new one (counters, gauges and histograms add). */
export function mergeSnapshots(snapshots: Iterable<StatsSnapshot>): StatsSnapshot {
  const store = new StatsStore();
  for (const s of snapshots) store.merge(s);
  return store.snapshot();
}

/**
 * Estimates a quantile (0..1) from bucket counts by linear interpolation inside the bucket that holds it,
 * clamped to the recorded min and max. Returns NaN for an empty histogram.
 */
export function histogramQuantile(h: HistogramSnapshot, q: number): number {
  if (h.count === 0) return NaN;
  const min = h.min ?? 0;
  const max = h.max ?? DEFAULT_BUCKETS[DEFAULT_BUCKETS.length - 1]!;
  if (q <= 0) return min;
  if (q >= 1) return max;
  const target = q * h.count;
  let cum = 0;
  for (let i = 0; i < h.buckets.length; i++) {
    const n = h.buckets[i]!;
    if (n === 0) continue;
    if (cum + n >= target) {
      const lo = Math.max(i === 0 ? 0 : DEFAULT_BUCKETS[i - 1]!, min);
      const hi = Math.min(i < DEFAULT_BUCKETS.length ? DEFAULT_BUCKETS[i]! : max, max);
      const v = lo + (hi - lo) * ((target - cum) / n);
      return Math.min(Math.max(v, min), max);
    }
    cum += n;
  }
  return max;
}

/** Options shared by the `/stats` renderers. */
export interface StatsRenderOptions {
  /** Only stats whose full name matches (Envoy's `?filter=`). */
  filter?: RegExp;
  /** Only stats that were written (Envoy's `?usedonly`). */
  usedOnly?: boolean;
  /** Only one kind (Envoy's `?type=`). */
  type?: "Counters" | "Gauges" | "Histograms";
}

function keep(name: string, used: boolean, opts: StatsRenderOptions): boolean {
  if (opts.usedOnly && !used) return false;
  if (opts.filter) {
    opts.filter.lastIndex = 0;
    if (!opts.filter.test(name)) return false;
  }
  return true;
}

/** C's `%g` (6 significant digits, trailing zeros dropped), which Envoy uses for quantiles: `3.09219`, `1e+06`. */
function fmtQuantile(v: number): string {
  if (Number.isNaN(v)) return "nan";
  if (v === 0) return "0";
  let s = Math.abs(v) < 1e-4 ? v.toExponential(5) : v.toPrecision(6);
  const e = s.indexOf("e");
  let mant = e < 0 ? s : s.slice(0, e);
  if (mant.includes(".")) mant = mant.replace(/\.?0+$/, "");
  if (e < 0) return mant;
  const exp = Number(s.slice(e + 1));
  s = `${mant}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  return s;
}

function histUsed(h: HistogramSnapshot): boolean {
  return h.count > 0;
}

/** Envoy's `/stats` text: `name: value` lines sorted by name, then histograms as `name: P0(nan,x) P25(nan,x) ...`. */
export function renderStatsText(s: StatsSnapshot, opts: StatsRenderOptions = {}): string {
  const lines: string[] = [];
  if (opts.type !== "Histograms") {
    const scalars: [string, number | string][] = [];
    if (opts.type !== "Gauges") {
      for (const [name, v] of Object.entries(s.counters)) if (keep(name, v > 0, opts)) scalars.push([name, v]);
    }
    if (opts.type !== "Counters") {
      for (const [name, g] of Object.entries(s.gauges)) if (keep(name, g.used, opts)) scalars.push([name, g.value]);
    }
    if (opts.type === undefined) {
      for (const [name, v] of Object.entries(s.textReadouts ?? {})) {
        if (keep(name, v !== "", opts)) scalars.push([name, JSON.stringify(v)]);
      }
    }
    scalars.sort((a, b) => a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
    for (const [name, v] of scalars) lines.push(`${name}: ${v}`);
  }
  if (opts.type === undefined || opts.type === "Histograms") {
    for (const name of Object.keys(s.histograms).sort()) {
      const h = s.histograms[name]!;
      if (!keep(name, histUsed(h), opts)) continue;
      if (h.count === 0) {
        lines.push(`${name}: No recorded values`);
        continue;
      }
      const parts = SUPPORTED_QUANTILES.map((q) => `P${q}(nan,${fmtQuantile(histogramQuantile(h, q / 100))})`);
      lines.push(`${name}: ${parts.join(" ")}`);
    }
  }
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
}

/**
 * Envoy's `/stats?format=json`: `{"stats":[{"name":..,"value":..},...,{"histograms":{"supported_quantiles":[..],
 * "computed_quantiles":[{"name":..,"values":[{"interval":null,"cumulative":..},..]}]}}]}`.
 */
export function renderStatsJson(s: StatsSnapshot, opts: StatsRenderOptions = {}): string {
  const stats: unknown[] = [];
  if (opts.type !== "Histograms") {
    const scalars: { name: string; value: number | string }[] = [];
    if (opts.type !== "Gauges") {
      for (const [name, v] of Object.entries(s.counters)) if (keep(name, v > 0, opts)) scalars.push({ name, value: v });
    }
    if (opts.type !== "Counters") {
      for (const [name, g] of Object.entries(s.gauges)) {
        if (keep(name, g.used, opts)) scalars.push({ name, value: g.value });
      }
    }
    if (opts.type === undefined) {
      for (const [name, v] of Object.entries(s.textReadouts ?? {})) {
        if (keep(name, v !== "", opts)) scalars.push({ name, value: v });
      }
    }
    scalars.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    stats.push(...scalars);
  }
  if (opts.type === undefined || opts.type === "Histograms") {
    const computed: unknown[] = [];
    for (const name of Object.keys(s.histograms).sort()) {
      const h = s.histograms[name]!;
      if (!keep(name, histUsed(h), opts)) continue;
      computed.push({
        name,
        values: SUPPORTED_QUANTILES.map((q) => {
          const v = histogramQuantile(h, q / 100);
          return { interval: null, cumulative: Number.isNaN(v) ? null : Number(v.toPrecision(6)) };
        }),
      });
    }
    if (computed.length > 0) {
      stats.push({ histograms: { supported_quantiles: SUPPORTED_QUANTILES, computed_quantiles: computed } });
    }
  }
  return JSON.stringify({ stats });
}

/** A stat name split into a Prometheus metric name and labels by Envoy's default tag extraction. */
export interface TaggedName {
  /** Sanitized metric name with the `envoy_` prefix. */
  name: string;
  /** Labels in extraction order. */
  labels: [string, string][];
}

// Envoy's default tag extractors (source/common/config/well_known_names.cc), in Envoy's order, the subset that
// fits Ferry's stats. As in Envoy, capture group 1 is removed from the name and group 2 (or 1 if there is no
// second group) is the tag value; each extractor sees the name left by the previous ones.
const TAG_EXTRACTORS: readonly { re: RegExp; tag: string }[] = [
  { re: /_rq(_(\d{3}))$/d, tag: "envoy_response_code" },
  { re: /_rq_(\d)xx$/d, tag: "envoy_response_code_class" },
  { re: /^vhost(?=\.).*?\.vcluster\.((.*?)\.)\w+?$/d, tag: "envoy_virtual_cluster" },
  { re: /^listener(?=\.).*?\.ssl\.cipher(\.(.*?))$/d, tag: "envoy_ssl_cipher" },
  { re: /^cluster(?=\.).*?\.ssl\.ciphers(\.(.*?))$/d, tag: "envoy_ssl_cipher_suite" },
  { re: /^tcp\.((.*?)\.)\w+?$/d, tag: "envoy_tcp_prefix" },
  { re: /^cluster\.((.*?)\.)/d, tag: "envoy_cluster_name" },
  { re: /^listener(?=\.).*?\.http\.((.*?)\.)/d, tag: "envoy_http_conn_manager_prefix" },
  { re: /^http\.((.*?)\.)/d, tag: "envoy_http_conn_manager_prefix" },
  { re: /^listener\.(((?:[_.0-9]*|[_[\]aAbBcCdDeEfF0-9]*))\.)/d, tag: "envoy_listener_address" },
  { re: /^vhost\.((.*?)\.)/d, tag: "envoy_virtual_host" },
  { re: /^http(?=\.).*?\.rds\.((.*?)\.)\w+?$/d, tag: "envoy_rds_route_config" },
  { re: /^listener_manager\.((worker_\d+)\.)/d, tag: "envoy_worker_id" },
];

/**
 * Applies Envoy's default tag extraction to a stat name: `cluster.a.upstream_rq_total` →
 * `envoy_cluster_upstream_rq_total{envoy_cluster_name="a"}`, likewise `http.<prefix>.`, `listener.<addr>.`,
 * `listener.<addr>.http.<prefix>.`, `tcp.<prefix>.`, `vhost.<name>.`, and the response code tags
 * (`upstream_rq_200` → `upstream_rq{envoy_response_code="200"}`, `upstream_rq_2xx` →
 * `upstream_rq_xx{envoy_response_code_class="2"}`).
 */
export function extractTags(statName: string): TaggedName {
  const labels: [string, string][] = [];
  let name = statName;
  for (const { re, tag } of TAG_EXTRACTORS) {
    const m = re.exec(name);
    if (m === null) continue;
    const value = m[2] ?? m[1]!;
    const [start, end] = m.indices![1]!;
    // Envoy's listener address regex can match an empty address; an empty tag is not a tag.
    if (value === "") continue;
    name = name.slice(0, start) + name.slice(end);
    if (!labels.some(([k]) => k === tag)) labels.push([tag, value]);
  }
  return { name: `envoy_${sanitizeMetricName(name)}`, labels };
}

/** Replaces every character outside `[a-zA-Z0-9_]` with `_`, as Envoy's Prometheus output does. */
export function sanitizeMetricName(name: string): string {
  return name.replace(/[^a-zA-Z0-9_]/g, "_");
}

/** Escapes a Prometheus label value (`\`, `"`, newline). */
export function escapeLabelValue(v: string): string {
  return v.replace(/[\\"\n]/g, (c) => c === "\n" ? "\\n" : `\\${c}`);
}

function labelString(labels: readonly [string, string][], extra?: [string, string]): string {
  const all = extra ? [...labels, extra] : labels;
  if (all.length === 0) return "";
  return `{${all.map(([k, v]) => `${sanitizeMetricName(k)}="${escapeLabelValue(v)}"`).join(",")}}`;
}

function fmtPromValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

type Family =
  | { type: "counter" | "gauge"; samples: { labels: [string, string][]; value: number }[] }
  | { type: "histogram"; samples: { labels: [string, string][]; h: HistogramSnapshot }[] };

/**
 * The Prometheus text exposition format (version 0.0.4) of a snapshot, as Envoy's `/stats/prometheus`: metric
 * names prefixed `envoy_` after tag extraction, one `# TYPE` line per family, histograms as cumulative
 * `_bucket{le=..}` series with `+Inf`, `_sum` and `_count`. Families sort by name; a name claimed by two stat
 * kinds keeps the first kind (counters, then gauges, then histograms), and a series that two stat names
 * sanitize to is printed once, so the output stays parseable.
 */
export function renderPrometheus(s: StatsSnapshot, opts: StatsRenderOptions = {}): string {
  const families = new Map<string, Family>();
  // Two stat names can sanitize to one series (`a.b-c`, `a.b_c`); a scrape must not repeat a series.
  const seen = new Set<string>();
  const fresh = (name: string, labels: readonly [string, string][]): boolean => {
    const key = `${name}${labelString(labels)}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  };
  const add = (statName: string, type: "counter" | "gauge", value: number) => {
    const t = extractTags(statName);
    let f = families.get(t.name);
    if (f === undefined) {
      f = { type, samples: [] };
      families.set(t.name, f);
    }
    if (f.type === type && fresh(t.name, t.labels)) f.samples.push({ labels: t.labels, value });
  };
  if (opts.type === undefined || opts.type === "Counters") {
    for (const [name, v] of Object.entries(s.counters)) if (keep(name, v > 0, opts)) add(name, "counter", v);
  }
  if (opts.type === undefined || opts.type === "Gauges") {
    for (const [name, g] of Object.entries(s.gauges)) if (keep(name, g.used, opts)) add(name, "gauge", g.value);
  }
  if (opts.type === undefined || opts.type === "Histograms") {
    for (const [name, h] of Object.entries(s.histograms)) {
      if (!keep(name, histUsed(h), opts)) continue;
      const t = extractTags(name);
      // The series names must not collide with another family either.
      const clash = [`${t.name}_bucket`, `${t.name}_sum`, `${t.name}_count`].some((n) => families.has(n));
      let f = families.get(t.name);
      if (clash && f === undefined) continue;
      if (f === undefined) {
        f = { type: "histogram", samples: [] };
        families.set(t.name, f);
      }
      if (f.type === "histogram" && fresh(t.name, t.labels)) f.samples.push({ labels: t.labels, h });
    }
  }
  const out: string[] = [];
  for (const name of [...families.keys()].sort()) {
    const f = families.get(name)!;
    out.push(`# TYPE ${name} ${f.type}`);
    if (f.type === "histogram") {
      for (const { labels, h } of f.samples) {
        let cum = 0;
        for (let i = 0; i < DEFAULT_BUCKETS.length; i++) {
          cum += h.buckets[i] ?? 0;
          out.push(`${name}_bucket${labelString(labels, ["le", String(DEFAULT_BUCKETS[i]!)])} ${cum}`);
        }
        out.push(`${name}_bucket${labelString(labels, ["le", "+Inf"])} ${h.count}`);
        out.push(`${name}_sum${labelString(labels)} ${fmtPromValue(h.sum)}`);
        out.push(`${name}_count${labelString(labels)} ${h.count}`);
      }
    } else {
      for (const { labels, value } of f.samples) out.push(`${name}${labelString(labels)} ${fmtPromValue(value)}`);
    }
  }
  return out.length === 0 ? "" : `${out.join("\n")}\n`;
}
