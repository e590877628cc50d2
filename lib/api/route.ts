/**
 * The typed route model: what `parseRouteConfiguration` (lib/router) produces from Envoy's v3 `RouteConfiguration`
 * and what the route table, the action helpers and the filters read (`StreamFilterCallbacks.route`).
 *
 * Everything here is immutable after parsing and shared by all streams; per-request work only reads it. Strings
 * that Envoy compares case-insensitively (header names, domains) are already lower-cased, regexes are compiled
 * and header value formats are compiled into {@link HeaderFormatter}s.
 *
 * @module
 */
import type { HeaderMap } from "./headers.ts";

/**
 * What a header value format (`%DOWNSTREAM_REMOTE_ADDRESS%`, `%REQ(x)%`, ...) reads. Structurally a subset of
 * `StreamInfo`, so the router filter can pass its stream's `StreamInfo` as is.
 */
export interface FormatContext {
  /** `ip:port` of the downstream peer (`[v6]:port` for IPv6). */
  readonly downstreamRemoteAddress?: string | undefined;
  /** `ip:port` of the local side of the downstream connection. */
  readonly downstreamLocalAddress?: string | undefined;
  /** `HTTP/1.1`, `HTTP/2`, ... */
  readonly protocol?: string | undefined;
  /** Wall clock at stream start, ms since the epoch (`%START_TIME%`); `Date.now()` if absent. */
  readonly startTime?: number | undefined;
  /** `ip:port` of the upstream host (`%UPSTREAM_REMOTE_ADDRESS%`, response side). */
  readonly upstreamHost?: string | undefined;
  /** `%UPSTREAM_CLUSTER%`. */
  readonly upstreamCluster?: string | undefined;
  /** `%ROUTE_NAME%`. */
  readonly routeName?: string | undefined;
  /** The request headers, for `%REQ(x)%` in response header values. */
  readonly requestHeaders?: HeaderMap | undefined;
  /** The response headers, for `%RESP(x)%` in request header values (rarely set). */
  readonly responseHeaders?: HeaderMap | undefined;
}

/**
 * A header value format compiled once at parse time. `constant` is set when the format has no operators, so
 * callers (and `applyRequestMutations`) skip the call entirely.
 */
export interface HeaderFormatter {
  /** The format string as configured. */
  readonly source: string;
  /** The value when the format has no operators (after `%%` unescaping); undefined otherwise. */
  readonly constant: string | undefined;
  /** Evaluates the format. `target` is the header map being mutated (request or response side). */
  format(ctx: FormatContext, target: HeaderMap): string;
}

/** Envoy's `HeaderValueOption.HeaderAppendAction`. */
export type HeaderAppendAction =
  | "APPEND_IF_EXISTS_OR_ADD"
  | "ADD_IF_ABSENT"
  | "OVERWRITE_IF_EXISTS_OR_ADD"
  | "OVERWRITE_IF_EXISTS";

/** One `*_headers_to_add` entry. */
export interface HeaderAddition {
  /** Lower-cased header name. */
  readonly name: string;
  /** The compiled value format. */
  readonly value: HeaderFormatter;
  /** `append_action`, or the legacy `append` (true → APPEND_IF_EXISTS_OR_ADD, false → OVERWRITE_IF_EXISTS_OR_ADD). */
  readonly appendAction: HeaderAppendAction;
  /** When false (the default) a value that formats to `""` is not added. */
  readonly keepEmptyValue: boolean;
}

/** The header changes of one level (weighted cluster, route, virtual host or route configuration). */
export interface HeaderMutation {
  /** Applied after `remove`, in order. */
  readonly add: readonly HeaderAddition[];
  /** Lower-cased names removed first. */
  readonly remove: readonly string[];
  /** True when `add` and `remove` are both empty (lets the hot path skip the level). */
  readonly empty: boolean;
}

/** A compiled value matcher: Envoy's `StringMatcher` or an `Int64Range`. */
export interface ValueMatcher {
  /** `exact`, `prefix`, `suffix`, `contains`, `safe_regex` or `range`. */
  readonly kind: "exact" | "prefix" | "suffix" | "contains" | "safe_regex" | "range";
  /** The configured string (the regex source for `safe_regex`, `start,end` for `range`). */
  readonly value: string;
  /** `ignore_case` (never for `safe_regex` and `range`). */
  readonly ignoreCase: boolean;
  /** True if `value` matches. */
  test(value: string): boolean;
}

