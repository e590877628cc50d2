/**
 * Test helpers for the HTTP/1 codec tests: event recorders, byte helpers and a seeded PRNG.
 *
 * @module
 */
import type { StreamDecoder, StreamEncoder } from "../../lib/api/codec.ts";
import { CodecError } from "../../lib/api/errors.ts";
import { HeaderMap } from "../../lib/api/headers.ts";
import type { Http1ClientCodec } from "../../codecs/http1/client.ts";
import { http1CodecFactory } from "../../codecs/http1/codec.ts";
import type { Http1ResponseEncoder, Http1ServerCodec } from "../../codecs/http1/server.ts";
import type { CodecOptions } from "../../lib/api/codec.ts";

/** Latin1 bytes of `s`. */
export function bytes(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
  return b;
}

/** Latin1 string of `b`. */
export function str(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]!);
  return s;
}

/** A recorded decoder event. */
export type Ev =
  | { t: "headers"; kv: string[]; end: boolean }
  | { t: "1xx"; kv: string[] }
  | { t: "data"; d: string; end: boolean }
  | { t: "trailers"; kv: string[] }
  | { t: "reset"; reason: string };

/** A decoder that records into `events`; `onEnd` runs when the stream's decode side ends. */
export function recorder(events: Ev[], onEnd?: () => void): StreamDecoder {
  return {
    decode1xxHeaders(h) {
      events.push({ t: "1xx", kv: h.kv.slice() });
    },
    decodeHeaders(h, end) {
      events.push({ t: "headers", kv: h.kv.slice(), end });
      if (end) onEnd?.();
    },
    decodeData(d, end) {
      events.push({ t: "data", d: str(d), end });
      if (end) onEnd?.();
    },
    decodeTrailers(t) {
      events.push({ t: "trailers", kv: t.kv.slice() });
      onEnd?.();
    },
    onReset(reason) {
      events.push({ t: "reset", reason });
    },
  };
}

/** Merges adjacent data events and drops empty non-final ones, so that any input split compares equal. */
export function normalize(events: Ev[]): Ev[] {
  const out: Ev[] = [];
  for (const e of events) {
    const last = out[out.length - 1];
    if (e.t === "data") {
      if (last !== undefined && last.t === "data" && !last.end) {
        out[out.length - 1] = { t: "data", d: last.d + e.d, end: e.end };
        continue;
      }
      if (e.d === "" && !e.end) continue;
    }
    out.push(e);
  }
  return out;
}

/** A server codec whose streams are recorded; responses are sent by the test through `encoders`. */
export interface ServerHarness {
  codec: Http1ServerCodec;
  events: Ev[];
  encoders: Http1ResponseEncoder[];
  /** Everything written so far, as latin1, and clears it. */
  take(): string;
}

/**
 * Creates a server harness. With `autoRespond`, each request is answered (200, body `ok`) as soon as its decode
 * side ends, synchronously.
 */
export function serverHarness(options: CodecOptions = {}, autoRespond = false): ServerHarness {
  const events: Ev[] = [];
  const encoders: Http1ResponseEncoder[] = [];
  let out: number[] = [];
  const codec = http1CodecFactory.createServer((b) => {
    for (let i = 0; i < b.length; i++) out.push(b[i]!);
  }, {
    newStream(enc: StreamEncoder) {
      const e = enc as Http1ResponseEncoder;
      encoders.push(e);
      return recorder(events, autoRespond ? () => respond(e, 200, "ok") : undefined);
    },
  }, options);
  return {
    codec,
    events,
    encoders,
    take() {
      const s = str(new Uint8Array(out));
      out = [];
      return s;
    },
  };
}

/** Sends a complete response with a content-length body. */
export function respond(enc: StreamEncoder, status: number, body: string): void {
  enc.encodeHeaders(new HeaderMap([":status", String(status), "content-length", String(body.length)]), false);
  enc.encodeData(bytes(body), true);
}

/** A client codec harness. */
export interface ClientHarness {
  codec: Http1ClientCodec;
  events: Ev[];
  take(): string;
}

/** Creates a client codec harness. */
export function clientHarness(options: CodecOptions = {}): ClientHarness {
  const events: Ev[] = [];
  let out: number[] = [];
  const codec = http1CodecFactory.createClient((b) => {
    for (let i = 0; i < b.length; i++) out.push(b[i]!);
  }, options);
  return {
    codec,
    events,
    take() {
      const s = str(new Uint8Array(out));
      out = [];
      return s;
    },
  };
}

/** Mulberry32: a small seeded PRNG returning floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Splits `b` into pieces at random points. */
export function randomSplit(b: Uint8Array, rnd: () => number): Uint8Array[] {
  const parts: Uint8Array[] = [];
  let i = 0;
  while (i < b.length) {
    const n = 1 + Math.floor(rnd() * Math.min(40, b.length - i));
    parts.push(b.slice(i, i + n));
    i += n;
  }
  return parts;
}

/** Asserts that `fn` throws a {@link CodecError} with `status`; returns it. */
export function assertCodecError(fn: () => void, status: number, label = ""): CodecError {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof CodecError)) throw new Error(`${label}: expected CodecError, got ${e}`);
    if (e.status !== status) throw new Error(`${label}: expected status ${status}, got ${e.status} (${e.message})`);
    return e;
  }
  throw new Error(`${label}: expected CodecError ${status}, nothing thrown`);
}
