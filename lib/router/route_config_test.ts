import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { parseRouteConfiguration } from "./route_config.ts";
import { assertThrows } from "../../tests/assert.ts";
import { assertConfigError, config, oneHost } from "../../tests/helpers/router.ts";
import type { RouteAction } from "./types.ts";

const R = (extra: Record<string, unknown> = {}) => ({ match: { prefix: "/" }, route: { cluster: "c" }, ...extra });

function action(routes: unknown[], vhost: Record<string, unknown> = {}): RouteAction {
  const a = oneHost(routes, vhost).virtualHosts[0]!.routes[0]!.action;
  if (a.kind !== "route") throw new Error("not a route action");
  return a;
}

Deno.test("parseRouteConfiguration fills Envoy's defaults", () => {
  const c = oneHost([R()]);
  assertEquals(c.name, "x");
  assertEquals(c.mostSpecificHeaderMutationsWins, false);
  assertEquals(c.maxDirectResponseBodySizeBytes, 4096);
  const vh = c.virtualHosts[0]!;
  assertEquals(vh.requireTls, "NONE");
  const r = vh.routes[0]!;
  assertEquals(r.name, "");
  assertEquals(r.match.caseSensitive, true);
  const a = action([R()]);
  assertEquals(a.timeoutMs, 15000);
  assertEquals(a.idleTimeoutMs, undefined);
  assertEquals(a.retryPolicy, undefined);
  assertEquals(a.cluster?.name, "c");
  assertEquals(a.clusterNotFoundStatus, 503);
  assert(r.requestHeaders.empty && r.responseHeaders.empty);
});

Deno.test("parseRouteConfiguration accepts lowerCamelCase and consumes validate_clusters", () => {
  const c = parseRouteConfiguration({
    name: "n",
    validateClusters: true,
    virtualHosts: [{ name: "v", domains: ["*"], routes: [{ match: { prefix: "/" }, route: { cluster: "c" } }] }],
  }, "rc");
  assertEquals(c.virtualHosts.length, 1);
});

Deno.test("parseRouteConfiguration requires a path specifier, naming the route", () => {
  assertConfigError(
    () => oneHost([R(), { match: { headers: [{ name: "a" }] }, route: { cluster: "c" } }]),
    "config: x.virtual_hosts[0].routes[1].match: one of prefix, path, safe_regex, path_separated_prefix, connect_matcher is required",
  );
  assertConfigError(
    () => oneHost([{ match: { prefix: "/", path: "/a" }, route: { cluster: "c" } }]),
    "config: x.virtual_hosts[0].routes[0].match: only one of prefix, path may be set",
  );
});

Deno.test("parseRouteConfiguration rejects unknown and unsupported fields with their path", () => {
  assertConfigError(() => oneHost([R({ bogus: 1 })]), "config: x.virtual_hosts[0].routes[0].bogus: unknown field");
  assertConfigError(
    () => oneHost([{ match: { prefix: "/", runtime_fraction: {} }, route: { cluster: "c" } }]),
    "config: x.virtual_hosts[0].routes[0].match.runtime_fraction: runtime_fraction is not supported",
  );
  assertConfigError(
    () => oneHost([{ match: { prefix: "/" }, route: { cluster: "c", timeot: "1s" } }]),
    "config: x.virtual_hosts[0].routes[0].route.timeot: unknown field",
  );
  assertConfigError(
    () => config({ virtual_hosts: [], vhds: {} }),
    "config: x.vhds: vhds is not supported",
  );
  assertConfigError(
    () => oneHost([{ match: { prefix: "/" }, route: { cluster: "c", priority: "HIGH" } }]),
    'config: x.virtual_hosts[0].routes[0].route.priority: "HIGH" is not supported',
  );
});

Deno.test("parseRouteConfiguration requires exactly one action", () => {
  assertConfigError(
    () => oneHost([{ match: { prefix: "/" } }]),
    "config: x.virtual_hosts[0].routes[0]: one of route, redirect, direct_response is required",
  );
  assertConfigError(
    () => oneHost([{ match: { prefix: "/" }, route: { cluster: "c" }, direct_response: { status: 200 } }]),
    "config: x.virtual_hosts[0].routes[0]: only one of route, direct_response may be set",
  );
  assertConfigError(
    () => oneHost([{ match: { prefix: "/" }, route: {} }]),
    "config: x.virtual_hosts[0].routes[0].route: one of cluster, weighted_clusters, cluster_header is required",
  );
});

