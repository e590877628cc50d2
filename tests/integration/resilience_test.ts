/**
 * Upstream resilience end to end: active health checks, outlier detection, circuit breakers and hashing balancers,
 * with real upstream servers that go down, come back, hang, fail or slow down.
 */
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { hcmBootstrap, itOpts, startFerry, startRawServer, stat, staticCluster, type TestFerry } from "./_harness.ts";
import { setLogLevel } from "../../lib/observe/log.ts";

// Health transitions and ejections log at warn; these tests assert them through /clusters and /stats.
setLogLevel("error");

/** An upstream on a fixed (or new) port that can be stopped and started again. */
class Upstream {
  port = 0;
  name: string;
  hits = 0;
  handler: (req: Request) => Response | Promise<Response>;
  #srv: Deno.HttpServer | undefined;

  constructor(name: string, handler?: (req: Request) => Response | Promise<Response>) {
    this.name = name;
    this.handler = handler ?? (() => new Response(name));
  }

  start(): this {
    this.#srv = Deno.serve({ hostname: "127.0.0.1", port: this.port, onListen: () => {} }, (req) => {
      if (new URL(req.url).pathname !== "/healthz") this.hits++;
      return this.handler(req);
    });
    this.port = (this.#srv.addr as Deno.NetAddr).port;
    return this;
  }

  async stop(): Promise<void> {
    const s = this.#srv;
    this.#srv = undefined;
    await s?.shutdown();
  }
}

async function get(f: TestFerry, path: string, headers: Record<string, string> = {}) {
  const r = await fetch(`http://127.0.0.1:${f.port()}${path}`, { headers });
  return { status: r.status, body: await r.text(), headers: r.headers };
}

async function clusters(f: TestFerry): Promise<string> {
  return await (await fetch(`${f.adminUrl}/clusters`)).text();
}

function flagsOf(text: string, cluster: string, port: number): string {
  const m = text.match(new RegExp(`^${cluster}::127\\.0\\.0\\.1:${port}::health_flags::(.*)$`, "m"));
  return m?.[1] ?? "(none)";
}

