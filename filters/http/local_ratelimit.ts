/**
 * `envoy.filters.http.local_ratelimit`: a token bucket per filter config (and one per `typed_per_filter_config`
 * entry of a route, virtual host or route configuration), answering `429` (or the configured `status`) with body
 * `local_rate_limited` when it is empty. As in Envoy the filter does nothing unless `filter_enabled` selects the
 * request (its default is 0%), and only rejects when `filter_enforced` does too; otherwise a limited request goes on
 * with `request_headers_to_add_when_not_enforced`. `enable_x_ratelimit_headers: DRAFT_VERSION_03` adds
 * `x-ratelimit-limit`, `x-ratelimit-remaining` and `x-ratelimit-reset` to every response of a checked request.
 *
 * Stats `http.<hcm prefix>.<stat_prefix>.http_local_rate_limit.{enabled,enforced,rate_limited,ok}` (Envoy roots
 * them at `<stat_prefix>.`; a filter here sees only the connection manager's scope).
 *
 * @module
 */
import { ConfigError } from "../../lib/api/errors.ts";
import type { HeaderMap } from "../../lib/api/headers.ts";
import type { HeaderMutation } from "../../lib/api/route.ts";
import type { Counter } from "../../lib/api/stats.ts";
import type {
  FilterFactoryContext,
  FilterResult,
  HttpFilterFactory,
  StreamFilter,
  StreamFilterCallbacks,
} from "../../lib/api/stream_filter.ts";
import { ObjReader } from "../../lib/config/reader.ts";
import { approxNow } from "../../lib/network/clock.ts";
import { applyHeaderMutation } from "../../lib/router/mod.ts";
import { serverRuntime } from "../../lib/runtime/mod.ts";
import { NO_MUTATION, parseHeaderAdditions } from "./_header_options.ts";
import { DISABLED, PerRouteConfigs } from "./_per_route.ts";

/** The local rate limit filter's `@type`. */
export const LOCAL_RATELIMIT_TYPE =
  "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";

const NAME = "envoy.filters.http.local_ratelimit";

/** Envoy's `RuntimeFractionalPercent`: a default probability a runtime key may override. */
export interface RuntimeFraction {
  /** Default numerator. */
  readonly numerator: number;
  /** 100, 10 000 or 1 000 000. */
  readonly denominator: number;
  /** `runtime_key`, if set. */
  readonly runtimeKey: string | undefined;
}

/** Envoy's `TokenBucket`. */
export interface TokenBucketConfig {
  readonly maxTokens: number;
  readonly tokensPerFill: number;
  readonly fillIntervalMs: number;
}

/** Parsed `LocalRateLimit`. */
export interface LocalRateLimitConfig {
  readonly statPrefix: string;
  /** Status of a rejected request (default 429). */
  readonly status: number;
  /** No bucket: the filter lets everything through (a per-route entry may bring one). */
  readonly tokenBucket: TokenBucketConfig | undefined;
  readonly filterEnabled: RuntimeFraction;
  readonly filterEnforced: RuntimeFraction;
  readonly requestHeadersWhenNotEnforced: HeaderMutation;
  readonly responseHeaders: HeaderMutation;
  /** `enable_x_ratelimit_headers: DRAFT_VERSION_03`. */
  readonly xRateLimitHeaders: boolean;
  /** `rate_limited_as_resource_exhausted`: gRPC status 8 instead of 14 for a rejected gRPC request. */
  readonly resourceExhausted: boolean;
}

const DENOMINATORS = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 } as const;

function parseRuntimeFraction(o: ObjReader | undefined): RuntimeFraction {
  if (!o) return { numerator: 0, denominator: 100, runtimeKey: undefined };
  const d = o.obj("default_value", { required: true })!;
  const numerator = d.int("numerator", { min: 0 }) ?? 0;
  const denominator =
    DENOMINATORS[d.enumOf("denominator", ["HUNDRED", "TEN_THOUSAND", "MILLION"] as const) ?? "HUNDRED"];
  d.done();
  const runtimeKey = o.str("runtime_key");
  o.done();
  return { numerator, denominator, runtimeKey };
}

function parseTokenBucket(o: ObjReader): TokenBucketConfig {
  const maxTokens = o.int("max_tokens", { required: true, min: 1 })!;
  const tpf = o.value("tokens_per_fill");
  // A UInt32Value: a number, or {value: n}.
  const tokensPerFill = tpf === undefined
    ? 1
    : typeof tpf === "object" && tpf !== null
    ? new ObjReader(tpf, o.at("tokens_per_fill")).int("value", { required: true, min: 1 })!
    : typeof tpf === "number" && Number.isInteger(tpf) && tpf >= 1
    ? tpf
    : (() => {
      throw new ConfigError(o.at("tokens_per_fill"), "expected an integer ≥ 1");
    })();
  const fillIntervalMs = o.durationMs("fill_interval", { required: true })!;
  if (fillIntervalMs < 50) throw new ConfigError(o.at("fill_interval"), "must be at least 50ms (as in Envoy)");
  o.done();
  return { maxTokens, tokensPerFill, fillIntervalMs };
}

