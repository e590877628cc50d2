/**
 * Tracing end to end: a request through two Ferry hops (A → B → upstream), both exporting spans with the
 * OpenTelemetry tracer to a test OTLP collector (A over OTLP/HTTP protobuf, B over OTLP/gRPC on Ferry's HTTP/2
 * client), the exports decoded with the OpenTelemetry protos (tests/helpers/otlp_collector.ts).
 */
import { assert, assertEquals, assertMatch, assertNotEquals } from "../assert.ts";
import { assertStartFails } from "../helpers/start_fails.ts";
import {
  catchAllRoute,
  curl,
  hcmBootstrap,
  itOpts,
  spawnFerry,
  startFerry,
  startUpstream,
  stat,
  staticCluster,
} from "./_harness.ts";
import type { TestFerry, TestUpstream } from "./_harness.ts";
import { type CollectedSpan, type OtlpCollector, startOtlpCollector } from "../helpers/otlp_collector.ts";
import { parseTraceparent } from "../../lib/tracing/propagation.ts";

const H2 = `typed_extension_protocol_options:
  envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
    "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
    explicit_http_config: { http2_protocol_options: {} }`;

/** Top-level bootstrap fields: the node, and the runtime keys that make exports go out per span. */
function top(node: string, minFlush = 1, prefix = "tracing.opentelemetry"): string {
  return `node: { id: ${node}, cluster: edge, locality: { zone: zone-${node} } }
layered_runtime:
  layers:
  - name: static
    static_layer:
      ${prefix}.min_flush_spans: ${minFlush}
      ${prefix}.flush_interval_ms: 200
`;
}

function otelGrpc(service: string): string {
  return `provider:
  name: envoy.tracers.opentelemetry
  typed_config:
    "@type": type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig
    service_name: ${service}
    grpc_service: { envoy_grpc: { cluster_name: otel }, timeout: 2s }`;
}

function otelHttp(service: string): string {
  return `provider:
  name: envoy.tracers.opentelemetry
  typed_config:
    "@type": type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig
    service_name: ${service}
    http_service:
      http_uri: { uri: "http://collector:4318/v1/traces", cluster: otel, timeout: 2s }
      request_headers_to_add: [{ header: { key: x-otlp-token, value: t0k } }]`;
}

function indent(s: string, n: number): string {
  return s.split("\n").map((l) => " ".repeat(n) + l).join("\n");
}

interface Hops {
  collector: OtlpCollector;
  upstream: TestUpstream;
  a: TestFerry;
  b: TestFerry;
  stop(): Promise<void>;
}

/** A (OTLP/HTTP) → B (OTLP/gRPC) → upstream, with `tracingA` / `tracingB` extra fields under `tracing`. */
async function startHops(opts: { tracingA?: string; tracingB?: string; routeA?: string } = {}): Promise<Hops> {
  const collector = await startOtlpCollector();
  const upstream = await startUpstream((req) =>
    new Response(`ok ${req.url.pathname}`, { status: req.url.pathname === "/fail" ? 503 : 200 })
  );
  const b = await startFerry(
    top("ferry-b") + hcmBootstrap({
      routes: catchAllRoute("{ cluster: up }"),
      hcmExtra: `tracing:\n${indent(otelGrpc("ferry-b"), 2)}${opts.tracingB ? "\n" + indent(opts.tracingB, 2) : ""}`,
      clusters: [staticCluster("up", [upstream.port]), staticCluster("otel", [collector.grpcPort], H2)].join("\n"),
    }),
  );
  const routeA = opts.routeA ?? `- name: all
  domains: ["*"]
  routes:
  - match: { prefix: "/" }
    route: { cluster: b }
    decorator: { operation: checkout-a }`;
  const a = await startFerry(
    top("ferry-a") + hcmBootstrap({
      routes: routeA,
      hcmExtra: `tracing:\n${indent(otelHttp("ferry-a"), 2)}${opts.tracingA ? "\n" + indent(opts.tracingA, 2) : ""}`,
      clusters: [staticCluster("b", [b.port()]), staticCluster("otel", [collector.httpPort])].join("\n"),
    }),
  );
  return {
    collector,
    upstream,
    a,
    b,
    async stop() {
      await a.stop();
      await b.stop();
      await upstream.close();
      await collector.close();
    },
  };
}

/**
 * A stat's value once it reaches `want` (the collector records an export before it answers, so Ferry counts the
 * answer a moment after the spans arrive); the last value read when it does not within 5 s.
 */
