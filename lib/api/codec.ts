/**
 * The codec plugin interface: bytes ↔ streams.
 *
 * A codec turns a connection's bytes into streams (headers, data, trailers, each with an end-of-stream flag) and
 * back. HTTP/1.1, HTTP/2, Bolt and Dubbo all implement it, so the connection manager, the filters and the router
 * never see a protocol. The shape follows Envoy's `Http::Connection`: `dispatch(bytes)` is synchronous and calls
 * back into decoders as messages complete; encoders write through the `write` function the codec was created with.
 *
 * Contract:
 * - `dispatch` is synchronous and incremental: any split of the input gives the same calls. It copies whatever
 *   it keeps past the call (the caller reuses its read buffer). It throws {@link CodecError} on malformed input;
 *   after a throw, the connection must be closed (after `sendProtocolError` on the server side).
 * - Data handed to `decodeData` is valid only during that call; a receiver that keeps it must copy it.
 * - Encoder calls for one stream arrive in order: headers, data*, trailers?; `endStream` is set exactly once.
 * - HTTP/1 server codecs answer pipelined requests in order: after a request is complete they stop decoding until
 *   the response of that request has been fully encoded, then continue with buffered input.
 *
 * @module
 */
import type { CodecError } from "./errors.ts";
import type { HeaderMap } from "./headers.ts";

/**
 * How an upstream pool may share a connection among requests, as the codec declares it (MOSN's pool modes); the
 * cluster picks its pool implementation by this value:
 * - `"ping-pong"`: one request at a time per connection, the response before the next request (HTTP/1.1);
 * - `"multiplex-stream-id"`: many concurrent streams per connection, told apart by a stream id the codec assigns
 *   (HTTP/2);
 * - `"multiplex-request-id"`: many concurrent requests per connection, matched to responses by a request id in
 *   the message header (Bolt, Dubbo).
 */
export type PoolMode = "ping-pong" | "multiplex-stream-id" | "multiplex-request-id";

/** Why a stream ended abnormally. */
export type StreamResetReason =
  | "local-reset"
  | "remote-reset"
  | "connection-failure"
  | "connection-termination"
  | "overflow"
  | "protocol-error"
  /** The peer processed nothing of the stream (HTTP/2 REFUSED_STREAM, or above a GOAWAY's last stream id). */
  | "remote-refused-stream";

/** Receives one stream's decoded parts. */
export interface StreamDecoder {
  /** Informational (1xx other than 101) response headers; client side only. */
  decode1xxHeaders?(headers: HeaderMap): void;
  /** The message's headers, pseudo-headers included (`:method`/`:path` or `:status`); first call of a stream. */
  decodeHeaders(headers: HeaderMap, endStream: boolean): void;
  /** `data` is only valid during the call. */
  decodeData(data: Uint8Array, endStream: boolean): void;
  /** The message's trailers (chunked trailer fields, HTTP/2 trailing HEADERS); they end the stream. */
  decodeTrailers(trailers: HeaderMap): void;
  /** The stream was reset (connection closed mid-stream, protocol error, RST_STREAM). */
  onReset?(reason: StreamResetReason, detail?: string): void;
}

/** Told about one stream's transport events (Envoy's `Http::StreamCallbacks`). */
export interface StreamCallbacks {
  /** The stream was reset (by the peer, the codec or locally); no other call follows. */
  onResetStream?(reason: StreamResetReason, detail?: string): void;
  /** The stream's queued output passed its high watermark: stop producing into it. */
  onAboveWriteBufferHighWatermark(): void;
  /** The stream's queued output drained below its low watermark after passing the high one. */
  onBelowWriteBufferLowWatermark(): void;
}

/**
 * One stream's transport side (Envoy's `Http::Stream`): flow control, reset and protocol per stream, so that on a
 * multiplexed connection (HTTP/2, Bolt, Dubbo) one slow stream stalls neither the others nor the connection.
 *
 * On HTTP/1, where a connection carries one stream at a time, the stream's flow control is the connection's; on
 * HTTP/2, `readDisable` withholds this stream's WINDOW_UPDATEs only and the watermarks are the stream's own send
 * buffer.
 */