/** Reads a `LocalRateLimit` message (after `@type`). */
export function readLocalRateLimit(o: ObjReader): LocalRateLimitConfig {
  o.skip("@type");
  const statPrefix = o.str("stat_prefix", { required: true });
  if (statPrefix === "") throw new ConfigError(o.at("stat_prefix"), "must not be empty");
  const st = o.obj("status");
  let status = 429;
  if (st) {
    status = st.int("code", { required: true, min: 400, max: 599 })!;
    st.done();
  }
  const tb = o.obj("token_bucket");
  const tokenBucket = tb ? parseTokenBucket(tb) : undefined;
  const filterEnabled = parseRuntimeFraction(o.obj("filter_enabled"));
  const filterEnforced = parseRuntimeFraction(o.obj("filter_enforced"));
  const requestHeadersWhenNotEnforced = parseHeaderAdditions(o, "request_headers_to_add_when_not_enforced", "request");
  const responseHeaders = parseHeaderAdditions(o, "response_headers_to_add", "response");
  if (o.objs("descriptors", (d) => d).length > 0) {
    throw new ConfigError(
      o.at("descriptors"),
      "is not supported: descriptors need the route's rate_limits actions, which Ferry does not support yet",
    );
  }
  o.int("stage", { min: 0, max: 10 });
  if (o.bool("local_rate_limit_per_downstream_connection") === true) {
    throw new ConfigError(o.at("local_rate_limit_per_downstream_connection"), "is not supported yet");
  }
  o.unsupported("local_cluster_rate_limit", "is not supported");
  const x = o.enumOf("enable_x_ratelimit_headers", ["OFF", "DRAFT_VERSION_03"] as const) ?? "OFF";
  o.enumOf("vh_rate_limits", ["OVERRIDE", "INCLUDE", "IGNORE"] as const);
  const ac = o.value("always_consume_default_token_bucket");
  if (ac !== undefined && typeof ac !== "boolean" && !(typeof ac === "object" && ac !== null)) {
    throw new ConfigError(o.at("always_consume_default_token_bucket"), "expected a boolean");
  }
  const resourceExhausted = o.bool("rate_limited_as_resource_exhausted") ?? false;
  o.done();
  return {
    statPrefix,
    status,
    tokenBucket,
    filterEnabled,
    filterEnforced,
    requestHeadersWhenNotEnforced,
    responseHeaders,
    xRateLimitHeaders: x === "DRAFT_VERSION_03",
    resourceExhausted,
  };
}

function parseLocalRateLimitConfig(raw: Record<string, unknown>, path: string): LocalRateLimitConfig {
  return readLocalRateLimit(new ObjReader(raw, path));
}

/**
 * A token bucket filled in whole steps: `tokensPerFill` every `fillIntervalMs`, up to `maxTokens` (Envoy's timer
 * fill, computed lazily on use so an idle bucket costs nothing). The clock defaults to the request path's
 * approximate one (`approxNow`), which is at most a sub-millisecond event-loop batch old.
 */
export class TokenBucket {
  readonly config: TokenBucketConfig;
  #tokens: number;
  #lastFill: number;
  readonly #now: () => number;

  constructor(config: TokenBucketConfig, now: () => number = approxNow) {
    this.config = config;
    this.#now = now;
    this.#tokens = config.maxTokens;
    this.#lastFill = now();
  }