/** Envoy's `HeaderMatcher`. Header values are tested joined with `,` when a header is repeated. */
export interface HeaderMatcher {
  /** Lower-cased header name. */
  readonly name: string;
  /** `invert_match`. */
  readonly invert: boolean;
  /** `treat_missing_header_as_empty`. */
  readonly treatMissingAsEmpty: boolean;
  /** For presence matchers: true = must be present, false = must be absent. Undefined for value matchers. */
  readonly present: boolean | undefined;
  /** For value matchers. */
  readonly matcher: ValueMatcher | undefined;
}

/** Envoy's `QueryParameterMatcher`. Only the first value of a repeated parameter is tested, as in Envoy. */
export interface QueryParameterMatcher {
  /** `name`. */
  readonly name: string;
  /** Undefined for a presence match. */
  readonly matcher: ValueMatcher | undefined;
}

/** How a route matches the path (without query string and fragment). */
/** `connect` is Envoy's `connect_matcher: {}`: the route matches CONNECT requests only. */
export type PathMatchKind = "prefix" | "path" | "safe_regex" | "path_separated_prefix" | "connect";

/** Envoy's `RouteMatch`. */
export interface RouteMatch {
  /** Which path specifier the route uses. */
  readonly kind: PathMatchKind;
  /** The configured prefix, path or regex source. */
  readonly value: string;
  /** The anchored regex for `safe_regex`. */
  readonly regex: RegExp | undefined;
  /** `case_sensitive` (default true); has no effect on `safe_regex`, as in Envoy. */
  readonly caseSensitive: boolean;
  /** All must match. */
  readonly headers: readonly HeaderMatcher[];
  /** All must match. */
  readonly queryParameters: readonly QueryParameterMatcher[];
  /** `grpc: {}`: the request's content-type must be gRPC. */
  readonly grpc: boolean;
}

/** A compiled `RegexMatchAndSubstitute` (`regex_rewrite`): every match is replaced, RE2 `\N` references resolved. */
export interface RegexRewrite {
  /** The RE2 pattern as configured. */
  readonly pattern: string;
  /** The substitution as configured. */
  readonly substitution: string;
  /** Replaces every match in `input`. */
  apply(input: string): string;
}

/** `retry_on` conditions Ferry implements (Envoy's names). */
export type RetryOn =
  | "5xx"
  | "gateway-error"
  | "reset"
  | "reset-before-request"
  | "connect-failure"
  | "retriable-4xx"
  | "refused-stream"
  | "retriable-status-codes"
  | "retriable-headers"
  | "envoy-ratelimited"
  | "cancelled"
  | "deadline-exceeded"
  | "internal"
  | "resource-exhausted"
  | "unavailable";

/** Envoy's `RetryPolicy`, with defaults filled in. */
export interface RetryPolicy {
  /** `retry_on` conditions. */
  readonly retryOn: ReadonlySet<RetryOn>;
  /** `num_retries` (default 1). */
  readonly numRetries: number;
  /** `per_try_timeout` in ms; 0 = none (the global timeout applies). */
  readonly perTryTimeoutMs: number;
  /** `per_try_idle_timeout` in ms; 0 = none. */
  readonly perTryIdleTimeoutMs: number;
  /** `retriable_status_codes` (with `retriable-status-codes`). */
  readonly retriableStatusCodes: readonly number[];
  /** `retriable_headers`: response headers that make a response retriable (with `retriable-headers`). */
  readonly retriableHeaders: readonly HeaderMatcher[];
  /** `retriable_request_headers`: when non-empty, only requests matching one of them are retried. */
  readonly retriableRequestHeaders: readonly HeaderMatcher[];
  /** `retry_back_off.base_interval` in ms (default 25). */
  readonly backoffBaseMs: number;
  /** `retry_back_off.max_interval` in ms (default 10 × base). */
  readonly backoffMaxMs: number;
  /** `retry_host_predicate` has `envoy.retry_host_predicates.previous_hosts`. */
  readonly previousHostsPredicate: boolean;
  /** `host_selection_retry_max_attempts` (default 1). */
  readonly hostSelectionRetryMaxAttempts: number;
}

