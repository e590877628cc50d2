/**
 * SM2 scalar multiplication for *secret* scalars on bigint Jacobian coordinates with a = −3, private to
 * `lib/crypto`: a variable-base fixed-window multiplication and a fixed-base comb over a precomputed table.
 * `sm2.ts` now multiplies in WebAssembly (`wasm/_sm2_wasm.ts`, ~2–4× faster) and uses this module only to build
 * comb tables ({@link sm2BuildComb}, loaded into the WebAssembly module); the multiplications stay as the
 * reference the differential tests compare the WebAssembly code against. The figures below are from when this
 * was the production path.
 *
 * Why not noble's `Point.multiply`: its complete projective formulas for a general `a` cost ~14 field
 * multiplications per addition and ~13 per doubling, each followed by a generic reduction. Jacobian doubling
 * with a = −3 needs 8 (dbl-2001-b), addition 16 (add-2007-bl) and addition of an affine point 11
 * (madd-2007-bl), and sums feeding a multiplication are reduced once, by the multiplication's `% P`. Measured
 * against noble (bench/crypto_sm2.ts, same machine and load): ECDH with a fresh peer key ~1300 → ~2500 ops/s,
 * decryption ~1300 → ~2600, key generation ~9000 → ~14000, signing ~7700 → ~11500. The multiplication's cost
 * is now mostly its 252 doublings (8 big-int multiplications and reductions each, ~90 ns apiece): a signed
 * width-5 window over an affine table measured only ~2.5 % faster and is not used.
 *
 * Side channels, as for noble's constant-time path: the sequence of point operations does not depend on the
 * scalar (every window adds, also for a zero digit), table lookups scan every entry of the window, and the
 * cases the incomplete formulas cannot compute (the accumulator or the digit being zero) are resolved by
 * selecting among results that were all computed. JavaScript bigint arithmetic itself is not constant-time.
 *
 * Exceptional cases, and why only those two occur: in both loops the accumulator holds m·P and the addend d·P
 * (scaled alike) with 0 < d < 2^w, where m + d is a prefix (variable-base, after scaling m is a multiple of
 * 2^w) or suffix (comb, m < the addend's weight) of the scalar's digits, so 0 < m + d ≤ k < n. Hence m·P is
 * never ±d·P unless m = 0, the accumulator at infinity, which is selected around.
 *
 * @module
 */

import { invert } from "@noble/curves/abstract/modular.js";
import { SM2_P } from "./sm2_vartime.ts";

const P = SM2_P;
const GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7n;
const GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0n;

/** A Jacobian point: x = X/Z², y = Y/Z³; Z = 0 is the point at infinity. Coordinates are in [0, P). */
export interface Jacobian {
  readonly X: bigint;
  readonly Y: bigint;
  readonly Z: bigint;
}

/** An affine point. */
export interface Affine {
  readonly x: bigint;
  readonly y: bigint;
}

function mod(a: bigint): bigint {
  const r = a % P;
  return r < 0n ? r + P : r;
}

/** 2p (dbl-2001-b, a = −3): 3M + 5S. Infinity (Z = 0) maps to Z = 0. */
export function jacobianDouble(p: Jacobian): Jacobian {
  const { X, Y, Z } = p;
  const delta = (Z * Z) % P;
  const gamma = (Y * Y) % P;
  const beta = (X * gamma) % P;
  // alpha only feeds multiplications: any representative in (−P, P) will do.
  const alpha = (3n * (X - delta) * (X + delta)) % P;
  const X3 = mod(alpha * alpha - (beta << 3n));
  const Z3 = ((Y * Z) << 1n) % P; // (Y + Z)² − γ − δ = 2YZ: one multiplication either way, fewer big-int ops
  const Y3 = mod(alpha * ((beta << 2n) - X3) - (((gamma * gamma) % P) << 3n));
  return { X: X3, Y: Y3, Z: Z3 };
}

