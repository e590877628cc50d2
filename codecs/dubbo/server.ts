/**
 * {@link DubboServerCodec}: the downstream side of a Dubbo 2 connection.
 *
 * Each request frame becomes a stream: `decodeHeaders` (see `mapping.ts`) then `decodeData` with the body bytes
 * as received, ending the stream. Requests are independent (`multiplexed`), answered in any order by request id.
 * Heartbeats (two-way event requests) are answered here and never reach the connection manager; other events are
 * dropped. Responses are written when complete: a 16-byte header with the downstream's own request id and the
 * status byte (`x-dubbo-status`, else mapped from `:status`), then the body as the upstream sent it (or the local
 * reply's). One-way requests get no response. A stream reset before its response was written is answered with
 * SERVICE_ERROR, so a client never waits for an answer that cannot come.
 *
 * Errors: a bad magic or a body above `maxBodyBytes` throws {@link CodecError} from `dispatch` (the connection is
 * closed: its framing is lost), as does a request id reused while the first request is in flight (answers could
 * no longer be told apart). A body that is not valid hessian2, or a serialization other than hessian2, is answered
 * with BAD_REQUEST and the connection carries on. Each is counted in `request_decoding_error`.
 *
 * `shutdownNotice` (drain) sends Dubbo's readonly event: the client places no new requests here.
 *
 * @module
 */
import type {
  ServerCodecCallbacks,
  ServerConnectionCodec,
  StreamDecoder,
  StreamEncoder,
  StreamResetReason,
  WriteFn,
} from "../../lib/api/codec.ts";
import { CodecError } from "../../lib/api/errors.ts";
import type { HeaderMap } from "../../lib/api/headers.ts";
import { decodeInvocation, DubboFrameDecoder, isHeartbeatBody } from "./decoder.ts";
import { encodeHeartbeatResponse, encodeLocalResponse, encodeReadonlyEvent, writeFrameHeader } from "./encoder.ts";
import { requestHeaders, statusOfHeaders } from "./mapping.ts";
import {
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

/** The map key of a 64-bit request id: a number while exact, else a string. */
export function idKey(high: number, low: number): number | string {
  return high < 0x200000 ? high * 0x100000000 + low : `${high}:${low}`;
}

const EMPTY = new Uint8Array(0);

/** One downstream request: the encoder its response is written through. */
class DubboServerStream implements StreamEncoder {
  readonly #codec: DubboServerCodec;
  readonly idHigh: number;
  readonly idLow: number;
  readonly key: number | string;
  readonly oneway: boolean;
  readonly serialization: number;
  decoder: StreamDecoder | undefined;
  #status = DubboStatus.OK as number;
  readonly #body = new BodyCollector();
  #headersSent = false;
  done = false;

  constructor(codec: DubboServerCodec, frame: { idHigh: number; idLow: number; flag: number }) {
    this.#codec = codec;
    this.idHigh = frame.idHigh;
    this.idLow = frame.idLow;
    this.key = idKey(frame.idHigh, frame.idLow);
    this.oneway = (frame.flag & FLAG_TWO_WAY) === 0;
    this.serialization = frame.flag & SERIALIZATION_MASK;
  }

  /** The request's protocol, for the connection manager's stats and logs. */
  get protocol(): string {
    return "Dubbo";
  }

  get headersSent(): boolean {
    return this.#headersSent;
  }

  encodeHeaders(headers: HeaderMap, endStream: boolean): void {
    if (this.done) return;
    this.#headersSent = true;
    this.#status = statusOfHeaders(headers);
    if (endStream) this.#finish(EMPTY);
  }

  encodeData(data: Uint8Array, endStream: boolean): void {
    if (this.done) return;
    const body = this.#body.add(data, endStream);
    if (body !== undefined) this.#finish(body);
  }

  encodeTrailers(_trailers: HeaderMap): void {
    if (this.done) return;
    this.encodeData(EMPTY, true);
  }

  resetStream(_reason: StreamResetReason): void {
    if (this.done) return;
    // Nothing of the response was written yet (it goes out whole): answer with an error instead of silence.
    this.done = true;
    this.#codec.streamEnded(this);
    if (!this.oneway) this.#codec.writeLocal(this, DubboStatus.SERVICE_ERROR, "ferry: request reset");
  }

  #finish(body: Uint8Array): void {
    this.done = true;
    this.#codec.streamEnded(this);
    if (this.oneway) return;
    const head = new Uint8Array(HEADER_LENGTH);
    writeFrameHeader(head, 0, {
      flag: this.serialization,
      status: this.#status,
      idHigh: this.idHigh,
      idLow: this.idLow,
      length: body.length,
    });
    this.#codec.writeResponse(head, body, this.#status);
  }
}

/** The downstream Dubbo codec; create it through `dubboCodecFactory.createServer`. */
export class DubboServerCodec implements ServerConnectionCodec {
  /** "Dubbo". */
  readonly protocol = "Dubbo";
  /** Requests are independent: a dispatch error is the connection's. */
  readonly multiplexed = true;
  readonly #write: WriteFn;
  readonly #callbacks: ServerCodecCallbacks;
  readonly #frames: DubboFrameDecoder;
  readonly #stats: DubboStats | undefined;
  readonly #streams = new Map<number | string, DubboServerStream>();
  #keepAlive = true;
  #closed = false;
  readonly #onFrame = this.#frame.bind(this);

