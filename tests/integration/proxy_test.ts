/**
 * HTTP/1.1 proxying end to end: curl and raw sockets → Ferry → real upstreams.
 */
import { assert, assertEquals, assertMatch, assertNotEquals } from "../assert.ts";
import {
  catchAllRoute,
  curl,
  hcmBootstrap,
  itOpts,
  rawRequest,
  readAll,
  startFerry,
  startRawServer,
  startUpstream,
  stat,
  staticCluster,
} from "./_harness.ts";
import { freePort } from "../fakes/ports.ts";

Deno.test("proxy forwards a GET with Envoy's forwarding headers and strips hop-by-hop headers", itOpts, async () => {
  const up = await startUpstream();
  const f = await startFerry(hcmBootstrap({
    routes: catchAllRoute("{ cluster: up }"),
    clusters: staticCluster("up", [up.port]),
    hcmExtra: "use_remote_address: true",
  }));
  try {
    const r = await curl(`http://127.0.0.1:${f.port()}/hello?x=1`, [
      "-H",
      "Keep-Alive: timeout=5",
      "-H",
      "Connection: keep-alive, X-Drop-Me",
      "-H",
      "X-Drop-Me: 1",
      "-H",
      "X-Envoy-Retry-On: 5xx",
    ]);
    assertEquals(r.status, 200);
    assertEquals(r.body, "ok /hello");
    assertEquals(r.headers["server"], "ferry");
    assert(r.headers["x-envoy-upstream-service-time"] !== undefined);
    const seen = up.requests[0]!;
    assertEquals(seen.url.search, "?x=1");
    assertEquals(seen.headers.get("x-forwarded-for"), "127.0.0.1");
    assertEquals(seen.headers.get("x-forwarded-proto"), "http");
    assertMatch(seen.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
    assertEquals(seen.headers.get("keep-alive"), null);
    assertEquals(seen.headers.get("x-drop-me"), null);
    // External requests may not steer Ferry with internal headers.
    assertEquals(seen.headers.get("x-envoy-retry-on"), null);
    assertEquals(seen.headers.get("host"), `127.0.0.1:${f.port()}`);
    assertEquals(await stat(f, "http.test.downstream_rq_2xx"), 1);
    assertEquals(await stat(f, "cluster.up.upstream_rq_2xx"), 1);
    assertEquals(await stat(f, "cluster.up.upstream_cx_total"), 1);
  } finally {
    await f.stop();
    await up.close();
  }
});

Deno.test(
  "proxy keeps an external x-request-id when not at the edge and appends to x-forwarded-for",
  itOpts,
  async () => {
    const up = await startUpstream();
    const f = await startFerry(hcmBootstrap({
      routes: catchAllRoute("{ cluster: up }"),
      clusters: staticCluster("up", [up.port]),
    }));
    try {
      const r = await curl(`http://127.0.0.1:${f.port()}/`, [
        "-H",
        "X-Request-Id: abc",
        "-H",
        "X-Forwarded-For: 10.0.0.1",
      ]);
      assertEquals(r.status, 200);
      assertEquals(up.requests[0]!.headers.get("x-request-id"), "abc");
      // Not at the edge (use_remote_address false): XFF passes through untouched.
      assertEquals(up.requests[0]!.headers.get("x-forwarded-for"), "10.0.0.1");
    } finally {
      await f.stop();
      await up.close();
    }
  },
);

Deno.test("proxy streams chunked uploads and chunked responses with trailers", itOpts, async () => {
  const up = await startUpstream((req) => {
    const body = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode(`got ${req.body.length} bytes;`));
        c.enqueue(new TextEncoder().encode("end"));
        c.close();
      },
    });
    return new Response(body);
  });
  const f = await startFerry(hcmBootstrap({
    routes: catchAllRoute("{ cluster: up }"),
    clusters: staticCluster("up", [up.port]),
  }));
  try {
    const file = await Deno.makeTempFile();
    await Deno.writeTextFile(file, "x".repeat(300_000));
    const r = await curl(`http://127.0.0.1:${f.port()}/up`, [
      "-H",
      "Transfer-Encoding: chunked",
      "--data-binary",
      `@${file}`,
    ]);
    await Deno.remove(file);
    assertEquals(r.status, 200);
    assertEquals(r.body, "got 300000 bytes;end");
    assertEquals(r.headers["transfer-encoding"], "chunked");
    assertEquals(up.requests[0]!.body.length, 300_000);
  } finally {
    await f.stop();
    await up.close();
  }
});

