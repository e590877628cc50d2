/**
 * `envoy.filters.network.connection_limit`: caps the number of connections open at once through one filter chain
 * config (Envoy's `ConnectionLimit`).
 *
 * A connection over `max_connections` is counted in `limited_connections` and closed, right away or after `delay`
 * (during which nothing it sends is read on). Stats `connection_limit.<stat_prefix>.limited_connections` and the
 * gauge `active_connections`, as Envoy's. The count is per worker thread (each worker runs its own listener copy);
 * Envoy's is process-wide, so with N workers the effective cap is up to N times higher.
 *
 * @module
 */
import type {
  NetworkFilter,
  NetworkFilterCallbacks,
  NetworkFilterContext,
  NetworkFilterFactory,
  NetworkFilterFactoryCb,
  NetworkFilterStatus,
} from "../../lib/api/network.ts";
import type { Counter, Gauge } from "../../lib/api/stats.ts";
import { ObjReader } from "../../lib/config/reader.ts";
import { parseRuntimeFeatureFlag } from "./_runtime_flag.ts";
import { schedule, type WheelTimer } from "../../lib/network/timer_wheel.ts";

/** The connection limit filter's `@type`. */
export const CONNECTION_LIMIT_TYPE =
  "type.googleapis.com/envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit";

/** Parsed `ConnectionLimit`. */
export interface ConnectionLimitConfig {
  readonly statPrefix: string;
  readonly maxConnections: number;
  /** Milliseconds to wait before closing a connection over the limit (0: close at once). */
  readonly delayMs: number;
  /** `runtime_enabled.default_value` (true when absent). */
  readonly enabled: boolean;
}

/** Parses the filter's config (typed_config without `@type`). */
export function parseConnectionLimitConfig(raw: unknown, path: string): ConnectionLimitConfig {
  const o = new ObjReader(raw, path);
  o.skip("@type");
  const statPrefix = o.str("stat_prefix", { required: true });
  const maxConnections = o.int("max_connections", { required: true, min: 1 })!;
  const delayMs = o.durationMs("delay") ?? 0;
  const enabled = parseRuntimeFeatureFlag(o.obj("runtime_enabled"));
  o.done();
  return { statPrefix, maxConnections, delayMs, enabled };
}

interface Shared {
  readonly cfg: ConnectionLimitConfig;
  readonly limited: Counter;
  readonly active: Gauge;
  /** Connections counted against the limit now. */
  open: number;
}

/** The per-connection filter: takes a slot on a new connection, gives it back on close. */
export class ConnectionLimitFilter implements NetworkFilter {
  readonly #s: Shared;
  readonly #cb: NetworkFilterCallbacks;
  #counted = false;
  #timer: WheelTimer | undefined;

  constructor(s: Shared, cb: NetworkFilterCallbacks) {
    this.#s = s;
    this.#cb = cb;
  }

  onNewConnection(): NetworkFilterStatus {
    const s = this.#s;
    if (!s.cfg.enabled) return "continue";
    if (s.open < s.cfg.maxConnections) {
      s.open++;
      s.active.inc();
      this.#counted = true;
      return "continue";
    }
    s.limited.inc();
    const conn = this.#cb.connection;
    if (s.cfg.delayMs > 0) {
      conn.readDisable(true);
      this.#timer = schedule(s.cfg.delayMs, () => {
        this.#timer = undefined;
        conn.close({ reason: "connection_limit" });
      });
    } else conn.close({ reason: "connection_limit" });
    return "stop";
  }

  onData(_data: Uint8Array, _endStream: boolean): NetworkFilterStatus {
    return this.#counted || !this.#s.cfg.enabled ? "continue" : "stop";
  }

  onClose(_reason: string): void {
    this.#timer?.cancel();
    if (this.#counted) {
      this.#counted = false;
      this.#s.open--;
      this.#s.active.dec();
    }
  }
}

/** The config-time step: one counter of open connections per filter chain config. */
export function createConnectionLimitFactory(
  config: ConnectionLimitConfig,
  context: NetworkFilterContext,
): NetworkFilterFactoryCb {
  const scope = context.stats.scope(`connection_limit.${config.statPrefix}`);
  const s: Shared = {
    cfg: config,
    limited: scope.counter("limited_connections"),
    active: scope.gauge("active_connections"),
    open: 0,
  };
  return (callbacks) => new ConnectionLimitFilter(s, callbacks);
}

/** The connection limit filter factory. */
export const connectionLimitFilterFactory: NetworkFilterFactory<ConnectionLimitConfig> = {
  name: "envoy.filters.network.connection_limit",
  configTypes: [CONNECTION_LIMIT_TYPE],
  parseConfig: parseConnectionLimitConfig,
  createFactory: createConnectionLimitFactory,
  create(config, callbacks, context) {
    return createConnectionLimitFactory(config, context)(callbacks);
  },
};
