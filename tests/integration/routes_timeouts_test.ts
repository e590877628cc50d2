/**
 * Route limits end to end: `max_stream_duration` (with `grpc-timeout`), retry `per_try_idle_timeout` and
 * `per_request_buffer_limit_bytes`, against real upstreams (Deno.serve or raw sockets) with curl and raw clients.
 */
import { assert, assertEquals, assertMatch } from "../assert.ts";
import {
  catchAllRoute,
  curl,
  hcmBootstrap,
  itOpts,
  readAll,
  readHead,
  sleep,
  startFerry,
  startRawServer,
  startUpstream,
  stat,
  staticCluster,
} from "./_harness.ts";

const enc = new TextEncoder();

Deno.test(
  "routes: max_stream_duration replaces the route timeout and answers 504 (request complete) or 408 (still arriving)",
  itOpts,
  async () => {
    const up = await startUpstream(async (req) => {
      await sleep(Number(req.url.searchParams.get("delay") ?? 0));
      return new Response(`done ${req.body.length}`);
    });
    // For the request that never completes: an upstream that just waits for it.
    const raw = startRawServer(async (c) => {
      await readHead(c);
      await sleep(3000);
    });
    const f = await startFerry(hcmBootstrap({
      routes: `- name: all
  domains: ["*"]
  routes:
  - match: { prefix: "/slow" }
    route: { cluster: raw, max_stream_duration: { max_stream_duration: 0.6s } }
  - match: { prefix: "/" }
    route: { cluster: up, timeout: 0.1s, max_stream_duration: { max_stream_duration: 0.6s } }`,
      clusters: [staticCluster("up", [up.port]), staticCluster("raw", [raw.port])].join("\n"),
    }));
    try {
      // The 100 ms route timeout no longer applies: a 300 ms answer gets through.
      const ok = await curl(f.url("/x?delay=300"));
      assertEquals([ok.status, ok.body], [200, "done 0"]);
      const t0 = performance.now();
      const late = await curl(f.url("/x?delay=3000"));
      const took = performance.now() - t0;
      assertEquals([late.status, late.body], [504, "downstream duration timeout"]);
      assert(took >= 550 && took < 2500, `expired after ${Math.round(took)} ms`);

      // A request whose body is still arriving when the cap expires: 408, and the connection is closed.
      const c = await Deno.connect({ hostname: "127.0.0.1", port: f.port() });
      await c.write(enc.encode("POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"));
      const res = await readAll(c, 2000);
      c.close();
      assertMatch(res, /^HTTP\/1\.1 408 /);
      assertMatch(res, /downstream duration timeout$/);
      assertEquals(await stat(f, "http.test.downstream_rq_max_duration_reached"), 2);
      assertEquals(await stat(f, "cluster.up.upstream_rq_timeout"), 0, "not the router's route timeout");
    } finally {
      await f.stop();
      await up.close();
      raw.close();
    }
  },
);

Deno.test("routes: max_stream_duration resets a stream whose response has started", itOpts, async () => {
  // The upstream sends the head and half the body, then stalls.
  const raw = startRawServer(async (c) => {
    await readHead(c);
    await c.write(enc.encode("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf-"));
    await sleep(3000);
  });
  const f = await startFerry(hcmBootstrap({
    routes: catchAllRoute("{ cluster: raw, max_stream_duration: { max_stream_duration: 0.4s } }"),
    clusters: staticCluster("raw", [raw.port]),
  }));
  try {
    const t0 = performance.now();
    const r = await curl(f.url("/stream"));
    const took = performance.now() - t0;
    assertEquals(r.status, 200, "the head got through");
    assertEquals(r.body, "half-");
    assert(r.code !== 0, "curl saw a complete response");
    assert(took < 2500, `reset after ${Math.round(took)} ms`);
    assertEquals(await stat(f, "http.test.downstream_rq_max_duration_reached"), 1);
  } finally {
    await f.stop();
    raw.close();
  }
});

