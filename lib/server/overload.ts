/**
 * The overload manager (Envoy's `overload_manager` bootstrap field): resource monitors measure pressure (0..1)
 * every `refresh_interval`, triggers turn pressure into a scale per action (0 inactive, 1 saturated), and the data
 * path reads the result through an {@link OverloadView} (`lib/api/overload.ts`).
 *
 * Resource monitors:
 * - `envoy.resource_monitors.fixed_heap` (`FixedHeapConfig.max_heap_size_bytes`): pressure is
 *   `(heapUsed + external) / max_heap_size_bytes` from `Deno.memoryUsage()`: the V8 heap in use plus the
 *   off-heap `ArrayBuffer` stores where request bodies and socket buffers live. Not RSS: glibc keeps freed chunks
 *   mapped, so RSS stays near its peak after the memory is freed (measured: 262 MB of 64 KiB buffers freed and
 *   collected, RSS stayed at 300 MB), and an RSS-based pressure would never fall and shed forever. RSS is this
 *   measure plus the runtime's own footprint (about 40-60 MB) and what the allocator keeps; size the limit with
 *   that margin. Like Envoy's tcmalloc figure, dead buffers count until the collector frees them.
 * - `envoy.resource_monitors.global_downstream_max_connections` (alias `...downstream_connections`,
 *   `DownstreamConnectionsConfig.max_active_downstream_connections`): a proactive resource, as in Envoy: checked
 *   when a connection is accepted (over the limit: closed at once, `listener.<prefix>.downstream_global_cx_overflow`),
 *   not polled; its pressure (active / max) is also published and may drive triggers.
 *
 * Actions (`actions[].name`): `stop_accepting_connections` (saturated: listeners stop calling accept, new
 * connections wait in the kernel backlog), `reject_incoming_connections` (scaled: accepted and closed at once,
 * `listener.<prefix>.downstream_cx_overload_reject`), `stop_accepting_requests` (scaled: 503 `envoy overloaded`,
 * response flag `OM`, `http.<prefix>.downstream_rq_overload_close`), `disable_http_keepalive` (scaled: the
 * response ends its connection, `http.<prefix>.downstream_cx_overload_disable_keepalive`), `shrink_heap`
 * (saturated: runs V8's full garbage collection once per refresh, so that dead buffers stop counting and large
 * ones go back to the system; the collector is `globalThis.gc`, or exposed at start through `node:v8`'s
 * `setFlagsFromString("--expose-gc")` and `node:vm`; measured 24 ms for a heap holding 262 MB of dead buffers), `reduce_timeouts` (scaled:
 * `HTTP_DOWNSTREAM_CONNECTION_IDLE` and `HTTP_DOWNSTREAM_STREAM_IDLE` shrink towards their `min_timeout` /
 * `min_scale` as Envoy's scaled timers; a timer takes the scale when it is armed or re-armed, not at once), `reset_high_memory_stream` (scaled: a request whose body
 * received so far reaches the size class the scale selects is ended with the 503 above, or reset if its response
 * has begun; `overload.<action>.count`). As Envoy's, streams are sorted into 8 size classes from
 * `buffer_factory_config.minimum_account_to_track_power_of_two` (2^m bytes) up, and scale s ends the
 * `floor(8 s) + 1` largest classes; unlike Envoy's, the size is the request body received while the request is
 * incomplete (not the bytes buffered), and the check runs when body data arrives (not on each refresh). A scaled action applies with the probability of its scale, as
 * Envoy's Bernoulli draw. Unknown action names are accepted with a warning, as Envoy logs and ignores them.
 * `loadshed_points` `envoy.load_shed_points.tcp_listener_accept` and `...http_connection_manager_decode_headers`
 * act as `reject_incoming_connections` and `stop_accepting_requests`; other points are accepted with a warning.
 *
 * Listeners with `bypass_overload_manager: true` skip all of it (use one for health checks: the 503 shed happens
 * before the HTTP filters run, so `envoy.filters.http.health_check` on a shed listener is shed too, as in Envoy);
 * listeners with `ignore_global_conn_limit: true` are not counted against the connection limit. The admin API is
 * never shed. With `--concurrency N` each event loop (worker isolate) runs its own manager over its own heap and
 * connections: the heap limit and the connection limit apply per event loop.
 *
 * Stats as Envoy's: `overload.<monitor>.pressure` (percent), `overload.<monitor>.failed_updates`,
 * `overload.<monitor>.skipped_updates`, `overload.<action or point>.active` (1 when saturated),
 * `overload.<action or point>.scale_percent`, `overload.refresh_interval_delay` (ms).
 *
 * @module
 */
