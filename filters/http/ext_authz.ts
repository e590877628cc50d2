/**
 * `envoy.filters.http.ext_authz`: asks an external authorization service whether a request may proceed (Envoy's
 * `ExtAuthz`), over HTTP (`http_service`) or gRPC (`grpc_service`, `envoy.service.auth.v3.Authorization/Check`).
 *
 * HTTP service: the check request goes to `server_uri.cluster` through the cluster's pools, with the client's
 * method, `path_prefix` + the client's path, its `:authority`, and the headers Envoy always forwards
 * (`authorization`, plus `content-length` of what is sent) and those `allowed_headers` match (top level or
 * `authorization_request`), plus `authorization_request.headers_to_add`. A 200 allows: authorization response
 * headers matching `allowed_upstream_headers` replace those of the upstream request,
 * `allowed_upstream_headers_to_append` are appended, `allowed_client_headers_on_success` go to the client's
 * response. Any other status denies with that status, body and the `allowed_client_headers` (all when unset).
 *
 * gRPC service: a `CheckRequest` (source and destination addresses, method, path, host, scheme, protocol, the
 * headers — all, or those `allowed_headers` match — the body with `with_request_body`, and the route's
 * `context_extensions`) to `envoy_grpc.cluster_name` (a host of that cluster) or `google_grpc.target_uri`, using
 * Ferry's HTTP/2 codec (`lib/upstream/grpc_stream.ts`). `status: OK` allows with `ok_response` header changes; otherwise `denied_response` (default 403,
 * 401 for UNAUTHENTICATED) answers.
 *
 * Either way: a failure (timeout, connection failure, reset, a gRPC error) answers `status_on_error` (403) with
 * flag `UAEX`, unless `failure_mode_allow` (then `x-envoy-auth-failure-mode-allowed: true` is added when
 * `failure_mode_allow_header_add`). `with_request_body` buffers up to `max_request_bytes` (413 beyond unless
 * `allow_partial_message`; then `x-envoy-auth-partial-body` says so). `ExtAuthzPerRoute` disables the check or sets
 * `context_extensions` / body settings per route. Stats `ok`, `denied`, `error`, `failure_mode_allowed`, `disabled`
 * under `http.<stat_prefix>.ext_authz.[<filter stat_prefix>.]` and `cluster.<route cluster>.ext_authz.`, as Envoy.
 *
 * @module
 */
import { ConfigError } from "../../lib/api/errors.ts";
import { HeaderMap } from "../../lib/api/headers.ts";
import type {
  FilterFactoryContext,
  FilterStatus,
  HttpFilterFactory,
  StreamFilter,
  StreamFilterCallbacks,
} from "../../lib/api/stream_filter.ts";
import type { ClusterManager } from "../../lib/api/upstream.ts";
import { ObjReader, typedConfig } from "../../lib/config/reader.ts";
import { parseStringMatcher } from "../../lib/router/matchers.ts";
import type { ValueMatcher } from "../../lib/router/types.ts";
import { serverRuntime } from "../../lib/runtime/mod.ts";
import { AsyncHttpRequest, type AsyncHttpResponse } from "./_async_http.ts";
import { type FeatureFlag, flagEnabled, parseFeatureFlag } from "./_feature_flag.ts";
import { cachedPerRoute } from "./_per_route.ts";
import { authTypes, type CheckResponse, GrpcAuthClients, type HeaderValueOption } from "./_ext_authz_grpc.ts";
import { concatBytes } from "./_bytes.ts";
import { type Counters, counters } from "./_stats.ts";

/** The ext_authz filter's `@type`. */
export const EXT_AUTHZ_TYPE = "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz";
/** Its per-route `@type`. */
export const EXT_AUTHZ_PER_ROUTE_TYPE =
  "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute";
const NAME = "envoy.filters.http.ext_authz";

/** `with_request_body`. */
export interface BodySettings {
  /** `max_request_bytes`. */
  readonly maxBytes: number;
  /** `allow_partial_message`. */
  readonly allowPartial: boolean;
  /** `pack_as_bytes` (gRPC: the body goes in `raw_body`). */
  readonly packAsBytes: boolean;
}