Deno.test("parseRouteConfiguration rejects invalid regexes with the regex path", () => {
  assertConfigError(
    () => oneHost([{ match: { safe_regex: { regex: "/a(" } }, route: { cluster: "c" } }]),
    'config: x.virtual_hosts[0].routes[0].match.safe_regex.regex: invalid regex "/a(": ' +
      "Unterminated group",
  );
  assertConfigError(
    () => oneHost([{ match: { safe_regex: { regex: "/(?=a)" } }, route: { cluster: "c" } }]),
    'config: x.virtual_hosts[0].routes[0].match.safe_regex.regex: invalid regex "/(?=a)": ' +
      "lookaround is not supported (RE2)",
  );
  assertConfigError(
    () =>
      oneHost([{
        match: { prefix: "/", headers: [{ name: "a", string_match: { safe_regex: { regex: "[" } } }] },
        route: { cluster: "c" },
      }]),
    'config: x.virtual_hosts[0].routes[0].match.headers[0].string_match.safe_regex.regex: invalid regex "[": ' +
      "Unterminated character class",
  );
});

Deno.test("parseRouteConfiguration rejects duplicate domains and a second *", () => {
  assertConfigError(
    () =>
      config({
        virtual_hosts: [
          { name: "a", domains: ["a.com"], routes: [] },
          { name: "b", domains: ["b.com", "A.com"], routes: [] },
        ],
      }),
    'config: x.virtual_hosts[1].domains[1]: duplicate domain "a.com" (also in virtual_hosts[0])',
  );
  assertConfigError(
    () =>
      config({
        virtual_hosts: [{ name: "a", domains: ["*"], routes: [] }, { name: "b", domains: ["*"], routes: [] }],
      }),
    'config: x.virtual_hosts[1].domains[0]: only one virtual host may have the domain "*" (also in virtual_hosts[0])',
  );
  assertConfigError(
    () => config({ virtual_hosts: [{ name: "a", domains: [], routes: [] }] }),
    "config: x.virtual_hosts[0].domains: must have at least one entry",
  );
});

Deno.test("parseRouteConfiguration rejects header mutations of pseudo-headers and host", () => {
  assertConfigError(
    () => oneHost([R({ request_headers_to_remove: [":path"] })]),
    'config: x.virtual_hosts[0].routes[0].request_headers_to_remove[0]: ":path": pseudo-headers and host may not be removed',
  );
  assertConfigError(
    () => config({ virtual_hosts: [], response_headers_to_remove: ["x-a", "Host"] }),
    'config: x.response_headers_to_remove[1]: "Host": pseudo-headers and host may not be removed',
  );
  assertConfigError(
    () => oneHost([R({ request_headers_to_add: [{ header: { key: ":authority", value: "a" } }] })]),
    'config: x.virtual_hosts[0].routes[0].request_headers_to_add[0].header.key: ":authority": ' +
      "pseudo-headers and host may not be added",
  );
  assertConfigError(
    () => oneHost([R({ request_headers_to_remove: ["bad header"] })]),
    'config: x.virtual_hosts[0].routes[0].request_headers_to_remove[0]: "bad header" is not a valid header name',
  );
  // Upper-case names are lower-cased, as Envoy's LowerCaseString does.
  const r = oneHost([R({ request_headers_to_remove: ["X-Foo"] })]).virtualHosts[0]!.routes[0]!;
  assertEquals(r.requestHeaders.remove, ["x-foo"]);
});

