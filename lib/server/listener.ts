/**
 * A listener: a bound socket, its accept loop, and the network filter chain of each accepted connection.
 *
 * Per connection: listener filters peek at the first bytes (the tls_inspector), the filter chain is chosen with
 * Envoy's `filter_chain_match` rules (see `filter_chain_match.ts`), the chain's transport socket runs the TLS
 * handshake with the peeked bytes replayed, and the network filters then see a plaintext connection. A listener
 * with one native TLS chain and nothing to inspect binds with `Deno.listenTls` (the runtime's TLS, fastest).
 *
 * Updates (Envoy's LDS): a listener's config can be replaced while the socket stays bound
 * ({@link Listener.update}). Each accepted connection keeps the config it was accepted under — its listener
 * filters, filter chains and the per-config filter factories — and a replaced config's connections drain: their
 * `NetworkFilterContext.draining` turns true (HTTP answers with `connection: close` and closes after the response;
 * TCP is left to finish) and whatever is left is closed after the drain time. New connections get the new config.
 *
 * @module
 */
import type { RouteConfigProviderManager } from "../api/route.ts";
import type { NetConnection, NetworkFilter, NetworkFilterContext } from "../api/network.ts";
import type { Counter, Gauge, StatsScope } from "../api/stats.ts";
import type { OverloadView } from "../api/overload.ts";
import type { ClusterManager } from "../api/upstream.ts";
import type { FilterChainConfig, ListenerConfig } from "../config/bootstrap.ts";
import { DenoConnection } from "../network/connection.ts";
import { EpollConnection, EpollListener, shutdownStalledSocket } from "../network/epoll.ts";
import { NetworkFilterManager, type NetworkFilterSpec } from "../network/filter_manager.ts";
import { approxNow } from "../network/clock.ts";
import { type Linked, LinkedSet } from "../network/linked_set.ts";
import { schedule } from "../network/timer_wheel.ts";
import { getLogger } from "../observe/log.ts";
import { EMPTY_MATCH, matchKey, selectFilterChain } from "./filter_chain_match.ts";
import type { ListenerFilterState } from "./listener_filter.ts";
import { chooseProvider } from "../tls/client_hello.ts";
import { nativeListenTlsOptions, type NativeServerContext } from "../tls/native.ts";
import { TlsHandshakeError } from "../tls/provider.ts";
import { SslStats } from "../tls/stats.ts";
import { runtimeOpStarted } from "../network/_runtime_ops.ts";

const log = getLogger("listener");

/** Envoy's listener stats (`listener.<address>.<name>`). */
interface ListenerStats {
  downstream_cx_total: Counter;
  downstream_cx_active: Gauge;
  downstream_cx_destroy: Counter;
  no_filter_chain_match: Counter;
  downstream_cx_length_ms: { record(v: number): void };
  /** Closed at accept: over the overload manager's connection limit / by `reject_incoming_connections`. */
  downstream_global_cx_overflow: Counter;
  downstream_cx_overload_reject: Counter;
}

/** Services a listener needs from the server. */
export interface ListenerContext {
  readonly stats: StatsScope;
  readonly clusterManager: ClusterManager;
  /** True once the server drains. */
  readonly draining: () => boolean;
  /** The server's route-config providers (route configurations replaceable by name). */
  readonly routeConfigs?: RouteConfigProviderManager;
  /** The server's overload manager, if configured (not applied to `bypass_overload_manager` listeners). */
  readonly overload?: OverloadView;
}

/** One accepted connection (`conn` becomes the plaintext side after a TLS handshake) and the config it runs. */
interface ActiveConnection extends Linked<ActiveConnection> {
  conn: NetConnection;
  readonly gen: ListenerGeneration;
  /** The chain the connection was attached to (undefined until then). */
  chain: FilterChainConfig | undefined;
  /** Set once the chain is attached (after listener filters and the TLS handshake). */
  filters: NetworkFilterManager | undefined;
  readonly start: number;
}

/**
 * One listener config in service: its stats, each chain's per-connection filter creators (built once, when the
 * config is taken into service), and the connections accepted under it.
 */
