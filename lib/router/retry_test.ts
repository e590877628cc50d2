import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { HeaderMap } from "../api/headers.ts";
import { effectiveRetryPolicy, RetryState } from "./retry.ts";
import { oneHost, req, seeded } from "../../tests/helpers/router.ts";
import type { RetryPolicy } from "./types.ts";

function policy(rp: Record<string, unknown>): RetryPolicy {
  const a = oneHost([{ match: { prefix: "/" }, route: { cluster: "c", retry_policy: rp } }]).virtualHosts[0]!.routes[0]!
    .action;
  if (a.kind !== "route" || a.retryPolicy === undefined) throw new Error("no retry policy");
  return a.retryPolicy;
}

const resp = (extra: Record<string, string> = {}) => HeaderMap.from({ ":status": "200", ...extra });
const would = (retryOn: string, status: number, extra: Record<string, string> = {}, rp = {}) =>
  new RetryState(policy({ retry_on: retryOn, ...rp })).wouldRetryHeaders(status, resp(extra));

Deno.test("RetryState decides on response status per retry_on", () => {
  assert(would("5xx", 500) && would("5xx", 503) && !would("5xx", 404) && !would("5xx", 200));
  assert(would("gateway-error", 502) && would("gateway-error", 504) && !would("gateway-error", 500));
  assert(would("retriable-4xx", 409) && !would("retriable-4xx", 400));
  assert(would("retriable-status-codes", 418, {}, { retriable_status_codes: [418] }));
  assert(!would("retriable-status-codes", 419, {}, { retriable_status_codes: [418] }));
  assert(!would("5xx", 503, { "x-envoy-overloaded": "true" }), "an overloaded upstream is never retried");
  assert(would("envoy-ratelimited", 429, { "x-envoy-ratelimited": "true" }) && !would("envoy-ratelimited", 429));
  assert(would("retriable-headers", 200, { "x-retry": "yes" }, { retriable_headers: [{ name: "x-retry" }] }));
  assert(!would("retriable-headers", 200, {}, { retriable_headers: [{ name: "x-retry" }] }));
  assert(would("unavailable", 200, { "grpc-status": "14" }) && !would("unavailable", 200, { "grpc-status": "13" }));
  assert(would("cancelled,internal", 200, { "grpc-status": "13" }));
  assert(!would("connect-failure", 503));
});

Deno.test("RetryState decides on resets per retry_on", () => {
  const r = (retryOn: string) => new RetryState(policy({ retry_on: retryOn }));
  assert(r("connect-failure").wouldRetryReset("connect-failure"));
  assert(!r("connect-failure").wouldRetryReset("reset"));
  assert(r("refused-stream").wouldRetryReset("refused-stream") && !r("refused-stream").wouldRetryReset("timeout"));
  for (const on of ["5xx", "gateway-error", "reset"]) {
    for (const why of ["connect-failure", "reset", "refused-stream", "timeout"] as const) {
      assert(r(on).wouldRetryReset(why), `${on} retries ${why}`);
    }
    assert(!r(on).wouldRetryReset("overflow"), "overflow is never retried");
  }
  assert(r("reset-before-request").wouldRetryReset("reset", { requestSent: false }));
  assert(!r("reset-before-request").wouldRetryReset("reset", { requestSent: true }));
  assert(!r("retriable-4xx").wouldRetryReset("reset"));
});

Deno.test("RetryState counts retries down and reports the limit", () => {
  const s = new RetryState(policy({ retry_on: "5xx", num_retries: 2 }));
  assertEquals(s.remaining, 2);
  assert(s.shouldRetryHeaders(503, resp()));
  assert(s.shouldRetryReset("reset"));
  assertEquals(s.remaining, 0);
  assert(!s.shouldRetryHeaders(503, resp()));
  assert(s.limitExceeded);
  assert(!s.shouldRetryHeaders(200, resp()));
  assert(!s.limitExceeded, "not retriable is not a limit");
  const none = new RetryState(undefined);
  assert(!none.shouldRetryHeaders(503, resp()) && !none.limitExceeded && none.remaining === 0);
  const zero = new RetryState(policy({ retry_on: "5xx", num_retries: 0 }));
  assert(!zero.shouldRetryHeaders(503, resp()) && zero.limitExceeded);
});