/** One entry of a route's `hash_policy` (consumed by ring-hash / Maglev load balancers). */
export type HashPolicy =
  | {
    readonly kind: "header";
    readonly headerName: string;
    readonly regexRewrite: RegexRewrite | undefined;
    readonly terminal: boolean;
  }
  | {
    readonly kind: "cookie";
    readonly name: string;
    /** Set when Envoy should generate the cookie (ms; 0 = session cookie). */
    readonly ttlMs: number | undefined;
    readonly path: string | undefined;
    readonly attributes: readonly { readonly name: string; readonly value: string }[];
    readonly terminal: boolean;
  }
  | { readonly kind: "connection_properties"; readonly sourceIp: boolean; readonly terminal: boolean }
  | { readonly kind: "query_parameter"; readonly name: string; readonly terminal: boolean };

/**
 * The cluster a request goes to, with the per-cluster extras of a weighted cluster (empty for a plain `cluster`).
 * Returned by `selectCluster` (lib/router).
 */
export interface ClusterChoice {
  /** `name`. */
  readonly name: string;
  /** Weight within `weighted_clusters` (0 for the other specifiers). */
  readonly weight: number;
  /** `request_headers_to_add` / `request_headers_to_remove` of this level. */
  readonly requestHeaders: HeaderMutation;
  /** `response_headers_to_add` / `response_headers_to_remove` of this level. */
  readonly responseHeaders: HeaderMutation;
  /** `host_rewrite_literal` of the weighted cluster entry; wins over the route's host rewrite. */
  readonly hostRewriteLiteral: string | undefined;
  /** Raw `typed_per_filter_config` of the weighted cluster entry, by filter name. */
  readonly typedPerFilterConfig: Readonly<Record<string, unknown>>;
}

/** How the route rewrites `:authority`. */
export type HostRewrite =
  | { readonly kind: "literal"; readonly value: string }
  | { readonly kind: "auto" }
  | { readonly kind: "header"; readonly header: string }
  | { readonly kind: "path_regex"; readonly rewrite: RegexRewrite };

/** One `request_mirror_policies` entry of a route action (Envoy's `RouteAction.RequestMirrorPolicy`). */
export interface MirrorPolicy {
  /** `cluster`, or undefined when the cluster comes from `clusterHeader`. */
  readonly cluster: string | undefined;
  /** Lower-cased `cluster_header`: the shadow cluster is this request header's first value (none if absent). */
  readonly clusterHeader: string | undefined;
  /** `runtime_fraction.default_value` as a probability in [0, 1] (1 when unset: every request is mirrored). */
  readonly fraction: number;
  /** `runtime_fraction.runtime_key`, if set (read when a runtime is available). */
  readonly runtimeKey: string | undefined;
  /** The fraction's denominator (100, 10 000 or 1 000 000), for a runtime override given as a numerator. */
  readonly denominator: number;
  /** `trace_sampled` (default true); Ferry has no tracing, so it is kept for completeness only. */
  readonly traceSampled: boolean;
  /** `disable_shadow_host_suffix_append`: keep `:authority` as is instead of appending `-shadow`. */
  readonly disableShadowHostSuffixAppend: boolean;
}

