/**
 * {@link MuxConnPool}: the per-host pool of a `multiplex-stream-id` codec (HTTP/2), after Envoy's
 * `MultiplexedActiveClientBase` / HTTP/2 `ActiveClient` and MOSN's multiplex pool. Many streams share a connection,
 * up to what its codec allows at the moment (`ClientConnectionCodec.maxConcurrentStreams`).
 *
 * - Placement fills connections in the order they were opened: a stream goes to the oldest connection that accepts
 *   streams and has room, so traffic concentrates on few connections (as Envoy) instead of one per stream. When
 *   none has room, the stream waits and connections are opened while the waiting streams exceed the capacity of
 *   the connections on their way (each counted at the last capacity a codec of this pool reported, or the
 *   configured HTTP/2 `maxConcurrentStreams`, or 100).
 * - A codec's capacity may change (an HTTP/2 SETTINGS frame): `onStreamCapacityChanged` places waiting streams on
 *   the room that opened, or opens connections for them when it shrank. Before the peer's settings arrive, the
 *   capacity is what the codec reports (HTTP/2: 100), capped, once another connection of the pool has heard its
 *   peer, by the capacity that one reported: a host that allows 10 streams is not sent 100 on each new connection
 *   only to refuse 90 of them. The very first connection has nothing to go by and trusts its codec.
 * - A connection stops taking streams (drains) on the upstream's GOAWAY (`onGoAway`, counted once as
 *   `upstream_cx_close_notify`), after `max_requests_per_connection` streams (`upstream_cx_max_requests`), after
 *   the upstream half-closed, when the codec refuses a new stream, or when the pool drains; it closes once its last
 *   stream ends. Streams the codec resets as `remote-refused-stream` (above the GOAWAY's last stream id, or
 *   REFUSED_STREAM) reach the caller with that reason; the router re-sends them.
 * - Circuit breakers, counters and host feedback are the {@link Http1ConnPool}'s: cluster-wide `max_connections`
 *   (a pool with no connection still opens one), `max_pending_requests` and `max_requests` ({@link ClusterResources});
 *   `upstream_cx_*` / `upstream_rq_*` in {@link ClusterStats}; `Host.activeRequests` and the host's counters. The
 *   cluster's stats have no `upstream_cx_http2_total`, so it is created in the cluster's scope, as Envoy names it;
 *   the codec's `http2.*` events are counted under `cluster.<name>.http2.*` unless the codec options bring their own.
 * - A codec reset of one stream (rx) or a caller's reset (tx) ends that stream only; the connection stays.
 * - Idle connections (no stream) close after the cluster's idle timeout, with the lazy timer of the HTTP/1 pool.
 *
 * What the caller gets in `onPoolReady` is a {@link PoolStreamEncoder}, as from the HTTP/1 pool, and a
 * `PoolReadyInfo.connection` that is a view of the stream, not the socket: its `readDisable` pauses this stream
 * only (the codec's `Stream.readDisable` — for HTTP/2, withholding the stream's WINDOW_UPDATEs — or, for a codec
 * without per-stream flow control, the pool holding back that stream's decoded parts), so one slow downstream does
 * not stall the streams sharing the connection. `setWatermarkCallbacks` reports the stream's own send-buffer
 * watermarks (`Stream.addCallbacks`) and the connection's: the socket's write watermarks go to the codec when it
 * has `onAboveWriteBufferHighWatermark`/`onBelowWriteBufferLowWatermark` (which tells its streams), and otherwise
 * straight to every stream of the connection.
 *
 * Codec callbacks may arrive inside `dispatch`; the pool does its own follow-up (placing waiting streams, closing a
 * drained connection) once `dispatch` returns, so a codec is never re-entered from its own callbacks by the pool.
 * A caller that starts a stream from a decoder callback (the router re-sending a refused stream) may get a
 * connection that is dispatching; codecs of this mode must accept `newStream` there.
 *
 * @module
 */
