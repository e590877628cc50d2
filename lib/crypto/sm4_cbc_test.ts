import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import smCrypto from "sm-crypto";
import { sm4 as smV2 } from "sm-crypto-v2";
import { Sm4Cbc } from "./sm4_cbc.ts";
import { type NodeCipherOp, nodeCiphers, seeded, SIZES, toHex } from "../../tests/helpers/sm4.ts";

Deno.test("Sm4Cbc matches node's OpenSSL sm4-cbc with and without padding, both ways", async () => {
  const cases: { key: Uint8Array; iv: Uint8Array; data: Uint8Array; pad: boolean }[] = [];
  for (const [i, n] of SIZES.entries()) {
    const key = seeded(16, 500 + i), iv = seeded(16, 600 + i), data = seeded(n, 700 + i);
    cases.push({ key, iv, data, pad: true });
    if (n % 16 === 0) cases.push({ key, iv, data, pad: false });
  }
  const ops: NodeCipherOp[] = cases.map((c) => ({ alg: "sm4-cbc", key: c.key, iv: c.iv, data: c.data, pad: c.pad }));
  const want = await nodeCiphers(ops);
  // And node decrypting our output, so decryption is checked against an independent implementation too.
  const ours = cases.map((c) => new Sm4Cbc(c.key).encrypt(c.iv, c.data, { padding: c.pad ? "pkcs7" : "none" }));
  const back = await nodeCiphers(ops.map((o, i) => ({ ...o, data: ours[i]!, decrypt: true })));
  for (const [i, c] of cases.entries()) {
    const what = `size ${c.data.length} pad ${c.pad}`;
    assertEquals(toHex(ours[i]!), toHex(want[i]!), what);
    assertEquals(toHex(back[i]!), toHex(c.data), what);
    const padding = c.pad ? "pkcs7" : "none";
    assertEquals(toHex(new Sm4Cbc(c.key).decrypt(c.iv, want[i]!, { padding })), toHex(c.data), what);
  }
});

Deno.test("Sm4Cbc matches sm-crypto and sm-crypto-v2", () => {
  for (const [i, n] of SIZES.entries()) {
    const key = seeded(16, 800 + i), iv = seeded(16, 900 + i), data = seeded(n, 1000 + i);
    const got = toHex(new Sm4Cbc(key).encrypt(iv, data));
    const v1 = smCrypto.sm4.encrypt(Array.from(data), toHex(key), { mode: "cbc", iv: toHex(iv), output: "array" });
    assertEquals(got, toHex(Uint8Array.from(v1 as number[])), `sm-crypto size ${n}`);
    assertEquals(got, toHex(smV2.encrypt(data, key, { mode: "cbc", iv, output: "array" })), `sm-crypto-v2 size ${n}`);
  }
});

Deno.test("Sm4Cbc rejects bad keys, IVs, lengths and padding", () => {
  assertThrows(() => new Sm4Cbc(new Uint8Array(8)), /sm4: key must be 16 bytes/);
  const cbc = new Sm4Cbc(seeded(16, 1));
  const iv = seeded(16, 2);
  assertThrows(() => cbc.encrypt(new Uint8Array(12), new Uint8Array(16)), /sm4-cbc: iv must be 16 bytes/);
  assertThrows(() => cbc.decrypt(new Uint8Array(17), new Uint8Array(16)), /sm4-cbc: iv must be 16 bytes/);
  assertThrows(() => cbc.encrypt(iv, new Uint8Array(20), { padding: "none" }), /sm4-cbc: input must be a multiple/);
  assertThrows(() => cbc.decrypt(iv, new Uint8Array(31)), RangeError);
  assertThrows(() => cbc.decrypt(iv, new Uint8Array(0)), /non-empty/);
  assertEquals(cbc.decrypt(iv, new Uint8Array(0), { padding: "none" }).length, 0);
  // Flip the last ciphertext block's predecessor so the padding byte changes: must throw, never return data.
  const ct = cbc.encrypt(iv, seeded(40, 3));
  for (let bit = 0; bit < 8; bit++) {
    const bad = ct.slice();
    bad[bad.length - 17] = bad[bad.length - 17]! ^ (1 << bit);
    try {
      const pt = cbc.decrypt(iv, bad);
      // A flip can land on another valid padding (e.g. 0x08 -> 0x01); then the length must differ.
      assertEquals(pt.length !== 40, true);
    } catch (e) {
      assertEquals(String(e), "RangeError: sm4-cbc: bad PKCS#7 padding");
    }
  }
  assertEquals(toHex(cbc.decrypt(iv, ct)), toHex(seeded(40, 3)));
});