Deno.test("RetryState.nextBackoffMs is fully jittered, doubling from base up to max", () => {
  const top = new RetryState(policy({ retry_on: "5xx", retry_back_off: { base_interval: "0.025s" } }), () => 0.999999);
  assertEquals([1, 2, 3, 4, 5, 6].map(() => top.nextBackoffMs()), [24, 49, 99, 199, 249, 249]);
  const bottom = new RetryState(policy({ retry_on: "5xx" }), () => 0);
  assertEquals([bottom.nextBackoffMs(), bottom.nextBackoffMs()], [0, 0]);
  const capped = new RetryState(
    policy({ retry_on: "5xx", retry_back_off: { base_interval: "0.1s", max_interval: "0.3s" } }),
    () => 0.999999,
  );
  assertEquals([1, 2, 3, 4].map(() => capped.nextBackoffMs()), [99, 199, 299, 299]);
  const random = seeded(7);
  for (let i = 0; i < 200; i++) {
    const s = new RetryState(policy({ retry_on: "5xx" }), random);
    const ceilings = [25, 50, 100, 200, 250, 250];
    for (const c of ceilings) {
      const b = s.nextBackoffMs();
      assert(b >= 0 && b < c && Number.isInteger(b), `backoff ${b} outside [0, ${c})`);
    }
  }
});

Deno.test("RetryState previous_hosts predicate asks for another host", () => {
  const s = new RetryState(policy({
    retry_on: "5xx",
    retry_host_predicate: [{
      name: "envoy.retry_host_predicates.previous_hosts",
      typed_config: {
        "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate",
      },
    }],
  }));
  s.onHostAttempted("10.0.0.1:80");
  assert(s.shouldSelectAnotherHost("10.0.0.1:80") && !s.shouldSelectAnotherHost("10.0.0.2:80"));
  const plain = new RetryState(policy({ retry_on: "5xx" }));
  plain.onHostAttempted("10.0.0.1:80");
  assert(!plain.shouldSelectAnotherHost("10.0.0.1:80"));
});

Deno.test("effectiveRetryPolicy merges request headers only when trusted", () => {
  const p = policy({ retry_on: "connect-failure", num_retries: 1 });
  const h = req("/", "a", {
    "x-envoy-retry-on": "5xx,bogus",
    "x-envoy-max-retries": "4",
    "x-envoy-retriable-status-codes": "418, x",
    "x-envoy-retry-grpc-on": "unavailable",
  });
  assertEquals(effectiveRetryPolicy(p, h), p);
  const t = effectiveRetryPolicy(p, h, { trusted: true })!;
  assertEquals([...t.retryOn].sort(), ["5xx", "connect-failure", "unavailable"]);
  assertEquals(t.numRetries, 4);
  assertEquals(t.retriableStatusCodes, [418]);
  const fromNothing = effectiveRetryPolicy(undefined, req("/", "a", { "x-envoy-retry-on": "gateway-error" }), {
    trusted: true,
  })!;
  assertEquals([[...fromNothing.retryOn], fromNothing.numRetries, fromNothing.backoffBaseMs], [
    ["gateway-error"],
    1,
    25,
  ]);
  assertEquals(effectiveRetryPolicy(undefined, req("/"), { trusted: true }), undefined);
});

Deno.test("effectiveRetryPolicy disables retries for requests missing retriable_request_headers", () => {
  const p = policy({ retry_on: "5xx", retriable_request_headers: [{ name: ":method", exact_match: "GET" }] });
  assertEquals(effectiveRetryPolicy(p, req("/")), p);
  assertEquals(effectiveRetryPolicy(p, req("/", "a", { ":method": "POST" })), undefined);
});
