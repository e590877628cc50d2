/**
 * HTTP stream filters and their status protocol (Envoy's decoder/encoder filters).
 *
 * The filter manager calls a filter's decode hooks in config order and its encode hooks in reverse order. Each
 * hook returns (synchronously, or as a Promise only when it must wait):
 * - `"continue"`: pass the frame on to the next filter;
 * - `"stop"`: hold this frame and later ones of the same direction until the filter calls
 *   `continueDecoding()`/`continueEncoding()` (headers stop iteration; data frames are passed on when it resumes);
 * - `"stop-and-buffer"`: like `"stop"` for data, buffering the body until the filter continues.
 *
 * A filter may answer the request itself with `sendLocalReply`; after that, further decode hooks are not called.
 * A throwing hook (or a rejected Promise) ends the stream with a 500 and response flag; it never takes down the
 * connection. After `onDestroy`, the filter must not call its callbacks.
 *
 * @module
 */
import type { HeaderMap } from "./headers.ts";
import type { IoEngine } from "./network.ts";
import type { RouteResult } from "./route.ts";
import type { ResponseFlag, StreamInfo } from "./stream_info.ts";
import type { StatsScope } from "./stats.ts";
import type { ClusterManager } from "./upstream.ts";

/**
 * The result of a filter hook:
 * - `"continue"`: the frame goes on to the next filter;
 * - `"stop"`: the frame is held at this filter, and so is every later frame, until it continues;
 * - `"stop-and-buffer"` (data): the body is buffered at this filter until it continues or the stream ends;
 * - `"stop-no-buffer"` (data, trailers; Envoy's `StopIterationNoBuffer`): the filter consumed the frame, which goes
 *   no further and is not held; later frames still reach the filter. A transforming filter passes its output on
 *   with `injectDecodedDataToFilterChain` / `injectEncodedDataToFilterChain` and returns this. On headers it is
 *   `"stop"`.
 */
export type FilterStatus = "continue" | "stop" | "stop-and-buffer" | "stop-no-buffer";
/** A hook's return: a status now, or a Promise of one when the filter must wait. */
export type FilterResult = FilterStatus | Promise<FilterStatus>;

/** Options for a locally generated response. */
export interface LocalReplyOptions {
  /** Extra response headers, names lower-case (e.g. `retry-after`, `www-authenticate`). */
  headers?: Record<string, string>;
  /** Response flag recorded in the stream info (`%RESPONSE_FLAGS%`), e.g. `"NR"`, `"RL"`. */
  responseFlag?: ResponseFlag;
  /** `%RESPONSE_CODE_DETAILS%`, e.g. "route_not_found". */
  details?: string;
  /** Content type of a non-empty body (default `text/plain`). */
  contentType?: string;
  /**
   * For a gRPC request: the `grpc-status` to answer with (e.g. 4, DEADLINE_EXCEEDED), instead of the one mapped
   * from the HTTP status (Envoy's `grpc_status` of `sendLocalReply`).
   */
  grpcStatus?: number;
}

/** Facts about the downstream connection, for filters. */
export interface DownstreamConnectionInfo {
  /** The connection's `NetConnection.id`, unique per process (`%CONNECTION_ID%`). */
  readonly id: number;
  /** The peer's IP address, as connected (not the `x-forwarded-for` client; see `StreamInfo`). */
  readonly remoteAddress: string;
  /** The peer's TCP port. */
  readonly remotePort: number;
  /** The local IP address the connection was accepted on. */
  readonly localAddress: string;
  /** The local (listener) TCP port. */
  readonly localPort: number;
  /** True if the connection is TLS (then `:scheme` is `https`). */
  readonly secure: boolean;
  /** The event loop that moves its bytes: the router opens upstream connections for its streams on the same one. */
  readonly ioEngine?: IoEngine | undefined;
  /** The server name the client asked for in its TLS ClientHello, if any. */
  readonly sni?: string;
  /**
   * The peer's certificate chain (DER, leaf first; TLCP: sign certificate first) when the connection is TLS and the
   * provider reports it; empty when the client sent none. Absent for plain text and the `Deno.listenTls` fast path.
   */
  readonly peerCertificates?: readonly Uint8Array[];
}

