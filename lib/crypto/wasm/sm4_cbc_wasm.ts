/**
 * SM4-CBC on the hand-assembled WebAssembly kernel (see `_sm4_wasm_module.ts`), with the same API and results
 * as {@link Sm4Cbc} in `../sm4_cbc.ts`, which stays the portable reference path. TLCP's `*_SM4_CBC_SM3` suites
 * are its main user.
 *
 * @example
 * ```ts
 * import { Sm4CbcWasm } from "./sm4_cbc_wasm.ts";
 * const cbc = new Sm4CbcWasm(new Uint8Array(16));
 * const iv = new Uint8Array(16);
 * cbc.decrypt(iv, cbc.encrypt(iv, new TextEncoder().encode("hello"))); // "hello"
 * ```
 *
 * @module
 */

import { BLOCK_SIZE, expandKey, T0, T1, T2, T3 } from "../_sm4_core.ts";
import { pkcs7Pad, pkcs7Unpad, requireWholeBlocks } from "../_sm4_padding.ts";
import type { Sm4PaddingOptions } from "../sm4.ts";
import {
  CBC_IV_BASE,
  CCM_IO_BASE,
  IO_SIZE,
  RK_BASE,
  RK_DEC_BASE,
  sm4CcmModule,
  storeBigEndian,
  storeTTables,
} from "./_sm4_wasm_module.ts";
import { Sm4Simd } from "./sm4_simd.ts";

interface Kernel {
  cbcEncrypt(ptr: number, blocks: number): void;
  cbcDecrypt(ptr: number, blocks: number): void;
}

/**
 * SM4-CBC for one key on a WebAssembly kernel (one instance, 64 KiB of memory, per key). Same contract as
 * {@link Sm4Cbc}: a 16-byte IV, PKCS#7 padding by default or `{ padding: "none" }` for whole blocks, and
 * `RangeError`s for bad keys, IVs, lengths and padding.
 */
export class Sm4CbcWasm {
  readonly #k: Kernel;
  readonly #mem: Uint8Array;
  readonly #key: Uint8Array;
  #simd: Sm4Simd | null | undefined;

  /** Expands a 16-byte key for both directions into a new WebAssembly instance. */
  constructor(key: Uint8Array) {
    const rk = expandKey(key, false);
    this.#key = key.slice();
    const inst = new WebAssembly.Instance(sm4CcmModule());
    const buf = (inst.exports.mem as WebAssembly.Memory).buffer;
    this.#k = inst.exports as unknown as Kernel;
    this.#mem = new Uint8Array(buf);
    storeTTables(buf, [T0, T1, T2, T3]);
    storeBigEndian(buf, RK_BASE, rk);
    storeBigEndian(buf, RK_DEC_BASE, rk.slice().reverse());
  }

  /** CBC-encrypts `plaintext` under `iv`, PKCS#7-padding it unless `{ padding: "none" }`. */
  encrypt(iv: Uint8Array, plaintext: Uint8Array, options: Sm4PaddingOptions = {}): Uint8Array {
    checkIv(iv);
    const src = options.padding === "none" ? requireWholeBlocks(plaintext, "sm4-cbc") : pkcs7Pad(plaintext);
    return this.#run(iv, src, true);
  }

  /** CBC-decrypts `ciphertext` under `iv` and removes PKCS#7 padding unless `{ padding: "none" }`. */
  decrypt(iv: Uint8Array, ciphertext: Uint8Array, options: Sm4PaddingOptions = {}): Uint8Array {
    checkIv(iv);
    const pad = options.padding !== "none";
    requireWholeBlocks(ciphertext, "sm4-cbc", pad);
    const simd = this.#simdDecrypter();
    const out = simd === null ? this.#run(iv, ciphertext, false) : simd.decryptCbc(iv, ciphertext);
    return pad ? pkcs7Unpad(out, "sm4-cbc") : out;
  }

  /**
   * CBC decryption is parallel, so it goes to the SIMD kernel when the runtime has one (about 1.9× the scalar
   * kernel), built on first use: 128 KiB more per key, only for keys that decrypt.
   */
  #simdDecrypter(): Sm4Simd | null {
    if (this.#simd === undefined) this.#simd = Sm4Simd.available() ? new Sm4Simd(this.#key) : null;
    return this.#simd;
  }

  #run(iv: Uint8Array, src: Uint8Array, encrypt: boolean): Uint8Array {
    const mem = this.#mem, k = this.#k, n = src.length, out = new Uint8Array(n);
    mem.set(iv, CBC_IV_BASE);
    for (let i = 0; i < n; i += IO_SIZE) {
      const m = Math.min(IO_SIZE, n - i);
      mem.set(src.subarray(i, i + m), CCM_IO_BASE);
      if (encrypt) k.cbcEncrypt(CCM_IO_BASE, m >>> 4);
      else k.cbcDecrypt(CCM_IO_BASE, m >>> 4);
      out.set(mem.subarray(CCM_IO_BASE, CCM_IO_BASE + m), i);
    }
    return out;
  }
}

function checkIv(iv: Uint8Array): void {
  if (!(iv instanceof Uint8Array) || iv.length !== BLOCK_SIZE) {
    throw new RangeError(`sm4-cbc: iv must be ${BLOCK_SIZE} bytes`);
  }
}
