/**
 * `envoy.filters.http.fault`: injects delays and aborts, by percentage and by request header, to test how
 * services behave when their dependencies fail (Envoy's `HTTPFault`).
 *
 * Header-controlled faults (`x-envoy-fault-delay-request: <ms>`, `x-envoy-fault-abort-request: <status>`, with
 * `...-percentage` companions) act only when the config enables `header_delay` / `header_abort`, as in Envoy.
 *
 * @module
 */
import { ConfigError } from "../../lib/api/errors.ts";
import type { HeaderMap } from "../../lib/api/headers.ts";
import type { Counter, Gauge } from "../../lib/api/stats.ts";
import type {
  FilterFactoryContext,
  FilterResult,
  HttpFilterFactory,
  StreamFilter,
  StreamFilterCallbacks,
} from "../../lib/api/stream_filter.ts";
import { ObjReader } from "../../lib/config/reader.ts";
import type { RouteResult } from "../../lib/router/mod.ts";
import { serverRuntime } from "../../lib/runtime/mod.ts";
import { schedule, type WheelTimer } from "../../lib/network/timer_wheel.ts";

/** The fault filter's `@type`. */
export const FAULT_TYPE = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault";

/** A probability as Envoy's FractionalPercent, normalised to [0, 1]. */
export type Fraction = number;

/** One fault's `percentage`: the configured probability and the denominator its header companion uses. */
export interface FaultPercentage {
  /** `numerator / denominator`, capped at 1. */
  readonly fraction: Fraction;
  /** 100, 10 000 or 1 000 000 (`HUNDRED`, `TEN_THOUSAND`, `MILLION`). */
  readonly denominator: number;
}

/** Parsed fault config. */
export interface FaultConfig {
  readonly delay?: { readonly fixedMs?: number; readonly fromHeader: boolean } & FaultPercentage;
  readonly abort?: { readonly status?: number; readonly fromHeader: boolean } & FaultPercentage;
  /**
   * Only requests routed to this cluster are faulted: the route's `cluster`, or any entry of its
   * `weighted_clusters` (the fault filter runs before the router picks one entry, so a weighted route naming the
   * cluster is faulted whichever entry the router would pick). Routes using `cluster_header` never match.
   */
  readonly upstreamCluster?: string;
  /** All of these request headers must be present with these exact values (a subset of Envoy's matchers). */
  readonly headers: readonly { name: string; exact?: string; present?: boolean; invert: boolean }[];
  readonly maxActiveFaults?: number;
  /**
   * The runtime keys that override the config per request, as Envoy's fault filter reads them (the `*_runtime`
   * fields, defaulting to `fault.http.delay.fixed_delay_percent`, `fault.http.delay.fixed_duration_ms`,
   * `fault.http.abort.abort_percent`, `fault.http.abort.http_status`, `fault.http.max_active_faults`).
   */
  readonly runtime: {
    readonly delayPercent: string;
    readonly delayDuration: string;
    readonly abortPercent: string;
    readonly abortHttpStatus: string;
    readonly maxActiveFaults: string;
  };
}

const RUNTIME_KEYS: FaultConfig["runtime"] = {
  delayPercent: "fault.http.delay.fixed_delay_percent",
  delayDuration: "fault.http.delay.fixed_duration_ms",
  abortPercent: "fault.http.abort.abort_percent",
  abortHttpStatus: "fault.http.abort.http_status",
  maxActiveFaults: "fault.http.max_active_faults",
};

const DENOMINATORS = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 } as const;

/** Parses a FractionalPercent (`{numerator, denominator}`); absent means 0, as in Envoy's proto. */
export function parseFractionalPercent(o: ObjReader | undefined): Fraction {
  return parsePercentage(o).fraction;
}

function parsePercentage(o: ObjReader | undefined): FaultPercentage {
  if (!o) return { fraction: 0, denominator: DENOMINATORS.HUNDRED };
  const n = o.int("numerator", { min: 0 }) ?? 0;
  const d = DENOMINATORS[o.enumOf("denominator", ["HUNDRED", "TEN_THOUSAND", "MILLION"] as const) ?? "HUNDRED"];
  o.done();
  return { fraction: Math.min(1, n / d), denominator: d };
}

