/**
 * `envoy.filters.http.router`: the terminal HTTP filter that forwards a request to an upstream cluster.
 *
 * Per request: take the route, answer direct responses and redirects, pick the cluster and a host, place the
 * stream on the host's pool, stream the request up and the response down. Handles the route's timeout (from the
 * end of the request) or, in its place, `max_stream_duration` (from the start of the stream, as Envoy's connection
 * manager), the per-try and per-try idle timeouts, retries per `retry_policy` (on other hosts, with jittered
 * backoff) while the body fits `per_request_buffer_limit_bytes`, and
 * transparently re-sends a request once when a reused keep-alive connection turns out to have been closed by the
 * upstream before answering — so a stale pooled connection never surfaces as a 502.
 *
 * Resilience: the route's `hash_policy` becomes `LbContext.hashKey` (RING_HASH, MAGLEV; a cookie policy with a
 * `ttl` may add a `set-cookie`); each attempt's result goes to the host's `monitor` (outlier detection, and
 * `x-envoy-immediate-health-check-fail`); retries need the cluster's `max_retries` / `retry_budget` circuit breaker
 * (else `upstream_rq_retry_overflow` and flag `UO`, and the failure or response passes through). A retry avoids the
 * hosts already tried when the policy has the `previous_hosts` predicate, and also when the request has no hash (a
 * hashed request without the predicate stays on its host, as Envoy's). `x-envoy-retry-on` / `x-envoy-max-retries`
 * from the request are not honoured: Envoy trusts them on internal requests only, and the router is not told
 * whether a request is internal (the connection manager strips `x-envoy-*` from external ones at the edge).
 *
 * @module
 */
import type { StreamResetReason } from "../../lib/api/codec.ts";
import { HeaderMap } from "../../lib/api/headers.ts";
import type {
  FilterFactoryContext,
  FilterStatus,
  HttpFilterFactory,
  StreamFilter,
  StreamFilterCallbacks,
} from "../../lib/api/stream_filter.ts";
import type { ResponseFlag } from "../../lib/api/stream_info.ts";
import type { Cluster, ClusterManager, Host, PoolFailureReason } from "../../lib/api/upstream.ts";
import { ObjReader } from "../../lib/config/reader.ts";
import type { StatsScope } from "../../lib/api/stats.ts";
import { getLogger } from "../../lib/observe/log.ts";
import type { PoolStreamEncoder } from "../../lib/upstream/http1_pool.ts";
import { schedule } from "../../lib/network/timer_wheel.ts";
import type { WheelTimer } from "../../lib/network/timer_wheel.ts";
import {
  applyRequestMutations,
  applyResponseMutations,
  effectiveRetryPolicy,
  finalTimeouts,
  redirectLocation,
  RetryState,
  rewriteHost,
  rewritePath,
  selectCluster,
  streamDurationMs,
} from "../../lib/router/mod.ts";
import type { ClusterChoice, RouteAction, RouteResult } from "../../lib/router/mod.ts";
import { addressWithoutPort } from "../../lib/router/mod.ts";
import { computeHashKey } from "../../lib/upstream/lb/hash_policy.ts";
import { approxNow } from "../../lib/network/clock.ts";
import { UpstreamRequest, type UpstreamRequestCallbacks } from "./_upstream_request.ts";
import { ShadowRequest } from "./_shadow.ts";
import { serverRuntime } from "../../lib/runtime/mod.ts";
import { mirrorCluster, shadowAuthority } from "../../lib/router/mod.ts";

const log = getLogger("router");
/** gRPC's DEADLINE_EXCEEDED, for a stream that outlived `max_stream_duration`. */
const GRPC_DEADLINE_EXCEEDED = 4;

/** The Router filter's `@type`. */
export const ROUTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";

/** Parsed router filter config. */
export interface RouterConfig {
  /** Do not add `x-envoy-upstream-service-time` and friends. */
  readonly suppressEnvoyHeaders: boolean;
}

/** How many times a request is re-sent because a reused connection was found closed. */
const MAX_STALE_CONNECTION_RETRIES = 3;

function parseRouterConfig(raw: Record<string, unknown>, path: string): RouterConfig {
  const o = new ObjReader(raw, path).envoyMessage("envoy.extensions.filters.http.router.v3.Router");
  o.skip("@type");
  o.bool("dynamic_stats");
  o.bool("start_child_span");
  const suppressEnvoyHeaders = o.bool("suppress_envoy_headers") ?? false;
  o.bool("respect_expected_rq_timeout");
  o.strs("strict_check_headers");
  o.bool("suppress_grpc_request_failure_code_stats");
  o.done();
  return { suppressEnvoyHeaders };
}

