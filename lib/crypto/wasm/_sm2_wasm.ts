/**
 * SM2 scalar multiplications for *secret* scalars on the WebAssembly field and point functions of
 * `_sm2_wasm_module.ts` (one instance per process): a fixed-window variable-base multiplication (ECDH,
 * decryption, key exchange) and a fixed-base comb for the generator (key generation, signing), each ending in
 * one constant-time inversion (Fermat, a fixed addition chain). Private to `lib/crypto` (`sm2.ts` calls it;
 * `_sm2_jacobian.ts` keeps the bigint versions as the reference the differential tests compare against).
 *
 * Why: on bigint, one field multiplication with its reduction costs ~90 ns and a variable-base
 * multiplication ~300–400 µs; here a multiplication (~30–40 ns) is straight-line i64 code with a
 * multiplication-free Montgomery reduction (see the module's doc), and a variable-base multiplication takes
 * ~150 µs of CPU, the generator's comb ~35 µs (figures per operation in `../sm2.ts`'s module doc).
 *
 * Side channels: the sequence of WebAssembly calls does not depend on the scalar (every window doubles,
 * looks up and adds, also for a zero digit), table lookups read every entry and select by mask, and the
 * two cases the incomplete formulas cannot compute (the accumulator at infinity, a zero digit) are resolved by
 * masked selects among results that were all computed. The scalar's digits are extracted in JavaScript
 * (number arithmetic on its hex form, no table lookups by digit). Field arithmetic has no secret-dependent
 * branches or memory indices. This is stronger than the bigint path, whose arithmetic is not constant-time.
 *
 * @module
 */

import { SM2_FREE, sm2WasmModule } from "./_sm2_wasm_module.ts";

const P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFFn;
const R_MOD_P = (1n << 256n) % P;
const R2_MOD_P = (R_MOD_P * R_MOD_P) % P;

/** An affine point with bigint coordinates in [0, p). */
export interface WasmAffine {
  readonly x: bigint;
  readonly y: bigint;
}

interface Exports {
  mem: WebAssembly.Memory;
  fmul(r: number, a: number, b: number): void;
  fsqr(r: number, a: number): void;
  fsqrn(r: number, a: number, n: number): void;
  fadd(r: number, a: number, b: number): void;
  fsub(r: number, a: number, b: number): void;
  pdbl(r: number, p: number): void;
  padd(r: number, p: number, q: number): void;
  pmadd(r: number, p: number, q: number): void;
  lookup(dst: number, table: number, count: number, stride: number, idx: number): void;
  csel(dst: number, src: number, len: number, flag: number): void;
}

// Driver memory (byte offsets).
const ONE_M = SM2_FREE; // R mod p: 1 in Montgomery form
const R2 = ONE_M + 32; // R² mod p: converts into Montgomery form
const ONE = R2 + 32; // the integer 1: converts out of Montgomery form
const TMP = ONE + 32; // 12 scratch elements for the inversion chain and conversions
const ACC = TMP + 12 * 32; // Jacobian accumulator
const SUM = ACC + 96;
const SEL = SUM + 96; // a looked-up point; for the comb, its Z stays ONE_M
const AFF = SEL + 96; // the affine input point
const VTAB = AFF + 64; // variable-base table: 15 Jacobian points
const SAVE = VTAB + 15 * 96; // s·G while t·Q is computed (verification)
const VTAB_ENTRIES = 15;
const COMB = 4096; // the generator's comb: COMB_WINDOWS × COMB_ENTRIES affine points
/**
 * Comb width 5 (52 windows of 31 points, 100 KiB): lookups read every entry, and in WebAssembly a mixed
 * addition costs about as much as scanning ~60 entries, so wider combs than the bigint path's 7 do not pay.
 */
