import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { deriveSecret, hkdf, hkdfExpand, hkdfExpandLabel, hkdfExtract } from "./hkdf.ts";
import { SHA256 } from "./hmac.ts";
import { SM3 } from "./sm3.ts";
import { hex, openssl, toHex } from "./testdata/oracle.ts";

Deno.test("hkdf matches RFC 5869 test case 1 (SHA-256)", () => {
  const ikm = hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
  const salt = hex("000102030405060708090a0b0c");
  const info = hex("f0f1f2f3f4f5f6f7f8f9");
  const prk = hkdfExtract(SHA256, salt, ikm);
  assertEquals(toHex(prk), "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5");
  assertEquals(
    toHex(hkdfExpand(SHA256, prk, info, 42)),
    "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
  );
});

Deno.test("hkdf with SM3 matches openssl kdf HKDF", async () => {
  for (
    const [len, salt, info] of [[42, "000102", "f0f1"], [32, "", ""], [100, "aa".repeat(70), "0102030405"]] as const
  ) {
    const ikm = "0b".repeat(22);
    const args = ["kdf", "-keylen", String(len), "-kdfopt", "digest:SM3", "-kdfopt", "hexkey:" + ikm];
    if (salt) args.push("-kdfopt", "hexsalt:" + salt);
    if (info) args.push("-kdfopt", "hexinfo:" + info);
    const want = (await openssl([...args, "HKDF"])).out.trim().replace(/:/g, "").toLowerCase();
    assertEquals(toHex(hkdf(SM3, hex(ikm), { salt: hex(salt), info: hex(info), length: len })), want);
  }
});

Deno.test("hkdfExpandLabel and deriveSecret match RFC 8448 early secrets (SHA-256)", () => {
  const early = hkdfExtract(SHA256, new Uint8Array(0), new Uint8Array(32));
  assertEquals(toHex(early), "33ad0a1c607ec03b09e6cd9893680ce210adf300aa1f2660e1b22e10f170f92a");
  const derived = deriveSecret(SHA256, early, "derived", SHA256.digest(new Uint8Array(0)));
  assertEquals(toHex(derived), "6f2615a108c702c5678f54fc9dbab69716c076189c48250cebeac3576c3611ba");
});

Deno.test("hkdfExpandLabel with SM3 matches openssl TLS13-KDF expand mode", async () => {
  const secret = "11".repeat(32);
  const ctx = "22".repeat(32);
  const r = await openssl([
    "kdf",
    "-keylen",
    "16",
    "-kdfopt",
    "digest:SM3",
    "-kdfopt",
    "mode:EXPAND_ONLY",
    "-kdfopt",
    "hexkey:" + secret,
    "-kdfopt",
    "hexprefix:" + toHex(new TextEncoder().encode("tls13 ")),
    "-kdfopt",
    "hexlabel:" + toHex(new TextEncoder().encode("key")),
    "-kdfopt",
    "hexdata:" + ctx,
    "TLS13-KDF",
  ]);
  assertEquals(
    toHex(hkdfExpandLabel(SM3, hex(secret), "key", hex(ctx), 16)),
    r.out.trim().replace(/:/g, "").toLowerCase(),
  );
});

Deno.test("hkdfExpand rejects an output longer than 255 blocks", () => {
  assertThrows(() => hkdfExpand(SM3, new Uint8Array(32), new Uint8Array(0), 255 * 32 + 1), /out of range/);
});
