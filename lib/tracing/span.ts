/**
 * A span as the tracers record it: ids, name, kind, times in nanoseconds since the epoch, string attributes (Envoy
 * sets every tag as a string) and a status. The OTLP encoder writes it as `opentelemetry.proto.trace.v1.Span`.
 *
 * @module
 */

/** OTLP `Span.SpanKind`. */
export type SpanKind = "SERVER" | "CLIENT";

/** OTLP `Status.StatusCode`: UNSET unless an error was recorded. */
export type SpanStatus = "UNSET" | "OK" | "ERROR";

/** One finished (or finishing) span. */
export interface SpanRecord {
  /** 32 hex digits. */
  readonly traceId: string;
  /** 16 hex digits. */
  readonly spanId: string;
  /** 16 hex digits, or "" for a root span. */
  readonly parentSpanId: string;
  readonly traceState: string;
  name: string;
  readonly kind: SpanKind;
  /** Nanoseconds since the Unix epoch. */
  readonly startNs: bigint;
  endNs: bigint;
  /** Attributes in the order set; a key set twice keeps its last value. */
  readonly attributes: Map<string, string>;
  status: SpanStatus;
  /** Sampled spans are exported; the others only propagate their context. */
  readonly sampled: boolean;
  /** Zipkin's `shared`: a server span that shares its id with the caller's client span. */
  readonly shared?: boolean;
  /** Timed events (`verbose`: Envoy's timing logs), OTLP span events / Zipkin annotations. */
  events?: SpanEvent[];
}

/** A named point in time within a span. */
export interface SpanEvent {
  /** Nanoseconds since the Unix epoch. */
  readonly timeNs: bigint;
  readonly name: string;
}

/** Wall-clock now in nanoseconds since the epoch, with the monotonic clock's sub-millisecond precision. */
export function nowNs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
}
