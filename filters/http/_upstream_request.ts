/**
 * One attempt of the router at an upstream (Envoy's `UpstreamRequest`): it waits for a pooled connection, carries
 * the request's encoder and decodes the response, reporting every event to its router through
 * {@link UpstreamRequestCallbacks}. Retries and the per-try timers' decisions stay with the router; the attempt
 * holds its own state (what was received, its timers, its pool handle) so that an abandoned attempt can be told
 * apart from the current one.
 *
 * @module
 */
import type { StreamDecoder, StreamEncoder, StreamResetReason } from "../../lib/api/codec.ts";
import type { HeaderMap } from "../../lib/api/headers.ts";
import type { Cancellable, Host, PoolCallbacks, PoolFailureReason, PoolReadyInfo } from "../../lib/api/upstream.ts";
import { approxNow } from "../../lib/network/clock.ts";
import type { WheelTimer } from "../../lib/network/timer_wheel.ts";

/** What an {@link UpstreamRequest} tells its router (the router filter implements it). */
export interface UpstreamRequestCallbacks {
  onPoolReady(req: UpstreamRequest): void;
  onPoolFailure(req: UpstreamRequest, reason: PoolFailureReason, detail: string, host: Host): void;
  onUpstreamHeaders(req: UpstreamRequest, headers: HeaderMap, endStream: boolean): void;
  onUpstreamData(req: UpstreamRequest, data: Uint8Array, endStream: boolean): void;
  onUpstreamTrailers(req: UpstreamRequest, trailers: HeaderMap): void;
  onUpstreamReset(req: UpstreamRequest, reason: StreamResetReason, detail: string): void;
}

/** One attempt at the upstream: a pool stream and its response decoder. */
export class UpstreamRequest implements StreamDecoder, PoolCallbacks {
  readonly router: UpstreamRequestCallbacks;
  readonly host: Host;
  encoder: StreamEncoder | undefined;
  info: PoolReadyInfo | undefined;
  handle: Cancellable | undefined;
  /** Request body received while waiting for a connection and not kept for replay: sent when the pool is ready. */
  pending: Uint8Array[] | undefined;
  /** Any response byte (headers) received. */
  gotResponse = false;
  responseComplete = false;
  requestEncodedEnd = false;
  done = false;
  perTryTimer: WheelTimer | undefined;
  /** `per_try_idle_timeout`: armed once the request is sent and a connection is ready; see the router's `#touch`. */
  idleTimer: WheelTimer | undefined;
  /** Last time a response byte arrived (or the idle timer started), for the per-try idle timeout. */
  lastRx = 0;
  readonly startMono = approxNow();

  constructor(router: UpstreamRequestCallbacks, host: Host) {
    this.router = router;
    this.host = host;
  }

  // PoolCallbacks
  onPoolReady(encoder: StreamEncoder, info: PoolReadyInfo): void {
    this.handle = undefined;
    if (this.done) {
      encoder.resetStream("local-reset");
      return;
    }
    this.encoder = encoder;
    this.info = info;
    this.router.onPoolReady(this);
  }

  onPoolFailure(reason: PoolFailureReason, detail: string, host: Host): void {
    this.handle = undefined;
    if (this.done) return;
    this.router.onPoolFailure(this, reason, detail, host);
  }

  // StreamDecoder (the upstream response)
  decode1xxHeaders(_headers: HeaderMap): void {
    // The connection manager already answered `Expect: 100-continue` downstream.
  }

  decodeHeaders(headers: HeaderMap, endStream: boolean): void {
    if (this.done) return;
    if (this.idleTimer !== undefined) this.lastRx = approxNow();
    this.gotResponse = true;
    if (endStream) this.responseComplete = true;
    this.router.onUpstreamHeaders(this, headers, endStream);
  }

  decodeData(data: Uint8Array, endStream: boolean): void {
    if (this.done) return;
    if (this.idleTimer !== undefined) this.lastRx = approxNow();
    if (endStream) this.responseComplete = true;
    this.router.onUpstreamData(this, data, endStream);
  }

  decodeTrailers(trailers: HeaderMap): void {
    if (this.done) return;
    this.responseComplete = true;
    this.router.onUpstreamTrailers(this, trailers);
  }

  onReset(reason: StreamResetReason, detail?: string): void {
    if (this.done) return;
    this.router.onUpstreamReset(this, reason, detail ?? reason);
  }

  /** Abandons this attempt: cancel a pending pool request or reset the upstream stream. */
  abandon(): void {
    if (this.done) return;
    this.done = true;
    this.perTryTimer?.cancel();
    this.idleTimer?.cancel();
    this.handle?.cancel();
    this.handle = undefined;
    if (this.encoder && !this.responseComplete) this.encoder.resetStream("local-reset");
  }

  /** The attempt is over (its response is complete, or the router moved on): stop its timers. */
  finish(): void {
    this.done = true;
    this.perTryTimer?.cancel();
    this.idleTimer?.cancel();
  }
}
