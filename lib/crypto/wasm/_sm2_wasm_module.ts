/**
 * A hand-assembled WebAssembly module for SM2's field arithmetic and Jacobian point operations (a = −3), emitted
 * as bytes by the small i64 assembler below when this file is first imported (no toolchain, nothing generated to
 * commit: this file is the source). The drivers (scalar multiplications, conversions) are in `_sm2_wasm.ts`.
 *
 * Field elements are 8 little-endian 32-bit limbs (32 bytes) in Montgomery form (R = 2^256), fully reduced to
 * [0, p). Multiplication is operand scanning on i64 (a 32×32-bit product plus two 32-bit words never overflows
 * 64 bits), and the Montgomery reduction needs no multiplications: SM2's p = 2^256 − 2^224 − 2^96 + 2^64 − 1
 * has −p⁻¹ ≡ 1 (mod 2^32), so each step's m is the low limb itself and m·p is four signed additions of m at
 * fixed limbs. Every function is straight-line code over its operands except the fixed-count loops of
 * `fsqrn` and `lookup`; the final subtractions are masked selects. Nothing here branches on, or indexes memory
 * by, a secret value: `lookup` reads every table entry and keeps the wanted one by mask.
 *
 * Exports (all pointers are byte offsets into `mem`; outputs may alias inputs):
 * - `fmul(r, a, b)`, `fsqr(r, a)`, `fadd(r, a, b)`, `fsub(r, a, b)`, `fsqrn(r, a, n)` (n squarings);
 * - `pdbl(r, p)`: r = 2p for Jacobian p (96 bytes: X, Y, Z) — dbl-2001-b, 3M + 5S;
 * - `padd(r, p, q)`: r = p + q, Jacobian, p ≠ ±q, neither at infinity — add-2007-bl, 11M + 5S;
 * - `pmadd(r, p, q)`: r = p + q for affine q (64 bytes: x, y), p ≠ ±q, p not at infinity — madd-2007-bl, 7M + 4S;
 * - `lookup(dst, table, count, stride, idx)`: copies entry idx (stride 64 or 96 bytes) of a table of `count`
 *   entries to dst, reading all of them; an idx outside [0, count) leaves dst all zero;
 * - `csel(dst, src, len, flag)`: dst = flag ? src : dst over len bytes (a multiple of 8), by mask.
 *
 * Memory: one page at least; the scratch the point functions use is at {@link SM2_SCRATCH} (16 elements);
 * the driver owns everything from {@link SM2_FREE} on.
 *
 * **Two builds.** Where the runtime accepts WebAssembly's wide-arithmetic instructions (`i64.mul_wide_u`,
 * `i64.add128`, `i64.sub128`; V8 behind `--v8-flags=--experimental-wasm-wide-arithmetic`, which `deno task start`,
 * `deno task test` and the compiled binary pass), `fmul` and `fsqr` work on four 64-bit limbs: 16 (a square: 10)
 * + 12 multiplications of 64×64 → 128 bits (Montgomery; the reduction multiplies by p's three upper limbs, as its
 * lowest is −1) instead of 64 (36) of 32×32 → 64 bits and their splitting, and the point formulas' additions and
 * subtractions carry with `add128` / `sub128` over four limbs instead of eight. Measured side by side: `fmul`
 * 36 → 22 ns, a doubling 367 → 215 ns, an addition 640 → 350 ns. The bytes in memory are the same in both builds
 * (32 bytes little-endian, Montgomery form, fully reduced), so the driver does not know which one runs. The wide
 * build is used only after it computes known products correctly ({@link sm2WasmModule}); `FERRY_SM2_WASM=base`
 * forces the other one.
 *
 * @module
 */

import { Asm, name, section, uleb, vec } from "./_sm4_wasm_module.ts";

/** Byte offset of the point functions' scratch elements (16 × 32 bytes). */
export const SM2_SCRATCH = 0;
/** First byte offset the driver may use. */
export const SM2_FREE = 1024;

const I32 = 0x7f, I64 = 0x7e;
const M32 = 0xffffffff;
/** p's limbs, least significant first. */
const P_LIMBS = [M32, M32, 0, M32, M32, M32, M32, 0xfffffffe];

/** Signed LEB128 of a safe integer (i64.const immediates up to 2^53). */
function sleb64(n: bigint): number[] {
  const o: number[] = [];
  for (;;) {
    const b = Number(n & 0x7fn);
    n >>= 7n;
    if ((n === 0n && (b & 0x40) === 0) || (n === -1n && (b & 0x40) !== 0)) {
      o.push(b);
      return o;
    }
    o.push(b | 0x80);
  }
}

/** A function body under construction: the SM4 module's assembler plus the i64 opcodes this module needs. */
class Asm64 extends Asm {
  i32(v: number): this {
    return this.k(v);
  }
  i64(v: bigint | number): this {
    this.code.push(0x42, ...sleb64(BigInt(v)));
    return this;
  }
  /** i64.load32_u at a static offset. */
  ld32(off: number): this {
    this.code.push(0x35, 2, ...uleb(off));
    return this;
  }
  /** i64.store32 at a static offset. */
  st32(off: number): this {
    this.code.push(0x3e, 2, ...uleb(off));
    return this;
  }
  ld64(off: number): this {
    this.code.push(0x29, 3, ...uleb(off));
    return this;
  }
  st64(off: number): this {
    this.code.push(0x37, 3, ...uleb(off));
    return this;
  }
  call(f: number): this {
    this.code.push(0x10, ...uleb(f));
    return this;
  }
}

