/**
 * Variable-time scalar multiplication of an SM2 point by a *public* scalar, and the field prime. Internal to
 * `lib/crypto`. `sm2.ts` no longer multiplies with it (its WebAssembly fixed window measured ~2× faster, see
 * `wasm/_sm2_wasm.ts`); it stays as a second, independent bigint implementation for tests.
 *
 * noble's `multiplyUnsafe` uses complete projective formulas for a general `a`: ~16 field multiplications
 * per doubling. SM2 has a = −3, so Jacobian doubling needs 8 (dbl-2001-b: 3M + 5S), and additions of affine
 * table points need 11 (madd: 8M + 3S). With a width-5 wNAF this made a fresh-key multiplication ~1.7×
 * faster (bench/crypto_sm2.ts, "SM2 verify, a new signer each call"). It branches on the scalar and the
 * points: never pass it a secret.
 *
 * @module
 */

import { invert } from "@noble/curves/abstract/modular.js";

/** The SM2 field prime (GB/T 32918.5); `sm2.ts` re-checks it equals its curve's. */
export const SM2_P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFFn;
const P = SM2_P;

function mod(a: bigint): bigint {
  const r = a % P;
  return r < 0n ? r + P : r;
}

/** A Jacobian point: x = X/Z², y = Y/Z³; Z = 0 is the point at infinity. */
interface Jac {
  X: bigint;
  Y: bigint;
  Z: bigint;
}

/** An affine point. */
interface Aff {
  x: bigint;
  y: bigint;
}

function double(p: Jac): Jac {
  if (p.Z === 0n || p.Y === 0n) return { X: 0n, Y: 1n, Z: 0n };
  const delta = (p.Z * p.Z) % P;
  const gamma = (p.Y * p.Y) % P;
  const beta = (p.X * gamma) % P;
  const alpha = mod(3n * mod(p.X - delta) * (p.X + delta));
  const X3 = mod(alpha * alpha - 8n * beta);
  const yz = p.Y + p.Z;
  const Z3 = mod(yz * yz - gamma - delta);
  const Y3 = mod(alpha * (4n * beta - X3) - 8n * ((gamma * gamma) % P));
  return { X: X3, Y: Y3, Z: Z3 };
}

/** p + q for Jacobian p and affine q (madd-2004-hmv). */
function addAffine(p: Jac, q: Aff): Jac {
  if (p.Z === 0n) return { X: q.x, Y: q.y, Z: 1n };
  const z2 = (p.Z * p.Z) % P;
  const h = mod(q.x * z2 - p.X);
  const r = mod(((q.y * z2) % P) * p.Z - p.Y);
  if (h === 0n) return r === 0n ? double(p) : { X: 0n, Y: 1n, Z: 0n };
  const hh = (h * h) % P;
  const hhh = (hh * h) % P;
  const v = (p.X * hh) % P;
  const X3 = mod(r * r - hhh - 2n * v);
  const Y3 = mod(r * (v - X3) - p.Y * hhh);
  const Z3 = (p.Z * h) % P;
  return { X: X3, Y: Y3, Z: Z3 };
}

const WINDOW = 5;

/** Odd multiples P, 3P, ..., (2^(w-1) - 1)P in affine form, with one batched inversion. */
function oddMultiples(p: Aff): Aff[] {
  const jac: Jac[] = [{ X: p.x, Y: p.y, Z: 1n }];
  const d = double(jac[0]!);
  if (d.Z === 0n) throw new Error("SM2: point of order 2 on a prime-order curve");
  const dz = invert(d.Z, P);
  const dz2 = (dz * dz) % P;
  const twoP = { x: (d.X * dz2) % P, y: (((d.Y * dz2) % P) * dz) % P };
  for (let i = 1; i < 1 << (WINDOW - 2); i++) jac.push(addAffine(jac[i - 1]!, twoP));
  // For a prime-order group and a point ≠ O, these multiples are never O (they are below n).
  // Montgomery's trick: one inversion for all Z.
  const prefix: bigint[] = [];
  let accZ = 1n;
  for (const j of jac) {
    prefix.push(accZ);
    accZ = (accZ * j.Z) % P;
  }
  let invAcc = invert(accZ, P);
  const inv: bigint[] = new Array(jac.length);
  for (let i = jac.length - 1; i >= 0; i--) {
    inv[i] = (invAcc * prefix[i]!) % P;
    invAcc = (invAcc * jac[i]!.Z) % P;
  }
  return jac.map((j, i) => {
    const zi = inv[i]!;
    const zi2 = (zi * zi) % P;
    return { x: (j.X * zi2) % P, y: (((j.Y * zi2) % P) * zi) % P };
  });
}

function wnaf(k: bigint): Int8Array {
  const out = new Int8Array(258);
  const full = 1n << BigInt(WINDOW);
  const half = 1n << BigInt(WINDOW - 1);
  let i = 0;
  while (k > 0n) {
    if (k & 1n) {
      let d = k & (full - 1n);
      if (d >= half) d -= full;
      out[i] = Number(d);
      k -= d;
    }
    k >>= 1n;
    i++;
  }
  return out.subarray(0, i);
}

/** A point in homogeneous projective coordinates (x = X/Z, y = Y/Z), as noble's points are. */
export interface ProjectiveXYZ {
  /** X. */
  readonly X: bigint;
  /** Y. */
  readonly Y: bigint;
  /** Z (0 for the point at infinity). */
  readonly Z: bigint;
}

/**
 * Returns k·(x, y) for a public scalar 0 ≤ k < n, variable time, in homogeneous projective coordinates.
 *
 * @param x the affine x of a valid point other than infinity (not checked here)
 * @param y the affine y
 * @param k the public scalar
 */
export function sm2MultiplyPublic(x: bigint, y: bigint, k: bigint): ProjectiveXYZ {
  if (k === 0n) return { X: 0n, Y: 1n, Z: 0n };
  const table = oddMultiples({ x, y });
  const neg = table.map((a) => ({ x: a.x, y: a.y === 0n ? 0n : P - a.y }));
  const digits = wnaf(k);
  let acc: Jac = { X: 0n, Y: 1n, Z: 0n };
  for (let i = digits.length - 1; i >= 0; i--) {
    acc = double(acc);
    const d = digits[i]!;
    if (d > 0) acc = addAffine(acc, table[(d - 1) >> 1]!);
    else if (d < 0) acc = addAffine(acc, neg[(-d - 1) >> 1]!);
  }
  if (acc.Z === 0n) return { X: 0n, Y: 1n, Z: 0n };
  // Jacobian (X, Y, Z) is the homogeneous projective point (X·Z, Y, Z³): no inversion needed.
  return { X: (acc.X * acc.Z) % P, Y: acc.Y, Z: (((acc.Z * acc.Z) % P) * acc.Z) % P };
}
