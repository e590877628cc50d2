/**
 * SM2 (GB/T 32918) on the recommended 256-bit curve: keys, signatures with Z_A, ECDH (TLS 1.3 curveSM2), the
 * SM2 key-exchange protocol (part 3, used by TLCP ECDHE suites) and public-key encryption (part 4).
 *
 * Points, encodings and validation are `@noble/curves`' short Weierstrass implementation. Secret scalars go
 * through WebAssembly (`wasm/_sm2_wasm.ts`: 32-bit limbs, i64 products, a multiplication-free Montgomery
 * reduction, or 64-bit limbs where wide arithmetic is enabled ({@link sm2ArithmeticBuild}); Jacobian a = −3
 * formulas; constant point-operation count, masked table scans and selects): a
 * width-5 comb for k·G (key generation, signing, and s·G in verification) and a width-4 fixed window for
 * other points (ECDH, decryption, key exchange). CPU per operation against the bigint code in
 * `_sm2_jacobian.ts` (which stays as the reference of the differential tests), same machine, side by side: key
 * generation 55–60 → 40–45 µs, signing 70–95 → 55–60, ECDH with a fresh key 330–500 → 150–170, decryption
 * 380–400 → 150–170, verification with a fresh key 400 → 200, with a kept key 110–120 → 70. A public key used repeatedly
 * gets a comb table of its own (built with bigint, loaded into one of the module's 32 key slots; see
 * {@link Sm2PublicKey}), used for secret and public scalars alike; verification sums s·G + t·Q in WebAssembly.
 * Public scalars without a table (verification, the public half of key exchange) take the same WebAssembly
 * fixed window, over only as many windows as the scalar has digits (the bigint wNAF of `sm2_vartime.ts` was
 * ~2× slower).
 * Scalar arithmetic mod n (signing's s, the key exchange's t) stays on JavaScript bigint, which is not
 * constant-time; this code adds no branches on secret values beyond the negligible-probability retries of the
 * standard.
 *
 * @module
 */

import { weierstrass, type WeierstrassPoint, type WeierstrassPointCons } from "@noble/curves/abstract/weierstrass.js";
import { bytesToNumberBE, equalBytes } from "@noble/curves/utils.js";
import {
  concatBytes,
  decodeUnsignedInteger,
  DerError,
  encodeElement,
  encodeSequence,
  encodeUnsignedInteger,
  expectElement,
  Tag,
} from "./asn1.ts";
import { createSm3, sm3, sm3Kdf } from "./sm3.ts";
import { SM2_P } from "./sm2_vartime.ts";
import { sm2BuildComb, type Sm2Comb } from "./_sm2_jacobian.ts";
import {
  SM2_WASM_COMB_WIDTH,
  sm2WasmBaseReady,
  sm2WasmInitBase,
  sm2WasmLoadTable,
  sm2WasmMultiply,
  sm2WasmMultiplyBase,
  sm2WasmMultiplyTable,
  type Sm2WasmTable,
  sm2WasmTableValid,
  sm2WasmVerifySum,
} from "./wasm/_sm2_wasm.ts";
import { sm2WasmBuild } from "./wasm/_sm2_wasm_module.ts";

/**
 * Which WebAssembly build runs SM2's field arithmetic: `"wide"` (64-bit limbs, the runtime started with
 * `--v8-flags=--experimental-wasm-wide-arithmetic`, as `deno task start` and the compiled binary are; GM
 * handshakes 15-20% cheaper) or `"base"` (32-bit limbs, any runtime). Chooses it if nothing has used SM2 yet.
 */
export function sm2ArithmeticBuild(): "wide" | "base" {
  return sm2WasmBuild();
}

/** The SM2 recommended curve parameters (GB/T 32918.5). */
export const SM2_CURVE = {
  p: 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFFn,
  a: 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFCn,
  b: 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93n,
  n: 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123n,
  Gx: 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7n,
  Gy: 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0n,
} as const;

if (SM2_P !== SM2_CURVE.p) throw new Error("SM2: sm2_vartime.ts has a different field prime");

/** The default SM2 user ID, `"1234567812345678"`, used by TLCP, RFC 8998 and OpenSSL. */
export const SM2_DEFAULT_ID: Uint8Array = new TextEncoder().encode("1234567812345678");

/** An SM2 curve point (projective, immutable). */
export type Sm2Point = WeierstrassPoint<bigint>;

/**
 * The SM2 point constructor: `Sm2Point.BASE`, `fromBytes`, `fromAffine`, `Fn` (scalars mod n), `Fp`.
 *
 * Scalar blinding is off. noble blinds secret scalars by default (k + r·n with a 128-bit r, a defence against
 * power analysis), which makes a window-8 base multiplication 49 table additions instead of 33: measured
 * ~3000 vs ~4200 ops/s, and signing fell below sm-crypto-v2. `multiply` stays constant in its operation
 * count and scans whole table windows; only the extra masking goes. noble documents this as its supported
 * fallback when `randomBytes` is unavailable, which is how it is selected here.
 */
