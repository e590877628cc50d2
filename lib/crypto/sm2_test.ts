import { deepStrictEqual as assertEquals, ok, throws as assertThrows } from "node:assert/strict";
import * as smCrypto from "sm-crypto";
import { sm2 as smV2 } from "sm-crypto-v2";
import { readSm2PrivateKey, readSm2PublicKey, writeSm2PrivateKey, writeSm2PublicKey } from "./pem.ts";
import {
  decodeSm2Signature,
  encodeSm2Signature,
  SM2_CURVE,
  SM2_DEFAULT_ID,
  SM2_KEY_CACHE_SIZE,
  SM2_KEY_PROBATION_SIZE,
  sm2ConfirmationEquals,
  sm2KeyExchange,
  Sm2PrivateKey,
  Sm2PublicKey,
  sm2Za,
} from "./sm2.ts";
import { hex, openssl, run, toHex } from "./testdata/oracle.ts";
import { encodeSequence, encodeUnsignedInteger } from "./asn1.ts";

const enc = new TextEncoder();

// GB/T 32918.5-2017 / GM/T 0003.5-2012 Annex A example on the recommended curve (also in OpenSSL's
// test/sm2_internal_test.c): ID 1234567812345678, message "message digest".
const VEC = {
  d: "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8",
  x: "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020",
  y: "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13",
  za: "B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3",
  e: "F0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640",
  k: "59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21",
  r: "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3",
  s: "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA",
  // OpenSSL sm2_internal_test.c encryption example: same key and k, SM3, plaintext "encryption standard".
  ct: "307C022004EBFC718E8D1798620432268E77FEB6415E2EDE0E073C0F4F640ECD2E149A73022100E858F9D81E5430A57B36DAAB8F950A3C" +
    "64E6EE6A63094D99283AFF767E124DF0042059983C18F809E262923C53AEC295D30383B54E39D609D160AFCB1908D0BD8766041321886CA98" +
    "9CA9C7D58087307CA93092D651EFA",
};

async function tmpFile(content: string | Uint8Array): Promise<string> {
  const p = await Deno.makeTempFile({ prefix: "ferry_sm2_" });
  if (typeof content === "string") await Deno.writeTextFile(p, content);
  else await Deno.writeFile(p, content);
  return p;
}

Deno.test("Sm2PrivateKey derives the Annex A public key and Z_A", () => {
  const key = Sm2PrivateKey.fromBytes(hex(VEC.d));
  assertEquals(toHex(key.publicKey.toBytes()), "04" + (VEC.x + VEC.y).toLowerCase());
  assertEquals(toHex(sm2Za(key.publicKey)), VEC.za.toLowerCase());
  assertEquals(toHex(key.publicKey.digest(enc.encode("message digest"))), VEC.e.toLowerCase());
});

Deno.test("Sm2PrivateKey.sign reproduces the Annex A signature with the example k", () => {
  const key = Sm2PrivateKey.fromBytes(hex(VEC.d));
  const raw = key.sign(enc.encode("message digest"), { format: "raw", k: hex(VEC.k) });
  assertEquals(toHex(raw), (VEC.r + VEC.s).toLowerCase());
  ok(key.publicKey.verify(enc.encode("message digest"), raw, { format: "raw" }));
  const der = encodeSm2Signature(decodeSm2Signature(raw, "raw"));
  ok(key.publicKey.verify(enc.encode("message digest"), der));
  ok(!key.publicKey.verify(enc.encode("message digesT"), der));
  ok(!key.publicKey.verify(enc.encode("message digest"), der, { id: enc.encode("other id") }));
});

Deno.test("Sm2PublicKey.encrypt reproduces the OpenSSL known-answer ciphertext and decrypts it", () => {
  const key = Sm2PrivateKey.fromBytes(hex(VEC.d));
  const ct = key.publicKey.encrypt(enc.encode("encryption standard"), { format: "asn1", k: hex(VEC.k) });
  assertEquals(toHex(ct), VEC.ct.toLowerCase());
  assertEquals(new TextDecoder().decode(key.decrypt(ct, { format: "asn1" })), "encryption standard");
});

