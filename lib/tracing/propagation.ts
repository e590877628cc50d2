/**
 * Trace-context propagation: W3C Trace Context (`traceparent` / `tracestate`, the OpenTelemetry tracer's format)
 * and B3 (Zipkin's multi-header `x-b3-*` and single `b3`), read from a downstream request and written into the
 * request that goes upstream, with the proxy's own span as the parent.
 *
 * A malformed propagation header is ignored (the request starts a new trace); it never fails the request.
 *
 * @module
 */
import type { HeaderMap } from "../api/headers.ts";

/** The propagation format a context arrived in (and is answered in, besides W3C). */
export type PropagationFormat = "w3c" | "b3" | "b3-single";

/** A parent span context extracted from a request. */
export interface SpanContext {
  /** 32 lower-case hex digits (a 64-bit B3 trace id is left-padded with zeros). */
  readonly traceId: string;
  /** 16 lower-case hex digits: the caller's span, the parent of ours. */
  readonly spanId: string;
  /** The caller's sampling decision; undefined when it made none (B3 without `x-b3-sampled`): ours decides. */
  readonly sampled: boolean | undefined;
  /** `tracestate` as received ("" if none); passed on unchanged. */
  readonly traceState: string;
  readonly format: PropagationFormat;
  /** B3 sent a 64-bit trace id: answered in the same width. */
  readonly shortTraceId: boolean;
  /** B3's parent of the caller's span (`x-b3-parentspanid`, the single header's 4th field), or "". */
  readonly parentSpanId: string;
}

const HEX = /^[0-9a-f]+$/;
const ZERO32 = "00000000000000000000000000000000";

function validId(s: string, len: number): boolean {
  return s.length === len && HEX.test(s) && s !== ZERO32.slice(0, len);
}

/**
 * Parses a `traceparent` value (W3C Trace Context level 1): `version-traceid-parentid-flags`. Version `00` has
 * exactly these four fields; a later version may append more after a dash (ignored); `ff` is invalid.
 */
export function parseTraceparent(value: string): { traceId: string; spanId: string; sampled: boolean } | undefined {
  const v = value.trim();
  if (v.length < 55) return undefined;
  const version = v.slice(0, 2);
  if (!HEX.test(version) || version === "ff") return undefined;
  if (version === "00" && v.length !== 55) return undefined;
  if (v.length > 55 && v[55] !== "-") return undefined;
  if (v[2] !== "-" || v[35] !== "-" || v[52] !== "-") return undefined;
  const traceId = v.slice(3, 35);
  const spanId = v.slice(36, 52);
  const flags = v.slice(53, 55);
  if (!validId(traceId, 32) || !validId(spanId, 16) || !HEX.test(flags)) return undefined;
  return { traceId, spanId, sampled: (parseInt(flags, 16) & 1) === 1 };
}

function b3TraceId(s: string): { id: string; short: boolean } | undefined {
  const t = s.trim().toLowerCase();
  if (validId(t, 32)) return { id: t, short: false };
  if (validId(t, 16)) return { id: `0000000000000000${t}`, short: true };
  return undefined;
}

function b3Sampled(s: string | undefined): boolean | undefined {
  if (s === undefined) return undefined;
  const v = s.trim().toLowerCase();
  if (v === "1" || v === "true" || v === "d") return true;
  if (v === "0" || v === "false") return false;
  return undefined;
}

/** Parses a single `b3` header: `traceid-spanid[-sampling[-parentspanid]]` (a bare sampling flag has no context). */
export function parseB3Single(
  value: string,
): { traceId: string; spanId: string; sampled: boolean | undefined; short: boolean; parentSpanId: string } | undefined {
  const parts = value.trim().split("-");
  if (parts.length < 2 || parts.length > 4) return undefined;
  const t = b3TraceId(parts[0]!);
  const spanId = parts[1]!.toLowerCase();
  if (!t || !validId(spanId, 16)) return undefined;
  let sampled: boolean | undefined;
  if (parts.length >= 3) {
    sampled = b3Sampled(parts[2]);
    if (sampled === undefined) return undefined;
  }
  const parentSpanId = parts.length === 4 ? parts[3]!.toLowerCase() : "";
  if (parts.length === 4 && !validId(parentSpanId, 16)) return undefined;
  return { traceId: t.id, spanId, sampled, short: t.short, parentSpanId };
}

function extractW3c(h: HeaderMap): SpanContext | undefined {
  const tps = h.getAll("traceparent");
  if (tps.length !== 1) return undefined;
  const tp = parseTraceparent(tps[0]!);
  if (!tp) return undefined;
  return { ...tp, traceState: h.getJoined("tracestate") ?? "", format: "w3c", shortTraceId: false, parentSpanId: "" };
}

function extractB3(h: HeaderMap): SpanContext | undefined {
  const tid = h.get("x-b3-traceid");
  const sid = h.get("x-b3-spanid");
  if (tid !== undefined && sid !== undefined) {
    const t = b3TraceId(tid);
    const s = sid.trim().toLowerCase();
    if (t && validId(s, 16)) {
      const flags = h.get("x-b3-flags")?.trim();
      const sampled = flags === "1" ? true : b3Sampled(h.get("x-b3-sampled"));
      const p = h.get("x-b3-parentspanid")?.trim().toLowerCase() ?? "";
      return {
        traceId: t.id,
        spanId: s,
        sampled,
        traceState: "",
        format: "b3",
        shortTraceId: t.short,
        parentSpanId: validId(p, 16) ? p : "",
      };
    }
  }
  const single = h.get("b3");
  if (single !== undefined) {
    const b = parseB3Single(single);
    if (b) {
      return {
        traceId: b.traceId,
        spanId: b.spanId,
        sampled: b.sampled,
        traceState: "",
        format: "b3-single",
        shortTraceId: b.short,
        parentSpanId: b.parentSpanId,
      };
    }
  }
  return undefined;
}

