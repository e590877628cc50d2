/**
 * Parses Envoy's v3 `RouteConfiguration` (the `route_config` of an HTTP connection manager, or an RDS resource)
 * into the typed model of `types.ts`, strictly: every object is read through an {@link ObjReader}, so unknown
 * fields are errors naming their path, and Envoy fields Ferry does not implement are rejected as unsupported.
 *
 * @module
 */
import { ConfigError } from "../api/errors.ts";
import { describe, joinPath, ObjReader } from "../config/reader.ts";
import { compileHeaderFormat, type FormatSide } from "./format.ts";
import { parseMirrorPolicies } from "./mirror.ts";
import {
  compileRe2,
  isHeaderName,
  parseHeaderMatcher,
  parseQueryParameterMatcher,
  parseRegexRewrite,
  readRegexMatcher,
} from "./matchers.ts";
import type {
  ClusterChoice,
  DirectResponseAction,
  HashPolicy,
  HeaderAddition,
  HeaderAppendAction,
  HeaderMutation,
  HostRewrite,
  MirrorPolicy,
  PathMatchKind,
  RedirectAction,
  RetryOn,
  RetryPolicy,
  Route,
  RouteAction,
  RouteConfig,
  RouteMatch,
  TlsRequirement,
  VirtualHost,
} from "./types.ts";

/** A mutation with nothing to do, shared by every level that configures none. */
export const EMPTY_MUTATION: HeaderMutation = Object.freeze({ add: [], remove: [], empty: true });
const EMPTY_RECORD: Readonly<Record<string, unknown>> = Object.freeze({});

const DEFAULT_TIMEOUT_MS = 15_000;
const DEFAULT_MAX_DIRECT_RESPONSE_BODY = 4096;

const APPEND_ACTIONS = [
  "APPEND_IF_EXISTS_OR_ADD",
  "ADD_IF_ABSENT",
  "OVERWRITE_IF_EXISTS_OR_ADD",
  "OVERWRITE_IF_EXISTS",
] as const;

/** Envoy refuses to add or remove pseudo-headers and `host` through header mutations. */
function checkMutableHeader(name: string, path: string, verb: "added" | "removed"): string {
  if (name === "" || !isHeaderName(name)) throw new ConfigError(path, `${describe(name)} is not a valid header name`);
  const lower = name.toLowerCase();
  if (lower.startsWith(":") || lower === "host") {
    throw new ConfigError(path, `${describe(name)}: pseudo-headers and host may not be ${verb}`);
  }
  return lower;
}

function parseHeaderValueOption(o: ObjReader, side: FormatSide): HeaderAddition {
  const h = o.obj("header", { required: true })!;
  const key = h.str("key", { required: true });
  h.unsupported("raw_value", "raw_value is not supported; use value");
  const value = h.str("value") ?? "";
  h.done();
  // A CR, LF or NUL in a configured value would split or corrupt the message on the wire (RFC 9110 §5.5).
  if (/[\r\n\0]/.test(value)) throw new ConfigError(h.at("value"), "must not contain CR, LF or NUL characters");
  const name = checkMutableHeader(key, h.at("key"), "added");
  let appendAction: HeaderAppendAction = "APPEND_IF_EXISTS_OR_ADD";
  const legacy = o.bool("append");
  const action = o.enumOf("append_action", APPEND_ACTIONS);
  if (legacy !== undefined && action !== undefined) {
    throw new ConfigError(o.path, "only one of append, append_action may be set");
  }
  if (action !== undefined) appendAction = action;
  else if (legacy === false) appendAction = "OVERWRITE_IF_EXISTS_OR_ADD";
  const keepEmptyValue = o.bool("keep_empty_value") ?? false;
  return { name, value: compileHeaderFormat(value, h.at("value"), side), appendAction, keepEmptyValue };
}

/** Reads `<prefix>headers_to_add` / `<prefix>headers_to_remove` of one level. */
function parseMutation(o: ObjReader, addKey: string, removeKey: string, side: FormatSide): HeaderMutation {
  const add = o.objs(addKey, (e) => parseHeaderValueOption(e, side));
  const remove = o.arr(removeKey, (item, path) => {
    if (typeof item !== "string") throw new ConfigError(path, `expected a string, got ${describe(item)}`);
    return checkMutableHeader(item, path, "removed");
  });
  if (add.length === 0 && remove.length === 0) return EMPTY_MUTATION;
  return { add, remove, empty: false };
}