Deno.test("Sm2PrivateKey sign/verify round-trips and rejects tampering, many keys", () => {
  for (let i = 0; i < 20; i++) {
    const key = Sm2PrivateKey.generate();
    const msg = crypto.getRandomValues(new Uint8Array(i * 7));
    const sig = key.sign(msg);
    ok(key.publicKey.verify(msg, sig), `round ${i}`);
    const bad = sig.slice();
    bad[bad.length - 1]! ^= 1;
    ok(!key.publicKey.verify(msg, bad), `tampered ${i}`);
  }
});

Deno.test("Sm2PublicKey.verify uses its precomputed table after repeated use and stays correct", () => {
  const key = Sm2PrivateKey.generate();
  const pub = Sm2PublicKey.fromBytes(key.publicKey.toBytes());
  for (let i = 0; i < 20; i++) {
    const msg = enc.encode("m" + i);
    const sig = key.sign(msg);
    ok(pub.verify(msg, sig), `verify ${i}`);
    ok(!pub.verify(enc.encode("x" + i), sig), `reject ${i}`);
  }
});

Deno.test("Sm2PrivateKey signatures verify in openssl, and openssl signatures verify here", async () => {
  const key = Sm2PrivateKey.generate();
  const msg = enc.encode("ferry interop message");
  const keyFile = await tmpFile(writeSm2PrivateKey(key));
  const pubFile = await tmpFile(writeSm2PublicKey(key.publicKey));
  const msgFile = await tmpFile(msg);
  const sigFile = await tmpFile(key.sign(msg));
  const r = await openssl([
    "dgst",
    "-sm3",
    "-verify",
    pubFile,
    "-sigopt",
    "distid:1234567812345678",
    "-signature",
    sigFile,
    msgFile,
  ]);
  ok(r.out.includes("Verified OK"));
  const osig = await openssl(["dgst", "-sm3", "-sign", keyFile, "-sigopt", "distid:1234567812345678", msgFile]);
  ok(key.publicKey.verify(msg, osig.stdout));
  for (const f of [keyFile, pubFile, msgFile, sigFile]) await Deno.remove(f);
});

Deno.test("openssl genpkey SM2 keys load here and interoperate for encryption (ASN.1 form)", async () => {
  const pem = (await openssl(["genpkey", "-algorithm", "SM2"])).out;
  const key = readSm2PrivateKey(pem);
  const pubPem = (await openssl(["pkey", "-pubout"], pem)).out;
  ok(readSm2PublicKey(pubPem).equals(key.publicKey));
  const keyFile = await tmpFile(pem);
  const pubFile = await tmpFile(pubPem);
  const msg = enc.encode("secret premaster bytes 0123456789abcdef");
  const ours = key.publicKey.encrypt(msg, { format: "asn1" });
  const ctFile = await tmpFile(ours);
  const dec = await openssl(["pkeyutl", "-decrypt", "-inkey", keyFile, "-in", ctFile]);
  assertEquals(toHex(dec.stdout), toHex(msg));
  const msgFile = await tmpFile(msg);
  const theirs = await openssl(["pkeyutl", "-encrypt", "-pubin", "-inkey", pubFile, "-in", msgFile]);
  assertEquals(toHex(key.decrypt(theirs.stdout, { format: "asn1" })), toHex(msg));
  for (const f of [keyFile, pubFile, ctFile, msgFile]) await Deno.remove(f);
});