Deno.test("parseRouteConfiguration reads header value options", () => {
  const r = oneHost([R({
    request_headers_to_add: [
      { header: { key: "X-A", value: "1" } },
      { header: { key: "x-b", value: "2" }, append: false },
      { header: { key: "x-c", value: "3" }, append_action: "ADD_IF_ABSENT", keep_empty_value: true },
    ],
  })]).virtualHosts[0]!.routes[0]!;
  assertEquals(
    r.requestHeaders.add.map((a) => [a.name, a.value.constant, a.appendAction, a.keepEmptyValue]),
    [
      ["x-a", "1", "APPEND_IF_EXISTS_OR_ADD", false],
      ["x-b", "2", "OVERWRITE_IF_EXISTS_OR_ADD", false],
      ["x-c", "3", "ADD_IF_ABSENT", true],
    ],
  );
  assertConfigError(
    () =>
      oneHost([
        R({
          request_headers_to_add: [{ header: { key: "a", value: "1" }, append: true, append_action: "ADD_IF_ABSENT" }],
        }),
      ]),
    "config: x.virtual_hosts[0].routes[0].request_headers_to_add[0]: only one of append, append_action may be set",
  );
  assertConfigError(
    () => oneHost([R({ request_headers_to_add: [{ header: { key: "a", value: "%NOPE%" } }] })]),
    "config: x.virtual_hosts[0].routes[0].request_headers_to_add[0].header.value: %NOPE% is not a supported substitution operator",
  );
  assertConfigError(
    () => oneHost([R({ request_headers_to_add: [{ header: { key: "a", value: "50% off" } }] })]),
    'config: x.virtual_hosts[0].routes[0].request_headers_to_add[0].header.value: invalid header value format "50% off": ' +
      "unterminated or malformed operator at offset 2 (write %% for a literal %)",
  );
});

Deno.test("parseRouteConfiguration validates weighted clusters", () => {
  const a = action([{
    match: { prefix: "/" },
    route: { weighted_clusters: { clusters: [{ name: "a", weight: 1 }, { name: "b", weight: 3 }] } },
  }]);
  assertEquals(a.clusterSpecifier, "weighted_clusters");
  assertEquals(a.totalWeight, 4);
  assertEquals(a.weightedClusters.map((c) => [c.name, c.weight]), [["a", 1], ["b", 3]]);
  assertConfigError(
    () => oneHost([{ match: { prefix: "/" }, route: { weighted_clusters: { clusters: [{ name: "a", weight: 0 }] } } }]),
    "config: x.virtual_hosts[0].routes[0].route.weighted_clusters.clusters: the sum of the weights must be greater than 0",
  );
  assertConfigError(
    () =>
      oneHost([{
        match: { prefix: "/" },
        route: { weighted_clusters: { clusters: [{ name: "a", weight: 1 }], total_weight: 100 } },
      }]),
    "config: x.virtual_hosts[0].routes[0].route.weighted_clusters.total_weight: 100 does not equal the sum of the weights 1",
  );
  assertConfigError(
    () => oneHost([{ match: { prefix: "/" }, route: { weighted_clusters: { clusters: [] } } }]),
    "config: x.virtual_hosts[0].routes[0].route.weighted_clusters.clusters: must have at least one entry",
  );
});

Deno.test("parseRouteConfiguration validates rewrites", () => {
  assertConfigError(
    () =>
      oneHost([{
        match: { prefix: "/" },
        route: { cluster: "c", regex_rewrite: { pattern: { regex: "^/(a)/" }, substitution: "/\\2/" } },
      }]),
    'config: x.virtual_hosts[0].routes[0].route.regex_rewrite.substitution: "/\\\\2/" refers to group \\2 but the pattern has 1',
  );
  assertConfigError(
    () =>
      oneHost([{
        match: { prefix: "/" },
        route: { cluster: "c", prefix_rewrite: "/a", regex_rewrite: { pattern: { regex: "a" }, substitution: "b" } },
      }]),
    "config: x.virtual_hosts[0].routes[0].route: only one of prefix_rewrite, regex_rewrite may be set",
  );
  assertConfigError(
    () => oneHost([{ match: { path_separated_prefix: "/foo/" }, route: { cluster: "c" } }]),
    'config: x.virtual_hosts[0].routes[0].match.path_separated_prefix: "/foo/" must not be empty, contain ? or #, or end with /',
  );
  assertConfigError(
    () =>
      oneHost([{
        match: { prefix: "/" },
        route: { cluster: "c", host_rewrite_literal: "a", auto_host_rewrite: true },
      }]),
    "config: x.virtual_hosts[0].routes[0].route: only one of host_rewrite_literal, auto_host_rewrite may be set",
  );
});

