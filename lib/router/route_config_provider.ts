/**
 * Route-config providers: one route configuration as immutable snapshots ({@link RouteTable}s), replaced as a
 * whole for new streams while streams in flight finish on the snapshot they began with.
 *
 * @example
 * ```ts ignore
 * const providers = new RouteConfigProviders();
 * const p = providers.provide(parseRouteConfiguration(raw, "route_config"));
 * const table = p.current; // a stream keeps this
 * providers.update(parseRouteConfiguration(newRaw, "route_config")); // p.current is a new table
 * ```
 *
 * @module
 */
import type { RouteConfig, RouteConfigProvider, RouteConfigProviderManager } from "../api/route.ts";
import { RouteTable } from "./route_table.ts";

/** One route configuration's snapshots; see the module doc. */
export class RouteConfigProviderImpl implements RouteConfigProvider {
  #current: RouteTable;
  #version = 1;

  constructor(config: RouteConfig) {
    this.#current = new RouteTable(config);
  }

  get name(): string {
    return this.#current.config.name;
  }

  get current(): RouteTable {
    return this.#current;
  }

  get version(): number {
    return this.#version;
  }

  /** Installs a new configuration for streams that begin from now on (the table is built before the swap). */
  update(config: RouteConfig): void {
    const next = new RouteTable(config);
    this.#current = next;
    this.#version++;
  }
}

/** The server's providers by route configuration name; see {@link RouteConfigProviderManager}. */
export class RouteConfigProviders implements RouteConfigProviderManager {
  /** Weak, so a provider goes with the last listener config (and its connections) that used it. */
  readonly #byName = new Map<string, Set<WeakRef<RouteConfigProviderImpl>>>();

  provide(config: RouteConfig): RouteConfigProviderImpl {
    const p = new RouteConfigProviderImpl(config);
    let set = this.#byName.get(config.name);
    if (!set) this.#byName.set(config.name, set = new Set());
    set.add(new WeakRef(p));
    return p;
  }

  update(config: RouteConfig): number {
    const set = this.#byName.get(config.name);
    if (!set) return 0;
    let n = 0;
    for (const ref of set) {
      const p = ref.deref();
      if (p === undefined) {
        set.delete(ref);
        continue;
      }
      p.update(config);
      n++;
    }
    if (set.size === 0) this.#byName.delete(config.name);
    return n;
  }
}
