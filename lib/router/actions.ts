/**
 * The route actions as pure functions over the request headers: which cluster, which path and host upstream,
 * where a redirect points, what a direct response says, and the timeouts. The router filter calls them after
 * {@link RouteTable.route}; none of them keeps state.
 *
 * @module
 */
import type { HeaderMap } from "../api/headers.ts";
import { isGrpcContentType } from "./matchers.ts";
import type { ClusterChoice, DirectResponseAction, RedirectAction, Route, RouteAction } from "./types.ts";

/** Index of the first `?` or `#` of a `:path`, or its length. */
export function pathEnd(path: string): number {
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 63 /* ? */ || c === 35 /* # */) return i;
  }
  return path.length;
}

/**
 * Picks the cluster for a route action: the `cluster`; for `weighted_clusters`, the entry where
 * `floor(random() * total_weight)` falls in the cumulative weights (Envoy's algorithm, with the random source
 * injectable for tests); for `cluster_header`, the header's value. Returns null when `cluster_header` names a
 * missing or empty header: the router then answers `action.clusterNotFoundStatus` (503 by default, flag `NC`).
 */
export function selectCluster(
  action: RouteAction,
  headers: HeaderMap,
  opts: { random?: () => number } = {},
): ClusterChoice | null {
  switch (action.clusterSpecifier) {
    case "cluster":
      return action.cluster!;
    case "weighted_clusters": {
      const list = action.weightedClusters;
      const r = Math.floor((opts.random ?? Math.random)() * action.totalWeight);
      let end = 0;
      for (let i = 0; i < list.length; i++) {
        end += list[i]!.weight;
        if (r < end) return list[i]!;
      }
      return list[list.length - 1]!; // only reachable if random() returned 1
    }
    case "cluster_header": {
      const name = headers.get(action.clusterHeader!);
      if (name === undefined || name === "") return null;
      return {
        name,
        weight: 0,
        requestHeaders: NONE,
        responseHeaders: NONE,
        hostRewriteLiteral: undefined,
        typedPerFilterConfig: NO_CONFIG,
      };
    }
  }
}

const NONE = Object.freeze({ add: [], remove: [], empty: true });
const NO_CONFIG = Object.freeze({});

function matchedLength(route: Route, end: number): number {
  // A regex matches the whole path, so a prefix_rewrite under a regex route replaces all of it (as in Envoy).
  return route.match.kind === "safe_regex" ? end : route.match.value.length;
}

/**
 * Rewrites `:path` for a `route` action with `prefix_rewrite` (replaces the matched prefix, or the whole matched
 * path for `path` and `safe_regex` routes) or `regex_rewrite` (every match in the path before `?`); the query
 * string is kept. A regex rewrite that yields an empty path is not applied (as in Envoy). With `originalPath`
 * (default true, as Envoy's router unless `suppress_envoy_headers`) the previous path is saved in
 * `x-envoy-original-path`. Returns true when the path was rewritten. Envoy rewrites after the header mutations
 * and the host rewrite: call {@link applyRequestMutations}, {@link rewriteHost}, then this.
 */
export function rewritePath(route: Route, headers: HeaderMap, opts: { originalPath?: boolean } = {}): boolean {
  const a = route.action;
  if (a.kind !== "route" || (a.prefixRewrite === undefined && a.regexRewrite === undefined)) return false;
  const path = headers.get(":path");
  if (path === undefined) return false;
  const end = pathEnd(path);
  let next: string;
  if (a.prefixRewrite !== undefined) {
    next = a.prefixRewrite + path.slice(matchedLength(route, end));
  } else {
    const rewritten = a.regexRewrite!.apply(path.slice(0, end));
    if (rewritten === "") return false; // Envoy leaves the path alone when the rewrite yields nothing
    next = rewritten + path.slice(end);
  }
  if (opts.originalPath ?? true) headers.set("x-envoy-original-path", path);
  headers.set(":path", next);
  return true;
}

/**
 * Rewrites `:authority` for a `route` action, in Envoy's order: the route's `host_rewrite_literal`,
 * `host_rewrite_header` (first value, when present and non-empty) or `host_rewrite_path_regex` (when the result is
 * non-empty); else the weighted cluster's `host_rewrite_literal` (Envoy applies it first, so a route-level rewrite
 * overrides it); `auto_host_rewrite` with `upstreamHost` (the router passes the host name of a DNS-resolved
 * upstream once one is picked; without it nothing changes). With `append_x_forwarded_host` the previous host is
 * appended to `x-forwarded-host`. Returns true when `:authority` was set.
 */