import type { ConnectionVerdict, OverloadView } from "../api/overload.ts";
import { ConfigError } from "../api/errors.ts";
import type { Counter, Gauge, Histogram, StatsScope } from "../api/stats.ts";
import { describe, ObjReader } from "../config/reader.ts";

/** Envoy's action names. */
export const OVERLOAD_ACTIONS = {
  stopAcceptingConnections: "envoy.overload_actions.stop_accepting_connections",
  rejectIncomingConnections: "envoy.overload_actions.reject_incoming_connections",
  stopAcceptingRequests: "envoy.overload_actions.stop_accepting_requests",
  disableHttpKeepalive: "envoy.overload_actions.disable_http_keepalive",
  shrinkHeap: "envoy.overload_actions.shrink_heap",
  reduceTimeouts: "envoy.overload_actions.reduce_timeouts",
  resetHighMemoryStream: "envoy.overload_actions.reset_high_memory_stream",
} as const;

/** The load shed points Ferry checks, and the action each acts as. */
const LOAD_SHED_POINTS: Readonly<Record<string, keyof typeof OVERLOAD_ACTIONS>> = {
  "envoy.load_shed_points.tcp_listener_accept": "rejectIncomingConnections",
  "envoy.load_shed_points.http_connection_manager_decode_headers": "stopAcceptingRequests",
};

const FIXED_HEAP_NAME = "envoy.resource_monitors.fixed_heap";
const FIXED_HEAP_TYPES = [
  "type.googleapis.com/envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig",
  "type.googleapis.com/envoy.config.resource_monitor.fixed_heap.v2alpha.FixedHeapConfig",
];
const CONNECTIONS_NAMES = [
  "envoy.resource_monitors.global_downstream_max_connections",
  "envoy.resource_monitors.downstream_connections",
];
const CONNECTIONS_TYPES = [
  "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
];
/** Envoy's other monitors: named so that the error says "not supported" rather than "unknown". */
const OTHER_MONITORS = /^envoy\.resource_monitors\.(injected_resource|cgroup_memory|cpu_utilization)$/;

/** One trigger: a monitor's pressure turned into a scale. */
export type TriggerConfig =
  | { readonly monitor: string; readonly kind: "threshold"; readonly value: number }
  | {
    readonly monitor: string;
    readonly kind: "scaled";
    readonly scalingThreshold: number;
    readonly saturationThreshold: number;
  };

/** A resource monitor. */
export interface ResourceMonitorConfig {
  readonly name: string;
  readonly kind: "fixed_heap" | "downstream_connections";
  /** `max_heap_size_bytes` or `max_active_downstream_connections`. */
  readonly max: number;
}

/** An action or a load shed point with its triggers (the highest scale of its triggers wins). */
export interface OverloadActionConfig {
  readonly name: string;
  /** What it does in Ferry (undefined: an unknown action, accepted and ignored). */
  readonly effect: keyof typeof OVERLOAD_ACTIONS | undefined;
  readonly triggers: readonly TriggerConfig[];
  /** `reduce_timeouts`: the timers it scales. */
  readonly timerScales?: TimerScaleFactors;
}

/** The validated `overload_manager`. */
export interface OverloadManagerConfig {
  /** `refresh_interval`, default 1 s as Envoy's. */
  readonly refreshIntervalMs: number;
  readonly monitors: readonly ResourceMonitorConfig[];
  readonly actions: readonly OverloadActionConfig[];
  readonly loadShedPoints: readonly OverloadActionConfig[];
  /** `buffer_factory_config.minimum_account_to_track_power_of_two` (undefined: streams are not tracked). */
  readonly minimumAccountToTrackPowerOfTwo?: number;
  /** Things accepted but without effect (unknown actions, load shed points Ferry does not have). */
  readonly warnings: readonly string[];
}