export const Sm2Point: WeierstrassPointCons<bigint> = weierstrass<bigint>({ ...SM2_CURVE, h: 1n }, {
  randomBytes: () => {
    throw new Error("SM2: scalar blinding is disabled");
  },
});

// For callers of Sm2Point.BASE.multiply (this module uses the comb in _sm2_jacobian.ts): window 8, 33 table
// additions instead of 44 (window 6). The table (4224 points) is built on first use, ~80 ms once per process.
Sm2Point.BASE.precompute(8);

const Fn = Sm2Point.Fn;
const N = SM2_CURVE.n;
const COORD = 32;
const U64 = 0xffffffffffffffffn;
const W_MASK = (1n << 127n) - 1n;
const W_POW = 1n << 127n;

/** k·G for a secret scalar 1 ≤ k < n, affine, on the WebAssembly comb (its table built on first use). */
function baseMultiply(k: bigint): { x: bigint; y: bigint } {
  if (!sm2WasmBaseReady()) sm2WasmInitBase(sm2BuildComb(SM2_CURVE.Gx, SM2_CURVE.Gy, SM2_WASM_COMB_WIDTH));
  return sm2WasmMultiplyBase(k);
}

/**
 * k·point for a secret scalar 1 ≤ k < n, affine: the point's comb when it has one, else the WebAssembly
 * fixed-window multiplication. Throws for the point at infinity.
 */
function secretMultiply(point: Sm2Point, k: bigint): { x: bigint; y: bigint } {
  const table = tableOf(point);
  if (table) return sm2WasmMultiplyTable(table, k);
  if (point.is0()) throw new Error("SM2: scalar multiplication of the point at infinity");
  const { x, y } = point.toAffine();
  return sm2WasmMultiply(x, y, k);
}

/** Encodes a field element or scalar as 32 big-endian bytes. */
function be32(v: bigint): Uint8Array {
  const out = new Uint8Array(COORD);
  writeBig256(new DataView(out.buffer), 0, v);
  return out;
}

/**
 * Writes 0 ≤ v < 2^256 as 32 big-endian bytes at `at` through `dv`: four 64-bit stores (noble's encoders go
 * through hex strings, ~8 µs per coordinate).
 */
function writeBig256(dv: DataView, at: number, v: bigint): void {
  dv.setBigUint64(at, v >> 192n), dv.setBigUint64(at + 8, (v >> 128n) & U64);
  dv.setBigUint64(at + 16, (v >> 64n) & U64), dv.setBigUint64(at + 24, v & U64);
}

/** Reads 32 big-endian bytes at `at` through `dv` as a bigint (four 64-bit loads). */
export function readBig256(dv: DataView, at: number): bigint {
  return (dv.getBigUint64(at) << 192n) | (dv.getBigUint64(at + 8) << 128n) | (dv.getBigUint64(at + 16) << 64n) |
    dv.getBigUint64(at + 24);
}

/** Random bytes for {@link randomScalar}: refilled in place, read into a bigint at once (no array per scalar). */
const RANDOM_SCALAR = new Uint8Array(COORD);
const RANDOM_SCALAR_VIEW = new DataView(RANDOM_SCALAR.buffer);

/** A random scalar in [1, n-1] by rejection sampling (no modular bias). */
function randomScalar(): bigint {
  const b = RANDOM_SCALAR, dv = RANDOM_SCALAR_VIEW;
  for (;;) {
    crypto.getRandomValues(b);
    const k = readBig256(dv, 0);
    b.fill(0);
    if (k >= 1n && k < N) return k;
  }
}

function assertNonZeroScalar(k: bigint, what: string): void {
  if (k < 1n || k >= N) throw new RangeError(`${what}: scalar is out of range [1, n-1]`);
}

function assertScalar(d: bigint, what: string): void {
  if (d < 1n || d >= N - 1n) throw new RangeError(`${what}: scalar is out of range [1, n-2]`);
}

/** The signature encodings: DER `SEQUENCE { r INTEGER, s INTEGER }` or raw `r || s` (64 bytes). */
export type Sm2SignatureFormat = "der" | "raw";

/** The ciphertext layouts: GB/T 32918.4-2016 `C1C3C2` (default), the 2010 draft `C1C2C3`, or TLCP's ASN.1. */
export type Sm2CiphertextFormat = "c1c3c2" | "c1c2c3" | "asn1";

/** Options for {@link Sm2PrivateKey.sign} and {@link Sm2PublicKey.verify}. */
export interface Sm2SignOptions {
  /** Signer ID for Z_A; default {@link SM2_DEFAULT_ID}. */
  id?: Uint8Array;
  /** Signature encoding; default `"der"`. */
  format?: Sm2SignatureFormat;
  /**
   * A fixed nonce k (32 bytes), for known-answer tests only. Never set it otherwise: two signatures with the
   * same k reveal the private key. Ignored by verification.
   */
  k?: Uint8Array;
}