function parseFaultConfig(raw: Record<string, unknown>, path: string): FaultConfig {
  const o = new ObjReader(raw, path).envoyMessage("envoy.extensions.filters.http.fault.v3.HTTPFault");
  o.skip("@type");
  const cfg: { -readonly [K in keyof FaultConfig]: FaultConfig[K] } = { headers: [], runtime: RUNTIME_KEYS };
  const d = o.obj("delay");
  if (d) {
    const which = d.oneOf(["fixed_delay", "header_delay"] as const, { required: true });
    const fixedMs = which === "fixed_delay" ? d.durationMs("fixed_delay") : undefined;
    if (which === "header_delay") d.obj("header_delay")?.done();
    const pct = parsePercentage(d.obj("percentage"));
    d.done();
    cfg.delay = { ...(fixedMs !== undefined ? { fixedMs } : {}), fromHeader: which === "header_delay", ...pct };
  }
  const a = o.obj("abort");
  if (a) {
    const which = a.oneOf(["http_status", "grpc_status", "header_abort"] as const, { required: true });
    if (which === "grpc_status") a.unsupported("grpc_status", "is not supported yet (gRPC comes with HTTP/2)");
    const status = which === "http_status" ? a.int("http_status", { min: 200, max: 599 }) : undefined;
    if (which === "header_abort") a.obj("header_abort")?.done();
    const pct = parsePercentage(a.obj("percentage"));
    a.done();
    cfg.abort = { ...(status !== undefined ? { status } : {}), fromHeader: which === "header_abort", ...pct };
  }
  const uc = o.str("upstream_cluster");
  if (uc !== undefined) cfg.upstreamCluster = uc;
  cfg.headers = o.objs("headers", (h) => {
    const name = h.str("name", { required: true }).toLowerCase();
    const invert = h.bool("invert_match") ?? false;
    const present = h.bool("present_match");
    let exact = h.str("exact_match");
    const sm = h.obj("string_match");
    if (sm) {
      exact = sm.str("exact");
      if (exact === undefined) {
        throw new ConfigError(sm.path, "only exact string matches are supported by the fault filter");
      }
      sm.done();
    }
    if (exact === undefined && present === undefined) {
      throw new ConfigError(h.path, "one of exact_match, string_match.exact, present_match is required");
    }
    return { name, invert, ...(exact !== undefined ? { exact } : {}), ...(present !== undefined ? { present } : {}) };
  });
  const maf = o.int("max_active_faults", { min: 0 });
  if (maf !== undefined) cfg.maxActiveFaults = maf;
  o.strs("downstream_nodes").length > 0 && o.unsupported("downstream_nodes");
  o.unsupported("response_rate_limit", "is not supported yet");
  cfg.runtime = {
    delayPercent: o.str("delay_percent_runtime") || RUNTIME_KEYS.delayPercent,
    delayDuration: o.str("delay_duration_runtime") || RUNTIME_KEYS.delayDuration,
    abortPercent: o.str("abort_percent_runtime") || RUNTIME_KEYS.abortPercent,
    abortHttpStatus: o.str("abort_http_status_runtime") || RUNTIME_KEYS.abortHttpStatus,
    maxActiveFaults: o.str("max_active_faults_runtime") || RUNTIME_KEYS.maxActiveFaults,
  };
  o.skip("response_rate_limit_percent_runtime", "abort_grpc_status_runtime");
  o.bool("disable_downstream_cluster_stats");
  o.done();
  return cfg;
}

interface FaultStats {
  delays_injected: Counter;
  aborts_injected: Counter;
  active_faults: Gauge;
  faults_overflow: Counter;
}

/**
 * The probability a `...-percentage` header asks for. As in Envoy, its value is a numerator over the denominator of
 * the fault's configured `percentage` (so `5` means 5% with HUNDRED but 0.0005% with MILLION), and it can only
 * lower the configured percentage, never raise it. An absent or malformed header leaves the configured one.
 */
function headerFraction(h: HeaderMap, name: string, configured: FaultPercentage): Fraction {
  const v = h.get(name);
  if (v === undefined) return configured.fraction;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) return configured.fraction;
  return Math.min(configured.fraction, n / configured.denominator);
}

/** The per-stream fault filter. */
export class FaultFilter implements StreamFilter {
  readonly #cfg: FaultConfig;
  readonly #cb: StreamFilterCallbacks;
  readonly #stats: FaultStats;
  #timer: WheelTimer | undefined;
  #active = false;

  constructor(cfg: FaultConfig, cb: StreamFilterCallbacks, stats: FaultStats) {
    this.#cfg = cfg;
    this.#cb = cb;
    this.#stats = stats;
  }

  #matches(h: HeaderMap): boolean {
    for (const m of this.#cfg.headers) {
      const v = h.get(m.name);
      let ok = m.exact !== undefined ? v === m.exact : (v !== undefined) === (m.present ?? true);
      if (m.invert) ok = !ok;
      if (!ok) return false;
    }
    const uc = this.#cfg.upstreamCluster;
    if (uc !== undefined) {
      const action = (this.#cb.route as RouteResult | null | undefined)?.route.action;
      if (action?.kind !== "route") return false;
      if (action.cluster?.name !== uc && !action.weightedClusters.some((c) => c.name === uc)) return false;
    }
    return true;
  }

