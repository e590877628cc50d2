/**
 * The HTTP filters of issue 15 (F2 part) end to end through a running Ferry, with curl over HTTP/1.1 and HTTP/2:
 * local_ratelimit, cors, header_mutation, buffer, health_check, and the layered runtime read by the fault filter.
 */
import { assert, assertEquals } from "../assert.ts";
import { curl, hcmBootstrap, itOpts, startFerry, startUpstream, stat, staticCluster } from "./_harness.ts";
import type { TestFerry, TestUpstream } from "./_harness.ts";

const T = "type.googleapis.com/envoy.extensions.filters.http";
const LRL = `${T}.local_ratelimit.v3.LocalRateLimit`;
const H2 = ["--http2-prior-knowledge"];

/** Ferry (codec AUTO) with `/a` and `/b` → upstream "a"; `routes` are extra route entries placed first. */
async function withFilters(
  opts: { filters: string; routes?: string; vhostExtra?: string; bootstrapExtra?: string; clusters?: string },
  body: (f: TestFerry, up: TestUpstream) => Promise<void>,
): Promise<void> {
  const up = await startUpstream();
  const f = await startFerry(
    hcmBootstrap({
      hcmExtra: "codec_type: AUTO",
      routes: `- name: all
  domains: ["*"]
${opts.vhostExtra ?? ""}
  routes:
${opts.routes ?? ""}
  - match: { prefix: "/" }
    route: { cluster: a }`,
      clusters: `${staticCluster("a", [up.port])}\n${opts.clusters ?? ""}`,
      httpFilters: opts.filters,
    }) + (opts.bootstrapExtra ?? ""),
  );
  try {
    await body(f, up);
  } finally {
    await f.stop();
    await up.close();
  }
}

const bucket = (max: number) =>
  `token_bucket: { max_tokens: ${max}, tokens_per_fill: ${max}, fill_interval: 3600s }, ` +
  `filter_enabled: { default_value: { numerator: 100 } }, filter_enforced: { default_value: { numerator: 100 } }`;

Deno.test(
  "local_ratelimit answers 429 when the bucket is empty, with x-ratelimit headers and stats",
  itOpts,
  async () => {
    await withFilters({
      filters: `- name: envoy.filters.http.local_ratelimit
  typed_config: { "@type": ${LRL}, stat_prefix: lrl, ${bucket(2)}, enable_x_ratelimit_headers: DRAFT_VERSION_03,
    response_headers_to_add: [{ header: { key: x-limited, value: "yes" } }] }`,
    }, async (f, up) => {
      const r1 = await curl(f.url("/x"));
      assertEquals(r1.status, 200);
      assertEquals(r1.headers["x-ratelimit-limit"], "2");
      assertEquals(r1.headers["x-ratelimit-remaining"], "1");
      assert(Number(r1.headers["x-ratelimit-reset"]) > 0);
      assertEquals(r1.headers["x-limited"], undefined);
      const r2 = await curl(f.url("/x"), H2);
      assertEquals(r2.status, 200);
      assertEquals(r2.headers["x-ratelimit-remaining"], "0");
      const r3 = await curl(f.url("/x"), H2);
      assertEquals(r3.status, 429);
      assertEquals(r3.body, "local_rate_limited");
      assertEquals(r3.headers["x-limited"], "yes");
      assertEquals(r3.headers["x-ratelimit-remaining"], "0");
      const r4 = await curl(f.url("/x"));
      assertEquals(r4.status, 429);
      assertEquals(up.requests.length, 2);
      assertEquals(await stat(f, "http.test.lrl.http_local_rate_limit.enabled"), 4);
      assertEquals(await stat(f, "http.test.lrl.http_local_rate_limit.ok"), 2);
      assertEquals(await stat(f, "http.test.lrl.http_local_rate_limit.rate_limited"), 2);
      assertEquals(await stat(f, "http.test.lrl.http_local_rate_limit.enforced"), 2);
    });
  },
);

