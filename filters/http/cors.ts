/**
 * `envoy.filters.http.cors`: Cross-Origin Resource Sharing with Envoy's semantics. The policy is Envoy's
 * `CorsPolicy` in the `typed_per_filter_config` of the route, virtual host or route configuration (the most specific
 * one applies); without one the filter does nothing. A preflight (`OPTIONS` with `origin` and
 * `access-control-request-method`) from an allowed origin is answered locally with `200` and the
 * `access-control-allow-*` headers; other requests from an allowed origin get `access-control-allow-origin`
 * (and `-credentials`, `-expose-headers`) on their response. An origin matcher that matches `*` allows every
 * origin, as in Envoy. Stats `http.<prefix>.cors.origin_valid` / `origin_invalid`.
 *
 * @module
 */
import { ConfigError } from "../../lib/api/errors.ts";
import type { HeaderMap } from "../../lib/api/headers.ts";
import type { ValueMatcher } from "../../lib/api/route.ts";
import type { Counter } from "../../lib/api/stats.ts";
import type {
  FilterFactoryContext,
  FilterResult,
  HttpFilterFactory,
  StreamFilter,
  StreamFilterCallbacks,
} from "../../lib/api/stream_filter.ts";
import { ObjReader } from "../../lib/config/reader.ts";
import { parseStringMatcher } from "../../lib/router/mod.ts";
import { serverRuntime } from "../../lib/runtime/mod.ts";
import { DISABLED, PerRouteConfigs } from "./_per_route.ts";

/** The CORS filter's `@type` (an empty message). */
export const CORS_TYPE = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors";
/** The per-route policy's `@type`. */
export const CORS_POLICY_TYPE = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy";

const NAME = "envoy.filters.http.cors";

/** The filter's own config (Envoy's `Cors` has no fields). */
export type CorsConfig = Record<string, never>;

/** A `RuntimeFractionalPercent`, as a default and an optional runtime key. */
interface Enabled {
  readonly numerator: number;
  readonly denominator: number;
  readonly runtimeKey: string | undefined;
}

/** Parsed `CorsPolicy`. */
export interface CorsPolicy {
  readonly allowOrigins: readonly ValueMatcher[];
  readonly allowMethods: string;
  readonly allowHeaders: string;
  readonly exposeHeaders: string;
  readonly maxAge: string;
  readonly allowCredentials: boolean;
  readonly filterEnabled: Enabled;
  /** `shadow_enabled`, when set: counts origins without acting while `filter_enabled` is off. */
  readonly shadowEnabled: Enabled | undefined;
  readonly allowPrivateNetworkAccess: boolean;
  readonly forwardNotMatchingPreflights: boolean;
}

const DENOMINATORS = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 } as const;

function parseEnabled(o: ObjReader | undefined, defaultNumerator: number): Enabled {
  if (!o) return { numerator: defaultNumerator, denominator: 100, runtimeKey: undefined };
  const d = o.obj("default_value", { required: true })!;
  const numerator = d.int("numerator", { min: 0 }) ?? 0;
  const denominator =
    DENOMINATORS[d.enumOf("denominator", ["HUNDRED", "TEN_THOUSAND", "MILLION"] as const) ?? "HUNDRED"];
  d.done();
  const runtimeKey = o.str("runtime_key");
  o.done();
  return { numerator, denominator, runtimeKey };
}

/** A BoolValue: `true` or `{value: true}`. */
function boolValue(o: ObjReader, key: string): boolean | undefined {
  const v = o.value(key);
  if (v === undefined || typeof v === "boolean") return v;
  if (v !== null && typeof v === "object") {
    const w = new ObjReader(v, o.at(key));
    const b = w.bool("value") ?? false;
    w.done();
    return b;
  }
  throw new ConfigError(o.at(key), `expected a boolean, got ${JSON.stringify(v)}`);
}

/** Reads a `CorsPolicy` (after `@type`). */
export function readCorsPolicy(o: ObjReader): CorsPolicy {
  o.skip("@type");
  const allowOrigins = o.arr("allow_origin_string_match", (m, path) => parseStringMatcher(m, path));
  const policy: CorsPolicy = {
    allowOrigins,
    allowMethods: o.str("allow_methods") ?? "",
    allowHeaders: o.str("allow_headers") ?? "",
    exposeHeaders: o.str("expose_headers") ?? "",
    maxAge: o.str("max_age") ?? "",
    allowCredentials: boolValue(o, "allow_credentials") ?? false,
    filterEnabled: parseEnabled(o.obj("filter_enabled"), 100),
    shadowEnabled: o.has("shadow_enabled") ? parseEnabled(o.obj("shadow_enabled"), 100) : undefined,
    allowPrivateNetworkAccess: boolValue(o, "allow_private_network_access") ?? false,
    forwardNotMatchingPreflights: boolValue(o, "forward_not_matching_preflights") ?? true,
  };
  o.done();
  return policy;
}

