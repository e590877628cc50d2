/**
 * The Bolt codecs: {@link BoltServerCodec} (downstream) and {@link BoltClientCodec} (upstream), and
 * {@link boltCodecFactory}, whose pool mode is `multiplex-request-id`.
 *
 * Server side: each request frame is a stream (headers from `mapping.ts`, the content as one data part); the
 * response is buffered until it ends (a Bolt frame states its length up front) and written with the request's id,
 * protocol version, switch and serialization. Heartbeats are answered here and never reach the connection manager.
 * A oneway request gets no response: whatever the stream answers is dropped. A request id still in flight, a
 * response or an unknown command from the client, and every malformed frame are protocol errors: the connection
 * manager closes the connection; other connections are unaffected. A stream reset before its response is written
 * answers SERVER_EXCEPTION, so the caller never hangs. Requests over `maxRequestsInFlight` on one connection are
 * answered SERVER_THREADPOOL_BUSY at once.
 *
 * Client side: requests get the connection's own ids (1, 2, ...; downstream ids differ) and the response is
 * matched back by id. A oneway request completes with an empty 200 as soon as it is written. Heartbeats from the
 * upstream are answered; a late response (its stream was reset or timed out) is dropped. A connection idle for
 * `heartbeatIntervalMs` (30 s) sends a heartbeat, as sofa clients do, so providers keep it open.
 *
 * @module
 */
import type {
  ClientCodecCallbacks,
  ClientConnectionCodec,
  CodecFactory,
  CodecOptions,
  ServerCodecCallbacks,
  ServerConnectionCodec,
  StreamDecoder,
  StreamEncoder,
  StreamResetReason,
  WriteFn,
} from "../../lib/api/codec.ts";
import { CodecError } from "../../lib/api/errors.ts";
import { HeaderMap } from "../../lib/api/headers.ts";
import { approxNow } from "../../lib/network/clock.ts";
import { schedule } from "../../lib/network/timer_wheel.ts";
import type { WheelTimer } from "../../lib/network/timer_wheel.ts";
import { BoltDecoder } from "./decoder.ts";
import { encodeFrame } from "./encoder.ts";
import type { FrameFields } from "./encoder.ts";
import { boltLocalReply, boltStatusOf, codecId, requestHeaders, responseHeaders, wireHeader } from "./mapping.ts";
import {
  BoltStatus,
  CMD_HEARTBEAT,
  CMD_REQUEST,
  CMD_RESPONSE,
  CODEC_HESSIAN2,
  PROTO_V1,
  PROTO_V2,
  TYPE_ONEWAY,
  TYPE_REQUEST,
  TYPE_RESPONSE,
} from "./types.ts";
import type { BoltCodecOptions, BoltFrame, BoltStats } from "./types.ts";

const EMPTY = new Uint8Array(0);

/**
 * Adds a chunk of a stream's body to `body` (a frame carries the body whole); true on the last one. The usual case,
 * the whole body at once, is kept as the caller's view, not copied; earlier chunks are copied.
 */
function addBodyChunk(body: Uint8Array[], data: Uint8Array, end: boolean): boolean {
  if (data.length > 0) body.push(end && body.length === 0 ? data : data.slice());
  return end;
}

/** The protocol name streams and logs carry. */
export const BOLT_PROTOCOL = "Bolt";

/** An answer to a heartbeat request `f`. */
function heartbeatAck(f: BoltFrame): Uint8Array {
  return encodeFrame({
    proto: f.proto,
    ver1: f.ver1,
    type: TYPE_RESPONSE,
    cmdCode: CMD_HEARTBEAT,
    ver2: f.ver2,
    requestId: f.requestId,
    codec: f.codec,
    switchCode: f.switchCode,
    timeout: 0,
    status: BoltStatus.SUCCESS,
    className: "",
    header: [],
  }, EMPTY);
}

