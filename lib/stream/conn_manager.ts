/**
 * The HTTP connection manager: one per downstream connection, between the codec and the stream filters.
 *
 * For each request the codec opens, an {@link ActiveStream} runs the decoder filters in order (the router last),
 * then the encoder filters in reverse for the response, following the status protocol of
 * `lib/api/stream_filter.ts`. It applies Envoy's connection-manager rules on the way: hop-by-hop headers,
 * `x-forwarded-for` / `x-forwarded-proto` / `x-request-id`, `Expect: 100-continue`, the `server` header, timeouts
 * (request headers, request, stream idle, connection idle), local replies, stats and access logs.
 *
 * Frames of one direction are processed strictly in order. A filter that stops a frame blocks that direction until
 * it continues; later frames wait in a queue and enter the chain from its start when it resumes.
 *
 * **Lingering close.** When Ferry ends a connection while the client may still be sending — after answering a codec
 * error (400, 413, 431, ...), or a response sent before the request was fully read — closing at once would leave
 * unread input in the socket, and the kernel would answer with a reset that can cost the client the answer (or its
 * remaining writes). As nginx's lingering close: once the answer is queued, the write side is half-closed (flushed,
 * then FIN), input is read and dropped without parsing, and the connection closes when the client closes its side,
 * after {@link LINGER_READ_TIMEOUT_MS} without input, or after {@link LINGER_TIME_MS} in all. The close counts as
 * local; the timeouts count in `downstream_cx_delayed_close_timeout` (Envoy's counter for its delayed close).
 *
 * @module
 */
import type {
  CodecFactory,
  CodecOptions,
  Http2Stats,
  ServerConnectionCodec,
  StreamDecoder,
  StreamEncoder,
} from "../api/codec.ts";
import { CodecError } from "../api/errors.ts";
import { HeaderMap, requestedUpgrade } from "../api/headers.ts";
import type { ConnectionHandler, NetConnection, NetworkFilter, NetworkFilterStatus } from "../api/network.ts";
import type { Counter, Gauge, Histogram, StatsScope } from "../api/stats.ts";
import type { OverloadView } from "../api/overload.ts";
import type { RouteConfigProvider, RouteMatcher, RouteResult } from "../api/route.ts";
import type {
  DownstreamConnectionInfo,
  FilterFactoryContext,
  LocalReplyOptions,
  StreamFilterCallbacks,
  StreamFilterFactoryCb,
  WatermarkCallbacks,
} from "../api/stream_filter.ts";
import { newStreamInfo } from "../api/stream_info.ts";
import type { AccessLogger, ResponseFlag, StreamInfo } from "../api/stream_info.ts";
import type { HcmConfig } from "./hcm_config.ts";
import { schedule } from "../network/timer_wheel.ts";
import { approxNow } from "../network/clock.ts";
import { sanitizeInternalRequest, upgradeAllowed } from "../router/mod.ts";
import { FilterManager, type FilterManagerCallbacks } from "./filter_manager.ts";
import { httpLocalReply } from "./local_reply.ts";
import type { WheelTimer } from "../network/timer_wheel.ts";
import type { ActiveSpan, Tracer } from "../tracing/tracer.ts";

/** Envoy's connection-manager stats (`http.<stat_prefix>.<name>`). */
export interface HcmStats {
  downstream_cx_total: Counter;
  downstream_cx_active: Gauge;
  downstream_cx_http1_total: Counter;
  downstream_cx_http1_active: Gauge;
  downstream_cx_http2_total: Counter;
  downstream_cx_http2_active: Gauge;
  downstream_cx_destroy: Counter;
  downstream_cx_destroy_remote: Counter;
  downstream_cx_destroy_local: Counter;
  downstream_cx_protocol_error: Counter;
  downstream_cx_idle_timeout: Counter;
  downstream_cx_drain_close: Counter;
  downstream_cx_delayed_close_timeout: Counter;
  downstream_cx_rx_bytes_total: Counter;
  downstream_cx_tx_bytes_total: Counter;
  downstream_cx_upgrades_total: Counter;
  downstream_cx_upgrades_active: Gauge;
  downstream_rq_total: Counter;
  downstream_rq_http1_total: Counter;
  downstream_rq_http2_total: Counter;
  downstream_rq_active: Gauge;
  downstream_rq_completed: Counter;
  downstream_rq_1xx: Counter;
  downstream_rq_2xx: Counter;
  downstream_rq_3xx: Counter;
  downstream_rq_4xx: Counter;
  downstream_rq_5xx: Counter;
  downstream_rq_timeout: Counter;
  downstream_rq_idle_timeout: Counter;
  downstream_rq_header_timeout: Counter;
  downstream_rq_rx_reset: Counter;
  downstream_rq_tx_reset: Counter;
  downstream_rq_ws_on_non_ws_route: Counter;
  downstream_rq_too_large: Counter;
  /** Answered 503 by the overload manager's `stop_accepting_requests`. */
  downstream_rq_overload_close: Counter;
  /** Connections closed after a response by the overload manager's `disable_http_keepalive`. */
  downstream_cx_overload_disable_keepalive: Counter;
  downstream_rq_time: Histogram;
}