function parseCorsConfig(raw: Record<string, unknown>, path: string): CorsConfig {
  const o = new ObjReader(raw, path);
  o.skip("@type");
  o.done();
  return {};
}

function hits(e: Enabled): boolean {
  const p = serverRuntime.fraction(e.runtimeKey, e.numerator, e.denominator);
  return p >= 1 || (p > 0 && Math.random() < p);
}

function originAllowed(p: CorsPolicy, origin: string): boolean {
  for (const m of p.allowOrigins) if (m.test("*") || m.test(origin)) return true;
  return false;
}

interface CorsStats {
  origin_valid: Counter;
  origin_invalid: Counter;
}

/** The per-stream CORS filter. */
export class CorsFilter implements StreamFilter {
  readonly #policies: PerRouteConfigs<CorsPolicy>;
  readonly #cb: StreamFilterCallbacks;
  readonly #stats: CorsStats;
  /** Set for an actual (non-preflight) CORS request from an allowed origin. */
  #policy: CorsPolicy | undefined;
  #origin = "";

  constructor(policies: PerRouteConfigs<CorsPolicy>, cb: StreamFilterCallbacks, stats: CorsStats) {
    this.#policies = policies;
    this.#cb = cb;
    this.#stats = stats;
  }

  decodeHeaders(headers: HeaderMap, _endStream: boolean): FilterResult {
    const origin = headers.get("origin");
    if (origin === undefined || origin === "") return "continue";
    const p = this.#policies.lookup(this.#cb);
    if (p === undefined || p === DISABLED) return "continue";
    const enabled = hits(p.filterEnabled);
    if (!enabled && !(p.shadowEnabled !== undefined && hits(p.shadowEnabled))) return "continue";
    const allowed = originAllowed(p, origin);
    if (allowed) this.#stats.origin_valid.inc();
    else this.#stats.origin_invalid.inc();
    if (!enabled) return "continue";
    const preflight = headers.get(":method") === "OPTIONS" &&
      (headers.get("access-control-request-method") ?? "") !== "";
    if (!allowed) {
      if (preflight && !p.forwardNotMatchingPreflights) {
        this.#cb.sendLocalReply(200, "", { details: "cors_response" });
        return "stop";
      }
      return "continue";
    }
    if (!preflight) {
      this.#policy = p;
      this.#origin = origin;
      return "continue";
    }
    const h: Record<string, string> = { "access-control-allow-origin": origin };
    if (p.allowCredentials) h["access-control-allow-credentials"] = "true";
    if (p.allowMethods !== "") h["access-control-allow-methods"] = p.allowMethods;
    if (p.allowHeaders !== "") h["access-control-allow-headers"] = p.allowHeaders;
    if (p.maxAge !== "") h["access-control-max-age"] = p.maxAge;
    if (p.allowPrivateNetworkAccess && headers.get("access-control-request-private-network") === "true") {
      h["access-control-allow-private-network"] = "true";
    }
    this.#cb.sendLocalReply(200, "", { headers: h, details: "cors_response" });
    return "stop";
  }

  encodeHeaders(headers: HeaderMap, _endStream: boolean): FilterResult {
    const p = this.#policy;
    if (p === undefined) return "continue";
    headers.set("access-control-allow-origin", this.#origin);
    if (p.allowCredentials) headers.set("access-control-allow-credentials", "true");
    if (p.exposeHeaders !== "") headers.set("access-control-expose-headers", p.exposeHeaders);
    return "continue";
  }
}

/** The config-time step: the stats and the cache of parsed per-route policies. */
export function createCorsFactory(
  _config: CorsConfig,
  context: FilterFactoryContext,
): (callbacks: StreamFilterCallbacks) => StreamFilter {
  const s = context.scope.scope("cors");
  const stats: CorsStats = { origin_valid: s.counter("origin_valid"), origin_invalid: s.counter("origin_invalid") };
  const policies = new PerRouteConfigs(NAME, [CORS_POLICY_TYPE], readCorsPolicy);
  return (callbacks) => new CorsFilter(policies, callbacks, stats);
}

/** The CORS filter factory. */
export const corsFilterFactory: HttpFilterFactory<CorsConfig> = {
  name: NAME,
  configTypes: [CORS_TYPE],
  parseConfig: parseCorsConfig,
  createFactory: createCorsFactory,
  create(config, callbacks, context) {
    return createCorsFactory(config, context)(callbacks);
  },
};
