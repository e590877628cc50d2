import { setLogLevel } from "../observe/log.ts";
import type { ClusterInfo } from "../api/upstream.ts";
import { assert, assertEquals } from "../../tests/assert.ts";
import { TestStats } from "../../tests/fakes/stats.ts";
import { HealthFlag, HostImpl } from "./host.ts";
import { OutlierDetector } from "./outlier.ts";
import { parseOutlierDetection } from "./resilience_config.ts";
import { ObjReader } from "../config/reader.ts";

// Transitions are logged at info/warn; the tests assert them through flags and stats.
setLogLevel("error");

function setup(raw: Record<string, unknown>, n = 5) {
  let now = 0;
  const stats = new TestStats("cluster.c");
  const changes: string[] = [];
  const d = new OutlierDetector(parseOutlierDetection(new ObjReader(raw, "od")), "c", stats, {
    now: () => now,
    random: () => 0,
    manualTicks: true,
    onEjectionChange: (h, e) => changes.push(`${e ? "eject" : "uneject"} ${h.key}`),
  });
  const hosts = Array.from({ length: n }, (_, i) => new HostImpl({} as ClusterInfo, `10.0.0.${i + 1}`, 80));
  const mons = hosts.map((h) => d.addHost(h));
  return { d, stats, hosts, mons, changes, advance: (ms: number) => now += ms };
}

Deno.test("OutlierDetector ejects on consecutive 5xx and un-ejects after base_ejection_time × n", () => {
  const { d, stats, hosts, mons, changes, advance } = setup({
    consecutive_5xx: 3,
    base_ejection_time: "10s",
    max_ejection_percent: 100,
  });
  const m = mons[0]!;
  m.putHttpResponseCode(500);
  m.putHttpResponseCode(503);
  m.putHttpResponseCode(200); // resets
  m.putHttpResponseCode(500);
  m.putHttpResponseCode(500);
  assert(hosts[0]!.healthy);
  m.putHttpResponseCode(500);
  assert(!hosts[0]!.healthy);
  assertEquals(hosts[0]!.healthFlagsText, "/failed_outlier_check");
  assertEquals(stats.get("cluster.c.outlier_detection.ejections_active"), 1);
  assertEquals(stats.get("cluster.c.outlier_detection.ejections_enforced_consecutive_5xx"), 1);
  assertEquals(stats.get("cluster.c.outlier_detection.ejections_detected_consecutive_5xx"), 1);
  advance(9_000);
  d.tick();
  assert(!hosts[0]!.healthy);
  advance(1_000);
  d.tick();
  assert(hosts[0]!.healthy);
  assertEquals(stats.get("cluster.c.outlier_detection.ejections_active"), 0);
  // Second ejection right away: 2 × base.
  for (let i = 0; i < 3; i++) m.putHttpResponseCode(502);
  assert(!hosts[0]!.healthy);
  advance(10_000);
  d.tick();
  assert(!hosts[0]!.healthy);
  advance(10_000);
  d.tick();
  assert(hosts[0]!.healthy);
  assertEquals(changes, ["eject 10.0.0.1:80", "uneject 10.0.0.1:80", "eject 10.0.0.1:80", "uneject 10.0.0.1:80"]);
  assertEquals(stats.get("cluster.c.outlier_detection.ejections_total"), 2);
});