Deno.test("Sm2 interoperates with sm-crypto-v2 and sm-crypto (sign, verify, encrypt, decrypt)", () => {
  const key = Sm2PrivateKey.generate();
  const privHex = toHex(key.toBytes());
  const pubHex = toHex(key.publicKey.toBytes());
  const msg = "hello sm2 interop";
  const m = enc.encode(msg);
  // Theirs → ours: signatures (raw r||s hex, Z_A with the default ID), ciphertexts (C1 without 04).
  const v2sig = smV2.doSignature(msg, privHex, { hash: true, publicKey: pubHex });
  ok(key.publicKey.verify(m, hex(v2sig), { format: "raw" }));
  const v1sig = smCrypto.sm2.doSignature(msg, privHex, { hash: true, der: true, publicKey: pubHex });
  ok(key.publicKey.verify(m, hex(v1sig)));
  const v2ct = smV2.doEncrypt(msg, pubHex, 1);
  assertEquals(new TextDecoder().decode(key.decrypt(hex("04" + v2ct))), msg);
  const v1ct = smCrypto.sm2.doEncrypt(msg, pubHex, 0);
  assertEquals(new TextDecoder().decode(key.decrypt(hex("04" + v1ct), { format: "c1c2c3" })), msg);
  // Ours → theirs.
  const ours = toHex(key.sign(m, { format: "raw" }));
  ok(smV2.doVerifySignature(msg, ours, pubHex, { hash: true }));
  ok(smCrypto.sm2.doVerifySignature(msg, toHex(key.sign(m)), pubHex, { hash: true, der: true }));
  const ct = toHex(key.publicKey.encrypt(m)).slice(2);
  assertEquals(smV2.doDecrypt(ct, privHex, 1), msg);
  assertEquals(smCrypto.sm2.doDecrypt(toHex(key.publicKey.encrypt(m, { format: "c1c2c3" })).slice(2), privHex, 0), msg);
  const asn = toHex(key.publicKey.encrypt(m, { format: "asn1" }));
  assertEquals(smV2.doDecrypt(asn, privHex, 1, { asn1: true }), msg);
});

Deno.test("Sm2PrivateKey.ecdh is symmetric and matches sm-crypto-v2's shared x-coordinate", () => {
  const a = Sm2PrivateKey.generate();
  const b = Sm2PrivateKey.generate();
  const ab = a.ecdh(b.publicKey);
  assertEquals(toHex(ab), toHex(b.ecdh(a.publicKey.toBytes())));
  assertEquals(ab.length, 32);
  const theirs = smV2.ecdh(a.toBytes(), b.publicKey.toBytes(), false) as Uint8Array;
  assertEquals(toHex(ab), toHex(theirs.subarray(1, 33)));
  // Repeated use with the same peer key (table path) gives the same secret.
  for (let i = 0; i < 10; i++) assertEquals(toHex(a.ecdh(b.publicKey)), toHex(ab));
});

Deno.test("sm2KeyExchange: both sides agree, confirmations match, and sm-crypto-v2 derives the same key", () => {
  const a = Sm2PrivateKey.generate();
  const b = Sm2PrivateKey.generate();
  const ra = Sm2PrivateKey.generate();
  const rb = Sm2PrivateKey.generate();
  const idA = enc.encode("ALICE123@YAHOO.COM");
  const resB = sm2KeyExchange({
    role: "responder",
    staticKey: b,
    ephemeralKey: rb,
    peerStaticKey: a.publicKey,
    peerEphemeralKey: Sm2PublicKey.fromBytes(ra.publicKey.toBytes()),
    keyLength: 48,
    peerId: idA,
  });
  const resA = sm2KeyExchange({
    role: "initiator",
    staticKey: a,
    ephemeralKey: ra,
    peerStaticKey: b.publicKey,
    peerEphemeralKey: rb.publicKey,
    keyLength: 48,
    id: idA,
  });
  assertEquals(toHex(resA.key), toHex(resB.key));
  ok(sm2ConfirmationEquals(resA.expectedPeerConfirmation, resB.confirmation));
  ok(sm2ConfirmationEquals(resB.expectedPeerConfirmation, resA.confirmation));
  ok(!sm2ConfirmationEquals(resA.expectedPeerConfirmation, resA.confirmation));
  const kp = (k: Sm2PrivateKey) => ({ privateKey: toHex(k.toBytes()), publicKey: toHex(k.publicKey.toBytes()) });
  const theirs = smV2.calculateSharedKey(
    kp(a),
    kp(ra),
    toHex(b.publicKey.toBytes()),
    toHex(rb.publicKey.toBytes()),
    48,
    false,
    "ALICE123@YAHOO.COM",
    "1234567812345678",
  );
  assertEquals(toHex(resA.key), toHex(theirs));
  // A mismatched ID gives a different key.
  const wrong = sm2KeyExchange({
    role: "initiator",
    staticKey: a,
    ephemeralKey: ra,
    peerStaticKey: b.publicKey,
    peerEphemeralKey: rb.publicKey,
    keyLength: 48,
  });
  ok(toHex(wrong.key) !== toHex(resB.key));
});

