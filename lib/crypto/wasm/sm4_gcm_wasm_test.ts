import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { sm4 as smV2 } from "sm-crypto-v2";
import { Sm4Gcm } from "../gcm.ts";
import { Sm4GcmWasm } from "./sm4_gcm_wasm.ts";
import { IO_SIZE } from "./_sm4_wasm_module.ts";
import { hex, seeded, SIZES, toHex } from "../../../tests/helpers/sm4.ts";

const KEY = hex("0123456789ABCDEFFEDCBA9876543210");
const IV = hex("00001234567800000000ABCD");
const AAD = hex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2");
const PT = hex(
  "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD" +
    "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA",
);

Deno.test("Sm4GcmWasm matches the RFC 8998 SM4-GCM test vector", () => {
  const gcm = new Sm4GcmWasm(KEY, { minWasmBytes: 0 });
  const sealed = gcm.seal(IV, PT, AAD);
  assertEquals(
    toHex(sealed),
    "17f399f08c67d5ee19d0dc9969c4bb7d5fd46fd3756489069157b282bb200735" +
      "d82710ca5c22f0ccfa7cbf93d496ac15a56834cbcf98c397b4024a2691233b8d" + "83de3541e4c2b58177e065a9bf7b62ec",
  );
  assertEquals(toHex(gcm.open(IV, sealed, AAD)!), toHex(PT));
});

Deno.test("Sm4GcmWasm equals Sm4Gcm across sizes, AAD lengths and I/O chunk boundaries", () => {
  const sizes = [...SIZES, IO_SIZE - 1, IO_SIZE, IO_SIZE + 1, IO_SIZE + 17, 2 * IO_SIZE + 5];
  for (const [i, n] of sizes.entries()) {
    for (const aadLen of [0, 5, 13, 16, 40]) {
      const key = seeded(16, 5000 + i), iv = seeded(12, 5100 + i), aad = seeded(aadLen, 5200 + i);
      const data = seeded(n, 5300 + i);
      const w = new Sm4GcmWasm(key, { minWasmBytes: 0 }), js = new Sm4Gcm(key);
      const sealed = w.seal(iv, data, aad);
      assertEquals(toHex(sealed), toHex(js.seal(iv, data, aad)), `size ${n} aad ${aadLen}`);
      assertEquals(toHex(w.open(iv, sealed, aad)!), toHex(data), `size ${n} aad ${aadLen}`);
    }
  }
});

Deno.test("Sm4GcmWasm matches sm-crypto-v2 and delegates other nonce lengths", () => {
  for (const nl of [12, 8, 16]) {
    const key = seeded(16, nl), iv = seeded(nl, 2 * nl), aad = seeded(9, 3), data = seeded(333, 4);
    const ref = smV2.encrypt(data, key, { mode: "gcm", iv, associatedData: aad, outputTag: true, output: "array" });
    assertEquals(
      toHex(new Sm4GcmWasm(key, { minWasmBytes: 0 }).seal(iv, data, aad)),
      toHex(ref.output) + toHex(ref.tag!),
      `nonce ${nl}`,
    );
  }
});

Deno.test("Sm4GcmWasm seals and opens in place", () => {
  const gcm = new Sm4GcmWasm(seeded(16, 1), { minWasmBytes: 0 });
  const iv = seeded(12, 2), aad = seeded(5, 3), data = seeded(16384, 4);
  const want = gcm.seal(iv, data, aad);
  const buf = new Uint8Array(16384 + 16);
  buf.set(data);
  assertEquals(gcm.sealInto(iv, buf.subarray(0, 16384), aad, buf), 16384 + 16);
  assertEquals(toHex(buf), toHex(want));
  assertEquals(gcm.openInto(iv, buf, aad, buf), 16384);
  assertEquals(toHex(buf.subarray(0, 16384)), toHex(data));
});

Deno.test("Sm4GcmWasm open refuses tampering and truncation; bad parameters throw", () => {
  const gcm = new Sm4GcmWasm(KEY, { minWasmBytes: 0 });
  const sealed = gcm.seal(IV, PT, AAD);
  for (const at of [0, PT.length - 1, PT.length, sealed.length - 1]) {
    const bad = sealed.slice();
    bad[at] = bad[at]! ^ 4;
    assertEquals(gcm.open(IV, bad, AAD), null, `flip byte ${at}`);
  }
  assertEquals(gcm.open(IV, sealed, AAD.subarray(2)), null);
  for (const n of [0, 1, 15]) assertEquals(gcm.open(IV, sealed.subarray(0, n), AAD), null);
  const bad = sealed.slice();
  bad[0] = bad[0]! ^ 1;
  const out = new Uint8Array(PT.length).fill(7);
  assertEquals(gcm.openInto(IV, bad, AAD, out), -1);
  assertEquals(out.every((b) => b === 0), true);
  assertThrows(() => new Sm4GcmWasm(new Uint8Array(15)), /sm4: key must be 16 bytes/);
  assertThrows(() => gcm.seal(new Uint8Array(0), PT), /sm4-gcm: nonce/);
  assertThrows(() => gcm.sealInto(IV, PT, AAD, new Uint8Array(10)), /sm4-gcm: output too small/);
});

Deno.test("Sm4GcmWasm sends small records to the TypeScript path with the same results", () => {
  const key = seeded(16, 9), iv = seeded(12, 8), aad = seeded(5, 7);
  const small = new Sm4GcmWasm(key), wasmOnly = new Sm4GcmWasm(key, { minWasmBytes: 0 });
  for (const n of [0, 1, 100, 383, 384, 385, 1000]) {
    const data = seeded(n, n);
    const sealed = small.seal(iv, data, aad);
    assertEquals(toHex(sealed), toHex(wasmOnly.seal(iv, data, aad)), `size ${n}`);
    assertEquals(toHex(wasmOnly.open(iv, sealed, aad)!), toHex(data));
    assertEquals(toHex(small.open(iv, sealed, aad)!), toHex(data));
  }
  assertThrows(() => new Sm4GcmWasm(key, { minWasmBytes: 1.5 }), /minWasmBytes must be a non-negative integer/);
});