const COMB_WIDTH = 5;
const COMB_ENTRIES = (1 << COMB_WIDTH) - 1;
const COMB_WINDOWS = Math.ceil(256 / COMB_WIDTH);
const COMB_BYTES = COMB_WINDOWS * COMB_ENTRIES * 64;
const COMB_END = COMB + COMB_BYTES;
/** Slots for the comb tables of public keys used repeatedly (100 KiB each, memory grown on demand). */
const KEY_SLOTS = 32;

let wasm: Exports | undefined;
let u32: Uint32Array = new Uint32Array(0);
let dv: DataView = new DataView(new ArrayBuffer(0));

function instance(): Exports {
  if (wasm) return wasm;
  const e = new WebAssembly.Instance(sm2WasmModule()).exports as unknown as Exports;
  const pages = Math.ceil(COMB_END / 65536) - e.mem.buffer.byteLength / 65536;
  if (pages > 0) e.mem.grow(pages);
  u32 = new Uint32Array(e.mem.buffer);
  dv = new DataView(e.mem.buffer);
  wasm = e;
  writeBig(ONE, 1n);
  writeBig(ONE_M, R_MOD_P);
  writeBig(R2, R2_MOD_P);
  return e;
}

/** Writes v (0 ≤ v < 2^256) as 8 little-endian limbs. */
function writeBig(ptr: number, v: bigint): void {
  const hex = v.toString(16).padStart(64, "0");
  const at = ptr >> 2;
  for (let i = 0; i < 8; i++) u32[at + i] = parseInt(hex.slice(56 - 8 * i, 64 - 8 * i), 16);
}

/** Reads 8 little-endian limbs as a bigint (four 64-bit reads: ~4× the hex-string form). */
function readBig(ptr: number): bigint {
  return (dv.getBigUint64(ptr + 24, true) << 192n) | (dv.getBigUint64(ptr + 16, true) << 128n) |
    (dv.getBigUint64(ptr + 8, true) << 64n) | dv.getBigUint64(ptr, true);
}

/** Writes v into Montgomery form at ptr. */
function toMont(e: Exports, ptr: number, v: bigint): void {
  writeBig(ptr, v);
  e.fmul(ptr, ptr, R2);
}

/** Reads the element at ptr out of Montgomery form (clobbers TMP + 11·32). */
function fromMont(e: Exports, ptr: number): bigint {
  const t = TMP + 11 * 32;
  e.fmul(t, ptr, ONE);
  return readBig(t);
}

/**
 * r = a^(p−2) = a⁻¹ (0 for a = 0): a fixed addition chain of 255 squarings and 15 multiplications.
 * p − 2 = 1^31 0 1^128 0^32 1^62 0 1 (most significant first). Uses TMP + 0..5·32; r must not be one of them.
 */
function invert(e: Exports, r: number, a: number): void {
  const t2 = TMP, t3 = TMP + 32, t6 = TMP + 64, t12 = TMP + 96, t15 = TMP + 128, t30 = TMP + 160;
  const t31 = TMP + 192, t32 = TMP + 224;
  e.fsqr(t2, a), e.fmul(t2, t2, a); // 2 ones
  e.fsqr(t3, t2), e.fmul(t3, t3, a); // 3
  e.fsqrn(t6, t3, 3), e.fmul(t6, t6, t3); // 6
  e.fsqrn(t12, t6, 6), e.fmul(t12, t12, t6); // 12
  e.fsqrn(t15, t12, 3), e.fmul(t15, t15, t3); // 15
  e.fsqrn(t30, t15, 15), e.fmul(t30, t30, t15); // 30
  e.fsqr(t31, t30), e.fmul(t31, t31, a); // 31
  e.fsqr(t32, t31), e.fmul(t32, t32, a); // 32
  e.fsqr(r, t31); // 1^31 0
  for (let i = 0; i < 4; i++) e.fsqrn(r, r, 32), e.fmul(r, r, t32); // 1^128
  e.fsqrn(r, r, 32); // 0^32
  e.fsqrn(r, r, 32), e.fmul(r, r, t32); // 1^32
  e.fsqrn(r, r, 30), e.fmul(r, r, t30); // 1^30
  e.fsqr(r, r); // 0
  e.fsqr(r, r), e.fmul(r, r, a); // 1
}

