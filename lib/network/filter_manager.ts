/**
 * The L4 filter manager (Envoy's `Network::FilterManagerImpl`): runs a connection's network filters with the
 * `"continue"` / `"stop"` status protocol documented on {@link NetworkFilter}.
 *
 * Each filter has a held queue: a filter that stops keeps (copies of) the chunks it has seen and not passed on, and
 * chunks that reach it while it is stopped are given to it and queued behind them. When it continues, the queue
 * goes to the next filter in order. A chunk held at filter `i` is always older than one held at a filter before
 * `i`, so order is kept across filters without a global queue. The common chain — filters that continue and a
 * terminal one that consumes — holds nothing and copies nothing.
 *
 * @module
 */
import type {
  ConnectionHandler,
  NetConnection,
  NetworkFilter,
  NetworkFilterCallbacks,
  NetworkFilterFactoryCb,
  NetworkFilterStatus,
} from "../api/network.ts";
import { getLogger } from "../observe/log.ts";

const log = getLogger("connection");
const EMPTY = new Uint8Array(0);

/** A chunk held by a stopped filter (a copy: the connection's chunks are valid only during the call). */
interface Held {
  readonly data: Uint8Array;
  readonly end: boolean;
}

/** One filter of the chain to create: its configured name (for logs) and its per-connection creator. */
export interface NetworkFilterSpec {
  readonly name: string;
  readonly create: NetworkFilterFactoryCb;
}

/**
 * Runs one connection's network filters. It is the connection's {@link ConnectionHandler}: install it with
 * `conn.setHandler(manager)`, call {@link NetworkFilterManager.initialize} once, then start the connection.
 */
export class NetworkFilterManager implements ConnectionHandler {
  readonly connection: NetConnection;
  readonly #listenerName: string;
  readonly #names: string[] = [];
  readonly #filters: NetworkFilter[] = [];
  /** Per filter: stopped (holding), and the chunks it holds. */
  readonly #stopped: boolean[] = [];
  readonly #held: (Held[] | undefined)[] = [];
  readonly #releasing: boolean[] = [];
  /** Filters whose `onNewConnection` has been called (always a prefix of the chain). */
  #initialized = 0;
  /** The filter whose hook is running, and whether it called `continueReading` during it. */
  #calling = -1;
  #continueDuringCall = false;
  #closed = false;

  /**
   * Creates the chain's filters on `connection` (each `create` gets its own callbacks). `listenerName` names the
   * listener in logs. A creator that throws is logged and rethrown (the caller closes the connection).
   */
  constructor(connection: NetConnection, specs: readonly NetworkFilterSpec[], listenerName: string) {
    this.connection = connection;
    this.#listenerName = listenerName;
    for (let i = 0; i < specs.length; i++) {
      const spec = specs[i]!;
      const callbacks: NetworkFilterCallbacks = {
        connection,
        continueReading: () => this.#continueReading(i),
      };
      this.#names.push(spec.name);
      this.#filters.push(spec.create(callbacks));
      this.#stopped.push(false);
      this.#held.push(undefined);
      this.#releasing.push(false);
    }
  }

  /** The filters, in chain order. */
  get filters(): readonly NetworkFilter[] {
    return this.#filters;
  }

  /** Calls `onNewConnection` in order until a filter stops (Envoy's `initializeReadFilters`). */
  initialize(): void {
    this.#initFrom(0);
  }

  /** Graceful drain: the terminal filter's `drain`, or a flushed close if it has none. */
  drain(): void {
    const last = this.#filters[this.#filters.length - 1];
    if (last?.drain) {
      this.#guard(this.#filters.length - 1, "drain", () => last.drain!());
    } else this.connection.close({ flush: true, reason: "drain" });
  }

  onData(data: Uint8Array): void {
    if (data.length > 0) this.#deliver(0, data, false, false);
  }

  onEof(): void {
    this.#deliver(0, EMPTY, true, true);
  }

