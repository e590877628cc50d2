/**
 * {@link Http1ServerCodec}: the downstream side of an HTTP/1.0 / HTTP/1.1 connection.
 *
 * Decoding (see `_reader.ts` for the byte-level rules): a request becomes a {@link HeaderMap} that starts with
 * `:method`, `:path` (the request-target exactly as sent, for every form including `*` and CONNECT's
 * authority-form), `:authority` (the absolute-form URI's authority, CONNECT's target, else the Host header; left
 * out only for an HTTP/1.0 request without Host) and `:scheme` (`https` when `options.secure`), followed by the
 * other fields lower-cased in wire order. `Host` is not repeated as a regular field. `content-length` stays in the
 * map; `transfer-encoding` is removed, because the body delivered is already de-chunked. Hop-by-hop fields
 * (`connection`, `keep-alive`, `upgrade`, `te`, ...) are left for the connection manager.
 *
 * Version: the encoder handed to `newStream` is an {@link Http1ResponseEncoder} whose `protocol` is the request's
 * `"HTTP/1.0"` or `"HTTP/1.1"`; the codec's `lastRequestVersion` says the same for the latest request.
 *
 * Pipelining: after a request is complete the codec stops decoding until its response has been fully encoded. It
 * then continues with the held-back input in a microtask (never inside the encoder call, so the connection
 * manager never sees a new stream start inside its own `encodeData`). An error found in that deferred pass is
 * reported to `callbacks.onDispatchError` ({@link Http1ServerCallbacks}), which must treat it exactly as if
 * `dispatch` had thrown it; without that callback the codec writes the protocol error itself and ignores further
 * input.
 *
 * Upgrades: a request with `connection: upgrade` and an `upgrade` field, or a CONNECT, is handed on with
 * `endStream` false. What follows it on the connection is held (copied, up to 64 KiB: more is a 413) until the
 * response says whether the protocol switches. A `101` (or a 2xx to CONNECT) response is written without framing,
 * its data go out raw, and the held bytes and every later byte of the connection become body data of the stream,
 * unframed (`onEof` ends it); the held bytes are delivered right after the response head is written. Any other
 * response is an ordinary response after which the connection closes, and the held bytes are dropped unread: they
 * are neither the upgraded protocol's (it never started) nor requests to serve (the response said `connection:
 * close`, after which RFC 9112 §9.6 forbids processing more). So nothing after an upgrade request reaches the
 * upstream before the switch, and nothing can be smuggled past routing behind a declined one. Either way
 * `keepAlive` is false afterwards. An upgrade or CONNECT request that announces a body (`content-length` above 0,
 * or `transfer-encoding`) is refused with 400: its body could not be told apart from the tunnel's first bytes.
 * `Upgrade: h2c` is not an upgrade here: such a request is served as plain HTTP/1.1 (as Envoy does by default),
 * its hop-by-hop fields left for the connection manager to strip.
 *
 * Keep-alive: HTTP/1.1 by default, HTTP/1.0 only with `connection: keep-alive` (answered with the same). The
 * response carries `connection: close` and `keepAlive` turns false when either side sent `connection: close`,
 * after {@link Http1ServerCodec.shutdownNotice}, for a close-delimited (HTTP/1.0, unknown length) body, when the
 * response headers go out before the request was fully received, or after the peer half-closed. Once `keepAlive`
 * is false after a response, the connection manager closes the connection (the codec only stops decoding).
 *
 * Call `destroy()` when the connection closes: it drops buffered input and cancels a pending resumption.
 *
 * @module
 */
import type {
  CodecOptions,
  ServerCodecCallbacks,
  ServerConnectionCodec,
  Stream,
  StreamCallbacks,
  StreamDecoder,
  StreamEncoder,
  StreamResetReason,
  WriteFn,
} from "../../lib/api/codec.ts";
import { CodecError } from "../../lib/api/errors.ts";
import { HeaderMap } from "../../lib/api/headers.ts";
import { hasToken, knownMethod, reasonPhrase, SP, statusLine, TCHAR, validAuthority } from "./_chars.ts";
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
  writeString,
} from "./_encode.ts";
import { checkTransferEncoding, parseContentLength, parseVersion } from "./_framing.ts";
import { fail, Http1Reader, S_CL, S_DEAD, S_HEAD, S_PAUSED, S_RAW } from "./_reader.ts";