Deno.test("proxy answers pipelined requests in order on one connection", itOpts, async () => {
  let n = 0;
  const up = await startUpstream(async (req) => {
    // The first request is the slowest: responses must still come back in request order.
    const delay = req.url.pathname === "/a" ? 100 : 0;
    await new Promise((r) => setTimeout(r, delay));
    return new Response(`${req.url.pathname}#${++n}`);
  });
  const f = await startFerry(hcmBootstrap({
    routes: catchAllRoute("{ cluster: up }"),
    clusters: staticCluster("up", [up.port]),
  }));
  try {
    const req = (p: string) => `GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`;
    const out = await rawRequest(f.port(), req("/a") + req("/b") + req("/c"), 800);
    const bodies = [...out.matchAll(/\r\n\r\n(\/[abc])#\d/g)].map((m) => m[1]);
    assertEquals(bodies, ["/a", "/b", "/c"]);
  } finally {
    await f.stop();
    await up.close();
  }
});

Deno.test("proxy answers Expect: 100-continue and forwards the body", itOpts, async () => {
  const up = await startUpstream((req) => new Response(`len=${req.body.length}`));
  const f = await startFerry(hcmBootstrap({
    routes: catchAllRoute("{ cluster: up }"),
    clusters: staticCluster("up", [up.port]),
  }));
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port: f.port() });
    await c.write(
      new TextEncoder().encode("POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"),
    );
    const interim = await readAll(c, 300);
    assertMatch(interim, /^HTTP\/1\.1 100 Continue\r\n\r\n$/);
    await c.write(new TextEncoder().encode("hello"));
    const res = await readAll(c, 500);
    c.close();
    assertMatch(res, /^HTTP\/1\.1 200 OK/);
    assertMatch(res, /len=5$/);
    assertEquals(up.requests[0]!.headers.get("expect"), null);
  } finally {
    await f.stop();
    await up.close();
  }
});

Deno.test("proxy supports HTTP/1.0 when accept_http_10 is set, and answers 426 otherwise", itOpts, async () => {
  const up = await startUpstream();
  const routes = `- name: all\n  domains: ["*"]\n  routes:\n  - match: { prefix: "/" }\n    route: { cluster: up }`;
  const f = await startFerry(hcmBootstrap({
    routes,
    clusters: staticCluster("up", [up.port]),
    hcmExtra: "http_protocol_options: { accept_http_10: true, default_host_for_http_10: example.com }",
  }));
  const g = await startFerry(hcmBootstrap({ routes, clusters: staticCluster("up", [up.port]) }));
  try {
    const out = await rawRequest(f.port(), "GET /ten HTTP/1.0\r\n\r\n");
    assertMatch(out, /^HTTP\/1\.1 200 OK/);
    assertMatch(out, /ok \/ten$/);
    assertEquals(up.requests[0]!.headers.get("host"), "example.com");
    const r = await curl(`http://127.0.0.1:${g.port()}/`, ["-0"]);
    assertEquals(r.status, 426);
  } finally {
    await f.stop();
    await g.stop();
    await up.close();
  }
});

Deno.test(
  "proxy re-sends a request when a pooled keep-alive connection was closed by the upstream",
  itOpts,
  async () => {
    // An upstream that answers one request per connection but claims keep-alive, then closes: the classic race.
    let served = 0;
    const raw = startRawServer(async (c) => {
      const buf = new Uint8Array(4096);
      const n = await c.read(buf);
      if (n === null) return c.close();
      served++;
      await c.write(new TextEncoder().encode(`HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok`));
      // Close a little later, after Ferry has put the connection back into its pool.
      await new Promise((r) => setTimeout(r, 30));
      c.close();
    });
    const f = await startFerry(hcmBootstrap({
      routes: catchAllRoute("{ cluster: up }"),
      clusters: staticCluster("up", [raw.port]),
    }));
    try {
      for (let i = 0; i < 6; i++) {
        const r = await curl(`http://127.0.0.1:${f.port()}/${i}`);
        assertEquals(r.status, 200, `request ${i}: ${r.body}`);
        await new Promise((r) => setTimeout(r, i % 2 ? 40 : 5));
      }
      assertEquals(served, 6);
      assertEquals(await stat(f, "cluster.up.upstream_rq_5xx") ?? 0, 0);
    } finally {
      await f.stop();
      raw.close();
    }
  },
);

