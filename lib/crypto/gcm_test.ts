import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { sm4 as smV2 } from "sm-crypto-v2";
import { GCM_TAG_LENGTH, Sm4Gcm } from "./gcm.ts";
import { hex, type NodeCipherOp, nodeCiphers, seeded, SIZES, toHex } from "../../tests/helpers/sm4.ts";

// RFC 8998 Appendix A.1.
const KEY = hex("0123456789ABCDEFFEDCBA9876543210");
const IV = hex("00001234567800000000ABCD");
const AAD = hex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2");
const PT = hex(
  "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD" +
    "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA",
);
const CT = "17f399f08c67d5ee19d0dc9969c4bb7d5fd46fd3756489069157b282bb200735" +
  "d82710ca5c22f0ccfa7cbf93d496ac15a56834cbcf98c397b4024a2691233b8d";
const TAG = "83de3541e4c2b58177e065a9bf7b62ec";

Deno.test("Sm4Gcm matches the RFC 8998 SM4-GCM test vector", () => {
  const gcm = new Sm4Gcm(KEY);
  const sealed = gcm.seal(IV, PT, AAD);
  assertEquals(toHex(sealed), CT + TAG);
  assertEquals(toHex(gcm.open(IV, sealed, AAD)!), toHex(PT));
  assertEquals(gcm.tagLength, GCM_TAG_LENGTH);
});

Deno.test("Sm4Gcm matches sm-crypto-v2 on random inputs and 12-byte nonces", () => {
  for (const [i, n] of SIZES.entries()) {
    for (const aadLen of [0, 1, 13, 16, 20, 77]) {
      const key = seeded(16, 2000 + i), iv = seeded(12, 2100 + i + aadLen);
      const aad = seeded(aadLen, 2200 + i), data = seeded(n, 2300 + i);
      const gcm = new Sm4Gcm(key);
      const sealed = gcm.seal(iv, data, aad);
      const ref = smV2.encrypt(data, key, { mode: "gcm", iv, associatedData: aad, outputTag: true, output: "array" });
      const what = `size ${n} aad ${aadLen}`;
      assertEquals(toHex(sealed), toHex(ref.output) + toHex(ref.tag!), what);
      assertEquals(toHex(gcm.open(iv, sealed, aad)!), toHex(data), what);
    }
  }
});

Deno.test("Sm4Gcm output decrypts with sm-crypto-v2 (which checks the tag)", () => {
  const key = seeded(16, 1), iv = seeded(12, 2), aad = seeded(13, 3), data = seeded(1000, 4);
  const sealed = new Sm4Gcm(key).seal(iv, data, aad);
  const pt = smV2.decrypt(sealed.subarray(0, 1000), key, {
    mode: "gcm",
    iv,
    associatedData: aad,
    tag: sealed.subarray(1000),
    output: "array",
  });
  assertEquals(toHex(pt), toHex(data));
});

Deno.test("Sm4Gcm ciphertext equals node's OpenSSL sm4-ctr from counter J0 + 1", async () => {
  const cases = SIZES.map((n, i) => ({
    key: seeded(16, 2400 + i),
    iv: seeded(12, 2500 + i),
    data: seeded(n, 2600 + i),
  }));
  const ops: NodeCipherOp[] = cases.map((c) => {
    const ctr = new Uint8Array(16);
    ctr.set(c.iv);
    ctr[15] = 2;
    return { alg: "sm4-ctr", key: c.key, iv: ctr, data: c.data };
  });
  const want = await nodeCiphers(ops);
  for (const [i, c] of cases.entries()) {
    const sealed = new Sm4Gcm(c.key).seal(c.iv, c.data);
    assertEquals(toHex(sealed.subarray(0, c.data.length)), toHex(want[i]!), `size ${c.data.length}`);
  }
});

Deno.test("Sm4Gcm accepts nonces other than 12 bytes as SP 800-38D specifies", () => {
  // Cross-checked with sm-crypto-v2 where it supports the length; always round-trips.
  for (const len of [1, 8, 11, 13, 16, 60]) {
    const key = seeded(16, 2700 + len), iv = seeded(len, 2800 + len), data = seeded(100, 2900), aad = seeded(7, 1);
    const gcm = new Sm4Gcm(key);
    const sealed = gcm.seal(iv, data, aad);
    const ref = smV2.encrypt(data, key, { mode: "gcm", iv, associatedData: aad, outputTag: true, output: "array" });
    assertEquals(toHex(sealed), toHex(ref.output) + toHex(ref.tag!), `nonce ${len}`);
    assertEquals(toHex(gcm.open(iv, sealed, aad)!), toHex(data));
  }
});

Deno.test("Sm4Gcm seals and opens in place and into larger buffers", () => {
  const gcm = new Sm4Gcm(seeded(16, 1));
  const iv = seeded(12, 2), aad = seeded(5, 3);
  for (const n of [0, 1, 17, 16384]) {
    const data = seeded(n, 4 + n);
    const want = gcm.seal(iv, data, aad);
    const buf = new Uint8Array(n + 16);
    buf.set(data);
    assertEquals(gcm.sealInto(iv, buf.subarray(0, n), aad, buf), n + 16);
    assertEquals(toHex(buf), toHex(want));
    assertEquals(gcm.openInto(iv, buf, aad, buf), n);
    assertEquals(toHex(buf.subarray(0, n)), toHex(data));
    // A TLS-style record: 5-byte header, then ciphertext, at odd offsets in a shared buffer.
    const rec = new Uint8Array(5 + n + 16 + 3);
    rec.set(data, 5);
    gcm.sealInto(iv, rec.subarray(5, 5 + n), aad, rec.subarray(5));
    assertEquals(toHex(rec.subarray(5, 5 + n + 16)), toHex(want));
    // Shifted overlap: output starts 5 bytes before the input.
    assertEquals(gcm.openInto(iv, rec.subarray(5, 5 + n + 16), aad, rec), n);
    assertEquals(toHex(rec.subarray(0, n)), toHex(data));
  }
});

