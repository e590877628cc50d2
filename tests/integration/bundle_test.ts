/**
 * The one-executable check (what a user on an offline machine does, as the README says): `compile.sh --bundle`
 * builds `ferry.js` and its worker module; copied to a directory outside the repository and run there with an empty
 * `DENO_DIR` (nothing cached, nothing fetched), it starts with no config (the embedded default), serves the default
 * page with every event loop (`--concurrency` needs the worker module beside it), writes a test PKI (`certs`) and
 * passes `--mode validate` on every file in `examples/`. `deno task compile` either builds `dist/ferry` (where the
 * `denort` runtime is reachable) or fails in one line with exit status 2.
 *
 * If `deno bundle` itself cannot run here because it needs a download that is unavailable, the bundle tests are
 * skipped with the reason logged; any other bundle failure fails them.
 */
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { DEFAULT_PAGE } from "../../lib/config/default.ts";
import { itOpts, sleep } from "./_harness.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const CORES = Math.max(1, Math.min(999, navigator.hardwareConcurrency || 1));
const dec = new TextDecoder();
/** Terminal colour codes, which Deno writes even into pipes. */
const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g");

async function run(
  cmd: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(cmd, { args, ...options, stdin: "null", stdout: "piped", stderr: "piped" })
    .output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Why a failed `deno bundle` run is the network's fault (then the check is skipped), or undefined. */
function offlineReason(stderr: string): string | undefined {
  const plain = stderr.replace(ANSI, "");
  const m = /.*(error sending request|dns error|failed to lookup address|Connection refused|network).*/i.exec(plain);
  return m?.[0]?.trim();
}

/** The bundle, built once into a temporary directory: its directory, or the reason it could not be built here. */
let built: Promise<{ dir: string } | { skip: string }> | undefined;
function bundle(): Promise<{ dir: string } | { skip: string }> {
  built ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "ferry_bundle_" });
    globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
    const r = await run("bash", [`${ROOT}compile.sh`, "--bundle"], { env: { FERRY_DIST: dir } });
    if (r.code !== 0) {
      const why = offlineReason(r.stderr);
      if (why !== undefined) return { skip: `deno bundle needs a download that is unavailable here: ${why}` };
      throw new Error(`compile.sh --bundle failed (exit ${r.code}): ${r.stderr}`);
    }
    // Elsewhere: a directory with nothing but the two files, as on the offline machine.
    const elsewhere = await Deno.makeTempDir({ prefix: "ferry_offline_" });
    globalThis.addEventListener("unload", () => Deno.removeSync(elsewhere, { recursive: true }));
    for (const f of ["ferry.js", "worker_main.ts"]) await Deno.copyFile(`${dir}/${f}`, `${elsewhere}/${f}`);
    return { dir: elsewhere };
  })();
  return built;
}