/** The HTTP authorization service. */
export interface HttpAuthService {
  readonly kind: "http";
  /** `server_uri.cluster`. */
  readonly cluster: string;
  /** `server_uri.timeout` in ms. */
  readonly timeoutMs: number;
  /** `path_prefix`. */
  readonly pathPrefix: string;
  /** `authorization_request.headers_to_add`. */
  readonly headersToAdd: readonly (readonly [string, string])[];
  /** `authorization_response.allowed_upstream_headers`. */
  readonly allowedUpstream: readonly ValueMatcher[];
  /** `authorization_response.allowed_upstream_headers_to_append`. */
  readonly allowedUpstreamAppend: readonly ValueMatcher[];
  /** `authorization_response.allowed_client_headers`; undefined = all. */
  readonly allowedClient: readonly ValueMatcher[] | undefined;
  /** `authorization_response.allowed_client_headers_on_success`. */
  readonly allowedClientOnSuccess: readonly ValueMatcher[];
}

/** The gRPC authorization service. */
export interface GrpcAuthService {
  readonly kind: "grpc";
  /** `envoy_grpc.cluster_name`, or undefined with `google_grpc`. */
  readonly cluster: string | undefined;
  /** `google_grpc.target_uri`. */
  readonly target: string | undefined;
  /** `timeout` in ms (default 200, as Envoy's ext_authz). */
  readonly timeoutMs: number;
  /** `initial_metadata`. */
  readonly initialMetadata: readonly [string, string][];
}

/** Parsed ext_authz config. */
export interface ExtAuthzConfig {
  /** The authorization service. */
  readonly service: HttpAuthService | GrpcAuthService;
  /** `failure_mode_allow`. */
  readonly failureModeAllow: boolean;
  /** `failure_mode_allow_header_add`. */
  readonly failureModeAllowHeaderAdd: boolean;
  /** `with_request_body`, if set. */
  readonly withRequestBody: BodySettings | undefined;
  /** `clear_route_cache`. */
  readonly clearRouteCache: boolean;
  /** `status_on_error.code` (default 403). */
  readonly statusOnError: number;
  /** `stat_prefix`. */
  readonly statPrefix: string;
  /** `allowed_headers` (top level, or the HTTP service's `authorization_request.allowed_headers`). */
  readonly allowedHeaders: readonly ValueMatcher[] | undefined;
  /** `disallowed_headers`. */
  readonly disallowedHeaders: readonly ValueMatcher[];
  /** `filter_enabled.default_value` as a probability (1 when unset). */
  readonly enabledFraction: number;
  /** `filter_enabled.runtime_key`. */
  readonly enabledKey: string | undefined;
  /** The denominator of `filter_enabled.default_value` (a runtime number is a numerator over it). */
  readonly enabledDenominator: number;
  /** `deny_at_disable`. */
  readonly denyAtDisable: FeatureFlag;
}

/** Parsed `ExtAuthzPerRoute`. */
export interface ExtAuthzPerRoute {
  /** `disabled: true`. */
  readonly disabled: boolean;
  /** `check_settings.context_extensions`. */
  readonly contextExtensions: Readonly<Record<string, string>>;
  /** `check_settings.disable_request_body_buffering`. */
  readonly disableBody: boolean;
  /** `check_settings.with_request_body`. */
  readonly withRequestBody: BodySettings | undefined;
}

const DENOMS: Record<string, number> = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 };

function listMatcher(o: ObjReader, key: string): ValueMatcher[] | undefined {
  const l = o.obj(key);
  if (!l) return undefined;
  const pats = l.arr("patterns", (raw, p) => parseStringMatcher(raw, p));
  l.done();
  return pats;
}

function parseBody(o: ObjReader | undefined): BodySettings | undefined {
  if (!o) return undefined;
  const maxBytes = o.int("max_request_bytes", { min: 1, required: true })!;
  const allowPartial = o.bool("allow_partial_message") ?? false;
  const packAsBytes = o.bool("pack_as_bytes") ?? false;
  o.done();
  return { maxBytes, allowPartial, packAsBytes };
}

