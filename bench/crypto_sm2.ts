/**
 * SM2 / SM3 micro-benchmarks: ours against sm-crypto-v2 and sm-crypto, side by side.
 *
 *   deno run -A bench/crypto_sm2.ts [--time 1000] [--rounds 3] [--only sign,verify,ecdh,hash]
 *
 * Each case runs time-bounded loops (`--time` ms) for `--rounds` rounds, interleaved with its competitors
 * so that drift hits every contender alike; it prints the median ops/s (or MB/s), min–max over rounds, and
 * the ratio of the group's first row (ours) to each other row, from the medians. Not a test.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { createHash } from "node:crypto";
import * as smCrypto from "sm-crypto";
import { sm2 as smV2 } from "sm-crypto-v2";
import { hkdfExpand, hkdfExtract } from "../lib/crypto/hkdf.ts";
import { HmacKey, SHA256 } from "../lib/crypto/hmac.ts";
import { decodeSm2Signature, encodeSm2Signature, Sm2PrivateKey, Sm2PublicKey } from "../lib/crypto/sm2.ts";
import { hmacSm3, SM3, sm3, sm3Native } from "../lib/crypto/sm3.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    time: { type: "string", default: "1000" },
    rounds: { type: "string", default: "3" },
    only: { type: "string", default: "sign,verify,ecdh,hash" },
  },
});
const TIME = Number(values.time);
const ROUNDS = Number(values.rounds);
const ONLY = new Set(values.only.split(","));

function toHex(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

/** Runs `fn` repeatedly for `TIME` ms; returns operations per second. */
function rate(fn: () => void): number {
  const start = performance.now();
  let n = 0;
  let now = start;
  do {
    fn();
    n++;
    if ((n & 3) === 0) now = performance.now();
  } while (now - start < TIME);
  return n / ((performance.now() - start) / 1000);
}

