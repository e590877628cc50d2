/**
 * Real peers over real sockets: curl, nghttp and Python h2 against the server codec; node:http2 and nghttpd
 * against the client codec.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import type { StreamEncoder } from "../../lib/api/codec.ts";
import { HeaderMap } from "../../lib/api/headers.ts";
import { Http2ServerCodec } from "./server.ts";
import { Http2ClientCodec } from "./client.ts";
import { CountingStats, Recorder } from "./_testutil.ts";

const enc = new TextEncoder();

/** Answers each request itself: the body echoed for POST, else "hello <path>"; /big sends 1 MiB. */
function answer(encoder: StreamEncoder, rec: Recorder): void {
  rec.onEnd = () => {
    const path = rec.headers?.get(":path") ?? "";
    if (path === "/big") {
      encoder.encodeHeaders(new HeaderMap([":status", "200", "content-length", String(1 << 20)]), false);
      encoder.encodeData(new Uint8Array(1 << 20).fill(97), true);
      return;
    }
    if (path === "/trailers") {
      encoder.encodeHeaders(new HeaderMap([":status", "200"]), false);
      encoder.encodeData(enc.encode("t"), false);
      encoder.encodeTrailers(new HeaderMap(["x-trailer", "yes"]));
      return;
    }
    const body = rec.headers?.get(":method") === "POST" ? rec.body : `hello ${path}`;
    encoder.encodeHeaders(
      new HeaderMap([":status", "200", "content-type", "text/plain", "connection", "keep-alive"]),
      false,
    );
    encoder.encodeData(enc.encode(body), true);
  };
}

/** A test server: Deno.listen on port 0, one Http2ServerCodec per connection. */
export function startServer(
  opts: { stats?: CountingStats } = {},
): { port: number; close: () => Promise<void>; errors: unknown[] } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const errors: unknown[] = [];
  const conns = new Set<Deno.Conn>();
  const done = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      void serve(conn).finally(() => conns.delete(conn));
    }
  })();
  async function serve(conn: Deno.Conn): Promise<void> {
    const pending: Uint8Array[] = [];
    let writing: Promise<void> | undefined;
    let closed = false;
    const flush = async () => {
      while (pending.length > 0) {
        const b = pending.shift()!;
        try {
          for (let o = 0; o < b.length;) o += await conn.write(b.subarray(o));
        } catch {
          closed = true;
          return;
        }
      }
    };
    const write = (b: Uint8Array) => {
      pending.push(b.slice());
      if (writing === undefined) writing = flush().finally(() => writing = undefined);
    };
    const codec = new Http2ServerCodec(write, {
      newStream(encoder) {
        const rec = new Recorder();
        answer(encoder, rec);
        return rec;
      },
    }, opts.stats ? { http2Stats: opts.stats } : {});
    const buf = new Uint8Array(65536);
    try {
      while (!closed) {
        const n = await conn.read(buf);
        if (n === null) {
          codec.onEof();
          break;
        }
        try {
          codec.dispatch(buf.subarray(0, n));
        } catch (e) {
          errors.push(e);
          codec.sendProtocolError(e as Error & { code: "Protocol"; offset: number; status: number });
          break;
        }
      }
    } catch { /* reset */ }
    while (writing !== undefined) await writing;
    codec.onConnectionClose();
    try {
      conn.close();
    } catch { /* closed */ }
  }
  return {
    port: (listener.addr as Deno.NetAddr).port,
    errors,
    close: async () => {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await done;
    },
  };
}

async function run(cmd: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  return { code: r.code, out: new TextDecoder().decode(r.stdout), err: new TextDecoder().decode(r.stderr) };
}

function has(cmd: string): boolean {
  try {
    new Deno.Command("which", { args: [cmd], stdout: "null", stderr: "null" }).outputSync().success || (() => {
      throw 0;
    })();
    return true;
  } catch {
    return false;
  }
}

Deno.test({
  name: "Http2ServerCodec serves curl --http2-prior-knowledge (GET, POST, trailers, 1 MiB)",
  ignore: !has("curl"),
  async fn() {
    const srv = startServer();
    try {
      const base = `http://127.0.0.1:${srv.port}`;
      // One URL per run: curl 7.88 fails reusing a prior-knowledge connection (node:http2 servers too).
      const r = await run("curl", ["-sS", "--http2-prior-knowledge", `${base}/x`]);
      assertEquals(r.code, 0, r.err);
      assertEquals(r.out, "hello /x");
      const post = await run("curl", ["-sS", "--http2-prior-knowledge", "-d", "payload=1", `${base}/echo`]);
      assertEquals(post.out, "payload=1");
      const big = await run("curl", [
        "-sS",
        "--http2-prior-knowledge",
        "-o",
        "/dev/null",
        "-w",
        "%{size_download}",
        `${base}/big`,
      ]);
      assertEquals(big.out, String(1 << 20));
      const t = await run("curl", ["-sS", "--http2-prior-knowledge", "-i", `${base}/trailers`]);
      assert(t.out.startsWith("HTTP/2 200"), t.out);
      assert(t.out.includes("x-trailer: yes"), t.out);
      assertEquals(srv.errors, []);
    } finally {
      await srv.close();
    }
  },
});