/** `deno run -A <flags from the shebang> ferry.js ...args` in `cwd`, with an empty DENO_DIR. */
async function bundleArgs(dir: string, args: string[]): Promise<string[]> {
  const first = (await Deno.readTextFile(`${dir}/ferry.js`)).split("\n", 1)[0]!;
  assertMatch(first, /^#!\/usr\/bin\/env -S deno run -A/);
  const flags = first.replace(/^#!\/usr\/bin\/env -S deno run /, "").trim().split(/\s+/);
  return ["run", ...flags, "--cached-only", `${dir}/ferry.js`, ...args];
}

let denoDir: string | undefined;
function emptyDenoDir(): { DENO_DIR: string } {
  denoDir ??= Deno.makeTempDirSync({ prefix: "ferry_deno_dir_" });
  return { DENO_DIR: denoDir };
}

function skipped(b: { dir: string } | { skip: string }): b is { skip: string } {
  if ("skip" in b) console.log(`skipped: ${b.skip}`);
  return "skip" in b;
}

Deno.test(
  "bundle: ferry.js copied elsewhere starts with the embedded default, serves the page on every event loop",
  itOpts,
  async () => {
    const b = await bundle();
    if (skipped(b)) return;
    // The embedded default listens on 127.0.0.1:10000 with admin on 127.0.0.1:9901.
    for (const port of [10000, 9901]) {
      try {
        Deno.listen({ hostname: "127.0.0.1", port }).close();
      } catch (e) {
        throw new Error(`port ${port} (the embedded default's) is in use: ${e instanceof Error ? e.message : e}`);
      }
    }
    const extra = CORES > 1 ? [] : ["--concurrency", "2"];
    const child = new Deno.Command(Deno.execPath(), {
      args: await bundleArgs(b.dir, ["--drain-time-s", "1", ...extra]),
      cwd: b.dir,
      env: emptyDenoDir(),
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    let log = "";
    const pump = (async () => {
      for await (const c of child.stderr) log += dec.decode(c, { stream: true });
    })();
    try {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const ready = await fetch("http://127.0.0.1:9901/ready").then(
          async (r) => (await r.body?.cancel(), r.status === 200),
          () => false,
        );
        if (ready) break;
        if (Date.now() > deadline) throw new Error(`the bundle did not become ready: ${log}`);
        await sleep(100);
      }
      const loops = Math.max(CORES, 2);
      assert(log.includes(`${loops - 1} worker thread(s) started`), log);
      const stats = await (await fetch("http://127.0.0.1:9901/stats")).text();
      assertMatch(stats, new RegExp(`^server\\.concurrency: ${loops}$`, "m"));
      // New connections each time: the kernel spreads them over the event loops.
      for (let i = 0; i < 20; i++) {
        const r = await fetch("http://127.0.0.1:10000/", { headers: { connection: "close" } });
        assertEquals(r.status, 200);
        assertEquals(await r.text(), DEFAULT_PAGE);
      }
      const after = await (await fetch("http://127.0.0.1:9901/stats")).text();
      const used = [...after.matchAll(/^listener\.127\.0\.0\.1_10000\.worker_\d+\.downstream_cx_total: (\d+)$/gm)]
        .filter((m) => Number(m[1]) > 0).length;
      assert(used >= 2, `connections per loop: ${after.match(/^listener.*worker.*cx_total.*$/gm)}`);
    } finally {
      child.kill("SIGTERM");
      const st = await child.status;
      await pump;
      assertEquals(st.code, 0, log);
    }
  },
);

Deno.test("bundle: ferry.js writes a test PKI and passes --mode validate on every example", itOpts, async () => {
  const b = await bundle();
  if (skipped(b)) return;
  // The examples name their certificates relative to the repository root (examples/certs/...): validate from a
  // directory laid out the same way, with a fresh PKI from the bundle's own `certs` command (the committed one
  // may expire).
  const work = await Deno.makeTempDir({ prefix: "ferry_bundle_examples_" });
  try {
    const certs = await run(Deno.execPath(), await bundleArgs(b.dir, ["certs", "--gm", "--out", "examples/certs"]), {
      cwd: work,
      env: emptyDenoDir(),
    });
    assertEquals(certs.code, 0, certs.stderr);
    const names = [...Deno.readDirSync(`${ROOT}examples`)].filter((e) => e.isFile && /\.ya?ml$/.test(e.name))
      .map((e) => e.name).sort();
    assert(names.length >= 6, `examples: ${names}`);
    for (const name of names) {
      await Deno.copyFile(`${ROOT}examples/${name}`, `${work}/examples/${name}`);
      const r = await run(
        Deno.execPath(),
        await bundleArgs(b.dir, ["--mode", "validate", "-c", `examples/${name}`]),
        { cwd: work, env: emptyDenoDir() },
      );
      assertEquals(r.code, 0, `examples/${name}: ${r.stderr.trim()}`);
      assertMatch(r.stdout, /^OK: .*\(\d+ listener\(s\), \d+ cluster\(s\)\)/);
    }
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});

Deno.test(
  "deno task compile builds dist/ferry, or says in one line that denort is missing (exit 2)",
  itOpts,
  async () => {
    const out = await Deno.makeTempDir({ prefix: "ferry_compile_" });
    try {
      const r = await run(Deno.execPath(), ["task", "compile"], { cwd: ROOT, env: { FERRY_DIST: out } });
      const err = r.stderr.replace(ANSI, "").split("\n").filter((l) => l !== "" && !/^Task /.test(l));
      if (r.code === 0) {
        // denort reachable: the executable runs on its own.
        const v = await run(`${out}/ferry`, ["--version"]);
        assertEquals(v.code, 0, v.stderr);
        assertMatch(v.stdout, /^ferry version: /);
        return;
      }
      assertEquals(r.code, 2, r.stderr);
      assertEquals(err.length, 1, r.stderr);
      assertMatch(err[0]!, /^compile\.sh: deno compile needs the denort runtime for .*: set DENORT_BIN=/);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
);