  /** A codec writing through `write` and opening streams through `callbacks`. */
  constructor(write: WriteFn, callbacks: ServerCodecCallbacks, options: DubboCodecOptions = {}) {
    this.#write = write;
    this.#callbacks = callbacks;
    this.#frames = new DubboFrameDecoder(options.maxBodyBytes);
    this.#stats = options.stats;
  }

  /** Requests in flight. */
  get activeRequests(): number {
    return this.#streams.size;
  }

  get keepAlive(): boolean {
    return this.#keepAlive;
  }

  get idle(): boolean {
    return this.#streams.size === 0;
  }

  dispatch(data: Uint8Array): void {
    if (this.#closed) return;
    try {
      this.#frames.feed(data, this.#onFrame);
    } catch (e) {
      if (e instanceof CodecError) this.#stats?.decodingError.inc();
      throw e;
    }
  }

  #frame(flag: number, _status: number, idHigh: number, idLow: number, body: Uint8Array): void {
    const stats = this.#stats;
    // Responses from a client answer our own events (heartbeats): nothing to do.
    if ((flag & FLAG_REQUEST) === 0) return;
    const twoWay = (flag & FLAG_TWO_WAY) !== 0;
    if ((flag & FLAG_EVENT) !== 0) {
      stats?.requestEvent.inc();
      if (twoWay && isHeartbeatBody(body)) {
        stats?.heartbeat.inc();
        this.#write(encodeHeartbeatResponse(idHigh, idLow, flag & SERIALIZATION_MASK));
      }
      return;
    }
    const key = idKey(idHigh, idLow);
    if (this.#streams.has(key)) {
      throw new CodecError("Protocol", `dubbo: request id ${idHigh * 0x100000000 + idLow} reused while in flight`);
    }
    const s = new DubboServerStream(this, { idHigh, idLow, flag });
    if ((flag & SERIALIZATION_MASK) !== SERIALIZATION_HESSIAN2) {
      stats?.decodingError.inc();
      if (twoWay) {
        this.writeLocal(
          s,
          DubboStatus.BAD_REQUEST,
          `ferry: serialization ${flag & SERIALIZATION_MASK} is not supported`,
        );
      }
      return;
    }
    let headers: HeaderMap;
    try {
      headers = requestHeaders(decodeInvocation(body), !twoWay);
    } catch (e) {
      if (!(e instanceof CodecError)) throw e;
      stats?.decodingError.inc();
      if (twoWay) this.writeLocal(s, DubboStatus.BAD_REQUEST, `ferry: ${e.message}`);
      return;
    }
    if (stats !== undefined) {
      stats.request.inc();
      (twoWay ? stats.requestTwoWay : stats.requestOneWay).inc();
      stats.active.inc();
    }
    this.#streams.set(key, s);
    const decoder = this.#callbacks.newStream(s);
    s.decoder = decoder;
    decoder.decodeHeaders(headers, false);
    if (!s.done) decoder.decodeData(body, true);
  }

  /** A stream's response was written (or it was reset). */
  streamEnded(s: DubboServerStream): void {
    if (this.#streams.get(s.key) === s) {
      this.#streams.delete(s.key);
      this.#stats?.active.dec();
    }
  }

  /** Writes a response frame (header and body) and counts it. */
  writeResponse(head: Uint8Array, body: Uint8Array, status: number): void {
    if (this.#closed) return;
    const stats = this.#stats;
    if (stats !== undefined) {
      stats.response.inc();
      stats.responseStatus(status);
    }
    this.#write(head);
    if (body.length > 0) this.#write(body);
  }

  /** Writes a response Ferry makes itself for `s`. */
  writeLocal(s: { idHigh: number; idLow: number }, status: number, message: string): void {
    if (this.#closed) return;
    const stats = this.#stats;
    if (stats !== undefined) {
      stats.response.inc();
      stats.localResponse.inc();
      stats.responseStatus(status);
    }
    this.#write(encodeLocalResponse(s.idHigh, s.idLow, status, message));
  }

  /** Partial input at the end is dropped; requests in flight are answered. */
  onEof(): void {}

  /** Nothing to write: the connection closes (the framing is lost, or answers could not be told apart). */
  sendProtocolError(_err: CodecError): void {}

  /** Sends the readonly event: the client places no new requests on this connection. */
  shutdownNotice(): void {
    if (!this.#keepAlive || this.#closed) return;
    this.#keepAlive = false;
    this.#write(encodeReadonlyEvent(0, 0));
  }

  /** The connection is gone: streams in flight end (the connection manager resets them). */
  onConnectionClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of this.#streams.values()) {
      s.done = true;
      this.#stats?.active.dec();
    }
    this.#streams.clear();
    this.#frames.reset();
  }

  /** Stops parsing (lingering close after a protocol error). */
  destroy(): void {
    this.#frames.reset();
  }
}
