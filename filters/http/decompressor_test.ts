import { assertEquals } from "../../tests/assert.ts";
import { HeaderMap } from "../../lib/api/headers.ts";
import { decompressorFilterFactory, takeContentEncoding } from "./decompressor.ts";

Deno.test("takeContentEncoding removes the first matching token and content-length", () => {
  const h = new HeaderMap(["content-encoding", "gzip, br", "content-length", "10"]);
  assertEquals(takeContentEncoding(h, "gzip", false), true);
  assertEquals(h.get("content-encoding"), "br");
  assertEquals(h.get("content-length"), undefined);
  const one = new HeaderMap(["content-encoding", "GZIP"]);
  assertEquals(takeContentEncoding(one, "gzip", false), true);
  assertEquals(one.has("content-encoding"), false);
  assertEquals(takeContentEncoding(new HeaderMap(["content-encoding", "br, gzip"]), "gzip", false), false);
  const nt = new HeaderMap(["content-encoding", "gzip", "cache-control", "no-transform"]);
  assertEquals(takeContentEncoding(nt, "gzip", false), false);
  assertEquals(takeContentEncoding(nt, "gzip", true), true);
});

Deno.test("decompressor parseConfig defaults both directions on", () => {
  const c = decompressorFilterFactory.parseConfig({
    decompressor_library: {
      name: "d",
      typed_config: { "@type": "type.googleapis.com/envoy.extensions.compression.gzip.decompressor.v3.Gzip" },
    },
  }, "f");
  assertEquals(c.request.enabled, true);
  assertEquals(c.request.advertiseAcceptEncoding, true);
  assertEquals(c.response.enabled, true);
  assertEquals(c.library.maxInflateRatio, 100);
});
