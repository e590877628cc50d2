import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { Sm4Ctr } from "./sm4_ctr.ts";
import { hex, type NodeCipherOp, nodeCiphers, seeded, SIZES, toHex } from "../../tests/helpers/sm4.ts";

Deno.test("Sm4Ctr matches node's OpenSSL sm4-ctr, including 128-bit counter carries", async () => {
  const ivs = [
    hex("00000000000000000000000000000000"),
    hex("0123456789abcdef00000000fffffff0"),
    hex("0123456789abcdefffffffffffffffff"),
    hex("fffffffffffffffffffffffffffffffe"),
  ];
  const cases: { key: Uint8Array; iv: Uint8Array; data: Uint8Array }[] = [];
  for (const [i, n] of SIZES.entries()) {
    cases.push({ key: seeded(16, 1100 + i), iv: seeded(16, 1200 + i), data: seeded(n, 1300 + i) });
  }
  for (const [i, iv] of ivs.entries()) cases.push({ key: seeded(16, 1400 + i), iv, data: seeded(1000, 1500 + i) });
  const ops: NodeCipherOp[] = cases.map((c) => ({ alg: "sm4-ctr", key: c.key, iv: c.iv, data: c.data }));
  const want = await nodeCiphers(ops);
  for (const [i, c] of cases.entries()) {
    const ctr = new Sm4Ctr(c.key);
    assertEquals(toHex(ctr.xor(c.iv, c.data)), toHex(want[i]!), `case ${i} size ${c.data.length}`);
    assertEquals(toHex(ctr.xor(c.iv, want[i]!)), toHex(c.data));
  }
});

Deno.test("Sm4Ctr works in place and into a larger output", () => {
  const ctr = new Sm4Ctr(seeded(16, 1));
  const iv = seeded(16, 2), data = seeded(1000, 3);
  const want = ctr.xor(iv, data);
  const buf = data.slice();
  assertEquals(ctr.xor(iv, buf, buf), buf);
  assertEquals(toHex(buf), toHex(want));
  const big = new Uint8Array(2000);
  ctr.xor(iv, data, big);
  assertEquals(toHex(big.subarray(0, 1000)), toHex(want));
  // Overlapping but shifted views must still give the right answer.
  const shared = new Uint8Array(1100);
  shared.set(data, 0);
  ctr.xor(iv, shared.subarray(0, 1000), shared.subarray(50, 1050));
  assertEquals(toHex(shared.subarray(50, 1050)), toHex(want));
});

Deno.test("Sm4Ctr rejects bad keys, IVs and short outputs", () => {
  assertThrows(() => new Sm4Ctr(new Uint8Array(0)), /sm4: key must be 16 bytes/);
  const ctr = new Sm4Ctr(seeded(16, 1));
  assertThrows(() => ctr.xor(new Uint8Array(12), new Uint8Array(4)), /sm4-ctr: iv must be 16 bytes/);
  assertThrows(() => ctr.xor(new Uint8Array(16), new Uint8Array(4), new Uint8Array(3)), /output too small/);
});
