import { assertEquals, assertThrows } from "../../tests/assert.ts";
import { healthCheckFilterFactory } from "./health_check.ts";

const parse = (raw: Record<string, unknown>) => healthCheckFilterFactory.parseConfig(raw, "f");

Deno.test("health_check config: pass_through_mode required, percentages per cluster, cache_time rejected", () => {
  const c = parse({
    pass_through_mode: { value: true },
    headers: [{ name: ":path", exact_match: "/healthz" }],
    cluster_min_healthy_percentages: { a: { value: 25.5 } },
  });
  assertEquals([c.passThrough, c.headers.length, [...c.clusterMinHealthy]], [true, 1, [["a", 25.5]]]);
  assertThrows(() => parse({}), Error, "f.pass_through_mode");
  assertThrows(() => parse({ pass_through_mode: false, cache_time: "5s" }), Error, "f.cache_time");
  assertThrows(
    () => parse({ pass_through_mode: false, cluster_min_healthy_percentages: { a: { value: 101 } } }),
    Error,
    "f.cluster_min_healthy_percentages.a.value",
  );
});