/** The per-stream router. */
export class RouterFilter implements StreamFilter, UpstreamRequestCallbacks {
  readonly #cb: StreamFilterCallbacks;
  readonly #cm: ClusterManager;
  readonly #config: RouterConfig;
  /** The connection manager's stats scope (`http.<stat_prefix>`). */
  readonly #scope: StatsScope;
  #route: RouteResult | undefined;
  #action: RouteAction | undefined;
  #choice: ClusterChoice | null = null;
  #globalMs = 0;
  #perTryMs = 0;
  #perTryIdleMs = 0;
  /** Bytes of request body kept for retries: `per_request_buffer_limit_bytes` if lower than the connection's. */
  #bufferLimit = 0;
  /** The route's `max_stream_duration` timer (Envoy keeps it in the connection manager; it bounds the stream). */
  #durationTimer: WheelTimer | undefined;
  #cluster: Cluster | undefined;
  #headers: HeaderMap | undefined;
  #upstream: UpstreamRequest | undefined;
  #retry: RetryState | undefined;
  /** Request body kept for retries; undefined once it outgrew the buffer limit. */
  #body: Uint8Array[] | undefined = [];
  #bodyBytes = 0;
  #trailers: HeaderMap | undefined;
  #requestEnded = false;
  #downstreamStarted = false;
  #globalTimer: WheelTimer | undefined;
  #backoffTimer: WheelTimer | undefined;
  #attempts = 0;
  #staleRetries = 0;
  #triedHosts: Set<Host> | undefined;
  /** `hash_policy` result for RING_HASH / MAGLEV. */
  #hashKey: number | undefined;
  /** A `set-cookie` the hash policy asks for on the response. */
  #setCookie: string | undefined;
  /** True while this request holds one unit of the cluster's retry circuit breaker. */
  #retryHeld = false;
  #destroyed = false;
  #start = approxNow();
  #upstreamPaused = false;
  #downstreamPaused = false;
  /** The route's `request_mirror_policies` shadows of this request. */
  #shadows: ShadowRequest[] | undefined;

  constructor(config: RouterConfig, callbacks: StreamFilterCallbacks, context: FilterFactoryContext) {
    this.#config = config;
    this.#cb = callbacks;
    this.#cm = context.clusterManager;
    this.#scope = context.scope;
  }