/** Envoy's `RouteAction` (forward to a cluster). */
export interface RouteAction {
  /** Discriminant. */
  readonly kind: "route";
  /** Which cluster specifier is set. */
  readonly clusterSpecifier: "cluster" | "weighted_clusters" | "cluster_header";
  /** The choice for `cluster`. */
  readonly cluster: ClusterChoice | undefined;
  /** The entries of `weighted_clusters`. */
  readonly weightedClusters: readonly ClusterChoice[];
  /** Sum of the weights (> 0 for `weighted_clusters`). */
  readonly totalWeight: number;
  /** Lower-cased `cluster_header`. */
  readonly clusterHeader: string | undefined;
  /** `cluster_not_found_response_code`: 503 (default), 404 or 500. */
  readonly clusterNotFoundStatus: number;
  /** `prefix_rewrite` (an empty string means unset, as in proto3). */
  readonly prefixRewrite: string | undefined;
  /** `regex_rewrite`. */
  readonly regexRewrite: RegexRewrite | undefined;
  /** The host rewrite, if any. */
  readonly hostRewrite: HostRewrite | undefined;
  /** `append_x_forwarded_host`. */
  readonly appendXForwardedHost: boolean;
  /** `timeout` in ms (default 15000); 0 = disabled. */
  readonly timeoutMs: number;
  /** `idle_timeout` in ms; undefined = the connection manager's `stream_idle_timeout`; 0 = disabled. */
  readonly idleTimeoutMs: number | undefined;
  /** The route's `retry_policy`, else the virtual host's; undefined = no retries. */
  readonly retryPolicy: RetryPolicy | undefined;
  /** `hash_policy`, in order. */
  readonly hashPolicy: readonly HashPolicy[];
  /**
   * `max_stream_duration` is present (even empty): Envoy's "new timeouts" — the route's `timeout` no longer applies
   * and the stream's lifetime is capped by `streamDurationMs` instead.
   */
  readonly streamDurationConfigured: boolean;
  /** `max_stream_duration.max_stream_duration` in ms; undefined = not set. */
  readonly maxStreamDurationMs: number | undefined;
  /** `max_stream_duration.grpc_timeout_header_max` in ms (0 = no cap); undefined = ignore `grpc-timeout`. */
  readonly grpcTimeoutHeaderMaxMs: number | undefined;
  /** `max_stream_duration.grpc_timeout_header_offset` in ms. */
  readonly grpcTimeoutHeaderOffsetMs: number;
  /** `upgrade_configs` by lower-cased upgrade type (only `websocket`): enabled or not. */
  readonly upgrades: ReadonlyMap<string, boolean>;
  /** `request_mirror_policies`: shadow copies of the request, fire-and-forget (absent or empty: none). */
  readonly mirrorPolicies?: readonly MirrorPolicy[];
}

/** Envoy's `RedirectAction`. Empty strings in the config mean "not set", as in proto3. */
export interface RedirectAction {
  /** Discriminant. */
  readonly kind: "redirect";
  /** `scheme_redirect`, or `"https"` for `https_redirect`. */
  readonly scheme: string | undefined;
  /** `host_redirect`. */
  readonly host: string | undefined;
  /** `port_redirect` (0 = not set). */
  readonly port: number;
  /** `path_redirect`. */
  readonly pathRedirect: string | undefined;
  /** `prefix_rewrite` (an empty string means unset, as in proto3). */
  readonly prefixRewrite: string | undefined;
  /** `regex_rewrite`. */
  readonly regexRewrite: RegexRewrite | undefined;
  /** 301 (default), 302, 303, 307 or 308. */
  readonly responseCode: number;
  /** `strip_query`. */
  readonly stripQuery: boolean;
  /** Internal: the redirect of a virtual host's `require_tls` (`https://` + host + path, as Envoy's SslRedirector). */
  readonly tlsRedirect: boolean;
}

/** Envoy's `DirectResponseAction`: a fixed local reply. */
export interface DirectResponseAction {
  /** Discriminant. */
  readonly kind: "direct_response";
  /** The response status. */
  readonly status: number;
  /** The body bytes (empty when no body is configured). */
  readonly body: Uint8Array;
  /** `text/plain` when there is a body, else undefined. */
  readonly contentType: string | undefined;
}

/** Envoy's `Route`. */
export interface Route {
  /** `name` ("" when unset). */
  readonly name: string;
  /** `match`. */
  readonly match: RouteMatch;
  /** `route`, `redirect` or `direct_response`, by `kind`. */
  readonly action: RouteAction | RedirectAction | DirectResponseAction;
  /** `request_headers_to_add` / `request_headers_to_remove` of this level. */
  readonly requestHeaders: HeaderMutation;
  /** `response_headers_to_add` / `response_headers_to_remove` of this level. */
  readonly responseHeaders: HeaderMutation;
  /** Raw `typed_per_filter_config` by filter name; the filters parse their own entries. */
  readonly typedPerFilterConfig: Readonly<Record<string, unknown>>;
  /** `decorator.operation`, if set. */
  readonly decoratorOperation: string | undefined;
  /** `per_request_buffer_limit_bytes`, if set (else the virtual host's). */
  readonly perRequestBufferLimitBytes: number | undefined;
}

/** `require_tls` of a virtual host. */
export type TlsRequirement = "NONE" | "EXTERNAL_ONLY" | "ALL";

