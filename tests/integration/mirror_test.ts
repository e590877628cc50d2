/**
 * Route `request_mirror_policies` end to end: the shadow gets the request (headers, body, `-shadow` host), the
 * fraction and `cluster_header` choose what is mirrored, and under `wrk` load a dead, slow or 500-answering shadow
 * leaves the primary's responses without errors (p99 is printed for the report; it is not asserted).
 */
import { assert, assertEquals } from "../assert.ts";
import { assertStartFails } from "../helpers/start_fails.ts";
import {
  curl,
  hcmBootstrap,
  itOpts,
  sleep,
  startFerry,
  startUpstream,
  stat,
  staticCluster,
  waitFor,
} from "./_harness.ts";

/** A port with nothing listening (bound, then closed). */
function deadPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const p = (l.addr as Deno.NetAddr).port;
  l.close();
  return p;
}

Deno.test(
  "mirror sends the request with its body to the shadow cluster, -shadow appended to the host",
  itOpts,
  async () => {
    const primary = await startUpstream();
    const shadow = await startUpstream(() => new Response("shadow answer", { status: 201 }));
    const f = await startFerry(hcmBootstrap({
      routes: `- name: all
  domains: ["*"]
  routes:
  - match: { prefix: "/keep" }
    route:
      cluster: primary
      request_mirror_policies: [{ cluster: shadow, disable_shadow_host_suffix_append: true }]
  - match: { prefix: "/none" }
    route:
      cluster: primary
      request_mirror_policies: [{ cluster: shadow, runtime_fraction: { default_value: { numerator: 0 } } }]
  - match: { prefix: "/hdr" }
    route:
      cluster: primary
      request_mirror_policies: [{ cluster_header: x-mirror-to }]
  - match: { prefix: "/" }
    route:
      cluster: primary
      request_mirror_policies: [{ cluster: shadow, runtime_fraction: { default_value: { numerator: 100 } } }]`,
      clusters: `${staticCluster("primary", [primary.port])}\n${staticCluster("shadow", [shadow.port])}`,
    }));
    try {
      const r = await curl(f.url("/post"), ["-H", "host: api.example.com:8080", "--data-binary", "hello shadow"]);
      assertEquals(r.status, 200);
      assertEquals(r.body, "ok /post");
      await waitFor("a shadow request", () => Promise.resolve(shadow.requests.length >= 1), 5000);
      assertEquals(shadow.requests.length, 1);
      const s = shadow.requests[0]!;
      assertEquals(s.method, "POST");
      assertEquals(s.body, "hello shadow");
      assertEquals(s.headers.get("host"), "api.example.com-shadow:8080");
      assertEquals(primary.requests[0]!.headers.get("host"), "api.example.com:8080");
      await waitFor("a shadow 2xx", async () => (await stat(f, "cluster.shadow.upstream_rq_2xx")) === 1, 5000);
      assertEquals(await stat(f, "cluster.shadow.upstream_rq_2xx"), 1);

      await curl(f.url("/keep"), ["-H", "host: plain.example"]);
      await waitFor("2 shadow requests", () => Promise.resolve(shadow.requests.length >= 2), 5000);
      assertEquals(shadow.requests[1]!.headers.get("host"), "plain.example");

      for (let i = 0; i < 5; i++) assertEquals((await curl(f.url("/none"))).status, 200);
      await curl(f.url("/hdr"), ["-H", "x-mirror-to: nope"]); // unknown cluster: no shadow, primary unaffected
      await curl(f.url("/hdr"));
      const before = shadow.requests.length;
      await curl(f.url("/hdr"), ["-H", "x-mirror-to: shadow", "-H", "host: h"]);
      await waitFor("the x-mirror-to shadow request", () => Promise.resolve(shadow.requests.length > before), 5000);
      assertEquals(shadow.requests.length, 3);
      assertEquals(shadow.requests[2]!.url.pathname, "/hdr");
      assertEquals(shadow.requests[2]!.headers.get("host"), "h-shadow");
    } finally {
      await f.stop();
      await primary.close();
      await shadow.close();
    }
  },
);