class ListenerGeneration {
  readonly config: ListenerConfig;
  readonly stats: ListenerStats;
  readonly ssl: SslStats | undefined;
  readonly chains = new Map<FilterChainConfig, readonly NetworkFilterSpec[]>();
  /** Open connections: not a `Set`, whose churn would keep closed connections past scavenges (see linked_set.ts). */
  readonly active = new LinkedSet<ActiveConnection>();
  /** Replaced or removed: connections drain, and are closed when `drainTimer` fires. */
  draining = false;
  /**
   * Chains of a replaced config that the new config has unchanged (Envoy's filter-chain-only update): their
   * connections neither drain nor get closed. Emptied when the listener is removed or the chain changes later.
   */
  kept: ReadonlySet<FilterChainConfig> = new Set();
  drainTimer: ReturnType<typeof setTimeout> | undefined;
  /** The overload manager this config answers to (undefined: none, or `bypass_overload_manager`). */
  readonly overload: OverloadView | undefined;

  constructor(config: ListenerConfig, ctx: ListenerContext) {
    this.config = config;
    const s = ctx.stats.scope(`listener.${config.statPrefix}`);
    this.stats = {
      downstream_cx_total: s.counter("downstream_cx_total"),
      downstream_cx_active: s.gauge("downstream_cx_active"),
      downstream_cx_destroy: s.counter("downstream_cx_destroy"),
      no_filter_chain_match: s.counter("no_filter_chain_match"),
      downstream_cx_length_ms: s.histogram("downstream_cx_length_ms"),
      downstream_global_cx_overflow: s.counter("downstream_global_cx_overflow"),
      downstream_cx_overload_reject: s.counter("downstream_cx_overload_reject"),
    };
    this.overload = config.bypassOverloadManager ? undefined : ctx.overload;
    if (config.filterChains.some((c) => c.transportSocket !== undefined)) this.ssl = new SslStats(s);
    for (const chain of config.filterChains) {
      const nctx: NetworkFilterContext = {
        clusterManager: ctx.clusterManager,
        stats: ctx.stats,
        listenerName: config.name,
        ...(config.trafficDirection !== undefined ? { trafficDirection: config.trafficDirection } : {}),
        draining: () => (this.draining && !this.kept.has(chain)) || ctx.draining(),
        bufferLimit: config.perConnectionBufferLimitBytes,
        ...(ctx.routeConfigs ? { routeConfigs: ctx.routeConfigs } : {}),
        ...(this.overload ? { overload: this.overload } : {}),
      };
      this.chains.set(
        chain,
        chain.filters.map((e) => {
          const f = e.factory;
          return {
            name: e.name,
            create: f.createFactory ? f.createFactory(e.config, nctx) : (cb) => f.create(e.config, cb, nctx),
          };
        }),
      );
    }
  }
}

const EMPTY_MATCH_KEY = matchKey(EMPTY_MATCH);

type Obj = Record<string, unknown>;

/** The raw filter chains of a listener document, in the order the parser lists them (default chain last). */
function rawChains(raw: unknown): unknown[] | undefined {
  if (raw === null || typeof raw !== "object") return undefined;
  const o = raw as Obj;
  const list = o["filter_chains"] ?? o["filterChains"] ?? [];
  const dfc = o["default_filter_chain"] ?? o["defaultFilterChain"];
  const chains = Array.isArray(list) ? [...list] : [list];
  if (dfc !== undefined) chains.push(dfc);
  return chains;
}

/**
 * For a new listener config: a predicate telling whether a chain of an older config is in it unchanged (the same
 * chain document; a chain whose referenced secrets changed is rebuilt by the secret provider, not by this).
 */
function unchangedChains(next: ListenerConfig): (config: ListenerConfig, chain: FilterChainConfig) => boolean {
  const nextRaw = rawChains(next.raw);
  const texts = new Set(
    nextRaw !== undefined && nextRaw.length === next.filterChains.length ? nextRaw.map((c) => JSON.stringify(c)) : [],
  );
  return (config, chain) => {
    const raws = rawChains(config.raw);
    const i = config.filterChains.indexOf(chain);
    if (raws === undefined || raws.length !== config.filterChains.length || i < 0) return false;
    return texts.has(JSON.stringify(raws[i]));
  };
}

/** The chain's native context when the listener can bind with `Deno.listenTls` itself. */
function fastPathContext(config: ListenerConfig): NativeServerContext | undefined {
  if (config.filterChains.length !== 1 || config.listenerFilters.length > 0) return undefined;
  const c = config.filterChains[0]!;
  const ts = c.transportSocket;
  if (ts?.kind !== "native" || !ts.context.listenTlsCapable) return undefined;
  return matchKey(c.match) === EMPTY_MATCH_KEY ? ts.context : undefined;
}

