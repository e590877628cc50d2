/**
 * Raw SM4 block modes and GHASH on the WebAssembly SIMD kernel (`_sm4_simd_module.ts`): ECB both ways, GCM-style CTR
 * (12-byte nonce, 32-bit block counter) and CBC decryption, all over whole blocks and without padding. These are
 * the parallel modes, where the SIMD kernel runs sixteen blocks at once (about 500 MB/s per CPU second against
 * about 250 MB/s for the scalar T-table kernel). `Sm4CbcWasm` decrypts through it; the padded, user-facing modes
 * stay in `../sm4.ts`, `../sm4_cbc.ts` and `../sm4_ctr.ts`.
 *
 * @example
 * ```ts
 * import { Sm4Simd } from "./sm4_simd.ts";
 * if (Sm4Simd.available()) {
 *   const sm4 = new Sm4Simd(new Uint8Array(16));
 *   const block = sm4.decryptEcb(sm4.encryptEcb(new Uint8Array(16)));
 * }
 * ```
 *
 * @module
 */

import { BLOCK_SIZE, expandKey } from "../_sm4_core.ts";
import { CTR_BASE, IO_BASE, IO_SIZE, Y_BASE } from "./_sm4_wasm_module.ts";
import {
  SIMD_CBC_IV_BASE,
  SIMD_H_BASE,
  SIMD_RK_BASE,
  SIMD_RK_DEC_BASE,
  sm4SimdModule,
  storeSimdRoundKeys,
} from "./_sm4_simd_module.ts";

/** A new instance of the SIMD kernel (its own memory); a `RangeError` naming `what` when there is no SIMD. */
function simdInstance(what: string): { exports: WebAssembly.Exports; buf: WebAssembly.Memory["buffer"] } {
  const module = sm4SimdModule();
  if (module === null) throw new RangeError(`${what}: WebAssembly SIMD is not available`);
  const inst = new WebAssembly.Instance(module);
  return { exports: inst.exports, buf: (inst.exports.mem as WebAssembly.Memory).buffer };
}

interface Kernel {
  ecb(ptr: number, blocks: number, rk: number): void;
  ctr(ptr: number, blocks: number): void;
  cbcDecrypt(ptr: number, blocks: number): void;
}

/**
 * SM4 for one key on the SIMD kernel: one WebAssembly instance (128 KiB, most of it the I/O area and a GHASH
 * table this class leaves unused) per key, both key schedules. Inputs must be whole blocks (`RangeError`
 * otherwise); `out`, when given, must be at least as long as the input and may be the input itself.
 * The constructor throws a `RangeError` when the runtime has no WebAssembly SIMD ({@link Sm4Simd.available}).
 */
export class Sm4Simd {
  readonly #k: Kernel;
  readonly #mem: Uint8Array;
  readonly #dv: DataView;

  /** Whether this runtime can run the SIMD kernel. */
  static available(): boolean {
    return sm4SimdModule() !== null;
  }

  /** Expands a 16-byte key (both directions) into a new instance. */
  constructor(key: Uint8Array) {
    const rk = expandKey(key, false);
    const { exports, buf } = simdInstance("sm4 simd");
    this.#k = exports as unknown as Kernel;
    this.#mem = new Uint8Array(buf);
    this.#dv = new DataView(buf);
    storeSimdRoundKeys(buf, SIMD_RK_BASE, rk);
    storeSimdRoundKeys(buf, SIMD_RK_DEC_BASE, rk.slice().reverse());
  }

  /** ECB-encrypts whole blocks. */
  encryptEcb(src: Uint8Array, out: Uint8Array = new Uint8Array(src.length)): Uint8Array {
    return this.#run(src, out, "ecb", (p, b) => this.#k.ecb(p, b, SIMD_RK_BASE));
  }

  /** ECB-decrypts whole blocks. */
  decryptEcb(src: Uint8Array, out: Uint8Array = new Uint8Array(src.length)): Uint8Array {
    return this.#run(src, out, "ecb", (p, b) => this.#k.ecb(p, b, SIMD_RK_DEC_BASE));
  }

