/**
 * Malformed and hostile HTTP/1.1: smuggling attempts, oversized heads, slow heads and random bytes each get the
 * right 4xx or a close, are counted, never reach the upstream, and leave other connections working.
 */
import { assert, assertEquals, assertMatch } from "../assert.ts";
import {
  catchAllRoute,
  hcmBootstrap,
  itOpts,
  rawRequest,
  readAll,
  startFerry,
  startUpstream,
  stat,
  staticCluster,
} from "./_harness.ts";

const enc = new TextEncoder();

Deno.test(
  "hostile requests get 4xx, are counted, never reach the upstream, and spare other connections",
  itOpts,
  async () => {
    const up = await startUpstream();
    const f = await startFerry(hcmBootstrap({
      routes: catchAllRoute("{ cluster: up }"),
      clusters: staticCluster("up", [up.port]),
      hcmExtra: "max_request_headers_kb: 8\ncommon_http_protocol_options: { max_headers_count: 50 }",
    }));
    // A keep-alive connection opened before the attack, used again after it.
    const bystander = await Deno.connect({ hostname: "127.0.0.1", port: f.port() });
    try {
      await bystander.write(enc.encode("GET /before HTTP/1.1\r\nHost: x\r\n\r\n"));
      assertMatch(await readAll(bystander, 300), /^HTTP\/1\.1 200/);

      const cases: [string, string | Uint8Array, RegExp][] = [
        [
          "CL+TE",
          "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
          /^HTTP\/1\.1 400/,
        ],
        [
          "two lengths",
          "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
          /^HTTP\/1\.1 400/,
        ],
        ["bad TE", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", /^HTTP\/1\.1 (400|501)/],
        ["space before colon", "GET / HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n", /^HTTP\/1\.1 400/],
        ["obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n", /^HTTP\/1\.1 400/],
        ["bare LF", "GET / HTTP/1.1\nHost: x\n\n", /^HTTP\/1\.1 400/],
        ["bare CR", "GET / HTTP/1.1\rHost: x\r\n\r\n", /^HTTP\/1\.1 400/],
        ["NUL in value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\u0000b\r\n\r\n", /^HTTP\/1\.1 400/],
        ["bad method token", "G(T / HTTP/1.1\r\nHost: x\r\n\r\n", /^HTTP\/1\.1 400/],
        ["no host", "GET / HTTP/1.1\r\n\r\n", /^HTTP\/1\.1 400/],
        ["bad version", "GET / HTTP/2.7\r\nHost: x\r\n\r\n", /^HTTP\/1\.1 (400|505)/],
        ["oversized head", `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(10_000)}\r\n\r\n`, /^HTTP\/1\.1 431/],
        [
          "too many headers",
          `GET / HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 60 }, (_, i) => `X-H${i}: v\r\n`).join("")}\r\n`,
          /^HTTP\/1\.1 431/,
        ],
        [
          "bad chunk size",
          "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
          /^HTTP\/1\.1 400/,
        ],
      ];
      for (const [name, data, want] of cases) {
        const out = await rawRequest(f.port(), data, 400);
        assertMatch(out, want, `${name}: got ${JSON.stringify(out.slice(0, 60))}`);
      }
      // Random bytes: an error or a close, never a crash.
      let seed = 7;
      const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff;
      for (let i = 0; i < 20; i++) {
        const junk = Uint8Array.from({ length: 64 + i * 13 }, rnd);
        const out = await rawRequest(f.port(), junk, 200);
        assert(out === "" || /^HTTP\/1\.1 4\d\d/.test(out), `junk ${i}: ${JSON.stringify(out.slice(0, 40))}`);
      }
      // None of that reached the upstream; the counters saw it.
      assertEquals(up.requests.map((r) => r.url.pathname), ["/before"]);
      assert((await stat(f, "http.test.downstream_cx_protocol_error") ?? 0) >= cases.length);
      // The bystander still works.
      await bystander.write(enc.encode("GET /after HTTP/1.1\r\nHost: x\r\n\r\n"));
      assertMatch(await readAll(bystander, 300), /^HTTP\/1\.1 200/);
    } finally {
      bystander.close();
      await f.stop();
      await up.close();
    }
  },
);

Deno.test("a slow partial head is cut off by request_headers_timeout while others are served", itOpts, async () => {
  const up = await startUpstream();
  const f = await startFerry(hcmBootstrap({
    routes: catchAllRoute("{ cluster: up }"),
    clusters: staticCluster("up", [up.port]),
    hcmExtra: "request_headers_timeout: 0.3s",
  }));
  try {
    const slow = await Deno.connect({ hostname: "127.0.0.1", port: f.port() });
    await slow.write(enc.encode("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: "));
    const ok = await rawRequest(f.port(), "GET /fast HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assertMatch(ok, /^HTTP\/1\.1 200/);
    const t0 = performance.now();
    const rest = await readAll(slow, 2000);
    slow.close();
    assert(performance.now() - t0 < 1900, "the slow connection was not closed by the headers timeout");
    assertEquals(rest, "");
    assertEquals(await stat(f, "http.test.downstream_rq_header_timeout"), 1);
  } finally {
    await f.stop();
    await up.close();
  }
});