Deno.test("proxy answers 503 with UF when the upstream refuses connections", itOpts, async () => {
  const dead = freePort();
  const f = await startFerry(hcmBootstrap({
    routes: catchAllRoute("{ cluster: dead }"),
    clusters: staticCluster("dead", [dead]),
  }));
  try {
    const r = await curl(`http://127.0.0.1:${f.port()}/`);
    assertEquals(r.status, 503);
    assertMatch(r.body, /upstream connect error/);
    assertEquals(await stat(f, "cluster.dead.upstream_cx_connect_fail"), 1);
  } finally {
    await f.stop();
  }
});

Deno.test("proxy times out a hung upstream with 504 after the route timeout", itOpts, async () => {
  const raw = startRawServer(async (c) => {
    await c.read(new Uint8Array(4096));
    await new Promise((r) => setTimeout(r, 3000));
    c.close();
  });
  const f = await startFerry(hcmBootstrap({
    routes:
      `- name: all\n  domains: ["*"]\n  routes:\n  - match: { prefix: "/" }\n    route: { cluster: up, timeout: 0.2s }`,
    clusters: staticCluster("up", [raw.port]),
  }));
  try {
    const r = await curl(`http://127.0.0.1:${f.port()}/`);
    assertEquals(r.status, 504);
    assertEquals(r.body, "upstream request timeout");
    assertEquals(await stat(f, "cluster.up.upstream_rq_timeout"), 1);
  } finally {
    await f.stop();
    raw.close();
  }
});

Deno.test("proxy retries 5xx on another host and connect failures, per retry_policy", itOpts, async () => {
  const bad = await startUpstream(() => new Response("bad", { status: 503 }));
  const good = await startUpstream(() => new Response("good"));
  const dead = freePort();
  const f = await startFerry(hcmBootstrap({
    routes: `- name: all
  domains: ["*"]
  routes:
  - match: { prefix: "/5xx" }
    route:
      cluster: mixed
      retry_policy: { retry_on: "5xx", num_retries: 3, retry_back_off: { base_interval: 0.005s } }
  - match: { prefix: "/cf" }
    route:
      cluster: withdead
      retry_policy: { retry_on: "connect-failure", num_retries: 2, retry_back_off: { base_interval: 0.005s } }
  - match: { prefix: "/noretry" }
    route: { cluster: onlybad }`,
    clusters: [
      staticCluster("mixed", [bad.port, good.port]),
      staticCluster("withdead", [dead, good.port]),
      staticCluster("onlybad", [bad.port]),
    ].join("\n"),
  }));
  try {
    for (let i = 0; i < 4; i++) {
      const r = await curl(`http://127.0.0.1:${f.port()}/5xx`);
      assertEquals(r.status, 200);
      assertEquals(r.body, "good");
      const c = await curl(`http://127.0.0.1:${f.port()}/cf`);
      assertEquals(c.status, 200);
    }
    assert((await stat(f, "cluster.mixed.upstream_rq_retry") ?? 0) >= 1);
    const n = await curl(`http://127.0.0.1:${f.port()}/noretry`);
    assertEquals(n.status, 503);
    assertEquals(n.body, "bad");
  } finally {
    await f.stop();
    await bad.close();
    await good.close();
  }
});

