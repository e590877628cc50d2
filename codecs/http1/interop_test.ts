import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { HeaderMap } from "../../lib/api/headers.ts";
import { http1CodecFactory } from "./codec.ts";
import { type Ev, normalize, recorder } from "../../tests/helpers/http1.ts";

Deno.test({
  name: "Http1ClientCodec talks to Deno.serve over one keep-alive connection",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const ac = new AbortController();
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} }, async (req) => {
      const url = new URL(req.url);
      const body = req.body ? new Uint8Array(await req.arrayBuffer()) : new Uint8Array(0);
      if (url.pathname === "/stream") {
        const stream = new ReadableStream({
          start(c) {
            c.enqueue(new TextEncoder().encode("part1-"));
            c.enqueue(new TextEncoder().encode("part2"));
            c.close();
          },
        });
        return new Response(stream, { headers: { "x-kind": "stream" } });
      }
      return new Response(`${req.method} ${url.pathname} ${body.length}`, { headers: { "x-kind": "fixed" } });
    });
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    try {
      let writing = Promise.resolve();
      const codec = http1CodecFactory.createClient((b) => {
        const copy = b.slice();
        writing = writing.then(async () => {
          let off = 0;
          while (off < copy.length) off += await conn.write(copy.subarray(off));
        });
      });
      const buf = new Uint8Array(4096);
      const exchange = async (h: HeaderMap, body?: string): Promise<Ev[]> => {
        const events: Ev[] = [];
        let done = false;
        const enc = codec.newStream(recorder(events, () => done = true));
        enc.encodeHeaders(h, body === undefined);
        if (body !== undefined) enc.encodeData(new TextEncoder().encode(body), true);
        while (!done) {
          const n = await conn.read(buf);
          if (n === null) {
            codec.onEof();
            break;
          }
          codec.dispatch(buf.subarray(0, n));
        }
        return normalize(events);
      };
      const authority = `127.0.0.1:${server.addr.port}`;
      const get = await exchange(new HeaderMap([":method", "GET", ":path", "/a", ":authority", authority]));
      assertEquals(get[0]!.t, "headers");
      assertEquals((get[0] as { kv: string[] }).kv.slice(0, 2), [":status", "200"]);
      assertEquals(get[get.length - 1], { t: "data", d: "GET /a 0", end: true });
      assert(codec.reusable);

      const post = await exchange(
        new HeaderMap([":method", "POST", ":path", "/b", ":authority", authority]),
        "x".repeat(3000),
      );
      assertEquals(post[post.length - 1], { t: "data", d: "POST /b 3000", end: true });

      const stream = await exchange(new HeaderMap([":method", "GET", ":path", "/stream", ":authority", authority]));
      const kv = (stream[0] as { kv: string[] }).kv;
      assert(!kv.includes("transfer-encoding"), "transfer-encoding is removed from decoded responses");
      assertEquals(stream[stream.length - 1], { t: "data", d: "part1-part2", end: true });

      const head = await exchange(new HeaderMap([":method", "HEAD", ":path", "/a", ":authority", authority]));
      assertEquals(head.length, 1);
      assert(head[0]!.t === "headers" && head[0]!.end);
      assert(codec.reusable);
    } finally {
      conn.close();
      ac.abort();
      await server.finished;
    }
  },
});
