import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { Sm4Ccm } from "./ccm.ts";
import { hex, type NodeCipherOp, nodeCiphers, seeded, toHex } from "../../tests/helpers/sm4.ts";

// RFC 8998 Appendix A.2.
const KEY = hex("0123456789ABCDEFFEDCBA9876543210");
const IV = hex("00001234567800000000ABCD");
const AAD = hex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2");
const PT = hex(
  "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD" +
    "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA",
);
const CT = "48af93501fa62adbcd414cce6034d895dda1bf8f132f042098661572e7483094" +
  "fd12e518ce062c98acee28d95df4416bed31a2f04476c18bb40c84a74b97dc5b";
const TAG = "16842d4fa186f56ab33256971fa110f4";

Deno.test("Sm4Ccm matches the RFC 8998 SM4-CCM test vector", () => {
  const ccm = new Sm4Ccm(KEY);
  const sealed = ccm.seal(IV, PT, AAD);
  assertEquals(toHex(sealed), CT + TAG);
  assertEquals(toHex(ccm.open(IV, sealed, AAD)!), toHex(PT));
  assertEquals(ccm.tagLength, 16);
});

/** SP 800-38C formatting, written out plainly: B0, the encoded AAD, and the plaintext, each block-padded. */
function macInput(nonce: Uint8Array, aad: Uint8Array, pt: Uint8Array, t: number): Uint8Array {
  const q = 15 - nonce.length;
  const b0 = new Uint8Array(16);
  b0[0] = (aad.length ? 64 : 0) + 8 * ((t - 2) / 2) + (q - 1);
  b0.set(nonce, 1);
  for (let i = 0, len = pt.length; i < q; i++, len = Math.floor(len / 256)) b0[15 - i] = len % 256;
  const a = aad.length;
  const prefix = a === 0
    ? []
    : a < 0xff00
    ? [a >> 8, a & 255]
    : [0xff, 0xfe, a >>> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255];
  const pad = (n: number) => (16 - (n % 16)) % 16;
  const aadPart = a === 0 ? 0 : prefix.length + a + pad(prefix.length + a);
  const out = new Uint8Array(16 + aadPart + pt.length + pad(pt.length));
  out.set(b0);
  out.set(prefix, 16);
  out.set(aad, 16 + prefix.length);
  out.set(pt, 16 + aadPart);
  return out;
}

function counter(nonce: Uint8Array, i: number): Uint8Array {
  const b = new Uint8Array(16);
  b[0] = 14 - nonce.length;
  b.set(nonce, 1);
  b[15] = i;
  return b;
}

Deno.test("Sm4Ccm matches CCM built from node's OpenSSL sm4-cbc, sm4-ctr and sm4-ecb", async () => {
  const cases: { key: Uint8Array; nonce: Uint8Array; aad: Uint8Array; pt: Uint8Array; t: number }[] = [];
  let s = 3000;
  for (const n of [0, 1, 15, 16, 17, 100, 4096, 16384]) {
    for (const [nl, t, al] of [[12, 16, 0], [12, 16, 13], [7, 4, 1], [13, 8, 16], [8, 10, 30], [11, 14, 0xff01]]) {
      if (nl === 13 && n >= 65536) continue;
      cases.push({ key: seeded(16, s++), nonce: seeded(nl!, s++), aad: seeded(al!, s++), pt: seeded(n, s++), t: t! });
    }
  }
  const ops: NodeCipherOp[] = [];
  for (const c of cases) {
    ops.push({ alg: "sm4-ctr", key: c.key, iv: counter(c.nonce, 1), data: c.pt });
    ops.push({ alg: "sm4-cbc", key: c.key, iv: new Uint8Array(16), data: macInput(c.nonce, c.aad, c.pt, c.t) });
    ops.push({ alg: "sm4-ecb", key: c.key, data: counter(c.nonce, 0) });
  }
  const r = await nodeCiphers(ops);
  for (const [i, c] of cases.entries()) {
    const ct = r[3 * i]!, mac = r[3 * i + 1]!.subarray(-16), s0 = r[3 * i + 2]!;
    const tag = new Uint8Array(c.t).map((_, j) => mac[j]! ^ s0[j]!);
    const ccm = new Sm4Ccm(c.key, { tagLength: c.t });
    const sealed = ccm.seal(c.nonce, c.pt, c.aad);
    const what = `size ${c.pt.length} nonce ${c.nonce.length} tag ${c.t} aad ${c.aad.length}`;
    assertEquals(toHex(sealed), toHex(ct) + toHex(tag), what);
    assertEquals(toHex(ccm.open(c.nonce, sealed, c.aad)!), toHex(c.pt), what);
  }
});

