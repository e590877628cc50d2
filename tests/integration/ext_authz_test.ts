/**
 * The ext_authz filter end to end, against a real HTTP authorization server (Deno.serve) and a real gRPC one
 * (`@grpc/grpc-js` serving `envoy.service.auth.v3.Authorization/Check`): allow with header changes, deny with the
 * server's answer, errors and timeouts (`status_on_error`, `failure_mode_allow`), `with_request_body`, per-route
 * disable and context extensions, HTTP/1.1 and HTTP/2 clients, and the stats.
 */
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { assert, assertEquals } from "../assert.ts";
import { assertStartFails } from "../helpers/start_fails.ts";
import { authTypes, CHECK_METHOD } from "../../filters/http/_ext_authz_grpc.ts";
import { curl, hcmBootstrap, itOpts, sleep, startFerry, startUpstream, stat, staticCluster } from "./_harness.ts";
import type { SeenRequest, TestFerry, TestUpstream } from "./_harness.ts";

const EXT_AUTHZ = "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz";
const PER_ROUTE = "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute";

/** The HTTP authorization server: decides by the `x-user` header. */
function httpAuthz(req: SeenRequest): Response | Promise<Response> {
  const user = req.headers.get("x-user");
  if (user === "slow") return sleep(1000).then(() => new Response("late"));
  if (user === "alice") {
    return new Response(null, {
      status: 200,
      headers: { "x-auth-user": "alice", "x-client-note": "welcome", "x-not-allowed": "nope" },
    });
  }
  return new Response("denied by policy", {
    status: 403,
    headers: { "x-reason": "no such user", "content-type": "text/x-authz" },
  });
}

async function withHttpAuthz(
  extra: string,
  body: (f: TestFerry, up: TestUpstream, authz: TestUpstream) => Promise<void>,
  opts: { authzPort?: number; hcmExtra?: string } = {},
): Promise<void> {
  const up = await startUpstream((r) =>
    new Response(
      JSON.stringify({ user: r.headers.get("x-auth-user"), fma: r.headers.get("x-envoy-auth-failure-mode-allowed") }),
    )
  );
  const authz = await startUpstream(httpAuthz);
  const f = await startFerry(hcmBootstrap({
    ...(opts.hcmExtra ? { hcmExtra: opts.hcmExtra } : {}),
    routes: `- name: all
  domains: ["*"]
  routes:
  - match: { prefix: "/public" }
    route: { cluster: up }
    typed_per_filter_config:
      envoy.filters.http.ext_authz: { "@type": ${PER_ROUTE}, disabled: true }
  - match: { prefix: "/" }
    route: { cluster: up }`,
    clusters: `${staticCluster("up", [up.port])}\n${staticCluster("authz", [opts.authzPort ?? authz.port])}`,
    httpFilters: `- name: envoy.filters.http.ext_authz
  typed_config:
    "@type": ${EXT_AUTHZ}
    http_service:
      server_uri: { uri: "http://authz", cluster: authz, timeout: 0.25s }
      path_prefix: /check
      authorization_request:
        allowed_headers: { patterns: [{ exact: x-user }, { prefix: x-allow- }] }
        headers_to_add: [{ key: x-from-ferry, value: "yes" }]
      authorization_response:
        allowed_upstream_headers: { patterns: [{ exact: x-auth-user }] }
        allowed_client_headers_on_success: { patterns: [{ exact: x-client-note }] }
${extra}`,
  }));
  try {
    await body(f, up, authz);
  } finally {
    await f.stop();
    await up.close();
    await authz.close();
  }
}