async function statSoon(ferry: TestFerry, name: string, want: number): Promise<number | undefined> {
  const until = Date.now() + 5000;
  let v = await stat(ferry, name);
  while (v !== want && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 20));
    v = await stat(ferry, name);
  }
  return v;
}

function byService(spans: CollectedSpan[], service: string): CollectedSpan[] {
  return spans.filter((s) => s.serviceName === service);
}

Deno.test(
  "tracing two hops: one trace, A's span the parent of B's, B's the parent of the upstream's",
  itOpts,
  async () => {
    const h = await startHops();
    try {
      const r = await curl(h.a.url("/cart/items?id=7"), [
        "-H",
        "user-agent: trace-test",
        "-H",
        "x-request-id: 0c3c8f4e-1f7a-4b2d-8e1a-2c9d5b6a7f10",
      ]);
      assertEquals(r.status, 200);
      await h.collector.waitForSpans(2);
      const a = byService(h.collector.spans, "ferry-a");
      const b = byService(h.collector.spans, "ferry-b");
      assertEquals(a.length, 1);
      assertEquals(b.length, 1);
      const sa = a[0]!;
      const sb = b[0]!;
      // A exported over OTLP/HTTP protobuf, B over OTLP/gRPC.
      assertEquals(sa.via, "http");
      assertEquals(sb.via, "grpc");
      assert(
        h.collector.requests.some((q) =>
          q.via === "http" && q.path === "/v1/traces" && q.contentType === "application/x-protobuf"
        ),
      );
      assert(
        h.collector.requests.some((q) =>
          q.via === "grpc" && q.path === "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
        ),
      );
      // One trace; A is the root (no context came in); B's parent is A's span, through the injected traceparent.
      assertMatch(sa.traceId, /^[0-9a-f]{32}$/);
      assertEquals(sb.traceId, sa.traceId);
      assertEquals(sa.parentSpanId, "");
      assertEquals(sb.parentSpanId, sa.spanId);
      assertNotEquals(sb.spanId, sa.spanId);
      // The upstream sees a traceparent whose parent-id is B's span, sampled.
      const tp = parseTraceparent(h.upstream.requests[0]!.headers.get("traceparent") ?? "");
      assert(tp, "the upstream got a valid traceparent");
      assertEquals(tp.traceId, sa.traceId);
      assertEquals(tp.spanId, sb.spanId);
      assertEquals(tp.sampled, true);
      // The request id carries the sampling decision (Envoy's UUID trace nibble '9') to B and the upstream.
      assertEquals(h.upstream.requests[0]!.headers.get("x-request-id"), "0c3c8f4e-1f7a-9b2d-8e1a-2c9d5b6a7f10");
      // Names: the route's decorator on A, Envoy's "ingress" on B (no decorator). Kind SERVER.
      assertEquals(sa.name, "checkout-a");
      assertEquals(r.headers["x-envoy-decorator-operation"], "checkout-a");
      assertEquals(sb.name, "ingress");
      assertEquals(sa.kind, 2);
      assertEquals(sb.kind, 2);
      // Envoy's tags.
      const at = sa.attributes;
      assertEquals(at["http.method"], "GET");
      assertEquals(at["http.url"], `http://127.0.0.1:${h.a.port()}/cart/items?id=7`);
      assertEquals(at["http.protocol"], "HTTP/1.1");
      assertEquals(at["http.status_code"], "200");
      assertEquals(at["upstream_cluster"], "b");
      assertEquals(at["guid:x-request-id"], "0c3c8f4e-1f7a-9b2d-8e1a-2c9d5b6a7f10");
      assertEquals(at["node_id"], "ferry-a");
      assertEquals(at["zone"], "zone-ferry-a");
      assertEquals(at["user_agent"], "trace-test");
      assertEquals(at["downstream_cluster"], "-");
      assertEquals(at["component"], "proxy");
      assertEquals(at["response_flags"], "-");
      assertEquals(at["response_size"], String("ok /cart/items".length));
      assertEquals(at["request_size"], "0");
      assertEquals(at["error"], undefined);
      assertEquals(sb.attributes["upstream_cluster"], "up");
      assertEquals(sb.attributes["node_id"], "ferry-b");
      assertEquals(sb.attributes["guid:x-request-id"], "0c3c8f4e-1f7a-9b2d-8e1a-2c9d5b6a7f10");
      // Times in ns: B's span lies within A's.
      assert(sa.startNs > 1_600_000_000_000_000_000n && sa.endNs >= sa.startNs);
      assert(sb.startNs >= sa.startNs && sb.endNs <= sa.endNs, "B's span is inside A's");
      // Stats.
      assertEquals(await stat(h.a, "http.test.tracing.random_sampling"), 1);
      assertEquals(await stat(h.b, "http.test.tracing.random_sampling"), 1);
      assertEquals(await statSoon(h.a, "tracing.opentelemetry.http_reports_sent", 1), 1);
      assertEquals(await statSoon(h.a, "tracing.opentelemetry.http_reports_success", 1), 1);
      assertEquals(await statSoon(h.b, "tracing.opentelemetry.spans_sent", 1), 1);
    } finally {
      await h.stop();
    }
  },
);

