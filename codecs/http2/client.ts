/**
 * {@link Http2ClientCodec}: the upstream side of an HTTP/2 connection (RFC 9113), prior knowledge (h2c) or after
 * ALPN `h2`.
 *
 * On creation it writes the connection preface, its SETTINGS (ENABLE_PUSH 0, INITIAL_WINDOW_SIZE,
 * HEADER_TABLE_SIZE, MAX_FRAME_SIZE, MAX_HEADER_LIST_SIZE) and a connection WINDOW_UPDATE.
 *
 * Requests: `:method`, `:scheme` (from the map, else `https` when `options.secure`, else `http`), `:authority`
 * (from `:authority`, else the `host` field), `:path`, then the fields without `host` and without
 * connection-specific ones; `te` only as `trailers`. A plain CONNECT carries `:method` and `:authority` only. The
 * stream id is assigned when the headers are encoded.
 *
 * Responses: `[":status", s, ...fields]`; 1xx (other than 101) go to `decode1xxHeaders`, trailing HEADERS to
 * `decodeTrailers`. A malformed response resets its stream (RST_STREAM PROTOCOL_ERROR, `onReset("protocol-error")`).
 *
 * GOAWAY: `callbacks.onGoAway(lastStreamId)` is called and streams above `lastStreamId` are reset with
 * `"remote-refused-stream"` (as is a stream the server resets with REFUSED_STREAM); `reusable` turns false.
 * `maxConcurrentStreams` is the server's SETTINGS_MAX_CONCURRENT_STREAMS capped by ours (100 until the server's
 * SETTINGS arrive); `callbacks.onStreamCapacityChanged` is called when it changes.
 *
 * Errors: a connection error in `dispatch` writes GOAWAY and throws {@link Http2CodecError}; the pool closes the
 * connection. Floods found outside `dispatch` and an unanswered keepalive PING write GOAWAY and call
 * `options.closeConnection`.
 *
 * @module
 */
import type {
  ClientCodecCallbacks,
  ClientConnectionCodec,
  CodecOptions,
  StreamDecoder,
  WriteFn,
} from "../../lib/api/codec.ts";
import { type H2Stream, Http2Connection } from "./_connection.ts";

/** The upstream HTTP/2 codec; create it through `http2CodecFactory.createClient`. */
export class Http2ClientCodec extends Http2Connection implements ClientConnectionCodec {
  /** "HTTP/2". */
  readonly protocol = "HTTP/2";

  /** Writes the client preface (preface, SETTINGS, WINDOW_UPDATE) through `write` at once. */
  constructor(write: WriteFn, options?: CodecOptions, callbacks?: ClientCodecCallbacks) {
    super(write, {
      server: false,
      onGoAway: (id) => callbacks?.onGoAway(id),
      onCapacityChanged: () => callbacks?.onStreamCapacityChanged?.(),
    }, options);
  }

  /** Starts a request stream; throws if the connection is not reusable (GOAWAY, error, closed). */
  newStream(decoder: StreamDecoder): H2Stream {
    if (!this.reusable) throw new Error("http2: connection is not reusable");
    return this.createClientStream(decoder);
  }

  /** False after a GOAWAY (either way), a connection error or close. */
  get reusable(): boolean {
    return this.keepAliveFlag;
  }

  /** Streams created and not yet ended. */
  get activeStreams(): number {
    return this.activeCount;
  }

  /** The server's SETTINGS_MAX_CONCURRENT_STREAMS capped by our `maxConcurrentStreams`. */
  get maxConcurrentStreams(): number {
    return this.capacity;
  }

  /** The upstream closed its side: every stream is reset ("connection-termination"). */
  onEof(): void {
    this.peerEnded();
  }

  /** Sends GOAWAY(NO_ERROR): we open no more streams (a pool draining this connection may call it). */
  goAway(): void {
    this.sendGoAwayNoError();
  }
}