/** Options for {@link Sm2PublicKey.encrypt} and {@link Sm2PrivateKey.decrypt}. */
export interface Sm2EncryptOptions {
  /** Ciphertext layout; default `"c1c3c2"`. */
  format?: Sm2CiphertextFormat;
  /** A fixed ephemeral scalar k (32 bytes), for known-answer tests only. Ignored by decryption. */
  k?: Uint8Array;
}

/** An SM2 signature as its two integers. */
export interface Sm2Signature {
  /** r in [1, n-1]. */
  readonly r: bigint;
  /** s in [1, n-1]. */
  readonly s: bigint;
}

/**
 * Encodes a signature.
 *
 * @param sig the integers
 * @param format `"der"` or `"raw"` (r || s, 32 bytes each)
 */
export function encodeSm2Signature(sig: Sm2Signature, format: Sm2SignatureFormat = "der"): Uint8Array {
  if (format === "raw") return concatBytes(be32(sig.r), be32(sig.s));
  // SEQUENCE { INTEGER r, INTEGER s } with r, s < n: at most 72 bytes, so every length is one byte. Written in
  // one pass into one array (the general DER helpers allocated ~5 typed arrays per signature).
  const r = SIG_WORDS, sb = SIG_WORDS_S;
  writeBig256(SIG_WORDS_VIEW, 0, sig.r);
  writeBig256(SIG_WORDS_S_VIEW, 0, sig.s);
  const rs = derIntStart(r), ss = derIntStart(sb);
  const rl = 32 - rs + (r[rs]! & 0x80 ? 1 : 0), sl = 32 - ss + (sb[ss]! & 0x80 ? 1 : 0);
  const out = new Uint8Array(2 + 2 + rl + 2 + sl);
  out[0] = 0x30, out[1] = 2 + rl + 2 + sl;
  let o = derIntWrite(out, 2, r, rs, rl);
  o = derIntWrite(out, o, sb, ss, sl);
  return out;
}

const SIG_WORDS = new Uint8Array(32);
const SIG_WORDS_S = new Uint8Array(32);
const SIG_WORDS_VIEW = new DataView(SIG_WORDS.buffer);
const SIG_WORDS_S_VIEW = new DataView(SIG_WORDS_S.buffer);

/** The index of the first byte a minimal DER INTEGER keeps of a 32-byte big-endian value (31 for zero). */
function derIntStart(b: Uint8Array): number {
  let i = 0;
  while (i < 31 && b[i] === 0) i++;
  return i;
}

/** Writes INTEGER (tag, length `len`, a 0x00 pad when the top bit is set, bytes from `start`); returns the end. */
function derIntWrite(out: Uint8Array, at: number, b: Uint8Array, start: number, len: number): number {
  out[at++] = 0x02;
  out[at++] = len;
  if (len > 32 - start) out[at++] = 0;
  for (let i = start; i < 32; i++) out[at++] = b[i]!;
  return at;
}

/**
 * Decodes a signature; throws a {@link DerError} or `RangeError` on malformed input.
 *
 * @param bytes the encoded signature
 * @param format `"der"` or `"raw"`
 */
export function decodeSm2Signature(bytes: Uint8Array, format: Sm2SignatureFormat = "der"): Sm2Signature {
  if (format === "raw") {
    if (bytes.length !== 2 * COORD) {
      throw new RangeError(`SM2 signature: raw form must be 64 bytes, got ${bytes.length}`);
    }
    return { r: bytesToNumberBE(bytes.subarray(0, COORD)), s: bytesToNumberBE(bytes.subarray(COORD)) };
  }
  const seq = expectElement(bytes, 0, Tag.SEQUENCE, "SM2 signature");
  if (seq.end !== bytes.length) throw new DerError("SM2 signature: trailing bytes after the SEQUENCE");
  const r = expectElement(seq.content, 0, Tag.INTEGER, "SM2 signature r");
  const s = expectElement(seq.content, r.end, Tag.INTEGER, "SM2 signature s");
  if (s.end !== seq.content.length) throw new DerError("SM2 signature: unexpected elements in the SEQUENCE");
  return {
    r: decodeUnsignedInteger(r.content, "SM2 signature r"),
    s: decodeUnsignedInteger(s.content, "SM2 signature s"),
  };
}

const CURVE_BYTES = concatBytes(be32(SM2_CURVE.a), be32(SM2_CURVE.b), be32(SM2_CURVE.Gx), be32(SM2_CURVE.Gy));

/**
 * Computes Z = SM3(ENTL || ID || a || b || Gx || Gy || x || y), the signer-identity hash of GB/T 32918.2.
 *
 * @param publicKey the signer's public key
 * @param id the signer's ID (at most 8191 bytes)
 */
