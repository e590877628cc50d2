import { assertEquals } from "../../tests/assert.ts";
import type { StreamDecoder, StreamEncoder } from "../api/codec.ts";
import type { HeaderMap } from "../api/headers.ts";
import type { Cluster, ClusterManager, ConnPool, PoolCallbacks } from "../api/upstream.ts";
import { StatsStore } from "../observe/stats.ts";
import type { OpenTelemetryProvider } from "./config.ts";
import { MAX_QUEUED_SPANS, OtlpExporter } from "./opentelemetry.ts";
import type { SpanRecord } from "./span.ts";

/** A cluster whose pool records requests and answers them when the test says. */
function fakeCluster() {
  const pending: { headers: HeaderMap; body: Uint8Array[]; decoder: StreamDecoder }[] = [];
  const host = { address: "127.0.0.1", port: 1, key: "127.0.0.1:1" };
  const pool = {
    newStream(decoder: StreamDecoder, cb: PoolCallbacks) {
      const req = { headers: undefined as unknown as HeaderMap, body: [] as Uint8Array[], decoder };
      const enc = {
        encodeHeaders(h: HeaderMap) {
          req.headers = h;
        },
        encodeData(d: Uint8Array) {
          req.body.push(d);
        },
        encodeTrailers() {},
        resetStream() {},
      } as unknown as StreamEncoder;
      pending.push(req);
      cb.onPoolReady(enc, {} as never);
      return undefined;
    },
  } as unknown as ConnPool;
  const cluster = {
    info: { name: "otel", stats: { upstream_cx_none_healthy: { inc() {} } } },
    chooseHost: () => host,
    httpPool: () => pool,
    pool: () => pool,
  } as unknown as Cluster;
  const cm: ClusterManager = { get: (n) => (n === "otel" ? cluster : undefined), clusters: new Map() };
  return { cm, pending };
}

function span(i: number): SpanRecord {
  return {
    traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
    spanId: (i + 1).toString(16).padStart(16, "0"),
    parentSpanId: "",
    traceState: "",
    name: "ingress",
    kind: "SERVER",
    startNs: 1n,
    endNs: 2n,
    attributes: new Map(),
    status: "UNSET",
    sampled: true,
  };
}

const HTTP: OpenTelemetryProvider = {
  name: "envoy.tracers.opentelemetry",
  serviceName: "s",
  transport: {
    kind: "http",
    cluster: "otel",
    path: "/v1/traces",
    authority: "c",
    timeoutMs: 60_000,
    headers: [],
    clusterPath: "x",
  },
};

Deno.test("OtlpExporter sends a batch once min_flush_spans are queued", () => {
  const { cm, pending } = fakeCluster();
  const stats = new StatsStore();
  const e = new OtlpExporter(HTTP, { clusterManager: cm, stats }, { minFlushSpans: 3, flushIntervalMs: 60_000 });
  e.export(span(0));
  e.export(span(1));
  assertEquals(pending.length, 0);
  e.export(span(2));
  assertEquals(pending.length, 1);
  assertEquals(pending[0]!.headers.get(":path"), "/v1/traces");
  assertEquals(pending[0]!.headers.get("content-type"), "application/x-protobuf");
  assertEquals(stats.counter("tracing.opentelemetry.spans_sent").value, 3);
  assertEquals(stats.counter("tracing.opentelemetry.http_reports_sent").value, 1);
  e.close();
});

Deno.test("OtlpExporter bounds its queue while the collector does not answer, counting drops", () => {
  const { cm, pending } = fakeCluster();
  const stats = new StatsStore();
  const e = new OtlpExporter(HTTP, { clusterManager: cm, stats }, { minFlushSpans: 1, flushIntervalMs: 60_000 });
  const n = MAX_QUEUED_SPANS + 100;
  for (let i = 0; i < n; i++) e.export(span(i));
  // Four exports in flight (one span each), then the queue fills and the rest are dropped.
  assertEquals(pending.length, 4);
  assertEquals(e.queued, MAX_QUEUED_SPANS);
  assertEquals(stats.counter("tracing.opentelemetry.spans_dropped").value, n - 4 - MAX_QUEUED_SPANS);
  e.close();
});

Deno.test("OtlpExporter without a transport exports nothing; an unknown cluster drops and counts", () => {
  const { cm } = fakeCluster();
  const stats = new StatsStore();
  const none = new OtlpExporter({ ...HTTP, transport: undefined }, { clusterManager: cm, stats }, { minFlushSpans: 1 });
  none.export(span(0));
  assertEquals(none.queued, 0);
  const gone = new OtlpExporter(
    { ...HTTP, transport: { ...HTTP.transport!, cluster: "missing" } as OpenTelemetryProvider["transport"] },
    { clusterManager: cm, stats },
    { minFlushSpans: 1, flushIntervalMs: 60_000 },
  );
  gone.export(span(0));
  assertEquals(stats.counter("tracing.opentelemetry.spans_dropped").value, 1);
  gone.close();
});