Deno.test("proxy applies per_try_timeout and retries to a healthy host", itOpts, async () => {
  const slow = startRawServer(async (c) => {
    await c.read(new Uint8Array(4096));
    await new Promise((r) => setTimeout(r, 2000));
    c.close();
  });
  const good = await startUpstream(() => new Response("fast"));
  const f = await startFerry(hcmBootstrap({
    routes: `- name: all
  domains: ["*"]
  routes:
  - match: { prefix: "/" }
    route:
      cluster: c
      timeout: 3s
      retry_policy: { retry_on: "5xx,reset", num_retries: 2, per_try_timeout: 0.15s, retry_back_off: { base_interval: 0.005s } }`,
    clusters: staticCluster("c", [slow.port, good.port]),
  }));
  try {
    for (let i = 0; i < 3; i++) {
      const r = await curl(`http://127.0.0.1:${f.port()}/`);
      assertEquals(r.status, 200);
      assertEquals(r.body, "fast");
    }
  } finally {
    await f.stop();
    slow.close();
    await good.close();
  }
});

Deno.test("proxy tunnels a WebSocket both ways after 101", itOpts, async () => {
  const srv = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onmessage = (e) => socket.send(`echo:${e.data}`);
    return response;
  });
  const f = await startFerry(hcmBootstrap({
    routes: catchAllRoute("{ cluster: ws }"),
    clusters: staticCluster("ws", [srv.addr.port]),
    hcmExtra: "upgrade_configs: [{ upgrade_type: websocket }]",
  }));
  try {
    const ws = new WebSocket(`ws://127.0.0.1:${f.port()}/chat`);
    const got: string[] = [];
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => {
        ws.send("one");
        ws.send("two");
      };
      ws.onmessage = (e) => {
        got.push(String(e.data));
        if (got.length === 2) resolve();
      };
      ws.onerror = (e) => reject(new Error(`websocket error: ${(e as ErrorEvent).message}`));
      setTimeout(() => reject(new Error("timeout")), 3000);
    });
    ws.close();
    assertEquals(got, ["echo:one", "echo:two"]);
    assertEquals(await stat(f, "http.test.downstream_cx_upgrades_total"), 1);
  } finally {
    await f.stop();
    await srv.shutdown();
  }
});

Deno.test("proxy refuses upgrades that the connection manager does not enable", itOpts, async () => {
  const up = await startUpstream();
  const f = await startFerry(hcmBootstrap({
    routes: catchAllRoute("{ cluster: up }"),
    clusters: staticCluster("up", [up.port]),
  }));
  try {
    const out = await rawRequest(
      f.port(),
      "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    );
    assertMatch(out, /^HTTP\/1\.1 403/);
    assertEquals(up.requests.length, 0);
  } finally {
    await f.stop();
    await up.close();
  }
});

Deno.test("proxy answers 404 with NR for an unrouted path and keeps the connection", itOpts, async () => {
  const f = await startFerry(hcmBootstrap({
    routes:
      `- name: only\n  domains: ["only.example"]\n  routes:\n  - match: { prefix: "/" }\n    direct_response: { status: 200 }`,
  }));
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port: f.port() });
    await c.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: other\r\n\r\n"));
    const a = await readAll(c, 300);
    assertMatch(a, /^HTTP\/1\.1 404/);
    await c.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: only.example\r\n\r\n"));
    const b = await readAll(c, 300);
    assertMatch(b, /^HTTP\/1\.1 200/);
    c.close();
  } finally {
    await f.stop();
  }
});

Deno.test("proxy keeps connections to the upstream alive across requests", itOpts, async () => {
  const up = await startUpstream();
  const f = await startFerry(hcmBootstrap({
    routes: catchAllRoute("{ cluster: up }"),
    clusters: staticCluster("up", [up.port]),
  }));
  try {
    for (let i = 0; i < 10; i++) assertEquals((await curl(`http://127.0.0.1:${f.port()}/${i}`)).status, 200);
    assertEquals(await stat(f, "cluster.up.upstream_cx_total"), 1);
    assertNotEquals(await stat(f, "cluster.up.upstream_rq_total"), 0);
  } finally {
    await f.stop();
    await up.close();
  }
});