export interface Stream {
  /** The stream's protocol, e.g. "HTTP/1.1", "HTTP/1.0", "HTTP/2". */
  readonly protocol: string;
  /** Stops (true) or resumes (false) delivering this stream's data; calls nest like `NetConnection.readDisable`. */
  readDisable(disable: boolean): void;
  /** Adds callbacks for this stream's resets and watermarks (removed when the stream ends). */
  addCallbacks(callbacks: StreamCallbacks): void;
  /** Removes callbacks added with {@link addCallbacks}. */
  removeCallbacks(callbacks: StreamCallbacks): void;
  /** Resets the stream (HTTP/1: closes the connection; HTTP/2: RST_STREAM). */
  resetStream(reason: StreamResetReason): void;
  /** Bytes of queued output above which the stream reports its high watermark. */
  readonly bufferLimit: number;
}

/** Writes one stream's parts. */
export interface StreamEncoder {
  /** The stream's transport side (flow control, reset, protocol), where the codec provides it. */
  readonly stream?: Stream;
  /** Writes a 1xx response (e.g. `100 Continue`); server side only. */
  encode1xxHeaders?(headers: HeaderMap): void;
  /** Writes the message head from pseudo-headers and fields; first call of a stream, exactly once. */
  encodeHeaders(headers: HeaderMap, endStream: boolean): void;
  /** Writes body bytes (the codec frames them: chunked, DATA frames); it does not keep `data` after the call. */
  encodeData(data: Uint8Array, endStream: boolean): void;
  /** Writes trailers and ends the stream (HTTP/1 without chunked framing drops them). */
  encodeTrailers(trailers: HeaderMap): void;
  /** Abandons the stream. For HTTP/1 this closes the connection. */
  resetStream(reason: StreamResetReason): void;
  /** True once headers have been encoded (a local reply is no longer possible). */
  readonly headersSent: boolean;
}

/** Callbacks from a server (downstream) codec to the connection manager. */
export interface ServerCodecCallbacks {
  /** A new request begins; return the decoder that will receive it. */
  newStream(encoder: StreamEncoder): StreamDecoder;
}

/** Options shared by codecs. */
export interface CodecOptions {
  /** Maximum size of a request/response head in KiB (Envoy `max_request_headers_kb`, default 60). */
  maxHeadersKb?: number;
  /** Maximum number of header fields (Envoy `max_headers_count`, default 100). */
  maxHeadersCount?: number;
  /** Whether the connection is TLS (sets `:scheme` on requests). */
  secure?: boolean;
  /** Pauses or resumes reading the connection (nesting), for codecs whose streams' flow control is the connection's. */
  readDisable?: (disable: boolean) => void;
  /** The connection's buffer limit in bytes (`Stream.bufferLimit` where the stream shares the connection's buffer). */
  bufferLimit?: number;
  /** The ALPN protocol TLS negotiated for the connection (`h2`, `http/1.1`), if any: the `auto` codec follows it. */
  alpn?: string;
  /** HTTP/2 settings and flood limits (Envoy's `http2_protocol_options`); other codecs ignore them. */
  http2?: Http2Options;
  /** Where an HTTP/2 codec counts its events (`http2.*` stats); absent: not counted. */
  http2Stats?: Http2Stats;
  /**
   * Asks the connection's owner to close the connection, for what a codec finds outside `dispatch` (an HTTP/2
   * keepalive PING unanswered, an outbound frame flood). The codec has written its last words (GOAWAY) already.
   */
  closeConnection?: (reason: string) => void;
}

/**
 * HTTP/2 settings and flood limits (Envoy's `Http2ProtocolOptions`). Absent fields take Ferry's defaults, which
 * follow Envoy's edge recommendations rather than its permissive built-in ones: 100 concurrent streams, a 64 KiB
 * stream window and a 1 MiB connection window (so a slow reader costs at most that much buffer).
 */
