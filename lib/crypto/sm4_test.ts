import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import smCrypto from "sm-crypto";
import { sm4 as smV2 } from "sm-crypto-v2";
import { Sm4 } from "./sm4.ts";
import { hex, nodeCiphers, seeded, SIZES, toHex } from "../../tests/helpers/sm4.ts";

const GBT_KEY = hex("0123456789abcdeffedcba9876543210");

Deno.test("Sm4 encrypts the GB/T 32907 example", () => {
  const sm4 = new Sm4(GBT_KEY);
  assertEquals(toHex(sm4.encryptBlock(GBT_KEY)), "681edf34d206965e86b3e94f536e4246");
  assertEquals(toHex(sm4.decryptBlock(hex("681edf34d206965e86b3e94f536e4246"))), toHex(GBT_KEY));
});

Deno.test("Sm4 encrypts the GB/T 32907 example 1,000,000 times and decrypts back", () => {
  const sm4 = new Sm4(GBT_KEY);
  let b: Uint8Array = GBT_KEY.slice();
  const t = new Uint8Array(16);
  for (let i = 0; i < 1_000_000; i++) {
    sm4.encryptBlock(b, t);
    b.set(t);
  }
  assertEquals(toHex(b), "595298c7c6fd271f0402f804c33d3f66");
  for (let i = 0; i < 1_000_000; i++) {
    sm4.decryptBlock(b, t);
    b = t.slice();
  }
  assertEquals(toHex(b), toHex(GBT_KEY));
});

Deno.test("Sm4 ECB matches node's OpenSSL sm4-ecb with and without padding", async () => {
  const ops = [];
  const cases: { key: Uint8Array; data: Uint8Array; pad: boolean }[] = [];
  for (const [i, n] of SIZES.entries()) {
    const key = seeded(16, 100 + i), data = seeded(n, 200 + i);
    cases.push({ key, data, pad: true });
    if (n % 16 === 0) cases.push({ key, data, pad: false });
  }
  for (const c of cases) ops.push({ alg: "sm4-ecb" as const, key: c.key, data: c.data, pad: c.pad });
  const want = await nodeCiphers(ops);
  for (const [i, c] of cases.entries()) {
    const sm4 = new Sm4(c.key);
    const padding = c.pad ? "pkcs7" : "none";
    const got = sm4.encryptEcb(c.data, { padding });
    assertEquals(toHex(got), toHex(want[i]!), `size ${c.data.length} padding ${padding}`);
    assertEquals(toHex(sm4.decryptEcb(got, { padding })), toHex(c.data));
  }
});

Deno.test("Sm4 ECB matches sm-crypto and sm-crypto-v2", () => {
  for (const [i, n] of SIZES.entries()) {
    const key = seeded(16, 300 + i), data = seeded(n, 400 + i);
    const got = toHex(new Sm4(key).encryptEcb(data));
    const v1 = smCrypto.sm4.encrypt(Array.from(data), toHex(key), { mode: "ecb", output: "array" }) as number[];
    assertEquals(got, toHex(Uint8Array.from(v1)), `sm-crypto size ${n}`);
    const v2 = smV2.encrypt(data, key, { mode: "ecb", output: "array" });
    assertEquals(got, toHex(v2), `sm-crypto-v2 size ${n}`);
  }
});

Deno.test("Sm4 rejects keys and blocks of the wrong length", () => {
  for (const n of [0, 15, 17, 32]) {
    assertThrows(() => new Sm4(new Uint8Array(n)), /sm4: key must be 16 bytes/);
  }
  assertThrows(() => new Sm4("0123456789abcdef" as unknown as Uint8Array), RangeError);
  const sm4 = new Sm4(GBT_KEY);
  assertThrows(() => sm4.encryptBlock(new Uint8Array(15)), /sm4: block must be 16 bytes/);
  assertThrows(() => sm4.decryptBlock(new Uint8Array(17)), RangeError);
  assertThrows(() => sm4.encryptBlock(new Uint8Array(16), new Uint8Array(8)), RangeError);
});

Deno.test("Sm4 ECB rejects partial blocks without padding and bad PKCS#7 padding", () => {
  const sm4 = new Sm4(GBT_KEY);
  assertThrows(() => sm4.encryptEcb(new Uint8Array(17), { padding: "none" }), /sm4-ecb: input must be a multiple/);
  assertThrows(() => sm4.decryptEcb(new Uint8Array(17)), /sm4-ecb: input must be a non-empty multiple/);
  assertThrows(() => sm4.decryptEcb(new Uint8Array(0)), RangeError);
  // Decrypts to a last byte of 0, 17 and a pad run with one wrong byte: all must be refused.
  for (const last of [hex("000102030405060708090a0b0c0d0e00"), hex("0102030405060708090a0b0c0d0e0f11")]) {
    assertThrows(() => sm4.decryptEcb(sm4.encryptEcb(last, { padding: "none" })), /sm4-ecb: bad PKCS#7 padding/);
  }
  const wrongRun = hex("00000000000000000000000003040404");
  assertThrows(() => sm4.decryptEcb(sm4.encryptEcb(wrongRun, { padding: "none" })), /bad PKCS#7 padding/);
  const full = new Uint8Array(16).fill(16);
  assertEquals(sm4.decryptEcb(sm4.encryptEcb(full, { padding: "none" })).length, 0);
});