/**
 * The smallest stream `reset_high_memory_stream` ends at `scale` (> 0), as Envoy's buffer accounts: 8 size classes
 * from 2^m bytes, each twice the one before; scale s ends the `min(floor(8 s) + 1, 8)` largest classes.
 */
export function resetThresholdBytes(minimumPowerOfTwo: number, scale: number): number {
  const classes = Math.min(Math.floor(scale * 8) + 1, 8);
  return 2 ** (minimumPowerOfTwo + 8 - classes);
}

/** The scale (0..1) a trigger gives for a pressure, as Envoy's threshold and scaled triggers. */
export function evaluateTrigger(t: TriggerConfig, pressure: number): number {
  if (t.kind === "threshold") return pressure >= t.value ? 1 : 0;
  if (pressure < t.scalingThreshold) return 0;
  if (pressure >= t.saturationThreshold) return 1;
  return (pressure - t.scalingThreshold) / (t.saturationThreshold - t.scalingThreshold);
}

function parseMonitor(o: ObjReader, path: string): ResourceMonitorConfig {
  const name = o.str("name", { required: true });
  const tc = o.obj("typed_config");
  const type = tc?.str("@type", { required: true });
  const isHeap = type !== undefined ? FIXED_HEAP_TYPES.includes(type) : name === FIXED_HEAP_NAME;
  const isConns = type !== undefined ? CONNECTIONS_TYPES.includes(type) : CONNECTIONS_NAMES.includes(name);
  if (!isHeap && !isConns) {
    if (type !== undefined) {
      throw new ConfigError(`${path}.typed_config.@type`, `${describe(type)} is not a supported resource monitor`);
    }
    throw new ConfigError(
      `${path}.name`,
      `${describe(name)} ${OTHER_MONITORS.test(name) ? "is not supported" : "is not a known resource monitor"} ` +
        `(known: ${[FIXED_HEAP_NAME, ...CONNECTIONS_NAMES].join(", ")})`,
    );
  }
  if (!tc) throw new ConfigError(`${path}.typed_config`, "is required");
  let max: number;
  if (isHeap) {
    max = tc.int("max_heap_size_bytes", { required: true, min: 1 })!;
  } else {
    max = tc.int("max_active_downstream_connections", { required: true, min: 1 })!;
  }
  tc.done();
  return { name, kind: isHeap ? "fixed_heap" : "downstream_connections", max };
}

function parseTrigger(o: ObjReader, path: string, monitors: ReadonlySet<string>): TriggerConfig {
  const monitor = o.str("name", { required: true });
  if (!monitors.has(monitor)) {
    throw new ConfigError(`${path}.name`, `unknown resource monitor ${describe(monitor)} (not in resource_monitors)`);
  }
  const which = o.oneOf(["threshold", "scaled"] as const, { required: true });
  if (which === "threshold") {
    const t = o.obj("threshold")!;
    const value = t.num("value", { required: true, min: 0, max: 1 })!;
    t.done();
    return { monitor, kind: "threshold", value };
  }
  const s = o.obj("scaled")!;
  const scalingThreshold = s.num("scaling_threshold", { required: true, min: 0, max: 1 })!;
  const saturationThreshold = s.num("saturation_threshold", { required: true, min: 0, max: 1 })!;
  if (!(scalingThreshold < saturationThreshold)) {
    throw new ConfigError(
      `${s.path}.scaling_threshold`,
      `${scalingThreshold} must be below saturation_threshold ${saturationThreshold}`,
    );
  }
  s.done();
  return { monitor, kind: "scaled", scalingThreshold, saturationThreshold };
}

/** The timers `reduce_timeouts` scales. */
export type ScaledTimer = "HTTP_DOWNSTREAM_CONNECTION_IDLE" | "HTTP_DOWNSTREAM_STREAM_IDLE";

/** How far a timer may shrink: to `min_timeout`, or to `min_scale` percent of its configured value. */
export type TimerScale = { readonly minMs: number } | { readonly minPercent: number };

/** `ScaleTimersOverloadActionConfig.timer_scale_factors` by timer. */
export type TimerScaleFactors = Readonly<Partial<Record<ScaledTimer, TimerScale>>>;

