import { assert, assertEquals } from "../../tests/assert.ts";
import { MALLOC_SETTINGS } from "./malloc_tuning.ts";

const glibc = Deno.build.os === "linux" && (() => {
  try {
    Deno.dlopen("libc.so.6", { mallinfo2: { parameters: [], result: "void" } }).close();
    return true;
  } catch {
    return false; // not glibc, or older than 2.33
  }
})();

async function run(env: Record<string, string>): Promise<{ before: number; after: number; applied: string[] }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./testdata/malloc_fastbins.ts", import.meta.url).pathname],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

Deno.test({
  name: "tuneMalloc turns glibc's fastbins off (freed small blocks no longer wait in them); FERRY_MALLOPT=off does not",
  ignore: !glibc,
  async fn() {
    const tuned = await run({});
    assertEquals(tuned.applied, MALLOC_SETTINGS.map((s) => s.name));
    // 200 blocks, 7 of which glibc's per-thread cache keeps: the rest land in fastbins by default.
    assert(tuned.before >= 150 * 48, `glibc's defaults keep freed small blocks in fastbins (${tuned.before} bytes)`);
    assertEquals(tuned.after, 0, "no freed block waits in a fastbin once tuned");
    const off = await run({ FERRY_MALLOPT: "off" });
    assertEquals(off.applied, []);
    assert(off.after >= 150 * 48, `untuned, fastbins still fill (${off.after} bytes)`);
  },
});
