/**
 * A source rule: no function literal is assigned straight to a property (`obj.f = () => …`, `this.#f = function …`).
 * Assign a local instead (`const f = () => …; obj.f = f;`).
 *
 * Why: V8's parser takes a function literal assigned to a property for a long-lived one (the `X.prototype.m =
 * function` idiom) and allocates the closure directly in the old generation. Made per connection or per request,
 * such a closure dies in the old generation, where only a full collection frees it; until then every scavenge
 * treats what it points at, its context with the connection's objects, as live, copies it, and promotes it. One such
 * closure per TLS handshake (EngineConnection's handshake callback) kept every GM connection alive through
 * scavenges; tests/integration/gc_retention_test.ts measures the effect on a running Ferry. The first test checks
 * that V8 still behaves so (if it stops, this rule can go).
 * @module
 */
import { assert, assertEquals } from "./assert.ts";

Deno.test("gc hygiene: V8 allocates a closure assigned straight to a property in the old generation", async () => {
  const src = `
    const young = new Function("x", "return %InYoungGeneration(x)");
    function direct(o, x) { o.f = () => x; }
    function viaLocal(o, x) { const f = () => x; o.f = f; }
    const o = {};
    direct(o, 1);
    const d = young(o.f);
    viaLocal(o, 1);
    console.log(JSON.stringify({ direct: d, viaLocal: young(o.f) }));
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--v8-flags=--allow-natives-syntax", src],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  assertEquals(JSON.parse(new TextDecoder().decode(out.stdout)), { direct: false, viaLocal: true });
});

/** `<member> = <function literal>`: `.name` / `.#name` / `[key]` on the left; an arrow or `function` on the right. */
const PARAMS = String.raw`\((?:[^()]|\([^()]*\))*\)`;
const ASSIGNED_LITERAL = new RegExp(
  String.raw`(?:\.\s*#?[\w$]+|\])\s*(?:=|\?\?=|\|\|=|&&=)\s*(?:async\s+)?` +
    String.raw`(?:function\b|${PARAMS}\s*(?::\s*[^=;{}]+?)?\s*=>|[\w$]+\s*=>)`,
  "g",
);

function* sources(dir: URL): Generator<URL> {
  for (const e of Deno.readDirSync(dir)) {
    const u = new URL(e.name + (e.isDirectory ? "/" : ""), dir);
    if (e.isDirectory) {
      if (e.name !== "testdata" && e.name !== "node_modules") yield* sources(u);
    } else if (e.name.endsWith(".ts") && !e.name.endsWith("_test.ts")) {
      yield u;
    }
  }
}

Deno.test("gc hygiene: no function literal is assigned straight to a property in Ferry's code", () => {
  const root = new URL("../", import.meta.url);
  const found: string[] = [];
  let files = 0;
  for (const dir of ["lib/", "codecs/", "filters/"]) {
    for (const file of sources(new URL(dir, root))) {
      files++;
      const text = Deno.readTextFileSync(file);
      for (const m of text.matchAll(ASSIGNED_LITERAL)) {
        const line = text.slice(0, m.index).split("\n").length;
        found.push(`${file.pathname.slice(root.pathname.length)}:${line}: ${m[0].split("\n")[0]}`);
      }
    }
  }
  assert(files > 100, `scanned only ${files} files`);
  assertEquals(found, [], "assign the closure to a local first (see this file's doc):\n" + found.join("\n"));
});

Deno.test("gc hygiene: the rule's pattern finds what it should and nothing else", () => {
  const hits = (s: string) => [...s.matchAll(ASSIGNED_LITERAL)].length;
  for (
    const bad of [
      "this.#f = () => 1;",
      "o.onmessage = (e: MessageEvent<string>) => {",
      "w.onerror = (e) => {",
      "x.cb = async (a, b) => a;",
      "x.cb = v => v;",
      "a[b] = (s: string) => s;",
      "this.#cancel ??= () => r.cancel();",
      "self.onmessage = async (e: MessageEvent<WorkerRequest>) => {",
      "o.f = function () {};",
      "o.f = (cb: (x: number) => void) => cb(1);",
      "o.f = (\n  a: number,\n  b: number,\n) => a + b;",
    ]
  ) assertEquals(hits(bad), 1, bad);
  for (
    const good of [
      "const f = () => 1; this.#f = f;",
      "#flushFn = () => this.#flush();",
      "new Promise((r) => this.#resolve = r);",
      "this.x = cond ? a : b;",
      "o.f = g(() => 1);",
      "if (a.b === (c) => 1) {}",
      "x.y = fn;",
    ]
  ) assertEquals(hits(good), 0, good);
});