/** Envoy's `VirtualHost`. */
export interface VirtualHost {
  /** `name`. */
  readonly name: string;
  /** Lower-cased domains as configured. */
  readonly domains: readonly string[];
  /** `routes`, matched in order. */
  readonly routes: readonly Route[];
  /** `require_tls` (default NONE). */
  readonly requireTls: TlsRequirement;
  /** `request_headers_to_add` / `request_headers_to_remove` of this level. */
  readonly requestHeaders: HeaderMutation;
  /** `response_headers_to_add` / `response_headers_to_remove` of this level. */
  readonly responseHeaders: HeaderMutation;
  /** `retry_policy`: the default for routes without one. */
  readonly retryPolicy: RetryPolicy | undefined;
  /** Set `x-envoy-attempt-count` on upstream requests. */
  readonly includeRequestAttemptCount: boolean;
  /** Set `x-envoy-attempt-count` on downstream responses. */
  readonly includeAttemptCountInResponse: boolean;
  /** Raw `typed_per_filter_config` by filter name. */
  readonly typedPerFilterConfig: Readonly<Record<string, unknown>>;
  /** `per_request_buffer_limit_bytes`, if set. */
  readonly perRequestBufferLimitBytes: number | undefined;
}

/** Envoy's `RouteConfiguration`. */
export interface RouteConfig {
  /** `name`. */
  readonly name: string;
  /** `virtual_hosts`. */
  readonly virtualHosts: readonly VirtualHost[];
  /** `request_headers_to_add` / `request_headers_to_remove` of this level. */
  readonly requestHeaders: HeaderMutation;
  /** `response_headers_to_add` / `response_headers_to_remove` of this level. */
  readonly responseHeaders: HeaderMutation;
  /** Lower-cased `internal_only_headers`: removed from external requests (see `stripInternalOnlyHeaders`). */
  readonly internalOnlyHeaders: readonly string[];
  /** Apply header mutations least specific first (route-config, vhost, route) so the route wins. */
  readonly mostSpecificHeaderMutationsWins: boolean;
  /** Strip any port from `:authority` before virtual host selection. */
  readonly ignorePortInHostMatching: boolean;
  /** `max_direct_response_body_size_bytes` (default 4096). */
  readonly maxDirectResponseBodySizeBytes: number;
  /** Raw `typed_per_filter_config` by filter name. */
  readonly typedPerFilterConfig: Readonly<Record<string, unknown>>;
  /**
   * `validate_clusters`: the clusters the routes name must exist when the configuration loads. Defaults to true,
   * as Envoy does for an inline route configuration (the only kind Ferry has).
   */
  readonly validateClusters: boolean;
}

/** The result of `RouteTable.route` (lib/router): precomputed per route, so a lookup allocates nothing. */
export interface RouteResult {
  /** The route configuration the route belongs to. */
  readonly config: RouteConfig;
  /** The selected virtual host. */
  readonly vhost: VirtualHost;
  /** The matched route. */
  readonly route: Route;
}

/** A route configuration compiled for lookups: what a stream routes with (`RouteTable` in lib/router). */
export interface RouteMatcher {
  /** The configuration it was built from. */
  readonly config: RouteConfig;
  /** The route for a request, or null when none matches. */
  route(headers: HeaderMap, ctx?: { readonly secure?: boolean }): RouteResult | null;
}

/**
 * Serves one route configuration as immutable, versioned snapshots (Envoy's `RouteConfigProvider`). A stream
 * takes `current` when it begins and routes with it to its end; an update (RDS, or the runtime API) installs a new
 * snapshot for the streams that begin afterwards.
 */
export interface RouteConfigProvider {
  /** The route configuration's `name` (may be empty for an unnamed inline config). */
  readonly name: string;
  /** The snapshot new streams use. */
  readonly current: RouteMatcher;
  /** Increases with every update, starting at 1. */
  readonly version: number;
}

/**
 * Hands out route-config providers and updates them by name: every connection manager whose route configuration
 * has that name sees the update. Providers no longer referenced are forgotten.
 */
export interface RouteConfigProviderManager {
  /** A provider serving `config` now and every later update of configurations with its name. */
  provide(config: RouteConfig): RouteConfigProvider;
  /**
   * Replaces the route configuration named `config.name` in every provider serving it; returns how many were
   * updated (0: no connection manager uses that name).
   */
  update(config: RouteConfig): number;
}
