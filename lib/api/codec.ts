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

/** How an upstream pool may share a connection among requests, as the codec declares it. */
export type PoolMode = "ping-pong" | "multiplex";

/** Why a stream ended abnormally. */
export type StreamResetReason =
  | "local-reset"
  | "remote-reset"
  | "connection-failure"
  | "connection-termination"
  | "overflow"
  | "protocol-error";

/** Receives one stream's decoded parts. */
export interface StreamDecoder {
  /** Informational (1xx other than 101) response headers; client side only. */
  decode1xxHeaders?(headers: HeaderMap): void;
  decodeHeaders(headers: HeaderMap, endStream: boolean): void;
  /** `data` is only valid during the call. */
  decodeData(data: Uint8Array, endStream: boolean): void;
  decodeTrailers(trailers: HeaderMap): void;
  /** The stream was reset (connection closed mid-stream, protocol error, RST_STREAM). */
  onReset?(reason: StreamResetReason, detail?: string): void;
}

/** Writes one stream's parts. */
export interface StreamEncoder {
  /** Writes a 1xx response (e.g. `100 Continue`); server side only. */
  encode1xxHeaders?(headers: HeaderMap): void;
  encodeHeaders(headers: HeaderMap, endStream: boolean): void;
  encodeData(data: Uint8Array, endStream: boolean): void;
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
}

/** The downstream side of a connection. */
export interface ServerConnectionCodec {
  /** e.g. "HTTP/1.1". Per-stream protocol (HTTP/1.0 vs 1.1) is set on the request headers' stream info. */
  readonly protocol: string;
  /** Feeds bytes; see the module contract. */
  dispatch(data: Uint8Array): void;
  /** The peer half-closed; returns true if a partial message was cut short. */
  onEof(): void;
  /** Writes the protocol's answer to a codec error (HTTP/1: a bare 4xx with `connection: close`). */
  sendProtocolError(err: CodecError): void;
  /** True while the connection should be kept open after the current response (keep-alive). */
  readonly keepAlive: boolean;
  /** True if no stream is in progress (used by drain to close idle connections). */
  readonly idle: boolean;
  /** Ask the peer to stop sending new requests (HTTP/1: next response carries `connection: close`; H2: GOAWAY). */
  shutdownNotice(): void;
}

/** The upstream side of a connection. */
export interface ClientConnectionCodec {
  readonly protocol: string;
  /** Starts a request; the response arrives on `decoder`. */
  newStream(decoder: StreamDecoder): StreamEncoder;
  dispatch(data: Uint8Array): void;
  /** The upstream closed its side: ends a read-until-close body, or resets an incomplete response. */
  onEof(): void;
  /** True if the connection may carry another request after the current one completes. */
  readonly reusable: boolean;
  /** Number of streams in progress. */
  readonly activeStreams: number;
}

/** Writes bytes to the connection (the connection copies and coalesces). */
export type WriteFn = (data: Uint8Array) => void;

/** A codec factory, listed in `codecs/mod.ts`. */
export interface CodecFactory {
  /** e.g. "http1". */
  readonly name: string;
  readonly poolMode: PoolMode;
  createServer(write: WriteFn, callbacks: ServerCodecCallbacks, options?: CodecOptions): ServerConnectionCodec;
  createClient(write: WriteFn, options?: CodecOptions): ClientConnectionCodec;
}