/** What the filter manager offers a filter. */
export interface StreamFilterCallbacks {
  /** The stream's facts for access logs; filters add response flags, details and upstream facts to it. */
  readonly streamInfo: StreamInfo;
  /** The downstream connection the stream arrived on. */
  readonly connection: DownstreamConnectionInfo;
  /** The request headers (after earlier filters' changes). */
  readonly requestHeaders: HeaderMap;
  /**
   * The route chosen for the request, or null when none matches (computed lazily on first access, from the route
   * configuration the stream started with; cleared by `clearRouteCache`).
   */
  readonly route: RouteResult | null;
  /**
   * Forgets the chosen route, so that the next read of {@link route} matches again; a filter that changed the
   * headers routing depends on (`:path`, `:authority`, a header matcher's) calls it before the router runs.
   */
  clearRouteCache(): void;
  /** Resume decoding after a `"stop"`. */
  continueDecoding(): void;
  /** Resume encoding after a `"stop"`. */
  continueEncoding(): void;
  /** Answer the request locally (passes through encoder filters). */
  sendLocalReply(status: number, body?: string, options?: LocalReplyOptions): void;
  /** For terminal filters (the router): send response parts downstream through the encoder filters. */
  encodeHeaders(headers: HeaderMap, endStream: boolean): void;
  /** Sends response body downstream through the encoder filters. */
  encodeData(data: Uint8Array, endStream: boolean): void;
  /** Sends response trailers downstream through the encoder filters; ends the response. */
  encodeTrailers(trailers: HeaderMap): void;
  /**
   * Passes request body to the decoder filters after this one (Envoy's `injectDecodedDataToFilterChain`): how a
   * filter that transforms the body (gRPC-Web, decompression) hands on its output, returning `"stop-no-buffer"`.
   */
  injectDecodedDataToFilterChain(data: Uint8Array, endStream: boolean): void;
  /** Passes response body to the encoder filters before this one (as `encodeData`, Envoy's name for it). */
  injectEncodedDataToFilterChain(data: Uint8Array, endStream: boolean): void;
  /**
   * Sends a 1xx response (e.g. `100 Continue` from upstream) straight to the codec, bypassing the encoder filters;
   * dropped once the final response has started or on HTTP/1.0.
   */
  encode1xxHeaders(headers: HeaderMap): void;
  /** Abort the stream (and for HTTP/1, the connection). */
  resetStream(): void;
  /** Stop reading the downstream until `readEnable` (watermark flow control). */
  readDisable(disable: boolean): void;
  /**
   * Watermark callbacks for the downstream connection's write buffer: the router pauses reading its upstream while
   * the downstream cannot keep up. Removed automatically when the stream ends.
   */
  addDownstreamWatermarkCallbacks(cbs: WatermarkCallbacks): void;
  /** Bytes of request body a filter may buffer (the listener's per-connection buffer limit). */
  readonly decoderBufferLimit: number;
  /** Replaces the stream idle timeout for this stream (a route's `idle_timeout`); 0 disables it. */
  setStreamIdleTimeout(ms: number): void;
}

/** Told when a write buffer passes its high watermark and when it drains below the low one. */
export interface WatermarkCallbacks {
  /** The buffer passed its high watermark: stop producing into it (the router pauses reading its upstream). */
  onAboveWriteBufferHighWatermark(): void;
  /** The buffer drained below its low watermark after passing the high one: resume producing. */
  onBelowWriteBufferLowWatermark(): void;
}

/** A filter's per-stream instance. All hooks are optional. */
export interface StreamFilter {
  /** The request headers, which the filter may change in place; `endStream` if the request has no body. */
  decodeHeaders?(headers: HeaderMap, endStream: boolean): FilterResult;
  /** A chunk of request body; a filter that keeps it past the call copies it (or returns `"stop-and-buffer"`). */
  decodeData?(data: Uint8Array, endStream: boolean): FilterResult;
  /** The request trailers; they end the request. */
  decodeTrailers?(trailers: HeaderMap): FilterResult;
  /** Reserved for 1xx responses: not called yet, as `encode1xxHeaders` of the callbacks bypasses the filters. */
  encode1xxHeaders?(headers: HeaderMap): FilterResult;
  /** The response headers (from upstream or a local reply), which the filter may change in place. */
  encodeHeaders?(headers: HeaderMap, endStream: boolean): FilterResult;
  /** A chunk of response body; a filter that keeps it past the call copies it (or returns `"stop-and-buffer"`). */
  encodeData?(data: Uint8Array, endStream: boolean): FilterResult;
  /** The response trailers; they end the response. */
  encodeTrailers?(trailers: HeaderMap): FilterResult;
  /** The stream is over (completed or reset). Release timers, upstream requests, etc. */
  onDestroy?(): void;
}

/** Services a filter factory can use at config time, when it builds the per-config state of its filters. */
export interface FilterFactoryContext {
  /** Stats scope of the connection manager (`http.<stat_prefix>`). */
  readonly scope: StatsScope;
  /** The cluster manager: clusters by name (they may be added, updated and removed while traffic flows). */
  readonly clusterManager: ClusterManager;
}

/**
 * What a filter factory builds once per config (Envoy's `FilterFactoryCb`): it creates the filter of each stream.
 * State shared by every stream of one config (stats, compiled rules, token buckets) lives in its closure.
 */
export interface StreamFilterFactoryCb {
  /** The filter's name, for logs and response details (`filter_failed{name}`). */
  readonly name: string;
  /** Creates the per-stream filter; called once per stream, in chain order. */
  create(callbacks: StreamFilterCallbacks): StreamFilter;
}

/**
 * An HTTP filter factory, listed in `filters/http/mod.ts`, keyed by its typed-config `@type` URL. Three steps, as
 * Envoy's: `parseConfig` validates raw config (once per config text); `createFactory` builds the per-config state
 * (once per connection manager config, i.e. per filter chain, never per connection); the returned callback creates
 * the per-stream filter.
 */
export interface HttpFilterFactory<C = unknown> {
  /** Envoy filter name, e.g. "envoy.filters.http.router". */
  readonly name: string;
  /** Accepted `@type` URLs of its typed_config. */
  readonly configTypes: readonly string[];
  /** Validates raw config (the typed_config object without `@type`), throwing ConfigError with `path`. */
  parseConfig(raw: Record<string, unknown>, path: string): C;
  /** The config-time step: builds what every stream of this config shares, and returns the per-stream creator. */
  createFactory?(config: C, context: FilterFactoryContext): (callbacks: StreamFilterCallbacks) => StreamFilter;
  /** Creates the per-stream filter (the old one-step form, until every filter has `createFactory`). */
  create(config: C, callbacks: StreamFilterCallbacks, context: FilterFactoryContext): StreamFilter;
  /** True for the terminal filter (router); it must be last. */
  readonly terminal?: boolean;
}
