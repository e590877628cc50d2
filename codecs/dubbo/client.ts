/**
 * {@link DubboClientCodec}: the upstream side of a Dubbo 2 connection, multiplexed by request id.
 *
 * Each stream is a request: its body (the downstream's bytes, never re-serialized) goes out whole once the stream
 * ends, under a request id this connection assigns (downstream ids are per client connection and would collide
 * here). The response with that id comes back as `:status` + `x-dubbo-status` headers and the body as received;
 * an answer to an id no longer in flight (its stream was reset, e.g. timed out) is dropped. A one-way request
 * (`x-dubbo-oneway`) gets a synthetic OK at once, as no response will come.
 *
 * Heartbeats from the provider are answered; when `heartbeatIntervalMs` passes with nothing read, the codec sends
 * one itself (Dubbo providers close connections that stay silent). A readonly event from the provider (it is
 * shutting down) makes the connection not reusable, so the pool places no new requests on it. When the
 * connection closes, every stream in flight is reset: `remote-reset` for a request already written (it may have
 * run: a retry needs the route's `retry_on: reset`), `connection-termination` for one not yet written. The router
 * answers downstream with an in-protocol error or retries.
 *
 * @module
 */
import type {
  ClientCodecCallbacks,
  ClientConnectionCodec,
  StreamDecoder,
  StreamEncoder,
  StreamResetReason,
  WriteFn,
} from "../../lib/api/codec.ts";
import type { HeaderMap } from "../../lib/api/headers.ts";
import { schedule, type WheelTimer } from "../../lib/network/timer_wheel.ts";
import { approxNow } from "../../lib/network/clock.ts";
import { DubboFrameDecoder, isHeartbeatBody } from "./decoder.ts";
import { encodeHeartbeatRequest, encodeHeartbeatResponse, writeFrameHeader } from "./encoder.ts";
import { ONEWAY_HEADER, responseHeaders } from "./mapping.ts";
import {
  DEFAULT_MAX_CONCURRENT_REQUESTS,
  type DubboCodecOptions,
  type DubboStats,
  DubboStatus,
  FLAG_EVENT,
  FLAG_REQUEST,
  FLAG_TWO_WAY,
  HEADER_LENGTH,
  SERIALIZATION_HESSIAN2,
  SERIALIZATION_MASK,
} from "./types.ts";
import { BodyCollector } from "./_body.ts";

/** Default heartbeat interval on an upstream connection with nothing read (Dubbo's own default, 60 s). */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 60_000;

const EMPTY = new Uint8Array(0);

/** One upstream request. */
class DubboClientStream implements StreamEncoder {
  readonly #codec: DubboClientCodec;
  readonly decoder: StreamDecoder;
  readonly id: number;
  #oneway = false;
  readonly #body = new BodyCollector();
  #headersSent = false;
  #sent = false;
  done = false;

  /** True once the request frame was written: the provider may have it. */
  get sent(): boolean {
    return this.#sent;
  }

  constructor(codec: DubboClientCodec, decoder: StreamDecoder, id: number) {
    this.#codec = codec;
    this.decoder = decoder;
    this.id = id;
  }

  get headersSent(): boolean {
    return this.#headersSent;
  }

  encodeHeaders(headers: HeaderMap, endStream: boolean): void {
    this.#headersSent = true;
    this.#oneway = headers.get(ONEWAY_HEADER) === "true";
    if (endStream) this.#send(EMPTY);
  }

  encodeData(data: Uint8Array, endStream: boolean): void {
    if (this.#sent || this.done) return;
    const body = this.#body.add(data, endStream);
    if (body !== undefined) this.#send(body);
  }

  encodeTrailers(_trailers: HeaderMap): void {
    this.encodeData(EMPTY, true);
  }

  resetStream(_reason: StreamResetReason): void {
    // Dubbo cannot cancel a request: forget it, and drop its answer if one comes.
    if (this.done) return;
    this.done = true;
    this.#codec.forget(this);
  }

  #send(body: Uint8Array): void {
    if (this.#sent || this.done) return;
    this.#sent = true;
    const oneway = this.#oneway;
    this.#codec.sendRequest(this, body, oneway);
    if (oneway) {
      // No answer will come: end the stream with an OK of our own (after the router's encode call returns).
      this.done = true;
      this.#codec.forget(this);
      queueMicrotask(() => this.decoder.decodeHeaders(responseHeaders(DubboStatus.OK), true));
    }
  }
}

/** The upstream Dubbo codec; create it through `dubboCodecFactory.createClient`. */
export class DubboClientCodec implements ClientConnectionCodec {
  /** "Dubbo". */
  readonly protocol = "Dubbo";
  readonly #write: WriteFn;
  readonly #callbacks: ClientCodecCallbacks | undefined;
  readonly #frames: DubboFrameDecoder;
  readonly #stats: DubboStats | undefined;
  readonly #max: number;
  readonly #streams = new Map<number, DubboClientStream>();
  #nextId = 1;
  #reusable = true;
  #closed = false;
  readonly #heartbeatMs: number;
  #heartbeatTimer: WheelTimer | undefined;
  #lastRead = approxNow();
  readonly #onFrame = this.#frame.bind(this);

