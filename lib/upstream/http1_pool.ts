/**
 * {@link Http1ConnPool}: the per-host ping-pong connection pool (one request at a time per connection), after
 * Envoy's `ConnPoolImplBase` / HTTP/1 pool.
 *
 * - `newStream` takes the most recently used idle connection (LIFO, as Envoy) and calls `onPoolReady`
 *   synchronously; otherwise it queues the stream and opens connections while the queue is longer than the
 *   connections already on their way (connecting, or finishing a response).
 * - A stream is complete when the request was fully encoded and the response fully decoded; the connection then
 *   serves the next queued stream, goes idle, or closes (`codec.reusable` false, `max_requests_per_connection`
 *   reached, the upstream half-closed, or the pool drains). A response that completes before its request (an early
 *   error, a declined upgrade or CONNECT) completes the stream at once when the codec will not reuse the connection
 *   (the HTTP/1 codec never does then): the connection closes, and the rest of the request is dropped.
 * - Circuit breakers are cluster-wide ({@link ClusterResources}): `max_pending_requests` → `overflow` failure and
 *   `upstream_rq_pending_overflow`; `max_connections` → the stream waits for a busy connection and
 *   `upstream_cx_overflow` counts (a pool with no connection at all still opens one, as Envoy does);
 *   `max_requests` → `overflow` failure.
 * - `Host.activeRequests` is maintained here: incremented just before `onPoolReady`, decremented when the stream
 *   completes or is reset. Callers (the router) must not touch it.
 * - Idle connections close after the cluster's idle timeout. One timer per connection is kept lazily: it is armed
 *   when the connection first goes idle and, when it fires, re-arms itself for the remaining time if the connection
 *   was used meanwhile, so a busy connection does not create and clear a timer per request.
 *
 * @module
 */
import type { ClientConnectionCodec, CodecFactory, CodecOptions, StreamDecoder, StreamEncoder } from "../api/codec.ts";
import type { StreamResetReason } from "../api/codec.ts";
import type { HeaderMap } from "../api/headers.ts";
import type { NetConnection } from "../api/network.ts";
import type {
  Cancellable,
  ClusterInfo,
  ClusterStats,
  ConnPool,
  Host,
  PoolCallbacks,
  PoolFailureReason,
  PoolReadyInfo,
} from "../api/upstream.ts";
import type { Counter } from "../api/stats.ts";
import { connectHost, type Connector, errorText } from "./connect.ts";
import type { HostCounters } from "./host.ts";
import { connectFailure, failPendingStreams, hostCounters, PendingStream } from "./_pool_common.ts";
import { type ClusterResources, ResourceLimit } from "./resources.ts";
import { approxNow } from "../network/clock.ts";

/** Upstream write-buffer watermark events, for the router's flow control. */
export interface UpstreamWatermarkCallbacks {
  /** The upstream connection's write queue passed its high watermark: stop reading downstream. */
  onAboveWriteBufferHighWatermark(): void;
  /** It drained below the low watermark: resume. */
  onBelowWriteBufferLowWatermark(): void;
}

/**
 * The encoder handed to `onPoolReady`. Besides {@link StreamEncoder} it lets the router subscribe to the upstream
 * connection's write watermarks.
 */
export interface PoolStreamEncoder extends StreamEncoder {
  setWatermarkCallbacks(callbacks: UpstreamWatermarkCallbacks | undefined): void;
}

/** Options of a {@link Http1ConnPool}. */
export interface Http1ConnPoolOptions {
  /** The HTTP/1 codec (`codecs/http1`). Must be a ping-pong codec. */
  codec: CodecFactory;
  codecOptions?: CodecOptions;
  /** Cluster-wide circuit breakers; default: per-pool limits from `ClusterInfo`. */
  resources?: ClusterResources;
  /** Opens connections; default {@link connectHost}. */
  connect?: Connector;
  /** Monotonic clock in ms; default `performance.now`. */
  now?: () => number;
}

type ClientState = "idle" | "busy" | "closed";

