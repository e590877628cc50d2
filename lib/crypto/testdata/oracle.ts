/**
 * Test helpers: hex conversion and running the `openssl` and `node` commands as independent oracles.
 *
 * @module
 */

/** Returns the bytes of a hex string (whitespace and colons ignored). */
export function hex(s: string): Uint8Array {
  const clean = s.replace(/[\s:]/g, "");
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Returns the lower-case hex of `b`. */
export function toHex(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

/** The result of a subprocess. */
export interface RunResult {
  /** Exit code. */
  code: number;
  /** Standard output as bytes. */
  stdout: Uint8Array;
  /** Standard output as text. */
  out: string;
  /** Standard error as text. */
  err: string;
}

/** Runs `cmd args` with optional stdin and returns its exit code and output. */
export async function run(cmd: string, args: string[], stdin?: Uint8Array | string): Promise<RunResult> {
  const child = new Deno.Command(cmd, { args, stdin: "piped", stdout: "piped", stderr: "piped" }).spawn();
  const w = child.stdin.getWriter();
  if (stdin !== undefined) await w.write(typeof stdin === "string" ? new TextEncoder().encode(stdin) : stdin);
  await w.close();
  const o = await child.output();
  const dec = new TextDecoder();
  return { code: o.code, stdout: o.stdout, out: dec.decode(o.stdout), err: dec.decode(o.stderr) };
}

/** Runs a `node` script (CommonJS, `-e`) and returns its trimmed standard output; throws on failure. */
export async function node(script: string, stdin?: Uint8Array | string): Promise<string> {
  const r = await run("node", ["-e", script], stdin);
  if (r.code !== 0) throw new Error(`node failed: ${r.err}`);
  return r.out.trim();
}

/** Runs `openssl args` and returns its result; throws when it exits non-zero. */
export async function openssl(args: string[], stdin?: Uint8Array | string): Promise<RunResult> {
  const r = await run("openssl", args, stdin);
  if (r.code !== 0) throw new Error(`openssl ${args.join(" ")} failed: ${r.err}${r.out}`);
  return r;
}