function headerValues(o: ObjReader, key: string): [string, string][] {
  return o.objs(key, (h) => {
    const k = h.str("key", { required: true }).toLowerCase();
    const v = h.str("value") ?? "";
    h.skip("raw_value");
    h.done();
    return [k, v] as [string, string];
  });
}

function parseHttpService(o: ObjReader): { svc: HttpAuthService; allowed: ValueMatcher[] | undefined } {
  const su = o.obj("server_uri", { required: true })!;
  const uri = su.str("uri", { required: true });
  // Only informative, as in Envoy (the sandbox examples use a bare name): the cluster decides where the check goes.
  if (uri === "") throw new ConfigError(su.at("uri"), "must not be empty");
  const cluster = su.str("cluster", { required: true });
  const timeoutMs = su.durationMs("timeout", { required: true })!;
  su.done();
  const pathPrefix = o.str("path_prefix") ?? "";
  if (pathPrefix !== "" && !pathPrefix.startsWith("/")) {
    throw new ConfigError(o.at("path_prefix"), "must start with /");
  }
  let allowed: ValueMatcher[] | undefined;
  let headersToAdd: [string, string][] = [];
  const rq = o.obj("authorization_request");
  if (rq) {
    allowed = listMatcher(rq, "allowed_headers");
    headersToAdd = headerValues(rq, "headers_to_add");
    rq.done();
  }
  let allowedUpstream: ValueMatcher[] = [];
  let allowedUpstreamAppend: ValueMatcher[] = [];
  let allowedClient: ValueMatcher[] | undefined;
  let allowedClientOnSuccess: ValueMatcher[] = [];
  const rs = o.obj("authorization_response");
  if (rs) {
    allowedUpstream = listMatcher(rs, "allowed_upstream_headers") ?? [];
    allowedUpstreamAppend = listMatcher(rs, "allowed_upstream_headers_to_append") ?? [];
    allowedClient = listMatcher(rs, "allowed_client_headers");
    allowedClientOnSuccess = listMatcher(rs, "allowed_client_headers_on_success") ?? [];
    rs.unsupported("dynamic_metadata_from_headers", "is not supported (Ferry has no dynamic metadata)");
    rs.done();
  }
  o.done();
  return {
    svc: {
      kind: "http",
      cluster,
      timeoutMs,
      pathPrefix,
      headersToAdd,
      allowedUpstream,
      allowedUpstreamAppend,
      allowedClient,
      allowedClientOnSuccess,
    },
    allowed,
  };
}

function parseGrpcService(o: ObjReader): GrpcAuthService {
  const which = o.oneOf(["envoy_grpc", "google_grpc"] as const, { required: true });
  let cluster: string | undefined;
  let target: string | undefined;
  if (which === "envoy_grpc") {
    const e = o.obj("envoy_grpc")!;
    cluster = e.str("cluster_name", { required: true });
    e.str("authority");
    e.unsupported("retry_policy", "is not supported");
    e.skip("max_receive_message_length", "skip_envoy_headers");
    e.done();
  } else {
    const g = o.obj("google_grpc")!;
    target = g.str("target_uri", { required: true });
    g.str("stat_prefix");
    const creds = g.obj("channel_credentials");
    if (creds) {
      if (!creds.has("insecure") && !creds.has("local_credentials")) {
        creds.unsupported("ssl_credentials", "only insecure channel credentials are supported");
        creds.unsupported("google_default", "only insecure channel credentials are supported");
      }
      creds.skip("insecure", "local_credentials");
      creds.done();
    }
    g.done();
  }
  const timeoutMs = o.durationMs("timeout") ?? 200;
  const initialMetadata = headerValues(o, "initial_metadata");
  o.unsupported("retry_policy", "is not supported");
  o.done();
  return { kind: "grpc", cluster, target, timeoutMs, initialMetadata };
}