/**
 * The parent context of a request. `prefer: "w3c"` (the OpenTelemetry tracer): `traceparent` (with `tracestate`)
 * when valid, else B3 multi-header, else the single `b3` header. `prefer: "b3"` (Zipkin): B3 first, and W3C only
 * when `w3c` allows it. Undefined when there is none or what there is does not parse (a new trace starts).
 */
export function extractContext(h: HeaderMap, prefer: "w3c" | "b3" = "w3c", w3c = true): SpanContext | undefined {
  if (prefer === "w3c") return extractW3c(h) ?? extractB3(h);
  return extractB3(h) ?? (w3c ? extractW3c(h) : undefined);
}

/** What is written into the upstream request: our span as the parent of the next hop. */
export interface InjectContext {
  readonly traceId: string;
  /** Our span's id. */
  readonly spanId: string;
  /** Our parent's span id ("" for a root span): B3's `x-b3-parentspanid`. */
  readonly parentSpanId: string;
  readonly sampled: boolean;
  readonly traceState: string;
}

/** Which formats {@link injectContext} always writes (B3 is also rewritten wherever the request carries it). */
export interface InjectMode {
  /** `traceparent` / `tracestate`. */
  readonly w3c: boolean;
  /** `x-b3-*` even when the request had none (Zipkin). */
  readonly b3: boolean;
}

/** The OpenTelemetry tracer's injection: W3C always, B3 where the request has it. */
export const OTEL_INJECT: InjectMode = { w3c: true, b3: false };

/** The `traceparent` value for a context. */
export function formatTraceparent(c: InjectContext): string {
  return `00-${c.traceId}-${c.spanId}-${c.sampled ? "01" : "00"}`;
}

/**
 * Writes the context into `h`: `traceparent` (and `tracestate` when there is one) unless `mode` says not; B3 when
 * `mode` says so or the request carries B3 (`x-b3-*` and/or `b3`, whichever it has, each rewritten so that no stale
 * parent goes on), 64-bit trace ids in 64 bits.
 */
export function injectContext(h: HeaderMap, c: InjectContext, mode: InjectMode = OTEL_INJECT): void {
  if (mode.w3c) {
    h.set("traceparent", formatTraceparent(c));
    if (c.traceState !== "") h.set("tracestate", c.traceState);
  }
  // One pass over the names for B3 (most requests carry none).
  let multi = mode.b3;
  let single = false;
  const kv = h.kv;
  for (let i = 0; i < kv.length; i += 2) {
    const k = kv[i]!;
    if (k.charCodeAt(0) !== 120 && k.charCodeAt(0) !== 98) continue; // "x", "b"
    if (k === "b3") single = true;
    else if (k.startsWith("x-b3-")) multi = true;
  }
  if (!multi && !single) return;
  // A trace id whose upper 64 bits are zero (a 64-bit B3 id, left-padded for W3C) is written in 64 bits, unless the
  // request's header has 128.
  const width = (v: string | undefined) =>
    c.traceId.startsWith("0000000000000000") && (v === undefined || v.trim().length !== 32) ? 16 : 32;
  if (multi) {
    const tid = c.traceId.slice(32 - width(h.get("x-b3-traceid")));
    h.set("x-b3-traceid", tid);
    h.set("x-b3-spanid", c.spanId);
    if (c.parentSpanId !== "") h.set("x-b3-parentspanid", c.parentSpanId);
    else h.remove("x-b3-parentspanid");
    h.set("x-b3-sampled", c.sampled ? "1" : "0");
    h.remove("x-b3-flags");
  }
  if (single) {
    const tid = c.traceId.slice(32 - width(h.get("b3")?.split("-")[0]));
    h.set("b3", `${tid}-${c.spanId}-${c.sampled ? "1" : "0"}${c.parentSpanId !== "" ? `-${c.parentSpanId}` : ""}`);
  }
}

/** Two hex digits per byte value. */
const HEX_BYTE: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
/**
 * Random bytes drawn 4 KiB at a time: one `crypto.getRandomValues` call (a runtime op) per 256 span ids instead of
 * one per id (measured: 1.4 µs per id with a call each, 0.1 µs from the pool).
 */
const pool = new Uint8Array(4096);
let poolAt = pool.length;

/** `bytes` random bytes as lower-case hex, never all zeros (an invalid id in W3C and B3). */
export function randomHexId(bytes: 8 | 16): string {
  if (poolAt + bytes > pool.length) {
    crypto.getRandomValues(pool);
    poolAt = 0;
  }
  let s = "";
  let nonZero = 0;
  for (let i = 0; i < bytes; i++) {
    const x = pool[poolAt++]!;
    nonZero |= x;
    s += HEX_BYTE[x]!;
  }
  return nonZero === 0 ? randomHexId(bytes) : s;
}
