/**
 * The admin API with `--concurrency 2`: counter resets and per-component log levels reach every event loop.
 */
import { assertEquals } from "../assert.ts";
import { curl, itOpts } from "./_harness.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const p = (l.addr as Deno.NetAddr).port;
  l.close();
  return p;
}

Deno.test(
  "admin with --concurrency 2: /reset_counters and /logging?<component>= apply to every worker",
  itOpts,
  async () => {
    const port = freePort();
    const admin = freePort();
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        MAIN,
        "--concurrency",
        "2",
        "--drain-time-s",
        "1",
        "--config-yaml",
        `
admin: { address: { socket_address: { address: 127.0.0.1, port_value: ${admin} } } }
static_resources:
  listeners:
  - name: l
    address: { socket_address: { address: 127.0.0.1, port_value: ${port} } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: s
          route_config: { virtual_hosts: [{ name: v, domains: ["known"], routes: [{ match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: hi } } }] }] }
          http_filters: [{ name: envoy.filters.http.router, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router } }]`,
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const reader = child.stderr.getReader();
    let log = "";
    const readUntil = async (pred: () => boolean) => {
      while (!pred()) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`ferry exited early: ${log}`);
        log += new TextDecoder().decode(value);
      }
    };
    try {
      await readUntil(() => log.includes("worker thread(s) started"));
      const stat = async () =>
        (await curl(`http://127.0.0.1:${admin}/stats?filter=^http\\.s\\.downstream_rq_total$`)).body.trim();
      for (let i = 0; i < 20; i++) {
        assertEquals((await curl(`http://127.0.0.1:${port}/`, ["-H", "Host: known"])).body, "hi");
      }
      assertEquals(await stat(), "http.s.downstream_rq_total: 20");
      assertEquals((await curl(`http://127.0.0.1:${admin}/reset_counters`, ["-X", "POST"])).status, 200);
      assertEquals(await stat(), "http.s.downstream_rq_total: 0");
      assertEquals((await curl(`http://127.0.0.1:${port}/`, ["-H", "Host: known"])).body, "hi");
      assertEquals(await stat(), "http.s.downstream_rq_total: 1");

      // The router logs a request without a route at debug level: every loop must now log its share.
      assertEquals((await curl(`http://127.0.0.1:${admin}/logging?router=debug`, ["-X", "POST"])).status, 200);
      for (let i = 0; i < 20; i++) {
        assertEquals((await curl(`http://127.0.0.1:${port}/n${i}`, ["-H", "Host: unknown"])).status, 404);
      }
      await readUntil(() => (log.match(/\[debug\]\[router\] no route/g) ?? []).length >= 20);
      assertEquals((log.match(/\[debug\]\[router\] no route/g) ?? []).length, 20);
      reader.releaseLock();
      child.kill("SIGTERM");
      assertEquals((await child.status).code, 0);
    } finally {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
      await child.stderr.cancel().catch(() => {});
    }
  },
);
