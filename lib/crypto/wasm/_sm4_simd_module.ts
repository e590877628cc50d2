/**
 * A hand-assembled WebAssembly SIMD module for SM4-GCM, SM4-CTR, SM4-ECB and SM4-CBC decryption, emitted as bytes
 * by the assembler below when first asked for (no toolchain, nothing generated to commit: this file is the source).
 *
 * ## SM4 on v128
 *
 * Four blocks share a vector: lane b of state vector X_j holds word j of block b as a number (big-endian words are
 * byte-swapped on the way in and out), so a round is the same handful of vector operations for all four blocks, and
 * three or four such vectors are interleaved so the CPU has independent work while one S-box chain waits.
 *
 * The S-box is computed, not looked up in memory (so it is constant-time, and needs no tables in cache): SM4's
 * S(x) = A·inv(A·x ⊕ 0xD3) ⊕ 0xD3 in GF(2^8) mod x^8+x^7+x^6+x^5+x^4+x^2+1, with A the circulant matrix that XORs
 * x rotated by 0, 1, 3, 6 and 7 bits (GB/T 32907; checked against the S-box table below). GF(2^8) is mapped to the
 * tower field GF(16)[t]/(t² + t + μ), where an inverse needs only GF(16) inverses and divisions of one nibble by a
 * constant, i.e. 16-entry tables, i.e. `i8x16.swizzle` — Hamburg's vector-permute inversion ("vpaes"): with the
 * input nibbles i, k and j = i ⊕ k,
 *
 *     iak = 1/i ⊕ a/k,  jak = 1/j ⊕ a/k,  io = 1/iak ⊕ j,  jo = 1/jak ⊕ i
 *
 * and x⁻¹ is a GF(2)-linear function of 1/io and 1/jo separately, so the output affine map, the inverse field
 * isomorphism and those last inversions fold into two 16-entry output tables; the input affine map and the field
 * isomorphism fold into four input tables (two per nibble of the result). Entries of 0x80 stand for 1/0: a
 * swizzle index with the top bit set yields 0, which makes the zero cases come out right. All tables are derived
 * numerically below at module-build time and the composition is checked against the reference S-box for all 256
 * inputs before any code is emitted.
 *
 * L(B) = B ⊕ (B ⋘ 2) ⊕ (B ⋘ 10) ⊕ (B ⋘ 18) ⊕ (B ⋘ 24) = B ⊕ (B ⋘ 24) ⊕ ((B ⊕ (B ⋘ 8) ⊕ (B ⋘ 16)) ⋘ 2): three
 * byte rotations by shuffle and one shift pair.
 *
 * ## GHASH on v128
 *
 * The 64 KiB per-key table of `_sm4_ghash.ts` (16 byte positions × 256 values, rows already reduced): Y·H is the
 * XOR of 16 rows, one `v128.load` + `v128.xor` per byte of Y ⊕ C.
 *
 * ## Memory (two 64 KiB pages per instance, one instance per key)
 *
 * The layout is the scalar GCM module's (`_sm4_wasm_module.ts`), so `Sm4GcmWasm` drives either module the same way,
 * except that round keys are stored as plain numbers (native byte order) and the first 4 KiB hold the S-box
 * constants instead of T-tables:
 *
 * | offset | size  | contents                                                                       |
 * |--------|-------|--------------------------------------------------------------------------------|
 * | 0      | 256   | S-box nibble tables, byte-rotation and GHASH offset vectors (data segment)        |
 * | 4096   | 128   | round keys, native i32, with the S-box constant folded in (storeSimdRoundKeys)  |
 * | 4224   | 16    | counter block: 12 nonce bytes, then the low counter word as a plain i32        |
 * | 4240   | 16    | GHASH state Y (memory order)                                                    |
 * | 4256   | 32    | GHASH scratch (16-bit row offsets)                                              |
 * | 4288   | 64    | keystream / output scratch for partial groups                                   |
 * | 4352   | 16    | CBC chaining value                                                              |
 * | 4384   | 128   | decryption round keys (encryption keys reversed), like the encryption keys      |
 * | 4512   | 16    | zero-padded last block in `finish`                                              |
 * | 4528   | 16    | tag left by `finish` / `record`                                                 |
 * | 4544   | 128   | keystream blocks of `finish` (the last is E(J0))                                |
 * | 7936   | 192   | zeros (GHASH input of the first sealing iteration)                              |
 * | 8192   | 65536 | GHASH table                                                                     |
 * | 73728  | 57344 | I/O area and 64 bytes of scratch                                                |
 *
 * Exports: `mem`; `gcm(ptr, blocks, sealing)`, `ghash(ptr, blocks)`, `block(ptr)` as in the scalar module;
 * `record(aadPtr, aadBytes, ptr, bytes, sealing)` — a whole GCM record in one call (AAD, CTR + GHASH, the partial
 * block, the length block, the tag) and `finish(...)`, its last step;
 * `ctr(ptr, blocks)` — the GCM keystream (counter from memory, post-incremented) XORed in place, no GHASH;
 * `ecb(ptr, blocks, rk)` — encrypts blocks in place with the round keys at byte offset `rk`;
 * `cbcDecrypt(ptr, blocks)` — in place, with the decryption keys and the chaining value in memory.
 *
 * ## Measured (Deno 2.9.6, AMD EPYC, MB/s per CPU second, 16 KiB)
 *
 * SM4-GCM seal/open through `Sm4GcmWasm` about 390 (scalar module 164, TypeScript 125); the kernel's CTR and ECB
 * about 500 (scalar about 250), GHASH alone about 1,100. What was tried: four-block groups interleaved 1/2/3/4 ways
 * gave CTR 250/350/460/500 (one group is latency-bound; four spill more registers); byte rotations as swizzles by
 * constants in registers instead of immediate shuffles (V8 rebuilds a shuffle's constant each time); GHASH
 * pipelined into the rounds 340 -> 380 for the kernel; L with one operation fewer (below) 386 -> 410; the S-box
 * constant folded into the round keys, 3%; GHASH row offsets as 16-bit lanes with one static offset
 * (V8 bounds-checks every dynamic load here, and then shares the limit); a balanced XOR tree for the 16 rows and
 * `i8x16.extract_lane` instead of scratch memory made no difference, nor did sharing x2 ⊕ x3 between rounds.
 * Where the time goes: about 40 vector instructions per four blocks per round (11 swizzles for the S-box, 3 for
 * L), plus spills; GHASH costs 5 instructions per byte (one bounds check each) and, pipelined, about 20% of GCM.
 *
 * Private to `lib/crypto/wasm/`.
 *
 * @module
 */

import { SBOX } from "../_sm4_core.ts";
import { Asm as ScalarAsm, name, section, uleb, vec } from "./_sm4_wasm_module.ts";
import { CTR_BASE, GH_BASE, RK_BASE, Y_BASE } from "./_sm4_wasm_module.ts";