/** A pooled connection and its codec. */
class ActiveClient {
  readonly conn: NetConnection;
  readonly codec: ClientConnectionCodec;
  state: ClientState = "busy";
  requests = 0;
  idleSince = 0;
  timer: ReturnType<typeof setTimeout> | undefined;
  stream: PoolStream | undefined;
  /** Closed by us (vs by the peer). */
  localClose = false;
  /** The upstream sent FIN: never reuse. */
  remoteEof = false;
  dispatching = false;
  /** The stream completed inside `dispatch`; release once `dispatch` returns. */
  releaseAfterDispatch = false;
  watermarkBlocked = false;

  constructor(conn: NetConnection, codec: ClientConnectionCodec) {
    this.conn = conn;
    this.codec = codec;
  }

  close(): void {
    if (this.state === "closed") return;
    this.localClose = true;
    this.conn.close();
  }
}

/** One request/response on a pooled connection: wraps the router's decoder and the codec's encoder. */
class PoolStream implements StreamDecoder, PoolStreamEncoder {
  readonly #pool: Http1ConnPool;
  readonly #client: ActiveClient;
  readonly #inner: StreamDecoder;
  #encoder!: StreamEncoder;
  #requestDone = false;
  #responseDone = false;
  ended = false;
  #errored = false;
  watermarks: UpstreamWatermarkCallbacks | undefined;

  constructor(pool: Http1ConnPool, client: ActiveClient, inner: StreamDecoder) {
    this.#pool = pool;
    this.#client = client;
    this.#inner = inner;
  }

  setEncoder(e: StreamEncoder): void {
    this.#encoder = e;
  }

  // --- decoder side (codec → router) ---

  decode1xxHeaders(headers: HeaderMap): void {
    this.#inner.decode1xxHeaders?.(headers);
  }

  decodeHeaders(headers: HeaderMap, endStream: boolean): void {
    const status = headers.get(":status");
    if (status !== undefined && status.charCodeAt(0) === 53 /* '5' */) this.#errored = true;
    if (endStream) this.#responseDone = true;
    this.#inner.decodeHeaders(headers, endStream);
    if (endStream) this.#maybeComplete();
  }

  decodeData(data: Uint8Array, endStream: boolean): void {
    if (endStream) this.#responseDone = true;
    this.#inner.decodeData(data, endStream);
    if (endStream) this.#maybeComplete();
  }

  decodeTrailers(trailers: HeaderMap): void {
    this.#responseDone = true;
    this.#inner.decodeTrailers(trailers);
    this.#maybeComplete();
  }