  /**
   * XORs whole blocks with the keystream E(nonce ‖ counter), E(nonce ‖ counter + 1), … (the counter a 32-bit
   * big-endian word that wraps, as in GCM); returns `out`.
   */
  ctr32(nonce: Uint8Array, counter: number, src: Uint8Array, out: Uint8Array = new Uint8Array(src.length)): Uint8Array {
    if (!(nonce instanceof Uint8Array) || nonce.length !== 12) throw new RangeError("sm4 simd: nonce must be 12 bytes");
    this.#mem.set(nonce, CTR_BASE);
    this.#dv.setInt32(CTR_BASE + 12, counter | 0, true);
    return this.#run(src, out, "ctr", (p, b) => this.#k.ctr(p, b));
  }

  /** CBC-decrypts whole blocks under a 16-byte `iv`; returns `out`. */
  decryptCbc(iv: Uint8Array, src: Uint8Array, out: Uint8Array = new Uint8Array(src.length)): Uint8Array {
    if (!(iv instanceof Uint8Array) || iv.length !== BLOCK_SIZE) throw new RangeError("sm4 simd: iv must be 16 bytes");
    this.#mem.set(iv, SIMD_CBC_IV_BASE);
    return this.#run(src, out, "cbc", (p, b) => this.#k.cbcDecrypt(p, b));
  }

  #run(src: Uint8Array, out: Uint8Array, what: string, f: (ptr: number, blocks: number) => void): Uint8Array {
    const n = src.length, mem = this.#mem;
    if (n % BLOCK_SIZE !== 0) throw new RangeError(`sm4 simd ${what}: input must be whole 16-byte blocks, got ${n}`);
    if (out.length < n) throw new RangeError(`sm4 simd ${what}: output too small: need ${n} bytes, have ${out.length}`);
    for (let i = 0; i < n; i += IO_SIZE) {
      const m = Math.min(IO_SIZE, n - i);
      mem.set(src.subarray(i, i + m), IO_BASE);
      f(IO_BASE, m >>> 4);
      out.set(mem.subarray(IO_BASE, IO_BASE + m), i);
    }
    return out;
  }
}

interface GhashKernel {
  ghash(ptr: number, blocks: number): void;
}

/**
 * GHASH (NIST SP 800-38D) on the SIMD kernel's v128 table code: one 64 KiB table per hash key H, and one
 * `v128.load` + `v128.xor` per byte (about 1.1 GB/s per CPU second). For GMAC-style uses and for measuring the
 * GHASH half of SM4-GCM on its own; `Sm4GcmWasm` runs the same code fused with CTR.
 */
export class GhashSimd {
  readonly #k: GhashKernel;
  readonly #mem: Uint8Array;

  /** Builds the table for the 16-byte hash key `h` (for GCM, E_K(0^128)); Y starts at zero. */
  constructor(h: Uint8Array) {
    if (!(h instanceof Uint8Array) || h.length !== BLOCK_SIZE) throw new RangeError("ghash: key must be 16 bytes");
    const { exports, buf } = simdInstance("ghash");
    this.#k = exports as unknown as GhashKernel;
    this.#mem = new Uint8Array(buf);
    this.#mem.set(h, SIMD_H_BASE);
    (exports as unknown as { initH(): void }).initH();
  }

  /** Folds `data` into Y, zero-padding its last block (so, as in GCM, each call starts a new block). */
  update(data: Uint8Array): this {
    const mem = this.#mem;
    for (let i = 0; i < data.length; i += IO_SIZE) {
      const m = Math.min(IO_SIZE, data.length - i), blocks = (m + 15) >>> 4;
      mem.set(data.subarray(i, i + m), IO_BASE);
      mem.fill(0, IO_BASE + m, IO_BASE + 16 * blocks);
      this.#k.ghash(IO_BASE, blocks);
    }
    return this;
  }

  /** The current Y (16 bytes, a copy). */
  digest(): Uint8Array {
    return this.#mem.slice(Y_BASE, Y_BASE + 16);
  }
}