/**
 * A timeout scaled as Envoy's scaled range timers: from its configured value `ms` at scale 0 down to its minimum at
 * scale 1, linearly.
 */
export function scaledTimeoutMs(ms: number, factor: TimerScale | undefined, scale: number): number {
  if (factor === undefined || scale <= 0) return ms;
  const min = "minMs" in factor ? Math.min(factor.minMs, ms) : ms * factor.minPercent / 100;
  return min + (ms - min) * (1 - Math.min(scale, 1));
}

/** Reads the timer scale factors of `reduce_timeouts`. */
function readScaleTimers(tc: ObjReader): TimerScaleFactors {
  const out: Partial<Record<ScaledTimer, TimerScale>> = {};
  const t = tc.str("@type", { required: true });
  if (t !== "type.googleapis.com/envoy.config.overload.v3.ScaleTimersOverloadActionConfig") {
    throw new ConfigError(tc.at("@type"), `${describe(t)} is not ScaleTimersOverloadActionConfig`);
  }
  tc.objs("timer_scale_factors", (f, i) => {
    const timer = f.enumOf(
      "timer",
      [
        "HTTP_DOWNSTREAM_CONNECTION_IDLE",
        "HTTP_DOWNSTREAM_STREAM_IDLE",
        "TRANSPORT_SOCKET_CONNECT",
        "HTTP_DOWNSTREAM_CONNECTION_MAX",
      ] as const,
      { required: true },
    )!;
    if (timer === "TRANSPORT_SOCKET_CONNECT" || timer === "HTTP_DOWNSTREAM_CONNECTION_MAX") {
      throw new ConfigError(`${tc.at("timer_scale_factors")}[${i}].timer`, `${timer} is not scaled by Ferry`);
    }
    if (out[timer]) throw new ConfigError(`${tc.at("timer_scale_factors")}[${i}].timer`, `${timer} is listed twice`);
    if (f.oneOf(["min_timeout", "min_scale"] as const, { required: true }) === "min_timeout") {
      out[timer] = { minMs: f.durationMs("min_timeout")! };
    } else {
      const m = f.obj("min_scale")!;
      out[timer] = { minPercent: m.num("value", { required: true, min: 0, max: 100 })! };
      m.done();
    }
  }, { nonEmpty: true });
  tc.done();
  return out;
}

function parseActions(
  o: ObjReader,
  key: "actions" | "loadshed_points",
  monitors: ReadonlySet<string>,
  warnings: string[],
): OverloadActionConfig[] {
  const seen = new Map<string, number>();
  return o.objs(key, (a, i) => {
    const path = `${o.at(key)}[${i}]`;
    const name = a.str("name", { required: true });
    const prev = seen.get(name);
    if (prev !== undefined) throw new ConfigError(`${path}.name`, `${describe(name)} is already at ${key}[${prev}]`);
    seen.set(name, i);
    let effect: keyof typeof OVERLOAD_ACTIONS | undefined;
    let timerScales: TimerScaleFactors | undefined;
    if (key === "actions") {
      effect = (Object.keys(OVERLOAD_ACTIONS) as (keyof typeof OVERLOAD_ACTIONS)[]).find((k) =>
        OVERLOAD_ACTIONS[k] === name
      );
      if (effect === undefined) warnings.push(`${path}.name: unknown overload action ${describe(name)} is ignored`);
      const tc = a.obj("typed_config");
      if (tc && effect === "reduceTimeouts") timerScales = readScaleTimers(tc);
      else if (tc) throw new ConfigError(tc.path, `${describe(name)} takes no typed_config`);
    } else {
      effect = LOAD_SHED_POINTS[name];
      if (effect === undefined) {
        warnings.push(`${path}.name: load shed point ${describe(name)} is not checked by Ferry`);
      }
    }
    const triggerMonitors = new Set<string>();
    const triggers = a.objs("triggers", (t, j) => {
      const tp = `${path}.triggers[${j}]`;
      const trigger = parseTrigger(t, tp, monitors);
      if (triggerMonitors.has(trigger.monitor)) {
        throw new ConfigError(`${tp}.name`, `a second trigger on ${describe(trigger.monitor)}`);
      }
      triggerMonitors.add(trigger.monitor);
      return trigger;
    }, { nonEmpty: true });
    return { name, effect, triggers, ...(timerScales ? { timerScales } : {}) };
  });
}

