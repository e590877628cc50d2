/**
 * Header mutations of a matched route: `request_headers_to_add/remove` and `response_headers_to_add/remove` of
 * the weighted cluster, the route, the virtual host and the route configuration.
 *
 * Order (Envoy's `finalizeRequestHeaders` / `finalizeResponseHeaders`): the weighted cluster's level first, then
 * route → virtual host → route configuration, so on a conflict with an overwriting action the least specific
 * level wins; with `most_specific_header_mutations_wins` the three are applied route-configuration → virtual
 * host → route instead, so the route wins. (The weighted cluster level still goes first in both, as in Envoy.)
 * Within a level, removals come first, then overwrites, then appends (see {@link applyHeaderMutation}).
 *
 * @module
 */
import type { HeaderMap } from "../api/headers.ts";
import { EMPTY_MUTATION } from "./route_config.ts";
import type { ClusterChoice, FormatContext, HeaderMutation, RouteConfig, RouteResult } from "./types.ts";

/** Options of {@link applyRequestMutations} and {@link applyResponseMutations}. */
export interface MutationOptions {
  /** What the header value formats read (a `StreamInfo` fits). */
  readonly info?: FormatContext;
  /** The cluster chosen by {@link selectCluster}; its weighted-cluster mutations are applied first. */
  readonly cluster?: ClusterChoice | null;
}

const NO_INFO: FormatContext = Object.freeze({});

/**
 * Applies one level's mutation to `headers`, as Envoy's `HeaderParser::evaluateHeaders`: removals first; then every
 * value is formatted (seeing the headers after the removals, before any addition of this level) and `ADD_IF_ABSENT`
 * / `OVERWRITE_IF_EXISTS` are decided on those same headers; then the overwrites are set one by one (so of two
 * overwrites of one name the last wins), then the appends are added.
 */
export function applyHeaderMutation(m: HeaderMutation, headers: HeaderMap, info: FormatContext = NO_INFO): void {
  if (m.empty) return;
  const remove = m.remove;
  for (let i = 0; i < remove.length; i++) headers.remove(remove[i]!);
  let overwrite: string[] | undefined;
  let append: string[] | undefined;
  const add = m.add;
  for (let i = 0; i < add.length; i++) {
    const a = add[i]!;
    const value = a.value.constant ?? a.value.format(info, headers);
    if (value === "" && !a.keepEmptyValue) continue;
    switch (a.appendAction) {
      case "APPEND_IF_EXISTS_OR_ADD":
        (append ??= []).push(a.name, value);
        break;
      case "ADD_IF_ABSENT":
        if (!headers.has(a.name)) (append ??= []).push(a.name, value);
        break;
      case "OVERWRITE_IF_EXISTS":
        if (!headers.has(a.name)) break;
        (overwrite ??= []).push(a.name, value);
        break;
      case "OVERWRITE_IF_EXISTS_OR_ADD":
        (overwrite ??= []).push(a.name, value);
        break;
    }
  }
  if (overwrite !== undefined) {
    for (let i = 0; i < overwrite.length; i += 2) headers.set(overwrite[i]!, overwrite[i + 1]!);
  }
  if (append !== undefined) {
    for (let i = 0; i < append.length; i += 2) headers.add(append[i]!, append[i + 1]!);
  }
}

function applyLevels(
  first: HeaderMutation,
  route: HeaderMutation,
  vhost: HeaderMutation,
  global: HeaderMutation,
  config: RouteConfig,
  headers: HeaderMap,
  info: FormatContext,
): void {
  if (!first.empty) applyHeaderMutation(first, headers, info);
  if (config.mostSpecificHeaderMutationsWins) {
    if (!global.empty) applyHeaderMutation(global, headers, info);
    if (!vhost.empty) applyHeaderMutation(vhost, headers, info);
    if (!route.empty) applyHeaderMutation(route, headers, info);
  } else {
    if (!route.empty) applyHeaderMutation(route, headers, info);
    if (!vhost.empty) applyHeaderMutation(vhost, headers, info);
    if (!global.empty) applyHeaderMutation(global, headers, info);
  }
}

/**
 * Applies the request header mutations of a matched route to the request headers (before forwarding). See the
 * module doc for the order.
 */
export function applyRequestMutations(result: RouteResult, headers: HeaderMap, opts: MutationOptions = {}): void {
  const c = opts.cluster;
  applyLevels(
    c ? c.requestHeaders : EMPTY_MUTATION,
    result.route.requestHeaders,
    result.vhost.requestHeaders,
    result.config.requestHeaders,
    result.config,
    headers,
    opts.info ?? NO_INFO,
  );
}

/**
 * Applies the response header mutations of a matched route to the response headers (upstream responses, direct
 * responses and redirects alike).
 */
export function applyResponseMutations(result: RouteResult, headers: HeaderMap, opts: MutationOptions = {}): void {
  const c = opts.cluster;
  applyLevels(
    c ? c.responseHeaders : EMPTY_MUTATION,
    result.route.responseHeaders,
    result.vhost.responseHeaders,
    result.config.responseHeaders,
    result.config,
    headers,
    opts.info ?? NO_INFO,
  );
}

/** Removes the route configuration's `internal_only_headers` (from external requests: see {@link sanitizeInternalRequest}). */
export function stripInternalOnlyHeaders(config: RouteConfig, headers: HeaderMap): void {
  const names = config.internalOnlyHeaders;
  for (let i = 0; i < names.length; i++) headers.remove(names[i]!);
}