const ADD64 = 0x7c, SUB64 = 0x7d, MUL64 = 0x7e, AND64 = 0x83, OR64 = 0x84, XOR64 = 0x85;
const SHRS64 = 0x87, SHRU64 = 0x88, EQ32 = 0x46, ADD32 = 0x6a, SUB32 = 0x6b, EQZ32 = 0x45;
const EXTU = 0xad, BR_IF = 0x0d, BR = 0x0c, END = 0x0b, BLOCK = 0x02, LOOP = 0x03;
const VOID = 0x40;

/** A function: its parameter count (all i32), its i64 and i32 locals and its code. */
function body(locals: [number, number][], a: Asm64): number[] {
  const b = [...vec(locals.map(([n, t]) => [...uleb(n), t])), ...a.code, END];
  return [...uleb(b.length), ...b];
}

/**
 * Emits: the value (value limbs in locals v..v+7 plus an extra top word in local `top`, both signed-carry
 * form already normalised to 32-bit limbs) minus p if that is not negative, stored at param `r`. Uses locals
 * d..d+7, c.
 */
function reduceOnceStore(a: Asm64, r: number, v: number, top: number, d: number, c: number): void {
  a.i64(0).set(c);
  for (let k = 0; k < 8; k++) {
    a.get(v + k).i64(P_LIMBS[k]!).op(SUB64).get(c).op(ADD64).tee(d + k).i64(32).op(SHRS64).set(c);
    a.get(d + k).i64(M32).op(AND64).set(d + k);
  }
  // mask = all ones if top + borrow < 0 (the value was below p: keep v), else 0 (take d).
  a.get(top).get(c).op(ADD64).i64(63).op(SHRS64).set(c);
  for (let k = 0; k < 8; k++) {
    a.get(r).get(v + k).get(c).op(AND64).get(d + k).get(c).i64(-1).op(XOR64).op(AND64).op(OR64).st32(4 * k);
  }
}

/**
 * Emits the Montgomery reduction of the column sums in locals t..t+16 (each below 2^40, not carried) and stores
 * the result at param r. Reduction step i takes m = t_i mod 2^32 (t_i includes the carry of step i − 1) and
 * adds m·p·2^(32i) = m·(2^(256+32i) − 2^(224+32i) − 2^(96+32i) + 2^(64+32i) − 2^(32i)) as four signed additions.
 */
function montReduceStore(a: Asm64, r: number, t: number, m: number, d: number, c: number): void {
  for (let i = 0; i < 8; i++) {
    a.get(t + i).i64(M32).op(AND64).set(m);
    a.get(t + i + 1).get(t + i).i64(32).op(SHRS64).op(ADD64).set(t + i + 1);
    a.get(t + i + 2).get(m).op(ADD64).set(t + i + 2);
    a.get(t + i + 3).get(m).op(SUB64).set(t + i + 3);
    a.get(t + i + 7).get(m).op(SUB64).set(t + i + 7);
    a.get(t + i + 8).get(m).op(ADD64).set(t + i + 8);
  }
  // Normalise t_8..t_15 to 32-bit limbs, the carry into t_16 (0 or 1: the result is below 2p).
  for (let k = 8; k < 16; k++) {
    a.get(t + k + 1).get(t + k).i64(32).op(SHRS64).op(ADD64).set(t + k + 1);
    a.get(t + k).i64(M32).op(AND64).set(t + k);
  }
  reduceOnceStore(a, r, t + 8, t + 16, d, c);
}

/**
 * fmul(r, a, b): params 0..2; i64 locals a 3..10, b 11..18, t 19..35, tmp 36, c 37, d 38..45.
 * Product scanning: each 64-bit product's halves go into two column sums, so the 64 products carry no
 * dependency chain between them (measured ~1.5× faster than operand scanning with a carry per product).
 */
function fmulFunction(): number[] {
  const a = new Asm64();
  const R = 0, A = 1, B = 2, AL = 3, BL = 11, T = 19, TMP = 36, C = 37, D = 38;
  for (let i = 0; i < 8; i++) a.get(A).ld32(4 * i).set(AL + i);
  for (let i = 0; i < 8; i++) a.get(B).ld32(4 * i).set(BL + i);
  const seen = new Set<number>();
  const addTo = (k: number) => {
    if (seen.has(k)) a.get(T + k).op(ADD64);
    a.set(T + k);
    seen.add(k);
  };
  for (let k = 0; k < 15; k++) {
    for (let i = Math.max(0, k - 7); i <= Math.min(7, k); i++) {
      a.get(AL + i).get(BL + k - i).op(MUL64).tee(TMP).i64(M32).op(AND64);
      addTo(k);
      a.get(TMP).i64(32).op(SHRU64);
      addTo(k + 1);
    }
  }
  a.i64(0).set(T + 16);
  montReduceStore(a, R, T, TMP, D, C);
  return body([[43, I64]], a);
}

/**
 * fsqr(r, a): params 0..1; i64 locals a 2..9, t 10..26, tmp 27, c 28, d 29..36. The 28 cross products are
 * summed, doubled, then the 8 squares added: 36 multiplications instead of 64.
 */
