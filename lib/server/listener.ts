/**
 * A listener: a bound socket, its accept loop, and the network filter chain of each accepted connection.
 *
 * @module
 */
import type { NetConnection, NetworkFilter, NetworkFilterContext } from "../api/network.ts";
import type { Counter, Gauge, StatsScope } from "../api/stats.ts";
import type { ListenerConfig } from "../config/bootstrap.ts";
import { DenoConnection } from "../network/connection.ts";
import { getLogger } from "../observe/log.ts";

const log = getLogger("listener");
const EMPTY = new Uint8Array(0);

/** Envoy's listener stats (`listener.<address>.<name>`). */
interface ListenerStats {
  downstream_cx_total: Counter;
  downstream_cx_active: Gauge;
  downstream_cx_destroy: Counter;
  downstream_cx_overflow: Counter;
  no_filter_chain_match: Counter;
  downstream_cx_length_ms: { record(v: number): void };
}

/** Services a listener needs from the server. */
export interface ListenerContext {
  readonly stats: StatsScope;
  readonly clusterManager: unknown;
  readonly draining: () => boolean;
}

/** One accepted connection and its filters. */
interface ActiveConnection {
  readonly conn: NetConnection;
  readonly filters: NetworkFilter[];
  readonly start: number;
}

/** A bound listener with its accept loop. */
export class Listener {
  readonly config: ListenerConfig;
  readonly #ctx: ListenerContext;
  readonly #stats: ListenerStats;
  #listener: Deno.Listener | undefined;
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
      downstream_cx_overflow: s.counter("downstream_cx_overflow"),
      no_filter_chain_match: s.counter("no_filter_chain_match"),
      downstream_cx_length_ms: s.histogram("downstream_cx_length_ms"),
    };
  }

  /** Binds the socket. Throws an Error naming the listener if the address cannot be bound. */
  bind(): void {
    const { address, port } = this.config.address;
    try {
      this.#listener = Deno.listen({
        hostname: address,
        port,
        transport: "tcp",
        ...(this.config.reusePort ? { reusePort: true } : {}),
      });
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new Error(`listener "${this.config.name}": cannot bind ${address}:${port}: ${why}`);
    }
  }

  /** The bound port (useful with port 0). */
  get port(): number {
    const a = this.#listener?.addr;
    return a && a.transport === "tcp" ? a.port : this.config.address.port;
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
    const conn = new DenoConnection(raw, { highWatermark: this.config.perConnectionBufferLimitBytes });
    const stats = this.#stats;
    stats.downstream_cx_total.inc();
    stats.downstream_cx_active.inc();
    const chain = this.config.filterChains[0]!;
    const filters: NetworkFilter[] = [];
    const ac: ActiveConnection = { conn, filters, start: performance.now() };
    this.#active.add(ac);
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
        this.#active.delete(ac);
        stats.downstream_cx_active.dec();
        stats.downstream_cx_destroy.inc();
        stats.downstream_cx_length_ms.record(performance.now() - ac.start);
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
    conn.start();
  }

  /** Stops accepting new connections (the socket is closed). */
  stopAccepting(): void {
    if (this.#closed) return;
    this.#closed = true;
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