/** The affine form of the Jacobian point at ptr (not at infinity), out of Montgomery form. */
function toAffine(e: Exports, ptr: number): WasmAffine {
  const zi = TMP + 8 * 32, zi2 = TMP + 9 * 32, t = TMP + 10 * 32;
  invert(e, zi, ptr + 64);
  e.fsqr(zi2, zi);
  e.fmul(t, ptr, zi2);
  const x = fromMont(e, t);
  e.fmul(zi2, zi2, zi);
  e.fmul(t, ptr + 32, zi2);
  return { x, y: fromMont(e, t) };
}

/** The scalar's 64 hex digits, most significant first (k < 2^256). */
function hexDigits(k: bigint): string {
  return k.toString(16).padStart(64, "0");
}

/**
 * k·(x, y) for a secret scalar 1 ≤ k < n and a valid affine point (not checked here), affine: a width-4
 * fixed window over a 15-entry Jacobian table, 252 doublings and 64 additions whatever k is.
 *
 * With `windows` below 64, only the scalar's low 4·windows bits are processed: for public short scalars (the
 * 128-bit x̄ of the SM2 key exchange), the window count being public.
 *
 * @param x the affine x of a point on the curve, other than infinity
 * @param y the affine y
 * @param k the scalar, below 2^(4·windows)
 * @param windows how many 4-bit windows to process (1..64; default 64)
 */
export function sm2WasmMultiply(x: bigint, y: bigint, k: bigint, windows = 64): WasmAffine {
  const e = instance();
  variableInto(e, x, y, k, windows);
  return toAffine(e, ACC);
}

/** k·(x, y) into ACC (Jacobian) over the low `windows` 4-bit digits of k (see {@link sm2WasmMultiply}). */
function variableInto(e: Exports, x: bigint, y: bigint, k: bigint, windows: number): void {
  toMont(e, AFF, x);
  toMont(e, AFF + 32, y);
  // Table: i·P for i = 1..15 at VTAB + 96·(i − 1).
  toMont(e, VTAB, x);
  toMont(e, VTAB + 32, y);
  e.csel(VTAB + 64, ONE_M, 32, 1);
  e.pdbl(VTAB + 96, VTAB);
  for (let i = 2; i < VTAB_ENTRIES; i++) e.pmadd(VTAB + 96 * i, VTAB + 96 * (i - 1), AFF);
  const hex = hexDigits(k);
  let accInfinity = 1;
  for (let w = 64 - windows; w < 64; w++) {
    if (w !== 64 - windows) {
      e.pdbl(ACC, ACC), e.pdbl(ACC, ACC), e.pdbl(ACC, ACC), e.pdbl(ACC, ACC);
    }
    const d = parseInt(hex[w]!, 16);
    const nz = ((d | -d) >>> 31) & 1; // d ≠ 0, without a branch
    e.lookup(SEL, VTAB, VTAB_ENTRIES, 96, d - 1);
    e.padd(SUM, ACC, SEL);
    e.csel(ACC, SUM, 96, nz & (accInfinity ^ 1));
    e.csel(ACC, SEL, 96, nz & accInfinity);
    accInfinity &= nz ^ 1;
  }
}

let combReady = false;

/**
 * Fills the generator's comb from affine points given as (x, y) for window j, digit d at index
 * j·COMB_ENTRIES + d − 1 (built by the caller with the bigint code, once per process).
 */
function fillComb(e: Exports, xs: readonly bigint[], ys: readonly bigint[]): void {
  for (let i = 0; i < xs.length; i++) {
    toMont(e, COMB + 64 * i, xs[i]!);
    toMont(e, COMB + 64 * i + 32, ys[i]!);
  }
}

/** The comb width the caller must build the generator's table with for {@link sm2WasmInitBase}. */
export const SM2_WASM_COMB_WIDTH = COMB_WIDTH;

