/**
 * Differential tests: the WebAssembly SM2 field and scalar multiplications against the bigint reference
 * (`../_sm2_jacobian.ts`, itself tested against noble) on edge and random inputs (bounded counts).
 */
import { equal, ok } from "node:assert/strict";
import { jacobianToAffine, sm2BuildComb, sm2MultiplySecret } from "../_sm2_jacobian.ts";
import { SM2_CURVE, Sm2Point, Sm2PrivateKey, Sm2PublicKey } from "../sm2.ts";
import {
  SM2_WASM_COMB_WIDTH,
  sm2WasmField,
  sm2WasmInitBase,
  sm2WasmLoadTable,
  sm2WasmMultiply,
  sm2WasmMultiplyBase,
  sm2WasmMultiplyTable,
  sm2WasmTableValid,
  sm2WasmVerifySum,
} from "./_sm2_wasm.ts";
import { SM2_WASM, sm2WasmWideModule } from "./_sm2_wasm_module.ts";

const P = SM2_CURVE.p;
const N = SM2_CURVE.n;

function random256(): bigint {
  let v = 0n;
  for (const b of crypto.getRandomValues(new Uint8Array(32))) v = (v << 8n) | BigInt(b);
  return v;
}

const FIELD_EDGES = [0n, 1n, 2n, P - 1n, P - 2n, 1n << 224n, (1n << 224n) - 1n, 1n << 255n, (1n << 96n) - 1n, P >> 1n];

Deno.test("sm2WasmField matches bigint for edge and random elements", () => {
  const pairs: [bigint, bigint][] = [];
  for (const a of FIELD_EDGES) for (const b of FIELD_EDGES) pairs.push([a, b]);
  for (let i = 0; i < 3000; i++) pairs.push([random256() % P, random256() % P]);
  for (const [a, b] of pairs) {
    equal(sm2WasmField("mul", a, b), (a * b) % P, `mul ${a} ${b}`);
    equal(sm2WasmField("add", a, b), (a + b) % P, `add ${a} ${b}`);
    equal(sm2WasmField("sub", a, b), (((a - b) % P) + P) % P, `sub ${a} ${b}`);
  }
  // Squaring is its own function: a·a goes through fmul, inversion through fsqr/fsqrn.
  for (const a of [...FIELD_EDGES.slice(1), ...Array.from({ length: 200 }, () => random256() % P)]) {
    if (a === 0n) continue;
    equal((sm2WasmField("inv", a) * a) % P, 1n, `inv ${a}`);
  }
  equal(sm2WasmField("inv", 0n), 0n);
});

const GX = SM2_CURVE.Gx, GY = SM2_CURVE.Gy;

/** Scalars at the window boundaries (4-bit windows, 5-bit comb windows) and at the ends. */
const EDGES: bigint[] = [
  1n,
  2n,
  15n,
  16n,
  17n,
  31n,
  32n,
  33n,
  (1n << 252n) - 1n,
  1n << 252n,
  1n << 255n,
  (1n << 255n) + 31n,
  N - 1n,
  N - 2n,
  N - 16n,
  N - 32n,
  0x1111111111111111111111111111111111111111111111111111111111111111n,
  0x8421084210842108421084210842108421084210842108421084210842108421n % N,
];

Deno.test("sm2WasmMultiply matches the bigint fixed window for edge and random scalars and points", () => {
  const points: { x: bigint; y: bigint }[] = [{ x: GX, y: GY }];
  for (let i = 0; i < 4; i++) points.push(jacobianToAffine(sm2MultiplySecret(GX, GY, (random256() % (N - 1n)) + 1n)));
  for (const { x, y } of points) {
    const scalars = [...EDGES, ...Array.from({ length: 10 }, () => (random256() % (N - 1n)) + 1n)];
    for (const k of scalars) {
      const want = jacobianToAffine(sm2MultiplySecret(x, y, k));
      const got = sm2WasmMultiply(x, y, k);
      ok(got.x === want.x && got.y === want.y, `k = ${k.toString(16)}`);
    }
  }
});

Deno.test("sm2WasmMultiplyBase matches the bigint fixed window for edge and random scalars", () => {
  sm2WasmInitBase(sm2BuildComb(GX, GY, SM2_WASM_COMB_WIDTH));
  const scalars = [...EDGES, ...Array.from({ length: 60 }, () => (random256() % (N - 1n)) + 1n)];
  for (const k of scalars) {
    const want = jacobianToAffine(sm2MultiplySecret(GX, GY, k));
    const got = sm2WasmMultiplyBase(k);
    ok(got.x === want.x && got.y === want.y, `k = ${k.toString(16)}`);
  }
});

Deno.test("sm2WasmMultiply agrees with ECDH through the public API", () => {
  for (let i = 0; i < 5; i++) {
    const a = Sm2PrivateKey.generate(), b = Sm2PrivateKey.generate();
    equal(
      Array.from(a.ecdh(b.publicKey.toBytes())).join(),
      Array.from(b.ecdh(a.publicKey.toBytes())).join(),
    );
  }
});

