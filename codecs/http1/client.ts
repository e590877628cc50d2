/**
 * {@link Http1ClientCodec}: the upstream side of an HTTP/1.1 connection (one request at a time, ping-pong).
 *
 * Encoding: `:method`, `:path` (for CONNECT, `:authority` is the target) and `:authority` (written as `host`,
 * replacing any `host` field in the map) plus the other fields as stored. A body goes out with the given
 * `content-length`, else chunked when the headers are not the end of the stream; a POST, PUT or PATCH without a
 * body gets `content-length: 0`. CONNECT and upgrade requests (`connection: upgrade` + `upgrade`) are written
 * without framing and their data go out raw.
 *
 * Decoding: a response becomes `:status` plus its fields lower-cased in wire order (`transfer-encoding` removed,
 * as the body is delivered de-chunked). Informational responses other than 101 go to `decode1xxHeaders`; a 101
 * to an upgrade request, or a 2xx to CONNECT, turns the connection into a raw tunnel (every later byte is
 * `decodeData`, `onEof` ends it). A response to HEAD, and 204 and 304 responses, have no body; otherwise the body
 * is framed by chunked, content-length, or the connection closing (`onEof` ends it).
 *
 * Errors in the response throw {@link CodecError} with status 502 (the `code` says what was wrong); the connection
 * is then not reusable and must be closed.
 *
 * @module
 */
import type {
  ClientCodecCallbacks,
  ClientConnectionCodec,
  CodecOptions,
  StreamDecoder,
  StreamEncoder,
  StreamResetReason,
  WriteFn,
} from "../../lib/api/codec.ts";
import { CodecError } from "../../lib/api/errors.ts";
import { HeaderMap } from "../../lib/api/headers.ts";
import { hasToken, SP } from "./_chars.ts";
import {
  begin,
  CRLF_BYTES,
  CRLF_LAST_CHUNK,
  flush,
  LAST_CHUNK,
  put,
  putCrlf,
  putField,
  putFields,
  writeChunkSize,
} from "./_encode.ts";
import { checkTransferEncoding, parseContentLength, parseVersion } from "./_framing.ts";
import { EMPTY, fail, Http1Reader, S_CL, S_DEAD, S_HEAD, S_RAW } from "./_reader.ts";

const M_DISCARD = 0;
const M_RAW = 1;
const M_CHUNKED = 2;

const U_NONE = 0;
const U_UPGRADE = 1;
const U_CONNECT = 2;

interface Friend {
  encodeHeaders(c: Http1ClientCodec, id: number, headers: HeaderMap, endStream: boolean): void;
  encodeData(c: Http1ClientCodec, id: number, data: Uint8Array, endStream: boolean): void;
  encodeTrailers(c: Http1ClientCodec, id: number, trailers: HeaderMap): void;
  reset(c: Http1ClientCodec, id: number): void;
}
let friend: Friend;

/** The encoder for one request, returned by {@link Http1ClientCodec.newStream}. Stale calls are ignored. */
export class Http1RequestEncoder implements StreamEncoder {
  #codec: Http1ClientCodec;
  #id: number;
  #headersSent = false;

  /** Created by {@link Http1ClientCodec} only. */
  constructor(codec: Http1ClientCodec, id: number) {
    this.#codec = codec;
    this.#id = id;
  }

  /** True once the request head has been written. */
  get headersSent(): boolean {
    return this.#headersSent;
  }

