import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { Sm4Ccm } from "../ccm.ts";
import { Sm4CcmWasm } from "./sm4_ccm_wasm.ts";
import { IO_SIZE } from "./_sm4_wasm_module.ts";
import { hex, seeded, SIZES, toHex } from "../../../tests/helpers/sm4.ts";

const KEY = hex("0123456789ABCDEFFEDCBA9876543210");
const IV = hex("00001234567800000000ABCD");
const AAD = hex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2");
const PT = hex(
  "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD" +
    "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA",
);

Deno.test("Sm4CcmWasm matches the RFC 8998 SM4-CCM test vector", () => {
  const ccm = new Sm4CcmWasm(KEY, { minWasmBytes: 0 });
  const sealed = ccm.seal(IV, PT, AAD);
  assertEquals(
    toHex(sealed),
    "48af93501fa62adbcd414cce6034d895dda1bf8f132f042098661572e7483094" +
      "fd12e518ce062c98acee28d95df4416bed31a2f04476c18bb40c84a74b97dc5b" + "16842d4fa186f56ab33256971fa110f4",
  );
  assertEquals(toHex(ccm.open(IV, sealed, AAD)!), toHex(PT));
});

Deno.test("Sm4CcmWasm equals Sm4Ccm across sizes, nonce and tag lengths, AAD lengths and chunk boundaries", () => {
  const sizes = [...SIZES, IO_SIZE - 1, IO_SIZE, IO_SIZE + 1, 2 * IO_SIZE + 5];
  let s = 6000;
  for (const [nl, t] of [[12, 16], [7, 4], [13, 8], [10, 12]] as const) {
    for (const n of sizes) {
      if (nl === 13 && n > 65535) continue;
      for (const aadLen of n === 100 ? [0, 5, 13, 40, 0xff00, 70000] : [0, 13]) {
        const key = seeded(16, s++), iv = seeded(nl, s++), aad = seeded(aadLen, s++), data = seeded(n, s++);
        const w = new Sm4CcmWasm(key, { tagLength: t, minWasmBytes: 0 }), js = new Sm4Ccm(key, { tagLength: t });
        const sealed = w.seal(iv, data, aad);
        const what = `nonce ${nl} tag ${t} size ${n} aad ${aadLen}`;
        assertEquals(toHex(sealed), toHex(js.seal(iv, data, aad)), what);
        assertEquals(toHex(w.open(iv, sealed, aad)!), toHex(data), what);
      }
    }
  }
});

Deno.test("Sm4CcmWasm seals and opens in place", () => {
  const ccm = new Sm4CcmWasm(seeded(16, 1), { minWasmBytes: 0 });
  const iv = seeded(12, 2), aad = seeded(5, 3), data = seeded(16384, 4);
  const want = ccm.seal(iv, data, aad);
  const buf = new Uint8Array(16384 + 16);
  buf.set(data);
  assertEquals(ccm.sealInto(iv, buf.subarray(0, 16384), aad, buf), 16384 + 16);
  assertEquals(toHex(buf), toHex(want));
  assertEquals(ccm.openInto(iv, buf, aad, buf), 16384);
  assertEquals(toHex(buf.subarray(0, 16384)), toHex(data));
});

Deno.test("Sm4CcmWasm open refuses tampering and truncation; bad parameters throw", () => {
  const ccm = new Sm4CcmWasm(KEY, { minWasmBytes: 0 });
  const sealed = ccm.seal(IV, PT, AAD);
  for (const at of [0, PT.length - 1, PT.length, sealed.length - 1]) {
    const bad = sealed.slice();
    bad[at] = bad[at]! ^ 4;
    assertEquals(ccm.open(IV, bad, AAD), null, `flip byte ${at}`);
  }
  assertEquals(ccm.open(IV, sealed, AAD.subarray(2)), null);
  for (const n of [0, 1, 15]) assertEquals(ccm.open(IV, sealed.subarray(0, n), AAD), null);
  const bad = sealed.slice();
  bad[0] = bad[0]! ^ 1;
  const out = new Uint8Array(PT.length).fill(7);
  assertEquals(ccm.openInto(IV, bad, AAD, out), -1);
  assertEquals(out.every((b) => b === 0), true);
  assertThrows(() => new Sm4CcmWasm(new Uint8Array(15)), /sm4: key must be 16 bytes/);
  assertThrows(() => new Sm4CcmWasm(KEY, { tagLength: 5 }), /sm4-ccm: tag length/);
  assertThrows(() => ccm.seal(new Uint8Array(6), PT), /sm4-ccm: nonce must be 7 to 13 bytes/);
  assertThrows(() => ccm.seal(new Uint8Array(13), new Uint8Array(65536)), /too long/);
  assertThrows(() => ccm.sealInto(IV, PT, AAD, new Uint8Array(10)), /sm4-ccm: output too small/);
});

Deno.test("Sm4CcmWasm sends small records to the TypeScript path with the same results", () => {
  const key = seeded(16, 9), iv = seeded(12, 8), aad = seeded(5, 7);
  const small = new Sm4CcmWasm(key, { tagLength: 8 }),
    wasmOnly = new Sm4CcmWasm(key, { tagLength: 8, minWasmBytes: 0 });
  for (const n of [0, 1, 100, 511, 512, 513, 1000]) {
    const data = seeded(n, n);
    const sealed = small.seal(iv, data, aad);
    assertEquals(toHex(sealed), toHex(wasmOnly.seal(iv, data, aad)), `size ${n}`);
    assertEquals(toHex(wasmOnly.open(iv, sealed, aad)!), toHex(data));
    assertEquals(toHex(small.open(iv, sealed, aad)!), toHex(data));
  }
  assertThrows(() => new Sm4CcmWasm(key, { minWasmBytes: -1 }), /minWasmBytes must be a non-negative integer/);
});
