/**
 * The worker side of the admin API (`--concurrency N`): real worker threads serving a real listener, driven by
 * curl, asked through {@link WorkerSet} for stats, counter resets and component log levels.
 */
import { assertEquals } from "../assert.ts";
import { curl, directResponseRoutes, hcmBootstrap, itOpts } from "./_harness.ts";
import { freePort } from "../fakes/ports.ts";
import { WorkerSet } from "../../lib/server/workers.ts";
import { parse as parseYaml } from "yaml";

function counter(snap: { counters: Record<string, number> }, name: string): number | undefined {
  return snap.counters[name];
}

Deno.test(
  "WorkerSet: component log levels and counter resets reach every worker",
  itOpts,
  async () => {
    const port = freePort();
    const raw = parseYaml(hcmBootstrap({
      routes: directResponseRoutes("hi"),
      port,
      admin: false,
    }));
    const workers = await WorkerSet.start(2, raw, { drainTimeMs: 500, logLevel: "warn" });
    try {
      // New connections each time, so SO_REUSEPORT spreads them over both workers.
      for (let i = 0; i < 12; i++) assertEquals((await curl(`http://127.0.0.1:${port}/`)).body, "hi");
      const before = await workers.snapshots();
      assertEquals(before.length, 2);
      assertEquals(before.reduce((n, s) => n + (counter(s, "http.test.downstream_rq_total") ?? 0), 0), 12);

      await workers.resetCounters();
      const after = await workers.snapshots();
      assertEquals(after.map((s) => counter(s, "http.test.downstream_rq_total")), [0, 0]);
      assertEquals(
        after.map((s) => s.gauges["http.test.downstream_cx_active"] !== undefined),
        [true, true],
        "gauges stay",
      );
      assertEquals((await curl(`http://127.0.0.1:${port}/`)).body, "hi");
      const again = await workers.snapshots();
      assertEquals(again.reduce((n, s) => n + (counter(s, "http.test.downstream_rq_total") ?? 0), 0), 1);

      assertEquals((await workers.logLevels()).map((l) => l["router"]), ["warn", "warn"]);
      workers.setComponentLogLevel("router", "debug");
      const levels = await workers.logLevels();
      assertEquals(levels.map((l) => [l["router"], l["admin"]]), [["debug", "warn"], ["debug", "warn"]]);
    } finally {
      await workers.drainAndStop(200);
    }
  },
);
