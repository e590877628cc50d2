/**
 * Request → route: virtual host selection by `:authority`, then the first matching route of that host.
 *
 * Built once per route configuration and shared by all streams. A lookup allocates nothing in the common case
 * (exact or wildcard host, prefix/path routes, no query matchers): results are precomputed per route, domains are
 * lower-cased at build time, the path is compared in place up to its `?`/`#`, and the lower-cased path, the bare
 * path for regexes and the parsed query are computed lazily, at most once per lookup.
 *
 * @module
 */
import type { HeaderMap } from "../api/headers.ts";
import { isGrpcContentType, matchHeaders, matchQueryParameters, parseQuery } from "./matchers.ts";
import { EMPTY_MUTATION } from "./route_config.ts";
import type { RedirectAction, Route, RouteConfig, RouteResult, VirtualHost } from "./types.ts";

/** Per-request facts the route lookup needs beyond the headers. */
export interface RouteContext {
  /**
   * The request arrived over TLS. Used for `require_tls` only when the request has no `x-forwarded-proto` (the
   * connection manager normally sets it, and Envoy decides on it).
   */
  readonly secure?: boolean;
  /** The request is internal (`x-envoy-internal: true`); checked for `require_tls: EXTERNAL_ONLY` if absent. */
  readonly internal?: boolean;
}

const RESOLVED_MAX = 1024;

const KIND_PREFIX = 0;
const KIND_PATH = 1;
const KIND_REGEX = 2;
const KIND_SEPARATED = 3;
const KIND_CONNECT = 4;

interface Entry {
  readonly kind: number;
  /** Lower-cased when the route is case-insensitive. */
  readonly value: string;
  readonly ci: boolean;
  readonly regex: RegExp | undefined;
  /** The first four characters of a case-sensitive prefix/path packed into an int (-1 when shorter or folded). */
  readonly head: number;
  /** For regex routes: a literal every match starts with ("" if none), checked before running the regex. */
  readonly regexPrefix: string;
  readonly route: Route;
  readonly result: RouteResult;
}

interface HostEntry {
  readonly vhost: VirtualHost;
  readonly entries: readonly Entry[];
  /** The `require_tls` redirect, when the virtual host has one. */
  readonly tlsRedirect: RouteResult | undefined;
}

interface Wildcards {
  readonly len: number;
  readonly map: Map<string, HostEntry>;
}

const TLS_REDIRECT: RedirectAction = Object.freeze({
  kind: "redirect",
  scheme: "https",
  host: undefined,
  port: 0,
  pathRedirect: undefined,
  prefixRewrite: undefined,
  regexRewrite: undefined,
  responseCode: 301,
  stripQuery: false,
  tlsRedirect: true,
});

function kindOf(route: Route): number {
  switch (route.match.kind) {
    case "prefix":
      return KIND_PREFIX;
    case "path":
      return KIND_PATH;
    case "safe_regex":
      return KIND_REGEX;
    case "path_separated_prefix":
      return KIND_SEPARATED;
    case "connect":
      return KIND_CONNECT;
  }
}

/**
 * Strips a numeric `:port` from a lower-cased host (`[v6]:port` too); returns the input when there is none.
 */
export function stripHostPort(host: string): string {
  const colon = host.lastIndexOf(":");
  if (colon < 0 || colon === host.length - 1) return host;
  if (host.charCodeAt(0) === 91 /* [ */) {
    if (host.charCodeAt(colon - 1) !== 93 /* ] */) return host;
  } else if (host.indexOf(":") !== colon) {
    return host; // a bare IPv6 address has no port
  }
  for (let i = colon + 1; i < host.length; i++) {
    const c = host.charCodeAt(i);
    if (c < 48 || c > 57) return host;
  }
  return host.slice(0, colon);
}

function insertWildcard(list: Wildcards[], key: string, entry: HostEntry): void {
  let w = list.find((x) => x.len === key.length);
  if (!w) {
    w = { len: key.length, map: new Map() };
    list.push(w);
    list.sort((a, b) => b.len - a.len);
  }
  w.map.set(key, entry);
}

/**
 * A compiled route table. Virtual host selection follows Envoy: exact domain, then the longest suffix wildcard
 * (`*.example.com`, `*-api.example.com`), then the longest prefix wildcard (`api.*`), then `*`; a wildcard
 * matches at least one character. Host matching is case-insensitive. At each level the host is tried with its
 * port first, then without it, so `example.com` matches `example.com:8080` while `example.com:8080` matches only
 * that port (with `ignore_port_in_host_matching` the port is always stripped).
 *
 * @example
 * ```ts
 * const table = new RouteTable(parseRouteConfiguration(raw, "route_config"));
 * const hit = table.route(headers, { secure: false });
 * if (hit === null) return sendLocalReply(404, "", { details: "route_not_found", responseFlag: "NR" });
 * ```
 */