Deno.test("ext_authz http_service allows, forwarding the allowed headers both ways", itOpts, async () => {
  await withHttpAuthz("", async (f, up, authz) => {
    for (const h2 of [false, true]) {
      const r = await curl(f.url("/api/x?q=1"), [
        ...(h2 ? ["--http2-prior-knowledge"] : []),
        "-H",
        "x-user: alice",
        "-H",
        "authorization: Bearer t0k",
        "-H",
        "x-allow-me: 1",
        "-H",
        "x-secret: s",
      ]);
      assertEquals(r.status, 200);
      assertEquals(JSON.parse(r.body).user, "alice");
      assertEquals(r.headers["x-client-note"], "welcome");
      assertEquals(r.headers["x-not-allowed"], undefined);
    }
    const seen = authz.requests[0]!;
    assertEquals(seen.method, "GET");
    assertEquals(seen.url.pathname + seen.url.search, "/check/api/x?q=1");
    assertEquals(seen.headers.get("authorization"), "Bearer t0k");
    assertEquals(seen.headers.get("x-allow-me"), "1");
    assertEquals(seen.headers.get("x-from-ferry"), "yes");
    assertEquals(seen.headers.get("x-secret"), null);
    assertEquals(up.requests.length, 2);
    assertEquals(up.requests[0]!.headers.get("x-not-allowed"), null);
    assertEquals(await stat(f, "http.test.ext_authz.ok"), 2);
    assertEquals(await stat(f, "cluster.up.ext_authz.ok"), 2);
  }, { hcmExtra: "codec_type: AUTO" });
});

Deno.test("ext_authz http_service denies with the server's status, body and headers", itOpts, async () => {
  await withHttpAuthz("", async (f, up) => {
    const r = await curl(f.url("/api"), ["-H", "x-user: mallory"]);
    assertEquals(r.status, 403);
    assertEquals(r.body, "denied by policy");
    assertEquals(r.headers["x-reason"], "no such user");
    assertEquals(r.headers["content-type"], "text/x-authz");
    assertEquals(up.requests.length, 0);
    // Per-route disabled: no check.
    const p = await curl(f.url("/public"), ["-H", "x-user: mallory"]);
    assertEquals(p.status, 200);
    assertEquals(await stat(f, "http.test.ext_authz.denied"), 1);
  });
});

Deno.test("ext_authz errors answer status_on_error, or pass with failure_mode_allow", itOpts, async () => {
  const dead = (() => {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const p = (l.addr as Deno.NetAddr).port;
    l.close();
    return p;
  })();
  await withHttpAuthz("", async (f) => {
    const r = await curl(f.url("/api"), ["-H", "x-user: alice"]);
    assertEquals(r.status, 403);
    assertEquals(await stat(f, "http.test.ext_authz.error"), 1);
  }, { authzPort: dead });
  await withHttpAuthz("    status_on_error: { code: 503 }", async (f) => {
    const r = await curl(f.url("/api"), ["-H", "x-user: slow"]); // over the 0.25 s timeout
    assertEquals(r.status, 503);
  });
  await withHttpAuthz(
    "    failure_mode_allow: true\n    failure_mode_allow_header_add: true",
    async (f, up) => {
      const r = await curl(f.url("/api"), ["-H", "x-user: slow"]);
      assertEquals(r.status, 200);
      assertEquals(JSON.parse(r.body).fma, "true");
      assertEquals(up.requests.length, 1);
      assertEquals(await stat(f, "http.test.ext_authz.failure_mode_allowed"), 1);
    },
  );
});

Deno.test(
  "ext_authz with a missing authorization cluster fails closed, or open with failure_mode_allow",
  itOpts,
  async () => {
    const up = await startUpstream();
    for (const allow of [false, true]) {
      const f = await startFerry(hcmBootstrap({
        hcmExtra: "codec_type: AUTO",
        routes: `- name: all\n  domains: ["*"]\n  routes: [{ match: { prefix: "/" }, route: { cluster: up } }]`,
        clusters: staticCluster("up", [up.port]),
        httpFilters: `- name: envoy.filters.http.ext_authz
  typed_config:
    "@type": ${EXT_AUTHZ}
    failure_mode_allow: ${allow}
    http_service: { server_uri: { uri: "http://gone", cluster: gone, timeout: 1s } }`,
      }));
      try {
        for (const h2 of [[], ["--http2-prior-knowledge"]]) {
          const r = await curl(f.url("/x"), h2);
          assertEquals(r.status, allow ? 200 : 403);
        }
        assertEquals(await stat(f, "http.test.ext_authz.error"), 2);
      } finally {
        await f.stop();
      }
    }
    await up.close();
  },
);

