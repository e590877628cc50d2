/**
 * The admin API with `--concurrency 2`: counter resets and per-component log levels reach every event loop.
 */
import { assertEquals } from "../assert.ts";
import { curl, directResponseRoutes, hcmBootstrap, itOpts, spawnFerry } from "./_harness.ts";
import { freePort } from "../fakes/ports.ts";

Deno.test(
  "admin with --concurrency 2: /reset_counters and /logging?<component>= apply to every worker",
  itOpts,
  async () => {
    const port = freePort();
    const admin = freePort();
    const routes = directResponseRoutes("hi", "known");
    const ferry = await spawnFerry(
      ["--concurrency", "2", "--drain-time-s", "1", "--config-yaml", hcmBootstrap({ routes, port, adminPort: admin })],
      { adminPort: admin },
    );
    const noRoute = (log: string) => (log.match(/\[debug\]\[router\] no route/g) ?? []).length;
    try {
      await ferry.waitForLog("worker thread(s) started");
      const stat = async () =>
        (await curl(`http://127.0.0.1:${admin}/stats?filter=^http\\.test\\.downstream_rq_total$`)).body.trim();
      for (let i = 0; i < 20; i++) {
        assertEquals((await curl(`http://127.0.0.1:${port}/`, ["-H", "Host: known"])).body, "hi");
      }
      assertEquals(await stat(), "http.test.downstream_rq_total: 20");
      assertEquals((await curl(`http://127.0.0.1:${admin}/reset_counters`, ["-X", "POST"])).status, 200);
      assertEquals(await stat(), "http.test.downstream_rq_total: 0");
      assertEquals((await curl(`http://127.0.0.1:${port}/`, ["-H", "Host: known"])).body, "hi");
      assertEquals(await stat(), "http.test.downstream_rq_total: 1");

      // The router logs a request without a route at debug level: every loop must now log its share.
      assertEquals((await curl(`http://127.0.0.1:${admin}/logging?router=debug`, ["-X", "POST"])).status, 200);
      for (let i = 0; i < 20; i++) {
        assertEquals((await curl(`http://127.0.0.1:${port}/n${i}`, ["-H", "Host: unknown"])).status, 404);
      }
      await ferry.waitForLog((log) => noRoute(log) >= 20);
      assertEquals(noRoute(ferry.stderr), 20);
      assertEquals((await ferry.stop()).code, 0);
    } finally {
      await ferry.kill();
    }
  },
);