  onClose(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    for (let i = 0; i < this.#held.length; i++) this.#held[i] = undefined;
    for (let i = 0; i < this.#filters.length; i++) {
      const f = this.#filters[i]!;
      if (f.onClose) this.#guard(i, "onClose", () => f.onClose!(reason), false);
    }
  }

  onWriteBlocked(): void {
    for (let i = 0; i < this.#filters.length && !this.#closed; i++) {
      const f = this.#filters[i]!;
      if (f.onWriteBlocked) this.#guard(i, "onWriteBlocked", () => f.onWriteBlocked!());
    }
  }

  onWriteDrained(): void {
    for (let i = 0; i < this.#filters.length && !this.#closed; i++) {
      const f = this.#filters[i]!;
      if (f.onWriteDrained) this.#guard(i, "onWriteDrained", () => f.onWriteDrained!());
    }
  }

  /** Initializes filters from `i` on while they continue. False if a filter stopped or the connection closed. */
  #initFrom(i: number): boolean {
    for (; i < this.#filters.length; i++) {
      if (!this.#init(i)) return false;
      if (this.#stopped[i]) return false;
    }
    return true;
  }

  /** Calls filter `i`'s `onNewConnection` if not yet; false if the connection closed. */
  #init(i: number): boolean {
    if (i < this.#initialized) return !this.#closed;
    this.#initialized = i + 1;
    const f = this.#filters[i]!;
    if (f.onNewConnection) {
      const st = this.#call(i, "onNewConnection", () => f.onNewConnection!());
      if (this.#closed) return false;
      if (st === "stop" && i < this.#filters.length - 1) this.#stopped[i] = true;
    }
    return !this.#closed;
  }

  /**
   * Gives a chunk to filter `i` and on while they continue. `owned`: the chunk is already a copy (a held one),
   * so holding it again needs no second copy.
   */
  #deliver(i: number, data: Uint8Array, end: boolean, owned: boolean): void {
    const last = this.#filters.length - 1;
    for (; i <= last; i++) {
      if (this.#closed || !this.#init(i)) return;
      const st = this.#onData(i, data, end);
      if (this.#closed || i === last) return;
      if (st === "stop") {
        this.#stopped[i] = true;
        this.#hold(i, data, end, owned);
        return;
      }
      if (this.#stopped[i] || this.#held[i] !== undefined) {
        // "continue" while stopped releases what the filter held; this chunk goes after it.
        this.#stopped[i] = false;
        this.#hold(i, data, end, owned);
        this.#release(i);
        return;
      }
    }
  }

  /** Filter `i`'s `onData` (inline rather than through {@link #call}: the hot path allocates no closure). */
  #onData(i: number, data: Uint8Array, end: boolean): NetworkFilterStatus {
    const outer = this.#calling;
    const outerContinue = this.#continueDuringCall;
    this.#calling = i;
    this.#continueDuringCall = false;
    let st: NetworkFilterStatus;
    try {
      st = this.#filters[i]!.onData(data, end);
    } catch (e) {
      this.#fail(i, "onData", e);
      st = "stop";
    }
    if (this.#continueDuringCall && !this.#closed) st = "continue";
    this.#calling = outer;
    this.#continueDuringCall = outerContinue;
    return st;
  }

  #hold(i: number, data: Uint8Array, end: boolean, owned: boolean): void {
    const q = this.#held[i] ??= [];
    q.push({ data: owned || data.length === 0 ? data : data.slice(), end });
  }

  /**
   * Filter `i` continued: its held chunks go on, in order, while it stays continued. Not re-entered for the same
   * filter (a chunk queued meanwhile is taken by the running loop), so a filter never sees two chunks at once.
   */
  #release(i: number): void {
    if (this.#releasing[i]) return;
    const q = this.#held[i];
    if (q === undefined) return;
    this.#releasing[i] = true;
    while (!this.#stopped[i] && !this.#closed && q.length > 0) {
      const h = q.shift()!;
      this.#deliver(i + 1, h.data, h.end, true);
    }
    this.#releasing[i] = false;
    if (q.length === 0 && this.#held[i] === q) this.#held[i] = undefined;
  }

  #continueReading(i: number): void {
    if (this.#closed) return;
    if (this.#calling === i) {
      // Called from inside its own hook: the hook's "stop" is read as "continue".
      this.#continueDuringCall = true;
      return;
    }
    if (!this.#stopped[i] || i >= this.#initialized) return;
    this.#stopped[i] = false;
    if (this.#held[i] !== undefined) this.#release(i);
    // Nothing was held: the filters after it still need their onNewConnection.
    else this.#initFrom(i + 1);
  }

  /** Runs hook `what` of filter `i` and returns its status; a throw closes the connection (status "stop"). */
  #call(i: number, what: string, fn: () => NetworkFilterStatus): NetworkFilterStatus {
    const outer = this.#calling;
    const outerContinue = this.#continueDuringCall;
    this.#calling = i;
    this.#continueDuringCall = false;
    let st: NetworkFilterStatus;
    try {
      st = fn();
    } catch (e) {
      this.#fail(i, what, e);
      st = "stop";
    }
    if (this.#continueDuringCall && !this.#closed) st = "continue";
    this.#calling = outer;
    this.#continueDuringCall = outerContinue;
    return st;
  }

  /** Runs a hook without a status; a throw is logged and (unless `close` is false) closes the connection. */
  #guard(i: number, what: string, fn: () => void, close = true): void {
    try {
      fn();
    } catch (e) {
      if (close) this.#fail(i, what, e);
      else this.#logFailure(i, what, e);
    }
  }

  #fail(i: number, what: string, e: unknown): void {
    this.#logFailure(i, what, e);
    this.connection.close({ reason: "network filter failed" });
    // The connection reports onClose (maybe later); no filter hook runs in between.
    this.onClose("network filter failed");
  }

  #logFailure(i: number, what: string, e: unknown): void {
    log.error(
      `listener "${this.#listenerName}": network filter "${this.#names[i]}" failed in ${what}: ${
        e instanceof Error ? e.stack : String(e)
      }`,
    );
  }
}
