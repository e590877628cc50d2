/**
 * A test trace collector: OTLP/HTTP protobuf (`POST /v1/traces` on a Deno HTTP/1 server) and OTLP/gRPC
 * (`TraceService/Export` on an HTTP/2 server built from Ferry's own server codec over `Deno.listen`; not
 * `@grpc/grpc-js`, whose `node:http2` aborts Deno on some GOAWAYs, denoland/deno#36788).
 *
 * Exports are decoded with the OpenTelemetry protos as `@opentelemetry/otlp-transformer` 0.52 ships them
 * (its protobufjs-generated root of opentelemetry-proto, Apache-2.0), not with Ferry's encoder's code. The HTTP port
 * also takes Zipkin v2 JSON on `/api/v2/spans` (answered 202, as Zipkin does).
 *
 * @module
 */
import otlpRoot from "@opentelemetry/otlp-transformer/build/src/generated/root.js";
import { HeaderMap } from "../../lib/api/headers.ts";
import type { StreamDecoder, StreamEncoder } from "../../lib/api/codec.ts";
import { Http2ServerCodec } from "../../codecs/http2/mod.ts";

/** One span as the collector received it (ids as hex, attributes as strings). */
export interface CollectedSpan {
  readonly via: "grpc" | "http";
  readonly serviceName: string;
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly traceState: string;
  readonly name: string;
  /** OTLP SpanKind number (2 SERVER, 3 CLIENT). */
  readonly kind: number;
  readonly startNs: bigint;
  readonly endNs: bigint;
  readonly attributes: Record<string, string>;
  /** OTLP status code (0 UNSET, 2 ERROR). */
  readonly statusCode: number;
  /** Span events: name and time. */
  readonly events: { name: string; timeNs: bigint }[];
}