export interface Http2Options {
  /** SETTINGS_MAX_CONCURRENT_STREAMS we advertise, and the most streams we open to a peer (default 100). */
  maxConcurrentStreams?: number;
  /** SETTINGS_INITIAL_WINDOW_SIZE we advertise (default 65535; 65535 … 2^31-1). */
  initialStreamWindowSize?: number;
  /** Our connection receive window (default 1 MiB; 65535 … 2^31-1), opened with a WINDOW_UPDATE on stream 0. */
  initialConnectionWindowSize?: number;
  /** SETTINGS_HEADER_TABLE_SIZE we advertise: the HPACK dynamic table the peer may use towards us (default 4096). */
  hpackTableSize?: number;
  /** Queued outbound frames above which the connection is closed as a flood (default 10000). */
  maxOutboundFrames?: number;
  /** Queued outbound PING/SETTINGS acks and RST_STREAMs above which the connection is closed (default 1000). */
  maxOutboundControlFrames?: number;
  /** Consecutive inbound frames with an empty payload (no END_STREAM) allowed (default 1). */
  maxConsecutiveInboundFramesWithEmptyPayload?: number;
  /** PRIORITY frames allowed per stream opened (default 100). */
  maxInboundPriorityFramesPerStream?: number;
  /** WINDOW_UPDATE frames allowed per DATA frame sent (default 10). */
  maxInboundWindowUpdateFramesPerDataFrameSent?: number;
  /** PING keepalive: interval between PINGs and how long to wait for the ack before closing (absent: none). */
  connectionKeepalive?: { readonly intervalMs: number; readonly timeoutMs: number };
  /** Accept extended CONNECT (RFC 8441, SETTINGS_ENABLE_CONNECT_PROTOCOL) and CONNECT (default false). */
  allowConnect?: boolean;
}

/** What an HTTP/2 codec counts (Envoy's `http2.*` statistics); the HTTP connection manager and pools supply it. */
export interface Http2Stats {
  /** Count one event; `name` is the Envoy stat name without the `http2.` prefix, e.g. `rx_reset`. */
  inc(name: Http2CounterName): void;
  /** Moves the `streams_active` gauge by `delta`. */
  streamsActive(delta: number): void;
}

/** The `http2.*` counters (Envoy's names). */
export type Http2CounterName =
  | "rx_reset"
  | "tx_reset"
  | "header_overflow"
  | "headers_cb_no_stream"
  | "inbound_empty_frames_flood"
  | "inbound_priority_frames_flood"
  | "inbound_window_update_frames_flood"
  | "outbound_flood"
  | "outbound_control_flood"
  | "rx_messaging_error"
  | "stream_refused_errors"
  | "trailers"
  | "goaway_sent"
  | "goaway_received"
  | "keepalive_timeout"
  | "premature_reset"
  | "tx_flush_timeout";

/** The downstream side of a connection. */
export interface ServerConnectionCodec {
  /** e.g. "HTTP/1.1". Per-stream protocol (HTTP/1.0 vs 1.1) is set on the request headers' stream info. */
  readonly protocol: string;
  /** Feeds bytes; see the module contract. */
  dispatch(data: Uint8Array): void;
  /** The peer half-closed: a request cut short is reset (`connection-termination`); no new request is read. */
  onEof(): void;
  /** Writes the protocol's answer to a codec error (HTTP/1: a bare 4xx with `connection: close`). */
  sendProtocolError(err: CodecError): void;
  /** True while the connection should be kept open after the current response (keep-alive). */
  readonly keepAlive: boolean;
  /** True if no stream is in progress (used by drain to close idle connections). */
  readonly idle: boolean;
  /** Ask the peer to stop sending new requests (HTTP/1: next response carries `connection: close`; H2: GOAWAY). */
  shutdownNotice(): void;
  /**
   * True for codecs whose streams are independent (HTTP/2): an error thrown by `dispatch` is then a connection
   * error, answered with `sendProtocolError` (GOAWAY) rather than with a stream's local reply, and a response that
   * ends before its request does not end the connection. Absent: false (HTTP/1).
   */
  readonly multiplexed?: boolean;
  /**
   * The connection is gone (closed by either side): streams still open are reset (`connection-termination`) and
   * the codec's timers stop. Codecs with no timers and no multiplexed streams may omit it.
   */
  onConnectionClose?(): void;
  /**
   * The connection's output passed its high watermark (HTTP/1: the stream in progress is told through its
   * `StreamCallbacks`; a multiplexing codec manages per-stream buffers itself and may ignore it).
   */
  onAboveWriteBufferHighWatermark?(): void;
  /** The connection's output drained below its low watermark after passing the high one. */
  onBelowWriteBufferLowWatermark?(): void;
}

