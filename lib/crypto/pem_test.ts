import { deepStrictEqual as assertEquals, ok, throws as assertThrows } from "node:assert/strict";
import {
  decodeEcPrivateKey,
  decodeEcPublicKey,
  generateP256KeyPair,
  parsePublicKeyInfo,
  pemDecode,
  pemDecodeAll,
  pemEncode,
  publicKeyName,
  readP256PrivateKey,
  readSm2PrivateKey,
  readSm2PublicKey,
  writeP256PrivateKey,
  writeSm2PrivateKey,
  writeSm2PublicKey,
} from "./pem.ts";
import { Sm2PrivateKey } from "./sm2.ts";
import { expectElement, Tag } from "./asn1.ts";
import { openssl, toHex } from "./testdata/oracle.ts";

Deno.test("pemEncode and pemDecodeAll round-trip several blocks", () => {
  const a = new Uint8Array(100).map((_, i) => i);
  const b = new Uint8Array([1, 2, 3]);
  const text = pemEncode("CERTIFICATE", a) + "junk\n" + pemEncode("PRIVATE KEY", b);
  const blocks = pemDecodeAll(text);
  assertEquals(blocks.map((x) => x.label), ["CERTIFICATE", "PRIVATE KEY"]);
  assertEquals(blocks[0]!.der, a);
  assertEquals(pemDecode(text, "PRIVATE KEY").der, b);
  assertThrows(() => pemDecode(text, "PUBLIC KEY"), /no PUBLIC KEY block/);
});

Deno.test("readSm2PrivateKey loads openssl PKCS#8 and SEC1 SM2 keys", async () => {
  const pkcs8 = (await openssl(["genpkey", "-algorithm", "SM2"])).out;
  const key = readSm2PrivateKey(pkcs8);
  // OpenSSL 3 writes SM2 keys as SEC1 ECPrivateKey (with the curve OID) only in DER form.
  const sec1Der = (await openssl(["pkey", "-outform", "DER"], pkcs8)).stdout;
  const ver = expectElement(expectElement(sec1Der, 0, Tag.SEQUENCE, "test").content, 0, Tag.INTEGER, "test");
  assertEquals(ver.content, new Uint8Array([1]));
  ok(readSm2PrivateKey(sec1Der).publicKey.equals(key.publicKey));
  ok(readSm2PrivateKey(pemEncode("EC PRIVATE KEY", sec1Der)).publicKey.equals(key.publicKey));
  ok(readSm2PrivateKey(pemDecode(pkcs8).der).publicKey.equals(key.publicKey));
  const pubDer = (await openssl(["pkey", "-pubout", "-outform", "DER"], pkcs8)).stdout;
  ok(readSm2PublicKey(pubDer).equals(key.publicKey));
  assertEquals(decodeEcPublicKey(pubDer).curve, "sm2");
});

Deno.test("writeSm2PrivateKey output loads in openssl pkey with the same public key", async () => {
  const key = Sm2PrivateKey.generate();
  const pem = writeSm2PrivateKey(key);
  const pub = (await openssl(["pkey", "-pubout"], pem)).out;
  assertEquals(pub.trim(), writeSm2PublicKey(key.publicKey).trim());
  const text = (await openssl(["pkey", "-noout", "-text"], pem)).out;
  ok(text.includes("ASN1 OID: SM2"), text);
  assertEquals(toHex(readSm2PrivateKey(pem).toBytes()), toHex(key.toBytes()));
});

Deno.test("P-256 keys round-trip through openssl", async () => {
  const k = generateP256KeyPair();
  const pem = writeP256PrivateKey(k);
  await openssl(["pkey", "-noout"], pem);
  const theirs = (await openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])).out;
  assertEquals(readP256PrivateKey(theirs).publicKey.length, 65);
  assertEquals(toHex(readP256PrivateKey(pem).publicKey), toHex(k.publicKey));
  assertThrows(() => readSm2PrivateKey(pem), /expected an SM2 key, found p256/);
});

Deno.test("decodeEcPrivateKey rejects malformed DER, bad scalars and mismatched public keys", () => {
  const key = Sm2PrivateKey.generate();
  const der = pemDecode(writeSm2PrivateKey(key)).der;
  assertThrows(() => decodeEcPrivateKey(der.subarray(0, der.length - 3)), /private key/);
  assertThrows(() => decodeEcPrivateKey(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x05])), /unsupported PKCS#8 version/);
  const zero = der.slice();
  zero.set(new Uint8Array(32), indexOf(zero, key.toBytes()));
  assertThrows(() => readSm2PrivateKey(zero), /SM2 private key: scalar is out of range/);
  const other = Sm2PrivateKey.generate();
  const mixed = der.slice();
  mixed.set(other.toBytes(), indexOf(mixed, key.toBytes()));
  assertThrows(() => readSm2PrivateKey(mixed), /embedded public key does not match/);
  const offCurve = pemDecode(writeSm2PublicKey(key.publicKey)).der.slice();
  offCurve[offCurve.length - 1]! ^= 1;
  assertThrows(() => readSm2PublicKey(offCurve), /point is not on the curve/);
});

function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

Deno.test("parsePublicKeyInfo reads SubjectPublicKeyInfo of any algorithm; decodeEcPublicKey stays EC-only", async () => {
  const cases = [
    [["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"], "1.2.840.113549.1.1.1", undefined, undefined, "RSA"],
    [
      ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
      "1.2.840.10045.2.1",
      "1.3.132.0.34",
      undefined,
      "P-384",
    ],
    [["-algorithm", "ED25519"], "1.3.101.112", undefined, undefined, "Ed25519"],
    [
      ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
      "1.2.840.10045.2.1",
      "1.2.840.10045.3.1.7",
      "p256",
      "P-256",
    ],
    [["-algorithm", "SM2"], "1.2.840.10045.2.1", "1.2.156.10197.1.301", "sm2", "SM2"],
  ] as const;
  for (const [args, algorithm, parameters, curve, name] of cases) {
    const priv = (await openssl(["genpkey", ...args])).out;
    const spki = pemDecode((await openssl(["pkey", "-pubout"], priv)).out, "PUBLIC KEY").der;
    const info = parsePublicKeyInfo(spki, "public key");
    assertEquals([info.algorithm, info.parameters, info.curve, publicKeyName(info)], [
      algorithm,
      parameters,
      curve,
      name,
    ]);
    assertEquals(info.der, spki);
    if (curve) assertEquals(info.point, decodeEcPublicKey(spki).point);
    else assertThrows(() => decodeEcPublicKey(spki), /public key: unsupported (key algorithm|curve OID)/);
  }
  const ed =
    pemDecode((await openssl(["pkey", "-pubout"], (await openssl(["genpkey", "-algorithm", "ED25519"])).out)).out)
      .der;
  assertEquals(parsePublicKeyInfo(ed, "k").point.length, 32);
  // Structure is still checked: trailing bytes, unused bits, a missing key.
  assertThrows(() => parsePublicKeyInfo(new Uint8Array([...ed, 0]), "k"), /k: trailing bytes/);
  const unused = ed.slice();
  unused[indexOf(unused, new Uint8Array([0x03, 0x21, 0x00])) + 2] = 1;
  assertThrows(() => parsePublicKeyInfo(unused, "k"), /k: BIT STRING has unused bits/);
  assertThrows(() => parsePublicKeyInfo(new Uint8Array([0x30, 0x07, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70]), "k"));
});