function fsqrFunction(): number[] {
  const a = new Asm64();
  const R = 0, A = 1, AL = 2, T = 10, TMP = 27, C = 28, D = 29;
  for (let i = 0; i < 8; i++) a.get(A).ld32(4 * i).set(AL + i);
  const seen = new Set<number>();
  const addTo = (k: number) => {
    if (seen.has(k)) a.get(T + k).op(ADD64);
    a.set(T + k);
    seen.add(k);
  };
  for (let i = 0; i < 8; i++) {
    for (let j = i + 1; j < 8; j++) {
      a.get(AL + i).get(AL + j).op(MUL64).tee(TMP).i64(M32).op(AND64);
      addTo(i + j);
      a.get(TMP).i64(32).op(SHRU64);
      addTo(i + j + 1);
    }
  }
  for (let k = 0; k < 17; k++) {
    if (seen.has(k)) a.get(T + k).i64(1).op(0x86 /* i64.shl */).set(T + k);
  }
  for (let i = 0; i < 8; i++) {
    a.get(AL + i).get(AL + i).op(MUL64).tee(TMP).i64(M32).op(AND64);
    addTo(2 * i);
    a.get(TMP).i64(32).op(SHRU64);
    addTo(2 * i + 1);
  }
  for (let k = 0; k < 17; k++) if (!seen.has(k)) a.i64(0).set(T + k);
  montReduceStore(a, R, T, TMP, D, C);
  return body([[35, I64]], a);
}

/** p's 64-bit limbs, least significant first. */
const P64 = [0, 1, 2, 3].map((i) => BigInt(P_LIMBS[2 * i]!) | (BigInt(P_LIMBS[2 * i + 1]!) << 32n));
const MUL_WIDE_U = 0x16, ADD128 = 0x13, SUB128 = 0x14;

/**
 * Emits d = s − p over four 64-bit limbs (locals s..s+3 to d..d+3), leaving the borrow in local `c` as 0 or −1 (the
 * high word of each step: `sub128` of zero-extended limbs, then `add128` of the running borrow sign-extended).
 */
function subtractP(a: Asm64, s: number, d: number, c: number): void {
  a.i64(0).set(c);
  for (let j = 0; j < 4; j++) {
    a.get(s + j).i64(0).i64(BigInt.asIntN(64, P64[j]!)).i64(0).op(0xfc, SUB128);
    a.get(c).get(c).op(0xfc, ADD128);
    a.set(c).set(d + j);
  }
}

/**
 * The wide build's fmul(r, a, b): CIOS Montgomery multiplication on four 64-bit limbs. Params 0..2; i64 locals
 * a 4, b 4, t 6, carry, m, d 4 (d: t − p for the final subtraction).
 *
 * Round i adds a·b_i to t with a carry word (each step t_j + a_j·b_i + carry < 2^128, so `add128` with zero high
 * words never overflows), then reduces by m = t_0 (−p⁻¹ ≡ 1 mod 2^64): t_0 + m·p_0 = m·2^64 exactly, so the carry
 * starts at m and p's limbs 1..3 are multiplied in. t stays below 2p; the result is t − p when that does not
 * borrow (or t has a fifth word), by mask.
 */
function wideMulFunction(): number[] {
  const a = new Asm64();
  const R = 0, PA = 1, PB = 2;
  const AL = 3, BL = AL + 4, T = AL + 8, C = T + 6, M = C + 1, D = M + 1;
  const wide = (op: number) => a.op(0xfc, op);
  const k64 = (v: bigint) => a.i64(BigInt.asIntN(64, v));
  for (let i = 0; i < 4; i++) a.get(PA).ld64(8 * i).set(AL + i);
  for (let i = 0; i < 4; i++) a.get(PB).ld64(8 * i).set(BL + i);
  for (let i = 0; i < 4; i++) {
    for (let j = 0; j < 4; j++) {
      a.get(AL + j).get(BL + i);
      wide(MUL_WIDE_U);
      if (i > 0) a.get(T + j).i64(0), wide(ADD128);
      if (j > 0) a.get(C).i64(0), wide(ADD128);
      a.set(C).set(T + j);
    }
    if (i > 0) {
      a.get(T + 4).i64(0).get(C).i64(0);
      wide(ADD128);
      a.set(T + 5).set(T + 4);
    } else a.get(C).set(T + 4).i64(0).set(T + 5);
    a.get(T).set(M);
    for (let j = 1; j < 4; j++) {
      a.get(M);
      k64(P64[j]!);
      wide(MUL_WIDE_U);
      a.get(T + j).i64(0);
      wide(ADD128);
      a.get(j === 1 ? M : C).i64(0);
      wide(ADD128);
      a.set(C).set(T + j - 1);
    }
    a.get(T + 4).i64(0).get(C).i64(0);
    wide(ADD128);
    a.set(C).set(T + 3);
    a.get(T + 5).get(C).op(ADD64).set(T + 4);
  }
  subtractP(a, T, D, C);
  // Keep t (mask all ones) when t − p borrowed and t has no fifth word.
  a.get(C).get(T + 4).i64(1).op(SUB64).op(AND64).set(M);
  for (let j = 0; j < 4; j++) {
    a.get(R).get(T + j).get(M).op(AND64).get(D + j).get(M).i64(-1).op(XOR64).op(AND64).op(OR64).st64(8 * j);
  }
  return body([[D + 4 - AL, I64]], a);
}

/**
 * The wide build's fsqr(r, a): params 0..1; i64 locals a 4, t 8, carry, extra carry, m, d 4. The six cross
 * products once, doubled by a one-bit shift across the words, the four squares added: 10 multiplications where
 * {@link wideMulFunction} takes 16. Then four reduction rounds over the 512-bit square (m = t_i, carry m, p's
 * limbs 1..3 multiplied in), each round's carry out of its top word kept for the next, and the final subtraction.
 */
