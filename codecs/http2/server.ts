/**
 * {@link Http2ServerCodec}: the downstream side of an HTTP/2 connection (RFC 9113), prior knowledge or after ALPN
 * `h2`.
 *
 * On creation it writes its SETTINGS (MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE, HEADER_TABLE_SIZE,
 * MAX_FRAME_SIZE 16384, MAX_HEADER_LIST_SIZE from `maxHeadersKb`, ENABLE_CONNECT_PROTOCOL when `allowConnect`)
 * and a connection WINDOW_UPDATE up to `initialConnectionWindowSize`; it then expects the client preface and the
 * client's SETTINGS.
 *
 * Requests: every new stream is handed to `callbacks.newStream` with an encoder that is also the stream's
 * {@link Stream} (per-stream flow control, watermarks and reset). Its headers are `[":method", m, ":path", p,
 * ":authority", a, ":scheme", s, (":protocol", x,) ...fields]` like the HTTP/1 codec's (`host` becomes
 * `:authority` when that is absent; cookie crumbs are joined with `; `). A malformed request (RFC 9113 §8.2, §8.3)
 * is refused with RST_STREAM(PROTOCOL_ERROR) and never reaches `newStream`; a header list beyond
 * `maxHeadersKb`/`maxHeadersCount` gets a 431 response.
 *
 * Responses: `:status` plus the fields, without connection-specific ones (`connection` and the fields it names,
 * `keep-alive`, `proxy-connection`, `transfer-encoding`, `upgrade`) that an HTTP/1 upstream may have sent.
 *
 * Errors: a connection error in `dispatch` writes GOAWAY(last stream id, code) and throws
 * {@link Http2CodecError}; `sendProtocolError` then writes nothing more. Floods found outside `dispatch` (and an
 * unanswered keepalive PING) write GOAWAY and call `options.closeConnection`. See the folder's `mod.ts` for the
 * flood rules.
 *
 * @module
 */
import type { CodecOptions, ServerCodecCallbacks, ServerConnectionCodec, WriteFn } from "../../lib/api/codec.ts";
import type { CodecError } from "../../lib/api/errors.ts";
import { Http2Connection } from "./_connection.ts";

/** The downstream HTTP/2 codec; create it through `http2CodecFactory.createServer`. */
export class Http2ServerCodec extends Http2Connection implements ServerConnectionCodec {
  /** "HTTP/2". */
  readonly protocol = "HTTP/2";
  /** Streams are independent: a dispatch error is the connection's (GOAWAY), see `ServerConnectionCodec`. */
  readonly multiplexed = true;

  /** Writes the server preface (SETTINGS, WINDOW_UPDATE) through `write` at once. */
  constructor(write: WriteFn, callbacks: ServerCodecCallbacks, options?: CodecOptions) {
    super(write, { server: true, newStream: (encoder) => callbacks.newStream(encoder) }, options);
  }

  /** True until a GOAWAY was sent or received or the connection failed. */
  get keepAlive(): boolean {
    return this.keepAliveFlag;
  }

  /** True when no stream is open. */
  get idle(): boolean {
    // While a drain waits for its final GOAWAY, streams the client sent meanwhile may still arrive.
    return this.openStreams === 0 && !this.drainPending;
  }

  /**
   * Graceful GOAWAY (RFC 9113 §6.8): GOAWAY(2^31-1, NO_ERROR) and a PING now; on the PING's ack (or after 1 s)
   * GOAWAY(last stream id, NO_ERROR), after which new streams are ignored. `keepAlive` is false from now on.
   */
  shutdownNotice(): void {
    this.startDrain();
  }

  /** The peer half-closed: streams still receiving are reset; responses under way may finish. */
  onEof(): void {
    this.peerEnded();
  }

  /** Writes GOAWAY for `err` unless `dispatch` wrote it already (see the module doc). */
  override sendProtocolError(err: CodecError): void {
    super.sendProtocolError(err);
  }
}
