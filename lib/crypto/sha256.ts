/**
 * HMAC-SHA256 in TypeScript ({@link Sha256HmacCore}): SHA-256's compression function (FIPS 180-4) behind
 * `SHA256.hmacCore`, with the pad states hashed once per key. Short messages MACed often (TLS 1.3 session tickets:
 * two sealed per handshake, one opened per resumption; HKDF over SHA-256) cost more in `node:crypto`'s per-call
 * objects than in the hashing: the generic HMAC over native SHA-256 (two `Hash.copy()` plus updates and digests)
 * took ~15 µs per ticket in a running server, and sealing a ticket went 11.7 → 7.0 µs, opening 9.2 → 5.1 µs
 * (hot). Plain SHA-256 digests and transcripts stay native.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { type Compress, Md32HmacCore } from "./_md32.ts";
import type { IncrementalHash } from "./hmac.ts";

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

/**
 * HMAC-SHA256 for one key with its pad states precomputed: `SHA256`'s {@link HashAlgorithm.hmacCore}, so every
 * {@link HmacKey} over SHA-256 uses it. Incremental HMACs (`create`) come from `createIncremental`.
 */
export class Sha256HmacCore extends Md32HmacCore {
  readonly #createIncremental: () => IncrementalHash;

  /**
   * @param key the key (hashed first when longer than 64 bytes)
   * @param createIncremental makes an incremental HMAC under the same key (native, in `hmac.ts`)
   */
  constructor(key: Uint8Array, createIncremental: () => IncrementalHash) {
    super(compress, IV, key.length > 64 ? new Uint8Array(createHash("sha256").update(key).digest()) : key);
    this.#createIncremental = createIncremental;
  }

  override create(): IncrementalHash {
    return this.#createIncremental();
  }
}
