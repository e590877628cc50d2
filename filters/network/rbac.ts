/**
 * `envoy.filters.network.rbac`: role-based access control per connection (Envoy's network `RBAC` filter).
 *
 * As in Envoy, the rules are evaluated when the first bytes arrive (`enforcement_type: ONE_TIME_ON_FIRST_BYTE`, the
 * default) or on every read (`CONTINUOUS`); a denied connection is closed, its bytes never reaching the next
 * filter. Principals see the peer address and, on TLS, the peer certificate (URI SAN, DNS SAN, subject — SM2
 * certificates from GM TLS included); permissions see the local address and port and the SNI. `header` and
 * `url_path` rules are rejected at load time: a connection has neither.
 *
 * Stats `<stat_prefix>.rbac.allowed` / `denied` (per check; `LOG` allows and also counts `logged` / `not_logged`) and
 * `<stat_prefix>.rbac.<shadow_rules_stat_prefix>shadow_allowed` / `shadow_denied`, as Envoy names them.
 *
 * @module
 */
import type {
  NetConnection,
  NetworkFilter,
  NetworkFilterCallbacks,
  NetworkFilterContext,
  NetworkFilterFactory,
  NetworkFilterFactoryCb,
  NetworkFilterStatus,
} from "../../lib/api/network.ts";
import type { Counter } from "../../lib/api/stats.ts";
import { ObjReader } from "../../lib/config/reader.ts";
import { evaluateRbac, parseRbacRules, type RbacInput, type RbacRules, statPrefixJoin } from "../_rbac_engine.ts";

/** The network RBAC filter's `@type`. */
export const NETWORK_RBAC_TYPE = "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC";

/** Parsed `envoy.extensions.filters.network.rbac.v3.RBAC`. */
export interface NetworkRbacConfig {
  readonly statPrefix: string;
  /** Enforced rules; undefined allows every connection. */
  readonly rules: RbacRules | undefined;
  readonly shadowRules: RbacRules | undefined;
  readonly shadowRulesStatPrefix: string;
  /** True for `CONTINUOUS`: every read is checked, not only the first. */
  readonly continuous: boolean;
}

/** Parses the filter's config (typed_config without `@type`). */
export function parseNetworkRbacConfig(raw: unknown, path: string): NetworkRbacConfig {
  const o = new ObjReader(raw, path);
  o.skip("@type");
  const statPrefix = o.str("stat_prefix", { required: true });
  const r = o.value("rules");
  const s = o.value("shadow_rules");
  const rules = r === undefined || r === null ? undefined : parseRbacRules(r, o.at("rules"), "network");
  const shadowRules = s === undefined || s === null ? undefined : parseRbacRules(s, o.at("shadow_rules"), "network");
  const shadowRulesStatPrefix = o.str("shadow_rules_stat_prefix") ?? "";
  const et = o.enumOf("enforcement_type", ["ONE_TIME_ON_FIRST_BYTE", "CONTINUOUS"] as const);
  o.unsupported("matcher", "is not supported (use rules)");
  o.unsupported("shadow_matcher", "is not supported (use shadow_rules)");
  o.skip("delay_deny");
  o.done();
  return { statPrefix, rules, shadowRules, shadowRulesStatPrefix, continuous: et === "CONTINUOUS" };
}

interface Stats {
  allowed: Counter;
  denied: Counter;
  logged: Counter;
  notLogged: Counter;
  shadowAllowed: Counter;
  shadowDenied: Counter;
}

function connectionInput(c: NetConnection): RbacInput {
  const hs = (c as { handshake?: { peerCertificates?: readonly Uint8Array[] } }).handshake;
  return {
    directRemoteIp: c.remoteAddress,
    remoteIp: c.remoteAddress,
    localIp: c.localAddress,
    localPort: c.localPort,
    sni: c.tls?.sni ?? "",
    peerCertificates: c.secure ? (hs?.peerCertificates ?? []) : undefined,
  };
}

/** The per-connection network RBAC filter. */
export class NetworkRbacFilter implements NetworkFilter {
  readonly #cfg: NetworkRbacConfig;
  readonly #cb: NetworkFilterCallbacks;
  readonly #stats: Stats;
  #checked = false;

  constructor(cfg: NetworkRbacConfig, cb: NetworkFilterCallbacks, stats: Stats) {
    this.#cfg = cfg;
    this.#cb = cb;
    this.#stats = stats;
  }

  onData(_data: Uint8Array, _endStream: boolean): NetworkFilterStatus {
    const cfg = this.#cfg;
    if (this.#checked && !cfg.continuous) return "continue";
    const first = !this.#checked;
    this.#checked = true;
    const input = connectionInput(this.#cb.connection);
    if (first && cfg.shadowRules !== undefined) {
      if (evaluateRbac(cfg.shadowRules, input).allowed) this.#stats.shadowAllowed.inc();
      else this.#stats.shadowDenied.inc();
    }
    const rules = cfg.rules;
    if (rules === undefined) return "continue";
    const d = evaluateRbac(rules, input);
    // Counted per check, as Envoy (so per read with CONTINUOUS); LOG allows and also counts logged / not_logged.
    if (rules.action === "LOG") (d.matchedPolicy !== undefined ? this.#stats.logged : this.#stats.notLogged).inc();
    if (d.allowed) {
      this.#stats.allowed.inc();
      return "continue";
    }
    this.#stats.denied.inc();
    this.#cb.connection.close({ reason: `rbac_access_denied_matched_policy[${d.matchedPolicy ?? "none"}]` });
    return "stop";
  }
}

/** The config-time step: the counters are looked up once per filter chain config. */
export function createNetworkRbacFactory(
  config: NetworkRbacConfig,
  context: NetworkFilterContext,
): NetworkFilterFactoryCb {
  const p = statPrefixJoin(config.statPrefix, "rbac.");
  const sp = p + config.shadowRulesStatPrefix;
  const s = context.stats;
  const stats: Stats = {
    allowed: s.counter(`${p}allowed`),
    denied: s.counter(`${p}denied`),
    logged: s.counter(`${p}logged`),
    notLogged: s.counter(`${p}not_logged`),
    shadowAllowed: s.counter(`${sp}shadow_allowed`),
    shadowDenied: s.counter(`${sp}shadow_denied`),
  };
  return (callbacks) => new NetworkRbacFilter(config, callbacks, stats);
}

/** The network RBAC filter factory. */
export const networkRbacFilterFactory: NetworkFilterFactory<NetworkRbacConfig> = {
  name: "envoy.filters.network.rbac",
  configTypes: [NETWORK_RBAC_TYPE],
  parseConfig: parseNetworkRbacConfig,
  createFactory: createNetworkRbacFactory,
  create(config, callbacks, context) {
    return createNetworkRbacFactory(config, context)(callbacks);
  },
};
