/**
 * {@link MixedConnPool}: the per-host pool of a cluster with `auto_config`, after Envoy's `HttpConnPoolImplMixed`.
 * The upstream protocol is what the host picks by TLS ALPN (Ferry offers `h2`, `http/1.1`): `h2` → HTTP/2,
 * `http/1.1` or nothing → HTTP/1.1.
 *
 * - Until the protocol is known, streams wait here and one connection (the probe) is opened. Its negotiated
 *   protocol (`NetConnection.tls.alpn`) becomes the pool's; the waiting streams then go to an {@link Http1ConnPool}
 *   (ping-pong) or a {@link MuxConnPool} (HTTP/2), whose connector hands out the probe first, so the probe carries
 *   the first stream(s) instead of being wasted. Only one probe is in flight: 200 streams arriving at once wait for
 *   it and then fill HTTP/2 connections at the codec's concurrency (two), not 200 connections.
 * - Once known, streams go straight to the inner pool of that protocol (an HTTP/2 stream is placed on an open
 *   connection with room at once). Every later connection the inner pools open is checked: one whose ALPN differs
 *   (the host was reconfigured) is closed and reported as a connect failure of that pool, and the pool's protocol
 *   switches, so the streams that follow use the other inner pool.
 * - A failed probe fails the waiting streams as the other pools do (`connect-failure` / `timeout`, counted in
 *   `upstream_cx_connect_fail` and `upstream_rq_pending_failure_eject`); the next stream probes again.
 * - Circuit breakers, stats and host feedback are the inner pools'. While waiting for the probe, streams count in
 *   `max_pending_requests` and `upstream_rq_pending_active` here, and in `upstream_rq_pending_total` once (where
 *   they next wait, or here if the probe fails); the probe counts in `max_connections` while it connects.
 *
 * @module
 */
import type { CodecFactory, CodecOptions, StreamDecoder } from "../api/codec.ts";
import type { NetConnection } from "../api/network.ts";
import type { Cancellable, ClusterInfo, ClusterStats, ConnPool, Host, PoolCallbacks } from "../api/upstream.ts";
import { connectHost, type ConnectOptions, type Connector, errorText, isConnectTimeout } from "./connect.ts";
import { type HostCounters, HostImpl } from "./host.ts";
import { Http1ConnPool } from "./http1_pool.ts";
import { MuxConnPool } from "./mux_pool.ts";
import { type ClusterResources, ResourceLimit } from "./resources.ts";

/** The protocol a host speaks on a pool's connections, as ALPN chose it. */
export type MixedProtocol = "http1" | "http2";

/** The ALPN protocols a cluster with `auto_config` offers, most preferred first (Envoy's order). */
export const AUTO_ALPN_PROTOCOLS: readonly string[] = ["h2", "http/1.1"];

/** The protocol of a connected upstream connection: HTTP/2 when ALPN chose `h2`, else HTTP/1.1 (Envoy's rule). */
export function negotiatedProtocol(conn: NetConnection): MixedProtocol {
  return conn.tls?.alpn === "h2" ? "http2" : "http1";
}

/** Options of a {@link MixedConnPool}. */
export interface MixedConnPoolOptions {
  /** The HTTP/1.1 codec (ping-pong), for connections where ALPN chose `http/1.1` or nothing. */
  readonly http1Codec: CodecFactory;
  /** The HTTP/2 codec (multiplex-stream-id), for connections where ALPN chose `h2`. */
  readonly http2Codec: CodecFactory;
  readonly codecOptions?: CodecOptions | undefined;
  /** Cluster-wide circuit breakers; default: per-pool limits from `ClusterInfo`. */
  readonly resources?: ClusterResources | undefined;
  /** Opens connections, TLS offering {@link AUTO_ALPN_PROTOCOLS}; default {@link connectHost}. */
  readonly connect?: Connector | undefined;
  /** Monotonic clock in ms for the inner pools; default theirs. */
  readonly now?: (() => number) | undefined;
}

const noCounters = (): HostCounters => ({
  cxTotal: 0,
  cxActive: 0,
  cxConnectFail: 0,
  rqTotal: 0,
  rqError: 0,
  rqSuccess: 0,
  rqTimeout: 0,
});

/** A stream waiting for the probe; after it, a handle on the inner pool's own wait. */
class WaitingStream implements Cancellable {
  readonly decoder: StreamDecoder;
  readonly callbacks: PoolCallbacks;
  readonly #pool: MixedConnPool;
  /** Handed to an inner pool (or failed): cancelling goes to `inner`. */
  done = false;
  inner: Cancellable | undefined;

  constructor(pool: MixedConnPool, decoder: StreamDecoder, callbacks: PoolCallbacks) {
    this.#pool = pool;
    this.decoder = decoder;
    this.callbacks = callbacks;
  }

  cancel(): void {
    if (this.done) {
      const inner = this.inner;
      this.inner = undefined;
      inner?.cancel();
      return;
    }
    this.#pool._cancel(this);
  }
}