function parseRequestMutation(o: ObjReader): HeaderMutation {
  return parseMutation(o, "request_headers_to_add", "request_headers_to_remove", "request");
}

function parseResponseMutation(o: ObjReader): HeaderMutation {
  return parseMutation(o, "response_headers_to_add", "response_headers_to_remove", "response");
}

function parseTypedPerFilterConfig(o: ObjReader): Readonly<Record<string, unknown>> {
  const m = o.obj("typed_per_filter_config");
  if (!m) return EMPTY_RECORD;
  const out: Record<string, unknown> = {};
  for (const k of m.keys()) {
    const v = m.value(k);
    if (v === null || typeof v !== "object" || Array.isArray(v)) {
      throw new ConfigError(m.at(k), `expected an object with @type, got ${describe(v)}`);
    }
    out[k] = v;
  }
  m.done();
  return Object.keys(out).length === 0 ? EMPTY_RECORD : out;
}

// ---- route match ----

function parseRouteMatch(o: ObjReader): RouteMatch {
  o.envoyMessage("envoy.config.route.v3.RouteMatch");
  o.unsupported("runtime_fraction", "runtime_fraction is not supported");
  o.unsupported("path_match_policy", "path_match_policy is not supported");
  o.unsupported("tls_context", "tls_context is not supported");
  o.unsupported("dynamic_metadata", "dynamic_metadata is not supported");
  o.unsupported("filter_state", "filter_state is not supported");
  const kinds = ["prefix", "path", "safe_regex", "path_separated_prefix", "connect_matcher"] as const;
  const present = kinds.filter((k) => o.has(k));
  if (present.length > 1) throw new ConfigError(o.path, `only one of ${present.join(", ")} may be set`);
  if (present.length === 0) throw new ConfigError(o.path, `one of ${kinds.join(", ")} is required`);
  const kind: PathMatchKind = present[0] === "connect_matcher" ? "connect" : present[0]!;
  const caseSensitive = o.bool("case_sensitive") ?? true;
  let value: string;
  let regex: RegExp | undefined;
  if (kind === "connect") {
    o.obj("connect_matcher")!.done();
    value = "";
  } else if (kind === "safe_regex") {
    value = readRegexMatcher(o.value("safe_regex"), o.at("safe_regex"));
    regex = compileRe2(value, joinPath(o.at("safe_regex"), "regex"), { anchored: true });
  } else {
    value = o.str(kind)!;
    if (kind === "path_separated_prefix" && !/^[^?#]+[^?#/]$/.test(value)) {
      throw new ConfigError(
        o.at(kind),
        `${describe(value)} must not be empty, contain ? or #, or end with /`,
      );
    }
  }
  const headers = o.arr("headers", parseHeaderMatcher);
  const queryParameters = o.arr("query_parameters", parseQueryParameterMatcher);
  let grpc = false;
  const g = o.obj("grpc");
  if (g) {
    g.done();
    grpc = true;
  }
  return { kind, value, regex, caseSensitive, headers, queryParameters, grpc };
}

// ---- retry policy ----

const RETRY_ON: readonly RetryOn[] = [
  "5xx",
  "gateway-error",
  "reset",
  "reset-before-request",
  "connect-failure",
  "retriable-4xx",
  "refused-stream",
  "retriable-status-codes",
  "retriable-headers",
  "envoy-ratelimited",
  "cancelled",
  "deadline-exceeded",
  "internal",
  "resource-exhausted",
  "unavailable",
];

/**
 * Parses a comma-separated `retry_on` / `x-envoy-retry-on` list. Unknown names are an error at `path` (Envoy
 * ignores them silently; a typo here would otherwise disable retries without a word).
 */
export function parseRetryOn(s: string, path: string): Set<RetryOn> {
  const out = new Set<RetryOn>();
  for (const raw of s.split(",")) {
    const t = raw.trim();
    if (t === "") continue;
    if (!(RETRY_ON as readonly string[]).includes(t)) {
      if (t === "http3-post-connect-failure") throw new ConfigError(path, `${describe(t)} is not supported`);
      throw new ConfigError(path, `${describe(t)} is not a retry condition (one of ${RETRY_ON.join(", ")})`);
    }
    out.add(t as RetryOn);
  }
  return out;
}

const PREVIOUS_HOSTS = "envoy.retry_host_predicates.previous_hosts";
const PREVIOUS_HOSTS_TYPE = "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate";

function parseRetryPolicy(o: ObjReader): RetryPolicy {
  o.envoyMessage("envoy.config.route.v3.RetryPolicy");
  o.unsupported("retry_priority", "retry_priority is not supported");
  o.unsupported("retry_options_predicates", "retry_options_predicates is not supported");
  o.unsupported("rate_limited_retry_back_off", "rate_limited_retry_back_off is not supported");
  const retryOn = parseRetryOn(o.str("retry_on") ?? "", o.at("retry_on"));
  const numRetries = o.int("num_retries", { min: 0 }) ?? 1;
  const perTryTimeoutMs = o.durationMs("per_try_timeout") ?? 0;
  const perTryIdleTimeoutMs = o.durationMs("per_try_idle_timeout") ?? 0;
  const retriableStatusCodes = o.arr("retriable_status_codes", (item, path) => {
    if (typeof item !== "number" || !Number.isInteger(item) || item < 100 || item > 599) {
      throw new ConfigError(path, `${describe(item)} is not an HTTP status code`);
    }
    return item;
  });
  const retriableHeaders = o.arr("retriable_headers", parseHeaderMatcher);
  const retriableRequestHeaders = o.arr("retriable_request_headers", parseHeaderMatcher);
  let backoffBaseMs = 25;
  let backoffMaxMs = 250;
  const b = o.obj("retry_back_off");
  if (b) {
    backoffBaseMs = Math.floor(b.durationMs("base_interval", { required: true })!);
    if (backoffBaseMs < 1) throw new ConfigError(b.at("base_interval"), "must be at least 1ms");
    const max = b.durationMs("max_interval");
    backoffMaxMs = max === undefined ? backoffBaseMs * 10 : Math.floor(max);
    if (backoffMaxMs < backoffBaseMs) {
      throw new ConfigError(b.at("max_interval"), "must be greater than or equal to base_interval");
    }
    b.done();
  }
  let previousHostsPredicate = false;
  o.objs("retry_host_predicate", (p) => {
    const name = p.str("name", { required: true });
    const tc = p.obj("typed_config");
    let type: string | undefined;
    if (tc) {
      type = tc.str("@type", { required: true });
      tc.done();
    }
    if (name !== PREVIOUS_HOSTS && type !== PREVIOUS_HOSTS_TYPE) {
      throw new ConfigError(p.at("name"), `${describe(name)} is not supported (only ${PREVIOUS_HOSTS})`);
    }
    if (type !== undefined && type !== PREVIOUS_HOSTS_TYPE) {
      throw new ConfigError(joinPath(p.at("typed_config"), "@type"), `${describe(type)} is not supported`);
    }
    previousHostsPredicate = true;
  });
  const hostSelectionRetryMaxAttempts = o.int("host_selection_retry_max_attempts", { min: 0 }) ?? 1;
  return {
    retryOn,
    numRetries,
    perTryTimeoutMs,
    perTryIdleTimeoutMs,
    retriableStatusCodes,
    retriableHeaders,
    retriableRequestHeaders,
    backoffBaseMs,
    backoffMaxMs,
    previousHostsPredicate,
    hostSelectionRetryMaxAttempts,
  };
}

// ---- route action ----

function parseHashPolicy(o: ObjReader): HashPolicy {
  o.envoyMessage("envoy.config.route.v3.RouteAction.HashPolicy");
  o.unsupported("filter_state", "filter_state hashing is not supported");
  const which = o.oneOf(["header", "cookie", "connection_properties", "query_parameter"] as const, {
    required: true,
  })!;
  const terminal = o.bool("terminal") ?? false;
  const r = o.obj(which)!;
  let p: HashPolicy;
  switch (which) {
    case "header": {
      const headerName = r.str("header_name", { required: true });
      if (!isHeaderName(headerName)) {
        throw new ConfigError(r.at("header_name"), `${describe(headerName)} is not a valid header name`);
      }
      const rr = r.value("regex_rewrite");
      p = {
        kind: "header",
        headerName: headerName.toLowerCase(),
        regexRewrite: rr === undefined ? undefined : parseRegexRewrite(rr, r.at("regex_rewrite")),
        terminal,
      };
      break;
    }
    case "cookie": {
      const name = r.str("name", { required: true });
      const ttlMs = r.durationMs("ttl");
      const path = r.str("path");
      const attributes = r.objs("attributes", (a) => ({
        name: a.str("name", { required: true }),
        value: a.str("value") ?? "",
      }));
      p = { kind: "cookie", name, ttlMs, path: path || undefined, attributes, terminal };
      break;
    }
    case "connection_properties":
      p = { kind: "connection_properties", sourceIp: r.bool("source_ip") ?? false, terminal };
      break;
    case "query_parameter":
      p = { kind: "query_parameter", name: r.str("name", { required: true }), terminal };
      break;
  }
  r.done();
  return p;
}

function plainCluster(name: string): ClusterChoice {
  return {
    name,
    weight: 0,
    requestHeaders: EMPTY_MUTATION,
    responseHeaders: EMPTY_MUTATION,
    hostRewriteLiteral: undefined,
    typedPerFilterConfig: EMPTY_RECORD,
  };
}

function parseWeightedClusters(o: ObjReader): { clusters: ClusterChoice[]; total: number } {
  o.envoyMessage("envoy.config.route.v3.WeightedCluster");
  o.unsupported("runtime_key_prefix", "runtime_key_prefix is not supported");
  o.unsupported("header_name", "header_name is not supported");
  o.unsupported("random_value_specifier", "random_value_specifier is not supported");
  const clusters = o.objs("clusters", (c) => {
    c.envoyMessage("envoy.config.route.v3.WeightedCluster.ClusterWeight");
    c.unsupported("cluster_header", "cluster_header in weighted clusters is not supported");
    c.unsupported("metadata_match", "metadata_match is not supported");
    const name = c.str("name", { required: true });
    const weight = c.int("weight", { min: 0, max: 0xffffffff }) ?? 0;
    const requestHeaders = parseRequestMutation(c);
    const responseHeaders = parseResponseMutation(c);
    const typedPerFilterConfig = parseTypedPerFilterConfig(c);
    const hostRewriteLiteral = c.str("host_rewrite_literal") || undefined;
    return { name, weight, requestHeaders, responseHeaders, hostRewriteLiteral, typedPerFilterConfig };
  }, { nonEmpty: true });
  const total = clusters.reduce((s, c) => s + c.weight, 0);
  if (total === 0) throw new ConfigError(o.at("clusters"), "the sum of the weights must be greater than 0");
  if (total > 0xffffffff) throw new ConfigError(o.at("clusters"), "the sum of the weights must fit in 32 bits");
  const declared = o.int("total_weight", { min: 1 });
  if (declared !== undefined && declared !== total) {
    throw new ConfigError(o.at("total_weight"), `${declared} does not equal the sum of the weights ${total}`);
  }
  return { clusters, total };
}

const CLUSTER_NOT_FOUND: Record<string, number> = {
  SERVICE_UNAVAILABLE: 503,
  NOT_FOUND: 404,
  INTERNAL_SERVER_ERROR: 500,
};

function parseRouteAction(o: ObjReader, vhostRetry: RetryPolicy | undefined): RouteAction {
  o.envoyMessage("envoy.config.route.v3.RouteAction");
  for (
    const k of [
      "cluster_specifier_plugin",
      "inline_cluster_specifier_plugin",
      "metadata_match",
      "rate_limits",
      "include_vh_rate_limits",
      "cors",
      "hedge_policy",
      "internal_redirect_policy",
      "retry_policy_typed_config",
      "early_data_policy",
      "path_rewrite_policy",
      "max_internal_redirects",
      "internal_redirect_action",
    ]
  ) o.unsupported(k, `${k} is not supported`);
  const spec = o.oneOf(["cluster", "weighted_clusters", "cluster_header"] as const, { required: true })!;
  let cluster: ClusterChoice | undefined;
  let weightedClusters: ClusterChoice[] = [];
  let totalWeight = 0;
  let clusterHeader: string | undefined;
  if (spec === "cluster") {
    cluster = plainCluster(o.str("cluster", { required: true }));
  } else if (spec === "weighted_clusters") {
    const w = o.obj("weighted_clusters")!;
    const r = parseWeightedClusters(w);
    w.done();
    weightedClusters = r.clusters;
    totalWeight = r.total;
  } else {
    const h = o.str("cluster_header", { required: true });
    if (!isHeaderName(h) || h.startsWith(":")) {
      throw new ConfigError(o.at("cluster_header"), `${describe(h)} is not a valid header name`);
    }
    clusterHeader = h.toLowerCase();
  }
  const cnf = o.enumOf("cluster_not_found_response_code", Object.keys(CLUSTER_NOT_FOUND));
  const prefixRewrite = o.str("prefix_rewrite") || undefined;
  const rr = o.value("regex_rewrite");
  const regexRewrite = rr === undefined ? undefined : parseRegexRewrite(rr, o.at("regex_rewrite"));
  if (prefixRewrite !== undefined && regexRewrite !== undefined) {
    throw new ConfigError(o.path, "only one of prefix_rewrite, regex_rewrite may be set");
  }
  const hostKind = o.oneOf(
    ["host_rewrite_literal", "auto_host_rewrite", "host_rewrite_header", "host_rewrite_path_regex"] as const,
  );
  let hostRewrite: HostRewrite | undefined;
  switch (hostKind) {
    case "host_rewrite_literal": {
      const v = o.str(hostKind)!;
      if (v) hostRewrite = { kind: "literal", value: v };
      break;
    }
    case "auto_host_rewrite":
      if (o.bool(hostKind)) hostRewrite = { kind: "auto" };
      break;
    case "host_rewrite_header": {
      const h = o.str(hostKind)!;
      if (h) {
        if (!isHeaderName(h)) throw new ConfigError(o.at(hostKind), `${describe(h)} is not a valid header name`);
        hostRewrite = { kind: "header", header: h.toLowerCase() };
      }
      break;
    }
    case "host_rewrite_path_regex":
      hostRewrite = { kind: "path_regex", rewrite: parseRegexRewrite(o.value(hostKind), o.at(hostKind)) };
      break;
  }
  const appendXForwardedHost = o.bool("append_x_forwarded_host") ?? false;
  const timeoutMs = o.durationMs("timeout") ?? DEFAULT_TIMEOUT_MS;
  const idleTimeoutMs = o.durationMs("idle_timeout");
  const rp = o.obj("retry_policy");
  let retryPolicy = vhostRetry;
  if (rp) {
    retryPolicy = parseRetryPolicy(rp);
    rp.done();
  }
  const hashPolicy = o.objs("hash_policy", parseHashPolicy);
  let maxStreamDurationMs: number | undefined;
  let grpcTimeoutHeaderMaxMs: number | undefined;
  let grpcTimeoutHeaderOffsetMs = 0;
  const msd = o.obj("max_stream_duration");
  if (msd) {
    maxStreamDurationMs = msd.durationMs("max_stream_duration");
    grpcTimeoutHeaderMaxMs = msd.durationMs("grpc_timeout_header_max");
    grpcTimeoutHeaderOffsetMs = msd.durationMs("grpc_timeout_header_offset") ?? 0;
    msd.done();
  }
  const upgrades = new Map<string, boolean>();
  o.objs("upgrade_configs", (u) => {
    u.envoyMessage("envoy.config.route.v3.RouteAction.UpgradeConfig");
    const t = u.str("upgrade_type", { required: true }).toLowerCase();
    if (t !== "websocket") throw new ConfigError(u.at("upgrade_type"), `${describe(t)} is not supported`);
    u.unsupported("connect_config", "connect_config is not supported");
    if (upgrades.has(t)) throw new ConfigError(u.at("upgrade_type"), `duplicate upgrade type ${describe(t)}`);
    upgrades.set(t, u.bool("enabled") ?? true);
  });
  o.enumOf("priority", ["DEFAULT"] as const, { known: ["HIGH"] });
  const mirrorPolicies = parseMirrorPolicies(o);
  return {
    kind: "route",
    ...(mirrorPolicies.length > 0 ? { mirrorPolicies } : {}),
    clusterSpecifier: spec,
    cluster,
    weightedClusters,
    totalWeight,
    clusterHeader,
    clusterNotFoundStatus: cnf === undefined ? 503 : CLUSTER_NOT_FOUND[cnf]!,
    prefixRewrite,
    regexRewrite,
    hostRewrite,
    appendXForwardedHost,
    timeoutMs,
    idleTimeoutMs,
    retryPolicy,
    hashPolicy,
    streamDurationConfigured: msd !== undefined,
    maxStreamDurationMs,
    grpcTimeoutHeaderMaxMs,
    grpcTimeoutHeaderOffsetMs,
    upgrades,
  };
}

const REDIRECT_CODES: Record<string, number> = {
  MOVED_PERMANENTLY: 301,
  FOUND: 302,
  SEE_OTHER: 303,
  TEMPORARY_REDIRECT: 307,
  PERMANENT_REDIRECT: 308,
};

function parseRedirectAction(o: ObjReader): RedirectAction {
  const schemeKind = o.oneOf(["https_redirect", "scheme_redirect"] as const);
  let scheme: string | undefined;
  if (schemeKind === "https_redirect") {
    if (o.bool("https_redirect")) scheme = "https";
  } else if (schemeKind === "scheme_redirect") {
    const s = o.str("scheme_redirect")!.toLowerCase();
    if (s && !/^[a-z][a-z0-9+.-]*$/.test(s)) {
      throw new ConfigError(o.at("scheme_redirect"), `${describe(s)} is not a URI scheme`);
    }
    scheme = s || undefined;
  }
  const host = o.str("host_redirect") || undefined;
  const port = o.int("port_redirect", { min: 0, max: 65535 }) ?? 0;
  const pathKind = o.oneOf(["path_redirect", "prefix_rewrite", "regex_rewrite"] as const);
  let pathRedirect: string | undefined;
  let prefixRewrite: string | undefined;
  let regexRewrite;
  if (pathKind === "path_redirect") pathRedirect = o.str(pathKind) || undefined;
  else if (pathKind === "prefix_rewrite") prefixRewrite = o.str(pathKind) || undefined;
  else if (pathKind === "regex_rewrite") regexRewrite = parseRegexRewrite(o.value(pathKind), o.at(pathKind));
  const rc = o.enumOf("response_code", Object.keys(REDIRECT_CODES));
  const stripQuery = o.bool("strip_query") ?? false;
  return {
    kind: "redirect",
    scheme,
    host,
    port,
    pathRedirect,
    prefixRewrite,
    regexRewrite,
    responseCode: rc === undefined ? 301 : REDIRECT_CODES[rc]!,
    stripQuery,
    tlsRedirect: false,
  };
}

function base64Bytes(s: string, path: string): Uint8Array {
  try {
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  } catch {
    throw new ConfigError(path, "is not valid base64");
  }
}

/**
 * Reads a `DataSource` (`inline_string`, `inline_bytes` base64, `filename` read now, `environment_variable`).
 */
export function readDataSource(raw: unknown, path: string): Uint8Array {
  const o = new ObjReader(raw, path);
  o.unsupported("watched_directory", "watched_directory is not supported");
  const which = o.oneOf(["inline_string", "inline_bytes", "filename", "environment_variable"] as const, {
    required: true,
  })!;
  let out: Uint8Array;
  const v = o.str(which)!;
  switch (which) {
    case "inline_string":
      out = new TextEncoder().encode(v);
      break;
    case "inline_bytes":
      out = base64Bytes(v, o.at(which));
      break;
    case "filename":
      try {
        out = Deno.readFileSync(v);
      } catch (e) {
        throw new ConfigError(o.at(which), `cannot read ${describe(v)}: ${e instanceof Error ? e.message : e}`);
      }
      break;
    case "environment_variable": {
      let env: string | undefined;
      try {
        env = Deno.env.get(v);
      } catch (e) {
        throw new ConfigError(o.at(which), `cannot read ${describe(v)}: ${e instanceof Error ? e.message : e}`);
      }
      if (env === undefined) throw new ConfigError(o.at(which), `environment variable ${describe(v)} is not set`);
      out = new TextEncoder().encode(env);
    }
  }
  o.done();
  return out;
}

function parseDirectResponse(o: ObjReader, maxBody: number): DirectResponseAction {
  o.unsupported("body_format", "body_format is not supported");
  const status = o.int("status", { required: true, min: 200, max: 599 })!;
  const raw = o.value("body");
  const body = raw === undefined ? new Uint8Array(0) : readDataSource(raw, o.at("body"));
  if (body.length > maxBody) {
    throw new ConfigError(
      o.at("body"),
      `body is ${body.length} bytes, more than max_direct_response_body_size_bytes ${maxBody}`,
    );
  }
  return { kind: "direct_response", status, body, contentType: body.length > 0 ? "text/plain" : undefined };
}

// ---- route, virtual host, route configuration ----

function parseRoute(o: ObjReader, vhostRetry: RetryPolicy | undefined, maxBody: number): Route {
  o.envoyMessage("envoy.config.route.v3.Route");
  for (const k of ["tracing", "non_forwarding_action", "filter_action"]) o.unsupported(k, `${k} is not supported`);
  o.skip("metadata", "stat_prefix");
  const name = o.str("name") ?? "";
  const mo = o.obj("match", { required: true })!;
  const match = parseRouteMatch(mo);
  mo.done();
  const which = o.oneOf(["route", "redirect", "direct_response"] as const, { required: true })!;
  const ao = o.obj(which)!;
  let action: Route["action"];
  if (which === "route") action = parseRouteAction(ao, vhostRetry);
  else if (which === "redirect") action = parseRedirectAction(ao);
  else action = parseDirectResponse(ao, maxBody);
  ao.done();
  const requestHeaders = parseRequestMutation(o);
  const responseHeaders = parseResponseMutation(o);
  const typedPerFilterConfig = parseTypedPerFilterConfig(o);
  let decoratorOperation: string | undefined;
  const d = o.obj("decorator");
  if (d) {
    decoratorOperation = d.str("operation", { required: true });
    d.skip("propagate");
    d.done();
  }
  const perRequestBufferLimitBytes = o.int("per_request_buffer_limit_bytes", { min: 0 });
  return {
    name,
    match,
    action,
    requestHeaders,
    responseHeaders,
    typedPerFilterConfig,
    decoratorOperation,
    perRequestBufferLimitBytes,
  };
}

/**
 * A route without `request_mirror_policies` of its own takes those of its virtual host, else of the route
 * configuration (Envoy: the most specific non-empty list wins entirely).
 */
function inheritMirrors(route: Route, inherited: readonly MirrorPolicy[] | undefined): Route {
  const a = route.action;
  if (a.kind !== "route" || a.mirrorPolicies !== undefined || inherited === undefined || inherited.length === 0) {
    return route;
  }
  return { ...route, action: { ...a, mirrorPolicies: inherited } };
}

function parseVirtualHost(o: ObjReader, maxBody: number, rcMirrors?: readonly MirrorPolicy[]): VirtualHost {
  o.envoyMessage("envoy.config.route.v3.VirtualHost");
  for (
    const k of [
      "virtual_clusters",
      "rate_limits",
      "cors",
      "hedge_policy",
      "matcher",
      "retry_policy_typed_config",
      "include_is_timeout_retry_header",
      "request_body_buffer_limit",
    ]
  ) o.unsupported(k, `${k} is not supported`);
  o.skip("metadata");
  const name = o.str("name", { required: true });
  const domains = o.strs("domains", { nonEmpty: true }).map((d, i) => {
    if (d === "") throw new ConfigError(joinPath(o.at("domains"), i), "must not be empty");
    return d.toLowerCase();
  });
  const requireTls = o.enumOf("require_tls", ["NONE", "EXTERNAL_ONLY", "ALL"] as const) ?? "NONE";
  let retryPolicy: RetryPolicy | undefined;
  const rp = o.obj("retry_policy");
  if (rp) {
    retryPolicy = parseRetryPolicy(rp);
    rp.done();
  }
  const perRequestBufferLimitBytes = o.int("per_request_buffer_limit_bytes", { min: 0 });
  const vhMirrors = parseMirrorPolicies(o);
  const mirrors = vhMirrors.length > 0 ? vhMirrors : rcMirrors;
  const routes = o.objs("routes", (r) => {
    const route = inheritMirrors(parseRoute(r, retryPolicy, maxBody), mirrors);
    if (route.perRequestBufferLimitBytes === undefined && perRequestBufferLimitBytes !== undefined) {
      return { ...route, perRequestBufferLimitBytes };
    }
    return route;
  });
  return {
    name,
    domains,
    routes,
    requireTls: requireTls as TlsRequirement,
    requestHeaders: parseRequestMutation(o),
    responseHeaders: parseResponseMutation(o),
    retryPolicy,
    includeRequestAttemptCount: o.bool("include_request_attempt_count") ?? false,
    includeAttemptCountInResponse: o.bool("include_attempt_count_in_response") ?? false,
    typedPerFilterConfig: parseTypedPerFilterConfig(o),
    perRequestBufferLimitBytes,
  };
}

/**
 * Parses an Envoy v3 `RouteConfiguration`. `path` is the field path of `raw` for error messages (for example
 * `static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config`).
 *
 * Besides unknown fields, it rejects what Envoy rejects at load time: duplicate domains (also across virtual
 * hosts), more than one `*` domain, invalid regexes, rewrites referring to missing groups, header mutations of
 * pseudo-headers or `host`, weights summing to 0, a direct response body over
 * `max_direct_response_body_size_bytes`.
 *
 * @example
 * ```ts
 * const config = parseRouteConfiguration({
 *   name: "local",
 *   virtual_hosts: [{ name: "all", domains: ["*"], routes: [{ match: { prefix: "/" }, route: { cluster: "web" } }] }],
 * }, "route_config");
 * ```
 */
export function parseRouteConfiguration(raw: unknown, path: string): RouteConfig {
  const o = new ObjReader(raw, path).envoyMessage("envoy.config.route.v3.RouteConfiguration");
  for (
    const k of [
      "vhds",
      "cluster_specifier_plugins",
      "ignore_path_parameters_in_path_matching",
      "vhost_header",
      "route_specifiers",
    ]
  ) o.unsupported(k, `${k} is not supported`);
  o.skip("metadata");
  const validateClusters = o.bool("validate_clusters") ?? true;
  const name = o.str("name") ?? "";
  const maxBody = o.int("max_direct_response_body_size_bytes", { min: 0 }) ?? DEFAULT_MAX_DIRECT_RESPONSE_BODY;
  const rcMirrors = parseMirrorPolicies(o);
  const virtualHosts = o.objs("virtual_hosts", (v) => parseVirtualHost(v, maxBody, rcMirrors));
  const seen = new Map<string, number>();
  virtualHosts.forEach((vh, i) => {
    vh.domains.forEach((d, j) => {
      const prev = seen.get(d);
      if (prev !== undefined) {
        const where = joinPath(joinPath(joinPath(o.at("virtual_hosts"), i), "domains"), j);
        const detail = d === "*"
          ? `only one virtual host may have the domain "*" (also in virtual_hosts[${prev}])`
          : `duplicate domain ${describe(d)} (also in virtual_hosts[${prev}])`;
        throw new ConfigError(where, detail);
      }
      seen.set(d, i);
    });
  });
  const internalOnlyHeaders = o.strs("internal_only_headers").map((h, i) => {
    if (!isHeaderName(h)) {
      throw new ConfigError(joinPath(o.at("internal_only_headers"), i), `${describe(h)} is not a valid header name`);
    }
    return h.toLowerCase();
  });
  const config: RouteConfig = {
    name,
    virtualHosts,
    requestHeaders: parseRequestMutation(o),
    responseHeaders: parseResponseMutation(o),
    internalOnlyHeaders,
    mostSpecificHeaderMutationsWins: o.bool("most_specific_header_mutations_wins") ?? false,
    ignorePortInHostMatching: o.bool("ignore_port_in_host_matching") ?? false,
    maxDirectResponseBodySizeBytes: maxBody,
    typedPerFilterConfig: parseTypedPerFilterConfig(o),
    validateClusters,
  };
  o.done();
  return config;
}