/**
 * Why a listener could not be added, updated or bound: the message names the listener (`listener "x": cannot bind
 * 127.0.0.1:80: ...`); `field` is the config field at fault (`address`, `name`, or "" for the whole listener), so
 * the runtime API can report it as a `ConfigError` with a path.
 */
export class ListenerError extends Error {
  readonly listener: string;
  readonly field: string;
  constructor(listener: string, field: string, detail: string, options?: ErrorOptions) {
    super(`listener "${listener}": ${detail}`, options);
    this.name = "ListenerError";
    this.listener = listener;
    this.field = field;
  }
}

/** True if both configs bind the same address (port 0 included: an update keeps the port it got). */
export function sameAddress(a: ListenerConfig, b: ListenerConfig): boolean {
  return a.address.address === b.address.address && a.address.port === b.address.port;
}

/**
 * A bound listener with its accept loop, serving its current config; connections of configs it replaced drain
 * beside them (see the module doc).
 */
export class Listener {
  readonly #ctx: ListenerContext;
  #gen: ListenerGeneration;
  /** Replaced configs whose connections are draining. */
  readonly #retired = new Set<ListenerGeneration>();
  #listener: Deno.Listener | undefined;
  /** The socket on the epoll engine (plain TCP on Linux, see lib/network/epoll.ts); else `#listener`. */
  #epoll: EpollListener | undefined;
  /** Inherited sockets accepted from beside `#epoll` (a hot upgrade from a Ferry with worker threads). */
  #extra: EpollListener[] = [];
  readonly #fast: NativeServerContext | undefined;
  #closed = false;
  #loop: Promise<void> | undefined;
  /** While the overload manager stops accepting (`Deno.listen` loop): resolves when accepting resumes. */
  #acceptGate: { promise: Promise<void>; resolve: () => void } | undefined;
  #unwatchOverload: (() => void) | undefined;

  /**
   * Takes `config` into service (its filter factories' config-time step runs here and may throw); the socket is
   * bound by {@link Listener.bind}.
   */
  constructor(config: ListenerConfig, ctx: ListenerContext) {
    this.#ctx = ctx;
    this.#gen = new ListenerGeneration(config, ctx);
    this.#fast = fastPathContext(config);
  }

  /** The config new connections get. */
  get config(): ListenerConfig {
    return this.#gen.config;
  }

  /**
   * Binds the socket (on `port` instead of the configured one if given: a rebind that takes over a bound port).
   * With `fds` (the listening sockets of the previous Ferry, inherited at a hot upgrade, see `hot_restart.ts`) the
   * epoll engine adopts them instead of binding: the first is this listener's socket, the others (the previous
   * Ferry's worker threads' sockets on the same port) are accepted from too, so that no connection waiting in any
   * of their queues is lost. A listener that cannot adopt (the `Deno.listenTls` fast path, no epoll engine) binds
   * `port` beside them with SO_REUSEPORT, as with `inherited` alone. Returns the descriptors taken (the caller
   * closes the others). Throws an Error naming the listener if the address cannot be bound.
   */
  bind(options: { port?: number; fds?: readonly number[]; inherited?: boolean } = {}): number[] {
    const address = this.config.address.address;
    const port = options.port ?? this.config.address.port;
    const fds = options.fds ?? [];
    if (fds.length > 0 && !this.#fast) {
      const hw = { highWatermark: this.config.perConnectionBufferLimitBytes };
      const adopted: EpollListener[] = [];
      try {
        for (const fd of fds) {
          const l = EpollListener.adopt(fd, hw);
          if (l) adopted.push(l);
        }
      } catch (e) {
        // Not closed: the caller closes every descriptor not taken.
        const why = e instanceof Error ? e.message : String(e);
        throw new ListenerError(this.config.name, "address", `cannot adopt the inherited socket: ${why}`, {
          cause: e,
        });
      }
      if (adopted.length > 0) {
        this.#epoll = adopted[0];
        this.#extra = adopted.slice(1);
        return [...fds];
      }
    }
    const reusePort = this.config.reusePort || options.inherited === true;
    try {
      const opts = {
        hostname: address,
        port,
        transport: "tcp" as const,
        ...(reusePort ? { reusePort: true } : {}),
      };
      if (this.#fast) {
        this.#listener = Deno.listenTls(
          { ...opts, ...nativeListenTlsOptions(this.#fast) } as Deno.ListenTlsOptions & Deno.TlsCertifiedKeyPem,
        );
      } else {
        this.#epoll = EpollListener.listen({
          hostname: address,
          port,
          reusePort,
          highWatermark: this.config.perConnectionBufferLimitBytes,
        });
        if (!this.#epoll) this.#listener = Deno.listen(opts);
      }
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new ListenerError(this.config.name, "address", `cannot bind ${address}:${port}: ${why}`, { cause: e });
    }
    return [];
  }

