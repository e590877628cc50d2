/**
 * Per-route filter config (`typed_per_filter_config`): the most specific entry of the matched route, its virtual
 * host, or the route configuration, parsed once per raw entry (the cache lives in the filter's config-time
 * closure, so it goes away with the config). An entry may be wrapped in Envoy's generic
 * `envoy.config.route.v3.FilterConfig`: `disabled: true` turns the filter off for that route ({@link DISABLED}),
 * `config` holds the filter's own per-route message.
 *
 * @module
 */
import { ConfigError } from "../../lib/api/errors.ts";
import type { RouteResult } from "../../lib/api/route.ts";
import type { StreamFilterCallbacks } from "../../lib/api/stream_filter.ts";
import { type ObjReader, typedConfig } from "../../lib/config/reader.ts";

/** Envoy's generic per-route wrapper. */
export const FILTER_CONFIG_TYPE = "type.googleapis.com/envoy.config.route.v3.FilterConfig";

/** What a `FilterConfig` with `disabled: true` parses to: the filter does nothing on that route. */
export const DISABLED: unique symbol = Symbol("disabled");

/**
 * The most specific `typed_per_filter_config` entry for a route: the route's, then its virtual host's, then the
 * route configuration's. `pick` chooses the filter's entry in one map (default: the entry keyed `name`).
 */
export function routeEntry(
  r: RouteResult,
  name: string,
  pick: (m: Readonly<Record<string, unknown>>) => unknown = (m) => m[name],
): unknown {
  return pick(r.route.typedPerFilterConfig) ?? pick(r.vhost.typedPerFilterConfig) ??
    pick(r.config.typedPerFilterConfig);
}

/**
 * A per-route lookup for one filter config without the `FilterConfig` wrapper: the entry {@link routeEntry} finds
 * is parsed by `parse` (path `typed_per_filter_config.<name>`) on first use and kept, by the raw entry's identity,
 * for the life of the returned function (the config's closure).
 */
export function cachedPerRoute<T>(
  name: string,
  parse: (raw: object, path: string) => T,
  pick?: (m: Readonly<Record<string, unknown>>) => unknown,
): (r: RouteResult | null) => T | undefined {
  const cache = new WeakMap<object, T>();
  return (r) => {
    if (!r) return undefined;
    const raw = routeEntry(r, name, pick);
    if (raw === null || typeof raw !== "object") return undefined;
    if (cache.has(raw)) return cache.get(raw);
    const p = parse(raw, `typed_per_filter_config.${name}`);
    cache.set(raw, p);
    return p;
  };
}

/** Parses and caches the per-route config entries of one filter. */
export class PerRouteConfigs<T> {
  readonly #name: string;
  readonly #types: readonly string[];
  readonly #parse: (o: ObjReader) => T;
  readonly #cache = new WeakMap<object, T | typeof DISABLED>();

  /**
   * @param name the filter name the entries are keyed by (Envoy's filter name, e.g. `envoy.filters.http.cors`)
   * @param types the accepted `@type` URLs of an entry
   * @param parse reads an entry (positioned after `@type`); throws ConfigError with the field path
   */
  constructor(name: string, types: readonly string[], parse: (o: ObjReader) => T) {
    this.#name = name;
    this.#types = types;
    this.#parse = parse;
  }

  /** The most specific entry for the stream's route (route, then virtual host, then route config), if any. */
  lookup(cb: StreamFilterCallbacks): T | typeof DISABLED | undefined {
    return this.lookupRoute(cb.route);
  }

  /** {@link lookup} for a route result. */
  lookupRoute(r: RouteResult | null): T | typeof DISABLED | undefined {
    return r ? this.entry(routeEntry(r, this.#name)) : undefined;
  }

  /** One raw entry, parsed (cached by identity); undefined for a missing entry. */
  entry(raw: unknown): T | typeof DISABLED | undefined {
    if (raw === undefined || raw === null || typeof raw !== "object") return undefined;
    const hit = this.#cache.get(raw);
    if (hit !== undefined) return hit;
    const parsed = this.parse(raw, `typed_per_filter_config.${this.#name}`);
    this.#cache.set(raw, parsed);
    return parsed;
  }

  /** Parses one raw entry (with its `@type`, which must be one of the accepted ones or `FilterConfig`). */
  parse(raw: unknown, path: string): T | typeof DISABLED {
    const o = typedConfig(raw, path, [...this.#types, FILTER_CONFIG_TYPE]);
    if (o.raw["@type"] !== FILTER_CONFIG_TYPE) return this.#parse(o);
    o.bool("is_optional");
    const disabled = o.bool("disabled") ?? false;
    const inner = o.value("config");
    o.done();
    if (disabled) return DISABLED;
    if (inner === undefined) throw new ConfigError(path, "FilterConfig needs config or disabled: true");
    return this.#parse(typedConfig(inner, `${path}.config`, this.#types));
  }
}