interface Contender {
  name: string;
  fn: () => void;
  /** Bytes processed per call (for MB/s); omit for ops/s. */
  bytes?: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (x: number) => (x >= 100 ? Math.round(x).toString() : x.toFixed(1));

/** Benchmarks contenders in interleaved rounds; the first one is "ours" and the base of the ratios. */
function group(title: string, contenders: Contender[]): void {
  for (const c of contenders) for (let i = 0; i < 30; i++) c.fn(); // warm-up, and builds lazy tables
  const results = contenders.map(() => [] as number[]);
  for (let r = 0; r < ROUNDS; r++) {
    contenders.forEach((c, i) => {
      const ops = rate(c.fn);
      results[i]!.push(c.bytes ? (ops * c.bytes) / 1e6 : ops);
    });
  }
  console.log(`\n${title}`);
  const base = median(results[0]!);
  contenders.forEach((c, i) => {
    const xs = results[i]!;
    const unit = c.bytes ? "MB/s " : "ops/s";
    const ratio = i === 0 ? "" : `   ours/this = ${(base / median(xs)).toFixed(2)}x`;
    console.log(
      `  ${c.name.padEnd(44)} ${fmt(median(xs)).padStart(8)} ${unit}  (min–max ${fmt(Math.min(...xs))}–${
        fmt(Math.max(...xs))
      })${ratio}`,
    );
  });
}

function decodeRaw(der: Uint8Array): Uint8Array {
  return encodeSm2Signature(decodeSm2Signature(der), "raw");
}

const msg = new TextEncoder().encode("The quick brown fox jumps over the lazy dog, 64 bytes of message.");
const msgStr = new TextDecoder().decode(msg);
const key = Sm2PrivateKey.generate();
const privHex = toHex(key.toBytes());
const pubHex = toHex(key.publicKey.toBytes());

console.log(`Deno ${Deno.version.deno}, V8 ${Deno.version.v8}; ${ROUNDS} rounds × ${TIME} ms per contender`);

if (ONLY.has("sign")) {
  group("SM2 sign (Z_A with the default ID + SM3 + sign)", [
    { name: "ferry Sm2PrivateKey.sign (DER)", fn: () => key.sign(msg) },
    {
      name: "sm-crypto-v2 doSignature(hash, publicKey given)",
      fn: () => smV2.doSignature(msg, privHex, { hash: true, publicKey: pubHex }),
    },
    {
      name: "sm-crypto doSignature(hash, publicKey given)",
      fn: () => smCrypto.sm2.doSignature(msgStr, privHex, { hash: true, publicKey: pubHex }),
    },
  ]);
}

if (ONLY.has("verify")) {
  const sig = key.sign(msg);
  const rawHex = toHex(key.sign(msg, { format: "raw" }));
  const derHex = toHex(sig);
  const cachedKey = Sm2PublicKey.fromBytes(key.publicKey.toBytes());
  const pubBytes = key.publicKey.toBytes();
  const precomputedV2 = smV2.precomputePublicKey(pubHex, 6);
  // More distinct signers than SM2_KEY_CACHE_SIZE, so every decode is a miss and no key gets a table.
  const signers = Array.from({ length: 64 }, () => {
    const k = Sm2PrivateKey.generate();
    return { pub: k.publicKey.toBytes(), sig: k.sign(msg), pubHex: toHex(k.publicKey.toBytes()) };
  });
  const signersV2 = signers.map((x) => ({ pubHex: x.pubHex, sigHex: toHex(decodeRaw(x.sig)) }));
  let i = 0;
  let j = 0;
  group("SM2 verify, a new signer each call (key decoded, no table)", [
    {
      name: "ferry Sm2PublicKey.fromBytes + verify",
      fn: () => {
        const s = signers[i++ & 63]!;
        Sm2PublicKey.fromBytes(s.pub).verify(msg, s.sig);
      },
    },
    {
      name: "sm-crypto-v2 doVerifySignature(hash)",
      fn: () => {
        const s = signersV2[j++ & 63]!;
        smV2.doVerifySignature(msg, s.sigHex, s.pubHex, { hash: true });
      },
    },
    {
      name: "sm-crypto doVerifySignature(hash, der)",
      fn: () => smCrypto.sm2.doVerifySignature(msgStr, derHex, pubHex, { hash: true, der: true }),
    },
  ]);
  group("SM2 verify, the same signer again (cached paths)", [
    { name: "ferry verify, kept Sm2PublicKey (table)", fn: () => cachedKey.verify(msg, sig) },
    { name: "ferry fromBytes (key cache hit) + verify", fn: () => Sm2PublicKey.fromBytes(pubBytes).verify(msg, sig) },
    {
      name: "sm-crypto-v2 doVerifySignature(precomputed key)",
      fn: () => smV2.doVerifySignature(msg, rawHex, precomputedV2, { hash: true }),
    },
    {
      name: "sm-crypto-v2 doVerifySignature(hash)",
      fn: () => smV2.doVerifySignature(msg, rawHex, pubHex, { hash: true }),
    },
  ]);
}

if (ONLY.has("ecdh")) {
  const peers = Array.from({ length: 64 }, () => Sm2PrivateKey.generate().publicKey.toBytes());
  const peerBytes = peers[0]!;
  const cachedPeer = Sm2PublicKey.fromBytes(peerBytes);
  const d = key.toBytes();
  let i = 0;
  let j = 0;
  group("SM2 ECDH, a new peer key each call (ephemeral, as in TLS 1.3 curveSM2)", [
    { name: "ferry Sm2PrivateKey.ecdh(bytes)", fn: () => key.ecdh(peers[i++ & 63]!) },
    { name: "sm-crypto-v2 ecdh(priv, pub)", fn: () => smV2.ecdh(d, peers[j++ & 63]!, false) },
  ]);
  group("SM2 ECDH, the same peer key again", [
    { name: "ferry ecdh, kept peer Sm2PublicKey (table)", fn: () => key.ecdh(cachedPeer) },
    { name: "sm-crypto-v2 ecdh(priv, pub)", fn: () => smV2.ecdh(d, peerBytes, false) },
  ]);
  const encKey = Sm2PrivateKey.generate();
  const encPubHex = toHex(encKey.publicKey.toBytes());
  const encPrivHex = toHex(encKey.toBytes());
  const pms = new Uint8Array(48).fill(7);
  // Fresh ciphertexts (a new C1 each), as a TLCP ECC server decrypts the client's pre-master secret.
  const cts = Array.from({ length: 64 }, () => encKey.publicKey.encrypt(pms));
  const ctsV2 = Array.from({ length: 64 }, () => smV2.doEncrypt(pms, encPubHex, 1) as string);
  let m = 0;
  let n = 0;
  group("SM2 decrypt of 48 bytes, a new C1 each call (TLCP ECC pre-master secret)", [
    { name: "ferry Sm2PrivateKey.decrypt", fn: () => encKey.decrypt(cts[m++ & 63]!) },
    { name: "sm-crypto-v2 doDecrypt", fn: () => smV2.doDecrypt(ctsV2[n++ & 63]!, encPrivHex, 1, { output: "array" }) },
  ]);
  group("SM2 key generation (base-point multiplication)", [
    { name: "ferry Sm2PrivateKey.generate", fn: () => Sm2PrivateKey.generate() },
    { name: "sm-crypto-v2 generateKeyPairHex", fn: () => smV2.generateKeyPairHex() },
  ]);
}

if (ONLY.has("hash")) {
  for (const size of [64, 1024, 16384, 1 << 20]) {
    const data = new Uint8Array(size).map((_, i) => (i * 131 + 7) & 0xff);
    group(`SM3 over ${size}-byte messages`, [
      { name: "ferry sm3 (TypeScript)", fn: () => sm3(data), bytes: size },
      { name: "sm3Native (createHash('sm3'))", fn: () => sm3Native(data), bytes: size },
      { name: "createHash('sha256')", fn: () => createHash("sha256").update(data).digest(), bytes: size },
    ]);
  }
  for (const size of [64, 1024, 16384]) {
    const data = new Uint8Array(size).map((_, i) => (i * 131 + 7) & 0xff);
    const k = crypto.getRandomValues(new Uint8Array(32));
    const hk = new HmacKey(SM3, k);
    const hk256 = new HmacKey(SHA256, k);
    group(`HMAC over ${size}-byte messages`, [
      { name: "ferry HMAC-SM3, HmacKey (pads precomputed)", fn: () => hk.mac(data), bytes: size },
      // Deno's node:crypto has no createHmac('sm3'); this is the same HMAC with the pads hashed every time.
      { name: "ferry hmacSm3 (pads hashed per message)", fn: () => hmacSm3(k, data), bytes: size },

      { name: "ferry HMAC-SHA256, HmacKey", fn: () => hk256.mac(data), bytes: size },
      { name: "createHash('sha256')", fn: () => createHash("sha256").update(data).digest(), bytes: size },
      { name: "createHash('sm3')", fn: () => createHash("sm3").update(data).digest(), bytes: size },
    ]);
  }
  const ikm = crypto.getRandomValues(new Uint8Array(32));
  const info = new Uint8Array(40);
  group("HKDF (extract + expand to 32 bytes, TLS-like)", [
    { name: "ferry HKDF-SM3", fn: () => hkdfExpand(SM3, hkdfExtract(SM3, info, ikm), info, 32), bytes: 32 },
    { name: "ferry HKDF-SHA256", fn: () => hkdfExpand(SHA256, hkdfExtract(SHA256, info, ikm), info, 32), bytes: 32 },
  ]);
  group("HKDF-Expand output throughput (255 blocks)", [
    { name: "ferry HKDF-SM3 expand 8160 bytes", fn: () => hkdfExpand(SM3, ikm, info, 255 * 32), bytes: 255 * 32 },
    {
      name: "ferry HKDF-SHA256 expand 8160 bytes",
      fn: () => hkdfExpand(SHA256, ikm, info, 255 * 32),
      bytes: 255 * 32,
    },
  ]);
}