const COUNTERS = [
  "downstream_cx_total",
  "downstream_cx_http1_total",
  "downstream_cx_http2_total",
  "downstream_cx_destroy",
  "downstream_cx_destroy_remote",
  "downstream_cx_destroy_local",
  "downstream_cx_protocol_error",
  "downstream_cx_idle_timeout",
  "downstream_cx_drain_close",
  "downstream_cx_delayed_close_timeout",
  "downstream_cx_rx_bytes_total",
  "downstream_cx_tx_bytes_total",
  "downstream_cx_upgrades_total",
  "downstream_rq_total",
  "downstream_rq_http1_total",
  "downstream_rq_http2_total",
  "downstream_rq_completed",
  "downstream_rq_1xx",
  "downstream_rq_2xx",
  "downstream_rq_3xx",
  "downstream_rq_4xx",
  "downstream_rq_5xx",
  "downstream_rq_timeout",
  "downstream_rq_idle_timeout",
  "downstream_rq_header_timeout",
  "downstream_rq_rx_reset",
  "downstream_rq_tx_reset",
  "downstream_rq_ws_on_non_ws_route",
  "downstream_rq_too_large",
  "downstream_rq_overload_close",
  "downstream_cx_overload_disable_keepalive",
] as const;
const GAUGES = [
  "downstream_cx_active",
  "downstream_cx_http1_active",
  "downstream_cx_http2_active",
  "downstream_cx_upgrades_active",
  "downstream_rq_active",
] as const;

/** Creates the connection-manager stats under `scope` (which should be `http.<stat_prefix>`). */
export function createHcmStats(scope: StatsScope): HcmStats {
  const s: Record<string, unknown> = {};
  for (const c of COUNTERS) s[c] = scope.counter(c);
  for (const g of GAUGES) s[g] = scope.gauge(g);
  s["downstream_rq_time"] = scope.histogram("downstream_rq_time");
  return s as unknown as HcmStats;
}

/** Everything a connection manager shares with the others of its filter chain (built once per config). */
export interface ConnManagerShared {
  readonly config: HcmConfig;
  readonly codec: CodecFactory;
  readonly stats: HcmStats;
  readonly accessLoggers: readonly AccessLogger[];
  /** The route configuration: each stream routes with the snapshot current when it began. */
  readonly routes: RouteConfigProvider;
  /** The HTTP filter chain, built once per config (`HttpFilterFactory.createFactory`), router last. */
  readonly filterFactories: readonly StreamFilterFactoryCb[];
  /** True once the server is draining: responses carry `connection: close`. */
  readonly draining: () => boolean;
  /** Per-connection buffer limit in bytes. */
  readonly bufferLimit: number;
  /** The overload manager's view (absent: none configured, or the listener bypasses it). */
  readonly overload?: OverloadView;
  /** Where HTTP/2 connections count their `http2.*` events (absent: not counted). */
  readonly http2Stats?: Http2Stats;
  /** The tracer of the HCM's `tracing` (absent: no tracing, and the stream path does nothing for it). */
  readonly tracer?: Tracer | undefined;
}

/**
 * Builds the per-config HTTP filter chain: each filter's config-time step runs once here (filters without one
 * are created with their one-step `create` per stream).
 */
export function createFilterFactories(config: HcmConfig, context: FilterFactoryContext): StreamFilterFactoryCb[] {
  return config.httpFilters.map((e) => {
    const f = e.factory;
    const name = e.name;
    if (f.createFactory) {
      const create = f.createFactory(e.config, context);
      return { name, create };
    }
    return { name, create: (cb: StreamFilterCallbacks) => f.create(e.config, cb, context) };
  });
}

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "proxy-authenticate",
]);

/** Adds the header names listed in a `connection` value (other than close/keep-alive/upgrade) to `named`. */
function connectionTokens(value: string, named: string[] | undefined): string[] | undefined {
  for (const t of value.split(",")) {
    const n = t.trim().toLowerCase();
    if (n && n !== "close" && n !== "keep-alive" && n !== "upgrade") (named ??= []).push(n);
  }
  return named;
}

/**
 * Removes hop-by-hop headers (and those named in `connection`), keeping upgrade headers for upgrades. One pass
 * finds them (most messages hold at most `connection: keep-alive`, which names nothing), a second compacts the
 * array in place only when something goes.
 */
function stripHopByHop(h: HeaderMap, keepUpgrade: boolean): void {
  const kv = h.kv;
  let found = false;
  let named: string[] | undefined;
  let teSeen = false;
  let teTrailers = false;
  for (let i = 0; i < kv.length; i += 2) {
    const k = kv[i]!;
    if (!HOP_BY_HOP.has(k)) continue;
    found = true;
    if (k === "connection") {
      const v = kv[i + 1]!;
      if (v !== "keep-alive" && v !== "close" && v !== "upgrade") named = connectionTokens(v, named);
    } else if (k === "te" && !teSeen) {
      teSeen = true;
      teTrailers = kv[i + 1]!.trim().toLowerCase() === "trailers";
    }
  }
  if (found) {
    let w = 0;
    for (let i = 0; i < kv.length; i += 2) {
      const k = kv[i]!;
      let drop: boolean;
      if (HOP_BY_HOP.has(k)) {
        drop = !(keepUpgrade && (k === "upgrade" || k === "connection")) && !(k === "te" && teTrailers);
      } else {
        drop = named !== undefined && k.charCodeAt(0) !== 58 && named.includes(k);
      }
      if (!drop) {
        if (w !== i) {
          kv[w] = k;
          kv[w + 1] = kv[i + 1]!;
        }
        w += 2;
      }
    }
    kv.length = w;
  }
  if (keepUpgrade) h.set("connection", "upgrade");
}

const EMPTY = new Uint8Array(0);

/**
 * Lingering close: the longest a closing connection's input is read and dropped (nginx's `lingering_time`, 30 s,
 * bounded tighter here: an error answer is small and a client that is still sending after 5 s is not reading it).
 */
export const LINGER_TIME_MS = 5000;
/**
 * Lingering close: the longest wait for more input before closing (nginx's `lingering_timeout` is 5 s; Envoy's
 * `delayed_close_timeout`, its wait for the peer's close after a local close, defaults to 1 s).
 */
export const LINGER_READ_TIMEOUT_MS = 1000;

/**
 * One request/response exchange. Implements the codec's StreamDecoder (request side) and is the filters'
 * callbacks provider.
 */
