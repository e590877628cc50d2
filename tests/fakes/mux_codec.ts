/**
 * A toy multiplexed protocol for the `multiplex-stream-id` pool tests: a client codec ({@link createMuxCodecFactory})
 * and a test server ({@link MuxTestServer}) speaking it over real sockets.
 *
 * Frames are `u32 stream id | u8 type | u8 flags | u32 length | payload`, big-endian. HEADERS and TRAILERS carry a
 * JSON list of `[name, value]` pairs; DATA carries bytes; flag 1 ends the sender's side of the stream. RST_STREAM
 * carries one byte (0: cancel, 1: refused). On stream 0, SETTINGS carries the u32 number of concurrent streams the
 * server takes, and GOAWAY the u32 last stream id it will process. Client streams have odd ids from 1. There is no
 * wire flow control: a stream's `readDisable` holds its frames back in the codec.
 *
 * @module
 */
import type {
  ClientCodecCallbacks,
  ClientConnectionCodec,
  CodecFactory,
  CodecOptions,
  Stream,
  StreamCallbacks,
  StreamDecoder,
  StreamEncoder,
  StreamResetReason,
  WriteFn,
} from "../../lib/api/codec.ts";
import { CodecError } from "../../lib/api/errors.ts";
import { HeaderMap } from "../../lib/api/headers.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Frame types of the toy protocol. */
export const FrameType = { HEADERS: 1, DATA: 2, TRAILERS: 3, RST: 4, SETTINGS: 5, GOAWAY: 6 } as const;
const END = 1;
const HEAD = 10;

