/**
 * SM4 in CBC mode, with PKCS#7 padding or none. TLCP's `*_SM4_CBC_SM3` suites use it with `{ padding: "none" }`
 * (the record layer adds TLS-style padding and an explicit IV itself).
 *
 * @example
 * ```ts
 * import { Sm4Cbc } from "./sm4_cbc.ts";
 * const cbc = new Sm4Cbc(new Uint8Array(16));
 * const iv = new Uint8Array(16);
 * const ct = cbc.encrypt(iv, new TextEncoder().encode("hello")); // 16 bytes, PKCS#7-padded
 * cbc.decrypt(iv, ct); // "hello"
 * ```
 *
 * @module
 */

import { BLOCK_SIZE, expandKey, readWord as rd, sm4Block, sm4Block4, writeWord as wr } from "./_sm4_core.ts";
import { pkcs7Pad, pkcs7Unpad, requireWholeBlocks } from "./_sm4_padding.ts";
import type { Sm4PaddingOptions } from "./sm4.ts";

/**
 * SM4-CBC for one key. `encrypt` and `decrypt` take a 16-byte IV and return a new array; with PKCS#7 (the
 * default) any plaintext length is accepted and the ciphertext is always 1..16 bytes longer. Errors are
 * `RangeError`s: key or IV length, ciphertext not a (non-empty, when padded) multiple of 16, bad padding.
 */
export class Sm4Cbc {
  readonly #ek: Int32Array;
  readonly #dk: Int32Array;
  readonly #w = new Int32Array(16);

  /** Expands a 16-byte key for both directions. */
  constructor(key: Uint8Array) {
    this.#ek = expandKey(key, false);
    this.#dk = this.#ek.slice().reverse();
  }

  /** CBC-encrypts `plaintext` under `iv`, PKCS#7-padding it unless `{ padding: "none" }`. */
  encrypt(iv: Uint8Array, plaintext: Uint8Array, options: Sm4PaddingOptions = {}): Uint8Array {
    checkIv(iv);
    const src = options.padding === "none" ? requireWholeBlocks(plaintext, "sm4-cbc") : pkcs7Pad(plaintext);
    const n = src.length, out = new Uint8Array(n), rk = this.#ek, w = this.#w;
    let v0 = rd(iv, 0), v1 = rd(iv, 4), v2 = rd(iv, 8), v3 = rd(iv, 12);
    for (let i = 0; i < n; i += 16) {
      sm4Block(rk, v0 ^ rd(src, i), v1 ^ rd(src, i + 4), v2 ^ rd(src, i + 8), v3 ^ rd(src, i + 12), w);
      v0 = w[0]!, v1 = w[1]!, v2 = w[2]!, v3 = w[3]!;
      wr(out, i, v0), wr(out, i + 4, v1), wr(out, i + 8, v2), wr(out, i + 12, v3);
    }
    return out;
  }

  /** CBC-decrypts `ciphertext` under `iv` and removes PKCS#7 padding unless `{ padding: "none" }`. */
  decrypt(iv: Uint8Array, ciphertext: Uint8Array, options: Sm4PaddingOptions = {}): Uint8Array {
    checkIv(iv);
    const pad = options.padding !== "none";
    requireWholeBlocks(ciphertext, "sm4-cbc", pad);
    const n = ciphertext.length, out = new Uint8Array(n), rk = this.#dk, w = this.#w;
    let v0 = rd(iv, 0), v1 = rd(iv, 4), v2 = rd(iv, 8), v3 = rd(iv, 12);
    let i = 0;
    // Decryption parallelises: four blocks per SM4 call, then XOR each with its predecessor ciphertext.
    for (; i + 64 <= n; i += 64) {
      const c = ciphertext;
      sm4Block4(
        rk,
        rd(c, i),
        rd(c, i + 4),
        rd(c, i + 8),
        rd(c, i + 12),
        rd(c, i + 16),
        rd(c, i + 20),
        rd(c, i + 24),
        rd(c, i + 28),
        rd(c, i + 32),
        rd(c, i + 36),
        rd(c, i + 40),
        rd(c, i + 44),
        rd(c, i + 48),
        rd(c, i + 52),
        rd(c, i + 56),
        rd(c, i + 60),
        w,
      );
      wr(out, i, v0 ^ w[0]!), wr(out, i + 4, v1 ^ w[1]!), wr(out, i + 8, v2 ^ w[2]!), wr(out, i + 12, v3 ^ w[3]!);
      for (let j = 16; j < 64; j += 4) wr(out, i + j, rd(c, i + j - 16) ^ w[j >>> 2]!);
      v0 = rd(c, i + 48), v1 = rd(c, i + 52), v2 = rd(c, i + 56), v3 = rd(c, i + 60);
    }
    for (; i < n; i += 16) {
      const c0 = rd(ciphertext, i), c1 = rd(ciphertext, i + 4), c2 = rd(ciphertext, i + 8), c3 = rd(ciphertext, i + 12);
      sm4Block(rk, c0, c1, c2, c3, w);
      wr(out, i, v0 ^ w[0]!), wr(out, i + 4, v1 ^ w[1]!), wr(out, i + 8, v2 ^ w[2]!), wr(out, i + 12, v3 ^ w[3]!);
      v0 = c0, v1 = c1, v2 = c2, v3 = c3;
    }
    return pad ? pkcs7Unpad(out, "sm4-cbc") : out;
  }
}

function checkIv(iv: Uint8Array): void {
  if (!(iv instanceof Uint8Array) || iv.length !== BLOCK_SIZE) {
    throw new RangeError(`sm4-cbc: iv must be ${BLOCK_SIZE} bytes`);
  }
}
