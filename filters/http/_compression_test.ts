import zlib from "node:zlib";
import { Buffer } from "node:buffer";
import { assert, assertEquals } from "../../tests/assert.ts";
import { ObjReader } from "../../lib/config/reader.ts";
import { CodecStream, ONE_SHOT_LIMIT, parseCompressorLibrary, parseDecompressorLibrary } from "./_compression.ts";

const gzip = parseCompressorLibrary(
  new ObjReader({
    name: "g",
    typed_config: { "@type": "type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip" },
  }, "lib"),
);
const gunzip = parseDecompressorLibrary(
  new ObjReader({
    name: "g",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.compression.gzip.decompressor.v3.Gzip",
      max_inflate_ratio: 10,
    },
  }, "lib"),
);

/** Runs chunks through a CodecStream; resolves with the output and whether the last output came synchronously. */
function run(
  lib: typeof gzip,
  compress: boolean,
  chunks: Uint8Array[],
  expectedLength?: number,
): Promise<{ out: Uint8Array; sync: boolean; error?: unknown }> {
  return new Promise((resolve) => {
    const parts: Uint8Array[] = [];
    let pushing = true;
    const s = new CodecStream(lib, {
      compress,
      ...(expectedLength !== undefined ? { expectedLength } : {}),
      onOutput: (d, end) => {
        parts.push(d.slice());
        if (end) resolve({ out: new Uint8Array(Buffer.concat(parts)), sync: pushing });
      },
      onError: (e) => resolve({ out: new Uint8Array(0), sync: pushing, error: e }),
    });
    chunks.forEach((c, i) => s.push(c, i === chunks.length - 1));
    pushing = false;
  });
}

const text = new TextEncoder().encode("hello compression ".repeat(5000));
const halves = [text.subarray(0, 40000), text.subarray(40000)];

Deno.test("CodecStream compresses a body of known small length in one synchronous pass", async () => {
  const r = await run(gzip, true, halves, text.length);
  assert(r.sync);
  assertEquals(new Uint8Array(zlib.gunzipSync(r.out)), text);
});

Deno.test("CodecStream streams a body of unknown length, and one longer than announced", async () => {
  const r = await run(gzip, true, halves);
  assert(!r.sync);
  assertEquals(new Uint8Array(zlib.gunzipSync(r.out)), text);
  const big = new Uint8Array(ONE_SHOT_LIMIT + 10).fill(97);
  const lied = await run(gzip, true, [big.subarray(0, 100), big.subarray(100)], 100);
  assertEquals(new Uint8Array(zlib.gunzipSync(lied.out)), big);
});

Deno.test("CodecStream decompression fails on corrupt input and past max_inflate_ratio", async () => {
  const bad = await run(gunzip, false, [new TextEncoder().encode("not gzip")]);
  assert(bad.error !== undefined);
  const bomb = zlib.gzipSync(new Uint8Array(1 << 20));
  const r1 = await run(gunzip, false, [bomb], bomb.length);
  assert(r1.error !== undefined, "one-shot path");
  const r2 = await run(gunzip, false, [bomb.subarray(0, 100), bomb.subarray(100)]);
  assert(r2.error !== undefined, "stream path");
  const noisy = new Uint8Array(20000).map((_, i) => (i * 2654435761) >>> 24);
  const ok = await run(gunzip, false, [zlib.gzipSync(noisy)]);
  assertEquals(ok.out, noisy);
});