Deno.test("proxy closes the downstream connection after a response when keep-alive ends", itOpts, async () => {
  const up = await startUpstream();
  const f = await startFerry(hcmBootstrap({
    routes: catchAllRoute("{ cluster: up }"),
    clusters: staticCluster("up", [up.port]),
    hcmExtra: "http_protocol_options: { accept_http_10: true }",
  }));
  try {
    for (
      const req of ["GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "GET /b HTTP/1.0\r\nHost: x\r\n\r\n"]
    ) {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: f.port() });
      await c.write(new TextEncoder().encode(req));
      const t0 = performance.now();
      // readAll returns at EOF; a connection left open would only return after the 2 s idle wait.
      const out = await readAll(c, 2000);
      c.close();
      assertMatch(out, /^HTTP\/1\.1 200 OK/);
      assertMatch(out, /connection: close/i);
      assert(performance.now() - t0 < 1500, `connection not closed after ${JSON.stringify(req.split("\r\n")[0])}`);
    }
  } finally {
    await f.stop();
    await up.close();
  }
});

Deno.test("proxy forwards CONNECT on a connect_matcher route and tunnels bytes both ways", itOpts, async () => {
  // The upstream is itself a CONNECT proxy: it answers 200, then echoes upper-cased.
  const up = startRawServer(async (c) => {
    const buf = new Uint8Array(4096);
    let head = "";
    while (!head.includes("\r\n\r\n")) {
      const n = await c.read(buf);
      if (n === null) return c.close();
      head += new TextDecoder().decode(buf.subarray(0, n));
    }
    if (!head.startsWith("CONNECT tunnel.example:443 HTTP/1.1\r\n")) {
      await c.write(new TextEncoder().encode("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n"));
      return c.close();
    }
    await c.write(new TextEncoder().encode("HTTP/1.1 200 Connection Established\r\n\r\n"));
    for (;;) {
      const n = await c.read(buf);
      if (n === null) break;
      await c.write(new TextEncoder().encode(new TextDecoder().decode(buf.subarray(0, n)).toUpperCase()));
    }
    c.close();
  });
  const f = await startFerry(hcmBootstrap({
    routes: `- name: all
  domains: ["*"]
  routes:
  - match: { connect_matcher: {} }
    route: { cluster: up }
  - match: { prefix: "/" }
    direct_response: { status: 200, body: { inline_string: plain } }`,
    clusters: staticCluster("up", [up.port]),
    hcmExtra: "upgrade_configs: [{ upgrade_type: CONNECT }]",
  }));
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port: f.port() });
    await c.write(new TextEncoder().encode("CONNECT tunnel.example:443 HTTP/1.1\r\nHost: tunnel.example:443\r\n\r\n"));
    const head = await readAll(c, 500);
    assertMatch(head, /^HTTP\/1\.1 200/);
    await c.write(new TextEncoder().encode("secret bytes"));
    assertEquals(await readAll(c, 500), "SECRET BYTES");
    c.close();
    // Plain requests don't match the connect route, and CONNECT doesn't match the prefix route.
    assertEquals((await curl(`http://127.0.0.1:${f.port()}/`)).body, "plain");
  } finally {
    await f.stop();
    up.close();
  }
});

Deno.test("a route's idle_timeout overrides stream_idle_timeout: a silent upstream gets 408 then", itOpts, async () => {
  const hang = startRawServer(async (c) => {
    await c.read(new Uint8Array(4096));
    await new Promise((r) => setTimeout(r, 2000));
    c.close();
  });
  const f = await startFerry(hcmBootstrap({
    routes: `- name: all
  domains: ["*"]
  routes:
  - match: { prefix: "/short" }
    route: { cluster: up, idle_timeout: 0.2s, timeout: 5s }
  - match: { prefix: "/" }
    route: { cluster: up, timeout: 0.6s }`,
    clusters: staticCluster("up", [hang.port]),
    hcmExtra: "stream_idle_timeout: 10s",
  }));
  try {
    const t0 = performance.now();
    const r = await curl(`http://127.0.0.1:${f.port()}/short`);
    assertEquals(r.status, 408);
    assert(performance.now() - t0 < 1500, "the route idle timeout did not apply");
    assertEquals(await stat(f, "http.test.downstream_rq_idle_timeout"), 1);
    assertEquals((await curl(`http://127.0.0.1:${f.port()}/other`)).status, 504);
  } finally {
    await f.stop();
    hang.close();
  }
});

