/**
 * Micro-benchmark of HPACK: decode and encode a typical 10-field browser request, both as the first request on a
 * connection (every field a literal, Huffman-coded, added to the dynamic table) and as a repeat request (every
 * field indexed).
 *
 * Run: `deno bench bench/hpack.ts`
 *
 * @module
 */
import { HpackDecoder, HpackEncoder } from "../codecs/http2/hpack.ts";

const REQUEST = [
  ":method",
  "GET",
  ":scheme",
  "https",
  ":authority",
  "api.example.com",
  ":path",
  "/api/v1/users/12345/profile?include=settings&lang=en",
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
];

const enc = new HpackEncoder();
const FIRST = enc.encode(REQUEST);
const REPEAT = enc.encode(REQUEST);

// A decoder fed FIRST over and over re-adds the same entries (evicting the previous copies): the cold path plus
// table upkeep, without allocating a decoder per iteration.
const cold = new HpackDecoder();
Deno.bench(`decode first request (${FIRST.length} B, 10 literal fields)`, { group: "decode", baseline: true }, () => {
  cold.decode(FIRST, 65536, 100);
});

const warm = new HpackDecoder();
warm.decode(FIRST, 65536, 100);
Deno.bench(`decode repeat request (${REPEAT.length} B, 10 indexed fields)`, { group: "decode" }, () => {
  warm.decode(REPEAT, 65536, 100);
});

Deno.bench("encode first request (fresh encoder)", { group: "encode", baseline: true }, () => {
  new HpackEncoder().encode(REQUEST);
});

const steady = new HpackEncoder();
steady.encode(REQUEST);
Deno.bench("encode repeat request", { group: "encode" }, () => {
  steady.encode(REQUEST);
});
