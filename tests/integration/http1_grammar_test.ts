/**
 * HTTP/1 grammar corners over real sockets (issue 16): empty lines before a request line are skipped, also
 * between keep-alive requests; a malformed chunk extension gets a 400 with `codec_error:BadChunk` in the access
 * log while another connection carries on.
 */
import { flushAccessLogs } from "../../lib/observe/access_log.ts";
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { catchAllRoute, hcmBootstrap, itOpts, readAll, startFerry, startUpstream, staticCluster } from "./_harness.ts";

const enc = new TextEncoder();

/** Ferry in front of an echoing upstream, logging code, path, details and flags as JSON lines to `dir`. */
async function setup(dir: string) {
  const up = await startUpstream((r) => new Response(`${r.method} ${r.url.pathname} ${r.body}`));
  const f = await startFerry(hcmBootstrap({
    routes: catchAllRoute("{ cluster: up }"),
    clusters: staticCluster("up", [up.port]),
    hcmExtra: `access_log:
- name: envoy.access_loggers.file
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
    path: ${dir}/access.log
    log_format:
      json_format: { code: "%RESPONSE_CODE%", path: "%REQ(:PATH)%", details: "%RESPONSE_CODE_DETAILS%", flags: "%RESPONSE_FLAGS%" }`,
  }));
  return { up, f };
}

async function connect(port: number): Promise<Deno.TcpConn> {
  return await Deno.connect({ hostname: "127.0.0.1", port });
}

/** How many complete content-length-framed responses `s` holds. */
function completeResponses(s: string): number {
  let n = 0;
  for (let at = 0;;) {
    const head = s.indexOf("\r\n\r\n", at);
    if (head < 0) return n;
    const len = Number(/\r\ncontent-length: *(\d+)/i.exec(s.slice(at, head))?.[1] ?? 0);
    if (s.length < head + 4 + len) return n;
    at = head + 4 + len;
    n++;
  }
}

/** Reads until `n` complete responses have arrived, or 5 s have passed. */
async function readResponses(c: Deno.Conn, n: number): Promise<string> {
  let out = "";
  const deadline = performance.now() + 5000;
  while (completeResponses(out) < n && performance.now() < deadline) out += await readAll(c, 50);
  return out;
}

Deno.test("http1: empty lines before request lines are skipped on a real connection", itOpts, async () => {
  const dir = await Deno.makeTempDir();
  const { up, f } = await setup(dir);
  const c = await connect(f.port());
  try {
    await c.write(enc.encode("\r\n\r\nGET /first HTTP/1.1\r\nHost: x\r\n\r\n"));
    const one = await readResponses(c, 1);
    assertMatch(one, /^HTTP\/1\.1 200 /);
    assert(one.endsWith("GET /first "), one);
    // An old client's CRLF after a POST body, then the next keep-alive request on the same connection, in one write.
    await c.write(enc.encode(
      "POST /post HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\r\n" +
        "\r\nGET /third HTTP/1.1\r\nHost: x\r\n\r\n",
    ));
    const two = await readResponses(c, 2);
    assertMatch(two, /^HTTP\/1\.1 200 [^]*POST \/post hello[^]*HTTP\/1\.1 200 [^]*GET \/third $/);
    // And the empty lines arriving on their own, a byte at a time, before a request.
    for (const b of enc.encode("\r\n\r\n")) await c.write(Uint8Array.of(b));
    await c.write(enc.encode("GET /fourth HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    const four = await readAll(c, 2000);
    assertMatch(four, /^HTTP\/1\.1 200 [^]*GET \/fourth $/);
    assertEquals(up.requests.map((r) => r.url.pathname), ["/first", "/post", "/third", "/fourth"]);
  } finally {
    c.close();
    await f.stop();
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test(
  "http1: a bare ';' chunk extension gets 400 codec_error:BadChunk while another connection carries on",
  itOpts,
  async () => {
    const dir = await Deno.makeTempDir();
    const { up, f } = await setup(dir);
    const bystander = await connect(f.port());
    const bad = await connect(f.port());
    try {
      await bystander.write(enc.encode("GET /before HTTP/1.1\r\nHost: x\r\n\r\n"));
      assertMatch(await readResponses(bystander, 1), /^HTTP\/1\.1 200 [^]*GET \/before $/);

      await bad.write(enc.encode(
        "POST /bad HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;\r\nhello\r\n0\r\n\r\n",
      ));
      const out = await readAll(bad, 2000);
      assertMatch(out, /^HTTP\/1\.1 400 /);
      assertMatch(out, /connection: close/i);
      assertMatch(out, /empty chunk extension name/);

      // The bystander's keep-alive connection carries on, with valid extensions on its upload.
      await bystander.write(enc.encode(
        "POST /after HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
          '3 ; a = b;c="d;\\"e"\r\nabc\r\n2;x\r\nde\r\n0;last\r\n\r\n',
      ));
      assertMatch(await readResponses(bystander, 1), /^HTTP\/1\.1 200 [^]*POST \/after abcde$/);

      await flushAccessLogs();
      const lines = (await Deno.readTextFile(`${dir}/access.log`)).trim().split("\n").map((l) => JSON.parse(l));
      const badLine = lines.find((l) => l.path === "/bad");
      assertEquals(badLine, { code: 400, path: "/bad", details: "codec_error:BadChunk", flags: "DPE" });
      assertEquals(lines.find((l) => l.path === "/after")?.code, 200);
      assert(!up.requests.some((r) => r.url.pathname === "/bad" && r.body === "hello"), "the bad body went upstream");
    } finally {
      bystander.close();
      bad.close();
      await f.stop();
      await up.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