function parseExtAuthzConfig(raw: Record<string, unknown>, path: string): ExtAuthzConfig {
  const o = new ObjReader(raw, path);
  o.skip("@type");
  const which = o.oneOf(["http_service", "grpc_service"] as const, { required: true })!;
  let service: HttpAuthService | GrpcAuthService;
  let allowedHeaders = listMatcher(o, "allowed_headers");
  if (which === "http_service") {
    const r = parseHttpService(o.obj("http_service")!);
    service = r.svc;
    allowedHeaders ??= r.allowed;
  } else service = parseGrpcService(o.obj("grpc_service")!);
  o.enumOf("transport_api_version", ["V3"] as const, { known: ["AUTO", "V2"] });
  const failureModeAllow = o.bool("failure_mode_allow") ?? false;
  const failureModeAllowHeaderAdd = o.bool("failure_mode_allow_header_add") ?? false;
  const withRequestBody = parseBody(o.obj("with_request_body"));
  const clearRouteCache = o.bool("clear_route_cache") ?? false;
  let statusOnError = 403;
  const se = o.obj("status_on_error");
  if (se) {
    const c = se.value("code");
    // HttpStatus.code is an enum: accept the number or a few names.
    const names: Record<string, number> = {
      Forbidden: 403,
      Unauthorized: 401,
      ServiceUnavailable: 503,
      InternalServerError: 500,
      BadGateway: 502,
      GatewayTimeout: 504,
    };
    const n = typeof c === "number" ? c : typeof c === "string" ? (names[c] ?? Number(c)) : NaN;
    if (!Number.isInteger(n) || n < 200 || n > 599) throw new ConfigError(se.at("code"), "not an HTTP status");
    statusOnError = n;
    se.done();
  }
  const statPrefix = o.str("stat_prefix") ?? "";
  const disallowedHeaders = listMatcher(o, "disallowed_headers") ?? [];
  let enabledFraction = 1;
  let enabledKey: string | undefined;
  let enabledDenominator = 100;
  const fe = o.obj("filter_enabled");
  if (fe) {
    const dv = fe.obj("default_value");
    enabledFraction = 0;
    if (dv) {
      const n = dv.int("numerator", { min: 0 }) ?? 0;
      enabledDenominator = DENOMS[dv.enumOf("denominator", Object.keys(DENOMS)) ?? "HUNDRED"]!;
      enabledFraction = Math.min(1, n / enabledDenominator);
      dv.done();
    }
    enabledKey = fe.str("runtime_key") || undefined;
    fe.done();
  }
  const denyAtDisable = parseFeatureFlag(o.obj("deny_at_disable"), false);
  for (
    const k of [
      "metadata_context_namespaces",
      "typed_metadata_context_namespaces",
      "route_metadata_context_namespaces",
      "route_typed_metadata_context_namespaces",
    ]
  ) {
    if (o.strs(k).length > 0) throw new ConfigError(o.at(k), "is not supported (Ferry has no metadata)");
  }
  o.unsupported("filter_enabled_metadata", "is not supported (Ferry has no metadata)");
  o.unsupported("decoder_header_mutation_rules", "is not supported");
  if (o.bool("include_peer_certificate")) o.unsupported("include_peer_certificate", "is not supported yet");
  o.bool("include_tls_session");
  o.bool("charge_cluster_response_stats");
  o.bool("encode_raw_headers");
  o.bool("validate_mutations");
  o.bool("enable_dynamic_metadata_ingestion");
  o.str("bootstrap_metadata_labels_key");
  o.done();
  return {
    service,
    failureModeAllow,
    failureModeAllowHeaderAdd,
    withRequestBody,
    clearRouteCache,
    statusOnError,
    statPrefix,
    allowedHeaders,
    disallowedHeaders,
    enabledFraction,
    enabledKey,
    enabledDenominator,
    denyAtDisable,
  };
}

/** Parses an `ExtAuthzPerRoute` entry (with its `@type`). */
export function parseExtAuthzPerRoute(raw: unknown, path: string): ExtAuthzPerRoute {
  const o = typedConfig(raw, path, [EXT_AUTHZ_PER_ROUTE_TYPE]);
  const which = o.oneOf(["disabled", "check_settings"] as const, { required: true });
  let out: ExtAuthzPerRoute = {
    disabled: false,
    contextExtensions: {},
    disableBody: false,
    withRequestBody: undefined,
  };
  if (which === "disabled") out = { ...out, disabled: o.bool("disabled") ?? false };
  else {
    const cs = o.obj("check_settings")!;
    const ext: Record<string, string> = {};
    const ce = cs.obj("context_extensions");
    if (ce) {
      for (const k of ce.keys()) ext[k] = ce.str(k, { required: true });
      ce.done();
    }
    const disableBody = cs.bool("disable_request_body_buffering") ?? false;
    const withRequestBody = parseBody(cs.obj("with_request_body"));
    cs.done();
    out = { disabled: false, contextExtensions: ext, disableBody, withRequestBody };
  }
  o.done();
  return out;
}