import type {
  ClientCodecCallbacks,
  ClientConnectionCodec,
  CodecFactory,
  CodecOptions,
  Http2CounterName,
  Http2Stats,
  Stream,
  StreamCallbacks,
  StreamDecoder,
  StreamEncoder,
  StreamResetReason,
} from "../api/codec.ts";
import type { HeaderMap } from "../api/headers.ts";
import type { ConnectionHandler, IoEngine, NetConnection } from "../api/network.ts";
import type { Counter, Gauge, StatsScope } from "../api/stats.ts";
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
import { approxNow } from "../network/clock.ts";
import { connectHost, type Connector, errorText } from "./connect.ts";
import type { HostCounters } from "./host.ts";
import { connectFailure, failPendingStreams, hostCounters, PendingStream } from "./_pool_common.ts";
import type { PoolStreamEncoder, UpstreamWatermarkCallbacks } from "./http1_pool.ts";
import { type ClusterResources, ResourceLimit } from "./resources.ts";

/** Options of a {@link MuxConnPool}. */
export interface MuxConnPoolOptions {
  /** A codec whose `poolMode` is `multiplex-stream-id` (HTTP/2). */
  codec: CodecFactory;
  codecOptions?: CodecOptions;
  /** Cluster-wide circuit breakers; default: per-pool limits from `ClusterInfo`. */
  resources?: ClusterResources;
  /** Opens connections; default {@link connectHost}. */
  connect?: Connector;
  /** Monotonic clock in ms; default the network clock. */
  now?: () => number;
}

/** Streams assumed per connection still connecting when no codec of the pool has reported a capacity yet. */
const DEFAULT_CAPACITY = 100;

/** `cluster.<name>.http2.*`, created on first use (Envoy's per-cluster HTTP/2 codec stats). */
class ScopeHttp2Stats implements Http2Stats {
  readonly #scope: StatsScope;
  readonly #counters = new Map<Http2CounterName, Counter>();
  #active: Gauge | undefined;

  constructor(scope: StatsScope) {
    this.#scope = scope;
  }

  inc(name: Http2CounterName): void {
    let c = this.#counters.get(name);
    if (c === undefined) {
      c = this.#scope.counter(`http2.${name}`);
      this.#counters.set(name, c);
    }
    c.inc();
  }

  streamsActive(delta: number): void {
    this.#active ??= this.#scope.gauge("http2.streams_active");
    this.#active.inc(delta);
  }
}

/**
 * The socket write-watermark hooks a client codec may have (the server codec's `onAbove/BelowWriteBufferWatermark`;
 * `ClientConnectionCodec` does not declare them, so they are looked up with `in`).
 */
interface CodecWatermarkHooks {
  readonly above: (() => void) | undefined;
  readonly below: (() => void) | undefined;
}

function watermarkHooks(codec: ClientConnectionCodec): CodecWatermarkHooks {
  const c = codec as ClientConnectionCodec & {
    onAboveWriteBufferHighWatermark?: () => void;
    onBelowWriteBufferLowWatermark?: () => void;
  };
  const above = "onAboveWriteBufferHighWatermark" in c && typeof c.onAboveWriteBufferHighWatermark === "function"
    ? () => c.onAboveWriteBufferHighWatermark!()
    : undefined;
  const below = "onBelowWriteBufferLowWatermark" in c && typeof c.onBelowWriteBufferLowWatermark === "function"
    ? () => c.onBelowWriteBufferLowWatermark!()
    : undefined;
  // Both or neither: a codec told of the high watermark only would leave its streams paused.
  return above !== undefined && below !== undefined ? { above, below } : { above: undefined, below: undefined };
}

type ClientState = "ready" | "closing" | "closed";

/** A pooled connection, its codec and its streams. */
class MuxClient {
  readonly conn: NetConnection;
  codec!: ClientConnectionCodec;
  state: ClientState = "ready";
  readonly streams = new Set<MuxStream>();
  /** Streams ever placed here (for `max_requests_per_connection`). */
  placed = 0;
  /** Why it takes no new streams (GOAWAY, max requests, half-closed, refused stream); undefined: it does. */
  drainReason: string | undefined;
  idleSince = 0;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** Closed by us (vs by the peer). */
  localClose = false;
  /** The upstream sent FIN. */
  remoteEof = false;
  /** Streams were in progress when the upstream sent FIN. */
  hadActiveAtEof = false;
  dispatching = false;
  /** Something changed inside `dispatch` that the pool acts on when it returns. */
  dirty = false;
  /** The codec asked for a close inside `dispatch`. */
  closeAfterDispatch = false;
  writeBlocked = false;
  /** The codec takes the socket's write watermarks itself (and tells its streams). */
  codecWatermarks = false;
  /** `Stream.bufferLimit` of streams whose codec has no per-stream buffer. */
  readonly bufferLimit: number;