Deno.test("Sm2PublicKey.fromBytes rejects a point not on the curve and bad lengths", () => {
  const good = Sm2PrivateKey.generate().publicKey.toBytes();
  const bad = good.slice();
  bad[64]! ^= 1;
  assertThrows(() => Sm2PublicKey.fromBytes(bad), /SM2 public key: point is not on the curve/);
  assertThrows(() => Sm2PublicKey.fromBytes(good.subarray(0, 40)), /expected 33, 64 or 65 bytes/);
  assertThrows(() => Sm2PublicKey.fromAffine(1n, 2n), /not on the curve/);
  ok(Sm2PublicKey.fromBytes(good.subarray(1)).equals(Sm2PublicKey.fromBytes(good)));
  ok(Sm2PublicKey.fromBytes(Sm2PublicKey.fromBytes(good).toBytes(true)).equals(Sm2PublicKey.fromBytes(good)));
  const key = Sm2PrivateKey.generate();
  assertThrows(() => key.ecdh(bad), /not on the curve/);
});

Deno.test("Sm2PrivateKey.fromBytes rejects invalid scalars", () => {
  assertThrows(() => Sm2PrivateKey.fromBytes(new Uint8Array(32)), /SM2 private key: scalar is out of range/);
  assertThrows(() => Sm2PrivateKey.fromBytes(new Uint8Array(32).fill(0xff)), /out of range/);
  assertThrows(
    () => Sm2PrivateKey.fromBytes(hex("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54122")),
    /out of range/,
  );
  assertThrows(() => Sm2PrivateKey.fromBytes(new Uint8Array(31)), /expected 32 bytes/);
});

Deno.test("decodeSm2Signature rejects malformed DER and out-of-range values verify false", () => {
  const key = Sm2PrivateKey.generate();
  const sig = key.sign(enc.encode("x"));
  assertThrows(() => decodeSm2Signature(sig.subarray(0, sig.length - 1)), /SM2 signature/);
  assertThrows(() => decodeSm2Signature(new Uint8Array([0x30, 0x06, 0x02, 0x01, 0x80, 0x02, 0x01, 0x01])), /negative/);
  assertThrows(
    () => decodeSm2Signature(new Uint8Array([0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01])),
    /non-minimal/,
  );
  assertThrows(() => key.publicKey.verify(enc.encode("x"), new Uint8Array([0x31, 0])), /expected tag/);
  const zero = encodeSm2Signature({ r: 0n, s: 1n });
  ok(!key.publicKey.verify(enc.encode("x"), zero));
  const big = encodeSm2Signature({ r: 1n, s: (1n << 256n) - 1n });
  ok(!key.publicKey.verify(enc.encode("x"), big));
});

Deno.test("Sm2PrivateKey.decrypt rejects a modified ciphertext and C1 off the curve", () => {
  const key = Sm2PrivateKey.generate();
  const ct = key.publicKey.encrypt(enc.encode("attack at dawn"));
  const flipped = ct.slice();
  flipped[ct.length - 1]! ^= 1;
  assertThrows(() => key.decrypt(flipped), /C3 does not match/);
  const offCurve = ct.slice();
  offCurve[10]! ^= 1;
  assertThrows(() => key.decrypt(offCurve), /C1 is not on the curve/);
  assertThrows(() => key.decrypt(ct.subarray(0, 90)), /at least 97 bytes/);
  assertEquals(key.decrypt(key.publicKey.encrypt(new Uint8Array(0))).length, 0);
  ok(SM2_DEFAULT_ID.length === 16);
});