/** Parses Envoy's `OverloadManager` message (the bootstrap's `overload_manager`). */
export function parseOverloadManager(raw: unknown, path: string): OverloadManagerConfig {
  const o = new ObjReader(raw, path);
  const refreshIntervalMs = o.durationMs("refresh_interval") ?? 1000;
  if (refreshIntervalMs <= 0) throw new ConfigError(o.at("refresh_interval"), "must be above zero");
  const names = new Map<string, number>();
  const monitors = o.objs("resource_monitors", (m, i) => {
    const p = `${o.at("resource_monitors")}[${i}]`;
    const mon = parseMonitor(m, p);
    const prev = names.get(mon.name);
    if (prev !== undefined) {
      throw new ConfigError(`${p}.name`, `${describe(mon.name)} is already at resource_monitors[${prev}]`);
    }
    names.set(mon.name, i);
    return mon;
  });
  if (monitors.filter((m) => m.kind === "downstream_connections").length > 1) {
    throw new ConfigError(o.at("resource_monitors"), "only one downstream connections monitor may be configured");
  }
  const known = new Set(names.keys());
  const warnings: string[] = [];
  const actions = parseActions(o, "actions", known, warnings);
  const loadShedPoints = parseActions(o, "loadshed_points", known, warnings);
  const bf = o.obj("buffer_factory_config");
  const minimumAccountToTrackPowerOfTwo = bf?.int("minimum_account_to_track_power_of_two", { min: 10, max: 56 });
  bf?.done();
  if (minimumAccountToTrackPowerOfTwo === undefined) {
    const i = actions.findIndex((a) => a.effect === "resetHighMemoryStream");
    if (i >= 0) {
      warnings.push(
        `${o.at("actions")}[${i}]: reset_high_memory_stream does nothing without ` +
          "buffer_factory_config.minimum_account_to_track_power_of_two",
      );
    }
  }
  o.done();
  return {
    refreshIntervalMs,
    monitors,
    actions,
    loadShedPoints,
    warnings,
    ...(minimumAccountToTrackPowerOfTwo !== undefined ? { minimumAccountToTrackPowerOfTwo } : {}),
  };
}

/** Memory figures as `Deno.memoryUsage()` gives them (the fields the heap monitor reads). */
export interface MemoryUsage {
  readonly heapUsed: number;
  readonly external: number;
}

/** Options of an {@link OverloadManager}. */
export interface OverloadManagerOptions {
  readonly stats: StatsScope;
  /** Reads memory (default `Deno.memoryUsage`; tests inject figures). */
  readonly memoryUsage?: () => MemoryUsage;
  /** A uniform draw in [0, 1) for scaled actions (default `Math.random`). */
  readonly random?: () => number;
  /**
   * Runs the garbage collector for `shrink_heap` (default: `globalThis.gc`, else exposed at {@link
   * OverloadManager.start} through `node:v8` and `node:vm`; undefined: none).
   */
  readonly gc?: (() => void) | undefined;
}

interface MonitorState {
  readonly config: ResourceMonitorConfig;
  pressure: number;
  readonly pressureGauge: Gauge;
  readonly failedUpdates: Counter;
  readonly skippedUpdates: Counter;
}

interface ActionState {
  readonly config: OverloadActionConfig;
  scale: number;
  readonly active: Gauge;
  readonly scalePercent: Gauge;
}

/**
 * The overload manager of one event loop: see the module doc. {@link start} polls the monitors every
 * `refresh_interval`; {@link refresh} does one round (tests call it directly).
 */