Deno.test(
  "local_ratelimit per-route bucket via typed_per_filter_config; not enforced passes with headers",
  itOpts,
  async () => {
    await withFilters({
      // The filter itself has no bucket: only the route with a per-route config is limited.
      filters: `- name: envoy.filters.http.local_ratelimit
  typed_config: { "@type": ${LRL}, stat_prefix: lrl }`,
      routes: `  - match: { prefix: "/limited" }
    route: { cluster: a }
    typed_per_filter_config:
      envoy.filters.http.local_ratelimit: { "@type": ${LRL}, stat_prefix: r, ${bucket(1)}, status: { code: 503 } }
  - match: { prefix: "/shadow" }
    route: { cluster: a }
    typed_per_filter_config:
      envoy.filters.http.local_ratelimit:
        "@type": ${LRL}
        stat_prefix: r
        token_bucket: { max_tokens: 1, fill_interval: 3600s }
        filter_enabled: { default_value: { numerator: 100 } }
        request_headers_to_add_when_not_enforced: [{ header: { key: x-would-limit, value: "1" } }]`,
    }, async (f, up) => {
      assertEquals((await curl(f.url("/limited"))).status, 200);
      const r = await curl(f.url("/limited"));
      assertEquals(r.status, 503);
      assertEquals(r.body, "local_rate_limited");
      for (let i = 0; i < 3; i++) assertEquals((await curl(f.url("/other"))).status, 200);
      assertEquals((await curl(f.url("/shadow"))).status, 200);
      assertEquals((await curl(f.url("/shadow"))).status, 200);
      const seen = up.requests.filter((q) => q.url.pathname === "/shadow");
      assertEquals(seen.map((q) => q.headers.get("x-would-limit")), [null, "1"]);
      assertEquals(await stat(f, "http.test.lrl.http_local_rate_limit.enforced"), 1);
      assertEquals(await stat(f, "http.test.lrl.http_local_rate_limit.rate_limited"), 2);
    });
  },
);

Deno.test("local_ratelimit rejects descriptors and a bad token bucket with the field path", async () => {
  const { parseBootstrap } = await import("../../lib/config/bootstrap.ts");
  const { createRegistries } = await import("../../lib/server/registries.ts");
  const { parse } = await import("yaml");
  const boot = (lrl: string) =>
    parse(hcmBootstrap({
      routes: `- name: v\n  domains: ["*"]\n  routes: [{ match: { prefix: "/" }, direct_response: { status: 200 } }]`,
      httpFilters: `- name: envoy.filters.http.local_ratelimit\n  typed_config: { "@type": ${LRL}, ${lrl} }`,
    }));
  const err = (lrl: string) => {
    try {
      parseBootstrap(boot(lrl), createRegistries());
      return "";
    } catch (e) {
      return (e as Error).message;
    }
  };
  assert(err(`stat_prefix: x, token_bucket: { max_tokens: 0, fill_interval: 1s }`).includes("token_bucket.max_tokens"));
  assert(err(`stat_prefix: x, descriptors: [{ entries: [{ key: a, value: b }] }]`).includes(".descriptors"));
  assert(err(`token_bucket: { max_tokens: 1, fill_interval: 1s }`).includes("stat_prefix"));
  assertEquals(err(`stat_prefix: x, token_bucket: { max_tokens: 1, fill_interval: 1s }`), "");
});

const CORS_FILTER = `- name: envoy.filters.http.cors
  typed_config: { "@type": ${T}.cors.v3.Cors }`;
const CORS_VHOST = `  typed_per_filter_config:
    envoy.filters.http.cors:
      "@type": ${T}.cors.v3.CorsPolicy
      allow_origin_string_match: [{ exact: "https://good.example" }, { suffix: ".trusted.example" }]
      allow_methods: "GET, PUT"
      allow_headers: "x-custom"
      expose_headers: "x-exposed"
      max_age: "600"
      allow_credentials: true`;