Deno.test("sm2WasmMultiplyTable matches the bigint fixed window; evicted slots turn invalid and reload", () => {
  const keys = Array.from(
    { length: 3 },
    () => jacobianToAffine(sm2MultiplySecret(GX, GY, random256() % (N - 1n) + 1n)),
  );
  for (const { x, y } of keys) {
    const table = sm2WasmLoadTable(sm2BuildComb(x, y, SM2_WASM_COMB_WIDTH));
    for (const k of [...EDGES, ...Array.from({ length: 8 }, () => random256() % (N - 1n) + 1n)]) {
      const want = jacobianToAffine(sm2MultiplySecret(x, y, k));
      const got = sm2WasmMultiplyTable(table, k);
      ok(got.x === want.x && got.y === want.y, `k = ${k.toString(16)}`);
    }
  }
  // 32 slots: loading 33 more tables evicts the first of them (least recently used).
  const { x, y } = keys[0]!;
  const comb = sm2BuildComb(x, y, SM2_WASM_COMB_WIDTH);
  const first = sm2WasmLoadTable(comb);
  for (let i = 0; i < 32; i++) sm2WasmLoadTable(comb);
  equal(sm2WasmTableValid(first), false);
  const again = sm2WasmLoadTable(comb);
  const k = random256() % (N - 1n) + 1n;
  const want = jacobianToAffine(sm2MultiplySecret(x, y, k));
  equal(sm2WasmMultiplyTable(again, k).x, want.x);
});

Deno.test("sm2WasmVerifySum matches noble's s·G + t·Q and reports the exceptional sums", () => {
  sm2WasmInitBase(sm2BuildComb(GX, GY, SM2_WASM_COMB_WIDTH));
  const d = random256() % (N - 1n) + 1n;
  const q = jacobianToAffine(sm2MultiplySecret(GX, GY, d));
  const table = sm2WasmLoadTable(sm2BuildComb(q.x, q.y, SM2_WASM_COMB_WIDTH));
  for (let i = 0; i < 20; i++) {
    const s = random256() % (N - 1n) + 1n, t = random256() % (N - 1n) + 1n;
    const want = Sm2Point.BASE.multiply(s).add(Sm2Point.fromAffine(q).multiply(t)).toAffine().x;
    equal(sm2WasmVerifySum(s, t, q), want);
    equal(sm2WasmVerifySum(s, t, q, table), want);
  }
  // s·G = t·Q (a doubling) and s·G = −t·Q (infinity): left to the caller.
  const t = random256() % (N - 1n) + 1n;
  const s = (t * d) % N;
  equal(sm2WasmVerifySum(s, t, q), undefined);
  equal(sm2WasmVerifySum(N - s, t, q, table), undefined);
});

Deno.test("Sm2PublicKey verify and ECDH agree before and after the key gets its table", () => {
  const key = Sm2PrivateKey.generate();
  const msg = new TextEncoder().encode("table");
  const pub = Sm2PublicKey.fromBytes(key.publicKey.toBytes());
  for (let i = 0; i < 20; i++) {
    const sig = key.sign(msg);
    ok(pub.verify(msg, sig), `use ${i}`);
    equal(pub.verify(new TextEncoder().encode("other"), sig), false, `use ${i}`);
    const other = Sm2PrivateKey.generate();
    equal(Array.from(other.ecdh(pub)).join(), Array.from(key.ecdh(other.publicKey.toBytes())).join(), `use ${i}`);
  }
});

Deno.test({
  name: "the wide build's field and point functions give the same bytes as the base build",
  ignore: sm2WasmWideModule() === undefined, // the runtime lacks wide arithmetic (`deno task test` enables it)
  fn() {
    type Fns = Record<string, (...a: number[]) => void> & { mem: WebAssembly.Memory };
    const wide = new WebAssembly.Instance(sm2WasmWideModule()!).exports as unknown as Fns;
    const base = new WebAssembly.Instance(new WebAssembly.Module(SM2_WASM)).exports as unknown as Fns;
    const views = [new DataView(wide.mem.buffer), new DataView(base.mem.buffer)];
    const put = (at: number, v: bigint) => {
      for (const dv of views) {
        for (let i = 0; i < 4; i++) dv.setBigUint64(at + 8 * i, (v >> BigInt(64 * i)) & 0xffffffffffffffffn, true);
      }
    };
    const same = (at: number, len: number, what: string) => {
      for (let i = 0; i < len; i += 8) {
        equal(views[0]!.getBigUint64(at + i, true), views[1]!.getBigUint64(at + i, true), `${what}: byte ${i} differs`);
      }
    };
    const A = 2048, B = A + 96, Q = B + 96, OUT = Q + 96;
    const values = [...FIELD_EDGES, ...Array.from({ length: 400 }, () => random256() % P)];
    for (let i = 0; i < values.length; i++) {
      // Three Jacobian-sized operands of field elements (the formulas are algebraic: any elements will do).
      for (let k = 0; k < 9; k++) put(A + 32 * k, values[(i * 7 + k * 13) % values.length]!);
      for (
        const [fn, args, len] of [
          ["fmul", [OUT, A, B], 32],
          ["fsqr", [OUT, A], 32],
          ["fmul", [OUT, A, A], 32],
          ["pdbl", [OUT, A], 96],
          ["padd", [OUT, A, B], 96],
          ["pmadd", [OUT, A, Q], 96],
        ] as const
      ) {
        wide[fn]!(...args);
        base[fn]!(...args);
        same(OUT, len, `${fn} #${i}`);
      }
    }
  },
});