Deno.test("ext_authz with_request_body sends the body, 413 over the limit unless partial", itOpts, async () => {
  await withHttpAuthz(
    "    with_request_body: { max_request_bytes: 16 }",
    async (f, up, authz) => {
      const ok = await curl(f.url("/api"), ["-H", "x-user: alice", "--data-binary", "small body"]);
      assertEquals(ok.status, 200);
      assertEquals(authz.requests[0]!.body, "small body");
      assertEquals(up.requests[0]!.body, "small body");
      const big = await curl(f.url("/api"), ["-H", "x-user: alice", "--data-binary", "x".repeat(100)]);
      assertEquals(big.status, 413);
      assertEquals(up.requests.length, 1);
    },
  );
  await withHttpAuthz(
    "    with_request_body: { max_request_bytes: 16, allow_partial_message: true }",
    async (f, up, authz) => {
      const body = "0123456789".repeat(10);
      const r = await curl(f.url("/api"), ["-H", "x-user: alice", "--data-binary", body]);
      assertEquals(r.status, 200);
      assertEquals(authz.requests[0]!.body, body.slice(0, 16));
      assertEquals(authz.requests[0]!.headers.get("x-envoy-auth-partial-body"), "true");
      assertEquals(up.requests[0]!.body, body);
    },
  );
});

