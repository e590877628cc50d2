/**
 * Closed connections must not outlive a scavenge. A connection that a dead object in the old generation still
 * points at survives every scavenge until the next full collection: it is copied once, then promoted, and the
 * young-generation collections that should cost next to nothing copy every connection since the last full one.
 * Two such paths were found and are closed (see lib/network/linked_set.ts and tests/gc_hygiene_test.ts); this test
 * measures the effect on a real Ferry (tests/integration/gc_probe.ts): after a full collection, closed connections
 * (curl's plain HTTP ones; HTTP over a TLS 1.3-SM hop through the GM engine's client and server; TCP connections
 * opened and closed 20 at a time), then two forced scavenges. What the last one promotes is what stayed reachable.
 * Before the fixes: ~1.0 MiB (200 plain HTTP), ~1.1 MiB (200 TLS 1.3-SM), ~1.4 MiB (1000 overlapping, the
 * closures fixed but the listener's `Set` back); after: ~70, ~10 and ~140 KiB.
 * @module
 */
import { assert } from "../assert.ts";
import { generateTestPki } from "../../lib/crypto/certs_command.ts";
import { itOpts } from "./_harness.ts";

type Mode = "plain" | "gm" | "overlap";
const COUNT = 200;
/** Connections per probe: overlapping ones are cheap, and the leak grows with how many were open at each rehash. */
const countOf = (mode: Mode) => mode === "overlap" ? 5 * COUNT : COUNT;
/** Bytes the last scavenge may promote (the fixed code measures at most ~140 KiB, the broken one 1 MiB or more). */
const LIMIT = 400 * 1024;

const pki = Deno.makeTempDirSync({ prefix: "ferry-gc-" });
for (const [name, pem] of Object.entries(generateTestPki({ gm: true, hosts: ["localhost"], ips: ["127.0.0.1"] }))) {
  Deno.writeTextFileSync(`${pki}/${name}`, pem);
}
const FLAGS = "--experimental-wasm-wide-arithmetic,--invocation-count-for-maglev=50," +
  "--minimum-invocations-after-ic-update=50,--no-memory-reducer,--expose-gc,--trace-gc-nvp";

/** Runs the probe; the bytes promoted by its last forced scavenge. */
async function promotedAfter(mode: Mode): Promise<number> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `--v8-flags=${FLAGS}`,
      new URL("./gc_probe.ts", import.meta.url).pathname,
      mode,
      String(countOf(mode)),
      pki,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assert(out.code === 0, `probe ${mode} failed (${out.code}): ${stderr.slice(-2000)}`);
  // V8 prints its records through C stdio, interleaved with other output: match the records, not lines.
  const forced = [...stdout.matchAll(/"gc":"(\w+)"[^{}]*?"reason":"([^"]*)"[^{}]*?"promoted":(\d+)/g)]
    .filter((m) => m[1] === "s" && m[2] === "testing").map((m) => Number(m[3]));
  assert(forced.length >= 3, `probe ${mode}: expected three forced scavenges, saw ${forced.length}`);
  return forced[forced.length - 1]!;
}

const WHAT: Record<Mode, string> = {
  plain: "plain HTTP connections",
  gm: "TLS 1.3-SM connections",
  overlap: "TCP connections, 20 open at a time,",
};

for (const mode of ["plain", "gm", "overlap"] as const) {
  Deno.test({
    name: `gc: ${countOf(mode)} closed ${WHAT[mode]} do not survive scavenges`,
    ...itOpts,
    fn: async () => {
      const promoted = await promotedAfter(mode);
      assert(
        promoted < LIMIT,
        `${(promoted / 1024).toFixed(0)} KiB of ${countOf(mode)} closed connections survived two scavenges (limit ${
          LIMIT / 1024
        } KiB)`,
      );
    },
  });
}
