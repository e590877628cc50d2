/**
 * The listener manager (Envoy's `ListenerManagerImpl`): owns the listeners and applies adds, updates and removals
 * as Envoy's LDS does. Static listeners from the bootstrap go through the same calls; xDS only adds a source.
 *
 * - Add: build the config (filter factories' config-time step), bind, and accept (at once, or at
 *   {@link ListenerManager.startAccepting} during start-up). A failure is an error naming the listener, and nothing
 *   is left bound.
 * - Update (same name, different config): new connections get the new filter chains; connections accepted under
 *   the old config keep theirs and drain (HTTP: `connection: close` on the next response, then closed; TCP: left to
 *   finish), and are closed after the drain time. With the same address the bound socket is kept and only the
 *   config it dispatches to changes, as Envoy keeps the socket: no connection is refused in between. When the socket
 *   itself must change (the `Deno.listenTls` fast path holds certificates, `enable_reuse_port` changed, or the epoll
 *   engine's per-connection buffer limit), a new socket is bound beside the old with SO_REUSEPORT before the old one
 *   closes (without `enable_reuse_port` on both, such an update is refused). A new address binds first; the old
 *   listener then stops accepting and drains.
 * - Remove: stop accepting, drain, close after the drain time.
 * - The same config again (deep-equal, field paths and raw documents aside): nothing happens.
 * - Listeners from the bootstrap are static: as in Envoy, the API cannot update or remove them.
 *
 * Stats `listener_manager.*` use Envoy's names.
 *
 * @module
 */
import type { RouteConfigProviderManager } from "../api/route.ts";
import type { Counter, Gauge, StatsScope } from "../api/stats.ts";
import type { ClusterManager } from "../api/upstream.ts";
import type { ListenerConfig } from "../config/bootstrap.ts";
import { getLogger } from "../observe/log.ts";
import { Listener, type ListenerContext, ListenerError, sameAddress } from "./listener.ts";

const log = getLogger("config");

/** What {@link ListenerManager.addOrUpdate} did. */
export type ListenerUpdateResult = "added" | "updated" | "unchanged";

/** Options of a {@link ListenerManager}. */
export interface ListenerManagerOptions {
  /** Root stats scope (listener stats, `listener_manager.*`, and the filters'). */
  readonly stats: StatsScope;
  readonly clusterManager: ClusterManager;
  /** True once the server drains (every listener's connections then drain). */
  readonly draining: () => boolean;
  /** The server's route-config providers, handed to every listener's filters. */
  readonly routeConfigs?: RouteConfigProviderManager;
  /** The server's overload manager (lib/server/overload.ts), if configured. */
  readonly overload?: import("../api/overload.ts").OverloadView;
  /** How long replaced or removed listeners' connections may drain before they are closed (ms). */
  readonly drainTimeMs: number;
  /** Log accepting listeners at debug rather than info level (worker threads). */
  readonly quiet?: boolean;
}

/** Options of one {@link ListenerManager.addOrUpdate} call. */
export interface AddOrUpdateOptions {
  /**
   * False for listeners of the bootstrap's `static_resources` (default true: the API, later LDS). A static
   * listener cannot be updated or removed through the API.
   */
  readonly addedViaApi?: boolean;
}

/** The listening sockets of the previous Ferry for one listener, offered to it at a hot upgrade. */
export interface InheritedSocket {
  /** The descriptors received (its main thread's first); empty: bind `port` beside its sockets (SO_REUSEPORT). */
  readonly fds: readonly number[];
  /** The port the previous Ferry's sockets are bound to. */
  readonly port: number;
  /** Called with the descriptors the listener took (the caller closes the others). */
  taken(fds: readonly number[]): void;
}

interface Entry {
  readonly listener: Listener;
  readonly addedViaApi: boolean;
  /** When the current config was taken into service, for `/config_dump`. */
  lastUpdated: Date;
}

interface ManagerStats {
  listener_added: Counter;
  listener_modified: Counter;
  listener_removed: Counter;
  listener_in_place_updated: Counter;
  listener_create_success: Counter;
  listener_create_failure: Counter;
  total_listeners_active: Gauge;
  total_listeners_draining: Gauge;
}

/** The listeners of a server; see the module doc. */
export class ListenerManager {
  /**
   * How long replaced or removed listeners' connections drain before they are closed (ms); from the server's
   * `--drain-time-s`, and settable (tests shorten it).
   */
  drainTimeMs: number;
  readonly #ctx: ListenerContext;
  readonly #quiet: boolean;
  readonly #stats: ManagerStats;
  readonly #active = new Map<string, Entry>();
  /** Removed or replaced listeners whose connections are draining. */
  readonly #draining = new Set<Listener>();
  #accepting = false;
  #stopped = false;
  /**
   * At a hot upgrade (`hot_restart.ts`): the sockets the previous Ferry holds for a listener about to be added, if
   * it has any.
   */
  inheritedSocket: ((config: ListenerConfig) => InheritedSocket | undefined) | undefined;

