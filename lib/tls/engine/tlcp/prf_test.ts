import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { oracleHmacSm3 } from "./_test_util.ts";
import { hmacSm3Key } from "../../../crypto/mod.ts";
import { tlcpKeyBlock, tlcpMasterSecret, tlcpPrf } from "./prf.ts";
import { concat, toHex } from "./_codec.ts";

const secret = Uint8Array.from({ length: 48 }, (_, i) => i);
const clientRandom = Uint8Array.from({ length: 32 }, (_, i) => 0xa0 + i);
const serverRandom = Uint8Array.from({ length: 32 }, (_, i) => 0x10 + i);

// Known answers computed with GmSSL 3's tls_prf(DIGEST_sm3(), ...) (an independent public implementation).
Deno.test("tlcpMasterSecret matches GmSSL's PRF-SM3", () => {
  assertEquals(
    toHex(tlcpMasterSecret(secret, clientRandom, serverRandom)),
    "528b97bc92c6c4b48aaac293ba3f2fb400780adb56dd5dfdf361075284bc24b3cb57825b3dfa96b2d3b0672b63bd4434",
  );
});

Deno.test("tlcpKeyBlock matches GmSSL's PRF-SM3 (128 bytes, server_random first)", () => {
  assertEquals(
    toHex(tlcpKeyBlock(secret, clientRandom, serverRandom, 128)),
    "ae42b0f842fbd981c4b76e35212e459556b7bd3a31599220ad756743643e1cf2d437b7c883bfff5c0536208d20a7b3e909e383703b9b523d" +
      "7c1c5931334412f375b42b17a79412684297b47a5cdcf4365ca9655abf6d59ac24cc2b19036a32306aecddf310beeceba2c453a083515" +
      "cf8984da845a21c348399d7a3b9dc806159",
  );
});

/** P_SM3 written again over OpenSSL's HMAC-SM3 (node:crypto), as an oracle. */
function oraclePrf(key: Uint8Array, label: string, seed: Uint8Array, n: number): Uint8Array {
  const s = concat(new TextEncoder().encode(label), seed);
  const h = (data: Uint8Array) => oracleHmacSm3(key, data);
  let a = s;
  const out: Uint8Array[] = [];
  let got = 0;
  while (got < n) {
    a = h(a);
    const b = h(concat(a, s));
    out.push(b);
    got += b.length;
  }
  return concat(...out).subarray(0, n);
}

Deno.test("tlcpPrf agrees with an HMAC-SM3 oracle for odd lengths and long secrets", () => {
  for (const n of [0, 1, 12, 31, 32, 33, 40, 100]) {
    const key = Uint8Array.from({ length: 70 + n }, (_, i) => (i * 7) & 0xff); // longer than a block too
    assertEquals(tlcpPrf(key, "client finished", clientRandom, n), oraclePrf(key, "client finished", clientRandom, n));
  }
});

Deno.test("HMAC-SM3 oracle and lib/crypto agree with GmSSL's sm3_hmac known answer", () => {
  const key = Uint8Array.from({ length: 16 }, (_, i) => i);
  const want = "83fd35b3ff6211428a38c070431ad42c23a86eaca25a5ea81a1ded4704a12c7c";
  assertEquals(toHex(oracleHmacSm3(key, new TextEncoder().encode("abc"))), want);
  assertEquals(toHex(hmacSm3Key(key).mac(new TextEncoder().encode("abc"))), want);
});
