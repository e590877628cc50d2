/** The Jacobian secret-scalar paths against noble's `Point.multiply` (complete formulas, its own code). */
import { ok } from "node:assert/strict";
import {
  jacobianToAffine,
  sm2BuildComb,
  sm2CombMultiply,
  sm2MultiplyBase,
  sm2MultiplySecret,
} from "./_sm2_jacobian.ts";
import { SM2_CURVE, Sm2Point, Sm2PrivateKey } from "./sm2.ts";

const N = SM2_CURVE.n;

function randomScalar(): bigint {
  return BigInt("0x" + Array.from(Sm2PrivateKey.generate().toBytes(), (b) => b.toString(16).padStart(2, "0")).join(""));
}

/** Scalars at the window boundaries of both methods (4-bit windows, 7-bit comb windows) and at the ends. */
const EDGES: bigint[] = [
  1n,
  2n,
  3n,
  15n,
  16n,
  17n,
  127n,
  128n,
  129n,
  255n,
  256n,
  (1n << 252n) - 1n,
  1n << 252n,
  (1n << 252n) + 1n,
  1n << 255n,
  (1n << 255n) + 127n,
  N - 1n,
  N - 2n,
  N - 16n,
  N - 128n,
  0x1111111111111111111111111111111111111111111111111111111111111111n,
  0x8000000000000000000000000000000000000000000000000000000000000000n,
];

function sameAffine(got: { x: bigint; y: bigint }, want: Sm2Point, what: string): void {
  const w = want.toAffine();
  ok(got.x === w.x && got.y === w.y, what);
}

Deno.test("sm2MultiplyBase matches noble's BASE.multiply for edge and random scalars", () => {
  for (const k of [...EDGES, ...Array.from({ length: 40 }, randomScalar)]) {
    sameAffine(jacobianToAffine(sm2MultiplyBase(k)), Sm2Point.BASE.multiply(k), `k = ${k.toString(16)}`);
  }
});

Deno.test("sm2MultiplySecret matches noble's multiply for edge and random scalars on random points", () => {
  const points = [Sm2Point.BASE, ...Array.from({ length: 4 }, () => Sm2Point.BASE.multiply(randomScalar()))];
  for (const p of points) {
    const { x, y } = p.toAffine();
    for (const k of [...EDGES, ...Array.from({ length: 10 }, randomScalar)]) {
      sameAffine(jacobianToAffine(sm2MultiplySecret(x, y, k)), p.multiply(k), `k = ${k.toString(16)}`);
    }
  }
});

Deno.test("sm2MultiplySecret and sm2MultiplyBase give infinity (Z = 0) for k = 0 and k = n", () => {
  const { x, y } = Sm2Point.BASE.toAffine();
  ok(sm2MultiplySecret(x, y, 0n).Z === 0n);
  ok(sm2MultiplyBase(0n).Z === 0n);
  ok(sm2MultiplyBase(N).Z % SM2_CURVE.p === 0n);
});

Deno.test("sm2CombMultiply matches noble's multiply for several window widths on a random point", () => {
  const p = Sm2Point.BASE.multiply(randomScalar());
  const { x, y } = p.toAffine();
  for (const width of [3, 5, 6, 8]) {
    const comb = sm2BuildComb(x, y, width);
    for (const k of [...EDGES, ...Array.from({ length: 6 }, randomScalar)]) {
      sameAffine(jacobianToAffine(sm2CombMultiply(comb, k)), p.multiply(k), `width ${width}, k = ${k.toString(16)}`);
    }
  }
});
