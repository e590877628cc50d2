/**
 * `envoy.filters.http.rbac`: role-based access control per request (Envoy's `RBAC` HTTP filter).
 *
 * `rules` are enforced: a denied request is answered `403 RBAC: access denied` (details
 * `rbac_access_denied_matched_policy[<policy>]`, or `[none]`); `shadow_rules` are only evaluated and counted.
 * Without `rules` every request passes. A route (or its virtual host, or the route configuration) may override the
 * filter with `typed_per_filter_config` keyed `envoy.filters.http.rbac` holding an `RBACPerRoute`: its `rbac`
 * replaces the filter's config for that route, and an `RBACPerRoute` without `rbac` turns the filter off there.
 *
 * Stats, as Envoy names them under the connection manager's scope: `http.<stat_prefix>.rbac.<rules_stat_prefix>`
 * `allowed` / `denied` (a `LOG` action allows and also counts `logged` / `not_logged`) and
 * `http.<stat_prefix>.rbac.<shadow_rules_stat_prefix>shadow_allowed` / `shadow_denied`.
 *
 * @module
 */
import { ConfigError } from "../../lib/api/errors.ts";
import type { HeaderMap } from "../../lib/api/headers.ts";
import type { RouteResult } from "../../lib/api/route.ts";
import type { Counter, StatsScope } from "../../lib/api/stats.ts";
import type {
  FilterFactoryContext,
  FilterResult,
  HttpFilterFactory,
  StreamFilter,
  StreamFilterCallbacks,
} from "../../lib/api/stream_filter.ts";
import { ObjReader } from "../../lib/config/reader.ts";
import { addressWithoutPort } from "../../lib/router/format.ts";
import { evaluateRbac, parseRbacRules, type RbacInput, type RbacRules } from "../_rbac_engine.ts";
import { cachedPerRoute } from "./_per_route.ts";

/** The HTTP RBAC filter's `@type`. */
export const RBAC_TYPE = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC";
/** The per-route override's `@type`. */
export const RBAC_PER_ROUTE_TYPE = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute";
const NAME = "envoy.filters.http.rbac";

/** Parsed `envoy.extensions.filters.http.rbac.v3.RBAC`. */
export interface RbacConfig {
  /** Enforced rules; undefined lets every request through. */
  readonly rules: RbacRules | undefined;
  /** Rules only evaluated and counted. */
  readonly shadowRules: RbacRules | undefined;
  /** `rules_stat_prefix`. */
  readonly rulesStatPrefix: string;
  /** `shadow_rules_stat_prefix`. */
  readonly shadowRulesStatPrefix: string;
}

/** Parses the filter's config (typed_config without `@type`). */
export function parseRbacConfig(raw: Record<string, unknown>, path: string): RbacConfig {
  const o = new ObjReader(raw, path);
  o.skip("@type");
  const r = o.value("rules");
  const s = o.value("shadow_rules");
  const rules = r === undefined || r === null ? undefined : parseRbacRules(r, o.at("rules"), "http");
  const shadowRules = s === undefined || s === null ? undefined : parseRbacRules(s, o.at("shadow_rules"), "http");
  const rulesStatPrefix = o.str("rules_stat_prefix") ?? "";
  const shadowRulesStatPrefix = o.str("shadow_rules_stat_prefix") ?? "";
  o.unsupported("matcher", "is not supported (use rules)");
  o.unsupported("shadow_matcher", "is not supported (use shadow_rules)");
  if (o.bool("track_per_rule_stats") === true) o.unsupported("track_per_rule_stats", "is not supported");
  o.done();
  return { rules, shadowRules, rulesStatPrefix, shadowRulesStatPrefix };
}

/** Parses an `RBACPerRoute` (typed_config without `@type`): its `rbac`, or null when the filter is off there. */
export function parseRbacPerRoute(raw: Record<string, unknown>, path: string): RbacConfig | null {
  const o = new ObjReader(raw, path);
  const t = o.str("@type");
  if (t !== undefined && t !== RBAC_PER_ROUTE_TYPE) {
    throw new ConfigError(o.at("@type"), `expected ${RBAC_PER_ROUTE_TYPE}, got "${t}"`);
  }
  const r = o.obj("rbac");
  o.done();
  return r ? parseRbacConfig(r.raw, r.path) : null;
}

/** The counters one config bumps. */
interface RbacStats {
  allowed: Counter;
  denied: Counter;
  logged: Counter;
  notLogged: Counter;
  shadowAllowed: Counter;
  shadowDenied: Counter;
}

