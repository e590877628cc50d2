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
import type { RouteResult } from "./route.ts";
import type { ResponseFlag, StreamInfo } from "./stream_info.ts";
import type { StatsScope } from "./stats.ts";
import type { ClusterManager } from "./upstream.ts";

/** The result of a filter hook. */
export type FilterStatus = "continue" | "stop" | "stop-and-buffer";
/** A hook's return: a status now, or a Promise of one when the filter must wait. */
export type FilterResult = FilterStatus | Promise<FilterStatus>;

/** Options for a locally generated response. */
export interface LocalReplyOptions {
  headers?: Record<string, string>;
  responseFlag?: ResponseFlag;
  /** `%RESPONSE_CODE_DETAILS%`, e.g. "route_not_found". */
  details?: string;
  contentType?: string;
  /**
   * For a gRPC request: the `grpc-status` to answer with (e.g. 4, DEADLINE_EXCEEDED), instead of the one mapped
   * from the HTTP status (Envoy's `grpc_status` of `sendLocalReply`).
   */
  grpcStatus?: number;
}

/** Facts about the downstream connection, for filters. */
export interface DownstreamConnectionInfo {
  readonly id: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly secure: boolean;
  readonly sni?: string;
}

/** What the filter manager offers a filter. */
export interface StreamFilterCallbacks {
  readonly streamInfo: StreamInfo;
  readonly connection: DownstreamConnectionInfo;
  /** The request headers (after earlier filters' changes). */
  readonly requestHeaders: HeaderMap;
  /**
   * The route chosen for the request, or null when none matches (computed lazily on first access, from the route
   * configuration the stream started with; cleared by `clearRouteCache`).
   */
  readonly route: RouteResult | null;
  clearRouteCache(): void;
  /** Resume decoding after a `"stop"`. */
  continueDecoding(): void;
  /** Resume encoding after a `"stop"`. */
  continueEncoding(): void;
  /** Answer the request locally (passes through encoder filters). */
  sendLocalReply(status: number, body?: string, options?: LocalReplyOptions): void;
  /** For terminal filters (the router): send response parts downstream through the encoder filters. */
  encodeHeaders(headers: HeaderMap, endStream: boolean): void;
  encodeData(data: Uint8Array, endStream: boolean): void;
  encodeTrailers(trailers: HeaderMap): void;
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
  onAboveWriteBufferHighWatermark(): void;
  onBelowWriteBufferLowWatermark(): void;
}

/** A filter's per-stream instance. All hooks are optional. */
export interface StreamFilter {
  decodeHeaders?(headers: HeaderMap, endStream: boolean): FilterResult;
  decodeData?(data: Uint8Array, endStream: boolean): FilterResult;
  decodeTrailers?(trailers: HeaderMap): FilterResult;
  encode1xxHeaders?(headers: HeaderMap): FilterResult;
  encodeHeaders?(headers: HeaderMap, endStream: boolean): FilterResult;
  encodeData?(data: Uint8Array, endStream: boolean): FilterResult;
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
