/**
 * RFC 8448 §3 ("Simple 1-RTT Handshake", TLS_AES_128_GCM_SHA256, x25519): the key schedule, traffic keys and
 * Finished values from the published trace, and our parsers on its ClientHello and ServerHello.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { SHA256, SM3 } from "../../../crypto/mod.ts";
import { HandshakeType } from "./_codec.ts";
import { Transcript } from "./_engine.ts";
import { finishedVerifyData, KeySchedule, nextTrafficSecret, trafficKeys } from "./key_schedule.ts";
import { parseClientHello, parseServerHello } from "./messages.ts";

const hex = (s: string) => Uint8Array.from(s.match(/../g)!.map((b) => parseInt(b, 16)));
const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

// Handshake messages of the trace (header included).
const CLIENT_HELLO = hex(
  "010000c00303cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7000006130113031302010000910000000b" +
    "0009000006736572766572ff01000100000a00140012001d0017001800190100010101020103010400230000003300260024001d0020" +
    "99381de560e4bd43d23d8e435a7dbafeb3c06e51c13cae4d5413691e529aaf2c002b0003020304000d0020001e04030503060302030804" +
    "0805080604010501060102010402050206020202002d00020101001c00024001",
);
const SERVER_HELLO = hex(
  "020000560303a6af06a4121860dc5e6e60249cd34c95930c8ac5cb1434dac155772ed3e2692800130100002e00330024001d0020c98288" +
    "76112095fe66762bdbf7c672e156d6cc253b833df1dd69b1b04e751f0f002b00020304",
);
const ENCRYPTED_EXTENSIONS = hex(
  "080000240022000a00140012001d00170018001901000101010201030104001c0002400100000000",
);
const CERTIFICATE = hex(
  "0b0001b9000001b50001b0308201ac30820115a003020102020102300d06092a864886f70d01010b0500300e310c300a06035504031303" +
    "727361301e170d3136303733303031323335395a170d3236303733303031323335395a300e310c300a0603550403130372736130819f" +
    "300d06092a864886f70d010101050003818d0030818902818100b4bb498f8279303d980836399b36c6988c0c68de55e1bdb826d3901a" +
    "2461eafd2de49a91d015abbc9a95137ace6c1af19eaa6af98c7ced43120998e187a80ee0ccb0524b1b018c3e0b63264d449a6d38e22a" +
    "5fda430846748030530ef0461c8ca9d9efbfae8ea6d1d03e2bd193eff0ab9a8002c47428a6d35a8d88d79f7f1e3f0203010001a31a30" +
    "1830090603551d1304023000300b0603551d0f0404030205a0300d06092a864886f70d01010b05000381810085aad2a0e5b9276b908c" +
    "65f73a7267170618a54c5f8a7b337d2df7a594365417f2eae8f8a58c8f8172f9319cf36b7fd6c55b80f21a03015156726096fd335e5e" +
    "67f2dbf102702e608ccae6bec1fc63a42a99be5c3eb7107c3c54e9b9eb2bd5203b1c3b84e0a8b2f759409ba3eac9d91d402dcc0cc8f8" +
    "961229ac9187b42b4de10000",
);
const CERTIFICATE_VERIFY = hex(
  "0f000084080400805a747c5d88fa9bd2e55ab085a61015b7211f824cd484145ab3ff52f1fda8477b0b7abc90db78e2d33a5c141a078653" +
    "fa6bef780c5ea248eeaaa785c4f394cab6d30bbe8d4859ee511f602957b15411ac027671459e46445c9ea58c181e818e95b8c3fb0bf3" +
    "278409d3be152a3da5043e063dda65cdf5aea20d53dfacd42f74f3",
);
const SERVER_FINISHED = hex("140000209b9b141d906337fbd2cbdce71df4deda4ab42c309572cb7fffee5454b78f0718");
const SHARED = hex("8bd4054fb55b9d63fdfbacf9f04b9f0d35e6d63f537563efd46272900f89492d");

Deno.test("KeySchedule reproduces the RFC 8448 simple 1-RTT key schedule", () => {
  const ks = new KeySchedule(SHA256);
  assertEquals(toHex(ks.earlySecret()), "33ad0a1c607ec03b09e6cd9893680ce210adf300aa1f2660e1b22e10f170f92a");
  assertEquals(toHex(ks.handshakeSecret(SHARED)), "1dc826e93606aa6fdc0aadc12f741b01046aa6b99f691ed221a9f0ca043fbeac");

  const t = new Transcript();
  t.add(CLIENT_HELLO);
  t.setHash(SHA256);
  t.add(SERVER_HELLO);
  const [cHs, sHs] = ks.handshakeTrafficSecrets(t.digest());
  assertEquals(toHex(cHs), "b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21");
  assertEquals(toHex(sHs), "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38");
  assertEquals(toHex(ks.masterSecret()), "18df06843d13a08bf2a449844c5f8a478001bc4d4c627984d5a41da8d0402919");

  const sKeys = trafficKeys(SHA256, sHs, 16, 12);
  assertEquals([toHex(sKeys.key), toHex(sKeys.iv)], ["3fce516009c21727d0f2e4e86ee403bc", "5d313eb2671276ee13000b30"]);
  const cKeys = trafficKeys(SHA256, cHs, 16, 12);
  assertEquals([toHex(cKeys.key), toHex(cKeys.iv)], ["dbfaa693d1762c5b666af5d950258d01", "5bd3c71b836e0b76bb73265f"]);

  t.add(ENCRYPTED_EXTENSIONS);
  t.add(CERTIFICATE);
  t.add(CERTIFICATE_VERIFY);
  assertEquals(
    toHex(finishedVerifyData(SHA256, sHs, t.digest())),
    "9b9b141d906337fbd2cbdce71df4deda4ab42c309572cb7fffee5454b78f0718",
  );
  t.add(SERVER_FINISHED);
  const [cAp, sAp] = ks.applicationTrafficSecrets(t.digest());
  assertEquals(toHex(cAp), "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5");
  assertEquals(toHex(sAp), "a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643");
  assertEquals(
    toHex(ks.exporterMasterSecret(t.digest())),
    "fe22f881176eda18eb8f44529e6792c50c9a3f89452f68d8ae311b4309d3cf50",
  );
  const sAk = trafficKeys(SHA256, sAp, 16, 12);
  assertEquals([toHex(sAk.key), toHex(sAk.iv)], ["9f02283b6c9c07efc26bb9f2ac92e356", "cf782b88dd83549aadf1e984"]);
  const cAk = trafficKeys(SHA256, cAp, 16, 12);
  assertEquals([toHex(cAk.key), toHex(cAk.iv)], ["17422dda596ed5d9acd890e3c63f5051", "5b78923dee08579033e523d9"]);
  // The client's Finished covers the transcript through the server's Finished.
  assertEquals(
    toHex(finishedVerifyData(SHA256, cHs, t.digest())),
    "a8ec436d677634ae525ac1fcebe11a039ec17694fac6e98527b642f2edd5ce61",
  );
});

Deno.test("parseClientHello and parseServerHello read the RFC 8448 hellos", () => {
  const ch = parseClientHello(CLIENT_HELLO.subarray(4));
  assertEquals(ch.cipherSuites, [0x1301, 0x1303, 0x1302]);
  assertEquals(ch.serverName, "server");
  assertEquals(ch.supportedVersions, [0x0304]);
  assertEquals(ch.supportedGroups, [0x001d, 0x0017, 0x0018, 0x0019, 0x0100, 0x0101, 0x0102, 0x0103, 0x0104]);
  assertEquals(ch.keyShares?.map((k) => [k.group, toHex(k.key)]), [[
    0x001d,
    "99381de560e4bd43d23d8e435a7dbafeb3c06e51c13cae4d5413691e529aaf2c",
  ]]);
  assertEquals(ch.signatureAlgorithms?.length, 15);
  const sh = parseServerHello(SERVER_HELLO.subarray(4));
  assertEquals([sh.cipherSuite, sh.supportedVersion, sh.retry, sh.keyShare?.group], [0x1301, 0x0304, false, 0x1d]);
  assertEquals(SERVER_HELLO[0], HandshakeType.serverHello);
});

Deno.test("KeySchedule with SM3 yields 32-byte secrets and distinct traffic keys (RFC 8998)", () => {
  const ks = new KeySchedule(SM3);
  ks.handshakeSecret(new Uint8Array(32).fill(7));
  const [c, s] = ks.handshakeTrafficSecrets(SM3.digest(new Uint8Array(0)));
  assertEquals([c.length, s.length], [32, 32]);
  const k = trafficKeys(SM3, c, 16, 12);
  assertEquals([k.key.length, k.iv.length], [16, 12]);
  const next = nextTrafficSecret(SM3, c);
  assertEquals(next.length, 32);
  assertEquals(toHex(next) === toHex(c), false);
});