/** A gRPC authorization server (grpc-js) deciding by the `x-user` header; records the CheckRequests. */
async function startGrpcAuthz(): Promise<{ port: number; seen: Record<string, unknown>[]; close(): void }> {
  const t = authTypes();
  const seen: Record<string, unknown>[] = [];
  const server = new grpc.Server();
  const def: grpc.ServiceDefinition = {
    Check: {
      path: CHECK_METHOD,
      requestStream: false,
      responseStream: false,
      requestSerialize: (x: Uint8Array) => Buffer.from(x),
      requestDeserialize: (b: Buffer) =>
        t.checkRequest.toObject(t.checkRequest.decode(b), { longs: Number, enums: String, defaults: false }),
      responseSerialize: (o: Record<string, unknown>) =>
        Buffer.from(t.checkResponse.encode(t.checkResponse.fromObject(o)).finish()),
      responseDeserialize: (b: Buffer) => b,
    },
  };
  server.addService(def, {
    Check: (call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const req = call.request;
      seen.push(req);
      const http = ((req["attributes"] as Record<string, unknown>)["request"] as Record<string, unknown>)[
        "http"
      ] as Record<string, unknown>;
      const headers = http["headers"] as Record<string, string>;
      const user = headers["x-user"];
      if (user === "slow") {
        setTimeout(() => cb(null, { status: { code: 0 } }), 1000);
        return;
      }
      if (user === "alice") {
        cb(null, {
          status: { code: 0 },
          ok_response: {
            headers: [{ header: { key: "x-auth-user", value: "alice" } }],
            headers_to_remove: ["x-drop-me"],
            response_headers_to_add: [{ header: { key: "x-client-note", value: "grpc-welcome" } }],
          },
        });
        return;
      }
      cb(null, {
        status: { code: 7, message: "denied" },
        denied_response: {
          status: { code: "Unauthorized" },
          headers: [{ header: { key: "www-authenticate", value: "Bearer" } }],
          body: "no grpc entry",
        },
      });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => e ? reject(e) : resolve(p))
  );
  return { port, seen, close: () => server.forceShutdown() };
}

Deno.test("ext_authz grpc_service allows, denies and times out against a grpc-js server", itOpts, async () => {
  const g = await startGrpcAuthz();
  const up = await startUpstream((r) =>
    new Response(JSON.stringify({ user: r.headers.get("x-auth-user"), drop: r.headers.get("x-drop-me") }))
  );
  const f = await startFerry(hcmBootstrap({
    hcmExtra: "codec_type: AUTO",
    routes: `- name: all
  domains: ["*"]
  routes:
  - match: { prefix: "/ctx" }
    route: { cluster: up }
    typed_per_filter_config:
      envoy.filters.http.ext_authz:
        "@type": ${PER_ROUTE}
        check_settings: { context_extensions: { tenant: acme } }
  - match: { prefix: "/" }
    route: { cluster: up }`,
    clusters: `${staticCluster("up", [up.port])}\n${
      staticCluster(
        "authz",
        [g.port],
        'typed_extension_protocol_options:\n  envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n    "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n    explicit_http_config: { http2_protocol_options: {} }',
      )
    }`,
    httpFilters: `- name: envoy.filters.http.ext_authz
  typed_config:
    "@type": ${EXT_AUTHZ}
    grpc_service: { envoy_grpc: { cluster_name: authz }, timeout: 0.3s }
    transport_api_version: V3
    with_request_body: { max_request_bytes: 1024 }`,
  }));
  try {
    const ok = await curl(f.url("/ctx/a"), ["-H", "x-user: alice", "-H", "x-drop-me: 1", "--data-binary", "hi"]);
    assertEquals(ok.status, 200);
    assertEquals(JSON.parse(ok.body), { user: "alice", drop: null });
    assertEquals(ok.headers["x-client-note"], "grpc-welcome");
    const attrs = g.seen[0]!["attributes"] as Record<string, unknown>;
    assertEquals(attrs["context_extensions"], { tenant: "acme" });
    const http = (attrs["request"] as Record<string, unknown>)["http"] as Record<string, unknown>;
    assertEquals(http["method"], "POST");
    assertEquals(http["path"], "/ctx/a");
    assertEquals(http["body"], "hi");
    assert(typeof http["host"] === "string" && (http["host"] as string).startsWith("127.0.0.1:"));
    const src = ((attrs["source"] as Record<string, unknown>)["address"] as Record<string, unknown>)[
      "socket_address"
    ] as Record<string, unknown>;
    assertEquals(src["address"], "127.0.0.1");

    const h2 = await curl(f.url("/x"), ["--http2-prior-knowledge", "-H", "x-user: alice"]);
    assertEquals(h2.status, 200);
    const no = await curl(f.url("/x"), ["-H", "x-user: eve"]);
    assertEquals(no.status, 401);
    assertEquals(no.body, "no grpc entry");
    assertEquals(no.headers["www-authenticate"], "Bearer");
    const slow = await curl(f.url("/x"), ["-H", "x-user: slow"]);
    assertEquals(slow.status, 403);
    assertEquals(up.requests.length, 2);
    assertEquals(await stat(f, "http.test.ext_authz.ok"), 2);
    assertEquals(await stat(f, "http.test.ext_authz.denied"), 1);
    assertEquals(await stat(f, "http.test.ext_authz.error"), 1);
  } finally {
    await f.stop();
    await up.close();
    g.close();
  }
});

Deno.test("ext_authz config errors name the field", itOpts, async () => {
  const bad = (cfg: string, want: RegExp) =>
    assertStartFails(
      () =>
        startFerry(hcmBootstrap({
          routes:
            `- name: all\n  domains: ["*"]\n  routes: [{ match: { prefix: "/" }, direct_response: { status: 200 } }]`,
          httpFilters: `- name: envoy.filters.http.ext_authz\n  typed_config: { "@type": ${EXT_AUTHZ}, ${cfg} }`,
        })),
      want,
      cfg,
    );
  await bad(`failure_mode_allow: true`, /one of http_service, grpc_service|http_service/);
  await bad(`http_service: { server_uri: { uri: "http://a", cluster: a } }`, /server_uri\.timeout/);
  await bad(`grpc_service: { envoy_grpc: { cluster_name: a } }, with_request_body: {}`, /max_request_bytes/);
});