  /** Writes the request line and fields (see the module doc for framing). */
  encodeHeaders(headers: HeaderMap, endStream: boolean): void {
    if (this.#headersSent) return;
    this.#headersSent = true;
    friend.encodeHeaders(this.#codec, this.#id, headers, endStream);
  }

  /** Writes body bytes (chunked if so framed). */
  encodeData(data: Uint8Array, endStream: boolean): void {
    friend.encodeData(this.#codec, this.#id, data, endStream);
  }

  /** Writes trailers (chunked requests only; otherwise dropped) and ends the request. */
  encodeTrailers(trailers: HeaderMap): void {
    friend.encodeTrailers(this.#codec, this.#id, trailers);
  }

  /** Abandons the request; the connection is no longer reusable and must be closed. */
  resetStream(_reason: StreamResetReason): void {
    friend.reset(this.#codec, this.#id);
  }
}

/** The upstream HTTP/1 codec; see the module doc. Create it through `http1CodecFactory.createClient`. */
export class Http1ClientCodec extends Http1Reader implements ClientConnectionCodec {
  /** Always HTTP/1.1 on the wire. */
  readonly protocol = "HTTP/1.1";
  #write: WriteFn;
  #reusable = true;
  #id = 0;
  #active = false;
  #reqDone = false;
  #isHead = false;
  #upgrade = U_NONE;
  #mode = M_DISCARD;
  #callbacks: ClientCodecCallbacks | undefined;
  #goAway = false;

  /**
   * Creates a codec writing through `write`; see {@link CodecOptions}. `callbacks.onGoAway` is told, once, when a
   * response says `connection: close` (or is HTTP/1.0 without keep-alive): HTTP/1's notice that no request follows.
   */
  constructor(write: WriteFn, options?: CodecOptions, callbacks?: ClientCodecCallbacks) {
    super(options);
    this.#write = write;
    this.#callbacks = callbacks;
    this.startLineCode = "BadStatusLine";
  }

  /** True if another request may follow on this connection once the current one completes. */
  get reusable(): boolean {
    return this.#reusable;
  }

  /** 1 while a response is awaited or being read, else 0. */
  get activeStreams(): number {
    return this.#active ? 1 : 0;
  }

  /** Starts a request. Throws if a request is in progress or the connection is not reusable. */
  newStream(decoder: StreamDecoder): StreamEncoder {
    if (this.#active || !this.#reusable || this.state === S_DEAD) {
      throw new Error("http1: connection is busy or not reusable");
    }
    this.#id++;
    this.#active = true;
    this.#reqDone = false;
    this.#isHead = false;
    this.#upgrade = U_NONE;
    this.#mode = M_DISCARD;
    this.decoder = decoder;
    return new Http1RequestEncoder(this, this.#id);
  }

  /** Feeds response bytes; throws {@link CodecError} (status 502) on malformed input. */
  override dispatch(data: Uint8Array): void {
    try {
      super.dispatch(data);
    } catch (e) {
      this.#reusable = false;
      this.#active = false;
      if (e instanceof CodecError && e.status !== 502) {
        throw new CodecError(e.code, e.message, { offset: e.offset, status: 502 });
      }
      throw e;
    }
  }

  /** The connection is gone: not reusable, input ignored. */
  override destroy(): void {
    super.destroy();
    this.#reusable = false;
    this.#active = false;
  }

  /** The upstream closed: ends a tunnel or read-until-close body; resets a response cut short. */
  onEof(): void {
    this.#reusable = false;
    if (this.state === S_DEAD) return;
    const dec = this.decoder;
    const wasRaw = this.state === S_RAW;
    this.state = S_DEAD;
    this.dropInput();
    if (!this.#active || dec === null) return;
    this.#active = false;
    this.decoder = null;
    if (wasRaw) dec.decodeData(EMPTY, true);
    else dec.onReset?.("connection-termination", "upstream closed before the response was complete");
  }

  /** A response head is only expected while a request is outstanding. */
  protected beginHead(pos: number): void {
    if (!this.#active) fail("UnexpectedData", "data received with no request outstanding", 502, pos);
  }

  /** Never called: the client holds no input back. */
  protected onDeferredError(_err: unknown): void {}

  /** The response is complete: the stream ends and the connection is free for the next request. */
  protected onBodyEnd(): void {
    this.#active = false;
    this.decoder = null;
    this.state = S_HEAD;
    if (!this.#reqDone) this.#reusable = false;
  }

  /** Parses the status line and fields, checks framing, and hands the response head on. */
  protected onHead(buf: Uint8Array, base: number, len: number): void {
    // Status line: HTTP-version SP 3DIGIT [SP reason-phrase]; the scanner already checked the reason's bytes.
    const lineEnd = base + this.firstEnd;
    let i = base;
    while (i < lineEnd && buf[i] !== SP) i++;
    const v11 = parseVersion(buf, base, i - base) === 1;
    if (i + 4 > lineEnd || (i + 4 < lineEnd && buf[i + 4] !== SP)) {
      fail("BadStatusLine", "malformed status line", 502, i);
    }
    let status = 0;
    for (let k = i + 1; k < i + 4; k++) {
      const d = buf[k]! - 48;
      if (d < 0 || d > 9) fail("BadStatusLine", "malformed status code", 502, k);
      status = status * 10 + d;
    }
    if (status < 100 || status > 599) fail("BadStatusLine", "status code out of range", 502, i);

    const s = this.headString(buf, base, len);
    const kv: string[] = [":status", s.slice(i + 1 - base, i + 4 - base)];
    let cl = -1;
    let te: string | undefined;
    let conn: string | undefined;
    const n = this.nFields;
    for (let f = 0; f < n; f++) {
      const name = this.fieldName(buf, base, s, f);
      let value = this.fieldValue(s, f);
      if (name === "content-length") {
        const had = cl >= 0;
        cl = parseContentLength(value, cl, base);
        if (had) continue;
        value = String(cl);
      } else if (name === "transfer-encoding") {
        te = te === undefined ? value : `${te},${value}`;
        continue;
      } else if (name === "connection") {
        conn = conn === undefined ? value : `${conn},${value}`;
      }
      kv.push(name, value);
    }
    if (te !== undefined) {
      checkTransferEncoding(te, base);
      if (cl >= 0) fail("BadTransferEncoding", "both content-length and transfer-encoding", 502, base);
    }
    const headers = new HeaderMap(kv);
    const dec = this.decoder!;

    if (status < 200) {
      if (status === 101) {
        if (this.#upgrade !== U_UPGRADE) fail("Protocol", "101 response to a request that asked no upgrade", 502, base);
        this.#reusable = false;
        this.state = S_RAW;
        dec.decodeHeaders(headers, false);
      } else {
        dec.decode1xxHeaders?.(headers);
      }
      return;
    }
    if (this.#upgrade === U_CONNECT && status < 300) {
      this.#reusable = false;
      this.state = S_RAW;
      dec.decodeHeaders(headers, false);
      return;
    }
    if (conn !== undefined ? hasToken(conn, "close") || (!v11 && !hasToken(conn, "keep-alive")) : !v11) {
      this.#reusable = false;
      if (!this.#goAway) {
        this.#goAway = true;
        this.#callbacks?.onGoAway();
      }
    }
    if (this.#upgrade !== U_NONE || (!v11 && te !== undefined)) this.#reusable = false;
    if (this.#isHead || status === 204 || status === 304) {
      this.onBodyEnd();
      dec.decodeHeaders(headers, true);
    } else if (te !== undefined) {
      this.startChunked();
      dec.decodeHeaders(headers, false);
    } else if (cl > 0) {
      this.state = S_CL;
      this.remaining = cl;
      dec.decodeHeaders(headers, false);
    } else if (cl === 0) {
      this.onBodyEnd();
      dec.decodeHeaders(headers, true);
    } else {
      this.#reusable = false;
      this.state = S_RAW;
      dec.decodeHeaders(headers, false);
    }
  }

  #encodeHeaders(id: number, headers: HeaderMap, endStream: boolean): void {
    if (id !== this.#id || this.state === S_DEAD) return;
    const kv = headers.kv;
    let method = "GET";
    let path: string | undefined;
    let authority: string | undefined;
    for (let i = 0; i < kv.length; i += 2) {
      const name = kv[i]!;
      if (name.charCodeAt(0) !== 58) continue;
      if (name === ":method") method = kv[i + 1]!;
      else if (name === ":path") path = kv[i + 1]!;
      else if (name === ":authority") authority = kv[i + 1]!;
    }
    const isConnect = method === "CONNECT";
    const target = isConnect ? (authority ?? path ?? "") : (path ?? "/");
    begin();
    put(method);
    put(" ");
    put(target);
    put(" HTTP/1.1\r\n");
    if (authority !== undefined) putField("host", authority);
    let hasCL = false;
    let connUpgrade = false;
    let hasUpgrade = false;
    for (let i = 0; i < kv.length; i += 2) {
      const name = kv[i]!;
      const value = kv[i + 1]!;
      if (name.charCodeAt(0) === 58) continue;
      if (name === "host") {
        if (authority !== undefined) continue;
      } else if (name === "content-length") {
        hasCL = true;
      } else if (name === "transfer-encoding") {
        continue;
      } else if (name === "connection") {
        if (hasToken(value, "close")) this.#reusable = false;
        if (hasToken(value, "upgrade")) connUpgrade = true;
      } else if (name === "upgrade") {
        hasUpgrade = true;
      }
      putField(name, value);
    }
    this.#isHead = method === "HEAD";
    this.#upgrade = isConnect ? U_CONNECT : connUpgrade && hasUpgrade ? U_UPGRADE : U_NONE;
    if (this.#upgrade !== U_NONE || hasCL) {
      this.#mode = M_RAW;
    } else if (endStream) {
      if (method === "POST" || method === "PUT" || method === "PATCH") put("content-length: 0\r\n");
      this.#mode = M_DISCARD;
    } else {
      put("transfer-encoding: chunked\r\n");
      this.#mode = M_CHUNKED;
    }
    putCrlf();
    // State first: a synchronous write may deliver the whole response before it returns.
    if (endStream) this.#reqDone = true;
    flush(this.#write);
  }

  #encodeData(id: number, data: Uint8Array, endStream: boolean): void {
    if (id !== this.#id || this.#reqDone || this.state === S_DEAD) return;
    const mode = this.#mode;
    if (endStream) this.#reqDone = true;
    if (mode === M_RAW) {
      if (data.length > 0) this.#write(data);
    } else if (mode === M_CHUNKED) {
      if (data.length > 0) {
        writeChunkSize(this.#write, data.length);
        this.#write(data);
        this.#write(endStream ? CRLF_LAST_CHUNK : CRLF_BYTES);
      } else if (endStream) {
        this.#write(LAST_CHUNK);
      }
    }
  }

  #encodeTrailers(id: number, trailers: HeaderMap): void {
    if (id !== this.#id || this.#reqDone || this.state === S_DEAD) return;
    this.#reqDone = true;
    if (this.#mode === M_CHUNKED) {
      begin();
      put("0\r\n");
      putFields(trailers.kv);
      putCrlf();
      flush(this.#write);
    }
  }

  #reset(id: number): void {
    if (id !== this.#id) return;
    this.#reusable = false;
    this.#active = false;
    this.decoder = null;
    this.state = S_DEAD;
    this.dropInput();
  }

  static {
    friend = {
      encodeHeaders: (c, id, h, e) => c.#encodeHeaders(id, h, e),
      encodeData: (c, id, d, e) => c.#encodeData(id, d, e),
      encodeTrailers: (c, id, t) => c.#encodeTrailers(id, t),
      reset: (c, id) => c.#reset(id),
    };
  }
}