Deno.test("cors answers an allowed preflight locally and decorates actual requests", itOpts, async () => {
  await withFilters({ filters: CORS_FILTER, vhostExtra: CORS_VHOST }, async (f, up) => {
    const pre = await curl(f.url("/r"), [
      "-X",
      "OPTIONS",
      "-H",
      "origin: https://good.example",
      "-H",
      "access-control-request-method: PUT",
    ]);
    assertEquals(pre.status, 200);
    assertEquals(pre.headers["access-control-allow-origin"], "https://good.example");
    assertEquals(pre.headers["access-control-allow-methods"], "GET, PUT");
    assertEquals(pre.headers["access-control-allow-headers"], "x-custom");
    assertEquals(pre.headers["access-control-max-age"], "600");
    assertEquals(pre.headers["access-control-allow-credentials"], "true");
    assertEquals(up.requests.length, 0);
    const act = await curl(f.url("/r"), [...H2, "-H", "origin: https://a.trusted.example"]);
    assertEquals(act.status, 200);
    assertEquals(act.headers["access-control-allow-origin"], "https://a.trusted.example");
    assertEquals(act.headers["access-control-expose-headers"], "x-exposed");
    const bad = await curl(f.url("/r"), ["-H", "origin: https://evil.example"]);
    assertEquals(bad.status, 200);
    assertEquals(bad.headers["access-control-allow-origin"], undefined);
    // A preflight from a disallowed origin is forwarded (forward_not_matching_preflights defaults to true).
    const badPre = await curl(f.url("/r"), [
      "-X",
      "OPTIONS",
      "-H",
      "origin: https://evil.example",
      "-H",
      "access-control-request-method: PUT",
    ]);
    assertEquals(badPre.headers["access-control-allow-origin"], undefined);
    assertEquals(up.requests.map((q) => q.method), ["GET", "GET", "OPTIONS"]);
    assertEquals(await stat(f, "http.test.cors.origin_valid"), 2);
    assertEquals(await stat(f, "http.test.cors.origin_invalid"), 2);
  });
});

Deno.test("cors per-route policy overrides the virtual host's; no origin header means no CORS", itOpts, async () => {
  await withFilters({
    filters: CORS_FILTER,
    vhostExtra: CORS_VHOST,
    routes: `  - match: { prefix: "/open" }
    route: { cluster: a }
    typed_per_filter_config:
      envoy.filters.http.cors: { "@type": ${T}.cors.v3.CorsPolicy, allow_origin_string_match: [{ safe_regex: { regex: ".*" } }] }`,
  }, async (f) => {
    const r = await curl(f.url("/open"), ["-H", "origin: https://evil.example"]);
    assertEquals(r.headers["access-control-allow-origin"], "https://evil.example");
    assertEquals(r.headers["access-control-allow-credentials"], undefined);
    const n = await curl(f.url("/r"));
    assertEquals(n.headers["access-control-allow-origin"], undefined);
  });
});

const HM = `${T}.header_mutation.v3.HeaderMutation`;

Deno.test(
  "header_mutation changes request and response headers, in order, with per-route additions",
  itOpts,
  async () => {
    await withFilters({
      filters: `- name: envoy.filters.http.header_mutation
  typed_config:
    "@type": ${HM}
    mutations:
      request_mutations:
      - remove: x-drop
      - append: { header: { key: x-added, value: "filter" }, append_action: OVERWRITE_IF_EXISTS_OR_ADD }
      - append: { header: { key: x-client, value: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%" } }
      - remove_on_match: { key_matcher: { prefix: x-secret- } }
      response_mutations:
      - append: { header: { key: x-resp, value: "filter" } }
      - remove: x-upstream-only`,
      routes: `  - match: { prefix: "/route" }
    route: { cluster: a }
    typed_per_filter_config:
      envoy.filters.http.header_mutation:
        "@type": ${T}.header_mutation.v3.HeaderMutationPerRoute
        mutations:
          request_mutations: [{ append: { header: { key: x-added, value: "route" }, append_action: OVERWRITE_IF_EXISTS_OR_ADD } }]
          response_mutations: [{ append: { header: { key: x-route, value: "yes" } } }]`,
    }, async (f, up) => {
      const r = await curl(f.url("/plain"), [
        ...H2,
        "-H",
        "x-drop: 1",
        "-H",
        "x-secret-a: 1",
        "-H",
        "x-secret-b: 2",
        "-H",
        "x-keep: 3",
      ]);
      assertEquals(r.status, 200);
      assertEquals(r.headers["x-resp"], "filter");
      const q = up.requests[0]!;
      assertEquals(q.headers.get("x-drop"), null);
      assertEquals(q.headers.get("x-secret-a"), null);
      assertEquals(q.headers.get("x-secret-b"), null);
      assertEquals(q.headers.get("x-keep"), "3");
      assertEquals(q.headers.get("x-added"), "filter");
      assertEquals(q.headers.get("x-client"), "127.0.0.1");
      // Per route: the route's mutations run first, then the filter's (the less specific wins by default).
      const rr = await curl(f.url("/route"));
      assertEquals(rr.headers["x-route"], "yes");
      assertEquals(rr.headers["x-resp"], "filter");
      assertEquals(up.requests[1]!.headers.get("x-added"), "filter");
    });
  },
);

