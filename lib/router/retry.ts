/**
 * Retry decisions for one request, as Envoy's `RetryStateImpl`: which responses and resets are retriable under
 * `retry_on`, how many retries remain, the back-off between attempts, and the `previous_hosts` predicate.
 *
 * Back-off is Envoy's `JitteredExponentialBackOffStrategy`: the n-th back-off (n = 0, 1, ...) is uniform in
 * `[0, min(base · 2^n, max))` ms, i.e. the ceiling doubles from `base_interval` until it reaches `max_interval`
 * (Envoy's docs state the range for retry N ≥ 1 as `[0, (2^N − 1) · base)`; the code, which we follow, uses
 * `base · 2^(N−1)`; both are fully jittered and capped by `max_interval`).
 *
 * @module
 */
import type { HeaderMap } from "../api/headers.ts";
import { matchHeader, matchHeaders } from "./matchers.ts";
import type { RetryOn, RetryPolicy } from "./types.ts";

/**
 * Why an upstream attempt failed without a response: `connect-failure` (connect error or connect timeout),
 * `reset` (the stream or connection was reset or closed before a complete response), `refused-stream` (HTTP/2
 * REFUSED_STREAM), `timeout` (the per-try timeout fired; the global route timeout is never retried, so the router
 * does not ask), `overflow` (a circuit breaker refused the request; never retried).
 */
export type RetryResetReason = "connect-failure" | "reset" | "refused-stream" | "timeout" | "overflow";

const GRPC_CODES: Partial<Record<string, RetryOn>> = {
  "1": "cancelled",
  "4": "deadline-exceeded",
  "8": "resource-exhausted",
  "13": "internal",
  "14": "unavailable",
};

/**
 * The retry state of one downstream request. Create it once per request (after {@link effectiveRetryPolicy});
 * ask `shouldRetryHeaders` on each upstream response and `shouldRetryReset` on each failed attempt; a `true`
 * answer consumes one retry, and the router waits `nextBackoffMs()` before the next attempt. When the answer is
 * false because retries ran out, `limitExceeded` is true (response flag `URX`).
 *
 * @example
 * ```ts
 * const retry = new RetryState(effectiveRetryPolicy(action.retryPolicy, headers));
 * if (retry.shouldRetryHeaders(502, responseHeaders)) setTimeout(attemptAgain, retry.nextBackoffMs());
 * ```
 */
export class RetryState {
  /** The policy in force (undefined = no retries). */
  readonly policy: RetryPolicy | undefined;
  #remaining: number;
  #random: () => number;
  #nextInterval: number;
  #limitExceeded = false;
  #attempted: string[] = [];

  /** `random` returns floats in [0, 1) and drives the back-off jitter (injectable for tests). */
  constructor(policy: RetryPolicy | undefined, random: () => number = Math.random) {
    this.policy = policy;
    this.#remaining = policy === undefined || policy.retryOn.size === 0 ? 0 : policy.numRetries;
    this.#random = random;
    this.#nextInterval = policy?.backoffBaseMs ?? 25;
  }

  /** Retries left. */
  get remaining(): number {
    return this.#remaining;
  }

  /** True when the last refused decision was refused only because no retries were left (`URX`). */
  get limitExceeded(): boolean {
    return this.#limitExceeded;
  }

  /** The per-try timeout in ms (0 = none); see also `finalTimeouts`, which applies header overrides. */
  get perTryTimeoutMs(): number {
    return this.policy?.perTryTimeoutMs ?? 0;
  }

  /** True if an upstream response with this status and headers is retriable under the policy (budget ignored). */
  wouldRetryHeaders(status: number, headers: HeaderMap): boolean {
    const p = this.policy;
    if (p === undefined || p.retryOn.size === 0) return false;
    const on = p.retryOn;
    // Envoy never retries a response its upstream marked as overloaded.
    if (headers.has("x-envoy-overloaded")) return false;
    if (on.has("envoy-ratelimited") && headers.has("x-envoy-ratelimited")) return true;
    if (on.has("5xx") && status >= 500 && status <= 599) return true;
    if (on.has("gateway-error") && (status === 502 || status === 503 || status === 504)) return true;
    if (on.has("retriable-4xx") && status === 409) return true;
    if (on.has("retriable-status-codes") && p.retriableStatusCodes.includes(status)) return true;
    if (on.has("retriable-headers")) {
      for (const m of p.retriableHeaders) if (matchHeader(m, headers)) return true;
    }
    const gs = headers.get("grpc-status");
    if (gs !== undefined) {
      const c = GRPC_CODES[gs];
      if (c !== undefined && on.has(c)) return true;
    }
    return false;
  }

  /** True if a failed attempt is retriable under the policy (budget ignored). */
  wouldRetryReset(reason: RetryResetReason, opts: { requestSent?: boolean } = {}): boolean {
    const p = this.policy;
    if (p === undefined || reason === "overflow") return false;
    const on = p.retryOn;
    if (on.has("reset-before-request") && opts.requestSent === false) return true;
    if (reason === "connect-failure" && on.has("connect-failure")) return true;
    if (reason === "refused-stream" && on.has("refused-stream")) return true;
    // Envoy counts any upstream reset (and a per-try timeout) as a 5xx / gateway error.
    return on.has("5xx") || on.has("gateway-error") || on.has("reset");
  }

