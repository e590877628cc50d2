/**
 * An approximate monotonic clock for the request path, in the spirit of Envoy's
 * `Dispatcher::approximateMonotonicTime()`: {@link approxNow} reads `performance.now()` once and hands the same
 * value to every caller until the current macrotask and the microtasks already queued behind it have run.
 *
 * Why: `performance.now()` is a Deno op, and one proxied HTTP/1 request read it about 17 times (stream idle
 * bookkeeping, stream info, router timings, pool idle times), about 5% of the busy CPU in a profile of
 * `bench/http1.sh`. One request is handled in two synchronous runs (request bytes in, response bytes in), so two
 * reads suffice.
 *
 * How stale can it be: a value is taken during some synchronous run and dropped by a microtask queued then, so a
 * later macrotask (a timer firing, the next I/O completion batch) always reads the real clock; microtasks queued
 * earlier in the same checkpoint (other connections' reads resolved in the same event-loop turn) may see a value up
 * to the length of that batch old — sub-millisecond under load. Use it for timestamps and durations of requests and
 * for idle bookkeeping, not for measuring code.
 *
 * @module
 */

let cached = -1;
const drop = (): void => {
  cached = -1;
};

/** `performance.now()`, read at most once per synchronous run (see the module doc). */
export function approxNow(): number {
  if (cached < 0) {
    cached = performance.now();
    queueMicrotask(drop);
  }
  return cached;
}
