/**
 * HMAC-SHA256 in TypeScript for one key, with its pad states precomputed (`HmacSha256`): for short messages
 * MACed often, where `node:crypto`'s per-call objects cost more than the hashing. A TLS 1.3 session ticket is
 * MACed when sealed (two per handshake) and when opened; through `HmacKey` over native SHA-256 (two `Hash.copy()`
 * plus updates and digests) that took ~15 µs per ticket in a running server, most of it binding overhead.
 * SHA-256 itself (FIPS 180-4) stays native for everything else (`SHA256` in `hmac.ts`).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { type Compress, mdFinish } from "./_md32.ts";

/** The first 32 bits of the fractional part of x. */
function fractionBits(x: number): number {
  return ((x - Math.floor(x)) * 0x100000000) | 0;
}

const PRIMES: number[] = [];
for (let n = 2; PRIMES.length < 64; n++) if (PRIMES.every((p) => n % p !== 0)) PRIMES.push(n);
/** Round constants: cube roots of the first 64 primes; initial state: square roots of the first 8. */
const K = Int32Array.from(PRIMES, (p) => fractionBits(Math.cbrt(p)));
const IV = Int32Array.from(PRIMES.slice(0, 8), (p) => fractionBits(Math.sqrt(p)));

const W = new Int32Array(64);

const compress: Compress = (st, b, off) => {
  const w = W;
  for (let i = 0; i < 16; i++) {
    const j = off + 4 * i;
    w[i] = (b[j]! << 24) | (b[j + 1]! << 16) | (b[j + 2]! << 8) | b[j + 3]!;
  }
  for (let i = 16; i < 64; i++) {
    const x = w[i - 15]!, y = w[i - 2]!;
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    w[i] = (w[i - 16]! + s0 + w[i - 7]! + s1) | 0;
  }
  let a = st[0]!, b1 = st[1]!, c = st[2]!, d = st[3]!, e = st[4]!, f = st[5]!, g = st[6]!, h = st[7]!;
  for (let i = 0; i < 64; i++) {
    const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (h + s1 + ((e & f) ^ (~e & g)) + K[i]! + w[i]!) | 0;
    const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (s0 + ((a & b1) ^ (a & c) ^ (b1 & c))) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b1;
    b1 = a;
    a = (t1 + t2) | 0;
  }
  st[0] = (st[0]! + a) | 0;
  st[1] = (st[1]! + b1) | 0;
  st[2] = (st[2]! + c) | 0;
  st[3] = (st[3]! + d) | 0;
  st[4] = (st[4]! + e) | 0;
  st[5] = (st[5]! + f) | 0;
  st[6] = (st[6]! + g) | 0;
  st[7] = (st[7]! + h) | 0;
};

const STATE = new Int32Array(8);
const BLOCK = new Uint8Array(64);
const INNER = new Uint8Array(32);

/** HMAC-SHA256 (RFC 2104) for one key. */
export class HmacSha256 {
  /** The inner pad's state (words 0..7) and the outer pad's (8..15). */
  readonly #pads = new Int32Array(16);

  /** @param key the key (hashed first when longer than 64 bytes) */
  constructor(key: Uint8Array) {
    const k = key.length > 64 ? new Uint8Array(createHash("sha256").update(key).digest()) : key;
    for (const [pad, at] of [[0x36, 0], [0x5c, 8]] as const) {
      BLOCK.fill(pad);
      for (let i = 0; i < k.length; i++) BLOCK[i]! ^= k[i]!;
      STATE.set(IV);
      compress(STATE, BLOCK, 0);
      this.#pads.set(STATE, at);
    }
  }

  /** HMAC(key, data). */
  mac(data: Uint8Array): Uint8Array {
    const st = STATE, pads = this.#pads, n = data.length;
    for (let i = 0; i < 8; i++) st[i] = pads[i]!;
    let off = 0;
    for (; off + 64 <= n; off += 64) compress(st, data, off);
    mdFinish(compress, st, data, n - off, 64 + n, INNER, 0, off);
    for (let i = 0; i < 8; i++) st[i] = pads[8 + i]!;
    const out = new Uint8Array(32);
    mdFinish(compress, st, INNER, 32, 64 + 32, out);
    return out;
  }
}