Deno.test("tracing continues a W3C trace from the client and passes tracestate on", itOpts, async () => {
  const h = await startHops();
  try {
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const r = await curl(h.a.url("/w3c"), [
      "-H",
      `traceparent: 00-${traceId}-00f067aa0ba902b7-01`,
      "-H",
      "tracestate: vendor=x1",
    ]);
    assertEquals(r.status, 200);
    await h.collector.waitForSpans(2);
    const sa = byService(h.collector.spans, "ferry-a")[0]!;
    const sb = byService(h.collector.spans, "ferry-b")[0]!;
    assertEquals(sa.traceId, traceId);
    assertEquals(sa.parentSpanId, "00f067aa0ba902b7");
    assertEquals(sa.traceState, "vendor=x1");
    assertEquals(sb.parentSpanId, sa.spanId);
    const up = h.upstream.requests[0]!.headers;
    assertEquals(up.get("tracestate"), "vendor=x1");
    assertEquals(parseTraceparent(up.get("traceparent")!)!.spanId, sb.spanId);
  } finally {
    await h.stop();
  }
});

Deno.test("tracing B3 in, B3 out: multi-header and single b3", itOpts, async () => {
  const h = await startHops();
  try {
    let r = await curl(h.a.url("/b3"), [
      "-H",
      "x-b3-traceid: 80f198ee56343ba864fe8b2a57d3eff7",
      "-H",
      "x-b3-spanid: e457b5a2e4d86bd1",
      "-H",
      "x-b3-sampled: 1",
    ]);
    assertEquals(r.status, 200);
    await h.collector.waitForSpans(2);
    const sa = byService(h.collector.spans, "ferry-a")[0]!;
    const sb = byService(h.collector.spans, "ferry-b")[0]!;
    assertEquals(sa.traceId, "80f198ee56343ba864fe8b2a57d3eff7");
    assertEquals(sa.parentSpanId, "e457b5a2e4d86bd1");
    assertEquals(sb.parentSpanId, sa.spanId);
    let up = h.upstream.requests[0]!.headers;
    assertEquals(up.get("x-b3-traceid"), "80f198ee56343ba864fe8b2a57d3eff7");
    assertEquals(up.get("x-b3-spanid"), sb.spanId);
    assertEquals(up.get("x-b3-parentspanid"), sa.spanId);
    assertEquals(up.get("x-b3-sampled"), "1");
    assertEquals(parseTraceparent(up.get("traceparent")!)!.spanId, sb.spanId);

    // Single header, 64-bit trace id: answered in the same width.
    r = await curl(h.a.url("/b3s"), ["-H", "b3: 463ac35c9f6413ad-a2fb4a1d1a96d312-1"]);
    assertEquals(r.status, 200);
    await h.collector.waitForSpans(4);
    const sb2 = byService(h.collector.spans, "ferry-b")[1]!;
    assertEquals(sb2.traceId, "0000000000000000463ac35c9f6413ad");
    up = h.upstream.requests[1]!.headers;
    assertMatch(up.get("b3") ?? "", new RegExp(`^463ac35c9f6413ad-${sb2.spanId}-1-${sb2.parentSpanId}$`));
  } finally {
    await h.stop();
  }
});

