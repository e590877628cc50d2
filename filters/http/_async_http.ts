/**
 * A small HTTP client on a cluster's connection pools (Envoy's `AsyncClient`), for filters that call a side
 * service (ext_authz): one request with a buffered body, the whole response buffered, a timeout. It uses the
 * cluster's load balancer and pools, so the side service gets the cluster's connection reuse, circuit breakers and
 * stats, and no `fetch()` runs on the data path.
 *
 * @module
 */
import type { StreamDecoder, StreamEncoder, StreamResetReason } from "../../lib/api/codec.ts";
import type { HeaderMap } from "../../lib/api/headers.ts";
import type { IoEngine } from "../../lib/api/network.ts";
import type { Cancellable, Cluster, PoolCallbacks, PoolFailureReason, PoolReadyInfo } from "../../lib/api/upstream.ts";
import { schedule, type WheelTimer } from "../../lib/network/timer_wheel.ts";
import { concatBytes } from "./_bytes.ts";

/** A buffered response. */
export interface AsyncHttpResponse {
  /** `:status`. */
  readonly status: number;
  /** The response headers (with `:status`). */
  readonly headers: HeaderMap;
  /** The whole body. */
  readonly body: Uint8Array;
}

/** Why an async request failed. */
export type AsyncHttpFailure = "timeout" | "no-host" | "connect-failure" | "reset" | "too-large";

/** The most response body kept (a side service's answer is small; more is a failure). */
const MAX_RESPONSE_BYTES = 1 << 20;

/** One request in flight; `cancel` drops it without calling back. */
export class AsyncHttpRequest implements StreamDecoder, PoolCallbacks {
  readonly #headers: HeaderMap;
  readonly #body: Uint8Array | undefined;
  readonly #done: (r: AsyncHttpResponse | AsyncHttpFailure) => void;
  #handle: Cancellable | undefined;
  #encoder: StreamEncoder | undefined;
  #timer: WheelTimer | undefined;
  #finished = false;
  #responseComplete = false;
  #status = 0;
  #respHeaders: HeaderMap | undefined;
  #chunks: Uint8Array[] = [];
  #bytes = 0;

  /**
   * Sends `headers` (with `:method`, `:path`, `:authority`, `:scheme`) and `body` to a host of `cluster`; `done`
   * is called once, asynchronously or from within this constructor when no host is available. `ioEngine`: that of
   * the downstream connection the request is made for, whose event loop the side service's connections then share.
   */
  constructor(
    cluster: Cluster,
    request: { headers: HeaderMap; body?: Uint8Array; timeoutMs: number; ioEngine?: IoEngine | undefined },
    done: (r: AsyncHttpResponse | AsyncHttpFailure) => void,
  ) {
    this.#headers = request.headers;
    this.#body = request.body !== undefined && request.body.length > 0 ? request.body : undefined;
    this.#done = done;
    if (request.timeoutMs > 0) this.#timer = schedule(request.timeoutMs, () => this.#fail("timeout"));
    const host = cluster.chooseHost({ downstreamHeaders: request.headers });
    if (!host) {
      cluster.info.stats.upstream_cx_none_healthy.inc();
      this.#fail("no-host");
      return;
    }
    const h = cluster.httpPool(host, undefined, request.ioEngine).newStream(this, this);
    if (h && !this.#finished && !this.#encoder) this.#handle = h;
  }

  /** Drops the request (the stream that made it went away); `done` is not called. */
  cancel(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#cleanup();
  }

  #cleanup(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#handle?.cancel();
    this.#handle = undefined;
    if (this.#encoder && !this.#responseComplete) this.#encoder.resetStream("local-reset");
  }

  #fail(why: AsyncHttpFailure): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#cleanup();
    this.#done(why);
  }

  #complete(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#responseComplete = true;
    this.#timer?.cancel();
    const body = this.#chunks.length === 1 ? this.#chunks[0]! : concatBytes(this.#chunks, this.#bytes);
    this.#done({ status: this.#status, headers: this.#respHeaders!, body });
  }

  onPoolReady(encoder: StreamEncoder, _info: PoolReadyInfo): void {
    this.#handle = undefined;
    if (this.#finished) {
      encoder.resetStream("local-reset");
      return;
    }
    this.#encoder = encoder;
    encoder.encodeHeaders(this.#headers, this.#body === undefined);
    if (this.#body !== undefined) encoder.encodeData(this.#body, true);
  }

  onPoolFailure(_reason: PoolFailureReason, _detail: string): void {
    this.#handle = undefined;
    this.#fail("connect-failure");
  }

  decode1xxHeaders(_headers: HeaderMap): void {}

  decodeHeaders(headers: HeaderMap, endStream: boolean): void {
    if (this.#finished) return;
    this.#status = Number(headers.get(":status"));
    this.#respHeaders = headers;
    if (endStream) this.#complete();
  }

  decodeData(data: Uint8Array, endStream: boolean): void {
    if (this.#finished) return;
    this.#bytes += data.length;
    if (this.#bytes > MAX_RESPONSE_BYTES) {
      this.#fail("too-large");
      return;
    }
    if (data.length > 0) this.#chunks.push(data.slice());
    if (endStream) this.#complete();
  }

  decodeTrailers(_trailers: HeaderMap): void {
    this.#complete();
  }

  onReset(_reason: StreamResetReason, _detail?: string): void {
    this.#fail("reset");
  }
}