Deno.test("mirror over HTTP/2 downstream streams the body to the shadow", itOpts, async () => {
  const primary = await startUpstream();
  const shadow = await startUpstream();
  const f = await startFerry(hcmBootstrap({
    hcmExtra: "codec_type: AUTO",
    routes: `- name: all
  domains: ["*"]
  routes:
  - match: { prefix: "/" }
    route: { cluster: primary, request_mirror_policies: [{ cluster: shadow }] }`,
    clusters: `${staticCluster("primary", [primary.port])}\n${staticCluster("shadow", [shadow.port])}`,
  }));
  try {
    const body = "x".repeat(100_000);
    const r = await curl(f.url("/big"), ["--http2-prior-knowledge", "--data-binary", body]);
    assertEquals(r.status, 200);
    await waitFor("a shadow request", () => Promise.resolve(shadow.requests.length >= 1), 5000);
    assertEquals(shadow.requests[0]!.body.length, body.length);
    assertEquals(primary.requests[0]!.body.length, body.length);
  } finally {
    await f.stop();
    await primary.close();
    await shadow.close();
  }
});

Deno.test(
  "mirror runtime_fraction.runtime_key is read from layered_runtime (static and admin layers)",
  itOpts,
  async () => {
    const primary = await startUpstream();
    const shadow = await startUpstream();
    const f = await startFerry(
      `
layered_runtime:
  layers:
  - { name: static, static_layer: { mirror: { test: { share: 0 } } } }
  - { name: admin, admin_layer: {} }
` + hcmBootstrap({
        routes: `- name: all
  domains: ["*"]
  routes:
  - match: { prefix: "/" }
    route:
      cluster: primary
      request_mirror_policies:
      - cluster: shadow
        runtime_fraction: { default_value: { numerator: 100 }, runtime_key: mirror.test.share }`,
        clusters: `${staticCluster("primary", [primary.port])}\n${staticCluster("shadow", [shadow.port])}`,
      }),
    );
    try {
      for (let i = 0; i < 3; i++) assertEquals((await curl(f.url("/a"))).status, 200);
      const set = await fetch(`${f.adminUrl}/runtime_modify?mirror.test.share=100`, { method: "POST" });
      assertEquals(await set.text(), "OK\n");
      assertEquals((await curl(f.url("/b"))).status, 200);
      await waitFor("a shadow request", () => Promise.resolve(shadow.requests.length >= 1), 5000);
      assertEquals(shadow.requests.map((r) => r.url.pathname), ["/b"]);
      assertEquals(primary.requests.length, 4);
    } finally {
      await (await fetch(`${f.adminUrl}/runtime_modify?mirror.test.share=`, { method: "POST" })).text();
      await f.stop();
      await primary.close();
      await shadow.close();
    }
  },
);

Deno.test("mirror policies of the virtual host apply to its routes without their own", itOpts, async () => {
  const primary = await startUpstream();
  const s1 = await startUpstream();
  const s2 = await startUpstream();
  const f = await startFerry(hcmBootstrap({
    routes: `- name: all
  domains: ["*"]
  request_mirror_policies: [{ cluster: s1 }]
  routes:
  - match: { prefix: "/own" }
    route: { cluster: primary, request_mirror_policies: [{ cluster: s2 }] }
  - match: { prefix: "/" }
    route: { cluster: primary }`,
    clusters: [staticCluster("primary", [primary.port]), staticCluster("s1", [s1.port]), staticCluster("s2", [s2.port])]
      .join("\n"),
  }));
  try {
    await curl(f.url("/inherit"));
    await curl(f.url("/own"));
    await waitFor("both shadows", () => Promise.resolve(s1.requests.length >= 1 && s2.requests.length >= 1), 5000);
    assertEquals(s1.requests.map((r) => r.url.pathname), ["/inherit"]);
    assertEquals(s2.requests.map((r) => r.url.pathname), ["/own"]);
  } finally {
    await f.stop();
    for (const u of [primary, s1, s2]) await u.close();
  }
});

Deno.test("mirror config rejects an unknown shadow cluster and a policy without a cluster", itOpts, async () => {
  const bad = (policy: string, want: RegExp) =>
    assertStartFails(
      () =>
        startFerry(hcmBootstrap({
          routes: `- name: all
  domains: ["*"]
  routes: [{ match: { prefix: "/" }, route: { cluster: primary, request_mirror_policies: [${policy}] } }]`,
          clusters: staticCluster("primary", [1]),
        })),
      want,
      policy,
    );
  await bad("{ cluster: nowhere }", /request_mirror_policies\[0\]\.cluster: unknown cluster "nowhere"/);
  await bad("{ runtime_fraction: { default_value: { numerator: 5 } } }", /request_mirror_policies\[0\]/);
  await bad("{ cluster: primary, bogus: 1 }", /request_mirror_policies\[0\]\.bogus/);
});