  constructor(conn: NetConnection, bufferLimit: number) {
    this.conn = conn;
    this.bufferLimit = bufferLimit;
  }

  /** The peer has sent something (for HTTP/2, its SETTINGS come first). */
  heard = false;
  /** Until the peer is heard: at most this many streams (what the host's other connections were allowed). */
  capUntilHeard: number | undefined;

  /** Room for more streams now (0 while draining or closing). */
  get room(): number {
    if (this.state !== "ready" || this.drainReason !== undefined) return 0;
    let max = this.codec.maxConcurrentStreams ?? 1;
    if (this.capUntilHeard !== undefined && this.capUntilHeard < max) max = this.capUntilHeard;
    return Math.max(0, max - this.streams.size);
  }

  close(flush: boolean, reason: string): void {
    if (this.state === "closed") return;
    this.state = "closing";
    this.localClose = true;
    this.conn.close({ flush, reason });
  }
}

/** A decoded part held back while a stream without codec flow control is read-disabled. */
type HeldPart =
  | { kind: "headers"; headers: HeaderMap; end: boolean }
  | { kind: "data"; data: Uint8Array; end: boolean }
  | { kind: "trailers"; trailers: HeaderMap };

/**
 * One stream on a pooled connection: the router's decoder wrapped for the codec, the codec's encoder wrapped for
 * the router, and the per-stream flow control between them. It is its own {@link Stream} (the encoder's `stream`),
 * over the codec's where the codec has one.
 */
class MuxStream implements StreamDecoder, PoolStreamEncoder, StreamCallbacks, Stream {
  readonly #pool: MuxConnPool;
  readonly #client: MuxClient;
  readonly #inner: StreamDecoder;
  #encoder!: StreamEncoder;
  #stream: Stream | undefined;
  #requestDone = false;
  #responseDone = false;
  ended = false;
  errored = false;
  #watermarks: UpstreamWatermarkCallbacks | undefined;
  /** Sources (the stream's buffer, the connection) above their high watermark now. */
  #above = 0;
  /** Nesting of `readDisable` when the codec has no per-stream flow control. */
  #readDisabled = 0;
  #held: HeldPart[] | undefined;
  #view: StreamConnectionView | undefined;
  #callbacks: StreamCallbacks[] = [];

  constructor(pool: MuxConnPool, client: MuxClient, inner: StreamDecoder) {
    this.#pool = pool;
    this.#client = client;
    this.#inner = inner;
  }

  setEncoder(e: StreamEncoder): void {
    this.#encoder = e;
    this.#stream = e.stream;
    this.#stream?.addCallbacks(this);
  }

  get view(): NetConnection {
    return this.#view ??= new StreamConnectionView(this.#client.conn, this);
  }

  // --- decoder side (codec → caller) ---

  decode1xxHeaders(headers: HeaderMap): void {
    if (this.ended) return;
    this.#inner.decode1xxHeaders?.(headers);
  }

