/**
 * The fault filter end to end: aborts and delays by percentage, by request header, limited to one upstream cluster,
 * and the `http.<prefix>.fault.*` stats.
 */
import { assert, assertEquals } from "../assert.ts";
import { curl, hcmBootstrap, itOpts, startFerry, startUpstream, stat, staticCluster } from "./_harness.ts";
import type { TestFerry, TestUpstream } from "./_harness.ts";

const FAULT = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault";

/** Ferry with `/a` → cluster a, `/b` → cluster b, and the fault filter configured by `fault` (YAML flow map body). */
async function withFault(
  fault: string,
  body: (f: TestFerry, a: TestUpstream, b: TestUpstream) => Promise<void>,
): Promise<void> {
  const a = await startUpstream();
  const b = await startUpstream();
  const f = await startFerry(hcmBootstrap({
    routes: `- name: all
  domains: ["*"]
  routes:
  - match: { prefix: "/a" }
    route: { cluster: a }
  - match: { prefix: "/b" }
    route: { cluster: b }`,
    clusters: `${staticCluster("a", [a.port])}\n${staticCluster("b", [b.port])}`,
    httpFilters: `- name: envoy.filters.http.fault
  typed_config: { "@type": ${FAULT}, ${fault} }`,
  }));
  try {
    await body(f, a, b);
  } finally {
    await f.stop();
    await a.close();
    await b.close();
  }
}

Deno.test("fault upstream_cluster aborts only requests routed to that cluster", itOpts, async () => {
  await withFault(
    `abort: { http_status: 503, percentage: { numerator: 100 } }, upstream_cluster: a`,
    async (f, a, b) => {
      const ra = await curl(`http://127.0.0.1:${f.port()}/a`);
      assertEquals(ra.status, 503);
      assertEquals(ra.body, "fault filter abort");
      assertEquals(a.requests.length, 0);
      const rb = await curl(`http://127.0.0.1:${f.port()}/b`);
      assertEquals(rb.status, 200);
      assertEquals(rb.body, "ok /b");
      assertEquals(b.requests.length, 1);
      assertEquals(await stat(f, "http.test.fault.aborts_injected"), 1);
    },
  );
});

Deno.test("fault upstream_cluster matches a weighted cluster entry of the route", itOpts, async () => {
  const a = await startUpstream();
  const f = await startFerry(hcmBootstrap({
    routes: `- name: all
  domains: ["*"]
  routes:
  - match: { prefix: "/" }
    route: { weighted_clusters: { clusters: [{ name: a, weight: 1 }, { name: b, weight: 1 }] } }`,
    clusters: `${staticCluster("a", [a.port])}\n${staticCluster("b", [a.port])}`,
    httpFilters: `- name: envoy.filters.http.fault
  typed_config: { "@type": ${FAULT}, abort: { http_status: 418, percentage: { numerator: 100 } }, upstream_cluster: b }`,
  }));
  try {
    const r = await curl(`http://127.0.0.1:${f.port()}/x`);
    assertEquals(r.status, 418);
  } finally {
    await f.stop();
    await a.close();
  }
});

Deno.test("fault header_abort and header_delay take the status and delay from request headers", itOpts, async () => {
  await withFault(
    `abort: { header_abort: {}, percentage: { numerator: 100 } }, delay: { header_delay: {}, percentage: { numerator: 100 } }`,
    async (f, a) => {
      const url = `http://127.0.0.1:${f.port()}/a`;
      const plain = await curl(url);
      assertEquals(plain.status, 200);
      const aborted = await curl(url, ["-H", "x-envoy-fault-abort-request: 418"]);
      assertEquals(aborted.status, 418);
      const t0 = performance.now();
      const delayed = await curl(url, ["-H", "x-envoy-fault-delay-request: 200"]);
      const took = performance.now() - t0;
      assertEquals(delayed.status, 200);
      assert(took >= 190, `delayed by ${took} ms`);
      assertEquals(a.requests.length, 2);
      assertEquals(await stat(f, "http.test.fault.aborts_injected"), 1);
      assertEquals(await stat(f, "http.test.fault.delays_injected"), 1);
    },
  );
});

Deno.test("fault fixed delay and percentage abort: a delayed request is then aborted", itOpts, async () => {
  await withFault(
    `delay: { fixed_delay: 0.2s, percentage: { numerator: 100 } }, abort: { http_status: 502, percentage: { numerator: 1000000, denominator: MILLION } }`,
    async (f, a) => {
      const t0 = performance.now();
      const r = await curl(`http://127.0.0.1:${f.port()}/a`);
      const took = performance.now() - t0;
      assertEquals(r.status, 502);
      assert(took >= 190, `delayed by ${took} ms`);
      assertEquals(a.requests.length, 0);
      assertEquals(await stat(f, "http.test.fault.delays_injected"), 1);
      assertEquals(await stat(f, "http.test.fault.aborts_injected"), 1);
    },
  );
});

Deno.test("fault percentage headers are numerators over the configured denominator", itOpts, async () => {
  // 100% configured as 1000000/MILLION; the header asks for 5000/MILLION = 0.5%, not 5000/100.
  await withFault(
    `abort: { header_abort: {}, percentage: { numerator: 1000000, denominator: MILLION } }`,
    async (f) => {
      let aborted = 0;
      for (let i = 0; i < 10; i++) {
        const r = await curl(`http://127.0.0.1:${f.port()}/a`, [
          "-H",
          "x-envoy-fault-abort-request: 418",
          "-H",
          "x-envoy-fault-abort-request-percentage: 5000",
        ]);
        if (r.status === 418) aborted++;
      }
      assert(aborted < 5, `${aborted} of 10 aborted`);
      // Capped at the configured percentage: a header asking for more than 0/TEN_THOUSAND gets nothing.
    },
  );
  await withFault(
    `abort: { header_abort: {}, percentage: { numerator: 0, denominator: TEN_THOUSAND } }`,
    async (f) => {
      const r = await curl(`http://127.0.0.1:${f.port()}/a`, [
        "-H",
        "x-envoy-fault-abort-request: 418",
        "-H",
        "x-envoy-fault-abort-request-percentage: 10000",
      ]);
      assertEquals(r.status, 200);
    },
  );
});