Deno.test("Sm4Gcm open refuses a wrong tag, AAD, nonce, ciphertext bit or truncation", () => {
  const gcm = new Sm4Gcm(KEY);
  const sealed = gcm.seal(IV, PT, AAD);
  for (const at of [0, 31, PT.length - 1, PT.length, sealed.length - 1]) {
    for (const bit of [0, 7]) {
      const bad = sealed.slice();
      bad[at] = bad[at]! ^ (1 << bit);
      assertEquals(gcm.open(IV, bad, AAD), null, `flip byte ${at} bit ${bit}`);
    }
  }
  assertEquals(gcm.open(IV, sealed, AAD.subarray(1)), null);
  assertEquals(gcm.open(IV, sealed), null);
  assertEquals(gcm.open(seeded(12, 9), sealed, AAD), null);
  assertEquals(new Sm4Gcm(seeded(16, 9)).open(IV, sealed, AAD), null);
  for (const n of [0, 1, 15]) assertEquals(gcm.open(IV, sealed.subarray(0, n), AAD), null, `truncated to ${n}`);
  assertEquals(gcm.open(IV, sealed.subarray(0, sealed.length - 1), AAD), null);
  // openInto wipes what it wrote when the tag fails.
  const bad = sealed.slice();
  bad[sealed.length - 1] = bad[sealed.length - 1]! ^ 1;
  const out = new Uint8Array(PT.length).fill(0x55);
  assertEquals(gcm.openInto(IV, bad, AAD, out), -1);
  assertEquals(out.every((b) => b === 0), true);
  // The 16-byte sealed empty message is accepted only with its own tag.
  const empty = gcm.seal(IV, new Uint8Array(0), AAD);
  assertEquals(gcm.open(IV, empty, AAD)!.length, 0);
  assertEquals(gcm.open(IV, new Uint8Array(16), AAD), null);
});

Deno.test("Sm4Gcm rejects bad keys, nonces and short outputs with clear errors", () => {
  for (const n of [0, 15, 24, 32]) assertThrows(() => new Sm4Gcm(new Uint8Array(n)), /sm4: key must be 16 bytes/);
  const gcm = new Sm4Gcm(KEY);
  assertThrows(() => gcm.seal(new Uint8Array(0), PT), /sm4-gcm: nonce must be a non-empty/);
  assertThrows(() => gcm.open(new Uint8Array(0), new Uint8Array(40)), /sm4-gcm: nonce/);
  assertThrows(() => gcm.open(new Uint8Array(0), new Uint8Array(4)), /sm4-gcm: nonce/);
  assertThrows(() => gcm.sealInto(IV, PT, AAD, new Uint8Array(PT.length + 15)), /sm4-gcm: output too small/);
  assertThrows(() => gcm.openInto(IV, gcm.seal(IV, PT), AAD, new Uint8Array(3)), /sm4-gcm: output too small/);
});

Deno.test("Sm4Gcm with large GHASH tables gives the same records", () => {
  const large = new Sm4Gcm(KEY, { ghashTable: "large" });
  assertEquals(toHex(large.seal(IV, PT, AAD)), CT + TAG);
  for (const [i, n] of SIZES.entries()) {
    const key = seeded(16, 3000 + i), iv = seeded(i % 2 ? 12 : 16, 3100 + i), aad = seeded(i, 3200 + i);
    const data = seeded(n, 3300 + i);
    const a = new Sm4Gcm(key), b = new Sm4Gcm(key, { ghashTable: "large" });
    const sealed = a.seal(iv, data, aad);
    assertEquals(toHex(b.seal(iv, data, aad)), toHex(sealed), `size ${n}`);
    assertEquals(toHex(b.open(iv, sealed, aad)!), toHex(data));
  }
  assertThrows(() => new Sm4Gcm(KEY, { ghashTable: "tiny" as "large" }), /sm4-gcm: ghashTable must be/);
});

Deno.test("Sm4Gcm gives the same records before and after a key moves to its 8-bit GHASH table", () => {
  // A key starts on the 4-bit table and builds the 8-bit one after 256 blocks: 60 records of 7..250 bytes on one
  // key cross that point part-way, each checked against sm-crypto-v2 and opened by the same and a fresh instance.
  const key = seeded(16, 4000);
  const sealer = new Sm4Gcm(key), opener = new Sm4Gcm(key);
  for (let r = 0; r < 60; r++) {
    const n = 7 + ((r * 37) % 244), iv = seeded(12, 4100 + r), aad = seeded(r % 3 === 0 ? 13 : 5, 4200 + r);
    const data = seeded(n, 4300 + r);
    const sealed = sealer.seal(iv, data, aad);
    const ref = smV2.encrypt(data, key, { mode: "gcm", iv, associatedData: aad, outputTag: true, output: "array" });
    assertEquals(toHex(sealed), toHex(ref.output) + toHex(ref.tag!), `record ${r} (${n} bytes)`);
    assertEquals(toHex(opener.open(iv, sealed, aad)!), toHex(data), `record ${r}`);
    sealed[r % sealed.length]! ^= 1;
    assertEquals(opener.open(iv, sealed, aad), null, `record ${r} tampered`);
  }
});
