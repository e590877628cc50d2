/**
 * The RBAC policy engine shared by `envoy.filters.http.rbac` and `envoy.filters.network.rbac`: Envoy's
 * `envoy.config.rbac.v3.RBAC` (an action and named policies of permissions and principals), compiled once per
 * config into plain predicates.
 *
 * A policy matches when any of its permissions and any of its principals match. `ALLOW` allows exactly what some
 * policy matches, `DENY` denies exactly that, `LOG` allows everything and reports whether a policy matched.
 * Rules with no policies therefore deny everything under `ALLOW` and allow everything under `DENY`, as in Envoy.
 *
 * What a rule cannot see is false, as in Envoy: `header` and `url_path` on a network filter, `authenticated` on a
 * plain-text connection, `metadata` (Ferry keeps no dynamic metadata, so a metadata matcher never matches unless it
 * is inverted with `invert: true`).
 *
 * @module
 */
import { ConfigError } from "../lib/api/errors.ts";
import type { HeaderMap } from "../lib/api/headers.ts";
import type { HeaderMatcher, ValueMatcher } from "../lib/api/route.ts";
import { describe, ObjReader } from "../lib/config/reader.ts";
import { parseCertificate } from "../lib/crypto/x509.ts";
import { parseIpv4, parseIpv6 } from "../lib/network/ip.ts";
import { matchHeader, parseHeaderMatcher, parseStringMatcher } from "../lib/router/matchers.ts";

/** What a request or connection offers the rules. Addresses are bare IPs (no port, no brackets). */
export interface RbacInput {
  /** The peer of the connection (`direct_remote_ip`, and `source_ip`). */
  readonly directRemoteIp: string;
  /** The client as the connection manager trusted it from `x-forwarded-for` (`remote_ip`); the peer for L4. */
  readonly remoteIp: string;
  /** The local address and port the connection was accepted on (`destination_ip`, `destination_port`). */
  readonly localIp: string;
  readonly localPort: number;
  /** The TLS SNI (`requested_server_name`); empty when none. */
  readonly sni: string;
  /** The peer's certificate chain (DER, leaf first) when the connection is TLS, or undefined for plain text. */
  readonly peerCertificates: readonly Uint8Array[] | undefined;
  /** Request headers (HTTP only). */
  readonly headers?: HeaderMap | undefined;
}

/** A compiled rule (permission or principal). */
export type Rule = (input: RbacInput, ctx: EvalContext) => boolean;

/** Per-evaluation memo of the peer's identities (parsed once, only if an `authenticated` rule asks). */
export interface EvalContext {
  identities: readonly string[] | undefined | null;
}

/** One compiled policy. */
export interface RbacPolicy {
  readonly name: string;
  /** True if any of the policy's permissions matches. */
  readonly permission: Rule;
  /** True if any of the policy's principals matches. */
  readonly principal: Rule;
}

/** `envoy.config.rbac.v3.RBAC.Action`. */
export type RbacAction = "ALLOW" | "DENY" | "LOG";

/** Compiled `envoy.config.rbac.v3.RBAC`. */
export interface RbacRules {
  readonly action: RbacAction;
  readonly policies: readonly RbacPolicy[];
}

/** The outcome of evaluating rules: `allowed` per the action, and the first matching policy's name. */
export interface RbacDecision {
  readonly allowed: boolean;
  readonly matchedPolicy: string | undefined;
}

/** Where rules are evaluated; `network` rules cannot see headers or paths. */
export type RbacSide = "http" | "network";

// ---- parsing ----

interface Cidr {
  readonly bytes: Uint8Array;
  readonly bits: number;
}

function parseCidr(raw: unknown, path: string): Cidr {
  const o = new ObjReader(raw, path);
  const prefix = o.str("address_prefix", { required: true });
  const bytes = ipBytes(prefix);
  if (bytes === undefined) throw new ConfigError(o.at("address_prefix"), `${describe(prefix)} is not an IP address`);
  // Envoy: an absent prefix_len is 0, which matches every address of the family.
  const bits = o.int("prefix_len", { min: 0, max: bytes.length * 8 }) ?? 0;
  o.done();
  return { bytes, bits };
}

