/**
 * SM4 in CTR mode with a 128-bit big-endian counter block incremented modulo 2^128, as OpenSSL's `sm4-ctr`
 * and GB/T 17964 specify. (GCM's 32-bit counter lives in `gcm.ts`.)
 *
 * @example
 * ```ts
 * import { Sm4Ctr } from "./sm4_ctr.ts";
 * const ctr = new Sm4Ctr(new Uint8Array(16));
 * const iv = new Uint8Array(16);
 * const ct = ctr.xor(iv, new TextEncoder().encode("hello"));
 * ctr.xor(iv, ct); // "hello" again: CTR is its own inverse
 * ```
 *
 * @module
 */

import { BLOCK_SIZE, expandKey, readWord as rd, sm4Block, sm4Block4, writeWord as wr } from "./_sm4_core.ts";

/**
 * SM4-CTR for one key. `xor` encrypts or decrypts (the same operation) any length, starting from the 16-byte
 * initial counter block `iv`; it may run in place (`out` = `data`). Errors are `RangeError`s: key or IV length,
 * output too small.
 */
export class Sm4Ctr {
  readonly #rk: Int32Array;
  readonly #w = new Int32Array(16);

  /** Expands a 16-byte key. */
  constructor(key: Uint8Array) {
    this.#rk = expandKey(key, false);
  }

  /** XORs `data` with the keystream for `iv` into `out` (a new array when omitted) and returns `out`. */
  xor(iv: Uint8Array, data: Uint8Array, out: Uint8Array = new Uint8Array(data.length)): Uint8Array {
    if (!(iv instanceof Uint8Array) || iv.length !== BLOCK_SIZE) {
      throw new RangeError(`sm4-ctr: iv must be ${BLOCK_SIZE} bytes`);
    }
    const n = data.length;
    if (out.length < n) throw new RangeError(`sm4-ctr: output too small: need ${n} bytes, have ${out.length}`);
    const src = out.buffer === data.buffer && out.byteOffset !== data.byteOffset ? data.slice() : data;
    const rk = this.#rk, w = this.#w;
    let c0 = rd(iv, 0), c1 = rd(iv, 4), c2 = rd(iv, 8), c3 = rd(iv, 12);
    let i = 0;
    // Four blocks per SM4 call while the low counter word cannot wrap inside the group (~1.8x single blocks).
    while (i + 64 <= n) {
      if ((c3 >>> 0) > 0xfffffffb) {
        sm4Block(rk, c0, c1, c2, c3, w);
        xorBlock(src, out, i, w, 0);
        i += 16;
        c3 = (c3 + 1) | 0;
        if (c3 === 0) {
          // Carry into the upper 96 bits.
          c2 = (c2 + 1) | 0;
          if (c2 === 0) {
            c1 = (c1 + 1) | 0;
            if (c1 === 0) c0 = (c0 + 1) | 0;
          }
        }
        continue;
      }
      sm4Block4(rk, c0, c1, c2, c3, c0, c1, c2, (c3 + 1) | 0, c0, c1, c2, (c3 + 2) | 0, c0, c1, c2, (c3 + 3) | 0, w);
      c3 = (c3 + 4) | 0;
      xorBlock(src, out, i, w, 0);
      xorBlock(src, out, i + 16, w, 4);
      xorBlock(src, out, i + 32, w, 8);
      xorBlock(src, out, i + 48, w, 12);
      i += 64;
    }
    for (; i < n; i += 16) {
      sm4Block(rk, c0, c1, c2, c3, w);
      if (n - i >= 16) xorBlock(src, out, i, w, 0);
      else for (let j = 0; i + j < n; j++) out[i + j] = src[i + j]! ^ ((w[j >>> 2]! >>> (24 - 8 * (j & 3))) & 255);
      c3 = (c3 + 1) | 0;
      if (c3 === 0) {
        c2 = (c2 + 1) | 0;
        if (c2 === 0) {
          c1 = (c1 + 1) | 0;
          if (c1 === 0) c0 = (c0 + 1) | 0;
        }
      }
    }
    return out;
  }
}

/** out[o..o+16) = src[o..o+16) XOR the keystream words w[k..k+4). */
function xorBlock(src: Uint8Array, out: Uint8Array, o: number, w: Int32Array, k: number): void {
  wr(out, o, rd(src, o) ^ w[k]!);
  wr(out, o + 4, rd(src, o + 4) ^ w[k + 1]!);
  wr(out, o + 8, rd(src, o + 8) ^ w[k + 2]!);
  wr(out, o + 12, rd(src, o + 12) ^ w[k + 3]!);
}
