/**
 * A small protobuf encoder for OTLP's `ExportTraceServiceRequest` (opentelemetry-proto
 * `collector/trace/v1/trace_service.proto`, `trace/v1/trace.proto`, `resource/v1/resource.proto`,
 * `common/v1/common.proto`). Only what Ferry's spans use is written: resource attributes, one scope, spans with ids,
 * name, kind, times, string attributes and status. Field numbers are those of the protos; the code is ours.
 *
 * @module
 */
import type { SpanRecord } from "./span.ts";

const KIND: Record<SpanRecord["kind"], number> = { SERVER: 2, CLIENT: 3 };
const STATUS: Record<SpanRecord["status"], number> = { UNSET: 0, OK: 1, ERROR: 2 };

const te = new TextEncoder();

/** A growable byte buffer with protobuf primitives; nested messages are written into a fresh writer. */
class Writer {
  #buf = new Uint8Array(256);
  #len = 0;

  #ensure(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#len + n) size *= 2;
    const b = new Uint8Array(size);
    b.set(this.#buf.subarray(0, this.#len));
    this.#buf = b;
  }

  varint(v: number): void {
    this.#ensure(10);
    while (v > 0x7f) {
      this.#buf[this.#len++] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
    }
    this.#buf[this.#len++] = v;
  }

  tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  bytes(field: number, b: Uint8Array): void {
    this.tag(field, 2);
    this.varint(b.length);
    this.#ensure(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
  }

  string(field: number, s: string): void {
    if (s !== "") this.bytes(field, te.encode(s));
  }

  fixed64(field: number, v: bigint): void {
    this.tag(field, 1);
    this.#ensure(8);
    new DataView(this.#buf.buffer).setBigUint64(this.#len, v, true);
    this.#len += 8;
  }

  uint(field: number, v: number): void {
    if (v === 0) return;
    this.tag(field, 0);
    this.varint(v);
  }

  message(field: number, w: Writer): void {
    this.bytes(field, w.finish());
  }

  finish(): Uint8Array {
    return this.#buf.subarray(0, this.#len);
  }
}

function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** `common.v1.KeyValue` with a string `AnyValue`. */
function keyValue(key: string, value: string): Writer {
  const av = new Writer();
  av.bytes(1, te.encode(value)); // AnyValue.string_value (written even when empty: the oneof is set)
  const kv = new Writer();
  kv.string(1, key);
  kv.message(2, av);
  return kv;
}

function span(s: SpanRecord): Writer {
  const w = new Writer();
  w.bytes(1, hexBytes(s.traceId));
  w.bytes(2, hexBytes(s.spanId));
  w.string(3, s.traceState);
  if (s.parentSpanId !== "") w.bytes(4, hexBytes(s.parentSpanId));
  w.string(5, s.name);
  w.uint(6, KIND[s.kind]);
  w.fixed64(7, s.startNs);
  w.fixed64(8, s.endNs);
  for (const [k, v] of s.attributes) w.message(9, keyValue(k, v));
  const st = STATUS[s.status];
  if (st !== 0) {
    const sw = new Writer();
    sw.uint(3, st);
    w.message(15, sw);
  }
  return w;
}

/** What one export carries besides the spans. */
export interface ExportResource {
  /** `Resource.attributes` (`service.name` first). */
  readonly attributes: readonly (readonly [string, string])[];
  /** `InstrumentationScope.name`. */
  readonly scopeName: string;
  readonly scopeVersion: string;
}

/** Encodes `ExportTraceServiceRequest { resource_spans: [{ resource, scope_spans: [{ scope, spans }] }] }`. */
export function encodeExportTraceServiceRequest(resource: ExportResource, spans: readonly SpanRecord[]): Uint8Array {
  const res = new Writer();
  for (const [k, v] of resource.attributes) res.message(1, keyValue(k, v));
  const scope = new Writer();
  scope.string(1, resource.scopeName);
  scope.string(2, resource.scopeVersion);
  const ss = new Writer();
  ss.message(1, scope);
  for (const s of spans) ss.message(2, span(s));
  const rs = new Writer();
  rs.message(1, res);
  rs.message(2, ss);
  const req = new Writer();
  req.message(1, rs);
  return req.finish();
}