  decodeHeaders(headers: HeaderMap, endStream: boolean): FilterStatus {
    const cb = this.#cb;
    const info = cb.streamInfo;
    const route = cb.route;
    if (!route) {
      log.debug(() => `no route for ${headers.get(":method")} ${headers.get(":authority")}${headers.get(":path")}`);
      cb.sendLocalReply(404, "", { responseFlag: "NR", details: "route_not_found" });
      return "stop";
    }
    this.#route = route;
    if (route.route.name) info.routeName = route.route.name;
    if (route.vhost.name) info.virtualHostName = route.vhost.name;
    const act = route.route.action;

    if (act.kind === "direct_response") {
      const body = act.body;
      const isHead = headers.get(":method") === "HEAD";
      const h = new HeaderMap([":status", String(act.status), "content-length", String(body.length)]);
      if (body.length > 0) h.set("content-type", act.contentType ?? "text/plain");
      applyResponseMutations(route, h, { info });
      info.responseCodeDetails = "direct_response";
      cb.encodeHeaders(h, body.length === 0 || isHead);
      if (body.length > 0 && !isHead) cb.encodeData(body, true);
      return "stop";
    }
    if (act.kind === "redirect") {
      const r = redirectLocation(route.route, headers, { secure: cb.connection.secure });
      const h = new HeaderMap([":status", String(r.status), "location", r.location, "content-length", "0"]);
      applyResponseMutations(route, h, { info });
      info.responseCodeDetails = "direct_response";
      cb.encodeHeaders(h, true);
      return "stop";
    }
    const action = act;
    this.#action = action;
    const choice = selectCluster(action, headers);
    const cluster = choice === null ? undefined : this.#cm.get(choice.name);
    if (!cluster) {
      log.debug(() => `route "${route.route.name}": cluster "${choice?.name ?? "(missing cluster_header)"}" not found`);
      cb.sendLocalReply(action.clusterNotFoundStatus, "", { responseFlag: "NC", details: "cluster_not_found" });
      return "stop";
    }
    this.#choice = choice;
    this.#cluster = cluster;
    info.upstreamCluster = cluster.info.name;

    // Request transformations, once for all attempts.
    // Envoy's finalizeRequestHeaders order: header mutations, host rewrite, then path rewrite.
    applyRequestMutations(route, headers, { info, cluster: choice });
    rewriteHost(action, headers, { cluster: choice });
    rewritePath(route.route, headers, { originalPath: !this.#config.suppressEnvoyHeaders });
    if (action.idleTimeoutMs !== undefined) cb.setStreamIdleTimeout(action.idleTimeoutMs);
    const t = finalTimeouts(action, headers);
    this.#globalMs = t.globalMs;
    this.#perTryMs = t.perTryMs;
    this.#perTryIdleMs = t.perTryIdleMs;
    const limit = route.route.perRequestBufferLimitBytes;
    const connLimit = cb.decoderBufferLimit;
    this.#bufferLimit = limit !== undefined && limit < connLimit ? limit : connLimit;
    const maxDuration = streamDurationMs(action, headers);
    if (maxDuration !== undefined) {
      // Counted from the start of the stream, as Envoy's connection manager does.
      const left = maxDuration - (approxNow() - info.startMono);
      this.#durationTimer = schedule(left > 0 ? left : 0, () => this.#onMaxStreamDuration());
    }
    if (t.globalMs > 0 && !this.#config.suppressEnvoyHeaders) {
      headers.set("x-envoy-expected-rq-timeout-ms", String(t.perTryMs || t.globalMs));
    }
    this.#headers = headers;
    if (action.hashPolicy.length > 0) {
      const r = computeHashKey(action.hashPolicy, headers, addressWithoutPort(info.downstreamRemoteAddress));
      this.#hashKey = r.hashKey;
      this.#setCookie = r.setCookie;
    }
    const policy = effectiveRetryPolicy(action.retryPolicy, headers);
    this.#retry = policy ? new RetryState(policy) : undefined;
    if (endStream) this.#onRequestEnd();
    this.#startAttempt();
    // Shadows after the primary attempt: its request goes out first, whatever the shadows cost.
    if (action.mirrorPolicies !== undefined && !this.#destroyed) {
      this.#startShadows(action, headers, endStream, t.globalMs);
    }
    return "stop";
  }

  decodeData(data: Uint8Array, endStream: boolean): FilterStatus {
    if (this.#destroyed || !this.#cluster) return "stop";
    if (!this.#keepBody(data) && this.#backoffTimer !== undefined) {
      // Waiting to retry, and the body can no longer be replayed: nothing to send it to (Envoy's 507).
      this.#fail(
        507,
        "exceeded request buffer limit while retrying upstream",
        undefined,
        "request_payload_exceeded_retry_buffer_limit",
      );
      return "stop";
    }
    const up = this.#upstream;
    if (endStream) this.#onRequestEnd();
    if (up?.encoder && !up.done) {
      up.encoder.encodeData(data, endStream);
      if (endStream) up.requestEncodedEnd = true;
    } else if (up !== undefined && !up.done && this.#body === undefined) {
      (up.pending ??= []).push(data.slice());
    }
    if (this.#shadows !== undefined) { for (const s of this.#shadows) s.data(data, endStream); }
    return "stop";
  }

  decodeTrailers(trailers: HeaderMap): FilterStatus {
    if (this.#destroyed || !this.#cluster) return "stop";
    if (this.#shadows !== undefined) { for (const s of this.#shadows) s.trailers(trailers); }
    this.#trailers = trailers;
    this.#onRequestEnd();
    const up = this.#upstream;
    if (up?.encoder && !up.done) {
      up.encoder.encodeTrailers(trailers);
      up.requestEncodedEnd = true;
    }
    return "stop";
  }

  onDestroy(): void {
    if (this.#downstreamPaused) {
      this.#downstreamPaused = false;
      this.#cb.readDisable(false);
    }
    this.#destroyed = true;
    if (this.#shadows !== undefined) {
      // A shadow with the whole request goes on alone (fire-and-forget); one missing part of it is cancelled.
      for (const s of this.#shadows) if (!s.requestEnded) s.abandon();
      this.#shadows = undefined;
    }
    this.#clearTimers();
    this.#durationTimer?.cancel();
    this.#durationTimer = undefined;
    this.#releaseRetry();
    if (this.#upstream && !this.#upstream.done) this.#upstream.abandon();
    this.#upstream = undefined;
  }

  /**
   * Starts the shadows of the route's `request_mirror_policies` (Envoy's `shadowRequest`): for each policy whose
   * fraction picks this request and whose cluster exists, a copy of the final request headers with `-shadow`
   * appended to `:authority` (unless `disable_shadow_host_suffix_append`), bounded by the route's timeout.
   */
  #startShadows(action: RouteAction, headers: HeaderMap, endStream: boolean, timeoutMs: number): void {
    for (const policy of action.mirrorPolicies!) {
      const name = mirrorCluster(policy, headers, { runtime: serverRuntime });
      if (name === undefined) continue;
      const cluster = this.#cm.get(name);
      if (!cluster) {
        log.debug(() => `route "${this.#route?.route.name ?? ""}": shadow cluster "${name}" not found`);
        continue;
      }
      const h = headers.clone();
      const host = h.get(":authority");
      if (!policy.disableShadowHostSuffixAppend && host !== undefined && host !== "") {
        h.set(":authority", shadowAuthority(host));
      }
      const s = new ShadowRequest(cluster, h, {
        endStream,
        timeoutMs,
        protocol: this.#cb.streamInfo.protocol,
        ioEngine: this.#cb.connection.ioEngine,
      });
      (this.#shadows ??= []).push(s);
    }
  }

  /**
   * Keeps a copy of request body for a replay (retry, or a re-send after a stale pooled connection). Returns false
   * when this chunk made the body too big to keep: over `per_request_buffer_limit_bytes` (route, else virtual host)
   * or the connection's buffer limit, whichever is lower. From then on the request is not retried (Envoy gives up
   * on the retry: `retry_or_shadow_abandoned`), but it still goes on to the upstream in flight.
   */
  #keepBody(data: Uint8Array): boolean {
    if (this.#body === undefined) return true;
    if (!this.#retry && this.#staleRetries >= MAX_STALE_CONNECTION_RETRIES) {
      this.#dropBody();
      return true;
    }
    this.#bodyBytes += data.length;
    if (this.#bodyBytes > this.#bufferLimit) {
      this.#dropBody();
      const retry = this.#retry;
      if (retry !== undefined && (retry.policy?.retryOn.size ?? 0) > 0) {
        this.#cluster!.info.scope.counter("retry_or_shadow_abandoned").inc();
        log.debug(() => `request body over ${this.#bufferLimit} bytes: no retries for this request`);
      }
      this.#retry = undefined;
      return false;
    }
    this.#body.push(data.slice());
    return true;
  }

  /** Stops keeping the body for replay; what an attempt still waiting for its connection needs moves to it. */
  #dropBody(): void {
    const up = this.#upstream;
    if (up !== undefined && !up.done && up.encoder === undefined && this.#body!.length > 0) up.pending = this.#body;
    this.#body = undefined;
  }

  #onRequestEnd(): void {
    if (this.#requestEnded) return;
    this.#requestEnded = true;
    const ms = this.#globalMs;
    if (ms > 0) {
      this.#globalTimer = schedule(ms, () => this.#onGlobalTimeout());
    }
    const up = this.#upstream;
    if (up?.encoder !== undefined && !up.done) this.#armPerTryIdle(up);
  }

  /**
   * Starts an attempt's `per_try_idle_timeout`, as Envoy: once the whole request has been sent and the attempt has
   * a connection; every response byte restarts it, also while the response streams downstream.
   */
  #armPerTryIdle(up: UpstreamRequest): void {
    const ms = this.#perTryIdleMs;
    if (ms <= 0 || up.idleTimer !== undefined) return;
    up.lastRx = approxNow();
    // One timer per idle period rather than one per chunk: on expiry, re-arm for what is left since the last byte.
    const check = (): void => {
      const left = up.lastRx + ms - approxNow();
      if (left > 1) {
        up.idleTimer = schedule(left, check);
        return;
      }
      up.idleTimer = undefined;
      this.#onPerTryIdleTimeout(up);
    };
    up.idleTimer = schedule(ms, check);
  }

  #clearTimers(): void {
    this.#globalTimer?.cancel();
    this.#backoffTimer?.cancel();
    this.#globalTimer = undefined;
    this.#backoffTimer = undefined;
  }

  #startAttempt(): void {
    if (this.#destroyed) return;
    const cluster = this.#cluster!;
    const hashKey = this.#hashKey;
    const avoid = this.#triedHosts !== undefined &&
        (hashKey === undefined || this.#retry?.policy?.previousHostsPredicate === true)
      ? this.#triedHosts
      : undefined;
    const downstreamHeaders = this.#headers!;
    const host = cluster.chooseHost(
      hashKey === undefined
        ? (avoid ? { avoid, downstreamHeaders } : { downstreamHeaders })
        : (avoid ? { avoid, hashKey, downstreamHeaders } : { hashKey, downstreamHeaders }),
    );
    if (!host) {
      cluster.info.stats.upstream_cx_none_healthy.inc();
      this.#fail(503, "no healthy upstream", "UH", "no_healthy_upstream");
      return;
    }
    this.#attempts++;
    this.#cb.streamInfo.attemptCount = this.#attempts;
    this.#cb.streamInfo.upstreamHost = host.key;
    this.#retry?.onHostAttempted(host.key);
    const up = new UpstreamRequest(this, host);
    this.#upstream = up;
    const perTry = this.#perTryMs;
    if (perTry > 0) up.perTryTimer = schedule(perTry, () => this.#onPerTryTimeout(up));
    const handle = cluster.httpPool(host, this.#cb.streamInfo.protocol, this.#cb.connection.ioEngine).newStream(up, up);
    if (handle && !up.done && !up.encoder) up.handle = handle;
  }

  onPoolReady(up: UpstreamRequest): void {
    if (up !== this.#upstream) return;
    const enc = up.encoder!;
    const info = up.info!;
    const cb = this.#cb;
    up.host.monitor?.putResult("local-origin-connect-success");
    cb.streamInfo.upstreamLocalAddress = `${info.connection.localAddress}:${info.connection.localPort}`;
    let headers = this.#headers!;
    const auto = this.#action!.hostRewrite?.kind === "auto" && up.host.hostname !== undefined;
    if (auto || this.#route!.vhost.includeRequestAttemptCount) {
      headers = headers.clone();
      if (auto) rewriteHost(this.#action!, headers, { upstreamHost: up.host.hostname! });
      if (this.#route!.vhost.includeRequestAttemptCount) headers.set("x-envoy-attempt-count", String(this.#attempts));
    }
    // Upstream flow control: while the upstream connection cannot take more, stop reading the downstream.
    (enc as Partial<PoolStreamEncoder>).setWatermarkCallbacks?.({
      onAboveWriteBufferHighWatermark: () => this.#setDownstreamPaused(true),
      onBelowWriteBufferLowWatermark: () => this.#setDownstreamPaused(false),
    });
    const body = this.#body ?? up.pending;
    up.pending = undefined;
    const hasBody = body !== undefined && body.length > 0;
    const end = this.#requestEnded && !hasBody && this.#trailers === undefined;
    enc.encodeHeaders(headers, end);
    if (this.#bodyBytes > 0 && this.#body === undefined && this.#attempts + this.#staleRetries > 1) {
      // Cannot happen: retries are disabled once the body is dropped.
      up.abandon();
      return;
    }
    if (hasBody) {
      for (let i = 0; i < body.length; i++) {
        const last = i === body.length - 1 && this.#requestEnded && this.#trailers === undefined;
        enc.encodeData(body[i]!, last);
      }
      if (!this.#retry && this.#staleRetries >= MAX_STALE_CONNECTION_RETRIES) this.#body = undefined;
    }
    if (this.#trailers) enc.encodeTrailers(this.#trailers);
    if (this.#requestEnded) {
      up.requestEncodedEnd = true;
      this.#armPerTryIdle(up);
    }
    if (this.#upstreamPaused) info.connection.readDisable(true);
  }

  onPoolFailure(up: UpstreamRequest, reason: PoolFailureReason, detail: string, host: Host): void {
    if (up !== this.#upstream) return;
    up.finish();
    this.#cb.streamInfo.upstreamTransportFailureReason = detail;
    if (reason === "overflow") {
      this.#fail(
        503,
        "upstream connect error or disconnect/reset before headers. reset reason: overflow",
        "UO",
        "upstream_reset_before_response_started{overflow}",
      );
      return;
    }
    if (reason === "connect-failure" || reason === "timeout") {
      host.monitor?.putResult(reason === "timeout" ? "local-origin-timeout" : "local-origin-connect-failed");
    }
    if (this.#maybeRetryReset("connect-failure", host)) return;
    this.#fail(
      503,
      `upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: ${detail}`,
      "UF",
      "upstream_reset_before_response_started{connection_failure}",
    );
  }

  onUpstreamHeaders(up: UpstreamRequest, headers: HeaderMap, endStream: boolean): void {
    if (up !== this.#upstream) return;
    const status = Number(headers.get(":status"));
    const cluster = this.#cluster!;
    const monitor = up.host.monitor;
    if (monitor !== undefined) {
      monitor.putHttpResponseCode(status);
      if (headers.has("x-envoy-immediate-health-check-fail")) monitor.immediateHealthCheckFail();
    }
    const retry = this.#retry;
    if (retry && !this.#downstreamStarted && this.#canReplay()) {
      if (retry.shouldRetryHeaders(status, headers)) {
        // Without retry capacity (max_retries / retry_budget) the response passes through.
        if (this.#acquireRetry()) {
          this.#scheduleRetry(up);
          return;
        }
      } else if (retry.limitExceeded) this.#cb.streamInfo.responseFlags.push("URX");
    }
    if (up.perTryTimer !== undefined) {
      up.perTryTimer.cancel();
      up.perTryTimer = undefined;
    }
    const st = cluster.info.stats;
    if (status < 200) st.upstream_rq_1xx.inc();
    else if (status < 300) st.upstream_rq_2xx.inc();
    else if (status < 400) st.upstream_rq_3xx.inc();
    else if (status < 500) st.upstream_rq_4xx.inc();
    else st.upstream_rq_5xx.inc();
    if (this.#attempts > 1 && status < 500) st.upstream_rq_retry_success.inc();
    const info = this.#cb.streamInfo;
    info.firstUpstreamRxMs = approxNow() - info.startMono;
    if (!this.#config.suppressEnvoyHeaders) {
      headers.set("x-envoy-upstream-service-time", String(Math.round(approxNow() - up.startMono)));
    }
    if (this.#route!.vhost.includeAttemptCountInResponse) headers.set("x-envoy-attempt-count", String(this.#attempts));
    if (this.#setCookie !== undefined) headers.add("set-cookie", this.#setCookie);
    applyResponseMutations(this.#route!, headers, { info: this.#cb.streamInfo, cluster: this.#choice });
    this.#downstreamStarted = true;
    if (endStream) this.#upstreamDone(up);
    this.#cb.encodeHeaders(headers, endStream);
  }

  onUpstreamData(up: UpstreamRequest, data: Uint8Array, endStream: boolean): void {
    if (up !== this.#upstream) return;
    if (endStream) this.#upstreamDone(up);
    this.#cb.encodeData(data, endStream);
  }

  onUpstreamTrailers(up: UpstreamRequest, trailers: HeaderMap): void {
    if (up !== this.#upstream) return;
    this.#upstreamDone(up);
    this.#cb.encodeTrailers(trailers);
  }

  #upstreamDone(up: UpstreamRequest): void {
    up.finish();
    this.#clearTimers();
    this.#releaseRetry();
  }

  /**
   * Takes one unit of the cluster's retry circuit breaker (`max_retries`, or the `retry_budget`), releasing the one
   * this request held for its previous retry. False (counted as `upstream_rq_retry_overflow`, flag `UO`) when the
   * breaker is open.
   */
  #acquireRetry(): boolean {
    this.#releaseRetry();
    const cluster = this.#cluster!;
    const retries = cluster.info.circuitBreakers?.retries;
    if (retries === undefined) return true;
    if (!retries.canCreate()) {
      cluster.info.stats.upstream_rq_retry_overflow.inc();
      this.#cb.streamInfo.responseFlags.push("UO");
      return false;
    }
    retries.inc();
    this.#retryHeld = true;
    return true;
  }

  #releaseRetry(): void {
    if (!this.#retryHeld) return;
    this.#retryHeld = false;
    this.#cluster?.info.circuitBreakers?.retries.dec();
  }

  onUpstreamReset(up: UpstreamRequest, reason: StreamResetReason, detail: string): void {
    if (up !== this.#upstream) return;
    up.finish();
    const cluster = this.#cluster!;
    if (this.#downstreamStarted) {
      // Mid-response: nothing to retry; the downstream sees the reset.
      cluster.info.stats.upstream_rq_rx_reset.inc();
      this.#cb.streamInfo.responseFlags.push("UR");
      this.#cb.resetStream();
      return;
    }
    // A reused keep-alive connection that the upstream had already closed, or a stream the upstream refused
    // unprocessed (HTTP/2 REFUSED_STREAM, GOAWAY): re-send on another connection.
    if (
      !up.gotResponse &&
      ((up.info?.reused && reason === "connection-termination") || reason === "remote-refused-stream") &&
      this.#staleRetries < MAX_STALE_CONNECTION_RETRIES && this.#canReplay()
    ) {
      this.#staleRetries++;
      this.#attempts--;
      this.#startAttempt();
      return;
    }
    cluster.info.stats.upstream_rq_rx_reset.inc();
    up.host.monitor?.putResult("local-origin-reset");
    if (reason === "protocol-error") {
      this.#fail(
        502,
        `upstream protocol error: ${detail}`,
        "UPE",
        "upstream_reset_before_response_started{protocol_error}",
      );
      return;
    }
    if (this.#maybeRetryReset(reason === "remote-refused-stream" ? "refused-stream" : "reset", up.host)) return;
    this.#fail(
      503,
      `upstream connect error or disconnect/reset before headers. reset reason: ${
        reason === "connection-termination" ? "connection termination" : reason
      }`,
      "UC",
      "upstream_reset_before_response_started{connection_termination}",
    );
  }

  #canReplay(): boolean {
    return this.#body !== undefined;
  }

  #maybeRetryReset(kind: "connect-failure" | "reset" | "refused-stream" | "timeout", host: Host): boolean {
    const retry = this.#retry;
    if (!retry || this.#downstreamStarted || !this.#canReplay()) return false;
    (this.#triedHosts ??= new Set()).add(host);
    if (!retry.shouldRetryReset(kind)) {
      if (retry.limitExceeded) this.#cb.streamInfo.responseFlags.push("URX");
      return false;
    }
    if (!this.#acquireRetry()) return false;
    return this.#retryAfterBackoff();
  }

  /** Retries after a retriable response: the response is dropped and its connection closed. */
  #scheduleRetry(up: UpstreamRequest): void {
    (this.#triedHosts ??= new Set()).add(up.host);
    up.abandon();
    this.#retryAfterBackoff();
  }

  /** Schedules the next attempt after the backoff (the retry was already granted by the RetryState). */
  #retryAfterBackoff(): boolean {
    const retry = this.#retry!;
    const cluster = this.#cluster!;
    cluster.info.stats.upstream_rq_retry.inc();
    const delay = retry.nextBackoffMs();
    this.#upstream = undefined;
    this.#backoffTimer = schedule(delay, () => {
      this.#backoffTimer = undefined;
      this.#startAttempt();
    });
    return true;
  }

  #onPerTryTimeout(up: UpstreamRequest): void {
    up.perTryTimer = undefined;
    if (up !== this.#upstream || up.done || this.#downstreamStarted) return;
    this.#cluster!.info.stats.upstream_rq_per_try_timeout.inc();
    up.host.monitor?.putResult("local-origin-timeout");
    up.abandon();
    if (this.#maybeRetryReset("timeout", up.host)) return;
    this.#cluster!.info.stats.upstream_rq_timeout.inc();
    this.#fail(504, "upstream request timeout", "UT", "upstream_per_try_timeout");
  }

  /**
   * `per_try_idle_timeout` expired: the attempt is cancelled and, like a per-try timeout, retried if the policy
   * allows (`upstream_rq_per_try_idle_timeout`), else answered `504` (flag `UT`). Unlike the per-try timeout it
   * also ends a response already streaming downstream (the stream is reset).
   */
  #onPerTryIdleTimeout(up: UpstreamRequest): void {
    if (up !== this.#upstream || up.done || this.#destroyed) return;
    const cluster = this.#cluster!;
    cluster.info.scope.counter("upstream_rq_per_try_idle_timeout").inc();
    up.host.monitor?.putResult("local-origin-timeout");
    up.abandon();
    if (this.#downstreamStarted) {
      this.#clearTimers();
      this.#releaseRetry();
      this.#cb.streamInfo.responseFlags.push("UT");
      this.#cb.streamInfo.responseCodeDetails = "upstream_per_try_idle_timeout";
      this.#cb.resetStream();
      return;
    }
    if (this.#maybeRetryReset("timeout", up.host)) return;
    cluster.info.stats.upstream_rq_timeout.inc();
    this.#fail(504, "upstream request timeout", "UT", "upstream_per_try_idle_timeout");
  }

  /**
   * The route's `max_stream_duration` (or the `grpc-timeout` it honours) expired: as Envoy's connection manager,
   * `408` while the request is still arriving, `504` once it is complete (a gRPC request gets `grpc-status: 4`,
   * DEADLINE_EXCEEDED), body `downstream duration timeout`, details `max_duration_timeout`, no response flag; a
   * stream whose response has started is reset. Counted in `http.<stat_prefix>.downstream_rq_max_duration_reached`.
   */
  #onMaxStreamDuration(): void {
    this.#durationTimer = undefined;
    if (this.#destroyed) return;
    this.#scope.counter("downstream_rq_max_duration_reached").inc();
    const details = "max_duration_timeout";
    const body = "downstream duration timeout";
    // A gRPC request gets DEADLINE_EXCEEDED (the connection manager's local-reply mapping writes it trailers-only).
    this.#fail(this.#requestEnded ? 504 : 408, body, undefined, details, undefined, GRPC_DEADLINE_EXCEEDED);
  }

  #onGlobalTimeout(): void {
    this.#globalTimer = undefined;
    if (this.#destroyed) return;
    this.#cluster?.info.stats.upstream_rq_timeout.inc();
    if (this.#upstream && !this.#upstream.done) this.#upstream.abandon();
    this.#backoffTimer?.cancel();
    if (this.#downstreamStarted) {
      this.#cb.streamInfo.responseFlags.push("UT");
      this.#cb.resetStream();
      return;
    }
    this.#fail(504, "upstream request timeout", "UT", "response_timeout");
  }

  #fail(
    status: number,
    body: string,
    flag: ResponseFlag | undefined,
    details: string,
    headers?: Record<string, string>,
    grpcStatus?: number,
  ): void {
    log.debug(() =>
      `route "${this.#route?.route.name ?? ""}" cluster "${this.#cluster?.info.name ?? ""}": ${status} ${
        flag ?? "-"
      } ${details}` +
      (this.#cb.streamInfo.upstreamHost ? ` (host ${this.#cb.streamInfo.upstreamHost})` : "") +
      (this.#cb.streamInfo.upstreamTransportFailureReason
        ? `: ${this.#cb.streamInfo.upstreamTransportFailureReason}`
        : "")
    );
    this.#clearTimers();
    this.#releaseRetry();
    if (this.#upstream && !this.#upstream.done) this.#upstream.abandon();
    this.#cb.sendLocalReply(status, body, {
      ...(flag !== undefined ? { responseFlag: flag } : {}),
      details,
      ...(headers !== undefined ? { headers } : {}),
      ...(grpcStatus !== undefined ? { grpcStatus } : {}),
    });
  }

  #setDownstreamPaused(paused: boolean): void {
    if (paused === this.#downstreamPaused || this.#destroyed) return;
    this.#downstreamPaused = paused;
    this.#cb.readDisable(paused);
  }

  /** Router-side watermark: pause the upstream while the downstream can't keep up. */
  onAboveWriteBufferHighWatermark(): void {
    this.#upstreamPaused = true;
    this.#upstream?.info?.connection.readDisable(true);
  }

  onBelowWriteBufferLowWatermark(): void {
    if (!this.#upstreamPaused) return;
    this.#upstreamPaused = false;
    this.#upstream?.info?.connection.readDisable(false);
  }

  /** Time since the router saw the request (for logs). */
  get elapsedMs(): number {
    return approxNow() - this.#start;
  }
}

/** The router filter factory (terminal). */
export const routerFilterFactory: HttpFilterFactory<RouterConfig> = {
  name: "envoy.filters.http.router",
  configTypes: [ROUTER_TYPE],
  terminal: true,
  parseConfig: parseRouterConfig,
  createFactory(config, context) {
    // Nothing per config beyond the parsed config and the context: the router's state is per stream.
    return (callbacks) => {
      const f = new RouterFilter(config, callbacks, context);
      callbacks.addDownstreamWatermarkCallbacks(f);
      return f;
    };
  },
  create(config, callbacks, context) {
    return routerFilterFactory.createFactory!(config, context)(callbacks);
  },
};