Deno.test("Sm2PrivateKey.sign with a non-default ID verifies in openssl with the same distid only", async () => {
  const key = Sm2PrivateKey.generate();
  const id = "ALICE123@YAHOO.COM";
  const msg = enc.encode("signed with another distinguishing ID");
  const pubFile = await tmpFile(writeSm2PublicKey(key.publicKey));
  const msgFile = await tmpFile(msg);
  const sigFile = await tmpFile(key.sign(msg, { id: enc.encode(id) }));
  const args = (distid: string) => ["dgst", "-sm3", "-verify", pubFile, "-sigopt", `distid:${distid}`, "-signature"];
  ok((await openssl([...args(id), sigFile, msgFile])).out.includes("Verified OK"));
  const wrong = await run("openssl", [...args("1234567812345678"), sigFile, msgFile]);
  ok(wrong.code !== 0);
  ok(!key.publicKey.verify(msg, await Deno.readFile(sigFile)));
  assertEquals(toHex(sm2Za(key.publicKey, enc.encode(id))), toHex(smV2.getZ(toHex(key.publicKey.toBytes()), id)));
  for (const f of [pubFile, msgFile, sigFile]) await Deno.remove(f);
});

Deno.test("Sm2PublicKey.fromBytes shares recently decoded keys and evicts the least recently used", () => {
  const first = Sm2PrivateKey.generate().publicKey.toBytes();
  const a = Sm2PublicKey.fromBytes(first);
  ok(Sm2PublicKey.fromBytes(first.slice()) === a);
  ok(Sm2PublicKey.fromBytes(first.subarray(1)) === a, "bare x || y maps to the same entry");
  // Keys that also come back twice push it out of the main cache.
  for (let i = 0; i < SM2_KEY_CACHE_SIZE; i++) {
    const other = Sm2PrivateKey.generate().publicKey.toBytes();
    Sm2PublicKey.fromBytes(other);
    Sm2PublicKey.fromBytes(other);
  }
  const b = Sm2PublicKey.fromBytes(first);
  ok(b !== a && b.equals(a));
});

Deno.test("Sm2PublicKey.fromBytes: keys decoded once (ephemeral) do not evict keys that came back", () => {
  const ca = Sm2PrivateKey.generate().publicKey.toBytes();
  const a = Sm2PublicKey.fromBytes(ca);
  ok(Sm2PublicKey.fromBytes(ca) === a, "promoted on its second decoding");
  for (let i = 0; i < SM2_KEY_PROBATION_SIZE + SM2_KEY_CACHE_SIZE + 8; i++) {
    Sm2PublicKey.fromBytes(Sm2PrivateKey.generate().publicKey.toBytes());
  }
  ok(Sm2PublicKey.fromBytes(ca) === a, "still cached after many one-off keys");
  // A one-off key falls out of probation after SM2_KEY_PROBATION_SIZE others.
  const once = Sm2PrivateKey.generate().publicKey.toBytes();
  const o = Sm2PublicKey.fromBytes(once);
  for (let i = 0; i < SM2_KEY_PROBATION_SIZE; i++) Sm2PublicKey.fromBytes(Sm2PrivateKey.generate().publicKey.toBytes());
  ok(Sm2PublicKey.fromBytes(once) !== o);
});