function wideSqrFunction(): number[] {
  const a = new Asm64();
  const R = 0, PA = 1, AL = 2, T = AL + 4, C = T + 8, E = C + 1, M = E + 1, D = M + 1;
  const wide = (op: number) => a.op(0xfc, op);
  for (let i = 0; i < 4; i++) a.get(PA).ld64(8 * i).set(AL + i);
  // Cross products a_i·a_j (i < j) into t1..t6, row by row with a carry word.
  a.get(AL).get(AL + 1);
  wide(MUL_WIDE_U);
  a.set(C).set(T + 1);
  for (const j of [2, 3]) {
    a.get(AL).get(AL + j);
    wide(MUL_WIDE_U);
    a.get(C).i64(0);
    wide(ADD128);
    a.set(C).set(T + j);
  }
  a.get(C).set(T + 4);
  a.get(AL + 1).get(AL + 2);
  wide(MUL_WIDE_U);
  a.get(T + 3).i64(0);
  wide(ADD128);
  a.set(C).set(T + 3);
  a.get(AL + 1).get(AL + 3);
  wide(MUL_WIDE_U);
  a.get(T + 4).i64(0);
  wide(ADD128);
  a.get(C).i64(0);
  wide(ADD128);
  a.set(C).set(T + 4);
  a.get(C).set(T + 5);
  a.get(AL + 2).get(AL + 3);
  wide(MUL_WIDE_U);
  a.get(T + 5).i64(0);
  wide(ADD128);
  a.set(T + 6).set(T + 5);
  // Double: t7..t1 shift left by one bit.
  a.get(T + 6).i64(63).op(SHRU64).set(T + 7);
  for (let w = 6; w >= 2; w--) {
    a.get(T + w).i64(1).op(0x86 /* i64.shl */).get(T + w - 1).i64(63).op(SHRU64).op(OR64).set(T + w);
  }
  a.get(T + 1).i64(1).op(0x86).set(T + 1);
  // Squares: a_i² at words 2i, 2i + 1, one carry chain over t0..t7.
  a.get(AL).get(AL);
  wide(MUL_WIDE_U);
  a.set(C).set(T); // C holds sq0's high word, to add into t1
  a.get(T + 1).i64(0).get(C).i64(0);
  wide(ADD128);
  a.set(C).set(T + 1);
  for (let i = 1; i < 4; i++) {
    a.get(AL + i).get(AL + i);
    wide(MUL_WIDE_U);
    a.set(M).set(E); // E = low word, M = high word of a_i²
    a.get(T + 2 * i).i64(0).get(E).i64(0);
    wide(ADD128);
    a.get(C).i64(0);
    wide(ADD128);
    a.set(C).set(T + 2 * i);
    a.get(T + 2 * i + 1).i64(0).get(M).i64(0);
    wide(ADD128);
    a.get(C).i64(0);
    wide(ADD128);
    a.set(C).set(T + 2 * i + 1); // the last carry is 0: a² < 2^512
  }
  // Reduction rounds.
  a.i64(0).set(E);
  for (let i = 0; i < 4; i++) {
    a.get(T + i).set(M);
    for (let j = 1; j < 4; j++) {
      a.get(M).i64(BigInt.asIntN(64, P64[j]!));
      wide(MUL_WIDE_U);
      a.get(T + i + j).i64(0);
      wide(ADD128);
      a.get(j === 1 ? M : C).i64(0);
      wide(ADD128);
      a.set(C).set(T + i + j);
    }
    a.get(T + i + 4).i64(0).get(C).i64(0);
    wide(ADD128);
    a.get(E).i64(0);
    wide(ADD128);
    a.set(E).set(T + i + 4);
  }
  subtractP(a, T + 4, D, C);
  a.get(C).get(E).i64(1).op(SUB64).op(AND64).set(M);
  for (let j = 0; j < 4; j++) {
    a.get(R).get(T + 4 + j).get(M).op(AND64).get(D + j).get(M).i64(-1).op(XOR64).op(AND64).op(OR64).st64(8 * j);
  }
  return body([[D + 4 - AL, I64]], a);
}

/** fadd(r, a, b): params 0..2; i64 locals s 3..10, top 11, c 12, d 13..20. */
function faddFunction(): number[] {
  const a = new Asm64();
  const R = 0, A = 1, B = 2, S = 3, TOP = 11, C = 12, D = 13;
  a.i64(0).set(C);
  for (let k = 0; k < 8; k++) {
    a.get(A).ld32(4 * k).get(B).ld32(4 * k).op(ADD64).get(C).op(ADD64).tee(S + k).i64(32).op(SHRU64).set(C);
    a.get(S + k).i64(M32).op(AND64).set(S + k);
  }
  a.get(C).set(TOP);
  reduceOnceStore(a, R, S, TOP, D, C);
  return body([[18, I64]], a);
}

/** fsub(r, a, b): params 0..2; i64 locals d 3..10, c 11, mask 12. */
function fsubFunction(): number[] {
  const a = new Asm64();
  const R = 0, A = 1, B = 2, D = 3, C = 11, MASK = 12;
  a.i64(0).set(C);
  for (let k = 0; k < 8; k++) {
    a.get(A).ld32(4 * k).get(B).ld32(4 * k).op(SUB64).get(C).op(ADD64).tee(D + k).i64(32).op(SHRS64).set(C);
    a.get(D + k).i64(M32).op(AND64).set(D + k);
  }
  a.get(C).set(MASK); // −1 if a < b: add p back
  a.i64(0).set(C);
  for (let k = 0; k < 8; k++) {
    a.get(D + k).get(MASK).i64(P_LIMBS[k]!).op(AND64).op(ADD64).get(C).op(ADD64).tee(D + k).i64(32).op(SHRU64)
      .set(C);
    a.get(R).get(D + k).i64(M32).op(AND64).st32(4 * k);
  }
  return body([[10, I64]], a);
}