export class OverloadManager implements OverloadView {
  readonly config: OverloadManagerConfig;
  engaged = false;
  readonly #monitors: MonitorState[];
  readonly #actions: ActionState[];
  readonly #connections: MonitorState | undefined;
  readonly #memoryUsage: () => MemoryUsage;
  readonly #random: () => number;
  #gc: (() => void) | undefined;
  readonly #findGc: boolean;
  readonly #refreshDelay: Histogram;
  readonly #shrinkCount: Counter | undefined;
  #activeConnections = 0;
  #shedRequests = 0;
  #disableKeepalive = 0;
  #rejectConnections = 0;
  /** Request bodies from this size up are ended (`reset_high_memory_stream`); Infinity while inactive. */
  #resetStreamBytes = Infinity;
  /** `reduce_timeouts`: its scale, and the timers it scales. */
  #reduceTimeouts = 0;
  readonly #timerScales: TimerScaleFactors;
  readonly #resetStreamCount: Counter | undefined;
  #accepting = true;
  readonly #acceptWatchers = new Set<(accepting: boolean) => void>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #nextAt = 0;

  constructor(config: OverloadManagerConfig, options: OverloadManagerOptions) {
    this.config = config;
    const s = options.stats.scope("overload");
    this.#monitors = config.monitors.map((m) => {
      const ms = s.scope(m.name);
      return {
        config: m,
        pressure: 0,
        pressureGauge: ms.gauge("pressure"),
        failedUpdates: ms.counter("failed_updates"),
        skippedUpdates: ms.counter("skipped_updates"),
      };
    });
    this.#connections = this.#monitors.find((m) => m.config.kind === "downstream_connections");
    this.#actions = [...config.actions, ...config.loadShedPoints].map((a) => {
      const as = s.scope(a.name);
      return { config: a, scale: 0, active: as.gauge("active"), scalePercent: as.gauge("scale_percent") };
    });
    this.#refreshDelay = s.histogram("refresh_interval_delay");
    this.#timerScales = config.actions.find((a) => a.effect === "reduceTimeouts")?.timerScales ?? {};
    this.#resetStreamCount = config.actions.some((a) => a.effect === "resetHighMemoryStream")
      ? s.scope(OVERLOAD_ACTIONS.resetHighMemoryStream).counter("count")
      : undefined;
    this.#shrinkCount = this.#actions.some((a) => a.config.effect === "shrinkHeap")
      ? s.scope(OVERLOAD_ACTIONS.shrinkHeap).counter("shrink_count")
      : undefined;
    this.#memoryUsage = options.memoryUsage ?? (() => Deno.memoryUsage());
    this.#random = options.random ?? Math.random;
    const gc = (globalThis as { gc?: unknown }).gc;
    this.#gc = "gc" in options ? options.gc : typeof gc === "function" ? gc as () => void : undefined;
    this.#findGc = !("gc" in options) && this.#gc === undefined &&
      this.#actions.some((a) => a.config.effect === "shrinkHeap");
  }

  /** Polls the monitors every `refresh_interval` until {@link stop}. */
  start(): void {
    if (this.#timer !== undefined) return;
    if (this.#findGc) {
      exposeGc().then((gc) => this.#gc ??= gc, () => {/* no collector: shrink_heap does nothing */});
    }
    this.refresh();
    const every = this.config.refreshIntervalMs;
    const tick = () => {
      const late = performance.now() - this.#nextAt;
      this.#refreshDelay.record(Math.max(0, late));
      this.refresh();
      this.#nextAt = performance.now() + every;
      this.#timer = setTimeout(tick, every);
    };
    this.#nextAt = performance.now() + every;
    this.#timer = setTimeout(tick, every);
  }

  /** Stops polling. */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** The current pressure (0..1) of a monitor, by name. */
  pressure(monitor: string): number | undefined {
    return this.#monitors.find((m) => m.config.name === monitor)?.pressure;
  }

  /** The current scale (0..1) of an action or load shed point, by name. */
  scale(action: string): number | undefined {
    return this.#actions.find((a) => a.config.name === action)?.scale;
  }

  /** Active downstream connections counted against the connection limit. */
  get activeConnections(): number {
    return this.#activeConnections;
  }

  /** One round: read every monitor, evaluate every trigger, publish the stats and the data path's view. */
  refresh(): void {
    let mem: MemoryUsage | undefined;
    for (const m of this.#monitors) {
      if (m.config.kind === "downstream_connections") {
        m.pressure = this.#activeConnections / m.config.max;
      } else {
        try {
          mem ??= this.#memoryUsage();
          m.pressure = (mem.heapUsed + mem.external) / m.config.max;
        } catch {
          // Keep the last pressure, as Envoy does when a monitor fails to update.
          m.failedUpdates.inc();
          continue;
        }
      }
      m.pressureGauge.set(Math.round(m.pressure * 100));
    }
    let shed = 0, keepalive = 0, reject = 0, reset = 0, timeouts = 0, stopAccepting = false, shrink = false;
    for (const a of this.#actions) {
      let scale = 0;
      for (const t of a.config.triggers) {
        const m = this.#monitors.find((x) => x.config.name === t.monitor)!;
        scale = Math.max(scale, evaluateTrigger(t, m.pressure));
      }
      a.scale = scale;
      a.active.set(scale >= 1 ? 1 : 0);
      a.scalePercent.set(scale >= 1 ? 100 : Math.min(99, Math.round(scale * 100)));
      switch (a.config.effect) {
        case "stopAcceptingRequests":
          shed = Math.max(shed, scale);
          break;
        case "disableHttpKeepalive":
          keepalive = Math.max(keepalive, scale);
          break;
        case "rejectIncomingConnections":
          reject = Math.max(reject, scale);
          break;
        case "stopAcceptingConnections":
          stopAccepting ||= scale >= 1;
          break;
        case "shrinkHeap":
          shrink ||= scale >= 1;
          break;
        case "resetHighMemoryStream":
          reset = Math.max(reset, scale);
          break;
        case "reduceTimeouts":
          timeouts = Math.max(timeouts, scale);
          break;
        default:
          break;
      }
    }
    this.#shedRequests = shed;
    this.#disableKeepalive = keepalive;
    this.#rejectConnections = reject;
    const m = this.config.minimumAccountToTrackPowerOfTwo;
    this.#resetStreamBytes = reset > 0 && m !== undefined ? resetThresholdBytes(m, reset) : Infinity;
    this.#reduceTimeouts = Object.keys(this.#timerScales).length > 0 ? timeouts : 0;
    this.engaged = shed > 0 || keepalive > 0 || reject > 0 || this.#resetStreamBytes !== Infinity ||
      this.#reduceTimeouts > 0;
    if (shrink && this.#gc) {
      this.#gc();
      this.#shrinkCount?.inc();
    }
    if (stopAccepting === this.#accepting) {
      this.#accepting = !stopAccepting;
      for (const w of [...this.#acceptWatchers]) w(this.#accepting);
    }
  }

  #draw(p: number): boolean {
    return p >= 1 || (p > 0 && this.#random() < p);
  }

  admitConnection(counted: boolean): ConnectionVerdict {
    if (this.engaged && this.#draw(this.#rejectConnections)) return "reject";
    const c = this.#connections;
    if (c === undefined || !counted) return "accept";
    if (this.#activeConnections >= c.config.max) return "overflow";
    this.#activeConnections++;
    return "accept";
  }

  releaseConnection(): void {
    if (this.#activeConnections > 0) this.#activeConnections--;
  }

  shedRequest(): boolean {
    return this.#draw(this.#shedRequests);
  }

  disableKeepalive(): boolean {
    return this.#draw(this.#disableKeepalive);
  }

  resetHighMemoryStream(bytes: number): boolean {
    if (bytes < this.#resetStreamBytes) return false;
    this.#resetStreamCount?.inc();
    return true;
  }

  scaleTimeout(timer: ScaledTimer, ms: number): number {
    return scaledTimeoutMs(ms, this.#timerScales[timer], this.#reduceTimeouts);
  }

  watchAccepting(onChange: (accepting: boolean) => void): () => void {
    this.#acceptWatchers.add(onChange);
    onChange(this.#accepting);
    return () => this.#acceptWatchers.delete(onChange);
  }
}

/**
 * V8's collector without `--v8-flags=--expose-gc`: turns the flag on at run time and takes `gc` from a fresh
 * context (the flag applies to contexts created afterwards). Loaded only when a `shrink_heap` action is configured.
 */
async function exposeGc(): Promise<(() => void) | undefined> {
  const [{ default: v8 }, { default: vm }] = await Promise.all([import("node:v8"), import("node:vm")]);
  v8.setFlagsFromString("--expose-gc");
  const gc: unknown = vm.runInNewContext("gc");
  return typeof gc === "function" ? gc as () => void : undefined;
}
