/**
 * Micro-benchmark of the HTTP/1 codec: decode a typical ~400-byte keep-alive GET and encode a ~200-byte response
 * (head + body) on the server side, then the mirror image on the client side, in time-bounded loops.
 *
 * Run: `deno run -A bench/http1_codec.ts [seconds-per-case]`
 *
 * @module
 */
import type { StreamDecoder, StreamEncoder } from "../lib/api/codec.ts";
import { HeaderMap } from "../lib/api/headers.ts";
import { http1CodecFactory } from "../codecs/http1/mod.ts";

const te = new TextEncoder();
const REQUEST = te.encode(
  "GET /api/v1/users/12345/profile?include=settings&lang=en HTTP/1.1\r\n" +
    "Host: api.example.com\r\n" +
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\n" +
    "Accept: application/json, text/plain, */*\r\n" +
    "Accept-Language: en-US,en;q=0.9\r\n" +
    "Accept-Encoding: gzip, deflate, br\r\n" +
    "Connection: keep-alive\r\n" +
    "Cookie: session=0123456789abcdef; theme=dark\r\n" +
    "X-Request-Id: 7f3c2a9e-1b4d-4c8a-9e2f-5a6b7c8d9e0f\r\n\r\n",
);
const BODY = te.encode('{"id":12345,"name":"Ada","ok":true}');
const RESPONSE_HEADERS = () =>
  new HeaderMap([
    ":status",
    "200",
    "content-type",
    "application/json",
    "content-length",
    String(BODY.length),
    "date",
    "Tue, 24 Nov 2026 14:00:00 GMT",
    "server",
    "ferry",
    "cache-control",
    "no-store",
  ]);
const RESPONSE = (() => {
  const parts: Uint8Array[] = [];
  let enc!: StreamEncoder;
  const s = http1CodecFactory.createServer((b) => parts.push(b.slice()), {
    newStream(e) {
      enc = e;
      return { decodeHeaders() {}, decodeData() {}, decodeTrailers() {} };
    },
  });
  s.dispatch(REQUEST);
  enc.encodeHeaders(RESPONSE_HEADERS(), false);
  enc.encodeData(BODY, true);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
})();

const EMPTY_RESPONSE = new HeaderMap([":status", "204"]);
const seconds = Number(Deno.args[0] ?? "2");
let sink = 0;

function bench(name: string, op: () => void): number {
  // Warm up, then time rounds of ~25 ms; report the best round (the machine may be shared) and the median.
  const warm = performance.now();
  while (performance.now() - warm < 300) for (let i = 0; i < 1000; i++) op();
  const rounds: number[] = [];
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    let n = 0;
    const r0 = performance.now();
    let t = r0;
    while (t - r0 < 25) {
      for (let i = 0; i < 1000; i++) op();
      n += 1000;
      t = performance.now();
    }
    rounds.push(((t - r0) * 1e6) / n);
  }
  rounds.sort((x, y) => x - y);
  const best = rounds[0]!;
  const median = rounds[rounds.length >> 1]!;
  console.log(
    `${name.padEnd(48)} best ${best.toFixed(0).padStart(5)} ns/op  median ${median.toFixed(0).padStart(5)} ns/op`,
  );
  return best;
}

// Server: one keep-alive connection, request in, response out, over and over.
{
  let enc!: StreamEncoder;
  let headers: HeaderMap | undefined;
  const decoder: StreamDecoder = {
    decodeHeaders(h) {
      headers = h;
    },
    decodeData() {},
    decodeTrailers() {},
  };
  const server = http1CodecFactory.createServer((b) => {
    sink += b.length;
  }, {
    newStream(e) {
      enc = e;
      return decoder;
    },
  });
  bench("server: decode 400-byte GET", () => {
    server.dispatch(REQUEST);
    // Finish the stream cheaply so the next request is decoded (headers-only response).
    enc.encodeHeaders(EMPTY_RESPONSE, true);
    sink += headers!.size;
  });
  bench("server: decode GET + encode 200-byte response", () => {
    server.dispatch(REQUEST);
    enc.encodeHeaders(RESPONSE_HEADERS(), false);
    enc.encodeData(BODY, true);
    sink += headers!.size;
  });
}

// Client: one pooled connection, request out, response in.
{
  const decoder: StreamDecoder = {
    decodeHeaders(h) {
      sink += h.size;
    },
    decodeData(d) {
      sink += d.length;
    },
    decodeTrailers() {},
  };
  const client = http1CodecFactory.createClient((b) => {
    sink += b.length;
  });
  const reqHeaders = new HeaderMap([
    ":method",
    "GET",
    ":path",
    "/api/v1/users/12345/profile?include=settings&lang=en",
    ":authority",
    "api.example.com",
    ":scheme",
    "http",
    "user-agent",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "accept",
    "application/json, text/plain, */*",
    "accept-language",
    "en-US,en;q=0.9",
    "accept-encoding",
    "gzip, deflate, br",
    "cookie",
    "session=0123456789abcdef; theme=dark",
    "x-request-id",
    "7f3c2a9e-1b4d-4c8a-9e2f-5a6b7c8d9e0f",
  ]);
  bench("client: encode GET + decode 200-byte response", () => {
    const enc = client.newStream(decoder);
    enc.encodeHeaders(reqHeaders, true);
    client.dispatch(RESPONSE);
  });
}

console.log(`(request ${REQUEST.length} bytes, response ${RESPONSE.length} bytes, sink ${sink > 0})`);