const BUF = `${T}.buffer.v3.Buffer`;

Deno.test(
  "buffer rejects a body over max_request_bytes with 413 and forwards a smaller one whole",
  itOpts,
  async () => {
    await withFilters({
      filters: `- name: envoy.filters.http.buffer
  typed_config: { "@type": ${BUF}, max_request_bytes: 1024 }`,
      routes: `  - match: { prefix: "/big" }
    route: { cluster: a }
    typed_per_filter_config:
      envoy.filters.http.buffer: { "@type": ${T}.buffer.v3.BufferPerRoute, disabled: true }`,
    }, async (f, up) => {
      const small = "s".repeat(1000);
      const ok = await curl(f.url("/up"), ["-H", "transfer-encoding: chunked", "--data-binary", small]);
      assertEquals(ok.status, 200);
      assertEquals(up.requests[0]!.body, small);
      assertEquals(up.requests[0]!.headers.get("content-length"), "1000");
      const big = "b".repeat(5000);
      const tooBig = await curl(f.url("/up"), ["--data-binary", big]);
      assertEquals(tooBig.status, 413, `HTTP/1.1: ${tooBig.stderr}`);
      assertEquals(tooBig.body, "Payload Too Large");
      // HTTP/2 through nghttp: curl 7.88 fails an upload with error 92 when the server answers early and resets the
      // rest of the body with RST_STREAM(NO_ERROR) (RFC 9113 §8.1 allows it; Envoy does the same), which a loaded
      // machine made happen in CI.
      const bodyFile = await Deno.makeTempFile();
      try {
        await Deno.writeTextFile(bodyFile, big);
        const h2 = await new Deno.Command("nghttp", { args: ["-v", "-d", bodyFile, f.url("/up")] }).output();
        const out = new TextDecoder().decode(h2.stdout);
        assert(/:status: 413\b/.test(out), `HTTP/2 413 expected: ${out.slice(0, 2000)}`);
        assert(out.includes("Payload Too Large"), out.slice(0, 2000));
      } finally {
        await Deno.remove(bodyFile);
      }
      const off = await curl(f.url("/big"), ["--data-binary", big]);
      assertEquals(off.status, 200);
      assertEquals(up.requests.length, 2);
      assertEquals(up.requests[1]!.body, big);
      assertEquals(await stat(f, "http.test.buffer.rq_too_large"), 2);
    });
  },
);

const HC = `${T}.health_check.v3.HealthCheck`;

Deno.test("health_check answers locally from the admin's healthcheck state and cluster health", itOpts, async () => {
  await withFilters({
    filters: `- name: envoy.filters.http.health_check
  typed_config:
    "@type": ${HC}
    pass_through_mode: false
    headers: [{ name: ":path", string_match: { exact: "/healthz" } }]
- name: envoy.filters.http.health_check
  typed_config:
    "@type": ${HC}
    pass_through_mode: false
    headers: [{ name: ":path", string_match: { exact: "/deep" } }]
    cluster_min_healthy_percentages: { a: { value: 50 }, empty: { value: 100 } }
- name: envoy.filters.http.health_check
  typed_config:
    "@type": ${HC}
    pass_through_mode: true
    headers: [{ name: ":path", string_match: { exact: "/through" } }]`,
    clusters:
      `- name: empty\n  type: STATIC\n  connect_timeout: 1s\n  load_assignment: { cluster_name: empty, endpoints: [] }`,
  }, async (f, up) => {
    assertEquals((await curl(f.url("/healthz"))).status, 200);
    assertEquals((await curl(f.url("/healthz"), H2)).status, 200);
    assertEquals((await curl(f.url("/deep"))).status, 503);
    assertEquals((await curl(f.url("/through"))).status, 200);
    assertEquals(up.requests.map((q) => q.url.pathname), ["/through"]);
    assertEquals((await fetch(`${f.adminUrl}/healthcheck/fail`, { method: "POST" })).status, 200);
    const failed = await curl(f.url("/healthz"));
    assertEquals(failed.status, 503);
    assertEquals(failed.headers["x-envoy-immediate-health-check-fail"], "true");
    assertEquals((await curl(f.url("/through"))).status, 503);
    assertEquals((await curl(f.url("/other"))).status, 200);
    await (await fetch(`${f.adminUrl}/healthcheck/ok`, { method: "POST" })).text();
    assertEquals((await curl(f.url("/healthz"))).status, 200);
    assertEquals((await curl(f.url("/through"))).status, 200);
  });
});

