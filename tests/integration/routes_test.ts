/**
 * Route features end to end with curl: virtual hosts, matchers, actions and header mutations.
 */
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { catchAllRoute, curl, hcmBootstrap, itOpts, startFerry, startUpstream, staticCluster } from "./_harness.ts";
import type { TestFerry, TestUpstream } from "./_harness.ts";

async function withRoutes(
  routes: string,
  fn: (f: TestFerry, a: TestUpstream, b: TestUpstream) => Promise<void>,
  hcmExtra?: string,
): Promise<void> {
  const echo = (name: string) => (req: { method: string; url: URL; headers: Headers }) =>
    new Response(`${name} ${req.method} ${req.url.pathname}${req.url.search}`, {
      headers: { "x-upstream": name, "x-host-seen": req.headers.get("host") ?? "" },
    });
  const a = await startUpstream(echo("a"));
  const b = await startUpstream(echo("b"));
  const f = await startFerry(hcmBootstrap({
    routes,
    clusters: [staticCluster("a", [a.port]), staticCluster("b", [b.port])].join("\n"),
    ...(hcmExtra ? { hcmExtra } : {}),
  }));
  try {
    await fn(f, a, b);
  } finally {
    await f.stop();
    await a.close();
    await b.close();
  }
}

const get = (f: TestFerry, path: string, ...args: string[]) => curl(f.url(path), args);

/** An upstream answering with the request headers it got, as a JSON object. */
const startHeaderEcho = () => startUpstream((req) => new Response(JSON.stringify(Object.fromEntries(req.headers))));
/** The headers the upstream saw for a GET of `path` with curl `args`. */
const seenHeaders = async (f: TestFerry, path: string, ...args: string[]) =>
  JSON.parse((await get(f, path, ...args)).body) as Record<string, string | undefined>;

Deno.test(
  "routes: virtual hosts by exact, suffix wildcard, prefix wildcard and catch-all domains",
  itOpts,
  async () => {
    await withRoutes(
      `
- name: exact
  domains: ["api.example.com", "api.example.com:8443"]
  routes: [{ match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: exact } } }]
- name: suffix
  domains: ["*.example.com"]
  routes: [{ match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: suffix } } }]
- name: prefix
  domains: ["foo.*"]
  routes: [{ match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: prefix } } }]
- name: any
  domains: ["*"]
  routes: [{ match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: any } } }]`,
      async (f) => {
        assertEquals((await get(f, "/", "-H", "Host: api.example.com")).body, "exact");
        assertEquals((await get(f, "/", "-H", "Host: API.Example.com:8443")).body, "exact");
        assertEquals((await get(f, "/", "-H", "Host: api.example.com:9999")).body, "exact");
        assertEquals((await get(f, "/", "-H", "Host: www.example.com")).body, "suffix");
        assertEquals((await get(f, "/", "-H", "Host: foo.bar")).body, "prefix");
        assertEquals((await get(f, "/", "-H", "Host: other")).body, "any");
      },
    );
  },
);

Deno.test(
  "routes: prefix, path, regex, path_separated_prefix, case_sensitive, headers and query matchers",
  itOpts,
  async () => {
    await withRoutes(
      `
- name: all
  domains: ["*"]
  routes:
  - match: { path: "/exact" }
    direct_response: { status: 200, body: { inline_string: path } }
  - match: { safe_regex: { regex: "/re/[0-9]+" } }
    direct_response: { status: 200, body: { inline_string: regex } }
  - match: { path_separated_prefix: "/sep" }
    direct_response: { status: 200, body: { inline_string: sep } }
  - match: { prefix: "/CASE", case_sensitive: false }
    direct_response: { status: 200, body: { inline_string: case } }
  - match:
      prefix: "/h"
      headers:
      - { name: x-env, string_match: { exact: prod } }
      - { name: x-debug, present_match: true, invert_match: true }
    direct_response: { status: 200, body: { inline_string: header } }
  - match:
      prefix: "/q"
      query_parameters: [{ name: v, string_match: { prefix: "2" } }]
    direct_response: { status: 200, body: { inline_string: query } }
  - match: { prefix: "/" }
    direct_response: { status: 200, body: { inline_string: fallback } }`,
      async (f) => {
        assertEquals((await get(f, "/exact")).body, "path");
        assertEquals((await get(f, "/exact?x=1")).body, "path");
        assertEquals((await get(f, "/exact/more")).body, "fallback");
        assertEquals((await get(f, "/re/123")).body, "regex");
        assertEquals((await get(f, "/re/12a")).body, "fallback");
        assertEquals((await get(f, "/sep")).body, "sep");
        assertEquals((await get(f, "/sep/x")).body, "sep");
        assertEquals((await get(f, "/separate")).body, "fallback");
        assertEquals((await get(f, "/case/x")).body, "case");
        assertEquals((await get(f, "/h", "-H", "x-env: prod")).body, "header");
        assertEquals((await get(f, "/h", "-H", "x-env: prod", "-H", "x-debug: 1")).body, "fallback");
        assertEquals((await get(f, "/h", "-H", "x-env: dev")).body, "fallback");
        assertEquals((await get(f, "/q?v=2.1")).body, "query");
        assertEquals((await get(f, "/q?v=1")).body, "fallback");
      },
    );
  },
);