export class RouteTable {
  /** The configuration this table was built from. */
  readonly config: RouteConfig;
  readonly #exact = new Map<string, HostEntry>();
  readonly #suffixes: Wildcards[] = [];
  readonly #prefixes: Wildcards[] = [];
  readonly #default: HostEntry | undefined;
  readonly #onlyDefault: boolean;
  readonly #ignorePort: boolean;
  /**
   * Resolved authorities that needed the slow path (port, upper case, wildcard, default): a host:port lookup costs
   * ~300 ns through toLowerCase, slice and a fresh hash, ~30 ns from here. Bounded: cleared when full, so random
   * Host headers cannot grow it.
   */
  readonly #resolved = new Map<string, HostEntry | null>();

  /** Compiles the table; the config must come from {@link parseRouteConfiguration} (it is not re-validated). */
  constructor(config: RouteConfig) {
    this.config = config;
    this.#ignorePort = config.ignorePortInHostMatching;
    let def: HostEntry | undefined;
    for (const vhost of config.virtualHosts) {
      const entries: Entry[] = vhost.routes.map((route) => ({
        kind: kindOf(route),
        value: route.match.caseSensitive ? route.match.value : route.match.value.toLowerCase(),
        ci: !route.match.caseSensitive && route.match.kind !== "safe_regex",
        regex: route.match.regex,
        head: route.match.caseSensitive && route.match.kind !== "safe_regex" && route.match.kind !== "connect"
          ? head4(route.match.value, 4)
          : -1,
        regexPrefix: route.match.regex === undefined ? "" : literalPrefix(route.match.regex),
        route,
        result: { config, vhost, route },
      }));
      const tlsRedirect = vhost.requireTls === "NONE" ? undefined : {
        config,
        vhost,
        route: {
          name: "",
          match: vhost.routes[0]?.match ?? {
            kind: "prefix",
            value: "",
            regex: undefined,
            caseSensitive: true,
            headers: [],
            queryParameters: [],
            grpc: false,
          },
          action: TLS_REDIRECT,
          requestHeaders: EMPTY_MUTATION,
          responseHeaders: EMPTY_MUTATION,
          typedPerFilterConfig: {},
          decoratorOperation: undefined,
          perRequestBufferLimitBytes: undefined,
        },
      } satisfies RouteResult;
      const entry: HostEntry = { vhost, entries, tlsRedirect };
      for (const d of vhost.domains) {
        if (d === "*") def = entry;
        else if (d.startsWith("*")) insertWildcard(this.#suffixes, d.slice(1), entry);
        else if (d.endsWith("*")) insertWildcard(this.#prefixes, d.slice(0, -1), entry);
        else this.#exact.set(d, entry);
      }
    }
    this.#default = def;
    this.#onlyDefault = this.#exact.size === 0 && this.#suffixes.length === 0 && this.#prefixes.length === 0;
  }

  /** The virtual host for a request, or undefined (Envoy: no virtual host → 404 `route_not_found`). */
  virtualHost(headers: HeaderMap): VirtualHost | undefined {
    return this.#findHost(headers)?.vhost;
  }

  #findHost(headers: HeaderMap): HostEntry | undefined {
    if (this.#onlyDefault) return this.#default;
    const authority = headers.get(":authority");
    if (authority === undefined) return undefined;
    // Most hosts arrive lower-case: try them as they are before paying for toLowerCase (~40 ns). A hit is exact,
    // since every key is lower-case.
    if (!this.#ignorePort) {
      const e = this.#exact.get(authority);
      if (e !== undefined) return e;
    }
    const cached = this.#resolved.get(authority);
    if (cached !== undefined) return cached ?? undefined;
    const e = this.#resolve(authority);
    if (this.#resolved.size >= RESOLVED_MAX) this.#resolved.clear();
    this.#resolved.set(authority, e ?? null);
    return e;
  }

  #resolve(authority: string): HostEntry | undefined {
    let e: HostEntry | undefined;
    let host = authority.toLowerCase();
    if (this.#ignorePort) host = stripHostPort(host);
    if (host !== authority || this.#ignorePort) {
      e = this.#exact.get(host);
      if (e !== undefined) return e;
    }
    const bare = stripHostPort(host);
    const hasPort = bare !== host;
    if (hasPort) {
      e = this.#exact.get(bare);
      if (e !== undefined) return e;
    }
    if (this.#suffixes.length > 0) {
      e = findSuffix(this.#suffixes, host);
      if (e === undefined && hasPort) e = findSuffix(this.#suffixes, bare);
      if (e !== undefined) return e;
    }
    if (this.#prefixes.length > 0) {
      e = findPrefix(this.#prefixes, host);
      if (e === undefined && hasPort) e = findPrefix(this.#prefixes, bare);
      if (e !== undefined) return e;
    }
    return this.#default;
  }

  /**
   * The route for a request, or null when no virtual host or no route matches. For a virtual host with
   * `require_tls` and an insecure request, the result is that host's HTTPS redirect (a `redirect` action with
   * `tlsRedirect: true`).
   */
  route(headers: HeaderMap, ctx?: RouteContext): RouteResult | null {
    const host = this.#findHost(headers);
    if (host === undefined) return null;
    if (host.tlsRedirect !== undefined) {
      const proto = headers.get("x-forwarded-proto");
      const secure = proto !== undefined ? proto === "https" : ctx?.secure === true;
      if (!secure) {
        if (host.vhost.requireTls === "ALL") return host.tlsRedirect;
        const internal = ctx?.internal ?? headers.get("x-envoy-internal") === "true";
        if (!internal) return host.tlsRedirect;
      }
    }
    const path = headers.get(":path");
    if (path === undefined) return null;
    let end = path.length;
    for (let i = 0; i < path.length; i++) {
      const c = path.charCodeAt(i);
      if (c === 63 /* ? */ || c === 35 /* # */) {
        end = i;
        break;
      }
    }
    let lower: string | undefined;
    let bare: string | undefined;
    let query: Map<string, string> | undefined;
    // Rejecting on four packed characters first skips most non-matching routes for the cost of an int compare
    // (20 prefix routes, the catch-all last: 190 → 98 ns per lookup, best of 8 A/B rounds).
    const head = head4(path, end);
    const entries = host.entries;
    // CONNECT requests match only `connect_matcher` routes, and those match nothing else (Envoy).
    const connect = headers.get(":method") === "CONNECT";
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      if ((e.kind === KIND_CONNECT) !== connect) continue;
      if (e.head !== -1 && e.head !== head) continue;
      const v = e.value;
      let p = path;
      if (e.ci) p = lower ??= path.slice(0, end).toLowerCase();
      switch (e.kind) {
        case KIND_PREFIX:
          if (v.length > end || !p.startsWith(v)) continue;
          break;
        case KIND_PATH:
          if (v.length !== end || !p.startsWith(v)) continue;
          break;
        case KIND_SEPARATED:
          if (v.length > end || !p.startsWith(v)) continue;
          if (v.length < end && p.charCodeAt(v.length) !== 47 /* / */) continue;
          break;
        case KIND_CONNECT:
          break;
        default:
          if (e.regexPrefix !== "" && !path.startsWith(e.regexPrefix)) continue;
          bare ??= end === path.length ? path : path.slice(0, end);
          if (!e.regex!.test(bare)) continue;
      }
      const m = e.route.match;
      if (m.headers.length > 0 && !matchHeaders(m.headers, headers)) continue;
      if (m.queryParameters.length > 0) {
        query ??= parseQuery(path);
        if (!matchQueryParameters(m.queryParameters, query)) continue;
      }
      if (m.grpc && !isGrpcContentType(headers.get("content-type"))) continue;
      return e.result;
    }
    return null;
  }
}

/** The first four characters of `s` (within `end`) packed into an int, or -1 when there are fewer than four. */
function head4(s: string, end: number): number {
  if (end < 4 || s.length < 4) return -1;
  return ((s.charCodeAt(0) & 0xff) << 24 | (s.charCodeAt(1) & 0xff) << 16 | (s.charCodeAt(2) & 0xff) << 8 |
    (s.charCodeAt(3) & 0xff)) >>> 0;
}

/**
 * The literal text every match of an anchored regex starts with, for a cheap `startsWith` pre-check (a regex test
 * costs ~50 ns even when it fails at the first character). Conservative: "" for case-insensitive regexes or any
 * alternation; a literal followed by a quantifier is dropped.
 */
export function literalPrefix(re: RegExp): string {
  if (re.flags.includes("i")) return "";
  // The source is `^(?:<pattern>)$` as compiled by compileRe2.
  let src = re.source;
  if (src.startsWith("^(?:") && src.endsWith(")$")) src = src.slice(4, -2);
  if (src.includes("|")) return "";
  if (src.startsWith("^")) src = src.slice(1);
  let out = "";
  for (let i = 0; i < src.length; i++) {
    let c = src[i]!;
    if (c === "\\") {
      const n = src[i + 1];
      if (n === undefined || /[A-Za-z0-9]/.test(n)) break; // \d, \w, \b, ... are classes, not literals
      c = n;
      i++;
    } else if (/[.[\](){}*+?^$]/.test(c)) {
      break;
    }
    out += c;
    const next = src[i + 1];
    if (next === "*" || next === "?" || next === "{" || next === "+") {
      // "ab*" guarantees only "a"; "ab+" guarantees "ab".
      if (next !== "+") out = out.slice(0, -1);
      break;
    }
  }
  return out;
}

function findSuffix(list: readonly Wildcards[], host: string): HostEntry | undefined {
  for (let i = 0; i < list.length; i++) {
    const w = list[i]!;
    if (w.len >= host.length) continue;
    const e = w.map.get(host.slice(host.length - w.len));
    if (e !== undefined) return e;
  }
  return undefined;
}

function findPrefix(list: readonly Wildcards[], host: string): HostEntry | undefined {
  for (let i = 0; i < list.length; i++) {
    const w = list[i]!;
    if (w.len >= host.length) continue;
    const e = w.map.get(host.slice(0, w.len));
    if (e !== undefined) return e;
  }
  return undefined;
}