const FAULT = `${T}.fault.v3.HTTPFault`;

Deno.test(
  "layered_runtime: the fault filter reads its percentages and status from static and admin layers",
  itOpts,
  async () => {
    await withFilters({
      filters: `- name: envoy.filters.http.fault
  typed_config: { "@type": ${FAULT}, abort: { http_status: 503, percentage: { numerator: 0 } } }`,
      bootstrapExtra: `
layered_runtime:
  layers:
  - name: static
    static_layer: { fault: { http: { abort: { abort_percent: 100, http_status: 418 } } } }
  - name: admin
    admin_layer: {}
`,
    }, async (f, up) => {
      const r = await curl(f.url("/x"));
      assertEquals(r.status, 418);
      assertEquals(r.body, "fault filter abort");
      const set = await fetch(`${f.adminUrl}/runtime_modify?fault.http.abort.abort_percent=0`, { method: "POST" });
      assertEquals(await set.text(), "OK\n");
      assertEquals((await curl(f.url("/x"))).status, 200);
      const rt = await (await fetch(`${f.adminUrl}/runtime`)).json();
      assertEquals(rt.layers, ["static", "admin"]);
      assertEquals(rt.entries["fault.http.abort.abort_percent"].final_value, "0");
      assertEquals(rt.entries["fault.http.abort.abort_percent"].layer_values, ["100", "0"]);
      // An empty value removes the admin override: the static layer's 100% is back.
      await (await fetch(`${f.adminUrl}/runtime_modify?fault.http.abort.abort_percent=`, { method: "POST" })).text();
      assertEquals((await curl(f.url("/x"), H2)).status, 418);
      assertEquals(up.requests.length, 1);
    });
  },
);

Deno.test(
  "layered_runtime without an admin layer refuses runtime_modify; bad layers fail with the path",
  itOpts,
  async () => {
    await withFilters({
      filters: "",
      bootstrapExtra: `
layered_runtime:
  layers: [{ name: s, static_layer: { a: { b: 1 } } }]
`,
    }, async (f) => {
      const r = await fetch(`${f.adminUrl}/runtime_modify?x=1`, { method: "POST" });
      assertEquals(r.status, 503);
      await r.text();
    });
    const { parseLayeredRuntime } = await import("../../lib/runtime/mod.ts");
    const err = (raw: unknown) => {
      try {
        parseLayeredRuntime(raw, "layered_runtime");
        return "";
      } catch (e) {
        return (e as Error).message;
      }
    };
    assert(
      err({ layers: [{ name: "d", disk_layer: { symlink_root: "/x" } }] }).includes(
        "layered_runtime.layers[0].disk_layer",
      ),
    );
    assert(
      err({ layers: [{ name: "a", admin_layer: {} }, { name: "a", admin_layer: {} }] }).includes("layers[1].name"),
    );
    assert(err({ layers: [{ static_layer: {} }] }).includes("layers[0].name"));
  },
);