/** p + q for p ≠ ±q, neither at infinity (add-2007-bl, Z3 = 2·Z1·Z2·H): 11M + 5S. */
export function jacobianAdd(p: Jacobian, q: Jacobian): Jacobian {
  const z1z1 = (p.Z * p.Z) % P;
  const z2z2 = (q.Z * q.Z) % P;
  const u1 = (p.X * z2z2) % P;
  const u2 = (q.X * z1z1) % P;
  const s1 = (p.Y * q.Z * z2z2) % P;
  const s2 = (q.Y * p.Z * z1z1) % P;
  const h = u2 - u1;
  const i = ((h * h) << 2n) % P;
  const j = (h * i) % P;
  const r = (s2 - s1) << 1n;
  const v = (u1 * i) % P;
  const X3 = mod(r * r - j - (v << 1n));
  const Y3 = mod(r * (v - X3) - ((s1 * j) << 1n));
  const Z3 = mod((p.Z * q.Z * h) << 1n);
  return { X: X3, Y: Y3, Z: Z3 };
}

/** p + (x, y) for an affine point ≠ ±p, p not at infinity (madd-2007-bl, Z3 = 2·Z1·H): 7M + 4S. */
export function jacobianAddAffine(p: Jacobian, x: bigint, y: bigint): Jacobian {
  const z1z1 = (p.Z * p.Z) % P;
  const u2 = (x * z1z1) % P;
  const s2 = (y * p.Z * z1z1) % P;
  const h = u2 - p.X;
  const i = ((h * h) << 2n) % P;
  const j = (h * i) % P;
  const r = (s2 - p.Y) << 1n;
  const v = (p.X * i) % P;
  const X3 = mod(r * r - j - (v << 1n));
  const Y3 = mod(r * (v - X3) - ((p.Y * j) << 1n));
  const Z3 = mod((p.Z * h) << 1n);
  return { X: X3, Y: Y3, Z: Z3 };
}

/** The affine form of p (one inversion); p must not be at infinity. */
export function jacobianToAffine(p: Jacobian): Affine {
  const zi = invert(p.Z, P);
  const zi2 = (zi * zi) % P;
  return { x: (p.X * zi2) % P, y: (((p.Y * zi2) % P) * zi) % P };
}

const INFINITY: Jacobian = { X: 1n, Y: 1n, Z: 0n };
const WINDOW = 4;
const WINDOWS = 64; // 256 / WINDOW: every scalar below n < 2^256

/**
 * k·(x, y) for a secret scalar 1 ≤ k < n and a valid affine point (not checked here): a width-4 fixed window
 * over a 15-entry Jacobian table, 252 doublings and 64 additions whatever k is.
 *
 * @param x the affine x of a point on the curve
 * @param y the affine y
 * @param k the scalar
 */
export function sm2MultiplySecret(x: bigint, y: bigint, k: bigint): Jacobian {
  const table: Jacobian[] = new Array(16);
  const p1: Jacobian = { X: x, Y: y, Z: 1n };
  table[0] = p1; // never used as a result: a zero digit keeps the accumulator
  table[1] = p1;
  table[2] = jacobianDouble(p1);
  for (let i = 3; i < 16; i++) table[i] = jacobianAddAffine(table[i - 1]!, x, y);
  let acc = INFINITY;
  let accInfinity = true;
  for (let w = WINDOWS - 1; w >= 0; w--) {
    if (w !== WINDOWS - 1) {
      for (let i = 0; i < WINDOW; i++) acc = jacobianDouble(acc);
    }
    const d = Number((k >> BigInt(w * WINDOW)) & 15n);
    let sel = table[1]!;
    for (let i = 2; i < 16; i++) sel = i === d ? table[i]! : sel;
    const sum = jacobianAdd(acc, sel);
    acc = d === 0 ? acc : accInfinity ? sel : sum;
    accInfinity = accInfinity && d === 0;
  }
  return acc;
}

/**
 * A fixed-base comb table for one point P: for each window j, the affine points d·2^(w·j)·P for d = 1..2^w − 1.
 * Multiplication by any scalar is then one mixed addition per window.
 */
