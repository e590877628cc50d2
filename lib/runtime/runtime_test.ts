import { assertEquals, assertThrows } from "../../tests/assert.ts";
import { parseLayeredRuntime, Runtime } from "./runtime.ts";

Deno.test("parseLayeredRuntime flattens static layers into dotted keys and keeps FractionalPercent leaves", () => {
  const layers = parseLayeredRuntime({
    layers: [
      { name: "s", static_layer: { fault: { http: { abort: { abort_percent: 5, pct: { numerator: 3 } } } }, f: true } },
      { name: "a", admin_layer: {} },
    ],
  }, "layered_runtime");
  assertEquals(layers.map((l) => [l.kind, l.name]), [["static", "s"], ["admin", "a"]]);
  const s = layers[0]!;
  if (s.kind !== "static") throw new Error("static expected");
  assertEquals([...s.values.keys()], ["fault.http.abort.abort_percent", "fault.http.abort.pct", "f"]);
  assertEquals(s.values.get("fault.http.abort.pct"), { numerator: 3, denominator: 100 });
});

Deno.test("parseLayeredRuntime rejects rtds and disk layers, duplicates and lists with the field path", () => {
  const bad = (raw: unknown, msg: string) =>
    assertThrows(() => parseLayeredRuntime(raw, "layered_runtime"), Error, msg);
  bad({ layers: [{ name: "r", rtds_layer: { name: "x" } }] }, "layered_runtime.layers[0].rtds_layer");
  bad({ layers: [{ name: "x", static_layer: { a: [1] } }] }, "layered_runtime.layers[0].static_layer.a");
  bad({ layers: [{ name: "x", admin_layer: {}, static_layer: {} }] }, "only one of");
  bad({ layers: [{ name: "x", admin_layer: {} }], extra: 1 }, "layered_runtime.extra");
});

Deno.test("Runtime later layers override earlier ones; the admin layer sets and removes keys", () => {
  const rt = new Runtime();
  rt.configure(parseLayeredRuntime({
    layers: [{ name: "s", static_layer: { k: 10, n: "7" } }, { name: "admin", admin_layer: {} }],
  }, "r"));
  assertEquals(rt.getInteger("k", 1), 10);
  assertEquals(rt.getInteger("n", 1), 7);
  assertEquals(rt.getInteger("missing", 3), 3);
  assertEquals(rt.modify([["k", "20"]]), true);
  assertEquals(rt.getInteger("k", 1), 20);
  assertEquals(rt.dump().entries["k"], { final_value: "20", layer_values: ["10", "20"] });
  rt.modify([["k", ""]]);
  assertEquals(rt.getInteger("k", 1), 10);
});

Deno.test("Runtime fraction: a number is a numerator over the default's denominator, a FractionalPercent wins", () => {
  const rt = new Runtime();
  rt.configure(parseLayeredRuntime({
    layers: [{ name: "s", static_layer: { a: 50, b: { numerator: 25, denominator: "TEN_THOUSAND" }, c: "x" } }],
  }, "r"));
  assertEquals(rt.fraction("a", 0, 100), 0.5);
  assertEquals(rt.fraction("a", 0, 10_000), 0.005);
  assertEquals(rt.fraction("b", 100, 100), 0.0025);
  assertEquals(rt.fraction("c", 30, 100), 0.3);
  assertEquals(rt.fraction(undefined, 30, 100), 0.3);
  // No admin layer: nothing to modify, as Envoy answers /runtime_modify.
  assertEquals(rt.modify([["a", "1"]]), false);
  assertEquals(rt.fraction("a", 0, 100), 0.5);
});
