/**
 * Test helpers for the HTTP/2 codec: a client/server pair wired through queues, a recording decoder, a raw frame
 * writer/reader for hostile peers, and a counting stats sink. Used by this folder's tests only.
 *
 * @module
 */
import type {
  CodecOptions,
  Http2CounterName,
  Http2Stats,
  StreamDecoder,
  StreamEncoder,
  StreamResetReason,
} from "../../lib/api/codec.ts";
import { HeaderMap } from "../../lib/api/headers.ts";
import { Http2ClientCodec } from "../../codecs/http2/client.ts";
import {
  FRAME_HEADER_LENGTH,
  FrameType,
  OutBuf,
  parseFrameHeader,
  PREFACE,
  putFrame,
  putHeaderBlock,
  putSettings,
} from "../../codecs/http2/frames.ts";
import { HpackDecoder, HpackEncoder } from "../../codecs/http2/hpack.ts";
import { Http2ServerCodec } from "../../codecs/http2/server.ts";

/** Counts stats. */
export class CountingStats implements Http2Stats {
  readonly counts = new Map<string, number>();
  active = 0;
  inc(name: Http2CounterName): void {
    this.counts.set(name, (this.counts.get(name) ?? 0) + 1);
  }
  streamsActive(delta: number): void {
    this.active += delta;
  }
  get(name: Http2CounterName): number {
    return this.counts.get(name) ?? 0;
  }
}

/** A decoder that records what it gets. */
export class Recorder implements StreamDecoder {
  headers: HeaderMap | undefined;
  informational: HeaderMap[] = [];
  chunks: Uint8Array[] = [];
  trailers: HeaderMap | undefined;
  ended = false;
  reset: StreamResetReason | undefined;
  resetDetail: string | undefined;
  encoder: StreamEncoder | undefined;
  onHeaders: ((h: HeaderMap, end: boolean) => void) | undefined;
  onData: ((d: Uint8Array, end: boolean) => void) | undefined;
  onEnd: (() => void) | undefined;
  decode1xxHeaders(h: HeaderMap): void {
    this.informational.push(h);
  }
  decodeHeaders(h: HeaderMap, end: boolean): void {
    this.headers = h;
    if (end) this.ended = true;
    this.onHeaders?.(h, end);
    if (end) this.onEnd?.();
  }
  decodeData(d: Uint8Array, end: boolean): void {
    this.chunks.push(d.slice());
    if (end) this.ended = true;
    this.onData?.(d, end);
    if (end) this.onEnd?.();
  }
  decodeTrailers(t: HeaderMap): void {
    this.trailers = t;
    this.ended = true;
    this.onEnd?.();
  }
  onReset(reason: StreamResetReason, detail?: string): void {
    this.reset = reason;
    this.resetDetail = detail;
  }
  get body(): string {
    let n = 0;
    for (const c of this.chunks) n += c.length;
    const b = new Uint8Array(n);
    let o = 0;
    for (const c of this.chunks) {
      b.set(c, o);
      o += c.length;
    }
    return new TextDecoder().decode(b);
  }
  get bodyLength(): number {
    let n = 0;
    for (const c of this.chunks) n += c.length;
    return n;
  }
}