Deno.test(
  "with --concurrency, /healthcheck/fail and /runtime_modify reach the worker threads' filters",
  itOpts,
  async () => {
    const { freePort } = await import("../fakes/ports.ts");
    const { spawnFerry } = await import("./_harness.ts");
    const up = await startUpstream();
    const port = freePort();
    const adminPort = freePort();
    const dir = await Deno.makeTempDir({ prefix: "ferry_filters_" });
    const file = `${dir}/ferry.yaml`;
    await Deno.writeTextFile(
      file,
      hcmBootstrap({
        port,
        adminPort,
        routes: `- name: all\n  domains: ["*"]\n  routes: [{ match: { prefix: "/" }, route: { cluster: a } }]`,
        clusters: staticCluster("a", [up.port]),
        httpFilters: `- name: envoy.filters.http.health_check
  typed_config:
    "@type": ${HC}
    pass_through_mode: false
    headers: [{ name: ":path", string_match: { exact: "/healthz" } }]
- name: envoy.filters.http.fault
  typed_config: { "@type": ${FAULT}, abort: { http_status: 503, percentage: { numerator: 0 } } }`,
      }),
    );
    // Three isolates load the whole program: slow on a loaded 2-core machine (one CI run passed 10 s).
    const ferry = await spawnFerry(["-c", file, "--concurrency", "3"], { adminPort, timeoutMs: 30_000 });
    // New connections each time, so SO_REUSEPORT spreads them over the threads.
    const statuses = async (path: string) => {
      const out = new Set<number>();
      for (let i = 0; i < 12; i++) out.add((await curl(`http://127.0.0.1:${port}${path}`)).status);
      return [...out];
    };
    try {
      assertEquals(await statuses("/healthz"), [200]);
      await (await fetch(`http://127.0.0.1:${adminPort}/healthcheck/fail`, { method: "POST" })).text();
      assertEquals(await statuses("/healthz"), [503]);
      await (await fetch(`http://127.0.0.1:${adminPort}/healthcheck/ok`, { method: "POST" })).text();
      assertEquals(await statuses("/healthz"), [200]);
      assertEquals(await statuses("/x"), [200]);
      const set = await fetch(`http://127.0.0.1:${adminPort}/runtime_modify?fault.http.abort.abort_percent=100`, {
        method: "POST",
      });
      assertEquals(await set.text(), "OK\n");
      assertEquals(await statuses("/x"), [503]);
    } finally {
      await ferry.stop();
      await up.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  "a route's FilterConfig { disabled: true } turns local_ratelimit, cors and header_mutation off there",
  itOpts,
  async () => {
    const off = `{ "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig, disabled: true }`;
    await withFilters({
      filters: `- name: envoy.filters.http.local_ratelimit
  typed_config: { "@type": ${LRL}, stat_prefix: lrl, ${bucket(1)} }
${CORS_FILTER}
- name: envoy.filters.http.header_mutation
  typed_config:
    "@type": ${HM}
    mutations: { response_mutations: [{ append: { header: { key: x-resp, value: "1" } } }] }`,
      vhostExtra: CORS_VHOST,
      routes: `  - match: { prefix: "/free" }
    route: { cluster: a }
    typed_per_filter_config:
      envoy.filters.http.local_ratelimit: ${off}
      envoy.filters.http.cors: ${off}
      envoy.filters.http.header_mutation: ${off}
  - match: { prefix: "/wrapped" }
    route: { cluster: a }
    typed_per_filter_config:
      envoy.filters.http.local_ratelimit:
        "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig
        config: { "@type": ${LRL}, stat_prefix: w, ${bucket(5)} }`,
    }, async (f) => {
      const h = ["-H", "origin: https://good.example"];
      const first = await curl(f.url("/x"), h);
      assertEquals(first.status, 200);
      assertEquals(first.headers["x-resp"], "1");
      assertEquals(first.headers["access-control-allow-origin"], "https://good.example");
      assertEquals((await curl(f.url("/x"))).status, 429);
      for (let i = 0; i < 3; i++) {
        const r = await curl(f.url("/free"), h);
        assertEquals(r.status, 200);
        assertEquals(r.headers["x-resp"], undefined);
        assertEquals(r.headers["access-control-allow-origin"], undefined);
      }
      // The wrapped per-route config brings its own bucket of 5.
      for (let i = 0; i < 5; i++) assertEquals((await curl(f.url("/wrapped"))).status, 200);
      assertEquals((await curl(f.url("/wrapped"))).status, 429);
    });
  },
);

Deno.test("an invalid per-route entry answers 500 on its route only", itOpts, async () => {
  await withFilters({
    filters: CORS_FILTER,
    routes: `  - match: { prefix: "/bad" }
    route: { cluster: a }
    typed_per_filter_config:
      envoy.filters.http.cors: { "@type": ${T}.cors.v3.CorsPolicy, allow_origin: ["*"] }`,
  }, async (f, up) => {
    assertEquals((await curl(f.url("/bad"), ["-H", "origin: https://x"])).status, 500);
    assertEquals((await curl(f.url("/bad"), [...H2, "-H", "origin: https://x"])).status, 500);
    assertEquals((await curl(f.url("/good"), ["-H", "origin: https://x"])).status, 200);
    assertEquals(up.requests.map((q) => q.url.pathname), ["/good"]);
  });
});