/**
 * Loads the generator's comb table (from `sm2BuildComb(Gx, Gy, SM2_WASM_COMB_WIDTH)`); idempotent.
 *
 * @param comb the table's affine coordinates
 */
export function sm2WasmInitBase(comb: { readonly xs: readonly bigint[]; readonly ys: readonly bigint[] }): void {
  if (combReady) return;
  if (comb.xs.length !== COMB_WINDOWS * COMB_ENTRIES) throw new RangeError("sm2 wasm: comb table has the wrong size");
  fillComb(instance(), comb.xs, comb.ys);
  combReady = true;
}

/** Whether {@link sm2WasmInitBase} has run. */
export function sm2WasmBaseReady(): boolean {
  return combReady;
}

/** k·P into ACC (Jacobian) on the comb at `table` (the generator's or a key's): constant-time in k. */
function combInto(e: Exports, table: number, k: bigint): void {
  const hex = hexDigits(k);
  const limbs = new Uint32Array(9); // little-endian, one spare limb for windows straddling the top
  for (let i = 0; i < 8; i++) limbs[i] = parseInt(hex.slice(56 - 8 * i, 64 - 8 * i), 16);
  e.csel(SEL + 64, ONE_M, 32, 1);
  let accInfinity = 1;
  for (let j = 0; j < COMB_WINDOWS; j++) {
    const bit = j * COMB_WIDTH, li = bit >>> 5, sh = bit & 31;
    const lo = limbs[li]! >>> sh;
    const hi = sh === 0 ? 0 : limbs[li + 1]! << (32 - sh);
    const d = (lo | hi) & COMB_ENTRIES;
    const nz = ((d | -d) >>> 31) & 1;
    e.lookup(SEL, table + j * COMB_ENTRIES * 64, COMB_ENTRIES, 64, d - 1);
    e.pmadd(SUM, ACC, SEL);
    e.csel(ACC, SUM, 96, nz & (accInfinity ^ 1));
    e.csel(ACC, SEL, 96, nz & accInfinity);
    accInfinity &= nz ^ 1;
  }
}

/**
 * k·G for a secret scalar 1 ≤ k < n, affine, on the generator's width-5 comb (load it first with
 * {@link sm2WasmInitBase}): one mixed addition per window whatever k is.
 *
 * @param k the scalar
 */
export function sm2WasmMultiplyBase(k: bigint): WasmAffine {
  const e = instance();
  if (!combReady) throw new Error("sm2 wasm: the generator's comb is not loaded");
  combInto(e, COMB, k);
  return toAffine(e, ACC);
}

/**
 * A public key's comb table loaded into one of the module's slots. A slot is reused for another key when all are
 * taken (least recently used out); {@link sm2WasmTableValid} then turns false and the caller loads it again.
 */
export interface Sm2WasmTable {
  /** The slot. */
  readonly slot: number;
  /** The slot's generation when this table was loaded. */
  readonly generation: number;
}

const slotGeneration = new Int32Array(KEY_SLOTS);
const slotLastUse = new Float64Array(KEY_SLOTS);
let slotsUsed = 0;
let useClock = 0;

function slotBase(slot: number): number {
  return COMB_END + slot * COMB_BYTES;
}

/**
 * Loads a key's comb (from `sm2BuildComb(x, y, SM2_WASM_COMB_WIDTH)`) into a free or the least recently used slot.
 *
 * @param comb the table's affine coordinates
 */