/** The ALPN-selected HTTP/1.1-or-HTTP/2 pool of one host; see the module doc. */
export class MixedConnPool implements ConnPool {
  readonly host: Host;
  readonly #info: ClusterInfo;
  readonly #stats: ClusterStats;
  readonly #options: MixedConnPoolOptions;
  readonly #res: ClusterResources;
  readonly #connect: Connector;
  readonly #hc: HostCounters;
  #protocol: MixedProtocol | undefined;
  #probing = false;
  /** The probe, connected, until its inner pool's connector takes it. */
  #handoff: { readonly protocol: MixedProtocol; readonly conn: NetConnection } | undefined;
  #waiting: WaitingStream[] = [];
  #h1: Http1ConnPool | undefined;
  #h2: MuxConnPool | undefined;
  #draining = false;
  #closed = false;
  #onDrained: (() => void)[] = [];

  constructor(host: Host, options: MixedConnPoolOptions) {
    if (options.http1Codec.poolMode !== "ping-pong" || options.http2Codec.poolMode !== "multiplex-stream-id") {
      throw new Error(
        `cluster "${host.cluster.name}": auto_config needs a ping-pong and a multiplex-stream-id codec ` +
          `(got "${options.http1Codec.name}", "${options.http2Codec.name}")`,
      );
    }
    this.host = host;
    this.#info = host.cluster;
    this.#stats = host.cluster.stats;
    this.#options = options;
    this.#res = options.resources ?? {
      connections: new ResourceLimit(this.#info.maxConnections),
      pendingRequests: new ResourceLimit(this.#info.maxPendingRequests),
      requests: new ResourceLimit(Number.MAX_SAFE_INTEGER),
      retries: new ResourceLimit(3),
    };
    this.#connect = options.connect ?? connectHost;
    this.#hc = host instanceof HostImpl ? host.counters : noCounters();
  }

  /** The protocol the host chose on the last connection checked, or undefined before the first one. */
  get protocol(): MixedProtocol | undefined {
    return this.#protocol;
  }

  /** Open or opening connections (the probe included). */
  get activeConnections(): number {
    return (this.#probing || this.#handoff ? 1 : 0) + (this.#h1?.activeConnections ?? 0) +
      (this.#h2?.activeConnections ?? 0);
  }

  get idleConnections(): number {
    return (this.#h1?.idleConnections ?? 0) + (this.#h2?.idleConnections ?? 0);
  }

  get pendingStreams(): number {
    return this.#waiting.length + (this.#h1?.pendingStreams ?? 0) + (this.#h2?.pendingStreams ?? 0);
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
    if (this.#protocol !== undefined) return this.#inner(this.#protocol).newStream(decoder, callbacks);
    if (!this.#res.requests.canCreate()) {
      this.#stats.upstream_rq_pending_overflow.inc();
      callbacks.onPoolFailure(
        "overflow",
        `cluster "${this.#info.name}": too many requests (max_requests ${this.#res.requests.max})`,
        this.host,
      );
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
    const w = new WaitingStream(this, decoder, callbacks);
    this.#waiting.push(w);
    this.#res.pendingRequests.inc();
    this.#stats.upstream_rq_pending_active.inc();
    this.#probe();
    return w;
  }

  /** Stop taking streams; the inner pools drain; `onDrained` once no connection is left. */
  drain(onDrained?: () => void): void {
    this.#draining = true;
    if (onDrained) this.#onDrained.push(onDrained);
    this.#drainInner();
    this.#checkDrained();
  }

  /** Closes everything now: waiting streams fail with `closed`, streams in progress are reset. */
  close(): void {
    this.#draining = true;
    this.#closed = true;
    this.#failWaiting("closed", `cluster "${this.#info.name}": pool for ${this.host.key} is closed`, false);
    this.#dropHandoff();
    this.#h1?.close();
    this.#h2?.close();
    this.#checkDrained();
  }

  /** @internal WaitingStream.cancel */
  _cancel(w: WaitingStream): void {
    const i = this.#waiting.indexOf(w);
    if (i < 0) return;
    this.#waiting.splice(i, 1);
    w.done = true;
    this.#res.pendingRequests.dec();
    this.#stats.upstream_rq_pending_active.dec();
    this.#checkDrained();
  }

  /** The inner pool of `protocol`, built on first use with a connector that checks each connection's ALPN. */
  #inner(protocol: MixedProtocol): Http1ConnPool | MuxConnPool {
    const o = this.#options;
    const common = {
      ...(o.codecOptions !== undefined ? { codecOptions: o.codecOptions } : {}),
      resources: this.#res,
      connect: (host: Host, options: ConnectOptions) => this.#innerConnect(protocol, host, options),
      ...(o.now !== undefined ? { now: o.now } : {}),
    };
    let pool: Http1ConnPool | MuxConnPool;
    if (protocol === "http1") pool = this.#h1 ??= new Http1ConnPool(this.host, { ...common, codec: o.http1Codec });
    else pool = this.#h2 ??= new MuxConnPool(this.host, { ...common, codec: o.http2Codec });
    return pool;
  }

  /** The inner pools' connector: the probe first, then new connections of the expected protocol. */
  async #innerConnect(protocol: MixedProtocol, host: Host, options: ConnectOptions): Promise<NetConnection> {
    const h = this.#handoff;
    if (h !== undefined && h.protocol === protocol) {
      this.#handoff = undefined;
      return h.conn;
    }
    const conn = await this.#connect(host, options);
    const got = negotiatedProtocol(conn);
    if (got === protocol) return conn;
    // The host changed its mind: the streams that follow go to the other pool; this connect fails.
    this.#protocol = got;
    conn.close({ reason: "unexpected ALPN protocol" });
    throw new Error(
      `${host.key} negotiated ${describeAlpn(conn)} where earlier connections negotiated ${
        protocol === "http2" ? '"h2"' : "HTTP/1.1"
      }`,
    );
  }

  /** Opens the probe unless one is on its way. */
  #probe(): void {
    if (this.#probing || this.#closed) return;
    this.#probing = true;
    // The probe is a connection of this pool while it connects; its inner pool counts it from the handoff on.
    if (!this.#res.connections.canCreate()) this.#stats.upstream_cx_overflow.inc();
    this.#res.connections.inc();
    this.#stats.upstream_cx_active.inc();
    this.#hc.cxActive++;
    this.#connect(this.host, {
      timeoutMs: this.#info.connectTimeoutMs,
      highWatermark: this.#info.perConnectionBufferLimitBytes,
    }).then(
      (conn) => this.#onProbeConnected(conn),
      (e) => this.#onProbeFailed(e),
    );
  }

  #uncountProbe(): void {
    this.#probing = false;
    this.#res.connections.dec();
    this.#stats.upstream_cx_active.dec();
    this.#hc.cxActive--;
  }

  #onProbeConnected(conn: NetConnection): void {
    this.#uncountProbe();
    if (this.#closed) {
      conn.close({ reason: "pool closed" });
      this.#checkDrained();
      return;
    }
    const protocol = negotiatedProtocol(conn);
    this.#protocol = protocol;
    this.#handoff = { protocol, conn };
    const waiting = this.#waiting;
    this.#waiting = [];
    const pool = waiting.length > 0 ? this.#inner(protocol) : undefined;
    for (const w of waiting) {
      w.done = true;
      this.#res.pendingRequests.dec();
      this.#stats.upstream_rq_pending_active.dec();
    }
    // Handed over in arrival order; the first one waiting there makes the inner pool connect, taking the probe.
    for (const w of waiting) w.inner = pool!.newStream(w.decoder, w.callbacks);
    // Every waiting stream was cancelled meanwhile: nobody takes the probe.
    this.#dropHandoff();
    // Drained meanwhile: the streams that waited were handed over first, as a draining pool serves its queue.
    if (this.#draining) this.#drainInner();
    this.#checkDrained();
  }

  #onProbeFailed(e: unknown): void {
    this.#uncountProbe();
    this.#stats.upstream_cx_total.inc();
    this.#stats.upstream_cx_connect_fail.inc();
    this.#hc.cxTotal++;
    this.#hc.cxConnectFail++;
    const timeout = isConnectTimeout(e);
    if (timeout) this.#stats.upstream_cx_connect_timeout.inc();
    this.#failWaiting(
      timeout ? "timeout" : "connect-failure",
      `cluster "${this.#info.name}": connect to ${this.host.key} failed: ${errorText(e)}`,
      true,
    );
    this.#checkDrained();
  }