/** IP text to bytes; IPv4-mapped IPv6 addresses become IPv4, so `::ffff:10.0.0.1` matches `10.0.0.0/8`. */
function ipBytes(s: string): Uint8Array | undefined {
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  if (!s.includes(":")) return parseIpv4(s);
  const v6 = parseIpv6(s);
  if (v6 === undefined) return undefined;
  let mapped = v6[10] === 0xff && v6[11] === 0xff;
  for (let i = 0; i < 10 && mapped; i++) mapped = v6[i] === 0;
  return mapped ? v6.slice(12) : v6;
}

function cidrRule(c: Cidr, pick: (i: RbacInput) => string): Rule {
  // Addresses repeat across requests of one connection; the last one's bytes are kept.
  let lastText = "";
  let lastBytes: Uint8Array | undefined;
  return (input) => {
    const text = pick(input);
    if (text !== lastText) {
      lastText = text;
      lastBytes = ipBytes(text);
    }
    const ip = lastBytes;
    if (ip === undefined || ip.length !== c.bytes.length) return false;
    let left = c.bits;
    for (let i = 0; left > 0; i++, left -= 8) {
      const mask = left >= 8 ? 0xff : (0xff << (8 - left)) & 0xff;
      if ((ip[i]! & mask) !== (c.bytes[i]! & mask)) return false;
    }
    return true;
  };
}

function headerRule(m: HeaderMatcher): Rule {
  return (input) => input.headers !== undefined && matchHeader(m, input.headers);
}

function parsePathMatcher(raw: unknown, path: string): Rule {
  const o = new ObjReader(raw, path);
  const m: ValueMatcher = parseStringMatcher(o.value("path", { required: true }), o.at("path"));
  o.done();
  return (input) => {
    const p = input.headers?.get(":path");
    if (p === undefined) return false;
    let end = p.length;
    const q = p.indexOf("?");
    if (q >= 0) end = q;
    const h = p.indexOf("#");
    if (h >= 0 && h < end) end = h;
    return m.test(end === p.length ? p : p.slice(0, end));
  };
}

function parseMetadataMatcher(raw: unknown, path: string): Rule {
  const o = new ObjReader(raw, path);
  o.str("filter", { required: true });
  o.objs("path", (s) => {
    s.str("key", { required: true });
    s.done();
  }, { nonEmpty: true });
  o.obj("value", { required: true });
  const invert = o.bool("invert") ?? false;
  o.done();
  // No dynamic metadata exists in Ferry: the value is always absent, so the matcher is false (true if inverted).
  return () => invert;
}

function guard(side: RbacSide, path: string, what: string): void {
  // Envoy accepts these on the network filter and they never match; we say so at load time instead of silently
  // denying (ALLOW) or allowing (DENY) everything.
  if (side === "network") throw new ConfigError(path, `${what} does not apply to the network RBAC filter`);
}

/** The rule kinds permissions and principals share, read from `o`'s field `which` (at `at`). */
function sharedRule(
  o: ObjReader,
  which: "any" | "header" | "url_path" | "metadata",
  at: string,
  side: RbacSide,
): Rule {
  switch (which) {
    case "any":
      if (o.bool("any") !== true) throw new ConfigError(at, "must be true");
      return () => true;
    case "header":
      guard(side, at, "header");
      return headerRule(parseHeaderMatcher(o.value(which), at));
    case "url_path":
      guard(side, at, "url_path");
      return parsePathMatcher(o.value(which), at);
    case "metadata":
      return parseMetadataMatcher(o.value(which), at);
  }
}

/** An `and_rules`/`or_rules` (`and_ids`/`or_ids`) set: its non-empty `list` of rules, all (`and`) or some. */
function setRule(
  o: ObjReader,
  which: string,
  list: string,
  parse: (raw: unknown, path: string, side: RbacSide) => Rule,
  side: RbacSide,
  and: boolean,
): Rule {
  const s = o.obj(which)!;
  const rules = s.objs(list, viaReader(parse, side), { nonEmpty: true });
  s.done();
  return and ? all(rules) : some(rules);
}