export interface Sm2Comb {
  /** Window width w in bits. */
  readonly width: number;
  /** Number of windows, ceil(256 / w). */
  readonly windows: number;
  /** x of window j, digit d at index j·(2^w − 1) + d − 1. */
  readonly xs: readonly bigint[];
  /** y, likewise. */
  readonly ys: readonly bigint[];
}

/**
 * Builds the comb table of the valid affine point (x, y) with window width `width` (256 / w windows of
 * 2^w − 1 points; width 6 is 2709 points, ~260 KB and ~6 ms; width 7 is 4699 points).
 *
 * @param x the affine x of a point on the curve (not checked here)
 * @param y the affine y
 * @param width the window width in bits (2..8)
 */
export function sm2BuildComb(x: bigint, y: bigint, width: number): Sm2Comb {
  const windows = Math.ceil(256 / width);
  const entries = (1 << width) - 1;
  const jac: Jacobian[] = new Array(windows * entries);
  let base: Jacobian = { X: x, Y: y, Z: 1n };
  for (let j = 0; j < windows; j++) {
    const o = j * entries;
    jac[o] = base;
    jac[o + 1] = jacobianDouble(base);
    for (let d = 2; d < entries; d++) jac[o + d] = jacobianAdd(jac[o + d - 1]!, base);
    base = jacobianAdd(jac[o + entries - 1]!, base); // 2^w·base = (2^w − 1)·base + base
  }
  // Montgomery's trick: one inversion for all Z.
  const n = jac.length;
  const prefix: bigint[] = new Array(n);
  let acc = 1n;
  for (let i = 0; i < n; i++) {
    prefix[i] = acc;
    acc = (acc * jac[i]!.Z) % P;
  }
  let inv = invert(acc, P);
  const xs: bigint[] = new Array(n);
  const ys: bigint[] = new Array(n);
  for (let i = n - 1; i >= 0; i--) {
    const p = jac[i]!;
    const zi = (inv * prefix[i]!) % P;
    inv = (inv * p.Z) % P;
    const zi2 = (zi * zi) % P;
    xs[i] = (p.X * zi2) % P;
    ys[i] = (((p.Y * zi2) % P) * zi) % P;
  }
  return { width, windows, xs, ys };
}

/**
 * k·P for a secret scalar 1 ≤ k < n with P's comb table: one addition of an affine table point per window
 * whatever k is, each lookup scanning the window's 2^w − 1 entries.
 *
 * @param comb the table of P
 * @param k the scalar
 */
export function sm2CombMultiply(comb: Sm2Comb, k: bigint): Jacobian {
  const { width, windows, xs, ys } = comb;
  const entries = (1 << width) - 1;
  const mask = BigInt(entries);
  let acc = INFINITY;
  let accInfinity = true;
  for (let j = 0; j < windows; j++) {
    const d = Number((k >> BigInt(j * width)) & mask);
    const o = j * entries;
    const want = o + d - 1;
    let sx = xs[o]!;
    let sy = ys[o]!;
    for (let i = o + 1; i < o + entries; i++) {
      const hit = i === want;
      sx = hit ? xs[i]! : sx;
      sy = hit ? ys[i]! : sy;
    }
    const sum = jacobianAddAffine(acc, sx, sy);
    acc = d === 0 ? acc : accInfinity ? { X: sx, Y: sy, Z: 1n } : sum;
    accInfinity = accInfinity && d === 0;
  }
  return acc;
}

let baseComb: Sm2Comb | undefined;

/**
 * k·G for a secret scalar 1 ≤ k < n, on G's width-7 comb (37 windows of 127 points, built on first use,
 * ~10 ms once per process; ~0.5 MB).
 *
 * @param k the scalar
 */
export function sm2MultiplyBase(k: bigint): Jacobian {
  return sm2CombMultiply(baseComb ??= sm2BuildComb(GX, GY, 7), k);
}