export function sm2Za(publicKey: Sm2PublicKey, id: Uint8Array = SM2_DEFAULT_ID): Uint8Array {
  if (id.length > 0x1fff) throw new RangeError("SM2 Z_A: ID is longer than 8191 bytes");
  const bits = id.length * 8;
  const { x, y } = publicKey.point.toAffine();
  return createSm3().update(new Uint8Array([bits >>> 8, bits & 0xff])).update(id).update(CURVE_BYTES)
    .update(be32(x)).update(be32(y)).digest();
}

/**
 * Uses of one public key after which it gets its own width-5 comb table (52 windows of 31 points, built with
 * bigint in ~5 ms and loaded into one of the WebAssembly module's 32 key slots): its multiplications are then
 * ~3× faster than without (verification 70 against 200 µs CPU).
 */
const PRECOMPUTE_AFTER_USES = 8;

/**
 * How many decoded public keys {@link Sm2PublicKey.fromBytes} keeps once they have been decoded at least twice
 * (least recently used out). A key used often enough to get a table holds ~100 KB of bigints plus a 100 KiB
 * WebAssembly slot; 32 keys bound that at ~7 MB.
 */
export const SM2_KEY_CACHE_SIZE = 32;

/**
 * How many keys decoded only once {@link Sm2PublicKey.fromBytes} remembers (least recently used out), so that
 * a second decoding returns the same instance and promotes it to the main cache. Ephemeral keys (TLCP ECDHE
 * parameters, anything seen once) pass through here and never evict the keys that do come back (CA keys,
 * returning peers) from the main cache. Keys here are small: a table is built only after several uses of
 * one instance.
 */
export const SM2_KEY_PROBATION_SIZE = 128;

/** Keys decoded at least twice. */
const decodedKeys = new Map<string, Sm2PublicKey>();
/** Keys decoded once. */
const probationKeys = new Map<string, Sm2PublicKey>();

/** Decodes and validates an encoded point (33, 64 or 65 bytes), without the key cache. */
function decodePoint(bytes: Uint8Array): Sm2Point {
  const b = bytes.length === 2 * COORD ? concatBytes(new Uint8Array([4]), bytes) : bytes;
  if (b.length !== 65 && b.length !== 33) {
    throw new RangeError(`SM2 public key: expected 33, 64 or 65 bytes, got ${bytes.length}`);
  }
  try {
    return Sm2Point.fromBytes(b);
  } catch (e) {
    throw new RangeError("SM2 public key: point is not on the curve", { cause: e });
  }
}

/** Inserts as most recently used, evicting the least recently used beyond `max`. */
function lruSet(map: Map<string, Sm2PublicKey>, id: string, key: Sm2PublicKey, max: number): void {
  map.set(id, key);
  if (map.size > max) map.delete(map.keys().next().value!);
}

/**
 * An SM2 public key: a validated curve point, its cached Z_A for the default ID, and, after a few uses, a
 * precomputed comb table (verification and ECDH against a long-lived key, such as a CA key or a TLCP
 * encryption certificate key, then run ~2–3× faster). Keep and reuse instances for peers you see again.
 */
export class Sm2PublicKey {
  /** The validated point (never the point at infinity). */
  readonly point: Sm2Point;
  #za: Uint8Array | undefined;
  /** Z_A for the last other ID asked for (TLS 1.3 CertificateVerify uses RFC 8998's ID on every handshake). */
  #zaOther: { readonly id: Uint8Array; readonly za: Uint8Array } | undefined;

  private constructor(point: Sm2Point) {
    this.point = point;
  }

  /**
   * Decodes `04 || x || y` (65 bytes), the compressed form (33 bytes) or bare `x || y` (64 bytes) and checks
   * that the point is on the curve. Recently decoded keys are shared (see {@link SM2_KEY_CACHE_SIZE} and
   * {@link SM2_KEY_PROBATION_SIZE}), so a key that arrives again (a CA key, a returning peer's certificate key)
   * keeps its Z_A and table. For a key known to be used once (an ephemeral key), {@link Sm2PublicKey.decode}
   * skips the cache.
   *
   * @param bytes the encoded point
   */
  static fromBytes(bytes: Uint8Array): Sm2PublicKey {
    // The bare x || y form shares its entry with 04 || x || y.
    let id = bytes.length === 2 * COORD ? "\x04" : "";
    for (let i = 0; i < bytes.length; i++) id += String.fromCharCode(bytes[i]!);
    const cached = decodedKeys.get(id);
    if (cached) {
      decodedKeys.delete(id); // re-insert: most recently used last
      decodedKeys.set(id, cached);
      return cached;
    }
    const once = probationKeys.get(id);
    if (once) {
      probationKeys.delete(id);
      lruSet(decodedKeys, id, once, SM2_KEY_CACHE_SIZE);
      return once;
    }
    const key = new Sm2PublicKey(decodePoint(bytes));
    lruSet(probationKeys, id, key, SM2_KEY_PROBATION_SIZE);
    return key;
  }