export function rewriteHost(
  action: RouteAction,
  headers: HeaderMap,
  opts: { upstreamHost?: string; cluster?: ClusterChoice | null } = {},
): boolean {
  let next: string | undefined;
  const hr = action.hostRewrite;
  if (hr !== undefined) {
    switch (hr.kind) {
      case "literal":
        next = hr.value;
        break;
      case "header":
        next = headers.get(hr.header) || undefined;
        break;
      case "auto":
        next = opts.upstreamHost || undefined;
        break;
      case "path_regex": {
        const path = headers.get(":path");
        if (path !== undefined) next = hr.rewrite.apply(path.slice(0, pathEnd(path))) || undefined;
        break;
      }
    }
  }
  next ??= opts.cluster?.hostRewriteLiteral;
  if (next === undefined) return false;
  const prev = headers.get(":authority");
  headers.set(":authority", next);
  if (action.appendXForwardedHost && prev !== undefined && prev !== "") {
    const xfh = headers.getJoined("x-forwarded-host");
    headers.set("x-forwarded-host", xfh === undefined ? prev : `${xfh},${prev}`);
  }
  return true;
}

/** A redirect response: status and `location`. */
export interface Redirect {
  /** The response status. */
  readonly status: number;
  /** The `location` header value. */
  readonly location: string;
}

/** The request host with its port removed when Envoy would (see {@link redirectLocation}). */
function redirectHost(host: string, newScheme: string, requestProto: string, newPort: boolean): string {
  if (host === "") return host;
  let end: number;
  if (host.charCodeAt(0) === 91 /* [ */) {
    end = host.lastIndexOf("]:");
    if (end >= 0) end += 1;
  } else {
    end = host.lastIndexOf(":");
  }
  if (end < 0) return host;
  const port = host.slice(end);
  let remove = newPort;
  if (newScheme !== requestProto) {
    remove ||= (requestProto === "https" && port === ":443") || (requestProto === "http" && port === ":80");
  }
  return remove ? host.slice(0, end) : host;
}

/**
 * The `location` of a `redirect` route, built as Envoy's `newUri`: scheme from `scheme_redirect` /
 * `https_redirect`, else the request's `x-forwarded-proto` (else `secure` → https/http); host from
 * `host_redirect`, else the request's `:authority` with its port dropped when `port_redirect` is set or the scheme
 * changes away from that port's default; path from `path_redirect` (its own query wins; otherwise the request's
 * query is kept unless `strip_query`), or the request path through `prefix_rewrite` / `regex_rewrite`, minus the
 * query when `strip_query`. The `require_tls` redirect is `https://` + `:authority` + `:path` unchanged.
 * Throws a TypeError when the route is not a redirect.
 */
export function redirectLocation(route: Route, headers: HeaderMap, opts: { secure?: boolean } = {}): Redirect {
  const r = route.action;
  if (r.kind !== "redirect") throw new TypeError(`route "${route.name}": not a redirect route`);
  const host = headers.get(":authority") ?? "";
  const path = headers.get(":path") ?? "/";
  if (r.tlsRedirect) return { status: r.responseCode, location: `https://${host}${path}` };
  const requestProto = headers.get("x-forwarded-proto") ?? (opts.secure ? "https" : "http");
  const scheme = r.scheme ?? requestProto;
  const port = r.port ? `:${r.port}` : "";
  const finalHost = r.host ?? redirectHost(host, scheme, requestProto, port !== "");
  return { status: r.responseCode, location: `${scheme}://${finalHost}${port}${redirectPath(route, r, path)}` };
}

function redirectPath(route: Route, r: RedirectAction, path: string): string {
  if (r.pathRedirect !== undefined) {
    if (r.stripQuery || r.pathRedirect.includes("?")) return r.pathRedirect;
    const q = path.indexOf("?");
    return q < 0 ? r.pathRedirect : r.pathRedirect + path.slice(q);
  }
  let p = path;
  if (r.prefixRewrite !== undefined || r.regexRewrite !== undefined) {
    const end = pathEnd(path);
    p = r.prefixRewrite !== undefined
      ? r.prefixRewrite + path.slice(matchedLength(route, end))
      : r.regexRewrite!.apply(path.slice(0, end)) + path.slice(end);
  }
  if (r.stripQuery) {
    const q = p.indexOf("?");
    if (q >= 0) p = p.slice(0, q);
  }
  return p;
}

/** A fixed local reply. */
export interface DirectResponse {
  /** The response status. */
  readonly status: number;
  /** The configured body (shared; do not modify). */
  readonly body: Uint8Array;
  /** `text/plain` when there is a body. */
  readonly contentType: string | undefined;
}

/**
 * The reply of a `direct_response` route. It is fixed at parse time and never echoes anything from the request.
 * (Envoy also adds a `location` of the request URL for 201/3xx direct responses; Ferry does not.)
 */
export function directResponse(action: DirectResponseAction): DirectResponse {
  return action;
}

/** Options of {@link finalTimeouts}. */
export interface TimeoutOptions {
  /**
   * Honour `x-envoy-upstream-rq-timeout-ms` and `x-envoy-upstream-rq-per-try-timeout-ms` from the request (only for
   * trusted, internal callers). Default false. The headers are removed either way.
   */
  readonly trusted?: boolean;
}

/** The timeouts of one request in ms; 0 = none. */
export interface Timeouts {
  /** The global (route) timeout. */
  readonly globalMs: number;
  /** The per-try timeout. */
  readonly perTryMs: number;
  /** The per-try idle timeout (`retry_policy.per_try_idle_timeout`). */
  readonly perTryIdleMs: number;
}

