/**
 * Ferry's V8 flags (README, "V8 flags") are written out in several places: deno.json's tasks, compile.sh (the
 * executable and the bundle's shebang) and the benchmark scripts. They must stay one set.
 * @module
 */
import { assert, assertEquals } from "./assert.ts";

const root = new URL("../", import.meta.url);
const read = (p: string) => Deno.readTextFileSync(new URL(p, root));
const flagsIn = (text: string) => [...text.matchAll(/--v8-flags=([\w,=-]+)/g)].map((m) => m[1]!);

Deno.test("V8 flags: deno.json's tasks, compile.sh, the benchmarks and the README use the same set", () => {
  const tasks = JSON.parse(read("deno.json")).tasks as Record<string, string>;
  const canonical = flagsIn(tasks.start!)[0]!;
  for (const f of ["--experimental-wasm-wide-arithmetic", "--invocation-count-for-maglev=50", "--no-memory-reducer"]) {
    assert(canonical.split(",").includes(f), `deno task start lacks ${f}: ${canonical}`);
  }
  for (const t of ["dev", "test"]) assertEquals(flagsIn(tasks[t]!), [canonical], `task ${t}`);
  for (
    const file of ["compile.sh", "bench/_common.sh", "bench/ab.sh", "bench/ab_tls.sh", "bench/xds.sh", "README.md"]
  ) {
    const found = flagsIn(read(file)).filter((f) => f.includes("invocation-count-for-maglev"));
    assert(found.length > 0, `${file} names no V8 flags`);
    for (const f of found) assertEquals(f, canonical, file);
  }
});
