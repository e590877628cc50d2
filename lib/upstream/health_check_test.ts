import { setLogLevel } from "../observe/log.ts";
import { http1CodecFactory } from "../../codecs/http1/mod.ts";
import { assert, assertEquals } from "../../tests/assert.ts";
import { TestStats } from "../../tests/fakes/stats.ts";
import { TestUpstream, waitFor } from "../../tests/fakes/upstream.ts";
import { ClusterImpl } from "./cluster.ts";
import { parseCluster } from "./config.ts";

// Transitions are logged at info/warn; the tests assert them through flags and stats.
setLogLevel("error");

function hcCluster(ports: number[], check: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return parseCluster({
    name: "svc",
    connect_timeout: "0.5s",
    load_assignment: {
      cluster_name: "svc",
      endpoints: [{
        lb_endpoints: ports.map((p) => ({
          endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: p } } },
        })),
      }],
    },
    health_checks: [{
      timeout: "0.2s",
      interval: "0.03s",
      no_traffic_interval: "0.03s",
      unhealthy_threshold: 2,
      healthy_threshold: 2,
      ...check,
    }],
    ...extra,
  }, "c");
}

Deno.test("HealthChecker (HTTP) starts hosts failed, passes them on the first success, fails them on bad statuses", async () => {
  const a = new TestUpstream();
  const b = new TestUpstream();
  b.reply = (r) => r.path === "/healthz" ? { status: 503 } : {};
  const stats = new TestStats();
  const c = new ClusterImpl(
    hcCluster([a.port, b.port], {
      http_health_check: {
        path: "/healthz",
        host: "hc.local",
        request_headers_to_add: [{ header: { key: "x-hc", value: "1" } }],
      },
    }),
    { stats, httpCodec: http1CodecFactory },
  );
  try {
    assertEquals(c.hosts.map((h) => h.healthFlagsText), [
      "/failed_active_hc/pending_active_hc",
      "/failed_active_hc/pending_active_hc",
    ]);
    await c.initialize();
    assertEquals(c.hosts.map((h) => h.healthy), [true, false]);
    assertEquals(c.hosts[1]!.healthFlagsText, "/failed_active_hc");
    const seen = a.requests[0]!;
    assertEquals(seen.path, "/healthz");
    assertEquals(seen.headers["host"], "hc.local");
    assertEquals(seen.headers["user-agent"], "Envoy/HC");
    assertEquals(seen.headers["x-hc"], "1");
    assertEquals(stats.get("cluster.svc.membership_healthy"), 1);
    assertEquals(stats.get("cluster.svc.health_check.healthy"), 1);
    // Connections are reused between checks.
    await waitFor(() => a.requests.length >= 4, 2000, "more checks");
    assertEquals(a.accepted, 1);
    // b recovers: two passes in a row are needed now.
    b.reply = () => ({});
    await waitFor(() => c.hosts[1]!.healthy, 2000, "b healthy");
    assert(stats.get("cluster.svc.health_check.success") >= 3);
    assert(stats.get("cluster.svc.health_check.failure") >= 1);
    // a goes bad: one non-2xx answer is enough (Envoy's active failure).
    a.reply = () => ({ status: 500 });
    await waitFor(() => !c.hosts[0]!.healthy, 2000, "a unhealthy");
    assert(stats.get("cluster.svc.health_check.attempt") >= 5);
  } finally {
    c.shutdown();
    await a.close();
    await b.close();
  }
});

Deno.test("HealthChecker counts network failures up to unhealthy_threshold and times out hung hosts", async () => {
  const a = new TestUpstream();
  const hang = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  (async () => {
    for await (const conn of hang) held.push(conn);
  })().catch(() => {});
  const stats = new TestStats();
  const c = new ClusterImpl(
    hcCluster([a.port, hang.addr.port], { http_health_check: { path: "/" }, timeout: "0.1s" }),
    { stats, httpCodec: http1CodecFactory },
  );
  try {
    await c.initialize();
    assertEquals(c.hosts[0]!.healthy, true);
    assertEquals(c.hosts[1]!.healthy, false);
    await waitFor(() => c.hosts[1]!.healthFlagsText.includes("/active_hc_timeout"), 2000, "timeout flag");
    // a stops listening: connection refused twice → unhealthy.
    await a.close();
    await waitFor(() => !c.hosts[0]!.healthy, 2000, "a unhealthy");
    assert(stats.get("cluster.svc.health_check.network_failure") >= 3);
  } finally {
    c.shutdown();
    hang.close();
    for (const h of held) {
      try {
        h.close();
      } catch { /* closed */ }
    }
  }
});

Deno.test("HealthChecker (TCP) sends the payload and waits for the expected bytes", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let answer = "PONG";
  (async () => {
    for await (const conn of l) {
      (async () => {
        const buf = new Uint8Array(64);
        const n = await conn.read(buf);
        if (n !== null && new TextDecoder().decode(buf.subarray(0, n)) === "PING") {
          await conn.write(new TextEncoder().encode(answer));
        }
        await new Promise((r) => setTimeout(r, 50));
        conn.close();
      })().catch(() => {});
    }
  })().catch(() => {});
  const stats = new TestStats();
  const c = new ClusterImpl(
    hcCluster([l.addr.port], {
      tcp_health_check: { send: { text: "50494e47" }, receive: [{ text: "504f" }, { text: "4e47" }] },
      unhealthy_threshold: 1,
    }),
    { stats },
  );
  try {
    await c.initialize();
    assertEquals(c.hosts[0]!.healthy, true);
    answer = "NOPE";
    await waitFor(() => !c.hosts[0]!.healthy, 2000, "unhealthy on wrong payload");
  } finally {
    c.shutdown();
    l.close();
  }
});