  /** The codec reset the stream (protocol error, or EOF before the response completed). */
  onReset(reason: StreamResetReason, detail?: string): void {
    if (this.ended) return;
    this.ended = true;
    if (this.#client.remoteEof) this.#pool._countDestroyWithActive(false);
    this.#pool._onStreamEnd(this.#client, this, "rx-reset");
    this.#inner.onReset?.(reason, detail);
    this.#client.close();
  }

  /** The connection closed under an unfinished stream. */
  onConnectionClosed(): void {
    if (this.ended) return;
    this.ended = true;
    this.#pool._onStreamEnd(this.#client, this, "rx-reset");
    this.#inner.onReset?.("connection-termination", "upstream connection closed");
  }

  // --- encoder side (router → codec) ---

  get headersSent(): boolean {
    return this.#encoder.headersSent;
  }

  encodeHeaders(headers: HeaderMap, endStream: boolean): void {
    if (this.ended) return;
    this.#encoder.encodeHeaders(headers, endStream);
    if (endStream) this.#requestEnded();
  }

  encodeData(data: Uint8Array, endStream: boolean): void {
    if (this.ended) return;
    this.#encoder.encodeData(data, endStream);
    if (endStream) this.#requestEnded();
  }

  encodeTrailers(trailers: HeaderMap): void {
    if (this.ended) return;
    this.#encoder.encodeTrailers(trailers);
    this.#requestEnded();
  }

  resetStream(reason: StreamResetReason): void {
    if (this.ended) return;
    this.ended = true;
    this.#pool._onStreamEnd(this.#client, this, "tx-reset");
    try {
      this.#encoder.resetStream(reason);
    } catch {
      // The connection is closed below either way.
    }
    this.#client.close();
  }

  setWatermarkCallbacks(callbacks: UpstreamWatermarkCallbacks | undefined): void {
    this.watermarks = callbacks;
    if (callbacks && this.#client.watermarkBlocked) callbacks.onAboveWriteBufferHighWatermark();
  }

  get errored(): boolean {
    return this.#errored;
  }

  #requestEnded(): void {
    this.#requestDone = true;
    this.#maybeComplete();
  }

  #maybeComplete(): void {
    if (!this.#responseDone || this.ended) return;
    // A response complete before its request (an early 4xx, a declined upgrade or CONNECT, whose request never
    // ends) leaves a connection the codec will not reuse: the stream is over, and the release closes it. Waiting for
    // the rest of the request would keep it busy, possibly for ever.
    if (!this.#requestDone && this.#client.codec.reusable) return;
    this.ended = true;
    this.#pool._onStreamEnd(this.#client, this, "complete");
  }
}

/** The HTTP/1 ping-pong pool of one host; see the module doc. */
export class Http1ConnPool implements ConnPool {
  readonly host: Host;
  readonly #info: ClusterInfo;
  readonly #stats: ClusterStats;
  readonly #codec: CodecFactory;
  readonly #codecOptions: CodecOptions | undefined;
  readonly #res: ClusterResources;
  readonly #connect: Connector;
  readonly #now: () => number;
  readonly #hc: HostCounters;
  /** Idle connections, most recently used last (LIFO). */
  #idle: ActiveClient[] = [];
  #busy = new Set<ActiveClient>();
  #connecting = 0;
  /** Connections whose stream completed inside `dispatch` and will be released when it returns. */
  #releasing = 0;
  #pending: PendingStream[] = [];
  #draining = false;
  #closed = false;
  #onDrained: (() => void)[] = [];
  #destroyActive: Counter;
  #destroyLocalActive: Counter;
  #destroyRemoteActive: Counter;

  constructor(host: Host, options: Http1ConnPoolOptions) {
    if (options.codec.poolMode !== "ping-pong") {
      throw new Error(`cluster "${host.cluster.name}": codec "${options.codec.name}" is not a ping-pong codec`);
    }
    this.host = host;
    this.#info = host.cluster;
    this.#stats = host.cluster.stats;
    this.#codec = options.codec;
    this.#codecOptions = options.codecOptions;
    this.#res = options.resources ?? {
      connections: new ResourceLimit(this.#info.maxConnections),
      pendingRequests: new ResourceLimit(this.#info.maxPendingRequests),
      requests: new ResourceLimit(Number.MAX_SAFE_INTEGER),
      retries: new ResourceLimit(3),
    };
    this.#connect = options.connect ?? connectHost;
    this.#now = options.now ?? approxNow;
    this.#hc = hostCounters(host);
    const scope = host.cluster.scope;
    this.#destroyActive = scope.counter("upstream_cx_destroy_with_active_rq");
    this.#destroyLocalActive = scope.counter("upstream_cx_destroy_local_with_active_rq");
    this.#destroyRemoteActive = scope.counter("upstream_cx_destroy_remote_with_active_rq");
  }

  /** Open or opening connections. */
  get activeConnections(): number {
    return this.#idle.length + this.#busy.size + this.#connecting;
  }

  get idleConnections(): number {
    return this.#idle.length;
  }

  get pendingStreams(): number {
    return this.#pending.length;
  }

  /** Connections carrying a stream now. */
  get busyConnections(): number {
    return this.#busy.size;
  }

  /** True once `drain` or `close` was called. */
  get draining(): boolean {
    return this.#draining;
  }

  newStream(decoder: StreamDecoder, callbacks: PoolCallbacks): Cancellable | undefined {
    if (this.#draining) {
      callbacks.onPoolFailure(
        "closed",
        `cluster "${this.#info.name}": pool for ${this.host.key} is draining`,
        this.host,
      );
      return undefined;
    }
    // max_requests is checked up front, as Envoy's pool does, so an overloaded cluster answers at once instead of
    // queueing (and again when a queued stream gets its connection).
    if (!this.#res.requests.canCreate()) {
      this.#stats.upstream_rq_pending_overflow.inc();
      callbacks.onPoolFailure(
        "overflow",
        `cluster "${this.#info.name}": too many requests (max_requests ${this.#res.requests.max})`,
        this.host,
      );
      return undefined;
    }
    const idle = this.#idle.pop();
    if (idle !== undefined) {
      this.#attach(idle, decoder, callbacks);
      return undefined;
    }
    if (!this.#res.pendingRequests.canCreate()) {
      this.#stats.upstream_rq_pending_overflow.inc();
      callbacks.onPoolFailure(
        "overflow",
        `cluster "${this.#info.name}": too many pending requests (max_pending_requests ${this.#res.pendingRequests.max})`,
        this.host,
      );
      return undefined;
    }
    const p = new PendingStream(this, decoder, callbacks);
    this.#pending.push(p);
    this.#res.pendingRequests.inc();
    this.#stats.upstream_rq_pending_total.inc();
    this.#stats.upstream_rq_pending_active.inc();
    this.#tryCreateConnections();
    return p;
  }

  drain(onDrained?: () => void): void {
    this.#draining = true;
    if (onDrained) this.#onDrained.push(onDrained);
    for (const c of this.#idle.slice()) c.close();
    this.#checkDrained();
  }

  /** Closes everything now: pending streams fail with `closed`, active streams are reset. */
  close(): void {
    this.#draining = true;
    this.#closed = true;
    this.#failPending("closed", `cluster "${this.#info.name}": pool for ${this.host.key} is closed`);
    for (const c of this.#idle.slice()) c.close();
    for (const c of [...this.#busy]) c.close();
    this.#checkDrained();
  }

  /** @internal PendingStream.cancel */
  _cancel(p: PendingStream): void {
    const i = this.#pending.indexOf(p);
    if (i < 0) return;
    this.#pending.splice(i, 1);
    p.done = true;
    this.#res.pendingRequests.dec();
    this.#stats.upstream_rq_pending_active.dec();
    this.#checkDrained();
  }

  #attach(client: ActiveClient, decoder: StreamDecoder, callbacks: PoolCallbacks): void {
    if (!this.#res.requests.canCreate()) {
      this.#stats.upstream_rq_pending_overflow.inc();
      this.#toIdle(client);
      callbacks.onPoolFailure(
        "overflow",
        `cluster "${this.#info.name}": too many requests (max_requests ${this.#res.requests.max})`,
        this.host,
      );
      return;
    }
    client.state = "busy";
    this.#busy.add(client);
    const s = new PoolStream(this, client, decoder);
    client.stream = s;
    try {
      s.setEncoder(client.codec.newStream(s));
    } catch (e) {
      // The codec refused a stream on this connection: it is unusable.
      s.ended = true;
      client.close();
      callbacks.onPoolFailure("closed", `cluster "${this.#info.name}": ${errorText(e)}`, this.host);
      return;
    }
    client.requests++;
    this.#res.requests.inc();
    this.#stats.upstream_rq_total.inc();
    this.#stats.upstream_rq_active.inc();
    this.host.activeRequests++;
    this.#hc.rqTotal++;
    const info: PoolReadyInfo = { host: this.host, reused: client.requests > 1, connection: client.conn };
    callbacks.onPoolReady(s, info);
  }

  /** @internal A stream ended: complete, reset by the router (tx) or by the upstream/connection (rx). */
  _onStreamEnd(client: ActiveClient, s: PoolStream, how: "complete" | "tx-reset" | "rx-reset"): void {
    this.#res.requests.dec();
    this.#stats.upstream_rq_active.dec();
    if (this.host.activeRequests > 0) this.host.activeRequests--;
    if (how === "complete") {
      this.#stats.upstream_rq_completed.inc();
      if (s.errored) this.#hc.rqError++;
      else this.#hc.rqSuccess++;
    } else {
      this.#hc.rqError++;
      if (how === "tx-reset") this.#stats.upstream_rq_tx_reset.inc();
      else this.#stats.upstream_rq_rx_reset.inc();
      return; // the caller closes the connection
    }
    if (client.dispatching) {
      client.releaseAfterDispatch = true;
      this.#releasing++;
    } else {
      this.#release(client);
    }
  }

  #release(client: ActiveClient): void {
    if (client.releaseAfterDispatch) {
      client.releaseAfterDispatch = false;
      this.#releasing--;
    }
    client.stream = undefined;
    if (client.state === "closed") return;
    const max = this.#info.maxRequestsPerConnection;
    if (client.remoteEof || !client.codec.reusable) {
      client.close();
      return;
    }
    if (max > 0 && client.requests >= max) {
      this.#stats.upstream_cx_max_requests.inc();
      client.close();
      return;
    }
    this.#busy.delete(client);
    this.#onClientReady(client);
  }

  /** A connection is free: serve the oldest pending stream, or go idle (or close when draining). */
  #onClientReady(client: ActiveClient): void {
    const p = this.#pending.shift();
    if (p !== undefined) {
      p.done = true;
      this.#res.pendingRequests.dec();
      this.#stats.upstream_rq_pending_active.dec();
      this.#attach(client, p.decoder, p.callbacks);
      return;
    }
    if (this.#draining) {
      client.state = "idle";
      client.close();
      return;
    }
    this.#toIdle(client);
  }

  #toIdle(client: ActiveClient): void {
    this.#busy.delete(client);
    client.state = "idle";
    client.idleSince = this.#now();
    this.#idle.push(client);
    const timeout = this.#info.idleTimeoutMs;
    if (timeout > 0 && client.timer === undefined) this.#armIdleTimer(client, timeout);
  }

  #armIdleTimer(client: ActiveClient, ms: number): void {
    const t = setTimeout(() => this.#onIdleTimer(client), Math.max(1, ms));
    Deno.unrefTimer(t);
    client.timer = t;
  }

  #onIdleTimer(client: ActiveClient): void {
    client.timer = undefined;
    if (client.state !== "idle") return;
    const timeout = this.#info.idleTimeoutMs;
    const left = timeout - (this.#now() - client.idleSince);
    if (left > 1) {
      this.#armIdleTimer(client, left);
      return;
    }
    this.#stats.upstream_cx_idle_timeout.inc();
    client.close();
  }

  #tryCreateConnections(): void {
    if (this.#closed || this.#draining) return;
    while (this.#pending.length > this.#connecting + this.#releasing) {
      if (!this.#res.connections.canCreate()) {
        this.#stats.upstream_cx_overflow.inc();
        // At the limit because of other hosts' connections: a pool with none still opens one, so its queued
        // streams are not stranded (Envoy does the same).
        if (this.activeConnections > 0) return;
      }
      this.#createConnection();
    }
  }

  #createConnection(): void {
    this.#connecting++;
    this.#res.connections.inc();
    this.#stats.upstream_cx_total.inc();
    this.#stats.upstream_cx_http1_total.inc();
    this.#stats.upstream_cx_active.inc();
    this.#hc.cxTotal++;
    this.#hc.cxActive++;
    this.#connect(this.host, {
      timeoutMs: this.#info.connectTimeoutMs,
      highWatermark: this.#info.perConnectionBufferLimitBytes,
    }).then(
      (conn) => this.#onConnected(conn),
      (e) => this.#onConnectFailed(e),
    );
  }