  constructor(options: ListenerManagerOptions) {
    this.drainTimeMs = options.drainTimeMs;
    this.#ctx = {
      stats: options.stats,
      clusterManager: options.clusterManager,
      draining: options.draining,
      ...(options.routeConfigs ? { routeConfigs: options.routeConfigs } : {}),
      ...(options.overload ? { overload: options.overload } : {}),
    };
    this.#quiet = options.quiet ?? false;
    const s = options.stats.scope("listener_manager");
    this.#stats = {
      listener_added: s.counter("listener_added"),
      listener_modified: s.counter("listener_modified"),
      listener_removed: s.counter("listener_removed"),
      listener_in_place_updated: s.counter("listener_in_place_updated"),
      listener_create_success: s.counter("listener_create_success"),
      listener_create_failure: s.counter("listener_create_failure"),
      total_listeners_active: s.gauge("total_listeners_active"),
      total_listeners_draining: s.gauge("total_listeners_draining"),
    };
  }

  /**
   * Adds a listener or replaces the config of the one with the same name (see the module doc). Throws a
   * {@link ListenerError} naming the listener, with nothing changed, if it cannot be built or bound, if another listener has its
   * address, or if it would change a static listener through the API.
   */
  addOrUpdate(config: ListenerConfig, options: AddOrUpdateOptions = {}): ListenerUpdateResult {
    if (this.#stopped) throw new ListenerError(config.name, "", "the server is draining");
    const addedViaApi = options.addedViaApi ?? true;
    const existing = this.#active.get(config.name);
    if (existing && !existing.addedViaApi && addedViaApi) {
      throw new ListenerError(config.name, "name", "cannot be updated: it is statically configured");
    }
    if (existing && sameListenerConfig(existing.listener.config, config)) return "unchanged";
    const want = config.address;
    for (const [name, e] of this.#active) {
      // Compare with the bound port (port 0 chose one): SO_REUSEPORT would let a second socket bind it.
      const l = e.listener;
      if (
        name !== config.name && want.port !== 0 && l.config.address.address === want.address && l.port === want.port
      ) {
        throw new ListenerError(
          config.name,
          "address",
          `has the address ${want.address}:${want.port} of listener "${name}"`,
        );
      }
    }
    try {
      if (!existing) this.#add(config, addedViaApi);
      else this.#update(existing, config);
    } catch (e) {
      this.#stats.listener_create_failure.inc();
      if (e instanceof ListenerError) throw e;
      // A filter factory's config-time step failed.
      throw new ListenerError(config.name, "", e instanceof Error ? e.message : String(e), { cause: e });
    }
    this.#stats.listener_create_success.inc();
    return existing ? "updated" : "added";
  }

  #add(config: ListenerConfig, addedViaApi: boolean): void {
    const l = new Listener(config, this.#ctx);
    const inherited = this.inheritedSocket?.(config);
    if (inherited) inherited.taken(l.bind({ port: inherited.port, fds: inherited.fds, inherited: true }));
    else l.bind();
    this.#active.set(config.name, { listener: l, addedViaApi, lastUpdated: new Date() });
    this.#stats.listener_added.inc();
    this.#stats.total_listeners_active.set(this.#active.size);
    if (this.#accepting) this.#start(l);
  }

  #update(e: Entry, config: ListenerConfig): void {
    const old = e.listener;
    if (old.canUpdateInPlace(config)) {
      old.update(config, this.drainTimeMs);
      this.#stats.listener_in_place_updated.inc();
      log.info(`listener "${config.name}" updated in place on ${old.address}; old connections drain`);
    } else {
      const same = sameAddress(old.config, config);
      if (same && !(old.config.reusePort && config.reusePort)) {
        // Without SO_REUSEPORT on both, the new socket cannot be bound beside the old one, and closing the old one
        // first would refuse connections (or lose the port) in between.
        throw new ListenerError(
          config.name,
          "enable_reuse_port",
          "this change needs a new socket, which needs enable_reuse_port on the old and the new config " +
            "(remove the listener and add it again instead)",
        );
      }
      const next = new Listener(config, this.#ctx);
      // Same address: take over the bound port (the one port 0 chose) on a second SO_REUSEPORT socket.
      next.bind(same ? { port: old.port } : {});
      if (this.#accepting) this.#start(next);
      this.#active.set(config.name, { listener: next, addedViaApi: e.addedViaApi, lastUpdated: new Date() });
      this.#retireListener(old);
      log.info(`listener "${config.name}" replaced (new socket on ${next.address}); old connections drain`);
      this.#stats.listener_modified.inc();
      return;
    }
    e.lastUpdated = new Date();
    this.#stats.listener_modified.inc();
  }

  /**
   * Removes a listener: it stops accepting, its connections drain and are closed after the drain time. False if
   * there is none by that name; throws for a static listener unless `addedViaApi` is false.
   */
  remove(name: string, options: AddOrUpdateOptions = {}): boolean {
    const e = this.#active.get(name);
    if (!e) return false;
    if (!e.addedViaApi && (options.addedViaApi ?? true)) {
      throw new ListenerError(name, "name", "cannot be removed: it is statically configured");
    }
    this.#active.delete(name);
    this.#stats.total_listeners_active.set(this.#active.size);
    this.#stats.listener_removed.inc();
    this.#retireListener(e.listener);
    log.info(`listener "${name}" removed; its connections drain`);
    return true;
  }

  #retireListener(l: Listener): void {
    this.#draining.add(l);
    this.#stats.total_listeners_draining.set(this.#draining.size);
    l.retire(this.drainTimeMs).then(() => {
      this.#draining.delete(l);
      this.#stats.total_listeners_draining.set(this.#draining.size);
    });
  }

  /** The listener with this name. */
  get(name: string): Listener | undefined {
    return this.#active.get(name)?.listener;
  }

  /** The active listeners, in the order they were added. */
  get list(): Listener[] {
    return [...this.#active.values()].map((e) => e.listener);
  }

  /** Each active listener with whether it came from the API and when its config was last taken into service. */
  get entries(): { listener: Listener; addedViaApi: boolean; lastUpdated: Date }[] {
    return [...this.#active.values()].map((e) => ({ ...e }));
  }

  /** Open connections of every listener, draining ones included. */
  get connections(): number {
    let n = 0;
    for (const e of this.#active.values()) n += e.listener.connections;
    for (const l of this.#draining) n += l.connections;
    return n;
  }

  /** Open connections still draining: of removed or replaced listeners, and of replaced configs. */
  get drainingConnections(): number {
    let n = 0;
    for (const e of this.#active.values()) n += e.listener.drainingConnections;
    for (const l of this.#draining) n += l.connections;
    return n;
  }

  /** Starts accepting on every listener bound so far; listeners added later accept at once. */
  startAccepting(): void {
    if (this.#accepting || this.#stopped) return;
    this.#accepting = true;
    for (const e of this.#active.values()) this.#start(e.listener);
  }

  #start(l: Listener): void {
    l.start();
    const line = `listener "${l.config.name}" accepting on ${l.address} (${l.engine})`;
    if (this.#quiet) log.debug(line);
    else log.info(line);
  }

  /** Stops accepting on every listener (for good: later adds and updates throw). */
  stopAccepting(): void {
    this.#stopped = true;
    for (const e of this.#active.values()) e.listener.stopAccepting();
  }

  /** Asks every connection to drain now (HTTP: idle connections close, busy ones after the response). */
  drainConnections(): void {
    for (const e of this.#active.values()) e.listener.drainConnections();
    for (const l of this.#draining) l.drainConnections();
  }

  /** Closes every connection now, draining ones included, and every socket. */
  closeAll(): void {
    this.stopAccepting();
    for (const e of this.#active.values()) e.listener.closeAll();
    for (const l of this.#draining) l.closeAll();
  }
}

/** True if two listener configs are the same, field paths (`path`) and raw documents (`raw`) aside. */
export function sameListenerConfig(a: ListenerConfig, b: ListenerConfig): boolean {
  // The same document parses the same; otherwise compare what was parsed (snake_case vs camelCase, a moved listener).
  return deepEqual(a.raw, b.raw, false) || deepEqual(a, b, true);
}

const IGNORED = new Set(["path", "raw"]);

/**
 * Structural equality over parsed config. Objects of classes other than Object, Array, Map, Set, RegExp, Date and
 * typed arrays are equal only if identical: their state may be private (a TLS context), so two of them can look
 * alike and differ — a needless update is harmless, a missed one is not.
 */
function deepEqual(a: unknown, b: unknown, skipPaths: boolean): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  const pa = Object.getPrototypeOf(a);
  if (pa !== Object.getPrototypeOf(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((v, i) => deepEqual(v, bb[i], skipPaths));
  }
  if (ArrayBuffer.isView(a)) {
    const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    const bv = b as ArrayBufferView;
    const y = new Uint8Array(bv.buffer, bv.byteOffset, bv.byteLength);
    return x.length === y.length && x.every((v, i) => v === y[i]);
  }
  if (a instanceof RegExp) return a.source === (b as RegExp).source && a.flags === (b as RegExp).flags;
  if (a instanceof Date) return a.getTime() === (b as Date).getTime();
  if (a instanceof Map) {
    const bm = b as Map<unknown, unknown>;
    if (a.size !== bm.size) return false;
    for (const [k, v] of a) if (!bm.has(k) || !deepEqual(v, bm.get(k), skipPaths)) return false;
    return true;
  }
  if (a instanceof Set) {
    const bs = b as Set<unknown>;
    return a.size === bs.size && [...a].every((v) => bs.has(v));
  }
  if (pa !== Object.prototype && pa !== null) return false;
  const ka = Object.keys(a).filter((k) => !(skipPaths && IGNORED.has(k)));
  const kb = Object.keys(b).filter((k) => !(skipPaths && IGNORED.has(k)));
  if (ka.length !== kb.length) return false;
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  return ka.every((k) => Object.hasOwn(rb, k) && deepEqual(ra[k], rb[k], skipPaths));
}
