/**
 * One shadow request of the router (a route's `request_mirror_policies`, Envoy's `shadowRequest`): a copy of the
 * request, `-shadow` appended to its `:authority`, streamed to the shadow cluster as the primary request arrives,
 * fire-and-forget. Its response is read and dropped; its outcome is counted on the shadow cluster's stats
 * (`upstream_rq_<code class>`, `upstream_rq_timeout`, `upstream_rq_rx_reset`; the pool counts connections and
 * `upstream_cx_connect_fail`), never reported to the primary stream. Nothing it does can delay or change the
 * primary response: it holds no flow control on the downstream, and a slow shadow is cut off at the route timeout.
 *
 * @module
 */
import type { StreamDecoder, StreamEncoder, StreamResetReason } from "../../lib/api/codec.ts";
import type { HeaderMap } from "../../lib/api/headers.ts";
import type { IoEngine } from "../../lib/api/network.ts";
import type { Cancellable, Cluster, PoolCallbacks, PoolFailureReason, PoolReadyInfo } from "../../lib/api/upstream.ts";
import { getLogger } from "../../lib/observe/log.ts";
import { schedule, type WheelTimer } from "../../lib/network/timer_wheel.ts";

const log = getLogger("router");

/** Bytes of request body a shadow keeps while it waits for a connection; past it the shadow is abandoned. */
const SHADOW_PENDING_LIMIT = 1 << 20;

/** A shadow request in flight. */
export class ShadowRequest implements StreamDecoder, PoolCallbacks {
  readonly #cluster: Cluster;
  readonly #headers: HeaderMap;
  #encoder: StreamEncoder | undefined;
  #handle: Cancellable | undefined;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #trailers: HeaderMap | undefined;
  #requestEnded: boolean;
  #done = false;
  #timer: WheelTimer | undefined;
  readonly #timeoutMs: number;

  /**
   * Starts the shadow: picks a host of `cluster` and asks its pool for a stream. `headers` is the shadow's own copy
   * (already with its `:authority`); `endStream` when the request has no body. `timeoutMs` (the route's timeout,
   * 0 = none) bounds the shadow from the end of the request.
   */
  constructor(
    cluster: Cluster,
    headers: HeaderMap,
    opts: { endStream: boolean; timeoutMs: number; protocol: string | undefined; ioEngine: IoEngine | undefined },
  ) {
    this.#cluster = cluster;
    this.#headers = headers;
    this.#requestEnded = opts.endStream;
    this.#timeoutMs = opts.timeoutMs;
    const host = cluster.chooseHost({ downstreamHeaders: headers });
    if (!host) {
      cluster.info.stats.upstream_cx_none_healthy.inc();
      this.#done = true;
      return;
    }
    if (opts.endStream) this.#armTimeout();
    const handle = cluster.httpPool(host, opts.protocol, opts.ioEngine).newStream(this, this);
    if (handle && !this.#done && !this.#encoder) this.#handle = handle;
  }

  /** More request body (copied while waiting for the connection). */
  data(data: Uint8Array, endStream: boolean): void {
    if (this.#done) return;
    if (endStream) this.#onRequestEnd();
    if (this.#encoder) {
      this.#encoder.encodeData(data, endStream);
      return;
    }
    this.#pendingBytes += data.length;
    if (this.#pendingBytes > SHADOW_PENDING_LIMIT) {
      log.debug(() => `shadow to cluster "${this.#cluster.info.name}": body over ${SHADOW_PENDING_LIMIT} bytes`);
      this.#cluster.info.scope.counter("retry_or_shadow_abandoned").inc();
      this.abandon();
      return;
    }
    this.#pending.push(data.slice());
  }

  /** The request's trailers (they end it). */
  trailers(trailers: HeaderMap): void {
    if (this.#done) return;
    this.#onRequestEnd();
    if (this.#encoder) this.#encoder.encodeTrailers(trailers);
    else this.#trailers = trailers;
  }

  /** True once the whole request was handed to the shadow (it may then outlive the primary stream). */
  get requestEnded(): boolean {
    return this.#requestEnded;
  }

  /** Cancels the shadow (the primary stream ended before the request did, or its body is too big). */
  abandon(): void {
    if (this.#done) return;
    this.#finish();
    this.#handle?.cancel();
    this.#handle = undefined;
    this.#encoder?.resetStream("local-reset");
  }

  #onRequestEnd(): void {
    if (this.#requestEnded) return;
    this.#requestEnded = true;
    this.#armTimeout();
  }

  #armTimeout(): void {
    if (this.#timeoutMs > 0) {
      this.#timer = schedule(this.#timeoutMs, () => {
        this.#timer = undefined;
        if (this.#done) return;
        this.#cluster.info.stats.upstream_rq_timeout.inc();
        this.abandon();
      });
    }
  }

  #finish(): void {
    this.#done = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#pending = [];
  }

  // PoolCallbacks
  onPoolReady(encoder: StreamEncoder, _info: PoolReadyInfo): void {
    this.#handle = undefined;
    if (this.#done) {
      encoder.resetStream("local-reset");
      return;
    }
    this.#encoder = encoder;
    const body = this.#pending;
    this.#pending = [];
    const trailers = this.#trailers;
    encoder.encodeHeaders(this.#headers, this.#requestEnded && body.length === 0 && trailers === undefined);
    for (let i = 0; i < body.length; i++) {
      encoder.encodeData(body[i]!, i === body.length - 1 && this.#requestEnded && trailers === undefined);
    }
    if (trailers !== undefined) encoder.encodeTrailers(trailers);
  }

  onPoolFailure(reason: PoolFailureReason, detail: string): void {
    this.#handle = undefined;
    if (this.#done) return;
    log.debug(() => `shadow to cluster "${this.#cluster.info.name}": ${reason}: ${detail}`);
    this.#finish();
  }

  // StreamDecoder: the shadow's response, counted and dropped.
  decode1xxHeaders(_headers: HeaderMap): void {}

  decodeHeaders(headers: HeaderMap, endStream: boolean): void {
    if (this.#done) return;
    const status = Number(headers.get(":status"));
    const st = this.#cluster.info.stats;
    if (status < 200) st.upstream_rq_1xx.inc();
    else if (status < 300) st.upstream_rq_2xx.inc();
    else if (status < 400) st.upstream_rq_3xx.inc();
    else if (status < 500) st.upstream_rq_4xx.inc();
    else st.upstream_rq_5xx.inc();
    if (endStream) this.#finish();
  }

  decodeData(_data: Uint8Array, endStream: boolean): void {
    if (endStream && !this.#done) this.#finish();
  }

  decodeTrailers(_trailers: HeaderMap): void {
    if (!this.#done) this.#finish();
  }

  onReset(reason: StreamResetReason, _detail?: string): void {
    if (this.#done) return;
    log.debug(() => `shadow to cluster "${this.#cluster.info.name}": reset: ${reason}`);
    this.#cluster.info.stats.upstream_rq_rx_reset.inc();
    this.#finish();
  }
}
