import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import type { StreamDecoder } from "../../lib/api/codec.ts";
import { HeaderMap } from "../../lib/api/headers.ts";
import { http1CodecFactory } from "./codec.ts";

interface Seen {
  method: string;
  path: string;
  authority: string;
  te: boolean;
  body: string;
  trailers: number;
}

/** A tiny HTTP/1 server on the codec: answers every request with a JSON echo (chunked on /chunked). */
function startServer() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const seen: Seen[] = [];
  let connections = 0;
  const serve = async (conn: Deno.Conn) => {
    connections++;
    let writing = Promise.resolve();
    let closing = false;
    const write = (b: Uint8Array) => {
      const copy = b.slice();
      writing = writing.then(async () => {
        let off = 0;
        while (off < copy.length) off += await conn.write(copy.subarray(off));
      });
    };
    const codec = http1CodecFactory.createServer(write, {
      newStream(enc): StreamDecoder {
        let headers: HeaderMap;
        const chunks: Uint8Array[] = [];
        let trailers = 0;
        const finish = () => {
          const body = new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => Array.from(c))));
          const s: Seen = {
            method: headers.get(":method")!,
            path: headers.get(":path")!,
            authority: headers.get(":authority") ?? "",
            te: headers.has("transfer-encoding"),
            body,
            trailers,
          };
          seen.push(s);
          const out = new TextEncoder().encode(JSON.stringify(s));
          if (s.path === "/chunked") {
            enc.encodeHeaders(new HeaderMap([":status", "200", "content-type", "application/json"]), false);
            enc.encodeData(out.subarray(0, 10), false);
            enc.encodeData(out.subarray(10), true);
          } else {
            enc.encodeHeaders(
              new HeaderMap([
                ":status",
                "200",
                "content-type",
                "application/json",
                "content-length",
                String(out.length),
              ]),
              false,
            );
            enc.encodeData(out, true);
          }
          if (!codec.keepAlive) closing = true;
        };
        return {
          decodeHeaders(h, end) {
            headers = h;
            if (end) finish();
          },
          decodeData(d, end) {
            chunks.push(d.slice());
            if (end) finish();
          },
          decodeTrailers(t) {
            trailers = t.size;
            finish();
          },
        };
      },
    });
    const buf = new Uint8Array(16 * 1024);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) {
          codec.onEof();
          break;
        }
        try {
          codec.dispatch(buf.subarray(0, n));
        } catch (e) {
          codec.sendProtocolError(e as import("../../lib/api/errors.ts").CodecError);
          closing = true;
        }
        if (closing) break;
      }
      await writing;
    } finally {
      conn.close();
    }
  };
  const loop = (async () => {
    for await (const conn of listener) serve(conn).catch(() => {});
  })();
  const port = (listener.addr as Deno.NetAddr).port;
  return {
    port,
    seen,
    get connections() {
      return connections;
    },
    async close() {
      listener.close();
      await loop.catch(() => {});
    },
  };
}

async function curl(args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  const out = await new Deno.Command("/usr/bin/curl", { args: ["-sS", "--http1.1", ...args] }).output();
  const td = new TextDecoder();
  return { stdout: td.decode(out.stdout), stderr: td.decode(out.stderr), code: out.code };
}

Deno.test({
  name: "Http1ServerCodec serves curl: keep-alive reuse, chunked upload and a chunked response",
  ignore: !(await Deno.stat("/usr/bin/curl").then(() => true, () => false)),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const srv = startServer();
    try {
      const base = `http://127.0.0.1:${srv.port}`;
      // Two requests in one curl run: the second must reuse the connection.
      const a = await curl(["-v", `${base}/one`, `${base}/chunked`]);
      assertEquals(a.code, 0, a.stderr);
      assert(/Re-using existing connection|Reusing existing/i.test(a.stderr), a.stderr);
      assertEquals(srv.connections, 1);
      const [one, two] = a.stdout.split("}{").map((s, i) => JSON.parse(i === 0 ? s + "}" : "{" + s));
      assertEquals(one.path, "/one");
      assertEquals(one.authority, `127.0.0.1:${srv.port}`);
      assertEquals(two.path, "/chunked");

      // Chunked upload.
      const payload = "0123456789".repeat(2000);
      const file = await Deno.makeTempFile();
      await Deno.writeTextFile(file, payload);
      const b = await curl([
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        `@${file}`,
        `${base}/upload`,
      ]);
      await Deno.remove(file);
      assertEquals(b.code, 0, b.stderr);
      const up = JSON.parse(b.stdout) as Seen;
      assertEquals(up.method, "POST");
      assertEquals(up.te, false);
      assertEquals(up.body.length, payload.length);
      assertEquals(up.body, payload);
      assertEquals(srv.connections, 2);

      // HTTP/1.0 without keep-alive gets a closing response.
      const c = await curl(["-0", "-i", `${base}/old`]);
      assertEquals(c.code, 0, c.stderr);
      assert(/^HTTP\/1\.1 200 OK\r\n/.test(c.stdout), c.stdout);
      assert(/connection: close/i.test(c.stdout), c.stdout);

      // A malformed request gets a 400 from sendProtocolError.
      const d = await curl(["-i", "-H", "Bad Header: x", `${base}/bad`]);
      assert(/^HTTP\/1\.1 400 Bad Request/.test(d.stdout), d.stdout);
    } finally {
      await srv.close();
    }
  },
});