  decodeHeaders(headers: HeaderMap, _endStream: boolean): FilterResult {
    const cfg = this.#cfg;
    if (!cfg.delay && !cfg.abort) return "continue";
    if (!this.#matches(headers)) return "continue";
    let delayMs: number | undefined;
    if (cfg.delay) {
      const d = cfg.delay;
      let ms = d.fixedMs;
      let frac = d.fraction;
      if (d.fromHeader) {
        const v = Number(headers.get("x-envoy-fault-delay-request"));
        ms = Number.isFinite(v) && v > 0 ? v : undefined;
        frac = headerFraction(headers, "x-envoy-fault-delay-request-percentage", d);
      } else if (ms !== undefined) ms = serverRuntime.getInteger(cfg.runtime.delayDuration, ms);
      frac = serverRuntime.fraction(cfg.runtime.delayPercent, frac * d.denominator, d.denominator);
      if (ms !== undefined && ms > 0 && Math.random() < frac) delayMs = ms;
    }
    let abortStatus: number | undefined;
    if (cfg.abort) {
      const a = cfg.abort;
      let status = a.status;
      let frac = a.fraction;
      if (a.fromHeader) {
        const v = Number(headers.get("x-envoy-fault-abort-request"));
        status = Number.isInteger(v) && v >= 200 && v < 600 ? v : undefined;
        frac = headerFraction(headers, "x-envoy-fault-abort-request-percentage", a);
      } else if (status !== undefined) {
        const s = serverRuntime.getInteger(cfg.runtime.abortHttpStatus, status);
        if (s >= 200 && s < 600) status = s;
      }
      frac = serverRuntime.fraction(cfg.runtime.abortPercent, frac * a.denominator, a.denominator);
      if (status !== undefined && Math.random() < frac) abortStatus = status;
    }
    if (delayMs === undefined && abortStatus === undefined) return "continue";
    const maxActive = cfg.maxActiveFaults === undefined
      ? undefined
      : serverRuntime.getInteger(cfg.runtime.maxActiveFaults, cfg.maxActiveFaults);
    if (maxActive !== undefined && this.#stats.active_faults.value >= maxActive) {
      this.#stats.faults_overflow.inc();
      return "continue";
    }
    this.#active = true;
    this.#stats.active_faults.inc();
    if (delayMs === undefined) {
      this.#abort(abortStatus!);
      return "stop";
    }
    this.#stats.delays_injected.inc();
    this.#cb.streamInfo.responseFlags.push("DI");
    return new Promise((resolve) => {
      this.#timer = schedule(delayMs, () => {
        this.#timer = undefined;
        if (abortStatus !== undefined) {
          this.#abort(abortStatus);
          resolve("stop");
        } else {
          this.#end();
          resolve("continue");
        }
      });
    });
  }

  #abort(status: number): void {
    this.#stats.aborts_injected.inc();
    this.#end();
    this.#cb.sendLocalReply(status, "fault filter abort", { responseFlag: "FI", details: "fault_filter_abort" });
  }

  #end(): void {
    if (this.#active) {
      this.#active = false;
      this.#stats.active_faults.dec();
    }
  }

  onDestroy(): void {
    this.#timer?.cancel();
    this.#end();
  }
}

/**
 * The config-time step: the `fault.*` stats of the connection manager's scope are looked up once per config and
 * shared by its streams (`active_faults` counts across all of them, as `max_active_faults` needs).
 */
export function createFaultFactory(
  config: FaultConfig,
  context: FilterFactoryContext,
): (callbacks: StreamFilterCallbacks) => StreamFilter {
  const s = context.scope.scope("fault");
  const stats: FaultStats = {
    delays_injected: s.counter("delays_injected"),
    aborts_injected: s.counter("aborts_injected"),
    active_faults: s.gauge("active_faults"),
    faults_overflow: s.counter("faults_overflow"),
  };
  return (callbacks) => new FaultFilter(config, callbacks, stats);
}

/** The fault filter factory. */
export const faultFilterFactory: HttpFilterFactory<FaultConfig> = {
  name: "envoy.filters.http.fault",
  configTypes: [FAULT_TYPE],
  parseConfig: parseFaultConfig,
  createFactory: createFaultFactory,
  /** The one-step form: stats are names in the store, so a per-stream lookup finds the same counters. */
  create(config, callbacks, context) {
    return createFaultFactory(config, context)(callbacks);
  },
};
