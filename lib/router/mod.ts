/**
 * The router library: Envoy v3 `RouteConfiguration` parsing, the route table, and the route actions (cluster
 * choice, rewrites, redirects, direct responses, header mutations, timeouts, retries) as pure logic for the
 * router filter.
 *
 * @example
 * ```ts
 * const table = new RouteTable(parseRouteConfiguration(raw, "route_config"));
 * const hit = table.route(headers, { secure });
 * if (hit?.route.action.kind === "route") {
 *   const cluster = selectCluster(hit.route.action, headers);
 *   applyRequestMutations(hit, headers, { info: streamInfo, cluster });
 * }
 * ```
 *
 * @module
 */
export type * from "./types.ts";
export { parseRetryOn, parseRouteConfiguration, readDataSource } from "./route_config.ts";
export { type RouteContext, RouteTable, stripHostPort } from "./route_table.ts";
export { RouteConfigProviderImpl, RouteConfigProviders } from "./route_config_provider.ts";
export {
  type DirectResponse,
  directResponse,
  finalTimeouts,
  formatGrpcTimeout,
  parseGrpcTimeout,
  pathEnd,
  type Redirect,
  redirectLocation,
  rewriteHost,
  rewritePath,
  selectCluster,
  streamDurationMs,
  type TimeoutOptions,
  type Timeouts,
  upgradeAllowed,
} from "./actions.ts";
export {
  applyHeaderMutation,
  applyRequestMutations,
  applyResponseMutations,
  type MutationOptions,
  stripInternalOnlyHeaders,
} from "./mutations.ts";
export {
  cidrMatcher,
  type InternalRequestPolicy,
  isInternalRequest,
  sanitizeInternalRequest,
} from "./internal_request.ts";
export { mirrorCluster, type MirrorRuntime, parseMirrorPolicies, shadowAuthority } from "./mirror.ts";
export { effectiveRetryPolicy, type RetryResetReason, RetryState } from "./retry.ts";
export { addressWithoutPort, compileHeaderFormat, type FormatSide } from "./format.ts";
export {
  compileRe2,
  compileRegexRewrite,
  isGrpcContentType,
  matchHeader,
  matchHeaders,
  matchQueryParameters,
  parseHeaderMatcher,
  parseQuery,
  parseQueryParameterMatcher,
  parseRegexMatcher,
  parseRegexRewrite,
  parseStringMatcher,
  readRegexMatcher,
} from "./matchers.ts";