/** The HTTP versions the codec speaks. */
export type Http1Version = "HTTP/1.0" | "HTTP/1.1";

/** Server callbacks, with the optional hook for errors found while decoding held-back pipelined input. */
export interface Http1ServerCallbacks extends ServerCodecCallbacks {
  /**
   * Decoding input held back behind a pipelined request (resumed in a microtask once its response completed)
   * threw `err` (a {@link CodecError} for malformed input). Handle it as a throw from `dispatch`: call
   * `sendProtocolError` for a CodecError, then close the connection.
   */
  onDispatchError?(err: unknown): void;
}

/** Encoder body modes. */
const M_DISCARD = 0;
const M_RAW = 1;
const M_CHUNKED = 2;

/** Upgrade kinds. */
const U_NONE = 0;
const U_UPGRADE = 1;
const U_CONNECT = 2;

/** Response progress. */
const R_NONE = 0;
const R_HEADERS = 1;
const R_DONE = 2;

/** The most input held after an upgrade request while its response is awaited (see the module doc). */
const MAX_UPGRADE_HOLD = 64 * 1024;

/**
 * Stands in for the stream's decoder while an upgrade's response is awaited: keeps the bytes that follow (the
 * reader hands them over as unframed body data) until the codec releases or drops them. Only upgrade requests
 * create one.
 */
class UpgradeHold implements StreamDecoder {
  buf: Uint8Array = new Uint8Array(0);
  len = 0;
  /** The peer half-closed while the bytes were held. */
  ended = false;

  decodeHeaders(): void {}

  decodeData(data: Uint8Array, endStream: boolean): void {
    if (endStream) this.ended = true;
    const n = data.length;
    if (n === 0) return;
    const need = this.len + n;
    if (need > MAX_UPGRADE_HOLD) {
      fail("BodyTooLarge", "too much data before the upgrade was accepted", 413, 0);
    }
    if (need > this.buf.length) {
      const b = new Uint8Array(Math.min(MAX_UPGRADE_HOLD, Math.max(need, this.buf.length * 2, 1024)));
      b.set(this.buf.subarray(0, this.len));
      this.buf = b;
    }
    this.buf.set(data, this.len);
    this.len = need;
  }

  decodeTrailers(): void {}
}

interface Friend {
  encode1xx(c: Http1ServerCodec, id: number, headers: HeaderMap): void;
  encodeHeaders(c: Http1ServerCodec, id: number, headers: HeaderMap, endStream: boolean): void;
  encodeData(c: Http1ServerCodec, id: number, data: Uint8Array, endStream: boolean): void;
  encodeTrailers(c: Http1ServerCodec, id: number, trailers: HeaderMap): void;
  reset(c: Http1ServerCodec, id: number): void;
  readDisable(c: Http1ServerCodec, disable: boolean): void;
  addCallbacks(c: Http1ServerCodec, id: number, cbs: StreamCallbacks): void;
  removeCallbacks(c: Http1ServerCodec, id: number, cbs: StreamCallbacks): void;
  bufferLimit(c: Http1ServerCodec): number;
}
let friend: Friend;

/**
 * The encoder for one response, handed to `newStream`. `protocol` is the version of the request it answers.
 * Calls after the stream ended (or from a stale encoder) are ignored. `resetStream` abandons the response and
 * makes `keepAlive` false: the connection manager must then close the connection (the codec cannot).
 */
export class Http1ResponseEncoder implements StreamEncoder, Stream {
  /** The HTTP version of the request this response answers. */
  readonly protocol: Http1Version;
  #codec: Http1ServerCodec;
  #id: number;
  #headersSent = false;

  /** Created by {@link Http1ServerCodec} only. */
  constructor(codec: Http1ServerCodec, id: number, protocol: Http1Version) {
    this.#codec = codec;
    this.#id = id;
    this.protocol = protocol;
  }

  /** True once the final response headers have been written. */
  get headersSent(): boolean {
    return this.#headersSent;
  }