const AUTHZ_STATS = ["ok", "denied", "error", "failure_mode_allowed", "disabled"] as const;
type AuthzStats = Counters<typeof AUTHZ_STATS[number]>;

/** What the config-time step shares with the streams. */
interface Shared {
  readonly cfg: ExtAuthzConfig;
  readonly stats: AuthzStats;
  readonly cm: ClusterManager;
  readonly grpc: GrpcAuthClients | undefined;
  perRoute(cb: StreamFilterCallbacks): ExtAuthzPerRoute | undefined;
}

/** A decision on the check. */
type Verdict =
  | {
    kind: "ok";
    set: [string, string][];
    append: [string, string][];
    remove: string[];
    client: [string, string][];
  }
  | { kind: "denied"; status: number; headers: [string, string][]; body: string }
  | { kind: "error"; why: string };

const ALWAYS_TO_AUTHZ = new Set(["authorization"]);
const DENY_DEFAULT_CLIENT = new Set([":status", "content-length", "www-authenticate", "location"]);
const NOT_TO_CLIENT = new Set([":status", "content-length", "host", ":authority", "transfer-encoding", "connection"]);

function matchesAny(ms: readonly ValueMatcher[], name: string): boolean {
  for (const m of ms) if (m.test(name)) return true;
  return false;
}

const dec = new TextDecoder();

/** The per-stream ext_authz filter. */
export class ExtAuthzFilter implements StreamFilter {
  readonly #s: Shared;
  readonly #cb: StreamFilterCallbacks;
  #headers: HeaderMap | undefined;
  #body: BodySettings | undefined;
  #chunks: Uint8Array[] = [];
  #bytes = 0;
  #checking = false;
  #done = false;
  #cancel: (() => void) | undefined;
  #context: Readonly<Record<string, string>> = {};
  #clientHeaders: [string, string][] | undefined;
  #destroyed = false;

  constructor(shared: Shared, cb: StreamFilterCallbacks) {
    this.#s = shared;
    this.#cb = cb;
  }

