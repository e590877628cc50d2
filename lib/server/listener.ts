/**
 * A listener: a bound socket, its accept loop, and the network filter chain of each accepted connection.
 *
 * Per connection: listener filters peek at the first bytes (the tls_inspector), the filter chain is chosen with
 * Envoy's `filter_chain_match` rules (see `filter_chain_match.ts`), the chain's transport socket runs the TLS
 * handshake with the peeked bytes replayed, and the network filters then see a plaintext connection. A listener
 * with one native TLS chain and nothing to inspect binds with `Deno.listenTls` (the runtime's TLS, fastest).
 *
 * @module
 */
import type { NetConnection, NetworkFilter, NetworkFilterContext } from "../api/network.ts";
import type { Counter, Gauge, StatsScope } from "../api/stats.ts";
import type { FilterChainConfig, ListenerConfig } from "../config/bootstrap.ts";
import { DenoConnection } from "../network/connection.ts";
import { EpollListener } from "../network/epoll.ts";
import { approxNow } from "../network/clock.ts";
import { getLogger } from "../observe/log.ts";
import { EMPTY_MATCH, matchKey, selectFilterChain } from "./filter_chain_match.ts";
import type { ListenerFilterState } from "./listener_filter.ts";
import { chooseProvider } from "../tls/client_hello.ts";
import { nativeListenTlsOptions, type NativeServerContext } from "../tls/native.ts";
import { TlsHandshakeError } from "../tls/provider.ts";
import { SslStats } from "../tls/stats.ts";

const log = getLogger("listener");
const EMPTY = new Uint8Array(0);

/** Envoy's listener stats (`listener.<address>.<name>`). */
interface ListenerStats {
  downstream_cx_total: Counter;
  downstream_cx_active: Gauge;
  downstream_cx_destroy: Counter;
  no_filter_chain_match: Counter;
  downstream_cx_length_ms: { record(v: number): void };
}

/** Services a listener needs from the server. */
export interface ListenerContext {
  readonly stats: StatsScope;
  readonly clusterManager: unknown;
  readonly draining: () => boolean;
}

/** One accepted connection and its filters (`conn` becomes the plaintext side after a TLS handshake). */
interface ActiveConnection {
  conn: NetConnection;
  readonly filters: NetworkFilter[];
  readonly start: number;
}

const EMPTY_MATCH_KEY = matchKey(EMPTY_MATCH);

/** The chain's native context when the listener can bind with `Deno.listenTls` itself. */
function fastPathContext(config: ListenerConfig): NativeServerContext | undefined {
  if (config.filterChains.length !== 1 || config.listenerFilters.length > 0) return undefined;
  const c = config.filterChains[0]!;
  const ts = c.transportSocket;
  if (ts?.kind !== "native" || !ts.context.listenTlsCapable) return undefined;
  return matchKey(c.match) === EMPTY_MATCH_KEY ? ts.context : undefined;
}

/** A bound listener with its accept loop. */
export class Listener {
  readonly config: ListenerConfig;
  readonly #ctx: ListenerContext;
  readonly #stats: ListenerStats;
  #listener: Deno.Listener | undefined;
  /** The socket on the epoll engine (plain TCP on Linux, see lib/network/epoll.ts); else `#listener`. */
  #epoll: EpollListener | undefined;
  #fast: NativeServerContext | undefined;
  #ssl: SslStats | undefined;
  #active = new Set<ActiveConnection>();
  #closed = false;
  #loop: Promise<void> | undefined;