Deno.test("an upload to an upstream that stops reading is back-pressured, then completes", itOpts, async () => {
  // Loopback socket buffers autotune to ~4 MB (send) and ~6 MB (receive) per hop: up to ~21 MB may sit in
  // kernel buffers legitimately, so the bound below leaves room for that and still catches unbounded buffering.
  const total = 64 * 1024 * 1024;
  let received = 0;
  let resume!: () => void;
  const resumed = new Promise<void>((r) => resume = r);
  const up = startRawServer(async (c) => {
    const buf = new Uint8Array(256 * 1024);
    // Read the head and a little body, then stop reading until told.
    let got = 0, headEnd = -1;
    while (headEnd < 0) {
      const n = await c.read(buf.subarray(got));
      if (n === null) return;
      got += n;
      headEnd = new TextDecoder().decode(buf.subarray(0, got)).indexOf("\r\n\r\n");
    }
    received = got - (headEnd + 4);
    await resumed;
    // Then the whole body: answering and closing with body bytes still unread would reset the connection (RST),
    // and Ferry could see the reset before the response (a 503 seen once on a loaded CI machine).
    while (received < total) {
      const n = await c.read(buf);
      if (n === null) break;
      received += n;
    }
    await c.write(new TextEncoder().encode("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"));
    c.close();
  });
  const f = await startFerry(hcmBootstrap({
    routes:
      `- name: all\n  domains: ["*"]\n  routes:\n  - match: { prefix: "/" }\n    route: { cluster: up, timeout: 30s }`,
    clusters: staticCluster("up", [up.port]),
  }));
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port: f.port() });
    await c.write(new TextEncoder().encode(`POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: ${total}\r\n\r\n`));
    const chunk = new Uint8Array(1024 * 1024).fill(120);
    let sent = 0;
    const writer = (async () => {
      while (sent < total) sent += await c.write(chunk.subarray(0, Math.min(chunk.length, total - sent)));
    })();
    await new Promise((r) => setTimeout(r, 700));
    // Socket buffers plus Ferry's 1 MiB watermarks hold a few MiB at most; the rest must wait in the client.
    assert(sent < 32 * 1024 * 1024, `the client wrote ${sent} bytes into a stalled upstream`);
    resume();
    await writer;
    // Under a loaded CI machine the last megabytes can take a while: wait up to 15 s of silence.
    const res = await readAll(c, 15000);
    c.close();
    assertMatch(res, /^HTTP\/1\.1 200/);
  } finally {
    await f.stop();
    up.close();
  }
});

Deno.test("a download to a client that stops reading pauses the upstream, then completes", itOpts, async () => {
  // Loopback socket buffers autotune to ~4 MB (send) and ~6 MB (receive) per hop: up to ~21 MB may sit in
  // kernel buffers legitimately, so the bound below leaves room for that and still catches unbounded buffering.
  const total = 64 * 1024 * 1024;
  let written = 0;
  const up = startRawServer(async (c) => {
    await c.read(new Uint8Array(4096));
    await c.write(new TextEncoder().encode(`HTTP/1.1 200 OK\r\ncontent-length: ${total}\r\n\r\n`));
    const chunk = new Uint8Array(1024 * 1024).fill(121);
    while (written < total) written += await c.write(chunk.subarray(0, Math.min(chunk.length, total - written)));
  });
  const f = await startFerry(hcmBootstrap({
    routes:
      `- name: all\n  domains: ["*"]\n  routes:\n  - match: { prefix: "/" }\n    route: { cluster: up, timeout: 30s }`,
    clusters: staticCluster("up", [up.port]),
  }));
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port: f.port() });
    await c.write(new TextEncoder().encode("GET /big HTTP/1.1\r\nHost: x\r\n\r\n"));
    await new Promise((r) => setTimeout(r, 700));
    assert(written < 32 * 1024 * 1024, `the upstream wrote ${written} bytes towards a client that reads nothing`);
    const buf = new Uint8Array(1 << 20);
    let got = 0;
    const deadline = performance.now() + 10_000;
    while (performance.now() < deadline) {
      const n = await c.read(buf);
      if (n === null) break;
      got += n;
      if (got >= total) break;
    }
    c.close();
    assert(got > total, `received ${got} of ${total} body bytes`);
  } finally {
    await f.stop();
    up.close();
  }
});