  /**
   * Decodes like {@link Sm2PublicKey.fromBytes} but never shares or caches the key: for ephemeral keys, which
   * would only push long-lived keys out of the cache.
   *
   * @param bytes the encoded point
   */
  static decode(bytes: Uint8Array): Sm2PublicKey {
    return new Sm2PublicKey(decodePoint(bytes));
  }

  /**
   * Wraps affine coordinates after checking the point is on the curve.
   *
   * @param x the x-coordinate
   * @param y the y-coordinate
   */
  static fromAffine(x: bigint, y: bigint): Sm2PublicKey {
    const p = Sm2Point.fromAffine({ x, y });
    try {
      p.assertValidity();
    } catch (e) {
      throw new RangeError("SM2 public key: point is not on the curve", { cause: e });
    }
    return new Sm2PublicKey(p);
  }

  /** @internal Wraps a point already known valid (computed from a private scalar). */
  static _trusted(point: Sm2Point): Sm2PublicKey {
    return new Sm2PublicKey(point);
  }

  /** Encodes the point: uncompressed `04 || x || y` by default. */
  toBytes(compressed = false): Uint8Array {
    if (compressed) return this.point.toBytes(true);
    // Written directly: the point was validated when this key was made, and noble's encoder re-checks the curve
    // equation and goes through hex strings (~16 µs, a quarter of generating a TLS key share).
    const { x, y } = this.point.toAffine();
    const out = new Uint8Array(1 + 2 * COORD);
    const dv = new DataView(out.buffer);
    out[0] = 4;
    writeBig256(dv, 1, x);
    writeBig256(dv, 1 + COORD, y);
    return out;
  }

  /** Whether `other` is the same point. */
  equals(other: Sm2PublicKey): boolean {
    return this.point.equals(other.point);
  }