  #onConnected(conn: NetConnection): void {
    this.#connecting--;
    const stats = this.#stats;
    const write = (d: Uint8Array) => {
      stats.upstream_cx_tx_bytes_total.inc(d.length);
      conn.write(d);
    };
    const codec = this.#codec.createClient(write, this.#codecOptions, {
      onGoAway: () => stats.upstream_cx_close_notify.inc(),
    });
    const client = new ActiveClient(conn, codec);
    conn.setHandler({
      onData: (d) => {
        stats.upstream_cx_rx_bytes_total.inc(d.length);
        client.dispatching = true;
        try {
          codec.dispatch(d);
        } catch (e) {
          client.dispatching = false;
          const s = client.stream;
          if (s !== undefined && !s.ended) s.onReset("protocol-error", errorText(e));
          client.close();
          return;
        }
        client.dispatching = false;
        if (client.releaseAfterDispatch) this.#release(client);
      },
      onEof: () => {
        client.remoteEof = true;
        client.dispatching = true;
        try {
          codec.onEof();
        } catch {
          // an incomplete response: reset below by the close
        }
        client.dispatching = false;
        if (client.releaseAfterDispatch) this.#release(client);
        if (client.state !== "closed") conn.close({ reason: "remote close" });
      },
      onClose: () => this.#onClientClosed(client),
      onWriteBlocked: () => {
        client.watermarkBlocked = true;
        client.stream?.watermarks?.onAboveWriteBufferHighWatermark();
      },
      onWriteDrained: () => {
        client.watermarkBlocked = false;
        client.stream?.watermarks?.onBelowWriteBufferLowWatermark();
      },
    });
    this.#busy.add(client);
    conn.start();
    if (this.#closed) {
      client.close();
      return;
    }
    this.#onClientReady(client);
  }

  #onConnectFailed(e: unknown): void {
    this.#connecting--;
    const { reason, detail } = connectFailure(e, {
      res: this.#res,
      stats: this.#stats,
      hc: this.#hc,
      name: this.#info.name,
      host: this.host,
    });
    const n = this.#pending.length;
    this.#failPending(reason, detail);
    if (n > 0) this.#stats.upstream_rq_pending_failure_eject.inc(n);
    this.#checkDrained();
  }

  #failPending(reason: PoolFailureReason, detail: string): void {
    const pending = this.#pending;
    this.#pending = [];
    failPendingStreams(pending, { res: this.#res, stats: this.#stats, host: this.host }, reason, detail);
  }

  #onClientClosed(client: ActiveClient): void {
    const wasIdle = client.state === "idle";
    client.state = "closed";
    if (client.timer !== undefined) {
      clearTimeout(client.timer);
      client.timer = undefined;
    }
    if (client.releaseAfterDispatch) {
      client.releaseAfterDispatch = false;
      this.#releasing--;
    }
    if (wasIdle) {
      const i = this.#idle.indexOf(client);
      if (i >= 0) this.#idle.splice(i, 1);
    }
    this.#busy.delete(client);
    this.#res.connections.dec();
    const stats = this.#stats;
    stats.upstream_cx_active.dec();
    stats.upstream_cx_destroy.inc();
    // A close we made because the upstream half-closed counts as remote, as it is in Envoy.
    const local = client.localClose && !client.remoteEof;
    if (local) stats.upstream_cx_destroy_local.inc();
    else stats.upstream_cx_destroy_remote.inc();
    this.#hc.cxActive--;
    const s = client.stream;
    client.stream = undefined;
    if (s !== undefined && !s.ended) {
      this._countDestroyWithActive(local);
      s.onConnectionClosed();
    }
    this.#tryCreateConnections();
    this.#checkDrained();
  }

  /** @internal A connection went away under an unfinished stream. */
  _countDestroyWithActive(local: boolean): void {
    this.#destroyActive.inc();
    if (local) this.#destroyLocalActive.inc();
    else this.#destroyRemoteActive.inc();
  }

  #checkDrained(): void {
    if (!this.#draining) return;
    if (this.#idle.length > 0 || this.#busy.size > 0 || this.#connecting > 0) return;
    if (this.#pending.length > 0) {
      this.#failPending("closed", `cluster "${this.#info.name}": pool for ${this.host.key} is draining`);
    }
    const cbs = this.#onDrained;
    this.#onDrained = [];
    for (const cb of cbs) cb();
  }
}
