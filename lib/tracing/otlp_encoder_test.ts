import { assertEquals } from "../../tests/assert.ts";
import { decodeExport } from "../../tests/helpers/otlp_collector.ts";
import { encodeExportTraceServiceRequest } from "./otlp_encoder.ts";
import type { SpanRecord } from "./span.ts";

function span(over: Partial<SpanRecord> = {}): SpanRecord {
  return {
    traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
    spanId: "00f067aa0ba902b7",
    parentSpanId: "",
    traceState: "",
    name: "ingress",
    kind: "SERVER",
    startNs: 1_765_000_000_123_456_789n,
    endNs: 1_765_000_000_223_456_789n,
    attributes: new Map([["http.method", "GET"], ["empty", ""], ["unicode", "zürich ✓ 𝄞"], ["lone", "a\ud800b"]]),
    status: "UNSET",
    sampled: true,
    ...over,
  };
}

const RESOURCE = { attributes: [["service.name", "edge"]] as const, scopeName: "ferry", scopeVersion: "0.1.0" };

Deno.test("encodeExportTraceServiceRequest decodes with the OpenTelemetry protos", () => {
  const bytes = encodeExportTraceServiceRequest(RESOURCE, [
    span(),
    span({
      spanId: "1111111111111111",
      parentSpanId: "00f067aa0ba902b7",
      traceState: "v=1",
      name: "egress example.com",
      kind: "CLIENT",
      status: "ERROR",
      attributes: new Map(),
      events: [{ timeNs: 1_765_000_000_200_000_000n, name: "last_downstream_rx_byte_received" }],
    }),
  ]);
  const spans = decodeExport(bytes, "http");
  assertEquals(spans.length, 2);
  const [a, b] = spans as [typeof spans[0], typeof spans[0]];
  assertEquals(a.serviceName, "edge");
  assertEquals(a.traceId, "4bf92f3577b34da6a3ce929d0e0e4736");
  assertEquals(a.spanId, "00f067aa0ba902b7");
  assertEquals(a.parentSpanId, "");
  assertEquals(a.name, "ingress");
  assertEquals(a.kind, 2);
  assertEquals(a.startNs, 1_765_000_000_123_456_789n);
  assertEquals(a.endNs, 1_765_000_000_223_456_789n);
  // UTF-8 written by hand: 2-, 3- and 4-byte sequences; a lone surrogate becomes U+FFFD, as TextEncoder writes it.
  assertEquals(a.attributes, { "http.method": "GET", empty: "", unicode: "zürich ✓ 𝄞", lone: "a\ufffdb" });
  assertEquals(a.statusCode, 0);
  assertEquals(b.parentSpanId, "00f067aa0ba902b7");
  assertEquals(b.traceState, "v=1");
  assertEquals(b.kind, 3);
  assertEquals(b.statusCode, 2);
  assertEquals(b.name, "egress example.com");
  assertEquals(a.events, []);
  assertEquals(b.events, [{ name: "last_downstream_rx_byte_received", timeNs: 1_765_000_000_200_000_000n }]);
});

Deno.test("encodeExportTraceServiceRequest grows its buffer for large batches", () => {
  const many: SpanRecord[] = [];
  for (let i = 0; i < 600; i++) {
    many.push(span({ spanId: (i + 1).toString(16).padStart(16, "0"), attributes: new Map([["i", "x".repeat(i)]]) }));
  }
  const spans = decodeExport(encodeExportTraceServiceRequest(RESOURCE, many), "grpc");
  assertEquals(spans.length, 600);
  assertEquals(spans[599]!.attributes["i"]!.length, 599);
  assertEquals(spans[599]!.spanId, "0000000000000258");
});
