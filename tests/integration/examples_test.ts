/**
 * Every `examples/*.yaml` passes `ferry --mode validate`, so the configs the README points to stay valid as the
 * parsers change.
 */
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { itOpts } from "./_harness.ts";

const ROOT = new URL("../../", import.meta.url);
const MAIN = new URL("main.ts", ROOT).pathname;
const EXAMPLES = new URL("examples/", ROOT);

/** The example files, sorted. */
function exampleFiles(): string[] {
  const names: string[] = [];
  for (const e of Deno.readDirSync(EXAMPLES)) {
    if (e.isFile && e.name.endsWith(".yaml")) names.push(e.name);
  }
  return names.sort();
}

Deno.test("examples directory has the documented configs", itOpts, () => {
  const names = exampleFiles();
  for (const n of ["dev.yaml", "edge-http.yaml", "fault-injection.yaml", "tcp-proxy.yaml"]) {
    assert(names.includes(n), `examples/${n} is missing (found ${names.join(", ")})`);
  }
});

for (const name of exampleFiles()) {
  Deno.test(`examples/${name} passes --mode validate`, itOpts, async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "--mode", "validate", "-c", new URL(name, EXAMPLES).pathname],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    const stdout = dec.decode(out.stdout);
    const stderr = dec.decode(out.stderr);
    assertEquals(out.code, 0, `examples/${name}: ${stderr.trim()}`);
    assertMatch(stdout, /^OK: .*\(\d+ listener\(s\), \d+ cluster\(s\)\)/);
  });
}