Deno.test("parseRouteConfiguration reads retry policies; the route's replaces the virtual host's", () => {
  const vhostPolicy = { retry_on: "5xx", num_retries: 3 };
  const inherited = action([R()], { retry_policy: vhostPolicy });
  assertEquals([...inherited.retryPolicy!.retryOn], ["5xx"]);
  assertEquals(inherited.retryPolicy!.numRetries, 3);
  const own = action([{
    match: { prefix: "/" },
    route: {
      cluster: "c",
      retry_policy: {
        retry_on: "connect-failure, retriable-status-codes",
        per_try_timeout: "0.5s",
        retriable_status_codes: [409],
        retry_back_off: { base_interval: "0.1s" },
        retry_host_predicate: [{ name: "envoy.retry_host_predicates.previous_hosts" }],
        host_selection_retry_max_attempts: 3,
      },
    },
  }], { retry_policy: vhostPolicy });
  const p = own.retryPolicy!;
  assertEquals([...p.retryOn], ["connect-failure", "retriable-status-codes"]);
  assertEquals(p.numRetries, 1);
  assertEquals(p.perTryTimeoutMs, 500);
  assertEquals(p.retriableStatusCodes, [409]);
  assertEquals([p.backoffBaseMs, p.backoffMaxMs], [100, 1000]);
  assertEquals(p.previousHostsPredicate, true);
  assertEquals(p.hostSelectionRetryMaxAttempts, 3);
  const defaults = action([{ match: { prefix: "/" }, route: { cluster: "c", retry_policy: { retry_on: "5xx" } } }]);
  assertEquals([defaults.retryPolicy!.backoffBaseMs, defaults.retryPolicy!.backoffMaxMs], [25, 250]);
});

Deno.test("parseRouteConfiguration rejects bad retry policies", () => {
  const at = "config: x.virtual_hosts[0].routes[0].route.retry_policy";
  const bad = (rp: unknown) => () => oneHost([{ match: { prefix: "/" }, route: { cluster: "c", retry_policy: rp } }]);
  assertConfigError(
    bad({ retry_on: "5xx,5xxx" }),
    `${at}.retry_on: "5xxx" is not a retry condition (one of 5xx, gateway-error, reset, reset-before-request, ` +
      "connect-failure, retriable-4xx, refused-stream, retriable-status-codes, retriable-headers, envoy-ratelimited, " +
      "cancelled, deadline-exceeded, internal, resource-exhausted, unavailable)",
  );
  assertConfigError(
    bad({ retry_on: "5xx", retry_back_off: { base_interval: "1s", max_interval: "0.5s" } }),
    `${at}.retry_back_off.max_interval: must be greater than or equal to base_interval`,
  );
  assertConfigError(
    bad({ retry_on: "5xx", retry_back_off: {} }),
    `${at}.retry_back_off.base_interval: is required`,
  );
  assertConfigError(
    bad({ retry_on: "5xx", retry_host_predicate: [{ name: "envoy.retry_host_predicates.omit_canary_hosts" }] }),
    `${at}.retry_host_predicate[0].name: "envoy.retry_host_predicates.omit_canary_hosts" is not supported ` +
      "(only envoy.retry_host_predicates.previous_hosts)",
  );
  assertConfigError(
    bad({ retry_on: "5xx", retry_priority: {} }),
    `${at}.retry_priority: retry_priority is not supported`,
  );
});

Deno.test("parseRouteConfiguration reads timeouts, hash policies and upgrades", () => {
  const a = action([{
    match: { prefix: "/" },
    route: {
      cluster: "c",
      timeout: "0s",
      idle_timeout: "30s",
      hash_policy: [
        { header: { header_name: "X-User" } },
        { cookie: { name: "sticky", ttl: "60s", path: "/" }, terminal: true },
        { connection_properties: { source_ip: true } },
        { query_parameter: { name: "u" } },
      ],
      upgrade_configs: [{ upgrade_type: "WebSocket" }],
      max_stream_duration: { grpc_timeout_header_max: "10s" },
    },
  }]);
  assertEquals(a.timeoutMs, 0);
  assertEquals(a.idleTimeoutMs, 30000);
  assertEquals(a.hashPolicy.map((h) => [h.kind, h.terminal]), [
    ["header", false],
    ["cookie", true],
    ["connection_properties", false],
    ["query_parameter", false],
  ]);
  const h0 = a.hashPolicy[0]!;
  assert(h0.kind === "header" && h0.headerName === "x-user");
  const h1 = a.hashPolicy[1]!;
  assert(h1.kind === "cookie" && h1.ttlMs === 60000 && h1.path === "/");
  assertEquals([...a.upgrades], [["websocket", true]]);
  assertEquals(a.grpcTimeoutHeaderMaxMs, 10000);
  assertConfigError(
    () => oneHost([{ match: { prefix: "/" }, route: { cluster: "c", upgrade_configs: [{ upgrade_type: "h2c" }] } }]),
    'config: x.virtual_hosts[0].routes[0].route.upgrade_configs[0].upgrade_type: "h2c" is not supported',
  );
});