/** The negation of a rule (`not_rule`, `not_id`). */
function negate(inner: Rule): Rule {
  return (i, c) => !inner(i, c);
}

function parsePermission(raw: unknown, path: string, side: RbacSide): Rule {
  const o = new ObjReader(raw, path);
  const kinds = [
    "and_rules",
    "or_rules",
    "any",
    "header",
    "url_path",
    "destination_ip",
    "destination_port",
    "destination_port_range",
    "metadata",
    "not_rule",
    "requested_server_name",
    "matcher",
    "uri_template",
  ] as const;
  const which = o.oneOf(kinds, { required: true })!;
  const at = o.at(which);
  let rule: Rule;
  switch (which) {
    case "and_rules":
    case "or_rules":
      rule = setRule(o, which, "rules", parsePermission, side, which === "and_rules");
      break;
    case "any":
    case "header":
    case "url_path":
    case "metadata":
      rule = sharedRule(o, which, at, side);
      break;
    case "destination_ip":
      rule = cidrRule(parseCidr(o.value(which), at), (i) => i.localIp);
      break;
    case "destination_port": {
      const port = o.int(which, { min: 0, max: 65535 })!;
      rule = (i) => i.localPort === port;
      break;
    }
    case "destination_port_range": {
      const r = o.obj(which)!;
      const start = r.int("start") ?? 0;
      const end = r.int("end") ?? 0;
      r.done();
      if (end < start) throw new ConfigError(at, `end ${end} must not be less than start ${start}`);
      rule = (i) => i.localPort >= start && i.localPort < end;
      break;
    }
    case "not_rule":
      rule = negate(parsePermission(o.value(which), at, side));
      break;
    case "requested_server_name": {
      const m = parseStringMatcher(o.value(which), at);
      rule = (i) => m.test(i.sni);
      break;
    }
    default:
      o.unsupported(which, `is not supported (use the other permission kinds)`);
      throw new ConfigError(at, "is not supported");
  }
  o.done();
  return rule;
}

function parsePrincipal(raw: unknown, path: string, side: RbacSide): Rule {
  const o = new ObjReader(raw, path);
  const kinds = [
    "and_ids",
    "or_ids",
    "any",
    "authenticated",
    "source_ip",
    "direct_remote_ip",
    "remote_ip",
    "header",
    "url_path",
    "metadata",
    "filter_state",
    "not_id",
    "custom",
    "sourced_metadata",
  ] as const;
  const which = o.oneOf(kinds, { required: true })!;
  const at = o.at(which);
  let rule: Rule;
  switch (which) {
    case "and_ids":
    case "or_ids":
      rule = setRule(o, which, "ids", parsePrincipal, side, which === "and_ids");
      break;
    case "any":
    case "header":
    case "url_path":
    case "metadata":
      rule = sharedRule(o, which, at, side);
      break;
    case "authenticated": {
      const a = o.obj(which)!;
      const pm = a.value("principal_name");
      const m = pm === undefined || pm === null ? undefined : parseStringMatcher(pm, a.at("principal_name"));
      a.done();
      rule = (i, c) => {
        if (i.peerCertificates === undefined) return false;
        if (m === undefined) return true;
        const ids = peerIdentities(i, c);
        for (let k = 0; k < ids.length; k++) if (m.test(ids[k]!)) return true;
        return false;
      };
      break;
    }
    case "source_ip":
    case "direct_remote_ip":
      rule = cidrRule(parseCidr(o.value(which), at), (i) => i.directRemoteIp);
      break;
    case "remote_ip":
      rule = cidrRule(parseCidr(o.value(which), at), (i) => i.remoteIp);
      break;
    case "not_id":
      rule = negate(parsePrincipal(o.value(which), at, side));
      break;
    default:
      o.unsupported(which);
      throw new ConfigError(at, "is not supported");
  }
  o.done();
  return rule;
}