Deno.test(
  "routes: cluster, weighted_clusters, cluster_header and rewrites reach the right upstream",
  itOpts,
  async () => {
    await withRoutes(
      `
- name: all
  domains: ["*"]
  routes:
  - match: { prefix: "/w" }
    route:
      weighted_clusters:
        clusters: [{ name: a, weight: 50 }, { name: b, weight: 50 }]
  - match: { prefix: "/ch" }
    route: { cluster_header: x-cluster }
  - match: { prefix: "/old/" }
    route: { cluster: a, prefix_rewrite: "/new/" }
  - match: { prefix: "/rx/" }
    route:
      cluster: b
      regex_rewrite: { pattern: { regex: "^/rx/([a-z]+)/(\\\\d+)$" }, substitution: "/\\\\2/\\\\1" }
  - match: { prefix: "/lit" }
    route: { cluster: a, host_rewrite_literal: rewritten.example }
  - match: { prefix: "/" }
    route: { cluster: a }`,
      async (f) => {
        const seen = new Set<string>();
        for (let i = 0; i < 30; i++) seen.add((await get(f, "/w")).headers["x-upstream"]!);
        assertEquals([...seen].sort(), ["a", "b"]);
        assertEquals((await get(f, "/ch", "-H", "x-cluster: b")).headers["x-upstream"], "b");
        assertEquals((await get(f, "/ch", "-H", "x-cluster: nope")).status, 503);
        assertEquals((await get(f, "/old/thing?k=v")).body, "a GET /new/thing?k=v");
        assertEquals((await get(f, "/rx/abc/42")).body, "b GET /42/abc");
        assertEquals((await get(f, "/lit")).headers["x-host-seen"], "rewritten.example");
        const plain = await get(f, "/plain", "-H", "Host: keep.example");
        assertEquals(plain.headers["x-host-seen"], "keep.example");
      },
    );
  },
);

Deno.test("routes: direct_response, redirect and header mutations at three levels", itOpts, async () => {
  const routes = `
- name: all
  domains: ["*"]
  request_headers_to_add: [{ header: { key: x-vh, value: vhost } }]
  response_headers_to_add: [{ header: { key: x-vh-resp, value: v } }]
  routes:
  - match: { prefix: "/direct" }
    direct_response: { status: 418, body: { inline_string: "short and stout" } }
  - match: { prefix: "/go" }
    redirect: { host_redirect: new.example, path_redirect: "/there", response_code: TEMPORARY_REDIRECT }
  - match: { prefix: "/https" }
    redirect: { https_redirect: true }
  - match: { prefix: "/strip" }
    redirect: { prefix_rewrite: "/kept", strip_query: true }
  - match: { prefix: "/" }
    route: { cluster: a }
    request_headers_to_add:
    - { header: { key: x-route, value: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%" } }
    request_headers_to_remove: [x-secret]
    response_headers_to_add: [{ header: { key: x-route-resp, value: r } }]
    response_headers_to_remove: [x-upstream]`;
  const echoHeaders = await startUpstream((req) =>
    new Response(JSON.stringify(Object.fromEntries(req.headers)), { headers: { "x-upstream": "a" } })
  );
  const f = await startFerry(hcmBootstrap({
    routes,
    clusters: staticCluster("a", [echoHeaders.port]),
    hcmExtra: `use_remote_address: true`,
  }));
  try {
    const d = await get(f, "/direct", "-H", "X-Echo-Me: secret-value");
    assertEquals(d.status, 418);
    assertEquals(d.body, "short and stout");
    assert(!JSON.stringify(d.headers).includes("secret-value"), "direct_response echoed a request header");
    const g = await get(f, "/go?a=1");
    assertEquals(g.status, 307);
    assertEquals(g.headers["location"], "http://new.example/there?a=1");
    const h = await get(f, "/https/x", "-H", "Host: site.example");
    assertEquals(h.status, 301);
    assertEquals(h.headers["location"], "https://site.example/https/x");
    const s = await get(f, "/strip/y?q=1", "-H", "Host: site.example");
    assertEquals(s.headers["location"], "http://site.example/kept/y");
    const p = await get(f, "/proxied", "-H", "X-Secret: 1");
    const seen = JSON.parse(p.body) as Record<string, string>;
    assertEquals(seen["x-vh"], "vhost");
    assertEquals(seen["x-route"], "127.0.0.1");
    assertEquals(seen["x-secret"], undefined);
    assertEquals(p.headers["x-vh-resp"], "v");
    assertEquals(p.headers["x-route-resp"], "r");
    assertEquals(p.headers["x-upstream"], undefined);
    assertMatch(p.headers["x-envoy-upstream-service-time"] ?? "", /^\d+$/);
  } finally {
    await f.stop();
    await echoHeaders.close();
  }
});

