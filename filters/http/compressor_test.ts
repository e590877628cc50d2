import { assertEquals, assertThrows } from "../../tests/assert.ts";
import { compressorFilterFactory, negotiate, parseCompressorPerRoute } from "./compressor.ts";

const GZIP = "type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip";
const parse = (raw: Record<string, unknown>) => compressorFilterFactory.parseConfig(raw, "f");

Deno.test("negotiate follows Envoy's accept-encoding rules", () => {
  assertEquals(negotiate(undefined, "gzip"), "no_header");
  assertEquals(negotiate("gzip", "gzip"), "used");
  assertEquals(negotiate("deflate, gzip;q=0.5", "gzip"), "used");
  assertEquals(negotiate("*", "gzip"), "wildcard");
  assertEquals(negotiate("gzip;q=0, *", "gzip"), "not_valid");
  assertEquals(negotiate("*;q=0, gzip", "gzip"), "used");
  assertEquals(negotiate("identity, gzip;q=0.5", "gzip"), "identity");
  assertEquals(negotiate("gzip, identity", "gzip"), "used"); // a tie: the first wins
  assertEquals(negotiate("br", "gzip"), "not_valid");
  assertEquals(negotiate("", "gzip"), "not_valid");
  assertEquals(negotiate("gzip;q=2", "gzip"), "not_valid"); // an invalid q drops the entry
});

Deno.test("compressor parseConfig fills Envoy's defaults and reads the deprecated fields", () => {
  const c = parse({ compressor_library: { name: "x", typed_config: { "@type": GZIP } } });
  assertEquals(c.response.enabled, true);
  assertEquals(c.response.minContentLength, 30);
  assertEquals(c.response.contentTypes.has("application/json"), true);
  assertEquals(c.request.enabled, false);
  assertEquals(c.library.options, { level: 6, memLevel: 5, strategy: 0, windowBits: 12, chunkSize: 4096 });
  const legacy = parse({
    compressor_library: { name: "x", typed_config: { "@type": GZIP, compression_level: "BEST_SPEED" } },
    content_length: 100,
    content_type: ["text/html"],
    disable_on_etag_header: true,
  });
  assertEquals(legacy.response.minContentLength, 100);
  assertEquals([...legacy.response.contentTypes], ["text/html"]);
  assertEquals(legacy.response.disableOnEtagHeader, true);
  assertEquals((legacy.library.options as { level: number }).level, 1);
  assertThrows(() => parse({}), "f.compressor_library");
  assertThrows(
    () => parse({ compressor_library: { name: "x", typed_config: { "@type": "type.googleapis.com/x.Y" } } }),
    "f.compressor_library.typed_config.@type",
  );
  assertThrows(
    () => parse({ compressor_library: { name: "x", typed_config: { "@type": GZIP } }, content_type: ["bad"] }),
    "f.content_type[0]",
  );
});

Deno.test("parseCompressorPerRoute reads disabled and overrides", () => {
  const T = "type.googleapis.com/envoy.extensions.filters.http.compressor.v3.CompressorPerRoute";
  assertEquals(parseCompressorPerRoute({ "@type": T, disabled: true }, "p").disabled, true);
  assertEquals(
    parseCompressorPerRoute(
      { "@type": T, overrides: { response_direction_config: { remove_accept_encoding_header: true } } },
      "p",
    ).removeAcceptEncodingHeader,
    true,
  );
  assertThrows(() => parseCompressorPerRoute({ "@type": T }, "p"), "p");
});

Deno.test("negotiate picks one encoding across the compressor filters of a chain", () => {
  const chain = [{ encoding: "gzip", chooseFirst: false }, { encoding: "br", chooseFirst: false }];
  assertEquals(negotiate("gzip, br", "gzip", chain), "used");
  assertEquals(negotiate("gzip, br", "br", chain), "overshadowed");
  assertEquals(negotiate("br;q=0.9, gzip;q=0.8", "br", chain), "used");
  assertEquals(negotiate("br;q=0.9, gzip;q=0.8", "gzip", chain), "overshadowed");
  assertEquals(negotiate("*", "gzip", chain), "wildcard"); // a tie on * goes to the first filter of the chain
  assertEquals(negotiate("*", "br", chain), "overshadowed");
  assertEquals(negotiate("gzip;q=0, *", "br", chain), "wildcard");
  const first = [{ encoding: "gzip", chooseFirst: false }, { encoding: "br", chooseFirst: true }];
  assertEquals(negotiate("gzip, br", "br", first), "used");
  assertEquals(negotiate("gzip, br;q=0.5", "gzip", first), "used"); // choose_first only breaks ties
});