/**
 * The names an `authenticated.principal_name` matcher is tried against, in Envoy's order: the leaf certificate's
 * URI SANs, then its DNS SANs, then its subject (RFC 2253 form, e.g. `CN=client,O=Ferry,C=CN`). Works the same for
 * SM2 certificates from GM TLS (TLCP's sign certificate is first in the chain).
 */
export function certificateIdentities(der: Uint8Array): readonly string[] {
  const cert = parseCertificate(der);
  return [...cert.uris, ...cert.dnsNames, rfc2253(cert.subject)];
}

/** Our subject text is `C=CN, O=Ferry, CN=x` (DER order); RFC 2253 lists the RDNs last first, comma-separated. */
function rfc2253(subject: string): string {
  if (subject === "") return "";
  const parts = subject.split(/, (?=[A-Za-z0-9.]+=)/);
  return parts.reverse().join(",");
}

function peerIdentities(i: RbacInput, c: EvalContext): readonly string[] {
  if (c.identities !== undefined) return c.identities ?? [];
  const leaf = i.peerCertificates?.[0];
  try {
    c.identities = leaf === undefined ? null : certificateIdentities(leaf);
  } catch {
    c.identities = null; // an unparsable certificate names no one
  }
  return c.identities ?? [];
}

/** Adapts a parser of raw values to `ObjReader.objs`, which checks its reader's fields after the callback. */
function viaReader(
  parse: (raw: unknown, path: string, side: RbacSide) => Rule,
  side: RbacSide,
): (r: ObjReader) => Rule {
  return (r) => {
    const rule = parse(r.raw, r.path, side);
    r.skip(...r.keys());
    return rule;
  };
}

function all(rules: readonly Rule[]): Rule {
  return (i, c) => {
    for (let k = 0; k < rules.length; k++) if (!rules[k]!(i, c)) return false;
    return true;
  };
}

function some(rules: readonly Rule[]): Rule {
  return (i, c) => {
    for (let k = 0; k < rules.length; k++) if (rules[k]!(i, c)) return true;
    return false;
  };
}

/** Parses `envoy.config.rbac.v3.RBAC` (the `rules` / `shadow_rules` of both filters) into compiled rules. */
export function parseRbacRules(raw: unknown, path: string, side: RbacSide): RbacRules {
  const o = new ObjReader(raw, path);
  const action = o.enumOf("action", ["ALLOW", "DENY", "LOG"] as const) ?? "ALLOW";
  const policies: RbacPolicy[] = [];
  const p = o.obj("policies");
  if (p) {
    for (const name of p.keys()) {
      const po = new ObjReader(p.value(name), p.at(name));
      const permissions = po.objs("permissions", viaReader(parsePermission, side), { nonEmpty: true });
      const principals = po.objs("principals", viaReader(parsePrincipal, side), { nonEmpty: true });
      po.unsupported("condition", "(CEL) is not supported");
      po.unsupported("checked_condition", "(CEL) is not supported");
      po.unsupported("cel_config", "(CEL) is not supported");
      po.done();
      policies.push({ name, permission: some(permissions), principal: some(principals) });
    }
    p.done();
  }
  o.unsupported("audit_logging_options", "is not supported");
  o.done();
  return { action, policies };
}

/** Evaluates compiled rules against one request or connection. */
export function evaluateRbac(rules: RbacRules, input: RbacInput): RbacDecision {
  const ctx: EvalContext = { identities: undefined };
  let matched: string | undefined;
  const ps = rules.policies;
  for (let k = 0; k < ps.length && matched === undefined; k++) {
    const p = ps[k]!;
    if (p.permission(input, ctx) && p.principal(input, ctx)) matched = p.name;
  }
  const allowed = rules.action === "ALLOW"
    ? matched !== undefined
    : rules.action === "DENY"
    ? matched === undefined
    : true;
  return { allowed, matchedPolicy: matched };
}

/** Joins a stat prefix and a name as Envoy's `statPrefixJoin`: `a` + `.` + `b`, without doubling a trailing dot. */
export function statPrefixJoin(prefix: string, name: string): string {
  if (prefix === "") return name;
  return prefix.endsWith(".") ? prefix + name : `${prefix}.${name}`;
}