  constructor(config: ListenerConfig, ctx: ListenerContext) {
    this.config = config;
    this.#ctx = ctx;
    const s = ctx.stats.scope(`listener.${config.statPrefix}`);
    this.#stats = {
      downstream_cx_total: s.counter("downstream_cx_total"),
      downstream_cx_active: s.gauge("downstream_cx_active"),
      downstream_cx_destroy: s.counter("downstream_cx_destroy"),
      no_filter_chain_match: s.counter("no_filter_chain_match"),
      downstream_cx_length_ms: s.histogram("downstream_cx_length_ms"),
    };
    if (config.filterChains.some((c) => c.transportSocket !== undefined)) this.#ssl = new SslStats(s);
    this.#fast = fastPathContext(config);
  }

  /** Binds the socket. Throws an Error naming the listener if the address cannot be bound. */
  bind(): void {
    const { address, port } = this.config.address;
    try {
      const opts = {
        hostname: address,
        port,
        transport: "tcp" as const,
        ...(this.config.reusePort ? { reusePort: true } : {}),
      };
      if (this.#fast) {
        this.#listener = Deno.listenTls(
          { ...opts, ...nativeListenTlsOptions(this.#fast) } as Deno.ListenTlsOptions & Deno.TlsCertifiedKeyPem,
        );
      } else {
        this.#epoll = EpollListener.listen({
          hostname: address,
          port,
          reusePort: this.config.reusePort,
          highWatermark: this.config.perConnectionBufferLimitBytes,
        });
        if (!this.#epoll) this.#listener = Deno.listen(opts);
      }
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new Error(`listener "${this.config.name}": cannot bind ${address}:${port}: ${why}`);
    }
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

  /** Number of open downstream connections. */
  get connections(): number {
    return this.#active.size;
  }

  /** Starts accepting. */
  start(): void {
    const ep = this.#epoll;
    if (ep) {
      ep.start((c) => this.#onTransport(c), (e) => {
        log.warn(`listener "${this.config.name}": accept failed: ${e.message}`);
      });
      this.#loop = ep.closed;
      return;
    }
    this.#loop = this.#acceptLoop();
  }

  async #acceptLoop(): Promise<void> {
    const l = this.#listener!;
    while (!this.#closed) {
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
    const stats = this.#stats;
    stats.downstream_cx_total.inc();
    stats.downstream_cx_active.inc();
    const ac: ActiveConnection = { conn: transport, filters: [], start: approxNow() };
    this.#active.add(ac);
    // Accounting follows the socket, whichever layer closes it (listener filter, handshake, or the chain).
    transport.done.then(() => {
      this.#active.delete(ac);
      stats.downstream_cx_active.dec();
      stats.downstream_cx_destroy.inc();
      stats.downstream_cx_length_ms.record(approxNow() - ac.start);
    });
    const chains = this.config.filterChains;
    if (this.#fast) {
      this.#acceptFast(ac, raw as Deno.TlsConn, transport as DenoConnection, chains[0]!);
    } else if (this.config.listenerFilters.length === 0 && chains.length === 1 && !chains[0]!.transportSocket) {
      this.#attach(ac, transport, chains[0]!, undefined);
    } else {
      this.#setup(ac, transport).catch((e) => {
        log.error(
          `listener "${this.config.name}": connection setup failed: ${e instanceof Error ? e.stack : String(e)}`,
        );
        transport.close({ reason: "setup failed" });
      });
    }
  }

  /** `Deno.listenTls` connections: wait for the handshake (bounded), then attach with the ALPN result. */
  #acceptFast(ac: ActiveConnection, raw: Deno.TlsConn, transport: DenoConnection, chain: FilterChainConfig): void {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, rej) => {
      timer = setTimeout(() => rej(new TlsHandshakeError("timeout", "handshake timed out")), chain.handshakeTimeoutMs);
    });
    Promise.race([raw.handshake(), timeout]).then((info) => {
      clearTimeout(timer);
      if (transport.closed) return;
      this.#ssl?.onFastHandshake();
      const tls = info.alpnProtocol ? { alpn: info.alpnProtocol } : {};
      const conn = new DenoConnection(raw, {
        secure: true,
        tls,
        highWatermark: this.config.perConnectionBufferLimitBytes,
      });
      // The outer wrapper only carries accounting; the secure wrapper owns the socket from here.
      conn.done.then(() => transport.close({ reason: "closed" }));
      ac.conn = conn;
      this.#attach(ac, conn, chain, undefined);
    }, (e) => {
      clearTimeout(timer);
      this.#ssl?.onFailure(e instanceof TlsHandshakeError ? e.kind : "handshake");
      log.debug(() =>
        `listener "${this.config.name}": tls handshake failed: ${e instanceof Error ? e.message : String(e)}`
      );
      transport.close({ reason: "tls handshake failed" });
    });
  }

  /** Listener filters, chain selection and the TLS handshake; then {@link #attach}. */
  async #setup(ac: ActiveConnection, transport: NetConnection): Promise<void> {
    const state: ListenerFilterState = { applicationProtocols: [] };
    let peeked: { bytes: Uint8Array; eof: boolean } | undefined;
    if (this.config.listenerFilters.length > 0) {
      peeked = await this.#runListenerFilters(transport, state);
      if (!peeked) return;
    }
    const regular = this.config.filterChains.filter((c) => !c.isDefault);
    const chain = selectFilterChain(regular, {
      destinationPort: transport.localPort,
      destinationIp: transport.localAddress,
      sourceIp: transport.remoteAddress,
      sourcePort: transport.remotePort,
      serverName: state.serverName,
      transportProtocol: state.transportProtocol ?? "raw_buffer",
      applicationProtocols: state.applicationProtocols,
      provider: state.clientHello ? chooseProvider(state.clientHello) : undefined,
    }) ?? this.config.filterChains.find((c) => c.isDefault);
    if (!chain) {
      this.#stats.no_filter_chain_match.inc();
      log.debug(() =>
        `listener "${this.config.name}": no filter chain matches ${transport.remoteAddress}:${transport.remotePort}` +
        ` (sni ${state.serverName ?? "-"}, transport ${state.transportProtocol ?? "raw_buffer"})`
      );
      // A ClientHello (or the start of a TLS record) that no chain takes is a failed TLS connection too.
      if (state.transportProtocol === "tls" || peeked?.bytes[0] === 0x16) this.#ssl?.onFailure("handshake");
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
      highWatermark: this.config.perConnectionBufferLimitBytes,
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
      this.#ssl!.onHandshake(secure);
      ac.conn = secure;
      this.#attach(ac, secure, chain, undefined);
    } catch (e) {
      const kind = e instanceof TlsHandshakeError ? e.kind : "handshake";
      this.#ssl!.onFailure(kind);
      log.debug(() =>
        `listener "${this.config.name}": tls handshake with ${transport.remoteAddress}:${transport.remotePort} failed: ${
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
    transport: NetConnection,
    state: ListenerFilterState,
  ): Promise<{ bytes: Uint8Array; eof: boolean } | undefined> {
    const filters = this.config.listenerFilters.map((e) => e.factory.create(e.config));
    const max = Math.max(...filters.map((f) => f.maxReadBytes), 0);
    return new Promise((resolve) => {
      const out = { bytes: new Uint8Array(0), eof: false };
      let next = 0;
      let settled = false;
      const settle = (v: typeof out | undefined) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
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
      const timer = setTimeout(() => {
        if (this.config.continueOnListenerFiltersTimeout) {
          for (let i = next; i < filters.length; i++) filters[i]!.onEnd?.(state);
          next = filters.length;
          settle(out);
        } else {
          // A ClientHello that never completes (slowloris, truncated) counts as a TLS failure.
          if (out.bytes[0] === 0x16) this.#ssl?.onFailure("timeout");
          transport.close({ reason: "listener filter timeout" });
          settle(undefined);
        }
      }, this.config.listenerFiltersTimeoutMs);
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
    const filters = ac.filters;
    const nctx: NetworkFilterContext = {
      clusterManager: this.#ctx.clusterManager,
      stats: this.#ctx.stats,
      listenerName: this.config.name,
      draining: this.#ctx.draining,
      bufferLimit: this.config.perConnectionBufferLimitBytes,
    };
    // Filters see data in order; a "stop" ends this chunk's walk (the terminal filter always consumes it).
    const walk = (data: Uint8Array, end: boolean, from: number) => {
      for (let i = from; i < filters.length; i++) {
        if (filters[i]!.onData(data, end) === "stop") return;
      }
    };
    conn.setHandler({
      onData: (d) => walk(d, false, 0),
      onEof: () => walk(EMPTY, true, 0),
      onClose: (reason) => {
        for (const f of filters) {
          try {
            f.onClose?.(reason);
          } catch (e) {
            log.error(
              `listener "${this.config.name}": filter close failed: ${e instanceof Error ? e.message : String(e)}`,
            );
          }
        }
      },
      onWriteBlocked: () => {
        for (const f of filters) f.onWriteBlocked?.();
      },
      onWriteDrained: () => {
        for (const f of filters) f.onWriteDrained?.();
      },
    });
    for (let i = 0; i < chain.filters.length; i++) {
      const e = chain.filters[i]!;
      filters.push(e.factory.create(e.config, {
        connection: conn,
        // The built-in filters before the terminal one never hold data back, so there is nothing to resume.
        continueReading: () => {},
      }, nctx));
    }
    for (const f of filters) {
      if (f.onNewConnection?.() === "stop") break;
    }
    if (peeked) {
      if (peeked.bytes.length > 0 && !conn.closed) walk(peeked.bytes, false, 0);
      if (peeked.eof && !conn.closed) walk(EMPTY, true, 0);
      else conn.readDisable(false);
    }
    conn.start();
  }

  /** Stops accepting new connections (the socket is closed). */
  stopAccepting(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#epoll?.close();
    try {
      this.#listener?.close();
    } catch { /* already closed */ }
  }

  /** Asks every connection to drain (finish in-flight work, then close). */
  drainConnections(): void {
    for (const ac of this.#active) {
      const last = ac.filters[ac.filters.length - 1];
      if (last?.drain) last.drain();
      else ac.conn.close({ flush: true, reason: "drain" });
    }
  }

  /** Closes every connection now. */
  closeAll(): void {
    for (const ac of [...this.#active]) ac.conn.close({ reason: "shutdown" });
  }

  /** Resolves when the accept loop has ended. */
  async closed(): Promise<void> {
    await this.#loop;
  }
}