Deno.test({
  name: "Http2ServerCodec serves nghttp with concurrent streams",
  ignore: !has("nghttp"),
  async fn() {
    const srv = startServer();
    try {
      const base = `http://127.0.0.1:${srv.port}`;
      const r = await run("nghttp", ["-nv", `${base}/a`, `${base}/b`, `${base}/big`]);
      assertEquals(r.code, 0, r.out + r.err);
      assert(r.out.includes("recv SETTINGS frame"), r.out);
      assert((r.out.match(/:status: 200/g) ?? []).length === 3, r.out);
      const d = await run("nghttp", ["-d", "/dev/stdin", `${base}/echo`]);
      assertEquals(d.code, 0, d.err);
      assertEquals(srv.errors, []);
    } finally {
      await srv.close();
    }
  },
});

/** Connects a client codec to host:port and runs `fn` with a request helper. */
async function withClient(
  port: number,
  fn: (req: (kv: string[], body?: Uint8Array) => Promise<Recorder>, codec: Http2ClientCodec) => Promise<void>,
): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const stats = new CountingStats();
  const waiters = new Set<{ rec: Recorder; resolve: () => void }>();
  let chain = Promise.resolve();
  const codec = new Http2ClientCodec((b) => {
    const copy = b.slice();
    chain = chain.then(async () => {
      for (let o = 0; o < copy.length;) o += await conn.write(copy.subarray(o));
    }).catch(() => {});
  }, { http2Stats: stats });
  const check = () => {
    for (const w of waiters) {
      if (w.rec.ended || w.rec.reset) {
        waiters.delete(w);
        w.resolve();
      }
    }
  };
  const reader = (async () => {
    const buf = new Uint8Array(65536);
    while (true) {
      let n: number | null;
      try {
        n = await conn.read(buf);
      } catch {
        break;
      }
      if (n === null) {
        codec.onEof();
        check();
        break;
      }
      codec.dispatch(buf.subarray(0, n));
      check();
    }
  })();
  const req = (kv: string[], body?: Uint8Array) => {
    const rec = new Recorder();
    const e = codec.newStream(rec);
    e.encodeHeaders(new HeaderMap(kv), body === undefined);
    if (body !== undefined) e.encodeData(body, true);
    return new Promise<Recorder>((resolve) => {
      waiters.add({ rec, resolve: () => resolve(rec) });
      check();
    });
  };
  try {
    await fn(req, codec);
  } finally {
    codec.onConnectionClose();
    await chain;
    conn.close();
    await reader;
  }
}

Deno.test("Http2ClientCodec talks to a node:http2 server (h2c)", async () => {
  const http2 = await import("node:http2");
  const server = http2.createServer();
  server.on("stream", (stream, headers) => {
    const chunks: Uint8Array[] = [];
    stream.on("data", (c: Uint8Array) => chunks.push(c));
    stream.on("end", () => {
      const path = headers[":path"];
      if (path === "/big") {
        stream.respond({ ":status": 200 });
        stream.end(new Uint8Array(300_000).fill(98));
        return;
      }
      stream.respond({ ":status": 201, "x-path": String(path), "x-len": String(Buffer.concat(chunks).length) }, {
        waitForTrailers: true,
      });
      stream.on("wantTrailers", () => stream.sendTrailers({ "x-done": "1" }));
      stream.end("ok");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  try {
    await withClient(port, async (req) => {
      const [a, b, c] = await Promise.all([
        req([":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/a"]),
        req([":method", "POST", ":scheme", "http", ":authority", "x", ":path", "/b"], new Uint8Array(100_000)),
        req([":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/big"]),
      ]);
      assertEquals(a.headers?.get(":status"), "201");
      assertEquals(a.headers?.get("x-path"), "/a");
      assertEquals(a.body, "ok");
      assertEquals(a.trailers?.get("x-done"), "1");
      assertEquals(b.headers?.get("x-len"), "100000");
      assertEquals(c.bodyLength, 300_000);
    });
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
});