/** One downstream request: its encoder (the response, buffered until it ends). */
class ServerStream implements StreamEncoder {
  readonly #codec: BoltServerCodec;
  readonly request: BoltFrame;
  /** The request's stream headers (their `x-bolt-hessian` picks the form of error bodies). */
  requestHeaders: HeaderMap | undefined;
  decoder: StreamDecoder | undefined;
  #headers: HeaderMap | undefined;
  #body: Uint8Array[] = [];
  #done = false;
  headersSent = false;

  constructor(codec: BoltServerCodec, request: BoltFrame) {
    this.#codec = codec;
    this.request = request;
  }

  get protocol(): string {
    return BOLT_PROTOCOL;
  }

  encodeHeaders(headers: HeaderMap, endStream: boolean): void {
    if (this.#done) return;
    this.headersSent = true;
    this.#headers = headers;
    if (endStream) this.#finish();
  }

  encodeData(data: Uint8Array, endStream: boolean): void {
    if (this.#done) return;
    if (addBodyChunk(this.#body, data, endStream)) this.#finish();
  }

  encodeTrailers(_trailers: HeaderMap): void {
    if (!this.#done) this.#finish();
  }

  /** Reset before the response went out: the client gets SERVER_EXCEPTION rather than silence. */
  resetStream(_reason: StreamResetReason): void {
    if (this.#done) return;
    const r = boltLocalReply({ status: 500, body: "stream reset" }, this.requestHeaders);
    this.#headers = r.headers;
    this.#body = r.body !== undefined ? [r.body] : [];
    this.#finish();
  }

  /** The connection went away: nothing is written. */
  abandon(): void {
    this.#done = true;
  }

  #finish(): void {
    this.#done = true;
    const h = this.#headers ?? new HeaderMap([":status", "200"]);
    this.#codec.respond(this, h, this.#body);
    this.#body = [];
  }
}

/** The downstream Bolt codec; see the module doc. */
export class BoltServerCodec implements ServerConnectionCodec {
  readonly protocol = BOLT_PROTOCOL;
  readonly multiplexed = true;
  readonly #write: WriteFn;
  readonly #callbacks: ServerCodecCallbacks;
  readonly #decoder: BoltDecoder;
  readonly #stats: BoltStats | undefined;
  readonly #streams = new Map<number, ServerStream>();
  readonly #maxInFlight: number;
  #shutdown = false;
  #eof = false;

  /** `options.bolt` carries the frame limit and the stats. */
  constructor(write: WriteFn, callbacks: ServerCodecCallbacks, options: BoltCodecOptions = {}) {
    this.#write = write;
    this.#callbacks = callbacks;
    this.#stats = options.stats;
    this.#maxInFlight = options.maxRequestsInFlight ?? 10_000;
    this.#decoder = new BoltDecoder((f) => this.#onFrame(f), options.maxFrameBytes);
  }

  get keepAlive(): boolean {
    return !this.#shutdown;
  }

  get idle(): boolean {
    return this.#streams.size === 0;
  }

  dispatch(data: Uint8Array): void {
    if (this.#eof) return;
    try {
      this.#decoder.push(data);
    } catch (e) {
      if (e instanceof CodecError) this.#stats?.decodeError();
      this.#decoder.destroy();
      throw e;
    }
  }

  #onFrame(f: BoltFrame): void {
    if (f.type === TYPE_RESPONSE) {
      throw new CodecError("UnexpectedData", "bolt: a response from the client");
    }
    if (f.cmdCode === CMD_HEARTBEAT) {
      this.#stats?.heartbeat();
      if (f.type !== TYPE_ONEWAY) this.#write(heartbeatAck(f));
      return;
    }
    if (this.#streams.has(f.requestId)) {
      throw new CodecError("Protocol", `bolt: request id ${f.requestId} reused while in flight`);
    }
    const headers = requestHeaders(f);
    if (this.#streams.size >= this.#maxInFlight) {
      if (f.type === TYPE_ONEWAY) return;
      const r = boltLocalReply({ status: 503, body: `overflow: ${this.#maxInFlight} requests in flight` }, headers);
      const s = new ServerStream(this, { ...f, header: [], content: EMPTY });
      s.requestHeaders = headers;
      this.#streams.set(f.requestId, s);
      this.#stats?.request();
      this.#stats?.active(1);
      s.encodeHeaders(r.headers, false);
      s.encodeData(r.body ?? EMPTY, true);
      return;
    }
    // Only the fixed fields are kept past this call: the frame's views belong to the caller's buffer.
    const kept: BoltFrame = { ...f, header: [], content: EMPTY };
    const s = new ServerStream(this, kept);
    s.requestHeaders = headers;
    this.#streams.set(f.requestId, s);
    this.#stats?.request();
    this.#stats?.active(1);
    const decoder = this.#callbacks.newStream(s);
    s.decoder = decoder;
    const end = f.content.length === 0;
    decoder.decodeHeaders(headers, end);
    if (!end && this.#streams.get(f.requestId) === s) decoder.decodeData(f.content, true);
  }

  /** Writes the response of `s` (unless oneway) and forgets the stream. */
  respond(s: ServerStream, h: HeaderMap, body: readonly Uint8Array[]): void {
    const req = s.request;
    if (this.#streams.get(req.requestId) !== s) return;
    this.#streams.delete(req.requestId);
    this.#stats?.active(-1);
    if (req.type === TYPE_ONEWAY) return;
    const st = h.get("x-bolt-status");
    const code = Number(h.get(":status") ?? 200);
    const status = st !== undefined && /^\d{1,5}$/.test(st) ? Number(st) : boltStatusOf(code, "");
    this.#stats?.response(status);
    const fields: FrameFields = {
      proto: req.proto,
      ver1: req.ver1,
      type: TYPE_RESPONSE,
      cmdCode: CMD_RESPONSE,
      ver2: req.ver2,
      requestId: req.requestId,
      codec: codecId(h.get("x-bolt-codec"), req.codec),
      switchCode: req.switchCode,
      timeout: 0,
      status,
      className: h.get("x-bolt-class") ?? "",
      header: wireHeader(h),
    };
    this.#write(encodeFrame(fields, body, true));
  }

  onEof(): void {
    // Requests in flight still get their answers; nothing new is read.
    this.#eof = true;
  }

  sendProtocolError(_err: CodecError): void {
    // Bolt has no connection-level error frame: the connection is closed.
  }

  shutdownNotice(): void {
    this.#shutdown = true;
  }

  onConnectionClose(): void {
    const streams = [...this.#streams.values()];
    this.#streams.clear();
    for (const s of streams) {
      s.abandon();
      this.#stats?.active(-1);
      s.decoder?.onReset?.("connection-termination");
    }
  }

  /** Stops parsing (lingering close after a protocol error). */
  destroy(): void {
    this.#decoder.destroy();
  }
}

/** One upstream request. */
class ClientStream implements StreamEncoder {
  readonly #codec: BoltClientCodec;
  readonly decoder: StreamDecoder;
  #headers: HeaderMap | undefined;
  #body: Uint8Array[] = [];
  headersSent = false;
  id = 0;
  done = false;

  constructor(codec: BoltClientCodec, decoder: StreamDecoder) {
    this.#codec = codec;
    this.decoder = decoder;
  }

  encodeHeaders(headers: HeaderMap, endStream: boolean): void {
    if (this.done) return;
    this.headersSent = true;
    this.#headers = headers;
    if (endStream) this.#send();
  }

  encodeData(data: Uint8Array, endStream: boolean): void {
    if (this.done) return;
    if (addBodyChunk(this.#body, data, endStream)) this.#send();
  }

  encodeTrailers(_trailers: HeaderMap): void {
    if (!this.done) this.#send();
  }

  resetStream(_reason: StreamResetReason): void {
    this.#codec.forget(this);
  }

  #send(): void {
    const h = this.#headers ?? new HeaderMap();
    const body = this.#body;
    this.#body = [];
    this.#codec.send(this, h, body);
  }
}

function intHeader(h: HeaderMap, name: string, fallback: number, max: number): number {
  const v = h.get(name);
  if (v === undefined || !/^\d{1,10}$/.test(v)) return fallback;
  const n = Number(v);
  return n <= max ? n : fallback;
}

/** The upstream Bolt codec; see the module doc. */
export class BoltClientCodec implements ClientConnectionCodec {
  readonly protocol = BOLT_PROTOCOL;
  readonly #write: WriteFn;
  readonly #decoder: BoltDecoder;
  readonly #streams = new Map<number, ClientStream>();
  readonly #max: number;
  #opened = 0;
  #nextId = 1;
  #closed = false;
  readonly #heartbeatMs: number;
  #heartbeatTimer: WheelTimer | undefined;
  #lastActivity = approxNow();

  /** `options` carries the frame limit, the concurrency cap and the idle heartbeat interval. */
  constructor(write: WriteFn, options: BoltCodecOptions = {}) {
    this.#write = write;
    this.#max = options.maxConcurrentRequests ?? 1024;
    this.#decoder = new BoltDecoder((f) => this.#onFrame(f), options.maxFrameBytes);
    this.#heartbeatMs = options.heartbeatIntervalMs ?? 30_000;
    if (this.#heartbeatMs > 0) this.#armHeartbeat(this.#heartbeatMs);
  }

  #armHeartbeat(ms: number): void {
    this.#heartbeatTimer = schedule(ms, () => {
      this.#heartbeatTimer = undefined;
      if (this.#closed) return;
      const idle = approxNow() - this.#lastActivity;
      if (idle >= this.#heartbeatMs) {
        this.#lastActivity = approxNow();
        this.#write(encodeFrame({
          proto: PROTO_V1,
          ver1: 0,
          type: TYPE_REQUEST,
          cmdCode: CMD_HEARTBEAT,
          ver2: 1,
          requestId: this.#takeId(),
          codec: CODEC_HESSIAN2,
          switchCode: 0,
          timeout: 3000,
          status: 0,
          className: "",
          header: [],
        }, EMPTY));
        this.#armHeartbeat(this.#heartbeatMs);
      } else this.#armHeartbeat(this.#heartbeatMs - idle);
    });
  }

  /** The next request id not in flight (1 … 2^31-1, wrapping). */
  #takeId(): number {
    let id = this.#nextId;
    while (this.#streams.has(id)) id = id >= 0x7fffffff ? 1 : id + 1;
    this.#nextId = id >= 0x7fffffff ? 1 : id + 1;
    return id;
  }

  get reusable(): boolean {
    return !this.#closed;
  }

  get activeStreams(): number {
    return this.#opened;
  }

  get maxConcurrentStreams(): number {
    return this.#max;
  }

  newStream(decoder: StreamDecoder): StreamEncoder {
    this.#opened++;
    return new ClientStream(this, decoder);
  }

  /** Writes the request of `s` with a fresh id. */
  send(s: ClientStream, h: HeaderMap, body: readonly Uint8Array[]): void {
    if (this.#closed) {
      this.forget(s);
      s.decoder.onReset?.("connection-termination", "upstream connection closed");
      return;
    }
    const id = this.#takeId();
    s.id = id;
    this.#lastActivity = approxNow();
    const oneway = h.get("x-bolt-type") === "oneway";
    const proto = intHeader(h, "x-bolt-proto", PROTO_V1, 255) === PROTO_V2 ? PROTO_V2 : PROTO_V1;
    const fields: FrameFields = {
      proto,
      ver1: proto === PROTO_V2 ? intHeader(h, "x-bolt-ver1", 1, 255) : 0,
      type: oneway ? TYPE_ONEWAY : TYPE_REQUEST,
      cmdCode: CMD_REQUEST,
      ver2: 1,
      requestId: id,
      codec: codecId(h.get("x-bolt-codec"), CODEC_HESSIAN2),
      switchCode: proto === PROTO_V2 ? intHeader(h, "x-bolt-switch", 0, 255) : 0,
      timeout: intHeader(h, "x-bolt-timeout", 0, 0x7fffffff),
      status: 0,
      className: h.get("x-bolt-class") ?? "",
      header: wireHeader(h),
    };
    const frame = encodeFrame(fields, body, true);
    if (oneway) {
      this.forget(s);
      this.#write(frame);
      s.decoder.decodeHeaders(new HeaderMap([":status", "200", "x-bolt-status", "0"]), true);
      return;
    }
    this.#streams.set(id, s);
    this.#write(frame);
  }

  /** The stream is over for the caller: a late response is dropped. */
  forget(s: ClientStream): void {
    if (s.done) return;
    s.done = true;
    this.#opened--;
    if (s.id !== 0 && this.#streams.get(s.id) === s) this.#streams.delete(s.id);
  }

  dispatch(data: Uint8Array): void {
    this.#lastActivity = approxNow();
    this.#decoder.push(data);
  }

  #onFrame(f: BoltFrame): void {
    if (f.type !== TYPE_RESPONSE) {
      if (f.cmdCode !== CMD_HEARTBEAT) throw new CodecError("UnexpectedData", "bolt: a request from the upstream");
      if (f.type === TYPE_REQUEST) this.#write(heartbeatAck(f));
      return;
    }
    if (f.cmdCode === CMD_HEARTBEAT) return;
    const s = this.#streams.get(f.requestId);
    if (s === undefined) return; // late: reset or timed out meanwhile
    this.forget(s);
    const h = responseHeaders(f);
    const end = f.content.length === 0;
    s.decoder.decodeHeaders(h, end);
    if (!end) s.decoder.decodeData(f.content, true);
  }

  onEof(): void {
    this.#closed = true;
    this.#heartbeatTimer?.cancel();
    this.#heartbeatTimer = undefined;
    this.#resetAll();
  }

  onConnectionClose(): void {
    this.#closed = true;
    this.#heartbeatTimer?.cancel();
    this.#heartbeatTimer = undefined;
    this.#decoder.destroy();
    this.#resetAll();
  }

  /**
   * The connection is gone under written requests. They may have reached the provider, so they end as
   * `remote-reset` — which the router retries only when the route's retry policy says so — and never as
   * `connection-termination`, which it would re-send on another connection as for a stale keep-alive connection
   * (an RPC executed twice).
   */
  #resetAll(): void {
    const streams = [...this.#streams.values()];
    for (const s of streams) {
      this.forget(s);
      s.decoder.onReset?.("remote-reset", "upstream connection closed");
    }
  }
}

/** Reads Bolt options out of {@link CodecOptions} (the RPC proxy adds them as `bolt`). */
function boltOptions(options: CodecOptions | undefined): BoltCodecOptions {
  return (options as { bolt?: BoltCodecOptions } | undefined)?.bolt ?? {};
}

/**
 * The Bolt codec factory (`bolt`, pool mode `multiplex-request-id`). Bolt options (frame limit, stats, upstream
 * concurrency) ride in `options.bolt`; {@link createBoltCodecFactory} binds them instead.
 */
export const boltCodecFactory: CodecFactory = createBoltCodecFactory();

/** A Bolt codec factory whose codecs use `bolt` unless the codec options bring their own. */
export function createBoltCodecFactory(bolt: BoltCodecOptions = {}): CodecFactory {
  return {
    name: "bolt",
    poolMode: "multiplex-request-id",
    createServer(write: WriteFn, callbacks: ServerCodecCallbacks, options?: CodecOptions) {
      return new BoltServerCodec(write, callbacks, { ...bolt, ...boltOptions(options) });
    },
    createClient(write: WriteFn, options?: CodecOptions, _callbacks?: ClientCodecCallbacks) {
      return new BoltClientCodec(write, { ...bolt, ...boltOptions(options) });
    },
    localReply: boltLocalReply,
  };
}
