import { ok } from "node:assert/strict";
import { SM2_CURVE, Sm2Point } from "./sm2.ts";
import { sm2MultiplyPublic } from "./sm2_vartime.ts";

const n = SM2_CURVE.n;

function randomScalar(): bigint {
  let v = 0n;
  for (const x of crypto.getRandomValues(new Uint8Array(40))) v = (v << 8n) | BigInt(x);
  return v % n;
}

function check(point: Sm2Point, k: bigint): void {
  const { x, y } = point.toAffine();
  const r = sm2MultiplyPublic(x, y, k);
  const got = r.Z === 0n ? Sm2Point.ZERO : new Sm2Point(r.X, r.Y, r.Z);
  ok(got.equals(point.multiplyUnsafe(k)), `k = ${k.toString(16)}`);
}

Deno.test("sm2MultiplyPublic matches noble's multiplyUnsafe for edge scalars", () => {
  const q = Sm2Point.BASE.multiply(randomScalar() || 1n);
  for (const k of [0n, 1n, 2n, 3n, 15n, 16n, 17n, 31n, 32n, 33n, n - 1n, n - 2n, n - 16n, (n - 1n) / 2n, 1n << 255n]) {
    check(q, k);
    check(Sm2Point.BASE, k);
  }
});

Deno.test("sm2MultiplyPublic matches noble's multiplyUnsafe for random points and scalars", () => {
  for (let i = 0; i < 100; i++) check(Sm2Point.BASE.multiply(randomScalar() || 1n), randomScalar());
});
