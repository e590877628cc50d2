import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import {
  directResponse,
  finalTimeouts,
  formatGrpcTimeout,
  parseGrpcTimeout,
  redirectLocation,
  rewriteHost,
  rewritePath,
  selectCluster,
  streamDurationMs,
  upgradeAllowed,
} from "./actions.ts";
import { oneHost, req, seeded, table } from "../../tests/helpers/router.ts";
import type { Route, RouteAction } from "./types.ts";

function routeOf(r: Record<string, unknown>): Route {
  return oneHost([r]).virtualHosts[0]!.routes[0]!;
}

function actionOf(action: Record<string, unknown>, match: Record<string, unknown> = { prefix: "/" }): RouteAction {
  const a = routeOf({ match, route: action }).action;
  if (a.kind !== "route") throw new Error("not a route action");
  return a;
}

Deno.test("selectCluster returns the cluster, or the header's cluster", () => {
  assertEquals(selectCluster(actionOf({ cluster: "web" }), req("/"))?.name, "web");
  const byHeader = actionOf({ cluster_header: "X-Cluster" });
  assertEquals(selectCluster(byHeader, req("/", "a", { "x-cluster": "blue" }))?.name, "blue");
  assertEquals(selectCluster(byHeader, req("/")), null);
  assertEquals(selectCluster(byHeader, req("/", "a", { "x-cluster": "" })), null);
});