  #refill(now: number): void {
    const c = this.config;
    const steps = Math.floor((now - this.#lastFill) / c.fillIntervalMs);
    if (steps <= 0) return;
    this.#tokens = Math.min(c.maxTokens, this.#tokens + steps * c.tokensPerFill);
    this.#lastFill += steps * c.fillIntervalMs;
  }

  /** Takes one token; false if the bucket is empty. */
  consume(): boolean {
    this.#refill(this.#now());
    if (this.#tokens < 1) return false;
    this.#tokens--;
    return true;
  }

  /** Tokens left now. */
  get remaining(): number {
    this.#refill(this.#now());
    return this.#tokens;
  }

  /** Whole seconds until the next fill (at least 1, as `x-ratelimit-reset` counts seconds). */
  get resetSeconds(): number {
    const now = this.#now();
    this.#refill(now);
    return Math.max(1, Math.ceil((this.#lastFill + this.config.fillIntervalMs - now) / 1000));
  }
}

interface LocalRateLimitStats {
  enabled: Counter;
  enforced: Counter;
  rate_limited: Counter;
  ok: Counter;
}

/** What a stream checks against: a config and its bucket. */
interface Limiter {
  readonly config: LocalRateLimitConfig;
  readonly bucket: TokenBucket | undefined;
}

function fractionHits(f: RuntimeFraction): boolean {
  const p = serverRuntime.fraction(f.runtimeKey, f.numerator, f.denominator);
  return p >= 1 || (p > 0 && Math.random() < p);
}

/** The per-stream local rate limit filter. */
export class LocalRateLimitFilter implements StreamFilter {
  readonly #limiter: Limiter;
  readonly #perRoute: PerRouteConfigs<Limiter>;
  readonly #cb: StreamFilterCallbacks;
  readonly #stats: LocalRateLimitStats;
  /** The limiter that checked this request, for the `x-ratelimit-*` headers. */
  #checked: Limiter | undefined;
  #limited = false;

  constructor(
    limiter: Limiter,
    perRoute: PerRouteConfigs<Limiter>,
    cb: StreamFilterCallbacks,
    stats: LocalRateLimitStats,
  ) {
    this.#limiter = limiter;
    this.#perRoute = perRoute;
    this.#cb = cb;
    this.#stats = stats;
  }

  decodeHeaders(headers: HeaderMap, _endStream: boolean): FilterResult {
    const r = this.#perRoute.lookup(this.#cb);
    if (r === DISABLED) return "continue";
    const l = r ?? this.#limiter;
    const bucket = l.bucket;
    if (bucket === undefined) return "continue";
    const cfg = l.config;
    if (!fractionHits(cfg.filterEnabled)) return "continue";
    this.#stats.enabled.inc();
    this.#checked = l;
    if (bucket.consume()) {
      this.#stats.ok.inc();
      return "continue";
    }
    this.#stats.rate_limited.inc();
    if (!fractionHits(cfg.filterEnforced)) {
      applyHeaderMutation(cfg.requestHeadersWhenNotEnforced, headers);
      return "continue";
    }
    this.#stats.enforced.inc();
    this.#limited = true;
    this.#cb.sendLocalReply(cfg.status, "local_rate_limited", {
      responseFlag: "RL",
      details: "local_rate_limited",
      grpcStatus: cfg.resourceExhausted ? 8 : 14,
    });
    return "stop";
  }

  encodeHeaders(headers: HeaderMap, _endStream: boolean): FilterResult {
    const l = this.#checked;
    if (l === undefined) return "continue";
    if (this.#limited && l.config.responseHeaders !== NO_MUTATION) {
      applyHeaderMutation(l.config.responseHeaders, headers, { requestHeaders: this.#cb.requestHeaders });
    }
    if (l.config.xRateLimitHeaders && l.bucket) {
      headers.set("x-ratelimit-limit", String(l.bucket.config.maxTokens));
      headers.set("x-ratelimit-remaining", String(l.bucket.remaining));
      headers.set("x-ratelimit-reset", String(l.bucket.resetSeconds));
    }
    return "continue";
  }
}

/**
 * The config-time step: the filter config's bucket (shared by every stream of this config, on this thread), the
 * stats, and the cache of per-route entries, each with its own bucket.
 */
export function createLocalRateLimitFactory(
  config: LocalRateLimitConfig,
  context: FilterFactoryContext,
): (callbacks: StreamFilterCallbacks) => StreamFilter {
  const s = context.scope.scope(`${config.statPrefix}.http_local_rate_limit`);
  const stats: LocalRateLimitStats = {
    enabled: s.counter("enabled"),
    enforced: s.counter("enforced"),
    rate_limited: s.counter("rate_limited"),
    ok: s.counter("ok"),
  };
  const limiter = (c: LocalRateLimitConfig): Limiter => ({
    config: c,
    bucket: c.tokenBucket ? new TokenBucket(c.tokenBucket) : undefined,
  });
  const own = limiter(config);
  const perRoute = new PerRouteConfigs(NAME, [LOCAL_RATELIMIT_TYPE], (o) => limiter(readLocalRateLimit(o)));
  return (callbacks) => new LocalRateLimitFilter(own, perRoute, callbacks, stats);
}

/** The local rate limit filter factory. */
export const localRateLimitFilterFactory: HttpFilterFactory<LocalRateLimitConfig> = {
  name: NAME,
  configTypes: [LOCAL_RATELIMIT_TYPE],
  parseConfig: parseLocalRateLimitConfig,
  createFactory: createLocalRateLimitFactory,
  create(_config, _callbacks, _context) {
    throw new Error("local_ratelimit: the filter is built through createFactory (its bucket is per config)");
  },
};