class ActiveStream implements StreamDecoder, FilterManagerCallbacks {
  readonly info: StreamInfo;
  readonly #cm: ConnectionManager;
  readonly #encoder: StreamEncoder;
  readonly #fm: FilterManager;
  #requestHeaders: HeaderMap | undefined;
  readonly #routes: RouteMatcher;
  #routeCached = false;
  #route: RouteResult | null = null;
  /** Request fully received from downstream. */
  requestComplete = false;
  /** Response fully sent downstream. */
  responseComplete = false;
  #destroyed = false;
  #upgrade: string | undefined;
  /** An upgrade response (101, or 2xx to CONNECT) went out: counted in `downstream_cx_upgrades_active`. */
  #upgradeActive = false;
  #requestTimer: WheelTimer | undefined;
  #idleTimer: WheelTimer | undefined;
  #idleMs = 0;
  #lastActivity = 0;
  #watermarkCbs: WatermarkCallbacks[] | undefined;
  #isHead = false;
  #http10 = false;
  /** The stream's span, when the connection manager traces. */
  #span: ActiveSpan | undefined = undefined;

  constructor(cm: ConnectionManager, encoder: StreamEncoder) {
    this.#cm = cm;
    this.#encoder = encoder;
    const c = cm.conn;
    this.info = newStreamInfo(cm.remoteName, cm.localName, { connectionId: c.id, startMono: approxNow() });
    if (c.tls) {
      const t: NonNullable<StreamInfo["tls"]> = {};
      if (c.tls.version !== undefined) t.version = c.tls.version;
      if (c.tls.cipher !== undefined) t.cipher = c.tls.cipher;
      if (c.tls.sni !== undefined) t.sni = c.tls.sni;
      this.info.tls = t;
    }
    const shared = cm.shared;
    // The route configuration in force when the stream began serves it to the end, even if it is replaced meanwhile.
    this.#routes = shared.routes.current;
    this.#fm = new FilterManager(this, shared.filterFactories, cm.log);
    const idle = shared.config.streamIdleTimeoutMs;
    this.#idleMs = idle;
    this.#lastActivity = approxNow();
    if (idle > 0) this.#armIdle(idle);
  }

  /** Replaces the stream idle timeout (a route's `idle_timeout`); 0 disables it. */
  setIdleTimeout(ms: number): void {
    if (this.#destroyed) return;
    this.#idleMs = ms;
    this.#idleTimer?.cancel();
    this.#idleTimer = undefined;
    if (ms > 0) this.#armIdle(Math.max(1, this.#lastActivity + ms - approxNow()));
  }

  get requestHeaders(): HeaderMap | undefined {
    return this.#requestHeaders;
  }

  #armIdle(ms: number): void {
    // `reduce_timeouts`: an overloaded Ferry ends idle streams sooner (the scale when the timer is armed).
    const ov = this.#cm.shared.overload;
    const idle = ov !== undefined && ov.engaged
      ? ov.scaleTimeout("HTTP_DOWNSTREAM_STREAM_IDLE", this.#idleMs)
      : this.#idleMs;
    this.#idleTimer = schedule(Math.min(ms, idle), () => {
      const left = this.#lastActivity + idle - approxNow();
      if (left > 1) return this.#armIdle(left);
      this.#idleTimer = undefined;
      if (this.#destroyed) return;
      this.#cm.shared.stats.downstream_rq_idle_timeout.inc();
      this.#timeoutReply(408, "stream timeout", "SI", "stream_idle_timeout");
    });
  }