  /**
   * The listening sockets' descriptors when the epoll engine serves them (what a hot upgrade hands over): this
   * listener's own first, then any it inherited beside it; empty once closed or on another engine.
   */
  get fds(): number[] {
    if (this.#closed || !this.#epoll) return [];
    return [this.#epoll.fd, ...this.#extra.map((l) => l.fd)];
  }

  /** This listener's own socket's descriptor (the first of {@link Listener.fds}). */
  get fd(): number | undefined {
    return this.fds[0];
  }

  /** The bound port (useful with port 0). */
  get port(): number {
    if (this.#epoll) return this.#epoll.port;
    const a = this.#listener?.addr;
    return a && a.transport === "tcp" ? a.port : this.config.address.port;
  }

  /**
   * The socket engine serving the listener, for the start-up log: `epoll` (lib/network/epoll.ts), `deno`
   * (`Deno.listen`), or `deno tls` (`Deno.listenTls`, the native TLS fast path).
   */
  get engine(): string {
    return this.#epoll ? "epoll" : this.#fast ? "deno tls" : "deno";
  }

  get address(): string {
    return `${this.config.address.address}:${this.port}`;
  }

  /** Number of open downstream connections (those of replaced configs, still draining, included). */
  get connections(): number {
    let n = this.#gen.active.size;
    for (const g of this.#retired) n += g.active.size;
    return n;
  }

  /** Open connections accepted under replaced configs (draining). */
  get drainingConnections(): number {
    let n = 0;
    for (const g of this.#retired) {
      for (const ac of g.active) if (ac.chain === undefined || !g.kept.has(ac.chain)) n++;
    }
    return n;
  }

  /**
   * True if `config` can replace the current one on the bound socket: the same address and socket options, and
   * neither config on the `Deno.listenTls` fast path (its certificates are part of the socket).
   */
  canUpdateInPlace(config: ListenerConfig): boolean {
    const cur = this.config;
    if (this.#closed || !sameAddress(cur, config) || cur.reusePort !== config.reusePort) return false;
    if (this.#fast || fastPathContext(config)) return false;
    // The epoll engine sets each accepted connection's watermark from the socket's.
    return !this.#epoll || cur.perConnectionBufferLimitBytes === config.perConnectionBufferLimitBytes;
  }

  /**
   * Serves new connections with `config` (see {@link Listener.canUpdateInPlace}; throws if it cannot). The
   * connections of the replaced config keep their chains and drain; those left after `drainTimeMs` are closed.
   * Throws, changing nothing, if a filter factory's config-time step throws.
   */
  update(config: ListenerConfig, drainTimeMs: number): void {
    if (!this.canUpdateInPlace(config)) {
      throw new ListenerError(config.name, "", "the new config cannot take over the bound socket");
    }
    const next = new ListenerGeneration(config, this.#ctx);
    const old = this.#gen;
    this.#gen = next;
    // Connections on chains the new config has unchanged stay; a chain kept by an earlier update and changed now
    // starts draining.
    const unchanged = unchangedChains(config);
    for (const g of [old, ...this.#retired]) {
      g.kept = new Set(g.config.filterChains.filter((c) => unchanged(g.config, c)));
    }
    this.#retire(old, drainTimeMs);
    for (const g of this.#retired) if (g !== old) this.#scheduleClose(g, drainTimeMs);
  }

  /**
   * Stops accepting and drains every connection as a replaced config's are; closes what is left after
   * `drainTimeMs`. Resolves when no connection is left.
   */
  async retire(drainTimeMs: number): Promise<void> {
    this.stopAccepting();
    for (const g of this.#retired) {
      g.kept = new Set();
      this.#scheduleClose(g, drainTimeMs);
    }
    this.#retire(this.#gen, drainTimeMs);
    while (this.connections > 0) {
      await Promise.all([...this.#allConnections()].map((ac) => ac.conn.done));
    }
  }

  #retire(gen: ListenerGeneration, drainTimeMs: number): void {
    if (gen.draining) return;
    gen.draining = true;
    if (gen.active.size === 0) return;
    // A retired listener keeps its current config in #gen; only replaced ones are listed apart.
    if (gen !== this.#gen) this.#retired.add(gen);
    this.#scheduleClose(gen, drainTimeMs);
  }

  /** Closes the connections of `gen` not on a kept chain after `drainTimeMs` (unless a close is pending). */
  #scheduleClose(gen: ListenerGeneration, drainTimeMs: number): void {
    if (gen.drainTimer !== undefined) return;
    const doomed = () => gen.active.toArray().filter((ac) => ac.chain === undefined || !gen.kept.has(ac.chain));
    if (doomed().length === 0) return;
    const close = () => {
      gen.drainTimer = undefined;
      for (const ac of doomed()) ac.conn.close({ reason: "drain timeout" });
    };
    if (drainTimeMs <= 0) close();
    else gen.drainTimer = setTimeout(close, drainTimeMs);
  }

  *#allConnections(): Iterable<ActiveConnection> {
    yield* this.#gen.active;
    for (const g of this.#retired) yield* g.active;
  }

  /** Starts accepting. */
  start(): void {
    const ep = this.#epoll;
    if (ep) {
      ep.start((c) => this.#onTransport(c), (e) => {
        log.warn(`listener "${this.config.name}": accept failed: ${e.message}`);
      });
      this.#loop = ep.closed;
      for (const x of this.#extra) {
        x.start((c) => this.#onTransport(c), (e) => {
          log.warn(`listener "${this.config.name}": accept failed: ${e.message}`);
        });
      }
    } else {
      this.#loop = this.#acceptLoop();
    }
    // `stop_accepting_connections`: new connections wait in the kernel backlog, as Envoy's disabled listeners.
    this.#unwatchOverload ??= this.#ctx.overload?.watchAccepting((accepting) => {
      const pause = !accepting && this.#gen.overload !== undefined && !this.#closed;
      for (const x of this.#epoll ? [this.#epoll, ...this.#extra] : []) {
        if (pause) x.pause();
        else x.resume();
      }
      if (pause && !this.#epoll) this.#acceptGate ??= Promise.withResolvers<void>();
      else if (!pause && this.#acceptGate) {
        this.#acceptGate.resolve();
        this.#acceptGate = undefined;
      }
    });
  }

  /** The pending resumption while accepting is stopped (read through a call: the loop's checks narrow the field). */
  #gatePromise(): Promise<void> | undefined {
    return this.#acceptGate?.promise;
  }

  async #acceptLoop(): Promise<void> {
    const l = this.#listener!;
    while (!this.#closed) {
      if (this.#acceptGate) {
        await this.#acceptGate.promise;
        continue;
      }
      let conn: Deno.Conn;
      try {
        conn = await l.accept();
      } catch (e) {
        if (this.#closed || e instanceof Deno.errors.BadResource) return;
        // EMFILE and friends: back off briefly instead of spinning.
        log.warn(`listener "${this.config.name}": accept failed: ${e instanceof Error ? e.message : String(e)}`);
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      // Accepted by the accept that was pending when accepting stopped: held unserved, as the backlog would hold it.
      const gate = this.#gatePromise();
      if (gate) await gate;
      if (this.#closed) {
        try {
          conn.close();
        } catch { /* closed */ }
        return;
      }
      try {
        this.#onAccept(conn);
      } catch (e) {
        log.error(
          `listener "${this.config.name}": connection setup failed: ${e instanceof Error ? e.stack : String(e)}`,
        );
        try {
          conn.close();
        } catch { /* already closed */ }
      }
    }
  }

  #onAccept(raw: Deno.Conn): void {
    try {
      (raw as Deno.TcpConn).setNoDelay(true);
    } catch { /* not TCP */ }
    this.#onTransport(new DenoConnection(raw, { highWatermark: this.config.perConnectionBufferLimitBytes }), raw);
  }

  /** Accounting, then the chain (`raw`: the `Deno.Conn` of the native TLS fast path). */
  #onTransport(transport: NetConnection, raw?: Deno.Conn): void {
    const gen = this.#gen;
    const stats = gen.stats;
    const ov = gen.overload;
    const counted = ov !== undefined && !gen.config.ignoreGlobalConnLimit;
    if (ov !== undefined) {
      const verdict = ov.admitConnection(counted);
      if (verdict !== "accept") {
        (verdict === "overflow" ? stats.downstream_global_cx_overflow : stats.downstream_cx_overload_reject).inc();
        transport.close({ reason: verdict === "overflow" ? "global connection limit" : "overload" });
        return;
      }
    }
    stats.downstream_cx_total.inc();
    stats.downstream_cx_active.inc();
    const ac: ActiveConnection = {
      conn: transport,
      gen,
      chain: undefined,
      filters: undefined,
      start: approxNow(),
      linkPrev: undefined,
      linkNext: undefined,
      linkedIn: undefined,
    };
    gen.active.add(ac);
    // Accounting follows the socket, whichever layer closes it (listener filter, handshake, or the chain).
    transport.done.then(() => {
      if (counted) ov!.releaseConnection();
      gen.active.delete(ac);
      stats.downstream_cx_active.dec();
      stats.downstream_cx_destroy.inc();
      stats.downstream_cx_length_ms.record(approxNow() - ac.start);
      if (gen.draining && gen.active.size === 0) {
        clearTimeout(gen.drainTimer);
        gen.drainTimer = undefined;
        this.#retired.delete(gen);
      }
    });
    const config = gen.config;
    const chains = config.filterChains;
    if (this.#fast) {
      this.#acceptFast(ac, raw as Deno.TlsConn, transport as DenoConnection, chains[0]!);
    } else if (config.listenerFilters.length === 0 && chains.length === 1 && !chains[0]!.transportSocket) {
      this.#attach(ac, transport, chains[0]!, undefined);
    } else {
      this.#setup(ac, transport).catch((e) => {
        log.error(`listener "${config.name}": connection setup failed: ${e instanceof Error ? e.stack : String(e)}`);
        transport.close({ reason: "setup failed" });
      });
    }
  }

  /** `Deno.listenTls` connections: wait for the handshake (bounded), then attach with the ALPN result. */
  #acceptFast(ac: ActiveConnection, raw: Deno.TlsConn, transport: DenoConnection, chain: FilterChainConfig): void {
    const config = ac.gen.config;
    // The deadline is a timer-wheel entry, not a runtime timer raced against the handshake: every connection arms
    // it and nearly every one cancels it (a Node-compat timer pair and the race's promises were ~5% of the CPU
    // of a native handshake, measured in a perf profile of s_client handshakes).
    let pending = true;
    const onFailure = (e: unknown) => {
      if (!pending) return;
      pending = false;
      timer.cancel();
      // Closed while the handshake was pending (a drain, a listener going away): the same open socket as a timeout.
      if (e instanceof Deno.errors.Interrupted) shutdownStalledSocket(raw);
      ac.gen.ssl?.onFailure(e instanceof TlsHandshakeError ? e.kind : "handshake");
      log.debug(() => `listener "${config.name}": tls handshake failed: ${e instanceof Error ? e.message : String(e)}`);
      transport.close({ reason: "tls handshake failed" });
    };
    const timer = schedule(chain.handshakeTimeoutMs, () => {
      if (!pending) return;
      onFailure(new TlsHandshakeError("timeout", "handshake timed out"));
      // Deno keeps the socket of a handshake cancelled by close() open until the peer acts (see the function).
      shutdownStalledSocket(raw);
    });
    runtimeOpStarted();
    raw.handshake().then((info) => {
      if (!pending) return; // timed out
      pending = false;
      timer.cancel();
      if (transport.closed) return;
      ac.gen.ssl?.onFastHandshake();
      const tls = info.alpnProtocol ? { alpn: info.alpnProtocol } : {};
      const conn = new DenoConnection(raw, {
        secure: true,
        tls,
        highWatermark: config.perConnectionBufferLimitBytes,
      });
      // The outer wrapper only carries accounting; the secure wrapper owns the socket from here.
      conn.done.then(() => transport.closeHandedOff("closed"));
      ac.conn = conn;
      this.#attach(ac, conn, chain, undefined);
    }, onFailure);
  }

  /** Listener filters, chain selection and the TLS handshake; then {@link #attach}. */
  async #setup(ac: ActiveConnection, transport: NetConnection): Promise<void> {
    const config = ac.gen.config;
    const state: ListenerFilterState = { applicationProtocols: [] };
    let peeked: { bytes: Uint8Array; eof: boolean } | undefined;
    if (config.listenerFilters.length > 0) {
      peeked = await this.#runListenerFilters(ac, transport, state);
      if (!peeked) return;
    }
    const regular = config.filterChains.filter((c) => !c.isDefault);
    const chain = selectFilterChain(regular, {
      // Read only by chains that match on them (the one catch-all chain does not: no getsockname for it).
      get destinationPort() {
        return transport.localPort;
      },
      get destinationIp() {
        return transport.localAddress;
      },
      sourceIp: transport.remoteAddress,
      sourcePort: transport.remotePort,
      serverName: state.serverName,
      transportProtocol: state.transportProtocol ?? "raw_buffer",
      applicationProtocols: state.applicationProtocols,
      provider: state.clientHello ? chooseProvider(state.clientHello) : undefined,
    }) ?? config.filterChains.find((c) => c.isDefault);
    if (!chain) {
      ac.gen.stats.no_filter_chain_match.inc();
      log.debug(() =>
        `listener "${config.name}": no filter chain matches ${transport.remoteAddress}:${transport.remotePort}` +
        ` (sni ${state.serverName ?? "-"}, transport ${state.transportProtocol ?? "raw_buffer"})`
      );
      // A ClientHello (or the start of a TLS record) that no chain takes is a failed TLS connection too.
      if (state.transportProtocol === "tls" || peeked?.bytes[0] === 0x16) ac.gen.ssl?.onFailure("handshake");
      transport.close({ reason: "no filter chain match" });
      return;
    }
    const ts = chain.transportSocket;
    if (!ts) {
      this.#attach(ac, transport, chain, peeked);
      return;
    }
    const options = {
      initial: peeked?.bytes,
      timeoutMs: chain.handshakeTimeoutMs,
      highWatermark: config.perConnectionBufferLimitBytes,
      clientHello: state.clientHello,
    };
    try {
      const p = ts.kind === "native"
        ? ts.provider.accept(transport, ts.context, options)
        : ts.provider.accept(transport, ts.context, options);
      // The provider took over the handler; let bytes flow again (listener filters paused the socket).
      if (peeked) transport.readDisable(false);
      const secure = await p;
      if (transport.closed) {
        secure.close();
        return;
      }
      ac.gen.ssl!.onHandshake(secure);
      ac.conn = secure;
      this.#attach(ac, secure, chain, undefined);
    } catch (e) {
      const kind = e instanceof TlsHandshakeError ? e.kind : "handshake";
      ac.gen.ssl!.onFailure(kind);
      log.debug(() =>
        `listener "${config.name}": tls handshake with ${transport.remoteAddress}:${transport.remotePort} failed: ${
          e instanceof Error ? e.message : String(e)
        }`
      );
      transport.close({ reason: "tls handshake failed" });
    }
  }

  /**
   * Runs the listener filters over the first bytes. Resolves with every byte read (to replay) once all filters
   * continued, or undefined if the connection was closed (by a filter, the peer, or the timeout).
   */
  #runListenerFilters(
    ac: ActiveConnection,
    transport: NetConnection,
    state: ListenerFilterState,
  ): Promise<{ bytes: Uint8Array; eof: boolean } | undefined> {
    const config = ac.gen.config;
    const filters = config.listenerFilters.map((e) => e.factory.create(e.config));
    const max = Math.max(...filters.map((f) => f.maxReadBytes), 0);
    return new Promise((resolve) => {
      const out = { bytes: new Uint8Array(0), eof: false };
      let next = 0;
      let settled = false;
      const settle = (v: typeof out | undefined) => {
        if (settled) return;
        settled = true;
        timer.cancel();
        if (v) transport.readDisable(true);
        resolve(v);
      };
      const run = () => {
        while (next < filters.length) {
          const f = filters[next]!;
          if (f.maxReadBytes > 0 && out.bytes.length === 0 && !out.eof) return;
          const st = f.maxReadBytes === 0 ? "continue" : f.onData(out.bytes, state);
          if (st === "need-more") {
            if (out.bytes.length < max && !out.eof) return;
            f.onEnd?.(state);
          } else if (st === "close") {
            transport.close({ reason: "closed by a listener filter" });
            settle(undefined);
            return;
          }
          next++;
        }
        settle(out);
      };
      // On the timer wheel (each connection through listener filters arms it, and nearly every one cancels it).
      const timer = schedule(config.listenerFiltersTimeoutMs, () => {
        if (config.continueOnListenerFiltersTimeout) {
          for (let i = next; i < filters.length; i++) filters[i]!.onEnd?.(state);
          next = filters.length;
          settle(out);
        } else {
          // A ClientHello that never completes (slowloris, truncated) counts as a TLS failure.
          if (out.bytes[0] === 0x16) ac.gen.ssl?.onFailure("timeout");
          transport.close({ reason: "listener filter timeout" });
          settle(undefined);
        }
      });
      transport.setHandler({
        onData: (d) => {
          const b = new Uint8Array(out.bytes.length + d.length);
          b.set(out.bytes);
          b.set(d, out.bytes.length);
          out.bytes = b;
          if (!settled) run();
        },
        onEof: () => {
          out.eof = true;
          if (!settled) {
            if (out.bytes.length === 0) {
              transport.close({ reason: "remote close" });
              settle(undefined);
            } else run();
          }
        },
        onClose: () => settle(undefined),
      });
      transport.start();
    });
  }

