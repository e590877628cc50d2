/**
 * `ferry.filters.network.fault`: network fault injection (MOSN's `fault_inject` network filter), to see how clients
 * and services cope with a slow or failing link.
 *
 * Config (`@type: type.googleapis.com/ferry.filters.network.fault.v1.Fault`, our own message):
 * - `delay_percent` (0–100) and `delay` (a Duration): each chunk read from the downstream is, with that
 *   probability, held for `delay` before it goes on to the next filter (later chunks queue behind it, in order);
 * - `abort_percent` (0–100): each chunk read closes the connection with that probability instead (checked first);
 * - `stat_prefix` (optional): stats `fault_inject.<stat_prefix>.delays_injected` / `aborts_injected`
 *   (`fault_inject.` without one).
 *
 * Put it before `tcp_proxy` (or any terminal filter) in a chain.
 *
 * @module
 */
import { ConfigError } from "../../lib/api/errors.ts";
import type {
  NetworkFilter,
  NetworkFilterCallbacks,
  NetworkFilterContext,
  NetworkFilterFactory,
  NetworkFilterFactoryCb,
  NetworkFilterStatus,
} from "../../lib/api/network.ts";
import type { Counter } from "../../lib/api/stats.ts";
import { ObjReader } from "../../lib/config/reader.ts";
import { schedule, type WheelTimer } from "../../lib/network/timer_wheel.ts";

/** The network fault filter's `@type` (a Ferry message). */
export const NETWORK_FAULT_TYPE = "type.googleapis.com/ferry.filters.network.fault.v1.Fault";

/** Parsed `ferry.filters.network.fault.v1.Fault`. */
export interface NetworkFaultConfig {
  /** Probability in [0, 1] that a chunk is delayed. */
  readonly delayFraction: number;
  readonly delayMs: number;
  /** Probability in [0, 1] that a chunk closes the connection. */
  readonly abortFraction: number;
  readonly statPrefix: string;
}

/** Parses the filter's config (typed_config without `@type`). */
export function parseNetworkFaultConfig(raw: unknown, path: string): NetworkFaultConfig {
  const o = new ObjReader(raw, path);
  o.skip("@type");
  const delayPercent = o.num("delay_percent", { min: 0, max: 100 }) ?? 0;
  const delayMs = o.durationMs("delay") ?? 0;
  if (delayPercent > 0 && delayMs <= 0) throw new ConfigError(o.at("delay"), "is required when delay_percent is set");
  const abortPercent = o.num("abort_percent", { min: 0, max: 100 }) ?? 0;
  const statPrefix = o.str("stat_prefix") ?? "";
  o.done();
  return { delayFraction: delayPercent / 100, delayMs, abortFraction: abortPercent / 100, statPrefix };
}

interface Stats {
  delays: Counter;
  aborts: Counter;
}

/** The per-connection fault filter. */
export class NetworkFaultFilter implements NetworkFilter {
  readonly #cfg: NetworkFaultConfig;
  readonly #cb: NetworkFilterCallbacks;
  readonly #stats: Stats;
  readonly #random: () => number;
  #timer: WheelTimer | undefined;
  #aborted = false;

  constructor(cfg: NetworkFaultConfig, cb: NetworkFilterCallbacks, stats: Stats, random: () => number) {
    this.#cfg = cfg;
    this.#cb = cb;
    this.#stats = stats;
    this.#random = random;
  }

  onData(_data: Uint8Array, _endStream: boolean): NetworkFilterStatus {
    if (this.#aborted) return "stop";
    // Held behind a delay already: keep the order, draw nothing for this chunk.
    if (this.#timer !== undefined) return "stop";
    const cfg = this.#cfg;
    if (cfg.abortFraction > 0 && this.#random() < cfg.abortFraction) {
      this.#aborted = true;
      this.#stats.aborts.inc();
      this.#cb.connection.close({ reason: "fault_inject_abort" });
      return "stop";
    }
    if (cfg.delayFraction > 0 && this.#random() < cfg.delayFraction) {
      this.#stats.delays.inc();
      this.#timer = schedule(cfg.delayMs, () => {
        this.#timer = undefined;
        this.#cb.continueReading();
      });
      return "stop";
    }
    return "continue";
  }

  onClose(_reason: string): void {
    this.#timer?.cancel();
    this.#timer = undefined;
  }
}

/** The config-time step: counters once per filter chain config. `random` is for tests. */
export function createNetworkFaultFactory(
  config: NetworkFaultConfig,
  context: NetworkFilterContext,
  random: () => number = Math.random,
): NetworkFilterFactoryCb {
  const s = context.stats.scope(config.statPrefix === "" ? "fault_inject" : `fault_inject.${config.statPrefix}`);
  const stats: Stats = { delays: s.counter("delays_injected"), aborts: s.counter("aborts_injected") };
  return (callbacks) => new NetworkFaultFilter(config, callbacks, stats, random);
}

/** The network fault filter factory. */
export const networkFaultFilterFactory: NetworkFilterFactory<NetworkFaultConfig> = {
  name: "ferry.filters.network.fault",
  configTypes: [NETWORK_FAULT_TYPE],
  parseConfig: parseNetworkFaultConfig,
  createFactory: (config, context) => createNetworkFaultFactory(config, context),
  create(config, callbacks, context) {
    return createNetworkFaultFactory(config, context)(callbacks);
  },
};
