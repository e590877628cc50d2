import { assertEquals, assertThrows } from "../../tests/assert.ts";
import { ObjReader } from "../../lib/config/reader.ts";
import { corsFilterFactory, readCorsPolicy } from "./cors.ts";

const policy = (raw: Record<string, unknown>) => readCorsPolicy(new ObjReader(raw, "p"));

Deno.test("readCorsPolicy reads Envoy's CorsPolicy with its defaults", () => {
  const p = policy({
    "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy",
    allow_origin_string_match: [{ exact: "https://a" }, { safe_regex: { regex: "\\*" } }],
    allow_credentials: { value: true },
    max_age: "60",
  });
  assertEquals(p.allowOrigins.map((m) => m.kind), ["exact", "safe_regex"]);
  assertEquals(p.allowOrigins[1]!.test("*"), true);
  assertEquals([p.allowCredentials, p.maxAge, p.forwardNotMatchingPreflights], [true, "60", true]);
  assertEquals(p.filterEnabled, { numerator: 100, denominator: 100, runtimeKey: undefined });
  assertEquals(p.shadowEnabled, undefined);
});

Deno.test("readCorsPolicy and the Cors filter config reject unknown fields with the path", () => {
  assertThrows(() => policy({ allow_origin: ["*"] }), Error, "p.allow_origin");
  assertThrows(() => policy({ allow_credentials: "yes" }), Error, "p.allow_credentials");
  assertThrows(() => policy({ filter_enabled: { runtime_key: "k" } }), Error, "p.filter_enabled.default_value");
  assertThrows(() => corsFilterFactory.parseConfig({ allow_methods: "GET" }, "f"), Error, "f.allow_methods");
});