/** Function indices (the order of FUNCS below) that the code calls or checks. */
const F_MUL = 0, F_SQR = 3, F_SQRN = 4, P_DBL = 5, LOOKUP = 8;
const CSEL = 9;

/** fsqrn(r, a, n): r = a^(2^n), n ≥ 1. */
function fsqrnFunction(): number[] {
  const a = new Asm64();
  a.get(0).get(1).call(F_SQR);
  a.op(BLOCK, VOID, LOOP, VOID);
  a.get(2).i32(1).op(SUB32).tee(2).op(EQZ32).op(BR_IF, 1);
  a.get(0).get(0).call(F_SQR);
  a.op(BR, 0, END, END);
  return body([], a);
}

/** An operand: a parameter (by index) plus a byte offset, or a scratch element. */
type Operand = { p: number; off: number } | { t: number };

/** i64 locals a point function declares for {@link Formula}'s inlined additions and subtractions. */
const FORMULA_LOCALS = 19;

/**
 * Point-formula helper: multiplications and squarings are calls; additions and subtractions are inlined over
 * i64 locals from `first` on (S 8, top, c, D 8, mask), with operand addresses folded into the loads' and
 * stores' static offsets (inlining measured ~5–10 % off a doubling or an addition, CPU time, side by side).
 */