  /** Creates the chain's network filters on `conn`, replays peeked bytes, and starts reading. */
  #attach(
    ac: ActiveConnection,
    conn: NetConnection,
    chain: FilterChainConfig,
    peeked: { bytes: Uint8Array; eof: boolean } | undefined,
  ): void {
    const fm = new NetworkFilterManager(conn, ac.gen.chains.get(chain)!, ac.gen.config.name);
    ac.filters = fm;
    ac.chain = chain;
    conn.setHandler(fm);
    fm.initialize();
    if (peeked) {
      if (peeked.bytes.length > 0 && !conn.closed) fm.onData(peeked.bytes);
      if (peeked.eof && !conn.closed) fm.onEof();
      else conn.readDisable(false);
    }
    conn.start();
  }

  /** Stops accepting new connections (the socket is closed). */
  stopAccepting(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unwatchOverload?.();
    this.#acceptGate?.resolve();
    this.#epoll?.close();
    for (const x of this.#extra) x.close();
    try {
      this.#listener?.close();
    } catch { /* already closed */ }
  }

  /**
   * @experimental Hot upgrade: detaches the epoll connections `pick` approves (given the connection and its network
   * filters), as {@link EpollConnection.detach} does, and returns their descriptors for another process to adopt
   * with {@link Listener.adoptConnection}; the caller closes them once sent.
   */
  detachConnections(pick: (conn: NetConnection, filters: readonly NetworkFilter[]) => boolean): number[] {
    const fds: number[] = [];
    for (const ac of [...this.#allConnections()]) {
      if (!(ac.conn instanceof EpollConnection) || !ac.filters || !pick(ac.conn, ac.filters.filters)) continue;
      const fd = ac.conn.detach();
      if (fd !== undefined) fds.push(fd);
    }
    return fds;
  }

  /**
   * @experimental Hot upgrade: serves a connected socket another process detached, as a newly accepted connection
   * (listener filters, chain match, network filters). False (the caller closes `fd`) when the listener is closed or
   * not on the epoll engine.
   */
  adoptConnection(fd: number): boolean {
    if (this.#closed || !this.#epoll) return false;
    let c: EpollConnection | undefined;
    try {
      c = EpollConnection.adopt(fd, { highWatermark: this.config.perConnectionBufferLimitBytes });
    } catch (e) {
      log.warn(`listener "${this.config.name}": cannot adopt a connection: ${e instanceof Error ? e.message : e}`);
      return false;
    }
    if (!c) return false;
    this.#onTransport(c);
    return true;
  }

  /** Asks every connection to drain now (finish in-flight work, then close; HTTP closes idle connections). */
  drainConnections(): void {
    for (const ac of this.#allConnections()) {
      if (ac.filters) ac.filters.drain();
      else ac.conn.close({ flush: true, reason: "drain" });
    }
  }

  /** Closes every connection now. */
  closeAll(): void {
    for (const g of [this.#gen, ...this.#retired]) {
      clearTimeout(g.drainTimer);
      g.drainTimer = undefined;
    }
    for (const ac of [...this.#allConnections()]) ac.conn.close({ reason: "shutdown" });
  }

  /** Resolves when the accept loop has ended. */
  async closed(): Promise<void> {
    await this.#loop;
  }
}