export function sm2WasmLoadTable(
  comb: { readonly xs: readonly bigint[]; readonly ys: readonly bigint[] },
): Sm2WasmTable {
  if (comb.xs.length !== COMB_WINDOWS * COMB_ENTRIES) throw new RangeError("sm2 wasm: comb table has the wrong size");
  const e = instance();
  let slot = 0;
  if (slotsUsed < KEY_SLOTS) {
    slot = slotsUsed++;
    const need = Math.ceil((slotBase(slot) + COMB_BYTES) / 65536) - e.mem.buffer.byteLength / 65536;
    if (need > 0) {
      e.mem.grow(need);
      u32 = new Uint32Array(e.mem.buffer);
      dv = new DataView(e.mem.buffer);
    }
  } else {
    for (let i = 1; i < KEY_SLOTS; i++) if (slotLastUse[i]! < slotLastUse[slot]!) slot = i;
  }
  const generation = ++slotGeneration[slot]!;
  slotLastUse[slot] = ++useClock;
  const base = slotBase(slot);
  for (let i = 0; i < comb.xs.length; i++) {
    toMont(e, base + 64 * i, comb.xs[i]!);
    toMont(e, base + 64 * i + 32, comb.ys[i]!);
  }
  return { slot, generation };
}

/**
 * Whether the table is still in its slot.
 *
 * @param table a loaded table
 */
export function sm2WasmTableValid(table: Sm2WasmTable): boolean {
  return slotGeneration[table.slot] === table.generation;
}

function useTable(table: Sm2WasmTable): number {
  if (!sm2WasmTableValid(table)) throw new Error("sm2 wasm: the key table was evicted");
  slotLastUse[table.slot] = ++useClock;
  return slotBase(table.slot);
}

/**
 * k·P for 1 ≤ k < n with P's loaded comb table, affine: constant-time in k like {@link sm2WasmMultiplyBase}.
 *
 * @param table P's table (valid: check {@link sm2WasmTableValid})
 * @param k the scalar
 */
export function sm2WasmMultiplyTable(table: Sm2WasmTable, k: bigint): WasmAffine {
  const e = instance();
  combInto(e, useTable(table), k);
  return toAffine(e, ACC);
}

/** Whether the Jacobian point at ptr has Z = 0 (the formulas' exceptional or infinite results). */
function zIsZero(ptr: number): boolean {
  const at = (ptr + 64) >> 2;
  let acc = 0;
  for (let i = 0; i < 8; i++) acc |= u32[at + i]!;
  return acc === 0;
}

/**
 * The affine x of s·G + t·Q for signature verification (public scalars 1 ≤ s, t < n): s·G on the generator's comb,
 * t·Q on Q's table when given, else on the fixed window over t's digits, one Jacobian addition and one inversion.
 * Returns undefined when the addition hits its exceptional case (s·G = ±t·Q: the sum is infinity or a doubling),
 * which the caller resolves with complete formulas.
 *
 * @param s the scalar of G
 * @param t the scalar of Q
 * @param q Q, affine (a valid point)
 * @param table Q's loaded table, if it has one
 */
export function sm2WasmVerifySum(s: bigint, t: bigint, q: WasmAffine, table?: Sm2WasmTable): bigint | undefined {
  const e = instance();
  if (!combReady) throw new Error("sm2 wasm: the generator's comb is not loaded");
  combInto(e, COMB, s);
  e.csel(SAVE, ACC, 96, 1);
  if (table) combInto(e, useTable(table), t);
  else variableInto(e, q.x, q.y, t, t.toString(16).length);
  e.padd(SUM, SAVE, ACC);
  if (zIsZero(SUM)) return undefined;
  return toAffine(e, SUM).x;
}

/**
 * Field operations on bigints through the module, for the differential tests: a·b, a + b, a − b and a⁻¹ mod p.
 *
 * @param op which operation
 * @param a the first operand in [0, p)
 * @param b the second operand in [0, p) (ignored by `"inv"`)
 */
export function sm2WasmField(op: "mul" | "add" | "sub" | "inv", a: bigint, b = 0n): bigint {
  const e = instance();
  const pa = SUM, pb = SUM + 32, pr = SEL;
  toMont(e, pa, a);
  toMont(e, pb, b);
  if (op === "mul") e.fmul(pr, pa, pb);
  else if (op === "add") e.fadd(pr, pa, pb);
  else if (op === "sub") e.fsub(pr, pa, pb);
  else invert(e, pr, pa);
  return fromMont(e, pr);
}