/** Joins chunks. */
export function concat(chunks: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** A parsed frame. */
export interface TestFrame {
  type: number;
  flags: number;
  id: number;
  payload: Uint8Array;
}

/** Parses a byte stream into frames (skipping the client preface if present). */
export function parseFrames(bytes: Uint8Array): TestFrame[] {
  let off = 0;
  if (bytes.length >= 24 && PREFACE.every((b, i) => bytes[i] === b)) off = 24;
  const out: TestFrame[] = [];
  const fh = { length: 0, type: 0, flags: 0, streamId: 0 };
  while (off + FRAME_HEADER_LENGTH <= bytes.length) {
    parseFrameHeader(bytes, off, fh);
    const end = off + FRAME_HEADER_LENGTH + fh.length;
    if (end > bytes.length) break;
    out.push({ type: fh.type, flags: fh.flags, id: fh.streamId, payload: bytes.slice(off + 9, end) });
    off = end;
  }
  return out;
}

/** The GOAWAY frame's error code among `frames`, or undefined. */
export function goAwayCode(frames: readonly TestFrame[]): number | undefined {
  let code: number | undefined;
  for (const f of frames) {
    if (f.type === FrameType.GOAWAY) {
      code = ((f.payload[4]! << 24) | (f.payload[5]! << 16) | (f.payload[6]! << 8) | f.payload[7]!) >>> 0;
    }
  }
  return code;
}

/** The RST_STREAM codes among `frames` as [id, code] pairs. */
export function rstCodes(frames: readonly TestFrame[]): [number, number][] {
  return frames.filter((f) => f.type === FrameType.RST_STREAM).map((
    f,
  ) => [f.id, ((f.payload[0]! << 24) | (f.payload[1]! << 16) | (f.payload[2]! << 8) | f.payload[3]!) >>> 0]);
}

/** A server codec with a raw, hand-driven client in front of it. */
export class RawClient {
  readonly out: Uint8Array[] = [];
  readonly server: Http2ServerCodec;
  readonly stats = new CountingStats();
  readonly enc = new HpackEncoder();
  readonly dec = new HpackDecoder();
  readonly streams: { encoder: StreamEncoder; rec: Recorder }[] = [];
  error: unknown;
  closed: string | undefined;
  #seen = 0;

  constructor(options: CodecOptions = {}, onStream?: (encoder: StreamEncoder, rec: Recorder) => void) {
    this.server = new Http2ServerCodec((b) => this.out.push(b.slice()), {
      newStream: (encoder) => {
        const rec = new Recorder();
        rec.encoder = encoder;
        this.streams.push({ encoder, rec });
        onStream?.(encoder, rec);
        return rec;
      },
    }, { http2Stats: this.stats, closeConnection: (r) => this.closed = r, ...options });
  }

  /** Sends the preface and an empty SETTINGS (plus `extra`). */
  start(settings: number[] = []): this {
    const o = new OutBuf();
    putSettings(o, settings);
    this.send(concat([PREFACE, o.take()]));
    return this;
  }

  /** Feeds bytes; a thrown error is kept in `error`. */
  send(bytes: Uint8Array): void {
    try {
      this.server.dispatch(bytes);
    } catch (e) {
      this.error = e;
    }
  }

  /** Builds frames with `fn` and sends them. */
  frames(fn: (o: OutBuf) => void): void {
    const o = new OutBuf();
    fn(o);
    this.send(o.take().slice());
  }

  /** Sends a request's HEADERS. */
  headers(id: number, kv: string[], endStream: boolean): void {
    this.frames((o) => putHeaderBlock(o, id, this.enc.encode(kv), endStream, 16384));
  }

  /** Sends an arbitrary frame. */
  frame(type: number, flags: number, id: number, payload: Uint8Array = new Uint8Array(0)): void {
    this.frames((o) => putFrame(o, type, flags, id, payload));
  }

  /** Frames the server wrote since the last call. */
  received(): TestFrame[] {
    const bytes = concat(this.out.slice(this.#seen));
    this.#seen = this.out.length;
    return parseFrames(bytes);
  }

  /** All frames the server wrote. */
  all(): TestFrame[] {
    return parseFrames(concat(this.out));
  }
}

/** Standard GET request headers. */
export const GET = [":method", "GET", ":scheme", "http", ":authority", "example.com", ":path", "/"];

/**
 * A client codec and a server codec joined through queues; `pump()` delivers until both are quiet (optionally
 * splitting every chunk into pieces of `split` bytes).
 */
export class Pair {
  readonly c2s: Uint8Array[] = [];
  readonly s2c: Uint8Array[] = [];
  readonly server: Http2ServerCodec;
  readonly client: Http2ClientCodec;
  readonly serverStats = new CountingStats();
  readonly clientStats = new CountingStats();
  readonly serverStreams: { encoder: StreamEncoder; rec: Recorder }[] = [];
  serverError: unknown;
  clientError: unknown;
  goAways: (number | undefined)[] = [];
  capacityChanges = 0;
  split = 0;
  /** Everything each side wrote, for frame inspection. */
  readonly c2sAll: Uint8Array[] = [];
  readonly s2cAll: Uint8Array[] = [];

  constructor(
    opts: { server?: CodecOptions; client?: CodecOptions } = {},
    onStream?: (encoder: StreamEncoder, rec: Recorder, headers: HeaderMap | undefined) => void,
  ) {
    this.server = new Http2ServerCodec((b) => {
      this.s2c.push(b.slice());
      this.s2cAll.push(b.slice());
    }, {
      newStream: (encoder) => {
        const rec = new Recorder();
        rec.encoder = encoder;
        this.serverStreams.push({ encoder, rec });
        if (onStream) rec.onHeaders = (h) => onStream(encoder, rec, h);
        return rec;
      },
    }, { http2Stats: this.serverStats, ...opts.server });
    this.client = new Http2ClientCodec(
      (b) => {
        this.c2s.push(b.slice());
        this.c2sAll.push(b.slice());
      },
      { http2Stats: this.clientStats, ...opts.client },
      {
        onGoAway: (id) => this.goAways.push(id),
        onStreamCapacityChanged: () => this.capacityChanges++,
      },
    );
  }

  /** Delivers queued bytes both ways until nothing moves. */
  pump(): void {
    for (let rounds = 0; rounds < 10000; rounds++) {
      if (this.c2s.length === 0 && this.s2c.length === 0) return;
      if (this.c2s.length > 0) {
        const b = concat(this.c2s.splice(0));
        this.#feed(b, true);
      }
      if (this.s2c.length > 0) {
        const b = concat(this.s2c.splice(0));
        this.#feed(b, false);
      }
    }
    throw new Error("pump: no quiescence");
  }

  #feed(b: Uint8Array, toServer: boolean): void {
    const step = this.split > 0 ? this.split : b.length;
    for (let o = 0; o < b.length; o += step) {
      const piece = b.slice(o, Math.min(b.length, o + step));
      try {
        if (toServer) {
          if (this.serverError === undefined) this.server.dispatch(piece);
        } else if (this.clientError === undefined) this.client.dispatch(piece);
      } catch (e) {
        if (toServer) this.serverError = e;
        else this.clientError = e;
      }
    }
  }

  /** Starts a request; returns its recorder and encoder. */
  request(kv: string[], body?: string | Uint8Array, trailers?: string[]): { rec: Recorder; enc: StreamEncoder } {
    const rec = new Recorder();
    const enc = this.client.newStream(rec);
    const hasBody = body !== undefined;
    enc.encodeHeaders(new HeaderMap(kv.slice()), !hasBody && trailers === undefined);
    if (hasBody) {
      const b = typeof body === "string" ? new TextEncoder().encode(body) : body;
      enc.encodeData(b, trailers === undefined);
    }
    if (trailers !== undefined) enc.encodeTrailers(new HeaderMap(trailers.slice()));
    return { rec, enc };
  }
}

/** Encodes text. */
export function bytes(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}
