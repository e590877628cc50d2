import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { Sm4Cbc } from "../sm4_cbc.ts";
import { Sm4CbcWasm } from "./sm4_cbc_wasm.ts";
import { IO_SIZE } from "./_sm4_wasm_module.ts";
import { type NodeCipherOp, nodeCiphers, seeded, SIZES, toHex } from "../../../tests/helpers/sm4.ts";

Deno.test("Sm4CbcWasm matches node's OpenSSL sm4-cbc and Sm4Cbc, both ways", async () => {
  const sizes = [...SIZES, IO_SIZE - 16, IO_SIZE, IO_SIZE + 16, 2 * IO_SIZE + 48];
  const cases = sizes.map((n, i) => ({
    key: seeded(16, 7000 + i),
    iv: seeded(16, 7100 + i),
    data: seeded(n, 7200 + i),
  }));
  const ops: NodeCipherOp[] = cases.map((c) => ({ alg: "sm4-cbc", key: c.key, iv: c.iv, data: c.data, pad: true }));
  const want = await nodeCiphers(ops);
  for (const [i, c] of cases.entries()) {
    const w = new Sm4CbcWasm(c.key), js = new Sm4Cbc(c.key);
    const what = `size ${c.data.length}`;
    const ct = w.encrypt(c.iv, c.data);
    assertEquals(toHex(ct), toHex(want[i]!), what);
    assertEquals(toHex(w.decrypt(c.iv, ct)), toHex(c.data), what);
    if (c.data.length % 16 === 0) {
      const raw = w.encrypt(c.iv, c.data, { padding: "none" });
      assertEquals(toHex(raw), toHex(js.encrypt(c.iv, c.data, { padding: "none" })), what);
      assertEquals(toHex(w.decrypt(c.iv, raw, { padding: "none" })), toHex(c.data), what);
    }
  }
});

Deno.test("Sm4CbcWasm rejects bad keys, IVs, lengths and padding", () => {
  assertThrows(() => new Sm4CbcWasm(new Uint8Array(8)), /sm4: key must be 16 bytes/);
  const cbc = new Sm4CbcWasm(seeded(16, 1));
  const iv = seeded(16, 2);
  assertThrows(() => cbc.encrypt(new Uint8Array(12), new Uint8Array(16)), /sm4-cbc: iv must be 16 bytes/);
  assertThrows(() => cbc.encrypt(iv, new Uint8Array(20), { padding: "none" }), /sm4-cbc: input must be a multiple/);
  assertThrows(() => cbc.decrypt(iv, new Uint8Array(31)), RangeError);
  assertThrows(() => cbc.decrypt(iv, new Uint8Array(0)), /non-empty/);
  const bad = cbc.encrypt(iv, new Uint8Array(16).fill(0x11), { padding: "none" });
  assertThrows(() => cbc.decrypt(iv, bad), /sm4-cbc: bad PKCS#7 padding/);
});