Deno.test("routes: auto_host_rewrite sends the DNS cluster's host name upstream", itOpts, async () => {
  const up = await startUpstream((req) => new Response(req.headers.get("host") ?? ""));
  const f = await startFerry(hcmBootstrap({
    routes: `- name: all
  domains: ["*"]
  routes:
  - match: { prefix: "/auto" }
    route: { cluster: dns, auto_host_rewrite: true }
  - match: { prefix: "/" }
    route: { cluster: dns }`,
    clusters: `- name: dns
  type: STRICT_DNS
  dns_lookup_family: V4_ONLY
  connect_timeout: 1s
  load_assignment:
    cluster_name: dns
    endpoints:
    - lb_endpoints:
      - endpoint: { address: { socket_address: { address: localhost, port_value: ${up.port} } } }`,
  }));
  try {
    assertEquals((await get(f, "/auto", "-H", "Host: original.example")).body, "localhost");
    assertEquals((await get(f, "/plain", "-H", "Host: original.example")).body, "original.example");
  } finally {
    await f.stop();
    await up.close();
  }
});

Deno.test(
  "routes: internal_address_config makes loopback clients internal: x-envoy-internal set, internal_only_headers kept",
  itOpts,
  async () => {
    const echo = await startHeaderEcho();
    const f = await startFerry(hcmBootstrap({
      routes: catchAllRoute("{ cluster: a }"),
      clusters: staticCluster("a", [echo.port]),
      hcmExtra:
        "use_remote_address: true\ninternal_address_config:\n  cidr_ranges: [{ address_prefix: 127.0.0.0, prefix_len: 8 }]",
      routeConfigExtra: "internal_only_headers: [x-debug]",
    }));
    try {
      // From 127.0.0.1 without x-forwarded-for: internal.
      const seen = await seenHeaders(f, "/p", "-H", "x-debug: 1");
      assertEquals(seen["x-envoy-internal"], "true");
      assertEquals(seen["x-debug"], "1");
      // With x-forwarded-for under use_remote_address the client address is not trusted as internal.
      const ext = await seenHeaders(f, "/p", "-H", "x-forwarded-for: 127.0.0.2", "-H", "x-debug: 1");
      assertEquals(ext["x-envoy-internal"], undefined);
      assertEquals(ext["x-debug"], undefined);
    } finally {
      await f.stop();
      await echo.close();
    }
  },
);

Deno.test(
  "routes: internal_only_headers are removed from external requests; a client cannot claim x-envoy-internal",
  itOpts,
  async () => {
    const echo = await startHeaderEcho();
    const routes = `
- name: tls
  domains: ["tls.example"]
  require_tls: EXTERNAL_ONLY
  routes: [{ match: { prefix: "/" }, route: { cluster: a } }]
- name: all
  domains: ["*"]
  routes: [{ match: { prefix: "/" }, route: { cluster: a } }]`;
    for (const useRemoteAddress of [false, true]) {
      const f = await startFerry(hcmBootstrap({
        routes,
        clusters: staticCluster("a", [echo.port]),
        hcmExtra: `use_remote_address: ${useRemoteAddress}`,
        routeConfigExtra: "internal_only_headers: [X-Internal-Token, x-debug]",
      }));
      try {
        // A client claiming to be internal, from a private address (no address is internal by default).
        const claims = ["-H", "x-forwarded-for: 10.0.0.7", "-H", "x-envoy-internal: true"];
        const r = await get(f, "/p", ...claims, "-H", "X-Internal-Token: t0p", "-H", "x-debug: 1", "-H", "x-pub: k");
        assertEquals(r.status, 200);
        const seen = JSON.parse(r.body) as Record<string, string>;
        const what = `use_remote_address: ${useRemoteAddress}`;
        assertEquals(seen["x-internal-token"], undefined, what);
        assertEquals(seen["x-debug"], undefined, what);
        assertEquals(seen["x-envoy-internal"], undefined, what);
        assertEquals(seen["x-pub"], "k", what);
        // The claim no longer skips require_tls: EXTERNAL_ONLY (it did when use_remote_address was false).
        const tls = await get(f, "/p", ...claims, "-H", "Host: tls.example");
        assertEquals(tls.status, 301, what);
        assertEquals(tls.headers["location"], "https://tls.example/p");
      } finally {
        await f.stop();
      }
    }
    await echo.close();
  },
);
