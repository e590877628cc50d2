import { assert } from "../../tests/assert.ts";
import { deepEqual } from "./_deep_equal.ts";

Deno.test("deepEqual compares plain values, arrays and objects structurally", () => {
  assert(deepEqual({ a: 1, b: [1, { c: "x" }] }, { b: [1, { c: "x" }], a: 1 }));
  assert(!deepEqual({ a: 1 }, { a: 2 }));
  assert(!deepEqual([1, 2], [1, 2, 3]));
  assert(deepEqual({ a: undefined, b: 1 }, { b: 1 }), "an undefined key counts as absent");
  assert(deepEqual(NaN, NaN));
  assert(!deepEqual(null, {}));
  assert(deepEqual(10n, 10n), "bigints (which JSON.stringify refuses)");
});

Deno.test("deepEqual compares bytes, maps, sets and dates by content, functions and key objects by identity", () => {
  assert(deepEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2])));
  assert(!deepEqual(new Uint8Array([1, 2]), new Uint8Array([1, 3])));
  assert(!deepEqual(new Uint8Array([1]), [1]), "different prototypes");
  assert(deepEqual(new Map([["a", { x: 1 }]]), new Map([["a", { x: 1 }]])));
  assert(!deepEqual(new Set([1]), new Set([2])));
  assert(deepEqual(new Date(5), new Date(5)));
  const f = () => 1;
  assert(deepEqual({ f }, { f }));
  assert(!deepEqual({ f }, { f: () => 1 }));
  class Key {}
  assert(!deepEqual(new Key(), new Key()), "an opaque object equals only itself");
});

Deno.test("deepEqual skips ignored keys at every depth and survives cycles", () => {
  const ignore = new Set(["path"]);
  assert(deepEqual({ path: "a", e: [{ path: "x", port: 1 }] }, { path: "b", e: [{ path: "y", port: 1 }] }, ignore));
  assert(!deepEqual({ path: "a", e: [{ port: 1 }] }, { path: "a", e: [{ port: 2 }] }, ignore));
  const a: Record<string, unknown> = { n: 1 };
  a.self = a;
  const b: Record<string, unknown> = { n: 1 };
  b.self = b;
  assert(deepEqual(a, b));
});