/** Callbacks from a client (upstream) codec to its pool. */
export interface ClientCodecCallbacks {
  /**
   * The upstream will take no new streams (HTTP/2 GOAWAY; HTTP/1 `connection: close`). Streams above
   * `lastStreamId` were not processed and are safe to retry elsewhere; the pool stops placing streams here.
   */
  onGoAway(lastStreamId?: number): void;
  /** `maxConcurrentStreams` changed (a SETTINGS frame): the pool may place waiting streams. */
  onStreamCapacityChanged?(): void;
}

/** A local reply before it is put in a protocol's terms: what a filter or the connection manager decided. */
export interface LocalReplyInput {
  /** HTTP status (the common language of filters; RPC codecs map it to their own status). */
  readonly status: number;
  /** The reply's text (empty for none); RPC codecs carry it as their error message. */
  readonly body: string;
  /** Extra response headers (names lower-cased). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Content type of a non-empty body (default `text/plain`). */
  readonly contentType?: string;
  /** The request was a HEAD: the body is not sent. */
  readonly isHead?: boolean;
  /** gRPC status to use instead of the one mapped from `status` (for protocols that carry one). */
  readonly grpcStatus?: number;
}

/** A local reply in a protocol's terms: headers, an optional body and optional trailers. */
export interface LocalReplyEncoding {
  /** The response headers, `:status` included, to pass through the encoder filters and encode. */
  readonly headers: HeaderMap;
  /** Empty or absent: the headers end the stream (unless trailers follow). */
  readonly body?: Uint8Array;
  /** gRPC and RPC protocols may end with trailers. */
  readonly trailers?: HeaderMap;
}

/**
 * Maps a local reply to the protocol's own error: HTTP text, a gRPC status in a trailers-only response, a Bolt
 * response status, a Dubbo status byte. `request` is the request's headers when they were decoded.
 */
export type LocalReplyMapper = (reply: LocalReplyInput, request: HeaderMap | undefined) => LocalReplyEncoding;

/** The upstream side of a connection. */
export interface ClientConnectionCodec {
  /** The protocol spoken upstream, e.g. "HTTP/1.1". */
  readonly protocol: string;
  /** Starts a request; the response arrives on `decoder`. */
  newStream(decoder: StreamDecoder): StreamEncoder;
  /** Feeds bytes read from the upstream; see the module contract. */
  dispatch(data: Uint8Array): void;
  /** The upstream closed its side: ends a read-until-close body, or resets an incomplete response. */
  onEof(): void;
  /** True if the connection may carry another request after the current one completes. */
  readonly reusable: boolean;
  /** Number of streams in progress. */
  readonly activeStreams: number;
  /**
   * How many streams may be open at once now (HTTP/2: the peer's SETTINGS_MAX_CONCURRENT_STREAMS, capped by our
   * own `maxConcurrentStreams`). Absent: one (ping-pong codecs).
   */
  readonly maxConcurrentStreams?: number;
  /** The connection is gone: open streams are reset (`connection-termination`) and the codec's timers stop. */
  onConnectionClose?(): void;
}

/** Writes bytes to the connection (the connection copies and coalesces). */
export type WriteFn = (data: Uint8Array) => void;

/** A codec factory, listed in `codecs/mod.ts`. */
export interface CodecFactory {
  /** e.g. "http1". */
  readonly name: string;
  /** How upstream pools may share a connection of this codec; the cluster builds its pool by it. */
  readonly poolMode: PoolMode;
  /** Creates the codec of one accepted connection; called by the HTTP connection manager once per connection. */
  createServer(write: WriteFn, callbacks: ServerCodecCallbacks, options?: CodecOptions): ServerConnectionCodec;
  /** Creates the codec of one upstream connection; called by a connection pool once the connection is up. */
  createClient(write: WriteFn, options?: CodecOptions, callbacks?: ClientCodecCallbacks): ClientConnectionCodec;
  /**
   * The protocol's local replies (Bolt, Dubbo). Absent: the connection manager's HTTP mapping, which answers gRPC
   * requests with a trailers-only gRPC status.
   */
  readonly localReply?: LocalReplyMapper;
}