function parseMs(v: string | undefined): number | undefined {
  return v !== undefined && /^\d{1,15}$/.test(v) ? Number(v) : undefined;
}

const GRPC_UNITS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };

/** Parses a `grpc-timeout` header (`100m`, `5S`, ...) into ms, or undefined if malformed. */
export function parseGrpcTimeout(v: string | undefined): number | undefined {
  if (v === undefined || !/^\d{1,8}[HMSmun]$/.test(v)) return undefined;
  return Math.ceil(Number(v.slice(0, -1)) * GRPC_UNITS[v[v.length - 1]!]!);
}

const GRPC_TIMEOUT_MAX = 99_999_999;

/**
 * Formats ms as a `grpc-timeout` value, as Envoy's `Grpc::Common::toGrpcTimeout`: milliseconds while they fit in 8
 * digits, else the largest of seconds, minutes or hours that does (clipped at 99999999H).
 */
export function formatGrpcTimeout(ms: number): string {
  let t = Math.max(0, Math.floor(ms));
  const units = "mSMH";
  let u = 0;
  if (t > GRPC_TIMEOUT_MAX) {
    t = Math.floor(t / 1000);
    u = 1;
  }
  while (t > GRPC_TIMEOUT_MAX) {
    if (u === 3) t = GRPC_TIMEOUT_MAX;
    else {
      t = Math.floor(t / 60);
      u++;
    }
  }
  return `${t}${units[u]}`;
}

/**
 * The global, per-try and per-try idle timeouts of a request, as Envoy's `FilterUtility::finalTimeout`: the route's
 * `timeout` — unless the route has `max_stream_duration`, which replaces it (Envoy's "new timeouts": the global
 * timeout is then 0 and {@link streamDurationMs} bounds the stream) — then the trusted override headers; a per-try
 * timeout not shorter than a finite global timeout is dropped.
 */
export function finalTimeouts(action: RouteAction, headers: HeaderMap, opts: TimeoutOptions = {}): Timeouts {
  let globalMs = action.streamDurationConfigured ? 0 : action.timeoutMs;
  let perTryMs = action.retryPolicy?.perTryTimeoutMs ?? 0;
  const t = headers.get("x-envoy-upstream-rq-timeout-ms");
  const pt = headers.get("x-envoy-upstream-rq-per-try-timeout-ms");
  if (t !== undefined) {
    headers.remove("x-envoy-upstream-rq-timeout-ms");
    if (opts.trusted) globalMs = parseMs(t) ?? globalMs;
  }
  if (pt !== undefined) {
    headers.remove("x-envoy-upstream-rq-per-try-timeout-ms");
    if (opts.trusted) perTryMs = parseMs(pt) ?? perTryMs;
  }
  if (globalMs !== 0 && perTryMs >= globalMs) perTryMs = 0;
  return { globalMs, perTryMs, perTryIdleMs: action.retryPolicy?.perTryIdleTimeoutMs ?? 0 };
}

/**
 * The lifetime cap of a stream in ms, counted from the stream's start, or undefined for none — Envoy's
 * `ActiveStream::refreshDurationTimeout` for a route with `max_stream_duration`: with `grpc_timeout_header_max` set
 * and a valid `grpc-timeout` header, the header's value capped by the max (0 = no cap), less
 * `grpc_timeout_header_offset` (down to 0, which expires at once); otherwise `max_stream_duration` (0 or absent =
 * none). For gRPC requests the `grpc-timeout` header sent upstream is rewritten to that value. When the cap expires,
 * the router answers `408` (request not fully received) or `504`, or resets a stream whose response has started.
 */
export function streamDurationMs(action: RouteAction, headers: HeaderMap): number | undefined {
  // Without max_stream_duration on the route Envoy falls back to the connection manager's own, which Ferry rejects.
  if (!action.streamDurationConfigured) return undefined;
  const max = action.grpcTimeoutHeaderMaxMs;
  const grpc = max === undefined ? undefined : parseGrpcTimeout(headers.get("grpc-timeout"));
  let ms: number;
  if (grpc === undefined) {
    const d = action.maxStreamDurationMs;
    if (d === undefined || d === 0) return undefined;
    ms = d;
  } else {
    ms = max !== 0 && grpc > max! ? max! : grpc;
    const off = action.grpcTimeoutHeaderOffsetMs;
    if (ms !== 0 && off > 0) ms = off < ms ? ms - off : 0;
  }
  if (isGrpcContentType(headers.get("content-type"))) headers.set("grpc-timeout", formatGrpcTimeout(ms));
  return ms;
}

/**
 * The route's `upgrade_configs` verdict for an upgrade type (`websocket`): true/false when the route names it,
 * undefined to defer to the connection manager's own `upgrade_configs` (Envoy's rule: the route overrides).
 */
export function upgradeAllowed(action: RouteAction, upgradeType: string): boolean | undefined {
  return action.upgrades.get(upgradeType.toLowerCase());
}