/** Byte offset of the GHASH scratch block. */
const GH_SCRATCH = 4256;
/** Byte offset of the 64-byte scratch for partial groups. */
const KS_SCRATCH = 4288;
/** Byte offset of the zero-padded last block in `finish`. */
const GH_PAD = 4512;
/** Byte offset where `finish` and `record` leave the tag. */
export const SIMD_TAG_BASE = 4528;
/** Byte offset of the eight keystream blocks of `finish` (the last is E(J0)). */
const FIN_KS = 4544;
/** Byte offset where `initH` reads the hash key H. */
export const SIMD_H_BASE = 4672;
/** Function indices (the order of the code section). */
const FN_GCM = 0, FN_GHASH = 1, FN_FINISH = 6;
/** Byte offset of 256 bytes that stay zero (GHASH input for the first sealing iteration). */
const ZERO_BASE = 7936;
/** Byte offset of the CBC chaining value. */
export const SIMD_CBC_IV_BASE = 4352;
/** Byte offset of the decryption round keys. */
export const SIMD_RK_DEC_BASE = 4384;
/** Byte offset of the encryption round keys (as in the scalar module). */
export const SIMD_RK_BASE = RK_BASE;

/**
 * Four-block groups interleaved in the main loops. CTR measured 250, 350, 460 and 500 MB/s for 1, 2, 3 and 4;
 * GCM (with GHASH pipelined in) 410 for 3 and 385 for 4.
 */
const BLOCK_GROUPS = 4, GCM_GROUPS = 3;

// ---------------------------------------------------------------------------------------------------------------
// S-box tables.

function gmul(a: number, b: number, poly: number, bits: number): number {
  let r = 0;
  for (let i = 0; i < bits; i++) {
    if ((b >> i) & 1) r ^= a;
    a <<= 1;
    if (a >> bits) a ^= poly;
  }
  return r;
}

const m16 = (a: number, b: number) => gmul(a, b, 0x13, 4);

function inv16(a: number): number {
  for (let b = 1; b < 16; b++) if (m16(a, b) === 1) return b;
  return 0;
}

/** The SM4 S-box's affine matrix A: x ⊕ (x ⋘ 1) ⊕ (x ⋘ 3) ⊕ (x ⋘ 6) ⊕ (x ⋘ 7) on bytes. */
function affineA(x: number): number {
  let y = 0;
  for (let k = 0; k < 8; k++) if ((0xcb >> k) & 1) y ^= ((x << k) | (x >>> (8 - k))) & 255;
  return y;
}

/** The nibble tables of the vector-permute S-box, in the order of {@link C}. */
interface SboxTables {
  ikl: number[];
  ikh: number[];
  iil: number[];
  iih: number[];
  ak: number[];
  inv: number[];
  o1: number[];
  o2: number[];
}

/** Evaluates the swizzle pipeline on one byte exactly as the kernel does (indices ≥ 16 give 0). */
function sboxByTables(t: SboxTables, x: number): number {
  const s = (tab: number[], i: number) => (i < 16 ? tab[i]! : 0);
  const lo = x & 15, hi = x >> 4;
  const k = s(t.ikl, lo) ^ s(t.ikh, hi), i = s(t.iil, lo) ^ s(t.iih, hi);
  const ak = s(t.ak, k), j = i ^ k;
  const io = s(t.inv, s(t.inv, i) ^ ak) ^ j, jo = s(t.inv, s(t.inv, j) ^ ak) ^ i;
  return s(t.o1, io) ^ s(t.o2, jo) ^ 0xd3; // the kernel leaves 0xd3 to the round keys: see simdRoundKeys
}

/**
 * Derives the tables: picks μ with t² + t + μ irreducible over GF(16) (mod x^4 + x + 1), finds a root β of SM4's
 * field polynomial in the tower field (the isomorphism maps x^n to β^n), folds the maps, and checks the result
 * against {@link SBOX} for every input. Throws if no choice passes (it cannot, short of a bug).
 */
export function deriveSboxTables(): SboxTables {
  for (let mu = 2; mu < 16; mu++) {
    let reducible = false;
    for (let t = 0; t < 16; t++) if ((m16(t, t) ^ t ^ mu) === 0) reducible = true;
    if (reducible) continue;
    // Tower elements as bytes c0 | c1 << 4 meaning c0 + c1·t.
    const tmul = (x: number, y: number) => {
      const c0 = x & 15, c1 = x >> 4, d0 = y & 15, d1 = y >> 4, e = m16(c1, d1);
      return (m16(c0, d0) ^ m16(mu, e)) | ((m16(c0, d1) ^ m16(c1, d0) ^ e) << 4);
    };
    for (let beta = 2; beta < 256; beta++) {
      const p = [1];
      for (let n = 1; n <= 8; n++) p.push(tmul(p[n - 1]!, beta));
      if ((p[8]! ^ p[7]! ^ p[6]! ^ p[5]! ^ p[4]! ^ p[2]! ^ p[0]!) !== 0) continue;
      const phi = (v: number) => {
        let y = 0;
        for (let n = 0; n < 8; n++) if ((v >> n) & 1) y ^= p[n]!;
        return y;
      };
      const phiInv = new Array<number>(256).fill(-1);
      for (let v = 0; v < 256; v++) phiInv[phi(v)] = v;
      if (phiInv.includes(-1)) continue;
      // Input byte x becomes the tower element k + (a·i)·t with a = 1/μ; see the module doc.
      const a = inv16(mu), ia = inv16(a);
      const t: SboxTables = { ikl: [], ikh: [], iil: [], iih: [], ak: [], inv: [], o1: [], o2: [] };
      const cst = phi(0xd3);
      for (let n = 0; n < 16; n++) {
        const ul = phi(affineA(n)), uh = phi(affineA(n << 4)) ^ cst;
        t.ikl.push(ul & 15);
        t.iil.push(m16(ul >> 4, ia));
        t.ikh.push(uh & 15);
        t.iih.push(m16(uh >> 4, ia));
      }
      // x⁻¹ = (1/io)·(1 + ((1+a)/a)·t) + (1/jo)·(t/a).
      const e1 = 1 | (m16(1 ^ a, ia) << 4), e2 = ia << 4;
      for (let v = 0; v < 16; v++) {
        t.inv.push(v === 0 ? 0x80 : inv16(v));
        t.ak.push(v === 0 ? 0x80 : m16(a, inv16(v)));
        t.o1.push(affineA(phiInv[tmul(inv16(v), e1)]!));
        t.o2.push(affineA(phiInv[tmul(inv16(v), e2)]!));
      }
      let ok = true;
      for (let x = 0; x < 256 && ok; x++) ok = sboxByTables(t, x) === SBOX[x];
      if (ok) return t;
    }
  }
  throw new Error("sm4 simd: no tower-field S-box decomposition matched the S-box table");
}