  #touch(): void {
    this.#lastActivity = approxNow();
  }

  #timeoutReply(status: number, body: string, flag: ResponseFlag, details: string): void {
    if (this.#fm.responseStarted) {
      this.info.responseFlags.push(flag);
      this.resetStream("local-reset");
    } else {
      this.sendLocalReply(status, body, { responseFlag: flag, details });
    }
  }

  /** The route for the request, computed once (until `clearRouteCache`). */
  get route(): RouteResult | null {
    if (!this.#routeCached) {
      const h = this.#requestHeaders;
      this.#route = h ? this.#routes.route(h, { secure: this.info.tls !== undefined }) : null;
      this.#routeCached = true;
    }
    return this.#route;
  }

  clearRouteCache(): void {
    this.#routeCached = false;
    this.#route = null;
  }

  // FilterManagerCallbacks: what filters ask of their stream.

  get streamInfo(): StreamInfo {
    return this.info;
  }

  get connection(): DownstreamConnectionInfo {
    return this.#cm.connectionInfo;
  }

  readDisable(disable: boolean): void {
    const st = this.#encoder.stream;
    if (st) st.readDisable(disable);
    else this.#cm.conn.readDisable(disable);
  }

  addDownstreamWatermarkCallbacks(cbs: WatermarkCallbacks): void {
    this.addWatermarkCallbacks(cbs);
  }

  get decoderBufferLimit(): number {
    return this.#cm.shared.bufferLimit;
  }

  setStreamIdleTimeout(ms: number): void {
    this.setIdleTimeout(ms);
  }

  /**
   * Watermark callbacks of the downstream side of this stream: through the codec's `Stream` (HTTP/1: the
   * connection's watermarks, which the manager hands to the codec; HTTP/2: the stream's own), or, for a codec
   * without one, the connection's, fanned out by the manager.
   */
  addWatermarkCallbacks(cbs: WatermarkCallbacks): void {
    const st = this.#encoder.stream;
    if (st === undefined) {
      (this.#watermarkCbs ??= []).push(cbs);
      return;
    }
    st.addCallbacks(cbs);
  }

  get cm(): ConnectionManager {
    return this.#cm;
  }

  // ---- decode side (from the codec) ----

  decodeHeaders(headers: HeaderMap, endStream: boolean): void {
    const cm = this.#cm;
    const shared = cm.shared;
    const cfg = shared.config;
    const stats = shared.stats;
    stats.downstream_rq_total.inc();
    stats.downstream_rq_active.inc();
    cm.clearHeadersTimer();
    const proto = (this.#encoder as { protocol?: string }).protocol ?? this.#encoder.stream?.protocol ??
      cm.codec.protocol;
    if (proto === "HTTP/2") stats.downstream_rq_http2_total.inc();
    else stats.downstream_rq_http1_total.inc();
    this.info.protocol = proto;
    this.#http10 = proto === "HTTP/1.0";
    this.#requestHeaders = headers;
    this.info.requestHeaders = headers;
    if (endStream) this.#markRequestComplete();
    this.#isHead = headers.get(":method") === "HEAD";
    const ov = shared.overload;
    if (ov !== undefined && ov.engaged && ov.shedRequest()) {
      // As Envoy: before any filter runs (a health check filter on this listener is shed too).
      stats.downstream_rq_overload_close.inc();
      this.sendLocalReply(503, "envoy overloaded", { responseFlag: "OM", details: "overload" });
      return;
    }

    if (this.#http10 && !cfg.acceptHttp10) {
      this.sendLocalReply(426, "Upgrade Required", { details: "low_version" });
      return;
    }
    if (this.#http10 && !headers.has(":authority") && cfg.defaultHostForHttp10) {
      headers.set(":authority", cfg.defaultHostForHttp10);
    }
    // (An HTTP/2 extended CONNECT arrives here already in this HTTP/1.1 form: the codec normalises it, as Envoy's.)
    const upgrade = requestedUpgrade(headers) ?? (headers.get(":method") === "CONNECT" ? "connect" : undefined);
    if (upgrade !== undefined) {
      if (!this.#upgradeAllowed(upgrade)) {
        stats.downstream_rq_ws_on_non_ws_route.inc();
        this.sendLocalReply(403, "Upgrade not enabled", { details: "upgrade_failed" });
        return;
      }
      this.#upgrade = upgrade;
    }
    this.#mutateRequestHeaders(headers);
    // Tracing: decide on the final x-request-id, start the span, put its context in the headers that go upstream.
    const tracer = shared.tracer;
    if (tracer !== undefined) this.#span = tracer.startSpan(headers, this.info);
    if (cfg.requestTimeoutMs > 0 && !this.requestComplete) {
      this.#requestTimer = schedule(cfg.requestTimeoutMs, () => {
        this.#requestTimer = undefined;
        if (this.#destroyed || this.requestComplete) return;
        stats.downstream_rq_timeout.inc();
        this.#timeoutReply(408, "request timeout", "DT", "request_overall_timeout");
      });
    }
    if (headers.get("expect")?.toLowerCase() === "100-continue") {
      headers.remove("expect");
      if (!this.#http10) this.#encoder.encode1xxHeaders?.(HeaderMap.from([[":status", "100"]]));
    }
    this.#fm.decodeHeaders(headers, endStream);
  }

  /**
   * Whether an upgrade of `type` may proceed: as in Envoy, an entry for it in the matched route's `upgrade_configs`
   * (enabled or not) wins over the connection manager's `upgrade_configs`.
   */
  #upgradeAllowed(type: string): boolean {
    const action = this.route?.route.action;
    // Routed on the headers as received; later lookups must see the connection manager's header mutations.
    this.clearRouteCache();
    const verdict = action?.kind === "route" ? upgradeAllowed(action, type) : undefined;
    return verdict ?? this.#cm.shared.config.upgrades.has(type);
  }

  decodeData(data: Uint8Array, endStream: boolean): void {
    if (this.#destroyed) return;
    if (endStream) this.#markRequestComplete();
    this.info.bytesReceived += data.length;
    this.#touch();
    const ov = this.#cm.shared.overload;
    if (ov !== undefined && ov.engaged && ov.resetHighMemoryStream(this.info.bytesReceived)) {
      // `reset_high_memory_stream`: a large body still arriving is what overloads memory; end this request.
      this.sendLocalReply(503, "envoy overloaded", { responseFlag: "OM", details: "overload_reset_stream" });
      return;
    }
    this.#fm.decodeData(data, endStream);
  }

  decodeTrailers(trailers: HeaderMap): void {
    if (this.#destroyed) return;
    this.#markRequestComplete();
    this.#touch();
    this.#fm.decodeTrailers(trailers);
  }

  onReset(): void {
    // Downstream went away mid-stream.
    this.#cm.shared.stats.downstream_rq_rx_reset.inc();
    if (!this.info.responseFlags.includes("DC")) this.info.responseFlags.push("DC");
    this.#finish();
  }

  #markRequestComplete(): void {
    if (this.requestComplete) return;
    this.requestComplete = true;
    this.info.requestCompleteMs = approxNow() - this.info.startMono;
    if (this.#requestTimer !== undefined) {
      this.#requestTimer.cancel();
      this.#requestTimer = undefined;
    }
    if (this.responseComplete) this.#finish();
  }

  #mutateRequestHeaders(h: HeaderMap): void {
    const cfg = this.#cm.shared.config;
    const conn = this.#cm.conn;
    stripHopByHop(h, this.#upgrade !== undefined && this.#upgrade !== "connect");
    const scheme = conn.secure ? "https" : "http";
    if (!h.has(":scheme")) h.set(":scheme", scheme);
    // x-envoy-internal and internal_only_headers, decided on x-forwarded-for as received (Envoy's rule).
    const internal = sanitizeInternalRequest(cfg, h, conn.remoteAddress);
    // x-forwarded-for and the trusted client address (Envoy's rules).
    let external = !internal;
    if (cfg.useRemoteAddress) {
      const xff = h.getJoined("x-forwarded-for");
      if (cfg.xffNumTrustedHops > 0 && xff !== undefined) {
        const parts = xff.split(",").map((p) => p.trim());
        const idx = parts.length - cfg.xffNumTrustedHops;
        if (idx >= 0 && idx < parts.length) {
          this.info.downstreamRemoteAddress = parts[idx]!;
          external = false;
        }
      }
      if (!cfg.skipXffAppend) {
        h.set("x-forwarded-for", xff === undefined ? conn.remoteAddress : `${xff}, ${conn.remoteAddress}`);
      }
      h.set("x-forwarded-proto", scheme);
      // Internal headers from the outside are not trusted.
      if (external) h.removeIf((n) => n.startsWith("x-envoy-") && n !== "x-envoy-original-path");
      if (cfg.via) h.add("via", cfg.via);
    } else {
      const xff = h.getJoined("x-forwarded-for");
      if (xff !== undefined) {
        const parts = xff.split(",");
        const idx = parts.length - 1 - cfg.xffNumTrustedHops;
        if (idx >= 0) this.info.downstreamRemoteAddress = parts[idx]!.trim();
      }
      external = false;
      if (!h.has("x-forwarded-proto")) h.set("x-forwarded-proto", scheme);
      if (cfg.via) h.add("via", cfg.via);
    }
    // x-request-id
    if (cfg.generateRequestId) {
      const rid = h.get("x-request-id");
      if (rid === undefined || (external && cfg.useRemoteAddress && !cfg.preserveExternalRequestId)) {
        h.set("x-request-id", crypto.randomUUID());
      }
    }
    const rid = h.get("x-request-id");
    if (rid !== undefined) this.info.requestId = rid;
  }

  /** FilterManagerCallbacks: a filter failed. Answer 500 if nothing was sent yet, else reset. */
  onFilterError(name: string, e: unknown): void {
    this.#cm.log?.(`http filter "${name}" failed: ${e instanceof Error ? e.message : String(e)}`);
    if (this.#destroyed) return;
    if (this.#fm.responseStarted) this.resetStream("local-reset");
    else this.sendLocalReply(500, "Internal Server Error", { details: `filter_failed{${name}}` });
  }

  // ---- encode side ----

  /** FilterManagerCallbacks: a 1xx response from a filter (the router), written unless a response started. */
  encode1xxHeaders(h: HeaderMap): void {
    if (this.#destroyed || this.#fm.responseStarted || this.#http10) return;
    this.#encoder.encode1xxHeaders?.(h);
  }

  // FilterManagerCallbacks: the frames that passed every encoder filter, to the codec.

  encodeHeaders(h: HeaderMap, end: boolean): void {
    if (this.#destroyed) return;
    this.#touch();
    this.#finalizeResponseHeaders(h);
    this.#encoder.encodeHeaders(h, end);
    if (end) this.#responseDone();
  }

  encodeData(d: Uint8Array, end: boolean): void {
    if (this.#destroyed) return;
    this.#touch();
    this.info.bytesSent += d.length;
    this.#encoder.encodeData(d, end);
    if (end) this.#responseDone();
  }

  encodeTrailers(h: HeaderMap): void {
    if (this.#destroyed) return;
    this.#touch();
    this.info.responseTrailers = h;
    this.#encoder.encodeTrailers(h);
    this.#responseDone();
  }

  #finalizeResponseHeaders(h: HeaderMap): void {
    const cm = this.#cm;
    const cfg = cm.shared.config;
    const status = Number(h.get(":status") ?? 0);
    this.info.responseCode = status;
    this.info.responseHeaders = h;
    stripHopByHop(h, status === 101 && this.#upgrade !== undefined);
    switch (cfg.serverHeaderTransformation) {
      case "OVERWRITE":
        h.set("server", cfg.serverName);
        break;
      case "APPEND_IF_ABSENT":
        if (!h.has("server")) h.set("server", cfg.serverName);
        break;
      case "PASS_THROUGH":
        break;
    }
    if (cfg.alwaysSetRequestIdInResponse && this.info.requestId !== undefined) {
      h.set("x-request-id", this.info.requestId);
    }
    // Tracing: an ingress span named by the route's decorator tells the client so (Envoy's response header).
    if (this.#span?.decoratorInResponse === true) {
      const op = this.route?.route.decoratorOperation;
      if (op !== undefined) h.set("x-envoy-decorator-operation", op);
    }
    const ov = cm.shared.overload;
    if (ov !== undefined && ov.engaged && !cm.shared.draining() && ov.disableKeepalive()) {
      // Overloaded: this response ends its connection (HTTP/1 `connection: close`, HTTP/2 GOAWAY), as Envoy's.
      cm.codec.shutdownNotice();
      cm.shared.stats.downstream_cx_overload_disable_keepalive.inc();
    }
    if (cm.shared.draining() || !this.requestComplete && !this.#upgrade && !cm.codec.multiplexed) {
      // Draining: ask the client to go away. Request not fully read: the connection can't be reused.
      cm.codec.shutdownNotice();
      if (cm.shared.draining()) cm.shared.stats.downstream_cx_drain_close.inc();
    }
    if (status === 101 || (this.#upgrade === "connect" && status >= 200 && status < 300)) {
      cm.shared.stats.downstream_cx_upgrades_total.inc();
      if (!this.#upgradeActive) {
        this.#upgradeActive = true;
        cm.shared.stats.downstream_cx_upgrades_active.inc();
      }
    }
    const s = cm.shared.stats;
    if (status < 200) s.downstream_rq_1xx.inc();
    else if (status < 300) s.downstream_rq_2xx.inc();
    else if (status < 400) s.downstream_rq_3xx.inc();
    else if (status < 500) s.downstream_rq_4xx.inc();
    else s.downstream_rq_5xx.inc();
  }

  #responseDone(): void {
    this.responseComplete = true;
    if (this.requestComplete) this.#finish();
    else if (this.#cm.codec.multiplexed) {
      // HTTP/2: the rest of the request is refused with RST_STREAM(NO_ERROR) (RFC 9113 §8.1); the connection
      // carries on.
      this.#fm.stopDecoding();
      this.#encoder.resetStream("local-reset");
      this.#finish();
    } else if (!this.#upgrade) {
      // HTTP/1 cannot skip the rest of a request body it stopped reading: close after the response (lingering, as
      // the client may still be sending; first, so that the stream's end does not close the connection outright).
      this.#fm.stopDecoding();
      this.#cm.closeAfterResponse();
      this.#finish();
    } else {
      this.#finish();
    }
  }

  // ---- local replies and resets ----

  sendLocalReply(status: number, body = "", options: LocalReplyOptions = {}): void {
    if (this.#destroyed) return;
    if (options.responseFlag) this.info.responseFlags.push(options.responseFlag);
    if (options.details) this.info.responseCodeDetails = options.details;
    if (this.#fm.responseStarted) {
      this.resetStream("local-reset");
      return;
    }
    this.#fm.stopDecoding();
    const shared = this.#cm.shared;
    const reply = (shared.codec.localReply ?? httpLocalReply)({
      status,
      body,
      ...(options.headers ? { headers: options.headers } : {}),
      ...(options.contentType ? { contentType: options.contentType } : {}),
      ...(options.grpcStatus !== undefined ? { grpcStatus: options.grpcStatus } : {}),
      isHead: this.#isHead,
    }, this.#requestHeaders);
    const h = reply.headers;
    h.set("date", new Date().toUTCString());
    if (this.info.requestId !== undefined && shared.config.alwaysSetRequestIdInResponse) {
      h.set("x-request-id", this.info.requestId);
    }
    // Local replies pass through the encoder filters (from the last filter down).
    const body1 = reply.body;
    const fm = this.#fm;
    fm.encodeLocalHeaders(h, body1 === undefined && reply.trailers === undefined);
    if (body1 !== undefined && !fm.destroyed) fm.encodeLocalData(body1, reply.trailers === undefined);
    if (reply.trailers !== undefined && !fm.destroyed) fm.encodeLocalTrailers(reply.trailers);
  }

  /** Resets the stream (a filter's `resetStream()` is a local reset). */
  resetStream(reason: "local-reset" | "remote-reset" = "local-reset"): void {
    if (this.#destroyed) return;
    if (reason === "local-reset") this.#cm.shared.stats.downstream_rq_tx_reset.inc();
    if (!this.info.responseFlags.includes("LR") && reason === "local-reset") this.info.responseFlags.push("LR");
    // The codec first: an HTTP/1 reset ends keep-alive, so that #finish (streamDone) closes the connection.
    this.#encoder.resetStream(reason);
    this.#finish();
  }

  /** Downstream write buffer watermarks, fanned out to filters (the router pauses its upstream). */
  onWriteBlocked(): void {
    for (const c of this.#watermarkCbs ?? []) c.onAboveWriteBufferHighWatermark();
  }

  onWriteDrained(): void {
    for (const c of this.#watermarkCbs ?? []) c.onBelowWriteBufferLowWatermark();
  }

  /** Ends the stream once: timers, filters' onDestroy, stats, access log. */
  #finish(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#requestTimer?.cancel();
    this.#idleTimer?.cancel();
    this.#fm.destroy();
    const info = this.info;
    info.durationMs = approxNow() - info.startMono;
    const stats = this.#cm.shared.stats;
    stats.downstream_rq_active.dec();
    if (this.#upgradeActive) stats.downstream_cx_upgrades_active.dec();
    stats.downstream_rq_completed.inc();
    stats.downstream_rq_time.record(info.durationMs);
    const span = this.#span;
    if (span !== undefined) {
      // The route (for its decorator) only for a span that is exported: no route lookup for unsampled requests.
      const decorator = span.record.sampled ? this.route?.route.decoratorOperation : undefined;
      this.#cm.shared.tracer?.finishSpan(span, info, decorator);
    }
    for (const l of this.#cm.shared.accessLoggers) l.log(info);
    this.#cm.streamDone(this);
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }
}

/**
 * True for the close reasons of the connection layer (lib/network/connection.ts) that mean the peer ended the
 * connection: its FIN or reset, or an I/O error. Everything else ("local close", timeouts, drain, protocol errors,
 * TLS failures, shutdown) is Ferry's decision and counts as local, as Envoy's `downstream_cx_destroy_local`.
 */
function isRemoteClose(reason: string): boolean {
  return reason === "remote close" || reason.startsWith("read error:") || reason.startsWith("write error:");
}

/** A response for a request with a protocol error, logged like a stream. */
function logProtocolError(cm: ConnectionManager, err: CodecError): void {
  const c = cm.conn;
  const info = newStreamInfo(cm.remoteName, cm.localName, { connectionId: c.id, startMono: approxNow() });
  info.protocol = cm.codec.protocol;
  info.responseCode = err.status;
  info.responseCodeDetails = `codec_error:${err.code}`;
  info.responseFlags.push("DPE");
  info.durationMs = 0;
  for (const l of cm.shared.accessLoggers) l.log(info);
}

/**
 * The connection manager network filter for one downstream connection.
 */
export class ConnectionManager implements NetworkFilter {
  readonly shared: ConnManagerShared;
  readonly conn: NetConnection;
  readonly codec: ServerConnectionCodec;
  readonly connectionInfo: DownstreamConnectionInfo;
  /** Optional logger for filter failures (debug level). */
  log: ((msg: string) => void) | undefined;
  #streams: ActiveStream[] = [];
  #closing = false;
  /** The peer ended its side (FIN) before the connection closed: the close counts as remote. */
  #peerEnded = false;
  #headersTimer: WheelTimer | undefined;
  #idleTimer: WheelTimer | undefined;
  #lastActivity = approxNow();
  #closed = false;
  /** Lingering close in progress: input is dropped until the peer closes or a limit passes (see the module doc). */
  #lingering = false;
  #lingerTimer: WheelTimer | undefined;
  #lingerReason = "";
  #lingerUntil = 0;
  /** 0 until the connection's protocol is known and counted, then 1 (HTTP/1) or 2 (HTTP/2). */
  #protocolCounted: 0 | 1 | 2 = 0;
  /** `remote-address:port` and `local-address:port` of the connection, built once for every stream's info. */
  readonly remoteName: string;
  readonly localName: string;

  constructor(shared: ConnManagerShared, conn: NetConnection, log?: (msg: string) => void) {
    this.shared = shared;
    this.conn = conn;
    this.log = log;
    this.remoteName = `${conn.remoteAddress}:${conn.remotePort}`;
    this.localName = `${conn.localAddress}:${conn.localPort}`;
    const opts: CodecOptions = {
      maxHeadersKb: shared.config.maxRequestHeadersKb,
      maxHeadersCount: shared.config.maxHeadersCount,
      secure: conn.secure,
      readDisable: (disable: boolean) => conn.readDisable(disable),
      bufferLimit: shared.bufferLimit,
      http2: shared.config.http2,
      closeConnection: (reason: string) => conn.close({ flush: true, reason }),
    };
    if (shared.http2Stats) opts.http2Stats = shared.http2Stats;
    const alpn = conn.tls?.alpn;
    if (alpn !== undefined) opts.alpn = alpn;
    this.codec = shared.codec.createServer((b) => conn.write(b), this, opts);
    // A TLS provider's SecureConnection carries its handshake facts; RBAC principals read the peer's certificate.
    const peer = (conn as { handshake?: { peerCertificates?: readonly Uint8Array[] } }).handshake?.peerCertificates;
    const info: DownstreamConnectionInfo = {
      id: conn.id,
      remoteAddress: conn.remoteAddress,
      remotePort: conn.remotePort,
      localAddress: conn.localAddress,
      localPort: conn.localPort,
      secure: conn.secure,
      ioEngine: conn.ioEngine,
      ...(conn.tls?.sni !== undefined ? { sni: conn.tls.sni } : {}),
      ...(peer !== undefined ? { peerCertificates: peer } : {}),
    };
    this.connectionInfo = info;
    const s = shared.stats;
    s.downstream_cx_total.inc();
    s.downstream_cx_active.inc();
    this.#countProtocol();
    const idle = shared.config.idleTimeoutMs;
    if (idle > 0) this.#armIdle(idle);
  }

  /** Counts the connection as HTTP/1 or HTTP/2 once the codec knows (the `auto` codec decides on the first bytes). */
  #countProtocol(): void {
    const p = this.codec.protocol;
    if (p === "") return;
    const s = this.shared.stats;
    this.#protocolCounted = p === "HTTP/2" ? 2 : 1;
    if (p === "HTTP/2") {
      s.downstream_cx_http2_total.inc();
      s.downstream_cx_http2_active.inc();
    } else {
      s.downstream_cx_http1_total.inc();
      s.downstream_cx_http1_active.inc();
    }
  }

  #armIdle(ms: number): void {
    const base = this.shared.config.idleTimeoutMs;
    // `reduce_timeouts`: an overloaded Ferry closes idle connections sooner (the scale when the timer is armed).
    const ov = this.shared.overload;
    const full = ov !== undefined && ov.engaged ? ov.scaleTimeout("HTTP_DOWNSTREAM_CONNECTION_IDLE", base) : base;
    this.#idleTimer = schedule(Math.min(ms, full), () => {
      this.#idleTimer = undefined;
      if (this.#closed) return;
      const left = this.#lastActivity + full - approxNow();
      if (this.#streams.length > 0) return this.#armIdle(full);
      if (left > 1) return this.#armIdle(left);
      this.shared.stats.downstream_cx_idle_timeout.inc();
      this.conn.close({ reason: "idle timeout" });
    });
  }

  /** Handler for the connection when this manager owns the connection directly (tests, embedding). */
  handler(): ConnectionHandler {
    return {
      onData: (d) => this.onData(d, false),
      onEof: () => this.onData(EMPTY, true),
      onClose: (r) => this.onClose(r),
      onWriteBlocked: () => this.onWriteBlocked(),
      onWriteDrained: () => this.onWriteDrained(),
    };
  }

  onWriteBlocked(): void {
    this.codec.onAboveWriteBufferHighWatermark?.();
    for (const s of this.#streams) s.onWriteBlocked();
  }

  onWriteDrained(): void {
    this.codec.onBelowWriteBufferLowWatermark?.();
    for (const s of this.#streams) s.onWriteDrained();
  }

  onNewConnection(): NetworkFilterStatus {
    return "continue";
  }

  onData(data: Uint8Array, endStream: boolean): NetworkFilterStatus {
    if (this.#closed) return "stop";
    this.#lastActivity = approxNow();
    const s = this.shared.stats;
    if (data.length > 0) {
      s.downstream_cx_rx_bytes_total.inc(data.length);
      if (this.#lingering) return "stop";
      if (this.#streams.length === 0 && this.#headersTimer === undefined && !this.codec.multiplexed) {
        this.#armHeadersTimer();
      }
      try {
        this.codec.dispatch(data);
      } catch (e) {
        if (this.#protocolCounted === 0) this.#countProtocol();
        this.#protocolError(e);
        return "stop";
      }
      if (this.#protocolCounted === 0) this.#countProtocol();
    }
    if (endStream) {
      if (this.#lingering) {
        // The client closed its side: nothing is left unread, the close is clean.
        this.conn.close({ flush: true, reason: this.#lingerReason });
        return "stop";
      }
      try {
        this.codec.onEof();
      } catch (e) {
        this.#protocolError(e);
        return "stop";
      }
      // The peer closed its side: finish in-flight responses, then close.
      this.#peerEnded = true;
      if (this.#streams.length === 0) this.conn.close({ flush: true });
      else this.#closing = true;
    }
    return "stop";
  }

  #armHeadersTimer(): void {
    const ms = this.shared.config.requestHeadersTimeoutMs;
    if (ms <= 0) return;
    this.#headersTimer = schedule(ms, () => {
      this.#headersTimer = undefined;
      if (this.#closed) return;
      this.shared.stats.downstream_rq_header_timeout.inc();
      this.conn.close({ reason: "request headers timeout" });
    });
  }

  /** Called by a stream when its headers are complete. */
  clearHeadersTimer(): void {
    if (this.#headersTimer !== undefined) {
      this.#headersTimer.cancel();
      this.#headersTimer = undefined;
    }
  }

  #protocolError(e: unknown): void {
    this.shared.stats.downstream_cx_protocol_error.inc();
    if (e instanceof CodecError) {
      if (e.status === 431 || e.status === 413) this.shared.stats.downstream_rq_too_large.inc();
      // HTTP/2: an error out of dispatch is the connection's (GOAWAY); stream errors never get here.
      const active = this.codec.multiplexed
        ? undefined
        : this.#streams.find((s) => !s.destroyed && !s.responseComplete);
      if (active && !active.requestComplete) {
        active.info.responseFlags.push("DPE");
        active.sendLocalReply(e.status, `${e.message}\n`, {
          details: `codec_error:${e.code}`,
          headers: { connection: "close" },
        });
      } else {
        this.codec.sendProtocolError(e);
        if (e.status >= 500) this.shared.stats.downstream_rq_5xx.inc();
        else this.shared.stats.downstream_rq_4xx.inc();
        logProtocolError(this, e);
      }
    } else {
      this.log?.(`codec failed: ${e instanceof Error ? e.stack : String(e)}`);
    }
    this.#lingeringClose("protocol error");
  }

  /**
   * Closes after what is queued has been written, draining input meanwhile so that no reset destroys the answer
   * (see "Lingering close" in the module doc). Used wherever the client may still be sending.
   */
  #lingeringClose(reason: string): void {
    if (this.#closed || this.#lingering) return;
    if (this.#peerEnded) {
      // The client sent FIN already: nothing more can arrive.
      this.conn.close({ flush: true, reason });
      return;
    }
    this.#lingering = true;
    this.#lingerReason = reason;
    this.#headersTimer?.cancel();
    this.#headersTimer = undefined;
    this.#idleTimer?.cancel();
    this.#idleTimer = undefined;
    // The codec parses nothing more (and drops what it held).
    (this.codec as { destroy?: () => void }).destroy?.();
    this.conn.closeWrite();
    this.#lingerUntil = approxNow() + LINGER_TIME_MS;
    this.#armLinger(LINGER_READ_TIMEOUT_MS);
  }

  #armLinger(ms: number): void {
    this.#lingerTimer = schedule(ms, () => {
      this.#lingerTimer = undefined;
      if (this.#closed) return;
      const now = approxNow();
      const left = Math.min(this.#lingerUntil, this.#lastActivity + LINGER_READ_TIMEOUT_MS) - now;
      if (left > 1) return this.#armLinger(left);
      this.shared.stats.downstream_cx_delayed_close_timeout.inc();
      this.conn.close({ flush: true, reason: this.#lingerReason });
    });
  }

  /** ServerCodecCallbacks: a protocol error found while decoding held-back (pipelined) input. */
  onDispatchError(e: unknown): void {
    if (this.#closed) return;
    this.#protocolError(e);
  }

  /** ServerCodecCallbacks: a new request. */
  newStream(encoder: StreamEncoder): StreamDecoder {
    const s = new ActiveStream(this, encoder);
    this.#streams.push(s);
    return s;
  }

  streamDone(s: ActiveStream): void {
    const i = this.#streams.indexOf(s);
    if (i >= 0) this.#streams.splice(i, 1);
    this.#lastActivity = approxNow();
    if (this.#streams.length === 0 && !this.#lingering) {
      if (this.codec.multiplexed) {
        // HTTP/2: close once nothing is in flight and no stream can still arrive (the codec is idle only after the
        // final GOAWAY of a drain).
        if ((this.#closing || !this.codec.keepAlive || this.shared.draining()) && this.codec.idle) {
          this.conn.close({ flush: true });
        }
      } else if (this.#closing || !this.codec.keepAlive || (this.shared.draining() && this.codec.idle)) {
        // The codec decides keep-alive (connection: close from either side, HTTP/1.0, a cut-short request).
        this.conn.close({ flush: true });
      }
    }
  }

  /** After the current response, close the connection (the request could not be fully read): a lingering close. */
  closeAfterResponse(): void {
    this.#lingeringClose("response before request complete");
  }

  /** Graceful drain: close now if idle, else after the in-flight response. */
  drain(): void {
    this.codec.shutdownNotice();
    // An HTTP/2 codec between its two GOAWAYs is not idle: it closes the connection itself after the final one.
    if (this.#streams.length === 0 && (!this.codec.multiplexed || this.codec.idle)) {
      this.conn.close({ flush: true, reason: "drain" });
    } else this.#closing = true;
  }

  onClose(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#headersTimer?.cancel();
    this.#idleTimer?.cancel();
    this.#lingerTimer?.cancel();
    this.codec.onConnectionClose?.();
    for (const s of this.#streams.slice()) s.onReset();
    (this.codec as { destroy?: () => void }).destroy?.();
    const st = this.shared.stats;
    st.downstream_cx_active.dec();
    if (this.#protocolCounted === 1) st.downstream_cx_http1_active.dec();
    else if (this.#protocolCounted === 2) st.downstream_cx_http2_active.dec();
    st.downstream_cx_destroy.inc();
    if (this.#peerEnded || isRemoteClose(reason)) st.downstream_cx_destroy_remote.inc();
    else st.downstream_cx_destroy_local.inc();
    st.downstream_cx_tx_bytes_total.inc(this.conn.bytesWritten);
  }

  /** Number of streams in progress. */
  get activeStreams(): number {
    return this.#streams.length;
  }
}
