/**
 * Per-route filter config (`typed_per_filter_config`): the most specific entry of the matched route, its virtual
 * host, or the route configuration, parsed once per raw entry (the cache lives in the filter's config-time
 * closure, so it goes away with the config).
 *
 * @module
 */
import type { StreamFilterCallbacks } from "../../lib/api/stream_filter.ts";
import { type ObjReader, typedConfig } from "../../lib/config/reader.ts";

/** Parses and caches the per-route config entries of one filter. */
export class PerRouteConfigs<T> {
  readonly #name: string;
  readonly #types: readonly string[];
  readonly #parse: (o: ObjReader) => T;
  readonly #cache = new WeakMap<object, T>();

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
  lookup(cb: StreamFilterCallbacks): T | undefined {
    const r = cb.route;
    if (!r) return undefined;
    const raw = r.route.typedPerFilterConfig[this.#name] ?? r.vhost.typedPerFilterConfig[this.#name] ??
      r.config.typedPerFilterConfig[this.#name];
    if (raw === undefined || raw === null || typeof raw !== "object") return undefined;
    const hit = this.#cache.get(raw);
    if (hit !== undefined) return hit;
    const parsed = this.parse(raw, `typed_per_filter_config.${this.#name}`);
    this.#cache.set(raw, parsed);
    return parsed;
  }

  /** Parses one raw entry (with its `@type`, which must be one of the accepted ones). */
  parse(raw: unknown, path: string): T {
    return this.#parse(typedConfig(raw, path, this.#types));
  }
}