  /** Z_A for `id` (cached for the default ID and for the last other ID). */
  za(id: Uint8Array = SM2_DEFAULT_ID): Uint8Array {
    if (id === SM2_DEFAULT_ID || equalBytes(id, SM2_DEFAULT_ID)) return (this.#za ??= sm2Za(this));
    const other = this.#zaOther;
    if (other && equalBytes(other.id, id)) return other.za;
    const za = sm2Za(this, id);
    this.#zaOther = { id: id.slice(), za };
    return za;
  }

  /** The message digest e = SM3(Z_A || message) that SM2 signs. */
  digest(message: Uint8Array, id: Uint8Array = SM2_DEFAULT_ID): Uint8Array {
    return createSm3().update(this.za(id)).update(message).digest();
  }

  /**
   * Verifies an SM2 signature over `message` (Z_A is prepended here). Returns false for a wrong signature;
   * throws only for malformed encodings.
   *
   * @param message the signed message
   * @param signature the signature (DER by default)
   * @param options signer ID and signature format
   */
  verify(message: Uint8Array, signature: Uint8Array, options: Sm2SignOptions = {}): boolean {
    return this.verifyDigest(
      this.digest(message, options.id),
      decodeSm2Signature(signature, options.format ?? "der"),
    );
  }

  /**
   * Verifies a signature over a precomputed digest e = SM3(Z_A || M).
   *
   * @param e the 32-byte digest
   * @param sig the decoded signature
   */
  verifyDigest(e: Uint8Array, sig: Sm2Signature): boolean {
    const { r, s } = sig;
    if (r < 1n || r >= N || s < 1n || s >= N) return false;
    const t = Fn.add(r, s);
    if (t === 0n) return false;
    // s·G on the WebAssembly comb, t·key on the key's table after a few uses (else the fixed window), summed
    // and made affine in WebAssembly; noble's complete formulas only for the sum's exceptional case.
    const point = prepared(this);
    if (!sm2WasmBaseReady()) baseMultiply(1n);
    const x = sm2WasmVerifySum(s, t, point.toAffine(), tableOf(point));
    if (x !== undefined) return Fn.add(bytesToNumberBE(e), x) === r;
    const q = Sm2Point.fromAffine(baseMultiply(s)).add(multiplyPublic(this, t));
    if (q.is0()) return false;
    return Fn.add(bytesToNumberBE(e), q.toAffine().x) === r;
  }

  /**
   * Encrypts `plaintext` to this key (GB/T 32918.4).
   *
   * @param plaintext the message (may be empty)
   * @param options the ciphertext layout
   */
  encrypt(plaintext: Uint8Array, options: Sm2EncryptOptions = {}): Uint8Array {
    for (;;) {
      const k = options.k ? bytesToNumberBE(options.k) : randomScalar();
      assertNonZeroScalar(k, "SM2 encrypt");
      const c1 = Sm2Point.fromAffine(baseMultiply(k));
      const s = secretMultiply(prepared(this), k);
      const x2 = be32(s.x);
      const y2 = be32(s.y);
      const t = sm3Kdf(concatBytes(x2, y2), plaintext.length);
      if (plaintext.length > 0 && isAllZero(t)) {
        if (options.k) throw new Error("SM2 encrypt: KDF output is all zero for the given k");
        continue;
      }
      const c2 = new Uint8Array(plaintext.length);
      for (let i = 0; i < c2.length; i++) c2[i] = plaintext[i]! ^ t[i]!;
      const c3 = createSm3().update(x2).update(plaintext).update(y2).digest();
      return encodeCiphertext(c1, c3, c2, options.format ?? "c1c3c2");
    }
  }
}

const keyUses = new WeakMap<Sm2PublicKey, number>();
/** The comb tables of points used often enough (see {@link PRECOMPUTE_AFTER_USES}). */
const combs = new WeakMap<Sm2Point, Sm2Comb>();
/** Where each comb is loaded in the WebAssembly module (reloaded when its slot went to another key). */
const loaded = new WeakMap<Sm2Comb, Sm2WasmTable>();

/** The point's loaded table, if it has a comb. */
function tableOf(point: Sm2Point): Sm2WasmTable | undefined {
  const comb = combs.get(point);
  if (!comb) return undefined;
  let table = loaded.get(comb);
  if (!table || !sm2WasmTableValid(table)) {
    table = sm2WasmLoadTable(comb);
    loaded.set(comb, table);
  }
  return table;
}

/**
 * t·point for a public scalar 0 ≤ t < n: with the point's comb if it has one, else on the WebAssembly fixed
 * window (~2× faster than the bigint wNAF of `sm2_vartime.ts`, measured with bench/crypto_sm2.ts), over only
 * as many windows as t has digits.
 */
function multiplyPublicPoint(point: Sm2Point, t: bigint): Sm2Point {
  if (t === 0n || point.is0()) return Sm2Point.ZERO;
  const table = tableOf(point);
  if (table) return Sm2Point.fromAffine(sm2WasmMultiplyTable(table, t));
  const { x, y } = point.toAffine();
  return Sm2Point.fromAffine(sm2WasmMultiply(x, y, t, t.toString(16).length));
}

/** t·key for a public scalar t. */
function multiplyPublic(key: Sm2PublicKey, t: bigint): Sm2Point {
  return multiplyPublicPoint(prepared(key), t);
}

/** The key's point, with a table attached once the key has been used often enough. */
function prepared(key: Sm2PublicKey): Sm2Point {
  const n = (keyUses.get(key) ?? 0) + 1;
  if (n <= PRECOMPUTE_AFTER_USES) {
    keyUses.set(key, n);
    if (n === PRECOMPUTE_AFTER_USES) {
      const { x, y } = key.point.toAffine();
      combs.set(key.point, sm2BuildComb(x, y, SM2_WASM_COMB_WIDTH));
    }
  }
  return key.point;
}

function isAllZero(b: Uint8Array): boolean {
  let acc = 0;
  for (let i = 0; i < b.length; i++) acc |= b[i]!;
  return acc === 0;
}

function encodeCiphertext(c1: Sm2Point, c3: Uint8Array, c2: Uint8Array, format: Sm2CiphertextFormat): Uint8Array {
  if (format === "asn1") {
    const { x, y } = c1.toAffine();
    return encodeSequence(
      encodeUnsignedInteger(x),
      encodeUnsignedInteger(y),
      encodeElement(Tag.OCTET_STRING, c3),
      encodeElement(Tag.OCTET_STRING, c2),
    );
  }
  const p = c1.toBytes(false);
  return format === "c1c2c3" ? concatBytes(p, c2, c3) : concatBytes(p, c3, c2);
}

function decodeCiphertext(
  ct: Uint8Array,
  format: Sm2CiphertextFormat,
): { c1: Uint8Array; c3: Uint8Array; c2: Uint8Array } {
  if (format === "asn1") {
    const what = "SM2 ciphertext";
    const seq = expectElement(ct, 0, Tag.SEQUENCE, what);
    if (seq.end !== ct.length) throw new DerError(`${what}: trailing bytes after the SEQUENCE`);
    const x = expectElement(seq.content, 0, Tag.INTEGER, what + " x");
    const y = expectElement(seq.content, x.end, Tag.INTEGER, what + " y");
    const h = expectElement(seq.content, y.end, Tag.OCTET_STRING, what + " hash");
    const c = expectElement(seq.content, h.end, Tag.OCTET_STRING, what + " ciphertext");
    if (c.end !== seq.content.length) throw new DerError(`${what}: unexpected elements in the SEQUENCE`);
    const xv = decodeUnsignedInteger(x.content, what + " x");
    const yv = decodeUnsignedInteger(y.content, what + " y");
    if (xv >= SM2_CURVE.p || yv >= SM2_CURVE.p) throw new RangeError(`${what}: C1 coordinate is out of range`);
    return { c1: concatBytes(new Uint8Array([4]), be32(xv), be32(yv)), c3: h.content, c2: c.content };
  }
  if (ct.length < 65 + 32 || ct[0] !== 4) {
    throw new RangeError("SM2 ciphertext: expected 04 || x || y || C3 || C2 (at least 97 bytes)");
  }
  const c1 = ct.subarray(0, 65);
  if (format === "c1c2c3") return { c1, c2: ct.subarray(65, ct.length - 32), c3: ct.subarray(ct.length - 32) };
  return { c1, c3: ct.subarray(65, 97), c2: ct.subarray(97) };
}

/** An SM2 private key d in [1, n-2] with its public key and, once it has signed, the cached (1 + d)^-1. */
export class Sm2PrivateKey {
  /** The public key dG. */
  readonly publicKey: Sm2PublicKey;
  readonly #d: bigint;
  /** (1 + d)^-1 mod n, computed on first signature: ephemeral keys (ECDH, key exchange) never need it. */
  #inv1d: bigint | undefined;

