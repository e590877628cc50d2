/**
 * The `auto` codec over the real HTTP/1.1 and HTTP/2 codecs: the choice by preface (whole, split at every byte,
 * a near miss) and by ALPN.
 */
import { assertEquals } from "../tests/assert.ts";
import type { ServerConnectionCodec, StreamDecoder, StreamEncoder } from "../lib/api/codec.ts";
import { HeaderMap } from "../lib/api/headers.ts";
import { createDetectCodecFactory, DetectingServerCodec } from "./detect.ts";
import { http1CodecFactory } from "./http1/mod.ts";
import { http2CodecFactory } from "./http2/mod.ts";

const auto = createDetectCodecFactory(http1CodecFactory, http2CodecFactory);
const enc = new TextEncoder();

/** A server codec from `auto` whose requests are recorded as `METHOD path`. */
function serve(alpn?: string): { codec: ServerConnectionCodec; seen: string[]; out: Uint8Array[] } {
  const seen: string[] = [];
  const out: Uint8Array[] = [];
  const callbacks = {
    newStream(_e: StreamEncoder): StreamDecoder {
      return {
        decodeHeaders(h: HeaderMap) {
          seen.push(`${h.get(":method")} ${h.get(":path")}`);
        },
        decodeData() {},
        decodeTrailers() {},
      };
    },
    onDispatchError() {},
  };
  const codec = auto.createServer((b) => out.push(b.slice()), callbacks, alpn ? { alpn } : {});
  return { codec, seen, out };
}

/** A client connection's first flight (preface, SETTINGS, one GET) from the real HTTP/2 client codec. */
function h2ClientBytes(): Uint8Array {
  const chunks: Uint8Array[] = [];
  const client = http2CodecFactory.createClient((b) => chunks.push(b.slice()));
  client.newStream({ decodeHeaders() {}, decodeData() {}, decodeTrailers() {} }).encodeHeaders(
    headers([":method", "GET", ":path", "/h2", ":authority", "a", ":scheme", "http"]),
    true,
  );
  const n = chunks.reduce((a, c) => a + c.length, 0);
  const all = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) {
    all.set(c, o);
    o += c.length;
  }
  return all;
}

function headers(kv: string[]): HeaderMap {
  return new HeaderMap(kv);
}

Deno.test("DetectingServerCodec picks HTTP/2 on the preface, whole or split at every byte", () => {
  const bytes = h2ClientBytes();
  for (let cut = 0; cut <= 30; cut++) {
    const { codec, seen } = serve();
    assertEquals(codec.protocol, "");
    for (let i = 0; i < bytes.length; i += cut === 0 ? bytes.length : cut) {
      codec.dispatch(bytes.subarray(i, Math.min(bytes.length, i + (cut === 0 ? bytes.length : cut))));
    }
    assertEquals(codec.protocol, "HTTP/2", `cut ${cut}`);
    assertEquals(codec.multiplexed, true);
    assertEquals(seen, ["GET /h2"], `cut ${cut}`);
  }
});

Deno.test("DetectingServerCodec picks HTTP/1.1 for anything else, including a near miss of the preface", () => {
  for (const req of ["GET /a HTTP/1.1\r\nhost: x\r\n\r\n", "PRI /b HTTP/1.1\r\nhost: x\r\n\r\n"]) {
    const { codec, seen } = serve();
    const b = enc.encode(req);
    for (let i = 0; i < b.length; i++) codec.dispatch(b.subarray(i, i + 1));
    assertEquals(codec.protocol, "HTTP/1.1");
    assertEquals(codec.multiplexed, false);
    assertEquals(seen, [req.startsWith("GET") ? "GET /a" : "PRI /b"]);
  }
});

Deno.test("auto codec follows ALPN without looking at the bytes; undecided it is idle and keeps the connection", () => {
  assertEquals(serve("h2").codec.protocol, "HTTP/2");
  assertEquals(serve("http/1.1").codec.protocol, "HTTP/1.1");
  const { codec, out } = serve();
  assertEquals(codec instanceof DetectingServerCodec, true);
  assertEquals([codec.idle, codec.keepAlive], [true, true]);
  codec.shutdownNotice();
  assertEquals(codec.keepAlive, false);
  assertEquals(out.length, 0);
  // A shutdown notice given before the choice reaches the chosen codec: HTTP/2 answers with GOAWAY.
  codec.dispatch(h2ClientBytes());
  assertEquals(codec.keepAlive, false);
});
