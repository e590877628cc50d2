import { assertEquals, assertThrows } from "../../tests/assert.ts";
import { ConfigError } from "../api/errors.ts";
import { ENVOY_FIELDS, type EnvoyMessage } from "./_envoy_fields.ts";
import { asList, isEnvoyField, matchEnum, ObjReader } from "./reader.ts";

function err(fn: () => unknown): string {
  return assertThrows(fn, ConfigError).message;
}

const LB = ["ROUND_ROBIN", "LEAST_REQUEST", "RING_HASH"] as const;

Deno.test("ObjReader.enumOf accepts enum names in any case and returns the canonical spelling", () => {
  const o = new ObjReader({ a: "round_robin", b: "Least_Request", c: "RING_HASH", d: "rInG_hAsH" }, "x");
  assertEquals(o.enumOf("a", LB), "ROUND_ROBIN");
  assertEquals(o.enumOf("b", LB), "LEAST_REQUEST");
  assertEquals(o.enumOf("c", LB), "RING_HASH");
  assertEquals(o.enumOf("d", LB), "RING_HASH");
  o.done();
});

Deno.test("ObjReader.enumOf keeps mixed-case canonical names such as TLSv1_2", () => {
  const versions = ["TLS_AUTO", "TLSv1_2", "TLSv1_3"] as const;
  const o = new ObjReader({ min: "tlsv1_2", max: "TLSV1_3", auto: "tls_auto" }, "x");
  assertEquals(o.enumOf("min", versions), "TLSv1_2");
  assertEquals(o.enumOf("max", versions), "TLSv1_3");
  assertEquals(o.enumOf("auto", versions), "TLS_AUTO");
});

Deno.test("ObjReader.enumOf errors still list the valid names; known names in any case are not supported", () => {
  assertEquals(
    err(() => new ObjReader({ lb: "fastest" }, "c").enumOf("lb", LB)),
    'config: c.lb: "fastest" is not one of ROUND_ROBIN, LEAST_REQUEST, RING_HASH',
  );
  assertEquals(
    err(() => new ObjReader({ lb: "maglev" }, "c").enumOf("lb", LB, { known: ["MAGLEV"] })),
    'config: c.lb: "maglev" is not supported',
  );
  assertEquals(
    err(() => new ObjReader({ lb: 3 }, "c").enumOf("lb", LB)),
    "config: c.lb: expected one of ROUND_ROBIN, LEAST_REQUEST, RING_HASH, got 3",
  );
});

Deno.test("matchEnum prefers an exact match and is otherwise case-insensitive", () => {
  assertEquals(matchEnum("Auto", ["AUTO", "HTTP1"] as const), "AUTO");
  assertEquals(matchEnum("http1", ["AUTO", "HTTP1"] as const), "HTTP1");
  assertEquals(matchEnum("HTTP2", ["AUTO", "HTTP1"] as const), undefined);
});

Deno.test("ObjReader.objs reads a single object as a one-element list, with [0] in paths", () => {
  const o = new ObjReader({ clusters: { name: "a" } }, "sr");
  assertEquals(o.objs("clusters", (c) => c.str("name", { required: true })), ["a"]);
  assertEquals(
    err(() => new ObjReader({ clusters: { name: "a", bogus: 1 } }, "sr").objs("clusters", (c) => c.str("name"))),
    "config: sr.clusters[0].bogus: unknown field",
  );
  assertEquals(
    err(() =>
      new ObjReader({ clusters: { port: 1 } }, "sr").objs("clusters", (c) => c.str("name", { required: true }))
    ),
    "config: sr.clusters[0].name: is required",
  );
});

Deno.test("ObjReader.strs and arr read a single scalar as a one-element list", () => {
  const o = new ObjReader({ domains: "*", codes: 503, names: ["a", "b"] }, "vh");
  assertEquals(o.strs("domains", { nonEmpty: true }), ["*"]);
  assertEquals(o.arr("codes", (v, p) => `${p}=${v}`), ["vh.codes[0]=503"]);
  assertEquals(o.strs("names"), ["a", "b"]);
  o.done();
  assertEquals(
    err(() => new ObjReader({ domains: 7 }, "vh").strs("domains")),
    "config: vh.domains[0]: expected a string, got 7",
  );
  assertEquals(
    err(() => new ObjReader({ domains: [] }, "vh").strs("domains", { nonEmpty: true })),
    "config: vh.domains: must have at least one entry",
  );
});

Deno.test("asList wraps a non-list value", () => {
  assertEquals(asList([1, 2]), [1, 2]);
  assertEquals(asList({ a: 1 }), [{ a: 1 }]);
  assertEquals(asList("x"), ["x"]);
});

Deno.test("ObjReader.done reports fields of the declared Envoy message as not supported, in either spelling", () => {
  const msg = "envoy.config.route.v3.RouteAction";
  assertEquals(
    err(() => new ObjReader({ max_grpc_timeout: "1s" }, "r").envoyMessage(msg).done()),
    "config: r.max_grpc_timeout: is not supported",
  );
  assertEquals(
    err(() => new ObjReader({ maxGrpcTimeout: "1s" }, "r").envoyMessage(msg).done()),
    "config: r.maxGrpcTimeout: is not supported",
  );
  assertEquals(
    err(() => new ObjReader({ max_grpc_timeot: "1s" }, "r").envoyMessage(msg).done()),
    "config: r.max_grpc_timeot: unknown field",
  );
  // Without a declared message every leftover key is unknown.
  assertEquals(
    err(() => new ObjReader({ max_grpc_timeout: "1s" }, "r").done()),
    "config: r.max_grpc_timeout: unknown field",
  );
  // null is proto3 JSON's "unset": accepted for a real field, still an error for a made-up one.
  new ObjReader({ max_grpc_timeout: null }, "r").envoyMessage(msg).done();
  assertEquals(
    err(() => new ObjReader({ bogus: null }, "r").envoyMessage(msg).done()),
    "config: r.bogus: unknown field",
  );
});

Deno.test("isEnvoyField maps snake_case and lowerCamelCase names", () => {
  const msg = "envoy.config.cluster.v3.Cluster";
  assertEquals(isEnvoyField(msg, "lb_subset_config"), true);
  assertEquals(isEnvoyField(msg, "lbSubsetConfig"), true);
  assertEquals(isEnvoyField(msg, "lb_subset"), false);
});

Deno.test("ENVOY_FIELDS lists snake_case names, each once per message", () => {
  for (const [msg, fields] of Object.entries(ENVOY_FIELDS)) {
    const names: readonly string[] = fields;
    assertEquals(names.filter((f) => !/^[a-z][a-z0-9_]*$/.test(f)), [], msg);
    assertEquals(new Set(names).size, names.length, msg);
    assertEquals(/^envoy\.[a-z0-9_.]+\.v3\.[A-Z][A-Za-z0-9.]*$/.test(msg), true, msg);
    const m = msg as EnvoyMessage;
    assertEquals(isEnvoyField(m, names[0]!), true);
  }
});