// ---------------------------------------------------------------------------------------------------------------
// Constants in memory (data segment at offset 0).

/** Offsets of the constant vectors. */
const C = {
  m0f: 0,
  ikl: 16,
  ikh: 32,
  iil: 48,
  iih: 64,
  ak: 80,
  inv: 96,
  o1: 112,
  o2: 128,
  d3: 144,
  lanes: 160,
  rot8: 176,
  rot16: 192,
  rot24: 208,
  ghLo: 224,
  ghHi: 240,
} as const;

function constants(t: SboxTables): number[] {
  const out = new Array<number>(256).fill(0);
  const put = (at: number, bytes: number[]) => bytes.forEach((b, i) => out[at + i] = b);
  put(C.m0f, new Array(16).fill(0x0f));
  put(C.ikl, t.ikl);
  put(C.ikh, t.ikh);
  put(C.iil, t.iil);
  put(C.iih, t.iih);
  put(C.ak, t.ak);
  put(C.inv, t.inv);
  put(C.o1, t.o1);
  put(C.o2, t.o2);
  put(C.d3, new Array(16).fill(0xd3));
  put(C.lanes, [0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]);
  const perm = (p: readonly number[]) => Array.from({ length: 16 }, (_, i) => (i & ~3) + p[i & 3]!);
  put(C.rot8, perm(ROTL8));
  put(C.rot16, perm(ROTL16));
  put(C.rot24, perm(ROTL24));
  for (let p = 0; p < 16; p++) put(p < 8 ? C.ghLo + 2 * p : C.ghHi + 2 * (p - 8), [0, 16 * p]);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Assembler.

const I32 = 0x7f, V128 = 0x7b;
const IF = 0x04, ELSE = 0x05, END = 0x0b, CALL = 0x10, BLOCK = 0x02, LOOP = 0x03, VOID = 0x40, BR = 0x0c, BR_IF = 0x0d;
const I32_XOR = 0x73, I32_ADD = 0x6a, I32_SUB = 0x6b, I32_SHL = 0x74, I32_LT_U = 0x49, I32_EQZ = 0x45;

/** SIMD opcodes (after the 0xFD prefix). */
const V = {
  load: 0x00,
  load32Splat: 0x09,
  store: 0x0b,
  shuffle: 0x0d,
  swizzle: 0x0e,
  i32x4Splat: 0x11,
  i32x4Extract: 0x1b,
  i32x4Replace: 0x1c,
  and: 0x4e,
  xor: 0x51,
  bitselect: 0x52,
  i32x4Shl: 0xab,
  i32x4ShrU: 0xad,
  i32x4Add: 0xae,
  extendLowU: 0x89,
  extendHighU: 0x8a,
  i16x8Shl: 0x8b,
  i16x8Add: 0x8e,
  or: 0x50,
  i64x2Shl: 0xcb,
  i64x2ShrS: 0xcc,
  i64x2ShrU: 0xcd,
  relaxedSwizzle: 0x100,
} as const;

/** The scalar assembler with the SIMD opcodes and the narrow loads and stores. */
class Asm extends ScalarAsm {
  v(op: number): this {
    this.code.push(0xfd, ...uleb(op));
    return this;
  }
  /** v128.load with a constant offset from the i32 address on the stack. */
  vload(off: number): this {
    return this.v(V.load).op(0, ...uleb(off));
  }
  vstore(off: number): this {
    return this.v(V.store).op(0, ...uleb(off));
  }
  load8u(off: number): this {
    return this.op(0x2d, 0, ...uleb(off));
  }
  store8(off: number): this {
    return this.op(0x3a, 0, ...uleb(off));
  }
  load16u(off: number): this {
    return this.op(0x2f, 1, ...uleb(off));
  }
  v128const0(): this {
    return this.v(0x0c).op(...new Array(16).fill(0));
  }
  shuffle(lanes: readonly number[]): this {
    return this.v(V.shuffle).op(...lanes);
  }
  /** Bytes of a lane rotated: within each 32-bit lane, output byte n = input byte perm[n]. */
  lanePerm(perm: readonly number[]): this {
    const lanes: number[] = [];
    for (let l = 0; l < 4; l++) for (let n = 0; n < 4; n++) lanes.push(4 * l + perm[n]!);
    return this.shuffle(lanes);
  }
}

/** Within-lane byte permutations (little-endian lanes: byte 0 is the least significant). */
const ROTL8 = [3, 0, 1, 2], ROTL16 = [2, 3, 0, 1], ROTL24 = [1, 2, 3, 0], BSWAP = [3, 2, 1, 0];

/** Local allocation: i32 locals first (after the params), then v128 locals. */
class Locals {
  #i32 = 0;
  #v128 = 0;
  readonly #params: number;
  readonly #maxI32: number;
  constructor(params: number, maxI32: number) {
    this.#params = params;
    this.#maxI32 = maxI32;
  }
  i32(): number {
    if (this.#i32 >= this.#maxI32) throw new Error("sm4 simd: too many i32 locals");
    return this.#params + this.#i32++;
  }
  v128(): number {
    return this.#params + this.#maxI32 + this.#v128++;
  }
  decl(): number[] {
    return vec([[...uleb(this.#maxI32), I32], [...uleb(this.#v128), V128]]);
  }
}

/** The S-box constants held in locals for a function's lifetime. */
interface Consts {
  m0f: number;
  ikl: number;
  ikh: number;
  iil: number;
  iih: number;
  ak: number;
  inv: number;
  o1: number;
  o2: number;
  rot8: number;
  rot16: number;
  rot24: number;
}

function loadConsts(a: Asm, l: Locals): Consts {
  const c = {} as Record<keyof Consts, number>;
  const keys = ["m0f", "ikl", "ikh", "iil", "iih", "ak", "inv", "o1", "o2", "rot8", "rot16", "rot24"] as const;
  for (const key of keys) {
    c[key] = l.v128();
    a.k(0).vload(C[key]).set(c[key]);
  }
  return c;
}

/** Scratch locals for one group's round. */
interface Tmp {
  t: number;
  lo: number;
  hi: number;
  k: number;
  i: number;
  j: number;
  ak: number;
  s: number;
  u: number;
}

function tmps(l: Locals): Tmp {
  return {
    t: l.v128(),
    lo: l.v128(),
    hi: l.v128(),
    k: l.v128(),
    i: l.v128(),
    j: l.v128(),
    ak: l.v128(),
    s: l.v128(),
    u: l.v128(),
  };
}

/**
 * Emits the 32 rounds over `x.length` four-block groups; x[g][j] are the state locals. The round key for round r
 * is splatted from the i32 address pushed by `rkAddr` plus offset 4r. Afterwards block output words 0..3 are in
 * x[g][3], x[g][2], x[g][1], x[g][0].
 */
function rounds(
  a: Asm,
  x: number[][],
  c: Consts,
  tmp: Tmp[],
  rk: number,
  rkAddr: (a: Asm) => void,
  swz: number,
  between: (r: number) => void = () => {},
) {
  const sw = (tab: number, idx: number) => a.get(tab).get(idx).v(swz);
  for (let r = 0; r < 32; r++) {
    between(r);
    const p = r % 4;
    rkAddr(a);
    a.v(V.load32Splat).op(2, ...uleb(4 * r)).set(rk);
    for (let g = 0; g < x.length; g++) {
      const X = x[g]!, T = tmp[g]!;
      a.get(X[(p + 1) % 4]!).get(X[(p + 2) % 4]!).v(V.xor).get(X[(p + 3) % 4]!).v(V.xor).get(rk).v(V.xor).set(T.t);
      a.get(T.t).get(c.m0f).v(V.and).set(T.lo);
      a.get(T.t).k(4).v(V.i32x4ShrU).get(c.m0f).v(V.and).set(T.hi);
      sw(c.ikl, T.lo), sw(c.ikh, T.hi), a.v(V.xor).set(T.k);
      sw(c.iil, T.lo), sw(c.iih, T.hi), a.v(V.xor).set(T.i);
      sw(c.ak, T.k), a.set(T.ak);
      a.get(T.i).get(T.k).v(V.xor).set(T.j);
      // io = 1/(1/i ^ a/k) ^ j, into lo; jo = 1/(1/j ^ a/k) ^ i, into hi.
      a.get(c.inv);
      sw(c.inv, T.i), a.get(T.ak).v(V.xor).v(swz).get(T.j).v(V.xor).set(T.lo);
      a.get(c.inv);
      sw(c.inv, T.j), a.get(T.ak).v(V.xor).v(swz).get(T.i).v(V.xor).set(T.hi);
      sw(c.o1, T.lo), sw(c.o2, T.hi), a.v(V.xor).set(T.s);
      // q = s ^ rotl8 s; u = q ^ rotl16 s = s ^ rotl8 s ^ rotl16 s; x_p ^= rotl24 q ^ rotl2 u, since
      // rotl24 q = s ^ rotl24 s. With relaxed SIMD the byte rotations are swizzles by constants in registers (one
      // vpshufb each); shuffles by immediates cost V8 four instructions to build the constant.
      const rot = (v: number, perm: readonly number[], idx: number) => {
        if (swz === V.relaxedSwizzle) a.get(v).get(idx).v(swz);
        else a.get(v).get(v).lanePerm(perm);
      };
      a.get(T.s);
      rot(T.s, ROTL8, c.rot8);
      a.v(V.xor).set(T.t);
      a.get(T.t);
      rot(T.s, ROTL16, c.rot16);
      a.v(V.xor).set(T.u);
      a.get(X[p]!);
      rot(T.t, ROTL24, c.rot24);
      a.v(V.xor);
      a.get(T.u).k(2).v(V.i32x4Shl).v(V.xor).get(T.u).k(30).v(V.i32x4ShrU).v(V.xor).set(X[p]!);
    }
  }
}

/** Byte-swaps each lane of w0..w3 and transposes them in place: afterwards w_b holds block b in memory order. */
function transposeOut(a: Asm, w: number[], t: number[]): void {
  for (const x of w) a.get(x).get(x).lanePerm(BSWAP).set(x);
  transpose(a, w, t);
}

/** 4×4 transpose of 32-bit lanes of w0..w3 in place (t: four scratch locals). */
function transpose(a: Asm, w: number[], t: number[]): void {
  const [w0, w1, w2, w3] = w as [number, number, number, number];
  const [t0, t1, t2, t3] = t as [number, number, number, number];
  const lo32 = [0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23];
  const hi32 = [8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31];
  const lo64 = [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23];
  const hi64 = [8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31];
  a.get(w0).get(w1).shuffle(lo32).set(t0);
  a.get(w0).get(w1).shuffle(hi32).set(t1);
  a.get(w2).get(w3).shuffle(lo32).set(t2);
  a.get(w2).get(w3).shuffle(hi32).set(t3);
  a.get(t0).get(t2).shuffle(lo64).set(w0);
  a.get(t0).get(t2).shuffle(hi64).set(w1);
  a.get(t1).get(t3).shuffle(lo64).set(w2);
  a.get(t1).get(t3).shuffle(hi64).set(w3);
}

/** Loads four blocks from ptr + off into x0..x3 as transposed, byte-swapped words. */
function loadBlocks(a: Asm, ptr: number, off: number, x: number[], t: number[]): void {
  for (let b = 0; b < 4; b++) a.get(ptr).vload(off + 16 * b).set(x[b]!);
  transpose(a, x, t);
  for (const v of x) a.get(v).get(v).lanePerm(BSWAP).set(v);
}

/**
 * Emits Y = (Y ^ block) · H for the block on the stack; `y` is the v128 local holding Y. The 16 row offsets
 * (byte p of Y at row 4096·p + 16·byte) are computed as 16-bit lanes and go through scratch memory, so every row
 * load has the same static offset: V8 (which bounds-checks each dynamic access here) then shares one limit
 * computation among them. About 7% faster than byte loads and scalar shifts.
 */
function ghashStep(a: Asm, y: number): void {
  a.get(y).v(V.xor).set(y);
  a.k(0).get(y).v(V.extendLowU).k(4).v(V.i16x8Shl).k(0).vload(C.ghLo).v(V.i16x8Add).vstore(GH_SCRATCH);
  a.k(0).get(y).v(V.extendHighU).k(4).v(V.i16x8Shl).k(0).vload(C.ghHi).v(V.i16x8Add).vstore(GH_SCRATCH + 16);
  // A balanced XOR tree: the 16 loads are independent, and the chain from the last of them to Y is 4 XORs.
  const row = (p: number) => a.k(0).load16u(GH_SCRATCH + 2 * p).vload(GH_BASE);
  const tree = (from: number, n: number): void => {
    if (n === 1) return void row(from);
    tree(from, n / 2);
    tree(from + n / 2, n / 2);
    a.v(V.xor);
  };
  tree(0, 16);
  a.set(y);
}

function body(l: Locals, a: Asm): number[] {
  a.op(END);
  const b = [...l.decl(), ...a.code];
  return [...uleb(b.length), ...b];
}

type Mode = "gcm" | "ctr";

/**
 * gcm(ptr, blocks, sealing) / ctr(ptr, blocks): counter-mode keystream XORed in place (and, for gcm, GHASH over the
 * ciphertext: the output when sealing, the input when opening).
 */
function ctrFunction(mode: Mode, swz: number): number[] {
  const groups = mode === "gcm" ? GCM_GROUPS : BLOCK_GROUPS;
  const a = new Asm();
  const PTR = 0, N = 1, SEAL = 2;
  const l = new Locals(mode === "gcm" ? 3 : 2, 4);
  const C3 = l.i32(), KP = l.i32(), HP = l.i32(), FIRST = l.i32();
  const c = loadConsts(a, l);
  const x = Array.from({ length: groups }, () => [l.v128(), l.v128(), l.v128(), l.v128()]);
  const tmp = x.map(() => tmps(l));
  const rk = l.v128(), nonce = [l.v128(), l.v128(), l.v128()], y = l.v128(), mask = l.v128();
  const tt = [l.v128(), l.v128(), l.v128(), l.v128()], input = l.v128(), out = l.v128(), ysave = l.v128();
  for (let j = 0; j < 3; j++) a.k(0).v(V.load32Splat).op(2, ...uleb(CTR_BASE + 4 * j)).set(nonce[j]!);
  for (const v of nonce) a.get(v).get(v).lanePerm(BSWAP).set(v);
  a.k(0).load(CTR_BASE + 12).set(C3);
  if (mode === "gcm") {
    a.k(0).vload(Y_BASE).set(y);
    a.k(0).get(SEAL).op(I32_SUB).v(V.i32x4Splat).set(mask);
  }
  const rkAt = (a: Asm) => void a.k(RK_BASE);
  // Lanes: counter + (0, 1, 2, 3).
  const initGroups = (groups: number) => {
    for (let g = 0; g < groups; g++) {
      for (let j = 0; j < 3; j++) a.get(nonce[j]!).set(x[g]![j]!);
      a.get(C3).k(4 * g).op(I32_ADD).v(V.i32x4Splat).k(0).vload(C.lanes).v(V.i32x4Add).set(x[g]![3]!);
    }
  };
  /** XOR one keystream block (on the stack) with the block at ptr + off, store, and hash. */
  const finishBlock = (off: number) => {
    a.set(out);
    a.get(PTR).vload(off).tee(input).get(out).v(V.xor).set(out);
    a.get(PTR).get(out).vstore(off);
    if (mode === "gcm") {
      a.get(out).get(input).get(mask).v(V.bitselect);
      ghashStep(a, y);
    }
  };
  const group = (groups: number) => {
    initGroups(groups);
    rounds(a, x.slice(0, groups), c, tmp.slice(0, groups), rk, rkAt, swz);
    for (let g = 0; g < groups; g++) {
      const w = [x[g]![3]!, x[g]![2]!, x[g]![1]!, x[g]![0]!];
      transposeOut(a, w, tt);
      for (let b = 0; b < 4; b++) a.get(w[b]!), finishBlock(64 * g + 16 * b);
    }
    a.get(PTR).k(64 * groups).op(I32_ADD).set(PTR);
    a.get(C3).k(4 * groups).op(I32_ADD).set(C3);
    a.get(N).k(4 * groups).op(I32_SUB).set(N);
  };
  if (mode === "gcm") {
    // Main loop with GHASH software-pipelined into the rounds, one block every few rounds, so its load-latency
    // chain overlaps the S-box arithmetic instead of following it (GCM 340 -> 390 MB/s). GHASH reads
    // ciphertext from memory at HP: when opening, this group's input (stored over only after the rounds); when
    // sealing, the previous group's output, so the first iteration hashes zero blocks into a zero Y (which
    // leaves it zero) with the real Y set aside, and the last group is hashed after the loop.
    const nb = 4 * groups;
    a.get(SEAL).op(IF, VOID);
    a.get(y).set(ysave).v128const0().set(y).k(ZERO_BASE).set(HP).k(1).set(FIRST);
    a.op(END);
    a.op(BLOCK, VOID, LOOP, VOID);
    a.get(N).k(nb).op(I32_LT_U).op(BR_IF, 1);
    a.get(SEAL).op(I32_EQZ).op(IF, VOID).get(PTR).set(HP).op(END);
    initGroups(groups);
    let hashed = 0;
    rounds(a, x, c, tmp, rk, rkAt, swz, (r) => {
      for (; hashed < Math.floor(((r + 1) * nb) / 32); hashed++) {
        a.get(HP).vload(16 * hashed);
        ghashStep(a, y);
      }
    });
    for (; hashed < nb; hashed++) a.get(HP).vload(16 * hashed), ghashStep(a, y);
    a.get(FIRST).op(IF, VOID).get(ysave).set(y).k(0).set(FIRST).op(END);
    for (let g = 0; g < groups; g++) {
      const w = [x[g]![3]!, x[g]![2]!, x[g]![1]!, x[g]![0]!];
      transposeOut(a, w, tt);
      for (let b = 0; b < 4; b++) {
        a.get(w[b]!).get(PTR).vload(64 * g + 16 * b).v(V.xor).set(out);
        a.get(PTR).get(out).vstore(64 * g + 16 * b);
      }
    }
    a.get(PTR).set(HP);
    a.get(PTR).k(64 * groups).op(I32_ADD).set(PTR);
    a.get(C3).k(4 * groups).op(I32_ADD).set(C3);
    a.get(N).k(4 * groups).op(I32_SUB).set(N);
    a.op(BR, 0, END, END);
    a.get(SEAL).op(IF, VOID);
    a.get(FIRST).op(IF, VOID).get(ysave).set(y).op(ELSE);
    for (let b = 0; b < nb; b++) a.get(HP).vload(16 * b), ghashStep(a, y);
    a.op(END, END);
  }
  for (const n of groups > 1 && mode === "ctr" ? [groups, 1] : [1]) {
    a.op(BLOCK, VOID, LOOP, VOID);
    a.get(N).k(4 * n).op(I32_LT_U).op(BR_IF, 1);
    group(n);
    a.op(BR, 0, END, END);
  }
  // 1..3 blocks left: four keystream blocks into scratch, then block by block.
  a.op(BLOCK, VOID);
  a.get(N).op(I32_EQZ).op(BR_IF, 0);
  initGroups(1);
  rounds(a, x.slice(0, 1), c, tmp.slice(0, 1), rk, rkAt, swz);
  const w = [x[0]![3]!, x[0]![2]!, x[0]![1]!, x[0]![0]!];
  transposeOut(a, w, tt);
  for (let b = 0; b < 4; b++) a.k(0).get(w[b]!).vstore(KS_SCRATCH + 16 * b);
  a.get(C3).get(N).op(I32_ADD).set(C3);
  a.k(KS_SCRATCH).set(KP);
  a.op(LOOP, VOID);
  a.get(KP).vload(0);
  finishBlock(0);
  a.get(PTR).k(16).op(I32_ADD).set(PTR);
  a.get(KP).k(16).op(I32_ADD).set(KP);
  a.get(N).k(1).op(I32_SUB).tee(N).op(BR_IF, 0);
  a.op(END, END);
  a.k(0).get(C3).store(CTR_BASE + 12);
  if (mode === "gcm") a.k(0).get(y).vstore(Y_BASE);
  return body(l, a);
}

/**
 * finish(ptr, bytes, sealing, aadBytes, dataBytes): the end of a record in one call, for `bytes` < 112 left at
 * ptr (up to six whole blocks and a partial one, or seven whole blocks). One two-group SM4 run (no longer than a
 * one-group run: the groups interleave) yields the keystream for counters c .. c + 6 (c from memory) and E(J0)
 * (counter 1); the bytes are XORed, the ciphertext (the
 * last block zero-padded) and the length block are hashed, and the tag Y ⊕ E(J0) is stored at
 * {@link SIMD_TAG_BASE}. Byte counts must be under 2^29 (bit lengths in one word): records, not streams.
 */
function finishFunction(swz: number): number[] {
  const a = new Asm();
  const PTR = 0, BYTES = 1, SEAL = 2, AAD = 3, LEN = 4;
  const l = new Locals(5, 3);
  const I = l.i32(), B = l.i32(), KP = l.i32();
  const c = loadConsts(a, l);
  const x = [0, 1].map(() => [l.v128(), l.v128(), l.v128(), l.v128()]), tmp = x.map(() => tmps(l));
  const rk = l.v128(), y = l.v128();
  const tt = [l.v128(), l.v128(), l.v128(), l.v128()], input = l.v128(), out = l.v128(), mask = l.v128();
  for (let j = 0; j < 3; j++) {
    a.k(0).v(V.load32Splat).op(2, ...uleb(CTR_BASE + 4 * j)).set(x[0]![j]!);
    a.get(x[0]![j]!).get(x[0]![j]!).lanePerm(BSWAP).tee(x[0]![j]!).set(x[1]![j]!);
  }
  // Lanes: counters c .. c + 6, then J0 (counter 1); under 48 bytes one group does (c .. c + 2, J0).
  const w = x.map((g) => [g[3]!, g[2]!, g[1]!, g[0]!]);
  a.get(BYTES).k(48).op(I32_LT_U).op(IF, VOID);
  a.k(0).load(CTR_BASE + 12).v(V.i32x4Splat).k(0).vload(C.lanes).v(V.i32x4Add);
  a.k(1).v(V.i32x4Replace).op(3).set(x[0]![3]!);
  rounds(a, x.slice(0, 1), c, tmp.slice(0, 1), rk, (a) => void a.k(RK_BASE), swz);
  transposeOut(a, w[0]!, tt);
  for (let b = 0; b < 4; b++) a.k(0).get(w[0]![b]!).vstore(FIN_KS + (b === 3 ? 112 : 16 * b));
  a.op(ELSE);
  a.k(0).load(CTR_BASE + 12).v(V.i32x4Splat).k(0).vload(C.lanes).v(V.i32x4Add).set(x[0]![3]!);
  a.k(0).load(CTR_BASE + 12).k(4).op(I32_ADD).v(V.i32x4Splat).k(0).vload(C.lanes).v(V.i32x4Add);
  a.k(1).v(V.i32x4Replace).op(3).set(x[1]![3]!);
  rounds(a, x, c, tmp, rk, (a) => void a.k(RK_BASE), swz);
  for (let g = 0; g < 2; g++) {
    transposeOut(a, w[g]!, tt);
    for (let b = 0; b < 4; b++) a.k(0).get(w[g]![b]!).vstore(FIN_KS + 64 * g + 16 * b);
  }
  a.op(END);
  a.k(0).vload(Y_BASE).set(y);
  a.k(0).get(SEAL).op(I32_SUB).v(V.i32x4Splat).set(mask);
  a.k(FIN_KS).set(KP);
  // Whole blocks.
  a.op(BLOCK, VOID, LOOP, VOID);
  a.get(BYTES).k(16).op(I32_LT_U).op(BR_IF, 1);
  a.get(PTR).vload(0).tee(input).get(KP).vload(0).v(V.xor).set(out);
  a.get(PTR).get(out).vstore(0);
  a.get(out).get(input).get(mask).v(V.bitselect);
  ghashStep(a, y);
  a.get(PTR).k(16).op(I32_ADD).set(PTR);
  a.get(KP).k(16).op(I32_ADD).set(KP);
  a.get(BYTES).k(16).op(I32_SUB).set(BYTES);
  a.op(BR, 0, END, END);
  // Partial block: out = in ^ ks byte by byte; the hashed block is the ciphertext, zero-padded.
  a.get(BYTES).op(IF, VOID);
  a.k(0).v128const0().vstore(GH_PAD);
  a.k(0).set(I);
  a.op(LOOP, VOID);
  a.get(PTR).get(I).op(I32_ADD).load8u(0).set(B);
  a.get(PTR).get(I).op(I32_ADD).get(B).get(KP).get(I).op(I32_ADD).load8u(0).op(I32_XOR).store8(0);
  a.get(I).get(SEAL).op(IF, I32).get(PTR).get(I).op(I32_ADD).load8u(0).op(ELSE).get(B).op(END).store8(GH_PAD);
  a.get(I).k(1).op(I32_ADD).tee(I).get(BYTES).op(I32_LT_U).op(BR_IF, 0);
  a.op(END);
  a.k(0).vload(GH_PAD);
  ghashStep(a, y);
  a.op(END);
  // Length block: bit lengths as big-endian 64-bit numbers (high words zero).
  a.v128const0().get(AAD).k(3).op(I32_SHL).v(V.i32x4Replace).op(1).get(LEN).k(3).op(I32_SHL).v(V.i32x4Replace).op(3);
  a.set(tt[0]!).get(tt[0]!).get(tt[0]!).lanePerm(BSWAP);
  ghashStep(a, y);
  a.k(0).get(y).vstore(Y_BASE);
  a.k(0).get(y).k(0).vload(FIN_KS + 112).v(V.xor).vstore(SIMD_TAG_BASE);
  return body(l, a);
}

/**
 * record(aadPtr, aadBytes, ptr, dataBytes, sealing): a whole GCM record in one crossing, with the counter block
 * (nonce, 2) set in memory and the AAD zero-padded to whole blocks at aadPtr; leaves the tag at
 * {@link SIMD_TAG_BASE}.
 */
function recordFunction(): number[] {
  const a = new Asm();
  const AP = 0, AL = 1, PTR = 2, LEN = 3, SEAL = 4;
  const l = new Locals(5, 1);
  const M = l.i32();
  a.k(0).v128const0().vstore(Y_BASE);
  a.get(AP).get(AL).k(15).op(I32_ADD).k(4).op(0x76).op(CALL, FN_GHASH);
  // Records under 112 bytes go to finish alone (one SM4 run); longer ones leave it the last 0..63 bytes and the
  // kernel loop whole groups of four blocks.
  a.get(LEN).k(-64).op(0x71).set(M);
  a.get(LEN).k(112).op(I32_LT_U).op(IF, VOID).k(0).set(M).op(END);
  a.get(PTR).get(M).k(4).op(0x76).get(SEAL).op(CALL, FN_GCM);
  a.get(PTR).get(M).op(I32_ADD).get(LEN).get(M).op(I32_SUB).get(SEAL).get(AL).get(LEN);
  a.op(CALL, FN_FINISH);
  return body(l, a);
}

/**
 * initH(): builds the 64 KiB GHASH table at GH_BASE from the hash key H (16 bytes, memory order) at
 * {@link SIMD_H_BASE}, as `ghashTable` in `_sm4_ghash.ts` does (and in the same byte order as `storeBigEndian`
 * leaves it): the 128 single-bit rows H·x^k by shift-and-reduce on a byte-reversed (little-endian 128-bit) copy,
 * then every other row of each position as the XOR of two earlier ones. About 10× faster than building it in
 * TypeScript and byte-swapping it in (a third of constructing an `Sm4GcmWasm`).
 */
function initHFunction(): number[] {
  const a = new Asm();
  const l = new Locals(0, 4);
  const P = l.i32(), B = l.i32(), LOW = l.i32(), BASE = l.i32();
  const v = l.v128(), zero = l.v128(), r = l.v128();
  const REV = [15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0];
  a.v128const0().set(zero);
  a.v(0x0c).op(...new Array(15).fill(0), 0xe1).set(r);
  a.k(0).vload(SIMD_H_BASE).set(v).get(v).get(v).shuffle(REV).set(v);
  for (let k = 0; k < 128; k++) {
    a.k(0).get(v).get(v).shuffle(REV).vstore(GH_BASE + 4096 * (k >> 3) + 16 * (0x80 >> (k & 7)));
    if (k === 127) break;
    // v = (v >> 1) ^ (lsb ? R : 0) on the 128-bit little-endian number.
    a.get(v).k(1).v(V.i64x2ShrU);
    a.get(v).get(zero).shuffle([8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23]).k(63).v(V.i64x2Shl);
    a.v(V.or);
    a.get(v).k(63).v(V.i64x2Shl).k(63).v(V.i64x2ShrS).set(v);
    a.get(v).get(v).shuffle([0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7]).get(r).v(V.and).v(V.xor).set(v);
  }
  // Row b = row(lowest bit of b) ^ row(b without it), for b = 3..255 not a power of two, per position.
  a.k(0).set(P);
  a.op(LOOP, VOID);
  a.get(P).k(12).op(I32_SHL).set(BASE);
  a.k(3).set(B);
  a.op(LOOP, VOID);
  a.get(B).k(0).get(B).op(I32_SUB).op(0x71).tee(LOW).get(B).op(0x47).op(IF, VOID);
  a.get(BASE).get(B).k(4).op(I32_SHL).op(I32_ADD);
  a.get(BASE).get(LOW).k(4).op(I32_SHL).op(I32_ADD).vload(GH_BASE);
  a.get(BASE).get(B).get(LOW).op(I32_XOR).k(4).op(I32_SHL).op(I32_ADD).vload(GH_BASE);
  a.v(V.xor).vstore(GH_BASE);
  a.op(END);
  a.get(B).k(1).op(I32_ADD).tee(B).k(256).op(I32_LT_U).op(BR_IF, 0);
  a.op(END);
  a.get(P).k(1).op(I32_ADD).tee(P).k(16).op(I32_LT_U).op(BR_IF, 0);
  a.op(END);
  return body(l, a);
}

/** ghash(ptr, blocks). */
function ghashFunction(): number[] {
  const a = new Asm();
  const PTR = 0, N = 1;
  const l = new Locals(2, 0);
  const y = l.v128();
  a.k(0).vload(Y_BASE).set(y);
  a.op(BLOCK, VOID, LOOP, VOID);
  a.get(N).op(I32_EQZ).op(BR_IF, 1);
  a.get(PTR).vload(0);
  ghashStep(a, y);
  a.get(PTR).k(16).op(I32_ADD).set(PTR);
  a.get(N).k(1).op(I32_SUB).set(N);
  a.op(BR, 0, END, END);
  a.k(0).get(y).vstore(Y_BASE);
  return body(l, a);
}

/** block(ptr): encrypts one block in place (in lane 0 of a four-lane group). */
function blockFunction(swz: number): number[] {
  const a = new Asm();
  const PTR = 0;
  const l = new Locals(1, 0);
  const c = loadConsts(a, l);
  const x = [l.v128(), l.v128(), l.v128(), l.v128()], tmp = tmps(l), rk = l.v128();
  for (let j = 0; j < 4; j++) a.get(PTR).v(V.load32Splat).op(2, ...uleb(4 * j)).set(x[j]!);
  for (const v of x) a.get(v).get(v).lanePerm(BSWAP).set(v);
  rounds(a, [x], c, [tmp], rk, (a) => void a.k(RK_BASE), swz);
  for (let j = 0; j < 4; j++) {
    a.get(PTR).get(x[3 - j]!).get(x[3 - j]!).lanePerm(BSWAP).v(V.i32x4Extract).op(0).store(4 * j);
  }
  return body(l, a);
}

/**
 * ecb(ptr, blocks, rk) and cbcDecrypt(ptr, blocks): whole groups in place; the last 1..3 blocks go through a
 * four-block group that reads up to 48 bytes past them (the I/O area has 64 bytes of slack) and writes via scratch.
 */
function blocksFunction(cbc: boolean, swz: number): number[] {
  const a = new Asm();
  const PTR = 0, N = 1, RK = 2;
  const l = new Locals(cbc ? 2 : 3, 0);
  const c = loadConsts(a, l);
  const x = Array.from({ length: BLOCK_GROUPS }, () => [l.v128(), l.v128(), l.v128(), l.v128()]);
  const tmp = x.map(() => tmps(l));
  const rk = l.v128(), tt = [l.v128(), l.v128(), l.v128(), l.v128()], iv = l.v128(), next = l.v128();
  const slots = Array.from({ length: 4 * BLOCK_GROUPS }, () => l.v128());
  const rkAt = cbc ? (a: Asm) => void a.k(SIMD_RK_DEC_BASE) : (a: Asm) => void a.get(RK);
  if (cbc) a.k(0).vload(SIMD_CBC_IV_BASE).set(iv);
  /** Runs `groups` groups from ptr; `store(g, b)` consumes block b of group g from the stack. */
  const run = (groups: number, store: (g: number, b: number) => void) => {
    for (let g = 0; g < groups; g++) loadBlocks(a, PTR, 64 * g, x[g]!, tt);
    rounds(a, x.slice(0, groups), c, tmp.slice(0, groups), rk, rkAt, swz);
    for (let g = 0; g < groups; g++) {
      const w = [x[g]![3]!, x[g]![2]!, x[g]![1]!, x[g]![0]!];
      transposeOut(a, w, tt);
      for (let b = 0; b < 4; b++) a.get(w[b]!), store(g, b);
    }
  };
  // CBC: plaintext block i = D(c_i) ^ c_{i-1}; every ciphertext block is loaded before any store of the group.
  const cbcXor = (g: number, b: number) => {
    if (!cbc) return;
    if (g === 0 && b === 0) a.get(iv);
    else a.get(PTR).vload(64 * g + 16 * b - 16);
    a.v(V.xor);
  };
  for (const groups of BLOCK_GROUPS > 1 ? [BLOCK_GROUPS, 1] : [1]) {
    a.op(BLOCK, VOID, LOOP, VOID);
    a.get(N).k(4 * groups).op(I32_LT_U).op(BR_IF, 1);
    if (cbc) a.get(PTR).vload(64 * groups - 16).set(next);
    // The CBC XOR reads ciphertext blocks from memory, so every result is stored after the whole group.
    const results: [number, number][] = [];
    run(groups, (g, b) => {
      cbcXor(g, b);
      const slot = slots[4 * g + b]!;
      a.set(slot);
      results.push([64 * g + 16 * b, slot]);
    });
    for (const [off, slot] of results) a.get(PTR).get(slot).vstore(off);
    if (cbc) a.get(next).set(iv);
    a.get(PTR).k(64 * groups).op(I32_ADD).set(PTR);
    a.get(N).k(4 * groups).op(I32_SUB).set(N);
    a.op(BR, 0, END, END);
  }
  a.op(BLOCK, VOID);
  a.get(N).op(I32_EQZ).op(BR_IF, 0);
  // 1..3 blocks: the new chaining value is the last real ciphertext block.
  if (cbc) a.get(PTR).get(N).k(4).op(I32_SHL).op(I32_ADD).k(16).op(I32_SUB).vload(0).set(next);
  run(1, (_g, b) => {
    cbcXor(0, b);
    a.set(tt[0]!);
    a.k(0).get(tt[0]!).vstore(KS_SCRATCH + 16 * b);
  });
  // memory.copy(ptr, scratch, 16 n)
  a.get(PTR).k(KS_SCRATCH).get(N).k(4).op(I32_SHL).op(0xfc, 10, 0, 0);
  if (cbc) a.get(next).set(iv);
  a.op(END);
  if (cbc) a.k(0).get(iv).vstore(SIMD_CBC_IV_BASE);
  return body(l, a);
}

/** The module bytes, using `i8x16.relaxed_swizzle` when `relaxed` (one `pshufb` on x86) or `i8x16.swizzle`. */
export function sm4SimdModuleBytes(relaxed: boolean): Uint8Array<ArrayBuffer> {
  const swz = relaxed ? V.relaxedSwizzle : V.swizzle;
  const t = deriveSboxTables();
  const types = vec([
    [0x60, ...vec([[I32], [I32], [I32]]), 0],
    [0x60, ...vec([[I32], [I32]]), 0],
    [0x60, ...vec([[I32]]), 0],
    [0x60, ...vec([[I32], [I32], [I32], [I32], [I32]]), 0],
    [0x60, 0, 0],
  ]);
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    1,
    0,
    0,
    0,
    ...section(1, types),
    ...section(3, vec([[0], [1], [2], [1], [0], [1], [3], [3], [4]])),
    ...section(5, vec([[0x01, 2, 2]])),
    ...section(
      7,
      vec([
        [...name("mem"), 2, 0],
        [...name("gcm"), 0, 0],
        [...name("ghash"), 0, 1],
        [...name("block"), 0, 2],
        [...name("ctr"), 0, 3],
        [...name("ecb"), 0, 4],
        [...name("cbcDecrypt"), 0, 5],
        [...name("finish"), 0, 6],
        [...name("record"), 0, 7],
        [...name("initH"), 0, 8],
      ]),
    ),
    ...section(
      10,
      vec([
        ctrFunction("gcm", swz),
        ghashFunction(),
        blockFunction(swz),
        ctrFunction("ctr", swz),
        blocksFunction(false, swz),
        blocksFunction(true, swz),
        finishFunction(swz),
        recordFunction(),
        initHFunction(),
      ]),
    ),
    ...section(11, vec([[0, 0x41, 0, END, ...vec(constants(t).map((b) => [b]))]])),
  ]);
}

let compiled: WebAssembly.Module | null | undefined;

/**
 * The compiled SIMD module, or `null` when the runtime has no WebAssembly SIMD. Prefers relaxed SIMD's swizzle
 * (its result for indices ≥ 128 is defined as 0, which is all the S-box relies on; indices 16..127 never occur).
 */
export function sm4SimdModule(): WebAssembly.Module | null {
  if (compiled !== undefined) return compiled;
  compiled = null;
  for (const relaxed of [true, false]) {
    const bytes = sm4SimdModuleBytes(relaxed);
    if (!WebAssembly.validate(bytes)) continue;
    compiled = new WebAssembly.Module(bytes);
    break;
  }
  return compiled;
}

/**
 * Writes the 32 round keys `rk` (encryption or decryption order) at byte offset `at` of wasm memory as the kernel
 * wants them: as wasm i32 values (little-endian), with the S-box's output constant folded in. The kernel's S-box
 * omits the final ⊕ 0xD3; L is linear, so each round's output is off by Λ = L(0xD3D3D3D3). Carrying δ_n (Λ when
 * ⌊n/4⌋ is odd, else 0) on state word n absorbs that: Y_n = X_n ⊕ δ_n satisfies the round recurrence with
 * rk'_n = rk_n ⊕ δ_{n+1} ⊕ δ_{n+2} ⊕ δ_{n+3}, and δ_32..δ_35 = 0, so the output needs no fixing. Saves one
 * vector XOR per round and a register.
 */
export function storeSimdRoundKeys(mem: ArrayBufferLike, at: number, rk: Int32Array): void {
  const rotl = (x: number, n: number) => (x << n) | (x >>> (32 - n));
  const d = 0xd3d3d3d3 | 0, lambda = d ^ rotl(d, 2) ^ rotl(d, 10) ^ rotl(d, 18) ^ rotl(d, 24);
  const delta = (n: number) => ((n >> 2) & 1 ? lambda : 0);
  const dv = new DataView(mem);
  for (let n = 0; n < 32; n++) dv.setInt32(at + 4 * n, rk[n]! ^ delta(n + 1) ^ delta(n + 2) ^ delta(n + 3), true);
}