Deno.test("tracing sampling off: nothing exported, context still propagated unsampled", itOpts, async () => {
  const h = await startHops({ tracingA: "random_sampling: { value: 0 }" });
  try {
    for (let i = 0; i < 3; i++) assertEquals((await curl(h.a.url(`/quiet${i}`))).status, 200);
    // A's decision travels in x-request-id and traceparent (flags 00): B does not sample either.
    const tp = parseTraceparent(h.upstream.requests[0]!.headers.get("traceparent") ?? "");
    assert(tp);
    assertEquals(tp.sampled, false);
    // A timer flush (200 ms in this runtime) would have sent anything queued; wait for three.
    await new Promise((r) => setTimeout(r, 700));
    assertEquals(h.collector.spans.length, 0);
    assertEquals(h.collector.requests.length, 0);
    assertEquals(await stat(h.a, "http.test.tracing.random_sampling"), 0);
    // Forced by x-envoy-force-trace (an internal request: not an edge with use_remote_address): traced.
    assertEquals((await curl(h.a.url("/forced"), ["-H", "x-envoy-force-trace: 1"])).status, 200);
    await h.collector.waitForSpans(2);
    assertEquals(await stat(h.a, "http.test.tracing.service_forced"), 1);
    const up = h.upstream.requests[3]!.headers.get("x-request-id")!;
    assertEquals(up[14], "a");
  } finally {
    await h.stop();
  }
});

Deno.test("tracing spawn_upstream_span: a CLIENT span between B's server span and the upstream", itOpts, async () => {
  const h = await startHops({ tracingB: "spawn_upstream_span: true" });
  try {
    assertEquals((await curl(h.a.url("/spawn"))).status, 200);
    await h.collector.waitForSpans(3);
    const sa = byService(h.collector.spans, "ferry-a")[0]!;
    const b = byService(h.collector.spans, "ferry-b");
    const server = b.find((s) => s.kind === 2)!;
    const client = b.find((s) => s.kind === 3)!;
    assertEquals(server.parentSpanId, sa.spanId);
    assertEquals(client.parentSpanId, server.spanId);
    assertEquals(client.traceId, sa.traceId);
    assertEquals(client.name, "router up egress");
    assertEquals(client.attributes["upstream_cluster"], "up");
    assertEquals(client.attributes["http.status_code"], "200");
    assertEquals(parseTraceparent(h.upstream.requests[0]!.headers.get("traceparent")!)!.spanId, client.spanId);
  } finally {
    await h.stop();
  }
});

Deno.test("tracing: malformed propagation headers start a new trace, never a 400", itOpts, async () => {
  const h = await startHops();
  try {
    const r = await curl(h.a.url("/bad"), [
      "-H",
      "traceparent: 00-00000000000000000000000000000000-00f067aa0ba902b7-01",
      "-H",
      "x-b3-traceid: nothex",
      "-H",
      "x-b3-spanid: e457b5a2e4d86bd1",
    ]);
    assertEquals(r.status, 200);
    await h.collector.waitForSpans(2);
    const sa = byService(h.collector.spans, "ferry-a")[0]!;
    assertEquals(sa.parentSpanId, "");
    assertNotEquals(sa.traceId, "00000000000000000000000000000000");
  } finally {
    await h.stop();
  }
});

Deno.test("tracing custom tags, max_path_tag_length and a 5xx marked as error", itOpts, async () => {
  const h = await startHops({
    tracingA: `verbose: true
max_path_tag_length: 5
custom_tags:
- { tag: team, literal: { value: payments } }
- { tag: tenant, request_header: { name: x-tenant, default_value: none } }
- { tag: env, environment: { name: FERRY_TRACING_TEST_UNSET_VAR, default_value: dev } }`,
  });
  try {
    assertEquals((await curl(h.a.url("/fail"), ["-H", "x-tenant: acme"])).status, 503);
    await h.collector.waitForSpans(2);
    const sa = byService(h.collector.spans, "ferry-a")[0]!;
    assertEquals(sa.attributes["team"], "payments");
    assertEquals(sa.attributes["tenant"], "acme");
    assertEquals(sa.attributes["env"], "dev");
    assertEquals(sa.attributes["http.url"], `http://127.0.0.1:${h.a.port()}/fail`);
    assertEquals(sa.attributes["http.status_code"], "503");
    assertEquals(sa.attributes["error"], "true");
    assertEquals(sa.statusCode, 2);
    // verbose: timing events within the span.
    const names = sa.events.map((e) => e.name);
    assertEquals(names, [
      "last_downstream_rx_byte_received",
      "first_upstream_rx_byte_received",
      "last_downstream_tx_byte_sent",
    ]);
    assert(sa.events.every((e) => e.timeNs >= sa.startNs && e.timeNs <= sa.endNs));
  } finally {
    await h.stop();
  }
});