  private constructor(d: bigint) {
    assertScalar(d, "SM2 private key");
    this.#d = d;
    this.publicKey = Sm2PublicKey._trusted(Sm2Point.fromAffine(baseMultiply(d)));
  }

  /** Generates a random key. */
  static generate(): Sm2PrivateKey {
    for (;;) {
      const d = randomScalar();
      if (d < N - 1n) return new Sm2PrivateKey(d);
    }
  }

  /**
   * Wraps a 32-byte big-endian scalar; throws `RangeError` if it is not in [1, n-2].
   *
   * @param bytes the scalar
   */
  static fromBytes(bytes: Uint8Array): Sm2PrivateKey {
    if (bytes.length !== COORD) throw new RangeError(`SM2 private key: expected 32 bytes, got ${bytes.length}`);
    return new Sm2PrivateKey(bytesToNumberBE(bytes));
  }

  /** The scalar as 32 big-endian bytes. Handle with care. */
  toBytes(): Uint8Array {
    return be32(this.#d);
  }

  /**
   * Signs `message` (Z_A of this key's public key and `options.id` is prepended).
   *
   * @param message the message
   * @param options signer ID and signature format
   */
  sign(message: Uint8Array, options: Sm2SignOptions = {}): Uint8Array {
    const e = this.publicKey.digest(message, options.id);
    return encodeSm2Signature(this.signDigest(e, options.k), options.format ?? "der");
  }

  /**
   * Signs a precomputed digest e = SM3(Z_A || M).
   *
   * @param e the 32-byte digest
   * @param fixedK a fixed nonce, for known-answer tests only: never set it otherwise
   */
  signDigest(e: Uint8Array, fixedK?: Uint8Array): Sm2Signature {
    const ev = bytesToNumberBE(e);
    const inv1d = (this.#inv1d ??= Fn.inv(this.#d + 1n));
    for (;;) {
      const k = fixedK ? bytesToNumberBE(fixedK) : randomScalar();
      assertNonZeroScalar(k, "SM2 sign");
      const x1 = baseMultiply(k).x;
      const r = Fn.add(ev, x1);
      // These retries happen with probability ~2^-256; they are not a timing channel in practice.
      if (r === 0n || r + k === N) continue;
      const s = Fn.mul(inv1d, Fn.sub(k, Fn.mul(r, this.#d)));
      if (s === 0n) continue;
      return { r, s };
    }
  }

  /**
   * Decrypts a GB/T 32918.4 ciphertext; throws if C1 is not on the curve or the C3 hash does not match.
   *
   * @param ciphertext the ciphertext
   * @param options the ciphertext layout
   */
  decrypt(ciphertext: Uint8Array, options: Sm2EncryptOptions = {}): Uint8Array {
    const { c1, c2, c3 } = decodeCiphertext(ciphertext, options.format ?? "c1c3c2");
    if (c3.length !== 32) throw new RangeError("SM2 ciphertext: C3 must be 32 bytes");
    let p: Sm2Point;
    try {
      p = Sm2Point.fromBytes(c1);
    } catch (e) {
      throw new RangeError("SM2 ciphertext: C1 is not on the curve", { cause: e });
    }
    const s = secretMultiply(p, this.#d);
    const x2 = be32(s.x);
    const y2 = be32(s.y);
    const t = sm3Kdf(concatBytes(x2, y2), c2.length);
    if (c2.length > 0 && isAllZero(t)) throw new Error("SM2 decrypt: KDF output is all zero");
    const m = new Uint8Array(c2.length);
    for (let i = 0; i < m.length; i++) m[i] = c2[i]! ^ t[i]!;
    const u = createSm3().update(x2).update(m).update(y2).digest();
    if (!equalBytes(u, c3)) throw new Error("SM2 decrypt: ciphertext hash C3 does not match");
    return m;
  }

  /**
   * ECDH as TLS 1.3 curveSM2 uses it: the 32-byte x-coordinate of d × peer.
   *
   * @param peer the peer's public key (or its encoding, validated here)
   */
  ecdh(peer: Sm2PublicKey | Uint8Array): Uint8Array {
    // An encoded peer key is ephemeral (TLS 1.3 key shares): decoded outside the key cache.
    const q = peer instanceof Sm2PublicKey ? prepared(peer) : decodePoint(peer);
    return be32(secretMultiply(q, this.#d).x);
  }

  /** @internal The scalar, for the key-exchange protocol in this module. */
  _scalar(): bigint {
    return this.#d;
  }
}

/** The inputs of one side of the SM2 key-exchange protocol (GB/T 32918.3). */
export interface Sm2KeyExchangeParams {
  /** Which side this is: A (initiator) or B (responder). Z_A and Z_B, and the hashes, are ordered by role. */
  role: "initiator" | "responder";
  /** Our long-term key (in TLCP: the encryption certificate's key). */
  staticKey: Sm2PrivateKey;
  /** Our ephemeral key r, R = rG. */
  ephemeralKey: Sm2PrivateKey;
  /** The peer's long-term public key. */
  peerStaticKey: Sm2PublicKey;
  /** The peer's ephemeral public key (validated on decoding). */
  peerEphemeralKey: Sm2PublicKey;
  /** The shared key length in bytes (TLCP: 48). */
  keyLength: number;
  /** Our ID; default {@link SM2_DEFAULT_ID}. */
  id?: Uint8Array;
  /** The peer's ID; default {@link SM2_DEFAULT_ID}. */
  peerId?: Uint8Array;
}

/** The outcome of {@link sm2KeyExchange}. */
export interface Sm2KeyExchangeResult {
  /** The shared key K_A = K_B. */
  readonly key: Uint8Array;
  /** The confirmation hash we may send: S_B (0x02) as responder, S_A (0x03) as initiator. */
  readonly confirmation: Uint8Array;
  /** The confirmation we expect from the peer: S_1 (= S_B) as initiator, S_2 (= S_A) as responder. */
  readonly expectedPeerConfirmation: Uint8Array;
}

/**
 * Runs our side of the SM2 key-exchange protocol: U = (d + x̄·r)(P_peer + x̄_peer·R_peer),
 * K = KDF(x_U || y_U || Z_A || Z_B, klen), and the optional confirmation hashes. Compare the peer's
 * confirmation with {@link sm2ConfirmationEquals}.
 *
 * @param params our keys, the peer's keys, the role and the key length
 */
export function sm2KeyExchange(params: Sm2KeyExchangeParams): Sm2KeyExchangeResult {
  const initiator = params.role === "initiator";
  const ownR = params.ephemeralKey.publicKey.point.toAffine();
  const peerR = params.peerEphemeralKey.point.toAffine();
  const xOwn = W_POW + (ownR.x & W_MASK);
  const xPeer = W_POW + (peerR.x & W_MASK);
  const t = Fn.add(params.staticKey._scalar(), Fn.mul(xOwn, params.ephemeralKey._scalar()));
  // x̄_peer is public: the combination of the peer's points may use the variable-time path.
  const combined = params.peerStaticKey.point.add(multiplyPublicPoint(params.peerEphemeralKey.point, xPeer));
  if (combined.is0()) throw new Error("SM2 key exchange: peer keys combine to the point at infinity");
  if (t === 0n) throw new Error("SM2 key exchange: the combined private scalar is zero");
  const u = secretMultiply(combined, t);
  const zOwn = params.staticKey.publicKey.za(params.id ?? SM2_DEFAULT_ID);
  const zPeer = params.peerStaticKey.za(params.peerId ?? SM2_DEFAULT_ID);
  const [za, zb] = initiator ? [zOwn, zPeer] : [zPeer, zOwn];
  const [ra, rb] = initiator ? [ownR, peerR] : [peerR, ownR];
  const xu = be32(u.x);
  const yu = be32(u.y);
  const key = sm3Kdf(concatBytes(xu, yu, za, zb), params.keyLength);
  const inner = sm3(concatBytes(xu, za, zb, be32(ra.x), be32(ra.y), be32(rb.x), be32(rb.y)));
  const s02 = sm3(concatBytes(new Uint8Array([0x02]), yu, inner));
  const s03 = sm3(concatBytes(new Uint8Array([0x03]), yu, inner));
  return initiator
    ? { key, confirmation: s03, expectedPeerConfirmation: s02 }
    : { key, confirmation: s02, expectedPeerConfirmation: s03 };
}

/**
 * Compares confirmation hashes in constant time.
 *
 * @param expected {@link Sm2KeyExchangeResult.expectedPeerConfirmation}
 * @param received what the peer sent
 */
export function sm2ConfirmationEquals(expected: Uint8Array, received: Uint8Array): boolean {
  return expected.length === received.length && equalBytes(expected, received);
}