function rbacStats(scope: StatsScope, cfg: RbacConfig): RbacStats {
  const s = scope.scope("rbac");
  return {
    allowed: s.counter(`${cfg.rulesStatPrefix}allowed`),
    denied: s.counter(`${cfg.rulesStatPrefix}denied`),
    logged: s.counter(`${cfg.rulesStatPrefix}logged`),
    notLogged: s.counter(`${cfg.rulesStatPrefix}not_logged`),
    shadowAllowed: s.counter(`${cfg.shadowRulesStatPrefix}shadow_allowed`),
    shadowDenied: s.counter(`${cfg.shadowRulesStatPrefix}shadow_denied`),
  };
}

/** A config with its counters: the filter's own, or a route's override. */
interface Effective {
  readonly cfg: RbacConfig;
  readonly stats: RbacStats;
}

/** The per-stream RBAC filter. */
export class RbacFilter implements StreamFilter {
  readonly #base: Effective;
  readonly #cb: StreamFilterCallbacks;
  readonly #forRoute: (route: RouteResult) => Effective | null | undefined;

  constructor(
    base: Effective,
    cb: StreamFilterCallbacks,
    forRoute: (route: RouteResult) => Effective | null | undefined,
  ) {
    this.#base = base;
    this.#cb = cb;
    this.#forRoute = forRoute;
  }

  decodeHeaders(headers: HeaderMap, _endStream: boolean): FilterResult {
    const cb = this.#cb;
    let eff: Effective | null = this.#base;
    const route = cb.route;
    if (route) {
      const o = this.#forRoute(route);
      if (o !== undefined) eff = o;
    }
    if (eff === null) return "continue";
    const { cfg, stats } = eff;
    if (cfg.rules === undefined && cfg.shadowRules === undefined) return "continue";
    const c = cb.connection;
    const input: RbacInput = {
      directRemoteIp: c.remoteAddress,
      remoteIp: addressWithoutPort(cb.streamInfo.downstreamRemoteAddress),
      localIp: c.localAddress,
      localPort: c.localPort,
      sni: c.sni ?? "",
      peerCertificates: c.secure ? (c.peerCertificates ?? []) : undefined,
      headers,
    };
    if (cfg.shadowRules !== undefined) {
      if (evaluateRbac(cfg.shadowRules, input).allowed) stats.shadowAllowed.inc();
      else stats.shadowDenied.inc();
    }
    const rules = cfg.rules;
    if (rules === undefined) return "continue";
    const d = evaluateRbac(rules, input);
    // LOG allows everything (Envoy counts it as allowed) and records whether a policy asked for the log.
    if (rules.action === "LOG") (d.matchedPolicy !== undefined ? stats.logged : stats.notLogged).inc();
    if (d.allowed) {
      stats.allowed.inc();
      return "continue";
    }
    stats.denied.inc();
    cb.sendLocalReply(403, "RBAC: access denied", {
      details: `rbac_access_denied_matched_policy[${d.matchedPolicy ?? "none"}]`,
    });
    return "stop";
  }
}

/**
 * This filter's entry of one `typed_per_filter_config` map: keyed `envoy.filters.http.rbac`, or else (a filter
 * configured under another name, as `name: rbac`) the entry whose `@type` is `RBACPerRoute`.
 */
function entryOf(m: Readonly<Record<string, unknown>>): Record<string, unknown> | undefined {
  const v = m[NAME];
  if (v !== undefined) return v as Record<string, unknown>;
  for (const k in m) {
    const e = m[k] as Record<string, unknown>;
    if (e["@type"] === RBAC_PER_ROUTE_TYPE) return e;
  }
  return undefined;
}

/**
 * The config-time step: counters of the filter's config are looked up once; a route's override is parsed on first
 * use and kept for the life of this config (keyed by the route's raw entry, which is immutable and shared).
 */
export function createRbacFactory(
  config: RbacConfig,
  context: FilterFactoryContext,
): (callbacks: StreamFilterCallbacks) => StreamFilter {
  const base: Effective = { cfg: config, stats: rbacStats(context.scope, config) };
  const forRoute = cachedPerRoute(NAME, (raw, path): Effective | null => {
    const cfg = parseRbacPerRoute(raw as Record<string, unknown>, path);
    return cfg === null ? null : { cfg, stats: rbacStats(context.scope, cfg) };
  }, entryOf);
  return (callbacks) => new RbacFilter(base, callbacks, forRoute);
}

/** The HTTP RBAC filter factory. */
export const rbacFilterFactory: HttpFilterFactory<RbacConfig> = {
  name: NAME,
  configTypes: [RBAC_TYPE],
  parseConfig: parseRbacConfig,
  createFactory: createRbacFactory,
  create(config, callbacks, context) {
    return createRbacFactory(config, context)(callbacks);
  },
};
