/**
 * HTTP/2 through Ferry with independent peers: curl (`--http2-prior-knowledge`), nghttp, h2load, python3-h2 and
 * node's `node:http2` (the real node binary, as client and as an h2c upstream sending trailers), plus HTTP/1.1
 * on the same `codec_type: AUTO` listener. Covers HTTP/2 downstream to an HTTP/1.1 upstream and HTTP/1.1 (and
 * HTTP/2) downstream to an HTTP/2 upstream (`explicit_http_config.http2_protocol_options`).
 *
 * Needs curl with HTTP/2, nghttp and h2load (nghttp2-client), node, and /usr/bin/python3 with python3-h2.
 */
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { curl, hcmBootstrap, itOpts, startFerry, startUpstream, staticCluster, type TestFerry } from "./_harness.ts";

const H2_DIR = new URL("./h2/", import.meta.url).pathname;
const dec = new TextDecoder();

/** Runs a command to its exit (bounded by `timeoutMs`); exit code, stdout and stderr. */
async function run(
  cmd: string,
  args: string[],
  timeoutMs = 30_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** An h2c upstream in node (`node:http2`): echoes the path and body and ends every response with trailers. */
const NODE_H2_SERVER = `
const http2 = require("node:http2");
const s = http2.createServer();
s.on("stream", (st, h) => {
  const chunks = [];
  st.on("data", (c) => chunks.push(c));
  st.on("end", () => {
    const body = Buffer.concat(chunks);
    st.respond({ ":status": 200, "content-type": "text/plain", "x-upstream": "node-h2" }, { waitForTrailers: true });
    st.on("wantTrailers", () => st.sendTrailers({ "x-trailer": "done", "x-body-length": String(body.length) }));
    st.end("h2 upstream " + h[":path"] + " " + body.length);
  });
});
s.listen(0, "127.0.0.1", () => console.log(s.address().port));
`;

/** A node:http2 client: GET and a 256 KiB POST on one connection, printed as one JSON line. */
const NODE_H2_CLIENT = `
const http2 = require("node:http2");
const c = http2.connect(process.argv[1]);
c.on("error", (e) => { console.log(JSON.stringify({ error: String(e) })); process.exit(1); });
function req(headers, body) {
  return new Promise((resolve, reject) => {
    const r = c.request(headers);
    let status = 0, data = "", trailers = {};
    r.on("response", (h) => { status = h[":status"]; });
    r.on("trailers", (t) => { trailers = t; });
    r.setEncoding("utf8");
    r.on("data", (d) => { data += d; });
    r.on("end", () => resolve({ status, body: data, trailers }));
    r.on("error", reject);
    r.end(body);
  });
}
(async () => {
  const get = await req({ ":path": "/node-get" });
  const post = await req({ ":path": "/node-post", ":method": "POST" }, "n".repeat(256 * 1024));
  const h2up = await req({ ":path": "/h2up/node" });
  console.log(JSON.stringify({ get, post: { status: post.status, length: post.body.length }, h2up }));
  c.close();
})().catch((e) => { console.log(JSON.stringify({ error: String(e) })); process.exit(1); });
`;

/** Starts the node h2c upstream; resolves with its port and a stopper. */
async function startNodeH2Upstream(): Promise<{ port: number; stop(): Promise<void> }> {
  const child = new Deno.Command("node", { args: ["-e", NODE_H2_SERVER], stdout: "piped", stderr: "null" }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const deadline = Date.now() + 10_000;
  while (!text.includes("\n") && Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  const port = Number(text.trim());
  if (!port) throw new Error(`node h2c upstream did not start: ${text}`);
  return {
    port,
    async stop() {
      child.kill("SIGTERM");
      await reader.cancel().catch(() => {});
      await child.status;
    },
  };
}

/** Deterministic 1 MiB of printable bytes (so the upstream's text view of it is exact). */
function mebibyte(): string {
  let s = "";
  let x = 12345;
  const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  const parts: string[] = [];
  for (let i = 0; i < 1 << 20; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    s += alphabet[x % alphabet.length];
    if (s.length === 4096) {
      parts.push(s);
      s = "";
    }
  }
  return parts.join("") + s;
}

async function withProxy(fn: (f: TestFerry, h2upPort: number) => Promise<void>): Promise<void> {
  const up = await startUpstream((req) =>
    new Response(req.method === "POST" ? req.body : `ok ${req.url.pathname}`, {
      headers: { "x-seen-protocol": "HTTP/1.1" },
    })
  );
  const h2up = await startNodeH2Upstream();
  const routes = `- name: all
  domains: ["*"]
  routes:
  - match: { prefix: "/h2up" }
    route: { cluster: h2up }
  - match: { prefix: "/" }
    route: { cluster: up }`;
  const h2cluster = staticCluster(
    "h2up",
    [h2up.port],
    `typed_extension_protocol_options:
  envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
    "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
    explicit_http_config:
      http2_protocol_options: {}`,
  );
  const f = await startFerry(hcmBootstrap({
    routes,
    clusters: staticCluster("up", [up.port]) + "\n" + h2cluster,
    hcmExtra: "codec_type: AUTO",
  }));
  try {
    await fn(f, h2up.port);
  } finally {
    await f.stop();
    await h2up.stop();
    await up.close();
  }
}

Deno.test("http2 peers: curl --http2-prior-knowledge GET and a 1 MiB POST round trip", itOpts, async () => {
  await withProxy(async (f) => {
    const get = await curl(f.url("/hello"), ["--http2-prior-knowledge"]);
    assertEquals([get.code, get.status, get.body], [0, 200, "ok /hello"], get.stderr);
    const v = await run("curl", [
      "-sS",
      "--http2-prior-knowledge",
      "-o",
      "/dev/null",
      "-w",
      "%{http_version}",
      f.url("/"),
    ]);
    assertEquals(v.stdout, "2", v.stderr);

    const body = mebibyte();
    const file = await Deno.makeTempFile();
    try {
      await Deno.writeTextFile(file, body);
      const post = await run("curl", [
        "-sS",
        "--http2-prior-knowledge",
        "--max-time",
        "20",
        "--data-binary",
        `@${file}`,
        "-H",
        "content-type: application/octet-stream",
        f.url("/echo"),
      ]);
      assertEquals(post.code, 0, post.stderr);
      assertEquals(post.stdout.length, body.length);
      assert(post.stdout === body, "the echoed 1 MiB body differs");
    } finally {
      await Deno.remove(file);
    }
  });
});

Deno.test("http2 peers: nghttp -m 20 on one connection gets 20 200s", itOpts, async () => {
  await withProxy(async (f) => {
    const r = await run("nghttp", ["-n", "-v", "-m", "20", f.url("/nghttp")]);
    assertEquals(r.code, 0, r.stderr + r.stdout.slice(-2000));
    const statuses = r.stdout.match(/:status: \d+/g) ?? [];
    assertEquals(statuses.length, 20, r.stdout.slice(-2000));
    assert(statuses.every((s) => s === ":status: 200"), statuses.join(","));
    assert(!/recv (RST_STREAM|GOAWAY) frame/.test(r.stdout), "Ferry reset a stream or the connection");
  });
});

Deno.test("http2 peers: h2load -n 2000 -c 4 -m 10 gets 2000 2xx", itOpts, async () => {
  await withProxy(async (f) => {
    const r = await run("h2load", ["-n", "2000", "-c", "4", "-m", "10", f.url("/load")], 60_000);
    assertEquals(r.code, 0, r.stderr);
    assertMatch(r.stdout, /requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored/);
    assertMatch(r.stdout, /status codes: 2000 2xx, 0 3xx, 0 4xx, 0 5xx/);
  });
});

Deno.test("http2 peers: HTTP/1.1 on the same AUTO listener, to both upstreams", itOpts, async () => {
  await withProxy(async (f) => {
    const v = await run("curl", ["-sS", "--http1.1", "-w", "\\n%{http_version}", f.url("/h1")]);
    assertEquals(v.stdout, "ok /h1\n1.1", v.stderr);
    // HTTP/1.1 downstream, HTTP/2 upstream (body only: curl -D would also print the chunked trailers).
    const h = await run("curl", ["-sS", "--http1.1", "-w", "\\n%{http_code}", f.url("/h2up/from-h1")]);
    assertEquals(h.stdout, "h2 upstream /h2up/from-h1 0\n200", h.stderr);
    const p = await run("curl", ["-sS", "--http1.1", "--data-binary", "x".repeat(100_000), f.url("/h2up/post")]);
    assertEquals(p.stdout, "h2 upstream /h2up/post 100000", p.stderr);
  });
});

Deno.test(
  "http2 peers: HTTP/2 downstream to the HTTP/2 upstream: trailers reach python3-h2 and nghttp",
  itOpts,
  async () => {
    await withProxy(async (f) => {
      const child = new Deno.Command("/usr/bin/python3", {
        args: [`${H2_DIR}client.py`, String(f.port())],
        env: { PYTHONDONTWRITEBYTECODE: "1" },
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(20_000),
      }).spawn();
      const w = child.stdin.getWriter();
      await w.write(new TextEncoder().encode(
        JSON.stringify({ method: "GET", path: "/h2up/trailers" }) + "\n" +
          JSON.stringify({ method: "POST", path: "/h2up/trailers-post", body: "p".repeat(70_000) }) + "\n",
      ));
      await w.close();
      const out = await child.output();
      const lines = dec.decode(out.stdout).trim().split("\n").map((l) => JSON.parse(l));
      assertEquals(lines.length, 2, dec.decode(out.stderr));
      assertEquals([lines[0].status, lines[0].body], [200, "h2 upstream /h2up/trailers 0"], JSON.stringify(lines[0]));
      assertEquals(lines[0].trailers, { "x-trailer": "done", "x-body-length": "0" }, JSON.stringify(lines[0]));
      assertEquals([lines[1].status, lines[1].body], [200, "h2 upstream /h2up/trailers-post 70000"]);
      assertEquals(lines[1].trailers["x-body-length"], "70000", JSON.stringify(lines[1]));

      const n = await run("nghttp", ["-v", f.url("/h2up/nghttp")]);
      assertEquals(n.code, 0, n.stderr);
      // The trailer HEADERS frame (after the DATA) carries the upstream's trailers.
      assertMatch(n.stdout, /recv HEADERS frame[^\n]*\n(?:[^\n]*\n)*?[^\n]*x-trailer: done/);
      assert(n.stdout.indexOf("x-trailer: done") > n.stdout.indexOf("recv DATA frame"), "trailers before the body");
    });
  },
);

Deno.test(
  "http2 peers: HTTP/2 downstream to the HTTP/1.1 upstream keeps protocol-specific headers straight",
  itOpts,
  async () => {
    await withProxy(async (f) => {
      const r = await run("nghttp", ["-v", "-H", "te: trailers", f.url("/h1up")]);
      assertEquals(r.code, 0, r.stderr);
      assertMatch(r.stdout, /:status: 200/);
      assertMatch(r.stdout, /x-seen-protocol: HTTP\/1\.1/);
      // No HTTP/1 connection-specific field may come back over HTTP/2 (RFC 9113 §8.2.2).
      assert(!/\b(connection|keep-alive|transfer-encoding): /i.test(r.stdout.split("recv HEADERS")[1] ?? ""), r.stdout);
    });
  },
);

Deno.test(
  "http2 peers: a node:http2 client through Ferry (GET, 256 KiB POST, HTTP/2 upstream with trailers)",
  itOpts,
  async () => {
    await withProxy(async (f) => {
      const r = await run("node", ["-e", NODE_H2_CLIENT, `http://127.0.0.1:${f.port()}`]);
      assertEquals(r.code, 0, r.stdout + r.stderr);
      const j = JSON.parse(r.stdout.trim());
      assertEquals([j.get.status, j.get.body], [200, "ok /node-get"]);
      assertEquals([j.post.status, j.post.length], [200, 256 * 1024]);
      assertEquals([j.h2up.status, j.h2up.body], [200, "h2 upstream /h2up/node 0"]);
      assertEquals(j.h2up.trailers["x-trailer"], "done", JSON.stringify(j.h2up));
    });
  },
);