  /** Writes an informational response (e.g. `HTTP/1.1 100 Continue`); skipped for HTTP/1.0 requests. */
  encode1xxHeaders(headers: HeaderMap): void {
    friend.encode1xx(this.#codec, this.#id, headers);
  }

  /** Writes the status line and fields, adding framing and connection fields as described in the module doc. */
  encodeHeaders(headers: HeaderMap, endStream: boolean): void {
    if (this.#headersSent) return;
    this.#headersSent = true;
    friend.encodeHeaders(this.#codec, this.#id, headers, endStream);
  }

  /** Writes body bytes (chunked if so framed; dropped for HEAD, 1xx, 204 and 304). */
  encodeData(data: Uint8Array, endStream: boolean): void {
    friend.encodeData(this.#codec, this.#id, data, endStream);
  }

  /** Writes trailers (chunked responses only; otherwise they are dropped) and ends the response. */
  encodeTrailers(trailers: HeaderMap): void {
    friend.encodeTrailers(this.#codec, this.#id, trailers);
  }

  /** Abandons the response; the connection must be closed. */
  resetStream(_reason: StreamResetReason): void {
    friend.reset(this.#codec, this.#id);
  }

  /** The stream's transport side is the encoder itself: on HTTP/1 a stream's flow control is its connection's. */
  get stream(): Stream {
    return this;
  }

  /** Pauses or resumes reading the connection (one stream at a time: this stream's data is the connection's). */
  readDisable(disable: boolean): void {
    friend.readDisable(this.#codec, disable);
  }

  /** Watermark and reset callbacks for this stream; dropped when the next request begins. */
  addCallbacks(callbacks: StreamCallbacks): void {
    friend.addCallbacks(this.#codec, this.#id, callbacks);
  }

  /** Removes callbacks added with {@link addCallbacks}. */
  removeCallbacks(callbacks: StreamCallbacks): void {
    friend.removeCallbacks(this.#codec, this.#id, callbacks);
  }

  /** The connection's buffer limit. */
  get bufferLimit(): number {
    return friend.bufferLimit(this.#codec);
  }
}

/** The downstream HTTP/1 codec; see the module doc. Create it through `http1CodecFactory.createServer`. */
export class Http1ServerCodec extends Http1Reader implements ServerConnectionCodec {
  /** The connection's protocol family; per request see `lastRequestVersion` or the encoder's `protocol`. */
  readonly protocol = "HTTP/1.1";
  #write: WriteFn;
  #callbacks: Http1ServerCallbacks;
  #scheme: string;
  #keepAlive = true;
  #shutdown = false;
  #lastVersion: Http1Version = "HTTP/1.1";

  // The stream in progress (one at a time: HTTP/1 has no concurrency).
  #id = 0;
  #active = false;
  #reqDone = false;
  #resp = R_NONE;
  #v11 = true;
  #isHead = false;
  #reqKeepAlive = true;
  #upgrade = U_NONE;
  #mode = M_DISCARD;
  /** While an upgrade's response is awaited: the held input, and the stream's own decoder. */
  #hold: UpgradeHold | null = null;
  #upgradeDecoder: StreamDecoder | null = null;
  /** Callbacks of the stream in progress (`Stream.addCallbacks`): one inline, more in a list. */
  #streamCb: StreamCallbacks | null = null;
  #streamCbs: StreamCallbacks[] | null = null;
  readonly #readDisable: ((disable: boolean) => void) | undefined;
  readonly #bufferLimit: number;

  /** Creates a codec writing through `write`; see {@link CodecOptions}. */
  constructor(write: WriteFn, callbacks: Http1ServerCallbacks, options?: CodecOptions) {
    super(options);
    this.#write = write;
    this.#callbacks = callbacks;
    this.#scheme = options?.secure ? "https" : "http";
    this.#readDisable = options?.readDisable;
    this.#bufferLimit = options?.bufferLimit ?? 0;
  }

  /** The connection passed its high watermark: the stream in progress is told. */
  onAboveWriteBufferHighWatermark(): void {
    this.#streamCb?.onAboveWriteBufferHighWatermark();
    if (this.#streamCbs) { for (const c of this.#streamCbs.slice()) c.onAboveWriteBufferHighWatermark(); }
  }

  /** The connection drained below its low watermark: the stream in progress is told. */
  onBelowWriteBufferLowWatermark(): void {
    this.#streamCb?.onBelowWriteBufferLowWatermark();
    if (this.#streamCbs) { for (const c of this.#streamCbs.slice()) c.onBelowWriteBufferLowWatermark(); }
  }

  #addStreamCallbacks(id: number, cbs: StreamCallbacks): void {
    if (id !== this.#id) return;
    if (this.#streamCb === null) this.#streamCb = cbs;
    else (this.#streamCbs ??= []).push(cbs);
  }

  #removeStreamCallbacks(id: number, cbs: StreamCallbacks): void {
    if (id !== this.#id) return;
    if (this.#streamCb === cbs) this.#streamCb = null;
    else if (this.#streamCbs) {
      const i = this.#streamCbs.indexOf(cbs);
      if (i >= 0) this.#streamCbs.splice(i, 1);
    }
  }

  /** The version of the most recent request decoded. */
  get lastRequestVersion(): Http1Version {
    return this.#lastVersion;
  }

  /** True while the connection should stay open after the current response. */
  get keepAlive(): boolean {
    return this.#keepAlive;
  }

  /** True if no request is in progress and no partial request has arrived. */
  get idle(): boolean {
    return !this.#active && !this.headStarted;
  }

  /** The next response carries `connection: close` (the one in progress, if its headers are not yet sent). */
  shutdownNotice(): void {
    this.#shutdown = true;
  }

  /** The peer closed its side: a tunnel's request ends; a request cut short is reset. */
  onEof(): void {
    if (this.state === S_DEAD) return;
    const dec = this.decoder;
    if (this.#active && !this.#reqDone && dec !== null) {
      if (this.state === S_RAW) {
        // A tunnel ends; or, while an upgrade's response is awaited, the hold keeps the end with the bytes.
        this.#reqDone = true;
        this.state = S_DEAD;
        dec.decodeData(new Uint8Array(0), true);
        return;
      }
      this.#keepAlive = false;
      this.state = S_DEAD;
      this.dropInput();
      dec.onReset?.("connection-termination", "downstream closed mid-request");
      return;
    }
    // Nothing more will arrive: after the response in progress (if any) the connection is done.
    this.state = S_DEAD;
    this.dropInput();
    this.#keepAlive = false;
  }

  /**
   * Writes `HTTP/1.1 <status> <reason>` with a short plain-text body naming the problem and `connection: close`,
   * unless a response is already under way (then nothing). Input is ignored afterwards.
   */
  sendProtocolError(err: CodecError): void {
    this.#keepAlive = false;
    this.state = S_DEAD;
    this.dropInput();
    if (this.#active && this.#resp !== R_NONE) return;
    this.#active = false;
    this.#resp = R_DONE;
    const status = err.status >= 400 && err.status <= 599 ? err.status : 400;
    const detail = err.message.startsWith("http1: ") ? err.message.slice(7) : err.message;
    const body = `${reasonPhrase(status)}: ${detail}\n`;
    writeString(
      this.#write,
      `${
        statusLine(status)
      }content-length: ${body.length}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${body}`,
    );
  }

  /** A new head may always start (pipelining is held back by the paused state instead). */
  protected beginHead(_pos: number): void {}

  /** Reports an error from decoding held-back pipelined input. */
  protected onDeferredError(err: unknown): void {
    const cb = this.#callbacks.onDispatchError;
    if (cb !== undefined) {
      cb.call(this.#callbacks, err);
    } else if (err instanceof CodecError) {
      this.sendProtocolError(err);
    } else {
      console.error("http1: error while decoding pipelined input:", err);
    }
  }

  /** The request is complete: pause until its response is. */
  protected onBodyEnd(): void {
    this.#reqDone = true;
    this.state = S_PAUSED;
  }

  /** Parses the request line and fields, checks framing, and starts the stream. */
  protected onHead(buf: Uint8Array, base: number, len: number): void {
    // Request line: method SP request-target SP HTTP-version, single spaces.
    const lineEnd = base + this.firstEnd;
    let i = base;
    while (i < lineEnd && TCHAR[buf[i]!] !== 0) i++;
    if (i === base) fail("BadMethod", "invalid method", 400, i);
    if (i === lineEnd || buf[i] !== SP) fail("BadMethod", "invalid character in method", 400, i);
    const mEnd = i - base;
    const tStart = ++i;
    let c = 0;
    while (i < lineEnd && (c = buf[i]!) > 32 && c < 127) i++;
    if (i === tStart) fail("BadUri", "empty request target", 400, i);
    if (i === lineEnd) fail("BadRequestLine", "missing HTTP version", 400, i);
    if (c !== SP) fail("BadUri", "invalid character in request target", 400, i);
    const tEnd = i - base;
    const v11 = parseVersion(buf, i + 1, lineEnd - i - 1) === 1;

    const s = this.headString(buf, base, len);
    const method = knownMethod(buf, base, mEnd) ?? s.slice(0, mEnd);
    const target = s.slice(tStart - base, tEnd);
    const kv: string[] = [":method", method, ":path", target, ":authority", "", ":scheme", this.#scheme];

    let authority: string | undefined;
    const t0 = buf[tStart]!;
    const isConnect = method === "CONNECT";
    if (t0 === 47 /* / */) {
      if (isConnect) fail("BadUri", "CONNECT requires an authority-form target", 400, tStart);
    } else if (isConnect) {
      authority = authorityForm(target, tStart);
    } else if (t0 === 42 /* * */ && target.length === 1) {
      if (method !== "OPTIONS") fail("BadUri", "asterisk-form target is only for OPTIONS", 400, tStart);
    } else {
      authority = absoluteFormAuthority(target, tStart);
    }

    let host: string | undefined;
    let cl = -1;
    let te: string | undefined;
    let conn: string | undefined;
    let upgradeValue: string | undefined;
    const n = this.nFields;
    for (let f = 0; f < n; f++) {
      const name = this.fieldName(buf, base, s, f);
      let value = this.fieldValue(s, f);
      if (name === "host") {
        if (host !== undefined) fail("BadHeader", "multiple host headers", 400, base);
        host = value;
        continue;
      } else if (name === "content-length") {
        const had = cl >= 0;
        cl = parseContentLength(value, cl, base);
        if (had) continue;
        value = String(cl);
      } else if (name === "transfer-encoding") {
        te = te === undefined ? value : `${te},${value}`;
        continue;
      } else if (name === "connection") {
        conn = conn === undefined ? value : `${conn},${value}`;
      } else if (name === "upgrade") {
        upgradeValue = value;
      }
      kv.push(name, value);
    }
    if (te !== undefined) {
      checkTransferEncoding(te, base);
      if (cl >= 0) fail("BadTransferEncoding", "both content-length and transfer-encoding", 400, base);
    }
    if (host === undefined) {
      if (v11) fail("BadHeader", "missing host header", 400, base);
    } else if (!validAuthority(host)) {
      fail("BadHeader", "invalid host header", 400, base);
    }
    if (authority === undefined) authority = host;
    if (authority === undefined) kv.splice(4, 2);
    else kv[5] = authority;

    let keepAlive: boolean;
    let upgrade = isConnect ? U_CONNECT : U_NONE;
    if (conn === undefined) {
      keepAlive = v11;
    } else if (conn === "keep-alive") {
      keepAlive = true;
    } else {
      keepAlive = hasToken(conn, "close") ? false : (v11 || hasToken(conn, "keep-alive"));
      // h2c is not supported: such a request is served as HTTP/1.1 (as Envoy does by default).
      if (
        upgradeValue !== undefined && upgrade === U_NONE && hasToken(conn, "upgrade") && !hasToken(upgradeValue, "h2c")
      ) upgrade = U_UPGRADE;
    }

    if (upgrade !== U_NONE && (cl > 0 || te !== undefined)) {
      fail("UnexpectedData", `${isConnect ? "CONNECT" : "upgrade"} request with a body`, 400, base);
    }
    // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing; close after it.
    if (!v11 && te !== undefined) keepAlive = false;
    const version: Http1Version = v11 ? "HTTP/1.1" : "HTTP/1.0";
    this.#lastVersion = version;
    this.#id++;
    this.#active = true;
    this.#reqDone = false;
    this.#resp = R_NONE;
    this.#v11 = v11;
    this.#isHead = method === "HEAD";
    this.#reqKeepAlive = keepAlive;
    this.#keepAlive = keepAlive;
    this.#upgrade = upgrade;
    this.#mode = M_DISCARD;
    const headers = new HeaderMap(kv);
    this.#streamCb = null;
    this.#streamCbs = null;
    const dec = this.#callbacks.newStream(new Http1ResponseEncoder(this, this.#id, version));
    this.decoder = dec;
    if (upgrade !== U_NONE) {
      // Whatever follows waits in the hold until the response accepts or declines the upgrade.
      this.state = S_RAW;
      const hold = new UpgradeHold();
      this.#hold = hold;
      this.#upgradeDecoder = dec;
      this.decoder = hold;
      dec.decodeHeaders(headers, false);
    } else if (te !== undefined) {
      this.startChunked();
      dec.decodeHeaders(headers, false);
    } else if (cl > 0) {
      this.state = S_CL;
      this.remaining = cl;
      dec.decodeHeaders(headers, false);
    } else {
      this.onBodyEnd();
      dec.decodeHeaders(headers, true);
    }
  }

  #encode1xx(id: number, headers: HeaderMap): void {
    if (id !== this.#id || !this.#active || this.#resp !== R_NONE || !this.#v11) return;
    const st = Number(headers.get(":status") ?? "100");
    const status = st >= 100 && st < 200 && st !== 101 ? st : 100;
    begin();
    put(statusLine(status));
    putFields(headers.kv);
    putCrlf();
    flush(this.#write);
  }

  #encodeHeaders(id: number, headers: HeaderMap, endStream: boolean): void {
    if (id !== this.#id || !this.#active || this.#resp !== R_NONE) return;
    const kv = headers.kv;
    let status = 500;
    for (let i = 0; i < kv.length; i += 2) {
      if (kv[i]!.charCodeAt(0) === 58 && kv[i] === ":status") {
        status = +kv[i + 1]!;
        if (!(status >= 100 && status <= 599) || status % 1 !== 0) status = 500;
        break;
      }
    }
    begin();
    put(statusLine(status));
    let hasCL = false;
    let connClose = false;
    let connGiven = false;
    for (let i = 0; i < kv.length; i += 2) {
      const name = kv[i]!;
      const value = kv[i + 1]!;
      if (name.charCodeAt(0) === 58) continue;
      if (name === "content-length") hasCL = true;
      else if (name === "transfer-encoding") continue;
      else if (name === "connection") {
        connGiven = true;
        if (hasToken(value, "close")) connClose = true;
      }
      putField(name, value);
    }
    // S_DEAD here: the peer half-closed after its request, so no further request can come.
    let close = !this.#reqKeepAlive || connClose || this.#shutdown || !this.#reqDone || this.state === S_DEAD;
    const upgrade = this.#upgrade;
    let accepted = false;
    if ((upgrade === U_UPGRADE && status === 101) || (upgrade === U_CONNECT && status >= 200 && status < 300)) {
      // Tunnel: no framing, the bytes that follow are the upgraded protocol's.
      this.#mode = M_RAW;
      close = true;
      accepted = true;
    } else {
      if (upgrade !== U_NONE) {
        // Declined: what followed the request is dropped, and the connection closes after this response.
        close = true;
        this.#dropHold();
      }
      if (this.#isHead || status < 200 || status === 204 || status === 304) {
        this.#mode = M_DISCARD;
      } else if (hasCL) {
        this.#mode = M_RAW;
      } else if (endStream) {
        put("content-length: 0\r\n");
        this.#mode = M_RAW;
      } else if (this.#v11) {
        put("transfer-encoding: chunked\r\n");
        this.#mode = M_CHUNKED;
      } else {
        this.#mode = M_RAW;
        close = true;
      }
      if (close) {
        if (!connClose) put("connection: close\r\n");
      } else if (!this.#v11 && !connGiven) {
        put("connection: keep-alive\r\n");
      }
    }
    this.#keepAlive = !close;
    this.#resp = R_HEADERS;
    putCrlf();
    flush(this.#write);
    if (accepted && this.#hold !== null) this.#releaseHold();
    if (endStream) this.#end();
  }

  /**
   * The upgrade was accepted: the stream's decoder takes over from the hold and gets the held bytes (and the
   * peer's half-close, if it came meanwhile) at once, behind the response head just written.
   */
  #releaseHold(): void {
    const hold = this.#hold!;
    const dec = this.#upgradeDecoder!;
    this.#hold = null;
    this.#upgradeDecoder = null;
    if (this.decoder === hold) this.decoder = dec;
    if (hold.len > 0 || hold.ended) dec.decodeData(hold.buf.subarray(0, hold.len), hold.ended);
  }

  #dropHold(): void {
    if (this.#hold === null) return;
    if (this.decoder === this.#hold) this.decoder = this.#upgradeDecoder;
    this.#hold = null;
    this.#upgradeDecoder = null;
    // Nothing more is read for this connection: the response closes it.
    this.state = S_DEAD;
    this.dropInput();
  }

  #encodeData(id: number, data: Uint8Array, endStream: boolean): void {
    if (id !== this.#id || !this.#active || this.#resp !== R_HEADERS) return;
    const mode = this.#mode;
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
    if (endStream) this.#end();
  }

  #encodeTrailers(id: number, trailers: HeaderMap): void {
    if (id !== this.#id || !this.#active || this.#resp !== R_HEADERS) return;
    if (this.#mode === M_CHUNKED) {
      begin();
      put("0\r\n");
      putFields(trailers.kv);
      putCrlf();
      flush(this.#write);
    }
    this.#end();
  }

  #reset(id: number): void {
    if (id !== this.#id || !this.#active) return;
    this.#hold = null;
    this.#upgradeDecoder = null;
    this.#active = false;
    this.#resp = R_DONE;
    this.#keepAlive = false;
    this.state = S_DEAD;
    this.decoder = null;
    this.dropInput();
    const cb = this.#streamCb;
    const cbs = this.#streamCbs;
    this.#streamCb = null;
    this.#streamCbs = null;
    cb?.onResetStream?.("local-reset");
    if (cbs) { for (const c of cbs) c.onResetStream?.("local-reset"); }
  }

  /** The response is complete: go on with the next request, or stop if the connection is to close. */
  #end(): void {
    this.#resp = R_DONE;
    this.#active = false;
    this.decoder = null;
    if (!this.#keepAlive || !this.#reqDone) {
      this.#keepAlive = false;
      if (this.state !== S_DEAD) {
        this.state = S_DEAD;
        this.dropInput();
      }
      return;
    }
    if (this.state === S_PAUSED) {
      this.state = S_HEAD;
      this.scheduleResume();
    }
  }

  static {
    friend = {
      encode1xx: (c, id, h) => c.#encode1xx(id, h),
      encodeHeaders: (c, id, h, e) => c.#encodeHeaders(id, h, e),
      encodeData: (c, id, d, e) => c.#encodeData(id, d, e),
      encodeTrailers: (c, id, t) => c.#encodeTrailers(id, t),
      reset: (c, id) => c.#reset(id),
      readDisable: (c, d) => c.#readDisable?.(d),
      addCallbacks: (c, id, cbs) => c.#addStreamCallbacks(id, cbs),
      removeCallbacks: (c, id, cbs) => c.#removeStreamCallbacks(id, cbs),
      bufferLimit: (c) => c.#bufferLimit,
    };
  }
}

/** Validates CONNECT's authority-form target (`host:port`) and returns it. */
function authorityForm(target: string, offset: number): string {
  const colon = target.lastIndexOf(":");
  if (colon <= 0 || colon === target.length - 1 || colon < target.length - 6) {
    fail("BadUri", "CONNECT target must be host:port", 400, offset);
  }
  for (let i = colon + 1; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c < 48 || c > 57) fail("BadUri", "CONNECT target must be host:port", 400, offset);
  }
  if (!validAuthority(target) || target.indexOf("@") >= 0) {
    fail("BadUri", "CONNECT target must be host:port", 400, offset);
  }
  return target;
}

/** Returns the authority of an absolute-form target (`scheme://authority[/path][?query]`), or throws 400. */
function absoluteFormAuthority(target: string, offset: number): string {
  let i = 0;
  const n = target.length;
  let c = target.charCodeAt(0);
  if (!((c >= 65 && c <= 90) || (c >= 97 && c <= 122))) fail("BadUri", "invalid request target", 400, offset);
  for (i = 1; i < n; i++) {
    c = target.charCodeAt(i);
    if (
      !((c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 43 || c === 45 || c === 46)
    ) break;
  }
  if (c !== 58 || target.charCodeAt(i + 1) !== 47 || target.charCodeAt(i + 2) !== 47) {
    fail("BadUri", "invalid request target", 400, offset);
  }
  const start = i + 3;
  let end = start;
  while (end < n && (c = target.charCodeAt(end)) !== 47 && c !== 63 && c !== 35) end++;
  const authority = target.slice(start, end);
  if (end === start || !validAuthority(authority)) fail("BadUri", "invalid authority in request target", 400, offset);
  return authority;
}
