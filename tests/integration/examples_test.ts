/**
 * Every `examples/*.yaml` passes `ferry --mode validate`, so the configs the README points to stay valid as the
 * parsers change. Examples that read certificates name them relative to the repository root (`examples/certs/...`,
 * as written by `ferry certs --gm --out examples/certs`), so validation runs in a temporary directory holding such a
 * PKI.
 */
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { itOpts, runFerry } from "./_harness.ts";

const ROOT = new URL("../../", import.meta.url);
const EXAMPLES = new URL("examples/", ROOT);

/** The example files, sorted. */
function exampleFiles(): string[] {
  const names: string[] = [];
  for (const e of Deno.readDirSync(EXAMPLES)) {
    if (e.isFile && e.name.endsWith(".yaml")) names.push(e.name);
  }
  return names.sort();
}

const ferry = (args: string[], cwd: string) => runFerry(args, { cwd });

/** A working directory with `examples/certs/` from `ferry certs --gm`, made once for all examples. */
let workDir: Promise<string> | undefined;
function certsDir(): Promise<string> {
  workDir ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "ferry_examples_" });
    globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
    // The TLS examples read the committed test PKI from examples/certs (they run from the repository root); a fresh
    // one here keeps this test independent of those certificates' expiry.
    const r = await ferry(["certs", "--gm", "--out", "examples/certs"], dir);
    assertEquals(r.code, 0, `ferry certs: ${r.stderr.trim()}`);
    return dir;
  })();
  return workDir;
}

Deno.test("examples directory has the documented configs", itOpts, () => {
  const names = exampleFiles();
  for (
    const n of ["dev.yaml", "edge-http.yaml", "fault-injection.yaml", "gm-edge.yaml", "gm-tls.yaml", "tcp-proxy.yaml"]
  ) {
    assert(names.includes(n), `examples/${n} is missing (found ${names.join(", ")})`);
  }
});

for (const name of exampleFiles()) {
  Deno.test(`examples/${name} passes --mode validate`, itOpts, async () => {
    const r = await ferry(["--mode", "validate", "-c", new URL(name, EXAMPLES).pathname], await certsDir());
    assertEquals(r.code, 0, `examples/${name}: ${r.stderr.trim()}`);
    assertMatch(r.stdout, /^OK: .*\(\d+ listener\(s\), \d+ cluster\(s\)\)/);
  });
}