  #consume(retriable: boolean): boolean {
    this.#limitExceeded = false;
    if (!retriable) return false;
    if (this.#remaining <= 0) {
      this.#limitExceeded = true;
      return false;
    }
    this.#remaining--;
    return true;
  }

  /** Decides on an upstream response; true = retry (one retry is consumed). */
  shouldRetryHeaders(status: number, headers: HeaderMap): boolean {
    return this.#consume(this.wouldRetryHeaders(status, headers));
  }

  /**
   * Decides on a failed attempt; true = retry (one retry is consumed). `requestSent: false` tells that no request
   * byte reached the upstream (for `reset-before-request`).
   */
  shouldRetryReset(reason: RetryResetReason, opts: { requestSent?: boolean } = {}): boolean {
    return this.#consume(this.wouldRetryReset(reason, opts));
  }

  /** The delay before the next retry, in ms (see the module doc for the formula). */
  nextBackoffMs(): number {
    const max = this.policy?.backoffMaxMs ?? 250;
    const ceiling = this.#nextInterval;
    this.#nextInterval = ceiling < max / 2 ? ceiling * 2 : max;
    return Math.min(Math.floor(this.#random() * ceiling), max);
  }

  /** Records the upstream host an attempt went to (for the `previous_hosts` predicate). */
  onHostAttempted(host: string): void {
    if (this.policy?.previousHostsPredicate) this.#attempted.push(host);
  }

  /**
   * True if the load balancer should pick another host than `host` (it was tried before and the policy has
   * `previous_hosts`). The balancer tries at most `policy.hostSelectionRetryMaxAttempts` times.
   */
  shouldSelectAnotherHost(host: string): boolean {
    return this.#attempted.includes(host);
  }
}

const GRPC_RETRY_ON: readonly RetryOn[] = [
  "cancelled",
  "deadline-exceeded",
  "internal",
  "resource-exhausted",
  "unavailable",
];
const HTTP_RETRY_ON: readonly RetryOn[] = [
  "5xx",
  "gateway-error",
  "reset",
  "reset-before-request",
  "connect-failure",
  "retriable-4xx",
  "refused-stream",
  "retriable-status-codes",
  "retriable-headers",
  "envoy-ratelimited",
];

function tokens(v: string | undefined, allowed: readonly RetryOn[], into: Set<RetryOn>): void {
  if (v === undefined) return;
  for (const raw of v.split(",")) {
    const t = raw.trim() as RetryOn;
    if (allowed.includes(t)) into.add(t);
  }
}

const DEFAULT_POLICY: RetryPolicy = {
  retryOn: new Set(),
  numRetries: 1,
  perTryTimeoutMs: 0,
  perTryIdleTimeoutMs: 0,
  retriableStatusCodes: [],
  retriableHeaders: [],
  retriableRequestHeaders: [],
  backoffBaseMs: 25,
  backoffMaxMs: 250,
  previousHostsPredicate: false,
  hostSelectionRetryMaxAttempts: 1,
};

/**
 * The retry policy for one request: the route's policy, disabled when `retriable_request_headers` is set and the
 * request matches none of them; when `trusted` (default false), merged with the request headers as Envoy does —
 * `x-envoy-retry-on` and `x-envoy-retry-grpc-on` add conditions (unknown names are ignored),
 * `x-envoy-retriable-status-codes` adds codes, and `x-envoy-max-retries` replaces `num_retries`. A trusted request
 * can enable retries on a route without a policy (1 retry, 25 ms base back-off). Untrusted requests' headers are
 * ignored; the connection manager strips them from external requests.
 */
export function effectiveRetryPolicy(
  policy: RetryPolicy | undefined,
  headers: HeaderMap,
  opts: { trusted?: boolean } = {},
): RetryPolicy | undefined {
  if (policy !== undefined && policy.retriableRequestHeaders.length > 0) {
    let any = false;
    for (const m of policy.retriableRequestHeaders) {
      if (matchHeaders([m], headers)) {
        any = true;
        break;
      }
    }
    if (!any) return undefined;
  }
  if (!opts.trusted) return policy;
  const on = headers.get("x-envoy-retry-on");
  const grpcOn = headers.get("x-envoy-retry-grpc-on");
  const max = headers.get("x-envoy-max-retries");
  const codes = headers.get("x-envoy-retriable-status-codes");
  if (on === undefined && grpcOn === undefined && max === undefined && codes === undefined) return policy;
  const base = policy ?? DEFAULT_POLICY;
  const retryOn = new Set(base.retryOn);
  tokens(on, HTTP_RETRY_ON, retryOn);
  tokens(grpcOn, GRPC_RETRY_ON, retryOn);
  let numRetries = base.numRetries;
  if (max !== undefined && retryOn.size > 0 && /^\d{1,9}$/.test(max)) numRetries = Number(max);
  let retriableStatusCodes = base.retriableStatusCodes;
  if (codes !== undefined) {
    const extra = codes.split(",").map((s) => s.trim()).filter((s) => /^[1-5]\d\d$/.test(s)).map(Number);
    retriableStatusCodes = [...retriableStatusCodes, ...extra];
  }
  return { ...base, retryOn, numRetries, retriableStatusCodes };
}
