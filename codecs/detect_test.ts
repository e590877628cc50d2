/**
 * The `auto` codec over the real HTTP/1.1 and HTTP/2 codecs: the choice by preface (whole, split at every byte,
 * a near miss) and by ALPN.
 */
import { assertEquals } from "../tests/assert.ts";
import type { ServerConnectionCodec, StreamDecoder, StreamEncoder } from "../lib/api/codec.ts";
import { HeaderMap } from "../lib/api/headers.ts";
import { boltCodecFactory } from "./bolt/mod.ts";
import {
  createDetectCodecFactory,
  createDetectingCodecFactory,
  detectBolt,
  detectDubbo,
  detectHttp2Preface,
  DetectingServerCodec,
} from "./detect.ts";
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

Deno.test("createDetectingCodecFactory: Bolt and Dubbo by their magic, HTTP/2 by the preface, HTTP/1.1 otherwise", () => {
  const fakeDubbo = { ...http1CodecFactory, name: "dubbo-fake" };
  const f = createDetectingCodecFactory("rpc-auto", [
    { codec: boltCodecFactory, detect: detectBolt },
    { codec: fakeDubbo, detect: detectDubbo },
    { codec: http2CodecFactory, detect: detectHttp2Preface },
  ], http1CodecFactory);
  const cb = { newStream: () => ({ decodeHeaders() {}, decodeData() {}, decodeTrailers() {} }) };
  const bolt = f.createServer(() => {}, cb);
  // A Bolt v1 request's first bytes: proto 1, type request; one byte is not enough to decide.
  bolt.dispatch(new Uint8Array([1]));
  assertEquals(bolt.protocol, "");
  bolt.dispatch(new Uint8Array([1, 0, 1]));
  assertEquals(bolt.protocol, "Bolt");
  const h1 = f.createServer(() => {}, cb);
  h1.dispatch(enc.encode("GET / HTTP/1.1\r\nhost: a\r\n\r\n"));
  assertEquals(h1.protocol, "HTTP/1.1");
  const h2 = f.createServer(() => {}, cb);
  h2.dispatch(h2ClientBytes());
  assertEquals(h2.protocol, "HTTP/2");
  assertEquals([detectDubbo(new Uint8Array([0xda, 0xbb, 0xc2])), detectDubbo(new Uint8Array([0xda]))], [
    true,
    undefined,
  ]);
  assertEquals(detectBolt(enc.encode("GET")), false);
  // Without a fallback, bytes no candidate claims are a protocol error.
  const strict = createDetectingCodecFactory("rpc-only", [{ codec: boltCodecFactory, detect: detectBolt }]);
  let threw = false;
  try {
    strict.createServer(() => {}, cb).dispatch(enc.encode("GET /"));
  } catch {
    threw = true;
  }
  assertEquals(threw, true);
  // Local replies follow the codec that decoded the request.
  const boltHeaders: HeaderMap[] = [];
  const tagged = f.createServer(() => {}, {
    newStream: () => ({ decodeHeaders: (h: HeaderMap) => boltHeaders.push(h), decodeData() {}, decodeTrailers() {} }),
  });
  const frames = JSON.parse(Deno.readTextFileSync(new URL("./bolt/testdata/frames.json", import.meta.url)));
  const hex = frames.v1_request as string;
  tagged.dispatch(new Uint8Array(hex.match(/../g)!.map((x: string) => parseInt(x, 16))));
  const reply = f.localReply!({ status: 404, body: "" }, boltHeaders[0]);
  assertEquals(reply.headers.get("x-bolt-status"), "6");
  const httpReply = f.localReply!({ status: 404, body: "" }, headers([":method", "GET"]));
  assertEquals(httpReply.headers.get("x-bolt-status"), undefined);
  assertEquals(httpReply.headers.get(":status"), "404");
});