  #failWaiting(reason: "timeout" | "connect-failure" | "closed", detail: string, eject: boolean): void {
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const w of waiting) {
      w.done = true;
      this.#res.pendingRequests.dec();
      this.#stats.upstream_rq_pending_active.dec();
    }
    if (waiting.length > 0) {
      this.#stats.upstream_rq_pending_total.inc(waiting.length);
      if (eject) this.#stats.upstream_rq_pending_failure_eject.inc(waiting.length);
    }
    for (const w of waiting) w.callbacks.onPoolFailure(reason, detail, this.host);
  }

  #dropHandoff(): void {
    const h = this.#handoff;
    this.#handoff = undefined;
    if (h === undefined) return;
    // Never handed to an inner pool, so never counted there: it counts here as opened and closed.
    this.#stats.upstream_cx_total.inc();
    this.#stats.upstream_cx_destroy.inc();
    this.#stats.upstream_cx_destroy_local.inc();
    this.#hc.cxTotal++;
    h.conn.close({ reason: "pool drained" });
  }

  #drainInner(): void {
    for (const p of [this.#h1, this.#h2]) if (p !== undefined && !p.draining) p.drain(() => this.#checkDrained());
  }

  #checkDrained(): void {
    if (!this.#draining) return;
    if (this.#probing || this.#waiting.length > 0) return;
    if (this.#handoff !== undefined) return;
    if ((this.#h1?.activeConnections ?? 0) > 0 || (this.#h2?.activeConnections ?? 0) > 0) return;
    const cbs = this.#onDrained;
    this.#onDrained = [];
    for (const cb of cbs) cb();
  }
}

function describeAlpn(conn: NetConnection): string {
  const alpn = conn.tls?.alpn;
  return alpn === undefined ? "no ALPN protocol (HTTP/1.1)" : JSON.stringify(alpn);
}