Deno.test(
  "routes: grpc_timeout_header_max caps grpc-timeout, the offset is taken off, the upstream sees the result",
  itOpts,
  async () => {
    let seenTimeout = "";
    const raw = startRawServer(async (c) => {
      const head = await readHead(c);
      seenTimeout = /\r\ngrpc-timeout: ([^\r]*)/i.exec(head)?.[1] ?? "(none)";
      await sleep(3000); // never answers in time
    });
    const f = await startFerry(hcmBootstrap({
      routes: catchAllRoute(
        "{ cluster: raw, max_stream_duration: " +
          "{ max_stream_duration: 5s, grpc_timeout_header_max: 0.5s, grpc_timeout_header_offset: 0.1s } }",
      ),
      clusters: staticCluster("raw", [raw.port]),
    }));
    try {
      const t0 = performance.now();
      const r = await curl(f.url("/pkg.Svc/Method"), [
        "-X",
        "POST",
        "-H",
        "content-type: application/grpc",
        "-H",
        "grpc-timeout: 30S",
        "--data-binary",
        "x",
      ]);
      const took = performance.now() - t0;
      assertEquals(seenTimeout, "400m", "30 s capped at 500 ms, less the 100 ms offset");
      // gRPC gets DEADLINE_EXCEEDED in a trailers-only response, as Envoy's local replies to gRPC requests.
      assertEquals(r.status, 200);
      assertEquals(r.headers["grpc-status"], "4");
      assertEquals(r.headers["grpc-message"], "downstream duration timeout");
      assertEquals(r.headers["content-type"], "application/grpc");
      assert(took >= 350 && took < 2500, `expired after ${Math.round(took)} ms`);
    } finally {
      await f.stop();
      raw.close();
    }
  },
);

Deno.test(
  "routes: per_try_idle_timeout cancels a silent try and retries; a trickling response is not idle",
  itOpts,
  async () => {
    // The first connection to either host stays silent; every later one answers (a trickle for /trickle).
    let conns = 0;
    const behave = async (c: Deno.Conn) => {
      if (conns++ === 0) {
        await readHead(c);
        await sleep(3000);
        return;
      }
      for (;;) {
        const head = await readHead(c);
        if (head === "") return;
        if (head.startsWith("GET /trickle")) {
          await c.write(enc.encode("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n"));
          for (const ch of "abcdef") {
            await sleep(120);
            await c.write(enc.encode(ch));
          }
        } else {
          await c.write(enc.encode("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh"));
        }
      }
    };
    const a = startRawServer(behave);
    const b = startRawServer(behave);
    const retry = `retry_policy: { retry_on: "5xx", num_retries: 1, per_try_idle_timeout: 0.3s, ` +
      `retry_back_off: { base_interval: 0.01s } }`;
    const f = await startFerry(hcmBootstrap({
      routes: catchAllRoute(`{ cluster: up, ${retry} }`),
      clusters: staticCluster("up", [a.port, b.port]),
    }));
    try {
      const t0 = performance.now();
      const r = await curl(f.url("/first"));
      const took = performance.now() - t0;
      assertEquals([r.status, r.body], [200, "fresh"]);
      assert(took >= 280 && took < 2000, `answered after ${Math.round(took)} ms`);
      assertEquals(await stat(f, "cluster.up.upstream_rq_per_try_idle_timeout"), 1);
      assertEquals(await stat(f, "cluster.up.upstream_rq_retry"), 1);
      // 720 ms of body, 120 ms apart: each byte restarts the 300 ms idle timer.
      const t = await curl(f.url("/trickle"));
      assertEquals([t.status, t.body], [200, "abcdef"]);
      assertEquals(await stat(f, "cluster.up.upstream_rq_per_try_idle_timeout"), 1);
    } finally {
      await f.stop();
      a.close();
      b.close();
    }
  },
);

Deno.test(
  "routes: per_try_idle_timeout without a retry left answers 504 UT, and resets a stalled streaming response",
  itOpts,
  async () => {
    const raw = startRawServer(async (c) => {
      const head = await readHead(c);
      if (head.startsWith("GET /stall-body")) {
        await c.write(enc.encode("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\npart"));
      }
      await sleep(3000);
    });
    const f = await startFerry(hcmBootstrap({
      routes: catchAllRoute(
        `{ cluster: raw, timeout: 10s, retry_policy: { retry_on: "5xx", num_retries: 0, per_try_idle_timeout: 0.25s } }`,
      ),
      clusters: staticCluster("raw", [raw.port]),
    }));
    try {
      const r = await curl(f.url("/silent"));
      assertEquals([r.status, r.body], [504, "upstream request timeout"]);
      const s = await curl(f.url("/stall-body"));
      assertEquals([s.status, s.body], [200, "part"]);
      assert(s.code !== 0, "curl saw a complete response");
      assertEquals(await stat(f, "cluster.raw.upstream_rq_per_try_idle_timeout"), 2);
    } finally {
      await f.stop();
      raw.close();
    }
  },
);