  decodeHeaders(headers: HeaderMap, endStream: boolean): void {
    if (this.ended) return;
    const status = headers.get(":status");
    if (status !== undefined && status.charCodeAt(0) === 53 /* '5' */) this.errored = true;
    if (this.#held !== undefined) return void this.#held.push({ kind: "headers", headers, end: endStream });
    if (endStream) this.#responseDone = true;
    this.#inner.decodeHeaders(headers, endStream);
    if (endStream) this.#maybeComplete();
  }

  decodeData(data: Uint8Array, endStream: boolean): void {
    if (this.ended) return;
    if (this.#held !== undefined) return void this.#held.push({ kind: "data", data: data.slice(), end: endStream });
    if (endStream) this.#responseDone = true;
    this.#inner.decodeData(data, endStream);
    if (endStream) this.#maybeComplete();
  }

  decodeTrailers(trailers: HeaderMap): void {
    if (this.ended) return;
    if (this.#held !== undefined) return void this.#held.push({ kind: "trailers", trailers });
    this.#responseDone = true;
    this.#inner.decodeTrailers(trailers);
    this.#maybeComplete();
  }

  /** The codec reset the stream (RST_STREAM, refused, GOAWAY, protocol error, connection gone). */
  onReset(reason: StreamResetReason, detail?: string): void {
    if (this.ended) return;
    this.#end("rx-reset");
    this.#inner.onReset?.(reason, detail);
    this.#notifyReset(reason, detail);
  }

  /** The connection closed under the stream and the codec did not reset it. */
  onConnectionClosed(): void {
    this.onReset("connection-termination", "upstream connection closed");
  }

  // --- StreamCallbacks (the codec's per-stream transport events) ---

  onResetStream(): void {
    // Resets reach the decoder's onReset, which the codec calls too.
  }

  onAboveWriteBufferHighWatermark(): void {
    if (this.#above++ !== 0 || this.ended) return;
    this.#watermarks?.onAboveWriteBufferHighWatermark();
    for (const cb of [...this.#callbacks]) cb.onAboveWriteBufferHighWatermark();
  }

  onBelowWriteBufferLowWatermark(): void {
    if (this.#above === 0) return;
    if (--this.#above !== 0 || this.ended) return;
    this.#watermarks?.onBelowWriteBufferLowWatermark();
    for (const cb of [...this.#callbacks]) cb.onBelowWriteBufferLowWatermark();
  }

  // --- Stream (this stream's transport side, for the caller) ---

  get stream(): Stream {
    return this;
  }

  get protocol(): string {
    return this.#stream?.protocol ?? this.#client.codec.protocol;
  }

  get bufferLimit(): number {
    return this.#stream?.bufferLimit ?? this.#client.bufferLimit;
  }

  addCallbacks(callbacks: StreamCallbacks): void {
    if (!this.ended) this.#callbacks.push(callbacks);
  }

  removeCallbacks(callbacks: StreamCallbacks): void {
    const i = this.#callbacks.indexOf(callbacks);
    if (i >= 0) this.#callbacks.splice(i, 1);
  }

  #notifyReset(reason: StreamResetReason, detail: string | undefined): void {
    const cbs = this.#callbacks;
    this.#callbacks = [];
    for (const cb of cbs) cb.onResetStream?.(reason, detail);
  }

  // --- encoder side (caller → codec) ---

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

  /** The caller abandons the stream: the codec resets it (RST_STREAM); the connection stays. */
  resetStream(reason: StreamResetReason): void {
    if (this.ended) return;
    this.#end("tx-reset");
    try {
      this.#encoder.resetStream(reason);
    } catch {
      // The codec has nothing left to reset (its connection is going).
    }
    this.#notifyReset(reason, undefined);
  }

  setWatermarkCallbacks(callbacks: UpstreamWatermarkCallbacks | undefined): void {
    this.#watermarks = callbacks;
    if (callbacks && this.#above > 0) callbacks.onAboveWriteBufferHighWatermark();
  }

  /** Pauses (true) or resumes (false) this stream's response; nests. */
  readDisable(disable: boolean): void {
    if (this.ended) return;
    if (this.#stream !== undefined) {
      this.#stream.readDisable(disable);
      return;
    }
    if (disable) {
      if (this.#readDisabled++ === 0) this.#held = [];
      return;
    }
    if (this.#readDisabled === 0 || --this.#readDisabled > 0) return;
    const held = this.#held!;
    this.#held = undefined;
    for (let i = 0; i < held.length && !this.ended && this.#held === undefined; i++) {
      const p = held[i]!;
      if (p.kind === "headers") this.decodeHeaders(p.headers, p.end);
      else if (p.kind === "data") this.decodeData(p.data, p.end);
      else this.decodeTrailers(p.trailers);
      // Paused again by the part just delivered: keep the rest, in order, ahead of what arrives later.
      const again = this.#held as HeldPart[] | undefined;
      if (again !== undefined) again.unshift(...held.slice(i + 1));
    }
  }

  #requestEnded(): void {
    this.#requestDone = true;
    this.#maybeComplete();
  }

  #maybeComplete(): void {
    if (!this.#responseDone || this.ended) return;
    if (this.#requestDone) {
      this.#end("complete");
      return;
    }
    // The response is complete before the request (an early error, a declined upgrade): the stream is over for the
    // caller, so it gives its room back, and the rest of the request is abandoned (HTTP/2: RST_STREAM), as a peer
    // that answered early expects.
    this.#end("complete");
    try {
      this.#encoder.resetStream("local-reset");
    } catch {
      // nothing left to reset
    }
  }

  #end(how: "complete" | "tx-reset" | "rx-reset"): void {
    this.ended = true;
    this.#held = undefined;
    this.#stream?.removeCallbacks(this);
    if (how === "complete") this.#callbacks = [];
    this.#pool._onStreamEnd(this.#client, this, how);
  }
}

/**
 * `PoolReadyInfo.connection` of a multiplexed stream: the socket's facts, with `readDisable` and `close` acting on
 * the stream. The socket itself belongs to the pool and its codec, so writing to it or taking its events throws.
 */
class StreamConnectionView implements NetConnection {
  readonly #conn: NetConnection;
  readonly #stream: MuxStream;

  constructor(conn: NetConnection, stream: MuxStream) {
    this.#conn = conn;
    this.#stream = stream;
  }

  get id(): number {
    return this.#conn.id;
  }
  get remoteAddress(): string {
    return this.#conn.remoteAddress;
  }
  get remotePort(): number {
    return this.#conn.remotePort;
  }
  get localAddress(): string {
    return this.#conn.localAddress;
  }
  get localPort(): number {
    return this.#conn.localPort;
  }
  get secure(): boolean {
    return this.#conn.secure;
  }
  get ioEngine(): IoEngine | undefined {
    return this.#conn.ioEngine;
  }
  get tls(): { version?: string; cipher?: string; sni?: string; alpn?: string } {
    return this.#conn.tls ?? {};
  }
  get bufferedAmount(): number {
    return this.#conn.bufferedAmount;
  }
  get closed(): boolean {
    return this.#conn.closed;
  }
  get bytesRead(): number {
    return this.#conn.bytesRead;
  }
  get bytesWritten(): number {
    return this.#conn.bytesWritten;
  }
  get done(): Promise<void> {
    return this.#conn.done;
  }

  setHandler(_handler: ConnectionHandler): void {
    throw new Error("multiplexed upstream connection: its events belong to the pool's codec");
  }
  start(): void {
    throw new Error("multiplexed upstream connection: started by its pool");
  }
  write(_data: Uint8Array): void {
    throw new Error("multiplexed upstream connection: write through the stream's encoder");
  }
  closeWrite(): void {
    throw new Error("multiplexed upstream connection: end the stream through its encoder");
  }

  /** Resets this stream only; the connection goes on carrying the others. */
  close(): void {
    this.#stream.resetStream("local-reset");
  }

  /** Pauses or resumes this stream only. */
  readDisable(disable: boolean): void {
    this.#stream.readDisable(disable);
  }
}

/** The multiplexing pool of one host and codec; see the module doc. */
export class MuxConnPool implements ConnPool {
  readonly host: Host;
  readonly #info: ClusterInfo;
  readonly #stats: ClusterStats;
  readonly #codec: CodecFactory;
  readonly #codecOptions: CodecOptions;
  readonly #res: ClusterResources;
  readonly #connect: Connector;
  readonly #now: () => number;
  readonly #hc: HostCounters;
  /** Open connections (not connecting, not yet closed), oldest first: placement fills them in this order. */
  #clients: MuxClient[] = [];
  #connecting = 0;
  /** Streams a connection still connecting is expected to take (see the module doc). */
  #expectedRoom: number;
  /** The capacity the last connection whose peer was heard reported: new connections use no more until heard. */
  #learned: number | undefined;
  #pending: PendingStream[] = [];
  #placing = false;
  #draining = false;
  #closed = false;
  #onDrained: (() => void)[] = [];
  readonly #cxHttp2Total: Counter;
  readonly #destroyActive: Counter;
  readonly #destroyLocalActive: Counter;
  readonly #destroyRemoteActive: Counter;

  constructor(host: Host, options: MuxConnPoolOptions) {
    if (options.codec.poolMode !== "multiplex-stream-id") {
      throw new Error(
        `cluster "${host.cluster.name}": codec "${options.codec.name}" is not a multiplex-stream-id codec`,
      );
    }
    this.host = host;
    this.#info = host.cluster;
    this.#stats = host.cluster.stats;
    this.#codec = options.codec;
    const scope = host.cluster.scope;
    const co = options.codecOptions ?? {};
    this.#codecOptions = co.http2Stats !== undefined ? co : { ...co, http2Stats: new ScopeHttp2Stats(scope) };
    this.#expectedRoom = co.http2?.maxConcurrentStreams ?? DEFAULT_CAPACITY;
    this.#res = options.resources ?? {
      connections: new ResourceLimit(this.#info.maxConnections),
      pendingRequests: new ResourceLimit(this.#info.maxPendingRequests),
      requests: new ResourceLimit(Number.MAX_SAFE_INTEGER),
      retries: new ResourceLimit(3),
    };
    this.#connect = options.connect ?? connectHost;
    this.#now = options.now ?? approxNow;
    this.#hc = hostCounters(host);
    this.#cxHttp2Total = scope.counter("upstream_cx_http2_total");
    this.#destroyActive = scope.counter("upstream_cx_destroy_with_active_rq");
    this.#destroyLocalActive = scope.counter("upstream_cx_destroy_local_with_active_rq");
    this.#destroyRemoteActive = scope.counter("upstream_cx_destroy_remote_with_active_rq");
  }

  /** Open or opening connections. */
  get activeConnections(): number {
    return this.#clients.length + this.#connecting;
  }

  /** Open connections carrying no stream that would take one. */
  get idleConnections(): number {
    let n = 0;
    for (const c of this.#clients) if (c.streams.size === 0 && c.room > 0) n++;
    return n;
  }

  /** Connections carrying at least one stream. */
  get busyConnections(): number {
    let n = 0;
    for (const c of this.#clients) if (c.streams.size > 0) n++;
    return n;
  }

  /** Streams in progress on this pool's connections. */
  get activeStreams(): number {
    let n = 0;
    for (const c of this.#clients) n += c.streams.size;
    return n;
  }

  get pendingStreams(): number {
    return this.#pending.length;
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
    // max_requests up front, as Envoy's pool and the HTTP/1 pool do (and again when a queued stream is placed).
    if (!this.#res.requests.canCreate()) {
      this.#overflowRequests(callbacks);
      return undefined;
    }
    const client = this.#pick();
    if (client !== undefined) {
      this.#attach(client, decoder, callbacks);
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

  /** Stop taking streams; connections close as their last stream ends; `onDrained` once none is left. */
  drain(onDrained?: () => void): void {
    this.#draining = true;
    if (onDrained) this.#onDrained.push(onDrained);
    for (const c of this.#clients.slice()) if (c.streams.size === 0) c.close(true, "pool drained");
    this.#checkDrained();
  }

  /** Closes everything now: waiting streams fail with `closed`, streams in progress are reset. */
  close(): void {
    this.#draining = true;
    this.#closed = true;
    this.#failPending("closed", `cluster "${this.#info.name}": pool for ${this.host.key} is closed`);
    for (const c of this.#clients.slice()) c.close(false, "pool closed");
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

  /** @internal A stream ended: complete, reset by the caller (tx) or by the codec / connection (rx). */
  _onStreamEnd(client: MuxClient, s: MuxStream, how: "complete" | "tx-reset" | "rx-reset"): void {
    client.streams.delete(s);
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
    }
    if (client.streams.size === 0) client.idleSince = this.#now();
    this.#changed(client);
  }

  #overflowRequests(callbacks: PoolCallbacks): void {
    this.#stats.upstream_rq_pending_overflow.inc();
    callbacks.onPoolFailure(
      "overflow",
      `cluster "${this.#info.name}": too many requests (max_requests ${this.#res.requests.max})`,
      this.host,
    );
  }

  /** The oldest connection with room. */
  #pick(): MuxClient | undefined {
    for (const c of this.#clients) if (c.room > 0) return c;
    return undefined;
  }

  #attach(client: MuxClient, decoder: StreamDecoder, callbacks: PoolCallbacks): void {
    if (!this.#res.requests.canCreate()) {
      this.#overflowRequests(callbacks);
      return;
    }
    const s = new MuxStream(this, client, decoder);
    try {
      s.setEncoder(client.codec.newStream(s));
    } catch (e) {
      // The codec refused a stream here: it takes no more, while the streams it carries go on.
      s.ended = true;
      this.#drainClient(client, "codec refused a stream");
      callbacks.onPoolFailure("closed", `cluster "${this.#info.name}": ${errorText(e)}`, this.host);
      this.#changed(client);
      return;
    }
    client.streams.add(s);
    client.placed++;
    this.#res.requests.inc();
    this.#stats.upstream_rq_total.inc();
    this.#stats.upstream_rq_active.inc();
    this.host.activeRequests++;
    this.#hc.rqTotal++;
    const max = this.#info.maxRequestsPerConnection;
    if (max > 0 && client.placed >= max && client.drainReason === undefined) {
      this.#stats.upstream_cx_max_requests.inc();
      client.drainReason = "max_requests_per_connection";
    }
    if (client.writeBlocked && !client.codecWatermarks) {
      s.onAboveWriteBufferHighWatermark();
    }
    // Never "reused" in the replay sense: when a multiplexed connection closes, a stream that was written may have
    // been processed (only REFUSED_STREAM / GOAWAY above the last stream id say it was not, and those are reported
    // as refused). A silent re-send could run a POST or an RPC twice; retries follow the route's policy instead.
    const info: PoolReadyInfo = { host: this.host, reused: false, connection: s.view };
    callbacks.onPoolReady(s, info);
  }

  #drainClient(client: MuxClient, reason: string): void {
    client.drainReason ??= reason;
  }

  /** Streams or room changed on `client`: act now, or once its `dispatch` returns. */
  #changed(client: MuxClient): void {
    if (client.dispatching) {
      client.dirty = true;
      return;
    }
    this.#service(client);
  }

  #service(client: MuxClient): void {
    client.dirty = false;
    if (client.state === "ready") {
      this.#placePending();
      if (client.streams.size === 0 && client.state === "ready") {
        if (client.drainReason !== undefined || this.#draining) {
          client.close(true, client.drainReason ?? "pool drained");
        } else {
          const timeout = this.#info.idleTimeoutMs;
          if (timeout > 0 && client.timer === undefined) this.#armIdleTimer(client, timeout);
        }
      }
    }
    this.#tryCreateConnections();
    this.#checkDrained();
  }

  /** Places waiting streams on connections with room, oldest stream first. */
  #placePending(): void {
    if (this.#placing) return; // a stream placed below ended at once; the loop goes on
    this.#placing = true;
    try {
      while (this.#pending.length > 0) {
        const c = this.#pick();
        if (c === undefined) break;
        const p = this.#pending.shift()!;
        p.done = true;
        this.#res.pendingRequests.dec();
        this.#stats.upstream_rq_pending_active.dec();
        this.#attach(c, p.decoder, p.callbacks);
      }
    } finally {
      this.#placing = false;
    }
  }

  #armIdleTimer(client: MuxClient, ms: number): void {
    const t = setTimeout(() => this.#onIdleTimer(client), Math.max(1, ms));
    Deno.unrefTimer(t);
    client.timer = t;
  }

  #onIdleTimer(client: MuxClient): void {
    client.timer = undefined;
    if (client.state !== "ready" || client.streams.size > 0) return; // re-armed when it goes idle again
    const left = this.#info.idleTimeoutMs - (this.#now() - client.idleSince);
    if (left > 1) {
      this.#armIdleTimer(client, left);
      return;
    }
    this.#stats.upstream_cx_idle_timeout.inc();
    client.close(true, "idle timeout");
  }

  #tryCreateConnections(): void {
    if (this.#closed || this.#draining) return;
    while (this.#pending.length > this.#connecting * this.#expectedRoom) {
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
    this.#cxHttp2Total.inc();
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
    const client = new MuxClient(conn, this.#info.perConnectionBufferLimitBytes);
    const write = (d: Uint8Array) => {
      stats.upstream_cx_tx_bytes_total.inc(d.length);
      conn.write(d);
    };
    const closeConnection = (reason: string) => {
      // The codec has written its last words (GOAWAY): they go out before the close.
      if (client.dispatching) client.closeAfterDispatch = true;
      else client.close(true, reason);
    };
    const callbacks: ClientCodecCallbacks = {
      onGoAway: () => {
        if (client.drainReason === "goaway") return;
        stats.upstream_cx_close_notify.inc();
        client.drainReason = "goaway";
        this.#changed(client);
      },
      onStreamCapacityChanged: () => this.#changed(client),
    };
    try {
      client.codec = this.#codec.createClient(write, { ...this.#codecOptions, closeConnection }, callbacks);
    } catch (e) {
      // A codec that cannot start on this connection (bad options): as a failed connect, so waiting streams fail.
      this.#connecting++;
      conn.close({ reason: "codec failed" });
      this.#onConnectFailed(e);
      return;
    }
    const codec = client.codec;
    const hooks = watermarkHooks(codec);
    client.codecWatermarks = hooks.above !== undefined;
    const reported = codec.maxConcurrentStreams;
    if (this.#learned === undefined && reported !== undefined && reported > 0) this.#expectedRoom = reported;
    client.capUntilHeard = this.#learned;
    conn.setHandler({
      onData: (d) => {
        stats.upstream_cx_rx_bytes_total.inc(d.length);
        if (!client.heard) {
          client.heard = true;
          client.capUntilHeard = undefined;
          client.dirty = true; // its own capacity now rules: place streams after the dispatch
        }
        this.#dispatch(client, () => codec.dispatch(d));
      },
      onEof: () => {
        client.remoteEof = true;
        // The codec resets the streams below; the connection is then gone with them, as the close will count.
        client.hadActiveAtEof = client.streams.size > 0;
        this.#drainClient(client, "upstream half-closed");
        this.#dispatch(client, () => codec.onEof());
        // Streams that survive the half-close (a response read until close) end with the connection.
        if (client.state === "ready") client.close(false, "remote close");
      },
      onClose: () => this.#onClientClosed(client),
      onWriteBlocked: () => {
        client.writeBlocked = true;
        if (hooks.above !== undefined) hooks.above();
        else for (const s of [...client.streams]) s.onAboveWriteBufferHighWatermark();
      },
      onWriteDrained: () => {
        client.writeBlocked = false;
        if (hooks.below !== undefined) hooks.below();
        else for (const s of [...client.streams]) s.onBelowWriteBufferLowWatermark();
      },
    });
    this.#clients.push(client);
    conn.start();
    if (this.#closed) {
      client.close(false, "pool closed");
      return;
    }
    client.idleSince = this.#now();
    this.#service(client);
  }

  /** Runs a codec entry point, then what its callbacks left to do. */
  #dispatch(client: MuxClient, run: () => void): void {
    if (client.state === "closed") return;
    client.dispatching = true;
    try {
      run();
    } catch (e) {
      client.dispatching = false;
      // A protocol error: every stream of the connection ends with it.
      const detail = errorText(e);
      for (const s of [...client.streams]) s.onReset("protocol-error", detail);
      client.close(true, `protocol error: ${detail}`); // flushed: the codec's GOAWAY goes out
      return;
    }
    client.dispatching = false;
    if (client.heard && client.state === "ready") {
      const n = client.codec.maxConcurrentStreams;
      if (n !== undefined && n > 0) this.#expectedRoom = this.#learned = n;
    }
    if (client.closeAfterDispatch) {
      client.closeAfterDispatch = false;
      client.close(true, "closed by the codec");
      return;
    }
    if (client.dirty) this.#service(client);
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

  #onClientClosed(client: MuxClient): void {
    if (client.state === "closed") return;
    client.state = "closed";
    if (client.timer !== undefined) {
      clearTimeout(client.timer);
      client.timer = undefined;
    }
    const i = this.#clients.indexOf(client);
    if (i >= 0) this.#clients.splice(i, 1);
    this.#res.connections.dec();
    const stats = this.#stats;
    stats.upstream_cx_active.dec();
    stats.upstream_cx_destroy.inc();
    // A close we made because the upstream half-closed counts as remote, as it is in Envoy.
    const local = client.localClose && !client.remoteEof;
    if (local) stats.upstream_cx_destroy_local.inc();
    else stats.upstream_cx_destroy_remote.inc();
    this.#hc.cxActive--;
    if (client.streams.size > 0 || client.hadActiveAtEof) {
      this.#destroyActive.inc();
      if (local) this.#destroyLocalActive.inc();
      else this.#destroyRemoteActive.inc();
    }
    // The codec resets its open streams (connection-termination) and stops its timers; streams it did not know
    // about, or a codec without the hook, are reset here.
    try {
      client.codec.onConnectionClose?.();
    } catch {
      // the streams are reset below either way
    }
    for (const s of [...client.streams]) s.onConnectionClosed();
    this.#placePending();
    this.#tryCreateConnections();
    this.#checkDrained();
  }

  #checkDrained(): void {
    if (!this.#draining) return;
    if (this.#clients.length > 0 || this.#connecting > 0) return;
    if (this.#pending.length > 0) {
      this.#failPending("closed", `cluster "${this.#info.name}": pool for ${this.host.key} is draining`);
    }
    const cbs = this.#onDrained;
    this.#onDrained = [];
    for (const cb of cbs) cb();
  }
}