  /**
   * A codec writing through `write`. `options.heartbeatIntervalMs` (default 60 s, 0: none) sets the idle time
   * after which a heartbeat is sent.
   */
  constructor(
    write: WriteFn,
    options: DubboCodecOptions & { heartbeatIntervalMs?: number } = {},
    callbacks?: ClientCodecCallbacks,
  ) {
    this.#write = write;
    this.#callbacks = callbacks;
    this.#frames = new DubboFrameDecoder(options.maxBodyBytes);
    this.#stats = options.stats;
    this.#max = options.maxConcurrentRequests ?? DEFAULT_MAX_CONCURRENT_REQUESTS;
    this.#heartbeatMs = options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
    if (this.#heartbeatMs > 0) this.#armHeartbeat(this.#heartbeatMs);
  }

  get reusable(): boolean {
    return this.#reusable && !this.#closed;
  }

  get activeStreams(): number {
    return this.#streams.size;
  }

  /** The most requests in flight at once (`maxConcurrentRequests`). */
  get maxConcurrentStreams(): number {
    return this.#max;
  }

  newStream(decoder: StreamDecoder): StreamEncoder {
    if (!this.reusable) throw new Error("dubbo: connection is not reusable");
    // 32-bit ids, skipping any still in flight after a wrap.
    let id = this.#nextId;
    while (this.#streams.has(id)) id = id >= 0xffffffff ? 1 : id + 1;
    this.#nextId = id >= 0xffffffff ? 1 : id + 1;
    const s = new DubboClientStream(this, decoder, id);
    this.#streams.set(id, s);
    return s;
  }

  /** Writes a request frame for `s`. */
  sendRequest(s: DubboClientStream, body: Uint8Array, oneway: boolean): void {
    if (this.#closed) return;
    const head = new Uint8Array(HEADER_LENGTH);
    const flag = FLAG_REQUEST | SERIALIZATION_HESSIAN2 | (oneway ? 0 : FLAG_TWO_WAY);
    writeFrameHeader(head, 0, { flag, status: 0, idHigh: 0, idLow: s.id, length: body.length });
    this.#write(head);
    if (body.length > 0) this.#write(body);
  }

  /** A stream ended without its response (reset, or one-way): its id is free again. */
  forget(s: DubboClientStream): void {
    if (this.#streams.get(s.id) === s) this.#streams.delete(s.id);
  }

  dispatch(data: Uint8Array): void {
    if (this.#closed) return;
    this.#lastRead = approxNow();
    this.#frames.feed(data, this.#onFrame);
  }

  #frame(flag: number, status: number, idHigh: number, idLow: number, body: Uint8Array): void {
    if ((flag & FLAG_REQUEST) !== 0) {
      if ((flag & FLAG_EVENT) === 0) return; // a provider does not send requests; ignored
      this.#stats?.requestEvent.inc();
      if ((flag & FLAG_TWO_WAY) !== 0 && isHeartbeatBody(body)) {
        this.#stats?.heartbeat.inc();
        this.#write(encodeHeartbeatResponse(idHigh, idLow, flag & SERIALIZATION_MASK));
      } else if (!isHeartbeatBody(body)) {
        // The readonly event: the provider is shutting down.
        this.#reusable = false;
        this.#callbacks?.onGoAway();
      }
      return;
    }
    if ((flag & FLAG_EVENT) !== 0) return; // the answer to our heartbeat
    if (idHigh !== 0) return;
    const s = this.#streams.get(idLow);
    if (s === undefined) return;
    this.#streams.delete(idLow);
    s.done = true;
    const d = s.decoder;
    d.decodeHeaders(responseHeaders(status), body.length === 0);
    if (body.length > 0) d.decodeData(body, true);
  }

  #armHeartbeat(ms: number): void {
    this.#heartbeatTimer = schedule(ms, () => {
      this.#heartbeatTimer = undefined;
      if (this.#closed) return;
      const idle = approxNow() - this.#lastRead;
      if (idle >= this.#heartbeatMs - 5) {
        // Event ids share the space of request ids only in name: answers to events are told apart by the flag.
        this.#write(encodeHeartbeatRequest(0, 0));
        this.#lastRead = approxNow();
      }
      this.#armHeartbeat(Math.max(5, this.#lastRead + this.#heartbeatMs - approxNow()));
    });
  }

  /** The provider closed its side: every request in flight is reset. */
  onEof(): void {
    this.#resetAll("connection-termination");
  }

  /** The connection is gone: requests in flight are reset and the heartbeat stops. */
  onConnectionClose(): void {
    this.#resetAll("connection-termination");
  }

  #resetAll(reason: StreamResetReason): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#reusable = false;
    this.#heartbeatTimer?.cancel();
    this.#heartbeatTimer = undefined;
    this.#frames.reset();
    const streams = [...this.#streams.values()];
    this.#streams.clear();
    for (const s of streams) {
      if (s.done) continue;
      s.done = true;
      // A request already written may have run on the provider: reported as the peer's reset, so that it is
      // re-sent only where the route's retry policy allows (`retry_on: reset`), never as a stale connection.
      s.decoder.onReset?.(s.sent ? "remote-reset" : reason);
    }
  }
}
