/**
 * Real peers over real sockets: curl, nghttp and Python h2 against the server codec; node:http2 and nghttpd
 * against the client codec.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import type { StreamEncoder } from "../../lib/api/codec.ts";
import { HeaderMap } from "../../lib/api/headers.ts";
import { Http2ServerCodec } from "./server.ts";
import { Http2ClientCodec } from "./client.ts";
import { CountingStats, Recorder } from "../../tests/helpers/http2.ts";

const enc = new TextEncoder();

/** Answers each request itself: the body echoed for POST, else "hello <path>"; /big sends 1 MiB. */
function answer(encoder: StreamEncoder, rec: Recorder): void {
  rec.onEnd = () => {
    const path = rec.headers?.get(":path") ?? "";
    if (path === "/hang") return; // never answered (as if the upstream were slow)
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
  // Typed explicitly: checked together with a test that loads @types/node (grpc-js), the "stream" event's
  // parameter widens to Http2Stream.
  server.on(
    "stream",
    (stream: import("node:http2").ServerHttp2Stream, headers: import("node:http2").IncomingHttpHeaders) => {
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
    },
  );
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

const PY_HOSTILE = `
import socket, sys, h2.connection, h2.config, h2.events
port = int(sys.argv[1]); mode = sys.argv[2]
s = socket.create_connection(("127.0.0.1", port))
c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
c.initiate_connection(); s.sendall(c.data_to_send())
hdrs = [(":method", "GET"), (":scheme", "http"), (":authority", "x"), (":path", "/ok")]
if mode == "ok":
    c.send_headers(1, hdrs, end_stream=True)
elif mode == "rapid-reset":
    hdrs[3] = (":path", "/hang")
    for i in range(300):
        sid = c.get_next_available_stream_id()
        c.send_headers(sid, hdrs, end_stream=True)
        c.reset_stream(sid)
elif mode == "ping-flood":
    for i in range(5000):
        c.ping(b"12345678")
elif mode == "settings-bad":
    s.sendall(b"\\x00\\x00\\x06\\x04\\x00\\x00\\x00\\x00\\x00\\x00\\x04\\x80\\x00\\x00\\x00")
s.sendall(c.data_to_send())
out = []
s.settimeout(3)
buf = b""
try:
    while True:
        d = s.recv(65536)
        if not d: break
        if mode != "ok":
            # Hostile modes: scan raw frames for GOAWAY (h2 would refuse frames for streams it reset).
            buf += d
            while len(buf) >= 9:
                n = int.from_bytes(buf[0:3], "big")
                if len(buf) < 9 + n: break
                if buf[3] == 7: out.append("goaway:%d" % int.from_bytes(buf[13:17], "big"))
                buf = buf[9 + n:]
            continue
        for e in c.receive_data(d):
            if isinstance(e, h2.events.ResponseReceived):
                out.append("status:" + dict(e.headers)[":status"])
            elif isinstance(e, h2.events.StreamEnded):
                out.append("ended"); raise StopIteration
        s.sendall(c.data_to_send())
except (StopIteration, socket.timeout, ConnectionError):
    pass
print(" ".join(out))
`;

async function pyH2(port: number, mode: string): Promise<string> {
  const r = await run("/usr/bin/python3", ["-c", PY_HOSTILE, String(port), mode]);
  return (r.out + r.err).trim();
}

Deno.test({
  name: "Http2ServerCodec against Python h2: a request, rapid reset, bad SETTINGS",
  ignore: !has("/usr/bin/python3"),
  async fn() {
    const stats = new CountingStats();
    const srv = startServer({ stats });
    try {
      assertEquals(await pyH2(srv.port, "ok"), "status:200 ended");
      assertEquals(await pyH2(srv.port, "rapid-reset"), `goaway:${0xb}`);
      assertEquals(stats.get("premature_reset"), 1);
      assertEquals(await pyH2(srv.port, "settings-bad"), `goaway:${0x3}`);
      // A PING flood is answered (the socket keeps up here); the connection stays usable.
      assert(!(await pyH2(srv.port, "ping-flood")).includes("goaway"));
    } finally {
      await srv.close();
    }
  },
});

Deno.test({
  name: "Http2ServerCodec under h2load (-c4 -m10)",
  ignore: !has("h2load"),
  async fn() {
    const srv = startServer();
    try {
      const r = await run("h2load", ["-c4", "-m10", "-n2000", `http://127.0.0.1:${srv.port}/x`]);
      assert(r.out.includes("2000 succeeded"), r.out);
      assertEquals(srv.errors, []);
    } finally {
      await srv.close();
    }
  },
});
