/**
 * Helpers shared by the connection engines' tests.
 *
 * @module
 */
import type { ConnectionHandler } from "../api/network.ts";
import { assertEquals } from "../../tests/assert.ts";

/** A handler with no-op defaults. */
export function handler(h: Partial<ConnectionHandler>): ConnectionHandler {
  return { onData() {}, onEof() {}, onClose() {}, ...h };
}

/** Deterministic bytes (xorshift), so a corrupted or reordered stream cannot pass by accident. */
export function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Reads until EOF; with `slowEvery`, pauses `pauseMs` every that many reads (a slow reader keeps the sender's writes
 * pending, the case where a reused read buffer would corrupt data).
 */
export async function readToEnd(c: Deno.Conn, slowEvery = 0, pauseMs = 1): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const buf = new Uint8Array(7 * 1024);
  let reads = 0;
  for (;;) {
    const n = await c.read(buf);
    if (n === null) break;
    parts.push(buf.slice(0, n));
    if (slowEvery > 0 && ++reads % slowEvery === 0) await new Promise((r) => setTimeout(r, pauseMs));
  }
  return concat(parts);
}

/** Asserts equal bytes, naming the first offset that differs (a whole-array diff of megabytes is unreadable). */
export function assertSameBytes(got: Uint8Array, want: Uint8Array, what: string): void {
  assertEquals(got.length, want.length, `${what}: length`);
  let bad = -1;
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i]) {
      bad = i;
      break;
    }
  }
  assertEquals(bad, -1, `${what}: bytes differ from offset ${bad}`);
}

/** Writes `data` to `c` in chunks of the given sizes in turn (partial, full and grown reads on the other side). */
export async function writeInChunks(c: Deno.Conn, data: Uint8Array, sizes: readonly number[]): Promise<void> {
  let o = 0;
  let i = 0;
  while (o < data.length) {
    const n = Math.min(data.length - o, sizes[i++ % sizes.length]!);
    o += await c.write(data.subarray(o, o + n));
  }
}
