/**
 * The `openssl` command line for tests: run it (optionally with stdin), or run it and fail with its stderr.
 *
 * @module
 */

/** Runs `openssl args`; the exit code and the output. */
export async function openssl(args: string[], stdin?: string): Promise<{ code: number; out: string; err: string }> {
  const p = new Deno.Command("openssl", {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = p.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const r = await p.output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

/** Runs `openssl args`; throws with its stderr if it fails. */
export async function mustOpenssl(args: string[]): Promise<void> {
  const r = await openssl(args);
  if (r.code !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.err}`);
}