/** Encodes one frame. */
export function frame(id: number, type: number, flags: number, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(HEAD + payload.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, id);
  v.setUint8(4, type);
  v.setUint8(5, flags);
  v.setUint32(6, payload.length);
  out.set(payload, HEAD);
  return out;
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

function headersPayload(h: HeaderMap): Uint8Array {
  return enc.encode(JSON.stringify(Object.entries(h.toObject())));
}

/** One parsed frame; `payload` is a copy. */
export interface Frame {
  id: number;
  type: number;
  flags: number;
  payload: Uint8Array;
}

/** Incremental frame parser: any split of the input gives the same frames. */
export class FrameReader {
  #buf = new Uint8Array(0);

  /** Appends bytes and returns the frames completed by them. */
  push(data: Uint8Array): Frame[] {
    const b = new Uint8Array(this.#buf.length + data.length);
    b.set(this.#buf);
    b.set(data, this.#buf.length);
    const out: Frame[] = [];
    let off = 0;
    while (b.length - off >= HEAD) {
      const v = new DataView(b.buffer, off);
      const len = v.getUint32(6);
      if (b.length - off < HEAD + len) break;
      out.push({
        id: v.getUint32(0),
        type: v.getUint8(4),
        flags: v.getUint8(5),
        payload: b.slice(off + HEAD, off + HEAD + len),
      });
      off += HEAD + len;
    }
    this.#buf = b.slice(off);
    return out;
  }
}

function parseHeaders(p: Uint8Array): HeaderMap {
  let pairs: unknown;
  try {
    pairs = JSON.parse(dec.decode(p));
  } catch {
    throw new CodecError("BadHeader", "mux: headers are not JSON");
  }
  if (!Array.isArray(pairs)) throw new CodecError("BadHeader", "mux: headers are not a list");
  return HeaderMap.from(pairs as [string, string][]);
}

/** One client stream: encoder and transport side. */
class MuxClientStream implements StreamEncoder, Stream {
  readonly id: number;
  readonly decoder: StreamDecoder;
  readonly #codec: MuxClientCodec;
  headersSent = false;
  localEnded = false;
  remoteEnded = false;
  #disabled = 0;
  #held: Frame[] = [];
  callbacks: StreamCallbacks[] = [];
  readonly protocol = "MUX/1";
  readonly bufferLimit = 65536;

  constructor(codec: MuxClientCodec, id: number, decoder: StreamDecoder) {
    this.#codec = codec;
    this.id = id;
    this.decoder = decoder;
  }

  get stream(): Stream {
    return this;
  }

  /** Nesting of `readDisable` now (for tests). */
  get readDisabled(): number {
    return this.#disabled;
  }

  encodeHeaders(headers: HeaderMap, endStream: boolean): void {
    this.headersSent = true;
    this.#codec.send(frame(this.id, FrameType.HEADERS, endStream ? END : 0, headersPayload(headers)));
    if (endStream) this.#localEnd();
  }

  encodeData(data: Uint8Array, endStream: boolean): void {
    this.#codec.send(frame(this.id, FrameType.DATA, endStream ? END : 0, data));
    if (endStream) this.#localEnd();
  }

  encodeTrailers(trailers: HeaderMap): void {
    this.#codec.send(frame(this.id, FrameType.TRAILERS, END, headersPayload(trailers)));
    this.#localEnd();
  }

  resetStream(_reason: StreamResetReason): void {
    if (!this.#codec.streams.has(this.id)) return;
    this.#codec.streams.delete(this.id);
    this.#codec.send(frame(this.id, FrameType.RST, 0, new Uint8Array([0])));
  }

  readDisable(disable: boolean): void {
    if (disable) {
      this.#disabled++;
      return;
    }
    if (this.#disabled === 0 || --this.#disabled > 0) return;
    while (this.#disabled === 0 && this.#held.length > 0) this.deliver(this.#held.shift()!);
  }

  addCallbacks(callbacks: StreamCallbacks): void {
    this.callbacks.push(callbacks);
  }

  removeCallbacks(callbacks: StreamCallbacks): void {
    const i = this.callbacks.indexOf(callbacks);
    if (i >= 0) this.callbacks.splice(i, 1);
  }

  /** A frame for this stream arrived. */
  onFrame(f: Frame): void {
    if (this.#disabled > 0) this.#held.push(f);
    else this.deliver(f);
  }

  deliver(f: Frame): void {
    const end = (f.flags & END) !== 0;
    if (f.type === FrameType.HEADERS) {
      if (end) this.#remoteEnd();
      this.decoder.decodeHeaders(parseHeaders(f.payload), end);
    } else if (f.type === FrameType.DATA) {
      if (end) this.#remoteEnd();
      this.decoder.decodeData(f.payload, end);
    } else if (f.type === FrameType.TRAILERS) {
      this.#remoteEnd();
      this.decoder.decodeTrailers(parseHeaders(f.payload));
    }
  }

  /** Ends the stream with a reset the codec saw (not one the caller asked for). */
  reset(reason: StreamResetReason, detail: string): void {
    this.#codec.streams.delete(this.id);
    this.decoder.onReset?.(reason, detail);
    for (const cb of [...this.callbacks]) cb.onResetStream?.(reason, detail);
  }

  #localEnd(): void {
    this.localEnded = true;
    if (this.remoteEnded) this.#codec.streams.delete(this.id);
  }

  #remoteEnd(): void {
    this.remoteEnded = true;
    if (this.localEnded) this.#codec.streams.delete(this.id);
  }
}

/** The toy protocol's client side. */
export class MuxClientCodec implements ClientConnectionCodec {
  readonly protocol = "MUX/1";
  readonly streams = new Map<number, MuxClientStream>();
  readonly #write: WriteFn;
  readonly #callbacks: ClientCodecCallbacks | undefined;
  readonly #ownMax: number;
  readonly options: CodecOptions;
  #peerMax: number;
  #nextId = 1;
  #reader = new FrameReader();
  goAway = false;
  /** Times the pool told of the socket's watermarks (for tests). */
  above = 0;
  below = 0;
  closed = false;

  constructor(write: WriteFn, options: CodecOptions, callbacks: ClientCodecCallbacks | undefined, initial: number) {
    this.#write = write;
    this.#callbacks = callbacks;
    this.options = options;
    this.#ownMax = options.http2?.maxConcurrentStreams ?? Number.MAX_SAFE_INTEGER;
    this.#peerMax = initial;
  }

  get maxConcurrentStreams(): number {
    return Math.min(this.#ownMax, this.#peerMax);
  }

  get activeStreams(): number {
    return this.streams.size;
  }

  get reusable(): boolean {
    return !this.goAway;
  }

  send(b: Uint8Array): void {
    if (!this.closed) this.#write(b);
  }

  newStream(decoder: StreamDecoder): StreamEncoder {
    if (this.goAway) throw new Error("mux: the connection is going away");
    const s = new MuxClientStream(this, this.#nextId, decoder);
    this.#nextId += 2;
    this.streams.set(s.id, s);
    return s;
  }

  dispatch(data: Uint8Array): void {
    for (const f of this.#reader.push(data)) {
      if (f.id === 0) {
        const n = f.payload.length >= 4 ? new DataView(f.payload.buffer).getUint32(0) : 0;
        if (f.type === FrameType.SETTINGS) {
          this.#peerMax = n;
          this.#callbacks?.onStreamCapacityChanged?.();
        } else if (f.type === FrameType.GOAWAY) {
          this.goAway = true;
          this.#callbacks?.onGoAway(n);
          for (const s of [...this.streams.values()]) {
            if (s.id > n) s.reset("remote-refused-stream", "mux: GOAWAY above the last stream id");
          }
        } else {
          throw new CodecError("Protocol", `mux: frame type ${f.type} on stream 0`);
        }
        continue;
      }
      const s = this.streams.get(f.id);
      if (s === undefined) continue; // reset locally, or finished
      if (f.type === FrameType.RST) {
        const refused = f.payload[0] === 1;
        s.reset(refused ? "remote-refused-stream" : "remote-reset", refused ? "mux: refused" : "mux: reset by peer");
      } else {
        s.onFrame(f);
      }
    }
  }

  onEof(): void {
    for (const s of [...this.streams.values()]) s.reset("connection-termination", "mux: peer closed");
  }

  onConnectionClose(): void {
    this.closed = true;
    for (const s of [...this.streams.values()]) s.reset("connection-termination", "mux: connection closed");
  }

  onAboveWriteBufferHighWatermark(): void {
    this.above++;
    for (const s of [...this.streams.values()]) for (const cb of [...s.callbacks]) cb.onAboveWriteBufferHighWatermark();
  }

  onBelowWriteBufferLowWatermark(): void {
    this.below++;
    for (const s of [...this.streams.values()]) for (const cb of [...s.callbacks]) cb.onBelowWriteBufferLowWatermark();
  }
}

/** Options of {@link createMuxCodecFactory}. */
export interface MuxCodecFactoryOptions {
  /** Concurrent streams the codec reports before the server's SETTINGS (default 100). */
  initialMaxConcurrentStreams?: number;
}

/** A `multiplex-stream-id` codec factory of the toy protocol; `clients` lists the codecs it created. */
export function createMuxCodecFactory(
  options: MuxCodecFactoryOptions = {},
): CodecFactory & { readonly clients: MuxClientCodec[] } {
  const clients: MuxClientCodec[] = [];
  return {
    name: "mux-test",
    poolMode: "multiplex-stream-id",
    clients,
    createServer() {
      throw new Error("mux-test: no server codec (MuxTestServer speaks the protocol itself)");
    },
    createClient(write, codecOptions = {}, callbacks) {
      const c = new MuxClientCodec(write, codecOptions, callbacks, options.initialMaxConcurrentStreams ?? 100);
      clients.push(c);
      return c;
    },
  };
}

/** One request as the test server saw it. */
export interface MuxSeenRequest {
  /** Accepting order of its connection (1-based). */
  conn: number;
  id: number;
  headers: Record<string, string>;
  body: string;
}

/** What the test server does with a request. */
export interface MuxReply {
  status?: number;
  body?: string;
  delayMs?: number;
  /** Answer only when {@link MuxTestServer.release} is called. */
  hold?: boolean;
  /** RST_STREAM with the refused code instead of an answer. */
  refuse?: boolean;
  /** RST_STREAM with the cancel code instead of an answer. */
  reset?: boolean;
  /** Close the connection instead of answering. */
  abort?: boolean;
}

interface ServerConn {
  readonly n: number;
  readonly conn: Deno.Conn;
  writes: Promise<void>;
  /** Streams opened and not yet answered or reset. */
  open: Set<number>;
  maxOpen: number;
  lastId: number;
}

/**
 * A server of the toy protocol on 127.0.0.1:0. It announces `capacity` in SETTINGS when a connection opens and
 * answers each complete request with headers (`:status`, `x-conn`, `x-stream`) and a body, as `reply` says.
 */
export class MuxTestServer {
  readonly listener: Deno.TcpListener;
  readonly requests: MuxSeenRequest[] = [];
  readonly conns = new Map<number, ServerConn>();
  accepted = 0;
  /** SETTINGS value sent on each new connection; undefined: none sent. */
  capacity: number | undefined;
  reply: (req: MuxSeenRequest) => MuxReply = () => ({});
  #held: (() => void)[] = [];
  #tasks: Promise<void>[] = [];
  #loop: Promise<void>;

  constructor(options: { capacity?: number } = {}) {
    this.capacity = options.capacity;
    this.listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#loop = this.#accept();
  }

  get port(): number {
    return this.listener.addr.port;
  }

  /** Most streams open at once on connection `n` (answers in progress included). */
  maxOpen(n: number): number {
    return this.conns.get(n)?.maxOpen ?? 0;
  }

  /** Requests held by `hold`, waiting for {@link release}. */
  get heldCount(): number {
    return this.#held.length;
  }

  /** Answers every held request. */
  release(): void {
    const h = this.#held;
    this.#held = [];
    for (const r of h) r();
  }

  /** Sends SETTINGS with a new capacity on connection `n`. */
  setCapacity(n: number, capacity: number): void {
    const c = this.conns.get(n);
    if (c) this.#send(c, frame(0, FrameType.SETTINGS, 0, u32(capacity)));
  }

  /** Sends GOAWAY on connection `n` with `lastStreamId` (default: the last stream it saw). */
  goAway(n: number, lastStreamId?: number): void {
    const c = this.conns.get(n);
    if (c) this.#send(c, frame(0, FrameType.GOAWAY, 0, u32(lastStreamId ?? c.lastId)));
  }

  /** Closes connection `n` from the server side. */
  closeConn(n: number): void {
    try {
      this.conns.get(n)?.conn.close();
    } catch { /* closed */ }
  }

  async #accept(): Promise<void> {
    try {
      for await (const conn of this.listener) {
        const n = ++this.accepted;
        const c: ServerConn = { n, conn, writes: Promise.resolve(), open: new Set(), maxOpen: 0, lastId: 0 };
        this.conns.set(n, c);
        if (this.capacity !== undefined) this.#send(c, frame(0, FrameType.SETTINGS, 0, u32(this.capacity)));
        this.#tasks.push(this.#serve(c));
      }
    } catch {
      // listener closed
    }
  }

  #send(c: ServerConn, b: Uint8Array): void {
    c.writes = c.writes.then(async () => {
      let off = 0;
      while (off < b.length) off += await c.conn.write(b.subarray(off));
    }).catch(() => {});
  }

  async #serve(c: ServerConn): Promise<void> {
    const reader = new FrameReader();
    const partial = new Map<number, { headers: Record<string, string>; body: string }>();
    const buf = new Uint8Array(65536);
    try {
      for (;;) {
        const r = await c.conn.read(buf);
        if (r === null) return;
        for (const f of reader.push(buf.subarray(0, r))) {
          if (f.type === FrameType.RST) {
            partial.delete(f.id);
            c.open.delete(f.id);
            continue;
          }
          let p = partial.get(f.id);
          if (f.type === FrameType.HEADERS) {
            p = { headers: Object.fromEntries(JSON.parse(dec.decode(f.payload))), body: "" };
            partial.set(f.id, p);
            c.open.add(f.id);
            c.maxOpen = Math.max(c.maxOpen, c.open.size);
            c.lastId = Math.max(c.lastId, f.id);
          } else if (p !== undefined && f.type === FrameType.DATA) {
            p.body += dec.decode(f.payload);
          }
          if (p !== undefined && (f.flags & END) !== 0) {
            partial.delete(f.id);
            const req: MuxSeenRequest = { conn: c.n, id: f.id, headers: p.headers, body: p.body };
            this.requests.push(req);
            this.#answer(c, req);
          }
        }
      }
    } catch {
      // closed
    } finally {
      try {
        c.conn.close();
      } catch { /* closed */ }
    }
  }

  #answer(c: ServerConn, req: MuxSeenRequest): void {
    const rep = this.reply(req);
    const go = () => {
      if (!c.open.has(req.id)) return; // reset by the client meanwhile
      if (rep.abort) {
        this.closeConn(c.n);
        return;
      }
      c.open.delete(req.id);
      if (rep.refuse || rep.reset) {
        this.#send(c, frame(req.id, FrameType.RST, 0, new Uint8Array([rep.refuse ? 1 : 0])));
        return;
      }
      const h = { ":status": String(rep.status ?? 200), "x-conn": String(c.n), "x-stream": String(req.id) };
      const body = enc.encode(rep.body ?? "ok");
      this.#send(c, frame(req.id, FrameType.HEADERS, 0, enc.encode(JSON.stringify(Object.entries(h)))));
      this.#send(c, frame(req.id, FrameType.DATA, END, body));
    };
    if (rep.hold) this.#held.push(go);
    else if (rep.delayMs) setTimeout(go, rep.delayMs);
    else go();
  }

  async close(): Promise<void> {
    this.listener.close();
    this.release();
    for (const c of this.conns.values()) {
      try {
        c.conn.close();
      } catch { /* closed */ }
    }
    await this.#loop;
    await Promise.all(this.#tasks);
  }
}