class Formula {
  readonly a = new Asm64();
  readonly #s: number;
  readonly #top: number;
  readonly #c: number;
  readonly #d: number;
  readonly #mask: number;
  /** The wide build: additions and subtractions on four 64-bit limbs with `add128` / `sub128`. */
  readonly #wide: boolean;
  constructor(first: number, wide: boolean) {
    this.#wide = wide;
    this.#s = first;
    this.#top = first + 8;
    this.#c = first + 9;
    this.#d = first + 10;
    this.#mask = first + 18;
  }
  #push(o: Operand): void {
    if ("t" in o) this.a.i32(SM2_SCRATCH + 32 * o.t);
    else if (o.off === 0) this.a.get(o.p);
    else this.a.get(o.p).i32(o.off).op(ADD32);
  }
  /** Pushes the operand's base address; returns its static offset. */
  #base(o: Operand): number {
    if ("t" in o) {
      this.a.i32(0);
      return SM2_SCRATCH + 32 * o.t;
    }
    this.a.get(o.p);
    return o.off;
  }
  mul(r: Operand, x: Operand, y: Operand): this {
    this.#push(r), this.#push(x), this.#push(y);
    this.a.call(F_MUL);
    return this;
  }
  sqr(r: Operand, x: Operand): this {
    this.#push(r), this.#push(x);
    this.a.call(F_SQR);
    return this;
  }
  add(r: Operand, x: Operand, y: Operand): this {
    if (this.#wide) return this.#addWide(r, x, y);
    const a = this.a, S = this.#s, TOP = this.#top, C = this.#c, D = this.#d;
    a.i64(0).set(C);
    for (let k = 0; k < 8; k++) {
      a.ld32(this.#base(x) + 4 * k);
      a.ld32(this.#base(y) + 4 * k);
      a.op(ADD64).get(C).op(ADD64).tee(S + k).i64(32).op(SHRU64).set(C);
      a.get(S + k).i64(M32).op(AND64).set(S + k);
    }
    a.get(C).set(TOP);
    a.i64(0).set(C);
    for (let k = 0; k < 8; k++) {
      a.get(S + k).i64(P_LIMBS[k]!).op(SUB64).get(C).op(ADD64).tee(D + k).i64(32).op(SHRS64).set(C);
      a.get(D + k).i64(M32).op(AND64).set(D + k);
    }
    a.get(TOP).get(C).op(ADD64).i64(63).op(SHRS64).set(C);
    for (let k = 0; k < 8; k++) {
      const off = this.#base(r);
      a.get(S + k).get(C).op(AND64).get(D + k).get(C).i64(-1).op(XOR64).op(AND64).op(OR64).st32(off + 4 * k);
    }
    return this;
  }
  sub(r: Operand, x: Operand, y: Operand): this {
    if (this.#wide) return this.#subWide(r, x, y);
    const a = this.a, C = this.#c, D = this.#d, MASK = this.#mask;
    a.i64(0).set(C);
    for (let k = 0; k < 8; k++) {
      a.ld32(this.#base(x) + 4 * k);
      a.ld32(this.#base(y) + 4 * k);
      a.op(SUB64).get(C).op(ADD64).tee(D + k).i64(32).op(SHRS64).set(C);
      a.get(D + k).i64(M32).op(AND64).set(D + k);
    }
    a.get(C).set(MASK);
    a.i64(0).set(C);
    for (let k = 0; k < 8; k++) {
      const off = this.#base(r);
      a.get(D + k).get(MASK).i64(P_LIMBS[k]!).op(AND64).op(ADD64).get(C).op(ADD64).tee(D + k).i64(32).op(SHRU64)
        .set(C);
      a.get(D + k).i64(M32).op(AND64).st32(off + 4 * k);
    }
    return this;
  }

  /** r = x + y mod p on 64-bit limbs: the sum with its carry word, then the sum − p unless that borrows. */
  #addWide(r: Operand, x: Operand, y: Operand): this {
    const a = this.a, S = this.#s, TOP = this.#top, C = this.#c, D = this.#d, MASK = this.#mask;
    a.i64(0).set(C);
    for (let k = 0; k < 4; k++) {
      a.ld64(this.#base(x) + 8 * k).i64(0).get(C).i64(0).op(0xfc, ADD128);
      a.ld64(this.#base(y) + 8 * k).i64(0).op(0xfc, ADD128);
      a.set(C).set(S + k);
    }
    a.get(C).set(TOP);
    subtractP(a, S, D, C);
    // Keep the sum (mask all ones) when sum − p borrowed and the sum has no carry word.
    a.get(C).get(TOP).i64(1).op(SUB64).op(AND64).set(MASK);
    for (let k = 0; k < 4; k++) {
      const off = this.#base(r);
      a.get(S + k).get(MASK).op(AND64).get(D + k).get(MASK).i64(-1).op(XOR64).op(AND64).op(OR64).st64(off + 8 * k);
    }
    return this;
  }
  /** r = x − y mod p on 64-bit limbs: the difference, plus p when it borrowed. */
  #subWide(r: Operand, x: Operand, y: Operand): this {
    const a = this.a, C = this.#c, D = this.#d, MASK = this.#mask;
    a.i64(0).set(C);
    for (let k = 0; k < 4; k++) {
      a.ld64(this.#base(x) + 8 * k).i64(0);
      a.ld64(this.#base(y) + 8 * k).i64(0).op(0xfc, SUB128);
      a.get(C).get(C).op(0xfc, ADD128);
      a.set(C).set(D + k);
    }
    a.get(C).set(MASK); // −1 if x < y
    a.i64(0).set(C);
    for (let k = 0; k < 4; k++) {
      const off = this.#base(r);
      a.get(D + k).i64(0).get(C).i64(0).op(0xfc, ADD128);
      a.get(MASK).i64(BigInt.asIntN(64, P64[k]!)).op(AND64).i64(0).op(0xfc, ADD128);
      a.set(C).st64(off + 8 * k);
    }
    return this;
  }
}

const t = (i: number): Operand => ({ t: i });
const X = (p: number): Operand => ({ p, off: 0 });
const Y = (p: number): Operand => ({ p, off: 32 });
const Z = (p: number): Operand => ({ p, off: 64 });

/** pdbl(r, p), dbl-2001-b: params 0 (r), 1 (p). Writes r.Z, r.X, r.Y after their inputs are consumed. */
function pdblFunction(wide: boolean): number[] {
  const f = new Formula(2, wide);
  const R = 0, P = 1;
  const delta = t(0), gamma = t(1), beta = t(2), alpha = t(3), t1 = t(4), t2 = t(5);
  f.sqr(delta, Z(P)).sqr(gamma, Y(P)).mul(beta, X(P), gamma);
  f.sub(t1, X(P), delta).add(t2, X(P), delta).mul(alpha, t1, t2);
  f.add(t1, alpha, alpha).add(alpha, t1, alpha); // 3·alpha
  f.mul(Z(R), Y(P), Z(P)).add(Z(R), Z(R), Z(R)); // Z3 = 2YZ (Y, Z not read after this)
  f.add(t1, beta, beta).add(t1, t1, t1); // 4β
  f.add(t2, t1, t1); // 8β
  f.sqr(X(R), alpha).sub(X(R), X(R), t2); // X3 = α² − 8β
  f.sub(t1, t1, X(R)).mul(t1, alpha, t1); // α(4β − X3)
  f.sqr(gamma, gamma).add(gamma, gamma, gamma).add(gamma, gamma, gamma).add(gamma, gamma, gamma); // 8γ²
  f.sub(Y(R), t1, gamma);
  return body([[FORMULA_LOCALS, I64]], f.a);
}

/** Copies 96 bytes from scratch element `from` (3 consecutive elements) to param r. */
function copyOut(a: Asm64, r: number, from: number): void {
  for (let k = 0; k < 12; k++) a.get(r).i32(SM2_SCRATCH + 32 * from + 8 * k).ld64(0).st64(8 * k);
}

/** padd(r, p, q), add-2007-bl: params 0..2. The result is built in scratch 10..12 and copied out. */
function paddFunction(wide: boolean): number[] {
  const f = new Formula(3, wide);
  const R = 0, P = 1, Q = 2;
  const z1z1 = t(0), z2z2 = t(1), u1 = t(2), u2 = t(3), s1 = t(4), s2 = t(5), h = t(6), i = t(7), j = t(8);
  const r = t(9), X3 = t(10), Y3 = t(11), Z3 = t(12), v = t(13);
  f.sqr(z1z1, Z(P)).sqr(z2z2, Z(Q)).mul(u1, X(P), z2z2).mul(u2, X(Q), z1z1);
  f.mul(s1, Y(P), Z(Q)).mul(s1, s1, z2z2).mul(s2, Y(Q), Z(P)).mul(s2, s2, z1z1);
  f.sub(h, u2, u1).add(i, h, h).sqr(i, i).mul(j, h, i);
  f.sub(r, s2, s1).add(r, r, r).mul(v, u1, i);
  f.sqr(X3, r).sub(X3, X3, j).sub(X3, X3, v).sub(X3, X3, v);
  f.sub(Y3, v, X3).mul(Y3, r, Y3).mul(s1, s1, j).add(s1, s1, s1).sub(Y3, Y3, s1);
  f.mul(Z3, Z(P), Z(Q)).mul(Z3, Z3, h).add(Z3, Z3, Z3);
  copyOut(f.a, R, 10);
  return body([[FORMULA_LOCALS, I64]], f.a);
}

/** pmadd(r, p, q), madd-2007-bl: params 0..2 (q affine). The result is built in scratch 10..12. */
function pmaddFunction(wide: boolean): number[] {
  const f = new Formula(3, wide);
  const R = 0, P = 1, Q = 2;
  const z1z1 = t(0), u2 = t(1), s2 = t(2), h = t(3), i = t(4), j = t(5), r = t(6), v = t(7);
  const X3 = t(10), Y3 = t(11), Z3 = t(12);
  f.sqr(z1z1, Z(P)).mul(u2, X(Q), z1z1).mul(s2, Y(Q), Z(P)).mul(s2, s2, z1z1);
  f.sub(h, u2, X(P)).add(i, h, h).sqr(i, i).mul(j, h, i);
  f.sub(r, s2, Y(P)).add(r, r, r).mul(v, X(P), i);
  f.sqr(X3, r).sub(X3, X3, j).sub(X3, X3, v).sub(X3, X3, v);
  f.sub(Y3, v, X3).mul(Y3, r, Y3).mul(u2, Y(P), j).add(u2, u2, u2).sub(Y3, Y3, u2);
  f.mul(Z3, Z(P), h).add(Z3, Z3, Z3);
  copyOut(f.a, R, 10);
  return body([[FORMULA_LOCALS, I64]], f.a);
}

/**
 * lookup(dst, table, count, stride, idx): params 0..4; i32 locals i 5, ptr 6; i64 mask 7, accumulators 8..19.
 * ORs every entry ANDed with (i == idx ? all ones : 0) into 12 registers (entries of 64 or 96 bytes: stride
 * 64 uses 8 of them), stored to dst at the end. Unrolled over the words: ~2× the word loop it replaced.
 */
function lookupFunction(): number[] {
  const a = new Asm64();
  const DST = 0, TAB = 1, COUNT = 2, STRIDE = 3, IDX = 4, I = 5, PTR = 6, MASK = 7, ACC = 8;
  for (let w = 0; w < 12; w++) a.i64(0).set(ACC + w);
  a.i32(0).set(I);
  a.get(TAB).set(PTR);
  a.op(BLOCK, VOID, LOOP, VOID);
  a.get(I).get(COUNT).op(0x4f /* i32.ge_u */).op(BR_IF, 1);
  a.i64(0).get(I).get(IDX).op(EQ32).op(EXTU).op(SUB64).set(MASK);
  for (let w = 0; w < 8; w++) a.get(ACC + w).get(PTR).ld64(8 * w).get(MASK).op(AND64).op(OR64).set(ACC + w);
  // Words 8..11 only for 96-byte entries (the branch is on the public stride).
  a.get(STRIDE).i32(96).op(EQ32).op(0x04, /* if */ VOID);
  for (let w = 8; w < 12; w++) a.get(ACC + w).get(PTR).ld64(8 * w).get(MASK).op(AND64).op(OR64).set(ACC + w);
  a.op(END);
  a.get(PTR).get(STRIDE).op(ADD32).set(PTR);
  a.get(I).i32(1).op(ADD32).set(I);
  a.op(BR, 0, END, END);
  for (let w = 0; w < 8; w++) a.get(DST).get(ACC + w).st64(8 * w);
  a.get(STRIDE).i32(96).op(EQ32).op(0x04, VOID);
  for (let w = 8; w < 12; w++) a.get(DST).get(ACC + w).st64(8 * w);
  a.op(END);
  return body([[2, I32], [13, I64]], a);
}

/** csel(dst, src, len, flag): params 0..3; i32 local w 4; i64 local mask 5. */
function cselFunction(): number[] {
  const a = new Asm64();
  const DST = 0, SRC = 1, LEN = 2, FLAG = 3, W = 4, MASK = 5;
  a.i64(0).get(FLAG).op(EQZ32, EQZ32).op(EXTU).op(SUB64).set(MASK);
  a.i32(0).set(W);
  a.op(BLOCK, VOID, LOOP, VOID);
  a.get(W).get(LEN).op(0x4f).op(BR_IF, 1);
  a.get(DST).get(W).op(ADD32);
  a.get(SRC).get(W).op(ADD32).ld64(0).get(MASK).op(AND64);
  a.get(DST).get(W).op(ADD32).ld64(0).get(MASK).i64(-1).op(XOR64).op(AND64);
  a.op(OR64).st64(0);
  a.get(W).i32(8).op(ADD32).set(W);
  a.op(BR, 0, END, END);
  return body([[1, I32], [1, I64]], a);
}

const TYPES = vec([
  [0x60, ...vec([[I32], [I32], [I32]]), 0], // 0: (r, a, b)
  [0x60, ...vec([[I32], [I32]]), 0], // 1: (r, a)
  [0x60, ...vec([[I32], [I32], [I32], [I32], [I32]]), 0], // 2: lookup
  [0x60, ...vec([[I32], [I32], [I32], [I32]]), 0], // 3: csel
]);

const FUNCS: [string, number, () => number[]][] = [
  ["fmul", 0, fmulFunction],
  ["fadd", 0, faddFunction],
  ["fsub", 0, fsubFunction],
  ["fsqr", 1, fsqrFunction],
  ["fsqrn", 0, fsqrnFunction],
  ["pdbl", 1, () => pdblFunction(false)],
  ["padd", 0, () => paddFunction(false)],
  ["pmadd", 0, () => pmaddFunction(false)],
  ["lookup", 2, lookupFunction],
  ["csel", 3, cselFunction],
];
if (
  FUNCS[F_MUL]![0] !== "fmul" || FUNCS[F_SQR]![0] !== "fsqr" || FUNCS[F_SQRN]![0] !== "fsqrn" ||
  FUNCS[P_DBL]![0] !== "pdbl" || FUNCS[LOOKUP]![0] !== "lookup" || FUNCS[CSEL]![0] !== "csel"
) {
  throw new Error("sm2 wasm: function index table is out of order");
}

/** The module's bytes: imports nothing; exports `mem` (1 page, growable) and the functions listed above. */
function moduleBytes(wide: boolean): Uint8Array<ArrayBuffer> {
  const funcs: [string, number, () => number[]][] = FUNCS.map(([n, type, f]) => {
    if (wide && n === "fmul") return [n, type, wideMulFunction];
    if (wide && n === "fsqr") return [n, type, wideSqrFunction];
    if (wide && n === "pdbl") return [n, type, () => pdblFunction(true)];
    if (wide && n === "padd") return [n, type, () => paddFunction(true)];
    if (wide && n === "pmadd") return [n, type, () => pmaddFunction(true)];
    return [n, type, f];
  });
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    1,
    0,
    0,
    0,
    ...section(1, TYPES),
    ...section(3, vec(funcs.map(([, type]) => [type]))),
    ...section(5, vec([[0x00, 1]])),
    ...section(7, vec([[...name("mem"), 2, 0], ...funcs.map(([n], i) => [...name(n), 0, i])])),
    ...section(10, vec(funcs.map(([, , f]) => f()))),
  ]);
}

/** The module of 32-bit limbs (any WebAssembly runtime). */
export const SM2_WASM: Uint8Array<ArrayBuffer> = moduleBytes(false);

/** Which build {@link sm2WasmModule} chose. */
export type Sm2WasmBuild = "wide" | "base";

let compiled: { module: WebAssembly.Module; build: Sm2WasmBuild } | undefined;

/**
 * The wide build compiled, if this runtime accepts its instructions (undefined otherwise): for {@link sm2WasmModule}
 * and the tests that compare the builds.
 */
export function sm2WasmWideModule(): WebAssembly.Module | undefined {
  try {
    return new WebAssembly.Module(moduleBytes(true));
  } catch {
    return undefined; // a CompileError: wide arithmetic is not enabled
  }
}

const P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFFn;
/** 2^−256 mod p: Montgomery multiplication computes a·b·2^−256. */
const R_INV = 0xFFFFFFFB00000005FFFFFFFC00000002FFFFFFFD00000006FFFFFFF900000004n;

/**
 * Whether `module`'s fmul and fsqr give a·b·2^−256 mod p for products at the edges of the range and at random: a
 * check of the runtime's wide-arithmetic code generation (an experimental feature) before any key depends on it.
 */
function computesCorrectly(module: WebAssembly.Module): boolean {
  const e = new WebAssembly.Instance(module).exports as unknown as {
    mem: WebAssembly.Memory;
    fmul(r: number, a: number, b: number): void;
    fsqr(r: number, a: number): void;
  };
  const dv = new DataView(e.mem.buffer);
  const put = (at: number, v: bigint) => {
    for (let i = 0; i < 4; i++) dv.setBigUint64(at + 8 * i, BigInt.asUintN(64, v >> BigInt(64 * i)), true);
  };
  const get = (at: number) => {
    let v = 0n;
    for (let i = 3; i >= 0; i--) v = (v << 64n) | dv.getBigUint64(at + 8 * i, true);
    return v;
  };
  const random = () => {
    let v = 0n;
    for (const b of crypto.getRandomValues(new Uint8Array(40))) v = (v << 8n) | BigInt(b);
    return v % P;
  };
  const values = [0n, 1n, 2n, P - 1n, P - 2n, (1n << 255n) % P, (1n << 224n) - 1n];
  for (let i = 0; i < 24; i++) values.push(random());
  for (let i = 0; i < values.length; i++) {
    const x = values[i]!, y = values[(i * 5 + 3) % values.length]!;
    put(SM2_FREE, x);
    put(SM2_FREE + 32, y);
    e.fmul(SM2_FREE + 64, SM2_FREE, SM2_FREE + 32);
    e.fsqr(SM2_FREE + 96, SM2_FREE);
    if (get(SM2_FREE + 64) !== (x * y % P) * R_INV % P || get(SM2_FREE + 96) !== (x * x % P) * R_INV % P) return false;
  }
  return true;
}

/**
 * The compiled module, chosen and compiled on first use: the wide build when the runtime accepts it and it computes
 * known products correctly, else the base build. `FERRY_SM2_WASM=base` (environment) forces the base build.
 */
export function sm2WasmModule(): WebAssembly.Module {
  return (compiled ??= choose()).module;
}

/** Which build {@link sm2WasmModule} uses (choosing it if not done yet). */
export function sm2WasmBuild(): Sm2WasmBuild {
  return (compiled ??= choose()).build;
}

function choose(): { module: WebAssembly.Module; build: Sm2WasmBuild } {
  let forced: string | undefined;
  try {
    forced = Deno.env.get("FERRY_SM2_WASM");
  } catch { /* no env permission: the default */ }
  if (forced !== "base") {
    const wide = sm2WasmWideModule();
    if (wide !== undefined && computesCorrectly(wide)) return { module: wide, build: "wide" };
  }
  return { module: new WebAssembly.Module(SM2_WASM), build: "base" };
}