async function waitUntil(cond: () => Promise<boolean> | boolean, ms = 5000, what = "condition"): Promise<void> {
  const end = performance.now() + ms;
  while (!(await cond())) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const RETRY = `retry_policy: { retry_on: "connect-failure,reset,5xx", num_retries: 3, per_try_timeout: 0.3s, ` +
  `retry_back_off: { base_interval: 0.005s, max_interval: 0.02s } }`;

function routes(cluster: string, extra = ""): string {
  return `- name: all
  domains: ["*"]
  routes:
  - match: { prefix: "/" }
    route:
      cluster: ${cluster}
      timeout: 5s
      ${RETRY}${extra ? "\n      " + extra.trim().split("\n").join("\n      ") : ""}`;
}

Deno.test(
  "health checks route around a failing and a dead host, and bring them back; flags in /clusters and /stats",
  itOpts,
  async () => {
    const a = new Upstream("a").start();
    const b = new Upstream("b").start();
    const c = new Upstream(
      "c",
      (req) => new URL(req.url).pathname === "/healthz" ? new Response("sick", { status: 503 }) : new Response("c"),
    ).start();
    const f = await startFerry(hcmBootstrap({
      routes: routes("hc"),
      clusters: staticCluster(
        "hc",
        [a.port, b.port, c.port],
        `health_checks:
- timeout: 0.2s
  interval: 0.05s
  no_traffic_interval: 0.05s
  unhealthy_threshold: 2
  healthy_threshold: 2
  http_health_check: { path: /healthz, expected_statuses: [{ start: 200, end: 300 }] }`,
      ),
    }));
    try {
      // Warm-up waited for the first round: c is out before the first request.
      const text = await clusters(f);
      assertEquals(flagsOf(text, "hc", a.port), "healthy");
      assertEquals(flagsOf(text, "hc", c.port), "/failed_active_hc");
      assertEquals(await stat(f, "cluster.hc.membership_healthy"), 2);
      for (let i = 0; i < 30; i++) {
        const r = await get(f, "/");
        assertEquals(r.status, 200);
        assert(r.body !== "c", "no traffic to the failing host");
      }
      assertEquals(c.hits, 0);
      // b dies: retries cover the gap until the health checks notice, then b gets nothing.
      await b.stop();
      for (let i = 0; i < 40; i++) assertEquals((await get(f, "/")).status, 200);
      await waitUntil(async () => flagsOf(await clusters(f), "hc", b.port) === "/failed_active_hc", 3000, "b failed");
      // Two healthy of three → 33 % < 50 % panic threshold would route to all; here a is alone healthy: panic.
      // Bring c back first so that the cluster is out of panic.
      c.handler = () => new Response("c");
      await waitUntil(async () => flagsOf(await clusters(f), "hc", c.port) === "healthy", 3000, "c healthy");
      const before = a.hits + c.hits;
      for (let i = 0; i < 20; i++) assertEquals((await get(f, "/")).status, 200);
      assertEquals(a.hits + c.hits - before, 20);
      // b comes back on its port.
      b.start();
      await waitUntil(async () => flagsOf(await clusters(f), "hc", b.port) === "healthy", 3000, "b healthy");
      const bBefore = b.hits;
      for (let i = 0; i < 30; i++) assertEquals((await get(f, "/")).status, 200);
      assert(b.hits > bBefore, "b serves again");
      assert((await stat(f, "cluster.hc.health_check.attempt") ?? 0) > 10);
      assert((await stat(f, "cluster.hc.health_check.failure") ?? 0) >= 2);
      assert((await stat(f, "cluster.hc.health_check.network_failure") ?? 0) >= 2);
      assertEquals(await stat(f, "cluster.hc.health_check.healthy"), 3);
      assertEquals(await stat(f, "cluster.hc.membership_healthy"), 3);
    } finally {
      await f.stop();
      await a.stop();
      await b.stop();
      await c.stop();
    }
  },
);

Deno.test("outlier detection ejects a host returning 5xx; clients see no error; ejection visible", itOpts, async () => {
  const a = new Upstream("a").start();
  const b = new Upstream("b").start();
  const bad = new Upstream("bad", () => new Response("boom", { status: 500 })).start();
  const f = await startFerry(hcmBootstrap({
    routes: routes("od"),
    clusters: staticCluster(
      "od",
      [a.port, b.port, bad.port],
      `outlier_detection:
  consecutive_5xx: 3
  interval: 0.1s
  base_ejection_time: 0.5s
  max_ejection_percent: 50`,
    ),
  }));
  try {
    for (let i = 0; i < 40; i++) {
      const r = await get(f, "/");
      assertEquals(r.status, 200, `request ${i}`);
    }
    // Exactly three 5xx reached the bad host before it was ejected.
    assertEquals(bad.hits, 3);
    assertEquals(flagsOf(await clusters(f), "od", bad.port), "/failed_outlier_check");
    assertEquals(await stat(f, "cluster.od.outlier_detection.ejections_active"), 1);
    assertEquals(await stat(f, "cluster.od.outlier_detection.ejections_enforced_consecutive_5xx"), 1);
    assertEquals(await stat(f, "cluster.od.outlier_detection.ejections_detected_consecutive_5xx"), 1);
    // After base_ejection_time it is back, fails three more times, and is ejected for twice as long.
    await waitUntil(async () => flagsOf(await clusters(f), "od", bad.port) === "healthy", 2000, "un-ejection");
    for (let i = 0; i < 20; i++) assertEquals((await get(f, "/")).status, 200);
    assertEquals(bad.hits, 6);
    assertEquals(await stat(f, "cluster.od.outlier_detection.ejections_enforced_total"), 2);
  } finally {
    await f.stop();
    await a.stop();
    await b.stop();
    await bad.stop();
  }
});

Deno.test(
  "a hanging host is timed out per try, retried elsewhere and ejected on gateway failures",
  itOpts,
  async () => {
    const a = new Upstream("a").start();
    const b = new Upstream("b").start();
    const hung = startRawServer(async (c) => {
      await c.read(new Uint8Array(4096));
      await new Promise((r) => setTimeout(r, 3000));
    });
    const f = await startFerry(hcmBootstrap({
      routes: routes("hang"),
      clusters: staticCluster(
        "hang",
        [a.port, b.port, hung.port],
        `outlier_detection:
  consecutive_5xx: 100
  consecutive_gateway_failure: 2
  enforcing_consecutive_gateway_failure: 100
  interval: 1s
  base_ejection_time: 30s
  max_ejection_percent: 50
# Four of the twelve concurrent requests need a retry at once; Envoy's default max_retries (3) would refuse one.
circuit_breakers: { thresholds: [{ max_retries: 20 }] }`,
      ),
    }));
    try {
      const t0 = performance.now();
      const rs = await Promise.all(Array.from({ length: 12 }, () => get(f, "/")));
      for (const r of rs) assertEquals(r.status, 200);
      assert(performance.now() - t0 < 2500, "no request waited for the hung host beyond per_try_timeout");
      await waitUntil(async () => flagsOf(await clusters(f), "hang", hung.port) === "/failed_outlier_check", 2000);
      assertEquals(await stat(f, "cluster.hang.outlier_detection.ejections_enforced_consecutive_gateway_failure"), 1);
      assert((await stat(f, "cluster.hang.upstream_rq_per_try_timeout") ?? 0) >= 2);
    } finally {
      await f.stop();
      await a.stop();
      await b.stop();
      hung.close();
    }
  },
);

Deno.test("circuit breakers: max_requests and max_retries answer 503 UO and show in /stats", itOpts, async () => {
  const slow = new Upstream("slow", async () => {
    await new Promise((r) => setTimeout(r, 300));
    return new Response("slow");
  }).start();
  const failing = new Upstream("failing", () => new Response("no", { status: 503 })).start();
  const f = await startFerry(hcmBootstrap({
    routes: `- name: all
  domains: ["*"]
  routes:
  - match: { prefix: "/slow" }
    route: { cluster: limited }
  - match: { prefix: "/retry" }
    route:
      cluster: noretries
      retry_policy: { retry_on: "5xx", num_retries: 2, retry_back_off: { base_interval: 0.2s } }`,
    clusters: [
      staticCluster(
        "limited",
        [slow.port],
        `circuit_breakers:
  thresholds: [{ max_requests: 2, max_pending_requests: 100, track_remaining: true }]`,
      ),
      staticCluster(
        "noretries",
        [failing.port],
        `circuit_breakers:
  thresholds: [{ max_retries: 1 }]`,
      ),
    ].join("\n"),
    hcmExtra: `access_log:
- name: envoy.access_loggers.stdout
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog
    log_format: { text_format_source: { inline_string: "" } }`,
  }));
  try {
    const pending = Array.from({ length: 6 }, () => get(f, "/slow"));
    await new Promise((r) => setTimeout(r, 100));
    assertEquals(await stat(f, "cluster.limited.circuit_breakers.default.rq_open"), 1);
    assertEquals(await stat(f, "cluster.limited.circuit_breakers.default.remaining_rq"), 0);
    const rs = await Promise.all(pending);
    const ok = rs.filter((r) => r.status === 200).length;
    const over = rs.filter((r) => r.status === 503);
    assertEquals(ok, 2);
    assertEquals(over.length, 4);
    assertMatch(over[0]!.body, /overflow/);
    assertEquals(await stat(f, "cluster.limited.upstream_rq_pending_overflow"), 4);
    assertEquals(await stat(f, "cluster.limited.circuit_breakers.default.rq_open"), 0);
    assertEquals(await stat(f, "cluster.limited.circuit_breakers.default.remaining_rq"), 2);
    // Three concurrent requests that all want a retry; max_retries 1 lets one retry wait (200 ms back-off) at a time.
    const rr = await Promise.all(Array.from({ length: 3 }, () => get(f, "/retry")));
    for (const r of rr) assertEquals(r.status, 503);
    assert((await stat(f, "cluster.noretries.upstream_rq_retry_overflow") ?? 0) >= 2);
    assert((await stat(f, "cluster.noretries.upstream_rq_retry") ?? 0) >= 1);
  } finally {
    await f.stop();
    await slow.stop();
    await failing.stop();
  }
});

Deno.test("RING_HASH and MAGLEV keep a key on one host; cookie policy with ttl sets the cookie", itOpts, async () => {
  const ups = ["a", "b", "c", "d"].map((n) => new Upstream(n).start());
  const ports = ups.map((u) => u.port);
  const f = await startFerry(hcmBootstrap({
    routes: `- name: all
  domains: ["*"]
  routes:
  - match: { prefix: "/ring" }
    route:
      cluster: ring
      hash_policy: [{ header: { header_name: x-user } }]
  - match: { prefix: "/maglev" }
    route:
      cluster: maglev
      hash_policy: [{ query_parameter: { name: u } }]
  - match: { prefix: "/cookie" }
    route:
      cluster: ring
      hash_policy: [{ cookie: { name: sticky, ttl: 3600s, path: / } }]`,
    clusters: [
      staticCluster("ring", ports, "lb_policy: RING_HASH\nring_hash_lb_config: { minimum_ring_size: 1024 }"),
      staticCluster("maglev", ports, "lb_policy: MAGLEV"),
    ].join("\n"),
  }));
  try {
    const seen = new Map<string, Set<string>>();
    for (let round = 0; round < 3; round++) {
      for (let u = 0; u < 20; u++) {
        const r1 = await get(f, "/ring", { "x-user": `user-${u}` });
        const r2 = await get(f, `/maglev?u=user-${u}`);
        for (const [k, v] of [[`r${u}`, r1.body], [`m${u}`, r2.body]] as const) {
          if (!seen.has(k)) seen.set(k, new Set());
          seen.get(k)!.add(v);
        }
      }
    }
    for (const [k, v] of seen) assertEquals(v.size, 1, `key ${k} stays on one host`);
    // 20 users spread over more than one host.
    assert(new Set([...seen].filter(([k]) => k.startsWith("r")).map(([, v]) => [...v][0])).size >= 2);
    const first = await get(f, "/cookie");
    const sc = first.headers.get("set-cookie") ?? "";
    assertMatch(sc, /^sticky="[0-9a-f]{16}"; Max-Age=3600; Path=\/; HttpOnly$/);
    const cookie = sc.split(";")[0]!;
    const hosts = new Set<string>();
    for (let i = 0; i < 10; i++) {
      const r = await get(f, "/cookie", { cookie });
      assertEquals(r.headers.get("set-cookie"), null);
      hosts.add(r.body);
    }
    assertEquals(hosts.size, 1);
  } finally {
    await f.stop();
    for (const u of ups) await u.stop();
  }
});

Deno.test("x-envoy-immediate-health-check-fail from a host takes it out at once", itOpts, async () => {
  const a = new Upstream("a").start();
  let draining = false;
  const b = new Upstream("b", (req) => {
    if (new URL(req.url).pathname === "/healthz") {
      return new Response("", { status: draining ? 503 : 200 });
    }
    return new Response("b", { headers: draining ? { "x-envoy-immediate-health-check-fail": "true" } : {} });
  }).start();
  const f = await startFerry(hcmBootstrap({
    routes: routes("imm"),
    clusters: staticCluster(
      "imm",
      [a.port, b.port],
      `common_lb_config: { healthy_panic_threshold: { value: 0 } }
health_checks:
- timeout: 0.2s
  interval: 10s
  no_traffic_interval: 10s
  unhealthy_threshold: 2
  healthy_threshold: 1
  http_health_check: { path: /healthz }`,
    ),
  }));
  try {
    for (let i = 0; i < 4; i++) assertEquals((await get(f, "/")).status, 200);
    draining = true;
    for (let i = 0; i < 4; i++) await get(f, "/");
    const bHits = b.hits;
    for (let i = 0; i < 10; i++) assertEquals((await get(f, "/")).body, "a");
    assertEquals(b.hits, bHits);
    assertEquals(flagsOf(await clusters(f), "imm", b.port), "/failed_active_hc/excluded_via_immediate_hc_fail");
    assertEquals(await stat(f, "cluster.imm.health_check.passive_failure"), 1);
  } finally {
    await f.stop();
    await a.stop();
    await b.stop();
  }
});