Deno.test("Sm4Ccm seals and opens in place", () => {
  const ccm = new Sm4Ccm(seeded(16, 1));
  const iv = seeded(12, 2), aad = seeded(5, 3);
  for (const n of [0, 1, 17, 16384]) {
    const data = seeded(n, 4 + n);
    const want = ccm.seal(iv, data, aad);
    const buf = new Uint8Array(n + 16);
    buf.set(data);
    assertEquals(ccm.sealInto(iv, buf.subarray(0, n), aad, buf), n + 16);
    assertEquals(toHex(buf), toHex(want));
    assertEquals(ccm.openInto(iv, buf, aad, buf), n);
    assertEquals(toHex(buf.subarray(0, n)), toHex(data));
  }
});

Deno.test("Sm4Ccm open refuses a wrong tag, AAD, nonce, ciphertext bit or truncation", () => {
  const ccm = new Sm4Ccm(KEY);
  const sealed = ccm.seal(IV, PT, AAD);
  for (const at of [0, 31, PT.length - 1, PT.length, sealed.length - 1]) {
    const bad = sealed.slice();
    bad[at] = bad[at]! ^ 0x80;
    assertEquals(ccm.open(IV, bad, AAD), null, `flip byte ${at}`);
  }
  assertEquals(ccm.open(IV, sealed, AAD.subarray(1)), null);
  assertEquals(ccm.open(IV, sealed), null);
  assertEquals(ccm.open(seeded(12, 9), sealed, AAD), null);
  for (const n of [0, 1, 15]) assertEquals(ccm.open(IV, sealed.subarray(0, n), AAD), null, `truncated to ${n}`);
  assertEquals(ccm.open(IV, sealed.subarray(0, sealed.length - 1), AAD), null);
  const bad = sealed.slice();
  bad[3] = bad[3]! ^ 1;
  const out = new Uint8Array(PT.length).fill(0x55);
  assertEquals(ccm.openInto(IV, bad, AAD, out), -1);
  assertEquals(out.every((b) => b === 0), true);
  // A CCM_8 instance must not accept a CCM_16 record, nor the reverse.
  const ccm8 = new Sm4Ccm(KEY, { tagLength: 8 });
  assertEquals(ccm8.open(IV, sealed, AAD), null);
  assertEquals(ccm.open(IV, ccm8.seal(IV, PT, AAD), AAD), null);
});

Deno.test("Sm4Ccm rejects bad keys, tag lengths, nonces, lengths and short outputs", () => {
  assertThrows(() => new Sm4Ccm(new Uint8Array(15)), /sm4: key must be 16 bytes/);
  for (const t of [0, 2, 3, 5, 15, 17, 18, 1.5]) {
    assertThrows(() => new Sm4Ccm(KEY, { tagLength: t }), /sm4-ccm: tag length must be an even number from 4 to 16/);
  }
  const ccm = new Sm4Ccm(KEY);
  for (const n of [0, 6, 14, 16]) {
    assertThrows(() => ccm.seal(new Uint8Array(n), PT), /sm4-ccm: nonce must be 7 to 13 bytes/);
    assertThrows(() => ccm.open(new Uint8Array(n), new Uint8Array(40)), /sm4-ccm: nonce/);
    assertThrows(() => ccm.open(new Uint8Array(n), new Uint8Array(4)), /sm4-ccm: nonce/);
  }
  // A 13-byte nonce leaves a 2-byte length field: 65536 bytes is one too many.
  assertThrows(() => ccm.seal(new Uint8Array(13), new Uint8Array(65536)), /sm4-ccm: message of 65536 bytes too long/);
  assertEquals(ccm.seal(new Uint8Array(13), new Uint8Array(65535)).length, 65535 + 16);
  assertThrows(() => ccm.sealInto(IV, PT, AAD, new Uint8Array(PT.length + 15)), /sm4-ccm: output too small/);
  assertThrows(() => ccm.openInto(IV, ccm.seal(IV, PT), AAD, new Uint8Array(3)), /sm4-ccm: output too small/);
});