Deno.test("parseRouteConfiguration reads redirects and direct responses", async () => {
  const c = oneHost([
    { match: { prefix: "/a" }, redirect: { https_redirect: true, response_code: "PERMANENT_REDIRECT" } },
    { match: { prefix: "/b" }, redirect: { host_redirect: "b.com", port_redirect: 8443, strip_query: true } },
    { match: { prefix: "/c" }, direct_response: { status: 200, body: { inline_string: "ok" } } },
    { match: { prefix: "/d" }, direct_response: { status: 503, body: { inline_bytes: btoa("\x00\x01") } } },
    { match: { prefix: "/e" }, direct_response: { status: 204 } },
  ]);
  const act = (i: number) => c.virtualHosts[0]!.routes[i]!.action;
  const [a, b, cc, d, e] = [act(0), act(1), act(2), act(3), act(4)];
  assert(a!.kind === "redirect" && a.scheme === "https" && a.responseCode === 308);
  assert(b!.kind === "redirect" && b.host === "b.com" && b.port === 8443 && b.stripQuery && b.responseCode === 301);
  assert(
    cc!.kind === "direct_response" && new TextDecoder().decode(cc.body) === "ok" && cc.contentType === "text/plain",
  );
  assert(d!.kind === "direct_response");
  assertEquals([...d.body], [0, 1]);
  assert(e!.kind === "direct_response" && e.body.length === 0 && e.contentType === undefined);

  const file = await Deno.makeTempFile();
  await Deno.writeTextFile(file, "from a file");
  const f = oneHost([{ match: { prefix: "/" }, direct_response: { status: 200, body: { filename: file } } }]);
  const fa = f.virtualHosts[0]!.routes[0]!.action;
  assert(fa.kind === "direct_response" && new TextDecoder().decode(fa.body) === "from a file");
  await Deno.remove(file);

  assertConfigError(
    () =>
      oneHost([{ match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: "xx" } } }], {}, {
        max_direct_response_body_size_bytes: 1,
      }),
    "config: x.virtual_hosts[0].routes[0].direct_response.body: body is 2 bytes, more than " +
      "max_direct_response_body_size_bytes 1",
  );
  assertConfigError(
    () => oneHost([{ match: { prefix: "/" }, direct_response: { status: 99 } }]),
    "config: x.virtual_hosts[0].routes[0].direct_response.status: 99 is below the minimum 200",
  );
  assertConfigError(
    () => oneHost([{ match: { prefix: "/" }, redirect: { response_code: "GONE" } }]),
    'config: x.virtual_hosts[0].routes[0].redirect.response_code: "GONE" is not one of MOVED_PERMANENTLY, FOUND, ' +
      "SEE_OTHER, TEMPORARY_REDIRECT, PERMANENT_REDIRECT",
  );
  assertConfigError(
    () => oneHost([{ match: { prefix: "/" }, redirect: { path_redirect: "/a", prefix_rewrite: "/b" } }]),
    "config: x.virtual_hosts[0].routes[0].redirect: only one of path_redirect, prefix_rewrite may be set",
  );
});

Deno.test("parseRouteConfiguration keeps typed_per_filter_config raw and consumes decorator", () => {
  const cfg = { "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault", abort: {} };
  const c = oneHost([
    R({ typed_per_filter_config: { "envoy.filters.http.fault": cfg }, decorator: { operation: "op" } }),
  ], {
    typed_per_filter_config: { "envoy.filters.http.cors": { "@type": "t" } },
  });
  const r = c.virtualHosts[0]!.routes[0]!;
  assertEquals(r.typedPerFilterConfig, { "envoy.filters.http.fault": cfg });
  assertEquals(r.decoratorOperation, "op");
  assertEquals(Object.keys(c.virtualHosts[0]!.typedPerFilterConfig), ["envoy.filters.http.cors"]);
  assertConfigError(
    () => oneHost([R({ typed_per_filter_config: { f: "x" } })]),
    'config: x.virtual_hosts[0].routes[0].typed_per_filter_config.f: expected an object with @type, got "x"',
  );
});