Deno.test("Sm2PublicKey.decode and Sm2PrivateKey.ecdh(bytes) bypass the key cache", () => {
  const bytes = Sm2PrivateKey.generate().publicKey.toBytes();
  const d1 = Sm2PublicKey.decode(bytes);
  const d2 = Sm2PublicKey.decode(bytes);
  ok(d1 !== d2 && d1.equals(d2));
  const me = Sm2PrivateKey.generate();
  const peer = Sm2PrivateKey.fromBytes(hex("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
  const pb = peer.publicKey.toBytes();
  // Many ECDHs with the same encoded key: correct each time, and the key never enters the cache.
  for (let i = 0; i < 12; i++) assertEquals(me.ecdh(pb), peer.ecdh(me.publicKey));
  // Had ecdh decoded through fromBytes, pb would be in the main cache by now; it is only on probation.
  const f1 = Sm2PublicKey.fromBytes(pb);
  for (let i = 0; i < SM2_KEY_PROBATION_SIZE; i++) Sm2PublicKey.fromBytes(Sm2PrivateKey.generate().publicKey.toBytes());
  ok(Sm2PublicKey.fromBytes(pb) !== f1);
  assertThrows(() => Sm2PublicKey.decode(new Uint8Array(65)), /not on the curve/);
  assertThrows(() => me.ecdh(new Uint8Array(10)), /expected 33, 64 or 65 bytes/);
});

Deno.test("Sm2PrivateKey.ecdh and decrypt agree on keys with and without precomputed tables", () => {
  const a = Sm2PrivateKey.generate();
  const b = Sm2PrivateKey.generate();
  const bStatic = Sm2PublicKey.decode(b.publicKey.toBytes());
  const want = b.ecdh(a.publicKey);
  // The first uses run the Jacobian path, later ones noble's table (built after a few uses): same result.
  for (let i = 0; i < 12; i++) assertEquals(a.ecdh(bStatic), want, `use ${i}`);
  const msg = enc.encode("to a key used again and again");
  for (let i = 0; i < 12; i++) assertEquals(b.decrypt(bStatic.encrypt(msg)), msg);
  // Against sm-crypto-v2 (its own arithmetic): ECDH x-coordinates for fresh key pairs.
  for (let i = 0; i < 10; i++) {
    const k = Sm2PrivateKey.generate();
    const p = Sm2PrivateKey.generate().publicKey;
    assertEquals(
      toHex(k.ecdh(p.toBytes())),
      toHex((smV2.ecdh(k.toBytes(), p.toBytes(), false) as Uint8Array).subarray(1, 33)),
    );
  }
});

Deno.test("Sm2PrivateKey public keys and signatures match sm-crypto-v2 for edge and random scalars", () => {
  const n = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123n;
  const scalars = [1n, 2n, 127n, 128n, 129n, 1n << 252n, (1n << 255n) + 1n, n - 2n, n - 129n];
  for (let i = 0; i < 8; i++) scalars.push(BigInt("0x" + toHex(Sm2PrivateKey.generate().toBytes())));
  for (const d of scalars) {
    const dHex = d.toString(16).padStart(64, "0");
    const key = Sm2PrivateKey.fromBytes(hex(dHex));
    assertEquals(toHex(key.publicKey.toBytes()), smV2.getPublicKeyFromPrivateKey(dHex));
    const msg = enc.encode(`message for ${dHex}`);
    const sig = key.sign(msg, { format: "raw" });
    ok(smV2.doVerifySignature(msg, toHex(sig), smV2.getPublicKeyFromPrivateKey(dHex), { hash: true }));
  }
});

Deno.test("SM2 DER signatures are encoded as the general DER helpers encode them", () => {
  const n = SM2_CURVE.n;
  const values = [1n, 0x7fn, 0x80n, 0xffn, 0x100n, (1n << 255n) - 1n, 1n << 255n, n - 1n, (1n << 248n) + 5n, 1n << 7n];
  let x = 0x1234567n;
  for (let i = 0; i < 200; i++) {
    x = (x * 6364136223846793005n + 1442695040888963407n) % n;
    values.push(x >> BigInt(i % 250));
    values.push(x);
  }
  for (const r of values) {
    const s = values[(Number(r % 97n)) % values.length]!;
    if (r === 0n || s === 0n) continue;
    const want = encodeSequence(encodeUnsignedInteger(r), encodeUnsignedInteger(s));
    const got = encodeSm2Signature({ r, s });
    assertEquals(toHex(got), toHex(want), `r=${r.toString(16)} s=${s.toString(16)}`);
    assertEquals(decodeSm2Signature(got), { r, s });
  }
});

Deno.test("Sm2PublicKey.toBytes writes the uncompressed point as noble encodes it, and decodes back", () => {
  const keys = [Sm2PublicKey.fromAffine(SM2_CURVE.Gx, SM2_CURVE.Gy)];
  for (let i = 0; i < 50; i++) keys.push(Sm2PrivateKey.generate().publicKey);
  for (const pub of keys) {
    const b = pub.toBytes();
    assertEquals(toHex(b), toHex(pub.point.toBytes(false)));
    ok(Sm2PublicKey.fromBytes(b).equals(pub));
    assertEquals(toHex(pub.toBytes(true)), toHex(pub.point.toBytes(true)));
  }
});