Deno.test(
  "routes: per_request_buffer_limit_bytes: a bigger body is not retried but still delivered; vhost level too",
  itOpts,
  async () => {
    // The first attempt of each request (by ?id=) fails with 503: a retry, when allowed, gets the 200.
    const seen = new Set<string>();
    const bodies: number[] = [];
    const up = await startUpstream((req) => {
      bodies.push(req.body.length);
      const id = req.url.searchParams.get("id")!;
      if (seen.has(id)) return new Response(`got ${req.body.length}`);
      seen.add(id);
      return new Response("busy", { status: 503 });
    });
    const retry = `retry_policy: { retry_on: "5xx", num_retries: 1, retry_back_off: { base_interval: 0.01s } }`;
    const f = await startFerry(hcmBootstrap({
      routes: `- name: all
  domains: ["*"]
  per_request_buffer_limit_bytes: 64
  routes:
  - match: { prefix: "/route" }
    route: { cluster: up, ${retry} }
    per_request_buffer_limit_bytes: 16
  - match: { prefix: "/" }
    route: { cluster: up, ${retry} }`,
      clusters: staticCluster("up", [up.port]),
    }));
    let id = 0;
    const post = (path: string, size: number) =>
      curl(f.url(`${path}?id=${id++}`), [
        "-X",
        "POST",
        "-H",
        "content-type: text/plain",
        "--data-binary",
        "x".repeat(size),
      ]);
    try {
      assertEquals((await post("/route", 16)).body, "got 16", "at the limit: kept, retried");
      assertEquals(await stat(f, "cluster.up.upstream_rq_retry"), 1);
      const big = await post("/route", 17);
      assertEquals([big.status, big.body], [503, "busy"], "over the route's limit: the 503 passes through");
      assertEquals(bodies[bodies.length - 1], 17, "the upstream still got the whole body");
      assertEquals(await stat(f, "cluster.up.retry_or_shadow_abandoned"), 1);
      assertEquals(await stat(f, "cluster.up.upstream_rq_retry"), 1);
      // The virtual host's 64 bytes apply to the route without its own limit.
      assertEquals((await post("/vh", 64)).body, "got 64");
      assertEquals((await post("/vh", 65)).status, 503);
      assertEquals(await stat(f, "cluster.up.retry_or_shadow_abandoned"), 2);
      assertEquals(await stat(f, "cluster.up.upstream_rq_retry"), 2);
    } finally {
      await f.stop();
      await up.close();
    }
  },
);

Deno.test(
  "routes: per_request_buffer_limit_bytes: a body outgrowing the limit while a retry waits gets 507",
  itOpts,
  async () => {
    // The upstream answers 503 as soon as it has the head, before the body is complete.
    const raw = startRawServer(async (c) => {
      await readHead(c);
      await c.write(enc.encode("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"));
      await sleep(2000);
    });
    const f = await startFerry(hcmBootstrap({
      routes: `- name: all
  domains: ["*"]
  routes:
  - match: { prefix: "/" }
    route:
      cluster: raw
      # Back-off is uniform in [0, base): 60 s makes a retry that fires before the rest of the body arrives (the
      # case this test is not about) a ~0.1% event.
      retry_policy: { retry_on: "5xx", num_retries: 1, retry_back_off: { base_interval: 60s, max_interval: 60s } }
    per_request_buffer_limit_bytes: 8`,
      clusters: staticCluster("raw", [raw.port]),
    }));
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: f.port() });
      await c.write(enc.encode("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\nabcd"));
      // Wait until the 503 arrived and the retry is waiting out its back-off.
      for (let i = 0; i < 100 && (await stat(f, "cluster.raw.upstream_rq_retry")) !== 1; i++) await sleep(20);
      await c.write(enc.encode("efghijklmnopqrst"));
      const res = await readAll(c, 1500);
      c.close();
      assertMatch(res, /^HTTP\/1\.1 507 /);
      assertMatch(res, /exceeded request buffer limit while retrying upstream$/);
      assertEquals(await stat(f, "cluster.raw.retry_or_shadow_abandoned"), 1);
    } finally {
      await f.stop();
      raw.close();
    }
  },
);