Deno.test("selectCluster picks weighted clusters by cumulative weight", () => {
  const a = actionOf({
    weighted_clusters: {
      clusters: [{ name: "a", weight: 1 }, { name: "zero", weight: 0 }, { name: "b", weight: 3 }],
    },
  });
  const at = (x: number) => selectCluster(a, req("/"), { random: () => x })?.name;
  assertEquals(at(0), "a");
  assertEquals(at(0.2499), "a");
  assertEquals(at(0.25), "b");
  assertEquals(at(0.9999999), "b");
  const counts = new Map<string, number>();
  const random = seeded(42);
  const n = 100_000;
  for (let i = 0; i < n; i++) {
    const name = selectCluster(a, req("/"), { random })!.name;
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  assertEquals(counts.get("zero"), undefined);
  // Expected 25% / 75%; 5 standard deviations of a binomial(100000, 0.25) is about 0.7%.
  const share = counts.get("a")! / n;
  assert(share > 0.243 && share < 0.257, `share of "a" is ${share}`);
});

Deno.test("rewritePath replaces the matched prefix and keeps the query", () => {
  const r = routeOf({ match: { prefix: "/api/" }, route: { cluster: "c", prefix_rewrite: "/" } });
  const h = req("/api/users?id=1");
  assert(rewritePath(r, h));
  assertEquals(h.get(":path"), "/users?id=1");
  assertEquals(h.get("x-envoy-original-path"), "/api/users?id=1");
  const quiet = req("/api/x");
  rewritePath(r, quiet, { originalPath: false });
  assertEquals([quiet.get(":path"), quiet.has("x-envoy-original-path")], ["/x", false]);
  const ci = routeOf({
    match: { prefix: "/API", case_sensitive: false },
    route: { cluster: "c", prefix_rewrite: "/v2" },
  });
  const h2 = req("/api/x");
  rewritePath(ci, h2);
  assertEquals(h2.get(":path"), "/v2/x");
  const psp = routeOf({ match: { path_separated_prefix: "/foo" }, route: { cluster: "c", prefix_rewrite: "/bar" } });
  const h3 = req("/foo?x=1");
  rewritePath(psp, h3);
  assertEquals(h3.get(":path"), "/bar?x=1");
});

Deno.test("rewritePath with prefix_rewrite on path and regex routes replaces the whole matched path", () => {
  const p = routeOf({ match: { path: "/old" }, route: { cluster: "c", prefix_rewrite: "/new" } });
  const h = req("/old?q");
  rewritePath(p, h);
  assertEquals(h.get(":path"), "/new?q");
  const re = routeOf({ match: { safe_regex: { regex: "/v[0-9]/.*" } }, route: { cluster: "c", prefix_rewrite: "/x" } });
  const h2 = req("/v1/a/b?q=1");
  rewritePath(re, h2);
  assertEquals(h2.get(":path"), "/x?q=1");
});

Deno.test("rewritePath regex_rewrite substitutes groups, everywhere, and keeps the query", () => {
  const r = routeOf({
    match: { prefix: "/" },
    route: {
      cluster: "c",
      regex_rewrite: { pattern: { regex: "^/service/([^/]+)(/.*)$" }, substitution: "\\2/instance/\\1" },
    },
  });
  const h = req("/service/foo/v1/api?x=/service/a/b");
  rewritePath(r, h);
  assertEquals(h.get(":path"), "/v1/api/instance/foo?x=/service/a/b");
  const all = routeOf({
    match: { prefix: "/" },
    route: { cluster: "c", regex_rewrite: { pattern: { regex: "o" }, substitution: "0\\\\" } },
  });
  const h2 = req("/foo/boo");
  rewritePath(all, h2);
  assertEquals(h2.get(":path"), "/f0\\0\\/b0\\0\\");
  const empty = routeOf({
    match: { prefix: "/" },
    route: { cluster: "c", regex_rewrite: { pattern: { regex: ".*" }, substitution: "" } },
  });
  const h3 = req("/a?q");
  assertEquals(rewritePath(empty, h3), false);
  assertEquals(h3.get(":path"), "/a?q");
  const none = routeOf({ match: { prefix: "/" }, route: { cluster: "c" } });
  assertEquals(rewritePath(none, req("/a")), false);
});

Deno.test("rewriteHost: literal, header, auto, path regex, weighted cluster, x-forwarded-host", () => {
  const lit = actionOf({ cluster: "c", host_rewrite_literal: "up.internal", append_x_forwarded_host: true });
  const h = req("/", "front.com");
  assert(rewriteHost(lit, h));
  assertEquals([h.get(":authority"), h.get("x-forwarded-host")], ["up.internal", "front.com"]);
  const h1 = req("/", "front.com", { "x-forwarded-host": "edge.com" });
  rewriteHost(lit, h1);
  assertEquals(h1.get("x-forwarded-host"), "edge.com,front.com");

  const hdr = actionOf({ cluster: "c", host_rewrite_header: "X-Host" });
  const h2 = req("/", "front.com", { "x-host": "from-header" });
  rewriteHost(hdr, h2);
  assertEquals(h2.get(":authority"), "from-header");
  const h3 = req("/", "front.com");
  assertEquals(rewriteHost(hdr, h3), false);
  assertEquals(h3.get(":authority"), "front.com");

  const auto = actionOf({ cluster: "c", auto_host_rewrite: true });
  const h4 = req("/", "front.com");
  assertEquals(rewriteHost(auto, h4), false);
  rewriteHost(auto, h4, { upstreamHost: "backend.local" });
  assertEquals(h4.get(":authority"), "backend.local");
  assertEquals(h4.has("x-forwarded-host"), false);

  const re = actionOf({
    cluster: "c",
    host_rewrite_path_regex: { pattern: { regex: "^/([a-z]+)/.*$" }, substitution: "\\1.svc" },
  });
  const h5 = req("/users/1?x", "front.com");
  rewriteHost(re, h5);
  assertEquals(h5.get(":authority"), "users.svc");

  const w = actionOf({
    weighted_clusters: { clusters: [{ name: "a", weight: 1, host_rewrite_literal: "a.svc" }] },
    host_rewrite_literal: "route.svc",
  });
  const h6 = req("/", "front.com");
  rewriteHost(w, h6, { cluster: selectCluster(w, h6) });
  assertEquals(h6.get(":authority"), "route.svc", "the route-level literal overrides the cluster's, as in Envoy");
  const w2 = actionOf({ weighted_clusters: { clusters: [{ name: "a", weight: 1, host_rewrite_literal: "a.svc" }] } });
  const h7 = req("/", "front.com");
  rewriteHost(w2, h7, { cluster: selectCluster(w2, h7) });
  assertEquals(h7.get(":authority"), "a.svc");
});

function redirect(redirectAction: Record<string, unknown>, path: string, authority = "example.com", extra = {}) {
  const r = routeOf({ match: { prefix: "/old" }, redirect: redirectAction });
  return redirectLocation(r, req(path, authority, extra));
}

Deno.test("redirectLocation builds Envoy's redirect URLs", () => {
  const xfp = { "x-forwarded-proto": "http" };
  assertEquals(redirect({ https_redirect: true }, "/old/a?x=1", "example.com:80", xfp), {
    status: 301,
    location: "https://example.com/old/a?x=1",
  });
  assertEquals(
    redirect({ https_redirect: true }, "/old", "example.com:8080", xfp).location,
    "https://example.com:8080/old",
  );
  assertEquals(
    redirect({ scheme_redirect: "http" }, "/old", "example.com:443", { "x-forwarded-proto": "https" }).location,
    "http://example.com/old",
  );
  assertEquals(
    redirect({ port_redirect: 8443 }, "/old", "example.com:80", xfp).location,
    "http://example.com:8443/old",
  );
  assertEquals(
    redirect({ host_redirect: "new.com" }, "/old?q", "example.com:80", xfp).location,
    "http://new.com/old?q",
  );
  assertEquals(redirect({ path_redirect: "/new" }, "/old/x?q=1", "a.com", xfp).location, "http://a.com/new?q=1");
  assertEquals(
    redirect({ path_redirect: "/new?own=1" }, "/old/x?q=1", "a.com", xfp).location,
    "http://a.com/new?own=1",
  );
  assertEquals(
    redirect({ path_redirect: "/new", strip_query: true }, "/old?q=1", "a.com", xfp).location,
    "http://a.com/new",
  );
  assertEquals(redirect({ prefix_rewrite: "/new" }, "/old/x?q=1", "a.com", xfp).location, "http://a.com/new/x?q=1");
  assertEquals(
    redirect({ prefix_rewrite: "/new", strip_query: true }, "/old/x?q=1", "a.com", xfp).location,
    "http://a.com/new/x",
  );
  assertEquals(
    redirect(
      { regex_rewrite: { pattern: { regex: "^/old/(.*)$" }, substitution: "/v2/\\1" } },
      "/old/x?q",
      "a.com",
      xfp,
    )
      .location,
    "http://a.com/v2/x?q",
  );
  assertEquals(
    redirect({ https_redirect: true }, "/old", "[::1]:80", xfp).location,
    "https://[::1]/old",
  );
  assertEquals(redirect({ response_code: "SEE_OTHER" }, "/old", "a.com", xfp).status, 303);
  assertEquals(redirect({ response_code: "FOUND" }, "/old", "a.com", xfp).status, 302);
  assertEquals(redirect({ response_code: "TEMPORARY_REDIRECT" }, "/old", "a.com", xfp).status, 307);
  // Without x-forwarded-proto, the connection decides the request scheme.
  const r = routeOf({ match: { prefix: "/old" }, redirect: { host_redirect: "b.com" } });
  assertEquals(redirectLocation(r, req("/old"), { secure: true }).location, "https://b.com/old");
  assertEquals(redirectLocation(r, req("/old")).location, "http://b.com/old");
});

Deno.test("redirectLocation for require_tls keeps host and path unchanged", () => {
  const t = table([{ match: { prefix: "/" }, route: { cluster: "c" } }], { require_tls: "ALL" });
  const h = req("/a?b=1", "example.com:8080");
  const hit = t.route(h)!;
  assertEquals(redirectLocation(hit.route, h), { status: 301, location: "https://example.com:8080/a?b=1" });
  throws(() => redirectLocation(routeOf({ match: { prefix: "/" }, route: { cluster: "c" } }), h), TypeError);
});

Deno.test("directResponse returns the configured reply and nothing from the request", () => {
  const r = routeOf({ match: { prefix: "/" }, direct_response: { status: 403, body: { inline_string: "denied" } } });
  assert(r.action.kind === "direct_response");
  const d = directResponse(r.action);
  assertEquals([d.status, new TextDecoder().decode(d.body), d.contentType], [403, "denied", "text/plain"]);
});

Deno.test("finalTimeouts applies route values, trusted headers and the per-try rule", () => {
  const a = actionOf({
    cluster: "c",
    timeout: "10s",
    retry_policy: { retry_on: "5xx", per_try_timeout: "2s", per_try_idle_timeout: "0.3s" },
  });
  assertEquals(finalTimeouts(a, req("/")), { globalMs: 10000, perTryMs: 2000, perTryIdleMs: 300 });
  const hdrs = { "x-envoy-upstream-rq-timeout-ms": "500", "x-envoy-upstream-rq-per-try-timeout-ms": "100" };
  const untrusted = req("/", "a", hdrs);
  assertEquals(finalTimeouts(a, untrusted), { globalMs: 10000, perTryMs: 2000, perTryIdleMs: 300 });
  assertEquals(untrusted.has("x-envoy-upstream-rq-timeout-ms"), false, "consumed either way");
  assertEquals(finalTimeouts(a, req("/", "a", hdrs), { trusted: true }), {
    globalMs: 500,
    perTryMs: 100,
    perTryIdleMs: 300,
  });
  assertEquals(
    finalTimeouts(a, req("/", "a", { "x-envoy-upstream-rq-timeout-ms": "1000" }), { trusted: true }).perTryMs,
    0,
    "a per-try timeout not below the global one is dropped",
  );
  assertEquals(
    finalTimeouts(a, req("/", "a", { "x-envoy-upstream-rq-timeout-ms": "0" }), { trusted: true }),
    { globalMs: 0, perTryMs: 2000, perTryIdleMs: 300 },
  );
  assertEquals(finalTimeouts(actionOf({ cluster: "c" }), req("/")), { globalMs: 15000, perTryMs: 0, perTryIdleMs: 0 });
});

Deno.test("finalTimeouts: max_stream_duration replaces the route timeout (Envoy's new timeouts)", () => {
  const a = actionOf({ cluster: "c", timeout: "10s", max_stream_duration: { max_stream_duration: "2s" } });
  assertEquals(finalTimeouts(a, req("/")).globalMs, 0);
  assertEquals(finalTimeouts(actionOf({ cluster: "c", max_stream_duration: {} }), req("/")).globalMs, 0);
  const trusted = req("/", "a", { "x-envoy-upstream-rq-timeout-ms": "700" });
  assertEquals(finalTimeouts(a, trusted, { trusted: true }).globalMs, 700, "the trusted header still applies");
});

Deno.test("streamDurationMs: max_stream_duration, or grpc-timeout capped then offset; rewrites grpc-timeout", () => {
  const grpc = (t?: string) =>
    req("/s/M", "a", { "content-type": "application/grpc", ...(t ? { "grpc-timeout": t } : {}) });
  assertEquals(streamDurationMs(actionOf({ cluster: "c" }), req("/")), undefined);
  assertEquals(streamDurationMs(actionOf({ cluster: "c", max_stream_duration: {} }), req("/")), undefined);
  const plain = actionOf({ cluster: "c", max_stream_duration: { max_stream_duration: "1.5s" } });
  assertEquals(streamDurationMs(plain, req("/")), 1500);
  assertEquals(
    streamDurationMs(actionOf({ cluster: "c", max_stream_duration: { max_stream_duration: "0s" } }), req("/")),
    undefined,
  );
  const h = grpc("3S");
  assertEquals(streamDurationMs(plain, h), 1500, "grpc-timeout is ignored without grpc_timeout_header_max");
  assertEquals(h.get("grpc-timeout"), "1500m", "but rewritten to the stream's cap");

  const capped = actionOf({
    cluster: "c",
    max_stream_duration: {
      max_stream_duration: "9s",
      grpc_timeout_header_max: "5s",
      grpc_timeout_header_offset: "0.1s",
    },
  });
  assertEquals(streamDurationMs(capped, grpc("100m")), 0, "an offset not below the timeout leaves 0 (expires now)");
  assertEquals(streamDurationMs(capped, grpc("1S")), 900);
  const long = grpc("1M");
  assertEquals(streamDurationMs(capped, long), 4900, "capped at the max, then the offset");
  assertEquals(long.get("grpc-timeout"), "4900m");
  assertEquals(streamDurationMs(capped, grpc()), 9000, "no header: max_stream_duration");
  assertEquals(streamDurationMs(capped, grpc("bogus")), 9000);
  const uncapped = actionOf({ cluster: "c", max_stream_duration: { grpc_timeout_header_max: "0s" } });
  assertEquals(streamDurationMs(uncapped, grpc("2H")), 7_200_000);
  assertEquals(streamDurationMs(uncapped, grpc()), undefined);
  const notGrpc = req("/", "a", { "grpc-timeout": "2S" });
  assertEquals(streamDurationMs(uncapped, notGrpc), 2000, "the header counts, as in Envoy; only gRPC gets it back");
  assertEquals(notGrpc.get("grpc-timeout"), "2S");

  assertEquals(parseGrpcTimeout("10u"), 1);
  assertEquals(parseGrpcTimeout("2H"), 7_200_000);
  assertEquals(parseGrpcTimeout("x"), undefined);
  assertEquals(formatGrpcTimeout(99_999_999), "99999999m");
  assertEquals(formatGrpcTimeout(100_000_000), "100000S");
  assertEquals(formatGrpcTimeout(100_000_000_000), "1666666M");
  assertEquals(formatGrpcTimeout(1e18), "99999999H");
});

Deno.test("upgradeAllowed reports the route's upgrade_configs", () => {
  const a = actionOf({ cluster: "c", upgrade_configs: [{ upgrade_type: "websocket", enabled: false }] });
  assertEquals(upgradeAllowed(a, "WebSocket"), false);
  assertEquals(upgradeAllowed(actionOf({ cluster: "c" }), "websocket"), undefined);
});