Deno.test("tracing: a collector that fails is counted, and traffic is unaffected", itOpts, async () => {
  const h = await startHops();
  try {
    h.collector.failing = true;
    for (let i = 0; i < 3; i++) assertEquals((await curl(h.a.url(`/down${i}`))).status, 200);
    const until = Date.now() + 5000;
    while (((await stat(h.a, "tracing.opentelemetry.http_reports_failed")) ?? 0) < 1 && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert(((await stat(h.a, "tracing.opentelemetry.http_reports_failed")) ?? 0) >= 1);
    while (((await stat(h.b, "tracing.opentelemetry.grpc_reports_failed")) ?? 0) < 1 && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert(((await stat(h.b, "tracing.opentelemetry.grpc_reports_failed")) ?? 0) >= 1);
    assertEquals(h.collector.spans.length, 0);
  } finally {
    await h.stop();
  }
});

Deno.test(
  "tracing with envoy.tracers.zipkin: B3 out, shared span context, JSON v2 to the collector",
  itOpts,
  async () => {
    const collector = await startOtlpCollector();
    const upstream = await startUpstream();
    const zipkin = `provider:
  name: envoy.tracers.zipkin
  typed_config:
    "@type": type.googleapis.com/envoy.config.trace.v3.ZipkinConfig
    collector_cluster: zipkin
    collector_endpoint: /api/v2/spans
    collector_endpoint_version: HTTP_JSON`;
    const f = await startFerry(
      top("ferry-z", 1, "tracing.zipkin") +
        hcmBootstrap({
          routes: catchAllRoute("{ cluster: up }"),
          hcmExtra: `tracing:\n${indent(zipkin, 2)}`,
          clusters: [staticCluster("up", [upstream.port]), staticCluster("zipkin", [collector.httpPort])].join("\n"),
        }),
    );
    try {
      // A new trace: 64-bit trace id (trace_id_128bit false), B3 multi-header upstream, no traceparent.
      assertEquals((await curl(f.url("/z1"))).status, 200);
      const until = Date.now() + 5000;
      while (collector.zipkin.length < 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      const s1 = collector.zipkin[0]!;
      assertMatch(String(s1["traceId"]), /^[0-9a-f]{16}$/);
      assertEquals(s1["kind"], "SERVER");
      assertEquals(s1["name"], "ingress");
      assertEquals(s1["parentId"], undefined);
      assertEquals((s1["localEndpoint"] as Record<string, unknown>)["serviceName"], "edge");
      assertEquals((s1["tags"] as Record<string, string>)["http.status_code"], "200");
      assert(typeof s1["timestamp"] === "number" && typeof s1["duration"] === "number");
      let up = upstream.requests[0]!.headers;
      assertEquals(up.get("x-b3-traceid"), s1["traceId"]);
      assertEquals(up.get("x-b3-spanid"), s1["id"]);
      assertEquals(up.get("x-b3-sampled"), "1");
      assertEquals(up.get("traceparent"), null);
      // A caller's B3 context: the server span shares the caller's span id (shared_span_context defaults to true).
      const r = await curl(f.url("/z2"), [
        "-H",
        "x-b3-traceid: 80f198ee56343ba864fe8b2a57d3eff7",
        "-H",
        "x-b3-spanid: e457b5a2e4d86bd1",
        "-H",
        "x-b3-parentspanid: 05e3ac9a4f6e3b90",
        "-H",
        "x-b3-sampled: 1",
      ]);
      assertEquals(r.status, 200);
      while (collector.zipkin.length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      const s2 = collector.zipkin[1]!;
      assertEquals(s2["traceId"], "80f198ee56343ba864fe8b2a57d3eff7");
      assertEquals(s2["id"], "e457b5a2e4d86bd1");
      assertEquals(s2["parentId"], "05e3ac9a4f6e3b90");
      assertEquals(s2["shared"], true);
      up = upstream.requests[1]!.headers;
      assertEquals(up.get("x-b3-spanid"), "e457b5a2e4d86bd1");
      assertEquals(await statSoon(f, "tracing.zipkin.reports_sent", 2), 2);
      assertEquals(await statSoon(f, "tracing.zipkin.spans_sent", 2), 2);
    } finally {
      await f.stop();
      await upstream.close();
      await collector.close();
    }
  },
);

Deno.test("tracing on an OUTBOUND listener: CLIENT spans named egress <host>", itOpts, async () => {
  const collector = await startOtlpCollector();
  const upstream = await startUpstream();
  const yaml = top("ferry-e") + hcmBootstrap({
    routes: catchAllRoute("{ cluster: up }"),
    hcmExtra: `tracing:\n${indent(otelHttp("ferry-e"), 2)}`,
    clusters: [staticCluster("up", [upstream.port]), staticCluster("otel", [collector.httpPort])].join("\n"),
  });
  assert(yaml.includes("  - name: test\n"));
  const f = await startFerry(yaml.replace("  - name: test\n", "  - name: test\n    traffic_direction: OUTBOUND\n"));
  try {
    const r = await curl(f.url("/e"), ["-H", "host: svc.example", "-H", "x-envoy-decorator-operation: mine"]);
    assertEquals(r.status, 200);
    await collector.waitForSpans(1);
    const s = collector.spans[0]!;
    assertEquals(s.kind, 3);
    assertEquals(s.name, "egress svc.example");
    // Egress: the caller's decorator header is not ours to consume; it goes on.
    assertEquals(upstream.requests[0]!.headers.get("x-envoy-decorator-operation"), "mine");
    assertEquals(r.headers["x-envoy-decorator-operation"], undefined);
  } finally {
    await f.stop();
    await upstream.close();
    await collector.close();
  }
});

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

Deno.test(
  "tracing with worker threads (--concurrency 2): every loop traces and exports, HTTP/2 downstream too",
  itOpts,
  async () => {
    const collector = await startOtlpCollector();
    const upstream = await startUpstream();
    const port = freePort();
    const adminPort = freePort();
    const dir = await Deno.makeTempDir();
    const cfg = `${dir}/ferry.yaml`;
    await Deno.writeTextFile(
      cfg,
      top("ferry-w") + hcmBootstrap({
        routes: catchAllRoute("{ cluster: up }"),
        hcmExtra: `tracing:\n${indent(otelGrpc("ferry-w"), 2)}`,
        clusters: [staticCluster("up", [upstream.port]), staticCluster("otel", [collector.grpcPort], H2)].join("\n"),
        port,
        adminPort,
      }),
    );
    const f = await spawnFerry(["-c", cfg, "--concurrency", "2", "-l", "warn"], { adminPort });
    try {
      const n = 12;
      for (let i = 0; i < n; i++) {
        const args = i % 2 === 0 ? ["--http2-prior-knowledge"] : [];
        assertEquals((await curl(`http://127.0.0.1:${port}/w${i}`, args)).status, 200);
      }
      await collector.waitForSpans(n);
      const spans = byService(collector.spans, "ferry-w");
      assertEquals(spans.length, n);
      assertEquals(new Set(spans.map((s) => s.traceId)).size, n);
      assertEquals(spans.filter((s) => s.attributes["http.protocol"] === "HTTP/2").length, n / 2);
      assert(spans.every((s) => s.attributes["node_id"] === "ferry-w" && s.attributes["upstream_cluster"] === "up"));
    } finally {
      await f.stop();
      await upstream.close();
      await collector.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("tracing config errors name the field", itOpts, async () => {
  const base = (tracing: string, clusters = "") =>
    hcmBootstrap({
      routes: catchAllRoute("{ cluster: up }"),
      hcmExtra: `tracing:\n${indent(tracing, 2)}`,
      clusters: [staticCluster("up", [1]), clusters].filter((x) => x).join("\n"),
    });
  await assertStartFails(
    () => startFerry(base(otelGrpc("x"))),
    /tracing\.provider\.typed_config\.grpc_service\.envoy_grpc\.cluster_name: unknown cluster "otel"/,
    "unknown collector cluster",
  );
  await assertStartFails(
    () => startFerry(base("provider: { name: envoy.tracers.datadog }")),
    /tracing\.provider\.name: tracer "envoy\.tracers\.datadog" is not supported/,
    "unknown tracer",
  );
  await assertStartFails(
    () => startFerry(base("random_sampling: { value: 120 }")),
    /tracing\.random_sampling\.value: 120 is above the maximum 100/,
    "percent out of range",
  );
  await assertStartFails(
    () =>
      startFerry(
        `tracing:\n  http:\n${indent(otelHttp("x").replace("provider:\n", "").replace(/^ {2}/gm, ""), 4)}\n` +
          base("random_sampling: { value: 50 }"),
      ),
    /tracing\.http\.typed_config\.http_service\.http_uri\.cluster: unknown cluster "otel"/,
    "bootstrap tracing.http with an unknown cluster",
  );
});