  decodeHeaders(headers: HeaderMap, endStream: boolean): FilterStatus {
    const s = this.#s;
    const cfg = s.cfg;
    const pr = s.perRoute(this.#cb);
    if (pr?.disabled) return "continue";
    const enabled = cfg.enabledKey === undefined
      ? cfg.enabledFraction
      : serverRuntime.fraction(cfg.enabledKey, cfg.enabledFraction * cfg.enabledDenominator, cfg.enabledDenominator);
    if (enabled < 1 && Math.random() >= enabled) {
      this.#count("disabled");
      if (flagEnabled(cfg.denyAtDisable)) {
        this.#cb.sendLocalReply(403, "", { responseFlag: "UAEX", details: "ext_authz_disabled" });
        return "stop";
      }
      return "continue";
    }
    this.#context = pr?.contextExtensions ?? {};
    this.#body = pr?.disableBody ? undefined : (pr?.withRequestBody ?? cfg.withRequestBody);
    this.#headers = headers;
    if (endStream || this.#body === undefined) this.#check();
    return "stop";
  }

  decodeData(data: Uint8Array, endStream: boolean): FilterStatus {
    if (this.#done || this.#checking || this.#body === undefined || this.#headers === undefined) return "continue";
    const max = this.#body.maxBytes;
    this.#chunks.push(data.slice());
    this.#bytes += data.length;
    if (!this.#body.allowPartial && this.#bytes > max) {
      // Envoy caps the stream's buffer at max_request_bytes, so the connection manager answers 413.
      this.#done = true;
      this.#cb.sendLocalReply(413, "Payload Too Large", { details: "request_payload_too_large" });
      return "stop";
    }
    if (endStream || this.#bytes >= max) this.#check();
    return "continue";
  }

  decodeTrailers(_trailers: HeaderMap): FilterStatus {
    if (!this.#done && !this.#checking && this.#headers !== undefined) this.#check();
    return "continue";
  }

  encodeHeaders(headers: HeaderMap, _endStream: boolean): FilterStatus {
    if (this.#clientHeaders) { for (const [k, v] of this.#clientHeaders) headers.add(k, v); }
    return "continue";
  }

  onDestroy(): void {
    this.#destroyed = true;
    this.#cancel?.();
    this.#cancel = undefined;
  }

  #count(which: keyof AuthzStats): void {
    this.#s.stats[which].inc();
    const r = this.#cb.route;
    const a = r?.route.action;
    const name = a?.kind === "route" ? (a.cluster?.name ?? a.weightedClusters[0]?.name) : undefined;
    if (name === undefined) return;
    this.#s.cm.get(name)?.info.scope.scope("ext_authz").counter(which).inc();
  }

  /** The body collected for the check, and whether it was cut at `max_request_bytes`. */
  #collected(): { body: Uint8Array | undefined; partial: boolean } {
    if (this.#body === undefined) return { body: undefined, partial: false };
    const all = this.#chunks.length === 1 ? this.#chunks[0]! : concatBytes(this.#chunks, this.#bytes);
    const max = this.#body.maxBytes;
    return all.length > max ? { body: all.subarray(0, max), partial: true } : { body: all, partial: false };
  }

  #check(): void {
    this.#checking = true;
    const svc = this.#s.cfg.service;
    let sync = true;
    const finish = (v: Verdict) => {
      this.#cancel = undefined;
      if (this.#destroyed) return;
      // A verdict reached within the hook (no cluster, no host) waits until the hook has returned "stop", so that
      // continueDecoding finds the held headers.
      if (sync) queueMicrotask(() => !this.#destroyed && this.#onVerdict(v));
      else this.#onVerdict(v);
    };
    if (svc.kind === "http") this.#checkHttp(svc, finish);
    else this.#checkGrpc(svc, finish);
    sync = false;
  }

  #forwarded(name: string): boolean {
    const cfg = this.#s.cfg;
    if (matchesAny(cfg.disallowedHeaders, name)) return false;
    return ALWAYS_TO_AUTHZ.has(name) || (cfg.allowedHeaders !== undefined && matchesAny(cfg.allowedHeaders, name));
  }

  #checkHttp(svc: HttpAuthService, finish: (v: Verdict) => void): void {
    const cluster = this.#s.cm.get(svc.cluster);
    if (!cluster) {
      finish({ kind: "error", why: `cluster "${svc.cluster}" not found` });
      return;
    }
    const h = this.#headers!;
    const { body, partial } = this.#collected();
    const req = new HeaderMap([
      ":method",
      h.get(":method") ?? "GET",
      ":path",
      svc.pathPrefix + (h.get(":path") ?? "/"),
      ":authority",
      h.get(":authority") ?? "",
      ":scheme",
      "http",
    ]);
    for (const [k, v] of h) {
      if (k.charCodeAt(0) === 58 /* : */ || k === "content-length" || k === "host") continue;
      if (this.#forwarded(k)) req.add(k, v);
    }
    for (const [k, v] of svc.headersToAdd) req.set(k, v);
    req.set("content-length", String(body?.length ?? 0));
    if (body !== undefined && partial) req.set("x-envoy-auth-partial-body", "true");
    const r = new AsyncHttpRequest(
      cluster,
      {
        headers: req,
        ...(body !== undefined ? { body } : {}),
        timeoutMs: svc.timeoutMs,
        ioEngine: this.#cb.connection.ioEngine,
      },
      (res) => finish(typeof res === "string" ? { kind: "error", why: res } : this.#httpVerdict(svc, res)),
    );
    const cancel = () => r.cancel();
    this.#cancel = cancel;
  }

  #httpVerdict(svc: HttpAuthService, res: AsyncHttpResponse): Verdict {
    if (res.status === 200) {
      const set: [string, string][] = [];
      const append: [string, string][] = [];
      const client: [string, string][] = [];
      for (const [k, v] of res.headers) {
        if (k.charCodeAt(0) === 58 || k === "content-length") continue;
        if (matchesAny(svc.allowedUpstream, k)) set.push([k, v]);
        if (matchesAny(svc.allowedUpstreamAppend, k)) append.push([k, v]);
        if (matchesAny(svc.allowedClientOnSuccess, k)) client.push([k, v]);
      }
      return { kind: "ok", set, append, remove: [], client };
    }
    const headers: [string, string][] = [];
    for (const [k, v] of res.headers) {
      if (NOT_TO_CLIENT.has(k)) continue;
      if (svc.allowedClient === undefined || DENY_DEFAULT_CLIENT.has(k) || matchesAny(svc.allowedClient, k)) {
        headers.push([k, v]);
      }
    }
    return { kind: "denied", status: res.status, headers, body: dec.decode(res.body) };
  }

  #checkGrpc(svc: GrpcAuthService, finish: (v: Verdict) => void): void {
    let target = svc.target;
    if (svc.cluster !== undefined) {
      const cluster = this.#s.cm.get(svc.cluster);
      const host = cluster?.chooseHost();
      if (!host) {
        finish({ kind: "error", why: `cluster "${svc.cluster}": no host` });
        return;
      }
      target = host.key;
    }
    const h = this.#headers!;
    const info = this.#cb.streamInfo;
    const conn = this.#cb.connection;
    const headers: Record<string, string> = {};
    const cfg = this.#s.cfg;
    for (const [k] of h) {
      if (headers[k] !== undefined) continue;
      if (matchesAny(cfg.disallowedHeaders, k)) continue;
      if (cfg.allowedHeaders !== undefined && k.charCodeAt(0) !== 58 && !matchesAny(cfg.allowedHeaders, k)) continue;
      headers[k] = h.getJoined(k) ?? "";
    }
    const { body, partial } = this.#collected();
    if (body !== undefined) headers["x-envoy-auth-partial-body"] = partial ? "true" : "false";
    const path = h.get(":path") ?? "/";
    const q = path.indexOf("?");
    const now = Date.now();
    const http: Record<string, unknown> = {
      id: info.requestId ?? "",
      method: h.get(":method") ?? "",
      headers,
      path,
      host: h.get(":authority") ?? "",
      scheme: h.get(":scheme") ?? (conn.secure ? "https" : "http"),
      query: q < 0 ? "" : path.slice(q + 1),
      protocol: info.protocol ?? "",
      size: body?.length ?? Number(h.get("content-length") ?? -1),
    };
    if (body !== undefined) {
      if (this.#body?.packAsBytes) http["raw_body"] = body;
      else http["body"] = dec.decode(body);
    }
    const request = {
      attributes: {
        source: { address: { socket_address: { address: conn.remoteAddress, port_value: conn.remotePort } } },
        destination: { address: { socket_address: { address: conn.localAddress, port_value: conn.localPort } } },
        request: { time: { seconds: Math.floor(now / 1000), nanos: (now % 1000) * 1e6 }, http },
        context_extensions: { ...this.#context },
      },
    };
    const call = this.#s.grpc!.check(
      target!,
      request,
      { timeoutMs: svc.timeoutMs, initialMetadata: svc.initialMetadata },
      (res) => finish("error" in res ? { kind: "error", why: res.error } : grpcVerdict(res)),
    );
    const cancel = () => call.cancel();
    this.#cancel = cancel;
  }

  #onVerdict(v: Verdict): void {
    const cb = this.#cb;
    const cfg = this.#s.cfg;
    this.#done = true;
    if (v.kind === "ok") {
      this.#count("ok");
      const h = this.#headers!;
      for (const k of v.remove) h.remove(k);
      for (const [k, val] of v.set) h.set(k, val);
      for (const [k, val] of v.append) h.add(k, val);
      if (v.client.length > 0) this.#clientHeaders = v.client;
      if (cfg.clearRouteCache && (v.set.length > 0 || v.append.length > 0 || v.remove.length > 0)) {
        cb.clearRouteCache();
      }
      cb.continueDecoding();
      return;
    }
    if (v.kind === "denied") {
      this.#count("denied");
      const headers: Record<string, string> = {};
      let contentType: string | undefined;
      for (const [k, val] of v.headers) {
        if (k === "content-type") contentType = val;
        else headers[k] = headers[k] === undefined ? val : `${headers[k]}, ${val}`;
      }
      cb.sendLocalReply(v.status, v.body, {
        headers,
        responseFlag: "UAEX",
        details: "ext_authz_denied",
        ...(contentType !== undefined ? { contentType } : {}),
      });
      return;
    }
    this.#count("error");
    if (cfg.failureModeAllow) {
      this.#count("failure_mode_allowed");
      if (cfg.failureModeAllowHeaderAdd) this.#headers!.set("x-envoy-auth-failure-mode-allowed", "true");
      cb.continueDecoding();
      return;
    }
    cb.sendLocalReply(cfg.statusOnError, "", { responseFlag: "UAEX", details: "ext_authz_error" });
  }
}

function hvo(list: HeaderValueOption[] | undefined): { set: [string, string][]; append: [string, string][] } {
  const set: [string, string][] = [];
  const append: [string, string][] = [];
  for (const o of list ?? []) {
    const k = o.header?.key?.toLowerCase();
    if (!k) continue;
    const v = o.header?.value ?? (o.header?.raw_value ? dec.decode(o.header.raw_value) : "");
    const ap = typeof o.append === "boolean" ? o.append : o.append?.value;
    // append_action: 0 APPEND_IF_EXISTS_OR_ADD, 1 ADD_IF_ABSENT, 2 OVERWRITE_IF_EXISTS_OR_ADD, 3 OVERWRITE_IF_EXISTS
    const appendIt = ap !== undefined ? ap : o.append_action === 0 && o.append_action !== undefined;
    (appendIt ? append : set).push([k, v]);
  }
  return { set, append };
}

function grpcVerdict(res: CheckResponse): Verdict {
  const code = res.status?.code ?? 0;
  if (code === 0) {
    const ok = res.ok_response;
    const h = hvo(ok?.headers);
    const c = hvo(ok?.response_headers_to_add);
    return {
      kind: "ok",
      set: h.set,
      append: h.append,
      remove: (ok?.headers_to_remove ?? []).map((k) => k.toLowerCase()),
      client: [...c.set, ...c.append],
    };
  }
  const d = res.denied_response;
  // Without a denied_response Envoy answers 403, or 401 for UNAUTHENTICATED (16).
  const status = d?.status?.code && d.status.code >= 200 ? d.status.code : code === 16 ? 401 : 403;
  const h = hvo(d?.headers);
  return { kind: "denied", status, headers: [...h.set, ...h.append], body: d?.body ?? "" };
}

/** The config-time step: stats, the per-route cache and (gRPC) the protos and clients, shared by the streams. */
export function createExtAuthzFactory(
  config: ExtAuthzConfig,
  context: FilterFactoryContext,
): (callbacks: StreamFilterCallbacks) => StreamFilter {
  const scope = context.scope.scope(config.statPrefix ? `ext_authz.${config.statPrefix}` : "ext_authz");
  let grpc: GrpcAuthClients | undefined;
  if (config.service.kind === "grpc") {
    authTypes(); // load the protos now, not on the first request
    grpc = new GrpcAuthClients();
  }
  const perRoute = cachedPerRoute(NAME, parseExtAuthzPerRoute);
  const shared: Shared = {
    cfg: config,
    stats: counters(scope, AUTHZ_STATS),
    cm: context.clusterManager,
    grpc,
    perRoute: (cb) => perRoute(cb.route),
  };
  return (callbacks) => new ExtAuthzFilter(shared, callbacks);
}

/** The ext_authz filter factory. */
export const extAuthzFilterFactory: HttpFilterFactory<ExtAuthzConfig> = {
  name: NAME,
  configTypes: [EXT_AUTHZ_TYPE],
  parseConfig: parseExtAuthzConfig,
  createFactory: createExtAuthzFactory,
  create(config, callbacks, context) {
    return createExtAuthzFactory(config, context)(callbacks);
  },
};
