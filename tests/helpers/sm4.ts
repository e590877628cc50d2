/**
 * Test helpers for the SM4 family: hex conversion, seeded random bytes, and Node's OpenSSL as an oracle for
 * `sm4-ecb`, `sm4-cbc` and `sm4-ctr` (one `node` subprocess per batch of operations).
 * Used by the `lib/crypto/` tests.
 *
 * @module
 */

/** Returns the bytes of a hex string (whitespace ignored). */
export function hex(s: string): Uint8Array {
  const clean = s.replace(/\s/g, "");
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

/** Returns `n` bytes from a small deterministic generator (xorshift32), so failures reproduce. */
export function seeded(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = (seed * 2654435761) | 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x >>> 24;
  }
  return out;
}

/** One cipher operation for {@link nodeCiphers}. */
export interface NodeCipherOp {
  /** An OpenSSL cipher name: `sm4-ecb`, `sm4-cbc` or `sm4-ctr`. */
  readonly alg: "sm4-ecb" | "sm4-cbc" | "sm4-ctr";
  readonly key: Uint8Array;
  /** Omitted for ECB. */
  readonly iv?: Uint8Array;
  readonly data: Uint8Array;
  /** PKCS#7 padding on (Node's default for block modes); ignored for CTR. */
  readonly pad?: boolean;
  /** Decrypt instead of encrypt. */
  readonly decrypt?: boolean;
}

const NODE_SCRIPT = `
const c = require("crypto");
let s = "";
process.stdin.on("data", (d) => s += d).on("end", () => {
  const out = JSON.parse(s).map((o) => {
    try {
      const f = o.decrypt ? c.createDecipheriv : c.createCipheriv;
      const x = f(o.alg, Buffer.from(o.key, "hex"), o.iv ? Buffer.from(o.iv, "hex") : null);
      x.setAutoPadding(!!o.pad);
      return Buffer.concat([x.update(Buffer.from(o.data, "hex")), x.final()]).toString("hex");
    } catch (e) {
      return "error: " + e.message;
    }
  });
  process.stdout.write(JSON.stringify(out));
});`;

/** Runs every op through Node's OpenSSL and returns the outputs (or `"error: ..."` strings) in order. */
export async function nodeCiphers(ops: readonly NodeCipherOp[]): Promise<Uint8Array[]> {
  const json = JSON.stringify(ops.map((o) => ({
    alg: o.alg,
    key: toHex(o.key),
    iv: o.iv ? toHex(o.iv) : null,
    data: toHex(o.data),
    pad: o.pad ?? false,
    decrypt: o.decrypt ?? false,
  })));
  const child = new Deno.Command("node", {
    args: ["-e", NODE_SCRIPT],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  })
    .spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(json));
  await w.close();
  const r = await child.output();
  if (r.code !== 0) throw new Error(`node oracle failed: ${new TextDecoder().decode(r.stderr)}`);
  const outs = JSON.parse(new TextDecoder().decode(r.stdout)) as string[];
  return outs.map((h, i) => {
    if (h.startsWith("error: ")) throw new Error(`node oracle op ${i}: ${h}`);
    return hex(h);
  });
}

/** The sizes every mode is cross-checked on. */
export const SIZES: readonly number[] = [0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 100, 255, 256, 1000, 4096, 16383, 16384];
