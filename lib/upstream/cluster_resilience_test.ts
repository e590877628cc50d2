import { http1CodecFactory } from "../../codecs/http1/mod.ts";
import { setLogLevel } from "../observe/log.ts";
import { assert, assertEquals } from "../../tests/assert.ts";
import { TestStats } from "../../tests/fakes/stats.ts";
import { Exchange, TestUpstream, waitFor } from "../../tests/fakes/upstream.ts";
import { ClusterImpl } from "./cluster.ts";
import { parseCluster } from "./config.ts";

setLogLevel("error");

Deno.test("ClusterImpl drains an ejected host's pool: in-flight requests finish, new ones get a new pool", async () => {
  const a = new TestUpstream();
  const b = new TestUpstream();
  a.reply = (r) => r.path === "/slow" ? { delayMs: 200, body: "slow done" } : {};
  const c = new ClusterImpl(
    parseCluster({
      name: "svc",
      load_assignment: {
        endpoints: [{
          lb_endpoints: [a.port, b.port].map((p) => ({
            endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: p } } },
          })),
        }],
      },
      outlier_detection: {
        consecutive_5xx: 2,
        max_ejection_percent: 50,
        base_ejection_time: "0.1s",
        interval: "0.05s",
      },
    }, "c"),
    { stats: new TestStats(), httpCodec: http1CodecFactory },
  );
  try {
    const hostA = c.hosts[0]!;
    const poolA = c.httpPool(hostA);
    const slow = new Exchange("/slow");
    poolA.newStream(slow, slow);
    await waitFor(() => a.requests.length === 1, 2000, "slow request sent");
    hostA.monitor!.putHttpResponseCode(503);
    hostA.monitor!.putHttpResponseCode(500);
    assertEquals(hostA.healthFlagsText, "/failed_outlier_check");
    // Ejected: the balancer skips it, its pool drains; the request in flight still completes.
    for (let i = 0; i < 10; i++) assertEquals(c.chooseHost(), c.hosts[1]);
    assert(c.pools.get(hostA)!.draining);
    const o = await slow.done;
    assertEquals(o.status, 200);
    assertEquals(o.body, "slow done");
    // After base_ejection_time the host is back and gets a fresh pool.
    await waitFor(() => hostA.healthy, 2000, "un-ejection");
    const fresh = c.httpPool(hostA);
    assert(fresh !== poolA && !c.pools.get(hostA)!.draining);
    const e = new Exchange("/");
    fresh.newStream(e, e);
    assertEquals((await e.done).status, 200);
  } finally {
    c.shutdown();
    await a.close();
    await b.close();
  }
});

Deno.test("ClusterImpl marks a host unhealthy on x-envoy-immediate-health-check-fail only with health checks", async () => {
  const up = new TestUpstream();
  const raw = {
    name: "svc",
    load_assignment: {
      endpoints: [{
        lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: up.port } } } }],
      }],
    },
  };
  const plain = new ClusterImpl(parseCluster(raw, "c"), { stats: new TestStats() });
  assertEquals(plain.hosts[0]!.monitor, undefined);
  const hc = new ClusterImpl(
    parseCluster({
      ...raw,
      health_checks: [{
        timeout: "1s",
        interval: "1s",
        unhealthy_threshold: 1,
        healthy_threshold: 1,
        tcp_health_check: {},
      }],
    }, "c"),
    { stats: new TestStats() },
  );
  await hc.initialize();
  assertEquals(hc.hosts[0]!.healthFlagsText, "healthy");
  hc.hosts[0]!.monitor!.immediateHealthCheckFail();
  assertEquals(hc.hosts[0]!.healthFlagsText, "/failed_active_hc/excluded_via_immediate_hc_fail");
  hc.shutdown();
  await up.close();
});