Deno.test("OutlierDetector honours max_ejection_percent and enforcing percentages", () => {
  const { stats, hosts, mons } = setup({ consecutive_5xx: 1, max_ejection_percent: 40 });
  for (const m of mons) m.putHttpResponseCode(500);
  // 5 hosts, 40 %: two ejections, then overflow.
  assertEquals(hosts.filter((h) => !h.healthy).length, 2);
  assertEquals(stats.get("cluster.c.outlier_detection.ejections_overflow"), 3);
  // Gateway failures are detected but not enforced by default (enforcing_consecutive_gateway_failure 0).
  const g = setup({ consecutive_5xx: 100, consecutive_gateway_failure: 2, max_ejection_percent: 100 });
  g.mons[0]!.putHttpResponseCode(503);
  g.mons[0]!.putHttpResponseCode(504);
  assert(g.hosts[0]!.healthy);
  assertEquals(g.stats.get("cluster.c.outlier_detection.ejections_detected_consecutive_gateway_failure"), 1);
  assertEquals(g.stats.get("cluster.c.outlier_detection.ejections_enforced_consecutive_gateway_failure"), 0);
});

Deno.test("OutlierDetector maps local-origin failures to 5xx unless split", () => {
  const a = setup({ consecutive_5xx: 2, max_ejection_percent: 100 });
  a.mons[0]!.putResult("local-origin-connect-failed");
  a.mons[0]!.putResult("local-origin-connect-success"); // ignored when not split
  a.mons[0]!.putResult("local-origin-timeout");
  assert(!a.hosts[0]!.healthy);
  const b = setup({
    consecutive_5xx: 2,
    split_external_local_origin_errors: true,
    consecutive_local_origin_failure: 2,
    max_ejection_percent: 100,
  });
  b.mons[0]!.putResult("local-origin-connect-failed");
  b.mons[0]!.putResult("local-origin-connect-success"); // resets
  b.mons[0]!.putResult("local-origin-connect-failed");
  assert(b.hosts[0]!.healthy);
  b.mons[0]!.putResult("local-origin-reset");
  assert(!b.hosts[0]!.healthy);
  assertEquals(b.stats.get("cluster.c.outlier_detection.ejections_enforced_consecutive_local_origin_failure"), 1);
});

Deno.test("OutlierDetector ejects by success rate and failure percentage per interval", () => {
  const s = setup({
    consecutive_5xx: 1000,
    success_rate_request_volume: 10,
    success_rate_minimum_hosts: 5,
    max_ejection_percent: 100,
  });
  s.mons.forEach((m, i) => {
    for (let k = 0; k < 100; k++) m.putHttpResponseCode(i === 2 && k % 2 === 0 ? 500 : 200);
  });
  s.d.tick();
  assertEquals(s.hosts.map((h) => h.healthy), [true, true, false, true, true]);
  assertEquals(s.stats.get("cluster.c.outlier_detection.ejections_enforced_success_rate"), 1);

  const f = setup({
    consecutive_5xx: 1000,
    enforcing_success_rate: 0,
    enforcing_failure_percentage: 100,
    failure_percentage_threshold: 50,
    failure_percentage_minimum_hosts: 3,
    failure_percentage_request_volume: 10,
    max_ejection_percent: 100,
  }, 3);
  f.mons.forEach((m, i) => {
    for (let k = 0; k < 20; k++) m.putHttpResponseCode(i === 1 && k < 12 ? 503 : 200);
  });
  f.d.tick();
  assertEquals(f.hosts.map((h) => h.healthy), [true, false, true]);
  assertEquals(f.stats.get("cluster.c.outlier_detection.ejections_enforced_failure_percentage"), 1);
  // Too few requests in the next interval: nothing new.
  f.mons[0]!.putHttpResponseCode(500);
  f.d.tick();
  assert(f.hosts[0]!.healthy);
});

Deno.test("OutlierDetector un-ejects on request (active health check success) and host flags combine", () => {
  const { d, hosts, mons } = setup({ consecutive_5xx: 1, max_ejection_percent: 100 });
  hosts[0]!.setFlag(HealthFlag.FAILED_ACTIVE_HC, true);
  mons[0]!.putHttpResponseCode(500);
  assertEquals(hosts[0]!.healthFlagsText, "/failed_active_hc/failed_outlier_check");
  d.uneject(hosts[0]!);
  assertEquals(hosts[0]!.healthFlagsText, "/failed_active_hc");
});
