/**
 * `envoy.filters.network.local_ratelimit`: a token bucket on new connections (Envoy's network `LocalRateLimit`).
 *
 * Each new connection takes one token; with none left it is counted in `local_ratelimit.<stat_prefix>.rate_limited`
 * and closed before any filter after this one sees it. The bucket starts full (`max_tokens`) and gains
 * `tokens_per_fill` (default 1) every `fill_interval` (at least 50 ms, as Envoy requires), up to `max_tokens`. The
 * bucket belongs to one filter chain config of one worker (Envoy's is per listener config, process-wide);
 * `share_key` is not supported.
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
import { parseRuntimeFeatureFlag } from "./_runtime_flag.ts";

/** The network local rate limit filter's `@type`. */
export const NETWORK_LOCAL_RATELIMIT_TYPE =
  "type.googleapis.com/envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit";

/** Envoy's `type.v3.TokenBucket`. */
export interface TokenBucketConfig {
  readonly maxTokens: number;
  readonly tokensPerFill: number;
  readonly fillIntervalMs: number;
}

/** Parsed `LocalRateLimit`. */
export interface NetworkLocalRateLimitConfig {
  readonly statPrefix: string;
  readonly tokenBucket: TokenBucketConfig;
  /** `runtime_enabled.default_value` (true when absent). */
  readonly enabled: boolean;
}

/** Parses a `TokenBucket` (`max_tokens`, `tokens_per_fill`, `fill_interval` ≥ 50 ms). */
export function parseTokenBucket(o: ObjReader): TokenBucketConfig {
  const maxTokens = o.int("max_tokens", { required: true, min: 1, max: 0xffffffff })!;
  const tokensPerFill = o.int("tokens_per_fill", { min: 1, max: 0xffffffff }) ?? 1;
  const fillIntervalMs = o.durationMs("fill_interval", { required: true })!;
  if (fillIntervalMs < 50) throw new ConfigError(o.at("fill_interval"), "must be at least 50ms");
  o.done();
  return { maxTokens, tokensPerFill, fillIntervalMs };
}

/** Parses the filter's config (typed_config without `@type`). */
export function parseNetworkLocalRateLimitConfig(raw: unknown, path: string): NetworkLocalRateLimitConfig {
  const o = new ObjReader(raw, path);
  o.skip("@type");
  const statPrefix = o.str("stat_prefix", { required: true });
  const tokenBucket = parseTokenBucket(o.obj("token_bucket", { required: true })!);
  const enabled = parseRuntimeFeatureFlag(o.obj("runtime_enabled"));
  o.unsupported("share_key", "is not supported");
  o.done();
  return { statPrefix, tokenBucket, enabled };
}

/**
 * A token bucket refilled lazily from the clock: whole fill intervals elapsed since the last refill each add
 * `tokensPerFill` (no timer, so an idle listener costs nothing).
 */
export class TokenBucket {
  readonly #cfg: TokenBucketConfig;
  readonly #now: () => number;
  #tokens: number;
  #lastFill: number;

  constructor(cfg: TokenBucketConfig, now: () => number = () => performance.now()) {
    this.#cfg = cfg;
    this.#now = now;
    this.#tokens = cfg.maxTokens;
    this.#lastFill = now();
  }

  /** Takes one token; false when the bucket is empty. */
  tryConsume(): boolean {
    const c = this.#cfg;
    const now = this.#now();
    const fills = Math.floor((now - this.#lastFill) / c.fillIntervalMs);
    if (fills > 0) {
      this.#tokens = Math.min(c.maxTokens, this.#tokens + fills * c.tokensPerFill);
      this.#lastFill += fills * c.fillIntervalMs;
    }
    if (this.#tokens < 1) return false;
    this.#tokens--;
    return true;
  }
}

/** The per-connection filter. */
export class NetworkLocalRateLimitFilter implements NetworkFilter {
  readonly #bucket: TokenBucket;
  readonly #limited: Counter;
  readonly #cb: NetworkFilterCallbacks;
  readonly #enabled: boolean;
  #denied = false;

  constructor(bucket: TokenBucket, limited: Counter, cb: NetworkFilterCallbacks, enabled: boolean) {
    this.#bucket = bucket;
    this.#limited = limited;
    this.#cb = cb;
    this.#enabled = enabled;
  }

  onNewConnection(): NetworkFilterStatus {
    if (!this.#enabled || this.#bucket.tryConsume()) return "continue";
    this.#denied = true;
    this.#limited.inc();
    this.#cb.connection.close({ reason: "local_ratelimit" });
    return "stop";
  }

  onData(_data: Uint8Array, _endStream: boolean): NetworkFilterStatus {
    return this.#denied ? "stop" : "continue";
  }
}

/** The config-time step: one bucket per filter chain config. */
export function createNetworkLocalRateLimitFactory(
  config: NetworkLocalRateLimitConfig,
  context: NetworkFilterContext,
): NetworkFilterFactoryCb {
  const bucket = new TokenBucket(config.tokenBucket);
  const limited = context.stats.scope(`local_ratelimit.${config.statPrefix}`).counter("rate_limited");
  return (callbacks) => new NetworkLocalRateLimitFilter(bucket, limited, callbacks, config.enabled);
}

/** The network local rate limit filter factory. */
export const networkLocalRateLimitFilterFactory: NetworkFilterFactory<NetworkLocalRateLimitConfig> = {
  name: "envoy.filters.network.local_ratelimit",
  configTypes: [NETWORK_LOCAL_RATELIMIT_TYPE],
  parseConfig: parseNetworkLocalRateLimitConfig,
  createFactory: createNetworkLocalRateLimitFactory,
  create(config, callbacks, context) {
    return createNetworkLocalRateLimitFactory(config, context)(callbacks);
  },
};