Deno.test("parseRouteConfiguration reads route matchers", () => {
  const r = oneHost([{
    match: {
      prefix: "/A",
      case_sensitive: false,
      headers: [
        { name: "X-Env", exact_match: "prod" },
        { name: "x-b", present_match: true, invert_match: true },
        { name: "x-c", string_match: { prefix: "a", ignore_case: true } },
        { name: "x-d", range_match: { start: 1, end: 10 } },
        { name: "x-e" },
      ],
      query_parameters: [{ name: "q", string_match: { exact: "1" } }, { name: "p", present_match: true }],
      grpc: {},
    },
    route: { cluster: "c" },
  }]).virtualHosts[0]!.routes[0]!;
  assertEquals(r.match.caseSensitive, false);
  assertEquals(r.match.headers.map((h) => [h.name, h.present, h.invert, h.matcher?.kind]), [
    ["x-env", undefined, false, "exact"],
    ["x-b", true, true, undefined],
    ["x-c", undefined, false, "prefix"],
    ["x-d", undefined, false, "range"],
    ["x-e", true, false, undefined],
  ]);
  assertEquals(r.match.queryParameters.map((q) => [q.name, q.matcher?.kind]), [["q", "exact"], ["p", undefined]]);
  assertEquals(r.match.grpc, true);
  assertConfigError(
    () =>
      oneHost([{
        match: { prefix: "/", query_parameters: [{ name: "q", present_match: false }] },
        route: { cluster: "c" },
      }]),
    "config: x.virtual_hosts[0].routes[0].match.query_parameters[0].present_match: false is not supported " +
      "(Envoy would treat it as true)",
  );
  assertConfigError(
    () =>
      oneHost([{
        match: { prefix: "/", headers: [{ name: "a", exact_match: "x", prefix_match: "y" }] },
        route: { cluster: "c" },
      }]),
    "config: x.virtual_hosts[0].routes[0].match.headers[0]: only one of exact_match, prefix_match may be set",
  );
  assertConfigError(
    () =>
      oneHost([{
        match: { prefix: "/", headers: [{ name: "a", string_match: { prefix: "" } }] },
        route: { cluster: "c" },
      }]),
    "config: x.virtual_hosts[0].routes[0].match.headers[0].string_match.prefix: must not be empty",
  );
});

Deno.test("parseRouteConfiguration reads virtual host options", () => {
  const c = config({
    virtual_hosts: [{
      name: "v",
      domains: ["A.com"],
      routes: [],
      require_tls: "EXTERNAL_ONLY",
      include_request_attempt_count: true,
    }],
    internal_only_headers: ["X-Internal"],
    most_specific_header_mutations_wins: true,
    ignore_port_in_host_matching: true,
  });
  const vh = c.virtualHosts[0]!;
  assertEquals(vh.domains, ["a.com"]);
  assertEquals(vh.requireTls, "EXTERNAL_ONLY");
  assertEquals(vh.includeRequestAttemptCount, true);
  assertEquals(c.internalOnlyHeaders, ["x-internal"]);
  assertEquals(c.mostSpecificHeaderMutationsWins, true);
  assertEquals(c.ignorePortInHostMatching, true);
  assertConfigError(
    () => config({ virtual_hosts: [{ name: "v", domains: ["*"], routes: [], require_tls: "SOME" }] }),
    'config: x.virtual_hosts[0].require_tls: "SOME" is not one of NONE, EXTERNAL_ONLY, ALL',
  );
  assertConfigError(
    () => config({ virtual_hosts: [{ name: "v", domains: ["*"], routes: [], virtual_clusters: [] }] }),
    "config: x.virtual_hosts[0].virtual_clusters: virtual_clusters is not supported",
  );
});

Deno.test("parseRouteConfiguration rejects header values that would split the message", () => {
  for (const bad of ["a\r\nx-injected: 1", "a\nb", "a\u0000b"]) {
    assertThrows(
      () =>
        parseRouteConfiguration({
          virtual_hosts: [{
            name: "v",
            domains: ["*"],
            response_headers_to_add: [{ header: { key: "x-a", value: bad } }],
            routes: [],
          }],
        }, "rc"),
      "config: rc.virtual_hosts[0].response_headers_to_add[0].header.value: must not contain CR, LF or NUL",
    );
  }
});