/** A running collector. */
export interface OtlpCollector {
  readonly httpPort: number;
  readonly grpcPort: number;
  readonly spans: CollectedSpan[];
  /** Zipkin v2 JSON spans `POST`ed to `/api/v2/spans` on the HTTP port. */
  readonly zipkin: Record<string, unknown>[];
  /** Export requests received: transport, path, content type. */
  readonly requests: { via: "grpc" | "http"; path: string; contentType: string }[];
  /** When true, both endpoints answer with an error (HTTP 503 / gRPC UNAVAILABLE). */
  failing: boolean;
  /** Waits until at least `n` spans arrived (throws after `timeoutMs`). */
  waitForSpans(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

// deno-lint-ignore no-explicit-any
const root = otlpRoot as any;
const ExportRequest = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
const ExportResponse = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse;

function hex(b: Uint8Array | null | undefined): string {
  if (b === undefined || b === null) return "";
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Decodes an `ExportTraceServiceRequest` with the OpenTelemetry protos. */
export function decodeExport(bytes: Uint8Array, via: "grpc" | "http"): CollectedSpan[] {
  const msg = ExportRequest.decode(bytes);
  const out: CollectedSpan[] = [];
  for (const rs of msg.resourceSpans ?? []) {
    let serviceName = "";
    for (const kv of rs.resource?.attributes ?? []) {
      if (kv.key === "service.name") serviceName = kv.value?.stringValue ?? "";
    }
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        const attributes: Record<string, string> = {};
        for (const kv of s.attributes ?? []) attributes[kv.key] = kv.value?.stringValue ?? "";
        out.push({
          via,
          serviceName,
          traceId: hex(s.traceId),
          spanId: hex(s.spanId),
          parentSpanId: hex(s.parentSpanId),
          traceState: s.traceState ?? "",
          name: s.name ?? "",
          kind: s.kind ?? 0,
          startNs: BigInt(s.startTimeUnixNano?.toString() ?? "0"),
          endNs: BigInt(s.endTimeUnixNano?.toString() ?? "0"),
          attributes,
          statusCode: s.status?.code ?? 0,
          events: (s.events ?? []).map((e: { name?: string; timeUnixNano?: { toString(): string } }) => ({
            name: e.name ?? "",
            timeNs: BigInt(e.timeUnixNano?.toString() ?? "0"),
          })),
        });
      }
    }
  }
  return out;
}

async function writeAll(conn: Deno.Conn, b: Uint8Array): Promise<void> {
  let off = 0;
  while (off < b.length) off += await conn.write(b.subarray(off));
}

/** Starts both endpoints on loopback, port 0. */
export function startOtlpCollector(): Promise<OtlpCollector> {
  const spans: CollectedSpan[] = [];
  const zipkin: Record<string, unknown>[] = [];
  const requests: OtlpCollector["requests"] = [];
  const state = { failing: false };
  const http = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    const body = new Uint8Array(await req.arrayBuffer());
    requests.push({ via: "http", path: url.pathname, contentType: req.headers.get("content-type") ?? "" });
    if (state.failing) return new Response("unavailable", { status: 503 });
    if (req.method === "POST" && url.pathname === "/api/v2/spans") {
      zipkin.push(...JSON.parse(new TextDecoder().decode(body)) as Record<string, unknown>[]);
      return new Response(null, { status: 202 });
    }
    if (req.method !== "POST" || url.pathname !== "/v1/traces") return new Response("not found", { status: 404 });
    spans.push(...decodeExport(body, "http"));
    const resp = ExportResponse.encode(ExportResponse.create({})).finish() as Uint8Array;
    return new Response(new Uint8Array(resp), { headers: { "content-type": "application/x-protobuf" } });
  });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const serveGrpc = async (conn: Deno.Conn) => {
    conns.add(conn);
    let chain = Promise.resolve();
    const write = (b: Uint8Array) => {
      const copy = b.slice();
      chain = chain.then(() => writeAll(conn, copy)).catch(() => {});
    };
    const codec = new Http2ServerCodec(write, {
      newStream(encoder: StreamEncoder): StreamDecoder {
        let path = "";
        let contentType = "";
        const chunks: Uint8Array[] = [];
        const finish = () => {
          requests.push({ via: "grpc", path, contentType });
          let total = 0;
          for (const c of chunks) total += c.length;
          const buf = new Uint8Array(total);
          let o = 0;
          for (const c of chunks) {
            buf.set(c, o);
            o += c.length;
          }
          let code = "0";
          let message = "";
          if (state.failing) {
            code = "14";
            message = "collector down";
          } else if (path !== "/opentelemetry.proto.collector.trace.v1.TraceService/Export") {
            code = "12";
            message = "unknown method";
          } else {
            try {
              let off = 0;
              while (off + 5 <= buf.length) {
                const len = new DataView(buf.buffer, off + 1, 4).getUint32(0);
                spans.push(...decodeExport(buf.subarray(off + 5, off + 5 + len), "grpc"));
                off += 5 + len;
              }
            } catch (e) {
              code = "3";
              message = e instanceof Error ? e.message : String(e);
            }
          }
          encoder.encodeHeaders(HeaderMap.from([[":status", "200"], ["content-type", "application/grpc"]]), false);
          if (code === "0") {
            const resp = ExportResponse.encode(ExportResponse.create({})).finish() as Uint8Array;
            const framed = new Uint8Array(5 + resp.length);
            new DataView(framed.buffer).setUint32(1, resp.length);
            framed.set(resp, 5);
            encoder.encodeData(framed, false);
          }
          const t: [string, string][] = [["grpc-status", code]];
          if (message) t.push(["grpc-message", encodeURIComponent(message)]);
          encoder.encodeTrailers(HeaderMap.from(t));
        };
        return {
          decodeHeaders(h: HeaderMap, end: boolean) {
            path = h.get(":path") ?? "";
            contentType = h.get("content-type") ?? "";
            if (end) finish();
          },
          decodeData(d: Uint8Array, end: boolean) {
            if (d.length > 0) chunks.push(d.slice());
            if (end) finish();
          },
          decodeTrailers() {
            finish();
          },
        };
      },
    });
    const buf = new Uint8Array(65536);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        codec.dispatch(buf.subarray(0, n));
      }
    } catch {
      // connection gone or protocol error: the test sees missing spans
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
  };
  const accepting = (async () => {
    try {
      for await (const c of listener) serveGrpc(c);
    } catch {
      // closed
    }
  })();
  return Promise.resolve({
    httpPort: http.addr.port,
    grpcPort: (listener.addr as Deno.NetAddr).port,
    spans,
    zipkin,
    requests,
    get failing() {
      return state.failing;
    },
    set failing(v: boolean) {
      state.failing = v;
    },
    async waitForSpans(n: number, timeoutMs = 10_000) {
      const until = Date.now() + timeoutMs;
      while (spans.length < n) {
        if (Date.now() > until) throw new Error(`collector: ${spans.length} spans after ${timeoutMs} ms, wanted ${n}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // already closed
        }
      }
      await accepting;
      await http.shutdown();
    },
  });
}
