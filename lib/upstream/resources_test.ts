import { assert, assertEquals } from "../../tests/assert.ts";
import { TestStats } from "../../tests/fakes/stats.ts";
import { createResources } from "./resources.ts";

const T = { maxConnections: 2, maxPendingRequests: 1, maxRequests: 3, maxRetries: 1 };

Deno.test("createResources publishes open and remaining gauges", () => {
  const stats = new TestStats("cluster.c");
  const r = createResources({ ...T, trackRemaining: true }, stats, "default");
  const g = (n: string) => stats.get(`cluster.c.circuit_breakers.default.${n}`);
  assertEquals([g("cx_open"), g("remaining_cx"), g("remaining_rq"), g("remaining_retries")], [0, 2, 3, 1]);
  r.connections.inc();
  r.connections.inc();
  assert(!r.connections.canCreate());
  assertEquals([g("cx_open"), g("remaining_cx")], [1, 0]);
  r.connections.dec();
  assertEquals([g("cx_open"), g("remaining_cx")], [0, 1]);
  // Without track_remaining only the open gauges exist.
  const s2 = new TestStats("cluster.d");
  createResources(T, s2, "high");
  assert(s2.gauges.has("cluster.d.circuit_breakers.high.rq_open"));
  assert(!s2.gauges.has("cluster.d.circuit_breakers.high.remaining_rq"));
});

Deno.test("retry_budget limits retries to a share of active and pending requests, at least min_retry_concurrency", () => {
  const r = createResources({ ...T, maxRequests: 1000, retryBudget: { budgetPercent: 25, minRetryConcurrency: 2 } });
  assertEquals(r.retries.max, 2);
  for (let i = 0; i < 20; i++) r.requests.inc();
  r.pendingRequests.inc();
  r.pendingRequests.inc();
  // 25 % of 22 = 5.
  assertEquals(r.retries.max, 5);
  for (let i = 0; i < 5; i++) {
    assert(r.retries.canCreate());
    r.retries.inc();
  }
  assert(!r.retries.canCreate());
});