/**
 * A shadow upstream in its own Deno process: answers `status` after `delayMs`; `seen()` asks it how many requests
 * it got (on `/__count`, directly).
 */
async function spawnShadow(
  delayMs: number,
  status: number,
): Promise<{ port: number; seen(): Promise<number>; close(): Promise<void> }> {
  const code = `let n = 0;
Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: ({ port }) => console.log(port) }, async (req) => {
  if (new URL(req.url).pathname === "/__count") return new Response(String(n));
  n++;
  await req.arrayBuffer();
  if (${delayMs} > 0) await new Promise((r) => setTimeout(r, ${delayMs}));
  return new Response("shadow", { status: ${status} });
});`;
  const child = new Deno.Command(Deno.execPath(), { args: ["eval", code], stdout: "piped", stderr: "null" }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("shadow process exited before listening");
    out += value;
  }
  const port = Number(out.trim());
  return {
    port,
    seen: async () => Number(await (await fetch(`http://127.0.0.1:${port}/__count`)).text()),
    close: async () => {
      child.kill("SIGTERM");
      await reader.cancel().catch(() => {});
      await child.status;
    },
  };
}

interface WrkResult {
  requests: number;
  errors: number;
  p99Ms: number;
  p50Ms: number;
}

function toMs(v: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v);
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === "us" ? n / 1000 : m[2] === "s" ? n * 1000 : n;
}

/** Runs wrk (1 thread, 8 connections, `seconds`) with latency percentiles; counts socket errors and non-2xx. */
async function wrk(url: string, seconds: number): Promise<WrkResult> {
  const out = await new Deno.Command("wrk", {
    args: ["-t1", "-c8", `-d${seconds}s`, "--timeout", "5s", "--latency", url],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const requests = Number(/(\d+) requests in/.exec(text)?.[1] ?? 0);
  let errors = Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0);
  const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  if (se) errors += Number(se[1]) + Number(se[2]) + Number(se[3]) + Number(se[4]);
  const p99Ms = toMs(/\s99%\s+(\S+)/.exec(text)?.[1] ?? "");
  const p50Ms = toMs(/\s50%\s+(\S+)/.exec(text)?.[1] ?? "");
  return { requests, errors, p99Ms, p50Ms };
}

Deno.test(
  "mirror under wrk: a dead, slow or 500-answering shadow leaves the primary without errors",
  itOpts,
  async () => {
    const primary = await startUpstream(() => new Response("ok"));
    // The shadows run in their own processes: what is measured is Ferry's cost, not theirs on a shared event loop.
    const slow = await spawnShadow(300, 200);
    const err = await spawnShadow(0, 500);
    const dead = deadPort();
    const routes = ["dead", "slow", "err"].map((c) => `
  - match: { prefix: "/${c}" }
    route: { cluster: primary, timeout: 1s, request_mirror_policies: [{ cluster: ${c} }] }`).join("");
    const f = await startFerry(hcmBootstrap({
      routes: `- name: all
  domains: ["*"]
  routes:${routes}
  - match: { prefix: "/" }
    route: { cluster: primary }`,
      clusters: [
        staticCluster("primary", [primary.port]),
        staticCluster("dead", [dead]),
        staticCluster("slow", [slow.port]),
        staticCluster("err", [err.port]),
      ].join("\n"),
    }));
    try {
      const results: Record<string, WrkResult> = {};
      for (const name of ["base", "dead", "slow", "err"]) {
        primary.requests.length = 0;
        results[name] = await wrk(f.url(`/${name}`), 2);
        // Let the shadows of the run finish (the slow one is cut at the route's 1 s timeout).
        await sleep(name === "slow" ? 1200 : 100);
      }
      for (const [name, r] of Object.entries(results)) {
        console.log(
          `mirror wrk ${name}: ${r.requests} requests, ${r.errors} errors, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms`,
        );
        assert(r.requests > 0, `${name}: wrk made no requests`);
        assertEquals(r.errors, 0, `${name}: primary errors`);
      }
      assert((await slow.seen()) > 0, "the slow shadow saw no requests");
      assert((await err.seen()) > 0, "the 500 shadow saw no requests");
      assert(((await stat(f, "cluster.err.upstream_rq_5xx")) ?? 0) > 0);
      assert(((await stat(f, "cluster.dead.upstream_cx_connect_fail")) ?? 0) > 0);
      assertEquals((await curl(f.url("/err"))).status, 200);
    } finally {
      await f.stop();
      await primary.close();
      await slow.close();
      await err.close();
    }
  },
);
